//! The monitor thread: every `--stats-interval` seconds, one stats line in the
//! log.
//!
//! It owns nothing but the previous snapshot (to compute rates). It reads
//! the client directory (how many are online) and the stats (the counters),
//! one lock after the other, never both at once, through
//! [`Shared::snapshot`]. It waits with `select!` on a ticker and on the
//! shutdown signal, so it stops the moment shutdown begins instead of
//! finishing a sleep.

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
                for report in deadlocks() {
                    log::error!("{report}");
                }
            }
            recv(shutdown.receiver()) -> _ => return,
        }
    }
}

/// With `--features deadlock-detection`: one report per deadlock found
/// since the last call. parking_lot's detector knows every thread parked on
/// one of its locks, and finds a cycle of threads each waiting for a lock
/// another holds. For each thread in the cycle the report gives one line,
/// from its backtrace: the thread's role (its outermost function of ours,
/// such as `manager::run`) and where it waits (its innermost, such as
/// `shared::stats::Stats::publish`, which names the lock, since each lock
/// is taken only inside its own type's methods); then the whole backtrace.
/// A deadlocked thread stays blocked: the report is for a person to read.
#[cfg(feature = "deadlock-detection")]
pub(crate) fn deadlocks() -> Vec<String> {
    parking_lot::deadlock::check_deadlock()
        .iter()
        .enumerate()
        .map(|(n, cycle)| {
            let summaries: Vec<String> = cycle
                .iter()
                .map(|thread| {
                    // Our own frames, innermost first (`{:#}` leaves out
                    // the symbol's hash).
                    let ours: Vec<String> = (thread.backtrace().frames().iter())
                        .flat_map(|frame| frame.symbols())
                        .filter_map(|symbol| symbol.name().map(|name| format!("{name:#}")))
                        .filter_map(|name| name.strip_prefix("threadchat::").map(str::to_string))
                        .collect();
                    summary(thread.thread_id(), &ours)
                })
                .collect();
            let backtraces: Vec<String> = cycle
                .iter()
                .map(|thread| format!("{:?}:\n{:?}", thread.thread_id(), thread.backtrace()))
                .collect();
            format!(
                "DEADLOCK {n}: {} threads each wait for a lock another holds\n{}\n{}",
                cycle.len(),
                summaries.join("\n"),
                backtraces.join("\n")
            )
        })
        .collect()
}

/// One line for a deadlocked thread: its id, its role (the last of `ours`,
/// our own frames innermost first) and where it waits: the innermost frame
/// that is not one of the private helpers every lock is taken through
/// (`Stats::lock`, `ClientDirectory::read`/`write`, `LockStats::acquire`).
#[cfg(feature = "deadlock-detection")]
fn summary(id: std::thread::ThreadId, ours: &[String]) -> String {
    let plain = |name: &String| name.trim_end_matches("::{{closure}}").to_string();
    let is_helper = |name: &String| {
        let name = plain(name);
        name.starts_with("shared::gauges::")
            || [":lock", ":read", ":write"]
                .iter()
                .any(|end| name.ends_with(end))
    };
    let unknown = "?".to_string();
    let role = plain(ours.last().unwrap_or(&unknown));
    let waits_in = plain(
        ours.iter()
            .find(|name| !is_helper(name))
            .unwrap_or(&unknown),
    );
    format!("  {id:?}, running {role}, waits in {waits_in}")
}

#[cfg(all(test, feature = "deadlock-detection"))]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::{Arc, Barrier};
    use std::thread;
    use std::time::{Duration, Instant};

    #[test]
    fn a_lock_order_deadlock_is_reported_with_both_threads() {
        // Two threads take two locks in opposite orders, each after the
        // other has its first: the classic lock-order deadlock. They stay
        // blocked for the rest of this test process, by design.
        let (a, b) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
        let both_hold_one = Arc::new(Barrier::new(2));
        for (first, second) in [(a.clone(), b.clone()), (b, a)] {
            let both_hold_one = both_hold_one.clone();
            thread::spawn(move || {
                let _first = first.lock();
                both_hold_one.wait();
                let _second = second.lock();
            });
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let reports = loop {
            let reports = deadlocks();
            if !reports.is_empty() || Instant::now() > deadline {
                break reports;
            }
            thread::sleep(Duration::from_millis(20)); // polling, not synchronisation
        };
        assert_eq!(reports.len(), 1, "expected one deadlock, got {reports:#?}");
        assert!(reports[0].contains("2 threads"), "{}", reports[0]);
        // Both threads are named by where they run and where they wait.
        let summaries = reports[0]
            .lines()
            .filter(|line| line.contains(", waits in "));
        let named = summaries
            .filter(|line| line.contains("monitor::tests::"))
            .count();
        assert_eq!(named, 2, "expected both threads named: {}", reports[0]);
    }
}
