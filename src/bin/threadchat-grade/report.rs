//! The results, scored by the rubric: the table printed on the terminal,
//! the Gradescope JSON (`score`, and `tests` with `name`, `score`,
//! `max_score`, `status`, `output`), and the exit status. Plain formatting
//! on the main thread once every test has run.
//!
//! A skipped test is not graded: its points count neither for nor against,
//! and the total says how many were left out.

use std::fmt::Write;

use crate::cli::{Options, Target};
use crate::rubric::Rubric;
use crate::runner::{Outcome, TestResult};

struct Row<'a> {
    category: &'a str,
    points: f64,
    tests: Vec<(&'a TestResult, f64)>,
}

pub struct Graded<'a> {
    rubric: &'a Rubric,
    rows: Vec<Row<'a>>,
}

impl<'a> Graded<'a> {
    pub fn new(rubric: &'a Rubric, results: &'a [TestResult]) -> Graded<'a> {
        let rows = rubric
            .categories
            .iter()
            .map(|category| {
                let share = category.points / category.tests.len() as f64;
                Row {
                    category: &category.name,
                    points: category.points,
                    tests: (category.tests.iter())
                        .filter_map(|id| results.iter().find(|r| &r.id == id))
                        .map(|result| (result, share))
                        .collect(),
                }
            })
            .collect();
        Graded { rubric, rows }
    }

    fn all(&self) -> impl Iterator<Item = (&str, &TestResult, f64)> + '_ {
        self.rows.iter().flat_map(|row| {
            row.tests
                .iter()
                .map(|(result, share)| (row.category, *result, *share))
        })
    }

    /// Points earned, points graded, points skipped.
    fn totals(&self) -> (f64, f64, f64) {
        let mut totals = (0.0, 0.0, 0.0);
        for (_, result, share) in self.all() {
            match result.outcome {
                Outcome::Passed => (totals.0 += share, totals.1 += share),
                Outcome::Failed(_) => ((), totals.1 += share),
                Outcome::Skipped(_) => ((), totals.2 += share),
            };
        }
        totals
    }

    /// 0 at full marks; 1 if points were lost; 3 if nothing failed but
    /// something was skipped.
    pub fn exit_status(&self) -> u8 {
        let failed = self
            .all()
            .any(|(_, r, _)| matches!(r.outcome, Outcome::Failed(_)));
        let skipped = self
            .all()
            .any(|(_, r, _)| matches!(r.outcome, Outcome::Skipped(_)));
        match (failed, skipped) {
            (true, _) => 1,
            (false, true) => 3,
            (false, false) => 0,
        }
    }

    pub fn table(&self, options: &Options) -> String {
        let mut out = String::new();
        let server = match &options.target {
            Target::Exe(template) => format!("--exe {}", template.shown()),
            Target::Addr(addr) => format!("--addr {addr}"),
        };
        let _ = writeln!(
            out,
            "\nthreadchat-grade {server}\nrubric: {}\n",
            self.rubric.source
        );
        let _ = writeln!(out, "{:<30} {:>7}   {:>7}", "category", "passed", "points");
        for row in &self.rows {
            let passed = row
                .tests
                .iter()
                .filter(|(r, _)| r.outcome == Outcome::Passed)
                .count();
            let graded = row
                .tests
                .iter()
                .filter(|(r, _)| !matches!(r.outcome, Outcome::Skipped(_)))
                .count();
            let earned = (row.tests.iter())
                .filter(|(r, _)| r.outcome == Outcome::Passed)
                .fold(0.0, |sum, (_, share)| sum + share);
            let points = if graded == 0 {
                format!("{:>7} / {}", "skipped", points(row.points))
            } else {
                format!("{earned:>7.2} / {}", points(row.points))
            };
            let _ = writeln!(
                out,
                "{:<30} {:>7}   {points}",
                row.category,
                format!("{passed}/{graded}")
            );
        }
        let (earned, graded, skipped) = self.totals();
        let percent = if graded > 0.0 {
            100.0 * earned / graded
        } else {
            0.0
        };
        let _ = writeln!(out, "{}", "-".repeat(54));
        let _ = write!(
            out,
            "{:<40} {earned:>7.2} / {}  ({percent:.0} %)",
            "total",
            points(graded)
        );
        if skipped > 0.0 {
            let _ = write!(out, "; {} points not graded (skipped)", points(skipped));
        }
        out.push('\n');
        self.list(&mut out, "failed", |o| matches!(o, Outcome::Failed(_)));
        self.list(&mut out, "skipped", |o| matches!(o, Outcome::Skipped(_)));
        out
    }

    fn list(&self, out: &mut String, title: &str, which: impl Fn(&Outcome) -> bool) {
        let chosen: Vec<&TestResult> = self
            .all()
            .map(|(_, r, _)| r)
            .filter(|r| which(&r.outcome))
            .collect();
        if chosen.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{title}:");
        for result in chosen {
            if let Outcome::Failed(why) | Outcome::Skipped(why) = &result.outcome {
                let _ = writeln!(out, "  {}\n      {why}", result.id);
            }
        }
    }

    pub fn gradescope_json(&self) -> String {
        let (earned, graded, skipped) = self.totals();
        let mut summary = format!(
            "{earned:.2} / {} (rubric {})",
            number(graded),
            self.rubric.source
        );
        if skipped > 0.0 {
            let _ = write!(summary, "; {} points not graded", number(skipped));
        }
        let tests: Vec<String> = self
            .all()
            .map(|(category, result, share)| test_json(category, result, share))
            .collect();
        format!(
            "{{\n  \"score\": {},\n  \"output\": {},\n  \"tests\": [\n{}\n  ]\n}}\n",
            number(earned),
            json_string(&summary),
            tests.join(",\n")
        )
    }
}

fn test_json(category: &str, result: &TestResult, share: f64) -> String {
    let took = format!("{:.2} s", result.elapsed.as_secs_f64());
    let (score, max, status, output) = match &result.outcome {
        Outcome::Passed => (share, share, "passed", format!("passed in {took}")),
        Outcome::Failed(why) => (0.0, share, "failed", format!("failed after {took}: {why}")),
        Outcome::Skipped(why) => (0.0, 0.0, "skipped", format!("not graded: {why}")),
    };
    format!(
        "    {{\"name\": {}, \"score\": {}, \"max_score\": {}, \"status\": {}, \"output\": {}}}",
        json_string(&format!("{category}: {}", result.id)),
        number(score),
        number(max),
        json_string(status),
        json_string(&output)
    )
}

/// Points for the table: at most 2 decimals, no trailing zeros.
fn points(value: f64) -> String {
    number((value * 100.0).round() / 100.0)
}

/// A number as JSON and people like it: at most 4 decimals, no trailing
/// zeros.
fn number(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rubric::Category;
    use std::time::Duration;

    fn result(id: &str, outcome: Outcome) -> TestResult {
        TestResult {
            id: id.to_string(),
            outcome,
            elapsed: Duration::from_millis(20),
        }
    }

    fn rubric() -> Rubric {
        Rubric {
            source: "r.txt".into(),
            categories: vec![
                Category {
                    name: "first".into(),
                    points: 10.0,
                    tests: vec!["a/one".into(), "a/two".into()],
                },
                Category {
                    name: "second".into(),
                    points: 3.0,
                    tests: vec!["b/three".into()],
                },
            ],
        }
    }

    #[test]
    fn points_are_shared_in_a_category_and_skips_are_not_graded() {
        let rubric = rubric();
        let results = [
            result("a/one", Outcome::Passed),
            result("a/two", Outcome::Failed("alice: expected \"x\"".into())),
            result("b/three", Outcome::Skipped("needs --exe".into())),
        ];
        let graded = Graded::new(&rubric, &results);
        assert_eq!(graded.totals(), (5.0, 10.0, 3.0));
        assert_eq!(graded.exit_status(), 1);
    }

    #[test]
    fn full_marks_exit_0_and_skips_alone_exit_3() {
        let rubric = rubric();
        let passed = [
            result("a/one", Outcome::Passed),
            result("a/two", Outcome::Passed),
            result("b/three", Outcome::Passed),
        ];
        assert_eq!(Graded::new(&rubric, &passed).exit_status(), 0);
        let mut skipped = passed.clone();
        skipped[2].outcome = Outcome::Skipped("needs --exe".into());
        assert_eq!(Graded::new(&rubric, &skipped).exit_status(), 3);
    }

    #[test]
    fn the_json_has_gradescopes_fields_and_escapes_what_it_must() {
        let rubric = rubric();
        let results = [
            result("a/one", Outcome::Passed),
            result("a/two", Outcome::Failed("got \"\u{1b}[2J\"\nthen".into())),
            result("b/three", Outcome::Passed),
        ];
        let json = Graded::new(&rubric, &results).gradescope_json();
        assert!(
            json.starts_with(
                "{\n  \"score\": 8,\n  \"output\": \"8.00 / 13 (rubric r.txt)\",\n  \"tests\": [\n"
            ),
            "{json}"
        );
        assert!(json.contains(
            "{\"name\": \"first: a/one\", \"score\": 5, \"max_score\": 5, \"status\": \"passed\", \"output\": \"passed in 0.02 s\"}"
        ), "{json}");
        assert!(
            json.contains(r#""output": "failed after 0.02 s: got \"\u001b[2J\"\nthen"}"#),
            "{json}"
        );
        assert!(json.contains("\"score\": 0, \"max_score\": 5"), "{json}");
    }

    #[test]
    fn numbers_lose_their_trailing_zeros() {
        assert_eq!(number(10.0), "10");
        assert_eq!(number(3.3333333), "3.3333");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(2.5), "2.5");
    }
}
