//! The layout holds its shape (docs/ARCHITECTURE.md, invariants 6, 7 and
//! 12): the plain-logic modules use no threads, locks, channels or sockets,
//! the core names the optional parts (the web door, the cluster, the
//! deadlock detector, watching the threads) only at the seams listed here,
//! and the core's reading path stays within its budget of lines. These
//! tests read the source, with comments left out; they fail with the file,
//! the line and what it names (or, for the budget, each file's count).

use std::fs;
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The file's lines with `//` comments (and doc comments) cut off, numbered
/// from 1. Good enough for this source: no string here holds `//` before
/// code that matters.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text.lines().enumerate())
        .map(|(n, line)| {
            let code = match line.find("//") {
                Some(at) if !line[..at].contains('"') => &line[..at],
                _ => line,
            };
            (n + 1, code.to_string())
        })
        .filter(|(_, code)| !code.trim().is_empty() && !code.trim_start().starts_with("//"))
        .collect()
}

/// `code` without its string literals, except inside `cfg(...)`, where the
/// string is the feature's name.
fn without_strings(code: &str) -> String {
    if code.contains("cfg(") {
        return code.to_string();
    }
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in code.chars() {
        match (in_string, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, _, _) => escaped = false,
            (false, _, '"') => {
                in_string = true;
                out.push_str("\"\"");
            }
            (false, _, c) => out.push(c),
        }
    }
    out
}

fn relative(path: &Path) -> String {
    let src = Path::new(SRC);
    path.strip_prefix(src).unwrap_or(path).display().to_string()
}

#[test]
fn plain_logic_uses_no_threads_locks_channels_or_sockets() {
    let forbidden = [
        "std::net",
        "std::thread",
        "std::sync",
        "crossbeam",
        "parking_lot",
    ];
    let mut found = Vec::new();
    let files = rust_files(&Path::new(SRC).join("logic"));
    assert!(
        files.len() >= 6,
        "expected the logic modules, found {files:?}"
    );
    for file in files {
        for (n, code) in code_lines(&file) {
            for name in forbidden.iter().filter(|name| code.contains(*name)) {
                found.push(format!(
                    "src/{}:{n} names {name}: {}",
                    relative(&file),
                    code.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "plain logic must not use these:\n{}",
        found.join("\n")
    );
}

/// The core: the thread roles, what they pass each other, what they share,
/// and the plain logic. (`server.rs` starts the optional parts and is
/// where most seams are.)
const CORE: &[&str] = &[
    "acceptor.rs",
    "reader.rs",
    "writer.rs",
    "manager.rs",
    "manager/",
    "monitor.rs",
    "server.rs",
    "event.rs",
    "line.rs",
    "outbox.rs",
    "outbox/",
    "shared/",
    "logic/",
    "socket.rs",
    "shutdown.rs",
];

/// What names an optional part, in code (string literals left out): its
/// module, or the cargo feature that builds it.
const OPTIONAL: &[&str] = &[
    "web::",
    "cluster::",
    "deadlock::",
    "deadlock-detection",
    "feature = \"redis\"",
    "watch::",
];

/// The seams: each line of core code that may name an optional part, by
/// file and the code it holds. Anything else that names one fails.
const SEAMS: &[(&str, &str)] = &[
    // server.rs starts the web door and the cluster, each in one place.
    (
        "server.rs",
        "let cluster = cluster::start::prepare(&config).map_err(StartError::Redis)?;",
    ),
    ("server.rs", "cluster: Option<cluster::start::Prepared>,"),
    (
        "server.rs",
        "move || web::run(web_listener, shared, events_tx, shutdown)",
    ),
    // The monitor logs what the detector finds.
    ("monitor.rs", "#[cfg(feature = \"deadlock-detection\")]"),
    (
        "monitor.rs",
        "crate::deadlock::log_reports(&shared.gauges.board);",
    ),
    // The lock helpers the detector's report looks past.
    (
        "shared/stats.rs",
        "#[cfg(feature = \"deadlock-detection\")]",
    ),
    (
        "shared/clients.rs",
        "#[cfg(feature = \"deadlock-detection\")]",
    ),
    (
        "shared/gauges.rs",
        "#[cfg(feature = \"deadlock-detection\")]",
    ),
    (
        "shared/thread_states.rs",
        "#[cfg(feature = \"deadlock-detection\")]",
    ),
    // The thread board and the chart's samples (watch/): the gauges keep
    // the board, which hands each thread its place (thread_states.rs's
    // Watched, so that file names nothing of watch/); the monitor adds
    // samples and puts the board's threads on its line.
    (
        "shared/gauges.rs",
        "use crate::watch::board::{OnBoard, ThreadBoard};",
    ),
    ("shared/mod.rs", "use crate::watch::samples::History;"),
    ("monitor.rs", "use crate::watch::board::ThreadBoard;"),
    ("monitor.rs", "use crate::watch::samples::Sample;"),
    // A traced line (/trace): the reader starts its Trace, the event and
    // the line carry it, the manager watches it until every copy is written.
    ("reader.rs", "use crate::watch::trace::Trace;"),
    ("event.rs", "use crate::watch::trace::Trace;"),
    ("line.rs", "use crate::watch::trace::Trace;"),
    ("manager.rs", "use crate::watch::trace::Trace;"),
    ("manager.rs", "use crate::watch::traces::Traces;"),
    // Deadlock tests that name the threads when the detector is built in.
    (
        "shared/stats.rs",
        "#[cfg(not(feature = \"deadlock-detection\"))]",
    ),
    (
        "shared/stats.rs",
        "let found = crate::deadlock::reports(None).join(\"\\n\");",
    ),
    (
        "shared/clients.rs",
        "#[cfg(not(feature = \"deadlock-detection\"))]",
    ),
    (
        "shared/clients.rs",
        "let found = crate::deadlock::reports(None).join(\"\\n\");",
    ),
];

fn in_core(file: &str) -> bool {
    CORE.iter()
        .any(|core| file == *core || (core.ends_with('/') && file.starts_with(core)))
}

#[test]
fn the_core_names_optional_parts_only_at_the_seams() {
    let mut found = Vec::new();
    let mut seams_used = vec![false; SEAMS.len()];
    for file in rust_files(Path::new(SRC)) {
        let name = relative(&file);
        if !in_core(&name) {
            continue;
        }
        for (n, code) in code_lines(&file) {
            let code = code.trim();
            let bare = without_strings(code);
            if !OPTIONAL.iter().any(|optional| bare.contains(optional)) {
                continue;
            }
            match SEAMS
                .iter()
                .position(|(f, seam)| *f == name && code == *seam)
            {
                Some(at) => seams_used[at] = true,
                None => found.push(format!("src/{name}:{n}: {code}")),
            }
        }
    }
    assert!(
        found.is_empty(),
        "core code names an optional part outside the seams (tests/suite/shape.rs lists them):\n{}",
        found.join("\n")
    );
    let stale: Vec<_> = (SEAMS.iter().zip(&seams_used))
        .filter(|(_, used)| !**used)
        .map(|((file, seam), _)| format!("src/{file}: {seam}"))
        .collect();
    assert!(
        stale.is_empty(),
        "seams listed that no longer exist:\n{}",
        stale.join("\n")
    );
}

/// Every path the documents name (`src/...`, `tests/...`, `docs/...` and
/// the other top-level folders), in README.md, docs/ and labs/, exists.
#[test]
fn every_path_the_documents_name_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut documents = vec![root.join("README.md"), root.join("labs/check.sh")];
    for dir in ["docs", "labs"] {
        for entry in fs::read_dir(root.join(dir))
            .expect("read the folder")
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "md") {
                documents.push(path);
            }
        }
    }
    let tops = [
        "src/",
        "tests/",
        "docs/",
        "benches/",
        "labs/",
        "examples/",
        ".ci/",
    ];
    let mut missing = Vec::new();
    for document in &documents {
        let text = fs::read_to_string(document).expect("read the document");
        for (n, line) in text.lines().enumerate() {
            for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || "/._-".contains(c))) {
                let word = word.trim_end_matches(['.', ',']);
                let at_top = tops.iter().any(|top| word.starts_with(top));
                // Paths to make (target/...) and globs are not checked.
                if !at_top || word.contains('*') || word.contains("NN") {
                    continue;
                }
                if !root.join(word).exists() {
                    let document = document.strip_prefix(root).unwrap_or(document);
                    missing.push(format!("{}:{}: {word}", document.display(), n + 1));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths that do not exist:\n{}",
        missing.join("\n")
    );
}

/// No module imports the module that starts it (docs/ARCHITECTURE.md,
/// "Code map"): `server` starts the long-lived threads, an acceptor (or the
/// web door) starts readers, a reader starts its writer.
#[test]
fn no_module_imports_the_module_that_starts_it() {
    // (module, what starts it)
    let started_by = [
        ("writer.rs", "crate::reader"),
        ("writer.rs", "crate::acceptor"),
        ("reader.rs", "crate::acceptor"),
        ("reader.rs", "crate::web"),
        ("manager.rs", "crate::server"),
        ("acceptor.rs", "crate::server"),
        ("monitor.rs", "crate::server"),
        ("web/mod.rs", "crate::server"),
        ("cluster/start.rs", "crate::server"),
        ("cluster/publisher.rs", "crate::server"),
        ("cluster/subscriber.rs", "crate::server"),
    ];
    let mut found = Vec::new();
    for (module, starter) in started_by {
        for (n, code) in code_lines(&Path::new(SRC).join(module)) {
            if code.contains(starter) {
                found.push(format!(
                    "src/{module}:{n} imports {starter}: {}",
                    code.trim()
                ));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// What a reader following calls from `main` through accept, read, route,
/// write and shut down does not open (docs/ARCHITECTURE.md, invariant 12):
/// the optional parts, the other doors, the binaries, and the tests. Every
/// other file under `src/` is on the path, so a new file counts unless it
/// is named here.
const OFF_THE_PATH: &[&str] = &[
    "bin/",
    "web/",
    "cluster/",
    "watch/",
    "deadlock.rs",
    "doors/websocket.rs",
    "doors/websocket/",
    "doors/irc.rs",
    "doors/irc/",
    "doors/events.rs",
    "doors/events/",
    "logic/irc.rs",
    "manager/tests.rs",
    "outbox/tests.rs",
    "outbox/loom.rs",
    "shared/gauges/loom.rs",
];

/// The most lines the reading path may hold (invariant 12).
const READING_BUDGET: usize = 7_700;

fn on_reading_path(file: &str) -> bool {
    !(OFF_THE_PATH.iter()).any(|off| file == *off || (off.ends_with('/') && file.starts_with(off)))
}

/// A file's lines up to its in-file test module (`#[cfg(test)]` then
/// `mod tests {` or `mod loom {`), less each `#[cfg(test)] mod NAME;` pair
/// of lines (the test module's own file is off the path).
fn lines_without_tests(path: &Path) -> usize {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut counted = 0;
    let mut n = 0;
    while n < lines.len() {
        let next = lines.get(n + 1).copied().unwrap_or("");
        if lines[n].starts_with("#[cfg(test)]") {
            if next.starts_with("mod tests {") || next.starts_with("mod loom {") {
                break;
            }
            if next.starts_with("mod ") && next.ends_with(';') {
                n += 2;
                continue;
            }
        }
        counted += 1;
        n += 1;
    }
    counted
}

#[test]
fn the_core_reading_path_stays_within_its_budget() {
    let counts: Vec<(String, usize)> = (rust_files(Path::new(SRC)).iter())
        .map(|file| (relative(file), file))
        .filter(|(name, _)| on_reading_path(name))
        .map(|(name, file)| (name, lines_without_tests(file)))
        .collect();
    let files: Vec<String> = rust_files(Path::new(SRC))
        .iter()
        .map(|f| relative(f))
        .collect();
    let gone: Vec<_> = (OFF_THE_PATH.iter())
        .filter(|off| {
            !files
                .iter()
                .any(|file| file == *off || file.starts_with(*off))
        })
        .collect();
    assert!(
        gone.is_empty(),
        "OFF_THE_PATH names files that are gone: {gone:?}"
    );
    let total: usize = counts.iter().map(|(_, lines)| lines).sum();
    let each: Vec<String> = (counts.iter())
        .map(|(name, lines)| format!("{lines:>5} src/{name}"))
        .collect();
    assert!(
        total <= READING_BUDGET,
        "the core's reading path holds {total} lines in {} files, past its budget of \
         {READING_BUDGET} (docs/ARCHITECTURE.md, invariant 12):\n{}",
        counts.len(),
        each.join("\n")
    );
}

/// README's "Flags" table gives every flag `--help` prints, so that a
/// flag added to one cannot be forgotten in the other.
#[test]
fn readmes_flag_table_has_every_flag_help_lists() {
    let usage = fs::read_to_string(format!("{SRC}/config/usage.txt")).expect("usage.txt");
    let readme =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let table: Vec<&str> = (readme.lines())
        .skip_while(|line| *line != "## Flags")
        .take_while(|line| !line.starts_with("Logging"))
        .filter(|line| line.starts_with("| `"))
        .collect();
    let flags = (usage.lines().map(str::trim_start))
        .filter(|line| line.starts_with("--"))
        .filter_map(|line| line.split([' ', ',']).next());
    // A row is a flag's when its first cell starts with the flag and then
    // a space or the closing backtick (`--http` is not `--http-host`).
    let is_row_of = |row: &str, flag: &str| {
        let cell = row.trim_start_matches("| ");
        let rest = cell.strip_prefix(&format!("`{flag}"));
        rest.is_some_and(|rest| rest.starts_with([' ', '`', ',']))
    };
    let missing: Vec<&str> = flags
        .filter(|flag| !table.iter().any(|row| is_row_of(row, flag)))
        .collect();
    assert!(
        !table.is_empty() && missing.is_empty(),
        "README's Flags table ({} rows) lacks {missing:?}",
        table.len()
    );
}
