//! The wire protocol: what a line from a client means, and how every line the
//! server sends is spelled. Plain logic, no I/O, no locks.
//!
//! The line door (`doors/line.rs`) calls [`parse`] on each line a reader
//! reads; `line.rs` calls the spelling functions once for each line the
//! manager makes. docs/PROTOCOL.md is the same protocol in prose, and the
//! two must agree.

use std::fmt;

/// What one line from a client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// An empty (or all-blank) line: ignored.
    Empty,
    /// A plain line. Before registration it is the name the client wants;
    /// after, a chat line for the room. `//text` arrives here as `/text`.
    Say(String),
    /// `/me TEXT`
    Action(String),
    /// `/w NAME TEXT` or `/msg NAME TEXT`
    Whisper { to: String, text: String },
    /// `/nick NEW`
    Nick(String),
    /// `/users`
    Users,
    /// `/join ROOM`, with the room name as typed (a leading `#` included).
    Join(String),
    /// `/leave`: back to the lobby.
    Leave,
    /// `/rooms`, or its alias `/groups`
    Rooms,
    /// `/who`: the members of one's room.
    Who,
    /// `/stats`
    Stats,
    /// `/trace`: the next chat line's journey through the server's threads.
    Trace,
    /// `/help`
    Help,
    /// `/quit`
    Quit,
}

impl Command {
    /// Whether it only asks for a list or a page of text: what a browser's
    /// page asks for on its own, whenever someone comes or goes.
    pub fn is_query(&self) -> bool {
        matches!(
            self,
            Command::Users | Command::Rooms | Command::Who | Command::Stats | Command::Help
        )
    }
}

/// Why a line could not be turned into a [`Command`]. Its `Display` is the
/// text of the `! ` line the client gets back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A known command with missing or extra arguments; holds the usage.
    Usage(&'static str),
    /// `/word` that is not a command; holds `word`.
    UnknownCommand(String),
    /// The line holds a control character (see [`find_control`]).
    ControlCharacter(char),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Usage(usage) => write!(f, "usage: {usage}"),
            ParseError::UnknownCommand(word) => {
                write!(f, "unknown command /{}, try /help", excerpt(word))
            }
            ParseError::ControlCharacter(c) if is_bidi_control(*c) => write!(
                f,
                "line not sent: it contains the bidirectional control U+{:04X}",
                *c as u32
            ),
            ParseError::ControlCharacter(c) => write!(
                f,
                "line not sent: it contains the control character U+{:04X}",
                *c as u32
            ),
        }
    }
}

/// The commands and what they do, as `/help` shows them (one `* ` line each).
pub const HELP: &[&str] = &[
    "commands:",
    "  /users             who is online",
    "  /who               who is in your room",
    "  /join ROOM         go to ROOM, creating it if new",
    "  /leave             back to the lobby",
    "  /rooms             the rooms and how many are in each (also /groups)",
    "  /w NAME TEXT       whisper to one person (also /msg)",
    "  /me TEXT           an action: * NAME TEXT",
    "  /nick NEW          change your name",
    "  /stats             server statistics",
    "  /trace             time your next line through the server's threads",
    "  /help              this list",
    "  /quit              leave",
    "  //TEXT             send a line that starts with /",
];

/// Turns one line (already without its `\n` or `\r\n`) into a command.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    if let Some(c) = find_control(line) {
        return Err(ParseError::ControlCharacter(c));
    }
    if is_blank(line) {
        return Ok(Command::Empty);
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_string()));
    };
    if rest.starts_with('/') {
        // `//text` is how a user says a line that starts with a slash.
        return Ok(Command::Say(rest.to_string()));
    }
    // The command word starts right after the slash: `/ quit` is not
    // `/quit`, it is the unknown command `/`.
    let (word, args) = match rest.find(BLANKS) {
        Some(end) => (&rest[..end], rest[end..].trim_start_matches(BLANKS)),
        None => (rest, ""),
    };
    match word.to_ascii_lowercase().as_str() {
        "me" => text_arg(args, "/me TEXT").map(Command::Action),
        "w" | "msg" => {
            let usage = if word.eq_ignore_ascii_case("w") {
                "/w NAME TEXT"
            } else {
                "/msg NAME TEXT"
            };
            let (to, text) = split_word(args);
            match (to.is_empty(), is_blank(text)) {
                (false, false) => Ok(Command::Whisper {
                    to: to.to_string(),
                    text: text.to_string(),
                }),
                _ => Err(ParseError::Usage(usage)),
            }
        }
        "nick" => match split_word(args) {
            (new, rest) if !new.is_empty() && is_blank(rest) => Ok(Command::Nick(new.to_string())),
            _ => Err(ParseError::Usage("/nick NEW")),
        },
        "users" => no_args(args, "/users", Command::Users),
        "join" => match split_word(args) {
            (room, rest) if !room.is_empty() && is_blank(rest) => {
                Ok(Command::Join(room.to_string()))
            }
            _ => Err(ParseError::Usage("/join ROOM")),
        },
        "leave" => no_args(args, "/leave", Command::Leave),
        "rooms" => no_args(args, "/rooms", Command::Rooms),
        "groups" => no_args(args, "/groups", Command::Rooms),
        "who" => no_args(args, "/who", Command::Who),
        "stats" => no_args(args, "/stats", Command::Stats),
        "trace" => no_args(args, "/trace", Command::Trace),
        "help" => no_args(args, "/help", Command::Help),
        "quit" => no_args(args, "/quit", Command::Quit),
        _ => Err(ParseError::UnknownCommand(word.to_string())),
    }
}

/// The first character in `text` that must not reach another user's
/// screen: C0 controls but tab, DEL, C1 controls, and the bidirectional
/// controls. An escape sequence can clear a screen or draw a fake line; a
/// bidirectional override shows `see \u{202e}txt.exe` as `see exe.txt`.
/// Refusing the whole line (rather than silently stripping) tells the
/// sender exactly what happened.
pub fn find_control(text: &str) -> Option<char> {
    (text.chars()).find(|&c| (c.is_control() && c != '\t') || is_bidi_control(c))
}

/// The embeddings, overrides and isolates of Unicode's bidirectional
/// algorithm (U+202A to U+202E, U+2066 to U+2069), and its marks
/// (U+200E, U+200F, U+061C): invisible, and able to reorder what follows.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// What separates words, and what a blank line is made of: spaces and
/// tabs, and nothing else. Other Unicode spaces (U+3000, U+00A0) are text:
/// a line of them is said, not ignored.
pub const BLANKS: [char; 2] = [' ', '\t'];

/// Is `text` empty or only spaces and tabs?
pub fn is_blank(text: &str) -> bool {
    text.trim_matches(BLANKS).is_empty()
}

/// Splits off the first blank-separated word; the rest keeps its inner
/// spacing.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start_matches(BLANKS);
    match text.find(BLANKS) {
        Some(end) => (&text[..end], text[end..].trim_start_matches(BLANKS)),
        None => (text, ""),
    }
}

fn text_arg(args: &str, usage: &'static str) -> Result<String, ParseError> {
    if is_blank(args) {
        Err(ParseError::Usage(usage))
    } else {
        Ok(args.to_string())
    }
}

fn no_args(args: &str, usage: &'static str, command: Command) -> Result<Command, ParseError> {
    if is_blank(args) {
        Ok(command)
    } else {
        Err(ParseError::Usage(usage))
    }
}

/// Another protocol spoken to the chat port by mistake: a web browser, or
/// a TLS client. Such a client gets one `! ` line saying what this port is,
/// and is disconnected, instead of a string of name errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrongProtocol {
    Http,
    Tls,
}

impl WrongProtocol {
    /// Recognises a TLS handshake from the connection's first bytes: a
    /// handshake record starts with 0x16 and then the major version, 3.
    pub fn from_first_bytes(bytes: &[u8]) -> Option<WrongProtocol> {
        match bytes {
            [0x16, 0x03, ..] | [0x16] => Some(WrongProtocol::Tls),
            _ => None,
        }
    }

    /// Recognises an HTTP request line (`GET / HTTP/1.1`): a method in
    /// capitals, a target, and a version, separated by single spaces.
    pub fn from_first_line(line: &str) -> Option<WrongProtocol> {
        let mut parts = line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let is_method = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
        (is_method && !target.is_empty() && version.starts_with("HTTP/"))
            .then_some(WrongProtocol::Http)
    }

    /// What the client is told, without the `! `.
    pub fn explanation(self) -> &'static str {
        match self {
            WrongProtocol::Http => {
                "this is a threadchat chat server, not a web server: \
                 connect with nc HOST PORT or threadchat-client"
            }
            WrongProtocol::Tls => {
                "this is a plain-text threadchat chat server, not TLS: \
                 connect with nc HOST PORT or threadchat-client"
            }
        }
    }
}

/// The most characters of a client's own text that an error line echoes
/// back (an unknown command, a whisper's unknown target).
pub const MAX_ECHO_CHARS: usize = 32;

/// `text`, cut to at most [`MAX_ECHO_CHARS`] characters with `…` after it
/// if it was longer. Cut by characters, never inside one: limits are in
/// bytes, but a UTF-8 character is one to four of them, and a cut through
/// one would send invalid UTF-8.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

// ---- What the server sends. Every line starts with `* `, `! ` or `[`. ----

/// `* TEXT`: a notice or a command's reply.
pub fn notice(text: &str) -> String {
    format!("* {text}")
}

/// `! TEXT`: an error, sent only to the client that caused it.
pub fn error(text: &str) -> String {
    format!("! {text}")
}

/// `[ROOM] NAME: TEXT`
pub fn chat(room: &str, name: &str, text: &str) -> String {
    format!("[{room}] {name}: {text}")
}

/// `[ROOM] * NAME TEXT`
pub fn action(room: &str, name: &str, text: &str) -> String {
    format!("[{room}] * {name} {text}")
}

/// `[dm from NAME] TEXT`, to the receiver of a whisper.
pub fn whisper_received(from: &str, text: &str) -> String {
    format!("[dm from {from}] {text}")
}

/// `[dm to NAME] TEXT`, back to its sender as confirmation.
pub fn whisper_sent(to: &str, text: &str) -> String {
    format!("[dm to {to}] {text}")
}

/// The most bytes a list reply (`/users`, `/who`, `/rooms`) takes. A list
/// longer than that names what fits and says how many more there are: a
/// reply is one line, and a writer stuck on a client that does not read
/// holds the whole line, so an unbounded list would make every such client
/// cost as much as the longest list (docs/RELIABILITY.md, "Memory").
pub const MAX_LIST_BYTES: usize = 8 * 1024;

/// `TITLE (N): a, b, c`, cut after the items that fit in `max_bytes`,
/// with `… and M more` in place of the rest.
pub fn listing(title: &str, items: &[String], max_bytes: usize) -> String {
    let shown = fitting(title, items, max_bytes);
    listing_cut(title, &items[..shown], items.len() - shown)
}

/// How many of `items` [`listing`] shows: the manager cuts a list there
/// before it is queued, so that what a queue holds is bounded too, whichever
/// door spells it.
pub fn fitting(title: &str, items: &[String], max_bytes: usize) -> usize {
    let mut length = format!("{title} ({}): ", items.len()).len();
    for (shown, item) in items.iter().enumerate() {
        let rest = items.len() - shown;
        // This item must leave room for the tail that may follow it.
        let tail_after = match rest {
            1 => 0,
            _ => format!(", … and {} more", rest - 1).len(),
        };
        if length + 2 + item.len() + tail_after > max_bytes {
            return shown;
        }
        length += item.len() + if shown > 0 { 2 } else { 0 };
    }
    items.len()
}

/// `TITLE (N): a, b, … and M more`, for a list already cut to `shown`,
/// with `more` left out.
pub fn listing_cut(title: &str, shown: &[String], more: usize) -> String {
    let mut line = format!("{title} ({}): {}", shown.len() + more, shown.join(", "));
    if more > 0 {
        if !shown.is_empty() {
            line.push_str(", ");
        }
        line.push_str(&format!("… and {more} more"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_names_what_fits_and_counts_the_rest() {
        let names: Vec<String> = (0..2000).map(|n| format!("user{n:04}")).collect();
        let line = listing("online", &names, MAX_LIST_BYTES);
        assert!(line.len() <= MAX_LIST_BYTES, "{} bytes", line.len());
        assert!(
            line.starts_with("online (2000): user0000, user0001, "),
            "{line}"
        );
        let shown = line.matches("user").count();
        assert!(
            line.ends_with(&format!("… and {} more", 2000 - shown)),
            "{line}"
        );
        let short = listing("in #rust", &names[..3], MAX_LIST_BYTES);
        assert_eq!(short, "in #rust (3): user0000, user0001, user0002");
        assert_eq!(listing("rooms", &[], MAX_LIST_BYTES), "rooms (0): ");
    }

    fn say(text: &str) -> Command {
        Command::Say(text.to_string())
    }

    #[test]
    fn plain_lines_and_empty_lines() {
        assert_eq!(parse("hello there"), Ok(say("hello there")));
        assert_eq!(parse(""), Ok(Command::Empty));
        assert_eq!(parse("   \t "), Ok(Command::Empty));
        assert_eq!(parse("//etc/passwd"), Ok(say("/etc/passwd")));
    }

    #[test]
    fn commands_with_their_arguments() {
        assert_eq!(parse("/me waves"), Ok(Command::Action("waves".into())));
        assert_eq!(
            parse("/w bob  hi  there"),
            Ok(Command::Whisper {
                to: "bob".into(),
                text: "hi  there".into()
            })
        );
        assert_eq!(
            parse("/msg bob hi"),
            Ok(Command::Whisper {
                to: "bob".into(),
                text: "hi".into()
            })
        );
        assert_eq!(parse("/nick carol"), Ok(Command::Nick("carol".into())));
        assert_eq!(parse("/users"), Ok(Command::Users));
        assert_eq!(parse("/USERS"), Ok(Command::Users));
        assert_eq!(parse("/stats"), Ok(Command::Stats));
        assert_eq!(parse("/trace"), Ok(Command::Trace));
        assert_eq!(parse("/trace it"), Err(ParseError::Usage("/trace")));
        assert_eq!(parse("/help"), Ok(Command::Help));
        assert_eq!(parse("/quit"), Ok(Command::Quit));
        assert_eq!(parse("/quit  "), Ok(Command::Quit));
        assert_eq!(parse("/join #rust"), Ok(Command::Join("#rust".into())));
        assert_eq!(parse("/leave"), Ok(Command::Leave));
        assert_eq!(parse("/rooms"), Ok(Command::Rooms));
        assert_eq!(parse("/groups"), Ok(Command::Rooms));
        assert_eq!(parse("/who"), Ok(Command::Who));
    }

    #[test]
    fn missing_or_extra_arguments_show_the_usage() {
        assert_eq!(parse("/me"), Err(ParseError::Usage("/me TEXT")));
        assert_eq!(parse("/me   "), Err(ParseError::Usage("/me TEXT")));
        assert_eq!(parse("/w"), Err(ParseError::Usage("/w NAME TEXT")));
        assert_eq!(parse("/w bob"), Err(ParseError::Usage("/w NAME TEXT")));
        assert_eq!(parse("/msg bob "), Err(ParseError::Usage("/msg NAME TEXT")));
        assert_eq!(parse("/nick"), Err(ParseError::Usage("/nick NEW")));
        assert_eq!(parse("/nick a b"), Err(ParseError::Usage("/nick NEW")));
        assert_eq!(parse("/users all"), Err(ParseError::Usage("/users")));
        assert_eq!(parse("/quit now"), Err(ParseError::Usage("/quit")));
        assert_eq!(parse("/join"), Err(ParseError::Usage("/join ROOM")));
        assert_eq!(parse("/join a b"), Err(ParseError::Usage("/join ROOM")));
        assert_eq!(parse("/leave now"), Err(ParseError::Usage("/leave")));
        assert_eq!(parse("/groups x"), Err(ParseError::Usage("/groups")));
        assert_eq!(
            parse("/w bob").unwrap_err().to_string(),
            "usage: /w NAME TEXT"
        );
    }

    #[test]
    fn the_command_word_starts_right_after_the_slash() {
        assert_eq!(
            parse("/ quit"),
            Err(ParseError::UnknownCommand(String::new()))
        );
        assert_eq!(
            parse("/\tme x"),
            Err(ParseError::UnknownCommand(String::new()))
        );
        assert_eq!(parse("/quit\t"), Ok(Command::Quit));
    }

    #[test]
    fn only_spaces_and_tabs_are_blank() {
        assert_eq!(parse(" \t "), Ok(Command::Empty));
        assert_eq!(parse("\u{3000}"), Ok(say("\u{3000}")));
        assert_eq!(
            parse("/me \u{3000}"),
            Ok(Command::Action("\u{3000}".into()))
        );
        assert_eq!(
            parse("/nick a\u{3000}"),
            Ok(Command::Nick("a\u{3000}".into()))
        );
        assert_eq!(parse("/quit \u{a0}"), Err(ParseError::Usage("/quit")));
    }

    #[test]
    fn unknown_commands_are_named() {
        let error = parse("/dance wildly").unwrap_err();
        assert_eq!(error, ParseError::UnknownCommand("dance".into()));
        assert_eq!(error.to_string(), "unknown command /dance, try /help");
        assert_eq!(parse("/"), Err(ParseError::UnknownCommand(String::new())));
    }

    #[test]
    fn control_characters_are_refused_but_tab_is_fine() {
        assert_eq!(parse("a\tb"), Ok(say("a\tb")));
        assert_eq!(
            parse("\u{1b}[2Jgotcha"),
            Err(ParseError::ControlCharacter('\u{1b}'))
        );
        assert_eq!(parse("nul\0"), Err(ParseError::ControlCharacter('\0')));
        assert_eq!(
            parse("/me \u{7f}"),
            Err(ParseError::ControlCharacter('\u{7f}'))
        );
        assert_eq!(
            parse("c1 \u{9b}2J"),
            Err(ParseError::ControlCharacter('\u{9b}'))
        );
        for bidi in ['\u{202e}', '\u{202a}', '\u{2066}', '\u{2069}', '\u{200f}'] {
            assert_eq!(
                parse(&format!("see {bidi}txt.exe")),
                Err(ParseError::ControlCharacter(bidi))
            );
        }
        assert_eq!(
            ParseError::ControlCharacter('\u{202e}').to_string(),
            "line not sent: it contains the bidirectional control U+202E"
        );
        assert_eq!(
            parse("שלום and مرحبا"),
            Ok(say("שלום and مرحبا")),
            "right-to-left text is fine"
        );
        let message = ParseError::ControlCharacter('\u{1b}').to_string();
        assert!(message.contains("U+001B") && !message.contains('\u{1b}'));
    }

    #[test]
    fn echoed_text_is_cut_by_characters_not_bytes() {
        assert_eq!(excerpt("short"), "short");
        let exactly = "é".repeat(MAX_ECHO_CHARS);
        assert_eq!(excerpt(&exactly), exactly);
        let long = "😀".repeat(100);
        let cut = excerpt(&long);
        assert_eq!(cut, format!("{}…", "😀".repeat(MAX_ECHO_CHARS)));
        let error = parse(&format!("/{}", "é".repeat(50)))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "unknown command /{}…, try /help",
                "é".repeat(MAX_ECHO_CHARS)
            )
        );
    }

    #[test]
    fn browsers_and_tls_clients_are_recognised() {
        let http = Some(WrongProtocol::Http);
        assert_eq!(WrongProtocol::from_first_line("GET / HTTP/1.1"), http);
        assert_eq!(WrongProtocol::from_first_line("POST /x?y=1 HTTP/1.0"), http);
        assert_eq!(WrongProtocol::from_first_line("PRI * HTTP/2.0"), http);
        for chat in [
            "alice",
            "GET / now",
            "get / HTTP/1.1",
            "GET  / HTTP/1.1",
            "I GET IT",
        ] {
            assert_eq!(WrongProtocol::from_first_line(chat), None, "{chat:?}");
        }
        let client_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
        assert_eq!(
            WrongProtocol::from_first_bytes(&client_hello),
            Some(WrongProtocol::Tls)
        );
        assert_eq!(WrongProtocol::from_first_bytes(b"alice\n"), None);
        assert_eq!(WrongProtocol::from_first_bytes(b""), None);
    }

    #[test]
    fn outgoing_lines_have_their_prefixes() {
        assert_eq!(notice("alice joined"), "* alice joined");
        assert_eq!(error("nope"), "! nope");
        assert_eq!(chat("lobby", "alice", "hi"), "[lobby] alice: hi");
        assert_eq!(action("lobby", "alice", "waves"), "[lobby] * alice waves");
        assert_eq!(whisper_received("alice", "psst"), "[dm from alice] psst");
        assert_eq!(whisper_sent("bob", "psst"), "[dm to bob] psst");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any line gets an answer, never a panic; an error's text is one
        /// line of bounded length with no control character, so echoing
        /// it back cannot hurt the sender's terminal.
        #[test]
        fn any_line_parses_or_is_refused_cleanly(line in "\\PC{0,200}|/[a-z]{0,8}( .{0,20}){0,3}") {
            match parse(&line) {
                Ok(Command::Say(text)) if !line.starts_with('/') => prop_assert_eq!(text, line),
                Ok(_) => {}
                Err(error) => {
                    let text = error.to_string();
                    prop_assert!(!text.chars().any(char::is_control), "{text:?}");
                    prop_assert!(text.chars().count() <= 60 + MAX_ECHO_CHARS, "{text:?}");
                }
            }
        }

        #[test]
        fn any_bytes_at_all_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let line = String::from_utf8_lossy(&bytes);
            let _ = parse(&line);
            let _ = WrongProtocol::from_first_bytes(&bytes);
            let _ = WrongProtocol::from_first_line(&line);
        }

        #[test]
        fn an_excerpt_is_a_prefix_cut_between_characters(text in "\\PC{0,100}") {
            let cut = excerpt(&text);
            let kept = cut.strip_suffix('…').unwrap_or(&cut);
            prop_assert!(text.starts_with(kept));
            prop_assert!(kept.chars().count() <= MAX_ECHO_CHARS);
        }
    }
}
