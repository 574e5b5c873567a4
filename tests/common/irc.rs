//! A raw IRC client for tests: it sends lines ended with `\r\n` and reads
//! the server's lines without them, with the deadlines of [`Client`]. It
//! registers the way irssi and WeeChat do (NICK and USER, with or without
//! CAP), and knows nothing else of IRC: each test says what it expects,
//! numeric by numeric.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Client, NoLine};

pub struct IrcClient {
    inner: Client,
    pub nick: String,
}

impl IrcClient {
    /// Connects, and reads the server's first line (a NOTICE to `*`).
    pub fn connect(addr: SocketAddr, label: &str) -> IrcClient {
        let mut client = IrcClient {
            inner: Client::connect(addr, label),
            nick: "*".to_string(),
        };
        client.expect(":threadchat NOTICE * :welcome to threadchat");
        client
    }

    /// Connects and registers as `nick`; reads everything up to the end of
    /// the lobby's NAMES, and checks that the welcome came first.
    pub fn register(addr: SocketAddr, nick: &str) -> IrcClient {
        let mut client = IrcClient::connect(addr, nick);
        client.send(&format!("NICK {nick}"));
        client.send(&format!("USER {nick} 0 * :{nick} the tester"));
        client.expect(&format!(
            ":threadchat 001 {nick} :Welcome to threadchat, {nick}"
        ));
        client.nick = nick.to_string();
        client.skip_until(&format!(":{nick}!{nick}@threadchat JOIN #lobby"));
        client.expect_prefix(&format!(":threadchat 353 {nick} = #lobby :"));
        client.expect(&format!(
            ":threadchat 366 {nick} #lobby :End of /NAMES list"
        ));
        client
    }

    pub fn send(&mut self, line: &str) {
        self.inner.send_raw(format!("{line}\r\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.inner.send_raw(bytes);
    }

    /// The next line, without its `\r\n`, or why there is none.
    pub fn try_line(&mut self, timeout: Duration) -> Result<String, NoLine> {
        let line = self.inner.try_line(timeout)?;
        Ok(without_cr(line))
    }

    /// The next line; fails if none arrives before the deadline.
    pub fn line(&mut self) -> String {
        without_cr(self.inner.line())
    }

    /// The next line must be exactly `expected`.
    pub fn expect(&mut self, expected: &str) {
        let line = self.line();
        assert_eq!(
            line, expected,
            "{}: expected the next line to be {expected:?}, got {line:?}",
            self.inner.label
        );
    }

    /// The next line must start with `prefix`; returns it.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = self.line();
        assert!(
            line.starts_with(prefix),
            "{}: expected the next line to start with {prefix:?}, got {line:?}",
            self.inner.label
        );
        line
    }

    /// The next line must be the numeric `code` to us; returns it.
    pub fn expect_numeric(&mut self, code: &str) -> String {
        let prefix = format!(":threadchat {code} {} ", self.nick);
        self.expect_prefix(&prefix)
    }

    /// Reads lines until one equals `expected`, returning the ones skipped.
    pub fn skip_until(&mut self, expected: &str) -> Vec<String> {
        super::skip_until(|| self.line(), expected)
    }

    /// The server must close the connection (after any lines already sent).
    pub fn expect_closed(&mut self) {
        self.inner.expect_closed();
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }
}

fn without_cr(line: String) -> String {
    match line.strip_suffix('\r') {
        Some(line) => line.to_string(),
        None => line,
    }
}
