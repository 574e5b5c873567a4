//! The `threadchat` binary as an operator and an nc user meet it: flags, exit
//! statuses, signals, and a real `nc` client.

use std::net::TcpListener;
use std::process::Command;

use crate::common::process::{
    has_unix_signals, run, start_binary, threadchat, tool_available, Process,
};
use crate::common::Client;

#[test]
fn help_prints_usage_and_exits_0() {
    let output = run(&mut threadchat(&["--help"]));
    assert_eq!(output.status.code(), Some(0));
    let stdout = output.stdout;
    assert!(stdout.starts_with("Usage: threadchat"), "{stdout}");
    for flag in [
        "--addr",
        "--max-clients",
        "--max-backlog",
        "--stats-interval",
    ] {
        assert!(stdout.contains(flag), "usage should mention {flag}");
    }
}

#[test]
fn version_exits_0() {
    let output = run(&mut threadchat(&["--version"]));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        output.stdout.trim(),
        format!("threadchat {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_flag_or_value_exits_2_with_one_clear_line_and_the_usage() {
    for (args, message) in [
        (vec!["--bogus"], "error: unknown option --bogus"),
        (
            vec!["--max-backlog", "zero"],
            "error: --max-backlog: expected a size from 1K to 1024M (bytes, or with K or M), got \"zero\"",
        ),
        (
            vec!["--queue", "256"],
            "error: --queue (lines) was replaced by --max-backlog BYTES",
        ),
        (vec!["--max-clients"], "error: --max-clients needs a value"),
        (
            vec!["--addr", "nowhere"],
            "error: --addr: expected HOST:PORT, got \"nowhere\"",
        ),
    ] {
        let output = run(&mut threadchat(&args));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = output.stderr;
        assert_eq!(stderr.lines().next(), Some(message), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage: threadchat"), "{args:?}: {stderr}");
    }
}

/// A build without the `redis` feature must not start alone when asked to
/// be part of a cluster: the user would believe the servers are one chat.
#[cfg(not(feature = "redis"))]
#[test]
fn redis_asked_of_a_build_without_it_exits_2_saying_how_to_build_it() {
    let output = run(&mut threadchat(&["--redis", "redis://127.0.0.1:6379"]));
    assert_eq!(output.status.code(), Some(2));
    let stderr = output.stderr;
    assert_eq!(
        stderr.lines().next(),
        Some(
            "error: --redis: this threadchat was built without Redis support; \
             build it with `cargo build --release --features redis`"
        ),
        "{stderr}"
    );
}

/// With the feature, a URL that is not one is refused the same way.
#[cfg(feature = "redis")]
#[test]
fn a_redis_url_that_is_not_one_exits_2() {
    let output = run(&mut threadchat(&["--redis", "127.0.0.1:6379"]));
    assert_eq!(output.status.code(), Some(2));
    let stderr = output.stderr;
    assert!(
        stderr.starts_with("error: --redis: expected redis://HOST:PORT"),
        "{stderr}"
    );
}

#[test]
fn an_address_in_use_exits_1_with_one_clear_line() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = run(&mut threadchat(&["--addr", &addr]));
    assert_eq!(output.status.code(), Some(1));
    let stderr = output.stderr;
    assert!(
        stderr.contains(&format!("error: cannot listen on {addr}: address in use")),
        "{stderr}"
    );
}

#[test]
fn the_address_can_come_from_the_environment() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = run(threadchat(&[]).env("THREADCHAT_ADDR", &addr));
    // The port is taken, which proves the server tried to use it.
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stderr.contains(&addr), "{output:?}");
}

#[test]
fn sigterm_tells_clients_shuts_down_and_exits_0() {
    if !has_unix_signals() {
        return;
    }
    let mut server = start_binary(&[]);
    let mut alice = Client::register(server.addr, "alice");
    server.process.signal("-TERM");
    alice.expect("* server shutting down");
    alice.expect_closed();
    let status = server.process.wait_for_exit();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    let last = server
        .log()
        .wait_for_line("final stats:", "final stats line");
    // Nobody is online once the server has stopped.
    assert!(
        last.contains("final stats: 0 online, 0 connections"),
        "expected 0 online and 0 connections in {last:?}"
    );
}

#[test]
fn sigint_exits_0_too() {
    if !has_unix_signals() {
        return;
    }
    let mut server = start_binary(&[]);
    server.process.signal("-INT");
    assert_eq!(server.process.wait_for_exit().code(), Some(0));
}

#[test]
fn the_monitor_logs_a_stats_line_every_interval() {
    if !has_unix_signals() {
        return;
    }
    let mut server = start_binary(&["--stats-interval", "1"]);
    let _alice = Client::register(server.addr, "alice");
    server
        .log()
        .wait_for_line("stats: 1 online, 1 connections", "monitor line");
    server.process.signal("-TERM");
    assert_eq!(server.process.wait_for_exit().code(), Some(0));
}

#[test]
fn a_real_nc_client_registers_and_chats() {
    if !has_unix_signals() {
        return;
    }
    if !tool_available("nc", "-h", "netcat-openbsd") {
        return;
    }
    let mut server = start_binary(&[]);
    let mut bob = Client::register(server.addr, "bob");

    let mut nc = Process::spawn(
        Command::new("nc").args([server.addr.ip().to_string(), server.addr.port().to_string()]),
    );

    nc.write(b"alice\n");
    nc.stdout
        .wait_for_line("* welcome alice!", "nc registration");
    bob.expect("* alice joined");
    nc.write(b"hi bob, from nc\n");
    bob.expect("[lobby] alice: hi bob, from nc");
    bob.send("hi alice");
    nc.stdout
        .wait_for_line("[lobby] bob: hi alice", "nc receives");
    nc.write(b"/quit\n");
    nc.stdout.wait_for_line("* bye alice", "nc goodbye");
    bob.expect("* alice left");
    // netcat-openbsd keeps running while its input is open, even after the
    // server has closed; closing its input, as a terminal's Ctrl-D would, ends it.
    nc.close_stdin();
    nc.wait_for_exit();

    server.process.signal("-TERM");
    assert_eq!(server.process.wait_for_exit().code(), Some(0));
}
