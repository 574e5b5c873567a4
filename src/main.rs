//! The `threadchat` binary: reads the command line, sets up logging and the
//! signal handler, starts the server, and on Ctrl-C (or SIGTERM, SIGHUP)
//! shuts it down. Runs on the main thread, which spends the server's life
//! waiting for that signal. Everything else is in the library, starting at
//! `Server::start`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::bounded;
use threadchat::config::{self, Invocation, USAGE};
use threadchat::{Config, Server};

fn main() -> ExitCode {
    let args = std::env::args().skip(1);
    let env_addr = std::env::var("THREADCHAT_ADDR").ok();
    match config::parse_args(args, env_addr) {
        Ok(Invocation::Run(config)) => run(*config),
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            println!("threadchat {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(config: Config) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    // The handler runs on ctrlc's own thread. It only signals the main
    // thread, which does the shutdown; a second signal means "now".
    let (signal_tx, signal_rx) = bounded::<()>(1);
    let signalled = AtomicBool::new(false);
    let handler = ctrlc::set_handler(move || {
        if signalled.swap(true, Ordering::SeqCst) {
            eprintln!("second signal: exiting without waiting");
            std::process::exit(130);
        }
        let _ = signal_tx.try_send(());
    });
    if let Err(error) = handler {
        eprintln!("error: cannot install the signal handler: {error}");
        return ExitCode::from(1);
    }

    let server = match Server::start(config) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    // Nothing but the handler sends; it never drops its sender, so `recv`
    // returns only on a signal.
    let _ = signal_rx.recv();
    server.shutdown();
    ExitCode::SUCCESS
}
