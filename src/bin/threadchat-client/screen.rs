//! Standard output, shared by the printer thread (server lines) and, when
//! the client edits the typed line itself, the typist thread (what is being
//! typed). Both write through one `parking_lot::Mutex`, held while one line
//! or one redraw is written, so the two never interleave on screen.
//!
//! Holding a lock across output is what the server never does; here it is
//! the point: the screen is the shared resource, and a write to a terminal
//! is short. (If standard output blocks, say a paused terminal, both
//! threads wait, which is what a paused terminal means.)

use std::io::{self, Write};

use parking_lot::Mutex;

use crate::paint::Style;

/// Clears the terminal's current line: carriage return, erase to its end.
const CLEAR_LINE: &str = "\r\x1b[K";

pub struct Screen {
    style: Style,
    /// Whether the typed line is drawn by us (keys one by one) rather than
    /// echoed by the terminal.
    editing: bool,
    /// The typed line as last drawn; empty when not editing.
    typed: Mutex<String>,
}

impl Screen {
    pub fn new(style: Style, editing: bool) -> Self {
        Screen {
            style,
            editing,
            typed: Mutex::new(String::new()),
        }
    }

    pub fn editing(&self) -> bool {
        self.editing
    }

    /// A server line, above what is being typed.
    pub fn print(&self, line: &str) -> io::Result<()> {
        let typed = self.typed.lock();
        let mut out = io::stdout().lock();
        if self.editing {
            out.write_all(CLEAR_LINE.as_bytes())?;
        }
        writeln!(out, "{}", self.style.paint(line))?;
        if self.editing {
            out.write_all(typed.as_bytes())?;
        }
        out.flush()
    }

    /// The last line the client prints: the typed text is not drawn again
    /// below it, so the shell's prompt starts on a clean line.
    pub fn print_last(&self, line: &str) -> io::Result<()> {
        let mut typed = self.typed.lock();
        typed.clear();
        let mut out = io::stdout().lock();
        if self.editing {
            out.write_all(CLEAR_LINE.as_bytes())?;
        }
        writeln!(out, "{}", self.style.paint(line))?;
        out.flush()
    }

    /// The typed line changed: draw it again.
    pub fn show_typed(&self, text: &str) -> io::Result<()> {
        let mut typed = self.typed.lock();
        typed.clear();
        typed.push_str(text);
        let mut out = io::stdout().lock();
        write!(out, "{CLEAR_LINE}{typed}")?;
        out.flush()
    }

    /// Enter: the typed line stays on screen as it was sent, and a new,
    /// empty one starts below it.
    pub fn submit_typed(&self) -> io::Result<()> {
        let mut typed = self.typed.lock();
        typed.clear();
        let mut out = io::stdout().lock();
        writeln!(out)?;
        out.flush()
    }
}
