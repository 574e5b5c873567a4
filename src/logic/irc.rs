//! IRC's message format, as the modern IRC client protocol writes it
//! (modern.ircdocs.horse, "Message Format"; RFC 1459 and 2812 before it):
//! one line is `[@tags] [:source] COMMAND [params] [:trailing]`. Plain
//! logic, no I/O: the IRC door (`doors/irc.rs`) parses each line a reader
//! reads with [`parse`], and spells each line its writer writes with
//! [`push`], which keeps every line within IRC's 512 bytes.
//!
//! What the commands mean, and which ones threadchat answers, is the door's
//! business; here is only the grammar, and a few helpers for it (CTCP,
//! comma-separated targets).

use std::borrow::Cow;

/// The longest line IRC allows, `\r\n` included (tags excepted, which a
/// client may send only if the server offered `message-tags`; threadchat
/// offers no capability, so the limit covers them too).
pub(crate) const MAX_LINE: usize = 512;

/// The longest line without its `\r\n`.
pub(crate) const MAX_BODY: usize = MAX_LINE - 2;

/// After 14 middle parameters, the rest of the line is the last one, with
/// or without its `:` (RFC 2812, 2.3.1).
const MAX_MIDDLE: usize = 14;

/// One message, borrowed from its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    /// `@key=value;key2`: each tag with its value unescaped ("" when it has
    /// none). Parsed because the grammar has them; threadchat uses none.
    pub(crate) tags: Vec<Tag<'a>>,
    /// `:nick!user@host`: who sent it. Clients have no business sending
    /// one, and the door ignores it.
    pub(crate) source: Option<&'a str>,
    /// The command in capitals (`PRIVMSG`), or a three-digit numeric.
    pub(crate) command: String,
    /// Middle parameters, then the trailing one (after ` :`), if any.
    pub(crate) params: Vec<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tag<'a> {
    pub(crate) key: &'a str,
    pub(crate) value: String,
}

/// Why a line is not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Nothing but spaces: the spec says to ignore it silently.
    Empty,
    /// Tags or a source and then nothing.
    NoCommand,
    /// A command that is neither letters nor three digits.
    BadCommand,
}

/// Parses one line (without its `\r\n`). Leading spaces and runs of spaces
/// between parameters are allowed, as servers are asked to be lenient.
pub(crate) fn parse(line: &str) -> Result<Message<'_>, Malformed> {
    let mut rest = line.trim_start_matches(' ');
    if rest.is_empty() {
        return Err(Malformed::Empty);
    }
    let mut tags = Vec::new();
    if let Some(after) = rest.strip_prefix('@') {
        let (raw, after) = after.split_once(' ').ok_or(Malformed::NoCommand)?;
        tags = parse_tags(raw);
        rest = after.trim_start_matches(' ');
    }
    let mut source = None;
    if let Some(after) = rest.strip_prefix(':') {
        let (raw, after) = after.split_once(' ').ok_or(Malformed::NoCommand)?;
        source = Some(raw);
        rest = after.trim_start_matches(' ');
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return Err(Malformed::NoCommand);
    }
    let letters = command.bytes().all(|b| b.is_ascii_alphabetic());
    let numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
    if !letters && !numeric {
        return Err(Malformed::BadCommand);
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing);
            break;
        }
        if params.len() == MAX_MIDDLE {
            params.push(rest);
            break;
        }
        let (middle, after) = rest.split_once(' ').unwrap_or((rest, ""));
        params.push(middle);
        rest = after;
    }
    Ok(Message {
        tags,
        source,
        command: command.to_ascii_uppercase(),
        params,
    })
}

fn parse_tags(raw: &str) -> Vec<Tag<'_>> {
    (raw.split(';'))
        .filter(|tag| !tag.is_empty())
        .map(|tag| match tag.split_once('=') {
            Some((key, value)) => Tag {
                key,
                value: unescape_tag_value(value),
            },
            None => Tag {
                key: tag,
                value: String::new(),
            },
        })
        .collect()
}

/// A tag's value as sent: `\:` is `;`, `\s` a space, `\\` a backslash,
/// `\r` and `\n` themselves; a backslash before anything else is dropped,
/// and so is one at the very end.
fn unescape_tag_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A parameter's comma-separated targets (`#a,#b`, `alice,bob`), blanks
/// left out.
pub(crate) fn targets(param: &str) -> impl Iterator<Item = &str> {
    param.split(',').filter(|target| !target.is_empty())
}

/// A CTCP message (`\x01ACTION waves\x01`): its command and the rest. The
/// closing `\x01` may be missing, as the CTCP draft allows.
pub(crate) fn ctcp(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('\u{1}')?;
    let inner = inner.strip_suffix('\u{1}').unwrap_or(inner);
    Some(inner.split_once(' ').unwrap_or((inner, "")))
}

/// Appends one message, `:source COMMAND middle... :trailing\r\n`, to
/// `out`, as as many lines as it takes for each to fit [`MAX_LINE`]: a
/// trailing parameter too long for one line is cut (at a space if there
/// is one in the second half of the room left, else between two
/// characters) and each piece goes with the same head. `\r`, `\n` and NUL
/// can end or break a line, so any in the text become spaces.
pub(crate) fn push(
    out: &mut Vec<u8>,
    source: Option<&str>,
    command: &str,
    middle: &[&str],
    trailing: Option<&str>,
) {
    // The head is written once, straight into `out`, and copied from there
    // for each further piece: a writer spells every line it sends with this.
    let start = out.len();
    if let Some(source) = source {
        out.push(b':');
        out.extend_from_slice(source.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(command.as_bytes());
    for param in middle {
        out.push(b' ');
        out.extend_from_slice(middle_param(param).as_bytes());
    }
    let Some(trailing) = trailing else {
        // Nicks, channels and numbers: never near the limit, but never past
        // it, and never cut inside a character.
        if out.len() - start > MAX_BODY {
            let head = std::str::from_utf8(&out[start..]).unwrap_or_default();
            out.truncate(start + floor_char_boundary(head, MAX_BODY));
        }
        out.extend_from_slice(b"\r\n");
        return;
    };
    out.extend_from_slice(b" :");
    let head = start..out.len();
    // Never less than a few words, whatever the head: the middle parameters
    // are nicks, channels and numbers, far from 510 bytes.
    let room = MAX_BODY.saturating_sub(head.len()).max(64);
    let text: Cow<str> = match trailing.contains(['\r', '\n', '\0']) {
        true => Cow::Owned(trailing.replace(['\r', '\n', '\0'], " ")),
        false => Cow::Borrowed(trailing),
    };
    let (mut piece, mut rest) = cut(&text, room);
    loop {
        out.extend_from_slice(piece.as_bytes());
        out.extend_from_slice(b"\r\n");
        if rest.is_empty() {
            return;
        }
        out.extend_from_within(head.clone());
        (piece, rest) = cut(rest, room);
    }
}

/// A middle parameter cannot be empty, hold a space or start with `:`.
/// The door's are nicks, channels and numbers; this keeps a bug from
/// breaking the line anyway.
fn middle_param(param: &str) -> Cow<'_, str> {
    let clean = |c: char| c != ' ' && !c.is_control();
    if !param.is_empty() && !param.starts_with(':') && param.chars().all(clean) {
        return Cow::Borrowed(param);
    }
    let cleaned: String = (param.chars())
        .map(|c| if clean(c) { c } else { '_' })
        .collect();
    Cow::Owned(match cleaned.strip_prefix(':') {
        Some(rest) => format!("_{rest}"),
        None if cleaned.is_empty() => "*".to_string(),
        None => cleaned,
    })
}

/// The first piece of `text` of at most `room` bytes, and what is left
/// after it (without the space it was cut at).
fn cut(text: &str, room: usize) -> (&str, &str) {
    if text.len() <= room {
        return (text, "");
    }
    let end = floor_char_boundary(text, room);
    match text[..end].rfind(' ') {
        Some(space) if space >= end / 2 => (&text[..space], &text[space + 1..]),
        _ => (&text[..end], &text[end..]),
    }
}

/// The largest index at most `at` that starts a character of `text`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    (0..=at)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(line: &str) -> Message<'_> {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {e:?}"))
    }

    fn pushed(
        source: Option<&str>,
        command: &str,
        middle: &[&str],
        trailing: Option<&str>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        push(&mut out, source, command, middle, trailing);
        let text = String::from_utf8(out).expect("UTF-8");
        let mut lines: Vec<String> = text.split("\r\n").map(str::to_string).collect();
        assert_eq!(lines.pop().as_deref(), Some(""), "ends with CRLF: {text:?}");
        lines
    }

    #[test]
    fn a_command_with_middle_and_trailing_parameters() {
        let m = message("PRIVMSG #rust :hello there: you");
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, ["#rust", "hello there: you"]);
        assert_eq!((m.source, m.tags.len()), (None, 0));
        assert_eq!(
            message("nick alice").command,
            "NICK",
            "commands in any case"
        );
        assert_eq!(
            message("USER a 0 * :Alice A").params,
            ["a", "0", "*", "Alice A"]
        );
        assert_eq!(message("CAP LS 302").params, ["LS", "302"]);
        assert_eq!(message("QUIT").params, Vec::<&str>::new());
    }

    #[test]
    fn a_trailing_parameter_may_be_empty_or_start_with_a_colon() {
        assert_eq!(message("PRIVMSG #a :").params, ["#a", ""]);
        assert_eq!(message("PRIVMSG #a ::-)").params, ["#a", ":-)"]);
        assert_eq!(message("PRIVMSG #a :x").params, ["#a", "x"]);
    }

    #[test]
    fn spaces_are_lenient() {
        assert_eq!(message("  JOIN   #a   #b ").params, ["#a", "#b"]);
        assert_eq!(
            message("PRIVMSG  #a  :  two  spaces").params,
            ["#a", "  two  spaces"]
        );
    }

    #[test]
    fn a_source_and_tags_before_the_command() {
        let m = message("@id=123;+draft/x;k=a\\sb\\:c\\\\d :bob!b@host PRIVMSG #r :hi");
        assert_eq!(m.source, Some("bob!b@host"));
        let tags: Vec<(&str, &str)> = m.tags.iter().map(|t| (t.key, t.value.as_str())).collect();
        assert_eq!(tags, [("id", "123"), ("+draft/x", ""), ("k", "a b;c\\d")]);
        assert_eq!(m.params, ["#r", "hi"]);
        assert_eq!(message(":srv 001 alice :Welcome").command, "001");
    }

    #[test]
    fn tag_values_unescape_as_the_spec_says() {
        assert_eq!(unescape_tag_value("a\\rb\\nc"), "a\rb\nc");
        assert_eq!(
            unescape_tag_value("\\b"),
            "b",
            "an unknown escape drops the backslash"
        );
        assert_eq!(
            unescape_tag_value("end\\"),
            "end",
            "a backslash at the end goes"
        );
        assert_eq!(unescape_tag_value(""), "");
    }

    #[test]
    fn after_fourteen_middles_the_rest_is_the_last_parameter() {
        let line = format!("CMD {} the rest: of it", "m ".repeat(14));
        let m = message(&line);
        assert_eq!(m.params.len(), 15);
        assert_eq!(m.params[14], "the rest: of it");
    }

    #[test]
    fn lines_that_are_not_messages() {
        assert_eq!(parse(""), Err(Malformed::Empty));
        assert_eq!(parse("   "), Err(Malformed::Empty));
        assert_eq!(parse("@a=b"), Err(Malformed::NoCommand));
        assert_eq!(parse(":source"), Err(Malformed::NoCommand));
        assert_eq!(parse("@a=b  "), Err(Malformed::NoCommand));
        assert_eq!(parse("PRIV-MSG x"), Err(Malformed::BadCommand));
        assert_eq!(parse("1234 x"), Err(Malformed::BadCommand));
        assert_eq!(parse("12"), Err(Malformed::BadCommand));
        assert_eq!(parse("ÉTÉ"), Err(Malformed::BadCommand));
    }

    #[test]
    fn ctcp_and_targets() {
        assert_eq!(ctcp("\u{1}ACTION waves\u{1}"), Some(("ACTION", "waves")));
        assert_eq!(ctcp("\u{1}ACTION waves"), Some(("ACTION", "waves")));
        assert_eq!(ctcp("\u{1}VERSION\u{1}"), Some(("VERSION", "")));
        assert_eq!(ctcp("plain"), None);
        assert_eq!(targets("#a,,#b,").collect::<Vec<_>>(), ["#a", "#b"]);
    }

    #[test]
    fn a_line_is_spelled_with_its_source_and_a_colon_before_the_trailing() {
        assert_eq!(
            pushed(
                Some("bob!bob@threadchat"),
                "PRIVMSG",
                &["#rust"],
                Some("hi")
            ),
            [":bob!bob@threadchat PRIVMSG #rust :hi"]
        );
        assert_eq!(
            pushed(Some("threadchat"), "PONG", &["threadchat"], Some("")),
            [":threadchat PONG threadchat :"]
        );
        assert_eq!(pushed(None, "PING", &[], Some("x")), ["PING :x"]);
        assert_eq!(pushed(Some("a"), "JOIN", &["#r"], None), [":a JOIN #r"]);
        assert_eq!(
            pushed(Some("s"), "001", &["", ":x", "a b"], Some("t")),
            [":s 001 * _x a_b :t"],
            "middle parameters cannot break the line"
        );
        assert_eq!(
            pushed(Some("s"), "NOTICE", &["a"], Some("one\r\ntwo\0")),
            [":s NOTICE a :one  two "]
        );
    }

    #[test]
    fn a_long_trailing_is_cut_into_lines_of_at_most_512_bytes() {
        let words = "word ".repeat(300);
        let lines = pushed(
            Some("bob!bob@threadchat"),
            "PRIVMSG",
            &["#rust"],
            Some(&words),
        );
        assert!(lines.len() >= 3, "{}", lines.len());
        let head = ":bob!bob@threadchat PRIVMSG #rust :";
        let mut rejoined = Vec::new();
        for line in &lines {
            assert!(line.len() + 2 <= MAX_LINE, "{} bytes", line.len() + 2);
            let text = line.strip_prefix(head).expect("each piece has the head");
            assert!(!text.starts_with(' '), "cut at a space, which goes");
            rejoined.push(text);
        }
        assert_eq!(rejoined.join(" ").trim_end(), words.trim_end());
        // Without spaces, between characters, never inside one.
        let wide = "é".repeat(600);
        let lines = pushed(Some("s"), "NOTICE", &["a"], Some(&wide));
        let text: String = lines.iter().map(|l| &l[":s NOTICE a :".len()..]).collect();
        assert_eq!(text, wide);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Spells a message the way a client would; the inverse of `parse` for
    /// what `parse` accepts.
    fn spell(
        tags: &[(String, String)],
        source: Option<&str>,
        command: &str,
        params: &[String],
    ) -> String {
        let mut line = String::new();
        if !tags.is_empty() {
            let tags: Vec<String> = (tags.iter())
                .map(|(key, value)| format!("{key}={}", escape_tag_value(value)))
                .collect();
            line.push('@');
            line.push_str(&tags.join(";"));
            line.push(' ');
        }
        if let Some(source) = source {
            line.push(':');
            line.push_str(source);
            line.push(' ');
        }
        line.push_str(command);
        for (i, param) in params.iter().enumerate() {
            line.push(' ');
            if i + 1 == params.len() {
                line.push(':');
            }
            line.push_str(param);
        }
        line
    }

    fn escape_tag_value(value: &str) -> String {
        let mut out = String::new();
        for c in value.chars() {
            match c {
                ';' => out.push_str("\\:"),
                ' ' => out.push_str("\\s"),
                '\\' => out.push_str("\\\\"),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out
    }

    proptest! {
        /// Whatever arrives, parsing answers and never panics, and what it
        /// answers holds together: a command of letters or three digits,
        /// parameters that are pieces of the line.
        #[test]
        fn any_bytes_parse_or_are_refused_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let line = String::from_utf8_lossy(&bytes);
            if let Ok(m) = parse(&line) {
                let command_ok = m.command.bytes().all(|b| b.is_ascii_uppercase())
                    || (m.command.len() == 3 && m.command.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(command_ok, "{:?}", m.command);
                prop_assert!(m.params.len() <= MAX_MIDDLE + 1);
                for param in &m.params {
                    prop_assert!(line.contains(param));
                }
            }
            let _ = ctcp(&line);
        }

        /// Tags, a source, a command and parameters, spelled as the spec
        /// says, come back as they went: the trailing parameter whatever it
        /// holds (spaces, colons, nothing), the middle ones as words.
        #[test]
        fn a_spelled_message_parses_back(
            tags in proptest::collection::vec(("[a-z][a-z0-9-]{0,8}", "[ -~]{0,12}"), 0..3),
            source in proptest::option::of("[a-z]{1,8}(![a-z]{1,8}@[a-z.]{1,12})?"),
            command in "[A-Za-z]{1,10}|[0-9]{3}",
            middles in proptest::collection::vec("[!-9;-~][!-~]{0,10}", 0..8),
            trailing in proptest::option::of("[ -~]{0,40}"),
        ) {
            let mut params = middles.clone();
            params.extend(trailing.clone());
            let line = spell(&tags, source.as_deref(), &command, &params);
            let m = parse(&line).map_err(|e| TestCaseError::fail(format!("{line:?}: {e:?}")))?;
            prop_assert_eq!(&m.command, &command.to_ascii_uppercase());
            prop_assert_eq!(m.source, source.as_deref());
            let got: Vec<(String, String)> =
                m.tags.iter().map(|t| (t.key.to_string(), t.value.clone())).collect();
            prop_assert_eq!(got, tags);
            prop_assert_eq!(m.params, params.iter().map(String::as_str).collect::<Vec<_>>());
        }

        /// Every line `push` writes fits IRC's 512 bytes, is one line, and
        /// parses back to the command and middle parameters it was given;
        /// the trailing pieces put together are the text.
        #[test]
        fn pushed_lines_fit_and_parse_back(
            nick in "[a-z]{1,24}",
            text in "\\PC{0,1500}",
        ) {
            let mut out = Vec::new();
            let source = format!("{nick}!{nick}@threadchat");
            push(&mut out, Some(&source), "PRIVMSG", &["#room"], Some(&text));
            let all = String::from_utf8(out).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut pieces = Vec::new();
            for line in all.strip_suffix("\r\n").unwrap_or(&all).split("\r\n") {
                prop_assert!(line.len() + 2 <= MAX_LINE, "{} bytes", line.len() + 2);
                prop_assert!(!line.contains(['\r', '\n', '\0']));
                let m = parse(line).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert_eq!(m.command, "PRIVMSG");
                prop_assert_eq!(m.params[0], "#room");
                pieces.push(m.params[1].to_string());
            }
            let kept: String = pieces.concat();
            let without_spaces = |s: &str| s.chars().filter(|c| *c != ' ').collect::<String>();
            prop_assert_eq!(without_spaces(&kept), without_spaces(&text.replace(['\r', '\n', '\0'], " ")));
        }
    }
}
