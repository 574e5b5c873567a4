//! The per-client backlog bound holds memory down even when every line
//! queued for a client is its own: whispers of nearly `--max-line` bytes,
//! each made for one recipient (and echoed, made again, to its sender),
//! sent by clients that never read. (Lines sent to a room, or the cached
//! `/users` reply, are one allocation however many queues hold them, so
//! they would not show a bound that counts the wrong thing.)
//!
//! Alone in its own test binary, so the process's memory is this test's.

mod common;

use std::time::Duration;

use common::{start_server, test_config, wait_until, Client};
use threadchat::Config;

/// Clients that never read, in a ring: each whispers to the next.
const STALLED: usize = 20;
/// Whispers each sends: each puts a line of about 950 bytes in the queue
/// of its target and one in its own (the echo), so about 7.6 MB for each
/// client, more than the kernel buffers for a socket nobody reads (about 4
/// MB on loopback here): the rest piles up in the server.
const WHISPERS: usize = 4000;
const TEXT: usize = 900;
/// Whispers sent at once, before waiting for them to be handled.
const CHUNK: usize = 200;
const MAX_BACKLOG: usize = 64 * 1024;
/// What the lines in a full backlog take in memory: about twice what they
/// are charged, as a line keeps what it says (for doors that spell it
/// their own way) beside its line-protocol spelling, which is what the
/// bound counts; and then what the allocator keeps around them.
const BACKLOG_MEMORY: usize = 3 * MAX_BACKLOG;
/// What a stalled client may hold in the server besides its backlog: the
/// writer's batch buffer (16 KiB and at most a line more; 64 KiB allowed)
/// and its line in the making.
const PER_CLIENT_EXTRA: usize = 64 * 1024 + 8 * 1024;
/// Allocator and bookkeeping noise, whatever the number of clients.
const SLACK: usize = 6 << 20;

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| {
            kb.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .expect("a VmRSS line")
}

#[test]
fn clients_sent_big_lines_of_their_own_that_never_read_hold_at_most_their_backlog() {
    if !common::process::has_linux_proc() {
        return;
    }
    let server = start_server(Config {
        max_backlog: MAX_BACKLOG,
        // Nobody is disconnected during the test: what is measured is what
        // stalled clients can make the server hold while they are there.
        write_timeout: Duration::from_secs(600),
        queue_full_timeout: Duration::from_secs(600),
        max_total_backlog: 1 << 30,
        announce_up_to: 0,
        ..test_config()
    });
    let addr = server.local_addr();
    let mut observer = Client::register(addr, "observer");
    let mut clients: Vec<Client> = (0..STALLED)
        .map(|n| Client::register(addr, &format!("stalled{n:02}")))
        .collect();

    // Made before the baseline, so that the test's own buffers do not
    // count as the server's.
    let text = "x".repeat(TEXT);
    let chunks: Vec<String> = (0..STALLED)
        .map(|n| format!("/w stalled{:02} {text}\n", (n + 1) % STALLED).repeat(CHUNK))
        .collect();
    let baseline = rss_bytes();
    for (n, client) in clients.iter_mut().enumerate() {
        for chunk in 0..WHISPERS / CHUNK {
            client.send_raw(chunks[n].as_bytes());
            // Events from one client are handled in order: once the
            // observer has this whisper, every whisper before it has been
            // handled. Waiting for it keeps few events in flight, so that
            // what grows is what the backlogs hold, not the events channel.
            client.send(&format!("/w observer done {n}.{chunk}"));
            let line = observer.line();
            assert!(
                line.ends_with(&format!("] done {n}.{chunk}")),
                "expected the done whisper {n}.{chunk}, got {line:?}"
            );
        }
    }
    let grown = rss_bytes().saturating_sub(baseline);
    let bound = STALLED * (BACKLOG_MEMORY + PER_CLIENT_EXTRA) + SLACK;
    let stats = server.stats();
    assert!(
        grown <= bound,
        "{STALLED} stalled clients grew the process by {grown} bytes, more than \
         {STALLED} x ({BACKLOG_MEMORY} for a {MAX_BACKLOG}-byte backlog + {PER_CLIENT_EXTRA}) \
         + {SLACK} = {bound}"
    );
    eprintln!("grown {grown} bytes, bound {bound}; {stats:?}");
    assert!(
        stats.lines_dropped > 0,
        "the backlogs should have filled and dropped whispers: {stats:?}"
    );

    // Still all there: bounded, not disconnected.
    wait_until(
        "every client still connected",
        || server.stats().connections_open,
        |&open| open == STALLED + 1,
    );
}
