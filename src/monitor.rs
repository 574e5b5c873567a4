//! The monitor thread: every `--stats-interval` seconds, one stats line in the
//! log; every second, one sample in the history the page's chart draws.
//!
//! It owns nothing but what it last saw (to compute rates, and lock waits
//! since the last line). It reads the client directory (how many are
//! online) and the stats (the counters), one lock after the other, never
//! both at once, through [`Shared::snapshot`]; the lock counts and the
//! thread board are atomics, read without a lock. It is the only writer of
//! the samples' history (`watch/samples.rs`). It waits with `select!` on two
//! tickers and on the shutdown signal, so it stops the moment shutdown
//! begins instead of finishing a sleep. With `--features
//! deadlock-detection` it also logs any deadlock the detector has found
//! (`deadlock.rs`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{select, tick};

use crate::shared::gauges::LockUse;
use crate::shared::thread_states::{self, State};
use crate::shared::{Shared, StatsSnapshot};
use crate::shutdown::ShutdownSignal;
use crate::watch::board::ThreadBoard;
use crate::watch::samples::Sample;

/// How often a sample goes into the history.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What woke the monitor.
enum Woke {
    Line,
    Sample,
    Stop,
}

pub(crate) fn run(shared: Arc<Shared>, shutdown: ShutdownSignal) {
    // `tick` is a channel that receives a message every interval.
    let (line_every, sample_every) = (tick(shared.config.stats_interval), tick(SAMPLE_EVERY));
    let mut last_line = (shared.snapshot(), lock_use(&shared));
    let mut last_sample = last_line.0;
    loop {
        let woke = thread_states::blocked(State::Channel, || {
            select! {
                recv(line_every) -> _ => Woke::Line,
                recv(sample_every) -> _ => Woke::Sample,
                recv(shutdown.receiver()) -> _ => Woke::Stop,
            }
        });
        match woke {
            Woke::Line => {
                let now = (shared.snapshot(), lock_use(&shared));
                log::info!("{}", line(&now, &last_line, &shared.gauges.board));
                last_line = now;
                #[cfg(feature = "deadlock-detection")]
                crate::deadlock::log_reports(&shared.gauges.board);
            }
            Woke::Sample => {
                let now = shared.snapshot();
                shared.history.record(sample(&now, &last_sample));
                last_sample = now;
            }
            Woke::Stop => return,
        }
    }
}

/// Each lock's use so far: the client directory's, then the stats'.
fn lock_use(shared: &Shared) -> [LockUse; 2] {
    [shared.clients.lock_use(), shared.stats.lock_use()]
}

/// The second since `before`, for the history.
fn sample(now: &StatsSnapshot, before: &StatsSnapshot) -> Sample {
    Sample {
        at_ms: u64::try_from(now.uptime.as_millis()).unwrap_or(u64::MAX),
        lines_in: now.messages_in.saturating_sub(before.messages_in),
        lines_out: now.lines_delivered.saturating_sub(before.lines_delivered),
        dropped: now.lines_dropped.saturating_sub(before.lines_dropped),
        refused: now.lines_refused.saturating_sub(before.lines_refused),
        online: now.online as u64,
    }
}

/// The monitor's line (docs/PROTOCOL.md, "The monitor's line"): the
/// counters and rates, then the waits for each lock since the last line,
/// then the threads: each long-lived one and its state, and for each
/// client role how many there are and in which states.
fn line(
    (stats, locks): &(StatsSnapshot, [LockUse; 2]),
    (stats_before, locks_before): &(StatsSnapshot, [LockUse; 2]),
    board: &ThreadBoard,
) -> String {
    let mut line = stats.report_since(stats_before);
    let waits = |now: &LockUse, then: &LockUse| now.contended.saturating_sub(then.contended);
    let _ = write!(
        line,
        "; lock waits: clients {}, stats {}; threads:",
        waits(&locks[0], &locks_before[0]),
        waits(&locks[1], &locks_before[1]),
    );
    line.push_str(&board.summary());
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::thread_states::{LockId, Role};
    use crate::shared::{Gauges, Stats};

    #[test]
    fn the_line_gives_lock_waits_since_the_last_and_threads_by_role_and_state() {
        let board = Gauges::default().board;
        let _manager = board.enter_named("manager");
        let stats = Stats::new().snapshot(0);
        let used = |contended| LockUse {
            contended,
            ..LockUse::default()
        };
        let (now, before) = ([used(5), used(9)], [used(2), used(9)]);
        thread_states::blocked(State::Lock(LockId::Stats), || {
            let _reader = board.enter_role(Role::Reader);
            let text = line(&(stats, now), &(stats, before), &board);
            assert!(text.starts_with("stats: 0 online"), "{text}");
            assert!(
                text.ends_with(
                    "; lock waits: clients 3, stats 0; threads: manager lock_stats; \
                     reader 1 (running 1), writer 0, http 0"
                ),
                "{text}"
            );
        });
    }

    #[test]
    fn a_sample_is_the_second_since_the_last() {
        let stats = Stats::new();
        let before = stats.snapshot(1);
        stats.add(crate::shared::Tally {
            messages_in: 3,
            delivered: 30,
            dropped: 2,
            refused: 1,
            ..Default::default()
        });
        let now = stats.snapshot(4);
        let got = sample(&now, &before);
        let fields = (got.lines_in, got.lines_out, got.dropped, got.refused);
        assert_eq!((fields, got.online), ((3, 30, 2, 1), 4));
    }
}
