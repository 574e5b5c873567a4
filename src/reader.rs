//! A client's reader thread: one per connection, started by the acceptor.
//!
//! It owns the reading side of the socket. It turns each line into an
//! [`Event`] and sends it to the manager over the shared events channel; it
//! never writes to any socket. It writes one thing that is shared: it claims
//! names in the client directory (the `RwLock`), because a claim must be
//! decided the moment it is asked for. Releasing names is the manager's job.
//!
//! When the client goes (`/quit`, end of file, an error, or the writer shutting
//! the socket down), the reader sends `Event::Left`, waits for its writer to
//! finish, and tells the acceptor it is done. A panic anywhere in the session
//! is caught here and ends only this connection.

use std::cell::Cell;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::clients::ClientDirectory;
use crate::event::{ClientId, Event, Hangup, LeaveReason, OutboundLine};
use crate::line_reader::{Incoming, LineReader};
use crate::names::{self, NAME_RULE};
use crate::protocol::{self, Command};
use crate::rate_limit::{FloodGuard, Verdict};
use crate::rooms::LOBBY;
use crate::server::Shared;

/// What the acceptor hands a new reader thread.
pub struct ReaderStart {
    pub id: ClientId,
    pub peer: SocketAddr,
    pub stream: Arc<TcpStream>,
    /// Sending half of this client's queue, passed on to the manager in
    /// `Event::Connected`; the reader itself never sends on it.
    pub outbound: Sender<OutboundLine>,
    pub writer: JoinHandle<()>,
    pub events: Sender<Event>,
    pub shared: Arc<Shared>,
    /// Where to say "my connection is over" to the acceptor.
    pub finished: Sender<ClientId>,
}

pub fn run(start: ReaderStart) {
    let ReaderStart {
        id,
        peer,
        stream,
        outbound,
        writer,
        events,
        shared,
        finished,
    } = start;

    let session = panic::catch_unwind(AssertUnwindSafe(|| {
        read_session(id, peer, &stream, outbound, &events, &shared)
    }));
    let reason = session.unwrap_or_else(|_| {
        log::error!("reader {id} panicked; disconnecting that client");
        LeaveReason::Panicked
    });

    // However the session ended, the same steps. The manager, on `Left`,
    // drops the client's queue, so the writer sends what is queued, shuts the
    // socket down, and exits. (If the manager is gone, the send fails and
    // the queue went with the manager.)
    let _ = events.send(Event::Left { id, reason });
    drop(events);
    if writer.join().is_err() {
        log::error!("writer {id} panicked");
    }
    drop(stream);
    shared.stats.close_connection();
    let _ = finished.send(id);
}

/// Reads lines until the client goes; returns why it went.
fn read_session(
    id: ClientId,
    peer: SocketAddr,
    stream: &Arc<TcpStream>,
    outbound: Sender<OutboundLine>,
    events: &Sender<Event>,
    shared: &Shared,
) -> LeaveReason {
    // First event of every connection, so the manager knows the client
    // before anything else about it arrives.
    let hangup = Hangup::new(stream);
    if events
        .send(Event::Connected {
            id,
            peer,
            outbound,
            hangup,
        })
        .is_err()
    {
        return LeaveReason::ServerClosing;
    }
    let config = &shared.config;
    let connected_at = Instant::now();
    let name_deadline = connected_at + config.name_timeout;
    let timed = TimedStream::new(stream, Some(name_deadline));
    let mut lines = LineReader::new(&timed, config.max_line);
    let mut flood = config
        .rate_limit
        .map(|limit| FloodGuard::new(limit, connected_at));
    let mut session = Session {
        id,
        events,
        directory: &shared.clients,
        name: None,
    };
    loop {
        let incoming = match lines.next_line() {
            Ok(Incoming::End) => return LeaveReason::Closed,
            Ok(incoming) => incoming,
            // The manager tells the client which deadline passed, on `Left`.
            Err(error) if is_timeout(&error) => {
                return match session.name {
                    None => LeaveReason::NoName,
                    Some(_) => LeaveReason::Idle,
                }
            }
            Err(error) => return LeaveReason::Failed(error.to_string()),
        };
        let now = Instant::now();
        // Every line counts against the rate limit, whatever it holds:
        // a flood of bad lines costs the server as much as a flood of good.
        let verdict = flood
            .as_mut()
            .map_or(Verdict::Allow, |flood| flood.check(now));
        let step = match (verdict, incoming) {
            // The manager tells the client why, on `Left`.
            (Verdict::Disconnect, _) => return LeaveReason::Flooding,
            (Verdict::SlowDown, _) => {
                let limit = flood.as_ref().map(FloodGuard::limit);
                let limit = limit.map_or_else(String::new, |limit| limit.to_string());
                session.refuse(format!("slow down: at most {limit}"))
            }
            (Verdict::Allow, Incoming::Line(line)) => session.on_line(&line),
            (Verdict::Allow, Incoming::TooLong) => {
                session.refuse(format!("line too long (max {} bytes)", config.max_line))
            }
            (Verdict::Allow, Incoming::NotUtf8) => {
                session.refuse("line is not valid UTF-8".to_string())
            }
            (Verdict::Allow, Incoming::End) => return LeaveReason::Closed,
        };
        if let Step::Leave(reason) = step {
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

/// One client's state as its reader sees it: just its name, once it has one.
struct Session<'a> {
    id: ClientId,
    events: &'a Sender<Event>,
    directory: &'a ClientDirectory,
    name: Option<String>,
}

impl Session<'_> {
    fn on_line(&mut self, line: &str) -> Step {
        let command = match protocol::parse(line) {
            Ok(command) => command,
            Err(error) => return self.refuse(error.to_string()),
        };
        let id = self.id;
        let registered = self.name.is_some();
        let event = match command {
            Command::Empty => return Step::Continue,
            Command::Quit => return Step::Leave(LeaveReason::Quit),
            Command::Help => Event::Help { id },
            Command::Say(name) if !registered => return self.register(name.trim()),
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
        if self.directory.claim(name, self.id).is_err() {
            return self.refuse(format!("name \"{name}\" is taken, choose another"));
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
        if self.directory.claim(&new, self.id).is_err() {
            return self.refuse(format!("name \"{new}\" is taken, choose another"));
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

    fn refuse(&self, message: String) -> Step {
        self.send(Event::Refused {
            id: self.id,
            message,
        })
    }

    /// A failed send means the manager is gone: the server is shutting down.
    fn send(&self, event: Event) -> Step {
        match self.events.send(event) {
            Ok(()) => Step::Continue,
            Err(_) => Step::Leave(LeaveReason::ServerClosing),
        }
    }
}
