//! Threads per connection, read from Linux's /proc (optional: the
//! assignment asks for a reader and a writer thread per client): two more
//! threads for each connection, and none left once they have gone.
//!
//! The server's threads are those of the process the grader started and of
//! everything it started in turn (so a wrapper such as `sh -c` is counted
//! through).

use std::collections::HashMap;
use std::fs;
use std::time::{Duration, Instant};

use super::{test, Ctx, Needs, Test};
use crate::client::{fail, secs, Check, Client, Failure};

pub const TESTS: &[Test] = &[
    test(
        "threads",
        "a_reader_and_a_writer_per_client",
        "12 connections (10 named, 2 not) make exactly 24 more threads in the server",
        a_reader_and_a_writer_per_client,
    )
    .needs(Needs::Proc),
    test(
        "threads",
        "threads_end_when_clients_leave",
        "when they /quit or vanish, the thread count goes back to what it was",
        threads_end_when_clients_leave,
    )
    .needs(Needs::Proc),
];

const CONNECTIONS: usize = 12;

/// Threads of `root` and its descendants.
fn threads_of_tree(root: u32) -> Result<usize, Failure> {
    let entries =
        fs::read_dir("/proc").map_err(|e| Failure(format!("grader: cannot read /proc: {e}")))?;
    let mut parent_of = HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // The parent is the fourth field, after the name in parentheses.
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if let Some(parent) = parent {
            parent_of.insert(pid, parent);
        }
    }
    let in_tree = |mut pid: u32| loop {
        if pid == root {
            return true;
        }
        match parent_of.get(&pid) {
            Some(&parent) if parent != pid && parent != 0 => pid = parent,
            _ => return false,
        }
    };
    let mut threads = 0;
    for &pid in parent_of.keys().filter(|&&pid| in_tree(pid)) {
        threads += fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |tasks| tasks.count());
    }
    if threads == 0 {
        fail!("grader: no threads found for process {root} in /proc");
    }
    Ok(threads)
}

/// Polls until the count has not changed for 300 ms: the threads of the
/// grader's readiness probe are gone.
fn settled_count(root: u32, wait: Duration) -> Result<usize, Failure> {
    let deadline = Instant::now() + wait.max(Duration::from_secs(2));
    let mut last = threads_of_tree(root)?;
    let mut since = Instant::now();
    while Instant::now() < deadline {
        // Polling /proc: nothing to wait on.
        std::thread::sleep(Duration::from_millis(50));
        let now = threads_of_tree(root)?;
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_millis(300) {
            return Ok(now);
        }
    }
    Ok(last)
}

/// Waits (within the wait time, at least 2 s) until the count is `want`.
fn wait_for_count(root: u32, want: usize, wait: Duration, what: &str) -> Check {
    let wait = wait.max(Duration::from_secs(2));
    let deadline = Instant::now() + wait;
    loop {
        let now = threads_of_tree(root)?;
        if now == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            fail!(
                "expected {want} threads ({what}), found {now} after {}",
                secs(wait)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 10 registered clients and 2 that have only been greeted.
fn connections(ctx: &Ctx) -> Result<Vec<Client>, Failure> {
    let mut clients = Vec::new();
    for n in 0..CONNECTIONS - 2 {
        clients.push(ctx.register(&format!("t{n}"))?);
    }
    clients.push(ctx.greeted("unnamed1")?);
    clients.push(ctx.greeted("unnamed2")?);
    Ok(clients)
}

fn a_reader_and_a_writer_per_client(ctx: &Ctx) -> Check {
    let pid = ctx.process()?.pid();
    let before = settled_count(pid, ctx.wait())?;
    let _clients = connections(ctx)?;
    wait_for_count(
        pid,
        before + 2 * CONNECTIONS,
        ctx.wait(),
        &format!("{before} with no client, and a reader and a writer for each of {CONNECTIONS} connections"),
    )
}

fn threads_end_when_clients_leave(ctx: &Ctx) -> Check {
    let pid = ctx.process()?.pid();
    let before = settled_count(pid, ctx.wait())?;
    let mut clients = connections(ctx)?;
    wait_for_count(
        pid,
        before + 2 * CONNECTIONS,
        ctx.wait(),
        "two per connection",
    )?;
    for (n, client) in clients.iter_mut().enumerate() {
        if n % 2 == 0 {
            client.send("/quit")?;
        }
    }
    drop(clients);
    wait_for_count(
        pid,
        before,
        ctx.wait(),
        "as many as before the clients came, once they had all left",
    )
}
