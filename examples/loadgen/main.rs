//! The load generator: many chat clients simulated from one thread.
//!
//! It does not use a thread per simulated client (that would compete with
//! the server's own threads for the machine's `pid_max`): every socket is
//! non-blocking and one `mio` (epoll) loop drives them all. It works against
//! any line-based chat server: each client sends its name `u<index>` and
//! counts as registered when a line holding `welcome u<index>` arrives;
//! senders send `LG <sender> <seq> <send time in µs>`, and receivers find
//! that text wherever the server puts it in its line.
//!
//! Run `cargo run --release --example loadgen -- --help` for the modes and
//! flags; docs/BENCHMARKS.md has the commands behind every published figure.
//! The chaos mode (a soak test of everything at once) is in `chaos.rs`;
//! docs/RELIABILITY.md has its results.

mod chaos;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const USAGE: &str = "\
Usage: loadgen [OPTIONS]
       loadgen chart RESULTS.jsonl OUT_DIR

Modes (--mode):
  fanout     senders send at a fixed total --rate; every other client receives (default)
  saturate   senders send as fast as the server takes them, each with at most
             --window lines not yet seen by a probe client
  users      client 0 sends /users --samples times, one at a time: time to the reply
  capacity   connect and register --clients, hold them idle for --duration, report memory
  chaos      --clients act at random for --duration (chat, rooms, renames, whispers, junk,
             over-long lines, abrupt disconnects, pauses in reading), then check that no
             line was lost without a notice and that threads, memory and /stats add up

Target (one of):
  --spawn PATH          start this server binary on 127.0.0.1:0 (with --rate-limit off,
                        --max-per-addr 0 and --max-clients above --clients: every simulated
                        client comes from 127.0.0.1), measure it from /proc, and at the end
                        time its shutdown (SIGTERM) with every client still connected
  --addr HOST:PORT      an already running server; add --pid PID for /proc figures.
                        Repeat --addr to spread the clients over several servers (one
                        chat through Redis, `--redis`): client i goes to the (i mod N)-th,
                        and latencies between clients on different servers are reported
                        apart. Repeat --pid too (the servers', and redis-server's): CPU
                        is summed over all, and each thread role is shown

Options:
  --clients N           simulated clients [default: 100]
  --senders N           of which this many send [default: 10]
  --rate R              fanout: lines per second, all senders together [default: 100]
  --duration SECS       how long to send (or hold, for capacity) [default: 10]
  --window N            saturate: lines in flight per sender [default: 16]
  --slow N              this many clients (not senders) stop reading once registered
  --samples N           users: how many /users [default: 200]
  --server-arg ARG      pass ARG to the spawned server (repeatable)
  --protocol P          threadchat (default), or redis: receivers SUBSCRIBE to one
                        channel and senders PUBLISH to it (give --addr and --pid of a
                        running redis-server; fanout, saturate and capacity modes).
                        Redis's publishers do not read, so each line has
                        clients - senders - slow receivers, not clients - slow - 1
  --in-flight N         connections being set up at once [default: 64]
  --json                print one JSON object instead of the table
  --seed N              chaos: the random seed, for a run that can be repeated [default: 1]
  --expect-zero-loss    exit 1 unless every expected delivery arrived and every client connected
                        (chaos: unless no line was lost without a notice and every check held)
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Fanout,
    Saturate,
    Users,
    Capacity,
    Chaos,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Fanout => "fanout",
            Mode::Saturate => "saturate",
            Mode::Users => "users",
            Mode::Capacity => "capacity",
            Mode::Chaos => "chaos",
        }
    }
}

/// Which server the simulated clients talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// Lines: a name to register, then chat lines.
    Threadchat,
    /// RESP: `SUBSCRIBE` to receive, `PUBLISH` to send.
    Redis,
}

/// The one channel every Redis client subscribes to.
const REDIS_CHANNEL: &str = "threadchat";

#[derive(Debug)]
struct Args {
    mode: Mode,
    protocol: Protocol,
    in_flight: usize,
    spawn: Option<String>,
    addrs: Vec<String>,
    pids: Vec<u32>,
    clients: usize,
    senders: usize,
    rate: f64,
    duration: Duration,
    window: u64,
    slow: usize,
    samples: usize,
    server_args: Vec<String>,
    json: bool,
    expect_zero_loss: bool,
    seed: u64,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        mode: Mode::Fanout,
        protocol: Protocol::Threadchat,
        in_flight: 64,
        spawn: None,
        addrs: Vec::new(),
        pids: Vec::new(),
        clients: 100,
        senders: 10,
        rate: 100.0,
        duration: Duration::from_secs(10),
        window: 16,
        slow: 0,
        samples: 200,
        server_args: Vec::new(),
        json: false,
        expect_zero_loss: false,
        seed: 1,
    };
    fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
        let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
        value
            .parse()
            .map_err(|_| format!("{flag}: not a valid number: {value:?}"))
    }
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--mode" => {
                parsed.mode = match args.next().as_deref() {
                    Some("fanout") => Mode::Fanout,
                    Some("saturate") => Mode::Saturate,
                    Some("users") => Mode::Users,
                    Some("capacity") => Mode::Capacity,
                    Some("chaos") => Mode::Chaos,
                    other => return Err(format!("--mode: unknown mode {other:?}")),
                }
            }
            "--protocol" => {
                parsed.protocol = match args.next().as_deref() {
                    Some("threadchat") => Protocol::Threadchat,
                    Some("redis") => Protocol::Redis,
                    other => return Err(format!("--protocol: unknown protocol {other:?}")),
                }
            }
            "--in-flight" => parsed.in_flight = number(&flag, args.next())?,
            "--spawn" => parsed.spawn = Some(args.next().ok_or("--spawn needs a path")?),
            "--addr" => parsed
                .addrs
                .push(args.next().ok_or("--addr needs HOST:PORT")?),
            "--pid" => parsed.pids.push(number(&flag, args.next())?),
            "--clients" => parsed.clients = number(&flag, args.next())?,
            "--senders" => parsed.senders = number(&flag, args.next())?,
            "--rate" => parsed.rate = number(&flag, args.next())?,
            "--duration" => parsed.duration = Duration::from_secs_f64(number(&flag, args.next())?),
            "--window" => parsed.window = number(&flag, args.next())?,
            "--slow" => parsed.slow = number(&flag, args.next())?,
            "--samples" => parsed.samples = number(&flag, args.next())?,
            "--server-arg" => parsed
                .server_args
                .push(args.next().ok_or("--server-arg needs a value")?),
            "--json" => parsed.json = true,
            "--seed" => parsed.seed = number(&flag, args.next())?,
            "--expect-zero-loss" => parsed.expect_zero_loss = true,
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let has_addr = !parsed.addrs.is_empty();
    if parsed.spawn.is_some() == has_addr {
        return Err("give exactly one of --spawn PATH and --addr HOST:PORT".into());
    }
    if parsed.protocol == Protocol::Redis
        && (parsed.spawn.is_some() || matches!(parsed.mode, Mode::Users | Mode::Chaos))
    {
        return Err(
            "--protocol redis needs --addr (and --pid), and fanout, saturate or capacity".into(),
        );
    }
    if parsed.addrs.len() > 1
        && (parsed.protocol == Protocol::Redis || matches!(parsed.mode, Mode::Users | Mode::Chaos))
    {
        return Err(
            "several --addr: only for threadchat servers, in fanout, saturate or capacity".into(),
        );
    }
    if parsed.in_flight == 0 {
        return Err("--in-flight must be at least 1".into());
    }
    if parsed.clients < 2 || parsed.senders == 0 || parsed.senders + parsed.slow >= parsed.clients {
        return Err("need --clients >= 2 and --senders + --slow < --clients".into());
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    kill_spawned_server_on_signal();
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("chart") {
        args.next();
        let files: Vec<String> = args.collect();
        return match files.as_slice() {
            [results, out_dir] => match chart(results, out_dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(1)
                }
            },
            _ => {
                eprintln!("usage: loadgen chart RESULTS.jsonl OUT_DIR");
                ExitCode::from(2)
            }
        };
    }
    let args = match parse_args(args) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.mode == Mode::Chaos {
        return chaos::main(&args);
    }
    match run(&args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            if args.expect_zero_loss && !report.lossless() {
                eprintln!(
                    "error: expected zero loss: {} of {} connections failed, {} of {} deliveries missing",
                    report.connect_failed,
                    report.clients,
                    report.expected.saturating_sub(report.received),
                    report.expected
                );
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

// ---------------------------------------------------------------------------
// The server under test, and what /proc says about it.

struct Server {
    /// Usually one; several with `--addr` repeated.
    addrs: Vec<SocketAddr>,
    /// Every process whose /proc figures count (`--pid`, repeatable).
    pids: Vec<u32>,
    child: Option<Child>,
}

/// A server started with `--spawn` must not outlive the run: an error, a
/// panic, or a benchmark sweep interrupted with Ctrl-C would otherwise leave
/// it running, using the CPU that the next run measures.
impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        SPAWNED_PID.store(0, Ordering::SeqCst);
    }
}

/// The pid of the server started with `--spawn`, 0 for none: for the signal
/// handler, because a signal ends the process without running `Drop`.
static SPAWNED_PID: AtomicU32 = AtomicU32::new(0);

/// On Ctrl-C, SIGTERM or SIGHUP (`timeout`, a closed terminal), take the
/// spawned server down too, then exit as the signal would have.
fn kill_spawned_server_on_signal() {
    let installed = ctrlc::set_handler(|| {
        let pid = SPAWNED_PID.load(Ordering::SeqCst);
        if pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        std::process::exit(130);
    });
    if let Err(error) = installed {
        eprintln!("warning: cannot handle signals ({error}); a spawned server may outlive an interrupted run");
    }
}

fn attach(args: &Args) -> io::Result<Server> {
    if !args.addrs.is_empty() {
        let addrs = args
            .addrs
            .iter()
            .map(|addr| {
                addr.parse().map_err(|_| {
                    io::Error::new(ErrorKind::InvalidInput, format!("bad --addr {addr}"))
                })
            })
            .collect::<io::Result<_>>()?;
        return Ok(Server {
            addrs,
            pids: args.pids.clone(),
            child: None,
        });
    }
    let path = args.spawn.as_deref().unwrap_or_default();
    let max_clients = (args.clients + 100).to_string();
    let mut child = Command::new(path)
        .args([
            "--addr",
            "127.0.0.1:0",
            "--rate-limit",
            "off",
            "--max-per-addr",
            "0",
            "--http",
            "off",
        ])
        .args(["--max-clients", &max_clients])
        .args(&args.server_args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start {path}: {e}")))?;
    SPAWNED_PID.store(child.id(), Ordering::SeqCst);
    // The server's log is read on a thread for as long as it runs, so that
    // its pipe never fills; the first `listening on` line gives the address.
    let stderr = child.stderr.take().expect("stderr is piped");
    // From here on, `Server`'s `Drop` kills the child on every way out.
    let mut server = Server {
        addrs: Vec::new(),
        pids: vec![child.id()],
        child: Some(child),
    };
    let (found, address) = mpsc::channel();
    thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                if let Some(found) = found.take() {
                    let _ = found.send(addr.trim().to_string());
                }
            }
        }
    });
    let addr = address
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| io::Error::other("the server did not say where it listens"))?;
    let addr = addr
        .parse()
        .map_err(|_| io::Error::other(format!("bad address in the log: {addr}")))?;
    server.addrs.push(addr);
    Ok(server)
}

#[derive(Clone, Copy, Debug, Default)]
struct ProcSample {
    /// User plus system CPU time.
    cpu: Duration,
    rss_kib: u64,
    threads: u64,
}

/// Clock ticks per second of /proc/PID/stat times: 100 on every Linux
/// this runs on (`getconf CLK_TCK`).
const CLOCK_TICKS: u64 = 100;

/// The figures of every process in `pids`, added up; `None` if there are
/// none, or one cannot be read.
fn proc_sample(pids: &[u32]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    let mut total = ProcSample::default();
    for pid in pids {
        let one = proc_sample_of(*pid)?;
        total.cpu += one.cpu;
        total.rss_kib += one.rss_kib;
        total.threads += one.threads;
    }
    Some(total)
}

fn proc_sample_of(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(ProcSample {
        cpu: Duration::from_millis(ticks * 1000 / CLOCK_TICKS),
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
    })
}

/// Per thread role (the thread's name without its number: `reader-17` is
/// `reader`): nanoseconds on a CPU (from `schedstat`, which is exact; the
/// per-thread clock ticks in `stat` are sampled, and summed over a
/// thousand briefly running threads they miss about half), and context
/// switches, voluntary (the thread went to sleep) and not (it was
/// preempted), summed over the role's threads. Threads that ended before the sample are not in it, so compare
/// two samples taken while every client is connected.
type RoleSample = HashMap<String, [u64; 3]>;

fn role_sample(pids: &[u32]) -> Option<RoleSample> {
    if pids.is_empty() {
        return None;
    }
    let mut roles = RoleSample::new();
    for pid in pids {
        add_roles(*pid, &mut roles)?;
    }
    Some(roles)
}

fn add_roles(pid: u32, roles: &mut RoleSample) -> Option<()> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for task in tasks.flatten() {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file));
        let (Ok(comm), Ok(status), Ok(schedstat)) =
            (read("comm"), read("status"), read("schedstat"))
        else {
            continue; // the thread ended meanwhile
        };
        let role = comm
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        let first_number = |text: &str| text.split_whitespace().next()?.parse::<u64>().ok();
        let switches = |key: &str| {
            let value = status.lines().find_map(|line| line.strip_prefix(key));
            value.and_then(first_number).unwrap_or(0)
        };
        let entry = roles.entry(role.to_string()).or_default();
        entry[0] += first_number(&schedstat).unwrap_or(0);
        entry[1] += switches("voluntary_ctxt_switches:");
        entry[2] += switches("nonvoluntary_ctxt_switches:");
    }
    Some(())
}

// ---------------------------------------------------------------------------
// The simulated clients.

struct Client {
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

/// What the clients have seen, across all of them.
#[derive(Default)]
struct Tally {
    registered: usize,
    failed: usize,
    /// Connections the server closed after registration.
    dropped_later: usize,
    /// Lines the server said it dropped: the first number of every line
    /// starting `! ` that says "dropped" (threadchat tells a client that fell
    /// behind how many lines it missed; other servers may say nothing).
    told_dropped: u64,
    /// Whether to count and time `LG` lines (not during the warm-up).
    measuring: bool,
    received: u64,
    latencies_us: Vec<u32>,
    /// The same, for deliveries whose sender is on another server.
    cross_latencies_us: Vec<u32>,
    /// For each line sent (sender, seq): the latency of its first and of its
    /// last arrival so far. The difference is how long the server took to go
    /// round all of that line's recipients, which is what bounds the tail of
    /// a fan-out on a thread-per-connection server.
    arrivals_us: HashMap<(usize, u64), (u32, u32)>,
    /// Highest sequence number of each sender seen by the probe client.
    probe_seen: HashMap<usize, u64>,
    probe: usize,
    /// users mode: when `/users` was sent, and the replies' times.
    users_sent_at: Option<Instant>,
    users_replies: Vec<u32>,
    last_byte: Option<Instant>,
}

struct Swarm {
    protocol: Protocol,
    /// Clients `0..senders` send; with Redis they only publish.
    senders: usize,
    /// How many servers the clients are spread over: client i is on server
    /// i mod `servers`.
    servers: usize,
    poll: Poll,
    events: Events,
    clients: Vec<Client>,
    tally: Tally,
    /// The zero of the `LG` lines' timestamps.
    epoch: Instant,
    buffer: Vec<u8>,
}

impl Swarm {
    fn new(protocol: Protocol, senders: usize, servers: usize) -> io::Result<Swarm> {
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

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn connect(&mut self, addr: SocketAddr) -> io::Result<()> {
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

    fn send(&mut self, index: usize, line: &str) {
        let client = &mut self.clients[index];
        if client.closed {
            return;
        }
        match self.protocol {
            Protocol::Threadchat => {
                client.outbox.extend_from_slice(line.as_bytes());
                client.outbox.push(b'\n');
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

    fn stop_reading(&mut self, index: usize) -> io::Result<()> {
        let client = &mut self.clients[index];
        client.reading = false;
        self.poll
            .registry()
            .reregister(&mut client.stream, Token(index), Interest::WRITABLE)
    }

    /// Waits up to `timeout` for socket events and handles them.
    fn pump(&mut self, timeout: Duration) -> io::Result<()> {
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
                Ok(n) => {
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
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(index);
                    return;
                }
            }
        }
    }

    fn on_line(&mut self, index: usize, line: &[u8], now: Instant) {
        let tally = &mut self.tally;
        let client = &mut self.clients[index];
        if !client.registered {
            let registered = match self.protocol {
                Protocol::Threadchat => {
                    find(line, format!("welcome {}", client.name).as_bytes()).is_some()
                }
                // A RESP reply arrives as several lines; these are the ones
                // that end the reply to SUBSCRIBE and to PING.
                Protocol::Redis => line.starts_with(b":1") || line.starts_with(b"+PONG"),
            };
            if registered {
                client.registered = true;
                tally.registered += 1;
            }
            return;
        }
        if let Some(sent) = tally.users_sent_at {
            if index == 0 && line.starts_with(b"* online") {
                tally
                    .users_replies
                    .push(now.duration_since(sent).as_micros() as u32);
                tally.users_sent_at = None;
            }
        }
        if !tally.measuring {
            return;
        }
        if line.starts_with(b"! ") && find(line, b"dropped").is_some() {
            let number = line[2..]
                .split(|b| !b.is_ascii_digit())
                .find(|digits| !digits.is_empty())
                .and_then(|digits| std::str::from_utf8(digits).ok()?.parse::<u64>().ok());
            tally.told_dropped += number.unwrap_or(0);
            return;
        }
        let Some(at) = find(line, b"LG ") else {
            return;
        };
        let mut fields = line[at + 3..]
            .split(|&b| b == b' ')
            .map(|field| std::str::from_utf8(field).ok()?.trim().parse::<u64>().ok());
        let (Some(Some(sender)), Some(Some(seq)), Some(Some(sent_us))) =
            (fields.next(), fields.next(), fields.next())
        else {
            return;
        };
        let sender = sender as usize;
        if sender == index {
            return; // an echo of our own line, if the server echoes
        }
        tally.received += 1;
        let now_us = now.duration_since(self.epoch).as_micros() as u64;
        let latency_us = now_us.saturating_sub(sent_us).min(u32::MAX as u64) as u32;
        tally.latencies_us.push(latency_us);
        if self.servers > 1 && sender % self.servers != index % self.servers {
            tally.cross_latencies_us.push(latency_us);
        }
        let (first, last) = tally
            .arrivals_us
            .entry((sender, seq))
            .or_insert((latency_us, latency_us));
        *first = (*first).min(latency_us);
        *last = (*last).max(latency_us);
        if index == tally.probe {
            let seen = tally.probe_seen.entry(sender).or_insert(0);
            *seen = (*seen).max(seq);
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

// ---------------------------------------------------------------------------
// One run.

struct Report {
    mode: Mode,
    protocol: Protocol,
    /// Per thread role: server CPU µs, voluntary and involuntary context
    /// switches, each per delivery.
    roles: Vec<(String, [f64; 3])>,
    clients: usize,
    senders: usize,
    slow: usize,
    rate: f64,
    connected: usize,
    connect_failed: usize,
    connect_secs: f64,
    dropped_later: usize,
    told_dropped: u64,
    sent: u64,
    expected: u64,
    received: u64,
    measure_secs: f64,
    latency_ms: Option<[f64; 6]>,
    /// Deliveries from a sender on another server (several --addr).
    cross_ms: Option<[f64; 6]>,
    /// Per line: the latency of its first arrival anywhere.
    first_ms: Option<[f64; 6]>,
    /// Per line: from its first arrival to its last.
    spread_ms: Option<[f64; 6]>,
    users_ms: Option<[f64; 6]>,
    idle: Option<ProcSample>,
    baseline: Option<ProcSample>,
    cpu_us_per_delivery: Option<f64>,
    peak: Option<ProcSample>,
    shutdown_secs: Option<f64>,
}

impl Report {
    fn lossless(&self) -> bool {
        self.connect_failed == 0 && self.received >= self.expected
    }

    fn rss_per_client_kib(&self) -> Option<f64> {
        let (idle, baseline) = (self.idle?, self.baseline?);
        Some((idle.rss_kib as f64 - baseline.rss_kib as f64) / self.connected.max(1) as f64)
    }

    fn deliveries_per_sec(&self) -> f64 {
        self.received as f64 / self.measure_secs.max(1e-9)
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "{name:<28} {value}");
        };
        row("mode", self.mode.name().to_string());
        row("protocol", format!("{:?}", self.protocol).to_lowercase());
        row(
            "clients",
            format!(
                "{} ({} senders, {} slow)",
                self.clients, self.senders, self.slow
            ),
        );
        row(
            "connections ok / failed",
            format!(
                "{} / {} (in {:.2} s)",
                self.connected, self.connect_failed, self.connect_secs
            ),
        );
        row("closed by the server later", self.dropped_later.to_string());
        if matches!(self.mode, Mode::Fanout | Mode::Saturate) {
            row("messages sent", self.sent.to_string());
            row(
                "deliveries expected / recv",
                format!("{} / {}", self.expected, self.received),
            );
            row(
                "loss",
                format!(
                    "{} ({:.3}%), of which the server said it dropped {}",
                    self.expected.saturating_sub(self.received),
                    100.0 * self.expected.saturating_sub(self.received) as f64
                        / self.expected.max(1) as f64,
                    self.told_dropped
                ),
            );
            row(
                "deliveries per second",
                format!("{:.0}", self.deliveries_per_sec()),
            );
        }
        let percentiles = |values: &[f64; 6]| {
            format!(
                "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3})",
                values[0], values[1], values[2], values[3], values[4], values[5]
            )
        };
        if let Some(latency) = &self.latency_ms {
            row("latency ms", percentiles(latency));
        }
        if let Some(cross) = &self.cross_ms {
            row("from another server ms", percentiles(cross));
        }
        if let Some(first) = &self.first_ms {
            row("first arrival of a line ms", percentiles(first));
        }
        if let Some(spread) = &self.spread_ms {
            row("first to last arrival ms", percentiles(spread));
        }
        if let Some(users) = &self.users_ms {
            row("/users reply ms", percentiles(users));
        }
        if let Some(cpu) = self.cpu_us_per_delivery {
            row("server CPU per delivery", format!("{cpu:.2} µs"));
        }
        for (role, [cpu_us, voluntary, preempted]) in &self.roles {
            row(
                &format!("  {role} threads"),
                format!("{cpu_us:.2} µs, {voluntary:.2} sleeps, {preempted:.2} preemptions per delivery"),
            );
        }
        if let Some(idle) = self.idle {
            row(
                "server idle RSS / threads",
                format!("{} KiB / {}", idle.rss_kib, idle.threads),
            );
        }
        if let Some(per_client) = self.rss_per_client_kib() {
            row("server RSS per client", format!("{per_client:.1} KiB"));
        }
        if let Some(peak) = self.peak {
            row(
                "server RSS / threads after",
                format!("{} KiB / {}", peak.rss_kib, peak.threads),
            );
        }
        if let Some(secs) = self.shutdown_secs {
            row("server shutdown", format!("{secs:.3} s"));
        }
        out
    }

    fn json(&self) -> String {
        let mut fields: Vec<(String, String)> = vec![
            ("mode".into(), format!("\"{}\"", self.mode.name())),
            (
                "protocol".into(),
                format!("\"{:?}\"", self.protocol).to_lowercase(),
            ),
            ("clients".into(), self.clients.to_string()),
            ("senders".into(), self.senders.to_string()),
            ("slow".into(), self.slow.to_string()),
            ("rate".into(), format!("{}", self.rate)),
            ("connected".into(), self.connected.to_string()),
            ("connect_failed".into(), self.connect_failed.to_string()),
            ("connect_secs".into(), format!("{:.3}", self.connect_secs)),
            ("closed_by_server".into(), self.dropped_later.to_string()),
            ("told_dropped".into(), self.told_dropped.to_string()),
            ("sent".into(), self.sent.to_string()),
            ("expected".into(), self.expected.to_string()),
            ("received".into(), self.received.to_string()),
            (
                "deliveries_per_sec".into(),
                format!("{:.0}", self.deliveries_per_sec()),
            ),
        ];
        let names = ["p50", "p90", "p99", "p999", "max", "mean"];
        for (prefix, values) in [
            ("latency", &self.latency_ms),
            ("cross", &self.cross_ms),
            ("first", &self.first_ms),
            ("spread", &self.spread_ms),
            ("users", &self.users_ms),
        ] {
            if let Some(values) = values {
                for (name, value) in names.iter().zip(values) {
                    fields.push((format!("{prefix}_{name}_ms"), format!("{value:.3}")));
                }
            }
        }
        if let Some(cpu) = self.cpu_us_per_delivery {
            fields.push(("cpu_us_per_delivery".into(), format!("{cpu:.3}")));
        }
        for (role, [cpu_us, voluntary, preempted]) in &self.roles {
            fields.push((
                format!("{role}_cpu_us_per_delivery"),
                format!("{cpu_us:.3}"),
            ));
            fields.push((
                format!("{role}_sleeps_per_delivery"),
                format!("{voluntary:.3}"),
            ));
            fields.push((
                format!("{role}_preempted_per_delivery"),
                format!("{preempted:.3}"),
            ));
        }
        if let Some(idle) = self.idle {
            fields.push(("idle_rss_kib".into(), idle.rss_kib.to_string()));
            fields.push(("idle_threads".into(), idle.threads.to_string()));
        }
        if let Some(per_client) = self.rss_per_client_kib() {
            fields.push(("rss_per_client_kib".into(), format!("{per_client:.1}")));
        }
        if let Some(peak) = self.peak {
            fields.push(("after_rss_kib".into(), peak.rss_kib.to_string()));
        }
        if let Some(secs) = self.shutdown_secs {
            fields.push(("shutdown_secs".into(), format!("{secs:.3}")));
        }
        let body: Vec<String> = fields
            .into_iter()
            .map(|(key, value)| format!("\"{key}\":{value}"))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

fn percentiles_ms(values: &mut [u32]) -> Option<[f64; 6]> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let at = |q: f64| {
        let index = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
        values[index] as f64 / 1000.0
    };
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64 / 1000.0;
    Some([
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        values[values.len() - 1] as f64 / 1000.0,
        mean,
    ])
}

/// Pumps until `done` holds or `limit` passes; true if `done` held.
fn pump_until(
    swarm: &mut Swarm,
    limit: Duration,
    mut done: impl FnMut(&Swarm) -> bool,
) -> io::Result<bool> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done(swarm) {
            return Ok(true);
        }
        swarm.pump(Duration::from_millis(10))?;
    }
    Ok(done(swarm))
}

/// Pumps until nothing has arrived for `quiet`, `done` holds, or `limit`
/// passes, whichever comes first.
fn pump_until_quiet(
    swarm: &mut Swarm,
    quiet: Duration,
    limit: Duration,
    done: impl Fn(&Swarm) -> bool,
) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    while !done(swarm) && Instant::now() < deadline {
        swarm.pump(Duration::from_millis(50))?;
        if swarm
            .tally
            .last_byte
            .is_none_or(|last| last.elapsed() > quiet)
        {
            break;
        }
    }
    Ok(())
}

/// Sends `sender`'s next numbered, timestamped line.
fn send_numbered(swarm: &mut Swarm, sender: usize, seq: &mut [u64]) {
    seq[sender] += 1;
    let line = format!("LG {sender} {} {}", seq[sender], swarm.now_us());
    swarm.send(sender, &line);
}

fn run(args: &Args) -> io::Result<Report> {
    let mut server = attach(args)?;
    let baseline = proc_sample(&server.pids);
    let mut swarm = Swarm::new(args.protocol, args.senders, server.addrs.len())?;

    // Connect and register, at most --in-flight at a time in progress (a
    // server that listens with std's backlog of 128 drops SYNs past it, and
    // each dropped SYN costs a one-second retransmission).
    let started = Instant::now();
    // Registering N clients in one room costs the server N^2/2 join notices
    // (about five minutes for 10,000 on two cores), so the limit grows with
    // the square of the count.
    let thousands = args.clients as f64 / 1000.0;
    let connect_limit = Duration::from_secs_f64(60.0 + 4.0 * thousands * thousands);
    while swarm.clients.len() < args.clients && started.elapsed() < connect_limit {
        let in_progress = swarm
            .clients
            .iter()
            .filter(|c| !c.registered && !c.closed)
            .count();
        for _ in in_progress..args.in_flight {
            if swarm.clients.len() == args.clients {
                break;
            }
            let addr = server.addrs[swarm.clients.len() % server.addrs.len()];
            if swarm.connect(addr).is_err() {
                // Nothing to clean up: the client never existed. Counted
                // below as one that never registered.
                break;
            }
        }
        swarm.pump(Duration::from_millis(5))?;
    }
    pump_until(
        &mut swarm,
        connect_limit.saturating_sub(started.elapsed()),
        |s| s.tally.registered + s.tally.failed >= args.clients,
    )?;
    let connect_secs = started.elapsed().as_secs_f64();
    // Whatever has not registered by now has failed.
    let unregistered = swarm
        .clients
        .iter()
        .filter(|c| !c.registered && !c.closed)
        .count();
    let connect_failed = swarm.tally.failed + unregistered + (args.clients - swarm.clients.len());

    // Let the storm of join notices pass: until nothing has arrived for
    // half a second (at most two minutes).
    pump_until_quiet(
        &mut swarm,
        Duration::from_millis(500),
        Duration::from_secs(120),
        |_| false,
    )?;
    let idle = proc_sample(&server.pids);

    // Senders are the first clients, slow ones the next, the probe the last.
    let senders: Vec<usize> = (0..args.senders).collect();
    for index in args.senders..args.senders + args.slow {
        swarm.stop_reading(index)?;
    }
    swarm.tally.probe = args.clients - 1;
    let before = proc_sample(&server.pids);
    let roles_before = role_sample(&server.pids);
    let mut sent: u64 = 0;
    let mut seq = vec![0u64; args.senders];
    let measure_start = Instant::now();
    swarm.tally.measuring = true;
    match args.mode {
        // Dispatched to `chaos::main` before `run` is called.
        Mode::Chaos => unreachable!("chaos mode has its own run"),
        Mode::Capacity => {
            let end = Instant::now() + args.duration;
            while Instant::now() < end {
                swarm.pump(Duration::from_millis(50))?;
            }
        }
        Mode::Users => {
            for _ in 0..args.samples {
                swarm.tally.users_sent_at = Some(Instant::now());
                swarm.send(0, "/users");
                pump_until(&mut swarm, Duration::from_secs(10), |s| {
                    s.tally.users_sent_at.is_none()
                })?;
            }
        }
        Mode::Fanout => {
            let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
            let mut next = Instant::now();
            let end = Instant::now() + args.duration;
            while Instant::now() < end {
                while next <= Instant::now() {
                    let sender = senders[(sent % senders.len() as u64) as usize];
                    send_numbered(&mut swarm, sender, &mut seq);
                    sent += 1;
                    next += interval;
                }
                swarm.pump(next.saturating_duration_since(Instant::now()))?;
            }
        }
        Mode::Saturate => {
            let end = Instant::now() + args.duration;
            while Instant::now() < end {
                for &sender in &senders {
                    let seen = swarm.tally.probe_seen.get(&sender).copied().unwrap_or(0);
                    while seq[sender] < seen + args.window {
                        send_numbered(&mut swarm, sender, &mut seq);
                        sent += 1;
                    }
                }
                swarm.pump(Duration::from_millis(1))?;
            }
        }
    }
    // Every reading client but the sender itself should get every line
    // (with Redis, the senders only publish, so none of them gets it).
    let not_receiving = match args.protocol {
        Protocol::Threadchat => 1,
        Protocol::Redis => args.senders,
    };
    let receivers =
        (swarm.tally.registered as u64).saturating_sub((args.slow + not_receiving) as u64);
    let expected = sent * receivers;
    if matches!(args.mode, Mode::Fanout | Mode::Saturate) {
        // Drain: until everything expected arrived, or nothing more comes.
        pump_until_quiet(
            &mut swarm,
            Duration::from_secs(2),
            Duration::from_secs(30),
            |s| s.tally.received >= expected,
        )?;
    }
    let measure_secs = measure_start.elapsed().as_secs_f64();
    let after = proc_sample(&server.pids);
    let roles_after = role_sample(&server.pids);
    let dropped_later = swarm.tally.dropped_later;
    let cpu_us_per_delivery = match (before, after) {
        (Some(before), Some(after)) if swarm.tally.received > 0 => {
            Some((after.cpu - before.cpu).as_secs_f64() * 1e6 / swarm.tally.received as f64)
        }
        _ => None,
    };

    // With every client still connected, time the server's shutdown.
    let shutdown_secs = match server.child.as_mut() {
        Some(child) => {
            let stopping = Instant::now();
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let limit = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break Some(stopping.elapsed().as_secs_f64());
                }
                if Instant::now() > limit {
                    let _ = child.kill();
                    break None;
                }
                // Read what the server sends its clients meanwhile, so that no
                // writer waits on a full socket because of us.
                swarm.pump(Duration::from_millis(5))?;
            }
        }
        None => None,
    };

    // Per role, per delivery: CPU µs and context switches.
    let mut roles: Vec<(String, [f64; 3])> = match (roles_before, roles_after) {
        (Some(before), Some(after)) if swarm.tally.received > 0 => after
            .iter()
            .map(|(role, now)| {
                let then = before.get(role).copied().unwrap_or_default();
                let per =
                    |i: usize| now[i].saturating_sub(then[i]) as f64 / swarm.tally.received as f64;
                let cpu_us = per(0) / 1e3;
                (role.clone(), [cpu_us, per(1), per(2)])
            })
            .collect(),
        _ => Vec::new(),
    };
    roles.sort_by(|a, b| b.1[0].total_cmp(&a.1[0]));
    let tally = &mut swarm.tally;
    let (mut first_us, mut spread_us): (Vec<u32>, Vec<u32>) = tally
        .arrivals_us
        .values()
        .map(|&(first, last)| (first, last - first))
        .unzip();
    Ok(Report {
        mode: args.mode,
        protocol: args.protocol,
        roles,
        clients: args.clients,
        senders: args.senders,
        slow: args.slow,
        rate: args.rate,
        connected: args.clients - connect_failed,
        connect_failed,
        connect_secs,
        dropped_later,
        told_dropped: tally.told_dropped,
        sent,
        expected,
        received: tally.received,
        measure_secs,
        latency_ms: percentiles_ms(&mut tally.latencies_us),
        cross_ms: percentiles_ms(&mut tally.cross_latencies_us),
        first_ms: percentiles_ms(&mut first_us),
        spread_ms: percentiles_ms(&mut spread_us),
        users_ms: percentiles_ms(&mut tally.users_replies),
        idle,
        baseline,
        cpu_us_per_delivery,
        peak: after,
        shutdown_secs,
    })
}

// ---------------------------------------------------------------------------
// Charts: SVG line charts from the JSON lines of several runs.

fn json_number(line: &str, key: &str) -> Option<f64> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn json_text<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let rest = &line[start..];
    Some(&rest[..rest.find('"')?])
}

fn chart(results: &str, out_dir: &str) -> io::Result<()> {
    let text = std::fs::read_to_string(results)?;
    let runs: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    let series = |mode: &str, key: &str| -> Vec<(f64, f64)> {
        let mut points: Vec<(f64, f64)> = runs
            .iter()
            .filter(|run| json_text(run, "mode") == Some(mode))
            .filter(|run| json_number(run, "slow") == Some(0.0))
            .filter_map(|run| Some((json_number(run, "clients")?, json_number(run, key)?)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    std::fs::create_dir_all(out_dir)?;
    let latency = svg_chart(
        "fanout latency against clients",
        "ms (log scale)",
        true,
        Some((10.0, "target: p99 under 10 ms at 1,000 clients")),
        &[
            ("p50", "#1f77b4", series("fanout", "latency_p50_ms")),
            ("p99", "#d62728", series("fanout", "latency_p99_ms")),
            (
                "one line, first to last recipient (p50)",
                "#9467bd",
                series("fanout", "spread_p50_ms"),
            ),
        ],
    );
    std::fs::write(format!("{out_dir}/latency.svg"), latency)?;
    let throughput = svg_chart(
        "deliveries per second against clients",
        "deliveries/s (log scale)",
        true,
        None,
        &[
            (
                "saturate",
                "#2ca02c",
                series("saturate", "deliveries_per_sec"),
            ),
            ("fanout", "#1f77b4", series("fanout", "deliveries_per_sec")),
        ],
    );
    std::fs::write(format!("{out_dir}/throughput.svg"), throughput)?;
    println!("wrote {out_dir}/latency.svg and {out_dir}/throughput.svg");
    Ok(())
}

/// One line of a chart: its name, its colour, its (clients, value) points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A line chart with a logarithmic x axis (clients) and a linear or
/// logarithmic y axis.
/// `reference`: a value to mark with a dashed line across the chart, and its label.
fn svg_chart(
    title: &str,
    unit: &str,
    log_y: bool,
    reference: Option<(f64, &str)>,
    series: &[Series<'_>],
) -> String {
    let (width, height, left, right, top, bottom) = (640.0, 400.0, 80.0, 20.0, 40.0, 50.0);
    let points = series.iter().flat_map(|s| s.2.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, 0.0f64);
    for &(x, y) in points {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if x_min >= x_max {
        x_min = x_min.min(1.0);
        x_max = x_max.max(x_min * 10.0);
    }
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let x_of = |x: f64| left + (x.ln() - x_min.ln()) / (x_max.ln() - x_min.ln()) * plot_w;
    // Log scale: whole powers of ten, from the one below the smallest value
    // to the one above the largest (or the reference line), one tick each.
    let y_floor = 10f64.powf(y_min.max(1e-3).log10().floor());
    let y_top = if log_y {
        let highest = reference.map_or(y_max, |(value, _)| y_max.max(value));
        10f64.powf(highest.log10().ceil()).max(y_floor * 10.0)
    } else {
        y_max
    };
    let y_of = |y: f64| {
        let share = if log_y {
            (y.max(y_floor) / y_floor).ln() / (y_top / y_floor).ln()
        } else {
            y / y_top
        };
        top + plot_h - share * plot_h
    };
    let ticks: Vec<f64> = if log_y {
        let decades = (y_top / y_floor).log10().round() as i32;
        (0..=decades).map(|k| y_floor * 10f64.powi(k)).collect()
    } else {
        (0..=4).map(|k| y_top * k as f64 / 4.0).collect()
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{title}</text>\n\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n",
        width / 2.0,
        top + plot_h,
        left + plot_w,
        top + plot_h,
        top + plot_h
    );
    for y in ticks {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
            left - 6.0,
            y_of(y) + 4.0,
            short_number(y),
            y_of(y),
            left + plot_w,
            y_of(y)
        );
    }
    let mut xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for x in xs {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x_of(x),
            top + plot_h + 18.0,
            short_number(x)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">clients (log scale)</text>\
         <text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">{unit}</text>",
        left + plot_w / 2.0,
        height - 8.0,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    );
    if let Some((value, label)) = reference {
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{label}</text>",
            left + plot_w,
            left + plot_w - 4.0,
            y_of(value) - 5.0,
            y = y_of(value),
        );
    }
    for (n, (name, colour, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", x_of(x), y_of(y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(x, y) in points {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                x_of(x),
                y_of(y)
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{name}</text>",
            left + 10.0,
            top + 14.0 + 14.0 * n as f64
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn short_number(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.0}k", value / 1e3)
    } else if value >= 10.0 || value == value.round() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
