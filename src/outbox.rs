//! One client's outgoing lines: a queue bounded in bytes, and the
//! slow-consumer policy. The queue has two ends:
//!
//! - the [`Outbox`], on the manager thread, which owns one per connected
//!   client (its reader makes the pair and hands the `Outbox` over in
//!   `Event::Connected`);
//! - the [`OutboxReader`], on that client's writer thread.
//!
//! Between them: an unbounded crossbeam channel (it allocates as lines
//! arrive, in blocks of 31, rather than all its slots up front), an atomic
//! count of the bytes in it, which is what bounds it, and for each gap a
//! shared atomic count of the lines dropped there. No lock: the manager only
//! adds, the writer only takes away.
//!
//! The policy, in three rules:
//!
//! 1. **Never wait.** A line that would take a client's backlog over
//!    `--max-backlog` bytes is dropped for that client alone, and counted.
//!    One slow client must never slow down the manager, which every line in
//!    the server passes through.
//! 2. **Never hide a gap.** At the first drop, a *gap marker* goes into the
//!    queue in place of the line (it costs no bytes, so it always fits).
//!    Further drops add to the same marker's count until the next line gets
//!    through. When the writer reaches the marker, it writes `! N lines
//!    were dropped because your connection is too slow`: exactly where the
//!    gap is, as soon as the lines before it are out, whether or not any
//!    line follows.
//! 3. **Give up on a client that never catches up.** When every line for a
//!    client has been dropped for `stuck_after`, it is hung up on.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, unbounded, Receiver, RecvTimeoutError, Sender, TryRecvError};

use crate::line::OutboundLine;
use crate::socket::Hangup;

/// What a queued line costs its client's backlog beyond its text: the
/// channel slot that holds it (a pointer, a length and the slot's state).
/// Lines are shared `Arc<str>`s, so a line sent to a room is stored once
/// however many queues hold it; charging each client the whole text anyway
/// makes the bound an upper bound on what that client can make the server
/// keep, even when the line is its alone (a `/users` reply, a whisper).
pub(crate) const SLOT_BYTES: usize = 32;

/// The bytes `line` costs the backlog of each client it is queued for.
pub(crate) fn cost(line: &OutboundLine) -> usize {
    line.as_bytes().len() + SLOT_BYTES
}

/// Makes both ends of one client's queue. `max_bytes` bounds the backlog;
/// `hangup` and `stuck_after` are for rule 3.
pub(crate) fn outbox(
    max_bytes: usize,
    hangup: Hangup,
    stuck_after: Duration,
) -> (Outbox, OutboxReader) {
    let (queue_tx, queue_rx) = unbounded();
    let backlog = Arc::new(AtomicUsize::new(0));
    let outbox = Outbox {
        queue_tx,
        backlog: backlog.clone(),
        max_bytes,
        open_gap: None,
        hangup,
        full_since: None,
        stuck_after,
    };
    (outbox, OutboxReader { queue_rx, backlog })
}

/// What travels in the queue.
enum Item {
    Line(OutboundLine),
    /// Lines were dropped here; the count may still grow until the writer
    /// takes the marker, which closes it.
    Gap(Arc<GapCount>),
}

/// How many lines one gap lost. The manager adds to it; the writer reads it
/// once and closes it, so no drop is ever counted after it was told.
struct GapCount(AtomicU64);

impl GapCount {
    /// Set by the writer when it takes the marker.
    const CLOSED: u64 = u64::MAX;

    /// One more line lost here; false if the writer has already told this
    /// gap, so the drop needs a marker of its own.
    fn add_one(&self) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != Self::CLOSED).then(|| n + 1)
            })
            .is_ok()
    }

    /// The final count; no drop can join this gap afterwards.
    fn close(&self) -> u64 {
        self.0.swap(Self::CLOSED, Ordering::AcqRel)
    }
}

/// What happened to one line given to [`Outbox::deliver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// In the client's queue.
    Queued,
    /// Dropped for this client and counted; it will be told in the gap's
    /// place.
    Dropped,
    /// Dropped, and the client has been hung up on: every line for it has
    /// been dropped for `stuck_after`.
    HungUp,
}

/// The manager's end of one client's queue, with what the policy remembers
/// about that client. Dropping it closes the queue, which tells the writer
/// the connection is over once it has written what is queued.
pub(crate) struct Outbox {
    queue_tx: Sender<Item>,
    /// Bytes queued and not yet taken by the writer, by [`cost`].
    backlog: Arc<AtomicUsize>,
    max_bytes: usize,
    /// The marker of the gap the latest drops went into, until a line gets
    /// through after it.
    open_gap: Option<Arc<GapCount>>,
    hangup: Hangup,
    /// Since when every line for this client has been dropped; `None` while
    /// lines get through.
    full_since: Option<Instant>,
    stuck_after: Duration,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("backlog_bytes", &self.backlog_bytes())
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Queues `line` for this client without ever waiting, and says what
    /// happened to it; the caller counts it.
    pub(crate) fn deliver(&mut self, line: OutboundLine) -> Delivery {
        let cost = cost(&line);
        if !self.has_room_for(cost) {
            return self.drop_line();
        }
        self.backlog.fetch_add(cost, Ordering::AcqRel);
        // Counted before it can reach the writer, which counts it written.
        line.queued();
        if let Err(unsent) = self.queue_tx.send(Item::Line(line)) {
            // The writer has stopped (its socket failed); the reader will
            // send `Left` soon. Nobody is left to tell.
            if let Item::Line(line) = unsent.into_inner() {
                line.written();
            }
            return Delivery::Dropped;
        }
        self.open_gap = None;
        self.full_since = None;
        Delivery::Queued
    }

    /// Bytes queued for this client and not yet taken by its writer.
    pub(crate) fn backlog_bytes(&self) -> usize {
        self.backlog.load(Ordering::Acquire)
    }

    /// A line fits if the backlog stays within the bound with it, or if the
    /// backlog is empty: a single line bigger than the bound (a `/users`
    /// reply with many thousands online) must still be deliverable.
    fn has_room_for(&self, cost: usize) -> bool {
        let backlog = self.backlog_bytes();
        backlog == 0 || backlog + cost <= self.max_bytes
    }

    fn drop_line(&mut self) -> Delivery {
        self.mark_gap();
        let now = Instant::now();
        let full_since = *self.full_since.get_or_insert(now);
        if now.duration_since(full_since) < self.stuck_after {
            return Delivery::Dropped;
        }
        self.hangup.hang_up();
        // Its reader will send `Left`; until then, start the clock again so
        // the manager does not hang up (and log) on every line.
        self.full_since = None;
        Delivery::HungUp
    }

    /// Counts the drop in the open gap, or opens a new one with a marker.
    fn mark_gap(&mut self) {
        if let Some(gap) = &self.open_gap {
            if gap.add_one() {
                return;
            }
        }
        let gap = Arc::new(GapCount(AtomicU64::new(1)));
        // Unbounded: a marker always fits. Markers cannot pile up: a new
        // one is queued only after the writer took the last one, or after
        // a line got through.
        let _ = self.queue_tx.send(Item::Gap(gap.clone()));
        self.open_gap = Some(gap);
    }
}

/// What the writer takes from the queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outgoing {
    Line(OutboundLine),
    /// `! N lines were dropped ...`, ready to write.
    DropNotice(OutboundLine),
}

impl Outgoing {
    /// The bytes to write, newline included.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        let (Outgoing::Line(line) | Outgoing::DropNotice(line)) = self;
        line.as_bytes()
    }
}

/// What [`OutboxReader::recv_or`] found.
pub(crate) enum Next<T> {
    Queued(Outgoing),
    Other(T),
    /// `other` is closed: its sender (the door's reading half) is gone.
    OtherClosed,
    /// Nothing came within the timeout.
    TimedOut,
    /// The manager has let go of the queue, and everything in it was taken.
    Closed,
}

/// The writer's end of one client's queue.
pub(crate) struct OutboxReader {
    queue_rx: Receiver<Item>,
    backlog: Arc<AtomicUsize>,
}

impl OutboxReader {
    /// The next thing to write, waiting for it; `None` once the manager has
    /// let go of the queue and everything in it has been taken.
    #[cfg(test)]
    pub(crate) fn recv(&self) -> Option<Outgoing> {
        self.queue_rx.recv().ok().map(|item| self.take(item))
    }

    /// The next thing to write, or something from `other` (the door's
    /// control channel), whichever comes first, waiting at most `timeout`
    /// (`None`: for as long as it takes). `select!` waits on both channels
    /// at once and takes whichever is ready first.
    pub(crate) fn recv_or<T>(
        &self,
        other: Option<&Receiver<T>>,
        timeout: Option<Duration>,
    ) -> Next<T> {
        let queued = |item: Result<Item, _>| match item {
            Ok(item) => Next::Queued(self.take(item)),
            Err(_) => Next::Closed,
        };
        let Some(other) = other else {
            return match timeout {
                None => queued(self.queue_rx.recv().map_err(|_| ())),
                Some(timeout) => match self.queue_rx.recv_timeout(timeout) {
                    Err(RecvTimeoutError::Timeout) => Next::TimedOut,
                    item => queued(item.map_err(|_| ())),
                },
            };
        };
        let control = |message: Result<T, _>| match message {
            Ok(message) => Next::Other(message),
            Err(_) => Next::OtherClosed,
        };
        match timeout {
            None => select! {
                recv(self.queue_rx) -> item => queued(item.map_err(|_| ())),
                recv(other) -> message => control(message),
            },
            Some(timeout) => select! {
                recv(self.queue_rx) -> item => queued(item.map_err(|_| ())),
                recv(other) -> message => control(message),
                default(timeout) => Next::TimedOut,
            },
        }
    }

    /// The next thing to write, if there is one already.
    pub(crate) fn try_recv(&self) -> Result<Outgoing, TryRecvError> {
        self.queue_rx.try_recv().map(|item| self.take(item))
    }

    /// Taking a line frees its bytes at once, not once it is written: the
    /// writer's own batch buffer (at most 64 KiB) holds it from here.
    fn take(&self, item: Item) -> Outgoing {
        match item {
            Item::Line(line) => {
                self.backlog.fetch_sub(cost(&line), Ordering::AcqRel);
                Outgoing::Line(line)
            }
            Item::Gap(gap) => Outgoing::DropNotice(drop_notice(gap.close())),
        }
    }
}

fn drop_notice(dropped: u64) -> OutboundLine {
    OutboundLine::error(&format!(
        "{dropped} lines were dropped because your connection is too slow"
    ))
}

#[cfg(test)]
mod tests;
