//! The line being typed, when the client edits it itself (on a terminal,
//! see `terminal.rs`). Plain logic, no I/O: the typist thread feeds it each
//! byte read from the keyboard and acts on what comes back.
//!
//! Why edit at all: in the terminal's own line mode, the kernel holds what
//! you type and the program cannot see it, so a line arriving from the
//! server is printed in the middle of it. When the client holds the typed
//! text itself, the printer can clear the input line, print the server's
//! line, and put the typed text back underneath.
//!
//! The editing is deliberately small: typing, Backspace, Ctrl-U (clear),
//! Ctrl-W (delete a word), Enter, Ctrl-D on an empty line (end of input).
//! Arrow keys and other escape sequences are swallowed, not inserted.

#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    /// The typed text changed; redraw it.
    Changed,
    /// Enter: this line is finished and should be sent.
    Submit(String),
    /// Ctrl-D on an empty line.
    EndOfInput,
    /// Nothing visible happened (half of a character, an ignored key).
    Nothing,
}

#[derive(Debug, Default)]
pub struct LineEditor {
    typed: String,
    /// Bytes of a UTF-8 character not yet complete.
    partial: Vec<u8>,
    /// Inside an escape sequence (arrow keys, function keys).
    escape: Escape,
    /// Longest line accepted, in bytes; keys beyond it are ignored.
    cap: usize,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum Escape {
    #[default]
    No,
    /// After ESC.
    Started,
    /// After `ESC [` or `ESC O`: parameters until a final byte.
    Sequence,
}

const CTRL_D: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const CTRL_U: u8 = 0x15;
const CTRL_W: u8 = 0x17;
const ESC: u8 = 0x1b;
const DELETE: u8 = 0x7f;

impl LineEditor {
    pub fn new(cap: usize) -> Self {
        LineEditor {
            cap,
            ..LineEditor::default()
        }
    }

    /// What has been typed so far on this line.
    pub fn typed(&self) -> &str {
        &self.typed
    }

    pub fn feed(&mut self, byte: u8) -> Key {
        match self.escape {
            Escape::Started => {
                self.escape = if byte == b'[' || byte == b'O' {
                    Escape::Sequence
                } else {
                    Escape::No
                };
                return Key::Nothing;
            }
            Escape::Sequence => {
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = Escape::No;
                }
                return Key::Nothing;
            }
            Escape::No => {}
        }
        match byte {
            b'\n' | b'\r' => {
                self.partial.clear();
                Key::Submit(std::mem::take(&mut self.typed))
            }
            CTRL_D if self.typed.is_empty() => Key::EndOfInput,
            BACKSPACE | DELETE => {
                self.partial.clear();
                changed_if(self.typed.pop().is_some())
            }
            CTRL_U => {
                let had_text = !self.typed.is_empty();
                self.typed.clear();
                changed_if(had_text)
            }
            CTRL_W => {
                let kept = self.typed.trim_end().rfind(' ').map_or(0, |at| at + 1);
                let had_text = kept < self.typed.len();
                self.typed.truncate(kept);
                changed_if(had_text)
            }
            ESC => {
                self.escape = Escape::Started;
                Key::Nothing
            }
            // Other control keys (Tab excepted) would only confuse the line.
            byte if byte < 0x20 && byte != b'\t' => Key::Nothing,
            byte => self.add(byte),
        }
    }

    fn add(&mut self, byte: u8) -> Key {
        self.partial.push(byte);
        match std::str::from_utf8(&self.partial) {
            Ok(character) => {
                let fits = self.typed.len() + character.len() <= self.cap;
                if fits {
                    self.typed.push_str(character);
                }
                self.partial.clear();
                changed_if(fits)
            }
            // The start of a longer character: wait for the rest.
            Err(error) if error.error_len().is_none() => Key::Nothing,
            // Not UTF-8 at all: drop it.
            Err(_) => {
                self.partial.clear();
                Key::Nothing
            }
        }
    }
}

fn changed_if(changed: bool) -> Key {
    if changed {
        Key::Changed
    } else {
        Key::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_keys(editor: &mut LineEditor, keys: &[u8]) -> Vec<Key> {
        keys.iter().map(|&byte| editor.feed(byte)).collect()
    }

    #[test]
    fn typing_then_enter_submits_the_line_and_starts_a_new_one() {
        let mut editor = LineEditor::new(100);
        type_keys(&mut editor, b"hi bob");
        assert_eq!(editor.typed(), "hi bob");
        assert_eq!(editor.feed(b'\r'), Key::Submit("hi bob".to_string()));
        assert_eq!(editor.typed(), "");
        assert_eq!(editor.feed(b'\n'), Key::Submit(String::new()));
    }

    #[test]
    fn backspace_ctrl_u_and_ctrl_w_edit() {
        let mut editor = LineEditor::new(100);
        type_keys(&mut editor, b"hello wurld\x7f\x7f\x7f\x7fo");
        assert_eq!(editor.typed(), "hello wo");
        type_keys(&mut editor, b"rld  ");
        assert_eq!(editor.feed(CTRL_W), Key::Changed);
        assert_eq!(editor.typed(), "hello ");
        assert_eq!(editor.feed(CTRL_U), Key::Changed);
        assert_eq!(editor.typed(), "");
        assert_eq!(editor.feed(DELETE), Key::Nothing);
    }

    #[test]
    fn characters_of_several_bytes_are_added_whole_and_deleted_whole() {
        let mut editor = LineEditor::new(100);
        let keys = type_keys(&mut editor, "né".as_bytes());
        assert_eq!(keys, [Key::Changed, Key::Nothing, Key::Changed]);
        assert_eq!(editor.typed(), "né");
        editor.feed(DELETE);
        assert_eq!(editor.typed(), "n");
    }

    #[test]
    fn arrow_keys_and_stray_control_bytes_are_swallowed() {
        let mut editor = LineEditor::new(100);
        type_keys(&mut editor, b"a\x1b[A\x1b[1;5Cb\x1bOPc\x07\x00d\x1bxe");
        assert_eq!(editor.typed(), "abcde");
    }

    #[test]
    fn ctrl_d_ends_input_only_on_an_empty_line() {
        let mut editor = LineEditor::new(100);
        type_keys(&mut editor, b"x");
        assert_eq!(editor.feed(CTRL_D), Key::Nothing);
        editor.feed(DELETE);
        assert_eq!(editor.feed(CTRL_D), Key::EndOfInput);
    }

    #[test]
    fn the_line_stops_growing_at_its_cap() {
        let mut editor = LineEditor::new(3);
        let keys = type_keys(&mut editor, b"abcd");
        assert_eq!(keys.last(), Some(&Key::Nothing));
        assert_eq!(editor.typed(), "abc");
    }
}
