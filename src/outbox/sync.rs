//! The few synchronisation types the outbox uses, behind one facade: in a
//! normal build they are parking_lot's `Mutex` and `Condvar` and std's
//! `Arc`; in the unit tests built with `RUSTFLAGS="--cfg loom"` they are
//! loom's (a dev-dependency), so that the model tests (`outbox/loom.rs`) can
//! run the hand-over between the manager and a writer under every
//! interleaving loom can find.
//!
//! Both flavours have the same small API: `lock()` gives the guard
//! directly, a condition variable waits on a `&mut` guard, and a timed
//! wait says whether it timed out. (loom has no clock: its timed wait is a
//! plain wait, and the model tests only use the untimed one.)

#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::Arc;

#[cfg(not(all(loom, test)))]
pub(crate) use parking_lot::{Mutex, MutexGuard};

#[cfg(not(all(loom, test)))]
#[derive(Debug, Default)]
pub(crate) struct Condvar(parking_lot::Condvar);

#[cfg(not(all(loom, test)))]
impl Condvar {
    pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        self.0.wait(guard);
    }

    /// Waits until notified or `deadline`; true if the deadline passed.
    pub(crate) fn wait_until<T>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        deadline: std::time::Instant,
    ) -> bool {
        self.0.wait_until(guard, deadline).timed_out()
    }

    pub(crate) fn notify_one(&self) {
        self.0.notify_one();
    }
}

#[cfg(all(loom, test))]
pub(crate) use loom_flavour::*;

#[cfg(all(loom, test))]
mod loom_flavour {
    use std::ops::{Deref, DerefMut};

    pub(crate) use ::loom::sync::Arc;

    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(::loom::sync::Mutex<T>);

    /// Holds loom's guard in an `Option`, so that a wait can take it out and
    /// put back the one loom returns.
    pub(crate) struct MutexGuard<'a, T>(Option<::loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("a guard between waits")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("a guard between waits")
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Condvar(::loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("a guard to wait on");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }

        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: std::time::Instant,
        ) -> bool {
            self.wait(guard);
            false
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }
}
