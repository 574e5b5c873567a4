//! What is measured, per mode: what the senders (or, for `users`, client 0)
//! do for `--duration` while every client's `Tally` counts what arrives.
//! Chaos mode is not here: it has a run of its own (`chaos/`).

use std::io;
use std::time::{Duration, Instant};

use crate::args::{Args, Mode};
use crate::swarm::Swarm;

/// Runs the mode's workload; returns how many numbered lines were sent.
pub fn drive(swarm: &mut Swarm, args: &Args) -> io::Result<u64> {
    match args.mode {
        // Dispatched to `chaos::main` before `run` is called.
        Mode::Chaos => unreachable!("chaos mode has its own run"),
        Mode::Capacity => hold(swarm, args.duration).map(|()| 0),
        Mode::Users => ask_users(swarm, args.samples).map(|()| 0),
        Mode::Fanout => fanout(swarm, args),
        Mode::Saturate => saturate(swarm, args),
    }
}

/// capacity: every client connected and idle; only the server's answers to
/// that (and its memory, sampled by the caller) matter.
fn hold(swarm: &mut Swarm, duration: Duration) -> io::Result<()> {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        swarm.pump(Duration::from_millis(50))?;
    }
    Ok(())
}

/// users: one `/users` at a time, so that each reply's time is its own.
fn ask_users(swarm: &mut Swarm, samples: usize) -> io::Result<()> {
    for _ in 0..samples {
        swarm.tally.users_sent_at = Some(Instant::now());
        swarm.send(0, "/users");
        swarm.pump_until(Duration::from_secs(10), |s| s.tally.users_sent_at.is_none())?;
    }
    Ok(())
}

/// fanout: the senders take turns, one line every 1/--rate s in all.
fn fanout(swarm: &mut Swarm, args: &Args) -> io::Result<u64> {
    let mut lines = Numbered::new(args.senders);
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let mut next = Instant::now();
    let end = Instant::now() + args.duration;
    while Instant::now() < end {
        while next <= Instant::now() {
            let sender = (lines.sent % args.senders as u64) as usize;
            lines.send(swarm, sender);
            next += interval;
        }
        swarm.pump(next.saturating_duration_since(Instant::now()))?;
    }
    Ok(lines.sent)
}

/// saturate: each sender keeps --window lines in flight, as seen by the
/// probe client, so the server sets the pace.
fn saturate(swarm: &mut Swarm, args: &Args) -> io::Result<u64> {
    let mut lines = Numbered::new(args.senders);
    let end = Instant::now() + args.duration;
    while Instant::now() < end {
        for sender in 0..args.senders {
            let seen = swarm.tally.probe_seen.get(&sender).copied().unwrap_or(0);
            while lines.seq[sender] < seen + args.window {
                lines.send(swarm, sender);
            }
        }
        swarm.pump(Duration::from_millis(1))?;
    }
    Ok(lines.sent)
}

/// The numbered, timestamped `LG` lines sent so far.
struct Numbered {
    /// Per sender: the last sequence number sent.
    seq: Vec<u64>,
    sent: u64,
}

impl Numbered {
    fn new(senders: usize) -> Numbered {
        Numbered {
            seq: vec![0; senders],
            sent: 0,
        }
    }

    /// Sends `sender`'s next line.
    fn send(&mut self, swarm: &mut Swarm, sender: usize) {
        self.seq[sender] += 1;
        let line = format!("LG {sender} {} {}", self.seq[sender], swarm.now_us());
        swarm.send(sender, &line);
        self.sent += 1;
    }
}
