//! Abuse and overload against the real binary, whose memory and thread count
//! can be read from /proc without other tests' threads in the way: random
//! bytes from several clients at once, a line of many megabytes, and running
//! out of file descriptors.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::process::{has_linux_proc, start_binary, start_binary_with};
use crate::common::rng::Rng;
use crate::common::{register_all, wait_until, Client};

/// Hostile input: random bytes, with newlines, NULs, invalid UTF-8, escape
/// sequences, telnet negotiation, valid commands, and now and then a line
/// far over the limit. The same seed gives the same bytes, so that a
/// failing run can be repeated byte for byte.
fn junk(seed: u64, bytes: usize) -> Vec<u8> {
    let mut random = Rng::new(seed);
    let mut out = Vec::with_capacity(bytes + 8192);
    while out.len() < bytes {
        match random.below(12) {
            0 => out.extend_from_slice(b"\x1b[2J\x1b[H"),
            1 => out.extend_from_slice(b"\xff\xfb\x01\xff\xfd\x03"),
            2 => out.push(0),
            3 => out.extend_from_slice(b"\xc3\x28\xe2\x82"),
            4 => out.extend_from_slice(b"/me \x07\x1b]0;pwned\x07"),
            5 => out.extend_from_slice(b"\r\n"),
            6 => out.extend_from_slice(b"\n/users\n/rooms\n/join junk\n"),
            7 if random.below(20) == 0 => {
                out.extend(std::iter::repeat_n(b'A', 5000));
            }
            _ => {
                let run = 1 + random.below(64) as usize;
                out.extend((0..run).map(|_| random.next_u64() as u8));
            }
        }
        if random.below(4) == 0 {
            out.push(b'\n');
        }
    }
    out
}

/// A byte that must never reach a terminal: C0 controls but tab and
/// newline, DEL, and (as UTF-8) C1 controls.
fn first_control(text: &str) -> Option<char> {
    text.chars()
        .find(|c| c.is_control() && *c != '\t' && *c != '\n')
}

#[test]
fn random_bytes_from_many_clients_harm_nobody() {
    if !has_linux_proc() {
        return;
    }
    const FUZZERS: u64 = 6;
    const BYTES_EACH: usize = 200 * 1024;
    let mut server = start_binary(&["--rate-limit", "off", "--room-rate", "off"]);
    let addr = server.addr;

    let mut alice = Client::register(addr, "alice");
    alice.send("/join quiet");
    alice.expect("* you joined #quiet; 1 here");
    let mut bob = Client::register(addr, "bob");
    bob.send("/join quiet");
    bob.expect("* you joined #quiet; 2 here");
    alice.expect("* bob joined");
    let before = server.proc_status();

    // Each fuzzer writes its junk on one thread and reads everything the
    // server sends it on another, checking that no control byte comes back.
    let fuzzers: Vec<_> = (1..=FUZZERS)
        .map(|seed| {
            thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("fuzzer connects");
                let reading = {
                    let mut stream = stream.try_clone().expect("clone");
                    thread::spawn(move || {
                        let mut received = Vec::new();
                        let _ = std::io::Read::read_to_end(&mut stream, &mut received);
                        received
                    })
                };
                // The server may cut a fuzzer off (it is free to); what it
                // must not do is crash, leak, or harm alice and bob.
                let _ = (&stream).write_all(&junk(seed, BYTES_EACH));
                let _ = stream.shutdown(std::net::Shutdown::Write);
                let received = reading.join().expect("fuzzer reader");
                let text = String::from_utf8(received).unwrap_or_else(|e| {
                    panic!("fuzzer {seed}: the server sent invalid UTF-8: {e}")
                });
                if let Some(c) = first_control(&text) {
                    panic!("fuzzer {seed}: the server sent control character {c:?}");
                }
                text.lines().count()
            })
        })
        .collect();

    // Meanwhile alice and bob talk, and each sees exactly the other's lines.
    for n in 1..=200 {
        alice.send(&format!("a{n}"));
        bob.expect(&format!("[quiet] alice: a{n}"));
        bob.send(&format!("b{n}"));
        alice.expect(&format!("[quiet] bob: b{n}"));
    }
    for fuzzer in fuzzers {
        let lines = fuzzer.join().expect("a fuzzer thread panicked");
        assert!(lines > 0, "a fuzzer got no answer at all");
    }
    // Nothing else reached them: their next line is the reply to a command.
    for client in [&mut alice, &mut bob] {
        client.send("/who");
        client.expect("* in #quiet (2): alice, bob");
    }

    // Every fuzzer's threads are gone, and memory has not run away.
    let after = wait_until(
        "the fuzzers' threads to end",
        || server.proc_status(),
        |status| status.threads == before.threads,
    );
    assert!(
        after.rss_kib < before.rss_kib + 32 * 1024,
        "server memory grew from {} KiB to {} KiB under {} KiB of junk",
        before.rss_kib,
        after.rss_kib,
        FUZZERS as usize * BYTES_EACH / 1024
    );
    server.process.signal("-TERM");
    assert_eq!(server.process.wait_for_exit().code(), Some(0));
}

#[test]
fn a_line_of_many_megabytes_is_refused_without_being_buffered() {
    if !has_linux_proc() {
        return;
    }
    let mut server = start_binary(&[]);
    let mut alice = Client::register(server.addr, "alice");
    let before = server.proc_status();
    let chunk = vec![b'x'; 256 * 1024];
    // 64 MiB without a newline.
    for _ in 0..256 {
        alice.send_raw(&chunk);
    }
    let during = server.proc_status();
    alice.send_raw(b"\n/users\n");
    alice.expect("! line too long (max 1024 bytes)");
    alice.expect("* online (1): alice");
    assert!(
        during.rss_kib < before.rss_kib + 8 * 1024,
        "reading 64 MiB without a newline grew the server from {} KiB to {} KiB",
        before.rss_kib,
        during.rss_kib
    );
    server.process.signal("-TERM");
    assert_eq!(server.process.wait_for_exit().code(), Some(0));
}

#[test]
fn running_out_of_file_descriptors_is_survived() {
    if !has_linux_proc() {
        return;
    }
    // 40 descriptors: the standard three, the listener, the signal handler's
    // pipe and a few more, and room for about 30 clients.
    let mut server = start_binary_with(&[], Some(40));
    let addr = server.addr;
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);

    // 60 more connections: the kernel completes them all (they wait in the
    // listen backlog), but the server can accept only some of them.
    let mut crowd: Vec<Client> = (0..60)
        .map(|n| Client::connect(addr, &format!("crowd {n}")))
        .collect();
    server.log().wait_for_line(
        "accept failed",
        "the acceptor warning about the descriptor limit",
    );
    // The server lives on: alice and bob still chat.
    alice.send("still up?");
    bob.expect("[lobby] alice: still up?");

    // The crowd leaves; those that waited in the backlog are accepted in
    // turn and, as they have closed, leave too.
    for client in crowd.iter_mut() {
        client.shutdown_write();
    }
    drop(crowd);
    server
        .log()
        .wait_for_line("accepting again", "the acceptor recovering");

    // A newcomer is served normally.
    let mut newcomer = None;
    wait_until(
        "a newcomer to be greeted once descriptors are free",
        || {
            let mut carol = Client::connect(addr, "carol");
            if carol.try_line(Duration::from_secs(2)) == Ok("* welcome to threadchat".to_string()) {
                newcomer = Some(carol);
            }
            newcomer.is_some()
        },
        |greeted| *greeted,
    );
    let mut carol = newcomer.expect("checked by wait_until");
    carol.expect("* choose a name (1-24 letters, digits, - or _):");
    carol.send("carol");
    carol.expect_prefix("* welcome carol!");
    carol.send("hello after the storm");
    alice.skip_until("[lobby] carol: hello after the storm");
    bob.skip_until("[lobby] carol: hello after the storm");

    server.process.signal("-TERM");
    assert_eq!(server.process.wait_for_exit().code(), Some(0));
}

#[test]
fn the_web_door_out_of_descriptors_warns_once_per_episode() {
    if !has_linux_proc() {
        return;
    }
    // As the chat acceptor does: one warning when accepting starts to fail,
    // one line when it works again, and nothing in between, however long
    // the shortage lasts (the web door used to warn ten times a second).
    let mut server = start_binary_with(&["--http", "127.0.0.1:0", "--max-per-addr", "0"], Some(40));
    let line = (server.log()).wait_for_line("web page at http://", "the web door's address");
    let web: std::net::SocketAddr = line
        .rsplit("http://")
        .next()
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    // Each connection holds a descriptor and a thread waiting for its
    // request, until the descriptors run out.
    let crowd: Vec<_> = (0..60).map(|_| crate::common::http::connect(web)).collect();
    let first = server.log().wait_for_line(
        "http-acceptor: accept failed",
        "the web door's warning about the descriptor limit",
    );
    // A second and a half of the shortage: fifteen failed accepts, and no
    // second warning from the web door. (A window to watch, not a wait for
    // something.) The chat acceptor shares the descriptor table, and may
    // warn once of its own.
    let until = Instant::now() + Duration::from_millis(1500);
    let mut warnings = vec![first];
    while let Some(line) = server.log().line_before(until) {
        if line.contains("WARN") && line.contains("accept failed") {
            warnings.push(line);
        }
    }
    for who in ["] http-acceptor:", "] acceptor:"] {
        let from_it = warnings.iter().filter(|line| line.contains(who)).count();
        assert!(
            from_it <= 1,
            "{who} warned {from_it} times in one shortage: {warnings:#?}"
        );
    }
    drop(crowd);
    server
        .log()
        .wait_for_line("http-acceptor: accepting again", "the web door recovering");
    server.process.signal("-TERM");
    assert_eq!(server.process.wait_for_exit().code(), Some(0));
}
