//! The server under test: one or more already running (`--addr`, `--pid`),
//! or one started with `--spawn`, which must not outlive the run. `Drop`
//! kills it on every way out of the program but a signal, and a signal
//! handler covers that one: an error, a panic, or a benchmark sweep
//! interrupted with Ctrl-C would otherwise leave it running, using the CPU
//! that the next run measures.

use std::io::{self, BufRead, BufReader, ErrorKind};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::args::{Args, Protocol};

pub struct Server {
    /// Usually one; several with `--addr` repeated.
    pub addrs: Vec<SocketAddr>,
    /// Every process whose /proc figures count (`--pid`, repeatable).
    pub pids: Vec<u32>,
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        SPAWNED_PID.store(0, Ordering::SeqCst);
    }
}

/// The pid of the server started with `--spawn`, 0 for none: for the signal
/// handler, because a signal ends the process without running `Drop`.
static SPAWNED_PID: AtomicU32 = AtomicU32::new(0);

/// On Ctrl-C, SIGTERM or SIGHUP (`timeout`, a closed terminal), take the
/// spawned server down too, then exit as the signal would have.
pub fn kill_spawned_server_on_signal() {
    let installed = ctrlc::set_handler(|| {
        let pid = SPAWNED_PID.load(Ordering::SeqCst);
        if pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        std::process::exit(130);
    });
    if let Err(error) = installed {
        eprintln!("warning: cannot handle signals ({error}); a spawned server may outlive an interrupted run");
    }
}

/// The servers of `--addr`, or the one `--spawn` starts, once it listens.
pub fn attach(args: &Args) -> io::Result<Server> {
    if args.addrs.is_empty() {
        spawn(args)
    } else {
        attach_running(args)
    }
}

fn attach_running(args: &Args) -> io::Result<Server> {
    let addrs = args
        .addrs
        .iter()
        .map(|addr| {
            addr.parse()
                .map_err(|_| io::Error::new(ErrorKind::InvalidInput, format!("bad --addr {addr}")))
        })
        .collect::<io::Result<_>>()?;
    Ok(Server {
        addrs,
        pids: args.pids.clone(),
        child: None,
    })
}

fn spawn(args: &Args) -> io::Result<Server> {
    let mut child = start(args)?;
    SPAWNED_PID.store(child.id(), Ordering::SeqCst);
    let stderr = child.stderr.take().expect("stderr is piped");
    // From here on, `Server`'s `Drop` kills the child on every way out.
    let mut server = Server {
        addrs: Vec::new(),
        pids: vec![child.id()],
        child: Some(child),
    };
    // Through the IRC door, the clients connect to its port.
    let announces = match args.protocol {
        Protocol::Irc => "IRC door at ",
        _ => "listening on ",
    };
    server.addrs.push(listening_address(stderr, announces)?);
    Ok(server)
}

/// Starts the `--spawn` binary with what lets every simulated client in:
/// they all come from 127.0.0.1, as fast as they can.
fn start(args: &Args) -> io::Result<Child> {
    let path = args.spawn.as_deref().unwrap_or_default();
    let max_clients = (args.clients + 100).to_string();
    // A room's own rate (`--room-rate`, since issue 24) would refuse the
    // senders' lines; an earlier build, run for comparison, has no such
    // flag and would refuse it.
    let help = Command::new(path).arg("--help").output();
    let knows = |flag: &str| {
        (help.as_ref()).is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(flag))
    };
    let room_rate: &[&str] = if knows("--room-rate") {
        &["--room-rate", "off"]
    } else {
        &[]
    };
    // The IRC door's default port (issue 25) must not be taken by every
    // spawned server; an earlier build has no such flag.
    let irc: &[&str] = match args.protocol {
        Protocol::Irc => &["--irc", "127.0.0.1:0"],
        _ if knows("--irc") => &["--irc", "off"],
        _ => &[],
    };
    Command::new(path)
        .args([
            "--addr",
            "127.0.0.1:0",
            "--rate-limit",
            "off",
            "--max-per-addr",
            "0",
            "--http",
            "off",
        ])
        .args(["--max-clients", &max_clients])
        .args(room_rate)
        .args(irc)
        .args(&args.server_args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start {path}: {e}")))
}

/// The address in the server's first log line that holds `announces`
/// (`listening on `, or `IRC door at `).
fn listening_address(stderr: ChildStderr, announces: &'static str) -> io::Result<SocketAddr> {
    // The log is read on a thread for as long as the server runs, so that
    // its pipe never fills.
    let (found, address) = mpsc::channel();
    thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split(announces).nth(1) {
                if let Some(found) = found.take() {
                    let _ = found.send(addr.trim().to_string());
                }
            }
        }
    });
    let addr = address
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| io::Error::other("the server did not say where it listens"))?;
    addr.parse()
        .map_err(|_| io::Error::other(format!("bad address in the log: {addr}")))
}

impl Server {
    /// Sends a spawned server SIGTERM and returns how long it took to exit
    /// (`None` if it was not spawned, or had not exited after 60 s and was
    /// killed). `meanwhile` runs between checks: the caller reads what the
    /// server still sends, so that no writer of the server waits on a full
    /// socket because of us.
    pub fn time_shutdown(
        &mut self,
        mut meanwhile: impl FnMut() -> io::Result<()>,
    ) -> io::Result<Option<f64>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let stopping = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let limit = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(Some(stopping.elapsed().as_secs_f64()));
            }
            if Instant::now() > limit {
                let _ = child.kill();
                return Ok(None);
            }
            meanwhile()?;
        }
    }
}
