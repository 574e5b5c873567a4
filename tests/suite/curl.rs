//! The curl door (docs/PROTOCOL.md, "From curl"), driven by the real curl:
//! `curl -N …/events?name=NAME` watches, `curl -d LINE …/say?token=…`
//! talks, beside nc and WebSocket clients in the same room.

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use crate::common::curl::{curl_available, fetch, say, Watcher};
use crate::common::http;
use crate::common::process::has_unix_signals;
use crate::common::ws::WsClient;
use crate::common::{start_web_server, test_config, wait_until, Client};
use threadchat::{Config, RateLimit, ServerHandle};

/// A stream registered as `name`, its welcome read.
fn watch(web: SocketAddr, name: &str) -> Watcher {
    let mut watcher = Watcher::watch(web, name, &[]);
    watcher.expect_welcome();
    watcher
}

/// An nc user, bob, and a curl watcher, carol, in the lobby; bob has seen
/// her arrive.
fn bob_and_carol(config: Config) -> (ServerHandle, SocketAddr, Client, Watcher) {
    let (server, web) = start_web_server(config);
    let mut bob = Client::register(server.local_addr(), "bob");
    let carol = watch(web, "carol");
    bob.expect("* carol joined");
    (server, web, bob, carol)
}

/// A metric's value, from `GET /metrics`.
fn metric(web: SocketAddr, name: &str) -> f64 {
    let text = http::get(web, "/metrics");
    (text.lines())
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[test]
fn a_curl_watcher_sees_an_nc_users_lines_each_with_an_id_on_two_threads() {
    if !curl_available() {
        return;
    }
    let (server, web) = start_web_server(test_config());
    let mut carol = watch(web, "carol");
    // Two threads for this client: its http-N thread is now its reader.
    assert_eq!(metric(web, "threadchat_threads{role=\"reader\"}"), 1.0);
    assert_eq!(metric(web, "threadchat_threads{role=\"writer\"}"), 1.0);
    assert_eq!(
        metric(web, "threadchat_threads{role=\"http\"}"),
        1.0,
        "this /metrics"
    );
    let mut alice = Client::register(server.local_addr(), "alice");
    carol.expect("* alice joined");
    alice.send("hi");
    alice.send("/me waves");
    let hi = carol.expect("[lobby] alice: hi");
    let waves = carol.expect("[lobby] * alice waves");
    let (hi, waves) = (hi.id.expect("an id"), waves.id.expect("an id"));
    assert_ne!(hi, waves);
    alice.send("/users");
    alice.expect("* online (2): alice, carol");
    // The server's end: its last line, then the stream's end.
    server.shutdown();
    carol.expect("* server shutting down");
    carol.expect_end();
}

#[test]
fn curl_d_says_a_line_that_nc_and_a_websocket_client_see() {
    if !curl_available() {
        return;
    }
    let (_server, web, mut bob, mut carol) = bob_and_carol(test_config());
    let mut dave = WsClient::register(web, "dave");
    bob.expect("* dave joined");
    carol.expect("* dave joined");
    let answer = say(web, &carol.token, "hello from curl");
    assert_eq!((answer.status, answer.body.as_str()), (204, ""));
    bob.expect("[lobby] carol: hello from curl");
    dave.expect("[lobby] carol: hello from curl");
    // Not echoed to carol: the next thing on her stream is bob's answer.
    bob.send("hi carol");
    carol.expect("[lobby] bob: hi carol");
    // The token may come in a header instead, out of sight of `ps`.
    let token_header = format!("X-Threadchat-Token: {}", carol.token);
    let by_header = fetch(web, "/say", &["-H", &token_header, "-d", "by header"]);
    assert_eq!(by_header.status, 204, "{by_header:?}");
    bob.expect("[lobby] carol: by header");
    // A client that asks before it sends its body is told to go on.
    let path = format!("/say?token={}", carol.token);
    let asked = fetch(
        web,
        &path,
        &["-H", "Expect: 100-continue", "-d", "asked first"],
    );
    assert_eq!(asked.status, 204, "{asked:?}");
    bob.expect("[lobby] carol: asked first");
}

#[test]
fn commands_sent_with_say_work_as_if_typed_and_their_answers_come_on_the_stream() {
    if !curl_available() {
        return;
    }
    let (server, web, mut bob, mut carol) = bob_and_carol(test_config());
    let token = carol.token.clone();
    let said = |line: &str| say(web, &token, line).status;
    assert_eq!(said("/join rust"), 204);
    carol.expect("* you joined #rust; 1 here");
    bob.expect("* carol left");
    assert_eq!(said("/who"), 204);
    carol.expect("* in #rust (1): carol");
    assert_eq!(said("/dance"), 204);
    carol.expect("! unknown command /dance, try /help");
    assert_eq!(said("/nick carla"), 204);
    carol.expect("* you are now carla");
    bob.send("/users");
    bob.expect("* online (2): bob, carla");
    assert_eq!(said("/w bob psst"), 204);
    bob.expect("[dm from carla] psst");
    carol.expect("[dm to bob] psst");
    assert_eq!(said("/quit"), 204);
    carol.expect("* bye carla");
    carol.expect_end();
    wait_until(
        "carla gone",
        || server.online(),
        |online| online == &["bob"],
    );
}

#[test]
fn an_unknown_token_is_refused_403_and_so_is_an_ended_streams() {
    if !curl_available() {
        return;
    }
    let (server, web) = start_web_server(test_config());
    let mut carol = watch(web, "carol");
    for token in ["0".repeat(32), "not-a-token".to_string(), String::new()] {
        let answer = say(web, &token, "hi");
        assert_eq!(answer.status, 403, "{token:?}: {answer:?}");
        assert!(
            answer.body.contains("no open event stream has this token"),
            "{answer:?}"
        );
    }
    let no_token = fetch(web, "/say", &["-d", "hi"]);
    assert_eq!(no_token.status, 403, "{no_token:?}");
    let token = carol.token.clone();
    carol.process.kill();
    wait_until("carol gone", || server.online(), Vec::is_empty);
    let answer = say(web, &token, "still me?");
    assert_eq!(answer.status, 403, "{answer:?}");
}

#[test]
fn a_taken_or_invalid_name_is_refused_before_any_stream_starts() {
    if !curl_available() {
        return;
    }
    let (server, web) = start_web_server(test_config());
    let _alice = Client::register(server.local_addr(), "alice");
    for (query, status, says) in [
        ("name=alice", 409, "name \"alice\" is taken, choose another"),
        ("name=ALICE", 409, "name \"ALICE\" is taken, choose another"),
        (
            "name=no%20spaces",
            400,
            "name cannot contain ' ': use 1-24 letters",
        ),
        ("name=%ff", 400, "the name is not percent-encoded UTF-8"),
        ("", 400, "say who you are: /events?name=NAME"),
    ] {
        let answer = fetch(web, &format!("/events?{query}"), &["-N"]);
        assert_eq!(answer.status, status, "{query}: {answer:?}");
        assert!(answer.body.contains(says), "{query}: {answer:?}");
        assert!(
            !answer.body.contains("data:"),
            "{query}: no stream: {answer:?}"
        );
    }
    let bad_id = fetch(
        web,
        "/events?name=carol",
        &["-H", "Last-Event-ID: yesterday"],
    );
    assert_eq!(bad_id.status, 400, "{bad_id:?}");
    let stats = server.stats();
    assert_eq!(
        (stats.connections_open, stats.online),
        (1, 1),
        "only alice: {stats:?}"
    );
}

#[test]
fn curl_exiting_frees_the_name_and_the_room_sees_it_leave() {
    if !curl_available() {
        return;
    }
    let (server, _web, mut bob, mut carol) = bob_and_carol(test_config());
    // curl reads, and sends nothing; its exit is a close the server reads.
    carol.process.kill();
    bob.expect("* carol left");
    let _carol_again = Client::register(server.local_addr(), "carol");
    bob.expect("* carol joined");
    assert_eq!(server.stats().connections_open, 2);
}

#[test]
fn a_stream_whose_curl_has_gone_stops_speaking_though_say_keeps_coming() {
    if !curl_available() {
        return;
    }
    let (_server, web, mut bob, mut carol) = bob_and_carol(test_config());
    let token = carol.token.clone();
    carol.process.kill();
    // Lines keep coming, each sooner than the reader's once-a-second look
    // at its socket would be due if every line put it off: the stream must
    // still end within about a second, and its token with it.
    let mut answers = Vec::new();
    for n in 0..20 {
        let answer = say(web, &token, &format!("boo {n}"));
        answers.push(answer.status);
        if answer.status == 403 {
            break;
        }
        // Pacing the lines, not waiting for anything.
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        answers.last(),
        Some(&403),
        "a gone stream's token should be refused within 20 lines 0.3 s apart; got {answers:?}"
    );
    // The lines said in the moment before the look are heard, and no more.
    let heard = bob.skip_until("* carol left");
    assert!(
        heard.len() < answers.len(),
        "at most the lines answered 204 before carol left: {heard:?}"
    );
}

#[test]
fn a_stream_whose_client_half_closes_ends_as_if_it_had_gone() {
    // Raw TCP, as `nc -N` would: curl never half-closes.
    let (server, web) = start_web_server(test_config());
    let mut bob = Client::register(server.local_addr(), "bob");
    let mut stream = http::connect(web);
    let ask = "GET /events?name=dave HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    stream.write_all(ask.as_bytes()).expect("send the request");
    bob.expect("* dave joined");
    stream.shutdown(Shutdown::Write).expect("half-close");
    bob.expect("* dave left");
    let stream_text = http::read_until_closed(&mut stream);
    assert!(
        stream_text.contains("event: end"),
        "the stream should end with its end event; it sent {stream_text:?}"
    );
}

#[test]
fn last_event_id_resumes_after_the_last_line_or_says_lines_were_missed() {
    if !curl_available() {
        return;
    }
    let (server, web) = start_web_server(Config {
        history: 3,
        ..test_config()
    });
    let mut alice = Client::register(server.local_addr(), "alice");
    let mut carol = watch(web, "carol");
    alice.expect("* carol joined");
    alice.send("one");
    alice.send("two");
    carol.expect("[lobby] alice: one");
    let two = carol.expect("[lobby] alice: two").id.expect("an id");
    carol.process.kill();
    alice.expect("* carol left");
    alice.send("three");
    alice.send("four");
    // Back, with the id of the last line it had, as EventSource sends it.
    let header = format!("Last-Event-ID: {two}");
    let mut back = Watcher::watch(web, "carol", &["-H", &header]);
    back.expect_welcome();
    back.expect(&format!("* 2 messages in #lobby since event {two}"));
    let three = back.expect("[lobby] alice: three").id;
    back.expect("[lobby] alice: four");
    alice.expect("* carol joined");
    alice.send("live");
    back.expect("[lobby] alice: live");
    back.process.kill();
    alice.expect("* carol left");
    // Past what the history keeps: told so, then all it keeps.
    for n in 5..=7 {
        alice.send(&n.to_string());
    }
    let three = three.expect("an id");
    let header = format!("Last-Event-ID: {three}");
    let mut late = Watcher::watch(web, "carol", &["-H", &header]);
    late.expect_welcome();
    late.expect(&format!(
        "! cannot resume after event {three}: #lobby no longer keeps it \
         (or it was said in another room), so lines may have been missed"
    ));
    late.expect("* last 3 messages in #lobby");
    late.expect("[lobby] alice: 5");
}

#[test]
fn a_slow_events_reader_loses_lines_alone_and_is_told_how_many() {
    if !curl_available() || !has_unix_signals() {
        return;
    }
    let (server, web) = start_web_server(Config {
        max_backlog: 16 * 1024,
        ..test_config()
    });
    let mut alice = Client::register(server.local_addr(), "alice");
    let mut bob = Client::register(server.local_addr(), "bob");
    alice.expect("* bob joined");
    let mut carol = watch(web, "carol");
    alice.expect("* carol joined");
    bob.expect("* carol joined");
    // curl stops reading; the room goes on talking until the server has
    // dropped lines for her (past the kernel's buffers and her backlog).
    carol.process.signal("-STOP");
    let long = "x".repeat(900);
    let mut sent = 0;
    while server.stats().lines_dropped == 0 {
        assert!(sent < 100_000, "{sent} lines and nothing dropped");
        for _ in 0..100 {
            alice.send(&long);
            bob.expect(&format!("[lobby] alice: {long}"));
        }
        sent += 100;
    }
    carol.process.signal("-CONT");
    let told = carol.skip_until_prefix("! ");
    assert!(
        told.data
            .ends_with(" lines were dropped because your connection is too slow"),
        "{told:?}"
    );
    // And she is still in the room.
    alice.send("after");
    carol.skip_until_prefix("[lobby] alice: after");
}

#[test]
fn streams_count_against_the_per_address_and_server_limits_and_say_still_gets_in() {
    if !curl_available() {
        return;
    }
    let (_server, web) = start_web_server(Config {
        max_per_addr: 1,
        ..test_config()
    });
    let mut carol = watch(web, "carol");
    let second = fetch(web, "/events?name=dave", &["-N"]);
    assert_eq!(second.status, 503, "{second:?}");
    assert!(second
        .body
        .contains("too many chat connections from your address"));
    // A short request from the same address is not a client: let in.
    assert_eq!(say(web, &carol.token, "/who").status, 204);
    carol.expect("* in #lobby (1): carol");

    let (full, web) = start_web_server(Config {
        max_clients: 1,
        ..test_config()
    });
    let _alice = Client::register(full.local_addr(), "alice");
    let refused = fetch(web, "/events?name=erin", &["-N"]);
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.body.contains("server full, try again later"));
    assert_eq!(full.online(), ["alice"], "the name is not kept");
}

#[test]
fn a_silent_stream_is_sent_keepalive_comments_and_kept() {
    if !curl_available() {
        return;
    }
    let (server, web) = start_web_server(Config {
        ping_after: Duration::from_secs(1),
        ..test_config()
    });
    let mut carol = watch(web, "carol");
    // A WebSocket that sent nothing for twice --ping-after would be let
    // go; a stream's client never sends anything, and stays.
    let mut bob = Client::register(server.local_addr(), "bob");
    carol.expect("* bob joined");
    wait_until(
        "three keepalives",
        || carol.process.stdout.text(),
        |text| text.matches(": ping\n").count() >= 3,
    );
    bob.send("/users");
    bob.expect("* online (2): bob, carol");
    assert_eq!(say(web, &carol.token, "awake").status, 204);
    bob.expect("[lobby] carol: awake");
}

#[test]
fn a_say_whose_body_never_arrives_whole_is_answered_408_and_the_stream_goes_on() {
    if !curl_available() {
        return;
    }
    let (_server, web, mut bob, carol) = bob_and_carol(Config {
        http_head_timeout: Duration::from_secs(1),
        ..test_config()
    });
    // Ten bytes promised, three sent, and the connection kept open.
    let response = http::request(
        web,
        &format!(
            "POST /say?token={} HTTP/1.1\r\nHost: {web}\r\nContent-Length: 10\r\n\r\nabc",
            carol.token
        ),
    );
    assert_eq!(http::status(&response), 408, "{response:?}");
    assert!(
        http::body(&response).contains("the body did not arrive in time"),
        "{response:?}"
    );
    assert_eq!(say(web, &carol.token, "after all").status, 204);
    bob.expect("[lobby] carol: after all");
}

#[test]
fn say_refuses_what_the_chat_would_refuse_with_a_status_or_on_the_stream() {
    if !curl_available() {
        return;
    }
    let (server, web) = start_web_server(Config {
        max_line: 100,
        rate_limit: Some(RateLimit {
            lines: 2,
            per: Duration::from_secs(60),
        }),
        ..test_config()
    });
    let mut bob = Client::register(server.local_addr(), "bob");
    let mut carol = watch(web, "carol");
    bob.expect("* carol joined");
    let path = format!("/say?token={}", carol.token);
    let refused = |args: &[&str]| fetch(web, &path, args);
    let too_long = refused(&["-d", &"x".repeat(101)]);
    assert_eq!(too_long.status, 413, "{too_long:?}");
    assert!(too_long.body.contains("line too long (max 100 bytes)"));
    let asked = refused(&["-H", "Expect: 100-continue", "-d", &"x".repeat(101)]);
    assert_eq!(asked.status, 413, "asked before a body too long: {asked:?}");
    let control = refused(&["-d", "bell\x07"]);
    assert_eq!(control.status, 400, "{control:?}");
    assert!(
        control.body.contains("the control character U+0007"),
        "{control:?}"
    );
    let two_lines = refused(&["--data-binary", "one\ntwo"]);
    assert_eq!(two_lines.status, 400, "{two_lines:?}");
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut command = std::process::Command::new("curl");
        command
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--data-binary",
            ])
            .arg(std::ffi::OsStr::from_bytes(b"caf\xe9"))
            .arg(format!("http://{web}{path}"));
        let done = crate::common::process::run(&mut command);
        assert_eq!(done.stdout, "400", "not UTF-8: {done:?}");
    }
    let get = fetch(web, &path, &[]);
    assert_eq!(get.status, 405, "{get:?}");
    let chunked = refused(&["-H", "Transfer-Encoding: chunked", "-d", "hi"]);
    assert_eq!(chunked.status, 411, "{chunked:?}");
    // None of those reached the chat; the rate limit's refusal comes on the
    // stream, as it would on any client's connection.
    for line in ["one", "two", "three"] {
        assert_eq!(say(web, &carol.token, line).status, 204);
    }
    bob.expect("[lobby] carol: one");
    bob.expect("[lobby] carol: two");
    carol.expect("! slow down: at most 2 lines per 60 s");
    // A page on another site cannot say anything as carol.
    let evil = refused(&["-H", "Origin: http://evil.example", "-d", "hi"]);
    assert_eq!(evil.status, 403, "{evil:?}");
}
