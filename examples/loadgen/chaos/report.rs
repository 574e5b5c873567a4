//! What a chaos run did and found, the checks that decide whether it
//! passed, and its report: a table for people, or one JSON object.

use std::fmt::Write as _;

use super::GREEDY_ASKS;

/// What the run did and found; every field is a count.
#[derive(Default, Debug)]
pub struct Counts {
    pub chat_sent: u64,
    pub joins: u64,
    pub renames: u64,
    pub whispers: u64,
    pub lists: u64,
    pub junk: u64,
    pub over_long: u64,
    pub disconnects: u64,
    pub pauses: u64,
    pub greedy: u64,
    pub chat_received: u64,
    pub errors_received: u64,
    pub notices: u64,
    pub told_dropped: u64,
    pub told_gap_lines: u64,
    pub silent_gap_lines: u64,
    pub out_of_order: u64,
}

pub struct Report {
    pub clients: usize,
    pub seconds: f64,
    pub seed: u64,
    pub counts: Counts,
    pub connected_at_end: usize,
    pub registered_at_end: usize,
    pub server_online: Option<u64>,
    pub server_connections: Option<u64>,
    pub threads_baseline: Option<u64>,
    pub threads_end: Option<u64>,
    /// Of those, the clients' readers and writers.
    pub client_threads_end: Option<u64>,
    pub rss_baseline_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    /// (seconds into the run, RSS in KiB), every 30 s.
    pub rss_trace: Vec<(u64, u64)>,
}

impl Report {
    /// Every check that failed, in words; empty when all held.
    pub fn failures(&self) -> Vec<String> {
        let c = &self.counts;
        let mut failures = Vec::new();
        if c.silent_gap_lines > 0 {
            failures.push(format!(
                "{} lines lost without a notice",
                c.silent_gap_lines
            ));
        }
        if c.out_of_order > 0 {
            failures.push(format!("{} lines out of order or repeated", c.out_of_order));
        }
        self.end_failures(&mut failures);
        failures
    }

    /// The checks of the state at the end: everyone back, the server's
    /// counts agreeing with ours, no thread or memory left over.
    fn end_failures(&self, failures: &mut Vec<String>) {
        if self.registered_at_end != self.clients {
            failures.push(format!(
                "{} of {} clients registered at the end",
                self.registered_at_end, self.clients
            ));
        }
        if self.server_online != Some(self.registered_at_end as u64) {
            failures.push(format!(
                "the server says {:?} online, the generator has {} registered",
                self.server_online, self.registered_at_end
            ));
        }
        if self.server_connections != Some(self.connected_at_end as u64) {
            failures.push(format!(
                "the server says {:?} connections, the generator has {} open",
                self.server_connections, self.connected_at_end
            ));
        }
        if let (Some(threads), Some(connections)) =
            (self.client_threads_end, self.server_connections)
        {
            if threads != 2 * connections {
                failures.push(format!(
                    "{threads} readers and writers, not 2 x {connections} connections"
                ));
            }
        }
        if let (Some(before), Some(after)) = (self.rss_baseline_kib, self.rss_end_kib) {
            if after as f64 > before as f64 * 1.10 {
                failures.push(format!(
                    "RSS {after} KiB at the end, more than 10 % over the {before} KiB baseline"
                ));
            }
        }
    }

    pub fn table(&self) -> String {
        let c = &self.counts;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "chaos: {} clients for {:.0} s (seed {})",
            self.clients, self.seconds, self.seed
        );
        let _ = writeln!(
            out,
            "  acts:       {} chat lines, {} joins, {} renames, {} whispers, {} lists",
            c.chat_sent, c.joins, c.renames, c.whispers, c.lists
        );
        let _ = writeln!(out, "  faults:     {} abrupt disconnects, {} pauses in reading (1-5 s), {} greedy stalls ({GREEDY_ASKS} /users unread)", c.disconnects, c.pauses, c.greedy);
        let _ = writeln!(
            out,
            "  bad input:  {} junk lines, {} over-long lines; {} error replies",
            c.junk, c.over_long, c.errors_received
        );
        let _ = writeln!(
            out,
            "  received:   {} chat lines; {} drop notices telling of {} lines",
            c.chat_received, c.notices, c.told_dropped
        );
        let _ = writeln!(
            out,
            "  gaps:       {} lines in told gaps, {} lost without a notice, {} out of order",
            c.told_gap_lines, c.silent_gap_lines, c.out_of_order
        );
        self.end_rows(&mut out);
        out
    }

    fn end_rows(&self, out: &mut String) {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let _ = writeln!(
            out,
            "  at the end: {} connected, {} registered; server: {} online, {} connections",
            self.connected_at_end,
            self.registered_at_end,
            opt(self.server_online),
            opt(self.server_connections)
        );
        let _ = writeln!(
            out,
            "  server:     threads {} -> {}, RSS {} -> {} KiB",
            opt(self.threads_baseline),
            opt(self.threads_end),
            opt(self.rss_baseline_kib),
            opt(self.rss_end_kib)
        );
        let trace: Vec<String> = self
            .rss_trace
            .iter()
            .map(|(s, kib)| format!("{s}s {kib}"))
            .collect();
        let _ = writeln!(out, "  RSS trace:  {} (KiB)", trace.join(", "));
        let failures = self.failures();
        let _ = writeln!(
            out,
            "  checks:     {}",
            if failures.is_empty() {
                "all held".to_string()
            } else {
                failures.join("; ")
            }
        );
    }

    /// One line of JSON, its keys always in the same order.
    pub fn json(&self) -> String {
        let c = &self.counts;
        let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
        let trace: Vec<String> = self
            .rss_trace
            .iter()
            .map(|(s, kib)| format!("[{s},{kib}]"))
            .collect();
        let fields = [
            ("mode", "\"chaos\"".to_string()),
            ("clients", self.clients.to_string()),
            ("seconds", format!("{:.1}", self.seconds)),
            ("seed", self.seed.to_string()),
            ("chat_sent", c.chat_sent.to_string()),
            ("joins", c.joins.to_string()),
            ("renames", c.renames.to_string()),
            ("whispers", c.whispers.to_string()),
            ("lists", c.lists.to_string()),
            ("junk", c.junk.to_string()),
            ("over_long", c.over_long.to_string()),
            ("disconnects", c.disconnects.to_string()),
            ("pauses", c.pauses.to_string()),
            ("greedy", c.greedy.to_string()),
            ("chat_received", c.chat_received.to_string()),
            ("errors_received", c.errors_received.to_string()),
            ("notices", c.notices.to_string()),
            ("told_dropped", c.told_dropped.to_string()),
            ("told_gap_lines", c.told_gap_lines.to_string()),
            ("silent_gap_lines", c.silent_gap_lines.to_string()),
            ("out_of_order", c.out_of_order.to_string()),
            ("connected_at_end", self.connected_at_end.to_string()),
            ("registered_at_end", self.registered_at_end.to_string()),
            ("server_online", opt(self.server_online)),
            ("server_connections", opt(self.server_connections)),
            ("threads_baseline", opt(self.threads_baseline)),
            ("threads_end", opt(self.threads_end)),
            ("rss_baseline_kib", opt(self.rss_baseline_kib)),
            ("rss_end_kib", opt(self.rss_end_kib)),
            ("rss_trace", format!("[{}]", trace.join(","))),
            ("checks_held", self.failures().is_empty().to_string()),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(key, value)| format!("\"{key}\":{value}"))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}
