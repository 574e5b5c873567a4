//! The state every thread shares, and the core's only two shared locks.
//!
//! No thread runs this module. `Server::start` builds one [`Shared`] and
//! gives each long-lived thread, and each client's reader, an `Arc` of it.
//! Inside:
//!
//! - the [`Config`], read-only after start, so it needs no lock;
//! - the [`ClientDirectory`]: which names are taken, behind a
//!   `parking_lot::RwLock` (many threads look names up, few claim them);
//! - the [`Stats`]: the server's counters, behind a `parking_lot::Mutex`;
//! - the [`Gauges`]: atomics for the live view and `/metrics` (threads by
//!   role, the events channel's depth, the fan-out histogram, the thread
//!   board, `watch/board.rs`), and the `stopping` flag; no lock;
//! - the [`History`]: the last five minutes, a sample a second, for the
//!   page's chart (`watch/samples.rs`); written by the monitor only;
//! - the counter that numbers connections ([`ClientId`]);
//! - with `--redis`, the [`NamesElsewhere`] through which readers claim
//!   names on every server.
//!
//! How the locks are used (three layers, no guard leaves a method, the lock
//! order) is docs/ARCHITECTURE.md's invariant 3.

pub(crate) mod clients;
pub(crate) mod gauges;
pub(crate) mod stats;
pub(crate) mod thread_states;

pub(crate) use clients::ClientDirectory;
pub(crate) use gauges::Gauges;
pub(crate) use stats::{ManagerView, Stats, StatsSnapshot, Tally};

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::config::Config;
use crate::watch::samples::History;

/// A connection's number, given by an acceptor in order of arrival and
/// never reused while the server runs. Names change (`/nick`); ids do not,
/// so every table the manager keeps is indexed by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ClientId(pub(crate) u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Names on the other servers (`--redis`): a reader's claim must win there
/// too. Implemented over Redis in `cluster::names`; a trait, so that the
/// reader, which does not know Redis, can ask.
pub(crate) trait NamesElsewhere: Send + Sync {
    /// Claims `name` for this server, or gives the `! ` line saying why
    /// not. Blocks the calling reader for at most about a second.
    fn claim(&self, name: &str) -> Result<(), String>;
}

/// What every thread may read, behind one `Arc`.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) clients: ClientDirectory,
    pub(crate) stats: Stats,
    pub(crate) gauges: Gauges,
    /// The last minutes, a sample a second (the monitor writes it).
    pub(crate) history: History,
    /// Set when shutdown begins: `/health` answers 503 from then on.
    pub(crate) stopping: AtomicBool,
    /// With `--redis`: where names are claimed across servers.
    pub(crate) names_elsewhere: Option<Box<dyn NamesElsewhere>>,
    /// The last `ClientId` given, by any acceptor.
    last_id: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        let gauges = Gauges::for_clients(config.max_clients);
        Shared {
            config,
            clients: ClientDirectory::default(),
            stats: Stats::new(),
            gauges,
            history: History::default(),
            stopping: AtomicBool::new(false),
            names_elsewhere: None,
            last_id: AtomicU64::new(0),
        }
    }

    /// A new connection's id, in order of arrival, never reused.
    pub(crate) fn new_client_id(&self) -> ClientId {
        ClientId(self.last_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// The stats with the number of registered clients filled in. Reads the
    /// directory, lets go, then locks the stats: never both at once.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let online = self.clients.len();
        self.stats.snapshot(online)
    }
}
