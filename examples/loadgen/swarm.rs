//! The simulated clients: every socket non-blocking, all of them driven by
//! one `mio` (epoll) loop on this one thread, because a thread per client
//! would compete with the server's own threads for the machine's `pid_max`.
//! A client registers (threadchat: sends its name `u<index>` and waits for
//! `welcome u<index>`; IRC: NICK and USER, and waits for 001; Redis:
//! SUBSCRIBE or PING), then what it receives is counted in the `Tally`. An
//! IRC client answers the server's PINGs, as a real one does.

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::args::Protocol;
use crate::tally::{find, Receiver, Tally};

/// The one channel every Redis client subscribes to.
const REDIS_CHANNEL: &str = "threadchat";

pub struct Client {
    stream: TcpStream,
    name: String,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    connected: bool,
    registered: bool,
    closed: bool,
    /// Slow clients stop reading once registered.
    reading: bool,
}

pub struct Swarm {
    protocol: Protocol,
    /// Clients `0..senders` send; with Redis they only publish.
    senders: usize,
    /// How many servers the clients are spread over: client i is on server
    /// i mod `servers`.
    servers: usize,
    poll: Poll,
    events: Events,
    pub clients: Vec<Client>,
    pub tally: Tally,
    /// The zero of the `LG` lines' timestamps.
    epoch: Instant,
    buffer: Vec<u8>,
}

impl Swarm {
    pub fn new(protocol: Protocol, senders: usize, servers: usize) -> io::Result<Swarm> {
        Ok(Swarm {
            protocol,
            senders,
            servers,
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            clients: Vec::new(),
            tally: Tally::default(),
            epoch: Instant::now(),
            buffer: vec![0; 64 * 1024],
        })
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Clients connecting or registering, not yet done either way.
    pub fn in_progress(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| !c.registered && !c.closed)
            .count()
    }

    pub fn connect(&mut self, addr: SocketAddr) -> io::Result<()> {
        let index = self.clients.len();
        let mut stream = TcpStream::connect(addr)?;
        self.poll.registry().register(
            &mut stream,
            Token(index),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let name = format!("u{index}");
        // The first thing each client says: its name; or, to Redis, a
        // subscription (receivers) or a PING (publishers, which never
        // subscribe: a subscribed RESP2 connection cannot publish).
        let hello = match self.protocol {
            Protocol::Threadchat => format!("{name}\n"),
            Protocol::Irc => format!("NICK {name}\r\nUSER {name} 0 * :{name}\r\n"),
            Protocol::Redis if index < self.senders => "PING\r\n".to_string(),
            Protocol::Redis => format!("SUBSCRIBE {REDIS_CHANNEL}\r\n"),
        };
        self.clients.push(Client {
            stream,
            outbox: hello.into_bytes(),
            name,
            inbox: Vec::new(),
            connected: false,
            registered: false,
            closed: false,
            reading: true,
        });
        Ok(())
    }

    /// Sends one chat line (threadchat) or publishes it (Redis).
    pub fn send(&mut self, index: usize, line: &str) {
        let client = &mut self.clients[index];
        if client.closed {
            return;
        }
        match self.protocol {
            Protocol::Threadchat => {
                client.outbox.extend_from_slice(line.as_bytes());
                client.outbox.push(b'\n');
            }
            Protocol::Irc => {
                let message = format!("PRIVMSG #lobby :{line}\r\n");
                client.outbox.extend_from_slice(message.as_bytes());
            }
            Protocol::Redis => {
                let command = format!(
                    "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{REDIS_CHANNEL}\r\n${}\r\n{line}\r\n",
                    REDIS_CHANNEL.len(),
                    line.len()
                );
                client.outbox.extend_from_slice(command.as_bytes());
            }
        }
        flush(client);
    }

    pub fn stop_reading(&mut self, index: usize) -> io::Result<()> {
        let client = &mut self.clients[index];
        client.reading = false;
        self.poll
            .registry()
            .reregister(&mut client.stream, Token(index), Interest::WRITABLE)
    }

    /// Waits up to `timeout` for socket events and handles them.
    pub fn pump(&mut self, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(error) => return Err(error),
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|event| {
                (
                    event.token().0,
                    event.is_readable() || event.is_read_closed() || event.is_error(),
                    event.is_writable(),
                )
            })
            .collect();
        for (index, readable, writable) in ready {
            if writable {
                self.on_writable(index);
            }
            if readable {
                self.on_readable(index);
            }
        }
        Ok(())
    }

    /// Pumps until `done` holds or `limit` passes; true if `done` held.
    pub fn pump_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Swarm) -> bool,
    ) -> io::Result<bool> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done(self) {
                return Ok(true);
            }
            self.pump(Duration::from_millis(10))?;
        }
        Ok(done(self))
    }

    /// Pumps until nothing has arrived for `quiet`, `done` holds, or `limit`
    /// passes, whichever comes first.
    pub fn pump_until_quiet(
        &mut self,
        quiet: Duration,
        limit: Duration,
        done: impl Fn(&Swarm) -> bool,
    ) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        while !done(self) && Instant::now() < deadline {
            self.pump(Duration::from_millis(50))?;
            if self
                .tally
                .last_byte
                .is_none_or(|last| last.elapsed() > quiet)
            {
                break;
            }
        }
        Ok(())
    }

    fn on_writable(&mut self, index: usize) {
        let client = &mut self.clients[index];
        if client.closed {
            return;
        }
        if !client.connected {
            match client.stream.peer_addr() {
                Ok(_) => client.connected = true,
                Err(error) if error.kind() == ErrorKind::NotConnected => return,
                Err(_) => {
                    self.close(index);
                    return;
                }
            }
        }
        flush(&mut self.clients[index]);
    }

    fn on_readable(&mut self, index: usize) {
        loop {
            let client = &mut self.clients[index];
            if client.closed || !client.reading {
                return;
            }
            match client.stream.read(&mut self.buffer) {
                Ok(0) => {
                    self.close(index);
                    return;
                }
                Ok(n) => self.on_bytes(index, n),
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(index);
                    return;
                }
            }
        }
    }

    /// The `n` bytes just read into the buffer: every whole line among them.
    fn on_bytes(&mut self, index: usize, n: usize) {
        let now = Instant::now();
        self.tally.last_byte = Some(now);
        let client = &mut self.clients[index];
        client.inbox.extend_from_slice(&self.buffer[..n]);
        let inbox = std::mem::take(&mut client.inbox);
        let mut start = 0;
        while let Some(end) = inbox[start..].iter().position(|&b| b == b'\n') {
            self.on_line(index, &inbox[start..start + end], now);
            start += end + 1;
        }
        self.clients[index].inbox = inbox[start..].to_vec();
    }

    fn on_line(&mut self, index: usize, line: &[u8], now: Instant) {
        let client = &mut self.clients[index];
        if self.protocol == Protocol::Irc {
            if let Some(token) = line.strip_prefix(b"PING ") {
                client.outbox.extend_from_slice(b"PONG ");
                client.outbox.extend_from_slice(token);
                client.outbox.extend_from_slice(b"\r\n");
                flush(client);
                return;
            }
        }
        if client.registered {
            let receiver = Receiver {
                index,
                servers: self.servers,
                now,
                epoch: self.epoch,
            };
            self.tally.on_line(&receiver, line);
            return;
        }
        let registered = match self.protocol {
            Protocol::Threadchat => {
                find(line, format!("welcome {}", client.name).as_bytes()).is_some()
            }
            Protocol::Irc => find(line, format!(" 001 {} ", client.name).as_bytes()).is_some(),
            // A RESP reply arrives as several lines; these are the ones
            // that end the reply to SUBSCRIBE and to PING.
            Protocol::Redis => line.starts_with(b":1") || line.starts_with(b"+PONG"),
        };
        if registered {
            client.registered = true;
            self.tally.registered += 1;
        }
    }

    fn close(&mut self, index: usize) {
        let client = &mut self.clients[index];
        if client.closed {
            return;
        }
        client.closed = true;
        let _ = self.poll.registry().deregister(&mut client.stream);
        if client.registered {
            self.tally.dropped_later += 1;
        } else {
            self.tally.failed += 1;
        }
    }
}

fn flush(client: &mut Client) {
    while !client.outbox.is_empty() {
        match client.stream.write(&client.outbox) {
            Ok(0) => return,
            Ok(n) => {
                client.outbox.drain(..n);
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            // WouldBlock (try again on the next writable event), or an error
            // that the next read reports.
            Err(_) => return,
        }
    }
}
