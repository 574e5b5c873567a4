//! The WebSocket door (RFC 6455), written by hand on std: the handshake's
//! key, and frames in and out. No thread of its own: a browser's reader
//! thread reads through [`WsDecoder`], its writer writes through
//! [`WsEncoder`], and the web door (`web/`) does the HTTP handshake before.
//!
//! A browser client is a client like any other: the same reader and writer
//! threads, names, rooms and limits, and the line protocol's commands, one
//! per text message. Only the framing differs, and it is all here. The
//! [`FrameReader`] answers pings and closes itself (through the writer,
//! which owns the socket's writing side, through the `ControlSender`) and hands
//! the reader nothing but lines; the writer wraps each line in a text frame.
//! The writer also pings a quiet browser (`--ping-after`), and browsers
//! answer pings by themselves.

use std::io::{self, BufReader, Read};
use std::time::Instant;

use super::{Decode, Encode, Parsed};
use crate::line::OutboundLine;
use crate::logic::line_reader::Incoming;
use crate::outbox::{Control, ControlSender};
use crate::socket::TimedStream;

/// How many bytes the reader asks the socket for at a time.
const READ_BUFFER_BYTES: usize = 2048;

pub(crate) struct WsDecoder<'a> {
    frames: FrameReader<BufReader<&'a TimedStream<'a>>>,
}

impl<'a> WsDecoder<'a> {
    pub(crate) fn new(input: &'a TimedStream<'a>, max_line: usize, control: ControlSender) -> Self {
        let buffered = BufReader::with_capacity(READ_BUFFER_BYTES, input);
        WsDecoder {
            frames: FrameReader::new(buffered, max_line, control),
        }
    }
}

impl Decode for WsDecoder<'_> {
    fn next_line(&mut self) -> io::Result<Incoming> {
        self.frames.next_line()
    }

    fn parse(&mut self, line: &str, name: Option<&str>) -> Parsed {
        super::line::parse(line, name.is_some())
    }
}

pub(crate) struct WsEncoder;

impl Encode for WsEncoder {
    /// One text frame per line, without its newline.
    fn line(&mut self, line: &OutboundLine, out: &mut Vec<u8>) {
        frame(out, OP_TEXT, line.text().as_bytes());
    }

    fn ping(&mut self, out: &mut Vec<u8>) {
        frame(out, OP_PING, b"threadchat");
    }

    /// The queue is closed: the server ends the connection, and says so.
    fn goodbye(&mut self, out: &mut Vec<u8>) {
        close_frame(out, CloseCode::Normal, "");
    }
}

/// Why the server closes a WebSocket (RFC 6455, section 7.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseCode {
    /// 1000: done (the client closed, `/quit`, a hang-up, the server
    /// shutting down: a `* server shutting down` line says which).
    Normal,
    /// 1002: a frame broke the protocol (unmasked, reserved bits, ...).
    ProtocolError,
    /// 1003: a binary frame; this chat speaks text.
    Unsupported,
    /// 1007: a text message that is not UTF-8.
    InvalidData,
    /// 1008: the client broke the server's policy (a flood of frames that
    /// carry no line).
    PolicyViolation,
    /// 1009: a message longer than `--max-line`.
    TooBig,
}

impl CloseCode {
    pub(crate) fn number(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::ProtocolError => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::InvalidData => 1007,
            CloseCode::PolicyViolation => 1008,
            CloseCode::TooBig => 1009,
        }
    }
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// The magic string of RFC 6455, section 1.3.
const HANDSHAKE_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Whether a `Sec-WebSocket-Key` is what RFC 6455 (4.1) asks of a client:
/// 16 random bytes in base64, which is 24 characters ending in `==`.
pub(crate) fn is_a_key(key: &str) -> bool {
    let key = key.trim().as_bytes();
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    key.len() == 24 && key[..22].iter().all(base64) && &key[22..] == b"=="
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: proof that
/// the server read the key, so a cache or a confused server cannot fake the
/// upgrade.
pub(crate) fn accept_key(client_key: &str) -> String {
    let mut input = client_key.trim().as_bytes().to_vec();
    input.extend_from_slice(HANDSHAKE_GUID.as_bytes());
    base64(&sha1(&input))
}

/// Reads frames and gives the reader lines. Answers pings, echoes a
/// client's close, and refuses what the protocol or our limits forbid by
/// sending a close with its code (through `control`) and failing the
/// read with an error that names the problem.
pub(crate) struct FrameReader<R> {
    input: R,
    max_message: usize,
    control: ControlSender,
    /// A text message arriving in fragments.
    message: Vec<u8>,
    in_message: bool,
    closed: bool,
    /// Frames that bring no line, counted against a budget.
    frames: FrameBudget,
}

impl<R: Read> FrameReader<R> {
    pub(crate) fn new(input: R, max_message: usize, control: ControlSender) -> Self {
        FrameReader {
            input,
            max_message,
            control,
            message: Vec::new(),
            in_message: false,
            closed: false,
            frames: FrameBudget::new(),
        }
    }

    /// The next line (text message), or the end. Protocol errors become an
    /// `InvalidData` error after the close frame has been asked for.
    pub(crate) fn next_line(&mut self) -> io::Result<Incoming> {
        loop {
            if self.closed {
                return Ok(Incoming::End);
            }
            let Some(header) = self.read_header()? else {
                return Ok(Incoming::End);
            };
            if let Some(line) = self.on_frame(header)? {
                return Ok(line);
            }
        }
    }

    fn refuse(&mut self, code: CloseCode, why: &'static str) -> io::Error {
        let _ = self.control.send(close_control(code, why));
        self.closed = true;
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket refused: {why} (close {})", code.number()),
        )
    }

    /// Reads a frame header; `None` at a clean end of the stream.
    fn read_header(&mut self) -> io::Result<Option<Header>> {
        let mut first = [0u8; 2];
        match self.input.read(&mut first[..1])? {
            0 => return Ok(None),
            _ => self.input.read_exact(&mut first[1..])?,
        }
        let (fin, rsv, opcode) = (first[0] & 0x80 != 0, first[0] & 0x70, first[0] & 0x0f);
        let masked = first[1] & 0x80 != 0;
        let length = match first[1] & 0x7f {
            126 => {
                let mut bytes = [0u8; 2];
                self.input.read_exact(&mut bytes)?;
                u64::from(u16::from_be_bytes(bytes))
            }
            127 => {
                let mut bytes = [0u8; 8];
                self.input.read_exact(&mut bytes)?;
                u64::from_be_bytes(bytes)
            }
            short => u64::from(short),
        };
        if rsv != 0 {
            return Err(self.refuse(CloseCode::ProtocolError, "reserved bits set"));
        }
        // RFC 6455, 5.2: the most significant bit of a 64-bit length must be 0.
        if length > i64::MAX as u64 {
            return Err(self.refuse(CloseCode::ProtocolError, "a length with its top bit set"));
        }
        if !masked {
            return Err(self.refuse(CloseCode::ProtocolError, "client frames must be masked"));
        }
        let mut mask = [0u8; 4];
        self.input.read_exact(&mut mask)?;
        Ok(Some(Header {
            fin,
            opcode,
            length,
            mask,
        }))
    }

    /// Reads a payload the caller has checked is small enough.
    fn read_payload(&mut self, header: &Header) -> io::Result<Vec<u8>> {
        let mut payload = vec![0u8; header.length as usize];
        self.input.read_exact(&mut payload)?;
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= header.mask[i % 4];
        }
        Ok(payload)
    }

    fn on_frame(&mut self, header: Header) -> io::Result<Option<Incoming>> {
        // Frames that bring no line (pings, pongs, empty fragments) are
        // counted: a client may send some, not a flood of them.
        let carries_text = matches!(header.opcode, OP_TEXT | OP_CONTINUATION);
        let brings_no_line = !carries_text || header.length == 0;
        if brings_no_line && !self.frames.allow(Instant::now()) {
            return Err(self.refuse(CloseCode::PolicyViolation, "too many frames without a line"));
        }
        match header.opcode {
            OP_PING | OP_PONG | OP_CLOSE => self.on_control(header),
            OP_TEXT if self.in_message => Err(self.refuse(
                CloseCode::ProtocolError,
                "a new message inside a fragmented one",
            )),
            OP_CONTINUATION if !self.in_message => {
                Err(self.refuse(CloseCode::ProtocolError, "a continuation with no message"))
            }
            OP_TEXT | OP_CONTINUATION => self.on_text(header),
            OP_BINARY => Err(self.refuse(CloseCode::Unsupported, "binary frames are not chat")),
            _ => Err(self.refuse(CloseCode::ProtocolError, "unknown opcode")),
        }
    }

    fn on_text(&mut self, header: Header) -> io::Result<Option<Incoming>> {
        // Checked: a continuation's length is the client's to choose, and a
        // sum that wrapped around would pass the test below.
        let total = (self.message.len() as u64).checked_add(header.length);
        if total.is_none_or(|total| total > self.max_message as u64) {
            return Err(self.refuse(CloseCode::TooBig, "message longer than --max-line"));
        }
        let payload = self.read_payload(&header)?;
        self.message.extend_from_slice(&payload);
        self.in_message = !header.fin;
        if !header.fin {
            return Ok(None);
        }
        let message = std::mem::take(&mut self.message);
        match String::from_utf8(message) {
            Ok(text) => Ok(Some(Incoming::Line(text))),
            Err(_) => Err(self.refuse(CloseCode::InvalidData, "text that is not UTF-8")),
        }
    }

    fn on_control(&mut self, header: Header) -> io::Result<Option<Incoming>> {
        if !header.fin || header.length > 125 {
            return Err(self.refuse(
                CloseCode::ProtocolError,
                "a control frame fragmented or over 125 bytes",
            ));
        }
        let payload = self.read_payload(&header)?;
        match header.opcode {
            // Only the latest ping needs an answer (RFC 6455, 5.5.3): if the
            // writer has a few waiting, this one may go unanswered.
            OP_PING => {
                let mut pong = Vec::with_capacity(payload.len() + 2);
                frame(&mut pong, OP_PONG, &payload);
                let control = Control {
                    bytes: pong,
                    closes: false,
                };
                let _ = self.control.send(control);
            }
            OP_CLOSE => {
                // The client closes: answer with a close, and end; unless
                // its close frame itself breaks the protocol (RFC 6455, 7.4).
                if let Err((code, why)) = check_close(&payload) {
                    return Err(self.refuse(code, why));
                }
                let _ = self.control.send(close_control(CloseCode::Normal, ""));
                self.closed = true;
                return Ok(Some(Incoming::End));
            }
            _ => {} // an unasked-for pong: nothing to do
        }
        Ok(None)
    }
}

/// Whether a client's close frame is well formed: empty, or a code a peer
/// may send (RFC 6455, 7.4.1 and 7.4.2) and a reason in UTF-8.
fn check_close(payload: &[u8]) -> Result<(), (CloseCode, &'static str)> {
    let refused = |why| Err((CloseCode::ProtocolError, why));
    match payload {
        [] => Ok(()),
        [_] => refused("a close frame with half a code"),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !allowed {
                return refused("a close code a client may not send");
            }
            match std::str::from_utf8(reason) {
                Ok(_) => Ok(()),
                Err(_) => Err((CloseCode::InvalidData, "a close reason that is not UTF-8")),
            }
        }
    }
}

/// Frames a client may send that bring no line: a burst, then a few a
/// second. A browser sends a pong now and then; a flood is refused.
#[derive(Debug)]
struct FrameBudget {
    left: f64,
    last: Instant,
}

impl FrameBudget {
    const BURST: f64 = 64.0;
    const PER_SECOND: f64 = 8.0;

    fn new() -> Self {
        FrameBudget {
            left: Self::BURST,
            last: Instant::now(),
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let gained = now.saturating_duration_since(self.last).as_secs_f64() * Self::PER_SECOND;
        self.left = (self.left + gained).min(Self::BURST);
        self.last = now;
        if self.left < 1.0 {
            return false;
        }
        self.left -= 1.0;
        true
    }
}

struct Header {
    fin: bool,
    opcode: u8,
    length: u64,
    mask: [u8; 4],
}

/// Appends one unmasked server frame (servers never mask) to `out`.
fn frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// A close frame for the writer to send, its last.
fn close_control(code: CloseCode, reason: &str) -> Control {
    let mut bytes = Vec::with_capacity(4 + reason.len());
    close_frame(&mut bytes, code, reason);
    Control {
        bytes,
        closes: true,
    }
}

/// A close frame: the code, then a short reason in UTF-8.
fn close_frame(out: &mut Vec<u8>, code: CloseCode, reason: &str) {
    let mut payload = code.number().to_be_bytes().to_vec();
    // A control frame's payload is at most 125 bytes.
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    frame(out, OP_CLOSE, &payload);
}

/// SHA-1 (FIPS 180-4). Broken for signatures, and only ever used here as
/// RFC 6455 asks: to show the server read the client's key.
fn sha1(input: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut message = input.to_vec();
    let bit_length = (input.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_length.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let temp = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = temp;
        }
        for (state, value) in h.iter_mut().zip([a, b, c, d, e]) {
            *state = state.wrapping_add(value);
        }
    }
    let mut digest = [0u8; 20];
    for (i, word) in h.iter().enumerate() {
        digest[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// Base64 (RFC 4648, section 4), with padding.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
