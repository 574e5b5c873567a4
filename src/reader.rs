//! A client's reader thread: one per connection, started by the acceptor.
//! It starts the connection's writer thread, and joins it at the end.
//!
//! It owns the reading side of the socket. It turns each line into an
//! [`Event`] and sends it to the manager over the shared events channel
//! (`events_tx`); it never writes to a client's queue. It writes one thing
//! that is shared: it claims names in the client directory (the `RwLock`),
//! because a claim must be decided the moment it is asked for; with
//! `--redis` it also claims the name in Redis, waiting for the answer, so
//! that no two servers hand out one name. Releasing names is the manager's
//! job.
//!
//! When the client goes (`/quit`, end of file, an error, or the writer
//! shutting the socket down), the reader sends `Event::Left`, waits for its
//! writer to finish, and tells the acceptor it is done over `finished_tx`. A
//! panic anywhere in the session is caught here and ends only this
//! connection.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{bounded, Sender};

use crate::event::{ClientId, Event, Hangup, LeaveReason};
use crate::line_reader::{Incoming, LineReader};
use crate::names::{self, NAME_RULE};
use crate::outbox::{outbox, Outbox, OutboxReader};
use crate::protocol::{self, Command, ParseError, WrongProtocol};
use crate::rate_limit::{FloodGuard, Verdict};
use crate::rooms::LOBBY;
use crate::shared::gauges::Role;
use crate::shared::{ClaimRefused, ClientDirectory, Shared};
use crate::socket::{self, ClientSocket, BUSY};
use crate::websocket::{Control, FrameReader};
use crate::writer::{self, Framing};

/// What the acceptor hands a new reader thread.
pub(crate) struct ReaderStart {
    pub(crate) id: ClientId,
    pub(crate) peer: SocketAddr,
    pub(crate) socket: Arc<ClientSocket>,
    pub(crate) events_tx: Sender<Event>,
    pub(crate) shared: Arc<Shared>,
    /// Where to say "my connection is over" to the acceptor.
    pub(crate) finished_tx: Sender<ClientId>,
    /// A browser's WebSocket, upgraded by the web door, rather than plain
    /// lines.
    pub(crate) websocket: bool,
}

pub(crate) fn run(start: ReaderStart) {
    let ReaderStart {
        id,
        peer,
        socket,
        events_tx,
        shared,
        finished_tx,
        websocket,
    } = start;
    let _role = shared.gauges.running(Role::Reader);
    let config = &shared.config;
    let hangup = Hangup::new(&socket);
    let (outbox, outbox_reader) = outbox(config.max_backlog, hangup, config.queue_full_timeout);
    // A WebSocket's reader asks its writer for pongs and closes over a small
    // channel: only the writer writes to the socket.
    let (control_tx, framing) = if websocket {
        let (control_tx, control_rx) = bounded(CONTROL_QUEUE);
        (Some(control_tx), Framing::WebSocket(control_rx))
    } else {
        (None, Framing::Lines)
    };
    let writer = match start_writer(id, &socket, outbox_reader, framing, &shared) {
        Ok(writer) => writer,
        Err(error) => {
            // No writer, so no client yet: say why straight to the socket,
            // and count the connection as refused, not open.
            log::warn!("cannot start a writer thread for {peer}: {error}; refused it");
            socket::turn_away(socket.stream(), BUSY);
            shared.stats.refuse_opened_connection();
            let _ = finished_tx.send(id);
            return;
        }
    };

    // See `Manager::handle_guarded` for what `catch_unwind` and
    // `AssertUnwindSafe` do.
    let session = panic::catch_unwind(AssertUnwindSafe(|| {
        read_session(id, peer, &socket, outbox, control_tx, &events_tx, &shared)
    }));
    let reason = session.unwrap_or_else(|_| {
        log::error!("reader {id} panicked; disconnecting that client");
        LeaveReason::Panicked
    });

    // However the session ended, the same steps. The manager, on `Left`,
    // drops the client's queue, so the writer sends what is queued, shuts the
    // socket down, and exits. (If the manager is gone, the send fails and
    // the queue went with the manager.)
    let _ = events_tx.send(Event::Left { id, reason });
    drop(events_tx);
    if writer.join().is_err() {
        log::error!("writer {id} panicked");
    }
    drop(socket);
    shared.stats.close_connection();
    let _ = finished_tx.send(id);
}

/// Pongs and closes a WebSocket reader may have waiting for its writer.
const CONTROL_QUEUE: usize = 4;

fn start_writer(
    id: ClientId,
    socket: &Arc<ClientSocket>,
    outbox_reader: OutboxReader,
    framing: Framing,
    shared: &Arc<Shared>,
) -> io::Result<JoinHandle<()>> {
    let socket = socket.clone();
    let shared = shared.clone();
    thread::Builder::new()
        .name(format!("writer-{}", id.0))
        .stack_size(shared.config.client_stack_bytes)
        .spawn(move || {
            let _role = shared.gauges.running(Role::Writer);
            writer::run(id, socket, outbox_reader, framing)
        })
}

/// Reads lines until the client goes; returns why it went.
fn read_session(
    id: ClientId,
    peer: SocketAddr,
    socket: &ClientSocket,
    outbox: Outbox,
    control_tx: Option<Sender<Control>>,
    events_tx: &Sender<Event>,
    shared: &Shared,
) -> LeaveReason {
    // First event of every connection, so the manager knows the client
    // before anything else about it arrives.
    let connected = Event::Connected { id, peer, outbox };
    if events_tx.send(connected).is_err() {
        return LeaveReason::ServerClosing;
    }
    let config = &shared.config;
    let connected_at = Instant::now();
    let name_deadline = connected_at + config.name_timeout;
    let timed = TimedStream::new(socket.stream(), Some(name_deadline));
    let mut lines = match control_tx {
        Some(control_tx) => {
            let buffered = BufReader::with_capacity(2048, &timed);
            LineSource::WebSocket(FrameReader::new(buffered, config.max_line, control_tx))
        }
        None => LineSource::Plain(LineReader::new(&timed, config.max_line)),
    };
    let mut session = Session::new(id, events_tx, shared, socket, connected_at);
    // A TLS client speaks first, in binary: look at its first bytes before
    // they are split into lines.
    match lines.wrong_protocol() {
        Ok(Some(other)) => return LeaveReason::WrongProtocol(other),
        Ok(None) => {}
        Err(error) => return session.read_failed(&error),
    }
    loop {
        let incoming = match lines.next_line() {
            Ok(Incoming::End) => return LeaveReason::Closed,
            Ok(incoming) => incoming,
            Err(error) => return session.read_failed(&error),
        };
        let now = Instant::now();
        if let Step::Leave(reason) = session.on_incoming(incoming, now) {
            return reason;
        }
        // Before a name: the name deadline, fixed at connection. After: the
        // idle deadline, which each line pushes back.
        timed.set_deadline(match session.name {
            None => Some(name_deadline),
            Some(_) => config.idle_timeout.map(|idle| now + idle),
        });
    }
}

/// Where the reader's lines come from: the socket split at `\n`, or a
/// WebSocket's text messages.
enum LineSource<'a> {
    Plain(LineReader<&'a TimedStream<'a>>),
    WebSocket(FrameReader<BufReader<&'a TimedStream<'a>>>),
}

impl LineSource<'_> {
    fn next_line(&mut self) -> io::Result<Incoming> {
        match self {
            LineSource::Plain(lines) => lines.next_line(),
            LineSource::WebSocket(frames) => frames.next_line(),
        }
    }

    /// On a plain connection, whether its first bytes are TLS. (A
    /// WebSocket was upgraded from HTTP, so it speaks WebSocket.)
    fn wrong_protocol(&mut self) -> io::Result<Option<WrongProtocol>> {
        match self {
            LineSource::Plain(lines) => Ok(WrongProtocol::from_first_bytes(lines.peek()?)),
            LineSource::WebSocket(_) => Ok(None),
        }
    }
}

fn is_timeout(error: &io::Error) -> bool {
    // A socket read timeout is EAGAIN (`WouldBlock`) on Unix, `TimedOut`
    // elsewhere; `TimedStream` itself uses `TimedOut`.
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The socket as the reader reads it, with a deadline: no read waits past
/// it, and once it has passed every read fails with `TimedOut`.
///
/// A plain read timeout would not do: it restarts with every `read` call,
/// so a client sending one byte a minute would never time out. Here the
/// deadline is fixed, and each read is given only the time left before it.
struct TimedStream<'a> {
    stream: &'a TcpStream,
    deadline: Cell<Option<Instant>>,
    /// Whether the socket has a read timeout set, so that clearing it costs
    /// a system call only when there is one to clear.
    timeout_set: Cell<bool>,
}

impl<'a> TimedStream<'a> {
    fn new(stream: &'a TcpStream, deadline: Option<Instant>) -> Self {
        TimedStream {
            stream,
            deadline: Cell::new(deadline),
            timeout_set: Cell::new(false),
        }
    }

    fn set_deadline(&self, deadline: Option<Instant>) {
        self.deadline.set(deadline);
    }
}

impl Read for &TimedStream<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self.deadline.get() {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
                }
                self.stream.set_read_timeout(Some(left))?;
                self.timeout_set.set(true);
            }
            None if self.timeout_set.get() => {
                self.stream.set_read_timeout(None)?;
                self.timeout_set.set(false);
            }
            None => {}
        }
        let mut stream = self.stream;
        stream.read(buffer)
    }
}

/// What to do after a line.
enum Step {
    Continue,
    Leave(LeaveReason),
}

/// One client's state as its reader sees it: its name, once it has one,
/// and its flood guard.
struct Session<'a> {
    id: ClientId,
    events_tx: &'a Sender<Event>,
    directory: &'a ClientDirectory,
    shared: &'a Shared,
    socket: &'a ClientSocket,
    name: Option<String>,
    /// Whole lines handled so far: the first is checked for HTTP.
    lines_read: u64,
    /// `None` when `--rate-limit off`.
    flood: Option<FloodGuard>,
}

impl<'a> Session<'a> {
    fn new(
        id: ClientId,
        events_tx: &'a Sender<Event>,
        shared: &'a Shared,
        socket: &'a ClientSocket,
        now: Instant,
    ) -> Self {
        Session {
            id,
            events_tx,
            directory: &shared.clients,
            shared,
            socket,
            name: None,
            lines_read: 0,
            flood: shared
                .config
                .rate_limit
                .map(|limit| FloodGuard::new(limit, now)),
        }
    }

    /// What came off the socket, judged by the rate limit first: every line
    /// counts against it, whatever it holds, because a flood of bad lines
    /// costs the server as much as a flood of good ones.
    fn on_incoming(&mut self, incoming: Incoming, now: Instant) -> Step {
        let verdict = self
            .flood
            .as_mut()
            .map_or(Verdict::Allow, |flood| flood.check(now));
        match (verdict, incoming) {
            // The manager tells the client why, on `Left`.
            (Verdict::Disconnect, _) => Step::Leave(LeaveReason::Flooding),
            (Verdict::SlowDown, _) => {
                let limit = self.flood.as_ref().map(FloodGuard::limit);
                let limit = limit.map_or_else(String::new, |limit| limit.to_string());
                self.refuse(format!("slow down: at most {limit}"))
            }
            (Verdict::Allow, Incoming::Line(line)) => self.on_line(&line),
            // A line cut short by the end of the stream. If the client
            // closed its side, that was its last line; if the server hung
            // up, it was still being typed, and is not ours to post.
            (Verdict::Allow, Incoming::Unfinished(_)) if self.socket.hung_up_by_server() => {
                Step::Continue
            }
            (Verdict::Allow, Incoming::Unfinished(line)) => self.on_line(&line),
            (Verdict::Allow, Incoming::TooLong) => {
                let max = self.shared.config.max_line;
                self.refuse(format!("line too long (max {max} bytes)"))
            }
            (Verdict::Allow, Incoming::NotUtf8) => {
                self.refuse("line is not valid UTF-8".to_string())
            }
            (Verdict::Allow, Incoming::End) => Step::Leave(LeaveReason::Closed),
        }
    }

    /// Reading failed: a deadline passed (the manager tells the client which,
    /// on `Left`), or the connection broke.
    fn read_failed(&self, error: &io::Error) -> LeaveReason {
        if error.kind() == io::ErrorKind::InvalidData {
            // A WebSocket frame refused (the close frame is on its way).
            log::info!("{}: {error}", self.id);
        }
        if !is_timeout(error) {
            return LeaveReason::Failed(error.to_string());
        }
        match self.name {
            None => LeaveReason::NoName,
            Some(_) => LeaveReason::Idle,
        }
    }

    fn on_line(&mut self, line: &str) -> Step {
        if self.name.is_none() && self.lines_read == 0 {
            if let Some(other) = WrongProtocol::from_first_line(line) {
                return Step::Leave(LeaveReason::WrongProtocol(other));
            }
        }
        self.lines_read += 1;
        let command = match protocol::parse(line) {
            Ok(command) => command,
            // Before a name, any command but /help and /quit gets the same
            // answer, whether or not it exists or was typed right.
            Err(ParseError::Usage(_) | ParseError::UnknownCommand(_)) if self.name.is_none() => {
                return self.refuse(format!("choose a name first ({NAME_RULE})"))
            }
            Err(error) => return self.refuse(error.to_string()),
        };
        let id = self.id;
        let registered = self.name.is_some();
        let event = match command {
            Command::Empty => return Step::Continue,
            Command::Quit => return Step::Leave(LeaveReason::Quit),
            Command::Help => Event::Help { id },
            Command::Say(name) if !registered => {
                return self.register(name.trim_matches(protocol::BLANKS))
            }
            _ if !registered => Event::Refused {
                id,
                message: format!("choose a name first ({NAME_RULE})"),
            },
            Command::Say(text) => Event::Chat { id, text },
            Command::Action(text) => Event::Action { id, text },
            Command::Whisper { to, text } => Event::Whisper { id, to, text },
            Command::Nick(new) => return self.rename(new),
            Command::Users => Event::ListUsers { id },
            Command::Join(typed) => match names::validate_room(&typed) {
                Ok(room) => Event::JoinRoom {
                    id,
                    room: room.to_string(),
                },
                Err(error) => return self.refuse(error.to_string()),
            },
            Command::Leave => Event::JoinRoom {
                id,
                room: LOBBY.to_string(),
            },
            Command::Rooms => Event::ListRooms { id },
            Command::Who => Event::ListRoomMembers { id },
            Command::Stats => Event::ShowStats { id },
        };
        self.send(event)
    }

    fn register(&mut self, name: &str) -> Step {
        if let Err(error) = names::validate(name) {
            return self.refuse(error.to_string());
        }
        if let Err(refusal) = self.claim(name) {
            return self.refuse(refusal);
        }
        self.name = Some(name.to_string());
        let step = self.send(Event::Registered {
            id: self.id,
            name: name.to_string(),
        });
        if matches!(step, Step::Leave(_)) {
            // Nobody is left to release it for us.
            self.directory.release(name, self.id);
        }
        step
    }

    fn rename(&mut self, new: String) -> Step {
        let Some(old) = self.name.clone() else {
            return Step::Continue;
        };
        if new == old {
            return self.refuse(format!("you are already called {old}"));
        }
        if let Err(error) = names::validate(&new) {
            return self.refuse(error.to_string());
        }
        if let Err(refusal) = self.claim(&new) {
            return self.refuse(refusal);
        }
        self.name = Some(new.clone());
        // The old name stays claimed until the manager has announced the
        // change; then it releases it.
        self.send(Event::Renamed {
            id: self.id,
            old,
            new,
        })
    }

    /// Claims `name` here, then (with `--redis`) on every server; the
    /// refusal to send back if either says no.
    fn claim(&self, name: &str) -> Result<(), String> {
        let taken = || format!("name \"{name}\" is taken, choose another");
        if self.directory.claim(name, self.id).is_err() {
            return Err(taken());
        }
        let Some(elsewhere) = &self.shared.names_elsewhere else {
            return Ok(());
        };
        let refusal = match elsewhere.claim(name) {
            Ok(()) => return Ok(()),
            Err(ClaimRefused::Taken) => taken(),
            Err(ClaimRefused::Unreachable) => format!(
                "cannot check \"{name}\" with the other servers (Redis is unreachable); try again soon"
            ),
        };
        self.directory.release(name, self.id);
        Err(refusal)
    }

    fn refuse(&self, message: String) -> Step {
        self.send(Event::Refused {
            id: self.id,
            message,
        })
    }

    /// A failed send means the manager is gone: the server is shutting down.
    fn send(&self, event: Event) -> Step {
        match self.events_tx.send(event) {
            Ok(()) => Step::Continue,
            Err(_) => Step::Leave(LeaveReason::ServerClosing),
        }
    }
}
