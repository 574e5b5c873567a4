//! The deadlock detector (`--features deadlock-detection`, off by default):
//! for the labs, where a student makes a lock-order deadlock on purpose
//! (docs/LABS.md). An optional part: without the feature this module is not
//! built, and a student may skip it.
//!
//! No thread of its own: the monitor thread calls [`log_reports`] every
//! `--stats-interval` and logs what it returns. parking_lot's detector
//! knows every thread parked on one of its locks, and finds a cycle of
//! threads each waiting for a lock another holds. The thread board
//! (`watch/board.rs`) knows each thread's name, which of the two
//! locks it holds and which it waits for. A deadlocked thread stays
//! blocked: the report is for a person to read.

use std::path::Path;
use std::thread::ThreadId;

use crate::watch::board::{State, ThreadBoard, ThreadView};

/// Logs each report (the monitor, every `--stats-interval`).
pub(crate) fn log_reports(board: &ThreadBoard) {
    for report in reports(Some(board)) {
        log::error!("{report}");
    }
}

/// One report per deadlock found since the last call. For each thread in
/// the cycle the report gives one line: from the `board` (if the thread is
/// on it), its name, the locks it holds and the one it waits for; from its
/// backtrace, its role (its outermost function of ours, such as
/// `manager::run`) and where it waits (its innermost that is not a lock
/// helper, such as `shared::stats::Stats::publish`, which names the lock,
/// since each lock is taken only inside its own type's methods); then the
/// whole backtrace.
pub(crate) fn reports(board: Option<&ThreadBoard>) -> Vec<String> {
    let mut reports = Vec::new();
    for (n, cycle) in parking_lot::deadlock::check_deadlock().iter().enumerate() {
        let mut summaries = Vec::new();
        let mut backtraces = Vec::new();
        for thread in cycle {
            let ours: Vec<String> = (thread.backtrace().frames().iter())
                .flat_map(|frame| frame.symbols())
                .filter_map(|symbol| {
                    let name = symbol.name().map(|name| format!("{name:#}"))?;
                    our_frame(&name, symbol.filename())
                })
                .collect();
            let seen = board.and_then(|board| board.find(thread.thread_id()));
            summaries.push(summary(thread.thread_id(), seen.as_ref(), &ours));
            backtraces.push(format!(
                "{:?}:\n{:?}",
                thread.thread_id(),
                thread.backtrace()
            ));
        }
        // A cycle of one: a thread waiting for a lock it holds itself (a
        // read lock taken twice, with a writer waiting in between).
        let what = match cycle.len() {
            1 => "1 thread waits for a lock it holds itself".to_string(),
            threads => format!("{threads} threads each wait for a lock another holds"),
        };
        reports.push(format!(
            "DEADLOCK {n}: {what}\n{}\n{}",
            summaries.join("\n"),
            backtraces.join("\n")
        ));
    }
    reports
}

/// A frame's name if the frame is ours (`{:#}` leaves out the symbol's
/// hash), without the crate's name or a closure's suffix. A call the
/// compiler inlined (in a release build, most of ours) has only its own
/// short name (`publish`, `{closure#1}`), so its module is read from its
/// file instead: `src/shared/stats.rs` is `shared::stats`.
fn our_frame(name: &str, file: Option<&Path>) -> Option<String> {
    if let Some(ours) = ours_only(name) {
        return Some(ours);
    }
    let file = file?.to_str()?;
    let under_src = match file.strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/src/")) {
        Some(relative) => relative,
        None => file.strip_prefix("src/")?,
    };
    let module = under_src.strip_suffix(".rs")?;
    let module = module
        .strip_suffix("/mod")
        .unwrap_or(module)
        .replace('/', "::");
    Some(format!("{module}::{}", short_name(name)?))
}

fn ours_only(name: &str) -> Option<String> {
    let name = name.strip_prefix(concat!(env!("CARGO_CRATE_NAME"), "::"))?;
    // A generic function's name ends with its type arguments.
    let name = name.split('<').next().unwrap_or(name);
    // A closure stays marked as one (`run::{closure}`), so that the report
    // can prefer the function around it.
    let closures = name.matches("::{{closure}}").count();
    let name = name.trim_end_matches("::{{closure}}");
    Some(if closures > 0 {
        format!("{name}::{{closure}}")
    } else {
        name.to_string()
    })
}

/// An inlined call's own short name: `publish` of `publish<T>`, `m` of
/// `<T as Trait>::m`; `None` if there is none.
fn short_name(name: &str) -> Option<&str> {
    let name = name.rsplit_once(">::").map_or(name, |(_, after)| after);
    let name = name.split('<').next().unwrap_or(name);
    (!name.is_empty()).then_some(name)
}

/// `name` without the closures it ends in (`run` of `run::{closure}`).
fn without_closures(name: &str) -> &str {
    let mut name = name;
    while let Some((outer, last)) = name.rsplit_once("::") {
        if !last.starts_with('{') {
            break;
        }
        name = outer;
    }
    name
}

/// The private helpers every lock is taken through: a frame in one of them
/// says which lock is taken, but not who wants it. Named by the compiler
/// (`type_name_of_val` of each function, and `module_path!` of the modules
/// that count lock use and note it on the board), so a rename cannot leave
/// a stale string here.
fn lock_helpers() -> Vec<String> {
    use crate::shared::{gauges, thread_states, ClientDirectory, Stats};
    (Stats::lock_helpers().into_iter())
        .chain(ClientDirectory::lock_helpers())
        .chain([gauges::MODULE, thread_states::MODULE])
        .filter_map(ours_only)
        .collect()
}

/// The modules (the last two of `helpers`) count: any frame in them. An
/// inlined frame's name has no type (`shared::stats::lock` for
/// `shared::stats::Stats::lock`), so types are left out of both sides.
fn is_lock_helper(helpers: &[String], name: &str) -> bool {
    let (functions, modules) = helpers.split_at(helpers.len() - 2);
    let untyped = |name: &str| -> String {
        let segments = without_closures(name).split("::");
        let lower = segments.filter(|s| !s.starts_with(|c: char| c.is_ascii_uppercase()));
        lower.collect::<Vec<_>>().join("::")
    };
    (functions.iter()).any(|helper| untyped(helper) == untyped(name))
        || (modules.iter()).any(|module| name.starts_with(&format!("{module}::")))
}

/// One line for a deadlocked thread: its id; as the board saw it (`seen`),
/// its name, what it holds and what it waits for; its role (the outermost
/// of `ours`, our own frames innermost first, that is not a closure) and
/// where it waits (the innermost such frame past the lock helpers).
fn summary(id: ThreadId, seen: Option<&ThreadView>, ours: &[String]) -> String {
    let helpers = lock_helpers();
    let unknown = "?".to_string();
    // A closure (`run::{closure}`, or an inlined `{closure#N}`) says less
    // than the function around it, when the backtrace has that.
    let named = |name: &&String| !name.ends_with('}');
    let role = (ours.iter().rev().find(named).or(ours.last())).unwrap_or(&unknown);
    let waits_in = ours.iter().filter(|name| !is_lock_helper(&helpers, name));
    let waits_in = (waits_in.clone().find(named).or(waits_in.clone().next())).unwrap_or(&unknown);
    let Some(seen) = seen else {
        return format!("  {id:?}, running {role}, waits in {waits_in}");
    };
    let holds: Vec<&str> = seen.holds.iter().map(|lock| lock.describe()).collect();
    let holds = match holds.is_empty() {
        true => "no lock of ours".to_string(),
        false => holds.join(" and "),
    };
    let waits = match seen.state {
        State::Lock(lock) => lock.describe(),
        _ => "another lock",
    };
    format!(
        "  {id:?} {}: holds {holds}, waits for {waits}; running {role}, waits in {waits_in}",
        seen.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::{Arc, Barrier};
    use std::thread;
    use std::time::{Duration, Instant};

    #[test]
    fn a_deadlock_report_names_the_role_and_the_method_past_the_lock_helpers() {
        let helpers = lock_helpers();
        assert_eq!(helpers[0], "shared::stats::Stats::lock", "{helpers:?}");
        assert_eq!(
            helpers[1], "shared::clients::ClientDirectory::read",
            "{helpers:?}"
        );
        assert_eq!(helpers[3], "shared::gauges", "{helpers:?}");
        assert_eq!(helpers[4], "shared::thread_states", "{helpers:?}");
        // Innermost first, as a backtrace lists them.
        let ours = [
            "shared::gauges::LockStats::acquire".to_string(),
            helpers[0].clone(),
            "shared::stats::Stats::publish".to_string(),
            "manager::Manager::publish".to_string(),
            "manager::run".to_string(),
        ];
        let line = summary(thread::current().id(), None, &ours);
        assert!(
            line.ends_with(", running manager::run, waits in shared::stats::Stats::publish"),
            "{line}"
        );
    }

    #[test]
    fn an_inlined_frame_is_named_by_its_file_and_still_looked_past_as_a_helper() {
        // What a release build's backtrace holds for calls the compiler
        // inlined: the short name alone, and the file.
        let file = |path: &str| Some(Path::new(path).to_path_buf());
        let frames = [
            ("{closure#1}", file("src/shared/stats.rs")),
            (
                "acquire<parking_lot::MutexGuard<()>>",
                file("src/shared/gauges.rs"),
            ),
            ("lock", file("src/shared/stats.rs")),
            ("publish", file("src/shared/stats.rs")),
            ("{closure#0}", file("src/manager.rs")),
            ("run", file("src/manager.rs")),
            (
                "{closure#2}",
                file(concat!(env!("CARGO_MANIFEST_DIR"), "/src/server.rs")),
            ),
            (
                "call_once<F>",
                file("/rustc/abc/library/core/src/ops/function.rs"),
            ),
        ];
        let ours: Vec<String> = (frames.iter())
            .filter_map(|(name, path)| our_frame(name, path.as_deref()))
            .collect();
        assert_eq!(ours[1], "shared::gauges::acquire", "{ours:?}");
        assert_eq!(ours.len(), 7, "core's own frame is not ours: {ours:?}");
        let trait_method = our_frame("<T as fmt::Debug>::fmt", file("src/line.rs").as_deref());
        assert_eq!(trait_method.as_deref(), Some("line::fmt"));
        let helpers = lock_helpers();
        assert!(is_lock_helper(
            &helpers,
            "shared::stats::Stats::lock::{closure}"
        ));
        assert!(!is_lock_helper(&helpers, "shared::stats::publish"));
        assert!(!is_lock_helper(&helpers, "manager::lock"));
        let line = summary(thread::current().id(), None, &ours);
        assert!(
            line.ends_with(", running manager::run, waits in shared::stats::publish"),
            "{line}"
        );
    }

    /// Takes `lock` as the server's lock helpers do, counted as `id`.
    fn take_counted<'a>(
        counts: &[crate::shared::gauges::LockStats; 2],
        lock: &'a Mutex<()>,
        id: crate::shared::thread_states::LockId,
    ) -> crate::shared::thread_states::Held<parking_lot::MutexGuard<'a, ()>> {
        let count = &counts[id as usize];
        count.acquire(id, || lock.try_lock(), || lock.lock())
    }

    #[test]
    fn a_lock_order_deadlock_is_reported_with_both_threads_and_their_locks() {
        // Two threads take two locks in opposite orders, each after the
        // other has its first: the classic lock-order deadlock. They take
        // them as the server's code does, through the wrappers that count
        // lock use and note on the board what each holds and waits for
        // (the first lock stands for the client directory, the second for
        // the stats). They stay blocked for the rest of this test process,
        // by design.
        use crate::shared::gauges::LockStats;
        use crate::shared::thread_states::LockId;
        let board = Arc::new(ThreadBoard::default());
        let (a, b) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
        let counts = Arc::new([LockStats::default(), LockStats::default()]);
        let both_hold_one = Arc::new(Barrier::new(2));
        let takers = [
            (
                "lock-taker-a",
                (a.clone(), LockId::Clients),
                (b.clone(), LockId::Stats),
            ),
            ("lock-taker-b", (b, LockId::Stats), (a, LockId::Clients)),
        ];
        for (name, (first, first_id), (second, second_id)) in takers {
            let (board, counts) = (board.clone(), counts.clone());
            let both_hold_one = both_hold_one.clone();
            thread::spawn(move || {
                let _on_board = board.enter_named(name);
                let take = |lock, id| take_counted(&counts, lock, id);
                let _first = take(&first, first_id);
                both_hold_one.wait();
                let _second = take(&second, second_id);
            });
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let reports = loop {
            let reports = reports(Some(&board));
            if !reports.is_empty() || Instant::now() > deadline {
                break reports;
            }
            thread::sleep(Duration::from_millis(20)); // polling, not synchronisation
        };
        assert_eq!(reports.len(), 1, "expected one deadlock, got {reports:#?}");
        let report = &reports[0];
        assert!(report.contains("2 threads"), "{report}");
        // Both threads are named by where they run and where they wait: in
        // this file, whether its frames were inlined (a release build:
        // `deadlock::{closure#0}`) or not (`deadlock::tests::…`).
        let summaries = report.lines().filter(|line| line.contains(", waits in "));
        let named = summaries
            .filter(|line| {
                line.contains("running deadlock::") && line.contains("waits in deadlock::")
            })
            .count();
        assert_eq!(named, 2, "expected both threads named: {report}");
        // And by their names, with the lock each holds and the one it waits for.
        for wanted in [
            " lock-taker-a: holds the client directory, waits for the stats; ",
            " lock-taker-b: holds the stats, waits for the client directory; ",
        ] {
            assert!(report.contains(wanted), "expected {wanted:?} in: {report}");
        }
    }
}
