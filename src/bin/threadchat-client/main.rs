//! `threadchat-client`: a terminal client, for machines without `nc`, and a
//! second, smaller lesson in threads.
//!
//! Three threads, and what each owns:
//!
//! - The **main thread** reads the command line, connects, starts the other
//!   two, and then waits on one channel for the first reason to stop
//!   ([`Ending`]): the server closed the connection, the keyboard input
//!   ended, or Ctrl-C. It carries that out and sets the exit status.
//! - The **printer** (thread `from-server`) owns the socket's reading side
//!   and prints through the shared [`Screen`]. It prints every line as it arrives and, when the
//!   server closes the connection, prints `* disconnected` and says so.
//! - The **typist** (thread `from-keyboard`) owns standard input. It sends
//!   each line typed, and says when the input ends. On a terminal it takes
//!   the keys one by one and keeps the typed line itself (`terminal.rs`,
//!   `line_editor.rs`), so that the printer can draw a server line above it
//!   instead of in the middle of it; both draw through one [`Screen`].
//!
//! The typist and, on Ctrl-C, the main thread both write to the socket, so
//! its writing side sits behind a mutex, held for exactly one whole line: a
//! `/quit` can never land in the middle of a half-sent line; a socket write
//! timeout bounds how long it can be held. The screen's lock is the other
//! one. No thread ever holds both.
//!
//! The typist is never joined. Nothing in std can interrupt a thread blocked
//! reading standard input, so when the server hangs up while the typist
//! waits for the keyboard, the main thread returns and the process ends
//! around it.

mod args;
mod capped;
mod line_editor;
mod paint;
mod screen;
mod terminal;

use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use args::{Invocation, USAGE};
use capped::LineRead;
use line_editor::{Key, LineEditor};
use paint::Style;
use screen::Screen;

/// How long to try each address the host name resolves to.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After sending `/quit`, how long to wait for the server to close.
const QUIT_WAIT: Duration = Duration::from_secs(5);
/// A write the server does not take within this long fails, so the socket
/// lock is never held longer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest line the client will print or send. Longer ones are skipped
/// with a word on standard error rather than buffered without bound; a
/// threadchat server refuses lines far shorter than this (`--max-line`).
const MAX_LINE: usize = 1024 * 1024;

/// Why the client stops: whichever comes first.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The server closed the connection (the printer has said so).
    ServerClosed,
    /// Standard input ended: Ctrl-D, or the end of a pipe.
    InputEnded,
    /// Standard output is gone (`| head`): nobody is reading any more.
    OutputClosed,
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
}

/// The socket's writing side, shared by the typist and the main thread.
type SocketWriter = Arc<Mutex<TcpStream>>;

fn main() -> ExitCode {
    let env_addr = std::env::var("THREADCHAT_ADDR").ok();
    match args::parse(std::env::args().skip(1), env_addr) {
        Ok(Invocation::Connect(addr)) => run(&addr),
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            println!("threadchat-client {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(addr: &str) -> ExitCode {
    let (endings_tx, endings) = unbounded();
    let stream = match connect(addr) {
        Ok(stream) => stream,
        Err(reason) => {
            eprintln!("error: cannot connect to {addr}: {reason}");
            return ExitCode::from(1);
        }
    };
    // Only once connected: until then there is nothing to /quit, so Ctrl-C
    // keeps its usual meaning, and the terminal is left as it is.
    if let Err(error) = stop_on_signals(endings_tx.clone()) {
        eprintln!("warning: cannot handle Ctrl-C ({error}); it will end the client abruptly");
    }
    // Keys one by one only when a person is typing at a terminal and
    // watching one; restored when this guard drops, as `run` returns.
    let keys_one_by_one = if io::stdin().is_terminal() && io::stdout().is_terminal() {
        terminal::KeysOneByOne::enter()
    } else {
        None
    };
    let style = Style::choose(
        io::stdout().is_terminal(),
        std::env::var("NO_COLOR").ok().as_deref(),
    );
    let screen = Arc::new(Screen::new(style, keys_one_by_one.is_some()));
    match start_threads(stream, &screen, &endings_tx) {
        Ok(socket) => {
            drop(endings_tx);
            finish(&socket, &endings);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot start the client's threads: {error}");
            ExitCode::from(1)
        }
    }
}

/// Ctrl-C (and SIGTERM, SIGHUP) asks the main thread to leave politely; a
/// second one leaves at once.
fn stop_on_signals(endings: Sender<Ending>) -> Result<(), ctrlc::Error> {
    let signalled = AtomicBool::new(false);
    ctrlc::set_handler(move || {
        if signalled.swap(true, Ordering::SeqCst) {
            // `exit` runs no destructors: give the terminal back first.
            terminal::restore();
            std::process::exit(130);
        }
        let _ = endings.send(Ending::Interrupted);
    })
}

/// Tries each address the name resolves to, and says in a few words why
/// none worked.
fn connect(addr: &str) -> Result<TcpStream, String> {
    let candidates = addr
        .to_socket_addrs()
        .map_err(|_| "cannot resolve that host name".to_string())?;
    let mut last_error = None;
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = Some(error),
        }
    }
    Err(match last_error {
        None => "the host name has no addresses".to_string(),
        Some(error) => match error.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            io::ErrorKind::TimedOut => format!("no answer within {CONNECT_TIMEOUT:?}"),
            _ => error.to_string(),
        },
    })
}

fn start_threads(
    stream: TcpStream,
    screen: &Arc<Screen>,
    endings: &Sender<Ending>,
) -> io::Result<SocketWriter> {
    // Lines are sent as they are typed; Nagle's algorithm would only delay them.
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let reading = stream.try_clone()?;
    let socket: SocketWriter = Arc::new(Mutex::new(stream));
    thread::Builder::new().name("from-server".into()).spawn({
        let screen = screen.clone();
        let endings = endings.clone();
        move || print_from_server(reading, &screen, &endings)
    })?;
    thread::Builder::new().name("from-keyboard".into()).spawn({
        let socket = socket.clone();
        let screen = screen.clone();
        let endings = endings.clone();
        move || {
            if screen.editing() {
                edit_typed_lines(&socket, &screen, &endings)
            } else {
                send_typed_lines(&socket, &endings)
            }
        }
    })?;
    Ok(socket)
}

/// The main thread's last job: wait for the first ending and carry it out.
fn finish(socket: &SocketWriter, endings: &Receiver<Ending>) {
    // `recv` fails only if both threads ended without a word, which they
    // never do; treat it like the server going away.
    let first = endings.recv().unwrap_or(Ending::ServerClosed);
    if first == Ending::ServerClosed {
        return;
    }
    // Leave the way a person would: `/quit`, so the server says goodbye and
    // the others see us leave, then wait for the server to close.
    let _ = send_line(socket, b"/quit");
    let deadline = Instant::now() + QUIT_WAIT;
    loop {
        match endings.recv_deadline(deadline) {
            Ok(Ending::ServerClosed) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(_) => continue,
            Err(RecvTimeoutError::Timeout) => {
                eprintln!("! the server did not close the connection within {QUIT_WAIT:?}; leaving anyway");
                let _ = socket.lock().shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// The printer thread: every server line to standard output as it arrives.
fn print_from_server(socket: TcpStream, screen: &Screen, endings: &Sender<Ending>) {
    let mut from_server = BufReader::new(socket);
    let mut printing = true;
    let mut line = Vec::new();
    loop {
        match capped::read_line(&mut from_server, &mut line, MAX_LINE) {
            Ok(LineRead::Line) => {}
            Ok(LineRead::TooLong) => {
                eprintln!("! the server sent a line longer than {MAX_LINE} bytes; not shown");
                continue;
            }
            // A reset connection ends the session just as a close does.
            Ok(LineRead::End) | Err(_) => break,
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        // Once nobody reads our output, keep reading the socket (to notice
        // when the server closes) but stop printing, and ask to leave.
        if printing && screen.print(text).is_err() {
            printing = false;
            let _ = endings.send(Ending::OutputClosed);
        }
    }
    if printing {
        let _ = screen.print_last("* disconnected");
    }
    let _ = endings.send(Ending::ServerClosed);
}

/// The typist thread: each line from standard input to the server, as is.
/// The server checks it (length, UTF-8, control characters) and answers with
/// a `! ` line if it will not take it; the client need not know the rules.
fn send_typed_lines(socket: &SocketWriter, endings: &Sender<Ending>) {
    let mut keyboard = io::stdin().lock();
    let mut line = Vec::new();
    loop {
        match capped::read_line(&mut keyboard, &mut line, MAX_LINE) {
            Ok(LineRead::Line) => {}
            Ok(LineRead::TooLong) => {
                eprintln!("! that line is longer than {MAX_LINE} bytes; not sent");
                continue;
            }
            Ok(LineRead::End) | Err(_) => break,
        }
        if send_line(socket, &line).is_err() {
            // The server has gone; the printer will say so.
            break;
        }
    }
    let _ = endings.send(Ending::InputEnded);
}

/// The typist thread on a terminal: keys one by one into a `LineEditor`,
/// the typed line drawn on the `Screen` as it changes, each finished line to
/// the server.
fn edit_typed_lines(socket: &SocketWriter, screen: &Screen, endings: &Sender<Ending>) {
    let mut editor = LineEditor::new(MAX_LINE);
    let mut keyboard = io::stdin().lock();
    let mut keys = [0; 256];
    'typing: loop {
        let count = match keyboard.read(&mut keys) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for &key in &keys[..count] {
            match editor.feed(key) {
                Key::Nothing => {}
                Key::Changed => {
                    let _ = screen.show_typed(editor.typed());
                }
                Key::Submit(line) => {
                    let _ = screen.submit_typed();
                    if send_line(socket, line.as_bytes()).is_err() {
                        break 'typing;
                    }
                }
                Key::EndOfInput => break 'typing,
            }
        }
    }
    let _ = endings.send(Ending::InputEnded);
}

/// One whole line, under the lock, so that two senders never interleave.
fn send_line(socket: &SocketWriter, text: &[u8]) -> io::Result<()> {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text);
    line.push(b'\n');
    socket.lock().write_all(&line)
}
