//! The manager's end of one client's queue, and the slow-consumer policy.
//! Runs on the manager thread, which owns one [`Outbox`] per connected
//! client; no other thread sees it. It sends on the client's queue (never
//! waiting) and, when it gives up on a client, shuts its socket down through
//! the weak [`Hangup`] handle.
//!
//! The policy, in three rules:
//!
//! 1. **Never wait.** A line that does not fit in the client's queue is
//!    dropped for that client alone, and counted. One slow client must
//!    never slow down the manager, which every line in the server passes
//!    through.
//! 2. **Never hide a gap.** After a drop, the next line this client gets is
//!    `! N lines were dropped because your connection is too slow`; if the
//!    notice does not fit, the line is dropped too. A line delivered without
//!    that notice in front of it would make the gap silent.
//! 3. **Give up on a client that never catches up.** When every line for a
//!    client has been dropped for `stuck_after`, it is hung up on.

use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use crate::event::{Hangup, OutboundLine};
use crate::protocol;
use crate::shared::Tally;

/// What happened to one line given to [`Outbox::deliver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// In the client's queue (with the drop notice in front of it, if one
    /// was owed).
    Queued,
    /// Dropped for this client, and counted; the client will be told.
    Dropped,
    /// Dropped, and the client has been hung up on: its queue has been full
    /// for `stuck_after`. Holds how many lines it was never told of.
    HungUp { untold: u64 },
}

/// The sending end of one client's queue, with what the policy remembers
/// about that client.
pub(crate) struct Outbox {
    outbound_tx: Sender<OutboundLine>,
    hangup: Hangup,
    /// Lines dropped for this client since it was last told so.
    dropped_untold: u64,
    /// Since when every line for this client has been dropped; `None` while
    /// lines get through.
    full_since: Option<Instant>,
    /// How long `full_since` may last before the client is hung up on.
    stuck_after: Duration,
}

impl Outbox {
    /// `outbound_tx` must be the only sender of the queue: dropping the
    /// `Outbox` is what tells the client's writer that the connection is
    /// over.
    pub(crate) fn new(
        outbound_tx: Sender<OutboundLine>,
        hangup: Hangup,
        stuck_after: Duration,
    ) -> Self {
        Outbox {
            outbound_tx,
            hangup,
            dropped_untold: 0,
            full_since: None,
            stuck_after,
        }
    }

    /// Queues `line` for this client without ever waiting, and counts what
    /// happened in `tally`.
    pub(crate) fn deliver(&mut self, line: OutboundLine, tally: &mut Tally) -> Delivery {
        if self.dropped_untold > 0 && !self.tell_of_drops(tally) {
            return self.drop_line(tally);
        }
        match self.outbound_tx.try_send(line) {
            Ok(()) => {
                tally.delivered += 1;
                self.full_since = None;
                Delivery::Queued
            }
            Err(TrySendError::Full(_)) => self.drop_line(tally),
            // The writer has stopped (its socket failed); the reader will
            // send `Left` soon. Nobody is left to tell.
            Err(TrySendError::Disconnected(_)) => {
                tally.dropped += 1;
                Delivery::Dropped
            }
        }
    }

    /// Queues the drop notice, if it fits. The line after it goes only if
    /// this succeeds: a notice without its line is another gap the client
    /// will be told of, but a line without its notice would hide one.
    fn tell_of_drops(&mut self, tally: &mut Tally) -> bool {
        let notice = protocol::error(&format!(
            "{} lines were dropped because your connection is too slow",
            self.dropped_untold
        ));
        if self
            .outbound_tx
            .try_send(OutboundLine::new(&notice))
            .is_err()
        {
            return false;
        }
        tally.delivered += 1;
        self.dropped_untold = 0;
        true
    }

    fn drop_line(&mut self, tally: &mut Tally) -> Delivery {
        tally.dropped += 1;
        self.dropped_untold += 1;
        let now = Instant::now();
        let full_since = *self.full_since.get_or_insert(now);
        if now.duration_since(full_since) < self.stuck_after {
            return Delivery::Dropped;
        }
        self.hangup.hang_up();
        // Its reader will send `Left`; until then, start the clock again so
        // the manager does not hang up (and log) on every line.
        self.full_since = None;
        Delivery::HungUp {
            untold: self.dropped_untold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{bounded, Receiver};
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    const NOTICE_PREFIX: &str = "! ";

    fn outbox(capacity: usize, stuck_after: Duration) -> (Outbox, Receiver<OutboundLine>) {
        let (tx, rx) = bounded(capacity);
        (Outbox::new(tx, Hangup::none(), stuck_after), rx)
    }

    fn line(n: u32) -> OutboundLine {
        OutboundLine::new(&format!("line {n}"))
    }

    fn drain(rx: &Receiver<OutboundLine>) -> Vec<String> {
        rx.try_iter().map(|line| line.text().to_string()).collect()
    }

    const NEVER: Duration = Duration::from_secs(3600);

    #[test]
    fn a_line_that_does_not_fit_is_dropped_and_counted() {
        let (mut outbox, rx) = outbox(2, NEVER);
        let mut tally = Tally::default();
        assert_eq!(outbox.deliver(line(1), &mut tally), Delivery::Queued);
        assert_eq!(outbox.deliver(line(2), &mut tally), Delivery::Queued);
        assert_eq!(outbox.deliver(line(3), &mut tally), Delivery::Dropped);
        assert_eq!((tally.delivered, tally.dropped), (2, 1));
        assert_eq!(drain(&rx), ["line 1", "line 2"]);
    }

    #[test]
    fn the_notice_comes_just_before_the_next_line_delivered() {
        let (mut outbox, rx) = outbox(2, NEVER);
        let mut tally = Tally::default();
        for n in 1..=5 {
            outbox.deliver(line(n), &mut tally);
        }
        assert_eq!(drain(&rx), ["line 1", "line 2"]);
        assert_eq!(outbox.deliver(line(6), &mut tally), Delivery::Queued);
        assert_eq!(
            drain(&rx),
            [
                "! 3 lines were dropped because your connection is too slow",
                "line 6"
            ]
        );
        assert_eq!((tally.delivered, tally.dropped), (4, 3));
    }

    #[test]
    fn no_line_follows_a_drop_without_the_notice_in_front_of_it() {
        // Every way the queue can be emptied between lines: whatever the
        // room left, a line that reaches the client after a gap has the
        // notice just before it.
        for capacity in 1..=4 {
            let (mut outbox, rx) = outbox(capacity, NEVER);
            let mut tally = Tally::default();
            let mut received = Vec::new();
            for n in 0..200u32 {
                outbox.deliver(line(n), &mut tally);
                // Read a varying amount, from nothing to everything.
                let take = (n as usize * 7) % (capacity + 2);
                received.extend(rx.try_iter().take(take).map(|l| l.text().to_string()));
            }
            received.extend(drain(&rx));
            let mut expected_next = 0u32;
            let mut told = 0u64;
            let mut previous_was_notice = false;
            for text in &received {
                if let Some(notice) = text.strip_prefix(NOTICE_PREFIX) {
                    let count: u64 = notice.split(' ').next().unwrap().parse().unwrap();
                    told += count;
                    expected_next += count as u32;
                    previous_was_notice = true;
                    continue;
                }
                let n: u32 = text.strip_prefix("line ").unwrap().parse().unwrap();
                assert_eq!(
                    n, expected_next,
                    "capacity {capacity}: line {n} arrived where line {expected_next} was due \
                     (after a notice: {previous_was_notice}); received {received:?}"
                );
                expected_next = n + 1;
                previous_was_notice = false;
            }
            // Lines dropped at the very end may be owed still; all others told.
            assert_eq!(
                told + outbox.dropped_untold,
                tally.dropped,
                "capacity {capacity}"
            );
        }
    }

    #[test]
    fn a_client_whose_queue_stays_full_is_hung_up_on() {
        // A real socket pair, to see the hang-up from the client's side.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        let server_side = Arc::new(server_side);

        let (tx, _rx) = bounded(1);
        let mut outbox = Outbox::new(tx, Hangup::new(&server_side), Duration::ZERO);
        let mut tally = Tally::default();
        assert_eq!(outbox.deliver(line(1), &mut tally), Delivery::Queued);
        assert_eq!(
            outbox.deliver(line(2), &mut tally),
            Delivery::HungUp { untold: 1 }
        );
        client
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut buffer = [0u8; 16];
        assert_eq!(
            client.read(&mut buffer).unwrap(),
            0,
            "expected end of file once hung up on"
        );
    }

    #[test]
    fn with_room_for_only_the_notice_the_line_waits_for_the_next_notice() {
        let (mut outbox, rx) = outbox(1, NEVER);
        let mut tally = Tally::default();
        outbox.deliver(line(1), &mut tally);
        assert_eq!(outbox.deliver(line(2), &mut tally), Delivery::Dropped);
        assert_eq!(drain(&rx), ["line 1"]);
        // Room for one: the notice takes it, and line 3 is dropped in turn.
        assert_eq!(outbox.deliver(line(3), &mut tally), Delivery::Dropped);
        assert_eq!(
            drain(&rx),
            ["! 1 lines were dropped because your connection is too slow"]
        );
    }
}
