//! One run of the fanout, saturate, users or capacity mode, in its steps:
//! attach to the server, connect and register every client, let the join
//! notices pass, measure the workload and drain what is still coming, time
//! the server's shutdown, and put the figures into a `Report`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::args::{Args, Mode, Protocol};
use crate::procstat::{self, proc_sample, role_sample, ProcSample, RoleSample};
use crate::report::{percentiles_ms, Report};
use crate::spawn::attach;
use crate::swarm::Swarm;
use crate::tally::Tally;

pub fn run(args: &Args) -> io::Result<Report> {
    let mut server = attach(args)?;
    let baseline = proc_sample(&server.pids);
    let mut swarm = Swarm::new(args.protocol, args.senders, server.addrs.len())?;
    let connected = connect_all(&mut swarm, &server.addrs, args)?;
    settle(&mut swarm)?;
    let idle = proc_sample(&server.pids);
    let measured = measure(&mut swarm, &server.pids, args)?;
    let dropped_later = swarm.tally.dropped_later;
    // With every client still connected.
    let shutdown_secs = server.time_shutdown(|| swarm.pump(Duration::from_millis(5)))?;
    let roles = procstat::roles_per_delivery(
        measured.roles_before,
        measured.roles_after,
        swarm.tally.received,
    );
    let tally = &mut swarm.tally;
    let (first_ms, spread_ms) = arrival_percentiles(tally);
    Ok(Report {
        mode: args.mode,
        protocol: args.protocol,
        roles,
        clients: args.clients,
        senders: args.senders,
        slow: args.slow,
        rate: args.rate,
        connected: args.clients - connected.failed,
        connect_failed: connected.failed,
        connect_secs: connected.secs,
        dropped_later,
        told_dropped: tally.told_dropped,
        sent: measured.sent,
        expected: measured.expected,
        received: tally.received,
        measure_secs: measured.secs,
        latency_ms: percentiles_ms(&mut tally.latencies_us),
        cross_ms: percentiles_ms(&mut tally.cross_latencies_us),
        first_ms,
        spread_ms,
        users_ms: percentiles_ms(&mut tally.users_replies),
        idle,
        baseline,
        cpu_us_per_delivery: measured.cpu_us_per_delivery,
        peak: measured.after,
        shutdown_secs,
    })
}

/// How connecting and registering went.
struct Connected {
    secs: f64,
    /// Clients that never registered, or were never even started.
    failed: usize,
}

/// Connects and registers every client, spread over the servers in turn.
fn connect_all(swarm: &mut Swarm, addrs: &[SocketAddr], args: &Args) -> io::Result<Connected> {
    let started = Instant::now();
    // Registering N clients in one room costs the server N^2/2 join notices
    // (about five minutes for 10,000 on two cores), so the limit grows with
    // the square of the count.
    let thousands = args.clients as f64 / 1000.0;
    let limit = Duration::from_secs_f64(60.0 + 4.0 * thousands * thousands);
    while swarm.clients.len() < args.clients && started.elapsed() < limit {
        open_more(swarm, addrs, args);
        swarm.pump(Duration::from_millis(5))?;
    }
    swarm.pump_until(limit.saturating_sub(started.elapsed()), |s| {
        s.tally.registered + s.tally.failed >= args.clients
    })?;
    let secs = started.elapsed().as_secs_f64();
    // Whatever has not registered by now has failed.
    let failed = swarm.tally.failed + swarm.in_progress() + (args.clients - swarm.clients.len());
    Ok(Connected { secs, failed })
}

/// Starts connections until --in-flight are in progress: a server that
/// listens with std's backlog of 128 drops SYNs past it, and each dropped
/// SYN costs a one-second retransmission.
fn open_more(swarm: &mut Swarm, addrs: &[SocketAddr], args: &Args) {
    for _ in swarm.in_progress()..args.in_flight {
        if swarm.clients.len() == args.clients {
            break;
        }
        let addr = addrs[swarm.clients.len() % addrs.len()];
        if swarm.connect(addr).is_err() {
            // Nothing to clean up: the client never existed. Counted as one
            // that never registered.
            break;
        }
    }
}

/// Lets the storm of join notices pass: until nothing has arrived for half
/// a second (at most two minutes), so that it is not measured.
fn settle(swarm: &mut Swarm) -> io::Result<()> {
    swarm.pump_until_quiet(Duration::from_millis(500), Duration::from_secs(120), |_| {
        false
    })
}

/// What the measured part of the run sent, and the server's samples around it.
struct Measured {
    sent: u64,
    expected: u64,
    secs: f64,
    after: Option<ProcSample>,
    cpu_us_per_delivery: Option<f64>,
    roles_before: Option<RoleSample>,
    roles_after: Option<RoleSample>,
}

fn measure(swarm: &mut Swarm, pids: &[u32], args: &Args) -> io::Result<Measured> {
    // Senders are the first clients, slow ones the next, the probe the last.
    for index in args.senders..args.senders + args.slow {
        swarm.stop_reading(index)?;
    }
    swarm.tally.probe = args.clients - 1;
    let before = proc_sample(pids);
    let roles_before = role_sample(pids);
    let started = Instant::now();
    swarm.tally.measuring = true;
    let sent = crate::workload::drive(swarm, args)?;
    let expected = sent * receivers(&swarm.tally, args);
    if matches!(args.mode, Mode::Fanout | Mode::Saturate) {
        // Drain: until everything expected arrived, or nothing more comes.
        swarm.pump_until_quiet(Duration::from_secs(2), Duration::from_secs(30), |s| {
            s.tally.received >= expected
        })?;
    }
    let secs = started.elapsed().as_secs_f64();
    let after = proc_sample(pids);
    let roles_after = role_sample(pids);
    Ok(Measured {
        sent,
        expected,
        secs,
        after,
        cpu_us_per_delivery: procstat::cpu_us_per_delivery(before, after, swarm.tally.received),
        roles_before,
        roles_after,
    })
}

/// How many clients should get each line: every reading client but the
/// sender itself (with Redis, the senders only publish, so none of them).
fn receivers(tally: &Tally, args: &Args) -> u64 {
    let not_receiving = match args.protocol {
        Protocol::Threadchat | Protocol::Irc => 1,
        Protocol::Redis => args.senders,
    };
    (tally.registered as u64).saturating_sub((args.slow + not_receiving) as u64)
}

/// Per line: the percentiles of its first arrival, and of the time from
/// its first arrival to its last.
fn arrival_percentiles(tally: &Tally) -> (Option<[f64; 6]>, Option<[f64; 6]>) {
    let (mut first_us, mut spread_us): (Vec<u32>, Vec<u32>) = tally
        .arrivals_us
        .values()
        .map(|&(first, last)| (first, last - first))
        .unzip();
    (
        percentiles_ms(&mut first_us),
        percentiles_ms(&mut spread_us),
    )
}
