//! `/metrics` read by the tools it is for. The real Prometheus server
//! (Debian's `prometheus`) scrapes a running server's web door, and its
//! HTTP API gives back the series with the values the server holds; the
//! Grafana dashboard in docs/grafana/ queries only series `/metrics`
//! exports, and Prometheus evaluates every one of its queries; every metric
//! is listed in docs/PROTOCOL.md. Prometheus's answers and the dashboard
//! are JSON, read by the small strict reader at the end of this file; HTTP
//! is written by hand, as everywhere in these tests.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use threadchat::Config;

use crate::common::http::{self, body, get, status};
use crate::common::process::{tool_available, Process};
use crate::common::{register_all, start_server, test_config, Client, DEADLINE};
use json::Json;

/// Prometheus waits about 5 s after its start before its first scrape
/// (the scrape manager takes the targets on a 5 s tick), then one scrape
/// interval's jitter: more than the usual deadline on a loaded machine.
const FIRST_SCRAPE: Duration = Duration::from_secs(60);

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana/threadchat.json");
const PROTOCOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PROTOCOL.md");

#[test]
fn prometheus_scrapes_the_web_door_and_gives_back_the_expected_series() {
    if !tool_available("prometheus", "--version", "prometheus") {
        return;
    }
    let server = start_server(Config {
        http: Some("127.0.0.1:0".to_string()),
        name_timeout: Duration::from_secs(3600),
        ..test_config()
    });
    let web = server.web_addr().expect("the web door is on");
    let [mut ann, mut bob, mut cy] = register_all(server.local_addr(), ["ann", "bob", "cy"]);
    // Connected, and not named: a connection, not a client online.
    let mut unnamed = Client::connect(server.local_addr(), "unnamed");
    unnamed.expect_greeting();
    chat(&mut ann, [&mut bob, &mut cy], "before the first scrape", 5);

    let prometheus = Prometheus::scraping(web);
    prometheus.wait_for("up", "a successful scrape", FIRST_SCRAPE, |up| {
        value(up) == Some(1.0)
    });
    let online = prometheus.wait_for("threadchat_online", "3 online", DEADLINE, |online| {
        value(online) == Some(3.0)
    });
    assert_eq!(
        (online[0].label("job"), online[0].label("instance")),
        ("threadchat", web.to_string().as_str()),
        "{online:?}"
    );
    prometheus.wait_for(
        "threadchat_connections_open",
        "4 connections",
        DEADLINE,
        |open| value(open) == Some(4.0),
    );
    let budget = Config::default().max_total_backlog as f64;
    prometheus.wait_for(
        "threadchat_backlog_max_bytes",
        "--max-total-backlog's default",
        DEADLINE,
        |max| value(max) == Some(budget),
    );
    // Five lines to two listeners, on top of the welcomes and arrivals;
    // exactly what the server counts, once its count is still.
    let delivered = prometheus.wait_for(
        "threadchat_lines_delivered_total",
        "the lines the server says it delivered, at least the ten chat lines",
        DEADLINE,
        |delivered| {
            let counted = server.stats().lines_delivered as f64;
            value(delivered).is_some_and(|scraped| scraped == counted && scraped >= 10.0)
        },
    );
    eprintln!("Prometheus scraped {delivered:?}");
    assert_fanout_buckets(&prometheus);

    // The dashboard's quantiles are over a rate: fan-outs after the
    // first scrapes, so that the rate of the buckets is not zero.
    chat(&mut ann, [&mut bob, &mut cy], "after the first scrape", 5);
    let p99 = "histogram_quantile(0.99, sum by (le) (rate(threadchat_fanout_seconds_bucket[1m])))";
    prometheus.wait_for(p99, "a finite p99 over the last minute", DEADLINE, |p99| {
        value(p99).is_some_and(|p99| p99 > 0.0 && p99 <= 5.0)
    });
    every_dashboard_query_gives_series(&prometheus);
}

/// Five fan-outs timed: the buckets, cumulative in `le`, end at five, and
/// `histogram_quantile` reads them.
fn assert_fanout_buckets(prometheus: &Prometheus) {
    let buckets = prometheus.wait_for(
        "threadchat_fanout_seconds_bucket",
        "15 buckets, 5 fan-outs in the +Inf one",
        DEADLINE,
        |buckets| {
            buckets.len() == 15
                && buckets
                    .iter()
                    .any(|b| b.label("le") == "+Inf" && b.value == 5.0)
        },
    );
    let mut bounds: Vec<(f64, f64)> = (buckets.iter())
        .map(|b| (b.label("le").parse().expect("le is a number"), b.value))
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(bounds[0].0, 0.0001, "{buckets:?}");
    assert!(
        bounds.windows(2).all(|w| w[0].1 <= w[1].1),
        "buckets are cumulative: {bounds:?}"
    );
    let count = prometheus.wait_for("threadchat_fanout_seconds_count", "5", DEADLINE, |c| {
        value(c) == Some(5.0)
    });
    let median = prometheus.wait_for(
        "histogram_quantile(0.5, threadchat_fanout_seconds_bucket)",
        "a median within the buckets",
        DEADLINE,
        |median| value(median).is_some_and(|m| m > 0.0 && m <= 5.0),
    );
    eprintln!("fan-out: {count:?}, median {median:?}");
}

/// `from` says `count` lines, which each of `to` reads.
fn chat<const N: usize>(from: &mut Client, mut to: [&mut Client; N], what: &str, count: usize) {
    for n in 0..count {
        from.send(&format!("{what} {n}"));
    }
    for n in 0..count {
        let line = format!("[lobby] {}: {what} {n}", from.label);
        for client in to.iter_mut() {
            client.expect(&line);
        }
    }
}

/// Each of the dashboard's queries, as Grafana would send it, gives at
/// least one series: it parses, and every series it names is scraped.
fn every_dashboard_query_gives_series(prometheus: &Prometheus) {
    let dashboard = read_dashboard();
    for expr in dashboard_queries(&dashboard) {
        let sent = expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".+");
        prometheus.wait_for(&sent, "at least one series", DEADLINE, |series| {
            !series.is_empty()
        });
    }
}

#[test]
fn every_series_the_grafana_dashboard_queries_is_one_metrics_exports() {
    let dashboard = read_dashboard();
    let exported = exported_series();
    let queries = dashboard_queries(&dashboard);
    let mut used = BTreeSet::new();
    for expr in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr:?}");
        for name in names {
            assert!(
                exported.contains(&name),
                "the dashboard queries {name:?} ({expr:?}), which /metrics does not export; \
                 it exports {exported:?}"
            );
            used.insert(name);
        }
    }
    for variable in dashboard_variables(&dashboard) {
        let name = label_values_metric(&variable).unwrap_or_else(|| {
            panic!("variable query {variable:?} is not label_values(METRIC, LABEL)")
        });
        assert!(
            exported.contains(name),
            "the variable {variable:?} reads {name}, not exported"
        );
    }
    // What the dashboard is for (issue 24): each is drawn.
    for wanted in [
        "threadchat_online",
        "threadchat_messages_in_total",
        "threadchat_lines_delivered_total",
        "threadchat_lines_dropped_total",
        "threadchat_fanout_seconds_bucket",
        "threadchat_lock_wait_seconds_total",
        "threadchat_threads",
        "threadchat_backlog_bytes",
        "threadchat_backlog_max_bytes",
    ] {
        assert!(used.contains(wanted), "no panel draws {wanted}: {used:?}");
    }
    assert!(
        queries
            .iter()
            .any(|q| q.contains("histogram_quantile(") && q.contains("_bucket{")),
        "no latency quantile from the histogram in {queries:?}"
    );
    every_panel_uses_the_datasource_variable(&dashboard);
}

fn every_panel_uses_the_datasource_variable(dashboard: &Json) {
    let variables = dashboard
        .get("templating")
        .and_then(|t| t.get("list"))
        .and_then(Json::as_array)
        .expect("templating.list");
    assert!(
        variables.iter().any(|v| {
            v.get("name").and_then(Json::as_str) == Some("datasource")
                && v.get("type").and_then(Json::as_str) == Some("datasource")
                && v.get("query").and_then(Json::as_str) == Some("prometheus")
        }),
        "no Prometheus datasource variable named datasource: {variables:?}"
    );
    let panels = dashboard
        .get("panels")
        .and_then(Json::as_array)
        .expect("panels");
    assert!(!panels.is_empty());
    for panel in panels {
        let title = panel.get("title").and_then(Json::as_str).unwrap_or("?");
        let targets = panel.get("targets").and_then(Json::as_array).unwrap_or(&[]);
        for holder in std::iter::once(panel).chain(targets) {
            let uid = holder
                .get("datasource")
                .and_then(|d| d.get("uid"))
                .and_then(Json::as_str);
            assert_eq!(uid, Some("${datasource}"), "panel {title:?}");
        }
    }
}

#[test]
fn every_metric_exported_is_listed_in_protocol_and_every_one_listed_is_exported() {
    let protocol = std::fs::read_to_string(PROTOCOL).expect("docs/PROTOCOL.md");
    let listed: BTreeSet<String> = (protocol.split('`'))
        .filter_map(|word| word.strip_prefix("threadchat_"))
        .map(|rest| rest.split('{').next().unwrap_or(rest))
        .filter(|name| !name.is_empty())
        .map(|name| format!("threadchat_{name}"))
        .collect();
    let exported = exported_families();
    for family in &exported {
        assert!(
            listed.contains(family),
            "{family} is exported and not in docs/PROTOCOL.md's table"
        );
    }
    for family in &listed {
        // The cluster's are exported with --redis only (tests/suite/cluster.rs).
        assert!(
            exported.contains(family) || family.starts_with("threadchat_cluster_"),
            "docs/PROTOCOL.md lists {family}, which /metrics does not export"
        );
    }
}

#[test]
fn metric_names_are_found_past_functions_matchers_ranges_and_modifiers() {
    let cases: [(&str, &[&str]); 7] = [
        (
            "histogram_quantile(0.99, sum by (le) (rate(a_bucket{instance=~\"$instance\"}[$__rate_interval])))",
            &["a_bucket"],
        ),
        (
            "sum(rate(a_sum[5m])) / sum without (job) (rate(a_count[5m]))",
            &["a_sum", "a_count"],
        ),
        ("a offset 5m > bool 0.5 and on (instance) b", &["a", "b"]),
        ("x * on (i) group_left (role) y", &["x", "y"]),
        ("up{le=\"}\", job='a{b'} unless Inf", &["up"]),
        ("label_replace(a:b_rate5m, \"to\", \"$1\", \"from\", \"(.*)\")", &["a:b_rate5m"]),
        ("max_over_time(x[1h30m:1m]) - 1e-3", &["x"]),
    ];
    for (expr, expected) in cases {
        assert_eq!(metric_names(expr), expected, "{expr}");
    }
    assert_eq!(
        label_values_metric("label_values(threadchat_uptime_seconds, instance)"),
        Some("threadchat_uptime_seconds")
    );
}

#[test]
fn the_json_reader_reads_what_prometheus_answers_and_refuses_what_is_not_json() {
    let answer = r#" {"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","le":"+Inf","s":"\"\u00e9\ud83d\ude00\n"},"value":[1.5e3,"NaN"]}]},
        "n":[-0.25,true,false,null,{}]} "#;
    let parsed = json::parse(answer).expect("valid JSON");
    let result = &parsed
        .get("data")
        .and_then(|d| d.get("result"))
        .and_then(Json::as_array)
        .expect("result")[0];
    let labels = result.get("metric").expect("metric");
    assert_eq!(labels.get("s").and_then(Json::as_str), Some("\"é😀\n"));
    let value = result.get("value").and_then(Json::as_array).expect("value");
    assert_eq!(value[0], Json::Number(1500.0));
    assert_eq!(
        parsed.get("n"),
        Some(&Json::Array(vec![
            Json::Number(-0.25),
            Json::Bool(true),
            Json::Bool(false),
            Json::Null,
            Json::Object(Vec::new())
        ]))
    );
    for bad in [
        "",
        "{",
        "[1,]",
        "{\"a\" 1}",
        "\"\\x\"",
        "tru",
        "[1] 2",
        "\"\u{1}\"",
        "01",
        "1.",
        "-",
    ] {
        assert!(json::parse(bad).is_err(), "{bad:?} was read as JSON");
    }
}

// ---- the dashboard ----

fn read_dashboard() -> Json {
    let text = std::fs::read_to_string(DASHBOARD).expect("docs/grafana/threadchat.json");
    json::parse(&text).unwrap_or_else(|e| panic!("docs/grafana/threadchat.json: {e}"))
}

/// Every `expr` of every panel's targets, rows' panels included.
fn dashboard_queries(dashboard: &Json) -> Vec<String> {
    let mut exprs = Vec::new();
    dashboard.walk(&mut |key, value| {
        if let (Some("expr"), Some(expr)) = (key, value.as_str()) {
            exprs.push(expr.to_string());
        }
    });
    assert!(!exprs.is_empty(), "the dashboard has no queries");
    exprs
}

/// The queries of the dashboard's `query` variables.
fn dashboard_variables(dashboard: &Json) -> Vec<String> {
    let list = (dashboard.get("templating"))
        .and_then(|t| t.get("list"))
        .and_then(Json::as_array)
        .unwrap_or(&[]);
    (list.iter())
        .filter(|v| v.get("type").and_then(Json::as_str) == Some("query"))
        .filter_map(|v| {
            let query = v.get("query")?;
            query
                .as_str()
                .or_else(|| query.get("query").and_then(Json::as_str))
                .map(str::to_string)
        })
        .collect()
}

/// `METRIC` of Grafana's `label_values(METRIC, LABEL)`.
fn label_values_metric(query: &str) -> Option<&str> {
    let inside = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (metric, _label) = inside.split_once(',')?;
    let metric = metric.trim();
    (metric_names(metric) == [metric]).then_some(metric)
}

/// The series names a PromQL expression selects: every identifier that is
/// not a function or aggregation (followed by `(`), a keyword, a label in
/// `by (...)` and its kin, or inside a string, a `{...}` label matcher, a
/// `[...]` range, a number or duration, or a Grafana `$variable`. What is
/// left is a series name as Prometheus stores it: a histogram's
/// `_bucket`, `_sum` and `_count` are names of their own, and the family's
/// bare name selects nothing.
fn metric_names(expr: &str) -> Vec<String> {
    const MODIFIERS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 8] = [
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
    ];
    // Followed by `(`, or first by `by (...)` or `without (...)`.
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let word_end = |from: usize| {
        (from..chars.len())
            .find(|&i| !is_word(chars[i]))
            .unwrap_or(chars.len())
    };
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i = match c {
            '"' | '\'' | '`' => skip_string(&chars, i),
            '{' => skip_past(&chars, i, '}'),
            '[' => skip_past(&chars, i, ']'),
            '$' if chars.get(i + 1) == Some(&'{') => skip_past(&chars, i, '}'),
            '$' => word_end(i + 1),
            c if c.is_ascii_digit() || c == '.' => (i..chars.len())
                .find(|&j| !(is_word(chars[j]) || chars[j] == '.'))
                .unwrap_or(chars.len()),
            c if is_word(c) => {
                let end = word_end(i);
                let word: String = chars[i..end].iter().collect();
                let next = (end..chars.len()).find(|&j| !chars[j].is_whitespace());
                let opens = next.is_some_and(|j| chars[j] == '(');
                if MODIFIERS.contains(&word.as_str()) {
                    match next {
                        Some(j) if opens => skip_past(&chars, j, ')'),
                        _ => end,
                    }
                } else {
                    let keyword = KEYWORDS.contains(&word.to_ascii_lowercase().as_str());
                    if !opens && !keyword && !AGGREGATIONS.contains(&word.as_str()) {
                        names.push(word);
                    }
                    end
                }
            }
            _ => i + 1,
        };
    }
    names
}

/// Past the string that opens at `at` (PromQL's three quotes; `\` escapes
/// in the first two).
fn skip_string(chars: &[char], at: usize) -> usize {
    let quote = chars[at];
    let mut i = at + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// Past the first `close` after `at`, strings inside skipped whole.
fn skip_past(chars: &[char], at: usize, close: char) -> usize {
    let mut i = at + 1;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i),
            c if c == close => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

// ---- what /metrics exports ----

/// The body of `/metrics`, from a server of its own with the web door on.
fn metrics_text() -> String {
    let server = start_server(Config {
        http: Some("127.0.0.1:0".to_string()),
        ..test_config()
    });
    let response = get(server.web_addr().expect("the web door is on"), "/metrics");
    assert_eq!(status(&response), 200, "{response}");
    body(&response).to_string()
}

/// The name of every sample line: a histogram's `_bucket`, `_sum` and
/// `_count`, never its family's bare name.
fn exported_series() -> BTreeSet<String> {
    let text = metrics_text();
    (text.lines())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Every family a `# TYPE` line names.
fn exported_families() -> BTreeSet<String> {
    let text = metrics_text();
    (text.lines())
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect()
}

// ---- the Prometheus server ----

/// A `prometheus` child scraping one target every second, with its own
/// storage in a temporary directory; killed, and the directory removed,
/// when dropped, a failing test's unwinding included.
struct Prometheus {
    /// First: dropped (killed) before its directory goes.
    _process: Process,
    addr: SocketAddr,
    _dir: TempDir,
}

/// One series of an instant query's answer.
#[derive(Debug)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// The value of the only series, if there is exactly one.
fn value(series: &[Sample]) -> Option<f64> {
    match series {
        [one] => Some(one.value),
        _ => None,
    }
}

impl Prometheus {
    fn scraping(target: SocketAddr) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let config = dir.path.join("prometheus.yml");
        std::fs::write(&config, scrape_config(target)).expect("write prometheus.yml");
        // A free port, found by binding and letting go: another process
        // may take it meanwhile, so an address in use means another try.
        for _ in 0..5 {
            let addr = free_port();
            let mut process = Process::spawn(Command::new("prometheus").args([
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", dir.path.join("data").display()),
                format!("--web.listen-address={addr}"),
            ]));
            if wait_until_ready(&mut process) {
                return Prometheus {
                    _process: process,
                    addr,
                    _dir: dir,
                };
            }
        }
        panic!("prometheus found its port taken five times in a row");
    }

    /// `GET /api/v1/query`: the series of an instant query, or what
    /// Prometheus said instead.
    fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        // HTTP/1.0: Go's server then answers without chunks and closes.
        let request = format!(
            "GET /api/v1/query?query={} HTTP/1.0\r\nHost: {}\r\n\r\n",
            percent_encode(expr),
            self.addr
        );
        let response = http::request(self.addr, &request);
        let answer =
            json::parse(body(&response)).map_err(|e| format!("not JSON ({e}): {response:?}"))?;
        if answer.get("status").and_then(Json::as_str) != Some("success") {
            return Err(format!("{answer:?}"));
        }
        let result = (answer.get("data"))
            .and_then(|d| d.get("result"))
            .and_then(Json::as_array)
            .ok_or_else(|| format!("no data.result in {answer:?}"))?;
        result.iter().map(sample).collect()
    }

    /// Queries until `condition` holds; fails saying what was expected and
    /// the last answer. A query Prometheus refuses fails at once.
    fn wait_for(
        &self,
        expr: &str,
        what: &str,
        within: Duration,
        mut condition: impl FnMut(&[Sample]) -> bool,
    ) -> Vec<Sample> {
        let deadline = Instant::now() + within;
        loop {
            let series = self
                .query(expr)
                .unwrap_or_else(|e| panic!("Prometheus refused {expr:?}: {e}"));
            if condition(&series) {
                return series;
            }
            assert!(
                Instant::now() < deadline,
                "waited {within:?} for {expr} to give {what}; the last answer: {series:?}"
            );
            std::thread::sleep(Duration::from_millis(100)); // polling interval, not synchronisation
        }
    }
}

/// Reads Prometheus's log until it is ready (true) or its port was taken
/// (false, and it is killed); anything else fails the test.
fn wait_until_ready(process: &mut Process) -> bool {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while let Some(line) = process.stderr.line_before(deadline) {
        if line.contains("Server is ready to receive web requests") {
            return true;
        }
        if line.contains("address already in use") {
            process.kill();
            return false;
        }
        seen.push(line);
    }
    panic!("prometheus was not ready within {DEADLINE:?}; it logged {seen:#?}");
}

fn scrape_config(target: SocketAddr) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: threadchat\n    static_configs:\n      - targets: ['{target}']\n"
    )
}

fn sample(series: &Json) -> Result<Sample, String> {
    let labels = match series.get("metric") {
        Some(Json::Object(labels)) => labels
            .iter()
            .map(|(name, value)| Some((name.clone(), value.as_str()?.to_string())))
            .collect::<Option<BTreeMap<_, _>>>(),
        _ => None,
    };
    // [time, "value"]: Prometheus sends the value as a string ("NaN", "+Inf").
    let value = match series.get("value").and_then(Json::as_array) {
        Some([_, Json::String(value)]) => value.parse().ok(),
        _ => None,
    };
    match (labels, value) {
        (Some(labels), Some(value)) => Ok(Sample { labels, value }),
        _ => Err(format!("not a series of an instant vector: {series:?}")),
    }
}

fn percent_encode(text: &str) -> String {
    (text.bytes())
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr")
}

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(what: &str) -> TempDir {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("threadchat-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// JSON, read strictly (RFC 8259) into a tree: enough for Prometheus's
/// answers and a Grafana dashboard, with no crate.
mod json {
    #[derive(Clone, Debug, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Json>),
        /// In the order written.
        Object(Vec<(String, Json)>),
    }

    impl Json {
        pub fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        pub fn as_str(&self) -> Option<&str> {
            match self {
                Json::String(text) => Some(text),
                _ => None,
            }
        }

        pub fn as_array(&self) -> Option<&[Json]> {
            match self {
                Json::Array(items) => Some(items),
                _ => None,
            }
        }

        /// Calls `visit` on every value in the tree, with the key it is
        /// under when in an object.
        pub fn walk(&self, visit: &mut impl FnMut(Option<&str>, &Json)) {
            match self {
                Json::Array(items) => items.iter().for_each(|item| {
                    visit(None, item);
                    item.walk(visit);
                }),
                Json::Object(members) => members.iter().for_each(|(key, value)| {
                    visit(Some(key), value);
                    value.walk(visit);
                }),
                _ => {}
            }
        }
    }

    pub fn parse(text: &str) -> Result<Json, String> {
        let mut reader = Reader { text, at: 0 };
        let value = reader.value()?;
        reader.space();
        match reader.at == text.len() {
            true => Ok(value),
            false => Err(reader.error("the end after the value")),
        }
    }

    struct Reader<'a> {
        text: &'a str,
        at: usize,
    }

    impl Reader<'_> {
        fn error(&self, expected: &str) -> String {
            let near: String = self.text[self.at..].chars().take(30).collect();
            format!("expected {expected} at byte {}, before {near:?}", self.at)
        }

        fn peek(&self) -> Option<char> {
            self.text[self.at..].chars().next()
        }

        fn next(&mut self) -> Option<char> {
            let c = self.peek()?;
            self.at += c.len_utf8();
            Some(c)
        }

        fn space(&mut self) {
            while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
                self.at += 1;
            }
        }

        fn eat(&mut self, c: char) -> Result<(), String> {
            self.space();
            match self.peek() == Some(c) {
                true => {
                    self.at += 1;
                    Ok(())
                }
                false => Err(self.error(&format!("{c:?}"))),
            }
        }

        fn value(&mut self) -> Result<Json, String> {
            self.space();
            match self.peek() {
                Some('{') => self.object(),
                Some('[') => self.array(),
                Some('"') => self.string().map(Json::String),
                Some('t') => self.word("true", Json::Bool(true)),
                Some('f') => self.word("false", Json::Bool(false)),
                Some('n') => self.word("null", Json::Null),
                Some('-' | '0'..='9') => self.number(),
                _ => Err(self.error("a value")),
            }
        }

        fn word(&mut self, word: &str, value: Json) -> Result<Json, String> {
            match self.text[self.at..].starts_with(word) {
                true => {
                    self.at += word.len();
                    Ok(value)
                }
                false => Err(self.error(word)),
            }
        }

        fn object(&mut self) -> Result<Json, String> {
            self.eat('{')?;
            let mut members = Vec::new();
            self.space();
            if self.peek() == Some('}') {
                self.at += 1;
                return Ok(Json::Object(members));
            }
            loop {
                self.space();
                let key = self.string()?;
                self.eat(':')?;
                members.push((key, self.value()?));
                self.space();
                match self.next() {
                    Some(',') => {}
                    Some('}') => return Ok(Json::Object(members)),
                    _ => return Err(self.error("',' or '}'")),
                }
            }
        }

        fn array(&mut self) -> Result<Json, String> {
            self.eat('[')?;
            let mut items = Vec::new();
            self.space();
            if self.peek() == Some(']') {
                self.at += 1;
                return Ok(Json::Array(items));
            }
            loop {
                items.push(self.value()?);
                self.space();
                match self.next() {
                    Some(',') => {}
                    Some(']') => return Ok(Json::Array(items)),
                    _ => return Err(self.error("',' or ']'")),
                }
            }
        }

        fn string(&mut self) -> Result<String, String> {
            if self.peek() != Some('"') {
                return Err(self.error("a string"));
            }
            self.at += 1;
            let mut out = String::new();
            loop {
                match self.next() {
                    Some('"') => return Ok(out),
                    Some('\\') => out.push(self.escape()?),
                    Some(c) if c >= ' ' => out.push(c),
                    _ => return Err(self.error("the rest of a string")),
                }
            }
        }

        fn escape(&mut self) -> Result<char, String> {
            Ok(match self.next() {
                Some('"') => '"',
                Some('\\') => '\\',
                Some('/') => '/',
                Some('b') => '\u{8}',
                Some('f') => '\u{c}',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('t') => '\t',
                Some('u') => {
                    let first = self.hex4()?;
                    let code = if (0xD800..0xDC00).contains(&first) {
                        self.word("\\u", Json::Null)?;
                        let low = self.hex4()?;
                        if !(0xDC00..0xE000).contains(&low) {
                            return Err(self.error("a low surrogate"));
                        }
                        0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        first
                    };
                    char::from_u32(code).ok_or_else(|| self.error("a character"))?
                }
                _ => return Err(self.error("an escape")),
            })
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let digits = self
                .text
                .get(self.at..self.at + 4)
                .ok_or_else(|| self.error("4 hex digits"))?;
            let code = u32::from_str_radix(digits, 16).map_err(|_| self.error("4 hex digits"))?;
            self.at += 4;
            Ok(code)
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        fn number(&mut self) -> Result<Json, String> {
            let start = self.at;
            let digits = |reader: &mut Self| {
                let from = reader.at;
                while matches!(reader.peek(), Some('0'..='9')) {
                    reader.at += 1;
                }
                reader.at - from
            };
            if self.peek() == Some('-') {
                self.at += 1;
            }
            let whole = digits(self);
            if whole == 0 || (whole > 1 && self.text[self.at - whole..].starts_with('0')) {
                return Err(self.error("a number"));
            }
            if self.peek() == Some('.') {
                self.at += 1;
                if digits(self) == 0 {
                    return Err(self.error("digits after '.'"));
                }
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                self.at += 1;
                if matches!(self.peek(), Some('+' | '-')) {
                    self.at += 1;
                }
                if digits(self) == 0 {
                    return Err(self.error("an exponent"));
                }
            }
            (self.text[start..self.at].parse())
                .map(Json::Number)
                .map_err(|_| self.error("a number"))
        }
    }
}
