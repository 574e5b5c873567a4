//! Numbers any thread may bump without a lock, for the live view and
//! `/metrics`: how many threads of each role are running, how deep the
//! events channel is, and (a [`LockStats`] beside each of the two locks)
//! how often a lock was taken and how often a thread had to wait for it;
//! and the [`ThreadBoard`], where each thread says what it is doing
//! (`watch/board.rs`).
//!
//! Each number is one atomic, changed by a single atomic instruction.
//! `Relaxed` ordering is enough: each is a tally read for display, and no
//! other memory is published through it. One pair is the exception: a
//! lock's waits are counted after its acquisitions and read before them,
//! so that no copy shows more waits than acquisitions ([`LockStats`];
//! `gauges/loom.rs` checks it).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use super::thread_states::Role;
use super::thread_states::{self, Held, LockId, State};
use crate::watch::board::{OnBoard, ThreadBoard};
// A lock's counters are loom's atomics in its model test, std's otherwise.
#[cfg(all(loom, test))]
use ::loom::sync::atomic::AtomicU64 as LockCounter;
#[cfg(not(all(loom, test)))]
use std::sync::atomic::AtomicU64 as LockCounter;

/// This module's path: every lock is taken through [`LockStats::acquire`],
/// and the deadlock report looks past it (`deadlock.rs`).
#[cfg(feature = "deadlock-detection")]
pub(crate) const MODULE: &str = module_path!();

#[derive(Default)]
pub(crate) struct Gauges {
    /// What each thread is doing, and which lock it holds or waits for.
    pub(crate) board: Arc<ThreadBoard>,
    /// How long chat lines take to reach every recipient's socket.
    pub(crate) fanout: Arc<Histogram>,
    readers: AtomicUsize,
    writers: AtomicUsize,
    http: AtomicUsize,
    /// Events waiting for the manager, as the manager last saw it.
    pub(crate) events_depth: AtomicUsize,
}

impl Gauges {
    /// Gauges whose board has room for `max_clients` connections' threads.
    pub(crate) fn for_clients(max_clients: usize) -> Self {
        Gauges {
            board: Arc::new(ThreadBoard::for_clients(max_clients)),
            ..Gauges::default()
        }
    }

    fn counter(&self, role: Role) -> &AtomicUsize {
        match role {
            Role::Reader => &self.readers,
            Role::Writer => &self.writers,
            Role::Http => &self.http,
        }
    }

    /// Counts the calling thread in `role`, and puts it on the board,
    /// until the guard is dropped, however the thread ends (a panic unwinds
    /// through the guard too).
    pub(crate) fn running(&self, role: Role) -> RoleGuard<'_> {
        self.counter(role).fetch_add(1, Ordering::Relaxed);
        RoleGuard {
            gauges: self,
            role,
            _on_board: self.board.enter_role(role),
        }
    }

    pub(crate) fn threads(&self, role: Role) -> usize {
        self.counter(role).load(Ordering::Relaxed)
    }
}

pub(crate) struct RoleGuard<'a> {
    gauges: &'a Gauges,
    role: Role,
    _on_board: OnBoard,
}

impl Drop for RoleGuard<'_> {
    fn drop(&mut self) {
        self.gauges
            .counter(self.role)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// How one lock is used: every acquisition, and those that had to wait.
/// A lock is "contended" when its `try_` acquisition fails; only then is
/// the wait timed, so the uncontended path costs one extra atomic add (and
/// two stores to the thread's own slot on the board: held, let go).
#[derive(Default)]
pub(crate) struct LockStats {
    acquisitions: LockCounter,
    contended: LockCounter,
    wait_nanos: LockCounter,
}

/// A copy of a [`LockStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockUse {
    pub acquisitions: u64,
    /// Acquisitions that found the lock taken and waited.
    pub contended: u64,
    pub wait: Duration,
}

impl LockStats {
    /// Takes `lock` through `try_acquire`, falling back to `acquire` (which
    /// waits, and the board shows the thread waiting for `lock`) only when
    /// it is taken, and counts which happened. The guard comes back in a
    /// [`Held`], which the board shows as held by this thread until it is
    /// dropped.
    pub(crate) fn acquire<G>(
        &self,
        lock: LockId,
        try_acquire: impl FnOnce() -> Option<G>,
        acquire: impl FnOnce() -> G,
    ) -> Held<G> {
        self.acquisitions.fetch_add(1, Ordering::Relaxed);
        if let Some(guard) = try_acquire() {
            return Held::new(guard, lock);
        }
        let started = Instant::now();
        let guard = thread_states::blocked(State::Lock(lock), acquire);
        // Release: a thread that sees this wait counted sees its acquisition.
        self.contended.fetch_add(1, Ordering::Release);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
        Held::new(guard, lock)
    }

    /// A copy, in which `contended <= acquisitions`: the waits are read
    /// first, as reading the acquisitions first would let more waits be
    /// counted before the second load, whatever the orderings.
    pub(crate) fn read(&self) -> LockUse {
        // Acquire, with the Release above: every acquisition counted before
        // a wait this load sees is seen by the load after it.
        let contended = self.contended.load(Ordering::Acquire);
        LockUse {
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
            contended,
            wait: Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// A histogram of durations in fixed buckets, for Prometheus: each bucket
/// one atomic counter, so any thread may record without a lock.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Observations at most `BUCKETS[i]` seconds (and more than the bucket
    /// before); the last counter is for those beyond every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// The buckets' upper bounds, in seconds: 100 µs to 5 s.
pub(crate) const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A copy of a [`Histogram`]: cumulative counts per bound, as Prometheus
/// wants them, then the sum and the count.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct HistogramSnapshot {
    pub(crate) cumulative: Vec<(f64, u64)>,
    pub(crate) sum_seconds: f64,
    pub(crate) count: u64,
}

impl Histogram {
    pub(crate) fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut cumulative = Vec::with_capacity(BUCKETS.len());
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            running += count.load(Ordering::Relaxed);
            cumulative.push((*bound, running));
        }
        let count = running + self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            cumulative,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[test]
    fn observations_fall_in_their_buckets_cumulatively() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(50));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 3);
        assert_eq!(snapshot.cumulative[0], (0.0001, 1));
        assert_eq!(snapshot.cumulative[5], (0.005, 2));
        assert_eq!(
            snapshot.cumulative.last(),
            Some(&(5.0, 2)),
            "60 s is past every bound"
        );
        assert!((snapshot.sum_seconds - 60.00305).abs() < 1e-9);
    }

    #[test]
    fn a_role_is_counted_while_its_guard_lives() {
        let gauges = Gauges::default();
        let http = gauges.running(Role::Http);
        let reader = gauges.running(Role::Reader);
        let both = (gauges.threads(Role::Http), gauges.threads(Role::Reader));
        assert_eq!(both, (1, 1));
        drop(reader);
        drop(http);
        let both = (gauges.threads(Role::Http), gauges.threads(Role::Reader));
        assert_eq!(both, (0, 0));
    }

    #[test]
    fn a_lock_found_taken_is_counted_as_contended_and_waited_for() {
        let lock = Mutex::new(0);
        let stats = LockStats::default();
        {
            let _free = stats.acquire(LockId::Stats, || lock.try_lock(), || lock.lock());
        }
        assert_eq!(stats.read().contended, 0);
        // Held here, so the try fails and the fallback is what is used (a
        // second thread waiting would be the real case).
        let held = lock.lock();
        let fallback = stats.acquire(
            LockId::Stats,
            || lock.try_lock().map(|_| "try"),
            || "waited",
        );
        drop(held);
        assert_eq!(&*fallback, "waited");
        let used = stats.read();
        assert_eq!((used.acquisitions, used.contended), (2, 1), "{used:?}");
    }
}

#[cfg(all(test, loom))]
mod loom;
