//! The state every thread shares, and the only two locks in the server.
//!
//! No thread runs this module. `Server::start` builds one [`Shared`] and
//! gives each long-lived thread, and each client's reader, an `Arc` of it.
//! Inside are three things:
//!
//! - the [`Config`], read-only after start, so it needs no lock;
//! - the [`ClientDirectory`]: which names are taken, behind a
//!   `parking_lot::RwLock` (many threads look names up, few claim them);
//! - the [`Stats`]: the server's counters, behind a `parking_lot::Mutex`.
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
pub(crate) mod stats;

pub(crate) use clients::ClientDirectory;
pub(crate) use stats::{Stats, StatsSnapshot, Tally};

use crate::config::Config;

/// What every thread may read, behind one `Arc`.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) clients: ClientDirectory,
    pub(crate) stats: Stats,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        Shared {
            config,
            clients: ClientDirectory::default(),
            stats: Stats::new(),
        }
    }

    /// The stats with the number of registered clients filled in. Reads the
    /// directory, lets go, then locks the stats: never both at once.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let online = self.clients.len();
        self.stats.snapshot(online)
    }
}
