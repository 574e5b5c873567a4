//! The client directory: which names are taken, and by whom.
//!
//! Part of [`Shared`](super::Shared), so reachable from every thread, behind one
//! `parking_lot::RwLock`. Reader threads write it to claim a name (at
//! registration and on `/nick`); the manager writes it to release a name (when
//! a client leaves or has been renamed); the manager, the monitor and
//! `ServerHandle` read it to look names up, list them and count them.
//!
//! How the lock is used (no guard leaves a method) is docs/ARCHITECTURE.md's
//! invariant 3.

use std::collections::HashMap;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::gauges::{LockStats, LockUse};
use super::thread_states::{Held, LockId};
use super::ClientId;
use crate::logic::names;

/// The name is held by another client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameTaken;

#[derive(Clone, Debug)]
struct Entry {
    id: ClientId,
    /// The name as its owner spelled it; the map's key is its lowercase form.
    name: String,
    /// Claims by `id` not yet released. Usually 1; more while renames are
    /// on their way to the manager (see `release`).
    claims: u32,
}

#[derive(Default)]
pub(crate) struct ClientDirectory {
    by_key: RwLock<HashMap<String, Entry>>,
    lock_use: LockStats,
}

impl ClientDirectory {
    /// The write guard, counted in `lock_use`. Private: guards never leave
    /// this type's methods.
    fn write(&self) -> Held<RwLockWriteGuard<'_, HashMap<String, Entry>>> {
        let by_key = &self.by_key;
        (self.lock_use).acquire(LockId::Clients, || by_key.try_write(), || by_key.write())
    }

    fn read(&self) -> Held<RwLockReadGuard<'_, HashMap<String, Entry>>> {
        let by_key = &self.by_key;
        (self.lock_use).acquire(LockId::Clients, || by_key.try_read(), || by_key.read())
    }

    /// The private helpers that take this lock, by the compiler's names
    /// for them: the deadlock report looks past them (`deadlock.rs`).
    #[cfg(feature = "deadlock-detection")]
    pub(crate) fn lock_helpers() -> [&'static str; 2] {
        [
            std::any::type_name_of_val(&Self::read),
            std::any::type_name_of_val(&Self::write),
        ]
    }

    /// How this lock has been used so far.
    pub(crate) fn lock_use(&self) -> LockUse {
        self.lock_use.read()
    }

    // ASSIGNMENT a1: begin: claim `name` for `id` unless another holds it, under one write guard
    /// Claims `name` for `id`, unless another client holds it (ignoring case).
    ///
    /// The check and the claim happen under one write guard. Checking with a
    /// read lock and then inserting under a write lock would let two readers
    /// both see "free" and both insert: the classic check-then-act race.
    /// Claiming a name you already hold (with the same or other capitals)
    /// succeeds, counts one more claim, and spells it the new way.
    pub(crate) fn claim(&self, name: &str, id: ClientId) -> Result<(), NameTaken> {
        let mut by_key = self.write();
        let entry = by_key.entry(names::key(name)).or_insert(Entry {
            id,
            name: String::new(),
            claims: 0,
        });
        if entry.id != id {
            return Err(NameTaken);
        }
        entry.name = name.to_string();
        entry.claims += 1;
        Ok(())
    }
    // ASSIGNMENT a1: end

    // ASSIGNMENT a1: begin: release one claim; free the name at its holder's last release
    /// Releases one claim of `id` on `name`; the name is free once its
    /// holder's last claim is released.
    ///
    /// Why count: a client renamed `al1` sends `/nick bo1` and `/nick al1`
    /// in one go. Its reader claims `bo1`, then `al1` again, before the
    /// manager has handled the first rename, which releases `al1`. That
    /// release must not free the name its client holds again, or a second
    /// client could take it. With counts, `al1` has two claims by then,
    /// and the manager's releases (one per rename, one when the client
    /// leaves) always match the reader's claims.
    pub(crate) fn release(&self, name: &str, id: ClientId) {
        let mut by_key = self.write();
        let key = names::key(name);
        let Some(entry) = by_key.get_mut(&key) else {
            return;
        };
        if entry.id != id {
            return;
        }
        entry.claims = entry.claims.saturating_sub(1);
        if entry.claims == 0 {
            by_key.remove(&key);
        }
    }
    // ASSIGNMENT a1: end

    /// Who holds `name` (ignoring case), and how they spell it now.
    pub(crate) fn lookup(&self, name: &str) -> Option<(ClientId, String)> {
        let by_key = self.read();
        let entry = by_key.get(&names::key(name))?;
        Some((entry.id, entry.name.clone()))
    }

    /// Every name, sorted ignoring case.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut found: Vec<(String, String)> = self
            .read()
            .iter()
            .map(|(key, entry)| (key.clone(), entry.name.clone()))
            .collect();
        // Sorted after the guard is gone: the lock protects the map, not our copy.
        found.sort_unstable();
        found.into_iter().map(|(_, name)| name).collect()
    }

    /// How many names are claimed: the number of registered clients.
    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::thread;

    #[test]
    fn names_are_unique_ignoring_case() {
        let directory = ClientDirectory::default();
        assert_eq!(directory.claim("alice", ClientId(1)), Ok(()));
        assert_eq!(directory.claim("ALICE", ClientId(2)), Err(NameTaken));
        assert_eq!(
            directory.lookup("Alice"),
            Some((ClientId(1), "alice".to_string()))
        );
        assert_eq!(directory.len(), 1);
    }

    #[test]
    fn a_case_only_rename_keeps_the_name() {
        let directory = ClientDirectory::default();
        directory.claim("alice", ClientId(1)).unwrap();
        directory.claim("Alice", ClientId(1)).unwrap();
        directory.release("alice", ClientId(1));
        assert_eq!(directory.names(), vec!["Alice".to_string()]);
    }

    #[test]
    fn release_only_frees_the_owners_name() {
        let directory = ClientDirectory::default();
        directory.claim("alice", ClientId(1)).unwrap();
        directory.release("alice", ClientId(2));
        assert_eq!(
            directory.lookup("alice").map(|(id, _)| id),
            Some(ClientId(1))
        );
        directory.release("alice", ClientId(1));
        assert_eq!(directory.lookup("alice"), None);
        assert_eq!(directory.len(), 0);
    }

    #[test]
    fn a_name_claimed_again_before_its_release_stays_held() {
        // al1 -> bo1 -> al1 claimed by the reader before the manager
        // releases al1 (first rename) and bo1 (second).
        let directory = ClientDirectory::default();
        directory.claim("al1", ClientId(1)).unwrap();
        directory.claim("bo1", ClientId(1)).unwrap();
        directory.claim("al1", ClientId(1)).unwrap();
        directory.release("al1", ClientId(1));
        directory.release("bo1", ClientId(1));
        assert_eq!(directory.claim("al1", ClientId(2)), Err(NameTaken));
        assert_eq!(directory.names(), vec!["al1".to_string()]);
        // Leaving releases the last claim.
        directory.release("al1", ClientId(1));
        assert_eq!(directory.len(), 0);
    }

    #[test]
    fn listing_names_while_others_claim_never_deadlocks() {
        // Readers list while writers claim and release, as the manager and
        // the readers do. (parking_lot's RwLock is fair: a writer waiting
        // keeps new readers out, so a thread that reads again while it
        // still reads would wait for itself.)
        let directory = Arc::new(ClientDirectory::default());
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        // All three start together and run side by side for a third of a
        // second (or 2 million rounds), however fast the machine.
        let start = Arc::new(Barrier::new(3));
        for role in 0..3u64 {
            let (directory, done_tx, start) = (directory.clone(), done_tx.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
                for n in (0..2_000_000u64).take_while(|_| std::time::Instant::now() < until) {
                    if role == 0 {
                        directory.names();
                    } else {
                        let name = format!("w{role}-{}", n % 7);
                        let _ = directory.claim(&name, ClientId(role));
                        directory.release(&name, ClientId(role));
                    }
                }
                let _ = done_tx.send(role);
            });
        }
        for _ in 0..3 {
            if done_rx
                .recv_timeout(std::time::Duration::from_secs(15))
                .is_err()
            {
                #[cfg(feature = "deadlock-detection")]
                let found = crate::deadlock::reports(None).join("\n");
                #[cfg(not(feature = "deadlock-detection"))]
                let found = "(with --features deadlock-detection, the detector reports it)";
                panic!("a thread did not finish its rounds in 15 s: deadlocked on the directory's lock\n{found}");
            }
        }
    }

    /// Two readers that take turns with the directory's read lock, each
    /// letting go only once the other has it again, so that between them
    /// it is never free: the worst case of readers that keep coming.
    #[derive(Default)]
    struct Relay {
        /// How many turns have begun, and whether to stop.
        state: std::sync::Mutex<(u64, bool)>,
        changed: std::sync::Condvar,
    }

    impl Relay {
        /// One turn, the read guard held by the caller: until the other
        /// reader has begun its next turn, or `patience` has passed (it
        /// may be waiting behind a writer), or the relay stops.
        fn take_turn(&self, patience: std::time::Duration) {
            let mut state = self.state.lock().expect("the relay's lock");
            state.0 += 1;
            let mine = state.0;
            self.changed.notify_all();
            let (_state, _) = (self.changed)
                .wait_timeout_while(state, patience, |(turns, stop)| *turns == mine && !*stop)
                .expect("the relay's lock");
        }

        fn has_begun(&self) -> bool {
            self.state.lock().expect("the relay's lock").0 > 0
        }

        fn stop(&self) {
            self.state.lock().expect("the relay's lock").1 = true;
            self.changed.notify_all();
        }

        fn stopped(&self) -> bool {
            self.state.lock().expect("the relay's lock").1
        }
    }

    #[test]
    fn a_claim_waits_only_for_the_readers_already_in() {
        // A fair lock lets no new reader in once a writer waits, so a claim
        // waits for the reader inside to let go (here, at most its
        // patience). A lock that lets readers in past a waiting writer
        // keeps the claim waiting for as long as readers keep coming: here,
        // until the test stops them.
        let directory = Arc::new(ClientDirectory::default());
        let relay = Arc::new(Relay::default());
        let patience = std::time::Duration::from_millis(200);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (directory, relay) = (directory.clone(), relay.clone());
                thread::spawn(move || {
                    while !relay.stopped() {
                        let _guard = directory.read();
                        relay.take_turn(patience);
                    }
                })
            })
            .collect();
        while !relay.has_begun() {
            thread::yield_now();
        }
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let writer = {
            let directory = directory.clone();
            thread::spawn(move || {
                let claimed = directory.claim("writer", ClientId(1));
                let _ = done_tx.send(claimed);
            })
        };
        let claimed = done_rx.recv_timeout(std::time::Duration::from_secs(5));
        relay.stop();
        for thread in readers.into_iter().chain([writer]) {
            thread.join().expect("a reader or the writer");
        }
        assert_eq!(
            claimed,
            Ok(Ok(())),
            "a claim waited 5 s for the directory's write lock while two readers took turns \
             with the read lock: readers let in past a waiting writer starve it"
        );
    }

    #[test]
    fn names_are_listed_sorted_ignoring_case() {
        let directory = ClientDirectory::default();
        for (n, name) in ["carol", "Bob", "alice"].iter().enumerate() {
            directory.claim(name, ClientId(n as u64)).unwrap();
        }
        assert_eq!(directory.names(), vec!["alice", "Bob", "carol"]);
    }

    #[test]
    fn racing_claims_give_the_name_to_exactly_one() {
        // Threads try for the same names, in the same order, as fast as
        // they can. One behind finds each name taken, which is quicker than
        // taking it, so it catches up, and from then on they try for each
        // name at about the same instant. A gap of a few instructions
        // between a check and a claim is hit now and then, if there is
        // one; so they race again, for new names, for half a second.
        const THREADS: u64 = 3;
        const NAMES: usize = 10_000;
        let directory = Arc::new(ClientDirectory::default());
        let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
        for race in 0.. {
            let racers: Vec<_> = (0..THREADS)
                .map(|n| {
                    let directory = directory.clone();
                    thread::spawn(move || -> Vec<bool> {
                        (0..NAMES)
                            .map(|k| directory.claim(&format!("{race}-{k}"), ClientId(n)).is_ok())
                            .collect()
                    })
                })
                .collect();
            let won: Vec<Vec<bool>> = (racers.into_iter())
                .map(|racer| racer.join().expect("a claiming thread"))
                .collect();
            for k in 0..NAMES {
                let winners = won.iter().filter(|won| won[k]).count();
                assert_eq!(
                    winners, 1,
                    "race {race}, name {k}: {winners} of {THREADS} threads racing for it were given it"
                );
            }
            if std::time::Instant::now() >= until {
                break;
            }
        }
    }
}
