//! The command line: the usage text, the modes and protocols, and `Args`,
//! parsed from the flags and checked as a whole. The defaults are set once,
//! in `Args::default`, and must match what USAGE says.

use std::time::Duration;

pub const USAGE: &str = "\
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
  --protocol P          threadchat (default); irc: the same clients through threadchat's
                        IRC door (NICK and USER, then PRIVMSG #lobby; with --spawn the
                        server gets --irc 127.0.0.1:0, with --addr give the IRC port;
                        fanout, saturate and capacity modes); or redis: receivers
                        SUBSCRIBE to one channel and senders PUBLISH to it (give --addr
                        and --pid of a running redis-server; fanout, saturate and
                        capacity modes). Redis's publishers do not read, so each line
                        has clients - senders - slow receivers, not clients - slow - 1
  --in-flight N         connections being set up at once [default: 64]
  --json                print one JSON object instead of the table
  --seed N              chaos: the random seed, for a run that can be repeated [default: 1]
  --expect-zero-loss    exit 1 unless every expected delivery arrived and every client connected
                        (chaos: unless no line was lost without a notice and every check held)
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Fanout,
    Saturate,
    Users,
    Capacity,
    Chaos,
}

impl Mode {
    pub fn name(self) -> &'static str {
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
pub enum Protocol {
    /// Lines: a name to register, then chat lines.
    Threadchat,
    /// threadchat's IRC door: NICK and USER, then `PRIVMSG #lobby`.
    Irc,
    /// RESP: `SUBSCRIBE` to receive, `PUBLISH` to send.
    Redis,
}

#[derive(Debug)]
pub struct Args {
    pub mode: Mode,
    pub protocol: Protocol,
    pub in_flight: usize,
    pub spawn: Option<String>,
    pub addrs: Vec<String>,
    pub pids: Vec<u32>,
    pub clients: usize,
    pub senders: usize,
    pub rate: f64,
    pub duration: Duration,
    pub window: u64,
    pub slow: usize,
    pub samples: usize,
    pub server_args: Vec<String>,
    pub json: bool,
    pub expect_zero_loss: bool,
    pub seed: u64,
}

impl Default for Args {
    fn default() -> Args {
        Args {
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
        }
    }
}

/// The flags after the program's name. `Err` with an empty message means
/// `--help`: the caller prints the usage and succeeds.
pub fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    while let Some(flag) = args.next() {
        parse_flag(&mut parsed, &flag, &mut args)?;
    }
    check(&parsed)?;
    Ok(parsed)
}

/// One flag, taking its value from `args` if it has one.
fn parse_flag(
    parsed: &mut Args,
    flag: &str,
    args: &mut impl Iterator<Item = String>,
) -> Result<(), String> {
    match flag {
        "--mode" => parsed.mode = parse_mode(args.next())?,
        "--protocol" => parsed.protocol = parse_protocol(args.next())?,
        "--in-flight" => parsed.in_flight = number(flag, args.next())?,
        "--spawn" => parsed.spawn = Some(args.next().ok_or("--spawn needs a path")?),
        "--addr" => parsed
            .addrs
            .push(args.next().ok_or("--addr needs HOST:PORT")?),
        "--pid" => parsed.pids.push(number(flag, args.next())?),
        "--clients" => parsed.clients = number(flag, args.next())?,
        "--senders" => parsed.senders = number(flag, args.next())?,
        "--rate" => parsed.rate = number(flag, args.next())?,
        "--duration" => parsed.duration = Duration::from_secs_f64(number(flag, args.next())?),
        "--window" => parsed.window = number(flag, args.next())?,
        "--slow" => parsed.slow = number(flag, args.next())?,
        "--samples" => parsed.samples = number(flag, args.next())?,
        "--server-arg" => parsed
            .server_args
            .push(args.next().ok_or("--server-arg needs a value")?),
        "--json" => parsed.json = true,
        "--seed" => parsed.seed = number(flag, args.next())?,
        "--expect-zero-loss" => parsed.expect_zero_loss = true,
        "-h" | "--help" => return Err(String::new()),
        _ => return Err(format!("unknown option {flag}")),
    }
    Ok(())
}

fn parse_mode(value: Option<String>) -> Result<Mode, String> {
    match value.as_deref() {
        Some("fanout") => Ok(Mode::Fanout),
        Some("saturate") => Ok(Mode::Saturate),
        Some("users") => Ok(Mode::Users),
        Some("capacity") => Ok(Mode::Capacity),
        Some("chaos") => Ok(Mode::Chaos),
        other => Err(format!("--mode: unknown mode {other:?}")),
    }
}

fn parse_protocol(value: Option<String>) -> Result<Protocol, String> {
    match value.as_deref() {
        Some("threadchat") => Ok(Protocol::Threadchat),
        Some("irc") => Ok(Protocol::Irc),
        Some("redis") => Ok(Protocol::Redis),
        other => Err(format!("--protocol: unknown protocol {other:?}")),
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: not a valid number: {value:?}"))
}

/// The combinations that make no sense, whatever order the flags came in.
fn check(parsed: &Args) -> Result<(), String> {
    let has_addr = !parsed.addrs.is_empty();
    if parsed.spawn.is_some() == has_addr {
        return Err("give exactly one of --spawn PATH and --addr HOST:PORT".into());
    }
    // Both speak threadchat's own commands (`/users`, `/join`, ...), to one server.
    let threadchat_only = matches!(parsed.mode, Mode::Users | Mode::Chaos);
    if parsed.protocol == Protocol::Redis && (parsed.spawn.is_some() || threadchat_only) {
        return Err(
            "--protocol redis needs --addr (and --pid), and fanout, saturate or capacity".into(),
        );
    }
    if parsed.protocol == Protocol::Irc && threadchat_only {
        return Err("--protocol irc: fanout, saturate or capacity".into());
    }
    if parsed.addrs.len() > 1 && (parsed.protocol == Protocol::Redis || threadchat_only) {
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
    Ok(())
}
