//! What `/metrics` (Prometheus text format) and `/stats.json` (the live
//! view's data) say. Runs on an `http-N` thread: it gathers one [`Live`]
//! through `Shared`'s methods, each of which takes its lock and lets go,
//! and then formats it with no lock held.

use std::fmt::Write as _;

use crate::shared::gauges::{HistogramSnapshot, LockUse, Role};
use crate::shared::{ManagerView, Shared, StatsSnapshot};

/// The Content-Type of the Prometheus text exposition format.
pub(crate) const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything the two pages show, read at one moment.
pub(crate) struct Live {
    stats: StatsSnapshot,
    view: ManagerView,
    /// (role, running), for every role.
    threads: Vec<(&'static str, usize)>,
    events_depth: usize,
    fanout: HistogramSnapshot,
    /// (lock, how it has been used).
    locks: [(&'static str, LockUse); 2],
    /// Running with `--redis`.
    cluster: bool,
    limits: Limits,
}

/// The bounds the gauges are read against, from the command line.
struct Limits {
    max_total_backlog: usize,
    max_rooms: usize,
    max_history_bytes: usize,
}

impl Live {
    pub(crate) fn gather(shared: &Shared) -> Live {
        let gauges = &shared.gauges;
        let web = usize::from(shared.config.http.is_some());
        let cluster = shared.config.redis.is_some();
        let mut threads = vec![
            ("main", 1),
            ("acceptor", 1),
            ("manager", 1),
            ("monitor", 1),
            ("http_acceptor", web),
            ("reader", gauges.threads(Role::Reader)),
            ("writer", gauges.threads(Role::Writer)),
            ("http", gauges.threads(Role::Http)),
        ];
        if cluster {
            threads.extend([("redis_publisher", 1), ("redis_subscriber", 1)]);
        }
        Live {
            stats: shared.snapshot(),
            view: shared.stats.manager_view(),
            threads,
            events_depth: gauges
                .events_depth
                .load(std::sync::atomic::Ordering::Relaxed),
            fanout: gauges.fanout.snapshot(),
            locks: [
                ("clients", shared.clients.lock_use()),
                ("stats", shared.stats.lock_use()),
            ],
            cluster,
            limits: Limits {
                max_total_backlog: shared.config.max_total_backlog,
                max_rooms: shared.config.max_rooms,
                max_history_bytes: shared.config.max_history_bytes,
            },
        }
    }
}

/// `/metrics`.
pub(crate) fn prometheus(shared: &Shared) -> String {
    prometheus_text(&Live::gather(shared))
}

/// `/stats.json`: the live view, with the thread board and the history
/// (`board.rs`).
pub(crate) fn json(shared: &Shared) -> String {
    let board = super::board::fields(&shared.gauges.board, &shared.history);
    json_text(&Live::gather(shared), &board)
}

fn prometheus_text(live: &Live) -> String {
    let (s, v, c) = (&live.stats, &live.view, &live.limits);
    let mut out = String::new();
    // (name, type, help, value) of every single-valued metric.
    #[rustfmt::skip]
    let scalars = [
        ("online", "gauge", "Clients with a name.", s.online.to_string()),
        ("connections_open", "gauge", "Open chat connections, named or not.", s.connections_open.to_string()),
        ("connections_accepted_total", "counter", "Connections let in since start.", s.connections_accepted.to_string()),
        ("connections_refused_total", "counter", "Connections turned away (full, too many from one address, no threads).", s.connections_refused.to_string()),
        ("messages_in_total", "counter", "Chat lines, actions and whispers received.", s.messages_in.to_string()),
        ("lines_delivered_total", "counter", "Lines queued to clients.", s.lines_delivered.to_string()),
        ("lines_dropped_total", "counter", "Lines dropped for clients that did not keep up.", s.lines_dropped.to_string()),
        ("lines_refused_total", "counter", "Lines from clients refused with an error line (too long, too fast, bad command...).", s.lines_refused.to_string()),
        ("uptime_seconds", "gauge", "Seconds since the server started.", format!("{:.3}", s.uptime.as_secs_f64())),
        ("clients_evicted_total", "counter", "Clients disconnected because the backlogs together passed --max-total-backlog (the furthest behind first).", s.clients_evicted.to_string()),
        ("backlog_bytes", "gauge", "Bytes queued for every client together, not yet taken by their writers.", v.backlog_bytes.to_string()),
        ("backlog_max_bytes", "gauge", "--max-total-backlog: past it, the clients furthest behind are disconnected.", c.max_total_backlog.to_string()),
        ("rooms", "gauge", "Rooms /rooms lists: someone is in them, or the lobby.", v.rooms.to_string()),
        ("rooms_kept", "gauge", "Rooms in memory, the empty ones kept for their history included.", v.rooms_kept.to_string()),
        ("rooms_max", "gauge", "--max-rooms: rooms that may exist at once.", c.max_rooms.to_string()),
        ("history_bytes", "gauge", "Bytes every room's history holds together.", v.history_bytes.to_string()),
        ("history_max_bytes", "gauge", "--max-history-bytes: past it, the oldest lines of the biggest history go.", c.max_history_bytes.to_string()),
        ("events_queue_depth", "gauge", "Events waiting for the manager thread.", live.events_depth.to_string()),
    ];
    #[rustfmt::skip]
    let cluster = [
        ("cluster_received_total", "counter", "With --redis: messages from other servers handled.", s.cluster_received.to_string()),
        ("cluster_unpublished_total", "counter", "With --redis: messages for other servers that never reached Redis (queue full, or Redis down).", s.cluster_unpublished.to_string()),
    ];
    let cluster = if live.cluster { &cluster[..] } else { &[] };
    for (name, kind, help, value) in scalars.iter().chain(cluster) {
        let _ = write!(
            out,
            "# HELP threadchat_{name} {help}\n# TYPE threadchat_{name} {kind}\nthreadchat_{name} {value}\n"
        );
    }
    let _ = writeln!(
        out,
        "# HELP threadchat_threads Threads running, by role.\n# TYPE threadchat_threads gauge"
    );
    for (role, count) in &live.threads {
        let _ = writeln!(out, "threadchat_threads{{role=\"{role}\"}} {count}");
    }
    let mut per_lock = |name: &str, kind: &str, help: &str, value: &dyn Fn(&LockUse) -> String| {
        let _ = writeln!(
            out,
            "# HELP threadchat_{name} {help}\n# TYPE threadchat_{name} {kind}"
        );
        for (lock, used) in &live.locks {
            let _ = writeln!(out, "threadchat_{name}{{lock=\"{lock}\"}} {}", value(used));
        }
    };
    per_lock(
        "lock_acquisitions_total",
        "counter",
        "Times each lock was taken.",
        &|u| u.acquisitions.to_string(),
    );
    per_lock(
        "lock_contended_total",
        "counter",
        "Times a thread found the lock taken and waited.",
        &|u| u.contended.to_string(),
    );
    per_lock(
        "lock_wait_seconds_total",
        "counter",
        "Time spent waiting for each lock.",
        &|u| format!("{:.6}", u.wait.as_secs_f64()),
    );
    let fanout = &live.fanout;
    let _ = writeln!(
        out,
        "# HELP threadchat_fanout_seconds From a chat line reaching the manager to its last \
         recipient's writer finishing the write.\n# TYPE threadchat_fanout_seconds histogram"
    );
    for (bound, count) in &fanout.cumulative {
        let _ = writeln!(
            out,
            "threadchat_fanout_seconds_bucket{{le=\"{bound}\"}} {count}"
        );
    }
    let _ = writeln!(
        out,
        "threadchat_fanout_seconds_bucket{{le=\"+Inf\"}} {}",
        fanout.count
    );
    let _ = writeln!(
        out,
        "threadchat_fanout_seconds_sum {:.6}",
        fanout.sum_seconds
    );
    let _ = writeln!(out, "threadchat_fanout_seconds_count {}", fanout.count);
    out
}

/// The live view as one JSON object; `more` is more fields for it, each
/// after a comma.
fn json_text(live: &Live, more: &str) -> String {
    let s = &live.stats;
    let threads: Vec<String> = live
        .threads
        .iter()
        .map(|(role, count)| format!("\"{role}\":{count}"))
        .collect();
    let locks: Vec<String> = live
        .locks
        .iter()
        .map(|(lock, u)| {
            format!(
                "\"{lock}\":{{\"acquisitions\":{},\"contended\":{},\"wait_us\":{}}}",
                u.acquisitions,
                u.contended,
                u.wait.as_micros()
            )
        })
        .collect();
    let backlogs: Vec<String> = live
        .view
        .deepest_backlogs
        .iter()
        .map(|(name, bytes)| format!("{{\"name\":\"{}\",\"bytes\":{bytes}}}", json_escape(name)))
        .collect();
    format!(
        "{{\"uptime_s\":{:.3},\"online\":{},\"connections\":{},\"messages_in\":{},\"lines_delivered\":{},\"lines_dropped\":{},\"lines_refused\":{},\"refused\":{},\"rooms\":{},\"events_depth\":{},\"threads\":{{{}}},\"locks\":{{{}}},\"deepest_backlogs\":[{}]{}}}\n",
        s.uptime.as_secs_f64(),
        s.online,
        s.connections_open,
        s.messages_in,
        s.lines_delivered,
        s.lines_dropped,
        s.lines_refused,
        s.connections_refused,
        live.view.rooms,
        live.events_depth,
        threads.join(","),
        locks.join(","),
        backlogs.join(","),
        more
    )
}

fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn every_metric_has_help_and_type_and_the_json_is_one_object() {
        let shared = Shared::new(Config::default());
        let text = prometheus(&shared);
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            // A histogram's series share its name's TYPE line.
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|family| text.contains(&format!("# TYPE {family} histogram")))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "no TYPE for {name}"
            );
        }
        assert!(
            text.contains("threadchat_threads{role=\"manager\"} 1"),
            "{text}"
        );
        let json = json(&shared);
        assert!(
            json.starts_with('{') && json.trim_end().ends_with('}'),
            "{json}"
        );
        assert!(json.contains("\"locks\":{\"clients\":{"), "{json}");
        assert!(json.contains(",\"board\":{\"states\":{"), "{json}");
        assert!(json.contains(",\"history\":{\"every_s\":1,"), "{json}");
        assert_eq!(json_escape("a\"b\\c\u{1}"), "a\\\"b\\\\c\\u0001");
    }
    #[test]
    fn rooms_history_backlogs_and_evictions_are_exported_beside_their_bounds() {
        let shared = Shared::new(Config {
            max_rooms: 7,
            max_total_backlog: 5000,
            max_history_bytes: 6000,
            ..Config::default()
        });
        shared.stats.publish(ManagerView {
            rooms: 2,
            rooms_kept: 3,
            history_bytes: 1200,
            backlog_bytes: 3400,
            deepest_backlogs: Vec::new(),
        });
        shared.stats.add(crate::shared::Tally {
            evicted: 2,
            ..Default::default()
        });
        let text = prometheus(&shared);
        for series in [
            "threadchat_rooms 2",
            "threadchat_rooms_kept 3",
            "threadchat_rooms_max 7",
            "threadchat_history_bytes 1200",
            "threadchat_history_max_bytes 6000",
            "threadchat_backlog_bytes 3400",
            "threadchat_backlog_max_bytes 5000",
            "threadchat_clients_evicted_total 2",
        ] {
            assert!(
                text.contains(&format!("\n{series}\n")),
                "no {series:?} in {text}"
            );
        }
    }
}
