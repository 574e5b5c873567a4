//! `loadgen chart RESULTS.jsonl OUT_DIR`: SVG line charts, against the
//! number of clients, from the JSON lines of several runs (benches/sweep.sh
//! makes docs/BENCHMARKS.md's with it). The JSON is read by looking for
//! keys, not parsed: the lines are the generator's own, flat and simple,
//! and no JSON crate is needed for them.

use std::fmt::Write as _;
use std::io;

fn json_number(line: &str, key: &str) -> Option<f64> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn json_text<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let rest = &line[start..];
    Some(&rest[..rest.find('"')?])
}

pub fn chart(results: &str, out_dir: &str) -> io::Result<()> {
    let text = std::fs::read_to_string(results)?;
    let runs: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    let series = |mode: &str, key: &str| -> Vec<(f64, f64)> {
        let mut points: Vec<(f64, f64)> = runs
            .iter()
            .filter(|run| json_text(run, "mode") == Some(mode))
            .filter(|run| json_number(run, "slow") == Some(0.0))
            .filter_map(|run| Some((json_number(run, "clients")?, json_number(run, key)?)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    std::fs::create_dir_all(out_dir)?;
    let latency = svg_chart(
        "fanout latency against clients",
        "ms (log scale)",
        true,
        Some((10.0, "target: p99 under 10 ms at 1,000 clients")),
        &[
            ("p50", "#1f77b4", series("fanout", "latency_p50_ms")),
            ("p99", "#d62728", series("fanout", "latency_p99_ms")),
            (
                "one line, first to last recipient (p50)",
                "#9467bd",
                series("fanout", "spread_p50_ms"),
            ),
        ],
    );
    std::fs::write(format!("{out_dir}/latency.svg"), latency)?;
    let throughput = svg_chart(
        "deliveries per second against clients",
        "deliveries/s (log scale)",
        true,
        None,
        &[
            (
                "saturate",
                "#2ca02c",
                series("saturate", "deliveries_per_sec"),
            ),
            ("fanout", "#1f77b4", series("fanout", "deliveries_per_sec")),
        ],
    );
    std::fs::write(format!("{out_dir}/throughput.svg"), throughput)?;
    println!("wrote {out_dir}/latency.svg and {out_dir}/throughput.svg");
    Ok(())
}

/// One line of a chart: its name, its colour, its (clients, value) points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// The picture's size and margins, in pixels.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

/// A line chart with a logarithmic x axis (clients) and a linear or
/// logarithmic y axis.
/// `reference`: a value to mark with a dashed line across the chart, and its label.
fn svg_chart(
    title: &str,
    unit: &str,
    log_y: bool,
    reference: Option<(f64, &str)>,
    series: &[Series<'_>],
) -> String {
    let axes = Axes::new(series, log_y, reference.map(|(value, _)| value));
    let mut svg = frame(title);
    axes.y_ticks(&mut svg);
    axes.x_ticks(&mut svg, series);
    axis_labels(&mut svg, unit);
    if let Some((value, label)) = reference {
        axes.reference_line(&mut svg, value, label);
    }
    for (n, one) in series.iter().enumerate() {
        axes.series_line(&mut svg, n, one);
    }
    svg.push_str("</svg>\n");
    svg
}

/// The background, the title and the two axis lines.
fn frame(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{title}</text>\n\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"black\"/>\n",
        WIDTH / 2.0,
        TOP + PLOT_H,
        LEFT + PLOT_W,
        TOP + PLOT_H,
        TOP + PLOT_H
    )
}

fn axis_labels(svg: &mut String, unit: &str) {
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">clients (log scale)</text>\
         <text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">{unit}</text>",
        LEFT + PLOT_W / 2.0,
        HEIGHT - 8.0,
        TOP + PLOT_H / 2.0,
        TOP + PLOT_H / 2.0
    );
}

/// Where values go on the picture.
struct Axes {
    x_min: f64,
    x_max: f64,
    log_y: bool,
    /// The lowest y tick (log scale only).
    y_floor: f64,
    /// The value at the top of the plot.
    y_top: f64,
}

impl Axes {
    /// Axes that hold every point, and `reference` too on a log scale.
    fn new(series: &[Series<'_>], log_y: bool, reference: Option<f64>) -> Axes {
        let points = series.iter().flat_map(|s| s.2.iter());
        let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, 0.0f64);
        for &(x, y) in points {
            x_min = x_min.min(x);
            x_max = x_max.max(x);
            y_min = y_min.min(y);
            y_max = y_max.max(y);
        }
        if x_min >= x_max {
            x_min = x_min.min(1.0);
            x_max = x_max.max(x_min * 10.0);
        }
        let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
        // Log scale: whole powers of ten, from the one below the smallest value
        // to the one above the largest (or the reference line), one tick each.
        let y_floor = 10f64.powf(y_min.max(1e-3).log10().floor());
        let y_top = if log_y {
            let highest = reference.map_or(y_max, |value| y_max.max(value));
            10f64.powf(highest.log10().ceil()).max(y_floor * 10.0)
        } else {
            y_max
        };
        Axes {
            x_min,
            x_max,
            log_y,
            y_floor,
            y_top,
        }
    }

    fn x(&self, x: f64) -> f64 {
        LEFT + (x.ln() - self.x_min.ln()) / (self.x_max.ln() - self.x_min.ln()) * PLOT_W
    }

    fn y(&self, y: f64) -> f64 {
        let share = if self.log_y {
            (y.max(self.y_floor) / self.y_floor).ln() / (self.y_top / self.y_floor).ln()
        } else {
            y / self.y_top
        };
        TOP + PLOT_H - share * PLOT_H
    }

    /// Each y tick's label and grid line.
    fn y_ticks(&self, svg: &mut String) {
        let ticks: Vec<f64> = if self.log_y {
            let decades = (self.y_top / self.y_floor).log10().round() as i32;
            (0..=decades)
                .map(|k| self.y_floor * 10f64.powi(k))
                .collect()
        } else {
            (0..=4).map(|k| self.y_top * k as f64 / 4.0).collect()
        };
        for y in ticks {
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
                 <line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
                LEFT - 6.0,
                self.y(y) + 4.0,
                short_number(y),
                self.y(y),
                LEFT + PLOT_W,
                self.y(y)
            );
        }
    }

    /// A label under every client count that some series has.
    fn x_ticks(&self, svg: &mut String, series: &[Series<'_>]) {
        let mut xs: Vec<f64> = series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        for x in xs {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                self.x(x),
                TOP + PLOT_H + 18.0,
                short_number(x)
            );
        }
    }

    fn reference_line(&self, svg: &mut String, value: f64, label: &str) {
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#555\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{label}</text>",
            LEFT + PLOT_W,
            LEFT + PLOT_W - 4.0,
            self.y(value) - 5.0,
            y = self.y(value),
        );
    }

    /// The `n`-th series: its line, a dot on each point, and its name in
    /// the legend.
    fn series_line(&self, svg: &mut String, n: usize, (name, colour, points): &Series<'_>) {
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", self.x(x), self.y(y)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(x, y) in points {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                self.x(x),
                self.y(y)
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{name}</text>",
            LEFT + 10.0,
            TOP + 14.0 + 14.0 * n as f64
        );
    }
}

fn short_number(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.0}k", value / 1e3)
    } else if value >= 10.0 || value == value.round() {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
