//! Runs the rubric's tests, one after another (or `--jobs` at a time, each
//! worker thread taking the next): for each, a fresh server on a free port
//! (with `--exe`), the test on a thread of its own with a hard time limit,
//! a check that the server did not die under it, and the server stopped.
//! Prints a line per test on stderr as it finishes.

use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::checks::{Ctx, Needs, Test};
use crate::cli::{Options, Target};
use crate::client::{secs, Failure};
use crate::rubric::Rubric;
use crate::server::{describe, ServerProcess};

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

#[derive(Clone, Debug)]
pub struct TestResult {
    pub id: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Said after a failure that a limit of the server's caused: the tests
/// need rate limits off and no limit per address.
const LIMITS_HINT: &str = " (the server refused for a limit of its own: start it with its rate \
limits off and no limit on connections per address, as docs/ASSIGNMENT.md's teacher section says)";

pub fn run(options: &Options, rubric: &Rubric, tests: &[&'static Test]) -> Vec<TestResult> {
    let tag = run_tag();
    let selected: Vec<(usize, &'static Test)> = tests
        .iter()
        .copied()
        .filter(|test| rubric.has(&test.id()))
        .enumerate()
        .collect();
    let results: Mutex<Vec<Option<TestResult>>> = Mutex::new(vec![None; selected.len()]);
    let queue = Mutex::new(selected.into_iter());
    // `--jobs` workers, each taking the next test (and its own server).
    thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((index, test)) = next else { return };
                let result = run_test(test, options, format!("{tag}{index}_"));
                if !options.quiet {
                    eprintln!("{}", progress_line(&result));
                }
                results.lock().unwrap_or_else(|p| p.into_inner())[index] = Some(result);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.into_iter().flatten().collect()
}

fn run_test(test: &'static Test, options: &Options, prefix: String) -> TestResult {
    let started = Instant::now();
    let outcome = match skip_reason(test, &options.target) {
        Some(reason) => Outcome::Skipped(reason),
        None => run_one(test, options, prefix),
    };
    TestResult {
        id: test.id(),
        outcome,
        elapsed: started.elapsed(),
    }
}

fn progress_line(result: &TestResult) -> String {
    let took = format!("{:.2} s", result.elapsed.as_secs_f64());
    match &result.outcome {
        Outcome::Passed => format!("  ok    {}  {took}", result.id),
        Outcome::Failed(why) => format!("  FAIL  {}  {took}: {why}", result.id),
        Outcome::Skipped(why) => format!("  skip  {}: {why}", result.id),
    }
}

/// Two letters that differ from run to run, so that names on a shared
/// server do not meet an earlier run's.
fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64 ^ d.as_secs())
        ^ u64::from(std::process::id());
    let letter = |n: u64| char::from(b'a' + (n % 26) as u8);
    format!("g{}{}", letter(nanos), letter(nanos / 26))
}

fn skip_reason(test: &Test, target: &Target) -> Option<String> {
    match (test.needs, target) {
        (Needs::Connection, _) => None,
        (_, Target::Addr(_)) => {
            Some("needs a server of its own: grade with --exe to run it".to_string())
        }
        (Needs::Proc, Target::Exe(_)) if !cfg!(target_os = "linux") => {
            Some("needs Linux's /proc".to_string())
        }
        _ => None,
    }
}

fn run_one(test: &'static Test, options: &Options, prefix: String) -> Outcome {
    let (addr, server, prefix) = match &options.target {
        Target::Addr(addr) => (*addr, None, prefix),
        Target::Exe(template) => match ServerProcess::start(template) {
            Ok(server) => (server.addr, Some(Arc::new(server)), String::new()),
            Err(Failure(why)) => return Outcome::Failed(why),
        },
    };
    let outcome = run_with_limit(test, options, addr, server.clone(), prefix);
    let outcome = match (&server, outcome) {
        (Some(server), outcome) => with_server_fate(server, outcome),
        (None, outcome) => outcome,
    };
    if let Some(server) = server {
        server.stop();
    }
    match outcome {
        Outcome::Failed(why) if mentions_a_limit(&why) => Outcome::Failed(why + LIMITS_HINT),
        other => other,
    }
}

fn mentions_a_limit(why: &str) -> bool {
    [
        "! slow down",
        " is busy: at most",
        "too many connections from your address",
    ]
    .iter()
    .any(|refusal| why.contains(refusal))
}

/// Runs the test on its own thread; a test that overruns its limit is
/// failed and left behind (its sockets end when the server is stopped).
fn run_with_limit(
    test: &'static Test,
    options: &Options,
    addr: SocketAddr,
    server: Option<Arc<ServerProcess>>,
    prefix: String,
) -> Outcome {
    let ctx = Ctx::new(addr, options.settings, prefix, server);
    let (done_tx, done_rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name(test.name.to_string())
        .spawn(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(|| (test.run)(&ctx)));
            let _ = done_tx.send(result);
        });
    if let Err(error) = spawned {
        return Outcome::Failed(format!("grader: cannot start the test's thread: {error}"));
    }
    match done_rx.recv_timeout(test.limit) {
        Ok(Ok(Ok(()))) => Outcome::Passed,
        Ok(Ok(Err(Failure(why)))) => Outcome::Failed(why),
        Ok(Err(_)) => Outcome::Failed("grader: the test panicked (a bug in the grader)".into()),
        Err(_) => Outcome::Failed(format!(
            "the test did not finish within {}, its limit",
            secs(test.limit)
        )),
    }
}

/// How long a failed test's server is given to finish dying: a crash
/// resets the connections a moment before the process can be seen to have
/// exited.
const DYING: Duration = Duration::from_millis(500);

/// Whether a failure says a connection ended or could not be made.
fn connection_lost(why: &str) -> bool {
    [
        "the connection failed",
        "closed the connection",
        "cannot connect",
    ]
    .iter()
    .any(|said| why.contains(said))
}

/// A server that exited on its own during a test fails it, whatever the
/// test saw; that is said first.
fn with_server_fate(server: &ServerProcess, outcome: Outcome) -> Outcome {
    if server.was_terminated() {
        return outcome;
    }
    let status = match &outcome {
        Outcome::Failed(why) if connection_lost(why) => server.wait_for_exit(DYING),
        _ => server.exit_status(),
    };
    let Some(status) = status else {
        return outcome;
    };
    let fate = format!(
        "the server {} during the test (its last output: {})",
        describe(status),
        server.output.last_words(3)
    );
    match outcome {
        Outcome::Failed(why) => Outcome::Failed(format!("{fate}; {why}")),
        _ => Outcome::Failed(fate),
    }
}
