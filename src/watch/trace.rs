//! One traced line's journey through the threads: `/trace` asks for the
//! next chat line to carry a [`Trace`], and each thread it passes through
//! notes the time it did its part.
//!
//! No thread runs this module. The reader makes the trace when it reads the
//! line and notes when it hands the event to the channel; the manager notes
//! when it takes the event and when it has queued every copy; each
//! recipient's writer notes when its `write` of the line has returned (the
//! line carries the trace beside its fan-out timer, `line.rs`). The manager
//! watches the traces it has sent on (`watch/traces.rs`), and once the
//! last copy is written, or after [`GIVE_UP_AFTER`], it tells the sender the
//! journey as `* trace: ...` lines ([`Trace::journey`]).
//!
//! Every time is an atomic, in nanoseconds after the reader read the line.
//! The reader's and the manager's are published by the events channel
//! (a send comes before its receive), the writers' by the fan-out timer's
//! `AcqRel` count (`OutboundLine::fan_out_finished`): by the time the
//! manager reads a journey, every time in it has been written. A line not
//! traced carries `None`, and costs nothing more.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the manager waits for every copy to be written before it
/// tells what it has (a recipient that does not read may take up to the
/// write timeout, 10 s).
pub(crate) const GIVE_UP_AFTER: Duration = Duration::from_secs(5);

/// Not yet noted.
const UNSET: u64 = u64::MAX;

/// A traced line's times. Cloning shares them.
#[derive(Clone, Debug)]
pub(crate) struct Trace(Arc<Times>);

#[derive(Debug)]
struct Times {
    /// When the reader had the line.
    read: Instant,
    /// Each in nanoseconds after `read`, or [`UNSET`].
    sent: AtomicU64,
    taken: AtomicU64,
    queued: AtomicU64,
    outboxes: AtomicU64,
    first_write: AtomicU64,
    last_write: AtomicU64,
    writes: AtomicU64,
}

impl Trace {
    /// A trace for a line the reader had at `read`.
    pub(crate) fn new(read: Instant) -> Self {
        let unset = || AtomicU64::new(UNSET);
        Trace(Arc::new(Times {
            read,
            sent: unset(),
            taken: unset(),
            queued: unset(),
            outboxes: AtomicU64::new(0),
            first_write: unset(),
            last_write: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }))
    }

    fn now(&self) -> u64 {
        u64::try_from(self.0.read.elapsed().as_nanos()).unwrap_or(UNSET - 1)
    }

    /// The reader: handing the event to the channel now.
    pub(crate) fn sent(&self) {
        self.0.sent.store(self.now(), Ordering::Relaxed);
    }

    /// The manager: taking the event now.
    pub(crate) fn taken(&self) {
        self.0.taken.store(self.now(), Ordering::Relaxed);
    }

    /// The manager: `outboxes` copies queued, the last one now.
    pub(crate) fn queued(&self, outboxes: usize) {
        self.0.queued.store(self.now(), Ordering::Relaxed);
        self.0.outboxes.store(outboxes as u64, Ordering::Relaxed);
    }

    /// A writer: its `write` with the line in it has returned.
    pub(crate) fn written(&self) {
        let now = self.now();
        self.0.first_write.fetch_min(now, Ordering::Relaxed);
        self.0.last_write.fetch_max(now, Ordering::Relaxed);
        self.0.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// The `* trace: ` lines (without the `* `) that tell the journey:
    /// each step, and the microseconds since the step before it.
    pub(crate) fn journey(&self, line: &str) -> Vec<String> {
        let times = &self.0;
        let get = |time: &AtomicU64| Some(time.load(Ordering::Relaxed)).filter(|t| *t != UNSET);
        let (outboxes, writes) = (
            times.outboxes.load(Ordering::Relaxed),
            times.writes.load(Ordering::Relaxed),
        );
        let last = Some(times.last_write.load(Ordering::Relaxed)).filter(|_| writes > 0);
        let steps = [
            ("reader got it".to_string(), Some(0)),
            ("event sent".to_string(), get(&times.sent)),
            ("manager took it".to_string(), get(&times.taken)),
            (format!("queued in {outboxes} outboxes"), get(&times.queued)),
            ("first writer wrote it".to_string(), get(&times.first_write)),
            ("last writer wrote it".to_string(), last),
        ];
        let mut lines = vec![format!("trace: {line}")];
        // In whole microseconds since the line was read, so that the steps
        // add up to the total.
        let mut before = 0;
        for (step, at) in steps.iter().take(if outboxes == 0 { 4 } else { 6 }) {
            match at {
                Some(at) => {
                    let micros = (*at / 1000) as i64;
                    lines.push(format!("trace: {step}: {:+} µs", micros - before));
                    before = micros;
                }
                None => lines.push(format!("trace: {step}: not yet")),
            }
        }
        let mut total = format!("trace: {before} µs in all");
        if writes < outboxes {
            let _ = write!(
                total,
                " ({writes} of {outboxes} copies written after {} s)",
                GIVE_UP_AFTER.as_secs()
            );
        }
        lines.push(total);
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journey_lists_every_step_in_order_with_the_time_since_the_one_before() {
        let trace = Trace::new(Instant::now());
        trace.sent();
        trace.taken();
        trace.queued(2);
        let journey = trace.journey("[lobby] al: hi");
        assert_eq!(journey[0], "trace: [lobby] al: hi");
        assert!(
            journey[5].ends_with("first writer wrote it: not yet"),
            "{journey:?}"
        );
        assert!(
            journey[7].ends_with("(0 of 2 copies written after 5 s)"),
            "{journey:?}"
        );
        trace.written();
        trace.written();
        let journey = trace.journey("[lobby] al: hi");
        let steps: Vec<&str> = (journey[1..7].iter())
            .map(|line| line.split(": ").nth(1).unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "reader got it",
                "event sent",
                "manager took it",
                "queued in 2 outboxes",
                "first writer wrote it",
                "last writer wrote it"
            ]
        );
        for line in &journey[1..7] {
            assert!(line.contains(": +") && line.ends_with(" µs"), "{line}");
        }
        assert!(journey[7].ends_with("µs in all"), "{journey:?}");
    }

    #[test]
    fn a_line_nobody_else_hears_ends_at_its_queueing() {
        let trace = Trace::new(Instant::now());
        trace.sent();
        trace.taken();
        trace.queued(0);
        let journey = trace.journey("x");
        assert_eq!(journey.len(), 6, "{journey:?}");
        assert!(journey[4].contains("queued in 0 outboxes: +"));
    }
}
