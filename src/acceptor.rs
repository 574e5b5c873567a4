//! The acceptor thread: owns the `TcpListener`, accepts connections, and
//! starts the reader and writer thread of each one.
//!
//! It touches the stats lock (to count a connection in, or refuse it when
//! `--max-clients` are open) and nothing else that is shared. It keeps, in a
//! table only it sees, the reader thread of every open connection, so that at
//! shutdown it can wait for them, close the sockets of any that are stuck, and
//! join them all. A reader tells it over the `finished` channel when its
//! connection is over; the acceptor joins that thread the next time it wakes.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TryRecvError};

use crate::event::{ClientId, Event, OutboundLine};
use crate::protocol;
use crate::reader::{self, ReaderStart};
use crate::server::Shared;
use crate::writer;

/// After a failed `accept` (out of file descriptors, say), wait this long
/// before trying again, so the error does not become a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    events: Sender<Event>,
    shutdown: Receiver<()>,
) {
    let mut connections = Connections::new();
    let mut last_id = 0;
    // Failed accepts in a row. Running out of file descriptors fails every
    // accept until a connection closes: one warning per episode, not ten a
    // second.
    let mut failing = 0u64;
    loop {
        let accepted = listener.accept();
        // `ServerHandle` wakes us with a connection of its own after it has
        // signalled, so the signal is checked before looking at the result.
        if matches!(shutdown.try_recv(), Err(TryRecvError::Disconnected)) {
            break;
        }
        connections.join_finished();
        match accepted {
            Ok((stream, peer)) => {
                if failing > 0 {
                    log::info!("accepting again after {failing} failed accepts");
                    failing = 0;
                }
                last_id += 1;
                let id = ClientId(last_id);
                if !shared.stats.try_open_connection(shared.config.max_clients) {
                    log::warn!("server full: refused {peer}");
                    refuse(&stream, "server full, try again later");
                    continue;
                }
                // `start_client` takes a reference, so that when it fails the
                // socket is still ours to say why on.
                let stream = Arc::new(stream);
                match start_client(
                    id,
                    peer,
                    &stream,
                    &shared,
                    &events,
                    &connections.finished_tx,
                ) {
                    Ok(connection) => connections.insert(id, connection),
                    Err(error) => {
                        // Out of threads or memory: this one connection is
                        // turned away (`start_client` told it), and the
                        // server goes on.
                        log::warn!("cannot start threads for {peer}: {error}; refused it");
                        shared.stats.refuse_opened_connection();
                        thread::sleep(ACCEPT_BACKOFF);
                    }
                }
            }
            Err(error) => {
                failing += 1;
                if failing == 1 {
                    log::warn!(
                        "accept failed: {error}; retrying every {ACCEPT_BACKOFF:?} until it works"
                    );
                } else {
                    log::debug!("accept failed again: {error}");
                }
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
    drop(listener);
    // The manager drains events until every sender is gone; ours must not
    // be one of those it waits for while we wait for the readers.
    drop(events);
    connections.close_all(shared.config.shutdown_grace);
}

/// Turns a connection away with one `! ` line, and closes it. Written here
/// rather than through the manager because this connection never becomes a
/// client.
fn refuse(mut stream: &TcpStream, why: &str) {
    let line = format!("{}\n", protocol::error(why));
    // A fresh socket's send buffer is empty, so this cannot block for long;
    // the timeout is there in case the kernel disagrees.
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(line.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

/// What a connection is told when its threads cannot be started.
const BUSY: &str = "server busy, try again later";

/// Starts the writer, then the reader, of one connection. If either thread
/// cannot be started (out of memory, or of threads: `pid_max` is shared by
/// the whole machine), the client is told `! server busy, try again later`,
/// whatever did start is joined, and the error is returned.
fn start_client(
    id: ClientId,
    peer: SocketAddr,
    stream: &Arc<TcpStream>,
    shared: &Arc<Shared>,
    events: &Sender<Event>,
    finished: &Sender<ClientId>,
) -> io::Result<Connection> {
    // The writer already gathers queued lines into one write; Nagle's
    // algorithm would only add delay on top.
    stream.set_nodelay(true)?;
    // A client that stops reading fills its socket buffer; this bounds how
    // long its writer can then be stuck in one write.
    stream.set_write_timeout(Some(shared.config.write_timeout))?;
    let (outbound, queue) = bounded(shared.config.queue_capacity);

    let stack_size = shared.config.client_stack_bytes;
    let writer = thread::Builder::new()
        .name(format!("writer-{}", id.0))
        .stack_size(stack_size)
        .spawn({
            let stream = stream.clone();
            move || writer::run(id, stream, queue)
        });
    let writer = match writer {
        Ok(writer) => writer,
        Err(error) => {
            refuse(stream, BUSY);
            return Err(error);
        }
    };
    let start = ReaderStart {
        id,
        peer,
        stream: stream.clone(),
        outbound,
        writer,
        events: events.clone(),
        shared: shared.clone(),
        finished: finished.clone(),
    };
    // The reader gets its start over a one-place channel rather than in its
    // closure: if its thread cannot be created, the closure is dropped
    // unrun, and `start` (with the writer's handle) must still be ours to
    // clean up.
    let (hand_over, handed) = bounded::<ReaderStart>(1);
    let reader = thread::Builder::new()
        .name(format!("reader-{}", id.0))
        .stack_size(stack_size)
        .spawn(move || {
            if let Ok(start) = handed.recv() {
                reader::run(start)
            }
        });
    match reader {
        Ok(reader) => {
            // Cannot block (the channel has room for one) nor fail (the
            // reader waits for it).
            let _ = hand_over.send(start);
            Ok(Connection {
                reader,
                stream: Arc::downgrade(stream),
            })
        }
        Err(error) => {
            // The writer says why, sees its queue closed, shuts the socket
            // down and exits; a fresh socket takes one line at once.
            let ReaderStart {
                outbound, writer, ..
            } = start;
            let _ = outbound.try_send(OutboundLine::new(&protocol::error(BUSY)));
            drop(outbound);
            if writer.join().is_err() {
                log::error!("writer {id} panicked");
            }
            Err(error)
        }
    }
}

/// A connection as the acceptor sees it: the reader thread to join (the
/// reader joins its own writer), and a weak reference to the socket, to force
/// it closed at shutdown without keeping it open until then.
struct Connection {
    reader: JoinHandle<()>,
    stream: Weak<TcpStream>,
}

struct Connections {
    open: HashMap<ClientId, Connection>,
    finished_tx: Sender<ClientId>,
    finished: Receiver<ClientId>,
}

impl Connections {
    fn new() -> Self {
        // Unbounded so that a reader's last act never blocks; it holds at
        // most one id per connection that ended since the acceptor last woke.
        let (finished_tx, finished) = unbounded();
        Connections {
            open: HashMap::new(),
            finished_tx,
            finished,
        }
    }

    fn insert(&mut self, id: ClientId, connection: Connection) {
        self.open.insert(id, connection);
    }

    /// Joins the readers that said they are done. Their threads have
    /// already exited (or are about to), so this does not wait.
    fn join_finished(&mut self) {
        while let Ok(id) = self.finished.try_recv() {
            self.join(id);
        }
    }

    fn join(&mut self, id: ClientId) {
        if let Some(connection) = self.open.remove(&id) {
            if connection.reader.join().is_err() {
                log::error!("reader {id} panicked outside its guard");
            }
        }
    }

    /// At shutdown: waits up to `grace` for every connection to end on its
    /// own (the manager has queued each a goodbye and closed its queue), then
    /// shuts down the sockets of the rest, which wakes their threads, and
    /// joins everything.
    fn close_all(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        while !self.open.is_empty() {
            match self.finished.recv_deadline(deadline) {
                Ok(id) => self.join(id),
                Err(_) => break,
            }
        }
        if !self.open.is_empty() {
            log::warn!(
                "{} connections still open {grace:?} after shutdown began; closing them",
                self.open.len()
            );
            for connection in self.open.values() {
                if let Some(stream) = connection.stream.upgrade() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
        }
        let ids: Vec<ClientId> = self.open.keys().copied().collect();
        for id in ids {
            self.join(id);
        }
    }
}
