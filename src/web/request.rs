//! One HTTP connection, on its own `http-N` thread: read one request,
//! answer it, close; or, after a WebSocket handshake or an event stream's
//! head (`curl.rs`), become that client's reader. It reads the stats and
//! the gauges for `/health`, `/metrics` and `/stats.json` through
//! `Shared`'s methods, and holds no lock while it writes. Its [`Stage`]
//! tells the web door's acceptor how far it has got.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::curl::Stream;
use super::http::{self, HeadError, Request};
use super::metrics;
use super::streams::Streams;
use super::visitors::Stage;
use super::Slot;
use crate::config::Config;
use crate::doors::{websocket, Door};
use crate::event::{Event, Named};
use crate::reader::{self, ReaderStart};
use crate::shared::gauges::Role;
use crate::shared::thread_states::{self, State};
use crate::shared::{ClientId, Shared};
use crate::socket::ClientSocket;

/// The chat page, its style and its script, compiled into the binary.
const PAGE: &str = include_str!("index.html");
const PAGE_CSS: &str = include_str!("page.css");
const PAGE_JS: &str = include_str!("page.js");

/// Sent with every answer but the errors (which have their own,
/// `http::error_with`). The policy lets a page from here
/// run only its own script and style (no inline ones), fetch and open a
/// WebSocket only to this same server, and be framed by nobody (against
/// clickjacking). `connect-src 'self'` takes in `ws://` to the page's own
/// host and port (CSP Level 3's rule for `'self'`), as Chromium does: the
/// browser test opens the WebSocket under this policy.
pub(super) const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

/// How long a new connection has to send the first byte of its request:
/// less than the whole head gets (`http_head_timeout`), so that a
/// connection that sends nothing frees its place soon.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(3);

/// One HTTP connection.
pub(super) struct Connection {
    pub(super) id: ClientId,
    pub(super) peer: SocketAddr,
    pub(super) socket: Arc<ClientSocket>,
    pub(super) shared: Arc<Shared>,
    pub(super) events_tx: Sender<Event>,
    pub(super) finished_tx: Sender<ClientId>,
    /// Where the door listens.
    pub(super) bound: Option<SocketAddr>,
    pub(super) stage: Stage,
    /// The curl door's open event streams, by token.
    pub(super) streams: Arc<Streams>,
}

/// How a request was answered.
enum Answered {
    /// The connection is done with.
    Done,
    /// A WebSocket handshake is accepted (the 101 is sent).
    WebSocket,
    /// An event stream is open (its head and token are sent).
    Events(Stream),
}

impl Connection {
    pub(super) fn serve(self, slot: Slot) {
        let answered = {
            let _role = self.shared.gauges.running(Role::Http);
            let _slot = slot;
            self.answer()
        };
        // A client's reader tells the acceptor when it is finished.
        let stage = self.stage.clone();
        match answered {
            Answered::Done => {
                self.socket.hang_up();
                let _ = self.finished_tx.send(self.id);
            }
            Answered::WebSocket => self.become_client(Door::WebSocket, None),
            Answered::Events(Stream { inbox, named, open }) => {
                self.become_client(Door::Events(inbox), Some(named));
                // Only now may its token go: until the reader is done, a
                // `/say` with it must find the stream.
                drop(open);
            }
        }
        stage.done();
    }

    /// Reads the request and answers it.
    fn answer(&self) -> Answered {
        let timeout = self.shared.config.http_head_timeout;
        let (request, early_body) = match read_head(self.socket.stream(), timeout) {
            Ok(read) => read,
            Err(status) => {
                self.send(&http::error_response(status, "could not read the request"));
                return Answered::Done;
            }
        };
        self.stage.head_read();
        // Escaped: a request's text is the client's, and a log is read on
        // a terminal (`{:?}` writes control characters as escapes).
        log::debug!(
            "web: {:?} {:?} from {}",
            request.method,
            request.path,
            self.peer
        );
        if let Err(refusal) = self.check(&request) {
            self.send(&refusal);
            return Answered::Done;
        }
        let head_only = request.method == "HEAD";
        let (status, content_type, body) = match request.path.as_str() {
            "/" => (200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec()),
            "/page.css" => (200, "text/css; charset=utf-8", PAGE_CSS.as_bytes().to_vec()),
            "/page.js" => (
                200,
                "text/javascript; charset=utf-8",
                PAGE_JS.as_bytes().to_vec(),
            ),
            "/health" => self.health(),
            "/metrics" => (
                200,
                metrics::PROMETHEUS_TYPE,
                metrics::prometheus(&self.shared).into_bytes(),
            ),
            "/stats.json" => (
                200,
                "application/json",
                metrics::json(&self.shared).into_bytes(),
            ),
            "/say" => {
                self.say(&request, early_body);
                return Answered::Done;
            }
            _ if head_only => {
                let what = match request.path.as_str() {
                    "/events" => "an event stream is opened with GET",
                    _ => "a WebSocket is opened with GET",
                };
                self.send(&http::error_response(405, what));
                return Answered::Done;
            }
            "/events" => {
                return self
                    .open_stream(&request)
                    .map_or(Answered::Done, Answered::Events)
            }
            _ if self.upgrade(&request) => return Answered::WebSocket,
            _ => return Answered::Done,
        };
        self.send(&http::response(
            status,
            content_type,
            SECURITY_HEADERS,
            &body,
            head_only,
        ));
        Answered::Done
    }

    /// The refusals every request may get, in the order a server checks
    /// them: the path, the method, then the `Host` it asked for; as the
    /// response to send.
    fn check(&self, request: &Request) -> Result<(), Vec<u8>> {
        let known = [
            "/",
            "/page.css",
            "/page.js",
            "/ws",
            "/events",
            "/say",
            "/health",
            "/metrics",
            "/stats.json",
        ];
        if !known.contains(&request.path.as_str()) {
            return Err(http::error_response(404, "no such page"));
        }
        if request.path == "/say" && request.method != "POST" {
            let why = "a line is said with POST (curl -d)";
            return Err(http::error_with(405, why, &[("Allow", "POST")]));
        }
        if request.path != "/say" && request.method != "GET" && request.method != "HEAD" {
            return Err(http::error_response(405, "only GET and HEAD"));
        }
        // HTTP/1.1 requires `Host` (RFC 9112, 3.2).
        let Some(host) = request.header("host") else {
            let why = "a request must say which Host it is for";
            return Err(http::error_response(400, why));
        };
        if !host_is_ours(host, self.bound, &self.shared.config) {
            log::warn!(
                "web: refused a request from {} for Host {host:?} (not one of ours: --http-host names more)",
                self.peer
            );
            let why = "this server does not answer to that Host name";
            return Err(http::error_response(421, why));
        }
        Ok(())
    }

    fn health(&self) -> (u16, &'static str, Vec<u8>) {
        let stopping = self.shared.stopping.load(Ordering::SeqCst);
        let stats = self.shared.snapshot();
        let body = format!(
            "{{\"status\":\"{}\",\"uptime_s\":{},\"online\":{}}}\n",
            if stopping { "stopping" } else { "ok" },
            stats.uptime.as_secs(),
            stats.online
        );
        let status = if stopping { 503 } else { 200 };
        (status, "application/json", body.into_bytes())
    }

    /// The WebSocket handshake (RFC 6455, 4.2), with its refusals.
    fn upgrade(&self, request: &Request) -> bool {
        let is_upgrade = request.header_has("upgrade", "websocket")
            && request.header_has("connection", "upgrade")
            && request.header("sec-websocket-version") == Some("13");
        let Some(key) = request.header("sec-websocket-key").filter(|_| is_upgrade) else {
            self.send(&http::error_response(426, "this is a WebSocket endpoint"));
            return false;
        };
        if !websocket::is_a_key(key) {
            self.send(&http::error_response(
                400,
                "Sec-WebSocket-Key is not 16 bytes in base64",
            ));
            return false;
        }
        // A page from another site may open a WebSocket to us with the
        // visitor's browser; only our own page may chat as the visitor.
        if !self.origin_is_ours(request, "a WebSocket") {
            self.send(&http::error_response(
                403,
                "WebSocket from another site's page",
            ));
            return false;
        }
        if let Err(refusal) = self.stage.become_client() {
            self.send(&http::error_response(503, refusal.reason()));
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

    /// After a handshake or an event stream's head: this thread is the
    /// client's reader from here.
    fn become_client(self, door: Door, named: Option<Named>) {
        log::debug!("web: {} is a {door:?} client ({})", self.peer, self.id);
        reader::run(ReaderStart {
            id: self.id,
            peer: self.peer,
            socket: self.socket,
            door,
            named,
            events_tx: self.events_tx,
            shared: self.shared,
            finished_tx: self.finished_tx,
        });
    }

    /// Whether `request` comes from no page, or from one of ours (see
    /// [`origin_is_ours`]); logged when not. `what` names what it asked for.
    pub(super) fn origin_is_ours(&self, request: &Request, what: &str) -> bool {
        let ours = origin_is_ours(request, &self.shared.config);
        if !ours {
            log::warn!(
                "web: refused {what} from {} with Origin {:?}",
                self.peer,
                request.header("origin")
            );
        }
        ours
    }

    pub(super) fn send(&self, bytes: &[u8]) {
        let mut stream = self.socket.stream();
        let _ = thread_states::blocked(State::Write, || stream.write_all(bytes));
    }
}

/// Whether `host` (a `Host` header) names this door: any IP address (an
/// address cannot be re-pointed by DNS), the door's own, `localhost`, or a
/// name given with `--http-host` (with its port, or any port if it gave
/// none). Any other name may be a DNS rebinding: a page on another site
/// whose name now points here, and whose script would read and post as
/// whoever runs its browser.
fn host_is_ours(host: &str, bound: Option<SocketAddr>, config: &Config) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        // `[::1]:7880`: an IPv6 address, in brackets.
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host
            .rsplit_once(':')
            .map_or(host.as_str(), |(name, _)| name),
    };
    if name.parse::<IpAddr>().is_ok() || name == "localhost" {
        return true;
    }
    let named = |allowed: &String| allowed == &host || allowed == name;
    bound.is_some_and(|addr| addr.to_string() == host) || config.http_hosts.iter().any(named)
}

/// Whether the page that opened this WebSocket is one of ours: its
/// `Origin` is `http://` and the `Host` it asked for (checked already), or
/// one given with `--public-origin` (behind a TLS proxy, `https://...`).
/// No `Origin` at all is a program, not a browser (browsers always send
/// one), and is allowed.
fn origin_is_ours(request: &Request, config: &Config) -> bool {
    let Some(origin) = request.header("origin") else {
        return true;
    };
    let own = request.header("host").map(|host| format!("http://{host}"));
    own.is_some_and(|own| origin.eq_ignore_ascii_case(&own))
        || (config.public_origins.iter()).any(|public| origin.eq_ignore_ascii_case(public))
}

/// Reads a request head: its first byte within [`FIRST_BYTE_TIMEOUT`], all
/// of it within `timeout` (`http_head_timeout`: a slowloris that dribbles
/// its headers is cut off) and [`http::MAX_HEAD_BYTES`]; with what was read
/// after it (the start of a `/say` body). The error is the status to answer
/// with.
fn read_head(mut stream: &TcpStream, timeout: Duration) -> Result<(Request, Vec<u8>), u16> {
    let started = Instant::now();
    let deadline = started + timeout;
    let first_byte = started + FIRST_BYTE_TIMEOUT.min(timeout);
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    loop {
        if let Some(end) = http::head_end(&head) {
            let early_body = head.split_off(end);
            let request = http::parse_head(&head).map_err(|error| match error {
                HeadError::BadRequest => 400_u16,
                HeadError::TooLarge => 431,
            })?;
            return Ok((request, early_body));
        }
        if head.len() > http::MAX_HEAD_BYTES {
            return Err(431);
        }
        let until = if head.is_empty() {
            first_byte
        } else {
            deadline
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(408);
        }
        // A WebSocket client sends nothing after its request until it has
        // our 101 (RFC 6455, 4.1), so a read cannot take its first frame.
        match thread_states::blocked(State::Read, || stream.read(&mut buffer)) {
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
    fn addresses_localhost_and_named_hosts_are_ours_and_nothing_else() {
        let config = Config {
            http_hosts: vec!["chat.example.org".into(), "proxy.local:8080".into()],
            ..Config::default()
        };
        let bound: Option<SocketAddr> = Some(([127, 0, 0, 1], 7880).into());
        for ours in [
            "127.0.0.1:7880",
            "LOCALHOST:7880",
            "localhost",
            "[::1]:7880",
            "192.168.1.10:7880",
            "chat.example.org",
            "chat.example.org:443",
            "proxy.local:8080",
        ] {
            assert!(host_is_ours(ours, bound, &config), "{ours}");
        }
        for theirs in [
            "rebind.evil.example:7880",
            "proxy.local:9999",
            "",
            "chat.example.org.evil:80",
        ] {
            assert!(!host_is_ours(theirs, bound, &config), "{theirs}");
        }
    }
}
