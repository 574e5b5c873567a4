//! The curl door's two requests, each on its connection's `http-N` thread
//! (docs/PROTOCOL.md, "From curl"):
//!
//! - `GET /events?name=NAME` claims the name as any door would, answers
//!   `200 text/event-stream` with the stream's token as its first event,
//!   and hands back a [`Stream`]: the thread then becomes this client's
//!   reader, with the event-stream door (`doors/events.rs`). A name that is
//!   taken or breaks the rule is answered 409 or 400 before any stream.
//! - `POST /say?token=TOKEN` checks its body is one line the chat would
//!   take (413, 400), puts it in the inbox of the stream that has the token
//!   ([`Streams`]) and answers 204. The stream's reader does the rest, as
//!   for a line read from any socket: what the chat answers (a refusal, a
//!   list) arrives on the stream.
//!
//! [`Streams`]: super::streams::Streams

use std::io::{self, Read, Write};
use std::time::Instant;

use crossbeam_channel::TrySendError;

use super::http::{self, Request};
use super::request::{Connection, SECURITY_HEADERS};
use super::streams::Open;
use super::token::Token;
use crate::doors::events::{self, Inbox, INBOX_LINES};
use crate::event::Named;
use crate::line::LineId;
use crate::logic::names;
use crate::logic::protocol::{self, ParseError};
use crate::reader;
use crate::shared::thread_states::{self, State};

/// An open event stream, for its thread to read for.
pub(super) struct Stream {
    pub(super) inbox: Inbox,
    pub(super) named: Named,
    /// Its token's place in the table, given up when the stream ends.
    pub(super) open: Open,
}

/// A refusal: the whole response.
type Refused = Vec<u8>;

fn refused(status: u16, why: &str) -> Refused {
    http::error_response(status, why)
}

impl Connection {
    /// `GET /events`: the stream, its head and token sent; or `None`, the
    /// refusal sent.
    pub(super) fn open_stream(&self, request: &Request) -> Option<Stream> {
        match self.try_open_stream(request) {
            Ok(stream) => Some(stream),
            Err(refusal) => {
                self.send(&refusal);
                None
            }
        }
    }

    fn try_open_stream(&self, request: &Request) -> Result<Stream, Refused> {
        let name = match request.query_param("name") {
            Ok(Some(name)) => name,
            Ok(None) => return Err(refused(400, "say who you are: /events?name=NAME")),
            Err(()) => return Err(refused(400, "the name is not percent-encoded UTF-8")),
        };
        names::validate(&name).map_err(|error| refused(400, &error.to_string()))?;
        let resume_after = match request.header("last-event-id").map(str::trim) {
            None | Some("") => None,
            Some(id) => Some(LineId::parse(id).ok_or_else(|| {
                refused(
                    400,
                    "Last-Event-ID is not the id of an event from this server",
                )
            })?),
        };
        if !self.origin_is_ours(request, "an event stream") {
            return Err(refused(403, "an event stream for another site's page"));
        }
        // Counted as the address's client, then the server's; each undone
        // if what follows refuses (the stage when the connection is done).
        self.stage
            .become_client()
            .map_err(|refusal| refused(503, refusal.reason()))?;
        let stats = &self.shared.stats;
        if !stats.try_open_connection(self.shared.config.max_clients) {
            return Err(refused(503, "server full, try again later"));
        }
        if let Err(refusal) = reader::claim_name(&self.shared, &name, self.id) {
            stats.refuse_opened_connection();
            let status = if refusal.taken { 409 } else { 503 };
            return Err(refused(status, &refusal.message));
        }
        let (inbox_tx, inbox) = events::inbox();
        let open = self.streams.open(inbox_tx);
        let mut head = http::event_stream_head(SECURITY_HEADERS);
        events::event(&mut head, Some("token"), None, &open.token.to_string());
        let mut stream = self.socket.stream();
        if let Err(error) = thread_states::blocked(State::Write, || stream.write_all(&head)) {
            log::debug!("web: {} went before its stream began: {error}", self.peer);
            self.shared.clients.release(&name, self.id);
            stats.refuse_opened_connection();
            return Err(Vec::new());
        }
        log::debug!("web: {} watches as {name:?} ({})", self.peer, self.id);
        let named = Named { name, resume_after };
        Ok(Stream { inbox, named, open })
    }

    /// `POST /say`: 204 once the line is in its stream's inbox, or the
    /// refusal.
    pub(super) fn say(&self, request: &Request, early_body: Vec<u8>) {
        match self.try_say(request, early_body) {
            Ok(()) => self.send(&http::no_content()),
            Err(refusal) => self.send(&refusal),
        }
    }

    fn try_say(&self, request: &Request, early_body: Vec<u8>) -> Result<(), Refused> {
        if !self.origin_is_ours(request, "a /say") {
            return Err(refused(403, "a line from another site's page"));
        }
        // In a header, the token stays out of the command line, which
        // anyone on a shared machine can read (`ps`), and out of proxies' logs.
        let token = match request.header("x-threadchat-token") {
            Some(token) => Some(token.to_string()),
            None => request.query_param("token").ok().flatten(),
        };
        let inbox = (token.as_deref().and_then(Token::parse))
            .and_then(|token| self.streams.inbox(token))
            .ok_or_else(|| refused(403, "no open event stream has this token"))?;
        let max_line = self.shared.config.max_line;
        let length = body_length(request, max_line)?;
        if request.header_has("expect", "100-continue") {
            self.send(http::CONTINUE);
        }
        let body = self.read_body(early_body, length)?;
        let line = one_line(&body, max_line)?;
        match inbox.try_send(line) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                let why = format!("{INBOX_LINES} lines are still waiting to be said; slow down");
                Err(http::error_with(429, &why, &[("Retry-After", "1")]))
            }
            Err(TrySendError::Disconnected(_)) => Err(refused(403, "that event stream has ended")),
        }
    }

    /// The body, `length` bytes of it, `early` the ones that came with the
    /// head; within `http_head_timeout` (408).
    fn read_body(&self, mut body: Vec<u8>, length: usize) -> Result<Vec<u8>, Refused> {
        let deadline = Instant::now() + self.shared.config.http_head_timeout;
        let mut stream = self.socket.stream();
        let mut buffer = [0u8; 1024];
        while body.len() < length {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                return Err(refused(408, "the body did not arrive in time"));
            }
            let wanted = (length - body.len()).min(buffer.len());
            match thread_states::blocked(State::Read, || stream.read(&mut buffer[..wanted])) {
                Ok(0) => return Err(refused(400, "the body ended before its Content-Length")),
                Ok(n) => body.extend_from_slice(&buffer[..n]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(refused(408, "the body did not arrive in time")),
            }
        }
        body.truncate(length);
        Ok(body)
    }
}

/// The body's length, as `Content-Length` says: at most a line and its
/// line end (413 past it: not read at all).
fn body_length(request: &Request, max_line: usize) -> Result<usize, Refused> {
    if request.header("transfer-encoding").is_some() {
        return Err(refused(411, "say the body's Content-Length (curl -d does)"));
    }
    let Some(length) = request.header("content-length") else {
        return Err(refused(411, "say the body's Content-Length (curl -d does)"));
    };
    if length.is_empty() || !length.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused(400, "Content-Length is not a number"));
    }
    let too_long = || refused(413, &format!("line too long (max {max_line} bytes)"));
    let length: usize = length.parse().map_err(|_| too_long())?;
    if length > max_line.saturating_add("\r\n".len()) {
        return Err(too_long());
    }
    Ok(length)
}

/// A body as the line it says, with the line protocol's refusals: at most
/// `--max-line` bytes after one line end is taken off (413), UTF-8 and no
/// control character, so no line end inside it either (400).
fn one_line(body: &[u8], max_line: usize) -> Result<String, Refused> {
    let body = match body.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => body,
    };
    if body.len() > max_line {
        return Err(refused(
            413,
            &format!("line too long (max {max_line} bytes)"),
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| refused(400, "line is not valid UTF-8"))?;
    if let Some(c) = protocol::find_control(text) {
        return Err(refused(400, &ParseError::ControlCharacter(c).to_string()));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(response: &[u8]) -> u16 {
        let text = String::from_utf8_lossy(response);
        text[9..12].parse().unwrap_or(0)
    }

    #[test]
    fn a_body_is_one_line_the_chat_would_take_or_its_refusal() {
        assert_eq!(one_line(b"hello", 10).ok().as_deref(), Some("hello"));
        assert_eq!(one_line(b"hello\r\n", 10).ok().as_deref(), Some("hello"));
        assert_eq!(
            one_line(b"/join rust\n", 10).ok().as_deref(),
            Some("/join rust")
        );
        assert_eq!(
            one_line(b"0123456789", 10).ok().as_deref(),
            Some("0123456789")
        );
        assert_eq!(one_line(b"", 10).ok().as_deref(), Some(""));
        let refusal = |body: &[u8]| one_line(body, 10).map(|_| ()).map_err(|r| status(&r));
        assert_eq!(refusal(b"0123456789x"), Err(413));
        assert_eq!(refusal(b"\xff"), Err(400));
        assert_eq!(refusal(b"two\nlines"), Err(400));
        assert_eq!(refusal(b"a\x01b"), Err(400));
        let told = String::from_utf8(one_line(b"a\x1bb", 10).unwrap_err()).unwrap();
        assert!(
            told.ends_with("it contains the control character U+001B\n"),
            "{told}"
        );
    }

    #[test]
    fn a_body_says_its_length_within_a_line() {
        let head = |headers: &str| {
            let text = format!("POST /say HTTP/1.1\r\n{headers}\r\n");
            http::parse_head(text.as_bytes()).expect("a head")
        };
        let length = |headers: &str| body_length(&head(headers), 10).map_err(|r| status(&r));
        assert_eq!(length("Content-Length: 12\r\n"), Ok(12));
        assert_eq!(length("Content-Length: 13\r\n"), Err(413));
        assert_eq!(
            length("Content-Length: 99999999999999999999999\r\n"),
            Err(413)
        );
        assert_eq!(length("Content-Length: -1\r\n"), Err(400));
        assert_eq!(length("Content-Length: \r\n"), Err(400));
        assert_eq!(length(""), Err(411));
        assert_eq!(length("Transfer-Encoding: chunked\r\n"), Err(411));
    }
}
