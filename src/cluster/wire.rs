//! What one server tells the others over Redis, as text. Plain logic, no
//! I/O: the `redis-publisher` thread encodes, the `redis-subscriber` thread
//! decodes, and the unit tests below check that the two agree.
//!
//! A message is one Redis string: fields separated by the ASCII unit
//! separator (U+001F), starting with a version, the sender's id and a kind:
//!
//! ```text
//! tc1␟5f0e…␟said␟lobby␟42␟[lobby] alice: hi
//! ```
//!
//! Clients can never send U+001F (the protocol refuses control characters),
//! so no field holds one; should one ever get there, it is replaced rather
//! than allowed to shift the fields after it.

use std::fmt;

use super::{LineId, ServerId};

const VERSION: &str = "tc1";
const SEPARATOR: char = '\u{1f}';

/// A message on the bus: who sent it, and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) from: ServerId,
    pub(crate) body: Body,
}

/// What a server can tell the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// A chat line or action in `room`, formatted as its members see it.
    Said {
        room: String,
        seq: u64,
        line: String,
    },
    /// A whisper from a user here to `to`, who is on `to_server`.
    Whisper {
        to_server: ServerId,
        from: String,
        to: String,
        text: String,
    },
    /// The answer to a [`Body::Whisper`] whose target had left: tells
    /// `sender`, on `to_server`, that it did not arrive.
    Unreached {
        to_server: ServerId,
        sender: String,
        target: String,
    },
    /// `name` is now in `room` (a newcomer, or a user who changed rooms).
    In { name: String, room: String },
    /// `name` has left this server.
    Left { name: String },
    /// `old` is now called `new`.
    Renamed { old: String, new: String },
    /// Every user of the sender, with their room: the answer to
    /// [`Body::Hello`]. It replaces whatever the receiver knew of the sender.
    Roster(Vec<(String, String)>),
    /// "I have just (re)joined the bus: everyone, send me your roster."
    Hello,
    /// "I am still here", every third of `--redis-ttl`.
    Alive,
    /// The sender is shutting down: its users have all left.
    Goodbye,
}

/// Why a message could not be read: another version, or not ours at all.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WireError(String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Message {
    /// The id of the line a [`Body::Said`] carries.
    pub(crate) fn line_id(&self) -> Option<LineId> {
        match self.body {
            Body::Said { seq, .. } => Some(LineId {
                server: self.from.0,
                seq,
            }),
            _ => None,
        }
    }

    pub(crate) fn encode(&self) -> String {
        let mut fields: Vec<String> = vec![VERSION.into(), self.from.to_string()];
        let mut push = |field: &str| fields.push(field.replace(SEPARATOR, "\u{fffd}"));
        match &self.body {
            Body::Said { room, seq, line } => {
                for field in ["said", room, &seq.to_string(), line] {
                    push(field);
                }
            }
            Body::Whisper {
                to_server,
                from,
                to,
                text,
            } => {
                for field in ["whisper", &to_server.to_string(), from, to, text] {
                    push(field);
                }
            }
            Body::Unreached {
                to_server,
                sender,
                target,
            } => {
                for field in ["unreached", &to_server.to_string(), sender, target] {
                    push(field);
                }
            }
            Body::In { name, room } => ["in", name, room].into_iter().for_each(push),
            Body::Left { name } => ["left", name].into_iter().for_each(push),
            Body::Renamed { old, new } => ["renamed", old, new].into_iter().for_each(push),
            Body::Roster(users) => {
                push("roster");
                for (name, room) in users {
                    push(name);
                    push(room);
                }
            }
            Body::Hello => push("hello"),
            Body::Alive => push("alive"),
            Body::Goodbye => push("goodbye"),
        }
        fields.join(&SEPARATOR.to_string())
    }

    pub(crate) fn decode(text: &str) -> Result<Message, WireError> {
        let mut fields = text.split(SEPARATOR);
        let version = fields.next().unwrap_or_default();
        if version != VERSION {
            return Err(WireError(format!("not a {VERSION} message")));
        }
        let from = server_id(fields.next())?;
        let kind = fields.next().unwrap_or_default();
        let rest: Vec<&str> = fields.collect();
        let body = match (kind, rest.as_slice()) {
            ("said", [room, seq, line]) => Body::Said {
                room: room.to_string(),
                seq: seq
                    .parse()
                    .map_err(|_| WireError(format!("bad sequence number {seq:?}")))?,
                line: line.to_string(),
            },
            ("whisper", [to_server, from, to, text]) => Body::Whisper {
                to_server: server_id(Some(to_server))?,
                from: from.to_string(),
                to: to.to_string(),
                text: text.to_string(),
            },
            ("unreached", [to_server, sender, target]) => Body::Unreached {
                to_server: server_id(Some(to_server))?,
                sender: sender.to_string(),
                target: target.to_string(),
            },
            ("in", [name, room]) => Body::In {
                name: name.to_string(),
                room: room.to_string(),
            },
            ("left", [name]) => Body::Left {
                name: name.to_string(),
            },
            ("renamed", [old, new]) => Body::Renamed {
                old: old.to_string(),
                new: new.to_string(),
            },
            ("roster", pairs) if pairs.len() % 2 == 0 => Body::Roster(
                pairs
                    .chunks(2)
                    .map(|pair| (pair[0].to_string(), pair[1].to_string()))
                    .collect(),
            ),
            ("hello", []) => Body::Hello,
            ("alive", []) => Body::Alive,
            ("goodbye", []) => Body::Goodbye,
            (kind, fields) => {
                return Err(WireError(format!(
                    "unknown kind {kind:?} with {} fields",
                    fields.len()
                )))
            }
        };
        Ok(Message { from, body })
    }
}

fn server_id(field: Option<&str>) -> Result<ServerId, WireError> {
    let field = field.unwrap_or_default();
    u64::from_str_radix(field, 16)
        .map(ServerId)
        .map_err(|_| WireError(format!("bad server id {field:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn every_kind() -> Vec<Body> {
        vec![
            Body::Said {
                room: "lobby".into(),
                seq: 42,
                line: "[lobby] alice: hi\tthere".into(),
            },
            Body::Whisper {
                to_server: ServerId(7),
                from: "alice".into(),
                to: "bob".into(),
                text: "psst".into(),
            },
            Body::Unreached {
                to_server: ServerId(u64::MAX),
                sender: "alice".into(),
                target: "bob".into(),
            },
            Body::In {
                name: "bob".into(),
                room: "rust".into(),
            },
            Body::Left { name: "bob".into() },
            Body::Renamed {
                old: "bob".into(),
                new: "robert".into(),
            },
            Body::Roster(vec![]),
            Body::Roster(vec![("a".into(), "lobby".into()), ("b".into(), "x".into())]),
            Body::Hello,
            Body::Alive,
            Body::Goodbye,
        ]
    }

    #[test]
    fn every_kind_reads_back_as_written() {
        for body in every_kind() {
            let message = Message {
                from: ServerId(0x5f0e),
                body,
            };
            assert_eq!(Message::decode(&message.encode()), Ok(message.clone()));
        }
    }

    #[test]
    fn foreign_and_broken_messages_are_refused() {
        for text in [
            "",
            "hello",
            "tc2\u{1f}00\u{1f}alive",
            "tc1\u{1f}zz\u{1f}alive",
            "tc1\u{1f}01\u{1f}said\u{1f}lobby\u{1f}x\u{1f}line",
            "tc1\u{1f}01\u{1f}roster\u{1f}odd",
            "tc1\u{1f}01\u{1f}alive\u{1f}extra",
        ] {
            assert!(Message::decode(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn a_separator_in_a_field_cannot_shift_the_others() {
        let message = Message {
            from: ServerId(1),
            body: Body::Said {
                room: "lobby".into(),
                seq: 1,
                line: "a\u{1f}b".into(),
            },
        };
        let read = Message::decode(&message.encode()).expect("still one message");
        assert_eq!(
            read.body,
            Body::Said {
                room: "lobby".into(),
                seq: 1,
                line: "a\u{fffd}b".into()
            }
        );
    }

    proptest! {
        /// Any text a client could send (no control character but tab)
        /// survives the trip.
        #[test]
        fn any_chat_line_reads_back_as_written(line in "[^\\p{Cc}]{0,200}|\t", seq: u64) {
            let message = Message {
                from: ServerId(seq.rotate_left(7)),
                body: Body::Said { room: "lobby".into(), seq, line },
            };
            prop_assert_eq!(Message::decode(&message.encode()), Ok(message));
        }

        /// Whatever arrives on the bus, decoding answers; it never panics.
        #[test]
        fn decoding_never_panics(text in ".{0,300}") {
            let _ = Message::decode(&text);
        }
    }
}
