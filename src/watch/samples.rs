//! The last five minutes, one sample a second: lines in, out, dropped and
//! refused, and clients online. The page's chart draws it, so a page opened
//! after a flood still sees the flood.
//!
//! One writer, the monitor thread, which adds a sample each second
//! ([`History::record`]); any number of readers, the web door's threads
//! serving `/stats.json` ([`History::samples`]). No lock: a fixed ring of
//! [`KEPT`] slots of atomics, each slot guarded by a sequence number (a
//! *seqlock*). The writer marks a slot as being written, writes it, then
//! stamps it with the sample's number; a reader reads the stamp, the
//! values, and the stamp again, and keeps the sample only if both stamps
//! are the number it expected. So a reader never blocks the monitor, the
//! monitor never waits for a reader, and a sample half overwritten (a
//! reader slower than a second) is left out rather than shown wrong. The
//! memory is fixed: `KEPT` samples, whatever happens.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Samples kept: five minutes of one a second.
pub(crate) const KEPT: usize = 300;

/// One second of the server's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sample {
    /// When it was taken, in milliseconds since the server started.
    pub(crate) at_ms: u64,
    /// Chat lines, actions and whispers received in the second before.
    pub(crate) lines_in: u64,
    /// Lines queued to clients in the second before.
    pub(crate) lines_out: u64,
    pub(crate) dropped: u64,
    pub(crate) refused: u64,
    /// Clients with a name, at `at_ms`.
    pub(crate) online: u64,
}

const FIELDS: usize = 6;

impl Sample {
    fn fields(&self) -> [u64; FIELDS] {
        [
            self.at_ms,
            self.lines_in,
            self.lines_out,
            self.dropped,
            self.refused,
            self.online,
        ]
    }

    fn from_fields(f: [u64; FIELDS]) -> Sample {
        Sample {
            at_ms: f[0],
            lines_in: f[1],
            lines_out: f[2],
            dropped: f[3],
            refused: f[4],
            online: f[5],
        }
    }
}

/// A slot's stamp while the writer is writing it.
const WRITING: u64 = 0;

#[derive(Default)]
struct Slot {
    /// The number of the sample in it (1, 2, ...), or [`WRITING`].
    stamp: AtomicU64,
    values: [AtomicU64; FIELDS],
}

pub(crate) struct History {
    slots: Box<[Slot]>,
    /// How many samples have been recorded: the last is number `recorded`.
    recorded: AtomicU64,
}

impl Default for History {
    fn default() -> Self {
        History {
            slots: (0..KEPT).map(|_| Slot::default()).collect(),
            recorded: AtomicU64::new(0),
        }
    }
}

impl History {
    /// Adds a sample, in place of the oldest once [`KEPT`] are kept. Only
    /// one thread may call this (the monitor).
    pub(crate) fn record(&self, sample: Sample) {
        let number = self.recorded.load(Ordering::Relaxed) + 1;
        let slot = &self.slots[(number as usize) % KEPT];
        slot.stamp.store(WRITING, Ordering::Relaxed);
        // The stamp's change comes before any new value, for any reader
        // that sees a new value (the reader's fence pairs with this one).
        fence(Ordering::Release);
        for (value, field) in slot.values.iter().zip(sample.fields()) {
            value.store(field, Ordering::Relaxed);
        }
        // Release: a reader that sees this stamp sees every value before it.
        slot.stamp.store(number, Ordering::Release);
        self.recorded.store(number, Ordering::Release);
    }

    /// The samples kept, oldest first.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let last = self.recorded.load(Ordering::Acquire);
        let first = last.saturating_sub(KEPT as u64 - 1).max(1);
        (first..=last).filter_map(|n| self.read(n)).collect()
    }

    /// Sample number `number`, unless it has been (or is being) overwritten.
    fn read(&self, number: u64) -> Option<Sample> {
        let slot = &self.slots[(number as usize) % KEPT];
        if slot.stamp.load(Ordering::Acquire) != number {
            return None;
        }
        let mut fields = [0; FIELDS];
        for (field, value) in fields.iter_mut().zip(&slot.values) {
            *field = value.load(Ordering::Relaxed);
        }
        // The values are read before the stamp is read again: if the
        // writer began to overwrite any of them, this load sees its mark.
        fence(Ordering::Acquire);
        (slot.stamp.load(Ordering::Relaxed) == number).then(|| Sample::from_fields(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::thread;

    fn sample(n: u64) -> Sample {
        Sample {
            at_ms: n * 1000,
            lines_in: n,
            lines_out: n * 2,
            dropped: n * 3,
            refused: n * 4,
            online: n * 5,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_five_minutes_oldest_first() {
        let history = History::default();
        assert!(history.samples().is_empty());
        for n in 1..=3 {
            history.record(sample(n));
        }
        assert_eq!(history.samples(), vec![sample(1), sample(2), sample(3)]);
        for n in 4..=(KEPT as u64 + 50) {
            history.record(sample(n));
        }
        let kept = history.samples();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0], sample(51));
        assert_eq!(kept.last(), Some(&sample(KEPT as u64 + 50)));
    }

    #[test]
    fn a_reader_racing_the_writer_never_sees_a_torn_sample() {
        // Every field of sample n is a multiple of n; a sample mixed from
        // two would not be. The reader reads, over and over, the oldest
        // sample: the slot the writer overwrites next, as fast as it can.
        let history = Arc::new(History::default());
        let stop = Arc::new(AtomicBool::new(false));
        let writer = thread::spawn({
            let (history, stop) = (history.clone(), stop.clone());
            move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    history.record(sample(n));
                }
            }
        });
        let (mut kept, mut left_out) = (0u64, 0u64);
        let started = std::time::Instant::now();
        while kept < 200_000 || left_out < 1000 {
            let last = history.recorded.load(Ordering::Acquire);
            match history.read(last.saturating_sub(KEPT as u64 - 1).max(1)) {
                Some(s) => {
                    assert_eq!(s, sample(s.lines_in), "a torn sample");
                    kept += 1;
                }
                None => left_out += 1,
            }
            if started.elapsed() > std::time::Duration::from_secs(10) {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        assert!(
            kept > 0,
            "no sample read while the writer wrote ({left_out} left out)"
        );
        assert_eq!(
            history.samples().len(),
            KEPT,
            "after the writer, every sample kept"
        );
    }
}
