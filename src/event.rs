//! What reader threads tell the manager.
//!
//! No thread runs this module; it is the vocabulary of the events channel:
//! every reader sends [`Event`]s to the manager over one shared, bounded
//! crossbeam channel (`events_tx` / `events_rx`). What the manager sends
//! back to each client is an [`OutboundLine`](crate::line::OutboundLine),
//! through that client's [`Outbox`]. Keeping these types small and explicit
//! is what lets each thread's code be read on its own.

use std::fmt;
use std::net::SocketAddr;

use crate::line::{LineId, Lookup, Refusal, Roster};
use crate::logic::protocol::WrongProtocol;
use crate::outbox::Outbox;
use crate::shared::ClientId;
use crate::watch::trace::Trace;

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
    WrongProtocol(WrongProtocol),
    /// A door whose clients answer pings (WebSocket, IRC) heard nothing
    /// back for twice `--ping-after`.
    Unresponsive,
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
            LeaveReason::Unresponsive => f.write_str("did not answer pings"),
            LeaveReason::Panicked => f.write_str("reader thread panicked"),
        }
    }
}

/// A name a door claimed in the client directory before its connection
/// became a client: the curl door answers a taken name with 409 before its
/// event stream starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Named {
    pub(crate) name: String,
    /// The last room line the client had (`Last-Event-ID`): its history
    /// replay starts after it.
    pub(crate) resume_after: Option<LineId>,
}

/// Everything that reaches the manager. Each variant is one thing a client
/// did or asked for; the manager alone decides who hears about it.
///
/// The order in which a client's events arrive is docs/ARCHITECTURE.md's
/// invariant 5.
#[derive(Debug)]
pub(crate) enum Event {
    /// A connection was accepted. `outbox` is the manager's end of the
    /// client's queue (with the hang-up handle inside); the manager holds
    /// the only one, so dropping it is what tells the writer the connection
    /// is over. `named` when its door claimed a name before (the curl door):
    /// it is registered at once, without a name prompt.
    Connected {
        id: ClientId,
        peer: SocketAddr,
        outbox: Outbox,
        /// Its door lists a room's members whenever the client enters one
        /// (IRC's 353 after a JOIN). The line door does not: entering a
        /// room of thousands stays one short line.
        names_on_entry: bool,
        /// Boxed: most connections have none, and every event is as big
        /// as the biggest.
        named: Option<Box<Named>>,
    },
    /// The reader claimed `name` in the client directory for this client.
    Registered { id: ClientId, name: String },
    /// The reader claimed `new`; the manager releases `old` when it handles
    /// this event (docs/ARCHITECTURE.md, invariant 4).
    Renamed {
        id: ClientId,
        old: String,
        new: String,
    },
    /// A plain line for the sender's room. `room` is the room the client
    /// named, if its door names one (IRC's `PRIVMSG #rust`): the line is
    /// refused unless the client is in it.
    Chat {
        id: ClientId,
        text: String,
        room: Option<String>,
    },
    /// `/me TEXT`, with `room` as for `Chat`.
    Action {
        id: ClientId,
        text: String,
        room: Option<String>,
    },
    /// A chat line (or with `action`, a `/me`) after `/trace`, with `room`
    /// as for `Chat`: it carries its trace, which each thread it passes
    /// through notes its time in.
    Traced {
        id: ClientId,
        text: String,
        action: bool,
        room: Option<String>,
        trace: Trace,
    },
    /// `/trace`: the reader will trace the client's next chat line.
    Tracing { id: ClientId },
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
    /// `leaving` is the room the client says it leaves (IRC's `PART
    /// #rust`, which goes to the lobby): refused unless it is in it.
    JoinRoom {
        id: ClientId,
        room: String,
        leaving: Option<String>,
    },
    /// `/rooms` or `/groups` (IRC's LIST).
    ListRooms { id: ClientId },
    /// `/who`: the members of the client's room, or of `room` (IRC's NAMES
    /// and WHO name one).
    ListRoomMembers {
        id: ClientId,
        room: Option<String>,
        roster: Roster,
    },
    /// What the line protocol has no command for, and IRC does.
    Query { id: ClientId, query: Query },
    /// `/stats`.
    ShowStats { id: ClientId },
    /// `/help`.
    Help { id: ClientId },
    /// Something the client sent was refused; `message` goes back to it
    /// alone as a `! ` line, and `refusal` says what about.
    Refused {
        id: ClientId,
        message: String,
        refusal: Refusal,
    },
    /// What the client's door answers on its own (IRC's CAP, PONG, MOTD):
    /// queued through the manager so that it keeps its place among the
    /// client's other lines.
    DoorReply { id: ClientId, text: String },
    /// The reader has stopped; the last event a reader ever sends.
    Left { id: ClientId, reason: LeaveReason },
}

/// What a door may ask the manager that the line protocol has no command
/// for: IRC's WHOIS and WHO NICK, ISON and LUSERS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Query {
    /// Where the user called `name` is.
    Whereabouts { name: String, lookup: Lookup },
    /// Which of these names are online.
    Online(Vec<String>),
    /// How many are online, in how many rooms.
    Counts,
}
