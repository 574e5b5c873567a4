//! The manager on its own: events in, client queues out, no sockets and no
//! threads. Each test does what readers would do (claim names in the
//! directory, send events) by hand, and reads what the manager queued. The
//! [`Harness`] is also how `cluster::relay`'s tests drive a manager with a
//! relay in it.

use std::sync::Arc;

use std::time::Duration;

use super::{Alone, Elsewhere, Manager};
use crate::config::Config;
use crate::event::{Event, LeaveReason};
use crate::outbox::{self, Batch, OutboxReader, Outgoing};
use crate::shared::{ClientId, Shared};
use crate::socket::Hangup;

pub(crate) struct Harness<E: Elsewhere = Alone> {
    manager: Manager<E>,
    pub(crate) shared: Arc<Shared>,
}

/// One client's queue, as its writer would see it.
pub(crate) struct Queue(OutboxReader);

impl Queue {
    /// Everything queued so far, as the writer would write it.
    pub(crate) fn take(&self) -> Vec<String> {
        (self.0.take_now().into_iter())
            .filter_map(|outgoing| match outgoing {
                Outgoing::Line(line) | Outgoing::DropNotice(line) => Some(line.text().to_string()),
                Outgoing::Control(_) => None,
            })
            .collect()
    }

    /// Whether the manager has let go of this queue (and it is empty).
    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

fn harness(config: Config) -> Harness {
    harness_with(config, Alone)
}

/// A manager with `elsewhere` as its other servers.
pub(crate) fn harness_with<E: Elsewhere>(config: Config, elsewhere: E) -> Harness<E> {
    let shared = Arc::new(Shared::new(config));
    Harness {
        manager: Manager::new(shared.clone(), elsewhere),
        shared,
    }
}

pub(crate) fn config() -> Config {
    Config {
        history: 0,
        ..Config::default()
    }
}

impl<E: Elsewhere> Harness<E> {
    pub(crate) fn send(&mut self, event: Event) {
        self.manager.handle_guarded(event);
    }

    pub(crate) fn hear_from_elsewhere(&mut self, event: E::Event) {
        self.manager.handle_from_elsewhere(event);
    }

    /// A connection whose backlog holds `max_bytes`; the greeting and the
    /// name prompt are read and checked.
    fn connect_with_backlog(&mut self, n: u64, max_bytes: usize) -> Queue {
        let never = Duration::from_secs(3600);
        let (outbox, outbox_reader, _control) = outbox::outbox(max_bytes, Hangup::none(), never);
        self.send(Event::Connected {
            id: ClientId(n),
            peer: ([127, 0, 0, 1], 40_000 + n as u16).into(),
            outbox,
            names_on_entry: false,
        });
        let queue = Queue(outbox_reader);
        assert_eq!(
            queue.take(),
            [
                "* welcome to threadchat",
                "* choose a name (1-24 letters, digits, - or _):"
            ]
        );
        queue
    }

    /// Connects and registers `name` as client `n`, as a reader would:
    /// claim first, then tell the manager. The welcome is read and checked.
    pub(crate) fn register(&mut self, n: u64, name: &str) -> Queue {
        self.register_and_read(n, name).0
    }

    /// As `register`, also returning what came after the greeting: the
    /// welcome, then any replay of the lobby's history.
    pub(crate) fn register_and_read(&mut self, n: u64, name: &str) -> (Queue, Vec<String>) {
        let queue = self.connect_with_backlog(n, 64 * 1024);
        self.shared
            .clients
            .claim(name, ClientId(n))
            .expect("name free");
        self.send(Event::Registered {
            id: ClientId(n),
            name: name.to_string(),
        });
        let welcome = queue.take();
        assert!(
            welcome[0].starts_with(&format!("* welcome {name}! you are in lobby;")),
            "{welcome:?}"
        );
        (queue, welcome)
    }

    pub(crate) fn chat(&mut self, n: u64, text: &str) {
        self.send(Event::Chat {
            id: ClientId(n),
            text: text.to_string(),
            room: None,
        });
    }
}

#[test]
fn a_newcomer_is_announced_to_the_room_but_not_to_itself() {
    let mut h = harness(config());
    let alice = h.register(1, "alice");
    let bob = h.register(2, "bob");
    assert_eq!(alice.take(), ["* bob joined"]);
    assert!(bob.take().is_empty());
}

#[test]
fn a_chat_line_reaches_the_room_only_and_is_not_echoed() {
    let mut h = harness(config());
    let alice = h.register(1, "alice");
    let bob = h.register(2, "bob");
    let carol = h.register(3, "carol");
    h.send(Event::JoinRoom {
        id: ClientId(3),
        room: "rust".to_string(),
        leaving: None,
    });
    alice.take();
    bob.take();
    carol.take();
    h.chat(1, "hi");
    assert_eq!(bob.take(), ["[lobby] alice: hi"]);
    assert!(alice.take().is_empty(), "no echo to the sender");
    assert!(carol.take().is_empty(), "no leak into another room");
    assert_eq!(h.shared.snapshot().messages_in, 1);
}

#[test]
fn whispers_reach_their_target_and_confirm_or_are_refused() {
    let mut h = harness(config());
    let alice = h.register(1, "alice");
    let bob = h.register(2, "bob");
    alice.take();
    let whisper = |to: &str| Event::Whisper {
        id: ClientId(1),
        to: to.to_string(),
        text: "psst".to_string(),
    };
    h.send(whisper("BOB"));
    assert_eq!(bob.take(), ["[dm from alice] psst"]);
    assert_eq!(alice.take(), ["[dm to bob] psst"]);
    h.send(whisper("nobody"));
    assert_eq!(alice.take(), ["! no user named \"nobody\" is online"]);
    h.send(whisper("alice"));
    assert_eq!(alice.take(), ["! you cannot whisper to yourself"]);
}

#[test]
fn entering_a_room_replays_its_history_between_header_and_live_lines() {
    let mut h = harness(Config {
        history: 2,
        ..config()
    });
    let _alice = h.register(1, "alice");
    for n in 1..=3 {
        h.chat(1, &format!("line {n}"));
    }
    let (bob, welcome) = h.register_and_read(2, "bob");
    assert_eq!(
        welcome[1..],
        [
            "* last 2 messages in #lobby",
            "[lobby] alice: line 2",
            "[lobby] alice: line 3",
        ]
    );
    h.chat(1, "live");
    assert_eq!(bob.take(), ["[lobby] alice: live"]);
}

#[test]
fn leaving_tells_the_room_frees_the_name_and_closes_the_queue() {
    let mut h = harness(config());
    let alice = h.register(1, "alice");
    let bob = h.register(2, "bob");
    alice.take();
    h.send(Event::Left {
        id: ClientId(2),
        reason: LeaveReason::Quit,
    });
    assert_eq!(bob.take(), ["* bye bob"]);
    assert!(bob.is_closed(), "the manager must drop the queue's sender");
    assert_eq!(alice.take(), ["* bob left"]);
    assert_eq!(h.shared.clients.lookup("bob"), None);
}

#[test]
fn a_client_with_a_full_queue_loses_lines_alone_and_is_told() {
    let mut h = harness(config());
    let alice = h.register(1, "alice");
    let reader = h.register(3, "reader");
    // A backlog of about two lines, that nobody reads for a while.
    let slow = h.connect_with_backlog(2, 2 * (outbox::SLOT_BYTES + 60));
    h.shared.clients.claim("slow", ClientId(2)).unwrap();
    h.send(Event::Registered {
        id: ClientId(2),
        name: "slow".to_string(),
    });
    alice.take();
    reader.take();
    for n in 1..=5 {
        h.chat(1, &format!("{n}"));
    }
    let all: Vec<String> = (1..=5).map(|n| format!("[lobby] alice: {n}")).collect();
    assert_eq!(reader.take(), all, "the others lose nothing");
    // The welcome (under 60 bytes) and line 1 fill it; 2 to 5 are dropped,
    // and the notice stands where they would have been.
    assert_eq!(
        slow.take()[1..],
        [
            "[lobby] alice: 1",
            "! 4 lines were dropped because your connection is too slow"
        ]
    );
    h.chat(1, "6");
    assert_eq!(slow.take(), ["[lobby] alice: 6"]);
    let stats = h.shared.snapshot();
    assert_eq!(stats.lines_dropped, 4);
}

#[test]
fn at_shutdown_everyone_is_told_and_every_queue_closes() {
    let mut h = harness(config());
    let alice = h.register(1, "alice");
    let unnamed = h.connect_with_backlog(2, 1024);
    alice.take();
    h.manager.say_goodbye_to_everyone();
    for queue in [&alice, &unnamed] {
        assert_eq!(queue.take(), ["* server shutting down"]);
        assert!(queue.is_closed());
    }
}

#[test]
fn events_for_unknown_clients_are_ignored() {
    let mut h = harness(config());
    let alice = h.register(1, "alice");
    h.chat(99, "from nowhere");
    h.send(Event::Left {
        id: ClientId(99),
        reason: LeaveReason::Closed,
    });
    assert!(alice.take().is_empty());
}

#[test]
fn a_whisper_to_a_new_name_in_flight_confirms_with_the_new_name() {
    let mut h = harness(config());
    let alice = h.register(1, "alice");
    let bob = h.register(2, "bob");
    alice.take();
    // bob's reader has claimed "carl"; its `Renamed` has not reached the
    // manager yet when alice's whisper does.
    h.shared.clients.claim("carl", ClientId(2)).unwrap();
    h.send(Event::Whisper {
        id: ClientId(1),
        to: "carl".to_string(),
        text: "x".to_string(),
    });
    assert_eq!(alice.take(), ["[dm to carl] x"]);
    assert_eq!(bob.take(), ["[dm from alice] x"]);
}

#[test]
fn users_follows_joins_renames_and_leaves() {
    let mut h = harness(config());
    let alice = h.register(1, "alice");
    let _bob = h.register(2, "bob");
    alice.take();
    let users = |h: &mut Harness| {
        h.send(Event::ListUsers { id: ClientId(1) });
        alice.take()
    };
    assert_eq!(users(&mut h), ["* online (2): alice, bob"]);
    // Asked again with nothing changed: the same reply.
    assert_eq!(users(&mut h), ["* online (2): alice, bob"]);
    h.shared.clients.claim("carl", ClientId(2)).unwrap();
    h.send(Event::Renamed {
        id: ClientId(2),
        old: "bob".to_string(),
        new: "carl".to_string(),
    });
    alice.take();
    assert_eq!(users(&mut h), ["* online (2): alice, carl"]);
    let _dora = h.register(3, "dora");
    alice.take();
    assert_eq!(users(&mut h), ["* online (3): alice, carl, dora"]);
    h.send(Event::Left {
        id: ClientId(2),
        reason: LeaveReason::Closed,
    });
    alice.take();
    assert_eq!(users(&mut h), ["* online (2): alice, dora"]);
}

/// Shutdown, as `manager::run` does it: connections the manager never got to
/// (their `Connected` still in the channel when it stopped) are told the
/// server is shutting down, and their queues are let go, so their writers,
/// and then their readers, can finish. Readers still running keep the
/// channel open (here, `events_tx`), so nothing else would drop those
/// queues: a bounded channel keeps its messages while any sender lives.
#[test]
fn connections_still_in_the_channel_at_shutdown_are_told_and_let_go() {
    use crate::shutdown;
    use std::thread;
    use std::time::Instant;

    const WAITING: u64 = 200;
    let shared = Arc::new(Shared::new(config()));
    let (events_tx, events_rx) = crossbeam_channel::bounded(WAITING as usize);
    let never = Duration::from_secs(3600);
    let queues: Vec<OutboxReader> = (1..=WAITING)
        .map(|n| {
            let (outbox, outbox_reader, _control) =
                outbox::outbox(64 * 1024, Hangup::none(), never);
            let peer = ([127, 0, 0, 1], 40_000 + n as u16).into();
            events_tx
                .send(Event::Connected {
                    id: ClientId(n),
                    peer,
                    outbox,
                    names_on_entry: false,
                })
                .expect("the manager's channel is open");
            outbox_reader
        })
        .collect();
    // Shutdown has begun before the manager looks: `select!` picks at random
    // among ready arms, so it handles a few connections, then stops.
    let (trigger, signal) = shutdown::channel();
    trigger.fire();
    let manager = thread::spawn(move || super::run(shared, events_rx, Alone, signal));

    let deadline = Instant::now() + Duration::from_secs(15);
    for (n, queue) in queues.iter().enumerate() {
        let mut heard = Vec::new();
        let mut taken = Vec::new();
        // As the client's writer would: wait for each batch, until closed.
        loop {
            match queue.next_batch(&mut taken, usize::MAX, Some(deadline)) {
                Batch::Taken => {
                    heard.extend(taken.drain(..).filter_map(|outgoing| match outgoing {
                        Outgoing::Line(line) | Outgoing::DropNotice(line) => {
                            Some(line.text().to_string())
                        }
                        Outgoing::Control(_) => None,
                    }))
                }
                Batch::Closed => break,
                Batch::TimedOut => panic!(
                    "connection {}: expected `* server shutting down` and a closed \
                     queue within 15 s; heard {heard:?}, and the queue is still open",
                    n + 1
                ),
            }
        }
        assert_eq!(
            heard.last().map(String::as_str),
            Some("* server shutting down"),
            "connection {}",
            n + 1
        );
    }
    // The last reader is gone: the channel closes and the manager returns.
    drop(events_tx);
    manager.join().expect("the manager thread does not panic");
}

#[test]
fn past_the_total_backlog_budget_the_deepest_goes_and_the_view_counts_what_is_left() {
    let mut h = harness(Config {
        max_total_backlog: 1000,
        ..config()
    });
    let alice = h.register(1, "alice");
    let deep = h.register(2, "deep");
    for n in 0..20 {
        h.chat(1, &format!("{n:>100}"));
    }
    let shallow = h.register(3, "shallow");
    h.chat(1, "one");
    h.chat(1, "two");
    alice.take();
    let (before, _) = h.manager.here.backlogs(0);
    assert!(before > 1000, "{before} bytes should be over the budget");
    h.manager.publish();
    let view = h.shared.stats.manager_view();
    let left = view.backlog_bytes;
    assert!(left > 0 && left < 900, "{left} bytes left");
    // The deep one holds only its notice now, and is not given up on
    // again at the next check.
    let notice = crate::line::OutboundLine::error(super::here::EVICTED)
        .text()
        .len();
    let deep_left = (view.deepest_backlogs.iter())
        .find(|(name, _)| name == "deep")
        .map(|(_, bytes)| *bytes);
    assert!(
        deep_left.is_some_and(|bytes| bytes < notice + 64),
        "the deep one should hold only its notice: {:?}",
        view.deepest_backlogs
    );
    h.manager.publish();
    assert_eq!(h.shared.snapshot().clients_evicted, 1);
    let told = deep.take();
    assert!(
        told.last()
            .is_some_and(|line| line.starts_with("! disconnected")),
        "{told:?}"
    );
    assert!(deep.is_closed());
    assert_eq!(shallow.take(), ["[lobby] alice: one", "[lobby] alice: two"]);
    assert!(!shallow.is_closed());
}
