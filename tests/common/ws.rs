//! A minimal WebSocket client for tests, written against RFC 6455 by hand
//! (as the server is): it masks what it sends, as a browser must, and can
//! also send what a browser never would. The handshake is plain HTTP, sent
//! and read with tests/common/http.rs.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{http, DEADLINE};

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame from the server.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// A close frame's code.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

pub struct WsClient {
    pub label: String,
    stream: TcpStream,
    pending: Vec<u8>,
}

impl WsClient {
    /// Connects and upgrades with a browser's headers (`Origin` our page's).
    pub fn connect(addr: SocketAddr, label: &str) -> WsClient {
        let origin = format!("http://{addr}");
        Self::connect_with_origin(addr, label, Some(&origin)).expect("the upgrade should succeed")
    }

    /// Upgrades with the given `Origin`; `Err` holds the response if the
    /// server refused.
    pub fn connect_with_origin(
        addr: SocketAddr,
        label: &str,
        origin: Option<&str>,
    ) -> Result<WsClient, String> {
        Self::connect_with_host(addr, label, &addr.to_string(), origin)
    }

    /// Upgrades asking for `host` (what the browser's address bar says),
    /// with the given `Origin`; `Err` holds the response if refused.
    pub fn connect_with_host(
        addr: SocketAddr,
        label: &str,
        host: &str,
        origin: Option<&str>,
    ) -> Result<WsClient, String> {
        let mut stream = http::connect(addr);
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .expect("send the handshake");
        let mut client = WsClient {
            label: label.to_string(),
            stream,
            pending: Vec::new(),
        };
        let head = client.read_head();
        if !head.starts_with("HTTP/1.1 101 ") {
            let rest = http::read_until_closed(&mut client.stream);
            return Err(head + &String::from_utf8_lossy(&client.pending) + &rest);
        }
        // RFC 6455's own example key, so the answer is known.
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{label}: wrong accept key in {head:?}"
        );
        Ok(client)
    }

    fn read_head(&mut self) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.pending.drain(..end + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{}: no response head",
                self.label
            );
            self.fill(deadline)
                .unwrap_or_else(|why| panic!("{}: {why}", self.label));
        }
    }

    fn fill(&mut self, deadline: Instant) -> Result<(), String> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(left)).expect("timeout");
        let mut buffer = [0u8; 16 * 1024];
        match self.stream.read(&mut buffer) {
            Ok(0) => Err("closed".into()),
            Ok(n) => {
                self.pending.extend_from_slice(&buffer[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err("timed out".into())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends a frame, masked unless `masked` is false.
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8], masked: bool) {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 65535 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        let _ = self.stream.write_all(&out);
    }

    /// Our end's address (the server sees it as the peer).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local_addr")
    }

    pub fn send(&mut self, text: &str) {
        self.send_frame(true, TEXT, text.as_bytes(), true);
    }

    /// The next frame, or why there is none.
    pub fn try_frame(&mut self) -> Result<Frame, String> {
        self.try_frame_within(DEADLINE)
    }

    /// The next frame, if one comes within `wait`.
    pub fn try_frame_within(&mut self, wait: Duration) -> Result<Frame, String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some((frame, used)) = parse(&self.pending) {
                self.pending.drain(..used);
                return Ok(frame);
            }
            self.fill(deadline)?;
        }
    }

    pub fn frame(&mut self) -> Frame {
        self.try_frame()
            .unwrap_or_else(|why| panic!("{}: expected a frame, got {why}", self.label))
    }

    /// The next text frame must be exactly `expected`.
    pub fn expect(&mut self, expected: &str) {
        let frame = self.frame();
        assert_eq!(
            (frame.opcode, frame.text().as_str()),
            (TEXT, expected),
            "{}",
            self.label
        );
    }

    /// Reads text frames until one equals `expected`.
    pub fn skip_until(&mut self, expected: &str) {
        loop {
            let frame = self.frame();
            assert_eq!(
                frame.opcode, TEXT,
                "{}: {frame:?} before {expected:?}",
                self.label
            );
            if frame.text() == expected {
                return;
            }
        }
    }

    /// Registers: greeting, prompt, name, welcome.
    pub fn register(addr: SocketAddr, name: &str) -> WsClient {
        let mut client = WsClient::connect(addr, name);
        client.expect("* welcome to threadchat");
        client.expect("* choose a name (1-24 letters, digits, - or _):");
        client.send(name);
        let welcome = client.frame().text();
        assert!(
            welcome.starts_with(&format!("* welcome {name}!")),
            "{name}: {welcome}"
        );
        client
    }

    /// The server must close with `code`, and then the connection.
    pub fn expect_close(&mut self, code: u16) {
        loop {
            let frame = self.frame();
            if frame.opcode == CLOSE {
                assert_eq!(
                    frame.close_code(),
                    Some(code),
                    "{}: close {frame:?}",
                    self.label
                );
                break;
            }
        }
        assert!(
            self.try_frame().is_err(),
            "{}: nothing after the close",
            self.label
        );
    }
}

/// A whole server frame at the start of `bytes`, and its length.
fn parse(bytes: &[u8]) -> Option<(Frame, usize)> {
    if bytes.len() < 2 {
        return None;
    }
    assert_eq!(bytes[1] & 0x80, 0, "server frames must not be masked");
    let (length, start) = match bytes[1] & 0x7f {
        126 if bytes.len() >= 4 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
        127 if bytes.len() >= 10 => (
            u64::from_be_bytes(bytes[2..10].try_into().ok()?) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (usize::from(n), 2),
    };
    (bytes.len() >= start + length).then(|| {
        let frame = Frame {
            opcode: bytes[0] & 0x0f,
            payload: bytes[start..start + length].to_vec(),
        };
        (frame, start + length)
    })
}
