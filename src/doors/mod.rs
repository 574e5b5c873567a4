//! The doors: how the bytes on a client's socket become what the client
//! asks, and how the lines for it become bytes again. A door is the one
//! thing that differs between an `nc` client and a browser; the threads,
//! names, rooms and limits behind it are the same.
//!
//! No thread of its own. A connection's reader thread reads through its
//! door's [`Decode`] half, and its writer thread writes through the
//! [`Encode`] half; neither half touches anything shared. A door that needs
//! to answer on its own (a WebSocket's pong, its close frame) hands the
//! bytes to its writer through the connection's `ControlSender`, because
//! only the writer writes to the socket.
//!
//! Adding a door is a file beside this one and a variant of [`Door`]. A
//! door that answers with data (IRC's numerics) spells each line from its
//! `Says`, and what it answers on its own goes back through the manager
//! as a [`Parsed::Reply`], in its place among the client's lines.

pub(crate) mod irc;
pub(crate) mod line;
pub(crate) mod websocket;

use std::io;

use crate::event::Query;
use crate::line::{OutboundLine, Refusal, Roster};
use crate::logic::line_reader::Incoming;
use crate::logic::protocol::{Command, WrongProtocol};
use crate::outbox::ControlSender;
use crate::socket::TimedStream;

/// Every kind of door a client can come in by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Door {
    /// Plain lines: `nc`, the terminal client (docs/PROTOCOL.md).
    Lines,
    /// A browser's WebSocket, upgraded by the web door (RFC 6455).
    WebSocket,
    /// An IRC client: irssi, WeeChat, HexChat (`--irc`).
    Irc,
}

impl Door {
    /// The reading half, over the reader's view of the socket. `control`
    /// reaches this connection's writer.
    pub(crate) fn decoder<'a>(
        self,
        input: &'a TimedStream<'a>,
        max_line: usize,
        control: ControlSender,
    ) -> Box<dyn Decode + 'a> {
        match self {
            Door::Lines => Box::new(line::LineDecoder::new(input, max_line)),
            Door::WebSocket => Box::new(websocket::WsDecoder::new(input, max_line, control)),
            Door::Irc => Box::new(irc::IrcDecoder::new(input, max_line)),
        }
    }

    /// The writing half, for the writer thread.
    pub(crate) fn encoder(self) -> Box<dyn Encode> {
        match self {
            Door::Lines => Box::new(line::LineEncoder),
            Door::WebSocket => Box::new(websocket::WsEncoder),
            Door::Irc => Box::new(irc::IrcEncoder::new()),
        }
    }

    /// Whether this door's clients answer pings, so that a silent one can
    /// be asked whether it is still there (`--ping-after`).
    pub(crate) fn pings(self) -> bool {
        match self {
            Door::Lines => false,
            Door::WebSocket | Door::Irc => true,
        }
    }

    /// Whether this door shows a room's members to whoever enters it
    /// (IRC's 353 after a JOIN).
    pub(crate) fn lists_names_on_entry(self) -> bool {
        self == Door::Irc
    }
}

/// The reading half of a door.
pub(crate) trait Decode {
    /// The next line the client sent, or why there is none. Blocks.
    fn next_line(&mut self) -> io::Result<Incoming>;

    /// Whether the connection's first bytes are another protocol (TLS).
    fn wrong_protocol(&mut self) -> io::Result<Option<WrongProtocol>> {
        Ok(None)
    }

    /// What one line asks for, in this door's language, from a client
    /// called `name` (`None` before it has one).
    fn parse(&mut self, line: &str, name: Option<&str>) -> Parsed;

    /// What a line longer than the door takes gets; `max_line` is
    /// `--max-line`.
    fn too_long(&self, max_line: usize) -> Parsed {
        Parsed::refused(
            Refusal::TooLong,
            format!("line too long (max {max_line} bytes)"),
        )
    }
}

/// The writing half of a door.
pub(crate) trait Encode: Send {
    /// Appends `line` as this door puts it on the wire.
    fn line(&mut self, line: &OutboundLine, out: &mut Vec<u8>);

    /// Appends a ping, for a door whose clients answer them.
    fn ping(&mut self, _out: &mut Vec<u8>) {}

    /// Appends what the door says when the server ends the connection.
    fn goodbye(&mut self, _out: &mut Vec<u8>) {}
}

/// What one line from a client asks for, as its door understood it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// The name a client without one asks to be known by.
    Name(String),
    Command(Command),
    /// What the line protocol has no command for (IRC's `PRIVMSG #room`,
    /// PART, NAMES, WHOIS, ...).
    Request(Request),
    /// What the door answers on its own, spelled: sent back in order with
    /// the client's other lines.
    Reply(String),
    /// One line that asks for several things, in order (IRC's `JOIN
    /// #a,#b`).
    Several(Vec<Parsed>),
    /// Refused: the client gets `! MESSAGE` back, and its door the kind.
    Refused {
        message: String,
        refusal: Refusal,
    },
    /// The client speaks another protocol.
    WrongProtocol(WrongProtocol),
}

impl Parsed {
    pub(crate) fn refused(refusal: Refusal, message: String) -> Parsed {
        Parsed::Refused { message, refusal }
    }

    /// Whether it only asks for a list or a page of text, which counts
    /// against the rate limit's bucket for lists.
    pub(crate) fn is_query(&self) -> bool {
        match self {
            Parsed::Command(command) => command.is_query(),
            Parsed::Request(Request::Members { .. } | Request::Query(_)) => true,
            Parsed::Reply(_) => true,
            Parsed::Several(all) => !all.is_empty() && all.iter().all(Parsed::is_query),
            _ => false,
        }
    }
}

/// What a door's client may ask beyond the line protocol's commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// A chat line (or an action) for `room`, which must be the client's.
    SayIn {
        room: String,
        text: String,
        action: bool,
    },
    /// Leave `room` (as typed) for the lobby.
    Part(String),
    /// The members of `room` (as typed), or of the client's room.
    Members {
        room: Option<String>,
        roster: Roster,
    },
    Query(Query),
}
