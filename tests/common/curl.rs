//! The real curl, as the curl door's tests drive it: `curl -N` watching an
//! event stream, its output read the way an `EventSource` reads one (the
//! WHATWG HTML standard, "Interpreting an event stream"), and `curl -d`
//! saying a line.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Instant;

use super::process::{run, tool_available, Process};
use super::DEADLINE;

/// Whether curl is here; a `SKIPPED:` line when not (a failure on CI).
pub fn curl_available() -> bool {
    tool_available("curl", "--version", "curl")
}

/// One event as a client dispatches it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// `event:`, empty for a plain message.
    pub name: String,
    /// `id:`, if the event had one.
    pub id: Option<String>,
    pub data: String,
}

/// `curl -sSN` reading an event stream.
pub struct Watcher {
    pub label: String,
    pub process: Process,
    /// From the stream's first event.
    pub token: String,
    /// Comment lines seen (the server's keepalive pings).
    pub pings: usize,
    /// Every event so far, for failure messages.
    seen: Vec<Event>,
}

/// `curl` for `path` on the web door, with `extra` arguments first.
fn curl(web: SocketAddr, path: &str, extra: &[&str]) -> Command {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "--no-progress-meter"])
        .args(extra)
        .arg(format!("http://{web}{path}"));
    command
}

impl Watcher {
    /// `curl -N http://WEB/events?name=NAME`; reads the first event, which
    /// must be the token.
    pub fn watch(web: SocketAddr, name: &str, extra: &[&str]) -> Watcher {
        let mut args = vec!["-N"];
        args.extend_from_slice(extra);
        let process = Process::spawn(&mut curl(web, &format!("/events?name={name}"), &args));
        let mut watcher = Watcher {
            label: name.to_string(),
            process,
            token: String::new(),
            pings: 0,
            seen: Vec::new(),
        };
        let first = watcher.event();
        assert_eq!(first.name, "token", "{name}: the first event: {first:?}");
        assert_eq!(first.data.len(), 32, "{name}: 128 bits in hex: {first:?}");
        watcher.token = first.data;
        watcher
    }

    /// The next event, or `None` if curl's output ended first.
    pub fn try_event(&mut self) -> Option<Event> {
        let deadline = Instant::now() + DEADLINE;
        let mut event = Event::default();
        let mut data: Option<String> = None;
        loop {
            let line = self.process.stdout.line_before(deadline)?;
            if line.is_empty() {
                if let Some(mut data) = data.take() {
                    data.pop();
                    event.data = data;
                    self.seen.push(event.clone());
                    return Some(event);
                }
                event = Event::default();
                continue;
            }
            if line.starts_with(':') {
                self.pings += 1;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event.name = value.to_string(),
                "id" => event.id = Some(value.to_string()),
                "data" => {
                    let data = data.get_or_insert_with(String::new);
                    data.push_str(value);
                    data.push('\n');
                }
                _ => {}
            }
        }
    }

    /// The next event; fails if none comes within the deadline.
    pub fn event(&mut self) -> Event {
        match self.try_event() {
            Some(event) => event,
            None => panic!(
                "{}: expected an event within {DEADLINE:?}; events so far: {:#?}; stderr: {:?}",
                self.label,
                self.seen,
                self.process.stderr.text()
            ),
        }
    }

    /// The next event's data must be exactly `expected`; returns the event.
    pub fn expect(&mut self, expected: &str) -> Event {
        let event = self.event();
        assert_eq!(
            event.data, expected,
            "{}: expected the next event to say {expected:?}, got {event:?}",
            self.label
        );
        event
    }

    /// The next event's data must start with `prefix`.
    pub fn expect_prefix(&mut self, prefix: &str) -> Event {
        let event = self.event();
        assert!(
            event.data.starts_with(prefix),
            "{}: expected the next event to start with {prefix:?}, got {event:?}",
            self.label
        );
        event
    }

    /// Reads events until one's data starts with `prefix`; returns it.
    pub fn skip_until_prefix(&mut self, prefix: &str) -> Event {
        loop {
            let event = self.event();
            if event.data.starts_with(prefix) {
                return event;
            }
        }
    }

    /// The greeting and the welcome of a stream that registered `name`.
    pub fn expect_welcome(&mut self) {
        self.expect("* welcome to threadchat");
        let welcome = format!("* welcome {}! you are in lobby;", self.label);
        self.expect_prefix(&welcome);
    }

    /// The server's last event, then curl's exit.
    pub fn expect_end(&mut self) {
        let end = self.skip_until_prefix("the server closed this stream");
        assert_eq!(end.name, "end", "{}: {end:?}", self.label);
        assert_eq!(
            self.try_event(),
            None,
            "{}: nothing after the end",
            self.label
        );
        self.process.wait_for_exit();
    }
}

/// What curl got back: the status, and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// curl run to its end for `path`, with `args`; its status and body.
pub fn fetch(web: SocketAddr, path: &str, args: &[&str]) -> Answer {
    let mut command = curl(web, path, args);
    command.args(["--max-time", "10", "-o", "-", "-w", "\n%{http_code}"]);
    let done = run(&mut command);
    let (body, status) = done.stdout.rsplit_once('\n').unwrap_or(("", &done.stdout));
    Answer {
        status: status
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl {path}: no status in {done:?}")),
        body: body.to_string(),
    }
}

/// `curl -d LINE http://WEB/say?token=TOKEN`.
pub fn say(web: SocketAddr, token: &str, line: &str) -> Answer {
    fetch(web, &format!("/say?token={token}"), &["-d", line])
}
