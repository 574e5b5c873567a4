//! Watching the threads, an optional part a student may skip: the thread
//! board (what each thread is doing, which lock it holds or waits for) and
//! the last five minutes' samples the page's chart draws.
//!
//! No thread of its own. The core reaches it at the seams that
//! tests/suite/shape.rs lists: each thread's own slot, written through
//! `shared/thread_states.rs` (which is all a thread's code calls), the
//! board kept in the [`Gauges`](crate::shared::Gauges), and the monitor,
//! which adds a sample each second and puts the board's threads on its
//! line. The web door (`/stats.json`, the page) and the deadlock report
//! read what is here.

pub(crate) mod board;
pub(crate) mod samples;
pub(crate) mod trace;
pub(crate) mod traces;
