//! The acceptor thread: owns the chat `TcpListener`, accepts connections,
//! and starts each one's reader thread (which starts its writer). The IRC
//! door's `irc-acceptor` thread runs the same code on its own listener,
//! with `Door::Irc`. The web door's acceptor (`web/`) accepts the same way,
//! with [`accept_until_shutdown`], and keeps its connections in the same
//! [`Connections`].
//!
//! It touches the stats lock (to count a connection in, or refuse it when
//! `--max-clients` are open) and nothing else that is shared. It keeps, in a
//! table only it sees, the reader thread of every open connection, so that at
//! shutdown it can wait for them, close the sockets of any that are stuck, and
//! join them all. A reader tells it over the `finished` channel when its
//! connection is over; the acceptor joins that thread the next time it wakes.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::doors::Door;
use crate::event::Event;
use crate::logic::rate_limit::TokenBucket;
use crate::platform;
use crate::reader::{self, ReaderStart};
use crate::shared::thread_states::{self, State};
use crate::shared::{ClientId, Shared};
use crate::shutdown::ShutdownSignal;
use crate::socket::{self, ClientSocket, BUSY, FULL, TOO_FAST_FROM_ADDR, TOO_MANY_FROM_ADDR};

/// After a failed `accept` (out of file descriptors, say), wait this long
/// before trying again, so the error does not become a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) fn run(
    listener: TcpListener,
    door: Door,
    shared: Arc<Shared>,
    events_tx: Sender<Event>,
    shutdown: ShutdownSignal,
) {
    let acceptor = Acceptor {
        shared,
        events_tx,
        door,
    };
    let mut connections = Connections::new(CHAT_ARRIVALS);
    accept_until_shutdown(
        &listener,
        &shutdown,
        &mut connections,
        |stream, peer, connections| acceptor.admit(stream, peer, connections),
    );
    drop(listener);
    // The manager drains events until every sender is gone; ours must not
    // be one of those it waits for while we wait for the readers.
    let Acceptor {
        shared, events_tx, ..
    } = acceptor;
    drop(events_tx);
    connections.close_all(shared.config.shutdown_grace);
}

/// Accepts connections until shutdown, giving each to `admit`, and joins
/// the threads of connections that have finished each time it wakes.
pub(crate) fn accept_until_shutdown(
    listener: &TcpListener,
    shutdown: &ShutdownSignal,
    connections: &mut Connections,
    mut admit: impl FnMut(TcpStream, SocketAddr, &mut Connections),
) {
    // Failed accepts in a row. Running out of file descriptors fails every
    // accept until a connection closes: one warning per episode, not ten a
    // second.
    let mut failing = 0u64;
    let who = thread::current().name().unwrap_or("acceptor").to_string();
    loop {
        let accepted = thread_states::blocked(State::Accept, || listener.accept());
        // `ServerHandle` wakes us with a connection of its own after it has
        // fired the signal, so the signal is checked before the result.
        if shutdown.has_fired() {
            return;
        }
        connections.join_finished();
        match accepted {
            Ok((stream, peer)) => {
                if failing > 0 {
                    log::info!("{who}: accepting again after {failing} failed accepts");
                    failing = 0;
                }
                admit(stream, peer, connections);
            }
            Err(error) => {
                failing += 1;
                if failing == 1 {
                    log::warn!(
                        "{who}: accept failed: {error}; retrying every {ACCEPT_BACKOFF:?} until it works"
                    );
                } else {
                    log::debug!("{who}: accept failed again: {error}");
                }
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// What the acceptor thread keeps between connections.
struct Acceptor {
    shared: Arc<Shared>,
    /// Cloned into each reader.
    events_tx: Sender<Event>,
    /// How this listener's clients speak.
    door: Door,
}

impl Acceptor {
    /// A new connection: counted in and given its threads, or turned away
    /// with one line saying why.
    fn admit(&self, stream: TcpStream, peer: SocketAddr, connections: &mut Connections) {
        let id = self.shared.new_client_id();
        let stats = &self.shared.stats;
        let max = self.shared.config.max_per_addr;
        if let Err(too_many) = connections.per_addr.admits(peer.ip(), max) {
            stats.refuse_connection();
            socket::turn_away(&stream, too_many.reason());
            return;
        }
        if !stats.try_open_connection(self.shared.config.max_clients) {
            log::warn!("server full: refused {peer}");
            socket::turn_away(&stream, FULL);
            return;
        }
        let socket = Arc::new(ClientSocket::new(stream));
        match self.start_reader(id, peer, &socket, connections) {
            Ok(reader) => connections.insert(id, peer.ip(), reader, &socket),
            Err(error) => {
                // Out of threads or memory (`pid_max` is shared by the
                // whole machine): this one connection is turned away, and
                // the server goes on.
                log::warn!("cannot start a reader thread for {peer}: {error}; refused it");
                socket::turn_away(socket.stream(), BUSY);
                stats.refuse_opened_connection();
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }

    /// Sets the socket up and starts the connection's reader thread. If the
    /// thread cannot be created, its closure is dropped unrun and the
    /// socket is still ours (through `socket`) to say why on.
    fn start_reader(
        &self,
        id: ClientId,
        peer: SocketAddr,
        socket: &Arc<ClientSocket>,
        connections: &Connections,
    ) -> io::Result<JoinHandle<()>> {
        prepare_client_socket(socket.stream(), &self.shared)?;
        let start = ReaderStart {
            id,
            peer,
            socket: socket.clone(),
            door: self.door,
            events_tx: self.events_tx.clone(),
            shared: self.shared.clone(),
            finished_tx: connections.finished_tx.clone(),
        };
        thread::Builder::new()
            .name(format!("reader-{}", id.0))
            .stack_size(self.shared.config.client_stack_bytes)
            .spawn(move || reader::run(start))
    }
}

/// The socket options every client connection gets, whatever its door.
pub(crate) fn prepare_client_socket(stream: &TcpStream, shared: &Shared) -> io::Result<()> {
    // The writer already gathers queued lines into one write; Nagle's
    // algorithm would only add delay on top.
    stream.set_nodelay(true)?;
    // A client that stops reading fills its socket buffer; this bounds how
    // long its writer can then be stuck in one write.
    stream.set_write_timeout(Some(shared.config.write_timeout))?;
    // A peer that vanished without closing is noticed within minutes.
    platform::set_keepalive(stream)
}

/// A connection as the acceptor sees it: the reader thread to join (the
/// reader joins its own writer), and a weak reference to the socket, to force
/// it closed at shutdown without keeping it open until then.
pub(crate) struct Connection {
    reader: JoinHandle<()>,
    socket: Weak<ClientSocket>,
    ip: IpAddr,
}

/// The open connections one acceptor started, for joining them: used by
/// this acceptor and by the web door's (`web/mod.rs`).
pub(crate) struct Connections {
    open: HashMap<ClientId, Connection>,
    pub(crate) per_addr: PerAddr,
    /// Cloned into each connection's thread, which sends its id when done.
    pub(crate) finished_tx: Sender<ClientId>,
    finished_rx: Receiver<ClientId>,
}

impl Connections {
    pub(crate) fn new(arrivals: ArrivalRate) -> Self {
        // Unbounded so that a reader's last act never blocks; it holds at
        // most one id per connection that ended since the acceptor last woke.
        let (finished_tx, finished_rx) = unbounded();
        Connections {
            open: HashMap::new(),
            per_addr: PerAddr::new(arrivals),
            finished_tx,
            finished_rx,
        }
    }

    pub(crate) fn insert(
        &mut self,
        id: ClientId,
        ip: IpAddr,
        reader: JoinHandle<()>,
        socket: &Arc<ClientSocket>,
    ) {
        let socket = Arc::downgrade(socket);
        self.per_addr.opened(ip);
        self.open.insert(id, Connection { reader, socket, ip });
    }

    /// Joins the readers that said they are done. Their threads have
    /// already exited (or are about to), so this does not wait.
    pub(crate) fn join_finished(&mut self) {
        while let Ok(id) = self.finished_rx.try_recv() {
            self.join(id);
        }
    }

    fn join(&mut self, id: ClientId) {
        if let Some(connection) = self.open.remove(&id) {
            self.per_addr.closed(connection.ip);
            if connection.reader.join().is_err() {
                log::error!("reader {id} panicked outside its guard");
            }
        }
    }

    /// At shutdown: waits up to `grace` for every connection to end on its
    /// own (the manager has queued each a goodbye and closed its queue), then
    /// shuts down the sockets of the rest, which wakes their threads, and
    /// joins everything.
    pub(crate) fn close_all(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while !self.open.is_empty() {
            match self.finished_rx.recv_deadline(deadline) {
                Ok(id) => self.join(id),
                Err(_) => break,
            }
        }
        if !self.open.is_empty() {
            log::warn!(
                "{} connections still open {grace:?} after shutdown began; closing them",
                self.open.len()
            );
            for connection in self.open.values() {
                if let Some(socket) = connection.socket.upgrade() {
                    socket.hang_up();
                }
            }
        }
        let ids: Vec<ClientId> = self.open.keys().copied().collect();
        for id in ids {
            self.join(id);
        }
    }
}

/// How fast one address may open connections: a burst of `burst`, then
/// `burst` per `per` (docs/PROTOCOL.md, "Limits").
#[derive(Clone, Copy, Debug)]
pub(crate) struct ArrivalRate {
    pub(crate) burst: u32,
    pub(crate) per: Duration,
}

/// The chat port: a class of 60 arriving at once, then 16 a second.
pub(crate) const CHAT_ARRIVALS: ArrivalRate = ArrivalRate {
    burst: 64,
    per: Duration::from_secs(4),
};

/// The key an address is counted under: itself for IPv4, its /64 for
/// IPv6, since one machine is usually given a whole /64 and can pick any
/// address in it. An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is
/// the IPv4 address.
pub(crate) fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// Why [`PerAddr::admits`] said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TooMany {
    /// `--max-per-addr` connections are open from the address.
    Open,
    /// The address opened connections faster than its [`ArrivalRate`].
    TooFast,
}

impl TooMany {
    /// The `! ` line (or the 503's sentence) that says so.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            TooMany::Open => TOO_MANY_FROM_ADDR,
            TooMany::TooFast => TOO_FAST_FROM_ADDR,
        }
    }
}

/// Open connections and arrivals per address (by [`addr_key`]), for
/// `--max-per-addr` and the [`ArrivalRate`]. Counted by its acceptor
/// alone: up when a connection is let in, down when its thread is joined.
pub(crate) struct PerAddr {
    open: HashMap<IpAddr, usize>,
    arrivals: HashMap<IpAddr, TokenBucket>,
    rate: ArrivalRate,
    /// Refusals not yet logged, and when the last warning was, per address:
    /// one line, then a count at most once a minute, however long a flood
    /// goes on (the count used to start again at every close).
    refusals: HashMap<IpAddr, (u64, Instant)>,
}

/// At most one warning per address this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl PerAddr {
    fn new(rate: ArrivalRate) -> Self {
        PerAddr {
            open: HashMap::new(),
            arrivals: HashMap::new(),
            rate,
            refusals: HashMap::new(),
        }
    }

    /// Whether one more connection from `ip` is allowed now, with at most
    /// `max` open from it; 0, as `--max-per-addr 0`, turns every limit per
    /// address off, the arrival rate too. A refusal is counted and logged,
    /// at most once a minute per address.
    pub(crate) fn admits(&mut self, ip: IpAddr, max: usize) -> Result<(), TooMany> {
        if max == 0 {
            return Ok(());
        }
        let (key, now) = (addr_key(ip), Instant::now());
        let ArrivalRate { burst, per } = self.rate;
        let arrivals = self
            .arrivals
            .entry(key)
            .or_insert_with(|| TokenBucket::full(burst, per, now));
        let refused = if !arrivals.try_take(now) {
            TooMany::TooFast
        } else if self.open.get(&key).copied().unwrap_or(0) >= max {
            TooMany::Open
        } else {
            return Ok(());
        };
        self.count_refusal(key, refused, max, now);
        if self.arrivals.len() > 4096 {
            self.arrivals.retain(|_, bucket| !bucket.is_full(now));
        }
        Err(refused)
    }

    fn count_refusal(&mut self, key: IpAddr, refused: TooMany, max: usize, now: Instant) {
        let never = now.checked_sub(WARN_EVERY * 2).unwrap_or(now);
        let (count, warned_at) = self.refusals.entry(key).or_insert((0, never));
        *count += 1;
        if now.saturating_duration_since(*warned_at) < WARN_EVERY && *warned_at != never {
            return;
        }
        let why = match refused {
            TooMany::Open => format!("has {max} connections open (--max-per-addr)"),
            TooMany::TooFast => "opens connections too fast".to_string(),
        };
        log::warn!("{key} {why}: refused {count} connections from it in the last minute");
        (*count, *warned_at) = (0, now);
        if self.refusals.len() > 4096 {
            self.refusals
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < WARN_EVERY);
        }
    }

    fn opened(&mut self, ip: IpAddr) {
        *self.open.entry(addr_key(ip)).or_insert(0) += 1;
    }

    fn closed(&mut self, ip: IpAddr) {
        let key = addr_key(ip);
        let Some(open) = self.open.get_mut(&key) else {
            return;
        };
        *open -= 1;
        if *open == 0 {
            self.open.remove(&key);
        }
    }
}
