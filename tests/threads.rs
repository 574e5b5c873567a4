//! The process's thread count follows the documented formula:
//! 3 server threads (acceptor, manager, monitor) + 2 per open connection,
//! whatever the door; the IRC door adds its acceptor, the web door its
//! acceptor and one thread per short request.
//!
//! Alone in its own test binary, so no other test's server threads are
//! counted: cargo runs each file in `tests/` as a separate process. One
//! test, so that no other test's thread of this binary is counted either.

mod common;

use common::curl::{curl_available, say, Watcher};
use common::irc::IrcClient;
use common::{start_server, test_config, wait_until, Client};
use threadchat::{Config, ServerHandle};

fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line in /proc/self/status")
}

#[test]
fn threads_are_three_plus_two_per_connection_and_none_leak() {
    if !common::process::has_linux_proc() {
        return;
    }
    line_clients_have_two_threads_each();
    irc_clients_have_two_threads_each_too();
    event_streams_have_two_threads_each_too();
}

/// One door, as the count sees it.
struct Door<C> {
    /// What its connections are called in a failure message.
    what: &'static str,
    config: Config,
    /// The server's own threads with this door on: 3, or 4 with its acceptor.
    server_threads: usize,
    /// Threads this test process spends on each open connection.
    ours_each: usize,
    /// Opens a connection and registers `name`.
    open: fn(&ServerHandle, &str) -> C,
    /// Opens a connection that never registers, if the door has them.
    open_unnamed: Option<fn(&ServerHandle) -> C>,
    /// Leaves politely (`/quit`, `QUIT`); the other half just vanish.
    quit: fn(&ServerHandle, &mut C),
}

/// Opens `count` connections (and one that never registers) and sees two
/// server threads each; half leave politely, half vanish, and every
/// thread ends; then a few left open are joined by `shutdown()`.
fn two_threads_per_connection<C>(door: Door<C>, count: usize) {
    let baseline = thread_count();
    let server = start_server(door.config);
    let ours = baseline + door.server_threads;
    wait_until(
        &format!("{} server threads", door.server_threads),
        thread_count,
        |&n| n == ours,
    );
    let mut named: Vec<C> = (0..count)
        .map(|n| (door.open)(&server, &format!("t{n}")))
        .collect();
    let unnamed: Vec<C> = door
        .open_unnamed
        .map(|open| open(&server))
        .into_iter()
        .collect();
    let open = count + unnamed.len();
    let expected = ours + (2 + door.ours_each) * open;
    wait_until(
        &format!("{expected} threads with {open} {}", door.what),
        thread_count,
        |&n| n == expected,
    );
    let vanishing: Vec<C> = (0..count / 2).filter_map(|_| named.pop()).collect();
    for connection in named.iter_mut() {
        (door.quit)(&server, connection);
    }
    drop(vanishing);
    drop(unnamed);
    wait_until(
        &format!(
            "back to {} server threads after every one left",
            door.server_threads
        ),
        thread_count,
        |&n| n == ours,
    );
    assert_eq!(server.stats().connections_open, 0, "{}", door.what);
    assert!(
        server.online().is_empty(),
        "stale names: {:?}",
        server.online()
    );
    drop(named);
    let _left_open: Vec<C> = (0..3)
        .map(|n| (door.open)(&server, &format!("late{n}")))
        .collect();
    server.shutdown();
    // shutdown() has joined every thread it started; a joined thread can
    // still be leaving the kernel for a moment, hence a wait, not an assert.
    wait_until(
        "the baseline thread count after shutdown()",
        thread_count,
        |&n| n == baseline,
    );
}

fn line_clients_have_two_threads_each() {
    two_threads_per_connection(
        Door {
            what: "connections",
            config: test_config(),
            server_threads: 3,
            ours_each: 0,
            open: |server, name| Client::register(server.local_addr(), name),
            open_unnamed: Some(|server| {
                let mut client = Client::connect(server.local_addr(), "unnamed");
                client.expect_greeting();
                client
            }),
            quit: |_, client| client.send("/quit"),
        },
        25,
    );
}

/// With `--irc`, one more server thread (`irc-acceptor`), and two per IRC
/// client, registered or not, as for any client.
fn irc_clients_have_two_threads_each_too() {
    two_threads_per_connection(
        Door {
            what: "IRC connections",
            config: Config {
                irc: Some("127.0.0.1:0".to_string()),
                ..test_config()
            },
            server_threads: 4,
            ours_each: 0,
            open: |server, nick| IrcClient::register(irc(server), nick),
            open_unnamed: Some(|server| IrcClient::connect(irc(server), "unregistered")),
            quit: |_, client| client.send("QUIT :bye"),
        },
        10,
    );
}

fn irc(server: &ServerHandle) -> std::net::SocketAddr {
    server.irc_addr().expect("the IRC door")
}

/// With `--http`, one more server thread (`http-acceptor`), and two per
/// event stream (`curl -N …/events`): its `http-N` thread becomes its
/// reader, and the reader starts a writer. A `/say` is a short `http-N`
/// thread that is gone once answered. In this process, two more per curl:
/// its stdout's and its stderr's readers (tests/common/process.rs), until
/// it exits.
fn event_streams_have_two_threads_each_too() {
    if !curl_available() {
        return;
    }
    two_threads_per_connection(
        Door {
            what: "event streams (and their curls' pipes)",
            config: Config {
                http: Some("127.0.0.1:0".to_string()),
                ..test_config()
            },
            server_threads: 4,
            ours_each: 2,
            open: |server, name| Watcher::watch(web(server), name, &[]),
            open_unnamed: None,
            quit: |server, stream| assert_eq!(say(web(server), &stream.token, "/quit").status, 204),
        },
        6,
    );
}

fn web(server: &ServerHandle) -> std::net::SocketAddr {
    server.web_addr().expect("the web door")
}
