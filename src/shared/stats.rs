//! The server's counters, behind one `parking_lot::Mutex`.
//!
//! Shared by every thread through `Arc<Shared>`. The acceptors (and the
//! web door's threads, for a WebSocket or an event stream) write connection
//! counts, reader threads write when their connection ends, the manager
//! adds what it routed (once per event, not once per recipient, so that a
//! broadcast to a thousand clients takes the lock once), and the monitor,
//! `/stats` and `ServerHandle` read a [`StatsSnapshot`]. How the lock is
//! used is docs/ARCHITECTURE.md's invariant 3.

use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::gauges::{LockStats, LockUse};
use super::thread_states::{Held, LockId};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    connections_open: usize,
    connections_accepted: u64,
    connections_refused: u64,
    messages_in: u64,
    lines_delivered: u64,
    lines_dropped: u64,
    lines_refused: u64,
    cluster_received: u64,
    cluster_unpublished: u64,
    clients_evicted: u64,
}

/// What the manager routed while handling one event: it counts locally and
/// adds the whole tally under one lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Chat lines, actions and whispers received.
    pub messages_in: u64,
    /// Lines accepted into a client's outgoing queue.
    pub delivered: u64,
    /// Lines that did not fit in a client's queue, or whose client was gone.
    pub dropped: u64,
    /// Lines from clients refused with a `! ` line (too long, too fast, not
    /// UTF-8, a bad command...).
    pub refused: u64,
    /// With `--redis`: messages from other servers handled.
    pub cluster_received: u64,
    /// With `--redis`: messages for the other servers that never reached
    /// Redis (the queue to the `redis-publisher` was full, or Redis was down).
    pub cluster_unpublished: u64,
    /// Clients given up on because the backlogs together passed
    /// `--max-total-backlog`.
    pub evicted: u64,
}

impl Tally {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Tally::default()
    }
}

pub(crate) struct Stats {
    started: Instant,
    state: Mutex<State>,
    lock_use: LockStats,
}

/// What the mutex protects.
#[derive(Default)]
struct State {
    counters: Counters,
    /// What the manager last published for the live view (once a second).
    live: ManagerView,
}

/// What only the manager knows, published for the live view: the rooms,
/// and the clients with the most bytes waiting in their backlogs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagerView {
    /// Rooms `/rooms` lists: someone is in them, or the lobby.
    pub rooms: usize,
    /// Rooms in memory, empty ones kept for their history included.
    pub rooms_kept: usize,
    /// What every room's history holds, in bytes.
    pub history_bytes: usize,
    /// What every client's backlog holds together, in bytes (what
    /// `--max-total-backlog` bounds).
    pub backlog_bytes: usize,
    /// (name, or `#id` before one is chosen; bytes), deepest first.
    pub deepest_backlogs: Vec<(String, usize)>,
}

impl Stats {
    /// The guard, counted in `lock_use`. Private: guards never leave this
    /// type's methods.
    fn lock(&self) -> Held<MutexGuard<'_, State>> {
        let state = &self.state;
        (self.lock_use).acquire(LockId::Stats, || state.try_lock(), || state.lock())
    }

    /// The private helper that takes this lock, by the compiler's name for
    /// it: the deadlock report looks past it (`deadlock.rs`).
    #[cfg(feature = "deadlock-detection")]
    pub(crate) fn lock_helpers() -> [&'static str; 1] {
        [std::any::type_name_of_val(&Self::lock)]
    }

    /// How this lock has been used so far.
    pub(crate) fn lock_use(&self) -> LockUse {
        self.lock_use.read()
    }

    /// The manager's once-a-second report for the live view.
    pub(crate) fn publish(&self, view: ManagerView) {
        self.lock().live = view;
    }

    /// What the manager last published.
    pub(crate) fn manager_view(&self) -> ManagerView {
        self.lock().live.clone()
    }

    pub(crate) fn new() -> Self {
        Stats {
            started: Instant::now(),
            state: Mutex::new(State::default()),
            lock_use: LockStats::default(),
        }
    }

    /// Called by the acceptors (and the web door's threads, for a WebSocket
    /// or an event stream) for each new connection: counts it as open and
    /// returns true, or counts it as refused and returns false when
    /// `max_open` are already open. Check and count under one lock, so the
    /// count cannot pass `max_open`, however many threads open connections.
    pub(crate) fn try_open_connection(&self, max_open: usize) -> bool {
        let counters = &mut self.lock().counters;
        if counters.connections_open >= max_open {
            counters.connections_refused += 1;
            return false;
        }
        counters.connections_open += 1;
        counters.connections_accepted += 1;
        true
    }

    /// Called by the acceptor for a connection turned away before it was
    /// counted in (too many from its address).
    pub(crate) fn refuse_connection(&self) {
        self.lock().counters.connections_refused += 1;
    }

    /// Called once for each connection `try_open_connection` let in, when its
    /// threads are done (or could not be started).
    pub(crate) fn close_connection(&self) {
        let counters = &mut self.lock().counters;
        counters.connections_open = counters.connections_open.saturating_sub(1);
    }

    /// Called for a connection `try_open_connection` let in but whose
    /// threads could not be started: it was turned away after all.
    pub(crate) fn refuse_opened_connection(&self) {
        let counters = &mut self.lock().counters;
        counters.connections_open = counters.connections_open.saturating_sub(1);
        counters.connections_accepted = counters.connections_accepted.saturating_sub(1);
        counters.connections_refused += 1;
    }

    pub(crate) fn add(&self, tally: Tally) {
        let counters = &mut self.lock().counters;
        counters.messages_in += tally.messages_in;
        counters.lines_delivered += tally.delivered;
        counters.lines_dropped += tally.dropped;
        counters.lines_refused += tally.refused;
        counters.cluster_received += tally.cluster_received;
        counters.cluster_unpublished += tally.cluster_unpublished;
        counters.clients_evicted += tally.evicted;
    }

    /// A copy of the counters. `online` (registered clients) is not counted
    /// here but in the client directory; the caller passes it in, having read
    /// it *before* taking this lock (the lock order: docs/ARCHITECTURE.md,
    /// invariant 3).
    pub(crate) fn snapshot(&self, online: usize) -> StatsSnapshot {
        let state = self.lock();
        let (counters, rooms, rooms_kept) =
            (state.counters, state.live.rooms, state.live.rooms_kept);
        drop(state);
        StatsSnapshot {
            rooms,
            rooms_kept,
            online,
            connections_open: counters.connections_open,
            connections_accepted: counters.connections_accepted,
            connections_refused: counters.connections_refused,
            messages_in: counters.messages_in,
            lines_delivered: counters.lines_delivered,
            lines_dropped: counters.lines_dropped,
            lines_refused: counters.lines_refused,
            cluster_received: counters.cluster_received,
            cluster_unpublished: counters.cluster_unpublished,
            clients_evicted: counters.clients_evicted,
            uptime: self.started.elapsed(),
        }
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Registered clients (they have a name).
    pub online: usize,
    /// Open connections, registered or not: each has a reader and a writer thread.
    pub connections_open: usize,
    pub connections_accepted: u64,
    /// Turned away: `--max-clients` were connected, or the threads for the
    /// connection could not be started.
    pub connections_refused: u64,
    pub messages_in: u64,
    pub lines_delivered: u64,
    pub lines_dropped: u64,
    /// Lines from clients refused with a `! ` line (not in `/stats`'s line,
    /// which keeps its documented form; in `/metrics` and `/stats.json`).
    pub lines_refused: u64,
    /// With `--redis`: messages from other servers handled.
    pub cluster_received: u64,
    /// With `--redis`: messages for other servers that never reached Redis.
    pub cluster_unpublished: u64,
    /// Clients disconnected because the backlogs together passed
    /// `--max-total-backlog` (the furthest behind first).
    pub clients_evicted: u64,
    /// Rooms `/rooms` lists, as the manager last said (once a second).
    pub rooms: usize,
    /// Rooms in memory, empty ones kept for their history included.
    pub rooms_kept: usize,
    pub uptime: Duration,
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} online, {} connections, {} messages in, {} lines delivered, {} dropped, {} refused, up {}s",
            self.online,
            self.connections_open,
            self.messages_in,
            self.lines_delivered,
            self.lines_dropped,
            self.connections_refused,
            self.uptime.as_secs()
        )
    }
}

impl StatsSnapshot {
    /// The monitor's line: the counters now plus rates since `earlier`.
    pub(crate) fn report_since(&self, earlier: &StatsSnapshot) -> String {
        let seconds = self
            .uptime
            .saturating_sub(earlier.uptime)
            .as_secs_f64()
            .max(1e-3);
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
        format!(
            "stats: {self}; last {seconds:.1}s: {:.1} messages/s in, {:.1} lines/s delivered, {:.1} lines/s dropped",
            rate(self.messages_in, earlier.messages_in),
            rate(self.lines_delivered, earlier.lines_delivered),
            rate(self.lines_dropped, earlier.lines_dropped),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_while_others_take_snapshots_never_deadlocks() {
        // The manager publishes while the monitor and the web door take
        // snapshots. (Were these two methods to take two locks in opposite
        // orders, each thread could hold the lock the other one wants.)
        use std::sync::{Arc, Barrier};
        use std::thread;
        let stats = Arc::new(Stats::new());
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        // All four start together and run side by side for a third of a
        // second (or 2 million rounds), however fast the machine.
        let start = Arc::new(Barrier::new(4));
        for role in 0..4u64 {
            let (stats, done_tx, start) = (stats.clone(), done_tx.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let until = Instant::now() + Duration::from_millis(300);
                for n in (0..2_000_000usize).take_while(|_| Instant::now() < until) {
                    if role % 2 == 0 {
                        let rooms = n % 5;
                        stats.publish(ManagerView {
                            rooms,
                            deepest_backlogs: Vec::new(),
                            ..ManagerView::default()
                        });
                    } else {
                        stats.snapshot(n);
                    }
                }
                let _ = done_tx.send(role);
            });
        }
        for _ in 0..4 {
            if done_rx.recv_timeout(Duration::from_secs(15)).is_err() {
                // With the detector built in, it says who waits for what.
                #[cfg(feature = "deadlock-detection")]
                let found = crate::deadlock::reports(None).join("\n");
                #[cfg(not(feature = "deadlock-detection"))]
                let found = "(with --features deadlock-detection, the detector names them)";
                panic!("a thread did not finish its rounds in 15 s: deadlocked on the stats' locks\n{found}");
            }
        }
    }

    #[test]
    fn connections_are_refused_at_the_limit_and_counted() {
        let stats = Stats::new();
        assert!(stats.try_open_connection(2));
        assert!(stats.try_open_connection(2));
        assert!(!stats.try_open_connection(2));
        stats.close_connection();
        assert!(stats.try_open_connection(2));
        let snapshot = stats.snapshot(0);
        assert_eq!(snapshot.connections_open, 2);
        assert_eq!(snapshot.connections_accepted, 3);
        assert_eq!(snapshot.connections_refused, 1);
    }

    #[test]
    fn tallies_add_up() {
        let stats = Stats::new();
        let tally = Tally {
            messages_in: 1,
            delivered: 5,
            dropped: 2,
            refused: 3,
            cluster_received: 4,
            cluster_unpublished: 1,
            evicted: 1,
        };
        stats.add(tally);
        stats.add(tally);
        let snapshot = stats.snapshot(7);
        assert_eq!(
            (
                snapshot.online,
                snapshot.messages_in,
                snapshot.lines_delivered,
                snapshot.lines_dropped,
                snapshot.cluster_received,
                snapshot.cluster_unpublished,
                snapshot.clients_evicted
            ),
            (7, 2, 10, 4, 8, 2, 2)
        );
    }

    #[test]
    fn report_gives_rates_over_the_interval() {
        let stats = Stats::new();
        let mut earlier = stats.snapshot(0);
        earlier.uptime = Duration::from_secs(10);
        let mut now = earlier;
        now.uptime = Duration::from_secs(12);
        now.messages_in = 10;
        now.lines_delivered = 40;
        let report = now.report_since(&earlier);
        assert!(report.contains("5.0 messages/s in"), "{report}");
        assert!(report.contains("20.0 lines/s delivered"), "{report}");
    }
}
