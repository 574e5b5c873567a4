//! The thread board: what each of the server's threads is doing right now,
//! and which of the two locks it holds or waits for.
//!
//! No thread runs this module. Every thread the server starts takes a slot
//! on the [`ThreadBoard`] when it starts and gives it back when it ends:
//! the long-lived ones by name (`ServerHandle::spawn`), the client threads
//! by role (`Gauges::running`). From then on the thread writes its slot
//! and nobody else does, through `shared/thread_states.rs`: a thread on
//! the board is watched there through its place here (a [`Watched`]), so
//! around each blocking call it stores its [`State`] (`blocked`), and the
//! lock wrappers that count lock use (`LockStats::acquire` and the `Held`
//! guard it returns) note which lock it waits for and which it holds. Any
//! thread may read the board: the web door for `/stats.json`, the monitor
//! for its line, the deadlock report.
//!
//! No lock: each slot is a few atomics with one writer, its thread, which
//! finds its slot through a thread-local (in `thread_states`). Readers only display what they
//! read, so a value a moment old is fine (why `Relaxed` is enough for that,
//! and not for anything else, is on `thread_states::blocked`). The board is a fixed
//! array sized at start for every thread `--max-clients` allows, so taking
//! a slot never waits (and allocates only the small box that points the
//! thread at it); a thread that finds none (it cannot happen within the
//! limits) is counted as untracked and runs unwatched.

use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, ThreadId};

use crate::shared::thread_states::{self, Watched};
#[cfg(test)]
use crate::shared::thread_states::{blocked, Held};
pub(crate) use crate::shared::thread_states::{LockId, Role, State};

impl LockId {
    pub(crate) const ALL: [LockId; 2] = [LockId::Clients, LockId::Stats];

    /// Its name in `/stats.json` and the monitor's line.
    pub(crate) fn key(self) -> &'static str {
        match self {
            LockId::Clients => "clients",
            LockId::Stats => "stats",
        }
    }

    /// Its name in a sentence.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            LockId::Clients => "the client directory",
            LockId::Stats => "the stats",
        }
    }

    /// Where its count of guards held sits in a slot's `held`.
    fn shift(self) -> u32 {
        match self {
            LockId::Clients => 0,
            LockId::Stats => 16,
        }
    }
}

impl State {
    /// Every state, in the order `/stats.json` and the page list them.
    pub(crate) const ALL: [State; 7] = [
        State::Running,
        State::Channel,
        State::Lock(LockId::Clients),
        State::Lock(LockId::Stats),
        State::Read,
        State::Write,
        State::Accept,
    ];

    fn code(self) -> u8 {
        match self {
            State::Running => 0,
            State::Channel => 1,
            State::Lock(LockId::Clients) => 2,
            State::Lock(LockId::Stats) => 3,
            State::Read => 4,
            State::Write => 5,
            State::Accept => 6,
        }
    }

    fn from_code(code: u8) -> State {
        State::ALL
            .get(usize::from(code))
            .copied()
            .unwrap_or(State::Running)
    }

    /// Its name in `/stats.json` and the monitor's line.
    pub(crate) fn key(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Channel => "channel",
            State::Lock(LockId::Clients) => "lock_clients",
            State::Lock(LockId::Stats) => "lock_stats",
            State::Read => "read",
            State::Write => "write",
            State::Accept => "accept",
        }
    }

    /// Its name in a sentence.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Channel => "waiting for its channel",
            State::Lock(LockId::Clients) => "waiting for the client directory",
            State::Lock(LockId::Stats) => "waiting for the stats",
            State::Read => "blocked in a socket read",
            State::Write => "blocked in a socket write",
            State::Accept => "waiting for a connection",
        }
    }
}

impl Role {
    pub(crate) const ALL: [Role; 3] = [Role::Reader, Role::Writer, Role::Http];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Http => "http",
        }
    }

    fn code(self) -> u8 {
        match self {
            Role::Reader => 1,
            Role::Writer => 2,
            Role::Http => 3,
        }
    }
}

/// A slot's `role` for a long-lived thread.
const NAMED: u8 = u8::MAX;

/// One thread's slot. Only its thread writes it, but for `role`, which the
/// thread taking a free slot sets with a compare-and-swap.
#[derive(Default)]
struct Slot {
    /// 0 while free; else a [`Role`]'s code, or [`NAMED`].
    role: AtomicU8,
    /// A [`State`]'s code.
    state: AtomicU8,
    /// Guards held, 16 bits per lock (a read lock may be held more than once).
    held: AtomicU32,
    /// A hash of the thread's `ThreadId`, for the deadlock report.
    thread: AtomicU64,
    /// The number in the thread's name (17 for `reader-17`).
    number: AtomicU64,
}

impl Slot {
    fn set_state(&self, state: State) -> State {
        let before = self.state.load(Ordering::Relaxed);
        self.state.store(state.code(), Ordering::Relaxed);
        State::from_code(before)
    }

    /// Only the slot's thread changes `held`, so a load and a store do (no
    /// read-modify-write needed, nobody else can change it in between).
    fn add_held(&self, lock: LockId, up: bool) {
        let held = self.held.load(Ordering::Relaxed);
        let one = 1 << lock.shift();
        let held = if up {
            held.wrapping_add(one)
        } else {
            held.wrapping_sub(one)
        };
        self.held.store(held, Ordering::Relaxed);
    }

    fn holds(&self) -> Vec<LockId> {
        let held = self.held.load(Ordering::Relaxed);
        (LockId::ALL.into_iter())
            .filter(|lock| (held >> lock.shift()) & 0xffff > 0)
            .collect()
    }

    /// Takes the slot if it is free, for the calling thread.
    fn take(&self, role: u8) -> bool {
        let taken = self.reserve(role);
        if taken {
            self.arrive();
        }
        taken
    }

    /// Takes the slot if it is free, for a thread about to start.
    fn reserve(&self, role: u8) -> bool {
        // Acquire: what the last owner wrote before it let go (Release, in
        // `free`) comes before anything written here from now on.
        (self.role)
            .compare_exchange(0, role, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// The calling thread is the slot's owner from now on.
    fn arrive(&self) {
        let me = thread::current();
        let number = (me.name().and_then(|name| name.rsplit('-').next()))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        self.number.store(number, Ordering::Relaxed);
        self.thread.store(thread_key(me.id()), Ordering::Relaxed);
        self.state.store(State::Running.code(), Ordering::Relaxed);
        self.held.store(0, Ordering::Relaxed);
    }

    fn free(&self) {
        self.thread.store(0, Ordering::Relaxed);
        self.role.store(0, Ordering::Release);
    }
}

/// A thread's id as a number (std has no stable one): the same for the
/// same thread, whoever asks.
fn thread_key(id: ThreadId) -> u64 {
    // `DefaultHasher::new()` has fixed keys: every call hashes alike.
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish() | 1
}

/// A long-lived thread's slot, with its name.
#[derive(Default)]
struct NamedSlot {
    name: OnceLock<&'static str>,
    slot: Slot,
}

/// How many long-lived threads the board has room for (there are at most
/// six: manager, acceptor, http-acceptor, monitor and the two Redis ones).
const NAMED_SLOTS: usize = 12;

/// Slots for threads beyond two per client: the HTTP connections (at most
/// 64), and threads that have let their client go but not yet ended.
const SPARE_SLOTS: usize = 256;

/// Every thread's slot. See the module's header.
pub(crate) struct ThreadBoard {
    named: [NamedSlot; NAMED_SLOTS],
    clients: Box<[Slot]>,
    /// Where the next client thread starts looking for a free slot.
    next: AtomicUsize,
    /// Threads that found no free slot.
    untracked: AtomicUsize,
}

impl Default for ThreadBoard {
    /// A small board, for tests.
    fn default() -> Self {
        ThreadBoard::for_clients(16)
    }
}

/// One thread as the board shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ThreadView {
    /// `manager`, or a client thread's role and number: `reader-17`.
    pub(crate) name: String,
    pub(crate) state: State,
    pub(crate) holds: Vec<LockId>,
}

/// The threads of one client role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RoleView {
    pub(crate) role: Role,
    pub(crate) count: usize,
    /// How many are in each state, in the order of [`State::ALL`].
    pub(crate) by_state: [usize; State::ALL.len()],
    /// The first few threads' states, one cell each.
    pub(crate) cells: Vec<State>,
}

impl ThreadBoard {
    /// A board for a server of at most `max_clients` connections: two
    /// threads each, and spare slots.
    pub(crate) fn for_clients(max_clients: usize) -> Self {
        // Past 65,536 clients the board stops growing (3 MiB): threads
        // beyond it are counted as untracked. `vm.max_map_count` and
        // `pid_max` keep a server far below that (docs/ARCHITECTURE.md).
        let slots = max_clients.min(1 << 16) * 2 + SPARE_SLOTS;
        ThreadBoard {
            named: Default::default(),
            clients: (0..slots).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            untracked: AtomicUsize::new(0),
        }
    }

    /// A slot for the long-lived thread `name`, taken by the thread that
    /// starts it (so the board lists them in the order they were started);
    /// the new thread sits in it with [`Seat::sit`].
    pub(crate) fn seat(self: &Arc<Self>, name: &'static str) -> Seat {
        let free = (self.named.iter()).position(|named| {
            let named_so = named.name.get().is_none_or(|had| *had == name);
            named_so && named.slot.reserve(NAMED)
        });
        if let Some(at) = free {
            let _ = self.named[at].name.set(name);
        }
        Seat {
            board: self.clone(),
            at: free,
        }
    }

    /// Puts the calling thread on the board as `name`, until the guard is
    /// dropped: for tests, whose threads start themselves.
    #[cfg(test)]
    pub(crate) fn enter_named(self: &Arc<Self>, name: &'static str) -> OnBoard {
        self.seat(name).sit()
    }

    /// Puts the calling thread on the board in `role`, until the guard is
    /// dropped.
    pub(crate) fn enter_role(self: &Arc<Self>, role: Role) -> OnBoard {
        let slots = self.clients.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % slots;
        let free = (0..slots)
            .map(|i| (start + i) % slots)
            .find(|&at| self.clients[at].take(role.code()));
        self.next
            .store(free.unwrap_or(start) + 1, Ordering::Relaxed);
        self.enter(free.map(Place::Client))
    }

    fn enter(self: &Arc<Self>, place: Option<Place>) -> OnBoard {
        let Some(place) = place else {
            self.untracked.fetch_add(1, Ordering::Relaxed);
            return OnBoard {
                previous: None,
                mine: 0,
                untracked: Some(self.clone()),
            };
        };
        let current = Current {
            board: self.clone(),
            place,
        };
        let current: Box<dyn Watched> = Box::new(current);
        let mine = place_of(&*current);
        let previous = thread_states::watch_me(Some(current));
        OnBoard {
            previous,
            mine,
            untracked: None,
        }
    }

    fn slot(&self, place: &Place) -> &Slot {
        match *place {
            Place::Named(at) => &self.named[at].slot,
            Place::Client(at) => &self.clients[at],
        }
    }

    /// The long-lived threads, in the order they started.
    pub(crate) fn long_lived(&self) -> Vec<ThreadView> {
        (self.named.iter())
            .filter(|named| named.slot.role.load(Ordering::Relaxed) == NAMED)
            .map(|named| ThreadView {
                name: named.name.get().copied().unwrap_or("?").to_string(),
                state: State::from_code(named.slot.state.load(Ordering::Relaxed)),
                holds: named.slot.holds(),
            })
            .collect()
    }

    /// The client threads, by role: how many in each state, and the first
    /// `cells` threads' states one by one.
    pub(crate) fn by_role(&self, cells: usize) -> Vec<RoleView> {
        let mut views: Vec<RoleView> = (Role::ALL.into_iter())
            .map(|role| RoleView {
                role,
                count: 0,
                by_state: [0; State::ALL.len()],
                cells: Vec::new(),
            })
            .collect();
        for slot in self.clients.iter() {
            let role = slot.role.load(Ordering::Relaxed);
            let Some(view) = views.iter_mut().find(|view| view.role.code() == role) else {
                continue;
            };
            let state = State::from_code(slot.state.load(Ordering::Relaxed));
            view.count += 1;
            view.by_state[usize::from(state.code())] += 1;
            if view.cells.len() < cells {
                view.cells.push(state);
            }
        }
        views
    }

    /// The threads as the monitor's line gives them (docs/PROTOCOL.md, "The
    /// monitor's line"): each long-lived one and its state, then each client
    /// role, how many and in which states.
    pub(crate) fn summary(&self) -> String {
        let long_lived: Vec<String> = (self.long_lived().into_iter())
            .map(|thread| format!(" {} {}", thread.name, thread.state.key()))
            .collect();
        let mut line = long_lived.join(",");
        for (n, role) in self.by_role(0).into_iter().enumerate() {
            let states: Vec<String> = (State::ALL.iter().zip(role.by_state))
                .filter(|(_, count)| *count > 0)
                .map(|(state, count)| format!("{} {count}", state.key()))
                .collect();
            line.push_str(if n == 0 { "; " } else { ", " });
            let _ = write!(line, "{} {}", role.role.key(), role.count);
            if !states.is_empty() {
                let _ = write!(line, " ({})", states.join(", "));
            }
        }
        line
    }

    /// Threads that found no free slot, since start.
    pub(crate) fn untracked(&self) -> usize {
        self.untracked.load(Ordering::Relaxed)
    }

    /// The thread `id`, if it is on the board: for the deadlock report.
    #[cfg_attr(not(feature = "deadlock-detection"), allow(dead_code))]
    pub(crate) fn find(&self, id: ThreadId) -> Option<ThreadView> {
        let key = thread_key(id);
        let named = (self.named.iter()).map(|n| (&n.slot, n.name.get().copied()));
        let clients = self.clients.iter().map(|slot| (slot, None));
        let (slot, name) = named
            .chain(clients)
            .find(|(slot, _)| slot.thread.load(Ordering::Relaxed) == key)?;
        let role = slot.role.load(Ordering::Relaxed);
        let name = match (name, Role::ALL.iter().find(|r| r.code() == role)) {
            (Some(name), _) => name.to_string(),
            (None, Some(role)) => format!("{}-{}", role.key(), slot.number.load(Ordering::Relaxed)),
            (None, None) => return None,
        };
        Some(ThreadView {
            name,
            state: State::from_code(slot.state.load(Ordering::Relaxed)),
            holds: slot.holds(),
        })
    }
}

/// A long-lived thread's slot, taken for it before it starts. Dropped
/// without [`sit`](Seat::sit) (the thread could not be started), it frees
/// the slot.
pub(crate) struct Seat {
    board: Arc<ThreadBoard>,
    at: Option<usize>,
}

impl Seat {
    /// The calling thread takes the seat, until the guard is dropped.
    pub(crate) fn sit(mut self) -> OnBoard {
        let at = self.at.take();
        if let Some(at) = at {
            self.board.named[at].slot.arrive();
        }
        self.board.enter(at.map(Place::Named))
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(at) = self.at {
            self.board.named[at].slot.free();
        }
    }
}

/// Where a thread's slot is.
enum Place {
    Named(usize),
    Client(usize),
}

/// A thread's place on its board: where `thread_states` notes what the
/// thread does, while it holds this. Dropped, it gives the slot back.
struct Current {
    board: Arc<ThreadBoard>,
    place: Place,
}

impl Current {
    fn slot(&self) -> &Slot {
        self.board.slot(&self.place)
    }
}

impl Watched for Current {
    fn set_state(&self, state: State) -> State {
        self.slot().set_state(state)
    }

    fn note_held(&self, lock: LockId, up: bool) {
        self.slot().add_held(lock, up);
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        self.slot().free();
    }
}

/// A thread's place on the board: dropping it gives the slot back (a
/// panic unwinds through it too).
pub(crate) struct OnBoard {
    /// The place the thread had before, if it was already on a board (a
    /// test's thread that starts a reader in place).
    previous: Option<Box<dyn Watched>>,
    /// Which place this guard put in, to check it is the one it takes out.
    mine: usize,
    /// Set when no slot was free, to take the count back.
    untracked: Option<Arc<ThreadBoard>>,
}

/// A place's address, as a number: which place it is.
fn place_of(place: &dyn Watched) -> usize {
    (place as *const dyn Watched).cast::<()>() as usize
}

impl Drop for OnBoard {
    fn drop(&mut self) {
        if let Some(board) = self.untracked.take() {
            board.untracked.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        // Guards go in the reverse of the order they came (a thread's scopes
        // see to that), so the place handed back is this guard's own, and
        // dropping it frees it.
        let left = thread_states::watch_me(self.previous.take());
        debug_assert!(
            left.as_deref().map(place_of) == Some(self.mine),
            "thread board guards dropped out of order"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;
    use std::sync::Barrier;

    fn count(views: &[RoleView], role: Role, state: State) -> usize {
        let view = views.iter().find(|view| view.role == role).unwrap();
        view.by_state[usize::from(state.code())]
    }

    #[test]
    fn a_thread_is_on_the_board_in_its_state_until_it_leaves() {
        let board = Arc::new(ThreadBoard::for_clients(4));
        let (blocked_tx, blocked_rx) = bounded(0);
        let (release_tx, release_rx) = bounded::<()>(0);
        let thread = thread::Builder::new()
            .name("writer-7".into())
            .spawn({
                let board = board.clone();
                move || {
                    let _on = board.enter_role(Role::Writer);
                    blocked(State::Write, || {
                        blocked_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                    });
                }
            })
            .unwrap();
        blocked_rx.recv().unwrap();
        let views = board.by_role(10);
        assert_eq!(count(&views, Role::Writer, State::Write), 1, "{views:?}");
        assert_eq!(views[1].cells, vec![State::Write]);
        let found = board.find(thread.thread().id()).expect("on the board");
        assert_eq!(found.name, "writer-7");
        release_tx.send(()).unwrap();
        thread.join().unwrap();
        let views = board.by_role(10);
        assert!(views.iter().all(|view| view.count == 0), "{views:?}");
    }

    #[test]
    fn the_state_goes_back_to_what_it_was_and_held_locks_are_counted() {
        let board = Arc::new(ThreadBoard::default());
        let on = board.enter_named("manager");
        let me = || board.find(thread::current().id()).unwrap();
        blocked(State::Channel, || {
            assert_eq!(me().state, State::Channel);
            blocked(State::Lock(LockId::Stats), || {
                assert_eq!(me().state, State::Lock(LockId::Stats))
            });
            assert_eq!(me().state, State::Channel);
        });
        assert_eq!(me().state, State::Running);
        let first = Held::new((), LockId::Clients);
        let second = Held::new((), LockId::Clients);
        assert_eq!(me().holds, vec![LockId::Clients]);
        drop(first);
        assert_eq!(me().holds, vec![LockId::Clients], "one guard still held");
        drop(second);
        assert_eq!(me().holds, vec![]);
        assert_eq!(board.long_lived()[0].name, "manager");
        drop(on);
        assert!(board.long_lived().is_empty());
        assert!(board.find(thread::current().id()).is_none());
    }

    #[test]
    fn many_threads_count_by_role_and_state_and_a_full_board_counts_the_rest() {
        // Room for 2 * 2 + 256 client threads; 300 come.
        let board = Arc::new(ThreadBoard::for_clients(2));
        let slots = board.clients.len();
        let all_in = Arc::new(Barrier::new(301));
        let threads: Vec<_> = (0..300)
            .map(|n| {
                let (board, all_in) = (board.clone(), all_in.clone());
                thread::spawn(move || {
                    let role = if n % 2 == 0 {
                        Role::Reader
                    } else {
                        Role::Writer
                    };
                    let _on = board.enter_role(role);
                    let state = if n % 3 == 0 {
                        State::Read
                    } else {
                        State::Channel
                    };
                    blocked(state, || {
                        all_in.wait();
                        all_in.wait();
                    });
                })
            })
            .collect();
        all_in.wait();
        let views = board.by_role(5);
        let counted: usize = views.iter().map(|view| view.count).sum();
        assert_eq!(counted, slots);
        assert_eq!(board.untracked(), 300 - slots);
        let by_state: usize = views.iter().flat_map(|view| view.by_state).sum();
        assert_eq!(by_state, slots);
        assert!(
            views[..2].iter().all(|view| view.cells.len() == 5),
            "{views:?}"
        );
        all_in.wait();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(board.untracked(), 0);
        assert!(board.by_role(5).iter().all(|view| view.count == 0));
    }
}
