//! What each thread says it is doing: around each call that may block it
//! sets its [`State`] ([`blocked`]), and while it holds one of the two locks
//! it holds a [`Held`] guard. Any thread runs this, for itself.
//!
//! This is all the core knows of the thread board: a thread that is
//! watched has a [`Watched`] place in a thread-local, and notes what it
//! does there. The board that hands out the places, and how the page, the
//! monitor's line and the deadlock report read them, is `watch/board.rs`,
//! an optional part a student may skip: a thread that is not watched runs
//! every call here as the bare call it wraps.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// This module's path: the deadlock report looks past its frames, as it
/// does past the lock helpers (`deadlock.rs`).
#[cfg(feature = "deadlock-detection")]
pub(crate) const MODULE: &str = module_path!();

/// The two locks of the core (docs/ARCHITECTURE.md, "Locks").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockId {
    /// The client directory's `RwLock` (`shared/clients.rs`).
    Clients,
    /// The stats' `Mutex` (`shared/stats.rs`).
    Stats,
}

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Running, or ready to run: not in any call that blocks.
    Running,
    /// Waiting for its channel: the manager for events, a writer on its
    /// queue, the monitor for its tick, a reader for room in a full events
    /// channel, an event stream's reader for a line in its inbox.
    Channel,
    /// Waiting for one of the two locks.
    Lock(LockId),
    /// Blocked in a socket read (a reader, or an HTTP connection).
    Read,
    /// Blocked in a socket write (a writer, or an HTTP connection).
    Write,
    /// Blocked in `accept` (an acceptor).
    Accept,
}

/// The roles of the threads that come and go with connections. Each has a
/// count on the board by state; the long-lived threads are shown one by
/// one, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Reader,
    Writer,
    /// One per open HTTP connection (a WebSocket's becomes its reader).
    Http,
}

/// Where a watched thread notes what it does (its slot on the thread
/// board). Only its own thread calls these.
pub(crate) trait Watched {
    /// Stores `state`, and says the state it replaces.
    fn set_state(&self, state: State) -> State;
    /// A guard of `lock` was taken (`up`), or let go.
    fn note_held(&self, lock: LockId, up: bool);
}

thread_local! {
    /// Where the calling thread is watched, if it is.
    static WATCHED: RefCell<Option<Box<dyn Watched>>> = const { RefCell::new(None) };
}

/// The calling thread is watched through `place` from now on (or, with
/// `None`, not at all); gives back the place it had.
pub(crate) fn watch_me(place: Option<Box<dyn Watched>>) -> Option<Box<dyn Watched>> {
    WATCHED.with_borrow_mut(|watched| std::mem::replace(watched, place))
}

fn if_watched<T>(note: impl FnOnce(&dyn Watched) -> T) -> Option<T> {
    WATCHED.with_borrow(|watched| watched.as_deref().map(note))
}

/// Runs `call`, a call that may block, with the calling thread's state
/// set to `state`, then sets back the state it had.
///
/// One `Relaxed` store before and one after are enough for a display. The
/// state is one byte with one writer; an atomic is never torn, and every
/// reader sees this thread's stores in the order it made them, soon. A
/// reader wants nothing more: it shows what it read, and a state a few
/// microseconds old is as good as the latest one to a person watching.
///
/// They are not enough for synchronisation, and nothing may be decided on
/// what this says. `Relaxed` orders nothing else: seeing "blocked in a
/// socket write" tells a reader nothing about the thread's other memory
/// (its batch, its queue), and by the time the reader acts the thread may
/// have moved on. To hand over data, or to know that a thread has stopped,
/// the server uses a lock, a channel or `Release`/`Acquire` (the outbox, the
/// fan-out timer), never this.
pub(crate) fn blocked<T>(state: State, call: impl FnOnce() -> T) -> T {
    let before = if_watched(|watched| watched.set_state(state));
    let result = call();
    if let Some(before) = before {
        if_watched(|watched| watched.set_state(before));
    }
    result
}

/// A lock's guard, noted on the thread's slot as held by this thread until it is
/// dropped. Made by `LockStats::acquire`; derefs to what the lock protects.
pub(crate) struct Held<G> {
    guard: G,
    lock: LockId,
}

impl<G> Held<G> {
    /// `guard` has just been taken.
    pub(crate) fn new(guard: G, lock: LockId) -> Self {
        if_watched(|watched| watched.note_held(lock, true));
        Held { guard, lock }
    }
}

impl<G: Deref> Deref for Held<G> {
    type Target = G::Target;
    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: DerefMut> DerefMut for Held<G> {
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

impl<G> Drop for Held<G> {
    /// Noted as let go just before the guard itself is dropped (its field
    /// goes after this): a moment early, which a display does not mind.
    fn drop(&mut self) {
        if_watched(|watched| watched.note_held(self.lock, false));
    }
}
