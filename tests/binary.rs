//! The `threadchat` binary as an operator and an nc user meet it: flags, exit
//! statuses, signals, and a real `nc` client.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, DEADLINE};

const BINARY: &str = env!("CARGO_BIN_EXE_threadchat");

fn threadchat(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args).env_remove("THREADCHAT_ADDR");
    command
}

/// Lines of a child's pipe, read on a thread so the test can wait with a deadline.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns it. Fails with what came.
fn wait_for_line(lines: &Receiver<String>, needle: &str, what: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("{what}: expected a line containing {needle:?}; got {seen:#?}"),
        }
    }
}

fn wait_for_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("process did not exit within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(20)); // polling interval, not synchronisation
    }
}

/// A running server binary on a free port, with its log lines.
struct RunningServer {
    child: Child,
    addr: SocketAddr,
    log: Receiver<String>,
}

fn start_binary(extra: &[&str]) -> RunningServer {
    let mut args = vec!["--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = threadchat(&args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the threadchat binary");
    let log = lines_of(child.stderr.take().expect("stderr"));
    let line = wait_for_line(&log, "listening on ", "server start");
    let addr = line
        .rsplit("listening on ")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    RunningServer { child, addr, log }
}

fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} failed");
}

#[test]
fn help_prints_usage_and_exits_0() {
    let output = threadchat(&["--help"]).output().expect("run --help");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("Usage: threadchat"), "{stdout}");
    for flag in ["--addr", "--max-clients", "--queue", "--stats-interval"] {
        assert!(stdout.contains(flag), "usage should mention {flag}");
    }
}

#[test]
fn version_exits_0() {
    let output = threadchat(&["--version"]).output().expect("run --version");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("threadchat {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_flag_or_value_exits_2_with_one_clear_line_and_the_usage() {
    for (args, message) in [
        (vec!["--bogus"], "error: unknown option --bogus"),
        (
            vec!["--queue", "zero"],
            "error: --queue: expected a whole number from 1 to 1000000, got \"zero\"",
        ),
        (vec!["--max-clients"], "error: --max-clients needs a value"),
        (
            vec!["--addr", "nowhere"],
            "error: --addr: expected HOST:PORT, got \"nowhere\"",
        ),
    ] {
        let output = threadchat(&args).output().expect("run threadchat");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().next(), Some(message), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage: threadchat"), "{args:?}: {stderr}");
    }
}

#[test]
fn an_address_in_use_exits_1_with_one_clear_line() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = threadchat(&["--addr", &addr])
        .output()
        .expect("run threadchat");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("error: cannot listen on {addr}: address in use")),
        "{stderr}"
    );
}

#[test]
fn the_address_can_come_from_the_environment() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = threadchat(&[])
        .env("THREADCHAT_ADDR", &addr)
        .output()
        .expect("run threadchat");
    // The port is taken, which proves the server tried to use it.
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&addr));
}

#[test]
fn sigterm_tells_clients_shuts_down_and_exits_0() {
    let mut server = start_binary(&[]);
    let mut alice = Client::register(server.addr, "alice");
    send_signal(&server.child, "-TERM");
    alice.expect("* server shutting down");
    alice.expect_closed();
    let status = wait_for_exit(&mut server.child);
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    wait_for_line(&server.log, "final stats:", "final stats line");
}

#[test]
fn sigint_exits_0_too() {
    let mut server = start_binary(&[]);
    send_signal(&server.child, "-INT");
    assert_eq!(wait_for_exit(&mut server.child).code(), Some(0));
}

#[test]
fn the_monitor_logs_a_stats_line_every_interval() {
    let mut server = start_binary(&["--stats-interval", "1"]);
    let _alice = Client::register(server.addr, "alice");
    wait_for_line(
        &server.log,
        "stats: 1 online, 1 connections",
        "monitor line",
    );
    send_signal(&server.child, "-TERM");
    assert_eq!(wait_for_exit(&mut server.child).code(), Some(0));
}

/// Is a usable `nc` here? CI installs netcat-openbsd, so there it must be.
fn nc_available() -> bool {
    let found = Command::new("nc")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "nc is missing on CI: .ci/run should have installed netcat-openbsd"
        );
        eprintln!("SKIPPED: no nc on this machine (apt-get install netcat-openbsd)");
    }
    found
}

#[test]
fn a_real_nc_client_registers_and_chats() {
    if !nc_available() {
        return;
    }
    let mut server = start_binary(&[]);
    let mut bob = Client::register(server.addr, "bob");

    let mut nc = Command::new("nc")
        .args([server.addr.ip().to_string(), server.addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nc");
    let nc_out = lines_of(nc.stdout.take().expect("nc stdout"));
    let mut nc_in = nc.stdin.take().expect("nc stdin");

    nc_in.write_all(b"alice\n").expect("write to nc");
    wait_for_line(&nc_out, "* welcome alice!", "nc registration");
    bob.expect("* alice joined");
    nc_in.write_all(b"hi bob, from nc\n").expect("write to nc");
    bob.expect("[lobby] alice: hi bob, from nc");
    bob.send("hi alice");
    wait_for_line(&nc_out, "[lobby] bob: hi alice", "nc receives");
    nc_in.write_all(b"/quit\n").expect("write to nc");
    wait_for_line(&nc_out, "* bye alice", "nc goodbye");
    bob.expect("* alice left");
    // netcat-openbsd keeps running while its input is open, even after the
    // server has closed; closing its input, as a terminal's Ctrl-D would, ends it.
    drop(nc_in);
    wait_for_exit(&mut nc);

    send_signal(&server.child, "-TERM");
    assert_eq!(wait_for_exit(&mut server.child).code(), Some(0));
}
