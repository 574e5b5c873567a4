//! The event encoding, read back by a client written from the standard's
//! own parsing rules, and the decoder over a real socket.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::line::Says;
use crate::socket::ClientSocket;

/// One event as a client dispatches it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Dispatched {
    name: String,
    data: String,
    /// The last event id after this event.
    last_id: String,
}

/// What an `EventSource` makes of a stream: the WHATWG HTML standard,
/// 9.2.6 "Interpreting an event stream", step by step.
fn interpret(stream: &[u8]) -> Vec<Dispatched> {
    let text = String::from_utf8_lossy(stream)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let (mut events, mut data, mut name, mut last_id) =
        (Vec::new(), String::new(), String::new(), String::new());
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            break; // an unfinished line is not processed
        };
        if line.is_empty() {
            if !data.is_empty() {
                data.pop(); // the last LF
                events.push(Dispatched {
                    name: std::mem::take(&mut name),
                    data: std::mem::take(&mut data),
                    last_id: last_id.clone(),
                });
            }
            name.clear();
            data.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = value.to_string(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => last_id = value.to_string(),
            _ => {}
        }
    }
    events
}

fn encoded(line: &OutboundLine) -> Vec<u8> {
    let mut out = Vec::new();
    EventsEncoder.line(line, &mut out);
    out
}

#[test]
fn a_room_line_is_one_data_line_with_its_id_and_a_notice_has_none() {
    let id = LineId {
        server: 0xab,
        seq: 7,
    };
    let says = Says::Chat {
        room: "lobby".into(),
        from: "alice".into(),
        text: "hi".into(),
    };
    let line = OutboundLine::timed(says, Some(id), &Default::default());
    assert_eq!(encoded(&line), b"id: ab-7\ndata: [lobby] alice: hi\n\n");
    assert_eq!(
        encoded(&OutboundLine::notice("welcome to threadchat")),
        b"data: * welcome to threadchat\n\n"
    );
    let events = interpret(&[encoded(&line), encoded(&OutboundLine::error("no"))].concat());
    let last_ids: Vec<&str> = events.iter().map(|e| e.last_id.as_str()).collect();
    assert_eq!(
        last_ids,
        ["ab-7", "ab-7"],
        "an event without an id keeps the last"
    );
}

#[test]
fn a_line_end_in_the_data_cannot_end_the_event_or_forge_a_field() {
    let mut out = Vec::new();
    event(&mut out, None, None, "x\n\nid: 666\r\nevent: evil\rdata: y");
    assert_eq!(
        out,
        b"data: x\ndata: \ndata: id: 666\ndata: event: evil\ndata: data: y\n\n"
    );
    assert_eq!(
        interpret(&out),
        [Dispatched {
            name: String::new(),
            data: "x\n\nid: 666\nevent: evil\ndata: y".into(),
            last_id: String::new(),
        }]
    );
}

#[test]
fn pings_are_ignored_and_the_goodbye_and_token_are_named_events() {
    let mut out = Vec::new();
    EventsEncoder.ping(&mut out);
    event(&mut out, Some("token"), None, "00ff");
    EventsEncoder.goodbye(&mut out);
    assert!(out.starts_with(b":"), "a ping is a comment");
    let events = interpret(&out);
    let got: Vec<(&str, &str)> = (events.iter())
        .map(|e| (e.name.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        got,
        [("token", "00ff"), ("end", "the server closed this stream")]
    );
}

proptest! {
    /// Whatever the text, the empty one included, a client reads back one
    /// event holding it, with CR and CRLF read as LF (the standard's line
    /// ends).
    #[test]
    fn any_text_comes_back_as_one_event(text in "\\PC{0,40}|[a-z\r\n: ]{1,40}") {
        let mut out = Vec::new();
        event(&mut out, None, None, &text);
        let events = interpret(&out);
        let expected = text.replace("\r\n", "\n").replace('\r', "\n");
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(&events[0].data, &expected);
    }
}

/// A connected pair: the server's side as a `ClientSocket`, and the
/// client's.
fn pair() -> (ClientSocket, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (ClientSocket::new(server), client)
}

#[test]
fn the_decoder_gives_inbox_lines_and_ends_when_the_peer_closes() {
    let (server, mut client) = pair();
    // A deadline far off, so that a decoder that never sees the close
    // fails this test rather than hanging it.
    let far_off = Instant::now() + Duration::from_secs(10);
    let timed = TimedStream::new(&server, Some(far_off), None);
    let (tx, inbox) = super::inbox();
    let mut decoder = EventsDecoder::new(&timed, inbox);
    tx.send("hello".to_string()).expect("room in the inbox");
    assert_eq!(
        decoder.next_line().ok(),
        Some(Incoming::Line("hello".into()))
    );
    // Bytes on the stream are dropped; closing it is the end.
    client.write_all(b"ignored").expect("write");
    drop(client);
    let started = Instant::now();
    assert_eq!(decoder.next_line().ok(), Some(Incoming::End));
    assert!(
        started.elapsed() < PEER_CHECK * 8,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_decoder_times_out_at_the_readers_deadline() {
    let (server, _client) = pair();
    let deadline = Instant::now() + Duration::from_millis(100);
    let timed = TimedStream::new(&server, Some(deadline), None);
    let (_tx, inbox) = super::inbox();
    let mut decoder = EventsDecoder::new(&timed, inbox);
    let error = decoder.next_line().expect_err("the deadline passes");
    assert!(socket::is_timeout(&error), "{error}");
    assert!(Instant::now() >= deadline);
}
