//! A model test of a lock's counters (`LockStats`), run as the outbox's
//! are (`RUSTFLAGS="--cfg loom"`, see `outbox/loom.rs`): loom runs the body
//! once for every interleaving, and for every value each atomic load may
//! return under the memory model, which a test on x86 cannot show.
//!
//! Two threads take a contended lock (their `try_` fails), counting an
//! acquisition and then a wait; the test's thread takes a copy meanwhile.

use ::loom::sync::Arc;
use ::loom::thread;

use super::*;

#[test]
fn a_copy_never_shows_more_waits_than_acquisitions() {
    ::loom::model(|| {
        let stats = Arc::new(LockStats::default());
        let takers: Vec<_> = (0..2)
            .map(|_| {
                let stats = stats.clone();
                thread::spawn(move || drop(stats.acquire(LockId::Clients, || None, || ())))
            })
            .collect();
        let seen = stats.read();
        assert!(
            seen.contended <= seen.acquisitions,
            "a copy shows {} waits for {} acquisitions",
            seen.contended,
            seen.acquisitions
        );
        for taker in takers {
            taker.join().expect("a thread taking the lock");
        }
    });
}
