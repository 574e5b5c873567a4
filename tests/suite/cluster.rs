//! Several servers as one chat through a real Redis (`--features redis`).
//!
//! Each test starts its own `redis-server` on a free port, with persistence
//! off, and two threadchat servers pointed at it. Outside CI, a machine
//! without `redis-server` skips these tests with a message; CI installs it
//! (.ci/run) and runs them.

#![cfg(feature = "redis")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::http;
use crate::common::process::{start_binary, tool_available, Process};
use crate::common::{start_server, test_config, wait_until, Client, DEADLINE};
use threadchat::{Config, ServerHandle};

/// A `redis-server` of the test's own, killed when dropped.
struct Redis {
    process: Process,
    port: u16,
}

impl Redis {
    /// `None` (and a SKIPPED line) when redis-server is not installed.
    fn start() -> Option<Redis> {
        if !tool_available("redis-server", "--version", "redis-server") {
            return None;
        }
        Some(Redis::start_on(free_port()))
    }

    fn start_on(port: u16) -> Redis {
        let process = Process::spawn(
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"]),
        );
        let redis = Redis { process, port };
        wait_until(
            &format!("redis-server to answer PING on port {port}"),
            || redis.ping(),
            |answer| answer.as_deref() == Some("+PONG"),
        );
        redis
    }

    fn ping(&self) -> Option<String> {
        self.command(&["PING"])
    }

    /// One command in RESP, and the first line of the answer (`:5`,
    /// `+PONG`), or `None` if Redis cannot be reached.
    fn command(&self, words: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut request = format!("*{}\r\n", words.len());
        for word in words {
            request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = [0u8; 64];
        let n = stream.read(&mut answer).ok()?;
        let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
        answer.lines().next().map(str::to_string)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: no goodbye to anyone) and waits for it to go.
    fn kill(&mut self) {
        self.process.kill();
    }
}

/// A port nobody listens on now. Another process could take it before
/// redis-server does; on loopback in a test run that does not happen.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// The test defaults, one chat through `redis`, a short TTL.
fn config(redis: &Redis) -> Config {
    Config {
        redis: Some(redis.url()),
        redis_ttl: Duration::from_secs(2),
        ..test_config()
    }
}

/// `/users` as `client` sees it, asked until `condition` holds.
fn users_until(client: &mut Client, what: &str, condition: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        client.send("/users");
        let users = loop {
            let line = client.line();
            if line.starts_with("* online (") {
                break line;
            }
        };
        if condition(&users) {
            return users;
        }
        assert!(
            Instant::now() < deadline,
            "{}: timed out waiting for /users to show {what}; last: {users:?}",
            client.label
        );
        thread::sleep(Duration::from_millis(50)); // polling interval, not synchronisation
    }
}

/// Waits until `client` lists every one of `names` in `/users`.
fn wait_for_users(client: &mut Client, names: &[&str]) {
    let listed = |users: &str| {
        let list = users.split_once(": ").map_or("", |(_, list)| list);
        names
            .iter()
            .all(|name| list.split(", ").any(|n| n == *name))
    };
    users_until(client, &format!("{names:?}"), listed);
}

/// Two servers on one Redis, with alice on the first and bob on the second,
/// each already listed on the other.
fn two_servers(redis: &Redis) -> (ServerHandle, ServerHandle, Client, Client) {
    // The first with its web door on, for /metrics.
    let a = start_server(Config {
        http: Some("127.0.0.1:0".into()),
        ..config(redis)
    });
    let b = start_server(config(redis));
    let mut alice = Client::register(a.local_addr(), "alice");
    let mut bob = Client::register(b.local_addr(), "bob");
    wait_for_users(&mut alice, &["alice", "bob"]);
    wait_for_users(&mut bob, &["alice", "bob"]);
    (a, b, alice, bob)
}

#[test]
fn two_servers_are_one_chat_rooms_whispers_and_users() {
    let Some(redis) = Redis::start() else { return };
    let (_a, _b, mut alice, mut bob) = two_servers(&redis);

    // A room line crosses, and many keep their order.
    alice.send("hello from a");
    bob.skip_until("[lobby] alice: hello from a");
    for n in 0..50 {
        alice.send(&format!("line {n}"));
    }
    for n in 0..50 {
        bob.expect(&format!("[lobby] alice: line {n}"));
    }

    // A whisper crosses; an unknown name is refused at once, as on one server.
    bob.send("/w ALICE psst");
    bob.expect("[dm to alice] psst");
    alice.expect("[dm from bob] psst");
    bob.send("/w nobody hi");
    bob.expect("! no user named \"nobody\" is online");

    // Rooms: a room on one server is seen, joined and listed from the other.
    bob.send("/join rust");
    bob.expect("* you joined #rust; 1 here");
    // alice hears it when bob's server tells hers, which also updates /rooms.
    alice.expect("* bob left");
    alice.send("/rooms");
    alice.skip_until("* rooms (2): lobby (1), rust (1)");
    alice.send("/join rust");
    alice.expect("* you joined #rust; 2 here");
    bob.expect("* alice joined");
    alice.send("/who");
    alice.expect("* in #rust (2): alice, bob");
    bob.send("/who");
    bob.expect("* in #rust (2): alice, bob");
    alice.send("in rust");
    bob.expect("[rust] alice: in rust");
}

#[test]
fn a_name_claimed_on_both_servers_at_once_goes_to_exactly_one() {
    let Some(redis) = Redis::start() else { return };
    let a = start_server(config(&redis));
    let b = start_server(config(&redis));
    for round in 0..10 {
        let name = format!("same{round}");
        let mut first = Client::connect(a.local_addr(), "on a");
        let mut second = Client::connect(b.local_addr(), "on b");
        first.expect_greeting();
        second.expect_greeting();
        // Both lines leave before either answer comes back.
        first.send(&name);
        second.send(&name);
        let answers = [first.line(), second.line()];
        let welcomed = answers
            .iter()
            .filter(|line| line.starts_with(&format!("* welcome {name}!")))
            .count();
        let refused = answers
            .iter()
            .filter(|line| **line == format!("! name \"{name}\" is taken, choose another"))
            .count();
        assert_eq!((welcomed, refused), (1, 1), "round {round}: {answers:?}");
    }
}

#[test]
fn a_newcomer_on_another_server_gets_the_history_then_live_lines_without_gap_or_repeat() {
    let Some(redis) = Redis::start() else { return };
    let with_history = |redis: &Redis| Config {
        history: 30,
        ..config(redis)
    };
    let a = start_server(with_history(&redis));
    let mut alice = Client::register(a.local_addr(), "alice");
    for n in 1..=5 {
        alice.send(&format!("early {n}"));
    }
    wait_until(
        "Redis to hold the 5 lines in the lobby's history",
        || redis.command(&["LLEN", "threadchat:history:lobby"]),
        |length| length.as_deref() == Some(":5"),
    );
    // A second server, started only now, reads what was said from Redis.
    // Once it lists alice it has read it (see docs/ARCHITECTURE.md).
    let b = start_server(with_history(&redis));
    let mut probe = Client::register(b.local_addr(), "probe");
    wait_for_users(&mut probe, &["alice", "probe"]);
    let mut carol = Client::register(b.local_addr(), "carol");
    carol.expect("* last 5 messages in #lobby");
    for n in 1..=5 {
        carol.expect(&format!("[lobby] alice: early {n}"));
    }
    alice.send("live");
    carol.expect("[lobby] alice: live");

    // alice goes on talking while dave arrives on b.
    let talker = thread::spawn(move || {
        for n in 1..=200 {
            alice.send(&format!("n {n}"));
        }
        alice
    });
    let mut dave = Client::register(b.local_addr(), "dave");
    let _alice = talker.join().expect("alice's thread");
    // Whatever dave saw of `n 1..200`, history first and then live, must
    // be a run ending at 200 with no number missing or repeated.
    let mut seen = Vec::new();
    while seen.last() != Some(&200) {
        let line = dave.line();
        if let Some(n) = line.strip_prefix("[lobby] alice: n ") {
            seen.push(n.parse::<u32>().expect("a number"));
        }
    }
    let first = seen[0];
    let expected: Vec<u32> = (first..=200).collect();
    assert_eq!(
        seen, expected,
        "dave's lines from n {first} on: a gap or a repeat"
    );
}

#[test]
fn redis_down_local_chat_goes_on_clients_are_told_and_it_comes_back() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (a, _b, mut alice, mut bob) = two_servers(&redis);
    let mut andy = Client::register(a.local_addr(), "andy");
    alice.skip_until("* andy joined");
    wait_for_users(&mut bob, &["andy"]);

    let port = redis.port;
    redis.kill();
    let down = "* other servers cannot be reached (Redis is down); chat on this server goes on";
    alice.skip_until(down);
    andy.skip_until(down);
    bob.skip_until(down);

    // Chat on one server goes on; the line is counted as unpublished.
    alice.send("while redis is down");
    andy.expect("[lobby] alice: while redis is down");
    wait_until(
        "a's stats to count the line that could not be published",
        || a.stats().cluster_unpublished,
        |unpublished| *unpublished >= 1,
    );
    andy.send("/stats");
    let stats = andy.expect_prefix("* stats:");
    assert!(stats.contains("other servers unreachable"), "{stats}");
    let web = a.web_addr().expect("a has a web door");
    let metrics = http::get(web, "/metrics");
    let unpublished = metrics
        .lines()
        .find_map(|line| line.strip_prefix("threadchat_cluster_unpublished_total "))
        .and_then(|value| value.trim().parse::<u64>().ok());
    assert!(
        unpublished.is_some_and(|n| n >= 1),
        "/metrics should count the unpublished line: {metrics}"
    );

    let _redis = Redis::start_on(port);
    let back = "* other servers can be reached again";
    alice.skip_until(back);
    bob.skip_until(back);
    wait_for_users(&mut bob, &["alice", "andy", "bob"]);
    alice.send("after redis came back");
    bob.skip_until("[lobby] alice: after redis came back");
    bob.send("/w andy welcome back");
    andy.skip_until("[dm from bob] welcome back");
}

#[test]
fn a_killed_servers_users_leave_the_others_within_the_ttl() {
    let Some(redis) = Redis::start() else { return };
    let b = start_server(config(&redis));
    let mut bob = Client::register(b.local_addr(), "bob");
    let ttl = "2";
    let mut a = start_binary(&["--redis", &redis.url(), "--redis-ttl", ttl]);
    let mut alice = Client::register(a.addr, "alice");
    wait_for_users(&mut alice, &["alice", "bob"]);
    wait_for_users(&mut bob, &["alice", "bob"]);

    a.process.kill();
    let killed = Instant::now();
    bob.skip_until("* alice left");
    let took = killed.elapsed();
    // The stated time: the TTL, plus up to a second for the manager's
    // once-a-second check. The extra margin is for a loaded machine.
    assert!(
        took < Duration::from_secs(2 + 1) + Duration::from_secs(3),
        "alice left bob's view {took:?} after her server died"
    );
    users_until(&mut bob, "bob alone", |users| users == "* online (1): bob");
    // Her name is free once its claim runs out in Redis (the same TTL).
    let mut again = Client::connect(b.local_addr(), "alice again");
    again.expect_greeting();
    let deadline = Instant::now() + DEADLINE;
    loop {
        again.send("alice");
        let answer = again.line();
        if answer.starts_with("* welcome alice!") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the name alice was never freed: {answer}"
        );
        again.expect("* choose a name (1-24 letters, digits, - or _):");
        thread::sleep(Duration::from_millis(100)); // polling interval, not synchronisation
    }
}

#[test]
fn a_room_nobody_is_in_is_forgotten_here_and_in_redis_after_its_time() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let server = start_server(Config {
        room_ttl: Duration::from_secs(2),
        history: 10,
        ..config(&redis)
    });
    let mut alice = Client::register(server.local_addr(), "alice");
    alice.send("/join brief");
    alice.expect_prefix("* you joined #brief;");
    alice.send("said once");
    // Redis's copy of the room's history is given a time to live...
    let ttl = wait_until(
        "the room's history in Redis to have a time to live",
        || redis.command(&["TTL", "threadchat:history:brief"]),
        |ttl| matches!(ttl.as_deref(), Some(":1") | Some(":2")),
    );
    assert!(ttl.is_some());
    wait_until(
        "the server to count the room",
        || server.stats().rooms_kept,
        |kept| *kept == 2,
    );
    alice.send("/leave");
    alice.expect_prefix("* you joined #lobby;");
    // ...and, with nobody in it anywhere, the room goes here after 2 s,
    // and from Redis 2 s after its last line.
    wait_until(
        "the empty room to be forgotten here",
        || server.stats().rooms_kept,
        |kept| *kept == 1,
    );
    wait_until(
        "the room's history to expire in Redis",
        || redis.command(&["EXISTS", "threadchat:history:brief"]),
        |exists| exists.as_deref() == Some(":0"),
    );
}
