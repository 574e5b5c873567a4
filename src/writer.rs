//! A client's writer thread: one per connection, started by its reader.
//!
//! It owns the writer's end of the client's queue (an `OutboxReader`), the
//! writing side of the socket, and its door's [`Encode`] half. It shares
//! three things: the queue (under the queue's own lock, the hand-over
//! described in `outbox.rs`), a chat line's fan-out timer (it tells the
//! shared histogram when the last copy is written) and the socket's "last
//! heard" time (it reads it, to ping a quiet client). It sleeps until the
//! queue has something, takes everything already waiting (16 KiB, `MAX_BATCH_BYTES`, and at most one line more),
//! and writes it all with one call. A gap marker comes out as the `! N
//! lines were dropped` notice, in its place. Around both waits (for its
//! queue, in `write`) it says what it waits for
//! (`shared/thread_states.rs`). When the manager lets go of
//! the queue (the client left, or the server is shutting down) it writes
//! what is left and the door's goodbye, shuts the socket down, and exits.
//!
//! Shutting the socket down is also how a writer ends its reader: a reader
//! blocked in `read` on the same socket returns at once.

use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::doors::Encode;
use crate::line::OutboundLine;
use crate::outbox::{Batch, OutboxReader, Outgoing};
use crate::shared::thread_states::{self, State};
use crate::shared::ClientId;
use crate::socket::ClientSocket;

/// Take at most this many bytes of lines into one write. Small, because a
/// writer stuck in a write to a client that does not read holds its batch
/// (10,000 of them hold 160 MiB: docs/RELIABILITY.md's worst case), and
/// under the allocator's threshold for giving a buffer its own memory
/// mapping (128 KiB), because mappings per process are limited.
const MAX_BATCH_BYTES: usize = 16 * 1024;

/// After a big burst, give the buffer back rather than keep it for an idle
/// client forever.
const KEEP_BATCH_CAPACITY: usize = 8 * 1024;

pub(crate) fn run(
    id: ClientId,
    socket: Arc<ClientSocket>,
    outbox_reader: OutboxReader,
    encoder: Box<dyn Encode>,
    ping_after: Option<Duration>,
) {
    let mut writer = Writer {
        socket: &socket,
        outbox_reader,
        encoder,
        ping_after,
        taken: Vec::new(),
        batch: Vec::new(),
        timed: Vec::new(),
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
    encoder: Box<dyn Encode>,
    /// For a door whose clients answer pings: ping after this much silence.
    ping_after: Option<Duration>,
    /// What the last wait took from the queue.
    taken: Vec<Outgoing>,
    batch: Vec<u8>,
    /// Lines in this batch whose fan-out is timed, to tell once written.
    timed: Vec<OutboundLine>,
    /// The door has sent its last bytes (a WebSocket close).
    closed: bool,
    /// When this writer last pinged.
    pinged_at: Option<Instant>,
}

impl Writer<'_> {
    // ASSIGNMENT a3: begin: until the queue closes, take, encode and write batches; goodbye last
    fn write_until_closed(&mut self) -> io::Result<()> {
        while !self.closed {
            let deadline = self.until_next_ping().map(|wait| Instant::now() + wait);
            let (reader, taken) = (&self.outbox_reader, &mut self.taken);
            let found = thread_states::blocked(State::Channel, || {
                reader.next_batch(taken, MAX_BATCH_BYTES, deadline)
            });
            self.batch.clear();
            match found {
                Batch::Taken => self.encode_taken(),
                Batch::TimedOut => self.ping_if_quiet(),
                // `Closed` comes only once the queue is closed *and* empty,
                // so every line queued before the manager let go is written.
                Batch::Closed => {
                    self.encoder.goodbye(&mut self.batch);
                    self.closed = true;
                }
            }
            self.write_batch()?;
        }
        Ok(())
    }
    // ASSIGNMENT a3: end

    fn encode_taken(&mut self) {
        for outgoing in self.taken.drain(..) {
            // After a door's last bytes (a WebSocket close), nothing more
            // may be sent (RFC 6455, 5.5.1).
            if self.closed {
                continue;
            }
            match outgoing {
                Outgoing::Line(line) | Outgoing::DropNotice(line) => {
                    self.encoder.line(&line, &mut self.batch);
                    if line.is_timed() {
                        self.timed.push(line);
                    }
                }
                Outgoing::Control(control) => {
                    self.batch.extend_from_slice(&control.bytes);
                    self.closed = control.closes;
                }
            }
        }
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
            thread_states::blocked(State::Write, || stream.write_all(&self.batch))?;
        }
        // Each timed line in the batch has reached one more recipient.
        for line in self.timed.drain(..) {
            line.written_to_socket();
        }
        if self.batch.capacity() > KEEP_BATCH_CAPACITY {
            self.batch = Vec::new();
        }
        Ok(())
    }
}
