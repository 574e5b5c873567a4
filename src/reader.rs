//! A client's reader thread: one per connection, started by the acceptor
//! (or, for a browser, the web door's connection thread becomes it). It
//! starts the connection's writer thread, and joins it at the end.
//!
//! It owns the reading side of the socket, through the connection's door
//! (`doors/`; an event stream's door reads the lines its `/say` requests
//! leave in an inbox, and only watches the socket for the peer's close),
//! and the client's flood guard and deadlines. It turns each
//! line into an [`Event`] and sends it to the manager over the shared
//! events channel (`events_tx`); it never writes to a client's queue. It
//! changes two shared things, through their methods: it claims names in the
//! client directory (the `RwLock`), because a claim must be decided the
//! moment it is asked for, and it counts the connection closed in the stats
//! (the `Mutex`). With `--redis` it also claims the name on the other
//! servers, waiting for the answer. Releasing names is the manager's job.
//!
//! When the client goes (`/quit`, end of file, an error, or the writer
//! shutting the socket down), the reader sends `Event::Left`, waits for its
//! writer to finish, and tells its acceptor it is done over `finished_tx`.
//! A panic anywhere in the session is caught here and ends only this
//! connection.

use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::doors::{Decode, Door, Parsed, Request};
use crate::event::{Event, LeaveReason, Named};
use crate::line::{Refusal, Roster};
use crate::logic::line_reader::Incoming;
use crate::logic::names::{self, NAME_RULE};
use crate::logic::protocol::Command;
use crate::logic::rate_limit::{FloodGuard, Verdict};
use crate::logic::rooms::LOBBY;
use crate::outbox::{outbox, ControlSender, Outbox, OutboxReader};
use crate::shared::gauges::Role;
use crate::shared::thread_states::{self, State};
use crate::shared::{ClientDirectory, ClientId, Shared};
use crate::socket::{self, ClientSocket, Hangup, TimedStream, BUSY};
use crate::watch::trace::Trace;
use crate::{platform, writer};

/// What an acceptor hands a new reader thread.
pub(crate) struct ReaderStart {
    pub(crate) id: ClientId,
    pub(crate) peer: SocketAddr,
    pub(crate) socket: Arc<ClientSocket>,
    pub(crate) door: Door,
    /// A name the door claimed already (with [`claim_name`]), to be
    /// registered at once; `None` for a client that will send one.
    pub(crate) named: Option<Named>,
    pub(crate) events_tx: Sender<Event>,
    pub(crate) shared: Arc<Shared>,
    /// Where to say "my connection is over" to the acceptor.
    pub(crate) finished_tx: Sender<ClientId>,
}

pub(crate) fn run(start: ReaderStart) {
    let ReaderStart {
        id,
        peer,
        socket,
        door,
        named,
        events_tx,
        shared,
        finished_tx,
    } = start;
    let _role = shared.gauges.running(Role::Reader);
    let config = &shared.config;
    let hangup = Hangup::new(&socket);
    let (outbox, outbox_reader, control) =
        outbox(config.max_backlog, hangup, config.queue_full_timeout);
    let writer = match start_writer(id, &socket, outbox_reader, &door, &shared) {
        Ok(writer) => writer,
        Err(error) => {
            // No writer, so no client yet: say why straight to the socket,
            // and count the connection as refused, not open.
            log::warn!("cannot start a writer thread for {peer}: {error}; refused it");
            socket::turn_away(socket.stream(), BUSY);
            shared.stats.refuse_opened_connection();
            if let Some(named) = &named {
                shared.clients.release(&named.name, id);
            }
            let _ = finished_tx.send(id);
            return;
        }
    };

    // See `Manager::guarded` for what `catch_unwind` and `AssertUnwindSafe`
    // do.
    let session = panic::catch_unwind(AssertUnwindSafe(|| {
        let client = Client { id, peer, named };
        read_session(client, &socket, outbox, door, control, &events_tx, &shared)
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

fn start_writer(
    id: ClientId,
    socket: &Arc<ClientSocket>,
    outbox_reader: OutboxReader,
    door: &Door,
    shared: &Arc<Shared>,
) -> io::Result<JoinHandle<()>> {
    let socket = socket.clone();
    let shared = shared.clone();
    let ping_after = door.pings().then_some(shared.config.ping_after);
    let encoder = door.encoder();
    thread::Builder::new()
        .name(format!("writer-{}", id.0))
        .stack_size(shared.config.client_stack_bytes)
        .spawn(move || {
            let _role = shared.gauges.running(Role::Writer);
            platform::do_not_preempt_the_waker();
            writer::run(id, socket, outbox_reader, encoder, ping_after)
        })
}

/// Who the reader reads for.
struct Client {
    id: ClientId,
    peer: SocketAddr,
    named: Option<Named>,
}

/// Reads lines until the client goes; returns why it went.
fn read_session(
    client: Client,
    socket: &ClientSocket,
    outbox: Outbox,
    door: Door,
    control: ControlSender,
    events_tx: &Sender<Event>,
    shared: &Shared,
) -> LeaveReason {
    let Client { id, peer, named } = client;
    let name = named.as_ref().map(|named| named.name.clone());
    // First event of every connection, so the manager knows the client
    // before anything else about it arrives.
    let connected = Event::Connected {
        id,
        peer,
        outbox,
        names_on_entry: door.lists_names_on_entry(),
        named: named.map(Box::new),
    };
    if events_tx.send(connected).is_err() {
        if let Some(name) = &name {
            // Nobody is left to release it for us.
            shared.clients.release(name, id);
        }
        return LeaveReason::ServerClosing;
    }
    let config = &shared.config;
    let connected_at = Instant::now();
    let name_deadline = connected_at + config.name_timeout;
    // Named already: the idle deadline, as after a name line.
    let deadline = match name {
        None => Some(name_deadline),
        Some(_) => config.idle_timeout.map(|idle| connected_at + idle),
    };
    // A door whose clients answer pings: silent for twice `--ping-after`
    // (its writer pinged after the first) means gone.
    let silence = door.hears_pongs().then_some(config.ping_after * 2);
    let timed = TimedStream::new(socket, deadline, silence);
    let decoder = door.decoder(&timed, config.max_line, control);
    let mut session = Session::new(id, events_tx, shared, socket, decoder, connected_at);
    session.name = name;
    session.deadline = deadline;
    match session.decoder.wrong_protocol() {
        Ok(Some(other)) => return LeaveReason::WrongProtocol(other),
        Ok(None) => {}
        Err(error) => return session.read_failed(&error),
    }
    loop {
        let incoming = match session.decoder.next_line() {
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
        session.deadline = match session.name {
            None => Some(name_deadline),
            Some(_) => config.idle_timeout.map(|idle| now + idle),
        };
        timed.set_deadline(session.deadline);
    }
}

/// Claims `name` for `id` here, then (with `--redis`) on every server.
/// Readers call it, and a door that must know before its client is one
/// (the curl door).
pub(crate) fn claim_name(shared: &Shared, name: &str, id: ClientId) -> Result<(), NameRefused> {
    let taken = format!("name \"{name}\" is taken, choose another");
    if shared.clients.claim(name, id).is_err() {
        return Err(NameRefused {
            taken: true,
            message: taken,
        });
    }
    let elsewhere = shared.names_elsewhere.as_ref();
    if let Some(Err(message)) = elsewhere.map(|names| names.claim(name)) {
        shared.clients.release(name, id);
        return Err(NameRefused {
            taken: message == taken,
            message,
        });
    }
    Ok(())
}

/// Why [`claim_name`] said no.
#[derive(Debug)]
pub(crate) struct NameRefused {
    /// Someone has it, here or on another server (else the other servers
    /// could not be asked).
    pub(crate) taken: bool,
    /// The `! ` line that says so.
    pub(crate) message: String,
}

/// What to do after a line.
enum Step {
    Continue,
    Leave(LeaveReason),
}

/// One client's state as its reader sees it: its door, its name once it
/// has one, its flood guard and its deadline.
struct Session<'a> {
    id: ClientId,
    events_tx: &'a Sender<Event>,
    directory: &'a ClientDirectory,
    shared: &'a Shared,
    socket: &'a ClientSocket,
    decoder: Box<dyn Decode + 'a>,
    name: Option<String>,
    /// The name or idle deadline now in force.
    deadline: Option<Instant>,
    /// `None` when `--rate-limit off`.
    flood: Option<FloodGuard>,
    /// When the line being handled was read: where a trace starts.
    read_at: Instant,
    /// `/trace` was asked for: the next chat line carries a trace.
    trace_next: bool,
}

impl<'a> Session<'a> {
    fn new(
        id: ClientId,
        events_tx: &'a Sender<Event>,
        shared: &'a Shared,
        socket: &'a ClientSocket,
        decoder: Box<dyn Decode + 'a>,
        now: Instant,
    ) -> Self {
        Session {
            id,
            events_tx,
            directory: &shared.clients,
            shared,
            socket,
            decoder,
            name: None,
            deadline: None,
            flood: (shared.config.rate_limit).map(|limit| FloodGuard::new(limit, now)),
            read_at: now,
            trace_next: false,
        }
    }

    /// What came off the socket, judged by the rate limit first: every line
    /// counts against it, whatever it holds, because a flood of bad lines
    /// costs the server as much as a flood of good ones. Lists (`/users`,
    /// `/rooms`, `/who`, ...) count against a bucket of their own.
    fn on_incoming(&mut self, incoming: Incoming, now: Instant) -> Step {
        let name = self.name.as_deref();
        self.read_at = now;
        let parsed = match incoming {
            Incoming::Line(line) => self.decoder.parse(&line, name),
            // A line cut short by the end of the stream. If the client
            // closed its side, that was its last line; if the server hung
            // up, it was still being typed, and is not ours to post.
            Incoming::Unfinished(_) if self.socket.hung_up_by_server() => return Step::Continue,
            Incoming::Unfinished(line) => self.decoder.parse(&line, name),
            Incoming::End => return Step::Leave(LeaveReason::Closed),
            Incoming::TooLong => self.decoder.too_long(self.shared.config.max_line),
            Incoming::NotUtf8 => {
                Parsed::refused(Refusal::Other, "line is not valid UTF-8".to_string())
            }
        };
        let query = parsed.is_query();
        let verdict = (self.flood.as_mut()).map_or(Verdict::Allow, |flood| flood.check(now, query));
        match verdict {
            // The manager tells the client why, on `Left`.
            Verdict::Disconnect => Step::Leave(LeaveReason::Flooding),
            Verdict::SlowDown => {
                let limit = self.flood.as_ref().map(FloodGuard::limit);
                let limit = limit.map_or_else(String::new, |limit| match query {
                    false => limit.to_string(),
                    true => limit.queries().to_string(),
                });
                self.refuse(Refusal::Other, format!("slow down: at most {limit}"))
            }
            Verdict::Allow => self.on_parsed(parsed),
        }
    }

    /// Reading failed: a deadline passed (the manager tells the client which,
    /// on `Left`), the client fell silent, or the connection broke.
    fn read_failed(&self, error: &io::Error) -> LeaveReason {
        if error.kind() == io::ErrorKind::InvalidData {
            // A door refused what it read (a WebSocket's close frame is on
            // its way).
            log::info!("{}: {error}", self.id);
        }
        if !socket::is_timeout(error) {
            return LeaveReason::Failed(error.to_string());
        }
        let deadline_passed = self.deadline.is_some_and(|d| Instant::now() >= d);
        match (&self.name, deadline_passed) {
            (_, false) => LeaveReason::Unresponsive,
            (None, true) => LeaveReason::NoName,
            (Some(_), true) => LeaveReason::Idle,
        }
    }

    fn on_parsed(&mut self, parsed: Parsed) -> Step {
        match parsed {
            Parsed::WrongProtocol(other) => Step::Leave(LeaveReason::WrongProtocol(other)),
            Parsed::Refused { message, refusal } => self.refuse(refusal, message),
            Parsed::Name(name) => self.register(&name),
            Parsed::Command(command) => self.on_command(command),
            Parsed::Request(request) => self.on_request(request),
            Parsed::Reply(text) => self.send(Event::DoorReply { id: self.id, text }),
            Parsed::Several(all) => {
                for parsed in all {
                    if let Step::Leave(reason) = self.on_parsed(parsed) {
                        return Step::Leave(reason);
                    }
                }
                Step::Continue
            }
        }
    }

    fn on_command(&mut self, command: Command) -> Step {
        let id = self.id;
        let registered = self.name.is_some();
        let event = match command {
            Command::Empty => return Step::Continue,
            Command::Quit => return Step::Leave(LeaveReason::Quit),
            Command::Help => Event::Help { id },
            _ if !registered => return self.name_first(),
            Command::Say(text) => Event::Chat {
                id,
                text,
                room: None,
            },
            Command::Action(text) => Event::Action {
                id,
                text,
                room: None,
            },
            Command::Whisper { to, text } => Event::Whisper { id, to, text },
            Command::Nick(new) => return self.rename(new),
            Command::Users => Event::ListUsers { id },
            Command::Join(typed) => match names::validate_room(&typed) {
                Ok(room) => Event::JoinRoom {
                    id,
                    room: room.to_string(),
                    leaving: None,
                },
                Err(error) => return self.refuse(Refusal::BadRoom(typed), error.to_string()),
            },
            Command::Leave => Event::JoinRoom {
                id,
                room: LOBBY.to_string(),
                leaving: None,
            },
            Command::Rooms => Event::ListRooms { id },
            Command::Who => Event::ListRoomMembers {
                id,
                room: None,
                roster: Roster::Who,
            },
            Command::Stats => Event::ShowStats { id },
            Command::Trace => {
                self.trace_next = true;
                Event::Tracing { id }
            }
        };
        let event = self.traced(event);
        self.send(event)
    }

    /// What a door asks beyond the line protocol's commands: each becomes
    /// the event that asks the manager, once the client has a name.
    fn on_request(&mut self, request: Request) -> Step {
        if self.name.is_none() {
            return self.name_first();
        }
        let id = self.id;
        let event = match request {
            Request::SayIn { room, text, action } => {
                let room = Some(room.strip_prefix('#').unwrap_or(&room).to_string());
                match action {
                    false => Event::Chat { id, text, room },
                    true => Event::Action { id, text, room },
                }
            }
            Request::Part(typed) => match names::validate_room(&typed) {
                Ok(leaving) => Event::JoinRoom {
                    id,
                    room: LOBBY.to_string(),
                    leaving: Some(leaving.to_string()),
                },
                Err(error) => return self.refuse(Refusal::BadRoom(typed), error.to_string()),
            },
            Request::Members { room, roster } => match room.as_deref().map(names::validate_room) {
                Some(Err(error)) => {
                    let typed = room.unwrap_or_default();
                    return self.refuse(Refusal::BadRoom(typed), error.to_string());
                }
                Some(Ok(room)) => Event::ListRoomMembers {
                    id,
                    room: Some(room.to_string()),
                    roster,
                },
                None => Event::ListRoomMembers {
                    id,
                    room: None,
                    roster,
                },
            },
            Request::Query(query) => Event::Query { id, query },
        };
        self.send(event)
    }

    fn name_first(&self) -> Step {
        let message = format!("choose a name first ({NAME_RULE})");
        self.refuse(Refusal::NotRegistered, message)
    }

    fn register(&mut self, name: &str) -> Step {
        if let Err(error) = names::validate(name) {
            return self.refuse(Refusal::BadName(name.to_string()), error.to_string());
        }
        if let Err((refusal, message)) = self.claim(name) {
            return self.refuse(refusal, message);
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
            return self.refuse(Refusal::Other, format!("you are already called {old}"));
        }
        if let Err(error) = names::validate(&new) {
            return self.refuse(Refusal::BadName(new), error.to_string());
        }
        if let Err((refusal, message)) = self.claim(&new) {
            return self.refuse(refusal, message);
        }
        self.name = Some(new.clone());
        // The old name stays claimed until the manager handles this event
        // (docs/ARCHITECTURE.md, invariant 4).
        self.send(Event::Renamed {
            id: self.id,
            old,
            new,
        })
    }

    /// [`claim_name`], with the refusal to send back.
    fn claim(&self, name: &str) -> Result<(), (Refusal, String)> {
        claim_name(self.shared, name, self.id)
            .map_err(|refused| (Refusal::NameTaken(name.to_string()), refused.message))
    }

    fn refuse(&self, refusal: Refusal, message: String) -> Step {
        self.send(Event::Refused {
            id: self.id,
            message,
            refusal,
        })
    }

    /// After `/trace`, the next chat line carries a trace from the time it
    /// was read (`watch/trace.rs`).
    fn traced(&mut self, event: Event) -> Event {
        let (id, text, action, room) = match event {
            Event::Chat { id, text, room } if self.trace_next => (id, text, false, room),
            Event::Action { id, text, room } if self.trace_next => (id, text, true, room),
            event => return event,
        };
        self.trace_next = false;
        let trace = Trace::new(self.read_at);
        Event::Traced {
            id,
            text,
            action,
            room,
            trace,
        }
    }

    /// A failed send means the manager is gone: the server is shutting
    /// down. The board shows the reader waiting while the channel is full.
    fn send(&self, event: Event) -> Step {
        if let Event::Traced { trace, .. } = &event {
            trace.sent();
        }
        let sent = thread_states::blocked(State::Channel, || self.events_tx.send(event));
        match sent {
            Ok(()) => Step::Continue,
            Err(_) => Step::Leave(LeaveReason::ServerClosing),
        }
    }
}
