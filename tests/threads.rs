//! The process's thread count follows the documented formula:
//! 3 server threads (acceptor, manager, monitor) + 2 per open connection,
//! whatever the door; the IRC door adds its acceptor.
//!
//! Alone in its own test binary, so no other test's server threads are
//! counted: cargo runs each file in `tests/` as a separate process. One
//! test, so that no other test's thread of this binary is counted either.

mod common;

use common::irc::IrcClient;
use common::{start_server, test_config, wait_until, Client};
use threadchat::Config;

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
}

fn line_clients_have_two_threads_each() {
    const CLIENTS: usize = 25;
    let baseline = thread_count();
    let server = start_server(test_config());
    let addr = server.local_addr();
    wait_until("3 server threads", thread_count, |&n| n == baseline + 3);

    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|n| Client::register(addr, &format!("t{n}")))
        .collect();
    let unnamed = {
        let mut client = Client::connect(addr, "unnamed");
        client.expect_greeting();
        client
    };
    let expected = baseline + 3 + 2 * (CLIENTS + 1);
    wait_until(
        &format!("{expected} threads with {} connections", CLIENTS + 1),
        thread_count,
        |&n| n == expected,
    );

    // Half leave with /quit, half just vanish.
    for (n, client) in clients.iter_mut().enumerate() {
        if n % 2 == 0 {
            client.send("/quit");
        }
    }
    drop(clients);
    drop(unnamed);
    wait_until(
        "back to 3 server threads after every client left",
        thread_count,
        |&n| n == baseline + 3,
    );
    assert_eq!(server.stats().connections_open, 0);
    assert!(
        server.online().is_empty(),
        "stale names: {:?}",
        server.online()
    );

    // Connected clients at shutdown are joined too.
    let _left_connected: Vec<Client> = (0..5)
        .map(|n| Client::register(addr, &format!("late{n}")))
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

/// With `--irc`, one more server thread (`irc-acceptor`), and two per IRC
/// client, registered or not, as for any client.
fn irc_clients_have_two_threads_each_too() {
    const CLIENTS: usize = 10;
    let baseline = thread_count();
    let server = start_server(Config {
        irc: Some("127.0.0.1:0".to_string()),
        ..test_config()
    });
    let irc = server.irc_addr().expect("the IRC door");
    wait_until(
        "4 server threads (the IRC door's acceptor too)",
        thread_count,
        |&n| n == baseline + 4,
    );
    let mut clients: Vec<IrcClient> = (0..CLIENTS)
        .map(|n| IrcClient::register(irc, &format!("i{n}")))
        .collect();
    let unregistered = IrcClient::connect(irc, "unregistered");
    let expected = baseline + 4 + 2 * (CLIENTS + 1);
    wait_until(
        &format!("{expected} threads with {} IRC connections", CLIENTS + 1),
        thread_count,
        |&n| n == expected,
    );
    for (n, client) in clients.iter_mut().enumerate() {
        if n % 2 == 0 {
            client.send("QUIT :bye");
        }
    }
    drop(clients);
    drop(unregistered);
    wait_until(
        "back to 4 server threads after every IRC client left",
        thread_count,
        |&n| n == baseline + 4,
    );
    assert!(
        server.online().is_empty(),
        "stale names: {:?}",
        server.online()
    );
    let _left_connected: Vec<IrcClient> = (0..3)
        .map(|n| IrcClient::register(irc, &format!("late{n}")))
        .collect();
    server.shutdown();
    wait_until(
        "the baseline thread count after shutdown()",
        thread_count,
        |&n| n == baseline,
    );
}
