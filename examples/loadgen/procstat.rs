//! What /proc says about the server under test: CPU time, resident memory
//! and threads of each process, and, per thread role, CPU time and context
//! switches, then both turned into figures per delivery. Every sample adds
//! up all the `--pid`s, so that several servers and their Redis count as one.

use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// User plus system CPU time.
    pub cpu: Duration,
    pub rss_kib: u64,
    pub threads: u64,
}

/// Clock ticks per second of /proc/PID/stat times: 100 on every Linux
/// this runs on (`getconf CLK_TCK`).
const CLOCK_TICKS: u64 = 100;

/// The figures of every process in `pids`, added up; `None` if there are
/// none, or one cannot be read.
pub fn proc_sample(pids: &[u32]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    let mut total = ProcSample::default();
    for pid in pids {
        let one = proc_sample_of(*pid)?;
        total.cpu += one.cpu;
        total.rss_kib += one.rss_kib;
        total.threads += one.threads;
    }
    Some(total)
}

fn proc_sample_of(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(ProcSample {
        cpu: Duration::from_millis(ticks * 1000 / CLOCK_TICKS),
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
    })
}

/// Server CPU µs per delivery between two samples; `None` without both,
/// or without a delivery.
pub fn cpu_us_per_delivery(
    before: Option<ProcSample>,
    after: Option<ProcSample>,
    received: u64,
) -> Option<f64> {
    match (before, after) {
        (Some(before), Some(after)) if received > 0 => {
            Some((after.cpu - before.cpu).as_secs_f64() * 1e6 / received as f64)
        }
        _ => None,
    }
}

/// Per thread role (the thread's name without its number: `reader-17` is
/// `reader`): nanoseconds on a CPU (from `schedstat`, which is exact; the
/// per-thread clock ticks in `stat` are sampled, and summed over a
/// thousand briefly running threads they miss about half), and context
/// switches, voluntary (the thread went to sleep) and not (it was
/// preempted), summed over the role's threads. Threads that ended before
/// the sample are not in it, so compare two samples taken while every
/// client is connected.
pub type RoleSample = HashMap<String, [u64; 3]>;

pub fn role_sample(pids: &[u32]) -> Option<RoleSample> {
    if pids.is_empty() {
        return None;
    }
    let mut roles = RoleSample::new();
    for pid in pids {
        add_roles(*pid, &mut roles)?;
    }
    Some(roles)
}

/// How many of the servers' threads are a client's reader or writer
/// (named `reader-N`, `writer-N`): whatever else a server runs depends on
/// its flags (which doors are open), the clients' threads do not.
pub fn client_threads(pids: &[u32]) -> Option<u64> {
    let mut count = 0;
    for pid in pids {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let role = comm
                .trim()
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
            count += u64::from(role == "reader" || role == "writer");
        }
    }
    Some(count)
}

fn add_roles(pid: u32, roles: &mut RoleSample) -> Option<()> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for task in tasks.flatten() {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file));
        let (Ok(comm), Ok(status), Ok(schedstat)) =
            (read("comm"), read("status"), read("schedstat"))
        else {
            continue; // the thread ended meanwhile
        };
        let role = comm
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        let first_number = |text: &str| text.split_whitespace().next()?.parse::<u64>().ok();
        let switches = |key: &str| {
            let value = status.lines().find_map(|line| line.strip_prefix(key));
            value.and_then(first_number).unwrap_or(0)
        };
        let entry = roles.entry(role.to_string()).or_default();
        entry[0] += first_number(&schedstat).unwrap_or(0);
        entry[1] += switches("voluntary_ctxt_switches:");
        entry[2] += switches("nonvoluntary_ctxt_switches:");
    }
    Some(())
}

/// Per role, per delivery, between two samples: CPU µs, sleeps and
/// preemptions; the busiest role first. Empty without both samples, or
/// without a delivery.
pub fn roles_per_delivery(
    before: Option<RoleSample>,
    after: Option<RoleSample>,
    received: u64,
) -> Vec<(String, [f64; 3])> {
    let mut roles: Vec<(String, [f64; 3])> = match (before, after) {
        (Some(before), Some(after)) if received > 0 => after
            .iter()
            .map(|(role, now)| {
                let then = before.get(role).copied().unwrap_or_default();
                let per = |i: usize| now[i].saturating_sub(then[i]) as f64 / received as f64;
                let cpu_us = per(0) / 1e3;
                (role.clone(), [cpu_us, per(1), per(2)])
            })
            .collect(),
        _ => Vec::new(),
    };
    roles.sort_by(|a, b| b.1[0].total_cmp(&a.1[0]));
    roles
}
