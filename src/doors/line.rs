//! The line door: `nc` and the terminal client. One line is one command,
//! ended by `\n`, and one line back is the line protocol's spelling of what
//! the server says (docs/PROTOCOL.md). The WebSocket door speaks the same
//! commands, one per text message, and parses them with [`parse`].

use std::io;

use super::{Decode, Encode, Parsed};
use crate::line::{OutboundLine, Refusal};
use crate::logic::line_reader::{Incoming, LineReader};
use crate::logic::names::NAME_RULE;
use crate::logic::protocol::{self, Command, ParseError, WrongProtocol};
use crate::socket::TimedStream;

pub(crate) struct LineDecoder<'a> {
    lines: LineReader<&'a TimedStream<'a>>,
    /// Whole lines parsed so far: the first is checked for HTTP.
    parsed: u64,
}

impl<'a> LineDecoder<'a> {
    pub(crate) fn new(input: &'a TimedStream<'a>, max_line: usize) -> Self {
        LineDecoder {
            lines: LineReader::new(input, max_line),
            parsed: 0,
        }
    }
}

impl Decode for LineDecoder<'_> {
    fn next_line(&mut self) -> io::Result<Incoming> {
        self.lines.next_line()
    }

    /// A TLS client speaks first, in binary: its first bytes are looked at
    /// before they are split into lines.
    fn wrong_protocol(&mut self) -> io::Result<Option<WrongProtocol>> {
        Ok(WrongProtocol::from_first_bytes(self.lines.peek()?))
    }

    fn parse(&mut self, line: &str, name: Option<&str>) -> Parsed {
        let registered = name.is_some();
        self.parsed += 1;
        if self.parsed == 1 && !registered {
            if let Some(other) = WrongProtocol::from_first_line(line) {
                return Parsed::WrongProtocol(other);
            }
        }
        parse(line, registered)
    }
}

/// What a line-protocol line asks for. Before a name, a plain line is the
/// name asked for, and any command but `/help` and `/quit` gets the same
/// answer, whether or not it exists or was typed right.
pub(crate) fn parse(line: &str, registered: bool) -> Parsed {
    match protocol::parse(line) {
        Ok(Command::Say(name)) if !registered => {
            Parsed::Name(name.trim_matches(protocol::BLANKS).to_string())
        }
        Ok(command) => Parsed::Command(command),
        Err(ParseError::Usage(_) | ParseError::UnknownCommand(_)) if !registered => {
            Parsed::refused(
                Refusal::NotRegistered,
                format!("choose a name first ({NAME_RULE})"),
            )
        }
        Err(error) => Parsed::refused(Refusal::Other, error.to_string()),
    }
}

pub(crate) struct LineEncoder;

impl Encode for LineEncoder {
    fn line(&mut self, line: &OutboundLine, out: &mut Vec<u8>) {
        out.extend_from_slice(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_a_name_a_line_is_the_name_and_commands_wait() {
        assert_eq!(parse("  alice ", false), Parsed::Name("alice".into()));
        assert_eq!(
            parse("/nick bob", false),
            Parsed::Command(Command::Nick("bob".into()))
        );
        assert_eq!(
            parse("/dance", false),
            Parsed::refused(
                Refusal::NotRegistered,
                format!("choose a name first ({NAME_RULE})")
            )
        );
        assert_eq!(
            parse("/dance", true),
            Parsed::refused(Refusal::Other, "unknown command /dance, try /help".into())
        );
        assert_eq!(
            parse("hi", true),
            Parsed::Command(Command::Say("hi".into()))
        );
    }
}
