//! The process's thread count follows the documented formula:
//! 3 server threads (acceptor, manager, monitor) + 2 per open connection.
//!
//! Alone in its own test binary, so no other test's server threads are
//! counted: cargo runs each file in `tests/` as a separate process.

mod common;

use common::{start_server, test_config, wait_until, Client};

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
