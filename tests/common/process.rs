//! Running the built `threadchat` binary from a test: start it on a free
//! port, read its log with a deadline, signal it, wait for its exit, and read
//! its memory and thread count from /proc.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use super::DEADLINE;

pub const BINARY: &str = env!("CARGO_BIN_EXE_threadchat");

pub fn threadchat(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args).env_remove("THREADCHAT_ADDR");
    command
}

/// Lines of a child's pipe, read on a thread so the test can wait with a deadline.
pub fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
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
pub fn wait_for_line(lines: &Receiver<String>, needle: &str, what: &str) -> String {
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

pub fn wait_for_exit(child: &mut Child) -> ExitStatus {
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
pub struct RunningServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Receiver<String>,
}

pub fn start_binary(extra: &[&str]) -> RunningServer {
    start_binary_with(extra, None)
}

/// Starts the binary; with `fd_limit`, under `ulimit -n fd_limit` (through
/// `sh`, which then `exec`s the server, so the child is the server).
pub fn start_binary_with(extra: &[&str], fd_limit: Option<u32>) -> RunningServer {
    // No web door unless a test asks for one (`--http 127.0.0.1:0`): the
    // default port would be shared by every test running at once.
    let mut args = vec!["--addr", "127.0.0.1:0", "--http", "off"];
    args.extend_from_slice(extra);
    let mut command = match fd_limit {
        None => threadchat(&args),
        Some(limit) => {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                .arg(BINARY)
                .args(&args)
                .env_remove("THREADCHAT_ADDR");
            command
        }
    };
    let mut child = command
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

/// What /proc says of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStatus {
    pub rss_kib: u64,
    pub threads: u64,
}

impl RunningServer {
    /// The server's resident memory and thread count now.
    pub fn proc_status(&self) -> ProcStatus {
        let path = format!("/proc/{}/status", self.child.id());
        let status =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {path}"))
        };
        ProcStatus {
            rss_kib: field("VmRSS:"),
            threads: field("Threads:"),
        }
    }
}

impl Drop for RunningServer {
    /// A test that fails half-way must not leave a server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} failed");
}

/// Is `program` installed here? CI installs every tool the tests use (see
/// .ci/run), so there a missing one fails the test instead of skipping it.
pub fn tool_available(program: &str, probe_arg: &str, package: &str) -> bool {
    let found = Command::new(program)
        .arg(probe_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is missing on CI: .ci/run should have installed {package}"
        );
        eprintln!("SKIPPED: no {program} on this machine (apt-get install {package})");
    }
    found
}
