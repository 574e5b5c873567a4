//! The web door (`--http`, on by default): the `http-acceptor` thread, and
//! one `http-N` thread per HTTP connection (thread-per-connection again, at
//! most [`MAX_HTTP_CONNECTIONS`] at once). An optional part: `--http off`
//! and none of it runs; the chat server works without it.
//!
//! The acceptor owns the second `TcpListener` and a table of its
//! connections' threads, to join them at shutdown, like the chat acceptor
//! (it uses the chat acceptor's loop and table). Each `http-N` thread reads
//! one request (with a deadline and a size bound), answers it and closes;
//! except `GET /ws`, where, after the WebSocket handshake, the same thread
//! becomes that client's reader: it runs `reader::run` with the WebSocket
//! door (`doors/websocket.rs`), and from there a browser is a client like
//! any other. These threads read the stats and the gauges for `/health`,
//! `/metrics` and `/stats.json`, through `Shared`'s methods (each takes its
//! lock and lets go), and never hold a lock while they write.

pub(crate) mod http;
pub(crate) mod metrics;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::acceptor::{self, Connections};
use crate::doors::{websocket, Door};
use crate::event::Event;
use crate::reader::{self, ReaderStart};
use crate::shared::gauges::Role;
use crate::shared::{ClientId, Shared};
use crate::shutdown::ShutdownSignal;
use crate::socket::ClientSocket;
use http::{HeadError, Request};

/// HTTP connections served at once (WebSocket clients count as clients,
/// under `--max-clients`, instead). One more is answered 503 at once.
pub(crate) const MAX_HTTP_CONNECTIONS: usize = 64;

/// The chat page: one self-contained file, compiled into the binary.
const PAGE: &str = include_str!("index.html");

pub(crate) fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    events_tx: Sender<Event>,
    shutdown: ShutdownSignal,
) {
    let mut connections = Connections::new();
    let slots = Arc::new(Slots::default());
    acceptor::accept_until_shutdown(
        &listener,
        &shutdown,
        &mut connections,
        |stream, peer, connections| {
            let id = shared.new_client_id();
            if let Err(error) = start(id, stream, peer, &shared, &events_tx, &slots, connections) {
                log::warn!("web: cannot serve {peer}: {error}");
            }
        },
    );
    drop(listener);
    // As the chat acceptor: not one of the senders the manager waits for.
    drop(events_tx);
    connections.close_all(shared.config.shutdown_grace);
}

/// HTTP connections being answered. Taken by the acceptor before it starts
/// a connection's thread, and given back by that thread (through a
/// [`Slot`]) when it is done or has become a client's reader, so a burst of
/// connections cannot get past the cap: the check and the count are one
/// step (a compare-and-swap), as lab 01 teaches for names.
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

/// Starts a connection's thread, or answers 503 when there are too many.
fn start(
    id: ClientId,
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    events_tx: &Sender<Event>,
    slots: &Arc<Slots>,
    connections: &mut Connections,
) -> io::Result<()> {
    let slot = slots.take();
    let admitted = connections
        .per_addr
        .admits(peer.ip(), shared.config.max_per_addr);
    let Some(slot) = slot.filter(|_| admitted) else {
        let mut stream = stream;
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = stream.write_all(&http::error_response(
            503,
            "too many connections, try again",
        ));
        return Ok(());
    };
    // A browser that vanishes is noticed like any client (TCP keepalive).
    acceptor::prepare_client_socket(&stream, shared)?;
    let socket = Arc::new(ClientSocket::new(stream));
    let connection = Connection {
        id,
        peer,
        socket: socket.clone(),
        shared: shared.clone(),
        events_tx: events_tx.clone(),
        finished_tx: connections.finished_tx.clone(),
    };
    let handle = thread::Builder::new()
        .name(format!("http-{}", id.0))
        .stack_size(shared.config.client_stack_bytes)
        .spawn(move || connection.serve(slot))?;
    connections.insert(id, peer.ip(), handle, &socket);
    Ok(())
}

/// One HTTP connection, on its own thread.
struct Connection {
    id: ClientId,
    peer: SocketAddr,
    socket: Arc<ClientSocket>,
    shared: Arc<Shared>,
    events_tx: Sender<Event>,
    finished_tx: Sender<ClientId>,
}

impl Connection {
    fn serve(self, slot: Slot) {
        let upgraded = {
            let _role = self.shared.gauges.running(Role::Http);
            let _slot = slot;
            self.answer()
        };
        if upgraded {
            // The reader tells the acceptor when it is finished.
            self.become_client();
        } else {
            self.socket.hang_up();
            let _ = self.finished_tx.send(self.id);
        }
    }

    /// Reads the request and answers it; true for a WebSocket upgrade that
    /// has been accepted (the 101 is sent).
    fn answer(&self) -> bool {
        let timeout = self.shared.config.http_head_timeout;
        let request = match read_head(self.socket.stream(), timeout) {
            Ok(request) => request,
            Err(status) => {
                self.send(&http::error_response(status, "could not read the request"));
                return false;
            }
        };
        log::debug!(
            "web: {} {} from {}",
            request.method,
            request.path,
            self.peer
        );
        let known = ["/", "/ws", "/health", "/metrics", "/stats.json"];
        if !known.contains(&request.path.as_str()) {
            self.send(&http::error_response(404, "no such page"));
            return false;
        }
        if request.method != "GET" {
            self.send(&http::error_response(405, "only GET"));
            return false;
        }
        match request.path.as_str() {
            "/" => self.send(&http::response(
                200,
                "text/html; charset=utf-8",
                &[],
                PAGE.as_bytes(),
            )),
            "/health" => self.health(),
            "/metrics" => {
                let body = metrics::prometheus(&self.shared);
                self.send(&http::response(
                    200,
                    metrics::PROMETHEUS_TYPE,
                    &[],
                    body.as_bytes(),
                ));
            }
            "/stats.json" => {
                let body = metrics::json(&self.shared);
                self.send(&http::response(
                    200,
                    "application/json",
                    &[],
                    body.as_bytes(),
                ));
            }
            _ => return self.upgrade(&request),
        }
        false
    }

    fn health(&self) {
        let stopping = self.shared.stopping.load(Ordering::SeqCst);
        let stats = self.shared.snapshot();
        let body = format!(
            "{{\"status\":\"{}\",\"uptime_s\":{},\"online\":{}}}\n",
            if stopping { "stopping" } else { "ok" },
            stats.uptime.as_secs(),
            stats.online
        );
        let status = if stopping { 503 } else { 200 };
        self.send(&http::response(
            status,
            "application/json",
            &[],
            body.as_bytes(),
        ));
    }

    /// The WebSocket handshake (RFC 6455, 4.2), with its refusals.
    fn upgrade(&self, request: &Request) -> bool {
        let key = request.header("sec-websocket-key");
        let is_upgrade = request.header_has("upgrade", "websocket")
            && request.header_has("connection", "upgrade")
            && request.header("sec-websocket-version") == Some("13");
        let Some(key) = key.filter(|_| is_upgrade) else {
            self.send(&http::error_response(426, "this is a WebSocket endpoint"));
            return false;
        };
        // A page from another site may open a WebSocket to us with the
        // visitor's browser; only our own page may chat as the visitor.
        if !origin_is_ours(request) {
            log::warn!(
                "web: refused a WebSocket from {} with Origin {:?}",
                self.peer,
                request.header("origin")
            );
            self.send(&http::error_response(
                403,
                "WebSocket from another site's page",
            ));
            return false;
        }
        let stats = &self.shared.stats;
        if !stats.try_open_connection(self.shared.config.max_clients) {
            self.send(&http::error_response(503, "server full, try again later"));
            return false;
        }
        let response = http::switching_protocols(&websocket::accept_key(key));
        if self.socket.stream().write_all(&response).is_err() {
            stats.refuse_opened_connection();
            return false;
        }
        true
    }

    /// After a handshake: this thread is the client's reader from here.
    fn become_client(self) {
        log::debug!("web: {} is a WebSocket client ({})", self.peer, self.id);
        reader::run(ReaderStart {
            id: self.id,
            peer: self.peer,
            socket: self.socket,
            door: Door::WebSocket,
            events_tx: self.events_tx,
            shared: self.shared,
            finished_tx: self.finished_tx,
        });
    }

    fn send(&self, bytes: &[u8]) {
        let mut stream = self.socket.stream();
        let _ = stream.write_all(bytes);
    }
}

/// Whether the page that opened this WebSocket is our own: its `Origin` is
/// `http://` and the `Host` it asked for. No `Origin` at all is a program,
/// not a browser (browsers always send one), and is allowed.
fn origin_is_ours(request: &Request) -> bool {
    match (request.header("origin"), request.header("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin.eq_ignore_ascii_case(&format!("http://{host}")),
        (Some(_), None) => false,
    }
}

/// Reads a request head within `timeout` (`http_head_timeout`: a slowloris
/// that dribbles its headers is cut off) and [`http::MAX_HEAD_BYTES`]; the
/// error is the status to answer with.
fn read_head(mut stream: &TcpStream, timeout: Duration) -> Result<Request, u16> {
    let deadline = Instant::now() + timeout;
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    loop {
        if let Some(end) = http::head_end(&head) {
            head.truncate(end);
            return http::parse_head(&head).map_err(|error| match error {
                HeadError::BadRequest => 400,
                HeadError::TooLarge => 431,
            });
        }
        if head.len() > http::MAX_HEAD_BYTES {
            return Err(431);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(408);
        }
        // A WebSocket client sends nothing after its request until it has
        // our 101 (RFC 6455, 4.1), so a read cannot take its first frame.
        match stream.read(&mut buffer) {
            Ok(0) => return Err(400),
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(408),
        }
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
