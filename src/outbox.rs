//! One client's outgoing lines: the queue between the manager and that
//! client's writer, bounded in bytes, and the slow-consumer policy. No
//! thread runs this module; it has three ends:
//!
//! - the [`Outbox`], on the manager thread, which owns one per connected
//!   client (its reader makes the pair and hands the `Outbox` over in
//!   `Event::Connected`), and adds lines;
//! - the [`OutboxReader`], on that client's writer thread, which takes them;
//! - the [`ControlSender`], on that client's reader thread, through which
//!   its door asks the writer to send a few bytes of its own (a WebSocket's
//!   pong or close).
//!
//! # The hand-over
//!
//! Everything the writer sleeps on is one [`State`], under one mutex, with
//! one condition variable to sleep on: the lines and gap markers, their byte
//! count, the control bytes, whether the manager has let go (`closed`), and
//! whether the writer is asleep. A writer that finds nothing to do sleeps at
//! once, without spinning. The manager wakes it at most once per batch of
//! events (`Wakeups`), however many lines the batch brings it, so that a
//! busy room costs one wake-up per writer per batch, not per line.
//!
//! A *lost wake-up* is a writer asleep with a line waiting: it would sleep
//! until the next line, or for ever. Three rules prevent it:
//!
//! 1. the writer checks for work and says it is asleep under the same lock
//!    it then sleeps on (`Condvar::wait` lets go of the lock and sleeps as
//!    one step, so no line can arrive in between unseen);
//! 2. the writer waits in a `while` loop, never an `if`: it re-checks after
//!    every wake, because a condition variable may wake it for nothing;
//! 3. the manager queues first, under the lock, and wakes only after, every
//!    writer it saw asleep when it queued.
//!
//! `outbox/loom.rs` checks them under every interleaving the model checker
//! finds (docs/ARCHITECTURE.md, invariant 11).
//!
//! # The policy
//!
//! docs/ARCHITECTURE.md's invariants 1 (the manager never waits: a line
//! that does not fit is dropped for that client alone, and counted) and 2
//! (no gap is silent: a *gap marker*, which costs no bytes, holds the
//! drops' place) are kept here. One rule more: a client all of whose lines
//! have been dropped for `stuck_after` is hung up on.

mod sync;

use std::collections::VecDeque;
use std::mem;
use std::time::{Duration, Instant};

use crate::line::OutboundLine;
use crate::socket::Hangup;
use sync::{Arc, Condvar, Mutex, MutexGuard};

/// What a queued line costs its client's backlog beyond its text: its
/// place in the queue. Lines are shared, so a line sent to a room is stored
/// once however many queues hold it; charging each client the whole text
/// anyway makes the bound an upper bound on what that client can make the
/// server keep, even when the line is its alone (a `/who` reply).
pub(crate) const SLOT_BYTES: usize = 32;

/// The bytes `line` costs the backlog of each client it is queued for: its
/// text, what its lists hold (a `/who` reply keeps each name apart too, for
/// the doors that spell it their own way), and its place.
pub(crate) fn cost(line: &OutboundLine) -> usize {
    line.as_bytes().len() + line.list_bytes() + SLOT_BYTES
}

/// Control bytes a door may have waiting for its writer; more are dropped
/// (only the latest ping needs a pong, RFC 6455, 5.5.3).
const CONTROL_QUEUE: usize = 4;

/// A queue that has held a burst gives its memory back once emptied, so
/// that an idle client does not keep a burst's worth of slots for ever.
const KEEP_SLOTS: usize = 256;

/// Makes the three ends of one client's queue. `max_bytes` bounds the
/// backlog; `hangup` and `stuck_after` are for rule 3.
pub(crate) fn outbox(
    max_bytes: usize,
    hangup: Hangup,
    stuck_after: Duration,
) -> (Outbox, OutboxReader, ControlSender) {
    let queue = Arc::new(Queue::default());
    let outbox = Outbox {
        queue: queue.clone(),
        max_bytes,
        hangup,
        full_since: None,
        stuck_after,
        evicted: false,
    };
    let control = ControlSender(queue.clone());
    (outbox, OutboxReader { queue }, control)
}

/// The hand-over: the state and the condition variable the writer sleeps on.
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Lines and gap markers, oldest first.
    items: VecDeque<Item>,
    /// What the lines in `items` cost, by [`cost`].
    bytes: usize,
    /// Bytes the door's reading half asked the writer to send, oldest first.
    control: VecDeque<Control>,
    /// The manager has let go: once `items` is empty, the writer is done.
    closed: bool,
    /// The writer has gone (its socket failed): nobody takes lines any more.
    writer_gone: bool,
    /// The writer is asleep on `wake` (rule 1: set and cleared by the
    /// writer, under the lock).
    asleep: bool,
    /// The manager has put this queue in this batch's [`Wakeups`], so it
    /// is woken once for the whole batch.
    wake_due: bool,
}

impl State {
    fn has_work(&self) -> bool {
        !self.items.is_empty() || !self.control.is_empty() || self.closed
    }

    /// A line, or a drop, for a writer that may be asleep: true if the
    /// writer needs waking and nobody has been asked to yet (rule 3).
    fn needs_wake(&mut self) -> bool {
        let due = self.asleep && !self.wake_due;
        self.wake_due |= due;
        due
    }
}

/// What travels in the queue.
enum Item {
    Line(OutboundLine),
    /// Lines were dropped here; the count grows while this is the last
    /// item, and stops when the writer takes it.
    Gap(u64),
}

/// What happened to one line given to [`Outbox::deliver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// In the client's queue.
    Queued,
    /// Dropped for this client; it will be told in the gap's place.
    Dropped,
    /// Dropped, and the client has been hung up on: every line for it has
    /// been dropped for `stuck_after`.
    HungUp,
}

/// The writers the manager has given lines to while they slept, to be woken
/// once the manager has handled every event of its batch (rule 3).
#[derive(Default)]
pub(crate) struct Wakeups(Vec<Arc<Queue>>);

impl Wakeups {
    /// Wakes every writer this batch gave lines to while it slept.
    pub(crate) fn wake_all(&mut self) {
        for queue in self.0.drain(..) {
            queue.wake.notify_one();
        }
    }
}

/// The manager's end of one client's queue, with what the policy remembers
/// about that client. Dropping it closes the queue, which tells the writer
/// the connection is over once it has written what is queued.
pub(crate) struct Outbox {
    queue: Arc<Queue>,
    max_bytes: usize,
    hangup: Hangup,
    /// Since when every line for this client has been dropped; `None` while
    /// lines get through.
    full_since: Option<Instant>,
    stuck_after: Duration,
    /// Given up on for the total budget: its queue holds only the notice.
    evicted: bool,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    // ASSIGNMENT a3: begin: queue the line, never waiting; past the bound, drop it and leave a gap
    /// Queues `line` for this client without ever waiting, and says what
    /// happened to it; the caller counts it. A writer that was asleep goes
    /// into `wakeups`, to be woken when the batch is done.
    pub(crate) fn deliver(&mut self, line: OutboundLine, wakeups: &mut Wakeups) -> Delivery {
        let cost = cost(&line);
        let mut state = self.queue.state.lock();
        if state.writer_gone || state.closed {
            // The writer has stopped (its socket failed); the reader will
            // send `Left` soon. Nobody is left to tell.
            drop(state);
            line.written();
            return Delivery::Dropped;
        }
        // A line fits if the backlog stays within the bound with it, or if
        // the backlog is empty: a single line bigger than the bound (a
        // `/users` reply with many thousands online) must still go.
        let fits = state.bytes == 0 || state.bytes + cost <= self.max_bytes;
        if fits {
            state.bytes += cost;
            // Counted before it can reach the writer, which counts it written.
            line.queued();
            state.items.push_back(Item::Line(line));
        } else {
            mark_gap(&mut state);
        }
        let wake = state.needs_wake();
        drop(state);
        if wake {
            wakeups.0.push(self.queue.clone());
        }
        if fits {
            self.full_since = None;
            Delivery::Queued
        } else {
            self.dropped()
        }
    }
    // ASSIGNMENT a3: end

    /// A line was dropped: rule 3's clock.
    fn dropped(&mut self) -> Delivery {
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

    /// Bytes queued for this client and not yet taken by its writer.
    pub(crate) fn backlog_bytes(&self) -> usize {
        self.queue.state.lock().bytes
    }

    /// Whether [`Outbox::evict`] has given up on this client already.
    pub(crate) fn evicted(&self) -> bool {
        self.evicted
    }

    /// Gives up on this client to free memory (`--max-total-backlog`):
    /// everything queued goes, `last` takes its place, and the queue is
    /// closed, so the writer writes `last` and ends the connection. Returns
    /// how many lines were dropped, for the stats.
    pub(crate) fn evict(&mut self, last: OutboundLine) -> u64 {
        self.evicted = true;
        let mut state = self.queue.state.lock();
        let dropped = mem::take(&mut state.items);
        // The notice is queued like any line, and costs what one does: the
        // writer subtracts that when it takes it.
        state.bytes = cost(&last);
        state.items.push_back(Item::Line(last));
        state.closed = true;
        drop(state);
        self.queue.wake.notify_one();
        let mut lines = 0;
        for item in dropped {
            match item {
                Item::Line(line) => {
                    line.written();
                    lines += 1;
                }
                Item::Gap(count) => lines += count,
            }
        }
        lines
    }
}

impl Drop for Outbox {
    /// Closes the queue, and wakes the writer to see it (rule 3: the change
    /// first, under the lock; the wake after).
    fn drop(&mut self) {
        self.queue.state.lock().closed = true;
        self.queue.wake.notify_one();
    }
}

/// What the writer takes from the queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outgoing {
    Line(OutboundLine),
    /// `! N lines were dropped ...`, ready to write.
    DropNotice(OutboundLine),
    /// Bytes from the door's reading half.
    Control(Control),
}

/// What [`OutboxReader::next_batch`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Batch {
    /// Something to write: in the buffer given.
    Taken,
    /// Nothing came before the deadline.
    TimedOut,
    /// The manager has let go, and everything queued has been taken.
    Closed,
}

/// The writer's end of one client's queue.
pub(crate) struct OutboxReader {
    queue: Arc<Queue>,
}

impl OutboxReader {
    // ASSIGNMENT a3: begin: wait on the condvar until there is work or the deadline; take a batch
    /// Waits for something to write (at most until `deadline`, if any) and
    /// takes it into `taken`: every control item, and lines in order until
    /// they cost `max_bytes`. Taking a line frees its bytes at once: from
    /// here the writer's own batch holds it.
    pub(crate) fn next_batch(
        &self,
        taken: &mut Vec<Outgoing>,
        max_bytes: usize,
        deadline: Option<Instant>,
    ) -> Batch {
        let mut state = self.queue.state.lock();
        // Rules 1 and 2: checked under the lock, slept on with the lock, and
        // checked again after every wake.
        while !state.has_work() {
            state.asleep = true;
            let timed_out = match deadline {
                None => {
                    self.queue.wake.wait(&mut state);
                    false
                }
                Some(deadline) => self.queue.wake.wait_until(&mut state, deadline),
            };
            state.asleep = false;
            state.wake_due = false;
            if timed_out && !state.has_work() {
                return Batch::TimedOut;
            }
        }
        let before = taken.len();
        taken.extend(state.control.drain(..).map(Outgoing::Control));
        let mut bytes = 0;
        while bytes < max_bytes {
            match state.items.pop_front() {
                Some(Item::Line(line)) => {
                    let cost = cost(&line);
                    state.bytes -= cost;
                    bytes += cost;
                    taken.push(Outgoing::Line(line));
                }
                Some(Item::Gap(dropped)) => taken.push(Outgoing::DropNotice(drop_notice(dropped))),
                None => break,
            }
        }
        if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
            state.items = VecDeque::new();
        }
        // There was work (the loop above saw it), and all of it was taken:
        // if none of it was a line or control bytes, the queue is closed.
        if taken.len() == before {
            Batch::Closed
        } else {
            Batch::Taken
        }
    }
    // ASSIGNMENT a3: end

    /// Everything queued now, without waiting: for tests of the manager,
    /// which read its queues by hand.
    #[cfg(test)]
    pub(crate) fn take_now(&self) -> Vec<Outgoing> {
        let mut taken = Vec::new();
        let far = Instant::now() + Duration::from_secs(3600);
        let state = self.queue.state.lock();
        let has_work = !state.items.is_empty() || !state.control.is_empty();
        drop(state);
        if has_work {
            self.next_batch(&mut taken, usize::MAX, Some(far));
        }
        taken
    }

    /// Whether the manager has let go of this queue, and it is empty.
    #[cfg(test)]
    pub(crate) fn is_closed(&self) -> bool {
        let state = self.queue.state.lock();
        state.closed && state.items.is_empty()
    }
}

impl Drop for OutboxReader {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock();
        state.writer_gone = true;
        // What is still queued will never be written: let its timers go.
        for item in mem::take(&mut state.items) {
            if let Item::Line(line) = item {
                line.written();
            }
        }
        state.bytes = 0;
    }
}

/// Bytes a door's reading half asks the writer to send for it, in between
/// the lines of the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Control {
    pub(crate) bytes: Vec<u8>,
    /// The last bytes of the connection: the writer sends nothing after.
    pub(crate) closes: bool,
}

/// The door's way to its writer, for the reader thread: a few bytes to
/// send in between the lines of the queue.
pub(crate) struct ControlSender(Arc<Queue>);

impl ControlSender {
    /// Queues `control` for the writer, unless as many are already waiting
    /// as a door may have (then it is dropped, and false comes back). A
    /// close always goes, in place of whatever was waiting: it is the
    /// connection's last word.
    pub(crate) fn send(&self, control: Control) -> bool {
        let mut state = self.0.state.lock();
        if state.writer_gone {
            return false;
        }
        if control.closes {
            state.control.clear();
        } else if state.control.len() >= CONTROL_QUEUE {
            return false;
        }
        state.control.push_back(control);
        let asleep = state.asleep;
        drop(state);
        // The reader's own thread, and rare: woken at once, not batched.
        if asleep {
            self.0.wake.notify_one();
        }
        true
    }
}

/// Counts a drop in the open gap (the queue's last item), or opens a new
/// one with a marker.
fn mark_gap(state: &mut MutexGuard<'_, State>) {
    match state.items.back_mut() {
        Some(Item::Gap(dropped)) => *dropped += 1,
        _ => state.items.push_back(Item::Gap(1)),
    }
}

fn drop_notice(dropped: u64) -> OutboundLine {
    OutboundLine::error(&format!(
        "{dropped} lines were dropped because your connection is too slow"
    ))
}

#[cfg(test)]
mod tests;

#[cfg(all(test, loom))]
mod loom;
