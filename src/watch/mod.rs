//! Watching the threads, an optional part a student may skip: the thread
//! board (what each thread is doing, which lock it holds or waits for), the
//! last five minutes' samples the page's chart draws, and `/trace`'s
//! traced line.
//!
//! No thread of its own. The core reaches it at the seams that
//! tests/suite/shape.rs lists: the board kept in the
//! [`Gauges`](crate::shared::Gauges), which hands each thread its place
//! (each thread then notes what it does through `shared/thread_states.rs`,
//! which names nothing here); the monitor, which adds a sample each second
//! and puts the board's threads on its line; and a traced line's
//! [`Trace`](trace::Trace), which the reader starts, the event and the line
//! carry, and the manager watches ([`Traces`](traces::Traces)). The web
//! door (`/stats.json`, the page) and the deadlock report read what is
//! here.

pub(crate) mod board;
pub(crate) mod samples;
pub(crate) mod trace;
pub(crate) mod traces;
