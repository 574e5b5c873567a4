//! The grader (src/bin/threadchat-grade/, docs/ASSIGNMENT.md, "For
//! teachers") run as a teacher runs it: it gives the reference full marks
//! and writes Gradescope's JSON, fails a server that never answers within
//! its stated wait, names the status of a server that exits, and refuses a
//! rubric with a mistake, naming the line. That every category can fail,
//! each for its own reason, is labs/grading/calibrate.sh's job (in CI).

use std::net::TcpListener;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::process::{run, Finished, BINARY};

const GRADER: &str = env!("CARGO_BIN_EXE_threadchat-grade");

/// The reference server's template, as docs/ASSIGNMENT.md gives it.
fn reference() -> String {
    format!("{BINARY} --addr {{addr}} --http off --irc off --max-per-addr 0 --rate-limit off --room-rate off")
}

fn temp_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("threadchat-grade-{}-{name}", std::process::id()))
}

/// The grader, run to its end with `args`.
struct Graded(Finished);

impl Graded {
    fn run(args: &[&str]) -> Graded {
        Graded(run(Command::new(GRADER).args(args)))
    }

    /// It exited with `code`; else the test fails, showing all it wrote.
    fn exits(&self, code: i32) -> &Self {
        let Finished {
            status,
            stdout,
            stderr,
        } = &self.0;
        assert_eq!(status.code(), Some(code), "{stdout}{stderr}");
        self
    }

    /// Its table (stdout) says `text`.
    fn says(&self, text: &str) -> &Self {
        let stdout = &self.0.stdout;
        assert!(stdout.contains(text), "expected {text:?} in:\n{stdout}");
        self
    }

    /// Its complaint (stderr) says `text`.
    fn complains(&self, text: &str) -> &Self {
        let stderr = &self.0.stderr;
        assert!(stderr.contains(text), "expected {text:?} in:\n{stderr}");
        self
    }
}

#[test]
fn the_reference_gets_full_marks_and_gradescopes_json() {
    let json = temp_file("reference.json");
    let (reference, json_arg) = (reference(), json.to_string_lossy().into_owned());
    Graded::run(&[
        "--exe",
        &reference,
        "--only",
        "registration/*,whispers/*",
        "--json",
        &json_arg,
        "--quiet",
    ])
    .exits(0)
    .says("registration and names             9/9");
    let text = std::fs::read_to_string(&json).expect("the JSON file");
    let _ = std::fs::remove_file(&json);
    // Registration's 10 points and whispers' 8: 14 tests, all passed.
    assert!(
        text.starts_with("{\n  \"score\": 18,\n  \"output\": "),
        "{text}"
    );
    assert_eq!(text.matches("\"status\": \"passed\"").count(), 14, "{text}");
    assert_eq!(text.matches("\"max_score\": ").count(), 14, "{text}");
    assert!(text.contains("{\"name\": \"whispers: whispers/whispers_arrive_in_order\", \"score\": 1.6, \"max_score\": 1.6,"), "{text}");
}

#[test]
fn a_server_that_never_answers_fails_each_test_within_the_wait() {
    // Accepts and holds every connection, and never sends a byte: as a
    // server whose every thread is deadlocked looks from outside.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(100).collect();
        drop(held);
    });
    let started = Instant::now();
    let only = "registration/greeting_and_prompt,broadcast/*";
    let addr = addr.to_string();
    let graded = Graded::run(&["--addr", &addr, "--only", only, "--wait", "0.5", "--quiet"]);
    let took = started.elapsed();
    graded
        .exits(1)
        .says("newcomer: expected \"* welcome to threadchat\", but no line came within 0.5 s")
        .says("0.00 / 11.11  (0 %)");
    // Seven tests, each stopped by its first wait of half a second.
    assert!(
        took < Duration::from_secs(6),
        "grading a silent server took {took:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_server_that_exits_is_failed_with_its_status_and_last_words() {
    let exits = "sh -c 'echo cannot start: out of ideas >&2; exit 101' {port}";
    Graded::run(&["--exe", exits, "--only", "users/*", "--quiet"])
        .exits(1)
        .says("the server exited with status 101 before it listened on port ")
        .says("its last output: cannot start: out of ideas");
}

/// A server's last words can reach the grader after its exit status does
/// (here, from something it started that writes a moment later): the
/// grader waits for its output to end before it quotes it.
#[cfg(unix)]
#[test]
fn the_last_words_of_a_server_are_quoted_even_when_they_come_after_its_exit() {
    let exits = "sh -c '(sleep 0.3; echo cannot start: late >&2) & exit 101' {port}";
    Graded::run(&["--exe", exits, "--only", "users/*", "--quiet"])
        .says("the server exited with status 101 before it listened on port ")
        .says("its last output: cannot start: late");
}

#[test]
fn a_rubric_with_a_mistake_is_refused_naming_the_line() {
    let rubric = temp_file("rubric.txt");
    std::fs::write(&rubric, "# points\nrooms = 10\n    rooms/no_such_test\n")
        .expect("write the rubric");
    let (reference, rubric_arg) = (reference(), rubric.to_string_lossy().into_owned());
    let graded = Graded::run(&["--exe", &reference, "--rubric", &rubric_arg]);
    let _ = std::fs::remove_file(&rubric);
    graded.exits(2).complains(
        "rubric.txt:3: rooms/no_such_test: no such test (threadchat-grade --list lists them)",
    );
}

/// The grader must grade a server in any language as it grades this one:
/// it names nothing of the library and no crate, only std.
#[test]
fn the_grader_uses_std_alone() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/threadchat-grade");
    let mut dirs = vec![root];
    let mut found = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("read the grader's folder")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read a grader file");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for name in [
                    "threadchat::",
                    "crossbeam",
                    "parking_lot",
                    "libc",
                    "log::",
                    "extern crate",
                ] {
                    if code.contains(name) {
                        found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the grader must use std alone:\n{}",
        found.join("\n")
    );
}
