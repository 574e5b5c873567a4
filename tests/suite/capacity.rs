//! Many clients at once, the client limit, and shutdown with clients connected.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use crate::common::process::{has_linux_proc, run, tool_available};
use crate::common::{
    register_all, start_server, test_config, wait_until, Client, NoLine, DEADLINE,
};
use threadchat::Config;

#[test]
fn two_hundred_clients_register_and_all_receive_one_broadcast() {
    const CLIENTS: usize = 200;
    let server = start_server(test_config());
    let addr = server.local_addr();
    // Connect everyone first, then register everyone: registrations overlap.
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|n| Client::connect(addr, &format!("c{n}")))
        .collect();
    for (n, client) in clients.iter_mut().enumerate() {
        client.send(&format!("c{n}"));
    }
    for (n, client) in clients.iter_mut().enumerate() {
        client.expect_greeting();
        client.expect_prefix(&format!("* welcome c{n}! you are in lobby;"));
    }
    wait_until(
        "all clients to be registered",
        || server.stats().online,
        |online| *online == CLIENTS,
    );

    clients[0].send("hello all");
    for client in clients.iter_mut().skip(1) {
        // Before it, only join announcements of later clients.
        for skipped in client.skip_until("[lobby] c0: hello all") {
            assert!(skipped.ends_with(" joined"), "unexpected line {skipped:?}");
        }
    }
    assert_eq!(server.stats().lines_dropped, 0);
}

#[test]
fn a_full_server_refuses_newcomers_and_keeps_serving_the_others() {
    let server = start_server(Config {
        max_clients: 2,
        ..test_config()
    });
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);

    let mut third = Client::connect(addr, "third");
    third.expect("! server full, try again later");
    third.expect_closed();
    assert_eq!(server.stats().connections_refused, 1);

    alice.send("still here");
    bob.expect("[lobby] alice: still here");

    // A place frees up when someone leaves.
    bob.send("/quit");
    bob.expect("* bye bob");
    alice.expect("* bob left");
    wait_until(
        "the connection count to drop to 1",
        || server.stats().connections_open,
        |open| *open == 1,
    );
    let _carol = Client::register(addr, "carol");
    alice.expect("* carol joined");
}

#[test]
fn a_burst_of_connections_never_passes_the_limit() {
    const LIMIT: usize = 20;
    let server = start_server(Config {
        max_clients: LIMIT,
        ..test_config()
    });
    let addr = server.local_addr();
    let mut clients: Vec<Client> = (0..3 * LIMIT)
        .map(|n| Client::connect(addr, &format!("burst{n}")))
        .collect();
    let mut admitted = 0;
    let mut refused = 0;
    for client in &mut clients {
        match client.line().as_str() {
            "* welcome to threadchat" => admitted += 1,
            "! server full, try again later" => refused += 1,
            other => panic!("unexpected first line {other:?}"),
        }
    }
    assert_eq!((admitted, refused), (LIMIT, 2 * LIMIT));
    assert_eq!(server.stats().connections_open, LIMIT);
}

#[test]
fn shutdown_tells_every_client_and_closes_them() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);
    let mut unnamed = Client::connect(addr, "unnamed");
    unnamed.expect_greeting();

    server.shutdown();
    for client in [&mut alice, &mut bob, &mut unnamed] {
        client.expect("* server shutting down");
        client.expect_closed();
    }
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "the listener should be closed after shutdown"
    );
}

#[test]
fn shutdown_does_not_wait_forever_for_a_client_that_never_reads() {
    let server = start_server(Config {
        shutdown_grace: Duration::from_millis(500),
        max_backlog: 64 << 20,
        ..test_config()
    });
    let addr = server.local_addr();
    let [mut sender, mut stuck] = register_all(addr, ["sender", "stuck"]);
    // Fill stuck's socket buffers and queue: it never reads.
    let line = format!("{}\n", "x".repeat(900));
    for _ in 0..4000 {
        sender.send_raw(line.as_bytes());
    }
    sender.send("/users");
    sender.expect("* online (2): sender, stuck");

    // Returns (the test would hang otherwise) once the grace period is over
    // and the stuck socket has been closed.
    server.shutdown();
    let mut closed = false;
    for _ in 0..10_000 {
        match stuck.try_line(DEADLINE) {
            Ok(_) => continue,
            Err(NoLine::Closed) | Err(NoLine::Failed(_)) => {
                closed = true;
                break;
            }
            Err(NoLine::TimedOut) => break,
        }
    }
    assert!(
        closed,
        "the stuck client's connection should have been closed"
    );
}

#[test]
fn a_client_that_stops_reading_loses_lines_alone_and_is_told_how_many() {
    let server = start_server(Config {
        max_backlog: 200 * 1024,
        // Long enough that the stuck client is not disconnected mid-test.
        write_timeout: Duration::from_secs(120),
        ..test_config()
    });
    let addr = server.local_addr();
    let [mut reader, mut stuck, mut sender] = register_all(addr, ["reader", "stuck", "sender"]);

    // Flood in batches of 50 that `reader` reads in full before the next
    // batch, so its queue never holds more than 50 lines, until `stuck`
    // (which reads nothing) has filled its socket buffers and its queue.
    let padding = "x".repeat(1000);
    let mut sent = 0;
    while server.stats().lines_dropped == 0 {
        assert!(sent < 50_000, "no line dropped after {sent} lines");
        for n in sent..sent + 50 {
            sender.send(&format!("{n} {padding}"));
        }
        for n in sent..sent + 50 {
            reader.expect(&format!("[lobby] sender: {n} {padding}"));
        }
        sent += 50;
    }

    // Now `stuck` reads again. Probes go out until one arrives after the
    // drop notice; a probe sent while the queue was still full is dropped
    // too, and must be counted in the notice.
    let mut received = 0u64;
    let mut told: Option<u64> = None;
    for probe in 0..1000 {
        sender.send(&format!("probe {probe}"));
        sent += 1;
        let expected = format!("[lobby] sender: probe {probe}");
        let arrived = loop {
            match stuck.try_line(Duration::from_millis(300)) {
                Ok(line) if line.starts_with("! ") => {
                    let count = line
                        .strip_prefix("! ")
                        .and_then(|rest| {
                            rest.strip_suffix(
                                " lines were dropped because your connection is too slow",
                            )
                        })
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("unexpected error line {line:?}"));
                    assert!(told.is_none(), "told twice: {line:?}");
                    told = Some(count);
                }
                Ok(line) if line.starts_with("[lobby] sender: ") => {
                    received += 1;
                    if line == expected {
                        break true;
                    }
                }
                Ok(line) => panic!("unexpected line for stuck: {line:?}"),
                // This probe was dropped (counted in the notice): send another.
                Err(NoLine::TimedOut) => break false,
                Err(other) => panic!("stuck lost its connection: {other:?}"),
            }
        };
        if arrived && told.is_some() {
            break;
        }
    }
    let told = told.expect("stuck should have been told about the dropped lines");
    assert_eq!(
        received + told,
        sent as u64,
        "received {received} + told {told} != sent {sent}"
    );
    assert_eq!(server.stats().lines_dropped, told, "only stuck lost lines");
}

#[test]
fn shutdown_finishes_while_connections_keep_arriving() {
    let server = start_server(Config {
        shutdown_grace: Duration::from_millis(500),
        ..test_config()
    });
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    // Clients keep connecting and registering, up to a bound, until told to stop.
    let arrivals = thread::spawn({
        let stop = stop.clone();
        move || {
            let mut clients = Vec::new();
            while !stop.load(Ordering::SeqCst) && clients.len() < 2000 {
                let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                else {
                    break; // the listener has closed
                };
                let _ = stream.write_all(format!("n{}\n", clients.len()).as_bytes());
                clients.push(stream);
            }
            clients.len()
        }
    });
    wait_until(
        "connections to be arriving",
        || server.stats().connections_accepted,
        |accepted| *accepted >= 50,
    );
    // Events of the newest connections are still on their way to the
    // manager as it stops: shutdown must still finish.
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        server.shutdown();
        let _ = done.send(());
    });
    let outcome = finished.recv_timeout(DEADLINE);
    stop.store(true, Ordering::SeqCst);
    let connected = arrivals.join().expect("the connecting thread");
    assert!(
        outcome.is_ok(),
        "shutdown did not return within {:?} while clients kept connecting ({connected} connected)",
        DEADLINE
    );
}

/// The chat port listens with a backlog of `SOMAXCONN` (as far as
/// `net.core.somaxconn` allows), not std's 128, so that a storm of
/// connections queues in the kernel instead of waiting out SYN
/// retransmissions. `ss` reports a listening socket's backlog as Send-Q.
#[test]
fn the_chat_port_queues_a_storm_of_connections() {
    if !has_linux_proc() {
        return;
    }
    if !tool_available("ss", "-V", "iproute2") {
        return;
    }
    let server = start_server(test_config());
    let port = server.local_addr().port();
    let ss = run(Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]));
    assert!(ss.status.success(), "ss failed: {ss:?}");
    let listing = ss.stdout;
    // State, Recv-Q, Send-Q (the backlog), local address, peer address.
    let backlog: Option<u32> = listing
        .split_whitespace()
        .nth(2)
        .and_then(|field| field.parse().ok());
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(4096);
    let expected = somaxconn.min(4096);
    assert_eq!(
        backlog,
        Some(expected),
        "expected a backlog of {expected} on port {port} (std's is 128); ss said {listing:?}"
    );
    server.shutdown();
}
