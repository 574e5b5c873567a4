//! One line on its way to clients: what it says, and the bytes it is
//! written as.
//!
//! No thread runs this module. The manager makes each [`OutboundLine`] once
//! and queues the same one for every recipient (cloning is a reference-count
//! increment); each recipient's writer thread writes it in its door's form
//! (`doors/`). The fan-out timer inside a chat line (with, for a line being
//! traced, its [`Trace`]) is the one thing here that several threads
//! change, and it is atomics only.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::logic::names::NAME_RULE;
use crate::logic::protocol;
use crate::shared::gauges::Histogram;
use crate::watch::trace::Trace;

/// What a line says, with enough structure for any door to spell it its own
/// way: an nc client sees `[rust] bob: hi`, and an IRC client sees a
/// `PRIVMSG #rust` from bob. The line protocol's spelling (docs/PROTOCOL.md)
/// is made once, when the line is made: it is what a line costs a backlog,
/// what history keeps and what other servers are sent. The replies that
/// carry data (a welcome, a room entered, a list of members or rooms) carry
/// it as data, so that the IRC door can answer with its numerics without
/// reading the line protocol's sentences back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Says {
    /// `[ROOM] FROM: TEXT`
    Chat {
        room: String,
        from: String,
        text: String,
    },
    /// `[ROOM] * FROM TEXT`
    Action {
        room: String,
        from: String,
        text: String,
    },
    /// `[dm from FROM] TEXT`, to the whisper's target.
    WhisperFrom { from: String, text: String },
    /// `[dm to TO] TEXT`, back to the whisper's sender.
    WhisperTo { to: String, text: String },
    /// `* NAME joined`, `* NAME left`, `* OLD is now known as NEW`.
    Presence {
        name: String,
        room: String,
        change: Change,
    },
    /// `* choose a name (RULE):`, to a client without one. (IRC clients
    /// register on their own, and are shown nothing.)
    NamePrompt,
    /// `* welcome NAME! you are in ROOM; N online. /help lists the
    /// commands`: registered, and in the lobby.
    Welcome {
        name: String,
        room: String,
        online: usize,
    },
    /// `* you joined #ROOM; N here`, to the one who moved there from
    /// `left`.
    Entered {
        room: String,
        left: Option<String>,
        members: usize,
    },
    /// `* you are now NEW`, to the one renamed.
    Renamed { old: String, new: String },
    /// `* in #ROOM (N): A, B`: a room's members, sorted ignoring case, as
    /// `/who` (or IRC's NAMES or WHO) asked for them.
    /// A long list is cut where [`protocol::fitting`] says, and `more`
    /// counts the names left out.
    Members {
        room: String,
        names: Vec<String>,
        more: usize,
        roster: Roster,
    },
    /// `* rooms (N): lobby (3), rust (2)`: each room with its head count,
    /// and how many rooms a long list left out.
    Rooms(Vec<(String, usize)>, usize),
    /// Where one user is (IRC's WHOIS or WHO NICK): `* NAME is in #ROOM`,
    /// or, when `found` is `None`, `* no user named "ASKED" is online`.
    User {
        asked: String,
        found: Option<(String, String)>,
        lookup: Lookup,
    },
    /// `* online: A, B`: which of the names asked are online (IRC's ISON).
    Online(Vec<String>),
    /// `* N online in M rooms` (IRC's LUSERS).
    Counts { online: usize, rooms: usize },
    /// What a door spelled itself for its own client (IRC's CAP, PONG and
    /// MOTD), queued with the rest so it keeps its place; spelled as it is.
    Door(String),
    /// `* TEXT`: any other notice or reply.
    Notice(String),
    /// `! TEXT`: an error, to the one client it concerns. `refusal` says
    /// what it is about, for a door with a code for it (IRC's numerics).
    Error { text: String, refusal: Refusal },
}

/// What an error is about, for a door that answers each kind with its own
/// code (IRC: 432, 433, 451, 401, 403, 442, 404, 417). The line protocol
/// shows only the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Nothing a door has a particular code for.
    Other,
    /// This name breaks the name rule.
    BadName(String),
    /// Someone else has this name.
    NameTaken(String),
    /// The client has no name yet.
    NotRegistered,
    /// Nobody by this name is online.
    NoSuchUser(String),
    /// This room name (as typed) breaks the rule.
    BadRoom(String),
    /// The client is not in this room, and asked to leave it.
    NotInRoom(String),
    /// The client is not in this room, and spoke to it.
    CannotSpeakIn(String),
    /// The line was longer than the door takes.
    TooLong,
}

/// Which list of a room's members was asked for: all the same to the line
/// protocol; IRC answers NAMES with 353 and WHO with 352.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Roster {
    Names,
    Who,
}

/// What a user was looked up for: IRC answers WHOIS with 311 and WHO NICK
/// with 352.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    Whois,
    Who,
}

/// How someone's presence in a room changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Joined,
    /// Went to another room.
    Parted,
    /// Left the server.
    Quit,
    Renamed {
        new: String,
    },
}

/// What the allocator keeps beside each allocation, about (glibc's malloc:
/// a 16-byte header and rounding to 16).
const PER_ALLOCATION: usize = 16;

impl Says {
    /// The heap its lists hold beyond the line's own spelling: a name kept
    /// as its own `String` costs the `String`, its bytes and an allocation,
    /// about seven times the name's share of the spelled line (measured:
    /// `bash benches/backlog_memory.sh`). Other variants hold about what
    /// they spell, which the spelling's charge covers.
    pub(crate) fn list_bytes(&self) -> usize {
        fn list<T>(items: &[T], capacity: usize, heap: impl Fn(&T) -> usize) -> usize {
            let each: usize = items.iter().map(|item| heap(item) + PER_ALLOCATION).sum();
            capacity * size_of::<T>() + PER_ALLOCATION + each
        }
        match self {
            Says::Members { names, .. } | Says::Online(names) => {
                list(names, names.capacity(), String::capacity)
            }
            Says::Rooms(rooms, _) => list(rooms, rooms.capacity(), |(room, _)| room.capacity()),
            _ => 0,
        }
    }

    /// The line protocol's spelling, without the newline.
    fn spelled(&self) -> String {
        match self {
            Says::Chat { room, from, text } => protocol::chat(room, from, text),
            Says::Action { room, from, text } => protocol::action(room, from, text),
            Says::WhisperFrom { from, text } => protocol::whisper_received(from, text),
            Says::WhisperTo { to, text } => protocol::whisper_sent(to, text),
            Says::Presence { name, change, .. } => protocol::notice(&match change {
                Change::Joined => format!("{name} joined"),
                Change::Parted | Change::Quit => format!("{name} left"),
                Change::Renamed { new } => format!("{name} is now known as {new}"),
            }),
            Says::Door(text) => text.clone(),
            Says::Error { text, .. } => protocol::error(text),
            _ => protocol::notice(&self.reply()),
        }
    }

    /// What a reply says, after the line protocol's `* `.
    fn reply(&self) -> String {
        match self {
            Says::NamePrompt => format!("choose a name ({NAME_RULE}):"),
            Says::Welcome { name, room, online } => format!(
                "welcome {name}! you are in {room}; {online} online. /help lists the commands"
            ),
            Says::Entered { room, members, .. } => format!("you joined #{room}; {members} here"),
            Says::Renamed { new, .. } => format!("you are now {new}"),
            Says::Members {
                room, names, more, ..
            } => protocol::listing_cut(&format!("in #{room}"), names, *more),
            Says::Rooms(rooms, more) => protocol::listing_cut("rooms", &room_counts(rooms), *more),
            Says::User {
                found: Some((name, room)),
                ..
            } => format!("{name} is in #{room}"),
            Says::User { asked, .. } => {
                format!("no user named \"{}\" is online", protocol::excerpt(asked))
            }
            Says::Online(names) => format!("online: {}", names.join(", ")),
            Says::Counts { online, rooms } => format!("{online} online in {rooms} rooms"),
            Says::Notice(text) => text.clone(),
            _ => String::new(),
        }
    }
}

/// `lobby (3)`, for each room.
pub(crate) fn room_counts(rooms: &[(String, usize)]) -> Vec<String> {
    (rooms.iter())
        .map(|(name, members)| format!("{name} ({members})"))
        .collect()
}

/// A room line's identity: the server that said it first, and its number
/// there. Every chat line and action gets one from the manager as it is
/// said. History is searched by it, so that a line read from Redis's copy
/// and heard again live (`--redis`) is shown once, and an event stream
/// (the curl door) resumes after the last line it was sent
/// (`Last-Event-ID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LineId {
    /// The id of the server it was said on: chosen at random at start, so
    /// that an id from before a restart names no line of the new run.
    pub(crate) server: u64,
    pub(crate) seq: u64,
}

impl LineId {
    /// Reads back what [`Display`](fmt::Display) wrote: `SERVER-SEQ`, the
    /// server in hexadecimal, the number in decimal.
    pub(crate) fn parse(text: &str) -> Option<LineId> {
        let (server, seq) = text.trim().split_once('-')?;
        let digits = |s: &str, radix: u32| {
            !s.is_empty() && s.len() <= 20 && s.chars().all(|c| c.is_digit(radix))
        };
        if !(digits(server, 16) && digits(seq, 10)) {
            return None;
        }
        Some(LineId {
            server: u64::from_str_radix(server, 16).ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}-{}", self.server, self.seq)
    }
}

/// One line on its way to clients. Cloning shares it: a chat line sent to a
/// room of a thousand people is made once and queued a thousand times.
#[derive(Clone, Debug)]
pub(crate) struct OutboundLine(Arc<Line>);

#[derive(Debug)]
struct Line {
    says: Says,
    /// A room line's number (chat lines and actions); `None` for the rest.
    id: Option<LineId>,
    /// The line protocol's spelling, `\n` included.
    text: Box<str>,
    /// What `says`'s lists hold ([`Says::list_bytes`]), counted once.
    list_bytes: usize,
    /// For a chat line being fanned out: how long until its last recipient
    /// has it written (`/metrics`, `threadchat_fanout_seconds`).
    fanout: Option<FanoutTimer>,
}

/// Times one line's fan-out: from the manager taking it to the last
/// recipient's writer finishing the write. `pending` counts queued copies
/// not yet written, plus one the manager holds while it is still queueing
/// (so that a fast writer cannot bring it to zero early); whoever brings it
/// to zero records the time.
#[derive(Debug)]
struct FanoutTimer {
    started: Instant,
    pending: AtomicUsize,
    queued: AtomicUsize,
    histogram: Arc<Histogram>,
    /// `/trace`: the line's journey, which each writer notes its write in.
    trace: Option<Trace>,
}

impl OutboundLine {
    pub(crate) fn new(says: Says) -> Self {
        OutboundLine::with_timer(says, None, None)
    }

    /// A room line kept with its number: read back from another server's
    /// history (`--redis`).
    pub(crate) fn numbered(says: Says, id: LineId) -> Self {
        OutboundLine::with_timer(says, Some(id), None)
    }

    /// `* TEXT`
    pub(crate) fn notice(text: &str) -> Self {
        OutboundLine::new(Says::Notice(text.to_string()))
    }

    /// `! TEXT`
    pub(crate) fn error(text: &str) -> Self {
        OutboundLine::refusal(text, Refusal::Other)
    }

    /// `! TEXT`, about `refusal`.
    pub(crate) fn refusal(text: &str, refusal: Refusal) -> Self {
        OutboundLine::new(Says::Error {
            text: text.to_string(),
            refusal,
        })
    }

    /// A room line, numbered `id`, whose fan-out is timed into
    /// `histogram`. The manager calls [`fan_out_done`](Self::fan_out_done)
    /// once it has queued every copy.
    pub(crate) fn timed(says: Says, id: Option<LineId>, histogram: &Arc<Histogram>) -> Self {
        OutboundLine::timed_and_traced(says, id, histogram, None)
    }

    /// A timed line that may carry a trace, which each writer notes its
    /// write in.
    pub(crate) fn timed_and_traced(
        says: Says,
        id: Option<LineId>,
        histogram: &Arc<Histogram>,
        trace: Option<Trace>,
    ) -> Self {
        let timer = FanoutTimer {
            started: Instant::now(),
            pending: AtomicUsize::new(1),
            queued: AtomicUsize::new(0),
            histogram: histogram.clone(),
            trace,
        };
        OutboundLine::with_timer(says, id, Some(timer))
    }

    fn with_timer(says: Says, id: Option<LineId>, fanout: Option<FanoutTimer>) -> Self {
        let mut text = says.spelled();
        text.push('\n');
        OutboundLine(Arc::new(Line {
            list_bytes: says.list_bytes(),
            says,
            id,
            text: text.into_boxed_str(),
            fanout,
        }))
    }

    /// A line of exactly `text`, for tests that count bytes.
    #[cfg(test)]
    pub(crate) fn verbatim(text: &str) -> Self {
        OutboundLine(Arc::new(Line {
            says: Says::Notice(text.to_string()),
            id: None,
            text: format!("{text}\n").into_boxed_str(),
            list_bytes: 0,
            fanout: None,
        }))
    }

    /// What the line says, for a door that spells it its own way.
    pub(crate) fn says(&self) -> &Says {
        &self.0.says
    }

    /// The line protocol's spelling, newline included.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.text.as_bytes()
    }

    /// What the line's lists hold beside its spelling ([`Says::list_bytes`]).
    pub(crate) fn list_bytes(&self) -> usize {
        self.0.list_bytes
    }

    /// The line protocol's spelling, without the newline.
    pub(crate) fn text(&self) -> &str {
        self.0.text.trim_end_matches('\n')
    }

    /// The same line, with its number, without a timer: a history replay
    /// is not a fan-out.
    pub(crate) fn untimed(&self) -> OutboundLine {
        match &self.0.fanout {
            None => self.clone(),
            Some(_) => OutboundLine::with_timer(self.0.says.clone(), self.0.id, None),
        }
    }

    /// A room line's number.
    pub(crate) fn id(&self) -> Option<LineId> {
        self.0.id
    }

    pub(crate) fn is_timed(&self) -> bool {
        self.0.fanout.is_some()
    }

    /// One more copy is about to be queued for a writer.
    pub(crate) fn queued(&self) {
        if let Some(timer) = &self.0.fanout {
            timer.pending.fetch_add(1, Ordering::AcqRel);
            timer.queued.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A writer has written one copy, or a queued copy will never be.
    pub(crate) fn written(&self) {
        self.release();
    }

    /// A writer's `write` with this copy in it has returned: as
    /// [`written`](Self::written), and the trace, if any, notes the time
    /// (before the count goes down, which publishes it to the manager).
    pub(crate) fn written_to_socket(&self) {
        if let Some(trace) = self.0.fanout.as_ref().and_then(|t| t.trace.as_ref()) {
            trace.written();
        }
        self.release();
    }

    /// How many copies the manager has queued.
    pub(crate) fn copies_queued(&self) -> usize {
        let timer = self.0.fanout.as_ref();
        timer.map_or(0, |timer| timer.queued.load(Ordering::Relaxed))
    }

    /// Whether every copy queued has been written (or will never be), and
    /// the manager is done queueing: `Acquire`, so that what the writers
    /// noted before their count went down (the trace's times) is seen.
    pub(crate) fn fan_out_finished(&self) -> bool {
        let timer = self.0.fanout.as_ref();
        timer.is_none_or(|timer| timer.pending.load(Ordering::Acquire) == 0)
    }

    /// The manager has queued every copy it will.
    pub(crate) fn fan_out_done(&self) {
        self.release();
    }

    fn release(&self) {
        let Some(timer) = &self.0.fanout else {
            return;
        };
        if timer.pending.fetch_sub(1, Ordering::AcqRel) == 1
            && timer.queued.load(Ordering::Relaxed) > 0
        {
            timer.histogram.observe(timer.started.elapsed());
        }
    }
}

impl PartialEq for OutboundLine {
    fn eq(&self, other: &Self) -> bool {
        self.0.text == other.0.text
    }
}

impl Eq for OutboundLine {}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(text: &str) -> Says {
        Says::Chat {
            room: "lobby".into(),
            from: "alice".into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_line_is_spelled_once_in_the_line_protocol() {
        let line = OutboundLine::new(chat("hi"));
        assert_eq!(line.as_bytes(), b"[lobby] alice: hi\n");
        assert_eq!(line.text(), "[lobby] alice: hi");
        let renamed = Says::Presence {
            name: "al".into(),
            room: "lobby".into(),
            change: Change::Renamed { new: "bo".into() },
        };
        assert_eq!(OutboundLine::new(renamed).text(), "* al is now known as bo");
        assert_eq!(OutboundLine::error("no").text(), "! no");
    }

    /// The replies that carry data spell what the line protocol always
    /// said (docs/PROTOCOL.md), word for word.
    #[test]
    fn structured_replies_keep_the_line_protocols_words() {
        let spelled = |says: Says| OutboundLine::new(says).text().to_string();
        let names = vec!["alice".to_string(), "Bob".to_string()];
        let cases = [
            (
                Says::NamePrompt,
                "* choose a name (1-24 letters, digits, - or _):",
            ),
            (
                Says::Welcome {
                    name: "al".into(),
                    room: "lobby".into(),
                    online: 3,
                },
                "* welcome al! you are in lobby; 3 online. /help lists the commands",
            ),
            (
                Says::Entered {
                    room: "rust".into(),
                    left: Some("lobby".into()),
                    members: 2,
                },
                "* you joined #rust; 2 here",
            ),
            (
                Says::Renamed {
                    old: "al".into(),
                    new: "bo".into(),
                },
                "* you are now bo",
            ),
            (
                Says::Members {
                    room: "rust".into(),
                    names,
                    more: 0,
                    roster: Roster::Who,
                },
                "* in #rust (2): alice, Bob",
            ),
            (
                Says::Members {
                    room: "rust".into(),
                    names: vec!["alice".into()],
                    more: 3,
                    roster: Roster::Who,
                },
                "* in #rust (4): alice, … and 3 more",
            ),
            (
                Says::Rooms(vec![("lobby".into(), 3), ("rust".into(), 2)], 0),
                "* rooms (2): lobby (3), rust (2)",
            ),
            (
                Says::User {
                    asked: "zed".into(),
                    found: None,
                    lookup: Lookup::Whois,
                },
                "* no user named \"zed\" is online",
            ),
            (
                Says::Counts {
                    online: 3,
                    rooms: 2,
                },
                "* 3 online in 2 rooms",
            ),
            (Says::Door(":s PONG s :x".into()), ":s PONG s :x"),
            (
                Says::Error {
                    text: "name taken".into(),
                    refusal: Refusal::NameTaken("al".into()),
                },
                "! name taken",
            ),
        ];
        for (says, expected) in cases {
            assert_eq!(spelled(says), expected);
        }
    }

    #[test]
    fn a_fan_out_is_timed_once_when_its_last_copy_is_written() {
        let histogram = Arc::new(Histogram::default());
        let id = LineId { server: 7, seq: 1 };
        let line = OutboundLine::timed(chat("hi"), Some(id), &histogram);
        line.queued();
        line.queued();
        // A fast writer: its copy is written before the manager is done.
        line.written();
        assert_eq!(histogram.snapshot().count, 0, "the manager still holds it");
        line.fan_out_done();
        assert_eq!(histogram.snapshot().count, 0, "one copy is still queued");
        line.written();
        assert_eq!(histogram.snapshot().count, 1);
        // A replay of it later is not a fan-out.
        let replayed = line.untimed();
        replayed.queued();
        replayed.written();
        assert_eq!(histogram.snapshot().count, 1);
        assert_eq!(replayed, line, "same text");
        assert_eq!(replayed.id(), Some(id), "and the same number");
    }

    #[test]
    fn a_line_id_reads_back_as_written_and_nothing_else_reads() {
        let id = LineId {
            server: 0x9f3c_2a1b_4d5e_6f70,
            seq: 17,
        };
        assert_eq!(id.to_string(), "9f3c2a1b4d5e6f70-17");
        assert_eq!(LineId::parse(&id.to_string()), Some(id));
        assert_eq!(LineId::parse(" 0-0 "), Some(LineId { server: 0, seq: 0 }));
        for bad in [
            "", "-", "17", "0-", "-1", "x-1", "0-1a", "0--1", "0-+1", "0-1-2",
        ] {
            assert_eq!(LineId::parse(bad), None, "{bad:?}");
        }
        let too_big = format!("{}0-1", "f".repeat(16));
        assert_eq!(LineId::parse(&too_big), None);
    }

    #[test]
    fn a_list_reply_counts_what_its_names_hold_and_a_notice_nothing_more() {
        let names: Vec<String> = (0..100).map(|n| format!("name{n:03}")).collect();
        let members = OutboundLine::new(Says::Members {
            room: "lobby".into(),
            names: names.clone(),
            more: 0,
            roster: Roster::Who,
        });
        // Each name: its String, its 7 bytes, the allocator's share.
        let at_least = 100 * (size_of::<String>() + 7 + PER_ALLOCATION);
        assert!(members.list_bytes() >= at_least, "{}", members.list_bytes());
        let same_words = OutboundLine::notice(members.text().trim_start_matches("* "));
        assert_eq!(same_words.as_bytes().len(), members.as_bytes().len());
        assert_eq!(same_words.list_bytes(), 0);
        assert_eq!(OutboundLine::new(chat("hi")).list_bytes(), 0);
    }

    #[test]
    fn a_line_nobody_received_is_not_timed() {
        let histogram = Arc::new(Histogram::default());
        let line = OutboundLine::timed(chat("to an empty room"), None, &histogram);
        line.fan_out_done();
        assert_eq!(histogram.snapshot().count, 0);
    }
}
