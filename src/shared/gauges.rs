//! Numbers any thread may bump without a lock, for the live view and
//! `/metrics`: how many threads of each role are running, how deep the
//! events channel is, and (a [`LockStats`] beside each of the two locks)
//! how often a lock was taken and how often a thread had to wait for it.
//!
//! Each number is one atomic, changed by a single atomic instruction.
//! `Relaxed` ordering is enough: each is a tally read for display, and no
//! other memory is published through it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The thread roles that come and go with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Reader,
    Writer,
    /// One per open HTTP connection (a WebSocket's becomes its reader).
    Http,
}

#[derive(Default)]
pub(crate) struct Gauges {
    readers: AtomicUsize,
    writers: AtomicUsize,
    http: AtomicUsize,
    /// Events waiting for the manager, as the manager last saw it.
    pub(crate) events_depth: AtomicUsize,
}

impl Gauges {
    fn counter(&self, role: Role) -> &AtomicUsize {
        match role {
            Role::Reader => &self.readers,
            Role::Writer => &self.writers,
            Role::Http => &self.http,
        }
    }

    /// Counts the calling thread in `role` until the guard is dropped,
    /// however the thread ends (a panic unwinds through the guard too).
    pub(crate) fn running(&self, role: Role) -> RoleGuard<'_> {
        self.counter(role).fetch_add(1, Ordering::Relaxed);
        RoleGuard { gauges: self, role }
    }

    pub(crate) fn threads(&self, role: Role) -> usize {
        self.counter(role).load(Ordering::Relaxed)
    }
}

pub(crate) struct RoleGuard<'a> {
    gauges: &'a Gauges,
    role: Role,
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
/// the wait timed, so the uncontended path costs one extra atomic add.
#[derive(Default)]
pub(crate) struct LockStats {
    acquisitions: AtomicU64,
    contended: AtomicU64,
    wait_nanos: AtomicU64,
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
    /// Takes a lock through `try_acquire`, falling back to `acquire` (which
    /// waits) only when it is taken, and counts which happened.
    pub(crate) fn acquire<G>(
        &self,
        try_acquire: impl FnOnce() -> Option<G>,
        acquire: impl FnOnce() -> G,
    ) -> G {
        self.acquisitions.fetch_add(1, Ordering::Relaxed);
        if let Some(guard) = try_acquire() {
            return guard;
        }
        let started = Instant::now();
        let guard = acquire();
        self.contended.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
        guard
    }

    pub(crate) fn read(&self) -> LockUse {
        LockUse {
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
            contended: self.contended.load(Ordering::Relaxed),
            wait: Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[test]
    fn a_role_is_counted_while_its_guard_lives() {
        let gauges = Gauges::default();
        let http = gauges.running(Role::Http);
        let reader = gauges.running(Role::Reader);
        let both = (gauges.threads(Role::Http), gauges.threads(Role::Reader));
        assert_eq!(both, (1, 1));
        drop(http);
        drop(reader);
        let both = (gauges.threads(Role::Http), gauges.threads(Role::Reader));
        assert_eq!(both, (0, 0));
    }

    #[test]
    fn a_lock_found_taken_is_counted_as_contended_and_waited_for() {
        let lock = Mutex::new(0);
        let stats = LockStats::default();
        {
            let _free = stats.acquire(|| lock.try_lock(), || lock.lock());
        }
        assert_eq!(stats.read().contended, 0);
        // Held here, so the try fails and the fallback is what is used (a
        // second thread waiting would be the real case).
        let held = lock.lock();
        let fallback = stats.acquire(|| lock.try_lock().map(|_| "try"), || "waited");
        drop(held);
        assert_eq!(fallback, "waited");
        let used = stats.read();
        assert_eq!((used.acquisitions, used.contended), (2, 1), "{used:?}");
    }
}
