//! Small things done to a socket directly, outside the reader and writer:
//! turning a connection away with one line. Runs on whichever thread calls
//! it (the acceptor, or a reader that could not start its writer); touches
//! nothing shared.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
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
