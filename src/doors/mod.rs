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
//! Adding a door is a file beside this one and a variant of [`Door`].

pub(crate) mod events;
pub(crate) mod line;
pub(crate) mod websocket;

use std::io;

use crate::line::OutboundLine;
use crate::logic::line_reader::Incoming;
use crate::logic::protocol::{Command, WrongProtocol};
use crate::outbox::ControlSender;
use crate::socket::TimedStream;

/// Every kind of door a client can come in by.
#[derive(Clone, Debug)]
pub(crate) enum Door {
    /// Plain lines: `nc`, the terminal client (docs/PROTOCOL.md).
    Lines,
    /// A browser's WebSocket, upgraded by the web door (RFC 6455).
    WebSocket,
    /// An event stream (`curl -N`, `EventSource`): lines out as
    /// Server-Sent Events; lines in from its `/say` requests, through this
    /// inbox.
    Events(events::Inbox),
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
            Door::Events(inbox) => Box::new(events::EventsDecoder::new(input, inbox)),
        }
    }

    /// The writing half, for the writer thread.
    pub(crate) fn encoder(&self) -> Box<dyn Encode> {
        match self {
            Door::Lines => Box::new(line::LineEncoder),
            Door::WebSocket => Box::new(websocket::WsEncoder),
            Door::Events(_) => Box::new(events::EventsEncoder),
        }
    }

    /// Whether the writer sends a quiet client this door's ping after
    /// `--ping-after`: a WebSocket ping, an event stream's comment line
    /// (so that a proxy keeps the connection, and a write to a vanished
    /// peer fails).
    pub(crate) fn pings(&self) -> bool {
        match self {
            Door::Lines => false,
            Door::WebSocket | Door::Events(_) => true,
        }
    }

    /// Whether this door's clients answer pings, so that one silent for
    /// twice `--ping-after` is gone. An event stream's client sends nothing
    /// on it, ever.
    pub(crate) fn hears_pongs(&self) -> bool {
        match self {
            Door::Lines | Door::Events(_) => false,
            Door::WebSocket => true,
        }
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

    /// What one line asks for, in this door's language.
    fn parse(&mut self, line: &str, registered: bool) -> Parsed;
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
    /// Refused: the client gets `! MESSAGE` back.
    Refused(String),
    /// The client speaks another protocol.
    WrongProtocol(WrongProtocol),
}
