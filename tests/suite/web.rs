//! The web door over real sockets: every endpoint, the WebSocket handshake
//! and framing, and every refusal with its status or close code.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::common::http::{self, body, get, status};
use crate::common::process::{python_module_available, system_python, Process};
use crate::common::ws::{WsClient, BINARY, CLOSE, PING, PONG, TEXT};
use crate::common::{register_all, start_web_server, test_config, wait_until, Client};
use threadchat::Config;

#[test]
fn the_page_is_served_whole_and_unknown_paths_and_methods_are_refused() {
    let (_server, web) = start_web_server(test_config());
    let page = get(web, "/");
    assert_eq!(status(&page), 200, "{page}");
    assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
    let html = body(&page);
    assert!(html.contains("<title>threadchat</title>"));
    // Self-contained: nothing loaded from anywhere else.
    for outside in ["src=\"http", "href=\"http", "src='http", "@import"] {
        assert!(!html.contains(outside), "the page loads {outside}...");
    }
    let script = body(&get(web, "/page.js")).to_string();
    assert!(
        !script.contains(".innerHTML"),
        "server text must go in as text"
    );
    let files = script + body(&get(web, "/page.css"));
    for outside in ["fetch(\"http", "@import", "url("] {
        assert!(!files.contains(outside), "the page loads {outside}...");
    }
    assert_eq!(status(&get(web, "/nowhere")), 404);
    let post = http::request(
        web,
        &format!("POST / HTTP/1.1\r\nHost: {web}\r\nContent-Length: 0\r\n\r\n"),
    );
    assert_eq!(status(&post), 405);
    assert!(post.contains("Allow: GET, HEAD\r\n"));
    assert_eq!(status(&http::request(web, "hello there\r\n\r\n")), 400);
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(9000));
    assert_eq!(status(&http::request(web, &huge)), 431);
}

#[test]
fn a_request_head_that_dribbles_in_is_cut_off() {
    let (_server, web) = start_web_server(Config {
        http_head_timeout: Duration::from_millis(300),
        ..test_config()
    });
    let mut slow = http::connect(web);
    slow.write_all(b"GET / HTTP/1.1\r\nX-Slow: ").expect("send");
    let response = http::read_until_closed(&mut slow);
    assert_eq!(status(&response), 408, "{response}");
}

#[test]
fn health_metrics_and_stats_json() {
    let (server, web) = start_web_server(test_config());
    let [mut alice, mut bob] = register_all(server.local_addr(), ["alice", "bob"]);
    bob.send("a line to time");
    alice.expect("[lobby] bob: a line to time");
    drop(bob);
    alice.expect("* bob left");
    // bob's threads end a moment after the room is told.
    wait_until(
        "bob's reader and writer gone from the live view",
        || body(&get(web, "/stats.json")).to_string(),
        |stats| stats.contains("\"reader\":1,\"writer\":1"),
    );
    let health = get(web, "/health");
    assert_eq!(status(&health), 200);
    assert!(
        body(&health).starts_with("{\"status\":\"ok\",\"uptime_s\":"),
        "{health}"
    );
    assert!(body(&health).contains("\"online\":1"), "{health}");

    let stats = body(&get(web, "/stats.json")).to_string();
    for key in [
        "\"threads\":{",
        "\"reader\":1",
        "\"writer\":1",
        "\"locks\":{\"clients\":",
        "\"events_depth\":",
        "\"deepest_backlogs\":[",
    ] {
        assert!(stats.contains(key), "{key} missing from {stats}");
    }

    let metrics = get(web, "/metrics");
    assert_eq!(status(&metrics), 200);
    assert!(
        metrics.contains("Content-Type: text/plain; version=0.0.4"),
        "{metrics}"
    );
    let text = body(&metrics);
    assert!(text.contains("threadchat_online 1\n"), "{text}");
    assert!(
        text.contains("threadchat_threads{role=\"reader\"} 1\n"),
        "{text}"
    );
    // bob's line reached alice's socket: one fan-out timed.
    assert!(
        text.contains("threadchat_fanout_seconds_count 1\n"),
        "{text}"
    );
    check_with_prometheus_parser(text);
}

/// Parses the exposition with the Prometheus project's own Python parser
/// (Debian's python3-prometheus-client), which rejects malformed text.
fn check_with_prometheus_parser(text: &str) {
    if !python_module_available("prometheus_client", "python3-prometheus-client") {
        return;
    }
    let script =
        "import sys\nfrom prometheus_client.parser import text_string_to_metric_families\n\
                  families = list(text_string_to_metric_families(sys.stdin.read()))\n\
                  names = {f.name for f in families}\n\
                  assert 'threadchat_online' in names, names\n\
                  print(len(families))\n";
    let mut parser = Process::spawn(Command::new(system_python()).args(["-c", script]));
    parser.write(text.as_bytes());
    parser.close_stdin();
    let status = parser.wait_for_exit();
    assert!(
        status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        parser.stderr.read_to_end()
    );
}

#[test]
fn health_says_503_once_shutdown_has_begun() {
    let (server, web) = start_web_server(test_config());
    let mut watcher = Client::register(server.local_addr(), "watcher");
    // Opened before shutdown, its request sent after it began.
    let mut early = http::connect(web);
    wait_until(
        "the early connection's thread running",
        || body(&get(web, "/stats.json")).to_string(),
        |stats| stats.contains("\"http\":2"),
    );
    let stopping = std::thread::spawn(move || server.shutdown());
    watcher.expect("* server shutting down");
    early
        .write_all(format!("GET /health HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes())
        .expect("send");
    let response = http::read_until_closed(&mut early);
    assert_eq!(status(&response), 503, "{response}");
    assert!(
        body(&response).starts_with("{\"status\":\"stopping\""),
        "{response}"
    );
    stopping.join().expect("shutdown");
}

#[test]
fn a_browser_client_chats_with_an_nc_client_both_ways() {
    let (server, web) = start_web_server(test_config());
    let mut nc = Client::register(server.local_addr(), "ncuser");
    let mut browser = WsClient::register(web, "webuser");
    nc.expect("* webuser joined");
    browser.send("hello from the browser");
    nc.expect("[lobby] webuser: hello from the browser");
    nc.send("hello from nc");
    browser.expect("[lobby] ncuser: hello from nc");
    browser.send("/w ncuser psst");
    nc.expect("[dm from webuser] psst");
    browser.expect("[dm to ncuser] psst");
    nc.send("/w webuser back");
    browser.expect("[dm from ncuser] back");
    nc.expect("[dm to webuser] back");
    // Pings are answered with the same payload.
    browser.send_frame(true, PING, b"are you there", true);
    let pong = browser.frame();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (PONG, &b"are you there"[..])
    );
    // /quit: the goodbye, then the close handshake from the server.
    browser.send("/quit");
    browser.expect("* bye webuser");
    browser.expect_close(1000);
    nc.expect("* webuser left");
}

#[test]
fn a_client_close_is_answered_and_the_client_leaves() {
    let (server, web) = start_web_server(test_config());
    let mut nc = Client::register(server.local_addr(), "ncuser");
    let mut browser = WsClient::register(web, "webuser");
    nc.expect("* webuser joined");
    browser.send_frame(true, CLOSE, &1000u16.to_be_bytes(), true);
    browser.expect_close(1000);
    nc.expect("* webuser left");
}

/// Registers, sends `bytes` as one frame, and expects the close `code`;
/// the nc client in the room is unaffected.
fn refused(
    web: SocketAddr,
    nc: &mut Client,
    fin: bool,
    opcode: u8,
    payload: &[u8],
    masked: bool,
    code: u16,
) {
    let mut browser = WsClient::register(web, "bad");
    nc.expect("* bad joined");
    browser.send_frame(fin, opcode, payload, masked);
    if !fin {
        // A fragmented message: the rest, past the limit.
        browser.send_frame(true, 0x0, payload, masked);
    }
    browser.expect_close(code);
    nc.expect("* bad left");
    nc.send("/users");
    nc.expect("* online (1): ncuser");
}

#[test]
fn every_forbidden_frame_gets_its_close_code() {
    let (server, web) = start_web_server(Config {
        max_line: 100,
        ..test_config()
    });
    let mut nc = Client::register(server.local_addr(), "ncuser");
    refused(web, &mut nc, true, TEXT, b"unmasked", false, 1002);
    refused(web, &mut nc, true, TEXT, &[b'x'; 101], true, 1009);
    refused(web, &mut nc, false, TEXT, &[b'x'; 60], true, 1009);
    refused(web, &mut nc, true, BINARY, b"\x00\x01", true, 1003);
    refused(web, &mut nc, true, TEXT, b"\xff\xfe", true, 1007);
}

#[test]
fn a_page_from_another_site_cannot_open_a_websocket() {
    let (server, web) = start_web_server(test_config());
    let refused = WsClient::connect_with_origin(web, "evil", Some("http://evil.example"))
        .err()
        .expect("a foreign Origin must be refused");
    assert_eq!(status(&refused), 403, "{refused}");
    // Not a WebSocket request at all.
    assert_eq!(status(&get(web, "/ws")), 426);
    // A program (no Origin at all) may connect.
    assert!(WsClient::connect_with_origin(web, "program", None).is_ok());
    assert_eq!(
        server.stats().connections_refused,
        0,
        "a 403 is not a chat connection"
    );
}

#[test]
fn the_live_view_shows_threads_by_role_and_the_deepest_backlog() {
    let (server, web) = start_web_server(test_config());
    let addr = server.local_addr();
    let [mut talker, stuck] = register_all(addr, ["talker", "stuck"]);
    // stuck reads nothing; once the kernel's buffers are full its backlog
    // grows, and the manager reports it within a second.
    let padding = "p".repeat(900);
    let stats = wait_until(
        "a backlog for stuck in /stats.json",
        || {
            for n in 0..200 {
                talker.send(&format!("{n} {padding}"));
            }
            body(&get(web, "/stats.json")).to_string()
        },
        |stats| stats.contains("{\"name\":\"stuck\",\"bytes\":"),
    );
    assert!(
        stats.contains("\"reader\":2") && stats.contains("\"writer\":2"),
        "{stats}"
    );
    drop(stuck);
}

#[test]
fn refused_lines_are_counted_for_the_live_view() {
    let (server, web) = start_web_server(Config {
        max_line: 10,
        ..test_config()
    });
    let mut alice = Client::register(server.local_addr(), "alice");
    alice.send("a line that is far too long");
    alice.expect("! line too long (max 10 bytes)");
    alice.send("/bogus");
    alice.expect("! unknown command /bogus, try /help");
    let stats = wait_until(
        "two refused lines in /stats.json",
        || body(&get(web, "/stats.json")).to_string(),
        |stats| stats.contains("\"lines_refused\":2,"),
    );
    assert!(
        body(&get(web, "/metrics")).contains("threadchat_lines_refused_total 2\n"),
        "{stats}"
    );
}

#[test]
fn a_quiet_browser_is_pinged_and_one_that_never_answers_is_let_go() {
    let (server, web) = start_web_server(Config {
        ping_after: Duration::from_secs(1),
        ..test_config()
    });
    let mut alice = WsClient::register(web, "alice");
    let mut bob = Client::register(server.local_addr(), "bob");
    alice.expect("* bob joined");
    // Silent, alice is pinged after a second; each answer keeps her in,
    // well past the two seconds a silent client is given.
    for round in 0..3 {
        let ping = alice.frame();
        assert_eq!(
            ping.opcode, PING,
            "round {round}: expected a ping, got {ping:?}"
        );
        alice.send_frame(true, PONG, &ping.payload, true);
    }
    bob.send("still there?");
    alice.expect("[lobby] bob: still there?");
    // Now she stops answering: after the next ping and as long again, she
    // is let go, and the room is told as for anyone who leaves.
    let ping = alice.frame();
    assert_eq!(ping.opcode, PING, "expected a ping, got {ping:?}");
    bob.expect("* alice left");
    alice.expect_close(1000);
}

#[test]
fn a_burst_of_connections_cannot_pass_the_http_cap() {
    // 150 connections at once, none sending its request yet: the first 64
    // get a thread each, which waits for its request; the other 86 must be
    // answered 503 at once. (The cap was read from a count that each new
    // thread raised only once it ran, so a burst got past it.)
    let (_server, web) = start_web_server(Config {
        http_head_timeout: Duration::from_secs(15),
        ..test_config()
    });
    const BURST: usize = 150;
    const CAP: usize = 64;
    let mut connections: Vec<_> = (0..BURST).map(|_| http::connect(web)).collect();
    for connection in &connections {
        connection
            .set_nonblocking(true)
            .expect("non-blocking, to see who was answered");
    }
    let mut answered = vec![false; BURST];
    wait_until(
        &format!(
            "{} connections past the cap to be answered 503",
            BURST - CAP
        ),
        || {
            for (n, connection) in connections.iter_mut().enumerate() {
                let mut byte = [0u8; 1];
                if let Ok(1) = std::io::Read::read(connection, &mut byte) {
                    answered[n] = true;
                }
            }
            answered.iter().filter(|a| **a).count()
        },
        |refused| *refused >= BURST - CAP,
    );
    // Each of the rest was given a thread: its request is answered.
    let mut served = 0;
    for (connection, _) in connections.iter_mut().zip(&answered).filter(|(_, a)| !**a) {
        connection.set_nonblocking(false).expect("blocking again");
        connection
            .write_all(format!("GET /health HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes())
            .expect("send the request");
        let response = http::read_until_closed(connection);
        assert_eq!(status(&response), 200, "{response}");
        served += 1;
    }
    assert_eq!(
        served, CAP,
        "exactly the cap's worth of connections was served"
    );
}
