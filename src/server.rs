//! Starting and stopping the server. Runs on the caller's thread (`main`, or a
//! test): [`Server::start`] binds the listener, builds the shared state and
//! the channels, and starts the three long-lived threads; [`ServerHandle`]
//! stops them and joins them.
//!
//! From here, each thread's code is one click away:
//! [`acceptor`](crate::acceptor), [`manager`](crate::manager),
//! [`monitor`](crate::monitor), and per client [`reader`](crate::reader) and
//! [`writer`](crate::writer). docs/ARCHITECTURE.md draws the same map.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};

use crate::clients::ClientDirectory;
use crate::config::Config;
use crate::stats::{Stats, StatsSnapshot};
use crate::{acceptor, manager, monitor, os_limits};

/// Capacity of the channel from all readers to the manager. When the manager
/// falls behind, readers block on `send`, stop reading their sockets, and TCP
/// flow control slows the clients down: backpressure instead of a queue that
/// grows without bound.
pub const EVENT_QUEUE_CAPACITY: usize = 4096;

/// What every thread may read, behind one `Arc`. The two locks are inside
/// `clients` (an `RwLock`) and `stats` (a `Mutex`); see their modules.
pub struct Shared {
    pub config: Config,
    pub clients: ClientDirectory,
    pub stats: Stats,
}

impl Shared {
    /// The stats with the number of registered clients filled in. Reads the
    /// directory, lets go, then locks the stats: never both at once.
    pub fn snapshot(&self) -> StatsSnapshot {
        let online = self.clients.len();
        self.stats.snapshot(online)
    }
}

pub struct Server;

impl Server {
    /// Binds `config.addr` and starts the acceptor, manager and monitor
    /// threads. Returns once the server is accepting connections; the only
    /// error is failing to bind (or, rarely, to spawn a thread).
    pub fn start(mut config: Config) -> io::Result<ServerHandle> {
        let (max_map_count, pid_max) = os_limits::read();
        if let Some((allowed, limit)) = os_limits::clients_allowed(max_map_count, pid_max) {
            if config.max_clients > allowed {
                log::warn!(
                    "--max-clients {} is more than this machine's {limit} allows \
                     (each client takes two threads and eight memory mappings); \
                     serving at most {allowed} clients",
                    config.max_clients
                );
                config.max_clients = allowed;
            }
        }
        let listener = TcpListener::bind(&config.addr)?;
        let local_addr = listener.local_addr()?;
        log::info!("listening on {local_addr}");

        let shared = Arc::new(Shared {
            config,
            clients: ClientDirectory::default(),
            stats: Stats::new(),
        });
        // Nothing is ever sent on `shutdown`: dropping its only Sender
        // disconnects it, which every receiver sees at once. One drop, many
        // threads told.
        let (shutdown_signal, shutdown) = bounded::<()>(0);
        let (events_in, events) = bounded(EVENT_QUEUE_CAPACITY);

        let mut handle = ServerHandle {
            local_addr,
            shared: shared.clone(),
            shutdown_signal: Some(shutdown_signal),
            manager: None,
            acceptor: None,
            monitor: None,
        };
        // If a spawn fails, dropping `handle` stops what did start.
        handle.manager = Some(spawn_named("manager", {
            let (shared, shutdown) = (shared.clone(), shutdown.clone());
            move || manager::run(shared, events, shutdown)
        })?);
        handle.monitor = Some(spawn_named("monitor", {
            let (shared, shutdown) = (shared.clone(), shutdown.clone());
            move || monitor::run(shared, shutdown)
        })?);
        handle.acceptor = Some(spawn_named("acceptor", move || {
            acceptor::run(listener, shared, events_in, shutdown)
        })?);
        Ok(handle)
    }
}

fn spawn_named<F>(name: &str, body: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    thread::Builder::new().name(name.to_string()).spawn(body)
}

/// A running server. Dropping it shuts the server down, as [`shutdown`]
/// does.
///
/// [`shutdown`]: ServerHandle::shutdown
pub struct ServerHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_signal: Option<Sender<()>>,
    manager: Option<JoinHandle<()>>,
    acceptor: Option<JoinHandle<()>>,
    monitor: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on, with port 0 resolved.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.snapshot()
    }

    /// Registered names, sorted ignoring case.
    pub fn online(&self) -> Vec<String> {
        self.shared.clients.names()
    }

    /// Stops the server: stops accepting, tells every client
    /// `* server shutting down`, gives writers `shutdown_grace` to flush,
    /// closes every socket, and returns only when every thread the server
    /// started has been joined.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(signal) = self.shutdown_signal.take() else {
            return;
        };
        log::info!("shutting down");
        drop(signal);
        // The acceptor is blocked in accept(); a connection wakes it, and it
        // checks the shutdown signal before looking at what it accepted.
        wake_acceptor(self.local_addr);
        // The manager first: it queues the goodbye to every client and
        // drops their queues, which is what lets writers finish. Then the
        // acceptor, which waits for every connection's threads.
        for (name, thread) in [
            ("manager", self.manager.take()),
            ("acceptor", self.acceptor.take()),
            ("monitor", self.monitor.take()),
        ] {
            if let Some(thread) = thread {
                if thread.join().is_err() {
                    log::error!("the {name} thread had panicked");
                }
            }
        }
        log::info!("stopped; final stats: {}", self.shared.snapshot());
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

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
