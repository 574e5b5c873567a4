//! threadchat: a chat server for `nc`, written to show threads and locks at
//! work.
//!
//! A library user needs four things: a [`Config`], [`Server::start`], the
//! [`ServerHandle`] it returns (address, counters, shutdown), and the
//! [`protocol`] if they write a client. Everything else is private to the
//! crate; docs/ARCHITECTURE.md is the map of it, with the rules (numbered
//! invariants) that hold it together.
//!
//! Start at `src/main.rs`, then [`Server::start`] in `server.rs`; from there
//! each thread is one module: `acceptor`, `reader`, `writer`, `manager`,
//! `monitor`. What they pass each other is in `event`, `line` and `outbox`;
//! what they share is in `shared`; how bytes become lines is in `doors`; the
//! plain logic they call is in `logic`. The optional parts are `web` (the
//! web door), `cluster` (several servers through Redis), `deadlock` (the
//! detector) and `watch` (the thread board, the chart's samples and
//! `/trace`'s traced line), each behind the seams tests/suite/shape.rs
//! lists, and a student may skip them.

// The core: one module per thread role, and `server`, which starts them.
mod acceptor;
mod manager;
mod monitor;
mod reader;
mod server;
mod writer;

// What the threads pass each other and share.
pub mod config;
mod event;
mod line;
mod outbox;
mod shared;
mod shutdown;

// How bytes on a socket become lines and back, and the operating system.
mod doors;
mod os_limits;
mod platform;
mod socket;

// Plain logic: no I/O, no threads, no locks.
mod logic;

// Watching the threads: the board each thread notes its state on (through
// `shared::thread_states`), the samples the page's chart draws, and a
// traced line's times.
mod watch;

// The optional parts. Without the `redis` feature nothing starts the Redis
// threads, so most of the cluster's vocabulary is never used; it still
// compiles (and its plain logic is tested) in every build.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
mod cluster;
#[cfg(feature = "deadlock-detection")]
mod deadlock;
mod web;

pub use config::Config;
pub use logic::protocol;
pub use logic::rate_limit::RateLimit;
pub use server::{Server, ServerHandle, StartError};
pub use shared::stats::StatsSnapshot;
