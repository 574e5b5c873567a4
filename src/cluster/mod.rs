//! Several threadchat servers as one chat, through Redis (`--redis URL`,
//! built with `--features redis`). An optional part: with one server none of
//! it runs, and a student may skip it.
//!
//! No thread runs this file; it is the vocabulary of the cluster, like
//! `event.rs` is for one server. The manager's side is the [`relay::Relay`],
//! which the manager thread holds behind its `Elsewhere` seam and which owns
//! what this server knows of the others (the [`roster`]). Each server has
//! two more threads, and both talk to Redis, never to a client:
//!
//! - the **`redis-publisher`** (`publisher.rs`) owns one Redis connection.
//!   The relay, on the manager thread, hands it [`ToRedis`] work over a
//!   bounded channel with `try_send` (docs/ARCHITECTURE.md, invariant 1):
//!   when the queue is full, or Redis is down, the line is counted as
//!   unpublished and the manager goes on. It also says "alive" for this server every third of
//!   `--redis-ttl`, and keeps this server's names claimed in Redis.
//! - the **`redis-subscriber`** (`subscriber.rs`) owns a second connection,
//!   subscribed to the one channel every server publishes on ([`BUS`]). It
//!   turns each message from another server into a [`ClusterEvent`], sent
//!   to the manager on a channel of its own (`cluster_tx`).
//!
//! Reader threads claim names in Redis themselves, through a small pool of
//! connections (`names.rs`): a claim must be answered before the client is
//! welcomed, and a reader is the thread that waits for its own client.
//!
//! What goes over Redis ([`wire`]), the relay and the [`roster`] are plain
//! logic, with no I/O, compiled in every build and unit-tested without
//! Redis; only the three files that talk to Redis need the `redis` crate.
//! `start` is how `Server::start` gets it all going. docs/CLUSTER.md draws
//! the threads and says what is ordered and what happens when something
//! fails.

#[cfg(feature = "redis")]
pub(crate) mod names;
#[cfg(feature = "redis")]
pub(crate) mod publisher;
pub(crate) mod relay;
pub(crate) mod roster;
pub(crate) mod start;
#[cfg(feature = "redis")]
pub(crate) mod subscriber;
pub(crate) mod wire;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

pub(crate) use wire::{Body, Message};

/// The Redis channel every server publishes on and subscribes to.
pub(crate) const BUS: &str = "threadchat:bus";

/// The set of room keys that have a history list in Redis.
pub(crate) const ROOMS_KEY: &str = "threadchat:rooms";

/// The Redis list holding a room's last `--history` lines.
pub(crate) fn history_key(room_key: &str) -> String {
    format!("threadchat:history:{room_key}")
}

/// The Redis key that says which server holds a name (lowercase).
pub(crate) fn name_key(name: &str) -> String {
    format!("threadchat:name:{}", crate::logic::names::key(name))
}

/// One server's identity on the bus: random, chosen at start, so that two
/// servers on one machine, or one server restarted, never share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ServerId(pub(crate) u64);

impl ServerId {
    /// std has no random number generator, but every `RandomState` is seeded
    /// from the operating system's: hashing nothing with a fresh one gives a
    /// random 64-bit number.
    pub(crate) fn random() -> Self {
        ServerId(RandomState::new().build_hasher().finish())
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

pub(crate) use crate::logic::history::LineId;

/// What the manager asks of the `redis-publisher` thread, over the
/// `to_redis` channel.
#[derive(Debug)]
pub(crate) enum ToRedis {
    /// Tell every other server.
    Publish(Body),
    /// Names this server no longer holds. Each is deleted in Redis if it is
    /// still ours there and nobody here has claimed it again meanwhile.
    Release(Vec<String>),
}

/// What the Redis threads tell the manager, over `cluster_tx`.
#[derive(Debug)]
pub(crate) enum ClusterEvent {
    /// A message another server published.
    Message(Message),
    /// A room's history as Redis keeps it, read when the subscriber
    /// (re)connects: oldest first.
    History {
        room: String,
        lines: Vec<(LineId, String)>,
    },
    /// One of the two Redis connections was lost, or is back.
    Link { side: Side, up: bool },
}

/// Which of the two Redis connections a [`ClusterEvent::Link`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Publisher,
    Subscriber,
}

/// How many messages from the Redis threads may wait for the manager. When
/// it is full they wait, and Redis buffers for them: backpressure, as for
/// a reader.
pub(crate) const CLUSTER_QUEUE_CAPACITY: usize = 4096;

/// How much work the manager may have waiting for the `redis-publisher`
/// before it counts what does not fit as unpublished: a few seconds of a
/// busy classroom, so a short stall of Redis loses nothing.
pub(crate) const TO_REDIS_CAPACITY: usize = 16 * 1024;

/// Every server says "alive", and refreshes its names, this often: three
/// times per TTL, so that one lost message never drops a live server.
pub(crate) fn alive_every(ttl: Duration) -> Duration {
    ttl / 3
}

/// Waits between reconnection attempts: 100 ms, doubling, at most 2 s.
/// Shared by both Redis threads.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const LONGEST: Duration = Duration::from_secs(2);

    pub(crate) fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// The wait before the next attempt; each call doubles the one after.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::LONGEST);
        wait
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_starts_again_when_reset() {
        let mut backoff = Backoff::new();
        let waits: Vec<u128> = (0..7).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::from_millis(100));
    }

    #[test]
    fn server_ids_differ() {
        assert_ne!(ServerId::random(), ServerId::random());
    }

    #[test]
    fn name_keys_ignore_case() {
        assert_eq!(name_key("Alice"), "threadchat:name:alice");
    }
}
