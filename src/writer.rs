//! A client's writer thread: one per connection, started by its reader.
//!
//! It owns the writer's end of the client's queue (an `OutboxReader`), the
//! writing side of the socket, and its door's [`Encode`] half. It shares
//! three things, none under a lock: the queue's atomic byte count (it takes
//! away what the manager adds), a chat line's fan-out timer (it tells the
//! shared histogram when the last copy is written), and the socket's "last
//! heard" time (it reads it, to ping a quiet client). It blocks on the queue
//! and the door's control channel at once, takes whatever else is already
//! waiting, and writes it all with one call. A gap marker in the queue comes
//! out as the `! N lines were dropped` notice, in its place. When the
//! manager drops the queue's sending end (the client left, or the server is
//! shutting down) it writes what is left and the door's goodbye, shuts the
//! socket down, and exits.
//!
//! Shutting the socket down is also how a writer ends its reader: a reader
//! blocked in `read` on the same socket returns at once.

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::doors::{Control, Encode};
use crate::line::OutboundLine;
use crate::outbox::{Next, OutboxReader, Outgoing};
use crate::shared::ClientId;
use crate::socket::ClientSocket;

/// Gather at most this many bytes into one write. Kept under the allocator's
/// threshold for giving a buffer its own memory mapping (128 KiB), because
/// mappings per process are limited (see `os_limits`).
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// After a big burst, give the buffer back rather than keep it for an idle
/// client forever.
const KEEP_BATCH_CAPACITY: usize = 8 * 1024;

pub(crate) fn run(
    id: ClientId,
    socket: Arc<ClientSocket>,
    outbox_reader: OutboxReader,
    control_rx: Receiver<Control>,
    encoder: Box<dyn Encode>,
    ping_after: Option<Duration>,
) {
    let mut writer = Writer {
        socket: &socket,
        outbox_reader,
        control_rx: Some(control_rx),
        encoder,
        ping_after,
        batch: Vec::new(),
        timed: Vec::new(),
        carried: None,
        closed: false,
        pinged_at: None,
    };
    // A panic here ends this connection only (see `Manager::guarded` for
    // `catch_unwind`).
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| writer.write_until_closed()));
    match outcome {
        Ok(Ok(())) => log::debug!("writer {id}: queue closed"),
        Ok(Err(error)) if crate::socket::is_timeout(&error) => {
            log::warn!("writer {id}: client stopped reading (write timed out); disconnecting it")
        }
        Ok(Err(error)) => log::debug!("writer {id}: write failed: {error}"),
        Err(_) => log::error!("writer {id} panicked; disconnecting that client"),
    }
    // However it ended, the connection is over from the server's side.
    socket.hang_up();
}

struct Writer<'a> {
    socket: &'a ClientSocket,
    outbox_reader: OutboxReader,
    /// The door's control channel, until its reading half lets go of it.
    control_rx: Option<Receiver<Control>>,
    encoder: Box<dyn Encode>,
    /// For a door whose clients answer pings: ping after this much silence.
    ping_after: Option<Duration>,
    batch: Vec<u8>,
    /// Lines in this batch whose fan-out is timed, to tell once written.
    timed: Vec<OutboundLine>,
    /// A line taken from the queue that did not fit in the last batch.
    carried: Option<Outgoing>,
    /// The door has sent its last bytes (a WebSocket close).
    closed: bool,
    /// When this writer last pinged.
    pinged_at: Option<Instant>,
}

impl Writer<'_> {
    fn write_until_closed(&mut self) -> io::Result<()> {
        // `Next::Closed` comes only once the queue is closed *and* empty, so
        // every line queued before the manager let go is still written.
        while !self.closed {
            let next = match self.carried.take() {
                Some(line) => Next::Queued(line),
                None => {
                    let timeout = self.until_next_ping();
                    (self.outbox_reader).recv_or(self.control_rx.as_ref(), timeout)
                }
            };
            self.batch.clear();
            match next {
                Next::Queued(line) => self.add_line(line),
                Next::Other(control) => self.add_control(control),
                Next::OtherClosed => self.control_rx = None,
                Next::TimedOut => self.ping_if_quiet(),
                Next::Closed => {
                    self.encoder.goodbye(&mut self.batch);
                    self.closed = true;
                }
            }
            self.add_what_is_waiting();
            self.write_batch()?;
        }
        Ok(())
    }

    /// Whatever else is already waiting goes in the same write: under load
    /// this is what turns a thousand small writes into a few big ones.
    fn add_what_is_waiting(&mut self) {
        while !self.closed && self.batch.len() < MAX_BATCH_BYTES {
            if let Some(Ok(control)) = self.control_rx.as_ref().map(Receiver::try_recv) {
                self.add_control(control);
                continue;
            }
            let Ok(line) = self.outbox_reader.try_recv() else {
                return;
            };
            if self.batch.len() + line.as_bytes().len() > MAX_BATCH_BYTES {
                self.carried = Some(line);
                return;
            }
            self.add_line(line);
        }
    }

    fn add_line(&mut self, line: Outgoing) {
        let (Outgoing::Line(line) | Outgoing::DropNotice(line)) = line;
        self.encoder.line(&line, &mut self.batch);
        if line.is_timed() {
            self.timed.push(line);
        }
    }

    fn add_control(&mut self, control: Control) {
        self.batch.extend_from_slice(&control.bytes);
        self.closed |= control.closes;
    }

    /// How long until a ping is due: `--ping-after` since the client was
    /// last heard and since the last ping, whichever was later. `None` for
    /// a door that does not ping.
    fn until_next_ping(&self) -> Option<Duration> {
        let after = self.ping_after?;
        let since_ping = self.pinged_at.map_or(Duration::MAX, |at| at.elapsed());
        let waited = self.socket.quiet_for().min(since_ping);
        Some(after.saturating_sub(waited))
    }

    /// Ask a client that has been silent for `--ping-after` whether it is
    /// still there. (Its reader lets it go if it stays silent as long again.)
    fn ping_if_quiet(&mut self) {
        if self.until_next_ping() == Some(Duration::ZERO) {
            self.encoder.ping(&mut self.batch);
            self.pinged_at = Some(Instant::now());
        }
    }

    fn write_batch(&mut self) -> io::Result<()> {
        if !self.batch.is_empty() {
            let mut stream = self.socket.stream();
            stream.write_all(&self.batch)?;
        }
        // Each timed line in the batch has reached one more recipient.
        for line in self.timed.drain(..) {
            line.written();
        }
        if self.batch.capacity() > KEEP_BATCH_CAPACITY {
            self.batch = Vec::new();
        }
        Ok(())
    }
}
