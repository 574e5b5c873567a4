//! What the simulated clients have seen, across all of them, and what each
//! line a registered client receives means for it: a `/users` reply, a
//! notice that the server dropped lines, or a numbered `LG` line, whose
//! latency is recorded, found wherever the server puts it in its line.

use std::collections::HashMap;
use std::time::Instant;

#[derive(Default)]
pub struct Tally {
    pub registered: usize,
    pub failed: usize,
    /// Connections the server closed after registration.
    pub dropped_later: usize,
    /// Lines the server said it dropped: the number before "lines were
    /// dropped" in the line that says so (threadchat tells a client that
    /// fell behind how many lines it missed, as `! N lines were dropped`, or
    /// through its IRC door in a NOTICE; other servers may say nothing).
    pub told_dropped: u64,
    /// Whether to count and time `LG` lines (not during the warm-up).
    pub measuring: bool,
    pub received: u64,
    pub latencies_us: Vec<u32>,
    /// The same, for deliveries whose sender is on another server.
    pub cross_latencies_us: Vec<u32>,
    /// For each line sent (sender, seq): the latency of its first and of its
    /// last arrival so far. The difference is how long the server took to go
    /// round all of that line's recipients, which is what bounds the tail of
    /// a fan-out on a thread-per-connection server.
    pub arrivals_us: HashMap<(usize, u64), (u32, u32)>,
    /// Highest sequence number of each sender seen by the probe client.
    pub probe_seen: HashMap<usize, u64>,
    pub probe: usize,
    /// users mode: when `/users` was sent, and the replies' times.
    pub users_sent_at: Option<Instant>,
    pub users_replies: Vec<u32>,
    pub last_byte: Option<Instant>,
}

/// Where a client sits among the servers and in time, for one line.
pub struct Receiver {
    pub index: usize,
    /// Client i is on server i mod `servers`.
    pub servers: usize,
    pub now: Instant,
    /// The zero of the `LG` lines' timestamps.
    pub epoch: Instant,
}

impl Tally {
    /// One line that the registered client `at.index` received.
    pub fn on_line(&mut self, at: &Receiver, line: &[u8]) {
        self.on_users_reply(at, line);
        if !self.measuring {
            return;
        }
        if let Some(at) = find(line, b" lines were dropped") {
            self.told_dropped += last_number(&line[..at]).unwrap_or(0);
            return;
        }
        let Some((sender, seq, sent_us)) = numbered(line) else {
            return;
        };
        if sender == at.index {
            return; // an echo of our own line, if the server echoes
        }
        let now_us = at.now.duration_since(at.epoch).as_micros() as u64;
        let latency_us = now_us.saturating_sub(sent_us).min(u32::MAX as u64) as u32;
        self.on_delivery(at, sender, seq, latency_us);
    }

    fn on_users_reply(&mut self, at: &Receiver, line: &[u8]) {
        if let Some(sent) = self.users_sent_at {
            if at.index == 0 && line.starts_with(b"* online") {
                self.users_replies
                    .push(at.now.duration_since(sent).as_micros() as u32);
                self.users_sent_at = None;
            }
        }
    }

    fn on_delivery(&mut self, at: &Receiver, sender: usize, seq: u64, latency_us: u32) {
        self.received += 1;
        self.latencies_us.push(latency_us);
        if at.servers > 1 && sender % at.servers != at.index % at.servers {
            self.cross_latencies_us.push(latency_us);
        }
        let (first, last) = self
            .arrivals_us
            .entry((sender, seq))
            .or_insert((latency_us, latency_us));
        *first = (*first).min(latency_us);
        *last = (*last).max(latency_us);
        if at.index == self.probe {
            let seen = self.probe_seen.entry(sender).or_insert(0);
            *seen = (*seen).max(seq);
        }
    }
}

/// The digits at the end of `text`, as a number.
fn last_number(text: &[u8]) -> Option<u64> {
    let start = text
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |at| at + 1);
    std::str::from_utf8(&text[start..])
        .ok()?
        .parse::<u64>()
        .ok()
}

/// The sender, sequence number and send time (µs) of the `LG` text
/// anywhere in `line`.
fn numbered(line: &[u8]) -> Option<(usize, u64, u64)> {
    let at = find(line, b"LG ")?;
    let mut fields = line[at + 3..]
        .split(|&b| b == b' ')
        .map(|field| std::str::from_utf8(field).ok()?.trim().parse::<u64>().ok());
    let (Some(Some(sender)), Some(Some(seq)), Some(Some(sent_us))) =
        (fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    Some((sender as usize, seq, sent_us))
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
