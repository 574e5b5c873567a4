//! The load generator: many chat clients simulated from one thread.
//!
//! It does not use a thread per simulated client (that would compete with
//! the server's own threads for the machine's `pid_max`): every socket is
//! non-blocking and one `mio` (epoll) loop drives them all. It works against
//! any line-based chat server: each client sends its name `u<index>` and
//! counts as registered when a line holding `welcome u<index>` arrives;
//! senders send `LG <sender> <seq> <send time in µs>`, and receivers find
//! that text wherever the server puts it in its line.
//!
//! Run `cargo run --release --example loadgen -- --help` for the modes and
//! flags; docs/BENCHMARKS.md has the commands behind every published figure.
//! The chaos mode (a soak test of everything at once) is in `chaos/`;
//! docs/RELIABILITY.md has its results.
//!
//! Here: the command line's dispatch and the exit status. A run goes
//! `args` → `spawn` (the server) → `run` (its steps, with the clients of
//! `swarm` counting into `tally`, the mode's sending in `workload`, and
//! `procstat` sampling the server) → `report`; `chart` draws SVGs from the
//! JSON of several runs.

mod args;
mod chaos;
mod chart;
mod procstat;
mod report;
mod run;
mod spawn;
mod swarm;
mod tally;
mod workload;

use std::process::ExitCode;

use args::{parse_args, Mode, USAGE};
use report::Report;

fn main() -> ExitCode {
    spawn::kill_spawned_server_on_signal();
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("chart") {
        args.next();
        return chart_command(args.collect());
    }
    let args = match parse_args(args) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.mode == Mode::Chaos {
        return chaos::main(&args);
    }
    match run::run(&args) {
        Ok(report) => finish(&report, args.json, args.expect_zero_loss),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

/// `loadgen chart RESULTS.jsonl OUT_DIR`.
fn chart_command(files: Vec<String>) -> ExitCode {
    match files.as_slice() {
        [results, out_dir] => match chart::chart(results, out_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: loadgen chart RESULTS.jsonl OUT_DIR");
            ExitCode::from(2)
        }
    }
}

/// Prints the report; exit status 1 if zero loss was expected and not had.
fn finish(report: &Report, json: bool, expect_zero_loss: bool) -> ExitCode {
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    if expect_zero_loss && !report.lossless() {
        eprintln!(
            "error: expected zero loss: {} of {} connections failed, {} of {} deliveries missing",
            report.connect_failed,
            report.clients,
            report.expected.saturating_sub(report.received),
            report.expected
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
