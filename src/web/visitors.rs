//! Who is at the web door, by address: for the `http-acceptor` thread's
//! admission rules. Owned by that thread alone; each connection it lets in
//! gets a [`Stage`] it shares with the connection's `http-N` thread, which
//! moves it on (head read, WebSocket, done) with one atomic store.
//!
//! Three limits per address, so that one address can neither fill the door
//! nor lock others out, and a classroom behind one NAT still gets in
//! (docs/PROTOCOL.md, "Limits"):
//!
//! - at most [`MAX_UNFINISHED_HEADS`] connections still sending their
//!   request's head: a slowloris holds a handful of slots, never all;
//! - at most [`MAX_REQUESTS`] short requests being answered at once, out of
//!   the door's 64: the page, `/stats.json`, `/metrics`;
//! - at most `--max-per-addr` WebSockets: those are clients, counted apart
//!   from the short requests, so that a class's open pages do not starve
//!   its own polling.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::acceptor::addr_key;

/// Connections from one address still sending their request's head.
pub(crate) const MAX_UNFINISHED_HEADS: usize = 4;

/// Short requests from one address being answered at once.
pub(crate) const MAX_REQUESTS: usize = 16;

/// Where one connection is. Set by its `http-N` thread, read by the
/// acceptor: `Relaxed` is enough, as each side only needs the number, and a
/// stale one errs by one connection, for a moment.
#[derive(Clone, Debug)]
pub(crate) struct Stage(Arc<AtomicU8>);

impl Stage {
    const READING_HEAD: u8 = 0;
    const ANSWERING: u8 = 1;
    const WEBSOCKET: u8 = 2;
    const DONE: u8 = 3;

    fn new() -> Self {
        Stage(Arc::new(AtomicU8::new(Self::READING_HEAD)))
    }

    pub(crate) fn head_read(&self) {
        self.0.store(Self::ANSWERING, Ordering::Relaxed);
    }

    pub(crate) fn websocket(&self) {
        self.0.store(Self::WEBSOCKET, Ordering::Relaxed);
    }

    pub(crate) fn done(&self) {
        self.0.store(Self::DONE, Ordering::Relaxed);
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a connection was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnfinishedHeads,
    Requests,
    WebSockets,
}

impl Refusal {
    /// The sentence of the 503 that says so.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::UnfinishedHeads => "too many unfinished requests from your address",
            Refusal::Requests => "too many requests from your address at once",
            Refusal::WebSockets => "too many chat connections from your address",
        }
    }
}

#[derive(Default)]
pub(crate) struct Visitors {
    by_addr: HashMap<IpAddr, Vec<Stage>>,
}

impl Visitors {
    /// Lets one more connection from `ip` in, or says which limit it is
    /// over. `max_websockets` is `--max-per-addr`; 0 turns every limit per
    /// address off.
    pub(crate) fn admit(&mut self, ip: IpAddr, max_websockets: usize) -> Result<Stage, Refusal> {
        if max_websockets == 0 {
            return Ok(Stage::new());
        }
        let stages = self.by_addr.entry(addr_key(ip)).or_default();
        stages.retain(|stage| stage.get() != Stage::DONE);
        let count = |wanted: &[u8]| stages.iter().filter(|s| wanted.contains(&s.get())).count();
        if count(&[Stage::READING_HEAD]) >= MAX_UNFINISHED_HEADS {
            return Err(Refusal::UnfinishedHeads);
        }
        if count(&[Stage::READING_HEAD, Stage::ANSWERING]) >= MAX_REQUESTS {
            return Err(Refusal::Requests);
        }
        // A new connection may become a WebSocket: it is let in while the
        // address has room for one more.
        if count(&[Stage::WEBSOCKET]) >= max_websockets {
            return Err(Refusal::WebSockets);
        }
        let stage = Stage::new();
        stages.push(stage.clone());
        Ok(stage)
    }

    /// Forgets addresses with nothing open, now and then, so that a
    /// stream of passers-by does not grow the table for ever.
    pub(crate) fn forget_the_gone(&mut self) {
        if self.by_addr.len() > 1024 {
            for stages in self.by_addr.values_mut() {
                stages.retain(|stage| stage.get() != Stage::DONE);
            }
            self.by_addr.retain(|_, stages| !stages.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_holds_a_few_unfinished_heads_and_others_are_not_affected() {
        let mut visitors = Visitors::default();
        let mallory: IpAddr = [127, 0, 0, 1].into();
        let held: Vec<Stage> = (0..MAX_UNFINISHED_HEADS)
            .map(|_| visitors.admit(mallory, 64).expect("within the cap"))
            .collect();
        assert_eq!(
            visitors.admit(mallory, 64).err(),
            Some(Refusal::UnfinishedHeads)
        );
        assert!(
            visitors.admit([127, 0, 0, 2].into(), 64).is_ok(),
            "another address"
        );
        // Once a head is read, its place is free for another.
        held[0].head_read();
        assert!(visitors.admit(mallory, 64).is_ok());
    }

    #[test]
    fn websockets_are_counted_apart_from_short_requests() {
        let mut visitors = Visitors::default();
        let class: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..60 {
            let stage = visitors
                .admit(class, 64)
                .expect("a page opening its WebSocket");
            stage.head_read();
            stage.websocket();
        }
        // Sixty open pages, and their polling still gets in.
        for _ in 0..MAX_REQUESTS {
            visitors.admit(class, 64).expect("a poll").head_read();
        }
        assert_eq!(visitors.admit(class, 64).err(), Some(Refusal::Requests));
    }

    #[test]
    fn ipv6_addresses_are_counted_by_their_64_bit_prefix() {
        let mut visitors = Visitors::default();
        for n in 0..MAX_UNFINISHED_HEADS as u16 {
            let ip: IpAddr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, n + 1).into();
            visitors.admit(ip, 64).expect("within the cap");
        }
        let next: IpAddr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9).into();
        assert_eq!(
            visitors.admit(next, 64).err(),
            Some(Refusal::UnfinishedHeads)
        );
        let other: IpAddr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1).into();
        assert!(visitors.admit(other, 64).is_ok(), "another /64");
    }
}
