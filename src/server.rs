//! Starting and stopping the server. Runs on the caller's thread (`main`, or
//! a test): [`Server::start`] binds the listeners, builds the shared state and
//! the channels, and starts the three long-lived threads (and, with `--irc`,
//! the IRC door's acceptor, the chat acceptor's code on a second listener);
//! [`ServerHandle`]
//! stops them and joins them, in the order written in
//! [`ServerHandle::shutdown`].
//!
//! From here each thread's code is one click away: the
//! [`manager`], the [`acceptor`] (which
//! starts each client's [`reader`](crate::reader), which starts its
//! [`writer`](crate::writer)), and the [`monitor`]. The optional parts
//! start here too, each in one place: the web door (`--http`) and the
//! cluster (`--redis`). docs/ARCHITECTURE.md draws the same map.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::config::Config;
use crate::doors::Door;
use crate::event::Event;
use crate::manager::Alone;
use crate::shared::{Shared, StatsSnapshot};
use crate::shutdown::{self, ShutdownSignal, ShutdownTrigger};
use crate::{acceptor, cluster, manager, monitor, os_limits, platform, web};

/// Capacity of the channel from all readers to the manager. When the manager
/// falls behind, readers block on `send`, stop reading their sockets, and TCP
/// flow control slows the clients down: backpressure instead of a queue that
/// grows without bound.
pub(crate) const EVENT_QUEUE_CAPACITY: usize = 4096;

/// Starts a server; see [`Server::start`].
pub struct Server;

impl Server {
    /// Binds `config.addr` and starts the manager, acceptor and monitor
    /// threads. Returns once the server is accepting connections.
    pub fn start(mut config: Config) -> Result<ServerHandle, StartError> {
        os_limits::fit_max_clients(&mut config);
        platform::say_what_is_not_set();
        let (listener, local_addr) = bind(&config.addr)?;
        let web_listener = config.http.as_deref().map(bind).transpose()?;
        let irc_listener = config.irc.as_deref().map(bind).transpose()?;
        log::info!("listening on {local_addr}");
        if let Some((_, web_addr)) = &web_listener {
            log::info!("web page at http://{web_addr}/");
        }
        if let Some((_, irc_addr)) = &irc_listener {
            log::info!("IRC door at {irc_addr}");
        }

        let cluster = cluster::start::prepare(&config).map_err(StartError::Redis)?;
        let mut shared = Shared::new(config);
        shared.names_elsewhere = cluster.as_ref().map(|c| c.names(&shared.config));
        let shared = Arc::new(shared);
        let (shutdown_trigger, shutdown_signal) = shutdown::channel();
        let (events_tx, events_rx) = bounded(EVENT_QUEUE_CAPACITY);
        let mut handle = ServerHandle {
            local_addr,
            web_addr: web_listener.as_ref().map(|(_, addr)| *addr),
            irc_addr: irc_listener.as_ref().map(|(_, addr)| *addr),
            shared: shared.clone(),
            shutdown_trigger: Some(shutdown_trigger),
            threads: Vec::new(),
        };
        let parts = Parts {
            listener,
            web_listener: web_listener.map(|(listener, _)| listener),
            irc_listener: irc_listener.map(|(listener, _)| listener),
            shared,
            events_tx,
            events_rx,
            shutdown_signal,
            cluster,
        };
        // If a thread cannot be started, `start_threads` has returned, so
        // every channel end and the listener it was given are dropped: the
        // threads that did start see their channels close. Only then does
        // dropping `handle` stop and join them.
        handle.start_threads(parts)?;
        Ok(handle)
    }
}

/// Binds `addr` and lets the kernel queue up to `SOMAXCONN` connections
/// that are not yet accepted, not std's 128, so that a storm of connections
/// waits in the kernel rather than losing SYNs.
fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    if let Err(error) = platform::widen_listen_backlog(&listener) {
        // Not fatal: the server works with std's 128, only storms suffer.
        log::warn!("cannot widen the listen backlog of {addr}: {error}");
    }
    let local_addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local_addr))
}

/// What the long-lived threads are made of, handed to them one by one.
struct Parts {
    listener: TcpListener,
    web_listener: Option<TcpListener>,
    irc_listener: Option<TcpListener>,
    shared: Arc<Shared>,
    events_tx: Sender<Event>,
    events_rx: Receiver<Event>,
    shutdown_signal: ShutdownSignal,
    cluster: Option<cluster::start::Prepared>,
}

/// Why [`Server::start`] failed.
#[derive(Debug)]
pub enum StartError {
    /// The address could not be bound (in use, not on this machine, ...).
    Bind { addr: String, source: io::Error },
    /// One of the long-lived threads could not be created.
    Spawn {
        thread: &'static str,
        source: io::Error,
    },
    /// `--redis` was given, but its URL cannot be used, or this build has
    /// no Redis support (the `redis` cargo feature).
    Redis(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind { addr, source } => {
                write!(f, "cannot listen on {addr}: {}", short_reason(source))
            }
            StartError::Spawn { thread, source } => {
                write!(f, "cannot start the {thread} thread: {source}")
            }
            StartError::Redis(reason) => write!(f, "--redis: {reason}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The short words for the errors people meet when binding.
fn short_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "address in use".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::AddrNotAvailable => "address not available on this machine".to_string(),
        _ => error.to_string(),
    }
}

/// A running server. Dropping it shuts the server down, as
/// [`shutdown`](ServerHandle::shutdown) does.
pub struct ServerHandle {
    local_addr: SocketAddr,
    web_addr: Option<SocketAddr>,
    irc_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    /// `None` once shutdown has begun.
    shutdown_trigger: Option<ShutdownTrigger>,
    /// In the order they were started, which is the order they are joined.
    threads: Vec<ServerThread>,
}

/// One long-lived thread, by name, for joining and for the log.
struct ServerThread {
    name: &'static str,
    handle: JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on, with port 0 resolved.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the web door listens (`--http`), with port 0 resolved.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web_addr
    }

    /// Where the IRC door listens (`--irc`), with port 0 resolved.
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.irc_addr
    }

    /// The server's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.snapshot()
    }

    /// Registered names, sorted ignoring case.
    pub fn online(&self) -> Vec<String> {
        self.shared.clients.names()
    }

    /// Stops the server and returns when every thread it started has been
    /// joined. The steps, in order:
    ///
    /// 1. The shutdown signal fires; the manager, the monitor and every
    ///    acceptor see it.
    /// 2. One connection to each of our own listeners wakes its acceptor
    ///    from `accept()`; it checks the signal, closes the listener and
    ///    drops its events sender. (`/health` on a connection already open
    ///    answers 503 from step 1 on.)
    /// 3. The manager is joined. It queues `* server shutting down` to every
    ///    client and drops every client's queue, so each writer flushes,
    ///    shuts its socket down (waking its reader) and exits. Then it keeps
    ///    draining events until every reader has sent its last.
    /// 4. The web door's acceptor, the IRC door's, then the chat acceptor,
    ///    are joined. Each waits up to `shutdown_grace` for its connections
    ///    to finish, shuts down the sockets of any that have not, and joins
    ///    their threads (each reader has joined its writer).
    /// 5. The monitor is joined, and the final stats are logged.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Starts the long-lived threads in the order they are joined at
    /// shutdown: manager, then (with `--redis`) the `redis-publisher` and
    /// `redis-subscriber`, the web door's acceptor (if `--http`), the IRC
    /// door's (if `--irc`), the chat acceptor, the monitor.
    fn start_threads(&mut self, parts: Parts) -> Result<(), StartError> {
        let Parts {
            listener,
            web_listener,
            irc_listener,
            shared,
            events_tx,
            events_rx,
            shutdown_signal,
            cluster,
        } = parts;
        let (for_manager, shutdown) = (shared.clone(), shutdown_signal.clone());
        match cluster {
            None => self.spawn("manager", move || {
                manager::run(for_manager, events_rx, Alone, shutdown)
            })?,
            Some(cluster) => {
                let (relay, redis_threads) = cluster.split(&shared, &shutdown_signal);
                self.spawn("manager", move || {
                    manager::run(for_manager, events_rx, relay, shutdown)
                })?;
                // After the manager, before the acceptors: the publisher
                // finishes once the manager has let go of its queue (with a
                // goodbye in it).
                for (name, body) in redis_threads {
                    self.spawn(name, body)?;
                }
            }
        }
        if let Some(web_listener) = web_listener {
            self.spawn("http-acceptor", {
                let (shared, shutdown) = (shared.clone(), shutdown_signal.clone());
                let events_tx = events_tx.clone();
                move || web::run(web_listener, shared, events_tx, shutdown)
            })?;
        }
        if let Some(irc_listener) = irc_listener {
            // The chat acceptor's code, with IRC's door: an IRC client is
            // a client like any other.
            self.spawn("irc-acceptor", {
                let (shared, shutdown) = (shared.clone(), shutdown_signal.clone());
                let events_tx = events_tx.clone();
                move || acceptor::run(irc_listener, Door::Irc, shared, events_tx, shutdown)
            })?;
        }
        self.spawn("acceptor", {
            let (shared, shutdown) = (shared.clone(), shutdown_signal.clone());
            move || acceptor::run(listener, Door::Lines, shared, events_tx, shutdown)
        })?;
        self.spawn("monitor", move || monitor::run(shared, shutdown_signal))
    }

    fn spawn<F>(&mut self, name: &'static str, body: F) -> Result<(), StartError>
    where
        F: FnOnce() + Send + 'static,
    {
        // If the thread cannot be created, `body` is dropped unrun, and with
        // it whatever it owned. Each thread is on the thread board by name.
        let seat = self.shared.gauges.board.seat(name);
        let handle = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _on_board = seat.sit();
                body()
            })
            .map_err(|source| StartError::Spawn {
                thread: name,
                source,
            })?;
        self.threads.push(ServerThread { name, handle });
        Ok(())
    }

    // ASSIGNMENT a3: begin: run shutdown's steps in order; return once every thread is joined
    /// The steps listed on [`shutdown`](ServerHandle::shutdown). Runs once;
    /// `Drop` calls it too.
    fn stop(&mut self) {
        let Some(trigger) = self.shutdown_trigger.take() else {
            return;
        };
        log::info!("shutting down");
        // From here `/health` answers 503, to connections already open.
        self.shared.stopping.store(true, Ordering::SeqCst);
        trigger.fire();
        for (name, addr) in [
            ("acceptor", Some(self.local_addr)),
            ("http-acceptor", self.web_addr),
            ("irc-acceptor", self.irc_addr),
        ] {
            if let Some(addr) = addr.filter(|_| self.threads.iter().any(|t| t.name == name)) {
                wake_acceptor(addr);
            }
        }
        for ServerThread { name, handle } in self.threads.drain(..) {
            if handle.join().is_err() {
                log::error!("the {name} thread had panicked");
            }
        }
        log::info!("stopped; final stats: {}", self.shared.snapshot());
    }
    // ASSIGNMENT a3: end
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The acceptor is blocked in `accept()`, which nothing in std can
/// interrupt; a connection of our own ends the wait.
fn wake_acceptor(listening_on: SocketAddr) {
    let mut target = listening_on;
    if target.ip().is_unspecified() {
        // Listening on 0.0.0.0 or [::]: loopback of the same family reaches it.
        target.set_ip(match target {
            SocketAddr::V4(_) => [127, 0, 0, 1].into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    // One connection in the backlog is enough. It can fail when the process
    // is out of file descriptors; the acceptor is then in its back-off and
    // sees the signal when that ends, so a few tries are all we need.
    for _ in 0..10 {
        match TcpStream::connect_timeout(&target, Duration::from_millis(500)) {
            Ok(_) => return,
            Err(error) => {
                log::debug!("waking the acceptor: {error}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
    log::warn!("could not connect to {target} to wake the acceptor; it stops after its back-off");
}
