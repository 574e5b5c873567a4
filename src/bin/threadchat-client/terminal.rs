//! Keys one at a time: switching the terminal out of its line mode while
//! the client runs, and back on every way out. The main thread switches it
//! at start and back when it returns; the signal handler switches it back
//! before a second Ctrl-C exits at once.
//!
//! std has no terminal settings (termios), and the design allows no new
//! package for them, so this runs `stty`, the standard Unix tool, on the
//! terminal that is our standard input: `stty -g` saves the settings as one
//! word, `stty -icanon -echo` makes each key reach us as it is typed, with
//! no echo (the client draws the typed line itself, `line_editor.rs`), and
//! `stty <saved>` puts everything back. Signals stay on, so Ctrl-C still
//! means Ctrl-C. Where `stty` is missing or fails (Windows), the client
//! stays in line mode: it works, and incoming lines can split what you type,
//! as with nc.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The settings to restore, saved before they were changed.
static SAVED: OnceLock<String> = OnceLock::new();
/// Set once they are restored, so that the handler and `Drop` do it once.
static RESTORED: AtomicBool = AtomicBool::new(false);

/// While this lives, keys arrive one at a time; dropping it restores the
/// terminal.
pub struct KeysOneByOne(());

impl KeysOneByOne {
    /// `None` if the terminal could not be switched; it is then unchanged.
    pub fn enter() -> Option<KeysOneByOne> {
        let saved = stty(&["-g"])?;
        let saved = saved.trim();
        if saved.is_empty() || SAVED.set(saved.to_string()).is_err() {
            return None;
        }
        stty(&["-icanon", "-echo", "min", "1", "time", "0"])?;
        Some(KeysOneByOne(()))
    }
}

impl Drop for KeysOneByOne {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the saved settings back, if any were saved and not yet restored.
pub fn restore() {
    if let Some(saved) = SAVED.get() {
        if !RESTORED.swap(true, Ordering::SeqCst) {
            let _ = stty(&[saved.as_str()]);
        }
    }
}

/// Runs `stty` on our terminal (its standard input is ours); its output if
/// it succeeded.
fn stty(args: &[&str]) -> Option<String> {
    let output = Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}
