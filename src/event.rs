//! The messages threads send each other.
//!
//! No thread runs this module; it is the vocabulary of the channels:
//! reader threads send [`Event`]s to the manager over one shared channel, and
//! the manager sends [`OutboundLine`]s to each client's writer thread over that
//! client's own bounded channel. Keeping these types small and explicit is what
//! lets each thread's code be read on its own.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use crate::cluster::ClusterEvent;
use crate::outbox::Outbox;
use crate::shared::gauges::Histogram;
use crate::socket::ClientSocket;

/// A connection's number, given by the acceptor in order of arrival and never
/// reused while the server runs. Names change (`/nick`); ids do not, so every
/// table the manager keeps is indexed by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ClientId(pub(crate) u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One line on its way to one client's socket, `\n` included.
///
/// Cloning is a reference-count increment: a chat line sent to a room of a
/// thousand people is formatted once and the same bytes are queued a thousand
/// times.
#[derive(Clone, Debug)]
pub(crate) struct OutboundLine(Arc<Line>);

#[derive(Debug)]
struct Line {
    text: Box<str>,
    /// For a chat line being fanned out: how long until its last recipient
    /// has it written (`/metrics`, `threadchat_fanout_seconds`).
    fanout: Option<FanoutTimer>,
}

/// Times one line's fan-out: from the manager taking it to the last
/// recipient's writer finishing the write. `pending` counts queued copies
/// not yet written, plus one the manager holds while it is still queueing
/// (so that a fast writer cannot bring it to zero early); whoever brings it
/// to zero records the time.
#[derive(Debug)]
struct FanoutTimer {
    started: Instant,
    pending: AtomicUsize,
    queued: AtomicUsize,
    histogram: Arc<Histogram>,
}

impl OutboundLine {
    /// Builds a line from its text; the newline is added here, once.
    pub(crate) fn new(text: &str) -> Self {
        OutboundLine::with_timer(text, None)
    }

    /// A line whose fan-out is timed into `histogram`. The manager calls
    /// [`fan_out_done`](Self::fan_out_done) once it has queued every copy.
    pub(crate) fn timed(text: &str, histogram: &Arc<Histogram>) -> Self {
        let timer = FanoutTimer {
            started: Instant::now(),
            pending: AtomicUsize::new(1),
            queued: AtomicUsize::new(0),
            histogram: histogram.clone(),
        };
        OutboundLine::with_timer(text, Some(timer))
    }

    fn with_timer(text: &str, fanout: Option<FanoutTimer>) -> Self {
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        OutboundLine(Arc::new(Line {
            text: line.into_boxed_str(),
            fanout,
        }))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.text.as_bytes()
    }

    /// The same text without a timer: a history replay is not a fan-out.
    pub(crate) fn untimed(&self) -> OutboundLine {
        match &self.0.fanout {
            None => self.clone(),
            Some(_) => OutboundLine::new(self.0.text.trim_end_matches('\n')),
        }
    }

    pub(crate) fn is_timed(&self) -> bool {
        self.0.fanout.is_some()
    }

    /// One more copy is about to be queued for a writer.
    pub(crate) fn queued(&self) {
        if let Some(timer) = &self.0.fanout {
            timer.pending.fetch_add(1, Ordering::AcqRel);
            timer.queued.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A writer has written one copy, or a queued copy will never be.
    pub(crate) fn written(&self) {
        self.release();
    }

    /// The manager has queued every copy it will.
    pub(crate) fn fan_out_done(&self) {
        self.release();
    }

    fn release(&self) {
        let Some(timer) = &self.0.fanout else {
            return;
        };
        if timer.pending.fetch_sub(1, Ordering::AcqRel) == 1
            && timer.queued.load(Ordering::Relaxed) > 0
        {
            timer.histogram.observe(timer.started.elapsed());
        }
    }

    /// The text without its newline.
    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        self.0.text.trim_end_matches('\n')
    }
}

impl PartialEq for OutboundLine {
    fn eq(&self, other: &Self) -> bool {
        self.0.text == other.0.text
    }
}

impl Eq for OutboundLine {}

/// Lets the manager end a connection it has given up on (a client that
/// stays far behind), without owning or otherwise touching the socket.
/// Shutting the socket down wakes the client's reader and writer, which then
/// end the connection the usual way. Weak, so it never keeps a socket open.
#[derive(Clone, Debug)]
pub(crate) struct Hangup(Weak<ClientSocket>);

impl Hangup {
    pub(crate) fn new(socket: &Arc<ClientSocket>) -> Self {
        Hangup(Arc::downgrade(socket))
    }

    /// A handle that hangs up on nothing: for tests of the manager, which
    /// need no sockets.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Hangup(Weak::new())
    }

    /// `shutdown(2)`: returns at once, never blocks.
    pub(crate) fn hang_up(&self) {
        if let Some(socket) = self.0.upgrade() {
            socket.hang_up();
        }
    }
}

/// Why a client's reader stopped. The manager tells the room the same thing
/// (`* NAME left`) whatever the reason; the reason goes to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LeaveReason {
    /// The client typed `/quit`: it is sent a goodbye before its queue closes.
    Quit,
    /// The client closed its side of the connection (end of file).
    Closed,
    /// Reading failed: a reset, a timeout, or the writer shut the socket down.
    Failed(String),
    /// The manager is gone because the server is shutting down.
    ServerClosing,
    /// It did not choose a name within `--name-timeout`.
    NoName,
    /// It sent nothing for `--idle-timeout`.
    Idle,
    /// It kept sending far over `--rate-limit`.
    Flooding,
    /// It spoke HTTP or TLS to the chat port.
    WrongProtocol(crate::protocol::WrongProtocol),
    /// The reader thread panicked; the panic was caught and the client dropped.
    Panicked,
}

impl fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaveReason::Quit => f.write_str("quit"),
            LeaveReason::Closed => f.write_str("closed the connection"),
            LeaveReason::Failed(error) => write!(f, "connection failed: {error}"),
            LeaveReason::ServerClosing => f.write_str("server shutting down"),
            LeaveReason::NoName => f.write_str("chose no name in time"),
            LeaveReason::Idle => f.write_str("idle too long"),
            LeaveReason::Flooding => f.write_str("flooding"),
            LeaveReason::WrongProtocol(protocol) => {
                write!(f, "spoke {protocol:?} to the chat port")
            }
            LeaveReason::Panicked => f.write_str("reader thread panicked"),
        }
    }
}

/// Everything that reaches the manager. Each variant is one thing a client
/// did or asked for; the manager alone decides who hears about it.
///
/// A reader sends `Connected` first and `Left` last, and the channel keeps one
/// sender's messages in order, so the manager sees every client's life in the
/// order it happened.
#[derive(Debug)]
pub(crate) enum Event {
    /// A connection was accepted. `outbox` is the manager's end of the
    /// client's queue (with the hang-up handle inside); the manager holds
    /// the only one, so dropping it is what tells the writer the connection
    /// is over.
    Connected {
        id: ClientId,
        peer: SocketAddr,
        outbox: Outbox,
    },
    /// The reader claimed `name` in the client directory for this client.
    Registered { id: ClientId, name: String },
    /// The reader claimed `new`; the manager releases `old` once it has told
    /// the room, so the two announcements can never cross.
    Renamed {
        id: ClientId,
        old: String,
        new: String,
    },
    /// A plain line for the sender's room.
    Chat { id: ClientId, text: String },
    /// `/me TEXT`.
    Action { id: ClientId, text: String },
    /// `/w NAME TEXT` or `/msg NAME TEXT`.
    Whisper {
        id: ClientId,
        to: String,
        text: String,
    },
    /// `/users`.
    ListUsers { id: ClientId },
    /// `/join ROOM` (and `/leave`, which joins the lobby). The reader has
    /// checked the name against the rule; `room` is without its `#`.
    JoinRoom { id: ClientId, room: String },
    /// `/rooms` or `/groups`.
    ListRooms { id: ClientId },
    /// `/who`.
    ListRoomMembers { id: ClientId },
    /// `/stats`.
    ShowStats { id: ClientId },
    /// `/help`.
    Help { id: ClientId },
    /// Something the client sent was refused; `message` goes back to it
    /// alone as a `! ` line.
    Refused { id: ClientId, message: String },
    /// The reader has stopped; the last event a reader ever sends.
    Left { id: ClientId, reason: LeaveReason },
    /// From the `redis-subscriber` or `redis-publisher` thread (`--redis`):
    /// what another server said, or news of the link to Redis.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Cluster(ClusterEvent),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fan_out_is_timed_once_when_its_last_copy_is_written() {
        let histogram = Arc::new(Histogram::default());
        let line = OutboundLine::timed("hi", &histogram);
        line.queued();
        line.queued();
        // A fast writer: its copy is written before the manager is done.
        line.written();
        assert_eq!(histogram.snapshot().count, 0, "the manager still holds it");
        line.fan_out_done();
        assert_eq!(histogram.snapshot().count, 0, "one copy is still queued");
        line.written();
        assert_eq!(histogram.snapshot().count, 1);
        // A replay of it later is not a fan-out.
        let replayed = line.untimed();
        replayed.queued();
        replayed.written();
        assert_eq!(histogram.snapshot().count, 1);
        assert_eq!(replayed, line, "same text");
    }

    #[test]
    fn a_line_nobody_received_is_not_timed() {
        let histogram = Arc::new(Histogram::default());
        let line = OutboundLine::timed("to an empty room", &histogram);
        line.fan_out_done();
        assert_eq!(histogram.snapshot().count, 0);
    }
}
