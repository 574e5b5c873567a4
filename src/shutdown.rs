//! How one call tells every long-lived thread to stop. No thread runs this
//! module; it is a pair of types around a crossbeam channel that never
//! carries a message.
//!
//! [`ServerHandle`](crate::ServerHandle) owns the [`ShutdownTrigger`]; the
//! manager, the monitor, every acceptor and, with `--redis`, the Redis
//! subscriber each own a clone of the [`ShutdownSignal`]. Firing the trigger drops the channel's only sender,
//! and a channel whose senders are all gone is *disconnected*: every receiver
//! sees that at once, however many there are, and keeps seeing it. So one
//! drop tells every thread, and a thread that looks late still sees it.
//! (mini-redis does the same with a tokio broadcast channel.)

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};

/// Makes a trigger and the signal it fires.
pub(crate) fn channel() -> (ShutdownTrigger, ShutdownSignal) {
    // Capacity 0, and nothing is ever sent: only the disconnection counts.
    let (tx, rx) = bounded(0);
    (ShutdownTrigger(tx), ShutdownSignal(rx))
}

/// Fires the shutdown signal, once.
pub(crate) struct ShutdownTrigger(Sender<()>);

impl ShutdownTrigger {
    /// Tells every holder of a [`ShutdownSignal`] that shutdown has begun.
    pub(crate) fn fire(self) {
        drop(self.0);
    }
}

/// A thread's view of the shutdown: it can ask whether it has fired, or
/// wait for it in `select!` together with its other channels.
#[derive(Clone)]
pub(crate) struct ShutdownSignal(Receiver<()>);

impl ShutdownSignal {
    /// Whether shutdown has begun. Never blocks.
    pub(crate) fn has_fired(&self) -> bool {
        matches!(self.0.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// The channel to wait on in `select!`: `recv(shutdown.receiver()) -> _`
    /// becomes ready the moment the trigger fires.
    pub(crate) fn receiver(&self) -> &Receiver<()> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::select;
    use std::time::Duration;

    #[test]
    fn every_clone_sees_the_trigger_fire() {
        let (trigger, signal) = channel();
        let other = signal.clone();
        assert!(!signal.has_fired() && !other.has_fired());
        trigger.fire();
        assert!(signal.has_fired() && other.has_fired());
        // And it stays fired.
        assert!(signal.has_fired());
    }

    #[test]
    fn a_fired_signal_wakes_select() {
        let (trigger, signal) = channel();
        trigger.fire();
        let woke = select! {
            recv(signal.receiver()) -> _ => true,
            default(Duration::from_secs(10)) => false,
        };
        assert!(woke, "select! should return at once on a fired signal");
    }
}
