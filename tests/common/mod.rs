//! Shared test helpers: an in-process server on 127.0.0.1:0 and test clients
//! whose reads wait for a line with a deadline and fail with a message saying
//! what was expected and what arrived. No test sleeps to synchronise.
//!
//! To check that nothing *else* arrived (no echo, no leak between rooms), a
//! test sends a command and expects its reply as the very next line: lines to
//! one client keep the order the manager queued them in, so anything queued
//! before the reply would show up first.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod curl;
pub mod http;
pub mod irc;
pub mod process;
pub mod rng;
pub mod ws;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use threadchat::{Config, Server, ServerHandle};

/// How long any single expectation may wait. Generous: the suite must pass
/// on a loaded 2-core machine; a passing test never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The defaults, on a free port, with room history, the rate limit and the
/// per-address cap off (every test client connects from 127.0.0.1), and
/// neither the web door nor the IRC door (their default ports would be
/// shared by every test running at once; a test that wants one asks for
/// it on port 0).
/// Without history, a client that registers sees its welcome followed by
/// live lines only, whatever was said before it came; without the limit, a
/// test can send a thousand lines at once. The tests of history
/// (tests/suite/rooms.rs) and of flood control (tests/suite/hostile.rs)
/// turn them on.
pub fn test_config() -> Config {
    Config {
        addr: "127.0.0.1:0".to_string(),
        history: 0,
        rate_limit: None,
        room_rate: None,
        max_per_addr: 0,
        http: None,
        irc: None,
        ..Config::default()
    }
}

/// Starts a server on a free port. Shut it down with `handle.shutdown()`, or
/// let it drop (which also shuts down and joins).
pub fn start_server(config: Config) -> ServerHandle {
    let _ = env_logger::builder().is_test(true).try_init();
    Server::start(config).expect("server should start on 127.0.0.1:0")
}

/// Starts a server with the web door on a free port too; its address.
pub fn start_web_server(config: Config) -> (ServerHandle, SocketAddr) {
    let server = start_server(Config {
        http: Some("127.0.0.1:0".to_string()),
        ..config
    });
    let web = server.web_addr().expect("the web door is on");
    (server, web)
}

/// Waits until `condition` holds, or fails saying what was expected and the
/// last thing seen.
pub fn wait_until<T: std::fmt::Debug>(
    what: &str,
    mut probe: impl FnMut() -> T,
    mut condition: impl FnMut(&T) -> bool,
) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = probe();
        if condition(&seen) {
            return seen;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {DEADLINE:?} waiting for {what}; last seen: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(10)); // polling interval, not synchronisation
    }
}

/// Lines from `next` until one is `expected`; the lines before it. `next`
/// fails the test (with what it has seen) if no line comes in time.
pub fn skip_until(mut next: impl FnMut() -> String, expected: &str) -> Vec<String> {
    let mut skipped = Vec::new();
    loop {
        let line = next();
        if line == expected {
            return skipped;
        }
        skipped.push(line);
    }
}

/// Registers `names` in order, each once the one before has been welcomed,
/// and has every client read the arrival of each later one: each earlier
/// client's next lines must be exactly `* NAME joined` for every later name,
/// in order. (The manager handles one registration after the other, so that
/// order is fixed.) Afterwards, every client's next line is whatever comes
/// after all the arrivals. The room must announce them all, as it does up to
/// `announce_up_to` others.
pub fn register_all<const N: usize>(addr: SocketAddr, names: [&str; N]) -> [Client; N] {
    let mut clients: Vec<Client> = Vec::with_capacity(N);
    for name in names {
        let newcomer = Client::register(addr, name);
        let joined = format!("* {name} joined");
        for earlier in &mut clients {
            earlier.expect(&joined);
        }
        clients.push(newcomer);
    }
    match clients.try_into() {
        Ok(clients) => clients,
        Err(_) => unreachable!("one client per name"),
    }
}

/// A TCP connection to `to` from the loopback address `from` (any of
/// 127.0.0.0/8 is this machine), so that a test can be several addresses
/// at once. std cannot bind before it connects; libc can, on Unix (the
/// tests that need several addresses run there only).
#[cfg(unix)]
pub fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let SocketAddr::V4(to) = to else {
        panic!("connect_from speaks IPv4 only, not to {to}");
    };
    let address = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        // The BSDs' socket addresses start with their own length.
        #[cfg(any(target_os = "macos", target_os = "freebsd"))]
        sin_len: std::mem::size_of::<libc::sockaddr_in>() as u8,
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip),
        },
        sin_zero: [0; 8],
    };
    let (local, remote) = (address(from, 0), address(to.ip().octets(), to.port()));
    let length = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: socket takes no pointers; the descriptor it returns is ours.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was returned by socket above and is owned by nothing
    // else; from here the TcpStream owns it and closes it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    // SAFETY: the pointer and length describe `local`, a live sockaddr_in
    // on our stack, read by the kernel during the call only.
    let bound = unsafe { libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), length) };
    assert_eq!(
        bound,
        0,
        "bind to {from:?}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: as above, for `remote`.
    let connected =
        unsafe { libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), length) };
    assert_eq!(
        connected,
        0,
        "connect to {to}: {}",
        std::io::Error::last_os_error()
    );
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("set_read_timeout");
    stream
}

pub struct Client {
    pub label: String,
    stream: TcpStream,
    /// Bytes read but not yet returned as a line.
    pending: Vec<u8>,
    /// Every line returned so far, for failure messages.
    history: Vec<String>,
}

/// How a read for a line ended, when it did not produce one.
#[derive(Debug, PartialEq, Eq)]
pub enum NoLine {
    TimedOut,
    Closed,
    Failed(String),
}

impl Client {
    pub fn connect(addr: SocketAddr, label: &str) -> Client {
        let stream = TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("{label}: cannot connect to {addr}: {e}"));
        Client {
            label: label.to_string(),
            stream,
            pending: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Connects, reads the greeting, chooses `name`, and reads the welcome.
    pub fn register(addr: SocketAddr, name: &str) -> Client {
        let mut client = Client::connect(addr, name);
        client.expect_greeting();
        client.send(name);
        client.expect_prefix(&format!("* welcome {name}! you are in lobby;"));
        client
    }

    pub fn expect_greeting(&mut self) {
        self.expect("* welcome to threadchat");
        self.expect("* choose a name (1-24 letters, digits, - or _):");
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("{}: send failed: {e}", self.label);
        }
    }

    /// Waits until the server has sent us something we have not read.
    /// Closing a socket with unread data makes the kernel send a reset
    /// instead of an orderly end of file: this is how a test makes a client
    /// vanish with a reset.
    pub fn wait_for_unread_data(&mut self) {
        if !self.pending.is_empty() {
            return;
        }
        self.stream
            .set_read_timeout(Some(DEADLINE))
            .expect("set_read_timeout");
        let mut byte = [0u8; 1];
        match self.stream.peek(&mut byte) {
            Ok(n) if n > 0 => {}
            other => panic!(
                "{}: expected unread data from the server within {DEADLINE:?}, got {other:?}",
                self.label
            ),
        }
    }

    /// Our end's address (the server sees it as the peer).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local_addr")
    }

    /// Closes our sending side (as `nc -N` does at end of input).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// The next line, or why there is none within `timeout`.
    pub fn try_line(&mut self, timeout: Duration) -> Result<String, NoLine> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let bytes: Vec<u8> = self.pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&bytes[..end]).into_owned();
                self.history.push(line.clone());
                return Ok(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NoLine::TimedOut);
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set_read_timeout");
            let mut buffer = [0u8; 4096];
            match self.stream.read(&mut buffer) {
                Ok(0) => return Err(NoLine::Closed),
                Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(NoLine::Failed(e.to_string())),
            }
        }
    }

    /// The next line; fails if none arrives before the deadline.
    pub fn line(&mut self) -> String {
        match self.try_line(DEADLINE) {
            Ok(line) => line,
            Err(why) => panic!(
                "{}: expected a line within {DEADLINE:?}, got {why:?}; unfinished: {:?}; lines so far: {:#?}",
                self.label,
                String::from_utf8_lossy(&self.pending),
                self.history
            ),
        }
    }

    /// The next line must be exactly `expected`.
    pub fn expect(&mut self, expected: &str) {
        let line = self.line();
        assert_eq!(
            line, expected,
            "{}: expected the next line to be {expected:?}, got {line:?}",
            self.label
        );
    }

    /// The next line must start with `prefix`; returns it.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = self.line();
        assert!(
            line.starts_with(prefix),
            "{}: expected the next line to start with {prefix:?}, got {line:?}",
            self.label
        );
        line
    }

    /// Reads lines until one equals `expected`, returning the ones skipped.
    pub fn skip_until(&mut self, expected: &str) -> Vec<String> {
        skip_until(|| self.line(), expected)
    }

    /// The server must close the connection (after any lines already sent).
    pub fn expect_closed(&mut self) {
        match self.try_line(DEADLINE) {
            Err(NoLine::Closed) | Err(NoLine::Failed(_)) => {}
            other => panic!(
                "{}: expected the server to close the connection, got {other:?}",
                self.label
            ),
        }
    }
}
