//! Who is at the web door, by address: for the `http-acceptor` thread's
//! admission rules. Owned by that thread alone; each connection it lets in
//! gets a [`Stage`] it shares with the connection's `http-N` thread, which
//! moves it on (head read, chat client, done) with atomic stores.
//!
//! Three limits per address, so that one address can neither fill the door
//! nor lock others out, and a classroom behind one NAT still gets in
//! (docs/PROTOCOL.md, "Limits"):
//!
//! - at most [`MAX_UNFINISHED_HEADS`] connections still sending their
//!   request's head: a slowloris holds a handful of slots, never all;
//! - at most [`MAX_REQUESTS`] short requests being answered at once, out of
//!   the door's 64: the page, `/stats.json`, `/metrics`, `/say`;
//! - at most `--max-per-addr` chat clients (WebSockets and event streams),
//!   counted apart from the short requests, so that a class's open pages do
//!   not starve its own polling. Which a request is only shows once its
//!   head is read, so this one is checked then, by the `http-N` thread
//!   ([`Stage::become_client`]), against a count the address's connections
//!   share: an address with all its clients open can still poll and say.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::acceptor::addr_key;

/// Connections from one address still sending their request's head.
pub(crate) const MAX_UNFINISHED_HEADS: usize = 4;

/// Short requests from one address being answered at once.
pub(crate) const MAX_REQUESTS: usize = 16;

/// Where one connection is. Set by its `http-N` thread, read by the
/// acceptor: `Relaxed` is enough, as each side only needs the number, and a
/// stale one errs by one connection, for a moment. The count of the
/// address's clients is a check and a count in one step, as [`Slots`]'
/// (`web/mod.rs`) is, so that clients arriving at once cannot pass it.
///
/// [`Slots`]: super::Slots
#[derive(Clone, Debug)]
pub(crate) struct Stage {
    at: Arc<AtomicU8>,
    /// Chat clients open from this connection's address, shared by all of
    /// that address's connections.
    clients: Arc<AtomicUsize>,
    /// `--max-per-addr`; 0 for no limit.
    max_clients: usize,
}

impl Stage {
    const READING_HEAD: u8 = 0;
    const ANSWERING: u8 = 1;
    const CLIENT: u8 = 2;
    const DONE: u8 = 3;

    fn new(clients: Arc<AtomicUsize>, max_clients: usize) -> Self {
        Stage {
            at: Arc::new(AtomicU8::new(Self::READING_HEAD)),
            clients,
            max_clients,
        }
    }

    pub(crate) fn head_read(&self) {
        self.at.store(Self::ANSWERING, Ordering::Relaxed);
    }

    /// This connection becomes a chat client (a WebSocket, an event
    /// stream), if its address has fewer than `--max-per-addr` open.
    pub(crate) fn become_client(&self) -> Result<(), Refusal> {
        let max = match self.max_clients {
            0 => usize::MAX,
            max => max,
        };
        (self.clients)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Refusal::Clients)?;
        self.at.store(Self::CLIENT, Ordering::Relaxed);
        Ok(())
    }

    /// The connection is over (a client's counts as one less).
    pub(crate) fn done(&self) {
        if self.at.swap(Self::DONE, Ordering::Relaxed) == Self::CLIENT {
            self.clients.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn get(&self) -> u8 {
        self.at.load(Ordering::Relaxed)
    }
}

/// Why a connection was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnfinishedHeads,
    Requests,
    Clients,
}

impl Refusal {
    /// The sentence of the 503 that says so.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::UnfinishedHeads => "too many unfinished requests from your address",
            Refusal::Requests => "too many requests from your address at once",
            Refusal::Clients => "too many chat connections from your address",
        }
    }
}

#[derive(Default)]
pub(crate) struct Visitors {
    by_addr: HashMap<IpAddr, Address>,
}

/// One address's connections, and how many of them are chat clients.
#[derive(Default)]
struct Address {
    stages: Vec<Stage>,
    clients: Arc<AtomicUsize>,
}

impl Visitors {
    /// Lets one more connection from `ip` in, or says which limit it is
    /// over. `max_clients` is `--max-per-addr`, checked later
    /// ([`Stage::become_client`]); 0 turns every limit per address off.
    pub(crate) fn admit(&mut self, ip: IpAddr, max_clients: usize) -> Result<Stage, Refusal> {
        if max_clients == 0 {
            return Ok(Stage::new(Arc::default(), 0));
        }
        let address = self.by_addr.entry(addr_key(ip)).or_default();
        let stages = &mut address.stages;
        stages.retain(|stage| stage.get() != Stage::DONE);
        let count = |wanted: &[u8]| stages.iter().filter(|s| wanted.contains(&s.get())).count();
        if count(&[Stage::READING_HEAD]) >= MAX_UNFINISHED_HEADS {
            return Err(Refusal::UnfinishedHeads);
        }
        if count(&[Stage::READING_HEAD, Stage::ANSWERING]) >= MAX_REQUESTS {
            return Err(Refusal::Requests);
        }
        let stage = Stage::new(address.clients.clone(), max_clients);
        stages.push(stage.clone());
        Ok(stage)
    }

    /// Forgets addresses with nothing open, now and then, so that a
    /// stream of passers-by does not grow the table for ever.
    pub(crate) fn forget_the_gone(&mut self) {
        if self.by_addr.len() > 1024 {
            for address in self.by_addr.values_mut() {
                address.stages.retain(|stage| stage.get() != Stage::DONE);
            }
            self.by_addr.retain(|_, address| !address.stages.is_empty());
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
    fn clients_are_counted_apart_from_short_requests() {
        let mut visitors = Visitors::default();
        let class: IpAddr = [10, 0, 0, 1].into();
        let mut pages = Vec::new();
        for _ in 0..60 {
            let stage = visitors
                .admit(class, 64)
                .expect("a page opening its WebSocket");
            stage.head_read();
            stage.become_client().expect("within --max-per-addr");
            pages.push(stage);
        }
        // Sixty open pages, and their polling still gets in.
        for _ in 0..MAX_REQUESTS {
            visitors.admit(class, 64).expect("a poll").head_read();
        }
        assert_eq!(visitors.admit(class, 64).err(), Some(Refusal::Requests));
        drop(pages);
    }

    #[test]
    fn an_address_with_all_its_clients_open_can_still_ask_and_say() {
        let mut visitors = Visitors::default();
        let me: IpAddr = [10, 0, 0, 2].into();
        let stream = visitors.admit(me, 1).expect("the first");
        stream.head_read();
        stream.become_client().expect("its one client");
        let say = visitors.admit(me, 1).expect("a /say is let in");
        say.head_read();
        assert_eq!(
            say.become_client().err(),
            Some(Refusal::Clients),
            "not a second"
        );
        say.done();
        // The refused one counted nothing; the first one's end frees its place.
        stream.done();
        stream.done();
        let next = visitors.admit(me, 1).expect("let in");
        next.become_client().expect("its place is free again");
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
