//! The server under test, as a child process: started from the `--exe`
//! template on a free port, watched, and always stopped.
//!
//! The runner's thread starts and stops it; the test's thread may signal it
//! and read its output. Two threads of our own drain its standard output and
//! error into [`Output`] (a child writing to a full pipe would hang), where
//! the monitor test looks for its stats line and failure messages find its
//! last words. On Unix the child leads a process group of its own, so that a
//! wrapper (`sh -c`, `cargo run`, `java -jar`) is stopped with everything it
//! started, and signals go to the whole group.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::Template;
use crate::client::{secs, Failure};

/// How long a server may take from being started to accepting a connection.
pub const START_WITHIN: Duration = Duration::from_secs(10);
/// How long it has to exit after SIGTERM when the grader stops it.
const STOP_WITHIN: Duration = Duration::from_secs(2);
/// Lines of output kept (the oldest go first).
const KEPT_LINES: usize = 5_000;
/// How long, once the server has exited, its last lines may take to come
/// through our reading threads (longer only if something it started still
/// holds the pipes).
const LAST_WORDS_WITHIN: Duration = Duration::from_secs(1);

pub struct ServerProcess {
    child: Mutex<Child>,
    status: Mutex<Option<ExitStatus>>,
    /// Whether the grader asked it to stop (so an exit is no crash).
    terminated: AtomicBool,
    pub addr: SocketAddr,
    pub output: Arc<Output>,
}

/// The child's output lines, both streams, each with when it arrived.
#[derive(Default)]
pub struct Output {
    lines: Mutex<(usize, VecDeque<(Instant, String)>)>,
    /// Streams still being read, and a wake-up when one reaches its end.
    open: Mutex<usize>,
    ended: Condvar,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, (usize, VecDeque<(Instant, String)>)> {
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, line: String) {
        let mut lines = self.lock();
        if lines.1.len() == KEPT_LINES {
            lines.1.pop_front();
            lines.0 += 1;
        }
        lines.1.push_back((Instant::now(), line));
    }

    /// Lines numbered from `from` on (numbers count every line ever seen).
    pub fn since(&self, from: usize) -> Vec<(usize, Instant, String)> {
        let lines = self.lock();
        let first = lines.0;
        (lines.1.iter().enumerate())
            .map(|(n, (at, line))| (first + n, *at, line.clone()))
            .filter(|(n, _, _)| *n >= from)
            .collect()
    }

    /// How many lines have arrived so far.
    pub fn count(&self) -> usize {
        let lines = self.lock();
        lines.0 + lines.1.len()
    }

    /// The last `n` lines, for a failure message.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lock();
        let skip = lines.1.len().saturating_sub(n);
        let tail: Vec<&str> = lines.1.iter().skip(skip).map(|(_, l)| l.as_str()).collect();
        if tail.is_empty() {
            "(no output)".to_string()
        } else {
            tail.join(" | ")
        }
    }

    /// The last `n` lines of a server that has exited. Its process is
    /// seen to have ended before our threads have read what it wrote last,
    /// so this first waits (a moment) for both streams to reach their end.
    pub fn last_words(&self, n: usize) -> String {
        let deadline = Instant::now() + LAST_WORDS_WITHIN;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while *open > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            open = match self.ended.wait_timeout(open, left) {
                Ok((open, _)) => open,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        drop(open);
        self.tail(n)
    }

    fn stream_ended(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.ended.notify_all();
    }

    fn drain(self: &Arc<Self>, stream: Option<impl Read + Send + 'static>) {
        let Some(stream) = stream else { return };
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let output = self.clone();
        let spawned = thread::Builder::new()
            .name("server-output".into())
            .spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = Vec::new();
                while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    let text = String::from_utf8_lossy(&line);
                    output.push(text.trim_end_matches(['\n', '\r']).to_string());
                    line.clear();
                }
                output.stream_ended();
            });
        if let Err(error) = spawned {
            self.push(format!("(grader: cannot read this stream: {error})"));
            self.stream_ended();
        }
    }
}

/// "exited with status 101", "was killed by signal 9".
pub fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    format!("ended ({status})")
}

/// Ports handed out in this run. With `--jobs`, another worker may be given
/// a port just let go by this one's probe, before this one's server has
/// bound it: so no port is handed out twice.
static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A port nothing listens on now (a race with another program is still
/// possible, hence the retries in [`ServerProcess::start`]), and that no
/// older connection still uses.
fn free_port() -> Result<u16, Failure> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .map_err(|e| Failure(format!("grader: cannot find a free port: {e}")))?;
        if !handed_out.contains(&port) && !has_old_connections(port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    Err(Failure("grader: no new free port after 100 tries".into()))
}

/// Whether the kernel still keeps a connection on `port` (closing, or in
/// TIME_WAIT for a minute), say of an earlier grader's server: the port can
/// be bound again, but a new client's connection to it is often given the
/// same pair of ports as an old one (Linux picks a client's port in the
/// same order for the same destination), and what is left of the old one
/// refuses or resets it. Linux lists them in /proc/net/tcp and tcp6;
/// elsewhere this is not checked.
fn has_old_connections(port: u16) -> bool {
    let ours = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        // Each line: number, local address, remote address, state, ...
        text.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let (local, remote) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            local.ends_with(&ours) || remote.ends_with(&ours)
        })
    })
}

impl ServerProcess {
    /// Starts the server and waits until it accepts a connection.
    pub fn start(template: &Template) -> Result<ServerProcess, Failure> {
        let mut last = None;
        for _ in 0..3 {
            let port = free_port()?;
            match Self::start_on(template, port) {
                Ok(server) => return Ok(server),
                // Someone else took the port meanwhile: try another.
                Err(why) if why.0.contains("in use") => last = Some(why),
                Err(why) => return Err(why),
            }
        }
        Err(last.unwrap_or_else(|| Failure("the server could not be started".into())))
    }

    fn start_on(template: &Template, port: u16) -> Result<ServerProcess, Failure> {
        let shown = template.words(port).join(" ");
        let mut command = template.command(port);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .map_err(|e| Failure(format!("cannot start the server ({shown}): {e}")))?;
        let output = Arc::new(Output::default());
        output.drain(child.stdout.take());
        output.drain(child.stderr.take());
        let server = ServerProcess {
            child: Mutex::new(child),
            status: Mutex::new(None),
            terminated: AtomicBool::new(false),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            output,
        };
        server.wait_until_listening()?;
        Ok(server)
    }

    fn wait_until_listening(&self) -> Result<(), Failure> {
        let started = Instant::now();
        while started.elapsed() < START_WITHIN {
            if let Some(status) = self.exit_status() {
                return Err(Failure(format!(
                    "the server {} before it listened on port {}; its last output: {}",
                    describe(status),
                    self.addr.port(),
                    self.output.last_words(5)
                )));
            }
            let probe = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
            // A connection to a port nobody listens on yet can, rarely, be
            // given that very port as its own and connect to itself.
            if probe.is_ok_and(|p| p.local_addr().ok() != p.peer_addr().ok()) {
                // Something answered; if our server has exited meanwhile
                // (its port taken by another program), it was not ours.
                return match self.exit_status() {
                    None => Ok(()),
                    Some(status) => Err(Failure(format!(
                        "the server {} just after starting; its last output: {}",
                        describe(status),
                        self.output.last_words(5)
                    ))),
                };
            }
            // Polling for a port to open: there is nothing to wait on.
            thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(Failure(format!(
            "the server did not listen on port {} within {}; its last output: {}",
            self.addr.port(),
            secs(START_WITHIN),
            self.output.last_words(5)
        )))
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// Its exit status, if it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.is_none() {
            *status = self.child().try_wait().ok().flatten();
        }
        *status
    }

    /// Waits up to `within` for it to exit.
    pub fn wait_for_exit(&self, within: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exit_status() {
                return Some(status);
            }
            if started.elapsed() >= within {
                return None;
            }
            // std has no wait with a deadline: poll.
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether [`Self::terminate`] was called.
    pub fn was_terminated(&self) -> bool {
        self.terminated.load(Ordering::SeqCst)
    }

    /// Sends SIGTERM to its process group (Unix); elsewhere, kills it.
    pub fn terminate(&self) -> Result<(), Failure> {
        self.terminated.store(true, Ordering::SeqCst);
        #[cfg(unix)]
        {
            self.signal("-TERM")
        }
        #[cfg(not(unix))]
        {
            self.kill();
            Ok(())
        }
    }

    #[cfg(unix)]
    fn signal(&self, which: &str) -> Result<(), Failure> {
        let group = format!("-{}", self.pid());
        let sent = std::process::Command::new("kill")
            .args([which, "--", &group])
            .stderr(Stdio::null())
            .status();
        match sent {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(Failure(format!(
                "grader: `kill {which} -- {group}` {}",
                describe(status)
            ))),
            Err(e) => Err(Failure(format!("grader: cannot run `kill`: {e}"))),
        }
    }

    fn kill(&self) {
        #[cfg(unix)]
        let _ = self.signal("-KILL");
        let mut child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGTERM, then SIGKILL if it has not exited within 2 s. Whatever it
    /// started in its process group goes too.
    pub fn stop(&self) {
        if self.exit_status().is_none() {
            let _ = self.terminate();
            let _ = self.wait_for_exit(STOP_WITHIN);
        }
        self.kill();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
