//! The integration tests, as one test binary: each file in tests/ is a
//! binary of its own and a link step of its own, so the tests that can
//! share a process are modules here (`cargo test --test suite rooms::`
//! runs one file's tests, `cargo test --test suite NAME` one test).
//!
//! Two stay separate, because each measures its whole process and would
//! count other tests' servers and clients in it: tests/threads.rs (the
//! process's thread count, from /proc/self/status) and tests/memory.rs (its
//! resident memory). Everything here that needs a process of its own
//! starts a child instead: startup's `LD_PRELOAD` goes only to the child it
//! runs, and overload reads the /proc numbers of the binary it starts.
//! `cluster` is empty without `--features redis`; CI runs it, and `binary`
//! against the binary built with the feature, as
//! `cargo test --features redis --test suite -- binary:: cluster::`.

#[path = "../common/mod.rs"]
mod common;

mod binary;
mod capacity;
mod chat;
mod classroom;
mod client;
mod cluster;
mod curl;
mod grade;
mod hardening;
mod hostile;
mod irc;
mod overload;
mod prometheus;
mod rooms;
mod shape;
mod startup;
mod watch;
mod web;
