//! The handshake against the RFCs' own examples, and every frame a client
//! may send, good and bad.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Duration;

use super::*;
use crate::outbox::{self, OutboxReader, Outgoing};
use crate::socket::Hangup;

#[test]
fn sha1_and_base64_match_their_standards() {
    // FIPS 180-2, appendix A.1, and an empty input.
    assert_eq!(
        hex(&sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    // A two-block message (56 bytes: the padding spills over).
    assert_eq!(
        hex(&sha1(
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        )),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
    // RFC 4648, section 10.
    for (input, expected) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
    }
}

#[test]
fn the_accept_key_is_the_one_in_rfc_6455() {
    // RFC 6455, section 1.3.
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A frame as a browser sends it: masked.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// What the frame reader asked its writer to send, as the writer would
/// find it in the queue.
struct Sent(OutboxReader, RefCell<VecDeque<Control>>);

impl Sent {
    fn try_recv(&self) -> Result<Control, ()> {
        for outgoing in self.0.take_now() {
            if let Outgoing::Control(control) = outgoing {
                self.1.borrow_mut().push_back(control);
            }
        }
        self.1.borrow_mut().pop_front().ok_or(())
    }
}

fn reader(bytes: Vec<u8>, max: usize) -> (FrameReader<std::io::Cursor<Vec<u8>>>, Sent) {
    let never = Duration::from_secs(3600);
    let (_outbox, outbox_reader, control) = outbox::outbox(1024, Hangup::none(), never);
    (
        FrameReader::new(std::io::Cursor::new(bytes), max, control),
        Sent(outbox_reader, RefCell::new(VecDeque::new())),
    )
}

fn line(text: &str) -> Incoming {
    Incoming::Line(text.to_string())
}

#[test]
fn text_frames_are_lines_and_fragments_are_joined() {
    let mut bytes = client_frame(true, OP_TEXT, b"hello");
    bytes.extend(client_frame(false, OP_TEXT, b"frag"));
    // A ping may come between the fragments of a message.
    bytes.extend(client_frame(true, OP_PING, b"p1"));
    bytes.extend(client_frame(true, OP_CONTINUATION, b"mented"));
    let (mut frames, control_rx) = reader(bytes, 100);
    assert_eq!(frames.next_line().unwrap(), line("hello"));
    assert_eq!(frames.next_line().unwrap(), line("fragmented"));
    let pong = Control {
        bytes: vec![0x8a, 0x02, b'p', b'1'],
        closes: false,
    };
    assert_eq!(control_rx.try_recv(), Ok(pong));
    assert_eq!(frames.next_line().unwrap(), Incoming::End);
}

#[test]
fn lengths_of_16_and_64_bits_are_read() {
    let medium = "m".repeat(300);
    let long = "l".repeat(70_000);
    let mut bytes = client_frame(true, OP_TEXT, medium.as_bytes());
    bytes.extend(client_frame(true, OP_TEXT, long.as_bytes()));
    let (mut frames, _) = reader(bytes, 100_000);
    assert_eq!(frames.next_line().unwrap(), line(&medium));
    assert_eq!(frames.next_line().unwrap(), line(&long));
}

#[test]
fn a_client_close_is_answered_and_ends_the_stream() {
    let mut bytes = client_frame(true, OP_CLOSE, &1000u16.to_be_bytes());
    bytes.extend(client_frame(true, OP_TEXT, b"after close"));
    let (mut frames, control_rx) = reader(bytes, 100);
    assert_eq!(frames.next_line().unwrap(), Incoming::End);
    assert_eq!(
        frames.next_line().unwrap(),
        Incoming::End,
        "nothing after a close"
    );
    assert_eq!(
        control_rx.try_recv(),
        Ok(close_control(CloseCode::Normal, ""))
    );
}

/// Feeds `bytes`, expects a refusal with `code`.
fn refused(bytes: Vec<u8>, max: usize, code: CloseCode) {
    let (mut frames, control_rx) = reader(bytes, max);
    let error = frames.next_line().expect_err("expected a refusal");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    match control_rx.try_recv() {
        Ok(Control {
            bytes,
            closes: true,
        }) if bytes[0] == 0x88 => {
            let sent = u16::from_be_bytes([bytes[2], bytes[3]]);
            assert_eq!(sent, code.number(), "{error}");
        }
        other => panic!("expected a close {code:?}, got {other:?} ({error})"),
    }
    assert_eq!(
        frames.next_line().unwrap(),
        Incoming::End,
        "nothing read after a refusal"
    );
}

#[test]
fn every_forbidden_frame_is_refused_with_its_close_code() {
    // Unmasked: a client's frames must be masked.
    refused(vec![0x81, 0x02, b'h', b'i'], 100, CloseCode::ProtocolError);
    // Over --max-line, whole or in fragments.
    refused(
        client_frame(true, OP_TEXT, &[b'x'; 101]),
        100,
        CloseCode::TooBig,
    );
    let mut fragments = client_frame(false, OP_TEXT, &[b'x'; 60]);
    fragments.extend(client_frame(true, OP_CONTINUATION, &[b'x'; 60]));
    refused(fragments, 100, CloseCode::TooBig);
    // Binary.
    refused(
        client_frame(true, OP_BINARY, b"\x00\x01"),
        100,
        CloseCode::Unsupported,
    );
    // Not UTF-8.
    refused(
        client_frame(true, OP_TEXT, b"\xff\xfe"),
        100,
        CloseCode::InvalidData,
    );
    // Reserved bits, unknown opcodes, control frames too long or in pieces.
    let mut rsv = client_frame(true, OP_TEXT, b"x");
    rsv[0] |= 0x40;
    refused(rsv, 100, CloseCode::ProtocolError);
    refused(client_frame(true, 0x3, b"x"), 100, CloseCode::ProtocolError);
    refused(
        client_frame(true, OP_PING, &[0; 126]),
        1000,
        CloseCode::ProtocolError,
    );
    refused(
        client_frame(false, OP_PING, b"x"),
        100,
        CloseCode::ProtocolError,
    );
    refused(
        client_frame(true, OP_CONTINUATION, b"x"),
        100,
        CloseCode::ProtocolError,
    );
}

#[test]
fn server_frames_are_unmasked_with_the_shortest_length() {
    let mut out = Vec::new();
    WsEncoder.line(&crate::line::OutboundLine::notice("hi"), &mut out);
    assert_eq!(out, [0x81, 0x04, b'*', b' ', b'h', b'i'], "no newline");
    out.clear();
    frame(&mut out, OP_TEXT, &[b'a'; 200]);
    assert_eq!(&out[..4], &[0x81, 126, 0, 200]);
    out.clear();
    close_frame(&mut out, CloseCode::TooBig, "bye");
    assert_eq!(out, [0x88, 0x05, 0x03, 0xf1, b'b', b'y', b'e']);
    out.clear();
    WsEncoder.ping(&mut out);
    assert_eq!(&out[..2], &[0x89, 10], "a ping with a 10-byte payload");
}

/// A frame header a client could send with any length at all, masked, with
/// no payload after it.
fn header_only(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode, 0x80 | 127];
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&[1, 2, 3, 4]);
    out
}

#[test]
fn a_length_that_would_wrap_around_is_refused_not_a_panic() {
    // A first fragment, then a continuation claiming 2^64 - 2 bytes: the
    // sum of the two used to wrap around and pass the size check.
    let mut bytes = client_frame(false, OP_TEXT, b"ab");
    bytes.extend(header_only(true, OP_CONTINUATION, u64::MAX - 1));
    refused(bytes, 100, CloseCode::ProtocolError);
    // Just under the top bit: a length a client may send, but far too big.
    let mut bytes = client_frame(false, OP_TEXT, b"ab");
    bytes.extend(header_only(true, OP_CONTINUATION, i64::MAX as u64));
    refused(bytes, 100, CloseCode::TooBig);
}

#[test]
fn a_close_frame_must_carry_a_code_a_client_may_send() {
    for code in [999u16, 1004, 1005, 1006, 1015, 2999, 5000] {
        refused(
            client_frame(true, OP_CLOSE, &code.to_be_bytes()),
            100,
            CloseCode::ProtocolError,
        );
    }
    refused(
        client_frame(true, OP_CLOSE, &[0x03]),
        100,
        CloseCode::ProtocolError,
    );
    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.extend_from_slice(b"\xff");
    refused(
        client_frame(true, OP_CLOSE, &bad_reason),
        100,
        CloseCode::InvalidData,
    );
    // A good one is answered with a close and ends the stream.
    for code in [1000u16, 1001, 3000, 4999] {
        let (mut frames, _) = reader(client_frame(true, OP_CLOSE, &code.to_be_bytes()), 100);
        assert_eq!(frames.next_line().unwrap(), Incoming::End, "code {code}");
    }
}

#[test]
fn floods_of_frames_that_bring_no_line_are_refused() {
    let pings: Vec<u8> = (0..5_000)
        .flat_map(|_| client_frame(true, OP_PING, b"p"))
        .collect();
    refused(pings, 100, CloseCode::PolicyViolation);
    let mut empties = client_frame(false, OP_TEXT, b"a");
    empties.extend((0..200_000).flat_map(|_| client_frame(false, OP_CONTINUATION, b"")));
    refused(empties, 100, CloseCode::PolicyViolation);
    // A browser's few pings and a fragmented line are fine.
    let mut fine: Vec<u8> = (0..10)
        .flat_map(|_| client_frame(true, OP_PING, b"p"))
        .collect();
    fine.extend(client_frame(false, OP_TEXT, b"hel"));
    fine.extend(client_frame(true, OP_CONTINUATION, b"lo"));
    let (mut frames, _) = reader(fine, 100);
    assert_eq!(frames.next_line().unwrap(), line("hello"));
}
