//! The monitor thread: every `--stats-interval` seconds, one stats line in the
//! log.
//!
//! It owns nothing but the previous snapshot (to compute rates). It reads
//! the client directory (how many are online) and the stats (the counters),
//! one lock after the other, never both at once, through
//! [`Shared::snapshot`]. It waits with `select!` on a ticker and on the
//! shutdown signal, so it stops the moment shutdown begins instead of
//! finishing a sleep. With `--features deadlock-detection` it also logs
//! any deadlock the detector has found (`deadlock.rs`).

use std::sync::Arc;

use crossbeam_channel::{select, tick};

use crate::shared::Shared;
use crate::shutdown::ShutdownSignal;

pub(crate) fn run(shared: Arc<Shared>, shutdown: ShutdownSignal) {
    // `tick` is a channel that receives a message every interval.
    let ticker = tick(shared.config.stats_interval);
    let mut last = shared.snapshot();
    loop {
        select! {
            recv(ticker) -> _ => {
                let now = shared.snapshot();
                log::info!("{}", now.report_since(&last));
                last = now;
                #[cfg(feature = "deadlock-detection")]
                crate::deadlock::reports().iter().for_each(|report| log::error!("{report}"));
            }
            recv(shutdown.receiver()) -> _ => return,
        }
    }
}
