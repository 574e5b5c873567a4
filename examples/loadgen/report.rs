//! The `Report` of one run (every mode but chaos), printed as a table for
//! people or as one JSON object for the scripts in benches/ and .ci/run,
//! which read its keys: a key renamed here breaks them.

use std::fmt::Write as _;

use crate::args::{Mode, Protocol};
use crate::procstat::ProcSample;

pub struct Report {
    pub mode: Mode,
    pub protocol: Protocol,
    /// Per thread role: server CPU µs, voluntary and involuntary context
    /// switches, each per delivery.
    pub roles: Vec<(String, [f64; 3])>,
    pub clients: usize,
    pub senders: usize,
    pub slow: usize,
    pub rate: f64,
    pub connected: usize,
    pub connect_failed: usize,
    pub connect_secs: f64,
    pub dropped_later: usize,
    pub told_dropped: u64,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub measure_secs: f64,
    pub latency_ms: Option<[f64; 6]>,
    /// Deliveries from a sender on another server (several --addr).
    pub cross_ms: Option<[f64; 6]>,
    /// Per line: the latency of its first arrival anywhere.
    pub first_ms: Option<[f64; 6]>,
    /// Per line: from its first arrival to its last.
    pub spread_ms: Option<[f64; 6]>,
    pub users_ms: Option<[f64; 6]>,
    pub idle: Option<ProcSample>,
    pub baseline: Option<ProcSample>,
    pub cpu_us_per_delivery: Option<f64>,
    pub peak: Option<ProcSample>,
    pub shutdown_secs: Option<f64>,
}

/// One `name value` line of the table.
fn row(out: &mut String, name: &str, value: String) {
    let _ = writeln!(out, "{name:<28} {value}");
}

fn percentiles_text(values: &[f64; 6]) -> String {
    format!(
        "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3})",
        values[0], values[1], values[2], values[3], values[4], values[5]
    )
}

impl Report {
    pub fn lossless(&self) -> bool {
        self.connect_failed == 0 && self.received >= self.expected
    }

    fn rss_per_client_kib(&self) -> Option<f64> {
        let (idle, baseline) = (self.idle?, self.baseline?);
        Some((idle.rss_kib as f64 - baseline.rss_kib as f64) / self.connected.max(1) as f64)
    }

    fn deliveries_per_sec(&self) -> f64 {
        self.received as f64 / self.measure_secs.max(1e-9)
    }

    fn latencies(&self) -> [(&'static str, &'static str, &Option<[f64; 6]>); 5] {
        [
            ("latency", "latency ms", &self.latency_ms),
            ("cross", "from another server ms", &self.cross_ms),
            ("first", "first arrival of a line ms", &self.first_ms),
            ("spread", "first to last arrival ms", &self.spread_ms),
            ("users", "/users reply ms", &self.users_ms),
        ]
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        self.client_rows(&mut out);
        if matches!(self.mode, Mode::Fanout | Mode::Saturate) {
            self.delivery_rows(&mut out);
        }
        for (_, name, values) in self.latencies() {
            if let Some(values) = values {
                row(&mut out, name, percentiles_text(values));
            }
        }
        self.server_rows(&mut out);
        out
    }

    fn client_rows(&self, out: &mut String) {
        row(out, "mode", self.mode.name().to_string());
        row(
            out,
            "protocol",
            format!("{:?}", self.protocol).to_lowercase(),
        );
        row(
            out,
            "clients",
            format!(
                "{} ({} senders, {} slow)",
                self.clients, self.senders, self.slow
            ),
        );
        row(
            out,
            "connections ok / failed",
            format!(
                "{} / {} (in {:.2} s)",
                self.connected, self.connect_failed, self.connect_secs
            ),
        );
        row(
            out,
            "closed by the server later",
            self.dropped_later.to_string(),
        );
    }

    fn delivery_rows(&self, out: &mut String) {
        let lost = self.expected.saturating_sub(self.received);
        row(out, "messages sent", self.sent.to_string());
        row(
            out,
            "deliveries expected / recv",
            format!("{} / {}", self.expected, self.received),
        );
        row(
            out,
            "loss",
            format!(
                "{} ({:.3}%), of which the server said it dropped {}",
                lost,
                100.0 * lost as f64 / self.expected.max(1) as f64,
                self.told_dropped
            ),
        );
        row(
            out,
            "deliveries per second",
            format!("{:.0}", self.deliveries_per_sec()),
        );
    }

    fn server_rows(&self, out: &mut String) {
        if let Some(cpu) = self.cpu_us_per_delivery {
            row(out, "server CPU per delivery", format!("{cpu:.2} µs"));
        }
        for (role, [cpu_us, voluntary, preempted]) in &self.roles {
            row(
                out,
                &format!("  {role} threads"),
                format!("{cpu_us:.2} µs, {voluntary:.2} sleeps, {preempted:.2} preemptions per delivery"),
            );
        }
        if let Some(idle) = self.idle {
            row(
                out,
                "server idle RSS / threads",
                format!("{} KiB / {}", idle.rss_kib, idle.threads),
            );
        }
        if let Some(per_client) = self.rss_per_client_kib() {
            row(out, "server RSS per client", format!("{per_client:.1} KiB"));
        }
        if let Some(peak) = self.peak {
            row(
                out,
                "server RSS / threads after",
                format!("{} KiB / {}", peak.rss_kib, peak.threads),
            );
        }
        if let Some(secs) = self.shutdown_secs {
            row(out, "server shutdown", format!("{secs:.3} s"));
        }
    }

    /// One line of JSON, its keys always in the same order.
    pub fn json(&self) -> String {
        let mut fields = self.count_fields();
        self.latency_fields(&mut fields);
        self.server_fields(&mut fields);
        let body: Vec<String> = fields
            .into_iter()
            .map(|(key, value)| format!("\"{key}\":{value}"))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    fn count_fields(&self) -> Vec<(String, String)> {
        vec![
            ("mode".into(), format!("\"{}\"", self.mode.name())),
            (
                "protocol".into(),
                format!("\"{:?}\"", self.protocol).to_lowercase(),
            ),
            ("clients".into(), self.clients.to_string()),
            ("senders".into(), self.senders.to_string()),
            ("slow".into(), self.slow.to_string()),
            ("rate".into(), format!("{}", self.rate)),
            ("connected".into(), self.connected.to_string()),
            ("connect_failed".into(), self.connect_failed.to_string()),
            ("connect_secs".into(), format!("{:.3}", self.connect_secs)),
            ("closed_by_server".into(), self.dropped_later.to_string()),
            ("told_dropped".into(), self.told_dropped.to_string()),
            ("sent".into(), self.sent.to_string()),
            ("expected".into(), self.expected.to_string()),
            ("received".into(), self.received.to_string()),
            (
                "deliveries_per_sec".into(),
                format!("{:.0}", self.deliveries_per_sec()),
            ),
        ]
    }

    fn latency_fields(&self, fields: &mut Vec<(String, String)>) {
        let names = ["p50", "p90", "p99", "p999", "max", "mean"];
        for (prefix, _, values) in self.latencies() {
            if let Some(values) = values {
                for (name, value) in names.iter().zip(values) {
                    fields.push((format!("{prefix}_{name}_ms"), format!("{value:.3}")));
                }
            }
        }
    }

    fn server_fields(&self, fields: &mut Vec<(String, String)>) {
        if let Some(cpu) = self.cpu_us_per_delivery {
            fields.push(("cpu_us_per_delivery".into(), format!("{cpu:.3}")));
        }
        for (role, [cpu_us, voluntary, preempted]) in &self.roles {
            fields.push((
                format!("{role}_cpu_us_per_delivery"),
                format!("{cpu_us:.3}"),
            ));
            fields.push((
                format!("{role}_sleeps_per_delivery"),
                format!("{voluntary:.3}"),
            ));
            fields.push((
                format!("{role}_preempted_per_delivery"),
                format!("{preempted:.3}"),
            ));
        }
        if let Some(idle) = self.idle {
            fields.push(("idle_rss_kib".into(), idle.rss_kib.to_string()));
            fields.push(("idle_threads".into(), idle.threads.to_string()));
        }
        if let Some(per_client) = self.rss_per_client_kib() {
            fields.push(("rss_per_client_kib".into(), format!("{per_client:.1}")));
        }
        if let Some(peak) = self.peak {
            fields.push(("after_rss_kib".into(), peak.rss_kib.to_string()));
        }
        if let Some(secs) = self.shutdown_secs {
            fields.push(("shutdown_secs".into(), format!("{secs:.3}")));
        }
    }
}

/// p50, p90, p99, p99.9, max and mean, in ms, of µs values; `None` for none.
pub fn percentiles_ms(values: &mut [u32]) -> Option<[f64; 6]> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let at = |q: f64| {
        let index = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
        values[index] as f64 / 1000.0
    };
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64 / 1000.0;
    Some([
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        values[values.len() - 1] as f64 / 1000.0,
        mean,
    ])
}
