//! The terminal client (`threadchat-client`), as a user runs it: the built
//! binary, its standard input and output piped (or, for colour, on a
//! pseudo-terminal from `script`), against an in-process server.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::common::process::{has_unix_signals, run, tool_available, Process};
use crate::common::{start_server, test_config, wait_until, Client, DEADLINE};

const CLIENT: &str = env!("CARGO_BIN_EXE_threadchat-client");

/// A running client binary, typed into and read from as a person would.
struct RunningClient {
    process: Process,
}

fn client_command(args: &[&str]) -> Command {
    let mut command = Command::new(CLIENT);
    command
        .args(args)
        .env_remove("THREADCHAT_ADDR")
        .env_remove("NO_COLOR");
    command
}

impl RunningClient {
    fn connect(addr: SocketAddr) -> RunningClient {
        RunningClient {
            process: Process::spawn(&mut client_command(&[&addr.to_string()])),
        }
    }

    fn type_line(&mut self, line: &str) {
        self.process.write(format!("{line}\n").as_bytes());
    }

    /// Ends the client's standard input, as Ctrl-D or the end of a pipe does.
    fn end_input(&mut self) {
        self.process.close_stdin();
    }

    /// Reads printed lines until one equals `expected`.
    fn expect_printed(&mut self, expected: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.process.stdout.line_before(deadline) {
                Some(line) if line == expected => return,
                Some(_) => {}
                None => panic!(
                    "client: expected it to print {expected:?}; it printed {:?}, and on stderr {:?}",
                    self.process.stdout.text(),
                    self.process.stderr.text()
                ),
            }
        }
    }

    fn expect_exit_code(&mut self, expected: i32) {
        let status = self.process.wait_for_exit();
        assert_eq!(
            status.code(),
            Some(expected),
            "client: expected exit code {expected}, got {status}; it printed {:?}",
            self.process.stdout.text()
        );
    }

    /// Nothing printed so far carries a colour code (or any escape).
    fn expect_all_plain(&mut self, because: &str) {
        let printed = self.process.stdout.text();
        assert!(
            !printed.contains('\x1b'),
            "{because}: expected no colour codes, got {printed:?}"
        );
    }

    /// Registers as `name` through the keyboard, as a person would.
    fn register(&mut self, name: &str) {
        self.expect_printed("* choose a name (1-24 letters, digits, - or _):");
        self.type_line(name);
        self.expect_printed(&format!(
            "* welcome {name}! you are in lobby; 2 online. /help lists the commands"
        ));
    }
}

/// A port on which nothing listens: bound, then released.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

#[test]
fn registers_sends_receives_and_quits_at_the_end_of_input() {
    let server = start_server(test_config());
    let mut bob = Client::register(server.local_addr(), "bob");
    let mut alice = RunningClient::connect(server.local_addr());
    alice.expect_printed("* welcome to threadchat");
    alice.register("alice");
    bob.expect("* alice joined");

    alice.type_line("hello bob");
    bob.expect("[lobby] alice: hello bob");
    bob.send("hi alice");
    alice.expect_printed("[lobby] bob: hi alice");

    alice.end_input();
    alice.expect_printed("* bye alice");
    alice.expect_printed("* disconnected");
    alice.expect_exit_code(0);
    bob.expect("* alice left");
    // Its output is a pipe, so every line is printed exactly as the server
    // sent it: no colour codes, however the environment is set up.
    alice.expect_all_plain("standard output is a pipe");
}

#[test]
fn ctrl_c_says_quit_and_exits_cleanly() {
    if !has_unix_signals() {
        return;
    }
    let server = start_server(test_config());
    let mut bob = Client::register(server.local_addr(), "bob");
    let mut alice = RunningClient::connect(server.local_addr());
    // Once it prints, its signal handler (installed on connecting, before its
    // threads start) is in place.
    alice.register("alice");
    bob.expect("* alice joined");

    alice.process.signal("-INT");
    alice.expect_printed("* bye alice");
    alice.expect_printed("* disconnected");
    alice.expect_exit_code(0);
    bob.expect("* alice left");
}

#[test]
fn the_server_closing_ends_the_client_even_while_it_waits_for_the_keyboard() {
    let server = start_server(test_config());
    let _bob = Client::register(server.local_addr(), "bob");
    let mut alice = RunningClient::connect(server.local_addr());
    alice.register("alice");

    // Standard input stays open: the typist is still blocked reading it.
    server.shutdown();
    alice.expect_printed("* server shutting down");
    alice.expect_printed("* disconnected");
    alice.expect_exit_code(0);
}

#[test]
fn a_refused_connection_is_one_line_and_exit_status_1() {
    let addr = closed_port();
    let refused = run(&mut client_command(&[&addr.to_string()]));
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_eq!(
        refused.stderr,
        format!("error: cannot connect to {addr}: connection refused\n")
    );
    assert_eq!(refused.stdout, "");

    // THREADCHAT_ADDR is where it goes when no address is given.
    let refused = run(client_command(&[]).env("THREADCHAT_ADDR", addr.to_string()));
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert_eq!(
        refused.stderr,
        format!("error: cannot connect to {addr}: connection refused\n")
    );
}

#[test]
fn bad_arguments_are_one_line_and_exit_status_2() {
    for (args, message) in [
        (
            &["--port", "7878"][..],
            "error: unknown option --port (try --help)",
        ),
        (
            &["127.0.0.1:1", "127.0.0.1:2"][..],
            "error: unexpected argument 127.0.0.1:2: give one HOST:PORT (try --help)",
        ),
        (
            &["localhost"][..],
            "error: bad address \"localhost\": expected HOST:PORT, e.g. 127.0.0.1:7878",
        ),
    ] {
        let refused = run(&mut client_command(args));
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {refused:?}");
        assert_eq!(refused.stderr, format!("{message}\n"), "{args:?}");
    }

    let help = run(&mut client_command(&["--help"]));
    assert_eq!(help.status.code(), Some(0), "{help:?}");
    assert!(
        help.stdout
            .starts_with("Usage: threadchat-client [HOST:PORT]"),
        "{help:?}"
    );
    let version = run(&mut client_command(&["--version"]));
    assert_eq!(version.status.code(), Some(0), "{version:?}");
    assert_eq!(
        version.stdout,
        format!("threadchat-client {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// The client on a pseudo-terminal, made by util-linux `script`: what it
/// writes to the terminal, read as raw bytes (escape codes included).
struct TerminalClient {
    process: Process,
}

impl TerminalClient {
    /// `None` (the test skips) where `script` is missing, except on CI.
    fn start(addr: SocketAddr, no_color: Option<&str>) -> Option<TerminalClient> {
        if !tool_available("script", "--version", "bsdutils") {
            return None;
        }
        let mut command = Command::new("script");
        command
            .args(["-q", "-e", "-c"])
            .arg(format!("{CLIENT} {addr}"))
            .arg("/dev/null")
            .env_remove("THREADCHAT_ADDR")
            .env_remove("NO_COLOR");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        Some(TerminalClient {
            process: Process::spawn(&mut command),
        })
    }

    /// Keys, as typed: nothing is added, not even Enter.
    fn press(&mut self, keys: &str) {
        self.process.write(keys.as_bytes());
    }

    /// Waits until the terminal has been sent `expected` (escape codes and
    /// all).
    fn expect_drawn(&mut self, expected: &str) {
        self.process.stdout.wait_for_text(expected, "terminal");
    }

    /// Everything written to the terminal so far.
    fn screen(&mut self) -> String {
        self.process.stdout.text()
    }

    fn expect_exit_code(&mut self, expected: i32) {
        let status = self.process.wait_for_exit();
        assert_eq!(
            status.code(),
            Some(expected),
            "terminal client: expected exit {expected}, got {status}; screen {:?}",
            self.screen()
        );
    }
}

/// On a terminal, lines are coloured by kind; `NO_COLOR` turns that off.
#[test]
fn colour_on_a_terminal_unless_no_color_is_set() {
    let server = start_server(test_config());
    let Some(mut coloured) = TerminalClient::start(server.local_addr(), None) else {
        return;
    };
    coloured.expect_drawn("\x1b[2m* welcome to threadchat\x1b[0m");
    coloured.press("/quit\n");
    coloured.expect_drawn("\x1b[2m* bye\x1b[0m");
    coloured.expect_exit_code(0);

    let Some(mut plain) = TerminalClient::start(server.local_addr(), Some("1")) else {
        return;
    };
    plain.expect_drawn("* welcome to threadchat");
    plain.press("/quit\n");
    plain.expect_drawn("* bye");
    plain.expect_exit_code(0);
    let screen = plain.screen();
    assert!(
        !screen.contains("\x1b[2m") && !screen.contains("\x1b[0m"),
        "NO_COLOR=1: expected no colour codes, got {screen:?}"
    );
}

/// What nc cannot do: a line that arrives while you type is drawn above the
/// typed text, which is then drawn again, intact, below it.
#[test]
fn on_a_terminal_a_line_arriving_mid_typing_is_drawn_above_what_is_typed() {
    let server = start_server(test_config());
    let mut bob = Client::register(server.local_addr(), "bob");
    let Some(mut alice) = TerminalClient::start(server.local_addr(), Some("1")) else {
        return;
    };
    alice.expect_drawn("* choose a name");
    alice.press("alice\n");
    alice.expect_drawn("* welcome alice!");
    bob.expect("* alice joined");

    // Keys arrive one by one and the client draws them itself...
    alice.press("hwl\x7f\x7fel");
    alice.expect_drawn("\r\x1b[Khel");
    // ...so a line from the server clears the input line, is printed, and
    // the typed text comes back under it.
    bob.send("hi");
    alice.expect_drawn("\r\x1b[K[lobby] bob: hi\r\nhel");
    alice.press("lo\n");
    bob.expect("[lobby] alice: hello");

    // Ctrl-D on an empty line ends the input: /quit, goodbye, exit 0.
    alice.press("\x04");
    alice.expect_drawn("* bye alice");
    alice.expect_exit_code(0);
    bob.expect("* alice left");
}

/// The wait after `/quit` is bounded: against a server that never closes
/// the connection, the client still leaves, says so, and exits 0. The fake
/// server is a bare listener, which also shows that what is typed is sent
/// exactly as typed, one line each.
#[test]
fn against_a_server_that_never_closes_the_wait_after_quit_is_bounded() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    let mut client = RunningClient::connect(addr);
    let (accepted, _) = listener.accept().expect("the client connects");
    accepted
        .set_read_timeout(Some(DEADLINE))
        .expect("set a read timeout");
    let mut from_client = std::io::BufReader::new(&accepted);

    client.type_line("héllo, any server");
    client.end_input();
    let mut received = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut from_client, &mut line)
            .expect("a line from the client within the deadline");
        received.push(line);
    }
    assert_eq!(received, ["héllo, any server\n", "/quit\n"]);

    // `accepted` stays open until the client has exited on its own.
    client.expect_exit_code(0);
    let complaint = client
        .process
        .stderr
        .line_before(Instant::now() + DEADLINE)
        .expect("a line on standard error");
    assert_eq!(
        complaint,
        "! the server did not close the connection within 5s; leaving anyway"
    );
    drop(accepted);
}

/// `threadchat-client | head -1`: once nobody reads its output, the client
/// leaves (with `/quit`) instead of staying connected unseen.
#[test]
fn when_its_output_is_closed_the_client_leaves() {
    let server = start_server(test_config());
    let mut child = client_command(&[&server.local_addr().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client binary");
    // Nobody will read: its first line (the server's greeting) fails to print.
    drop(child.stdout.take());
    // Standard input stays open (the Process holds it), so only the closed
    // output can end it.
    let mut client = Process::adopt("threadchat-client".into(), child);
    let status = client.wait_for_exit();
    assert_eq!(status.code(), Some(0), "expected exit 0, got {status}");
    wait_until(
        "the server to see the client go",
        || {
            let stats = server.stats();
            (stats.connections_accepted, stats.connections_open)
        },
        |(accepted, open)| *accepted == 1 && *open == 0,
    );
}
