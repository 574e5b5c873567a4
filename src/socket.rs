//! A client's socket as the server shares it: the [`ClientSocket`], the
//! manager's [`Hangup`] handle on it, the reader's deadline-bound view of it
//! ([`TimedStream`]), and turning a connection away with one line.
//!
//! No thread of its own. The acceptor (or the web door), a client's reader
//! and writer, and the manager's hang-up handle each hold a reference to
//! the same `ClientSocket`; the socket options std lacks are set in
//! `platform`.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::logic::protocol;
use crate::shared::thread_states::{self, State};

/// What a connection is told when its threads cannot be started.
pub(crate) const BUSY: &str = "server busy, try again later";

/// What a connection is told when `--max-clients` are already connected.
pub(crate) const FULL: &str = "server full, try again later";

/// What a connection is told when its address has `--max-per-addr` open.
pub(crate) const TOO_MANY_FROM_ADDR: &str = "too many connections from your address";

/// What a connection is told when its address opens them too fast.
pub(crate) const TOO_FAST_FROM_ADDR: &str =
    "too many connections from your address in too little time; wait a few seconds";

/// Turns a connection away with one `! ` line, and closes our side. Written
/// straight to the socket because this connection has no writer thread (it
/// never became a client, or its writer could not be started).
pub(crate) fn turn_away(mut stream: &TcpStream, why: &str) {
    let line = format!("{}\n", protocol::error(why));
    // A fresh socket's send buffer is empty, so this cannot block for long;
    // the timeout is there in case the kernel disagrees.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(line.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

/// One client's connection, shared (in an `Arc`) by its reader and writer,
/// and weakly by the manager's `Hangup` and the acceptor. Reader and writer
/// use the same file descriptor: `&TcpStream` is both `Read` and `Write`.
#[derive(Debug)]
pub(crate) struct ClientSocket {
    stream: TcpStream,
    /// Set before the server shuts the socket down itself.
    hung_up: AtomicBool,
    /// When the client last sent anything, in milliseconds since `born`:
    /// set by the reader, read by the writer to ping a quiet client.
    heard_at_ms: AtomicU64,
    born: Instant,
}

impl ClientSocket {
    pub(crate) fn new(stream: TcpStream) -> Self {
        ClientSocket {
            stream,
            hung_up: AtomicBool::new(false),
            heard_at_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The server ends the connection: `shutdown(2)` on both directions,
    /// which returns at once and wakes whichever of the reader and writer
    /// is blocked on the socket. Remembered first, so the reader can tell
    /// the end of file it then reads from one the client sent.
    pub(crate) fn hang_up(&self) {
        self.hung_up.store(true, Ordering::SeqCst);
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Whether the server has hung up on this client (as opposed to the
    /// client closing its side).
    pub(crate) fn hung_up_by_server(&self) -> bool {
        self.hung_up.load(Ordering::SeqCst)
    }

    /// The client sent something just now. `Relaxed`: a timestamp read
    /// only to decide whether to ping; nothing else is published by it.
    fn heard(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heard_at_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the client has been silent.
    pub(crate) fn quiet_for(&self) -> Duration {
        let heard = Duration::from_millis(self.heard_at_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(heard)
    }
}

/// Lets the manager end a connection it has given up on (a client that
/// stays far behind), without owning or otherwise touching the socket.
/// Shutting the socket down wakes the client's reader and writer, which then
/// end the connection the usual way. Weak, so it never keeps a socket open.
#[derive(Clone, Debug)]
pub(crate) struct Hangup(Weak<ClientSocket>);

impl Hangup {
    pub(crate) fn new(socket: &Arc<ClientSocket>) -> Self {
        Hangup(Arc::downgrade(socket))
    }

    /// A handle that hangs up on nothing: for tests of the manager, which
    /// need no sockets.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Hangup(Weak::new())
    }

    /// `shutdown(2)`: returns at once, never blocks.
    pub(crate) fn hang_up(&self) {
        if let Some(socket) = self.0.upgrade() {
            socket.hang_up();
        }
    }
}

/// The socket as the reader reads it, with a deadline: no read waits past
/// it, and once it has passed every read fails with `TimedOut`. Each read
/// that brings bytes notes that the client was heard; with a `silence`
/// limit, a client heard from longer ago than that times out too.
///
/// A plain read timeout would not do: it restarts with every `read` call,
/// so a client sending one byte a minute would never time out. Here the
/// deadline is fixed, and each read is given only the time left before it.
pub(crate) struct TimedStream<'a> {
    socket: &'a ClientSocket,
    deadline: Cell<Option<Instant>>,
    silence: Option<Duration>,
    /// Whether the socket has a read timeout set, so that clearing it costs
    /// a system call only when there is one to clear.
    timeout_set: Cell<bool>,
}

impl<'a> TimedStream<'a> {
    pub(crate) fn new(
        socket: &'a ClientSocket,
        deadline: Option<Instant>,
        silence: Option<Duration>,
    ) -> Self {
        TimedStream {
            socket,
            deadline: Cell::new(deadline),
            silence,
            timeout_set: Cell::new(false),
        }
    }

    /// How long the next read may wait: the nearer of the deadline and
    /// the end of the allowed silence; `None` for as long as it takes.
    fn time_left(&self) -> Option<Duration> {
        let until_deadline =
            (self.deadline.get()).map(|d| d.saturating_duration_since(Instant::now()));
        let until_silent = (self.silence).map(|s| s.saturating_sub(self.socket.quiet_for()));
        match (until_deadline, until_silent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn set_deadline(&self, deadline: Option<Instant>) {
        self.deadline.set(deadline);
    }
}

impl Read for &TimedStream<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let stream = self.socket.stream();
        match self.time_left() {
            Some(left) => {
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
                }
                stream.set_read_timeout(Some(left))?;
                self.timeout_set.set(true);
            }
            None if self.timeout_set.get() => {
                stream.set_read_timeout(None)?;
                self.timeout_set.set(false);
            }
            None => {}
        }
        let mut stream = stream;
        let read = thread_states::blocked(State::Read, || stream.read(buffer))?;
        if read > 0 {
            self.socket.heard();
        }
        Ok(read)
    }
}

/// Whether a read failed because its deadline passed. A socket read
/// timeout is EAGAIN (`WouldBlock`) on Unix, `TimedOut` elsewhere;
/// `TimedStream` itself uses `TimedOut`.
pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
