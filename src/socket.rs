//! A client's socket as the server shares it, and turning a connection away
//! with one line. No thread of its own: the acceptor, a client's reader and
//! writer, and the manager's hang-up handle each hold a reference to the
//! same [`ClientSocket`].

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::protocol;

/// What a connection is told when its threads cannot be started.
pub(crate) const BUSY: &str = "server busy, try again later";

/// What a connection is told when `--max-clients` are already connected.
pub(crate) const FULL: &str = "server full, try again later";

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
}

impl ClientSocket {
    pub(crate) fn new(stream: TcpStream) -> Self {
        ClientSocket {
            stream,
            hung_up: AtomicBool::new(false),
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
}
