//! threadchat: a chat server for `nc`, written to show threads and locks at
//! work.
//!
//! Start reading at [`Server::start`] in `server.rs`; from there each thread
//! is one module:
//!
//! | thread                 | module        | how many        |
//! |------------------------|---------------|-----------------|
//! | acceptor               | [`acceptor`]  | 1               |
//! | reader (per client)    | [`reader`]    | 1 per connection |
//! | writer (per client)    | [`writer`]    | 1 per connection |
//! | manager                | [`manager`]   | 1               |
//! | monitor                | [`monitor`]   | 1               |
//!
//! The rest is plain logic with no threads of its own, tested in place:
//! [`protocol`] (what lines mean), [`names`], [`rooms`] and their
//! [`history`], [`rate_limit`] (flood control), [`os_limits`], [`line_reader`]
//! (bounded line splitting), and the two pieces of shared state,
//! [`clients`] (the `RwLock`) and [`stats`] (the `Mutex`). [`event`] holds the
//! message types the channels carry. docs/ARCHITECTURE.md is the map.

pub mod acceptor;
pub mod clients;
pub mod config;
pub mod event;
pub mod history;
pub mod line_reader;
pub mod manager;
pub mod monitor;
pub mod names;
pub mod os_limits;
pub mod protocol;
pub mod rate_limit;
pub mod reader;
pub mod rooms;
pub mod server;
pub mod stats;
pub mod writer;

pub use config::Config;
pub use server::{Server, ServerHandle};
pub use stats::StatsSnapshot;
