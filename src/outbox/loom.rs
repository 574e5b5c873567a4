//! Model tests of the hand-over between the manager and a writer, in the
//! style of tokio's loom tests. loom runs each test body many times, once
//! for every interleaving of the threads it can find (up to
//! `LOOM_MAX_PREEMPTIONS` forced switches), and fails on a deadlock (every
//! thread waiting: a lost wake-up) or a failed assertion.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=4 \
//!     cargo test --release --lib outbox::loom
//! ```
//!
//! Each test plays the three threads with the real `Outbox`, `OutboxReader`
//! and `ControlSender`: the manager (the test's own thread), the client's
//! writer, and where it matters the client's reader sending control bytes.
//!
//! Each test fails on a deliberately broken hand-over (checked when they
//! were written, with the bound at 3): an `if` in place of the writer's
//! `while` fails an assertion (the writer takes from an empty queue after a
//! spurious or stolen wake-up); a wake-up before the line is queued, or a
//! close that does not wake, is reported by loom as a deadlock (the writer
//! sleeps for ever); a drop that forgets its gap marker fails the notice
//! test; a byte check that leaves out the new line's cost fails the bound.

use std::time::Duration;

use ::loom::thread;

use super::*;

const NEVER: Duration = Duration::from_secs(3600);

fn line(text: &str) -> OutboundLine {
    OutboundLine::verbatim(text)
}

/// One event's worth of manager work: deliver, then wake whoever slept.
fn deliver(outbox: &mut Outbox, text: &str) -> Delivery {
    let mut wakeups = Wakeups::default();
    let delivery = outbox.deliver(line(text), &mut wakeups);
    wakeups.wake_all();
    delivery
}

/// The writer's loop, as `writer.rs` runs it: wait, take, and again, until
/// the queue is closed or `enough` says to stop. Returns what it took, as
/// text, control items as `control`.
fn writer(reader: OutboxReader, enough: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut received = Vec::new();
    let mut taken = Vec::new();
    while !enough(&received) {
        if reader.next_batch(&mut taken, 2 * LINE, None) == Batch::Closed {
            break;
        }
        for outgoing in taken.drain(..) {
            received.push(match outgoing {
                Outgoing::Line(line) | Outgoing::DropNotice(line) => line.text().to_string(),
                Outgoing::Control(_) => "control".to_string(),
            });
        }
    }
    received
}

/// What one of the test lines costs: "lineN", a newline, and its slot.
const LINE: usize = 6 + SLOT_BYTES;

#[test]
fn a_line_queued_as_the_writer_goes_to_sleep_always_wakes_it() {
    ::loom::model(|| {
        let (mut outbox, reader, control) = outbox(64 * LINE, Hangup::none(), NEVER);
        // The writer stops once it has both lines and the control bytes,
        // before the queue closes: closing would wake it anyway, and hide
        // a wake-up lost for a line.
        let writer = thread::spawn(move || writer(reader, |got| got.len() == 3));
        // The reader's door sends a pong meanwhile: a second waker, whose
        // wake-up may come when the writer has already taken everything.
        let door = thread::spawn(move || {
            control.send(Control {
                bytes: b"pong".to_vec(),
                closes: false,
            })
        });
        deliver(&mut outbox, "line1");
        deliver(&mut outbox, "line2");
        assert!(
            door.join().expect("the door thread"),
            "room for one control"
        );
        let got = writer.join().expect("the writer thread");
        let lines: Vec<&String> = got.iter().filter(|text| text.starts_with("line")).collect();
        assert_eq!(lines, ["line1", "line2"], "both lines, in order: {got:?}");
        drop(outbox);
    });
}

#[test]
fn a_line_after_a_gap_always_has_its_notice_in_front_of_it() {
    ::loom::model(|| {
        // Room for one line: what the writer has not taken yet is dropped.
        let (mut outbox, reader, _control) = outbox(LINE, Hangup::none(), NEVER);
        let writer = thread::spawn(move || writer(reader, |_| false));
        let mut dropped = 0;
        for n in 1..=4 {
            if deliver(&mut outbox, &format!("line{n}")) != Delivery::Queued {
                dropped += 1;
            }
        }
        drop(outbox);
        let got = writer.join().expect("the writer thread");
        let mut told = 0;
        let mut next = 1;
        for text in &got {
            if let Some(rest) = text.strip_prefix("! ") {
                let count: u64 = rest
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a count");
                told += count;
                next += count;
                continue;
            }
            assert_eq!(
                text,
                &format!("line{next}"),
                "a line where line{next} was due: {got:?}"
            );
            next += 1;
        }
        assert_eq!(told, dropped, "every drop told once: {got:?}");
    });
}

#[test]
fn closing_the_queue_while_the_writer_sleeps_wakes_it_and_ends_it() {
    ::loom::model(|| {
        let (outbox, reader, _control) = outbox(64 * LINE, Hangup::none(), NEVER);
        let writer = thread::spawn(move || writer(reader, |_| false));
        drop(outbox);
        let got = writer
            .join()
            .expect("the writer ends once the queue is closed");
        assert!(got.is_empty(), "{got:?}");
    });
}

#[test]
fn the_byte_bound_holds_under_any_interleaving() {
    ::loom::model(|| {
        let max = 2 * LINE;
        let (mut outbox, reader, _control) = outbox(max, Hangup::none(), NEVER);
        let writer = thread::spawn(move || writer(reader, |_| false));
        let mut queued = 0;
        for n in 1..=4 {
            if deliver(&mut outbox, &format!("line{n}")) == Delivery::Queued {
                queued += 1;
            }
            let backlog = outbox.backlog_bytes();
            assert!(backlog <= max, "backlog {backlog} over the bound {max}");
        }
        drop(outbox);
        let got = writer.join().expect("the writer thread");
        let lines = got.iter().filter(|text| text.starts_with("line")).count();
        assert_eq!(lines, queued, "every line queued is written: {got:?}");
    });
}
