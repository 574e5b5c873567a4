//! A client's writer thread: one per connection, started by its reader.
//!
//! It owns the writer's end of the client's queue (an `OutboxReader`) and
//! the writing side of the socket, and touches nothing shared but the
//! queue's own atomic byte count. It blocks on the queue, takes whatever else
//! is already waiting, and writes it all with one call. A gap marker in the
//! queue comes out as the `! N lines were dropped` notice, in its place.
//! When the manager drops the queue's sending end (the client left, or the
//! server is shutting down) it writes what is left, shuts the socket down,
//! and exits.
//!
//! Shutting the socket down is also how a writer ends its reader: a reader
//! blocked in `read` on the same socket returns at once.

use std::io::{self, Write};
use std::net::TcpStream;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::event::{ClientId, OutboundLine};
use crossbeam_channel::Receiver;

use crate::outbox::{Next, OutboxReader, Outgoing};
use crate::socket::ClientSocket;
use crate::websocket::{self, CloseCode, Control};

/// Gather at most this many bytes into one write. Kept under the allocator's
/// threshold for giving a buffer its own memory mapping (128 KiB), because
/// mappings per process are limited (see `os_limits`).
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// After a big burst, give the buffer back rather than keep it for an idle
/// client forever.
const KEEP_BATCH_CAPACITY: usize = 8 * 1024;

/// How lines go on the wire.
pub(crate) enum Framing {
    /// As they are, `\n` and all (nc, the terminal client).
    Lines,
    /// One WebSocket text frame per line, plus the control frames the
    /// client's reader asks for.
    WebSocket(Receiver<Control>),
}

pub(crate) fn run(
    id: ClientId,
    socket: Arc<ClientSocket>,
    outbox_reader: OutboxReader,
    framing: Framing,
) {
    // A panic here ends this connection only (see `Manager::handle_guarded`
    // for `catch_unwind`).
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| match &framing {
        Framing::Lines => write_until_closed(socket.stream(), &outbox_reader),
        Framing::WebSocket(control_rx) => write_frames(socket.stream(), &outbox_reader, control_rx),
    }));
    match outcome {
        Ok(Ok(())) => log::debug!("writer {id}: queue closed"),
        Ok(Err(error))
            if matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            log::warn!("writer {id}: client stopped reading (write timed out); disconnecting it")
        }
        Ok(Err(error)) => log::debug!("writer {id}: write failed: {error}"),
        Err(_) => log::error!("writer {id} panicked; disconnecting that client"),
    }
    // However it ended, the connection is over from the server's side.
    socket.hang_up();
}

fn write_until_closed(mut stream: &TcpStream, outbox_reader: &OutboxReader) -> io::Result<()> {
    let mut batch = Vec::new();
    // Lines in this batch whose fan-out is timed, to tell once written.
    let mut timed = Vec::new();
    // A line taken from the queue that did not fit in the last batch.
    let mut carried: Option<Outgoing> = None;
    // `recv` returns `None` only once the queue is closed *and* empty, so
    // every line queued before the manager let go is still written.
    while let Some(line) = carried.take().or_else(|| outbox_reader.recv()) {
        batch.clear();
        add_line(&mut batch, &mut timed, &line);
        // Whatever else is already queued goes in the same write: under load
        // this is what turns a thousand small writes into a few big ones.
        while let Ok(line) = outbox_reader.try_recv() {
            if batch.len() + line.as_bytes().len() > MAX_BATCH_BYTES {
                carried = Some(line);
                break;
            }
            add_line(&mut batch, &mut timed, &line);
        }
        stream.write_all(&batch)?;
        written(&mut timed);
        if batch.capacity() > KEEP_BATCH_CAPACITY {
            batch = Vec::new();
        }
    }
    Ok(())
}

fn add_line(batch: &mut Vec<u8>, timed: &mut Vec<OutboundLine>, line: &Outgoing) {
    batch.extend_from_slice(line.as_bytes());
    if let Some(line) = line.timed_line() {
        timed.push(line.clone());
    }
}

/// After a write: each timed line in it has reached one more recipient.
fn written(timed: &mut Vec<OutboundLine>) {
    for line in timed.drain(..) {
        line.written();
    }
}

/// The WebSocket writer: the same loop, with each line wrapped in a text
/// frame, the reader's pongs and closes in between, and a close frame at
/// the end. After a close frame nothing more may be sent (RFC 6455, 5.5.1).
fn write_frames(
    mut stream: &TcpStream,
    outbox_reader: &OutboxReader,
    control_rx: &Receiver<Control>,
) -> io::Result<()> {
    let mut batch = Vec::new();
    let mut timed = Vec::new();
    let mut closed = false;
    while let Some(next) = outbox_reader.recv_or(control_rx) {
        batch.clear();
        add_frame(&mut batch, &mut timed, next, &mut closed);
        while batch.len() < MAX_BATCH_BYTES && !closed {
            if let Ok(control) = control_rx.try_recv() {
                add_frame(&mut batch, &mut timed, Next::Other(control), &mut closed);
            } else if let Ok(outgoing) = outbox_reader.try_recv() {
                add_frame(&mut batch, &mut timed, Next::Queued(outgoing), &mut closed);
            } else {
                break;
            }
        }
        stream.write_all(&batch)?;
        written(&mut timed);
        if batch.capacity() > KEEP_BATCH_CAPACITY {
            batch = Vec::new();
        }
        if closed {
            return Ok(());
        }
    }
    // The queue is closed: the server ends the connection, and says so.
    batch.clear();
    websocket::close_frame(&mut batch, CloseCode::Normal, "");
    stream.write_all(&batch)
}

fn add_frame(
    batch: &mut Vec<u8>,
    timed: &mut Vec<OutboundLine>,
    next: Next<Control>,
    closed: &mut bool,
) {
    match next {
        Next::Queued(line) => {
            websocket::text_frame(batch, line.as_bytes());
            if let Some(line) = line.timed_line() {
                timed.push(line.clone());
            }
        }
        Next::Other(control) => {
            *closed = matches!(control, Control::Close(..));
            websocket::control_frame(batch, &control);
        }
    }
}
