//! The server's settings and the command line that sets them. Plain logic,
//! no I/O: `main` hands in the arguments and `THREADCHAT_ADDR`, and gets back a
//! [`Config`] or one line saying what is wrong.
//!
//! Flags are parsed by hand, without a crate, to keep the dependency list to
//! what the design allows; it also shows there is no magic in it.

use std::time::Duration;

use crate::logic::rate_limit::RateLimit;

/// Everything `Server::start` needs to know. Tests build one with
/// `Config { addr: "127.0.0.1:0".into(), ..Config::default() }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `HOST:PORT` to listen on; port 0 picks a free port.
    pub addr: String,
    /// `HOST:PORT` for the web door (the chat page, WebSocket, `/metrics`,
    /// `/health`, `/stats.json`); `None` (`--http off`) for none.
    pub http: Option<String>,
    /// `HOST:PORT` for IRC clients (irssi, WeeChat); `None` (`--irc off`)
    /// for none.
    pub irc: Option<String>,
    /// Open connections allowed at once, registered or not. One more is told
    /// `! server full, try again later` and closed.
    pub max_clients: usize,
    /// Open connections allowed from one IP address; 0 for no limit. Keeps
    /// one address from taking every slot, while a classroom behind one NAT
    /// still gets in.
    pub max_per_addr: usize,
    /// The most bytes of lines queued for one client and not yet taken by
    /// its writer (`--max-backlog`). Past it, lines are dropped for that
    /// client and it is told.
    pub max_backlog: usize,
    /// How often the monitor logs its stats line.
    pub stats_interval: Duration,
    /// Chat and action lines each room keeps and replays to newcomers; 0
    /// keeps none.
    pub history: usize,
    /// Longest line a client may send, in bytes before the `\n`.
    pub max_line: usize,
    /// A connection that has not chosen a name this long after connecting
    /// is told so and disconnected.
    pub name_timeout: Duration,
    /// A registered client that sends no line for this long is told so and
    /// disconnected; `None` (the default) never.
    pub idle_timeout: Option<Duration>,
    /// Joins and leaves are announced to the rest of the room only while it
    /// has at most this many others in it; bigger rooms are quiet about
    /// them (`/users` and `/who` still tell). 0: never announced.
    pub announce_up_to: usize,
    /// Lines each client may send; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// A socket write that blocks this long disconnects its client.
    pub write_timeout: Duration,
    /// A client all of whose lines have been dropped this long (it reads,
    /// but far slower than its room talks) is disconnected. Not a flag.
    pub queue_full_timeout: Duration,
    /// Stack size of every reader and writer thread. Not a flag; see
    /// docs/ARCHITECTURE.md for why it is small.
    pub client_stack_bytes: usize,
    /// At shutdown, how long writers get to flush before sockets are closed.
    pub shutdown_grace: Duration,
    /// A client of a door that answers pings (a browser's WebSocket, an IRC
    /// client) that has sent nothing this long is pinged; one silent for
    /// twice this long is disconnected (`--ping-after`).
    pub ping_after: Duration,
    /// Rooms that may exist at once, the lobby included (`--max-rooms`). A
    /// `/join` that would make one more is refused.
    pub max_rooms: usize,
    /// Chat lines a room takes in, whoever says them (`--room-rate`);
    /// `None` for no limit. On top of each client's `rate_limit`.
    pub room_rate: Option<RateLimit>,
    /// The most bytes of lines queued for all slow clients together
    /// (`--max-total-backlog`). Past it, the clients furthest behind are
    /// disconnected, and told, until the total is back under. What the
    /// server holds for them can be up to twice this (docs/RELIABILITY.md,
    /// "Memory: the worst case").
    pub max_total_backlog: usize,
    /// The most bytes every room's history may hold together
    /// (`--max-history-bytes`). Past it, the oldest lines of the biggest
    /// history go first.
    pub max_history_bytes: usize,

    // The optional parts: the web door and several servers through Redis.
    /// How long an HTTP client has to send its request line and headers
    /// (408 after it; a slowloris is cut off here). Not a flag.
    pub http_head_timeout: Duration,
    /// Host names the web door answers to, besides IP addresses and
    /// `localhost` (`--http-host`, repeatable): what a browser's `Host`
    /// says behind a proxy or a DNS name. Anything else is answered 421,
    /// which stops a page on another site from reaching the door through
    /// DNS rebinding.
    pub http_hosts: Vec<String>,
    /// Origins, besides the door's own `http://HOST`, whose pages may open
    /// a WebSocket (`--public-origin`, repeatable): `https://chat.example.org`
    /// behind a TLS proxy.
    pub public_origins: Vec<String>,
    /// `redis://HOST:PORT`: be one chat with every other threadchat server
    /// using this Redis (`--redis`; needs the `redis` cargo feature).
    /// `None`, the default, for a server on its own.
    pub redis: Option<String>,
    /// With `--redis`: a server not heard from for this long is taken for
    /// dead, and its users leave everyone's `/users` and rooms; a name it
    /// held is free again after the same time.
    pub redis_ttl: Duration,
    /// With `--redis`: a room nobody is in, on any server, keeps its
    /// history this long, here and in Redis, then goes (`--room-ttl`).
    pub room_ttl: Duration,
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// How long a server's users stay listed elsewhere after its last "alive",
/// by default (`--redis-ttl`). Also the time-to-live of its name claims.
pub const DEFAULT_REDIS_TTL: Duration = Duration::from_secs(10);

/// Where the web door listens by default.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:7880";

/// Where IRC clients connect by default: IRC's own port.
pub const DEFAULT_IRC_ADDR: &str = "127.0.0.1:6667";

/// `--max-backlog`: 256 KiB per client. A burst of about 4,000 short chat
/// lines fits while a client's writer waits for a CPU; all the backlogs
/// together are held to `--max-total-backlog` (docs/RELIABILITY.md,
/// "Memory: the worst case").
pub const DEFAULT_MAX_BACKLOG: usize = 256 * 1024;

/// Stack size of every reader and writer thread. The default (2 MiB) is
/// sized for arbitrary code; these threads run a short loop over small
/// buffers, and 10,000 clients means 20,000 of them. Only touched pages count
/// towards memory, but a small reservation keeps the address space and the
/// kernel's page tables small too. docs/ARCHITECTURE.md says how it was
/// chosen.
pub const CLIENT_STACK_BYTES: usize = 128 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: DEFAULT_ADDR.to_string(),
            http: Some(DEFAULT_HTTP_ADDR.to_string()),
            irc: Some(DEFAULT_IRC_ADDR.to_string()),
            max_clients: 10_000,
            max_backlog: DEFAULT_MAX_BACKLOG,
            max_per_addr: 64,
            stats_interval: Duration::from_secs(5),
            history: 50,
            announce_up_to: 200,
            max_line: 1024,
            name_timeout: Duration::from_secs(60),
            idle_timeout: None,
            rate_limit: Some(RateLimit {
                lines: 20,
                per: Duration::from_secs(10),
            }),
            write_timeout: Duration::from_secs(10),
            queue_full_timeout: Duration::from_secs(10),
            client_stack_bytes: CLIENT_STACK_BYTES,
            shutdown_grace: Duration::from_secs(2),
            ping_after: Duration::from_secs(30),
            max_rooms: 1000,
            room_rate: Some(RateLimit {
                lines: 150,
                per: Duration::from_secs(10),
            }),
            max_total_backlog: 128 * 1024 * 1024,
            max_history_bytes: 64 * 1024 * 1024,
            http_head_timeout: Duration::from_secs(10),
            http_hosts: Vec::new(),
            public_origins: Vec::new(),
            redis: None,
            redis_ttl: DEFAULT_REDIS_TTL,
            room_ttl: Duration::from_secs(3600),
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Boxed: a `Config` is far bigger than the other answers.
    Run(Box<Config>),
    Help,
    Version,
}

/// What `--help` prints: every flag and its default (README's "Flags" has
/// each too, tests/suite/shape.rs checks). Kept in a text file, as it is
/// read, not followed.
pub const USAGE: &str = include_str!("config/usage.txt").trim_ascii_end();

/// Parses the arguments after the program name. `env_addr` is
/// `$THREADCHAT_ADDR`, if set; `--addr` wins over it. `Err` holds one line
/// saying what is wrong.
pub fn parse_args<I>(args: I, env_addr: Option<String>) -> Result<Invocation, String>
where
    I: IntoIterator<Item = String>,
{
    let mut config = Config::default();
    if let Some(addr) = env_addr {
        config.addr = check_addr(&addr).map_err(|e| format!("THREADCHAT_ADDR: {e}"))?;
    }
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Both `--flag value` and `--flag=value`.
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline_value {
                Some(value) => Ok(value.to_string()),
                None => args.next().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            "--addr" => config.addr = check_addr(&value()?).map_err(|e| format!("--addr: {e}"))?,
            "--http" => {
                config.http = match value()?.as_str() {
                    "off" => None,
                    addr => Some(check_addr(addr).map_err(|e| format!("--http: {e}"))?),
                }
            }
            "--irc" => {
                config.irc = match value()?.as_str() {
                    "off" => None,
                    addr => Some(check_addr(addr).map_err(|e| format!("--irc: {e}"))?),
                }
            }
            "--max-clients" => config.max_clients = positive(&flag, &value()?)?,
            "--max-backlog" => config.max_backlog = bytes(&flag, &value()?)?,
            "--max-per-addr" => config.max_per_addr = at_most(&flag, &value()?, 1_000_000)?,
            "--queue" => return Err("--queue (lines) was replaced by --max-backlog BYTES".into()),
            "--stats-interval" => config.stats_interval = seconds(&flag, &value()?)?,
            "--history" => config.history = at_most(&flag, &value()?, MAX_HISTORY)?,
            "--announce-up-to" => {
                config.announce_up_to = at_most(&flag, &value()?, MAX_ANNOUNCE_UP_TO)?
            }
            "--max-line" => config.max_line = positive(&flag, &value()?)?,
            "--rate-limit" => {
                config.rate_limit = match value()?.as_str() {
                    "off" => None,
                    limit => Some(RateLimit::parse(limit).map_err(|e| format!("{flag}: {e}"))?),
                }
            }
            "--name-timeout" => config.name_timeout = seconds(&flag, &value()?)?,
            "--idle-timeout" => {
                config.idle_timeout = match at_most(&flag, &value()?, MAX_SECONDS)? {
                    0 => None,
                    secs => Some(Duration::from_secs(secs as u64)),
                }
            }
            "--ping-after" => config.ping_after = seconds(&flag, &value()?)?,
            "--max-rooms" => config.max_rooms = positive(&flag, &value()?)?,
            "--room-rate" => {
                config.room_rate = match value()?.as_str() {
                    "off" => None,
                    limit => Some(RateLimit::parse(limit).map_err(|e| format!("{flag}: {e}"))?),
                }
            }
            "--max-total-backlog" => config.max_total_backlog = bytes(&flag, &value()?)?,
            "--max-history-bytes" => config.max_history_bytes = bytes(&flag, &value()?)?,
            "--http-host" => config.http_hosts.push(host_name(&flag, &value()?)?),
            "--public-origin" => config.public_origins.push(origin(&flag, &value()?)?),
            "--room-ttl" => config.room_ttl = seconds(&flag, &value()?)?,
            "--redis" => config.redis = Some(redis_url(&value()?)?),
            "--redis-ttl" => {
                config.redis_ttl = seconds(&flag, &value()?)?;
                if !(2..=3600).contains(&config.redis_ttl.as_secs()) {
                    return Err(format!("{flag}: expected 2 to 3600 seconds"));
                }
            }
            _ if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(Invocation::Run(Box::new(config)))
}

/// `HOST:PORT` with a port number; the host is resolved when binding.
fn check_addr(addr: &str) -> Result<String, String> {
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(addr.to_string())
        }
        _ => Err(format!("expected HOST:PORT, got {addr:?}")),
    }
}

/// `--http-host`: a name as a browser's `Host` header gives it, with or
/// without a port.
fn host_name(flag: &str, value: &str) -> Result<String, String> {
    let good = !value.is_empty()
        && value.len() <= 253
        && (value.bytes()).all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    match good {
        true => Ok(value.to_ascii_lowercase()),
        false => Err(format!(
            "{flag}: expected a host name such as chat.example.org, got {value:?}"
        )),
    }
}

/// `--public-origin`: `http://` or `https://`, a host, an optional port, and
/// nothing after (an origin has no path).
fn origin(flag: &str, value: &str) -> Result<String, String> {
    let host = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match host {
        Some(host) if host_name(flag, host).is_ok() => Ok(value.to_ascii_lowercase()),
        _ => Err(format!(
            "{flag}: expected an origin such as https://chat.example.org, got {value:?}"
        )),
    }
}

/// `--redis`: refused at once by a build without the `redis` feature, so
/// that nobody runs a server they believe is shared but is alone.
fn redis_url(url: &str) -> Result<String, String> {
    if !cfg!(feature = "redis") {
        return Err("--redis: this threadchat was built without Redis support; \
             build it with `cargo build --release --features redis`"
            .into());
    }
    match url.strip_prefix("redis://") {
        Some(rest) if !rest.is_empty() => Ok(url.to_string()),
        _ => Err(format!("--redis: expected redis://HOST:PORT, got {url:?}")),
    }
}

/// More than any room can hold (clients are bounded by `pid_max`), so the
/// largest value means "always announce".
const MAX_ANNOUNCE_UP_TO: usize = 1_000_000;

/// The most lines `--history` may keep per room. Rooms are bounded by the
/// number of clients, so this bounds the memory history can take.
pub const MAX_HISTORY: usize = 10_000;

/// The longest time a flag may set: a day.
const MAX_SECONDS: usize = 86_400;

/// A whole number of seconds from 1 to a day.
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(n @ 1..=86_400) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{flag}: expected a number of seconds from 1 to {MAX_SECONDS}, got {value:?}"
        )),
    }
}

/// A whole number from 0 to `max`.
fn at_most(flag: &str, value: &str, max: usize) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "{flag}: expected a whole number from 0 to {max}, got {value:?}"
        )),
    }
}

/// A size in bytes: `65536`, `64K` or `1M` (K and M are 1024 and 1024²),
/// from 1 KiB to 1 GiB.
fn bytes(flag: &str, value: &str) -> Result<usize, String> {
    let (digits, unit) = match value.char_indices().last() {
        Some((at, 'k' | 'K')) => (&value[..at], 1024),
        Some((at, 'm' | 'M')) => (&value[..at], 1024 * 1024),
        _ => (value, 1),
    };
    match digits.parse::<usize>().map(|n| n.checked_mul(unit)) {
        Ok(Some(n)) if (1024..=1 << 30).contains(&n) => Ok(n),
        _ => Err(format!(
            "{flag}: expected a size from 1K to 1024M (bytes, or with K or M), got {value:?}"
        )),
    }
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 && n <= 1_000_000 => Ok(n),
        _ => Err(format!(
            "{flag}: expected a whole number from 1 to 1000000, got {value:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, String> {
        parse_args(args.iter().map(|a| a.to_string()), None)
    }

    fn run_config(args: &[&str]) -> Config {
        match parse(args) {
            Ok(Invocation::Run(config)) => *config,
            other => panic!("expected a config from {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn redis_is_refused_by_a_build_without_it_and_checked_by_one_with_it() {
        let result = parse(&["--redis", "redis://127.0.0.1:6379"]);
        if cfg!(feature = "redis") {
            let config = run_config(&["--redis", "redis://127.0.0.1:6379", "--redis-ttl", "3"]);
            assert_eq!(config.redis.as_deref(), Some("redis://127.0.0.1:6379"));
            assert_eq!(config.redis_ttl, Duration::from_secs(3));
            assert!(parse(&["--redis", "127.0.0.1:6379"]).is_err());
            assert!(parse(&["--redis-ttl", "1"]).is_err());
        } else {
            let message = result.expect_err("a build without the feature must refuse --redis");
            assert!(message.contains("--features redis"), "{message}");
        }
    }

    #[test]
    fn no_arguments_give_the_defaults() {
        assert_eq!(run_config(&[]), Config::default());
        assert_eq!(Config::default().addr, "127.0.0.1:7878");
    }

    #[test]
    fn flags_take_values_with_space_or_equals() {
        let config = run_config(&[
            "--addr",
            "0.0.0.0:9000",
            "--max-clients=5",
            "--max-backlog",
            "64K",
            "--max-per-addr",
            "0",
            "--stats-interval=1",
            "--history",
            "0",
            "--max-line=200",
            "--announce-up-to",
            "0",
            "--rate-limit",
            "5/2",
            "--name-timeout",
            "3",
            "--idle-timeout=600",
            "--ping-after",
            "7",
            "--max-rooms",
            "3",
            "--room-rate",
            "4/2",
            "--max-total-backlog",
            "1M",
            "--max-history-bytes=2M",
            "--http-host",
            "Chat.Example.org",
            "--http-host",
            "10.0.0.5:7880",
            "--public-origin",
            "https://chat.example.org",
        ]);
        assert_eq!(config.max_rooms, 3);
        assert_eq!(
            config.room_rate,
            Some(RateLimit {
                lines: 4,
                per: Duration::from_secs(2)
            })
        );
        assert_eq!(
            (config.max_total_backlog, config.max_history_bytes),
            (1 << 20, 2 << 20)
        );
        assert_eq!(config.http_hosts, ["chat.example.org", "10.0.0.5:7880"]);
        assert_eq!(config.public_origins, ["https://chat.example.org"]);
        assert!(parse(&["--public-origin", "chat.example.org"]).is_err());
        assert!(parse(&["--public-origin", "https://x/y"]).is_err());
        assert!(parse(&["--http-host", "a b"]).is_err());
        assert_eq!(run_config(&["--room-rate", "off"]).room_rate, None);
        assert_eq!(config.ping_after, Duration::from_secs(7));
        assert_eq!(config.history, 0);
        assert_eq!(config.max_line, 200);
        assert_eq!(config.announce_up_to, 0);
        assert_eq!(
            config.rate_limit,
            Some(RateLimit {
                lines: 5,
                per: Duration::from_secs(2)
            })
        );
        assert_eq!(config.name_timeout, Duration::from_secs(3));
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(600)));
        assert_eq!(run_config(&["--http", "off"]).http, None);
        assert_eq!(run_config(&["--irc", "off"]).irc, None);
        assert_eq!(Config::default().irc.as_deref(), Some("127.0.0.1:6667"));
        assert_eq!(
            run_config(&["--irc=0.0.0.0:6697"]).irc.as_deref(),
            Some("0.0.0.0:6697")
        );
        assert!(parse(&["--irc", "6667"]).unwrap_err().starts_with("--irc:"));
        assert_eq!(
            run_config(&["--http=0.0.0.0:80"]).http.as_deref(),
            Some("0.0.0.0:80")
        );
        assert!(parse(&["--http", "80"]).unwrap_err().starts_with("--http:"));
        let off = run_config(&["--rate-limit", "off", "--idle-timeout", "0"]);
        assert_eq!((off.rate_limit, off.idle_timeout), (None, None));
        assert_eq!(config.addr, "0.0.0.0:9000");
        assert_eq!(config.max_clients, 5);
        assert_eq!(config.max_backlog, 64 * 1024);
        assert_eq!(config.max_per_addr, 0);
        assert_eq!(config.stats_interval, Duration::from_secs(1));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&["--help"]), Ok(Invocation::Help));
        assert_eq!(parse(&["-h"]), Ok(Invocation::Help));
        assert_eq!(parse(&["--version"]), Ok(Invocation::Version));
        assert_eq!(parse(&["--history", "3", "-V"]), Ok(Invocation::Version));
    }

    #[test]
    fn environment_sets_the_address_and_the_flag_wins() {
        let from_env = parse_args(Vec::<String>::new(), Some("localhost:1".into()));
        assert_eq!(
            from_env.map(|i| matches!(i, Invocation::Run(c) if c.addr == "localhost:1")),
            Ok(true)
        );
        let flag_wins = parse_args(
            vec!["--addr".to_string(), "127.0.0.1:2".to_string()],
            Some("localhost:1".into()),
        );
        assert_eq!(
            flag_wins.map(|i| matches!(i, Invocation::Run(c) if c.addr == "127.0.0.1:2")),
            Ok(true)
        );
        assert!(parse_args(Vec::<String>::new(), Some("nonsense".into()))
            .unwrap_err()
            .contains("THREADCHAT_ADDR"));
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(parse(&["--bogus"]), Err("unknown option --bogus".into()));
        assert_eq!(parse(&["--history"]), Err("--history needs a value".into()));
        assert!(parse(&["--max-clients", "0"])
            .unwrap_err()
            .contains("--max-clients"));
        for bad in ["0", "1023", "2048M", "lots", "12KB", "-1K", ""] {
            assert!(
                parse(&["--max-backlog", bad])
                    .unwrap_err()
                    .starts_with("--max-backlog: expected a size"),
                "{bad:?}"
            );
        }
        assert_eq!(run_config(&["--max-backlog=1m"]).max_backlog, 1 << 20);
        assert_eq!(run_config(&["--max-backlog", "4096"]).max_backlog, 4096);
        assert!(parse(&["--max-clients", "-3"]).is_err());
        assert!(parse(&["--stats-interval", "soon"]).is_err());
        assert!(parse(&["--rate-limit", "fast"])
            .unwrap_err()
            .starts_with("--rate-limit: expected N/SECS"));
        assert!(parse(&["--name-timeout", "0"]).is_err());
        assert!(parse(&["--idle-timeout", "-1"]).is_err());
        assert!(parse(&["--history", "10001"])
            .unwrap_err()
            .contains("from 0 to 10000"));
        assert!(parse(&["--announce-up-to", "lots"])
            .unwrap_err()
            .starts_with("--announce-up-to: expected a whole number"));
        assert!(parse(&["--addr", "7878"])
            .unwrap_err()
            .contains("HOST:PORT"));
        assert!(parse(&["--addr", "host:99999"]).is_err());
        assert!(parse(&["stray"])
            .unwrap_err()
            .contains("unexpected argument"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn flag() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("--addr".to_string()),
            Just("--max-clients".to_string()),
            Just("--max-backlog".to_string()),
            Just("--max-per-addr".to_string()),
            Just("--history".to_string()),
            Just("--rate-limit".to_string()),
            Just("--idle-timeout".to_string()),
            Just("--name-timeout".to_string()),
            Just("--stats-interval".to_string()),
            Just("--announce-up-to".to_string()),
            Just("--max-line".to_string()),
            "--[a-z-]{0,12}",
            "\\PC{0,12}",
            "[0-9]{0,12}[kKmM]?",
        ]
    }

    proptest! {
        /// Any command line gets a config or one line saying what is wrong;
        /// a config that comes back is within every documented range.
        #[test]
        fn any_arguments_give_a_config_or_one_clear_line(
            args in proptest::collection::vec(flag(), 0..8),
        ) {
            match parse_args(args.clone(), None) {
                Ok(Invocation::Run(config)) => {
                    prop_assert!(config.max_clients >= 1);
                    prop_assert!((1024..=1 << 30).contains(&config.max_backlog));
                    prop_assert!(config.history <= MAX_HISTORY);
                    prop_assert!(config.max_line >= 1);
                }
                Ok(_) => {}
                Err(message) => {
                    prop_assert!(!message.is_empty() && !message.contains('\n'), "{message:?} for {args:?}");
                }
            }
        }
    }
}
