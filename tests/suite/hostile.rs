//! Clients that send bad input or misbehave, over real sockets. Each test
//! checks the answer the bad client gets, and that two well-behaved clients
//! in the same room go on chatting, in order, as if nothing happened.
//! (Memory and thread bounds under abuse are measured on the real binary, in
//! tests/suite/overload.rs.)

use std::time::Duration;

use crate::common::process::has_linux_proc;
use crate::common::{register_all, start_server, test_config, wait_until, Client, NoLine};
use threadchat::Config;
use threadchat::RateLimit;

/// alice and bob still talk both ways, and nothing else is waiting for
/// either of them: the line sent is the very next line received.
fn still_chatting(alice: &mut Client, bob: &mut Client, tag: &str) {
    alice.send(&format!("alice still here {tag}"));
    bob.expect(&format!("[lobby] alice: alice still here {tag}"));
    bob.send(&format!("bob still here {tag}"));
    alice.expect(&format!("[lobby] bob: bob still here {tag}"));
}

/// The next line for `client` must be the `! ` line `expected`.
fn expect_error(client: &mut Client, expected: &str) {
    client.expect(&format!("! {expected}"));
}

#[test]
fn a_too_long_line_is_refused_and_the_connection_stays_usable() {
    let server = start_server(Config {
        max_line: 100,
        ..test_config()
    });
    let [mut alice, mut bob, mut mallory] =
        register_all(server.local_addr(), ["alice", "bob", "mallory"]);

    mallory.send(&"x".repeat(101));
    expect_error(&mut mallory, "line too long (max 100 bytes)");
    // Exactly the limit is fine, and \r\n does not count the \r.
    let longest = "y".repeat(100);
    mallory.send_raw(format!("{longest}\r\n").as_bytes());
    alice.expect(&format!("[lobby] mallory: {longest}"));
    bob.expect(&format!("[lobby] mallory: {longest}"));

    // Two megabytes with no newline, sent in pieces: one refusal, then the
    // next line is read normally.
    let chunk = vec![b'z'; 64 * 1024];
    for _ in 0..32 {
        mallory.send_raw(&chunk);
    }
    mallory.send_raw(b"\nafter the long one\n");
    expect_error(&mut mallory, "line too long (max 100 bytes)");
    alice.expect("[lobby] mallory: after the long one");
    bob.expect("[lobby] mallory: after the long one");
    still_chatting(&mut alice, &mut bob, "after long lines");
}

#[test]
fn invalid_utf8_and_telnet_negotiation_are_refused() {
    let server = start_server(test_config());
    let [mut alice, mut bob] = register_all(server.local_addr(), ["alice", "bob"]);
    // IAC WILL ECHO, as telnet sends on connecting, then text.
    alice.send_raw(b"\xff\xfb\x01hello\n");
    expect_error(&mut alice, "line is not valid UTF-8");
    alice.send_raw(b"caf\xe9\n"); // Latin-1, not UTF-8
    expect_error(&mut alice, "line is not valid UTF-8");
    // Before registration too: a bad byte in the name line.
    let mut eve = Client::connect(server.local_addr(), "eve");
    eve.expect_greeting();
    eve.send_raw(b"ev\xffe\n");
    expect_error(&mut eve, "line is not valid UTF-8");
    still_chatting(&mut alice, &mut bob, "after bad bytes");
}

#[test]
fn control_characters_never_reach_anyone() {
    let server = start_server(test_config());
    let [mut alice, mut bob] = register_all(server.local_addr(), ["alice", "bob"]);
    let refused = |code: &str| format!("line not sent: it contains the control character {code}");

    for (line, code) in [
        ("\u{1b}[2Jscreen cleared", "U+001B"),
        ("bell\u{7}", "U+0007"),
        ("/me \u{1b}]0;new title\u{7}", "U+001B"),
        ("/w bob \u{1b}[31mred", "U+001B"),
        ("/nick ev\u{1b}il", "U+001B"),
        ("/join ro\u{0}om", "U+0000"),
        ("del\u{7f}", "U+007F"),
        ("c1 \u{9b}2J", "U+009B"),
    ] {
        alice.send(line);
        expect_error(&mut alice, &refused(code));
    }
    // A name with an escape in it, before registration.
    let mut eve = Client::connect(server.local_addr(), "eve");
    eve.expect_greeting();
    eve.send("e\u{1b}[1mve");
    expect_error(&mut eve, &refused("U+001B"));
    // Tab is allowed.
    alice.send("a\ttab");
    bob.expect("[lobby] alice: a\ttab");
    still_chatting(&mut alice, &mut bob, "after escapes");
}

#[test]
fn a_connection_that_never_chooses_a_name_is_told_and_closed() {
    let server = start_server(Config {
        name_timeout: Duration::from_secs(1),
        ..test_config()
    });
    let mut shy = Client::connect(server.local_addr(), "shy");
    shy.expect_greeting();
    let [mut alice, mut bob] = register_all(server.local_addr(), ["alice", "bob"]);
    // Dribbling a name one byte at a time does not push the deadline back.
    let outcome = loop {
        shy.send_raw(b"a");
        match shy.try_line(Duration::from_millis(200)) {
            Err(NoLine::TimedOut) => continue,
            other => break other,
        }
    };
    assert_eq!(
        outcome,
        Ok("! no name chosen within 1 s; disconnecting".to_string()),
        "shy: expected the name timeout"
    );
    shy.expect_closed();
    still_chatting(&mut alice, &mut bob, "after the timeout");
}

#[test]
fn a_silent_client_is_disconnected_after_the_idle_timeout() {
    let server = start_server(Config {
        idle_timeout: Some(Duration::from_secs(1)),
        ..test_config()
    });
    let [mut alice, mut bob, mut sleepy] =
        register_all(server.local_addr(), ["alice", "bob", "sleepy"]);
    // In a room of its own, so that the only line it can get is the answer.
    sleepy.send("/join dreams");
    sleepy.expect("* you joined #dreams; 1 here");
    alice.expect("* sleepy left");
    bob.expect("* sleepy left");
    // alice and bob keep talking (so they are not idle) until sleepy, who
    // says nothing more, is disconnected.
    let mut round = 0;
    let told = loop {
        round += 1;
        assert!(round < 100_000, "sleepy was never disconnected");
        still_chatting(&mut alice, &mut bob, &round.to_string());
        match sleepy.try_line(Duration::from_millis(10)) {
            Err(NoLine::TimedOut) => continue,
            other => break other,
        }
    };
    assert_eq!(told, Ok("! idle for 1 s; disconnecting".to_string()));
    sleepy.expect_closed();
    wait_until(
        "sleepy to be gone",
        || server.online(),
        |online| online.len() == 2,
    );
    still_chatting(&mut alice, &mut bob, "after the idle one left");
}

#[test]
fn a_flood_is_slowed_down_then_disconnected() {
    // Five lines per hour: nothing comes back during the test, so every
    // count below is exact.
    let limit = RateLimit {
        lines: 5,
        per: Duration::from_secs(3600),
    };
    let server = start_server(Config {
        rate_limit: Some(limit),
        ..test_config()
    });
    let addr = server.local_addr();
    let [mut alice, mut bob, mut mallory] = register_all(addr, ["alice", "bob", "mallory"]);

    // Its name was line 1; four more get through.
    for n in 1..=4 {
        mallory.send(&format!("flood {n}"));
        alice.expect(&format!("[lobby] mallory: flood {n}"));
    }
    // Then 25 (5 x the limit) refused, each told...
    for n in 5..30 {
        mallory.send(&format!("flood {n}"));
        expect_error(&mut mallory, "slow down: at most 5 lines per 3600 s");
    }
    // ...and one more is one too many.
    mallory.send("flood 30");
    expect_error(
        &mut mallory,
        "disconnected for flooding: more than 25 lines over the rate limit",
    );
    mallory.expect_closed();
    // alice saw none of the refused lines: the next thing is mallory leaving.
    alice.expect("* mallory left");
    bob.skip_until("[lobby] mallory: flood 4");
    bob.expect("* mallory left");
    // alice and bob have used 2 of their 5 lines (name, one line) by the end.
    still_chatting(&mut alice, &mut bob, "after the flood");
}

#[test]
fn a_client_whose_queue_stays_full_is_disconnected_and_the_room_is_unaffected() {
    // The writer's own timeout is long, so what disconnects the client is
    // its queue staying full.
    reads_nothing(Duration::from_secs(1), Duration::from_secs(600));
}

#[test]
fn a_client_whose_writes_block_is_disconnected_and_the_room_is_unaffected() {
    // The queue bound is long, so what disconnects the client is its
    // writer's write timing out.
    reads_nothing(Duration::from_secs(600), Duration::from_secs(1));
}

/// A client that reads nothing, in a room where alice talks and bob reads
/// every line: it is disconnected, and bob gets every line, in order.
fn reads_nothing(queue_full_timeout: Duration, write_timeout: Duration) {
    let server = start_server(Config {
        max_backlog: 64 * 1024,
        queue_full_timeout,
        write_timeout,
        ..test_config()
    });
    let addr = server.local_addr();
    let [mut alice, mut bob, mut stuck] = register_all(addr, ["alice", "bob", "stuck"]);
    // Half a line, never finished: when the server hangs up, it must be
    // discarded, not posted (bob would see it among alice's lines below).
    stuck.send_raw(b"half a line");

    // alice talks in batches, bob reads every line in order, stuck reads
    // nothing. Long lines fill stuck's socket buffers (about 4 MB on
    // loopback) quickly; batches keep that quick on a loaded machine, where
    // a round trip per line would not be. Bounded by what is sent, not by
    // time: each of bob's reads has its own deadline.
    // A batch (about 20 KB) must fit bob's backlog with room to spare, or
    // bob, who reads, would lose lines to a burst too.
    const BATCH: usize = 20;
    const MOST_BYTES: usize = 64 << 20;
    let padding = "p".repeat(1000);
    let mut stuck_left = false;
    let mut next = 1;
    while !stuck_left && next * padding.len() < MOST_BYTES {
        let batch = next..next + BATCH;
        for n in batch.clone() {
            alice.send(&format!("{n} {padding}"));
        }
        for n in batch {
            let mut line = bob.line();
            if line == "* stuck left" {
                stuck_left = true;
                line = bob.line();
            }
            let expected = format!("[lobby] alice: {n} {padding}");
            assert!(
                line == expected,
                "bob: expected line {n} next, got {line:?}"
            );
        }
        next += BATCH;
    }
    assert!(
        stuck_left,
        "stuck was still connected after alice sent {} MB",
        (next * padding.len()) >> 20
    );
    assert!(!server.online().contains(&"stuck".to_string()));
    alice.expect("* stuck left");
    still_chatting(&mut alice, &mut bob, "after the stuck one");
    assert!(
        server.stats().lines_dropped > 0,
        "stuck should have lost lines"
    );
}

#[test]
fn clients_vanishing_mid_line_or_mid_registration_leave_no_trace() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);

    // Gone during registration: each sends half a name and closes without
    // reading the greeting. Unread data makes the close a reset; depending on
    // when the reset lands, the server sees an error, or the half name and
    // an end of file (then the half name counts as a last line, and that
    // ghost joins and leaves at once). Either way, no trace may remain.
    for n in 0..20 {
        let mut ghost = Client::connect(addr, "ghost");
        ghost.send_raw(format!("ghost{n}").as_bytes());
        ghost.wait_for_unread_data();
        drop(ghost);
    }
    // Registered, then gone mid-line with unread lines pending.
    let mut half = Client::register(addr, "half");
    alice.skip_until("* half joined");
    bob.skip_until("* half joined");
    bob.send("something half never reads");
    half.send_raw(b"this line never ends");
    half.wait_for_unread_data();
    drop(half);

    // Every reader has ended (so every name claim was made), then every name
    // was released (so every notice was queued).
    wait_until(
        "only alice and bob to be connected and named",
        || {
            let open = server.stats().connections_open;
            (open, server.online())
        },
        |(open, online)| *open == 2 && online.len() == 2,
    );
    for client in [&mut alice, &mut bob] {
        client.send("/who");
        client.skip_until("* in #lobby (2): alice, bob");
    }
    // Names are free again, and the room works as before.
    let _again = Client::register(addr, "half");
    alice.expect("* half joined");
    bob.expect("* half joined");
    still_chatting(&mut alice, &mut bob, "after the ghosts");
}

#[test]
fn when_threads_cannot_be_started_the_newcomer_is_told_and_the_server_goes_on() {
    // A stack no machine can give: every spawn of a client thread fails, as
    // it would when the machine is out of threads or memory.
    let server = start_server(Config {
        client_stack_bytes: 1 << 46,
        ..test_config()
    });
    for n in 0..3 {
        let mut turned_away = Client::connect(server.local_addr(), &format!("newcomer {n}"));
        turned_away.expect("! server busy, try again later");
        turned_away.expect_closed();
    }
    // Counted by the acceptor just after it closed the connection.
    wait_until(
        "every turned-away connection counted as refused, none as open",
        || server.stats(),
        |stats| (stats.connections_open, stats.connections_refused) == (0, 3),
    );
    // Shutting down still joins everything: a leaked thread would hang here.
    server.shutdown();
}

#[test]
fn a_browser_or_tls_client_on_the_chat_port_gets_one_line_and_is_closed() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);

    let mut browser = Client::connect(addr, "browser");
    browser.send_raw(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:7878\r\nUser-Agent: test\r\n\r\n");
    browser.expect_greeting();
    browser.expect(
        "! this is a threadchat chat server, not a web server: \
         connect with nc HOST PORT or threadchat-client",
    );
    browser.expect_closed();

    // The start of a TLS ClientHello: a handshake record, version 3.1.
    let mut tls = Client::connect(addr, "tls");
    tls.send_raw(&[
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ]);
    tls.expect_greeting();
    tls.expect(
        "! this is a plain-text threadchat chat server, not TLS: \
         connect with nc HOST PORT or threadchat-client",
    );
    tls.expect_closed();

    // Only the first line is checked: a name is never a request line, and
    // a registered client may say one.
    alice.send("GET / HTTP/1.1");
    bob.expect("[lobby] alice: GET / HTTP/1.1");
    still_chatting(&mut alice, &mut bob, "after the browser and the TLS client");
    wait_until(
        "both strays gone",
        || server.stats().connections_open,
        |&open| open == 2,
    );
}

#[test]
fn one_address_cannot_take_more_than_max_per_addr_connections() {
    let server = start_server(Config {
        max_per_addr: 3,
        ..test_config()
    });
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);
    let mut third = Client::connect(addr, "third");
    third.expect_greeting();
    let mut fourth = Client::connect(addr, "fourth");
    fourth.expect("! too many connections from your address");
    fourth.expect_closed();
    still_chatting(&mut alice, &mut bob, "with the address at its cap");
    wait_until(
        "the refusal counted",
        || server.stats().connections_refused,
        |&refused| refused == 1,
    );

    // One leaves; once the acceptor has seen it go, there is room again.
    drop(third);
    wait_until(
        "the third connection closed",
        || server.stats().connections_open,
        |&open| open == 2,
    );
    // The acceptor lowers an address's count when the reader tells it it
    // is done, which comes a moment after the connection count drops; a
    // refused attempt in that moment is fine, a lasting refusal is not.
    let mut tries = 0;
    let mut again = loop {
        let mut client = Client::connect(addr, "again");
        let first = client.line();
        if first == "* welcome to threadchat" {
            break client;
        }
        assert_eq!(first, "! too many connections from your address");
        tries += 1;
        assert!(tries < 100, "still refused after {tries} tries");
    };
    again.expect("* choose a name (1-24 letters, digits, - or _):");
}

/// The kernel's timer on the server's end of a connection, from
/// /proc/net/tcp: `(kind, clock ticks left)`; kind 2 is keepalive.
fn server_side_timer(server_port: u16, client_port: u16) -> Option<(u32, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|row| {
        let fields: Vec<&str> = row.split_whitespace().collect();
        let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
        if port(fields[1])? != server_port || port(fields[2])? != client_port {
            return None;
        }
        let (kind, left) = fields[5].split_once(':')?;
        Some((kind.parse().ok()?, u64::from_str_radix(left, 16).ok()?))
    })
}

#[test]
fn connections_are_watched_by_tcp_keepalive() {
    if !has_linux_proc() {
        return;
    }
    // A peer that vanishes without closing sends nothing more, not even a
    // reset; only keepalive probes find it gone. Loopback cannot lose a
    // peer, so this checks what the kernel says it is doing: the server's
    // end of an idle connection has its keepalive timer armed, set to go
    // off within 60 s (docs/PROTOCOL.md: gone within two minutes).
    let server = start_server(test_config());
    let alice = Client::register(server.local_addr(), "alice");
    let (server_port, client_port) = (server.local_addr().port(), alice.local_addr().port());
    // Once everything sent has been acknowledged (timer 1, retransmit, is
    // gone), the idle connection's timer is keepalive (2); without
    // keepalive it would have none (0).
    let (_, ticks_left) = wait_until(
        "the keepalive timer (kind 2) on the server's end of alice's connection",
        || server_side_timer(server_port, client_port),
        |timer| matches!(timer, Some((2, _))),
    )
    .expect("found");
    // Clock ticks are 1/100 s on Linux.
    assert!(
        ticks_left <= 60 * 100,
        "keepalive due in {ticks_left} ticks, over 60 s"
    );
}

#[test]
fn browsers_are_watched_by_tcp_keepalive_too() {
    if !has_linux_proc() {
        return;
    }
    // The same check for a WebSocket client, whose socket the web door
    // accepted: a vanished browser must not keep its threads and its name.
    let server = start_server(Config {
        http: Some("127.0.0.1:0".to_string()),
        ..test_config()
    });
    let web = server.web_addr().expect("the web door is on");
    let alice = crate::common::ws::WsClient::register(web, "alice");
    let (_, ticks_left) = wait_until(
        "the keepalive timer (kind 2) on the server's end of the browser's connection",
        || server_side_timer(web.port(), alice.local_addr().port()),
        |timer| matches!(timer, Some((2, _))),
    )
    .expect("found");
    assert!(
        ticks_left <= 60 * 100,
        "keepalive due in {ticks_left} ticks, over 60 s"
    );
}

#[test]
fn limits_are_in_bytes_and_echoes_are_cut_on_character_boundaries() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);
    // 1,000 four-byte characters: 4,000 bytes, over the 1,024-byte limit.
    alice.send(&"😀".repeat(1000));
    alice.expect("! line too long (max 1024 bytes)");
    // 256 of them are exactly 1,024 bytes: allowed, and delivered whole.
    let at_limit = "😀".repeat(256);
    alice.send(&at_limit);
    bob.expect(&format!("[lobby] alice: {at_limit}"));
    // What the server echoes back is cut to 32 characters, never inside one.
    alice.send(&format!("/w {} hi", "é".repeat(100)));
    alice.expect(&format!(
        "! no user named \"{}…\" is online",
        "é".repeat(32)
    ));
    alice.send(&format!("/{}", "語".repeat(40)));
    alice.expect(&format!(
        "! unknown command /{}…, try /help",
        "語".repeat(32)
    ));
    still_chatting(&mut alice, &mut bob, "after the wide characters");
}
