//! The monitor thread: every `--stats-interval` seconds, one stats line in the
//! log.
//!
//! It owns nothing. It reads the client directory (how many are online) and
//! the stats (the counters), one lock after the other, never both at once.
//! It waits with `select!` on a ticker and on the shutdown signal, so it stops
//! the moment shutdown begins instead of finishing a sleep.

use std::sync::Arc;

use crossbeam_channel::{select, tick, Receiver};

use crate::server::Shared;

pub fn run(shared: Arc<Shared>, shutdown: Receiver<()>) {
    let ticker = tick(shared.config.stats_interval);
    let mut last = shared.snapshot();
    loop {
        select! {
            recv(ticker) -> _ => {
                let now = shared.snapshot();
                log::info!("{}", now.report_since(&last));
                last = now;
            }
            recv(shutdown) -> _ => return,
        }
    }
}
