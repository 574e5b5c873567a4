//! The chaos mode's clients and the one loop that drives them: connecting
//! under a fresh name, writing and reading without blocking, vanishing and
//! coming back, and the receiver's check of every chat line for gaps and
//! disorder (the module comment of `chaos/mod.rs` has the rules).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::report::Counts;
use super::rng::Rng;
use super::MEAN_ACTION_GAP_MS;

pub enum Phase {
    Registering,
    Active,
    /// Disconnected on purpose; reconnects at this time.
    Away(Instant),
}

/// One simulated client.
pub struct Sim {
    stream: Option<TcpStream>,
    pub phase: Phase,
    name: String,
    inbox: Vec<u8>,
    unsent: Vec<u8>,
    pub paused_until: Option<Instant>,
    /// Connections made so far (names must be new after a reconnect).
    pub connection: u32,
    pub renames: u32,
    /// As a sender: the current stint and the next sequence number in it.
    pub stint: u32,
    pub next_seq: u64,
    /// As a receiver: (sender, stint) -> (last seq, notices seen by then).
    seen: HashMap<(u32, u32), (u64, u64)>,
    notices: u64,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            stream: None,
            phase: Phase::Registering,
            name: String::new(),
            inbox: Vec::new(),
            unsent: Vec::new(),
            paused_until: None,
            connection: 0,
            renames: 0,
            stint: 0,
            next_seq: 0,
            seen: HashMap::new(),
            notices: 0,
        }
    }
}

pub struct Chaos {
    poll: Poll,
    addr: SocketAddr,
    pub sims: Vec<Sim>,
    pub rng: Rng,
    pub counts: Counts,
    /// When each client acts next: (time, index).
    pub agenda: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Whether clients act (during the soak) or only read.
    pub acting: bool,
}

impl Chaos {
    pub fn new(addr: SocketAddr, clients: usize, rng: Rng) -> io::Result<Chaos> {
        Ok(Chaos {
            poll: Poll::new()?,
            addr,
            sims: (0..clients).map(|_| Sim::new()).collect(),
            rng,
            counts: Counts::default(),
            agenda: BinaryHeap::new(),
            acting: false,
        })
    }

    /// Connects client `index` as a new client: a new name, a new stint,
    /// and nothing remembered from its last connection.
    pub fn connect(&mut self, index: usize) -> io::Result<()> {
        let mut stream = TcpStream::connect(self.addr)?;
        self.poll.registry().register(
            &mut stream,
            Token(index),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let sim = &mut self.sims[index];
        sim.connection += 1;
        sim.stint += 1;
        sim.next_seq = 0;
        sim.seen.clear();
        sim.inbox.clear();
        sim.unsent.clear();
        sim.paused_until = None;
        sim.name = format!("c{index}n{}", sim.connection);
        sim.phase = Phase::Registering;
        sim.unsent
            .extend_from_slice(format!("{}\n", sim.name).as_bytes());
        sim.stream = Some(stream);
        Ok(())
    }

    pub fn send(&mut self, index: usize, line: &[u8]) {
        let sim = &mut self.sims[index];
        sim.unsent.extend_from_slice(line);
        sim.unsent.push(b'\n');
        self.flush(index);
    }

    fn flush(&mut self, index: usize) {
        let sim = &mut self.sims[index];
        let Some(stream) = sim.stream.as_mut() else {
            return;
        };
        while !sim.unsent.is_empty() {
            match stream.write(&sim.unsent) {
                Ok(0) => break,
                Ok(n) => {
                    sim.unsent.drain(..n);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    // Reset by the server (a stuck client hung up on): gone.
                    self.drop_connection(index);
                    return;
                }
            }
        }
    }

    pub fn drop_connection(&mut self, index: usize) {
        let sim = &mut self.sims[index];
        if let Some(mut stream) = sim.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        // It comes back after a short while, as a new client.
        let back = Instant::now() + self.rng.millis(200, 2000);
        sim.phase = Phase::Away(back);
        self.agenda.push(Reverse((back, index)));
    }

    /// Reads what client `index` has waiting, unless it is pausing, and
    /// handles every whole line.
    pub fn on_readable(&mut self, index: usize) {
        let now = Instant::now();
        if self.sims[index]
            .paused_until
            .is_some_and(|until| now < until)
        {
            return;
        }
        self.sims[index].paused_until = None;
        if !self.read_available(index) {
            return;
        }
        let inbox = std::mem::take(&mut self.sims[index].inbox);
        let mut start = 0;
        while let Some(end) = inbox[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&inbox[start..start + end]).into_owned();
            self.on_line(index, &line, now);
            start += end + 1;
        }
        self.sims[index].inbox = inbox[start..].to_vec();
    }

    /// Reads into the client's inbox until the socket is empty; false if
    /// the connection ended (and was dropped) instead.
    fn read_available(&mut self, index: usize) -> bool {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let sim = &mut self.sims[index];
            let Some(stream) = sim.stream.as_mut() else {
                return false;
            };
            match stream.read(&mut buffer) {
                Ok(0) => {
                    self.drop_connection(index);
                    return false;
                }
                Ok(n) => sim.inbox.extend_from_slice(&buffer[..n]),
                Err(error) if error.kind() == ErrorKind::WouldBlock => return true,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.drop_connection(index);
                    return false;
                }
            }
        }
    }

    fn on_line(&mut self, index: usize, line: &str, now: Instant) {
        let counts = &mut self.counts;
        let sim = &mut self.sims[index];
        if let Some(rest) = line.split(": CH ").nth(1) {
            counts.chat_received += 1;
            check_sequence(sim, counts, rest);
        } else if let Some(rest) = line.strip_prefix("! ") {
            match rest.split_once(" lines were dropped") {
                Some((n, _)) => {
                    sim.notices += 1;
                    counts.notices += 1;
                    counts.told_dropped += n.parse::<u64>().unwrap_or(0);
                }
                None => counts.errors_received += 1,
            }
        } else if line.starts_with("* you joined #") {
            sim.seen.clear();
        } else if line.starts_with(&format!("* welcome {}!", sim.name)) {
            sim.seen.clear();
            sim.phase = Phase::Active;
            let first = now + self.rng.millis(0, 2 * MEAN_ACTION_GAP_MS);
            self.agenda.push(Reverse((first, index)));
        }
    }

    /// One turn of the loop: socket events, then the agenda.
    pub fn pump(&mut self, events: &mut Events) -> io::Result<u64> {
        self.poll.poll(events, Some(Duration::from_millis(10)))?;
        let mut busy = 0;
        for event in events.iter() {
            let index = event.token().0;
            busy += 1;
            if event.is_writable() {
                self.flush(index);
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                self.on_readable(index);
            }
        }
        self.run_agenda(Instant::now())?;
        Ok(busy)
    }

    pub fn registered(&self) -> usize {
        self.sims
            .iter()
            .filter(|sim| matches!(sim.phase, Phase::Active))
            .count()
    }

    pub fn connected(&self) -> usize {
        self.sims.iter().filter(|sim| sim.stream.is_some()).count()
    }

    /// Pumps until `done` holds or `limit` passes; false if it did not hold.
    pub fn pump_until(
        &mut self,
        events: &mut Events,
        limit: Duration,
        mut done: impl FnMut(&Chaos) -> bool,
    ) -> io::Result<bool> {
        let deadline = Instant::now() + limit;
        while !done(self) {
            if Instant::now() > deadline {
                return Ok(false);
            }
            self.pump(events)?;
        }
        Ok(true)
    }

    /// Pumps until nothing has arrived for `quiet`, or `limit` passes.
    pub fn pump_until_quiet(
        &mut self,
        events: &mut Events,
        quiet: Duration,
        limit: Duration,
    ) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        let mut last_busy = Instant::now();
        while Instant::now() < deadline && last_busy.elapsed() < quiet {
            if self.pump(events)? > 0 {
                last_busy = Instant::now();
            }
        }
        Ok(())
    }

    /// At the end: the absent are due back now, and the paused read what
    /// waited for them.
    pub fn wake_everyone(&mut self) {
        let now = Instant::now();
        for index in 0..self.sims.len() {
            if matches!(self.sims[index].phase, Phase::Away(_)) {
                self.sims[index].phase = Phase::Away(now);
                self.agenda.push(Reverse((now, index)));
            }
            if self.sims[index].paused_until.take().is_some() {
                self.on_readable(index);
            }
        }
    }

    /// Sends `/stats` from client 0 and reads `N online, M connections` from
    /// the reply.
    pub fn ask_stats(&mut self, events: &mut Events) -> io::Result<(Option<u64>, Option<u64>)> {
        self.send(0, b"/stats");
        let mut reply = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while reply.is_none() && Instant::now() < deadline {
            self.poll.poll(events, Some(Duration::from_millis(10)))?;
            let mut buffer = [0u8; 16 * 1024];
            let sim = &mut self.sims[0];
            if let Some(stream) = sim.stream.as_mut() {
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    sim.inbox.extend_from_slice(&buffer[..n]);
                }
            }
            let text = String::from_utf8_lossy(&self.sims[0].inbox).into_owned();
            reply = text
                .lines()
                .find(|line| line.starts_with("* stats: "))
                .map(str::to_string);
        }
        let number_before = |text: &str, word: &str| -> Option<u64> {
            let at = text.find(word)?;
            text[..at].split_whitespace().last()?.parse().ok()
        };
        Ok(match reply {
            Some(line) => (
                number_before(&line, " online"),
                number_before(&line, " connections"),
            ),
            None => (None, None),
        })
    }
}

/// The receiver-side check of one `CH` line (see the module comment).
fn check_sequence(sim: &mut Sim, counts: &mut Counts, rest: &str) {
    let mut numbers = rest.split(' ').map(|n| n.parse::<u64>().ok());
    let (Some(Some(sender)), Some(Some(stint)), Some(Some(seq))) =
        (numbers.next(), numbers.next(), numbers.next())
    else {
        return;
    };
    let key = (sender as u32, stint as u32);
    if let Some(&(last, notices_then)) = sim.seen.get(&key) {
        if seq <= last {
            counts.out_of_order += 1;
        } else if seq > last + 1 {
            let missing = seq - last - 1;
            if sim.notices > notices_then {
                counts.told_gap_lines += missing;
            } else {
                counts.silent_gap_lines += missing;
            }
        }
    }
    sim.seen.insert(key, (seq, sim.notices));
}
