//! Shutdown (PROTOCOL.md, "Server shutdown"): on SIGTERM every client is
//! told `* server shutting down` and closed, and the process exits with
//! status 0 within 5 s, even with a client that reads nothing or new
//! connections still arriving.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::{test, Ctx, Needs, Test};
use crate::client::{fail, secs, Check, Client};
use crate::server::{describe, ServerProcess};

pub const TESTS: &[Test] = &[
    test(
        "shutdown",
        "sigterm_tells_every_client_and_exits_0",
        "on SIGTERM, named, unnamed and half-typing clients get * server shutting down; exit 0",
        sigterm_tells_every_client_and_exits_0,
    )
    .needs(Needs::OwnServer),
    test(
        "shutdown",
        "a_client_that_reads_nothing_does_not_hold_it_up",
        "with one client's socket full, SIGTERM still ends the server with 0 within 5 s",
        a_client_that_reads_nothing_does_not_hold_it_up,
    )
    .needs(Needs::OwnServer),
    test(
        "shutdown",
        "arriving_connections_do_not_hold_it_up",
        "with connections arriving all the time, SIGTERM still ends the server with 0 within 5 s",
        arriving_connections_do_not_hold_it_up,
    )
    .needs(Needs::OwnServer),
];

/// How long the server has after SIGTERM.
pub const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// SIGTERM, then exit status 0 within [`EXIT_WITHIN`].
fn terminate_and_expect_0(server: &ServerProcess) -> Check {
    server.terminate()?;
    match server.wait_for_exit(EXIT_WITHIN) {
        Some(status) if status.success() => Ok(()),
        Some(status) => fail!(
            "after SIGTERM the server {}; expected exit status 0",
            describe(status)
        ),
        None => fail!(
            "the server had not exited {} after SIGTERM",
            secs(EXIT_WITHIN)
        ),
    }
}

/// Lines until `* server shutting down`, then the end of the connection.
fn expect_told_and_closed(client: &mut Client) -> Check {
    client.skip_until("* server shutting down", 1_000)?;
    client.expect_closed(0)
}

fn sigterm_tells_every_client_and_exits_0(ctx: &Ctx) -> Check {
    let server = ctx.process()?;
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    clients.push(ctx.greeted("unnamed")?);
    let mut typing = ctx.register("typing")?;
    typing.send_raw(b"half a li")?;
    clients.push(typing);
    terminate_and_expect_0(server)?;
    for client in &mut clients {
        expect_told_and_closed(client)?;
    }
    Ok(())
}

fn a_client_that_reads_nothing_does_not_hold_it_up(ctx: &Ctx) -> Check {
    let server = ctx.process()?;
    let mut c = ctx.register_all(&["sender", "stuck"])?;
    // 6 MB for stuck, who reads none of it: its socket buffers fill and
    // a write to it blocks.
    let line = format!("{}\n", "x".repeat(1000));
    let mut writer = c[0].writer()?;
    let flooding = thread::spawn(move || {
        for _ in 0..6_000 {
            if writer.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });
    if flooding.join().is_err() {
        fail!("grader: the flooding thread panicked");
    }
    // sender's own command is answered after the flood has been handled.
    c[0].send("/bogus-sync")?;
    c[0].skip_until("! unknown command /bogus-sync, try /help", 10)?;
    terminate_and_expect_0(server)?;
    expect_told_and_closed(&mut c[0])
}

fn arriving_connections_do_not_hold_it_up(ctx: &Ctx) -> Check {
    let server = ctx.process()?;
    let addr = ctx.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel();
    let arrivals = thread::spawn({
        let stop = stop.clone();
        move || {
            let mut open = Vec::new();
            while !stop.load(Ordering::SeqCst) && open.len() < 2_000 {
                let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                else {
                    break;
                };
                let _ = stream.write_all(format!("n{}\n", open.len()).as_bytes());
                open.push(stream);
                let _ = arrived_tx.send(open.len());
            }
        }
    });
    // Once 50 have arrived (and more keep coming), SIGTERM.
    let enough = arrived_rx.iter().take_while(|n| *n < 50).count();
    if enough < 49 {
        stop.store(true, Ordering::SeqCst);
        let _ = arrivals.join();
        fail!("only {enough} connections could be opened before the server stopped taking them");
    }
    let outcome = terminate_and_expect_0(server);
    stop.store(true, Ordering::SeqCst);
    let _ = arrivals.join();
    outcome
}
