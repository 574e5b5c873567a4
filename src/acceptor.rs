//! The acceptor thread: owns the chat `TcpListener`, accepts connections,
//! and starts each one's reader thread (which starts its writer). The web
//! door's acceptor (`web/`) accepts the same way, with [`accept_until_shutdown`],
//! and keeps its connections in the same [`Connections`].
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
use crate::platform;
use crate::reader::{self, ReaderStart};
use crate::shared::{ClientId, Shared};
use crate::shutdown::ShutdownSignal;
use crate::socket::{self, ClientSocket, BUSY, FULL, TOO_MANY_FROM_ADDR};

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
    let mut connections = Connections::new();
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
        let accepted = listener.accept();
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
        if !connections
            .per_addr
            .admits(peer.ip(), self.shared.config.max_per_addr)
        {
            stats.refuse_connection();
            socket::turn_away(&stream, TOO_MANY_FROM_ADDR);
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
    pub(crate) fn new() -> Self {
        // Unbounded so that a reader's last act never blocks; it holds at
        // most one id per connection that ended since the acceptor last woke.
        let (finished_tx, finished_rx) = unbounded();
        Connections {
            open: HashMap::new(),
            per_addr: PerAddr::default(),
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

/// Open connections per IP address, for `--max-per-addr`. Counted by the
/// acceptor alone: up when a connection is let in, down when its reader is
/// joined.
#[derive(Default)]
pub(crate) struct PerAddr {
    open: HashMap<IpAddr, usize>,
    /// Refusals since each capped address last dropped below the cap: one
    /// warning per episode, not one per connection of a flood.
    refused: HashMap<IpAddr, u64>,
}

impl PerAddr {
    /// Whether one more connection from `ip` is allowed; `max` 0 for no
    /// limit. A refusal is counted and, the first time, logged.
    pub(crate) fn admits(&mut self, ip: IpAddr, max: usize) -> bool {
        if max == 0 || self.open.get(&ip).copied().unwrap_or(0) < max {
            return true;
        }
        let refused = self.refused.entry(ip).or_insert(0);
        *refused += 1;
        if *refused == 1 {
            log::warn!("{ip} has {max} connections open (--max-per-addr); refusing more from it");
        }
        false
    }

    fn opened(&mut self, ip: IpAddr) {
        *self.open.entry(ip).or_insert(0) += 1;
    }

    fn closed(&mut self, ip: IpAddr) {
        let Some(open) = self.open.get_mut(&ip) else {
            return;
        };
        *open -= 1;
        if *open == 0 {
            self.open.remove(&ip);
        }
        if let Some(refused) = self.refused.remove(&ip) {
            log::info!("{ip}: {refused} connections were refused while it was at --max-per-addr");
        }
    }
}
