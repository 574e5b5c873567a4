//! The tests' child processes, started one way: [`Process::spawn`] reads
//! the child's output on threads of its own, so that a test waits for a
//! line with a deadline and a child never blocks on a full pipe, and kills
//! the child when dropped, so that a test failing half-way leaves nothing
//! running. [`run`] is the same to the end, within a deadline. On top of
//! them: the built `threadchat` binary on a free port with its log and its
//! /proc numbers, and whether a tool the tests drive is installed.

use std::ffi::OsStr;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::DEADLINE;

pub const BINARY: &str = env!("CARGO_BIN_EXE_threadchat");

pub fn threadchat(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args).env_remove("THREADCHAT_ADDR");
    command
}

/// A child process of the test, killed when dropped.
pub struct Process {
    /// The program and its arguments, for failure messages.
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    pub stdout: Output,
    pub stderr: Output,
}

impl Process {
    /// Starts `command` with its standard input, output and error piped.
    pub fn spawn(command: &mut Command) -> Process {
        let child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", describe(command)));
        Process::adopt(describe(command), child)
    }

    /// Takes charge of a child started otherwise (for the one test whose
    /// child must find its output closed): whichever of its pipes were set
    /// up are used as [`Process::spawn`] uses them.
    pub fn adopt(name: String, mut child: Child) -> Process {
        Process {
            stdin: child.stdin.take(),
            stdout: Output::read_on_a_thread(format!("{name}: stdout"), child.stdout.take()),
            stderr: Output::read_on_a_thread(format!("{name}: stderr"), child.stderr.take()),
            name,
            child,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Writes to the child's standard input.
    pub fn write(&mut self, bytes: &[u8]) {
        let name = &self.name;
        self.stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{name}: standard input already closed"))
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("{name}: cannot write to its standard input: {e}"));
    }

    /// Closes the child's standard input, as Ctrl-D or the end of a pipe does.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends `signal` (`-TERM`, `-INT`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let done = run(Command::new("kill").args([signal, &self.id().to_string()]));
        assert!(
            done.status.success(),
            "kill {signal} {} failed: {}",
            self.name,
            done.stderr
        );
    }

    /// SIGKILL (no goodbye to anyone), and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the child to exit; fails (and kills it) past the deadline.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "{} did not exit within {DEADLINE:?}; its stderr: {:?}",
                    self.name,
                    self.stderr.text()
                );
            }
            thread::sleep(Duration::from_millis(20)); // polling interval, not synchronisation
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// How a child run to its end ended, and all it wrote.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end with its standard input closed; fails if it
/// has not exited within the deadline.
pub fn run(command: &mut Command) -> Finished {
    let mut process = Process::spawn(command);
    process.close_stdin();
    let status = process.wait_for_exit();
    Finished {
        status,
        stdout: process.stdout.read_to_end(),
        stderr: process.stderr.read_to_end(),
    }
}

/// As a shell would run it: the variables it sets, the program's file
/// name, its arguments.
fn describe(command: &Command) -> String {
    let program = command.get_program();
    let program = Path::new(program).file_name().unwrap_or(program);
    let variables = command.get_envs().filter_map(|(name, value)| {
        value.map(|value| format!("{}={}", name.to_string_lossy(), value.to_string_lossy()))
    });
    variables
        .chain(
            std::iter::once(program)
                .chain(command.get_args())
                .map(|word| OsStr::to_string_lossy(word).into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// One of a child's output pipes, read on a thread, and everything read
/// from it so far.
pub struct Output {
    name: String,
    chunks: Receiver<Vec<u8>>,
    received: Vec<u8>,
    /// Where in `received` the next line starts.
    next_line: usize,
    /// The pipe has closed, and all it carried is in `received`.
    ended: bool,
}

impl Output {
    /// With no pipe, an output that has already ended, empty.
    fn read_on_a_thread(name: String, pipe: Option<impl Read + Send + 'static>) -> Output {
        let (tx, chunks) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    match pipe.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(n) => {
                            if tx.send(buffer[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            });
        }
        Output {
            name,
            chunks,
            received: Vec::new(),
            next_line: 0,
            ended: false,
        }
    }

    /// Takes in the next chunk, waiting for it until `deadline`; false if
    /// none came: the pipe has closed, or the deadline has passed.
    fn receive(&mut self, deadline: Instant) -> bool {
        if self.ended {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.chunks.recv_timeout(left) {
            Ok(chunk) => {
                self.received.extend_from_slice(&chunk);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                false
            }
        }
    }

    /// The next line, without its `\n` or `\r\n`, if it comes before
    /// `deadline`. Once the pipe has closed, what follows the last newline
    /// is a line too, as `BufRead::lines` has it.
    pub fn line_before(&mut self, deadline: Instant) -> Option<String> {
        loop {
            let rest = &self.received[self.next_line..];
            let (line, used) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], end + 1),
                None if self.ended && !rest.is_empty() => (rest, rest.len()),
                None => {
                    if self.receive(deadline) {
                        continue;
                    }
                    if self.ended && self.next_line < self.received.len() {
                        continue;
                    }
                    return None;
                }
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            self.next_line += used;
            return Some(line);
        }
    }

    /// Reads lines until one contains `needle`, and returns it; fails,
    /// saying what came instead, if none does within the deadline.
    pub fn wait_for_line(&mut self, needle: &str, what: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        while let Some(line) = self.line_before(deadline) {
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
        panic!(
            "{what}: expected a line containing {needle:?} on {} within {DEADLINE:?}; {}: {seen:#?}",
            self.name,
            if self.ended { "it closed after" } else { "it sent" }
        );
    }

    /// Waits until everything received contains `needle`, lines or not
    /// (a terminal is sent escape codes and half lines).
    pub fn wait_for_text(&mut self, needle: &str, what: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !self.text().contains(needle) {
            if !self.receive(deadline) {
                let got = self.text();
                panic!(
                    "{what}: expected {needle:?} on {} within {DEADLINE:?}; {}: {got:?}",
                    self.name,
                    if self.ended {
                        "it closed after"
                    } else {
                        "it got"
                    },
                );
            }
        }
    }

    /// Everything received so far, with whatever has arrived by now.
    pub fn text(&mut self) -> String {
        while let Ok(chunk) = self.chunks.try_recv() {
            self.received.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// Everything, once the pipe has closed; fails if it is still open at
    /// the deadline.
    pub fn read_to_end(&mut self) -> String {
        let deadline = Instant::now() + DEADLINE;
        while !self.ended {
            if !self.receive(deadline) && !self.ended {
                let so_far = self.text();
                panic!(
                    "{} still open after {DEADLINE:?}; so far: {so_far:?}",
                    self.name
                );
            }
        }
        self.text()
    }
}

/// A running server binary on a free port.
pub struct RunningServer {
    pub process: Process,
    pub addr: SocketAddr,
}

pub fn start_binary(extra: &[&str]) -> RunningServer {
    start_binary_with(extra, None)
}

/// Starts the binary; with `fd_limit`, under `ulimit -n fd_limit` (through
/// `sh`, which then `exec`s the server, so the child is the server).
pub fn start_binary_with(extra: &[&str], fd_limit: Option<u32>) -> RunningServer {
    // No web door and no IRC door unless a test asks for one (`--http
    // 127.0.0.1:0`, `--irc 127.0.0.1:0`): the default ports would be shared
    // by every test running at once.
    let mut args = vec!["--addr", "127.0.0.1:0", "--http", "off", "--irc", "off"];
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
    let mut process = Process::spawn(command.env("RUST_LOG", "info"));
    let line = process
        .stderr
        .wait_for_line("listening on ", "server start");
    let addr = line
        .rsplit("listening on ")
        .next()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    RunningServer { process, addr }
}

/// What /proc says of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStatus {
    pub rss_kib: u64,
    pub threads: u64,
}

impl RunningServer {
    /// The server's log (its standard error, at `RUST_LOG=info`).
    pub fn log(&mut self) -> &mut Output {
        &mut self.process.stderr
    }

    /// The server's resident memory and thread count now.
    pub fn proc_status(&self) -> ProcStatus {
        let path = format!("/proc/{}/status", self.process.id());
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
        missing(program, package);
    }
    found
}

/// Debian's Python, where `apt-get install python3-...` puts its modules
/// (a `python3` earlier on PATH, from pyenv say, would not see them).
pub fn system_python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Can [`system_python`] import `module`? As [`tool_available`]: skipped
/// with a message here, a failure on CI.
pub fn python_module_available(module: &str, package: &str) -> bool {
    let found = Command::new(system_python())
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        missing(&format!("{module} for python3"), package);
    }
    found
}

/// Whether this system has Linux's /proc, which the calling test reads (or
/// Linux's own tools); one SKIPPED line when it does not, so that
/// `cargo test` on macOS and Windows passes what it can run.
pub fn has_linux_proc() -> bool {
    if !cfg!(target_os = "linux") {
        eprintln!("SKIPPED: needs Linux's /proc");
    }
    cfg!(target_os = "linux")
}

/// Whether the calling test can send Unix signals (SIGTERM, SIGINT) with
/// `kill`; one SKIPPED line when not (Windows).
pub fn has_unix_signals() -> bool {
    if !cfg!(unix) {
        eprintln!("SKIPPED: needs Unix signals");
    }
    cfg!(unix)
}

fn missing(what: &str, package: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing on CI: .ci/run should have installed {package}"
    );
    eprintln!("SKIPPED: no {what} on this machine (apt-get install {package})");
}
