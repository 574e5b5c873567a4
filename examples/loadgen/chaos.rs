//! Chaos mode: a soak test of everything at once, from the same one thread.
//!
//! Every simulated client, once registered, acts at random every couple of
//! seconds: it chats, changes rooms, renames itself, whispers, asks for
//! lists, sends junk and over-long lines, vanishes abruptly and comes back
//! under a new name, or stops reading for a few seconds. Now and then one
//! turns greedy: it stops reading and asks for hundreds of `/users` replies,
//! more than the kernel buffers, so that its backlog overflows and lines are
//! dropped for it. Meanwhile every client checks what it receives.
//!
//! Memory is compared between a *warm* baseline, taken halfway through the
//! run, and the end, once everyone is back and quiet: growth past 10 % in
//! the second half would be a leak. Not earlier: in the first minutes each
//! client's buffers grow to their working size and the allocator builds up
//! the memory it keeps for reuse, which is warm-up, not a leak
//! (docs/RELIABILITY.md measured it).
//!
//! **How loss is detected.** A chat line reads `CH <sender> <stint> <seq>`.
//! A sender's *stint* changes whenever it changes room or reconnects, and
//! `seq` counts from 0 within a stint, so all lines of one stint go to one
//! room, in order. A receiver keeps, for each (sender, stint), the last
//! `seq` it saw, and forgets them all when it changes room itself (its
//! *view*). Within a view, the next line of a (sender, stint) must be the
//! next `seq`. A jump is a *told* gap if a `! N lines were dropped` notice
//! arrived since that pair's previous line, and a *silent* one otherwise.
//! A line that goes backwards is out of order. Silent gaps and disorder
//! must both be zero.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::{attach, proc_sample, Args};

const ROOMS: [&str; 5] = ["lobby", "alpha", "beta", "gamma", "delta"];

/// The mean time between two actions of one client.
const MEAN_ACTION_GAP_MS: u64 = 2000;

/// Clients that connect at once at the start (and wait for their welcome).
const CONNECT_BATCH: usize = 100;

/// How often the server's memory is written down during the run.
const RSS_TRACE_EVERY: Duration = Duration::from_secs(30);

/// `/users` a greedy client asks for: with 1,000 online, replies of about
/// 10 KB each, 8 MB in all, twice what the kernel buffers for a socket.
const GREEDY_ASKS: usize = 800;

pub(super) fn main(args: &Args) -> ExitCode {
    match run(args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            let failures = report.failures();
            if args.expect_zero_loss && !failures.is_empty() {
                eprintln!("error: chaos checks failed: {}", failures.join("; "));
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

/// xorshift64*: small, fast and repeatable with `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// What the run did and found; every field is a count.
#[derive(Default, Debug)]
struct Counts {
    chat_sent: u64,
    joins: u64,
    renames: u64,
    whispers: u64,
    lists: u64,
    junk: u64,
    over_long: u64,
    disconnects: u64,
    pauses: u64,
    greedy: u64,
    chat_received: u64,
    errors_received: u64,
    notices: u64,
    told_dropped: u64,
    told_gap_lines: u64,
    silent_gap_lines: u64,
    out_of_order: u64,
}

enum Phase {
    Registering,
    Active,
    /// Disconnected on purpose; reconnects at this time.
    Away(Instant),
}

/// One simulated client.
struct Sim {
    stream: Option<TcpStream>,
    phase: Phase,
    name: String,
    inbox: Vec<u8>,
    unsent: Vec<u8>,
    paused_until: Option<Instant>,
    /// Connections made so far (names must be new after a reconnect).
    connection: u32,
    renames: u32,
    /// As a sender: the current stint and the next sequence number in it.
    stint: u32,
    next_seq: u64,
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

struct Chaos {
    poll: Poll,
    addr: SocketAddr,
    sims: Vec<Sim>,
    rng: Rng,
    counts: Counts,
    /// When each client acts next: (time, index).
    agenda: BinaryHeap<Reverse<(Instant, usize)>>,
    acting: bool,
}

impl Chaos {
    fn connect(&mut self, index: usize) -> io::Result<()> {
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

    fn send(&mut self, index: usize, line: &[u8]) {
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

    fn drop_connection(&mut self, index: usize) {
        let sim = &mut self.sims[index];
        if let Some(mut stream) = sim.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        // It comes back after a short while, as a new client.
        let back = Instant::now() + self.rng.millis(200, 2000);
        sim.phase = Phase::Away(back);
        self.agenda.push(Reverse((back, index)));
    }

    fn on_readable(&mut self, index: usize) {
        let now = Instant::now();
        if self.sims[index]
            .paused_until
            .is_some_and(|until| now < until)
        {
            return;
        }
        self.sims[index].paused_until = None;
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let sim = &mut self.sims[index];
            let Some(stream) = sim.stream.as_mut() else {
                return;
            };
            match stream.read(&mut buffer) {
                Ok(0) => {
                    self.drop_connection(index);
                    return;
                }
                Ok(n) => sim.inbox.extend_from_slice(&buffer[..n]),
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.drop_connection(index);
                    return;
                }
            }
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

    /// The client's next random act.
    fn act(&mut self, index: usize, now: Instant) {
        let roll = self.rng.below(1000);
        let sim = &mut self.sims[index];
        let line: Vec<u8> = match roll {
            // Greedy: stop reading, ask for far more than the kernel holds.
            0..=4 => {
                self.counts.greedy += 1;
                sim.paused_until = Some(now + self.rng.millis(4000, 8000));
                let resume = sim.paused_until.unwrap_or(now);
                self.agenda.push(Reverse((resume, index)));
                let asks = "/users\n".repeat(GREEDY_ASKS);
                self.send(index, asks.trim_end().as_bytes());
                return;
            }
            5..=499 => {
                self.counts.chat_sent += 1;
                let line = format!("CH {index} {} {}", sim.stint, sim.next_seq);
                sim.next_seq += 1;
                line.into_bytes()
            }
            500..=579 => {
                self.counts.joins += 1;
                // Lines after this go to another room: a new stint.
                sim.stint += 1;
                sim.next_seq = 0;
                let room = ROOMS[self.rng.below(ROOMS.len() as u64) as usize];
                format!("/join {room}").into_bytes()
            }
            580..=619 => {
                self.counts.renames += 1;
                sim.renames += 1;
                format!("/nick c{index}n{}r{}", sim.connection, sim.renames).into_bytes()
            }
            620..=679 => {
                self.counts.whispers += 1;
                let to = self.rng.below(self.sims.len() as u64);
                format!("/w c{to}n1 WH psst").into_bytes()
            }
            680..=729 => {
                self.counts.junk += 1;
                let mut junk: Vec<u8> = (0..1 + self.rng.below(60))
                    .map(|_| self.rng.below(256) as u8)
                    .filter(|&b| b != b'\n')
                    .collect();
                junk.insert(0, 0x1b); // never valid: an escape at least
                junk
            }
            730..=759 => {
                self.counts.over_long += 1;
                vec![b'x'; 2000]
            }
            760..=779 => {
                self.counts.disconnects += 1;
                self.drop_connection(index);
                return;
            }
            780..=809 => {
                self.counts.pauses += 1;
                sim.paused_until = Some(now + self.rng.millis(1000, 5000));
                let resume = sim.paused_until.unwrap_or(now);
                self.agenda.push(Reverse((resume, index)));
                return;
            }
            _ => {
                self.counts.lists += 1;
                let commands = ["/users", "/rooms", "/who", "/stats", "/help", "/me waves"];
                commands[self.rng.below(commands.len() as u64) as usize]
                    .as_bytes()
                    .to_vec()
            }
        };
        self.send(index, &line);
        let next = now
            + self
                .rng
                .millis(MEAN_ACTION_GAP_MS / 4, MEAN_ACTION_GAP_MS * 7 / 4);
        self.agenda.push(Reverse((next, index)));
    }

    /// Runs whatever is due: actions, reconnections, ends of pauses.
    fn run_agenda(&mut self, now: Instant) -> io::Result<()> {
        while let Some(Reverse((when, index))) = self.agenda.peek().copied() {
            if when > now {
                break;
            }
            self.agenda.pop();
            match self.sims[index].phase {
                Phase::Away(back) if back <= now => self.connect(index)?,
                Phase::Away(_) => {}
                Phase::Registering => {}
                Phase::Active if self.sims[index].paused_until.is_some_and(|u| u <= now) => {
                    // A pause ended: read what waited, then carry on acting.
                    self.on_readable(index);
                    if self.acting {
                        self.agenda.push(Reverse((now, index)));
                    }
                }
                Phase::Active if self.acting && self.sims[index].paused_until.is_none() => {
                    self.act(index, now)
                }
                Phase::Active => {}
            }
        }
        Ok(())
    }

    /// One turn of the loop: socket events, then the agenda.
    fn pump(&mut self, events: &mut Events) -> io::Result<u64> {
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

    fn registered(&self) -> usize {
        self.sims
            .iter()
            .filter(|sim| matches!(sim.phase, Phase::Active))
            .count()
    }

    fn connected(&self) -> usize {
        self.sims.iter().filter(|sim| sim.stream.is_some()).count()
    }

    /// Pumps until `done` holds or `limit` passes; false if it did not hold.
    fn pump_until(
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
    fn pump_until_quiet(
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

struct Report {
    clients: usize,
    seconds: f64,
    seed: u64,
    counts: Counts,
    connected_at_end: usize,
    registered_at_end: usize,
    server_online: Option<u64>,
    server_connections: Option<u64>,
    threads_baseline: Option<u64>,
    threads_end: Option<u64>,
    rss_baseline_kib: Option<u64>,
    rss_end_kib: Option<u64>,
    /// (seconds into the run, RSS in KiB), every 30 s.
    rss_trace: Vec<(u64, u64)>,
}

impl Report {
    /// Every check that failed, in words; empty when all held.
    fn failures(&self) -> Vec<String> {
        let c = &self.counts;
        let mut failures = Vec::new();
        if c.silent_gap_lines > 0 {
            failures.push(format!(
                "{} lines lost without a notice",
                c.silent_gap_lines
            ));
        }
        if c.out_of_order > 0 {
            failures.push(format!("{} lines out of order or repeated", c.out_of_order));
        }
        if self.registered_at_end != self.clients {
            failures.push(format!(
                "{} of {} clients registered at the end",
                self.registered_at_end, self.clients
            ));
        }
        if self.server_online != Some(self.registered_at_end as u64) {
            failures.push(format!(
                "the server says {:?} online, the generator has {} registered",
                self.server_online, self.registered_at_end
            ));
        }
        if self.server_connections != Some(self.connected_at_end as u64) {
            failures.push(format!(
                "the server says {:?} connections, the generator has {} open",
                self.server_connections, self.connected_at_end
            ));
        }
        if let (Some(threads), Some(connections)) = (self.threads_end, self.server_connections) {
            if threads != 5 + 2 * connections {
                failures.push(format!(
                    "{threads} threads, not 5 + 2 x {connections} connections"
                ));
            }
        }
        if let (Some(before), Some(after)) = (self.rss_baseline_kib, self.rss_end_kib) {
            if after as f64 > before as f64 * 1.10 {
                failures.push(format!(
                    "RSS {after} KiB at the end, more than 10 % over the {before} KiB baseline"
                ));
            }
        }
        failures
    }

    fn table(&self) -> String {
        let c = &self.counts;
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "chaos: {} clients for {:.0} s (seed {})",
            self.clients, self.seconds, self.seed
        );
        let _ = writeln!(
            out,
            "  acts:       {} chat lines, {} joins, {} renames, {} whispers, {} lists",
            c.chat_sent, c.joins, c.renames, c.whispers, c.lists
        );
        let _ = writeln!(out, "  faults:     {} abrupt disconnects, {} pauses in reading (1-5 s), {} greedy stalls ({GREEDY_ASKS} /users unread)", c.disconnects, c.pauses, c.greedy);
        let _ = writeln!(
            out,
            "  bad input:  {} junk lines, {} over-long lines; {} error replies",
            c.junk, c.over_long, c.errors_received
        );
        let _ = writeln!(
            out,
            "  received:   {} chat lines; {} drop notices telling of {} lines",
            c.chat_received, c.notices, c.told_dropped
        );
        let _ = writeln!(
            out,
            "  gaps:       {} lines in told gaps, {} lost without a notice, {} out of order",
            c.told_gap_lines, c.silent_gap_lines, c.out_of_order
        );
        let _ = writeln!(
            out,
            "  at the end: {} connected, {} registered; server: {} online, {} connections",
            self.connected_at_end,
            self.registered_at_end,
            opt(self.server_online),
            opt(self.server_connections)
        );
        let _ = writeln!(
            out,
            "  server:     threads {} -> {}, RSS {} -> {} KiB",
            opt(self.threads_baseline),
            opt(self.threads_end),
            opt(self.rss_baseline_kib),
            opt(self.rss_end_kib)
        );
        let trace: Vec<String> = self
            .rss_trace
            .iter()
            .map(|(s, kib)| format!("{s}s {kib}"))
            .collect();
        let _ = writeln!(out, "  RSS trace:  {} (KiB)", trace.join(", "));
        let failures = self.failures();
        let _ = writeln!(
            out,
            "  checks:     {}",
            if failures.is_empty() {
                "all held".to_string()
            } else {
                failures.join("; ")
            }
        );
        out
    }

    fn json(&self) -> String {
        let c = &self.counts;
        let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
        format!(
            "{{\"mode\":\"chaos\",\"clients\":{},\"seconds\":{:.1},\"seed\":{},\"chat_sent\":{},\"joins\":{},\"renames\":{},\"whispers\":{},\"lists\":{},\"junk\":{},\"over_long\":{},\"disconnects\":{},\"pauses\":{},\"greedy\":{},\"chat_received\":{},\"errors_received\":{},\"notices\":{},\"told_dropped\":{},\"told_gap_lines\":{},\"silent_gap_lines\":{},\"out_of_order\":{},\"connected_at_end\":{},\"registered_at_end\":{},\"server_online\":{},\"server_connections\":{},\"threads_baseline\":{},\"threads_end\":{},\"rss_baseline_kib\":{},\"rss_end_kib\":{},\"rss_trace\":[{}],\"checks_held\":{}}}",
            self.clients, self.seconds, self.seed, c.chat_sent, c.joins, c.renames, c.whispers, c.lists, c.junk, c.over_long, c.disconnects, c.pauses, c.greedy, c.chat_received, c.errors_received, c.notices, c.told_dropped, c.told_gap_lines, c.silent_gap_lines, c.out_of_order, self.connected_at_end, self.registered_at_end, opt(self.server_online), opt(self.server_connections), opt(self.threads_baseline), opt(self.threads_end), opt(self.rss_baseline_kib), opt(self.rss_end_kib), self.rss_trace.iter().map(|(s, kib)| format!("[{s},{kib}]")).collect::<Vec<_>>().join(","), self.failures().is_empty()
        )
    }
}

fn run(args: &Args) -> io::Result<Report> {
    let server = attach(args)?;
    let mut chaos = Chaos {
        poll: Poll::new()?,
        addr: server.addrs[0],
        sims: (0..args.clients).map(|_| Sim::new()).collect(),
        rng: Rng(args.seed.max(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        counts: Counts::default(),
        agenda: BinaryHeap::new(),
        acting: false,
    };
    let mut events = Events::with_capacity(4096);

    // Everyone connects and registers, a batch at a time.
    for batch in (0..args.clients).collect::<Vec<_>>().chunks(CONNECT_BATCH) {
        for &index in batch {
            chaos.connect(index)?;
        }
        let want = batch[batch.len() - 1] + 1;
        if !chaos.pump_until(&mut events, Duration::from_secs(60), |c| {
            c.registered() >= want
        })? {
            return Err(io::Error::other(format!(
                "only {} of {want} clients registered within 60 s",
                chaos.registered()
            )));
        }
    }
    chaos.pump_until_quiet(&mut events, Duration::from_secs(1), Duration::from_secs(30))?;

    // The chaos itself, with the memory baseline taken once it is warm.
    chaos.acting = true;
    let started = Instant::now();
    let warm_at = args.duration / 2;
    let mut baseline = None;
    let mut rss_trace = Vec::new();
    let mut next_trace = Duration::ZERO;
    while started.elapsed() < args.duration {
        chaos.pump(&mut events)?;
        if baseline.is_none() && started.elapsed() >= warm_at {
            baseline = proc_sample(&server.pids);
        }
        if started.elapsed() >= next_trace {
            if let Some(sample) = proc_sample(&server.pids) {
                rss_trace.push((next_trace.as_secs(), sample.rss_kib));
            }
            next_trace += RSS_TRACE_EVERY;
        }
    }
    chaos.acting = false;
    let seconds = started.elapsed().as_secs_f64();

    // Calm down: the absent come back, the paused read, until nothing moves.
    let now = Instant::now();
    for index in 0..chaos.sims.len() {
        if matches!(chaos.sims[index].phase, Phase::Away(_)) {
            chaos.sims[index].phase = Phase::Away(now);
            chaos.agenda.push(Reverse((now, index)));
        }
        if chaos.sims[index].paused_until.take().is_some() {
            chaos.on_readable(index);
        }
    }
    let clients = args.clients;
    chaos.pump_until(&mut events, Duration::from_secs(60), |c| {
        c.registered() == clients
    })?;
    chaos.pump_until_quiet(&mut events, Duration::from_secs(2), Duration::from_secs(60))?;

    // What the server says, from one client's `/stats`.
    let (online, connections) = ask_stats(&mut chaos, &mut events)?;
    let end = proc_sample(&server.pids);
    Ok(Report {
        clients,
        seconds,
        seed: args.seed,
        connected_at_end: chaos.connected(),
        registered_at_end: chaos.registered(),
        server_online: online,
        server_connections: connections,
        threads_baseline: baseline.map(|s| s.threads),
        threads_end: end.map(|s| s.threads),
        rss_baseline_kib: baseline.map(|s| s.rss_kib),
        rss_end_kib: end.map(|s| s.rss_kib),
        rss_trace,
        counts: chaos.counts,
    })
}

/// Sends `/stats` from client 0 and reads `N online, M connections` from
/// the reply.
fn ask_stats(chaos: &mut Chaos, events: &mut Events) -> io::Result<(Option<u64>, Option<u64>)> {
    chaos.send(0, b"/stats");
    let mut reply = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while reply.is_none() && Instant::now() < deadline {
        chaos.poll.poll(events, Some(Duration::from_millis(10)))?;
        let mut buffer = [0u8; 16 * 1024];
        let sim = &mut chaos.sims[0];
        if let Some(stream) = sim.stream.as_mut() {
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sim.inbox.extend_from_slice(&buffer[..n]);
            }
        }
        let text = String::from_utf8_lossy(&chaos.sims[0].inbox).into_owned();
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
