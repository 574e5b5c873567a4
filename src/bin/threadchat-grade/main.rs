//! `threadchat-grade`: grades a chat server of threadchat's line protocol
//! (docs/PROTOCOL.md) over its sockets alone, so that a student's server in
//! any language can be graded the same way (docs/ASSIGNMENT.md, "For
//! teachers").
//!
//! The main thread reads the command line and the rubric, runs the tests one
//! after another ([`runner`]), and prints the table and, if asked, the
//! Gradescope JSON ([`report`]). Each test runs on a thread of its own with
//! a hard time limit, against a server the grader starts for it on a free
//! port and always stops ([`server`]), or against the one `--addr` names.
//! The tests ([`checks`]) speak to the server through [`client::Client`],
//! whose every wait is bounded and says what it waited for.
//!
//! std only: no crate, and nothing of the threadchat library, whose
//! insides a server in another language does not share.

mod checks;
mod cli;
mod client;
mod report;
mod rubric;
mod runner;
mod server;

use std::process::ExitCode;

use cli::{Invocation, Options};

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(Invocation::Grade(options)) => grade(&options),
        Ok(Invocation::List) => {
            for test in checks::all() {
                println!("{}  ({})", test.id(), test.summary);
            }
            ExitCode::SUCCESS
        }
        Ok(Invocation::Help) => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("threadchat-grade: {message}\n\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}

fn grade(options: &Options) -> ExitCode {
    let tests = checks::all();
    let ids: Vec<String> = tests.iter().map(|test| test.id()).collect();
    let rubric = match rubric::load(
        options.rubric.as_deref(),
        options.assignment.as_deref(),
        &ids,
    ) {
        Ok(rubric) => rubric.only(&options.only),
        Err(message) => {
            eprintln!("threadchat-grade: {message}");
            return ExitCode::from(2);
        }
    };
    let rubric = match rubric {
        Ok(rubric) => rubric,
        Err(message) => {
            eprintln!("threadchat-grade: {message}");
            return ExitCode::from(2);
        }
    };
    let results = runner::run(options, &rubric, &tests);
    let graded = report::Graded::new(&rubric, &results);
    print!("{}", graded.table(options));
    if let Some(path) = &options.json {
        if let Err(error) = std::fs::write(path, graded.gradescope_json()) {
            eprintln!("threadchat-grade: cannot write {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::from(graded.exit_status())
}
