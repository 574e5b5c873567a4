//! Chaos mode: a soak test of everything at once, from the same one thread.
//!
//! Every simulated client, once registered, acts at random every couple of
//! seconds: it chats, changes rooms, renames itself, whispers, asks for
//! lists, sends junk and over-long lines, vanishes abruptly and comes back
//! under a new name, or stops reading for a few seconds. Now and then one
//! turns greedy: it stops reading and asks for hundreds of `/users` replies,
//! more than the kernel buffers, so that its backlog overflows and lines are
//! dropped for it. Meanwhile every client checks what it receives.
//!
//! Memory is compared between a *warm* baseline, taken halfway through the
//! run, and the end, once everyone is back and quiet: growth past 10 % in
//! the second half would be a leak. Not earlier: in the first minutes each
//! client's buffers grow to their working size and the allocator builds up
//! the memory it keeps for reuse, which is warm-up, not a leak
//! (docs/RELIABILITY.md measured it).
//!
//! **How loss is detected.** A chat line reads `CH <sender> <stint> <seq>`.
//! A sender's *stint* changes whenever it changes room or reconnects, and
//! `seq` counts from 0 within a stint, so all lines of one stint go to one
//! room, in order. A receiver keeps, for each (sender, stint), the last
//! `seq` it saw, and forgets them all when it changes room itself (its
//! *view*). Within a view, the next line of a (sender, stint) must be the
//! next `seq`. A jump is a *told* gap if a `! N lines were dropped` notice
//! arrived since that pair's previous line, and a *silent* one otherwise.
//! A line that goes backwards is out of order. Silent gaps and disorder
//! must both be zero.
//!
//! Here: the run, step by step. `client.rs` has the clients and the loop
//! that drives them, `acts.rs` what they do at random, `report.rs` the
//! counts, the checks and their report.

mod acts;
mod client;
mod report;
#[path = "../../../tests/common/rng.rs"]
mod rng;

use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::Events;

use crate::args::Args;
use crate::procstat::{client_threads, proc_sample, ProcSample};
use crate::spawn::attach;
use client::Chaos;
use report::Report;
use rng::Rng;

const ROOMS: [&str; 5] = ["lobby", "alpha", "beta", "gamma", "delta"];

/// The mean time between two actions of one client.
const MEAN_ACTION_GAP_MS: u64 = 2000;

/// Clients that connect at once at the start (and wait for their welcome).
const CONNECT_BATCH: usize = 100;

/// How often the server's memory is written down during the run.
const RSS_TRACE_EVERY: Duration = Duration::from_secs(30);

/// `/users` a greedy client asks for: with 1,000 online, replies of about
/// 10 KB each, 8 MB in all, twice what the kernel buffers for a socket.
const GREEDY_ASKS: usize = 800;

pub fn main(args: &Args) -> ExitCode {
    match run(args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            let failures = report.failures();
            if args.expect_zero_loss && !failures.is_empty() {
                eprintln!("error: chaos checks failed: {}", failures.join("; "));
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> io::Result<Report> {
    let server = attach(args)?;
    let mut chaos = Chaos::new(server.addrs[0], args.clients, Rng::new(args.seed))?;
    let mut events = Events::with_capacity(4096);
    connect_everyone(&mut chaos, &mut events, args.clients)?;
    chaos.pump_until_quiet(&mut events, Duration::from_secs(1), Duration::from_secs(30))?;
    let soak = soak(&mut chaos, &mut events, &server.pids, args.duration)?;
    calm_down(&mut chaos, &mut events, args.clients)?;
    // What the server says, from one client's `/stats`.
    let (online, connections) = chaos.ask_stats(&mut events)?;
    let end = proc_sample(&server.pids);
    Ok(Report {
        clients: args.clients,
        seconds: soak.seconds,
        seed: args.seed,
        connected_at_end: chaos.connected(),
        registered_at_end: chaos.registered(),
        server_online: online,
        server_connections: connections,
        client_threads_end: client_threads(&server.pids),
        threads_baseline: soak.baseline.map(|s| s.threads),
        threads_end: end.map(|s| s.threads),
        rss_baseline_kib: soak.baseline.map(|s| s.rss_kib),
        rss_end_kib: end.map(|s| s.rss_kib),
        rss_trace: soak.rss_trace,
        counts: chaos.counts,
    })
}

/// Everyone connects and registers, a batch at a time.
fn connect_everyone(chaos: &mut Chaos, events: &mut Events, clients: usize) -> io::Result<()> {
    for batch in (0..clients).collect::<Vec<_>>().chunks(CONNECT_BATCH) {
        for &index in batch {
            chaos.connect(index)?;
        }
        let want = batch[batch.len() - 1] + 1;
        if !chaos.pump_until(events, Duration::from_secs(60), |c| c.registered() >= want)? {
            return Err(io::Error::other(format!(
                "only {} of {want} clients registered within 60 s",
                chaos.registered()
            )));
        }
    }
    Ok(())
}

/// What the soak itself measured.
struct Soak {
    seconds: f64,
    /// The server, halfway through: the warm baseline.
    baseline: Option<ProcSample>,
    /// (seconds into the run, RSS in KiB), every `RSS_TRACE_EVERY`.
    rss_trace: Vec<(u64, u64)>,
}

/// The chaos itself, for `duration`, with the memory baseline taken once
/// it is warm.
fn soak(
    chaos: &mut Chaos,
    events: &mut Events,
    pids: &[u32],
    duration: Duration,
) -> io::Result<Soak> {
    chaos.acting = true;
    let started = Instant::now();
    let warm_at = duration / 2;
    let mut baseline = None;
    let mut rss_trace = Vec::new();
    let mut next_trace = Duration::ZERO;
    while started.elapsed() < duration {
        chaos.pump(events)?;
        if baseline.is_none() && started.elapsed() >= warm_at {
            baseline = proc_sample(pids);
        }
        if started.elapsed() >= next_trace {
            if let Some(sample) = proc_sample(pids) {
                rss_trace.push((next_trace.as_secs(), sample.rss_kib));
            }
            next_trace += RSS_TRACE_EVERY;
        }
    }
    chaos.acting = false;
    Ok(Soak {
        seconds: started.elapsed().as_secs_f64(),
        baseline,
        rss_trace,
    })
}

/// The absent come back, the paused read, until nothing moves.
fn calm_down(chaos: &mut Chaos, events: &mut Events, clients: usize) -> io::Result<()> {
    chaos.wake_everyone();
    chaos.pump_until(events, Duration::from_secs(60), |c| {
        c.registered() == clients
    })?;
    chaos.pump_until_quiet(events, Duration::from_secs(2), Duration::from_secs(60))
}
