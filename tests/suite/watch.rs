//! Threads a student can watch (issue 26, section 4), over real sockets:
//! `/trace` gives one line's journey through the threads; `/stats.json`
//! has the board of threads by state and the last minutes' history, which
//! a request after a burst still sees; a writer stuck on a client that does
//! not read shows on the board as blocked in a socket write.

use std::net::SocketAddr;

use crate::common::http::{body, get};
use crate::common::{register_all, start_server, start_web_server, test_config, wait_until};
use threadchat::Config;

fn stats_json(web: SocketAddr) -> String {
    body(&get(web, "/stats.json")).to_string()
}

/// The JSON value (an object or an array) after `"key":` in `json`, from
/// its opening bracket to the one that closes it. The server's JSON has no
/// bracket inside a string where these tests look.
fn value<'a>(json: &'a str, key: &str) -> &'a str {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key:?} in {json}"));
    let start = at + key.len() + 3;
    let mut depth = 0;
    for (n, c) in json[start..].char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return &json[start..=start + n];
        }
    }
    panic!("{key:?} is not closed in {json}")
}

/// A number after `"key":` in `json`.
fn number(json: &str, key: &str) -> u64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key:?} in {json}"));
    let digits: String = json[at + key.len() + 3..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{key:?} is not a number in {json}"))
}

/// The history's samples: `[at_ms, in, out, dropped, refused, online]` each.
fn samples(json: &str) -> Vec<Vec<u64>> {
    let samples = value(value(json, "history"), "samples");
    let inner = &samples[1..samples.len() - 1];
    (inner.split("],["))
        .filter(|sample| !sample.is_empty())
        .map(|sample| {
            (sample.trim_matches(['[', ']']).split(','))
                .map(|n| n.parse().expect("a sample's numbers"))
                .collect()
        })
        .collect()
}

#[test]
fn a_traced_line_comes_back_with_every_step_in_order_and_non_negative_times() {
    let server = start_server(test_config());
    let [mut al, mut bo, mut cy] = register_all(server.local_addr(), ["al", "bo", "cy"]);
    al.send("/trace");
    al.expect(
        "* trace: your next line will be timed through reader, events, manager, outboxes, \
         writers and sockets",
    );
    al.send("hello, traced");
    bo.expect("[lobby] al: hello, traced");
    cy.expect("[lobby] al: hello, traced");
    al.expect("* trace: [lobby] al: hello, traced");
    let steps = [
        "reader got it",
        "event sent",
        "manager took it",
        "queued in 2 outboxes",
        "first writer wrote it",
        "last writer wrote it",
    ];
    let mut total = 0;
    for step in steps {
        let line = al.expect_prefix("* trace: ");
        let (name, time) = (line["* trace: ".len()..])
            .rsplit_once(": ")
            .unwrap_or_else(|| panic!("a step is NAME: TIME, got {line:?}"));
        assert_eq!(name, step, "the steps in order: {steps:?}; got {line:?}");
        let micros = (time.strip_prefix('+').and_then(|t| t.strip_suffix(" µs")))
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("a step's time is +N µs, never negative: {line:?}"));
        total += micros;
    }
    let all = al.expect_prefix("* trace: ");
    assert_eq!(all, format!("* trace: {total} µs in all"), "the total");
    // Only the next line is traced: the one after comes back alone.
    al.send("not traced");
    bo.expect("[lobby] al: not traced");
    al.send("/users");
    al.expect("* online (3): al, bo, cy");
    // Alone in a room, a line goes nowhere, and the journey ends there.
    al.send("/join quiet");
    al.expect("* you joined #quiet; 1 here");
    al.send("/trace");
    al.expect_prefix("* trace: your next line");
    al.send("anyone?");
    al.expect("* trace: [quiet] al: anyone?");
    for step in ["reader got it", "event sent", "manager took it"] {
        al.expect_prefix(&format!("* trace: {step}: +"));
    }
    al.expect_prefix("* trace: queued in 0 outboxes: +");
    al.expect_prefix("* trace: ");
    al.send("/who");
    al.expect("* in #quiet (1): al");
}

#[test]
fn stats_json_has_the_board_and_keeps_the_history_of_a_burst() {
    let (server, web) = start_web_server(test_config());
    let [mut sender, mut first, mut second] =
        register_all(server.local_addr(), ["sender", "first", "second"]);
    // The board: each long-lived thread by name, and the three clients'
    // readers and writers.
    let json = wait_until(
        "a board with 3 readers and 3 writers",
        || stats_json(web),
        |json| {
            let roles = value(value(json, "board"), "roles");
            number(value(roles, "reader"), "count") == 3
                && number(value(roles, "writer"), "count") == 3
        },
    );
    let threads = value(value(&json, "board"), "threads");
    for name in ["manager", "http-acceptor", "acceptor", "monitor"] {
        assert!(
            threads.contains(&format!("{{\"name\":\"{name}\",")),
            "{name} on the board: {threads}"
        );
    }
    // A burst nobody is watching: 300 lines, read by both others.
    for n in 0..300 {
        sender.send(&format!("burst {n}"));
    }
    for client in [&mut first, &mut second] {
        for n in 0..300 {
            client.expect(&format!("[lobby] sender: burst {n}"));
        }
    }
    let lines_in = |json: &String| samples(json).iter().map(|s| s[1]).sum::<u64>();
    let burst = wait_until(
        "the history to count the 300 lines in",
        || stats_json(web),
        |json| lines_in(json) == 300,
    );
    let out: u64 = samples(&burst).iter().map(|s| s[2]).sum();
    assert!(out >= 600, "600 lines out in the history: {burst}");
    // A request made later, after another sample, still sees the burst.
    let seen_until = samples(&burst).last().map(|s| s[0]).unwrap_or(0);
    let later = wait_until(
        "a sample taken after the burst was seen",
        || stats_json(web),
        |json| samples(json).last().is_some_and(|s| s[0] > seen_until),
    );
    assert_eq!(lines_in(&later), 300, "the burst is still there: {later}");
    let newest = samples(&later).last().cloned().unwrap_or_default();
    assert_eq!(newest[5], 3, "3 online in the newest sample: {later}");
}

#[test]
fn a_writer_stuck_on_a_client_that_does_not_read_shows_blocked_in_a_socket_write() {
    let (server, web) = start_web_server(Config {
        max_backlog: 64 << 10,
        ..test_config()
    });
    let [mut sender, _stuck] = register_all(server.local_addr(), ["sender", "stuck"]);
    let writers_writing = |json: &String| {
        let writer = value(value(value(json, "board"), "roles"), "writer");
        number(value(writer, "by_state"), "write")
    };
    // `stuck` reads nothing: once its socket's buffers are full, its
    // writer's `write` cannot return. Lines go out until the board says so.
    let line = format!("{}\n", "x".repeat(900));
    let json = wait_until(
        "a writer blocked in a socket write on the board",
        || {
            for _ in 0..200 {
                sender.send_raw(line.as_bytes());
            }
            stats_json(web)
        },
        |json| writers_writing(json) == 1,
    );
    let writer = value(value(value(&json, "board"), "roles"), "writer");
    assert!(
        value(writer, "cells").contains("\"write\""),
        "its cell says so too: {writer}"
    );
    assert!(
        json.contains("\"write\":\"blocked in a socket write\""),
        "{json}"
    );
}
