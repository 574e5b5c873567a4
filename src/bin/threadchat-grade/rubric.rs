//! The rubric: points per category and which tests make up each, read from
//! a plain text file that teachers edit (labs/grading/rubric.txt says how).
//! Parsed once on the main thread, before any test runs; a mistake in it is
//! reported with its line number and nothing is graded.
//!
//! ```text
//! # A comment.
//! [a1] Registration and broadcast     <- a section (optional): --assignment a1
//! registration and names = 12         <- a category and its points
//!     registration/*                  <- indented: its tests, CATEGORY/TEST or CATEGORY/*
//!     broadcast/the_sender_gets_no_echo
//! ```
//!
//! A category's points are shared equally among its tests.

use std::path::Path;

/// labs/grading/rubric.txt as it was when the grader was built, for when
/// the grader runs away from the repository.
const BUILT_IN: &str = include_str!("../../../labs/grading/rubric.txt");
const DEFAULT_PATH: &str = "labs/grading/rubric.txt";

#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub name: String,
    pub points: f64,
    /// Test ids, `CATEGORY/TEST`, in the order the grader runs them.
    pub tests: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rubric {
    /// Where it was read from, for the report.
    pub source: String,
    pub categories: Vec<Category>,
}

impl Rubric {
    pub fn has(&self, id: &str) -> bool {
        self.category_of(id).is_some()
    }

    pub fn category_of(&self, id: &str) -> Option<&Category> {
        self.categories
            .iter()
            .find(|category| category.tests.iter().any(|test| test == id))
    }

    #[cfg(test)]
    pub fn total(&self) -> f64 {
        self.categories.iter().map(|category| category.points).sum()
    }

    /// Keeps only the tests `selectors` name (all, if there are none); a
    /// category left without tests goes, and its points with it.
    pub fn only(mut self, selectors: &[String]) -> Result<Rubric, String> {
        if selectors.is_empty() {
            return Ok(self);
        }
        for selector in selectors {
            let matched = self
                .categories
                .iter()
                .flat_map(|c| &c.tests)
                .any(|t| selects(selector, t));
            if !matched {
                return Err(format!(
                    "--only {selector}: no test of the rubric matches it"
                ));
            }
        }
        for category in &mut self.categories {
            let before = category.tests.len() as f64;
            category
                .tests
                .retain(|test| selectors.iter().any(|s| selects(s, test)));
            category.points *= category.tests.len() as f64 / before;
        }
        self.categories
            .retain(|category| !category.tests.is_empty());
        Ok(self)
    }
}

/// Whether `selector` (`CATEGORY/TEST` or `CATEGORY/*`) names `id`.
fn selects(selector: &str, id: &str) -> bool {
    match selector.strip_suffix("/*") {
        Some(category) => id.split('/').next() == Some(category),
        None => selector == id,
    }
}

/// Reads the rubric at `path`, or the default one.
pub fn load(
    path: Option<&Path>,
    assignment: Option<&str>,
    known: &[String],
) -> Result<Rubric, String> {
    let (text, source) = match path {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the rubric {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => match std::fs::read_to_string(DEFAULT_PATH) {
            Ok(text) => (text, DEFAULT_PATH.to_string()),
            Err(_) => (BUILT_IN.to_string(), format!("{DEFAULT_PATH} (built in)")),
        },
    };
    parse(&text, &source, assignment, known)
}

struct Section {
    id: String,
    categories: Vec<Category>,
}

pub fn parse(
    text: &str,
    source: &str,
    assignment: Option<&str>,
    known: &[String],
) -> Result<Rubric, String> {
    let mut sections: Vec<Section> = Vec::new();
    let mut loose: Vec<Category> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let at = |message: String| format!("{source}:{}: {message}", n + 1);
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let (id, _title) = rest
                .split_once(']')
                .ok_or_else(|| at("a section is [NAME] Title".into()))?;
            if !loose.is_empty() {
                return Err(at("categories before the first [section]: put every category in a section, or use none".into()));
            }
            sections.push(Section {
                id: id.trim().to_string(),
                categories: Vec::new(),
            });
            continue;
        }
        let categories = match sections.last_mut() {
            Some(section) => &mut section.categories,
            None => &mut loose,
        };
        if line.starts_with([' ', '\t']) {
            let category = categories.last_mut().ok_or_else(|| {
                at(format!(
                    "{trimmed:?}: tests must follow a `NAME = POINTS` line"
                ))
            })?;
            add_tests(category, trimmed, known).map_err(at)?;
        } else {
            categories.push(category_line(trimmed).map_err(at)?);
        }
    }
    let categories = choose(sections, loose, assignment)?;
    check(&categories, source)?;
    let mut rubric = Rubric {
        source: source.to_string(),
        categories,
    };
    for category in &mut rubric.categories {
        // The grader's order, whatever order the file lists them in.
        category
            .tests
            .sort_by_key(|test| known.iter().position(|k| k == test));
    }
    Ok(rubric)
}

fn category_line(line: &str) -> Result<Category, String> {
    let (name, points) = line.split_once('=').ok_or_else(|| {
        format!("{line:?}: expected `CATEGORY NAME = POINTS`, or an indented line of tests")
    })?;
    let points: f64 = points
        .trim()
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite() && *p >= 0.0)
        .ok_or_else(|| format!("{:?}: points must be a number, 0 or more", points.trim()))?;
    let name = name.trim();
    if name.is_empty() {
        return Err("a category needs a name before the =".into());
    }
    Ok(Category {
        name: name.to_string(),
        points,
        tests: Vec::new(),
    })
}

fn add_tests(category: &mut Category, line: &str, known: &[String]) -> Result<(), String> {
    for selector in line.split_whitespace() {
        let found: Vec<&String> = known.iter().filter(|id| selects(selector, id)).collect();
        if found.is_empty() {
            return Err(format!(
                "{selector}: no such test (threadchat-grade --list lists them)"
            ));
        }
        category.tests.extend(found.into_iter().cloned());
    }
    Ok(())
}

/// The section asked for; or every section, merged; or the file's only list.
fn choose(
    sections: Vec<Section>,
    loose: Vec<Category>,
    assignment: Option<&str>,
) -> Result<Vec<Category>, String> {
    if sections.is_empty() {
        return match assignment {
            Some(name) => Err(format!(
                "--assignment {name}: this rubric has no [sections]"
            )),
            None => Ok(loose),
        };
    }
    let names: Vec<String> = sections.iter().map(|s| s.id.clone()).collect();
    match assignment {
        None => Ok(sections.into_iter().flat_map(|s| s.categories).collect()),
        Some(name) => sections
            .into_iter()
            .find(|s| s.id == name)
            .map(|s| s.categories)
            .ok_or_else(|| {
                format!(
                    "--assignment {name}: the rubric's sections are {}",
                    names.join(", ")
                )
            }),
    }
}

fn check(categories: &[Category], source: &str) -> Result<(), String> {
    if categories.is_empty() {
        return Err(format!("{source}: no categories"));
    }
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for category in categories {
        if category.tests.is_empty() {
            return Err(format!(
                "{source}: category {:?} has no tests",
                category.name
            ));
        }
        for test in &category.tests {
            if let Some((_, other)) = seen.iter().find(|(t, _)| t == test) {
                return Err(format!(
                    "{source}: {test} is in both {other:?} and {:?}: a test counts once",
                    category.name
                ));
            }
            seen.push((test, &category.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        ["a/one", "a/two", "b/three", "c/four"]
            .map(String::from)
            .to_vec()
    }

    fn parse_text(text: &str, assignment: Option<&str>) -> Result<Rubric, String> {
        parse(text, "r.txt", assignment, &known())
    }

    #[test]
    fn categories_take_their_tests_from_the_indented_lines() {
        let rubric = parse_text(
            "# points\nfirst = 10\n  a/*\n\n  b/three\nlast = 2.5\n\tc/four\n",
            None,
        )
        .expect("parses");
        assert_eq!(rubric.categories.len(), 2);
        assert_eq!(rubric.categories[0].tests, ["a/one", "a/two", "b/three"]);
        assert_eq!(rubric.categories[1].points, 2.5);
        assert_eq!(rubric.total(), 12.5);
        assert_eq!(
            rubric.category_of("b/three").map(|c| c.name.as_str()),
            Some("first")
        );
        assert!(!rubric.has("a/zero"));
    }

    #[test]
    fn mistakes_are_reported_with_their_line() {
        let error = |text: &str| parse_text(text, None).unwrap_err();
        assert_eq!(
            error("x = 1\n  a/zero\n"),
            "r.txt:2: a/zero: no such test (threadchat-grade --list lists them)"
        );
        assert!(error("  a/one\n").starts_with("r.txt:1: "));
        assert!(error("x = lots\n  a/one\n").contains("points must be a number"));
        assert!(
            error("x = 1\n  a/*\ny = 1\n  a/one\n").contains("a/one is in both \"x\" and \"y\"")
        );
        assert!(error("x = 1\ny = 2\n  a/one\n").contains("category \"x\" has no tests"));
        assert!(error("# nothing\n").contains("no categories"));
        assert!(error("x = 1\n  a/one\n[s1] S\ny = 1\n  a/two\n")
            .contains("before the first [section]"));
    }

    #[test]
    fn sections_are_chosen_by_name_or_all_merged() {
        let text = "[s1] First\nx = 1\n  a/*\n[s2] Second\ny = 2\n  b/three\n";
        let s2 = parse_text(text, Some("s2")).expect("s2");
        assert_eq!(s2.categories.len(), 1);
        assert_eq!(s2.categories[0].name, "y");
        assert_eq!(parse_text(text, None).expect("all").categories.len(), 2);
        assert_eq!(
            parse_text(text, Some("s3")).unwrap_err(),
            "--assignment s3: the rubric's sections are s1, s2"
        );
        assert!(parse_text("x = 1\n  a/one\n", Some("s1")).is_err());
    }

    #[test]
    fn only_keeps_the_named_tests_and_their_share_of_the_points() {
        let rubric = parse_text("x = 10\n  a/*\ny = 4\n  b/three\n", None).expect("parses");
        let only = rubric
            .clone()
            .only(&["a/two".to_string()])
            .expect("selects");
        assert_eq!(only.categories.len(), 1);
        assert_eq!(only.categories[0].tests, ["a/two"]);
        assert_eq!(only.categories[0].points, 5.0);
        assert!(rubric.only(&["c/*".to_string()]).is_err());
    }

    #[test]
    fn the_rubrics_in_the_repository_name_only_tests_that_exist() {
        let known: Vec<String> = crate::checks::all().iter().map(|t| t.id()).collect();
        let main = parse(BUILT_IN, "rubric.txt", None, &known).expect("rubric.txt parses");
        assert_eq!(main.total(), 100.0);
        assert_eq!(
            main.categories.iter().map(|c| c.tests.len()).sum::<usize>(),
            known.len(),
            "rubric.txt should grade every test"
        );
        let any = include_str!("../../../labs/grading/any-language.txt");
        let any = parse(any, "any-language.txt", None, &known).expect("any-language.txt parses");
        assert_eq!(any.total(), 100.0);
        assert!(!any.has("threads/a_reader_and_a_writer_per_client"));
        let assignments = include_str!("../../../labs/grading/assignments.txt");
        for section in ["a1", "a2", "a3"] {
            let rubric = parse(assignments, "assignments.txt", Some(section), &known)
                .unwrap_or_else(|e| panic!("{section}: {e}"));
            assert_eq!(rubric.total(), 100.0, "{section} should be out of 100");
        }
    }
}
