//! One connection to the server under test, as a test sees it: send a line,
//! expect a line. Used by whichever test thread made it, and owned by it.
//!
//! Every wait is bounded by the `--wait` time, and every failure is one
//! sentence naming the client, what it expected and what came instead (a
//! different line, nothing within the time, or the connection closing), so
//! that a student can act on it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Why a test failed: one sentence for the student.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(pub String);

/// What every test returns.
pub type Check = Result<(), Failure>;

/// `fail!("...", args)` returns a [`Failure`] from the enclosing check.
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::client::Failure(format!($($arg)*))) };
}
pub(crate) use fail;

/// Fails with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Check {
    if condition {
        Ok(())
    } else {
        Err(Failure(message()))
    }
}

/// What a read for one line found.
#[derive(Debug, PartialEq)]
pub enum Next {
    Line(String),
    /// Nothing within the time given.
    Quiet,
    /// End of file: the server closed the connection.
    Closed,
    /// A reset or another error: also the connection's end.
    Broken(String),
}

pub struct Client {
    /// The name it registers with (or what it is), for messages.
    pub label: String,
    stream: TcpStream,
    /// Bytes read but not yet returned as a line.
    pending: Vec<u8>,
    wait: Duration,
    /// When grading a shared server: lines about names without this prefix
    /// (other tests' clients, and the lobby's history from before) are
    /// skipped.
    ours: Option<String>,
}

/// A line shortened for a message: long ones show their start and length.
pub fn shown(line: &str) -> String {
    if line.chars().count() <= 100 {
        format!("{line:?}")
    } else {
        let start: String = line.chars().take(80).collect();
        format!("{start:?}… ({} bytes)", line.len())
    }
}

impl Client {
    pub fn connect(
        addr: SocketAddr,
        label: &str,
        wait: Duration,
        ours: Option<String>,
    ) -> Result<Client, Failure> {
        let stream = TcpStream::connect_timeout(&addr, wait).map_err(|e| {
            Failure(format!(
                "{label}: cannot connect to {addr} within {}: {e}",
                secs(wait)
            ))
        })?;
        let _ = stream.set_nodelay(true);
        // A bounded write: a server that stopped reading cannot hang a test.
        let _ = stream.set_write_timeout(Some(wait.max(Duration::from_secs(5))));
        Ok(Client {
            label: label.to_string(),
            stream,
            pending: Vec::new(),
            wait,
            ours,
        })
    }

    pub fn send(&mut self, line: &str) -> Check {
        self.send_raw(format!("{line}\n").as_bytes())
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> Check {
        self.stream.write_all(bytes).map_err(|e| {
            Failure(format!(
                "{}: could not send {} bytes to the server: {e}",
                self.label,
                bytes.len()
            ))
        })
    }

    /// Closes our sending side, as `nc -N` does at the end of its input.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// A second handle on the same connection, for a thread that writes
    /// while this one reads.
    pub fn writer(&self) -> Result<TcpStream, Failure> {
        self.stream
            .try_clone()
            .map_err(|e| Failure(format!("{}: cannot clone the socket: {e}", self.label)))
    }

    /// The next line within `wait`, skipping what belongs to others.
    pub fn next(&mut self, wait: Duration) -> Next {
        let deadline = Instant::now() + wait;
        loop {
            match self.next_raw(deadline) {
                Next::Line(line) if self.is_someone_elses(&line) => continue,
                other => return other,
            }
        }
    }

    fn next_raw(&mut self, deadline: Instant) -> Next {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let bytes: Vec<u8> = self.pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&bytes[..end]);
                return Next::Line(text.strip_suffix('\r').unwrap_or(&text).to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Quiet;
            }
            if let Err(e) = self.stream.set_read_timeout(Some(left)) {
                return Next::Broken(e.to_string());
            }
            let mut buffer = [0u8; 16 * 1024];
            match self.stream.read(&mut buffer) {
                Ok(0) => return Next::Closed,
                Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Next::Broken(e.to_string()),
            }
        }
    }

    /// On a shared server: a presence notice, a chat line or a history
    /// header that is not about one of this test's names.
    fn is_someone_elses(&self, line: &str) -> bool {
        let Some(ours) = &self.ours else {
            return false;
        };
        if line.starts_with("* last ") && line.contains(" messages in #lobby") {
            return true;
        }
        let speaker = line
            .strip_prefix("[lobby] * ")
            .or_else(|| line.strip_prefix("[lobby] "))
            .and_then(|rest| rest.split([':', ' ']).next());
        let presence = line
            .strip_prefix("* ")
            .filter(|rest| {
                rest.ends_with(" joined")
                    || rest.ends_with(" left")
                    || rest.contains(" is now known as ")
            })
            .and_then(|rest| rest.split(' ').next());
        match speaker.or(presence) {
            Some(name) => !name.starts_with(ours.as_str()),
            None => false,
        }
    }

    /// Says what came instead of what was expected.
    fn instead(&self, next: &Next, wait: Duration) -> String {
        match next {
            Next::Line(line) => format!("got {}", shown(line)),
            Next::Quiet if self.pending.is_empty() => {
                format!("no line came within {}", secs(wait))
            }
            Next::Quiet => format!(
                "no whole line came within {} (unfinished: {})",
                secs(wait),
                shown(&String::from_utf8_lossy(&self.pending))
            ),
            Next::Closed => "the server closed the connection".to_string(),
            Next::Broken(e) => format!("the connection failed ({e})"),
        }
    }

    /// The next line, whatever it is.
    pub fn line(&mut self, expecting: &str) -> Result<String, Failure> {
        match self.next(self.wait) {
            Next::Line(line) => Ok(line),
            other => Err(Failure(format!(
                "{}: expected {expecting}, but {}",
                self.label,
                self.instead(&other, self.wait)
            ))),
        }
    }

    /// The next line must be exactly `want`.
    pub fn expect(&mut self, want: &str) -> Check {
        let line = self.line(&shown(want))?;
        ensure(line == want, || {
            format!(
                "{}: expected {}, got {}",
                self.label,
                shown(want),
                shown(&line)
            )
        })
    }

    /// The next line must start with `prefix`; returns it.
    pub fn expect_prefix(&mut self, prefix: &str) -> Result<String, Failure> {
        let what = format!("a line starting {}", shown(prefix));
        let line = self.line(&what)?;
        ensure(line.starts_with(prefix), || {
            format!("{}: expected {what}, got {}", self.label, shown(&line))
        })?;
        Ok(line)
    }

    /// Reads until a line equals `want`, skipping at most `most` others;
    /// returns the skipped ones.
    pub fn skip_until(&mut self, want: &str, most: usize) -> Result<Vec<String>, Failure> {
        let mut skipped = Vec::new();
        loop {
            let line = self.line(&shown(want))?;
            if line == want {
                return Ok(skipped);
            }
            if skipped.len() == most {
                fail!(
                    "{}: expected {} within {most} lines, got {} and others",
                    self.label,
                    shown(want),
                    shown(&skipped[0])
                );
            }
            skipped.push(line);
        }
    }

    /// A line starting with `prefix`, after any joins and leaves; returns it.
    pub fn expect_prefix_after_presence(&mut self, prefix: &str) -> Result<String, Failure> {
        let what = format!("a line starting {}", shown(prefix));
        loop {
            let line = self.line(&what)?;
            if line.starts_with(prefix) {
                return Ok(line);
            }
            if !is_presence(&line) {
                fail!("{}: expected {what}, got {}", self.label, shown(&line));
            }
        }
    }

    /// `want`, after any joins and leaves (for tests about something else).
    pub fn expect_after_presence(&mut self, want: &str) -> Check {
        loop {
            let line = self.line(&shown(want))?;
            if line == want {
                return Ok(());
            }
            if !is_presence(&line) {
                fail!(
                    "{}: expected {}, got {}",
                    self.label,
                    shown(want),
                    shown(&line)
                );
            }
        }
    }

    /// The server must close the connection (after the lines already sent,
    /// which are skipped, at most `most` of them).
    pub fn expect_closed(&mut self, most: usize) -> Check {
        for _ in 0..=most {
            match self.next(self.wait) {
                Next::Closed | Next::Broken(_) => return Ok(()),
                Next::Line(_) => continue,
                quiet => fail!(
                    "{}: expected the server to close the connection, but {}",
                    self.label,
                    self.instead(&quiet, self.wait)
                ),
            }
        }
        fail!(
            "{}: expected the server to close the connection, but it kept sending lines",
            self.label
        )
    }
}

/// `* NAME joined` or `* NAME left`.
pub fn is_presence(line: &str) -> bool {
    line.starts_with("* ")
        && !line[2..].contains(": ")
        && (line.ends_with(" joined") || line.ends_with(" left"))
        && line[2..].split(' ').count() == 2
}

/// `2 s`, `0.5 s`.
pub fn secs(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair(ours: Option<&str>) -> (Client, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = Client::connect(
            addr,
            "alice",
            Duration::from_millis(300),
            ours.map(str::to_string),
        )
        .expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    #[test]
    fn lines_split_across_reads_and_crlf_endings_come_out_whole() {
        let (mut client, mut server) = pair(None);
        server.write_all(b"* hel").expect("write");
        server.write_all(b"lo\r\n[lobby] bob: hi\n").expect("write");
        assert_eq!(client.expect("* hello"), Ok(()));
        assert_eq!(client.line("a line"), Ok("[lobby] bob: hi".to_string()));
    }

    #[test]
    fn failures_say_what_was_expected_and_what_came() {
        let (mut client, mut server) = pair(None);
        server.write_all(b"* nope\n").expect("write");
        let Err(Failure(wrong)) = client.expect("* yes") else {
            panic!("should fail");
        };
        assert_eq!(wrong, "alice: expected \"* yes\", got \"* nope\"");
        let Err(Failure(quiet)) = client.expect("* yes") else {
            panic!("should fail");
        };
        assert_eq!(
            quiet,
            "alice: expected \"* yes\", but no line came within 0.3 s"
        );
        drop(server);
        let Err(Failure(closed)) = client.expect("* yes") else {
            panic!("should fail");
        };
        assert!(
            closed.ends_with("the server closed the connection"),
            "{closed}"
        );
    }

    #[test]
    fn on_a_shared_server_other_peoples_lines_are_skipped() {
        let (mut client, mut server) = pair(Some("g1_"));
        server
            .write_all(
                b"* last 2 messages in #lobby\n[lobby] old: hi\n[lobby] * old waves\n\
                  * someone joined\n* g1_bob joined\n[lobby] g1_bob: mine\n",
            )
            .expect("write");
        assert_eq!(client.expect("* g1_bob joined"), Ok(()));
        assert_eq!(client.expect("[lobby] g1_bob: mine"), Ok(()));
    }

    #[test]
    fn presence_notices_are_told_from_other_notices() {
        assert!(is_presence("* bob joined"));
        assert!(is_presence("* bob left"));
        assert!(!is_presence("* you joined #rust; 2 here"));
        assert!(!is_presence("[lobby] bob: left"));
        assert!(!is_presence("* bob is now known as left"));
    }
}
