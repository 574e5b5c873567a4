//! The per-client backlog bound holds memory down even when the lines queued
//! for clients are big and theirs alone: `/users` replies of O(clients)
//! bytes, asked for again and again by clients that never read.
//!
//! Alone in its own test binary, so the process's memory is this test's.

mod common;

use std::time::Duration;

use common::{start_server, test_config, wait_until, Client};
use threadchat::Config;

const REGISTERED: usize = 200;
const STALLED: usize = 20;
/// Each stalled client asks for this many `/users` replies (about 5 KB
/// each): more than the kernel buffers for a socket nobody reads (about
/// 4 MB on loopback here), so the rest piles up in the server.
const ASKS: usize = 1200;
const MAX_BACKLOG: usize = 64 * 1024;
/// What a stalled client may hold in the server besides its backlog: the
/// writer's batch buffer (at most 64 KiB) and its line in the making.
const PER_CLIENT_EXTRA: usize = 64 * 1024 + 8 * 1024;
/// Allocator and bookkeeping noise, whatever the number of clients.
const SLACK: usize = 4 << 20;

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
fn clients_that_ask_for_big_replies_and_never_read_hold_at_most_their_backlog() {
    if !common::process::has_linux_proc() {
        return;
    }
    let server = start_server(Config {
        max_backlog: MAX_BACKLOG,
        // Nobody is disconnected during the test: what is measured is what
        // stalled clients can make the server hold while they are there.
        write_timeout: Duration::from_secs(600),
        queue_full_timeout: Duration::from_secs(600),
        announce_up_to: 0,
        ..test_config()
    });
    let addr = server.local_addr();
    // Long names make `/users` long: about 26 bytes a name.
    let mut observer = Client::register(addr, "observer");
    let mut clients: Vec<Client> = (1..REGISTERED)
        .map(|n| Client::register(addr, &format!("client-with-long-name{n:03}")))
        .collect();
    observer.send("/users");
    let users = observer.line();
    assert!(
        users.len() > 4000,
        "a /users reply of {} bytes",
        users.len()
    );

    let baseline = rss_bytes();
    let asks: String = "/users\n".repeat(ASKS);
    for (n, client) in clients.iter_mut().take(STALLED).enumerate() {
        client.send_raw(asks.as_bytes());
        // Events from one client are handled in order: once the observer
        // has this whisper, every `/users` before it has been answered.
        client.send(&format!("/w observer done {n}"));
    }
    for _ in 0..STALLED {
        let line = observer.line();
        assert!(
            line.contains("] done "),
            "expected a done whisper, got {line:?}"
        );
    }
    let grown = rss_bytes().saturating_sub(baseline);
    let bound = STALLED * (MAX_BACKLOG + PER_CLIENT_EXTRA) + SLACK;
    let stats = server.stats();
    assert!(
        grown <= bound,
        "{STALLED} stalled clients grew the process by {grown} bytes, more than \
         {STALLED} x ({MAX_BACKLOG} backlog + {PER_CLIENT_EXTRA}) + {SLACK} = {bound}"
    );
    eprintln!("grown {grown} bytes, bound {bound}; {stats:?}");
    assert!(
        stats.lines_dropped > 0,
        "the backlogs should have filled and dropped replies: {stats:?}"
    );

    // Still all there: bounded, not disconnected.
    wait_until(
        "every client still connected",
        || server.stats().connections_open,
        |&open| open == REGISTERED,
    );
}
