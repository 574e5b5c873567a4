//! The event-stream door: `curl -N http://…/events?name=carol`, or a
//! browser's `EventSource`. Lines go out as Server-Sent Events (the WHATWG
//! HTML standard, "Server-sent events"); lines come in from the client's
//! `/say` requests. No thread of its own: the web door (`web/curl.rs`)
//! claims the name, answers 200 with the stream's token as its first event,
//! and then its `http-N` thread runs `reader::run` with [`Door::Events`]:
//! it is this client's reader, through [`EventsDecoder`], and the client's
//! writer writes through [`EventsEncoder`].
//!
//! The stream carries nothing from the client. Each line it says arrives
//! in a `/say` request, on a short `http-N` thread of its own, which puts
//! it in this stream's [`Inbox`] (found by the token) and answers. The
//! reader takes it from there as it would from a socket: the flood guard,
//! names, every command, `/quit`. Only the manager decides who hears it.
//!
//! Waiting on its inbox, the reader cannot also wait in a read, and a read
//! is how a server hears that a peer has gone (it returns 0 when curl
//! exits). So every [`PEER_CHECK`] it reads the socket once, for a moment:
//! that is the price of two threads per client with std's blocking calls
//! only. A peer that vanishes without closing (its machine gone) is found
//! by the writer's keepalive comments: a write to it fails in the end.
//!
//! [`Door::Events`]: super::Door::Events

use std::io::{self, Read};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use super::{Decode, Encode, Parsed};
use crate::line::{LineId, OutboundLine};
use crate::logic::line_reader::Incoming;
use crate::shared::thread_states::{self, State};
use crate::socket::{self, TimedStream};

/// How often a waiting reader looks at its socket to see whether the peer
/// has closed: how long a name stays taken after curl exits, at most. Each
/// look costs a wake-up and a read, about 45 µs of CPU on the development
/// machine: 500 idle streams cost 2.4% of one core at one look a second,
/// 7.9% at four (`bash benches/idle_streams.sh`); 500 idle nc clients, whose
/// readers sleep in `read`, 0.25%.
pub(crate) const PEER_CHECK: Duration = Duration::from_secs(1);

/// How long each of those reads may wait for the socket.
const PEEK_WAIT: Duration = Duration::from_millis(1);

/// Lines from `/say` waiting for the reader; one more is answered 429.
/// The reader takes each at once, unless the manager is behind and it is
/// waiting to hand the last one over: then `/say` is held back, as TCP
/// holds back a fast typist.
pub(crate) const INBOX_LINES: usize = 16;

/// The keepalive, after `--ping-after` of quiet: a comment, which clients
/// ignore, so that a proxy keeps the connection open and a write to a peer
/// that vanished fails, in the end.
pub(crate) const PING: &[u8] = b": ping\n\n";

/// The reader's end of a stream's inbox.
#[derive(Clone, Debug)]
pub(crate) struct Inbox(Receiver<String>);

/// A stream's inbox: the sending end for `/say`, the receiving end for the
/// stream's reader.
pub(crate) fn inbox() -> (Sender<String>, Inbox) {
    let (tx, rx) = bounded(INBOX_LINES);
    (tx, Inbox(rx))
}

pub(crate) struct EventsDecoder<'a> {
    input: &'a TimedStream<'a>,
    inbox: Inbox,
    /// Whether the socket's read timeout is set for the peer checks.
    primed: bool,
    /// When the peer was last checked for: lines arriving one after the
    /// other must not put the next check off for ever.
    checked: Instant,
}

impl<'a> EventsDecoder<'a> {
    pub(crate) fn new(input: &'a TimedStream<'a>, inbox: Inbox) -> Self {
        EventsDecoder {
            input,
            inbox,
            primed: false,
            checked: Instant::now(),
        }
    }

    /// Whether the peer has closed its side: one short read. Whatever the
    /// client sends is dropped (a stream takes no input), a little at each
    /// check, so TCP's flow control holds back a client that sends more.
    fn peer_closed(&mut self) -> io::Result<bool> {
        let mut stream = self.input.socket().stream();
        if !self.primed {
            stream.set_read_timeout(Some(PEEK_WAIT))?;
            self.primed = true;
        }
        let mut dropped = [0u8; 512];
        match thread_states::blocked(State::Read, || stream.read(&mut dropped)) {
            Ok(0) => Ok(true),
            Ok(_) => Ok(false),
            Err(error) if socket::is_timeout(&error) => Ok(false),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(error) => Err(error),
        }
    }
}

impl Decode for EventsDecoder<'_> {
    /// The next line from `/say`; the end when the peer closes (or the
    /// server hangs up); `TimedOut` once the reader's deadline
    /// (`--idle-timeout`) has passed.
    fn next_line(&mut self) -> io::Result<Incoming> {
        loop {
            // The writer has given up (a write failed, or the client was
            // let go): nobody hears this stream any more, so it says no more.
            if self.input.socket().hung_up_by_server() {
                return Ok(Incoming::End);
            }
            // Checked on time even while `/say` keeps lines coming: else a
            // stream whose curl has gone would go on speaking.
            if self.checked.elapsed() >= PEER_CHECK {
                self.checked = Instant::now();
                if self.peer_closed()? {
                    return Ok(Incoming::End);
                }
            }
            let until_check = PEER_CHECK.saturating_sub(self.checked.elapsed());
            let wait = match self.input.time_left() {
                Some(left) if left.is_zero() => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
                }
                Some(left) => left.min(until_check),
                None => until_check,
            };
            let received =
                thread_states::blocked(State::Channel, || self.inbox.0.recv_timeout(wait));
            match received {
                Ok(line) => return Ok(Incoming::Line(line)),
                // The web door holds the sending end until the reader is
                // done: cannot happen, and would mean nobody can say more.
                Err(RecvTimeoutError::Disconnected) => return Ok(Incoming::End),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// A `/say` body is one line of the line protocol.
    fn parse(&mut self, line: &str, name: Option<&str>) -> Parsed {
        super::line::parse(line, name.is_some())
    }
}

pub(crate) struct EventsEncoder;

impl Encode for EventsEncoder {
    /// One event per line, its text as the data; a room line carries its
    /// number as the event's id, which a reconnecting `EventSource` sends
    /// back (`Last-Event-ID`) to resume after it.
    fn line(&mut self, line: &OutboundLine, out: &mut Vec<u8>) {
        event(out, None, line.id(), line.text());
    }

    fn ping(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(PING);
    }

    /// A named event, so that a script can tell the server's end of the
    /// stream from a network failure (`EventSource` reconnects after
    /// either).
    fn goodbye(&mut self, out: &mut Vec<u8>) {
        event(out, Some("end"), None, "the server closed this stream");
    }
}

/// Appends one event: its `event:` and `id:` fields if given, a `data:`
/// field per line of `data`, and the blank line that ends it.
///
/// No line the server sends holds a line end (the protocol refuses control
/// characters, and names and room names are plain), so a line is one
/// `data:` field. The encoder does not rely on that: a line end inside
/// `data` would otherwise end the field early, and what follows it would be
/// read as a field of its own (`id: …`, or a blank line ending the event).
/// So `data` is cut at every line end the standard knows (CRLF, LF, CR) and
/// each piece gets its own `data:`; a client joins them with LF, so the text
/// comes back whole (a CR as an LF). `name` and `id` are the server's own:
/// a word, and digits.
pub(crate) fn event(out: &mut Vec<u8>, name: Option<&str>, id: Option<LineId>, data: &str) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    for piece in data
        .split("\r\n")
        .flat_map(|piece| piece.split(['\r', '\n']))
    {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(piece.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests;
