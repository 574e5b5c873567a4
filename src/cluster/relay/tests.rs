//! The relay in a manager, without Redis: what the Redis threads would send
//! goes in on the cluster channel's side, and what the relay hands the
//! publisher comes out of the `to_redis` channel.

use std::time::Duration;

use crossbeam_channel::{bounded, Receiver};

use super::{said as read_back, Link, Relay};
use crate::cluster::{Body, ClusterEvent, LineId, Message, ServerId, Side, ToRedis};
use crate::config::Config;
use crate::event::Event;
use crate::line::Says;
use crate::logic::protocol;
use crate::manager::tests::{config, harness_with, Harness};
use crate::shared::ClientId;

const ELSEWHERE: ServerId = ServerId(0xe15e);

fn clustered(capacity: usize) -> (Harness<Relay>, Receiver<ToRedis>) {
    let (to_redis_tx, to_redis_rx) = bounded(capacity);
    let (_, cluster_rx) = bounded(1);
    let relay = Relay::new(Link {
        server: ServerId(1),
        to_redis_tx,
        cluster_rx,
        ttl: Duration::from_secs(10),
    });
    let config = Config {
        history: 10,
        ..config()
    };
    (harness_with(config, relay), to_redis_rx)
}

fn from_elsewhere(h: &mut Harness<Relay>, body: Body) {
    h.hear_from_elsewhere(ClusterEvent::Message(Message {
        from: ELSEWHERE,
        body,
    }));
}

fn link(h: &mut Harness<Relay>, side: Side, up: bool) {
    h.hear_from_elsewhere(ClusterEvent::Link { side, up });
}

fn said(seq: u64, text: &str) -> Body {
    Body::Said {
        room: "lobby".into(),
        seq,
        line: format!("[lobby] carol: {text}"),
    }
}

#[test]
fn a_line_from_another_server_reaches_the_room_once_even_when_history_had_it() {
    let (mut h, _to_redis_rx) = clustered(64);
    let line = |seq| LineId {
        server: ELSEWHERE.0,
        seq,
    };
    // Redis's copy of the history, read when the subscriber connected,
    // already holds line 1; it then arrives live too.
    h.hear_from_elsewhere(ClusterEvent::History {
        room: "lobby".into(),
        lines: vec![(line(1), "[lobby] carol: one".into())],
    });
    let (alice, welcome) = h.register_and_read(1, "alice");
    assert_eq!(
        welcome[1..],
        ["* last 1 messages in #lobby", "[lobby] carol: one"]
    );
    from_elsewhere(&mut h, said(1, "one"));
    from_elsewhere(&mut h, said(2, "two"));
    assert_eq!(alice.take(), ["[lobby] carol: two"]);
    let (_bob, welcome) = h.register_and_read(2, "bob");
    assert_eq!(
        welcome[1..],
        [
            "* last 2 messages in #lobby",
            "[lobby] carol: one",
            "[lobby] carol: two"
        ]
    );
}

#[test]
fn users_rooms_and_whispers_span_the_servers() {
    let (mut h, to_redis_rx) = clustered(64);
    let alice = h.register(1, "alice");
    from_elsewhere(&mut h, Body::Roster(vec![("carol".into(), "lobby".into())]));
    from_elsewhere(
        &mut h,
        Body::In {
            name: "dave".into(),
            room: "rust".into(),
        },
    );
    h.send(Event::ListUsers { id: ClientId(1) });
    h.send(Event::ListRooms { id: ClientId(1) });
    h.send(Event::Whisper {
        id: ClientId(1),
        to: "CAROL".into(),
        text: "psst".into(),
    });
    assert_eq!(
        alice.take(),
        [
            "* online (3): alice, carol, dave",
            "* rooms (2): lobby (2), rust (1)",
            "[dm to carol] psst"
        ]
    );
    let whisper = to_redis_rx
        .try_iter()
        .find_map(|work| match work {
            ToRedis::Publish(body @ Body::Whisper { .. }) => Some(body),
            _ => None,
        })
        .expect("the whisper was handed to the publisher");
    assert_eq!(
        whisper,
        Body::Whisper {
            to_server: ELSEWHERE,
            from: "alice".into(),
            to: "carol".into(),
            text: "psst".into()
        }
    );
    from_elsewhere(&mut h, Body::Goodbye);
    assert_eq!(alice.take(), ["* carol left"]);
}

#[test]
fn clients_hear_once_when_redis_goes_and_once_when_it_is_back() {
    let (mut h, _to_redis_rx) = clustered(64);
    link(&mut h, Side::Publisher, true);
    link(&mut h, Side::Subscriber, true);
    let alice = h.register(1, "alice");
    link(&mut h, Side::Subscriber, false);
    link(&mut h, Side::Publisher, false);
    let down = "* other servers cannot be reached (Redis is down); chat on this server goes on";
    assert_eq!(alice.take(), [down]);
    let (_bob, welcome) = h.register_and_read(2, "bob");
    assert_eq!(
        welcome.last().map(String::as_str),
        Some(down),
        "told on arrival"
    );
    assert_eq!(alice.take(), ["* bob joined"]);
    link(&mut h, Side::Publisher, true);
    assert!(alice.take().is_empty(), "one side is still down");
    link(&mut h, Side::Subscriber, true);
    assert_eq!(alice.take(), ["* other servers can be reached again"]);
}

#[test]
fn a_line_that_does_not_fit_the_queue_to_redis_is_counted_and_its_speaker_told() {
    let (mut h, _to_redis_rx) = clustered(1);
    let _alice = h.register(1, "alice"); // fills the queue: "alice is in"
    let bob = h.register(2, "bob");
    let unpublished = h.shared.snapshot().cluster_unpublished;
    h.chat(2, "hello");
    assert_eq!(
        bob.take(),
        ["! the other servers are behind: that line reached this server only"]
    );
    assert_eq!(h.shared.snapshot().cluster_unpublished, unpublished + 1);
}

#[test]
fn room_lines_read_back_as_they_were_spelled() {
    let chat = read_back(&protocol::chat("rust", "bob", "a: b * c"));
    let expected = Says::Chat {
        room: "rust".into(),
        from: "bob".into(),
        text: "a: b * c".into(),
    };
    assert_eq!(chat, Some(expected));
    let action = read_back(&protocol::action("lobby", "al", "waves: hi"));
    let expected = Says::Action {
        room: "lobby".into(),
        from: "al".into(),
        text: "waves: hi".into(),
    };
    assert_eq!(action, Some(expected));
    for other in [
        "* bob joined",
        "[dm from bob] hi",
        "[lobby]bob: hi",
        "[a b] c: d",
        "",
    ] {
        assert_eq!(read_back(other), None, "{other:?}");
    }
}
