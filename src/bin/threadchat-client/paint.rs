//! How a server line looks on screen. Plain logic, no I/O; the printer
//! thread calls [`Style::paint`] on every line it prints.
//!
//! Lines are coloured by kind, read from the server's line formats
//! (docs/PROTOCOL.md): `* ` notices, `! ` errors, `[dm from x]` and
//! `[dm to x]` whispers, `[room] name: text` chat, `[room] * name text`
//! actions. A line of another shape (another server, a future format) is
//! printed as it came. When the output is not a terminal, or `NO_COLOR` is
//! set, every line is printed exactly as it came, so the client can be
//! scripted and piped.

/// Whether to colour, decided once at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Colour,
}

const RESET: &str = "\x1b[0m";
const NOTICE: &str = "\x1b[2m"; // faint: the server talking, not people
const ERROR: &str = "\x1b[1;31m"; // bold red
const WHISPER: &str = "\x1b[35m"; // magenta, kept for private lines
const ROOM: &str = "\x1b[2m";
/// Colours for sender names: no red (errors) and no magenta (whispers).
const NAME_COLOURS: [&str; 8] = [
    "\x1b[32m", "\x1b[33m", "\x1b[34m", "\x1b[36m", "\x1b[92m", "\x1b[93m", "\x1b[94m", "\x1b[96m",
];

impl Style {
    /// Colour when standard output is a terminal and `NO_COLOR` is unset or
    /// empty (<https://no-color.org>).
    pub fn choose(stdout_is_terminal: bool, no_color: Option<&str>) -> Style {
        let colour_refused = no_color.is_some_and(|value| !value.is_empty());
        if stdout_is_terminal && !colour_refused {
            Style::Colour
        } else {
            Style::Plain
        }
    }

    /// The line as it should be printed, without its newline.
    pub fn paint(self, line: &str) -> String {
        match self {
            Style::Plain => line.to_string(),
            Style::Colour => colour(&defuse(line)),
        }
    }
}

/// Control characters replaced, on a terminal only: the threadchat server
/// refuses them from clients, but another server could send an escape
/// sequence that moves the cursor or retitles the window.
fn defuse(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

fn colour(line: &str) -> String {
    if line.starts_with("* ") {
        return format!("{NOTICE}{line}{RESET}");
    }
    if line.starts_with("! ") {
        return format!("{ERROR}{line}{RESET}");
    }
    if line.starts_with("[dm from ") || line.starts_with("[dm to ") {
        return format!("{WHISPER}{line}{RESET}");
    }
    let Some((room, said)) = line
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
    else {
        return line.to_string();
    };
    if let Some(action) = said.strip_prefix("* ") {
        let (name, text) = action.split_once(' ').unwrap_or((action, ""));
        let name_colour = colour_of(name);
        return format!("{ROOM}[{room}]{RESET} {name_colour}* {name}{RESET} {text}");
    }
    match said.split_once(": ") {
        Some((name, text)) if !name.is_empty() && !name.contains(' ') => {
            let name_colour = colour_of(name);
            format!("{ROOM}[{room}]{RESET} {name_colour}{name}{RESET}: {text}")
        }
        _ => line.to_string(),
    }
}

/// The same name gets the same colour in every run and on every machine:
/// FNV-1a, a fixed hash, rather than std's `DefaultHasher`, whose algorithm
/// may change between Rust releases.
fn colour_of(name: &str) -> &'static str {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    NAME_COLOURS[(hash % NAME_COLOURS.len() as u64) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    // The server's own formatters, so that a change in a line format that
    // the client no longer recognises fails here.
    use threadchat::protocol;

    #[test]
    fn colour_only_on_a_terminal_and_only_without_no_color() {
        assert_eq!(Style::choose(true, None), Style::Colour);
        assert_eq!(Style::choose(true, Some("")), Style::Colour);
        assert_eq!(Style::choose(true, Some("1")), Style::Plain);
        assert_eq!(Style::choose(false, None), Style::Plain);
    }

    #[test]
    fn plain_prints_every_line_exactly_as_it_came() {
        for line in [
            "* bob joined",
            "! no",
            "[lobby] bob: hi",
            "odd \x1b[2J line",
        ] {
            assert_eq!(Style::Plain.paint(line), line);
        }
    }

    #[test]
    fn each_kind_of_line_gets_its_colour() {
        let paint = |line: &str| Style::Colour.paint(line);
        assert_eq!(
            paint(&protocol::notice("bob joined")),
            "\x1b[2m* bob joined\x1b[0m"
        );
        assert_eq!(paint(&protocol::error("no")), "\x1b[1;31m! no\x1b[0m");
        assert_eq!(
            paint(&protocol::whisper_received("bob", "psst")),
            "\x1b[35m[dm from bob] psst\x1b[0m"
        );
        assert_eq!(
            paint(&protocol::whisper_sent("bob", "psst")),
            "\x1b[35m[dm to bob] psst\x1b[0m"
        );
        let bob = colour_of("bob");
        assert_eq!(
            paint(&protocol::chat("lobby", "bob", "a: b")),
            format!("\x1b[2m[lobby]\x1b[0m {bob}bob\x1b[0m: a: b")
        );
        assert_eq!(
            paint(&protocol::action("lobby", "bob", "waves")),
            format!("\x1b[2m[lobby]\x1b[0m {bob}* bob\x1b[0m waves")
        );
    }

    #[test]
    fn a_line_of_no_known_shape_is_left_alone() {
        for line in ["hello", "[lobby]", "[a b] c d", "[x] two words: text"] {
            assert_eq!(Style::Colour.paint(line), line);
        }
    }

    #[test]
    fn a_name_keeps_its_colour_and_names_spread_over_the_palette() {
        assert_eq!(colour_of("alice"), colour_of("alice"));
        let used: std::collections::HashSet<_> =
            (0..100).map(|n| colour_of(&format!("u{n}"))).collect();
        assert!(
            used.len() >= 6,
            "100 names used only {} colours",
            used.len()
        );
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        let painted = Style::Colour.paint("[lobby] eve: \x1b]0;pwned\x07 hi\tthere");
        assert!(!painted.contains('\x07'));
        assert!(!painted.contains("\x1b]"));
        assert!(painted.contains("\u{fffd}]0;pwned\u{fffd} hi\tthere"));
    }
}
