//! The slow-consumer policy on tiny backlogs: no sockets except to see a
//! hang-up, and one test with a real writer thread racing the manager.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::*;

const NEVER: Duration = Duration::from_secs(3600);

/// A line whose cost is exactly `LINE_COST` bytes ("line NN" + newline + slot).
fn line(n: u32) -> OutboundLine {
    OutboundLine::verbatim(&format!("line {n:02}"))
}
const LINE_COST: usize = 8 + SLOT_BYTES;

/// An outbox with room for `lines` of our test lines.
fn outbox_for(lines: usize) -> (Outbox, OutboxReader) {
    let (outbox, reader, _control) = outbox(lines * LINE_COST, Hangup::none(), NEVER);
    (outbox, reader)
}

/// The text of what the writer took.
fn texts(taken: Vec<Outgoing>) -> Vec<String> {
    (taken.into_iter())
        .map(|outgoing| match outgoing {
            Outgoing::Line(line) | Outgoing::DropNotice(line) => line.text().to_string(),
            Outgoing::Control(control) => format!("control {:?}", control.bytes),
        })
        .collect()
}

/// What the writer would write now, as text.
fn drain(reader: &OutboxReader) -> Vec<String> {
    texts(reader.take_now())
}

/// What the manager counts of each delivery (`Tally` in `shared`).
#[derive(Default)]
struct Tally {
    delivered: u64,
    dropped: u64,
}

/// Delivers as the manager does, counting what happened, and wakes the
/// writer if it slept (a batch of one event).
fn counted(outbox: &mut Outbox, line: OutboundLine, tally: &mut Tally) -> Delivery {
    let mut wakeups = Wakeups::default();
    let delivery = outbox.deliver(line, &mut wakeups);
    wakeups.wake_all();
    match delivery {
        Delivery::Queued => tally.delivered += 1,
        Delivery::Dropped | Delivery::HungUp => tally.dropped += 1,
    }
    delivery
}

fn notice(n: u64) -> String {
    format!("! {n} lines were dropped because your connection is too slow")
}

#[test]
fn a_line_that_would_pass_the_bound_is_dropped_and_counted() {
    let (mut outbox, reader) = outbox_for(2);
    let mut tally = Tally::default();
    assert_eq!(counted(&mut outbox, line(1), &mut tally), Delivery::Queued);
    assert_eq!(counted(&mut outbox, line(2), &mut tally), Delivery::Queued);
    assert_eq!(outbox.backlog_bytes(), 2 * LINE_COST);
    assert_eq!(counted(&mut outbox, line(3), &mut tally), Delivery::Dropped);
    assert_eq!((tally.delivered, tally.dropped), (2, 1));
    assert_eq!(drain(&reader), ["line 01", "line 02", &notice(1)]);
    assert_eq!(outbox.backlog_bytes(), 0, "taking lines frees their bytes");
}

#[test]
fn the_notice_stands_in_the_gap_just_before_the_next_line() {
    let (mut outbox, reader) = outbox_for(2);
    let mut tally = Tally::default();
    for n in 1..=5 {
        counted(&mut outbox, line(n), &mut tally);
    }
    // The writer catches up only now.
    assert_eq!(drain(&reader), ["line 01", "line 02", &notice(3)]);
    counted(&mut outbox, line(6), &mut tally);
    assert_eq!(drain(&reader), ["line 06"]);
}

#[test]
fn the_notice_does_not_wait_for_a_later_line() {
    let (mut outbox, reader) = outbox_for(1);
    let mut tally = Tally::default();
    counted(&mut outbox, line(1), &mut tally);
    counted(&mut outbox, line(2), &mut tally);
    // No more lines come for this client, ever: it is told all the same.
    assert_eq!(drain(&reader), ["line 01", &notice(1)]);
}

#[test]
fn drops_after_the_writer_told_a_gap_open_a_new_one() {
    let (mut outbox, reader) = outbox_for(1);
    let mut tally = Tally::default();
    counted(&mut outbox, line(1), &mut tally);
    counted(&mut outbox, line(2), &mut tally);
    // The writer takes the line (freeing room) and the first marker.
    assert_eq!(drain(&reader), ["line 01", &notice(1)]);
    counted(&mut outbox, line(3), &mut tally); // fits
    counted(&mut outbox, line(4), &mut tally); // dropped: a new gap
    counted(&mut outbox, line(5), &mut tally); // the same gap
    assert_eq!(drain(&reader), ["line 03", &notice(2)]);
    assert_eq!(tally.dropped, 3);
}

#[test]
fn a_line_bigger_than_the_bound_still_goes_to_an_empty_backlog() {
    let (mut outbox, reader, _control) = outbox(10, Hangup::none(), NEVER);
    let mut tally = Tally::default();
    let big = OutboundLine::verbatim(&"u".repeat(100));
    assert_eq!(
        counted(&mut outbox, big.clone(), &mut tally),
        Delivery::Queued
    );
    assert_eq!(counted(&mut outbox, big, &mut tally), Delivery::Dropped);
    assert_eq!(drain(&reader).len(), 2, "the big line, then the notice");
}

#[test]
fn a_client_whose_backlog_stays_full_is_hung_up_on() {
    // A real socket pair, to see the hang-up from the client's side.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server_side, _) = listener.accept().expect("accept");
    let server_side = Arc::new(crate::socket::ClientSocket::new(server_side));

    let (mut outbox, _reader, _control) =
        outbox(LINE_COST, Hangup::new(&server_side), Duration::ZERO);
    let mut tally = Tally::default();
    assert_eq!(counted(&mut outbox, line(1), &mut tally), Delivery::Queued);
    assert_eq!(counted(&mut outbox, line(2), &mut tally), Delivery::HungUp);
    client
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut buffer = [0u8; 16];
    assert_eq!(
        client.read(&mut buffer).expect("read"),
        0,
        "expected end of file once hung up on"
    );
}

#[test]
fn a_client_that_catches_up_is_not_hung_up_on() {
    let (mut outbox, reader, _control) =
        outbox(LINE_COST, Hangup::none(), Duration::from_millis(1));
    let mut tally = Tally::default();
    for n in 0..50 {
        // Full, then drained: a line gets through every other time, which
        // restarts the clock.
        let delivery = counted(&mut outbox, line(n), &mut tally);
        assert_ne!(delivery, Delivery::HungUp, "line {n}");
        drain(&reader);
    }
}

/// Checks a client's stream: numbered lines in order, where every jump is
/// announced by a notice just before it for exactly the lines skipped.
/// Returns how many lines the notices told of.
fn check_gapless(received: &[String]) -> u64 {
    let mut expected_next = 0u64;
    let mut told = 0u64;
    let mut owed = 0u64;
    for text in received {
        if let Some(rest) = text.strip_prefix("! ") {
            let count: u64 = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a notice with a count, got {text:?}"));
            told += count;
            owed += count;
            continue;
        }
        let n: u64 = text["line ".len()..].parse().expect("a numbered line");
        assert_eq!(
            n,
            expected_next + owed,
            "line {n} arrived where line {expected_next} was due, with {owed} told of"
        );
        expected_next = n + 1;
        owed = 0;
    }
    told
}

#[test]
fn with_a_writer_racing_the_manager_every_drop_is_told_once_in_its_place() {
    const LINES: u32 = 20_000;
    let (mut outbox, reader) = outbox_for(4);
    let writer = thread::spawn(move || {
        let mut received = Vec::new();
        let mut taken = Vec::new();
        // As the writer takes: up to a few lines' worth at a time.
        while reader.next_batch(&mut taken, 3 * LINE_COST, None) == Batch::Taken {
            received.extend(texts(std::mem::take(&mut taken)));
            if received.len() % 7 == 0 {
                thread::yield_now(); // a writer that is sometimes slow
            }
        }
        received
    });
    let mut tally = Tally::default();
    for n in 0..LINES {
        counted(
            &mut outbox,
            OutboundLine::verbatim(&format!("line {n}")),
            &mut tally,
        );
    }
    drop(outbox); // the manager lets go; the writer drains and stops
    let received = writer.join().expect("writer thread");
    let told = check_gapless(&received);
    assert_eq!(
        told, tally.dropped,
        "every dropped line told exactly once ({} delivered)",
        tally.delivered
    );
    assert_eq!(tally.delivered + tally.dropped, u64::from(LINES));
}

#[test]
fn delivering_to_a_full_backlog_never_waits() {
    // The manager must never wait for a client: every other client would
    // wait with it.
    let (mut outbox, reader) = outbox_for(1);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || {
        let mut tally = Tally::default();
        counted(&mut outbox, line(1), &mut tally);
        let _ = done_tx.send(counted(&mut outbox, line(2), &mut tally));
    });
    match done_rx.recv_timeout(Duration::from_secs(15)) {
        Ok(delivery) => assert_eq!(delivery, Delivery::Dropped),
        Err(_) => panic!(
            "deliver waited 15 s for room in a full backlog: the manager would wait \
             for the slowest client"
        ),
    }
    drop(reader);
}

#[test]
fn a_sleeping_writer_is_put_in_the_batch_once_however_many_lines_it_gets() {
    let (mut outbox, reader) = outbox_for(8);
    let (asleep_tx, asleep_rx) = crossbeam_channel::bounded(1);
    let writer = thread::spawn(move || {
        let mut taken = Vec::new();
        let _ = asleep_tx.send(());
        // Waits (asleep) until the batch below is done and woken.
        let found = reader.next_batch(&mut taken, usize::MAX, None);
        (found, texts(taken))
    });
    asleep_rx.recv().expect("the writer started");
    // The writer is asleep once the queue says so; until then a line may
    // simply be found by it on its way in.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !outbox.queue.state.lock().asleep {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never slept"
        );
        thread::yield_now(); // polling with a deadline, not synchronisation
    }
    let mut wakeups = Wakeups::default();
    for n in 1..=3 {
        assert_eq!(outbox.deliver(line(n), &mut wakeups), Delivery::Queued);
    }
    assert_eq!(wakeups.0.len(), 1, "one wake-up for the whole batch");
    wakeups.wake_all();
    let (found, got) = writer.join().expect("the writer thread");
    assert_eq!(found, Batch::Taken);
    assert_eq!(got, ["line 01", "line 02", "line 03"]);
}

#[test]
fn a_door_may_have_only_a_few_control_items_waiting() {
    let (_outbox, reader, control) = outbox(1024, Hangup::none(), NEVER);
    let pong = |n: u8| Control {
        bytes: vec![n],
        closes: false,
    };
    let sent: Vec<bool> = (0..6).map(|n| control.send(pong(n))).collect();
    assert_eq!(sent, [true, true, true, true, false, false]);
    let taken = reader.take_now();
    assert_eq!(taken.len(), 4, "{taken:?}");
    assert_eq!(taken[0], Outgoing::Control(pong(0)));
}

#[test]
fn a_writer_takes_at_most_its_batch_and_one_line_more() {
    // What a writer stuck in a write can hold is its batch: the bound it
    // asks for, passed by at most the last line taken (docs/RELIABILITY.md,
    // "Memory").
    let (mut outbox, reader) = outbox_for(10);
    let mut tally = Tally::default();
    for n in 0..10 {
        counted(&mut outbox, line(n), &mut tally);
    }
    let mut taken = Vec::new();
    let far = Some(Instant::now() + NEVER);
    assert_eq!(
        reader.next_batch(&mut taken, 3 * LINE_COST - 1, far),
        Batch::Taken
    );
    assert_eq!(texts(taken), ["line 00", "line 01", "line 02"]);
    assert_eq!(outbox.backlog_bytes(), 7 * LINE_COST);
}

#[test]
fn an_evicted_client_gets_its_notice_and_then_the_end() {
    let (mut outbox, reader) = outbox_for(10);
    let mut tally = Tally::default();
    for n in 0..5 {
        counted(&mut outbox, line(n), &mut tally);
    }
    let dropped = outbox.evict(OutboundLine::error("you were the furthest behind"));
    assert_eq!(dropped, 5);
    // The notice is counted while it waits, and taking it frees it (a
    // notice that cost nothing once made the writer's count wrap around).
    assert!(outbox.backlog_bytes() > 0);
    assert_eq!(drain(&reader), ["! you were the furthest behind"]);
    assert_eq!(outbox.backlog_bytes(), 0);
    let mut taken = Vec::new();
    let far = Some(Instant::now() + NEVER);
    assert_eq!(
        reader.next_batch(&mut taken, usize::MAX, far),
        Batch::Closed
    );
}
