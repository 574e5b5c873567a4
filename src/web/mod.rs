//! The web door (`--http`, on by default): the `http-acceptor` thread, and
//! one `http-N` thread per HTTP connection (thread-per-connection again, at
//! most [`MAX_HTTP_CONNECTIONS`] at once). An optional part: `--http off`
//! and none of it runs; the chat server works without it.
//!
//! The acceptor owns the second `TcpListener`, a table of its connections'
//! threads (the chat acceptor's loop and table, to join them at shutdown),
//! and the [`Visitors`] by address, which decide who
//! gets in. Each `http-N` thread (`request.rs`) reads one request, with
//! deadlines and a size bound, answers it and closes; except `GET /ws`,
//! where, after the WebSocket handshake, the same thread becomes that
//! client's reader: it runs `reader::run` with the WebSocket door
//! (`doors/websocket.rs`), and from there a browser is a client like any
//! other. These threads read the stats and the gauges for `/health`,
//! `/metrics` and `/stats.json`, through `Shared`'s methods (each takes its
//! lock and lets go), and never hold a lock while they write.

mod board;
pub(crate) mod http;
pub(crate) mod metrics;
mod request;
mod visitors;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::acceptor::{self, ArrivalRate, Connections};
use crate::event::Event;
use crate::shared::{ClientId, Shared};
use crate::shutdown::ShutdownSignal;
use crate::socket::ClientSocket;
use request::Connection;
use visitors::Visitors;

/// HTTP connections served at once (WebSocket clients count as clients,
/// under `--max-clients`, instead). One more is answered 503 at once. One
/// address may hold at most a quarter of them (`visitors.rs`).
pub(crate) const MAX_HTTP_CONNECTIONS: usize = 64;

/// The web port sees more arrivals than the chat port: a page, its
/// WebSocket, and a poll of `/stats.json` every second per open page.
const WEB_ARRIVALS: ArrivalRate = ArrivalRate {
    burst: 256,
    per: Duration::from_secs(2),
};

pub(crate) fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    events_tx: Sender<Event>,
    shutdown: ShutdownSignal,
) {
    let mut door = WebDoor {
        shared,
        events_tx,
        slots: Arc::new(Slots::default()),
        visitors: Visitors::default(),
        bound: listener.local_addr().ok(),
    };
    let mut connections = Connections::new(WEB_ARRIVALS);
    acceptor::accept_until_shutdown(
        &listener,
        &shutdown,
        &mut connections,
        |stream, peer, connections| door.admit(stream, peer, connections),
    );
    drop(listener);
    // As the chat acceptor: not one of the senders the manager waits for.
    let WebDoor {
        shared, events_tx, ..
    } = door;
    drop(events_tx);
    connections.close_all(shared.config.shutdown_grace);
}

/// What the `http-acceptor` thread keeps between connections.
struct WebDoor {
    shared: Arc<Shared>,
    events_tx: Sender<Event>,
    slots: Arc<Slots>,
    visitors: Visitors,
    /// Where the door listens: its own address is always a `Host` it
    /// answers to.
    bound: Option<SocketAddr>,
}

impl WebDoor {
    /// Starts a connection's thread, or answers 503 saying which limit it
    /// is over.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr, connections: &mut Connections) {
        let max_per_addr = self.shared.config.max_per_addr;
        // The web door counts open connections by kind (`visitors.rs`); the
        // table shared with the chat acceptor's code checks the arrival rate
        // only, against a cap no address reaches.
        let arrivals_only = if max_per_addr == 0 { 0 } else { usize::MAX };
        let admitted = (connections.per_addr.admits(peer.ip(), arrivals_only))
            .map_err(|too_many| too_many.reason())
            .and_then(|()| (self.visitors.admit(peer.ip(), max_per_addr)).map_err(|r| r.reason()))
            .and_then(|stage| {
                let slot = self.slots.take().ok_or("too many connections, try again")?;
                Ok((stage, slot))
            });
        let (stage, slot) = match admitted {
            Ok(admitted) => admitted,
            Err(why) => {
                self.shared.stats.refuse_connection();
                return refuse(stream, why);
            }
        };
        self.visitors.forget_the_gone();
        let id = self.shared.new_client_id();
        if let Err(error) = self.start(id, stream, peer, stage, slot, connections) {
            log::warn!("web: cannot serve {peer}: {error}");
        }
    }

    fn start(
        &self,
        id: ClientId,
        stream: TcpStream,
        peer: SocketAddr,
        stage: visitors::Stage,
        slot: Slot,
        connections: &mut Connections,
    ) -> io::Result<()> {
        // A browser that vanishes is noticed like any client (TCP keepalive).
        acceptor::prepare_client_socket(&stream, &self.shared)?;
        let socket = Arc::new(ClientSocket::new(stream));
        let connection = Connection {
            id,
            peer,
            socket: socket.clone(),
            shared: self.shared.clone(),
            events_tx: self.events_tx.clone(),
            finished_tx: connections.finished_tx.clone(),
            bound: self.bound,
            stage,
        };
        let handle = thread::Builder::new()
            .name(format!("http-{}", id.0))
            .stack_size(self.shared.config.client_stack_bytes)
            .spawn(move || connection.serve(slot))?;
        connections.insert(id, peer.ip(), handle, &socket);
        Ok(())
    }
}

/// A 503 written straight to the socket: the connection has no thread.
fn refuse(mut stream: TcpStream, why: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(&http::error_response(503, why));
}

/// HTTP connections being answered. Taken by the acceptor before it starts
/// a connection's thread, and given back by that thread (through a
/// [`Slot`]) when it is done or has become a client's reader, so a burst of
/// connections cannot get past the cap: the check and the count are one
/// step (a compare-and-swap), as `ClientDirectory::claim` does for names.
#[derive(Default)]
struct Slots(AtomicUsize);

impl Slots {
    /// One slot, or `None` when all [`MAX_HTTP_CONNECTIONS`] are taken.
    fn take(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_HTTP_CONNECTIONS).then_some(n + 1)
            });
        taken.ok().map(|_| Slot(self.clone()))
    }
}

/// A taken slot, given back when dropped.
struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_cap_and_come_back_when_dropped() {
        let slots = Arc::new(Slots::default());
        let taken: Vec<Slot> = (0..MAX_HTTP_CONNECTIONS)
            .map(|n| {
                slots
                    .take()
                    .unwrap_or_else(|| panic!("slot {n} of {MAX_HTTP_CONNECTIONS}"))
            })
            .collect();
        assert!(slots.take().is_none(), "one past the cap");
        drop(taken);
        assert!(slots.take().is_some(), "given back when dropped");
    }
}
