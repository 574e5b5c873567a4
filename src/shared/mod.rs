//! The state every thread shares, and the only two locks in the server.
//!
//! No thread runs this module. `Server::start` builds one [`Shared`] and
//! gives each long-lived thread, and each client's reader, an `Arc` of it.
//! Inside are three things:
//!
//! - the [`Config`], read-only after start, so it needs no lock;
//! - the [`ClientDirectory`]: which names are taken, behind a
//!   `parking_lot::RwLock` (many threads look names up, few claim them);
//! - the [`Stats`]: the server's counters, behind a `parking_lot::Mutex`;
//! - the [`Gauges`]: atomics for the live view (threads by role, the events
//!   channel's depth), and a `stopping` flag; no lock;
//! - with `--redis`, the [`NamesElsewhere`] through which readers claim
//!   names on every server (a pool of Redis connections whose small lock is
//!   a leaf: held only to take a connection out or put one back).
//!
//! Three layers, as in tokio's mini-redis (`Db` → `Shared` → `State`):
//! `Shared` holds the two types, each type holds its lock, and every method
//! takes the lock, does a few map or counter operations, and lets go before
//! it returns. No guard ever leaves a method, so no caller can hold a lock
//! across socket I/O or a channel send, or take one lock inside the other by
//! accident.
//!
//! # Lock order
//!
//! No thread ever holds both locks. [`Shared::snapshot`] is the one place
//! that needs both, and it reads the directory, lets go, then locks the
//! stats. If a change ever needs both at once, take the **client directory
//! first, then the stats**; docs/ARCHITECTURE.md keeps the same rule.

pub(crate) mod clients;
pub(crate) mod gauges;
pub(crate) mod stats;

pub(crate) use clients::ClientDirectory;
pub(crate) use gauges::Gauges;
pub(crate) use stats::{ManagerView, Stats, StatsSnapshot, Tally};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::event::ClientId;

use crate::config::Config;

/// Names on the other servers (`--redis`): a reader's claim must win there
/// too. Implemented over Redis in `cluster::names`; a trait, so that the
/// reader, which does not know Redis, can ask.
pub(crate) trait NamesElsewhere: Send + Sync {
    /// Claims `name` for this server, or says why not. Blocks the calling
    /// reader thread for at most about a second.
    fn claim(&self, name: &str) -> Result<(), ClaimRefused>;
}

/// Why [`NamesElsewhere::claim`] refused.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum ClaimRefused {
    /// Another server holds the name.
    Taken,
    /// Redis could not be asked: no name can be known to be free.
    Unreachable,
}

/// What every thread may read, behind one `Arc`.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) clients: ClientDirectory,
    pub(crate) stats: Stats,
    /// Lock-free tallies for the live view (threads by role, queue depth).
    pub(crate) gauges: Gauges,
    /// Set when shutdown begins: `/health` answers 503 from then on.
    pub(crate) stopping: AtomicBool,
    /// With `--redis`: where names are claimed across servers.
    pub(crate) names_elsewhere: Option<Box<dyn NamesElsewhere>>,
    /// The last `ClientId` given, by either acceptor.
    last_id: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        Shared {
            config,
            clients: ClientDirectory::default(),
            stats: Stats::new(),
            gauges: Gauges::default(),
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
