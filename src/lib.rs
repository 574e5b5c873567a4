//! threadchat: a chat server for `nc`, written to show threads and locks at
//! work.
//!
//! A library user needs four things: a [`Config`], [`Server::start`], the
//! [`ServerHandle`] it returns (address, counters, shutdown), and the
//! [`protocol`] if they write a client. Everything else is private to the
//! crate, and this map is how to find it.
//!
//! # Layout
//!
//! Start at `src/main.rs`, then [`Server::start`] in `server.rs`; from there
//! each thread is one module.
//!
//! | thread              | module       | how many         | started by |
//! |---------------------|--------------|------------------|------------|
//! | manager             | `manager`    | 1                | `server`   |
//! | acceptor            | `acceptor`   | 1                | `server`   |
//! | monitor             | `monitor`    | 1                | `server`   |
//! | reader (per client) | `reader`     | 1 per connection | `acceptor` |
//! | writer (per client) | `writer`     | 1 per connection | `reader`   |
//!
//! What the threads share, and the only two locks, are in `shared`:
//! `shared::clients` (the name directory, an `RwLock`) and `shared::stats`
//! (the counters, a `Mutex`), with the lock order in `shared`'s own comment.
//! What they send each other is in `event`; `outbox` is the manager's end of
//! each client's queue (the slow-consumer policy), and `shutdown` is the
//! signal that stops the long-lived threads.
//!
//! The rest is plain logic with no threads, no locks and no I/O, tested in
//! place: [`protocol`] (what lines mean and how replies are spelled),
//! `names` (the rules for names), `rooms` and their `history`, `rate_limit`
//! (flood control), `line_reader` (bounded line splitting), [`config`] (the
//! command line) and `os_limits` (how many clients this machine can hold).
//! `socket` turns a connection away with one line.
//!
//! No module imports the module that starts it. docs/ARCHITECTURE.md is the
//! same map with the channels, the locks and a connection's life.

mod acceptor;
// Without the `redis` feature nothing starts the Redis threads, so most of
// the cluster's vocabulary is never built; it still compiles (and its plain
// logic is tested) in every build.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
mod cluster;
pub mod config;
mod event;
mod history;
mod http;
mod line_reader;
mod manager;
mod metrics;
mod monitor;
mod names;
mod os_limits;
mod outbox;
pub mod protocol;
mod rate_limit;
mod reader;
mod rooms;
mod server;
mod shared;
mod shutdown;
mod socket;
mod web;
mod websocket;
mod writer;

pub use config::Config;
pub use rate_limit::RateLimit;
pub use server::{Server, ServerHandle, StartError};
pub use shared::stats::StatsSnapshot;
