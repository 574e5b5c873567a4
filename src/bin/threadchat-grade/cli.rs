//! The grader's command line, and the `--exe` template that becomes the
//! command starting the server. Plain parsing on the main thread, before
//! anything runs.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: threadchat-grade (--exe 'PROGRAM ARGS... {port}' | --addr HOST:PORT) [OPTIONS]

Grades a chat server of threadchat's line protocol (docs/PROTOCOL.md) over
its sockets, test by test, and prints a table of points per category.

Server:
  --exe TEMPLATE       start the server with this command, once per test, on a
                       free port: {port} becomes the port, {addr} 127.0.0.1:PORT.
                       Words are split at spaces; quote a word with ' or \".
                       No shell. For threadchat itself:
                       'target/release/threadchat --addr {addr} --http off
                        --irc off --max-per-addr 0 --rate-limit off
                        --room-rate off'
  --addr HOST:PORT     grade a server that is already running (and that
                       nobody else is using); tests that need a server of
                       their own (shutdown, threads, the monitor line, exact
                       counts) are skipped

Options:
  --rubric FILE        points per category [default: labs/grading/rubric.txt
                       when it exists here, else the copy built in]
  --assignment NAME    grade one section ([NAME]) of a rubric that has several,
                       such as labs/grading/assignments.txt's a1, a2, a3
  --only SELECTOR      grade only these tests: CATEGORY/TEST or CATEGORY/*,
                       repeatable or comma-separated
  --json FILE          also write the results in Gradescope's format
  --wait SECS          how long a test waits for each line [default: 2]
  --monitor-every SECS the interval of the monitor's stats line [default: 5]
  --quick              fewer clients in the heavy tests (for calibration runs)
  --jobs N             run N tests at once, each with a server of its own
                       [default: 1; timings are fairest with 1]
  --quiet              no line per test while grading
  --list               list every test and exit
  -h, --help           print this help

Exit status: 0 at full marks; 1 when points were lost; 3 when nothing failed
but some tests were skipped; 2 for a bad command line or rubric.";

/// What the command line asks for.
pub enum Invocation {
    Grade(Box<Options>),
    List,
    Help,
}

/// How to reach the server under test.
pub enum Target {
    /// Start it, once per test, with this command.
    Exe(Template),
    /// It is already running here.
    Addr(SocketAddr),
}

pub struct Options {
    pub target: Target,
    pub rubric: Option<PathBuf>,
    pub assignment: Option<String>,
    pub only: Vec<String>,
    pub json: Option<PathBuf>,
    pub settings: Settings,
    pub quiet: bool,
    /// Tests run at once, each with its own server.
    pub jobs: usize,
}

/// What the tests themselves read.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long to wait for any one line.
    pub wait: Duration,
    /// The monitor line's interval.
    pub monitor_every: Duration,
    /// Fewer clients in the heavy tests.
    pub quick: bool,
}

/// The `--exe` command, split into words, with `{port}` or `{addr}` in it.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    words: Vec<String>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let words = split_words(text)?;
        if words.is_empty() {
            return Err("--exe: the command is empty".into());
        }
        if !words
            .iter()
            .any(|w| w.contains("{port}") || w.contains("{addr}"))
        {
            return Err(format!(
                "--exe: {text:?} has no {{port}} or {{addr}}: the grader must tell the server where to listen"
            ));
        }
        Ok(Template { words })
    }

    /// The words with the port filled in.
    pub fn words(&self, port: u16) -> Vec<String> {
        let addr = format!("127.0.0.1:{port}");
        let fill = |word: &String| {
            word.replace("{addr}", &addr)
                .replace("{port}", &port.to_string())
        };
        self.words.iter().map(fill).collect()
    }

    pub fn command(&self, port: u16) -> Command {
        let words = self.words(port);
        let mut command = Command::new(&words[0]);
        command.args(&words[1..]);
        command
    }

    pub fn shown(&self) -> String {
        self.words.join(" ")
    }
}

/// Splits at spaces, with '...' and "..." quoting (no escapes, no shell).
fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("--exe: a {q} is not closed in {text:?}"));
    }
    words.extend(word);
    Ok(words)
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 3600.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "{flag}: expected a number of seconds, got {value:?}"
        )),
    }
}

fn address(value: &str) -> Result<SocketAddr, String> {
    let mut found = value
        .to_socket_addrs()
        .map_err(|e| format!("--addr: {value:?} is not HOST:PORT ({e})"))?;
    found
        .next()
        .ok_or_else(|| format!("--addr: {value:?} names no address"))
}

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, String> {
    let mut args = args.into_iter();
    let mut exe = None;
    let mut addr = None;
    let mut options = Options {
        target: Target::Addr(SocketAddr::from(([127, 0, 0, 1], 0))),
        rubric: None,
        assignment: None,
        only: Vec::new(),
        json: None,
        settings: Settings {
            wait: Duration::from_secs(2),
            monitor_every: Duration::from_secs(5),
            quick: false,
        },
        quiet: false,
        jobs: 1,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Invocation::Help),
            "--list" => return Ok(Invocation::List),
            "--exe" => exe = Some(Template::parse(&value()?)?),
            "--addr" => addr = Some(address(&value()?)?),
            "--rubric" => options.rubric = Some(PathBuf::from(value()?)),
            "--assignment" => options.assignment = Some(value()?),
            "--only" => options.only.extend(
                value()?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            ),
            "--json" => options.json = Some(PathBuf::from(value()?)),
            "--wait" => options.settings.wait = seconds(&flag, &value()?)?,
            "--monitor-every" => options.settings.monitor_every = seconds(&flag, &value()?)?,
            "--quick" => options.settings.quick = true,
            "--quiet" => options.quiet = true,
            "--jobs" => {
                options.jobs = match value()?.parse() {
                    Ok(n) if (1..=16).contains(&n) => n,
                    _ => return Err("--jobs: expected a number from 1 to 16".into()),
                }
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    options.target = match (exe, addr) {
        (Some(template), None) => Target::Exe(template),
        (None, Some(addr)) => Target::Addr(addr),
        (Some(_), Some(_)) => return Err("give --exe or --addr, not both".into()),
        (None, None) => return Err("give --exe 'COMMAND {port}' or --addr HOST:PORT".into()),
    };
    Ok(Invocation::Grade(Box::new(options)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        Template::parse(text)
            .map(|t| t.words(4242))
            .unwrap_or_default()
    }

    #[test]
    fn a_template_fills_in_the_port_and_keeps_quoted_words_whole() {
        assert_eq!(
            words("server --addr {addr} -p {port} --motd 'hello there' \"a b\""),
            [
                "server",
                "--addr",
                "127.0.0.1:4242",
                "-p",
                "4242",
                "--motd",
                "hello there",
                "a b"
            ]
        );
        assert_eq!(words("x {port} ''"), ["x", "4242", ""]);
    }

    #[test]
    fn a_template_without_a_port_or_with_an_open_quote_is_refused() {
        assert!(Template::parse("server --addr 127.0.0.1:7878")
            .unwrap_err()
            .contains("{port}"));
        assert!(Template::parse("server {port} 'oops").is_err());
        assert!(Template::parse("   ").is_err());
    }

    fn parse_args(args: &[&str]) -> Result<Invocation, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_command_line_needs_exactly_one_server() {
        assert!(parse_args(&[]).is_err());
        assert!(parse_args(&["--exe", "s {port}", "--addr", "127.0.0.1:1"]).is_err());
        let Ok(Invocation::Grade(options)) = parse_args(&[
            "--addr=127.0.0.1:7878",
            "--only",
            "rooms/*,history/*",
            "--wait",
            "0.5",
        ]) else {
            panic!("should parse");
        };
        assert!(matches!(options.target, Target::Addr(addr) if addr.port() == 7878));
        assert_eq!(options.only, ["rooms/*", "history/*"]);
        assert_eq!(options.settings.wait, Duration::from_millis(500));
        assert!(parse_args(&["--addr", "127.0.0.1:1", "--wait", "-1"]).is_err());
        assert!(parse_args(&["--addr", "127.0.0.1:1", "--frobnicate"]).is_err());
    }
}
