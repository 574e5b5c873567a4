//! The IRC door (`--irc`, on by default at 127.0.0.1:6667): irssi, WeeChat
//! and HexChat chat with nc and browser users, through the same threads.
//! No thread of its own: an IRC client's reader thread reads through
//! [`IrcDecoder`], which turns each IRC message into what the line
//! protocol's commands would ask (or into a reply of its own), and its
//! writer writes through [`IrcEncoder`] (`irc/encode.rs`), which spells
//! each line the manager queued as IRC messages and numerics. The grammar
//! of a line is plain logic, in `logic/irc.rs`.
//!
//! What the door answers itself (CAP, PONG, the MOTD, TOPIC, MODE and the
//! protocol's own errors) goes to the manager as a `Reply`, which queues
//! it with the client's other lines, so that an answer never overtakes
//! the lines before it. docs/PROTOCOL.md, "IRC", lists every command and
//! numeric.

mod encode;

pub(crate) use encode::IrcEncoder;

use std::io;

use super::{Decode, Parsed, Request};
use crate::event::Query;
use crate::line::{Lookup, Refusal, Roster};
use crate::logic::irc::{self, Malformed, Message};
use crate::logic::line_reader::{Incoming, LineReader};
use crate::logic::names;
use crate::logic::protocol::{self, Command, ParseError, WrongProtocol};
use crate::socket::TimedStream;

/// How the server names itself: the source of its messages, and every
/// user's host (`bob!bob@threadchat`).
pub(crate) const SERVER: &str = "threadchat";

/// The most targets one PRIVMSG, JOIN, PART, NAMES or WHOIS may name
/// (advertised as TARGMAX): one line must not become a flood of events.
const MAX_TARGETS: usize = 8;

/// Advertised in 005 (RPL_ISUPPORT). `CASEMAPPING=ascii` is threadchat's
/// name rule (`names::key`); `CHANLIMIT=#:1` says one room at a time.
pub(crate) const ISUPPORT: &[&str] = &[
    "CASEMAPPING=ascii",
    "CHANTYPES=#",
    "CHANLIMIT=#:1",
    "CHANNELLEN=33",
    "NICKLEN=24",
    "NETWORK=threadchat",
    "TARGMAX=JOIN:8,PART:8,NAMES:8,WHOIS:8,PRIVMSG:8,NOTICE:8",
];

/// The message of the day, sent after the welcome and for MOTD.
const MOTD: &[&str] = &[
    "- threadchat: a reader and a writer thread per client, one manager",
    "- thread that routes every line. nc and browser users are here too.",
    "- One room at a time: JOIN another and you PART this one.",
    "- HELP lists threadchat's own commands.",
];

pub(crate) struct IrcDecoder<'a> {
    lines: LineReader<&'a TimedStream<'a>>,
    /// `--max-line`, which a chat line's text must fit as an nc line must.
    max_text: usize,
    registration: Registration,
    /// Whole lines parsed so far: the first is checked for HTTP.
    parsed: u64,
}

/// What a client has sent towards registering (modern.ircdocs.horse,
/// "Connection Registration"): it is registered once it has sent NICK and
/// USER, and CAP END if it began a CAP negotiation.
#[derive(Default)]
struct Registration {
    nick: Option<String>,
    user: bool,
    negotiating: bool,
}

impl Registration {
    /// The name to register, once everything is in.
    fn ready(&self) -> Parsed {
        match (&self.nick, self.user && !self.negotiating) {
            (Some(nick), true) => Parsed::Name(nick.clone()),
            _ => Parsed::Command(Command::Empty),
        }
    }
}

impl<'a> IrcDecoder<'a> {
    pub(crate) fn new(input: &'a TimedStream<'a>, max_text: usize) -> Self {
        IrcDecoder {
            lines: LineReader::new(input, irc::MAX_BODY),
            max_text,
            registration: Registration::default(),
            parsed: 0,
        }
    }
}

impl Decode for IrcDecoder<'_> {
    fn next_line(&mut self) -> io::Result<Incoming> {
        self.lines.next_line()
    }

    fn wrong_protocol(&mut self) -> io::Result<Option<WrongProtocol>> {
        Ok(WrongProtocol::from_first_bytes(self.lines.peek()?))
    }

    fn parse(&mut self, line: &str, name: Option<&str>) -> Parsed {
        self.parsed += 1;
        if self.parsed == 1 && name.is_none() {
            if let Some(other) = WrongProtocol::from_first_line(line) {
                return Parsed::WrongProtocol(other);
            }
        }
        translate(&mut self.registration, self.max_text, line, name)
    }

    fn too_long(&self, _max_line: usize) -> Parsed {
        let message = format!(
            "line too long (max {} bytes: IRC's 512 with \\r\\n)",
            irc::MAX_BODY
        );
        Parsed::refused(Refusal::TooLong, message)
    }
}

/// What one line from an IRC client asks for; `name` is the client's name
/// once it has one. The control-character rule is the line protocol's,
/// except for the `\x01` that frames a CTCP ACTION.
fn translate(
    registration: &mut Registration,
    max_text: usize,
    line: &str,
    name: Option<&str>,
) -> Parsed {
    if let Some(c) = protocol::find_control(&line.replace('\u{1}', "")) {
        return Parsed::refused(Refusal::Other, ParseError::ControlCharacter(c).to_string());
    }
    let me = name.unwrap_or("*");
    let message = match irc::parse(line) {
        Ok(message) => message,
        Err(Malformed::Empty) => return Parsed::Command(Command::Empty),
        Err(_) => {
            let word = line.trim_start().split(' ').next().unwrap_or_default();
            return unknown(me, word);
        }
    };
    match name {
        Some(me) => registered(&message, me, max_text),
        None => unregistered(registration, &message),
    }
}

/// Before registration: CAP, PASS, NICK, USER, PING, PONG and QUIT; 451
/// for anything else.
fn unregistered(registration: &mut Registration, m: &Message) -> Parsed {
    let first = m.params.first().copied();
    match m.command.as_str() {
        "CAP" => {
            let (reply, subcommand) = cap(m, "*");
            match subcommand.as_deref() {
                Some("LS" | "REQ") => registration.negotiating = true,
                Some("END") if registration.negotiating => {
                    registration.negotiating = false;
                    return registration.ready();
                }
                _ => {}
            }
            reply
        }
        // No passwords here: a PASS is accepted, and changes nothing.
        "PASS" | "PONG" => Parsed::Command(Command::Empty),
        "NICK" => match first {
            None | Some("") => numeric("431", "*", &[], "No nickname given"),
            Some(nick) => match names::validate(nick) {
                Err(error) => numeric("432", "*", &[&protocol::excerpt(nick)], &error.to_string()),
                Ok(()) => {
                    registration.nick = Some(nick.to_string());
                    registration.ready()
                }
            },
        },
        "USER" if m.params.len() < 4 => need_more_params("*", "USER"),
        "USER" => {
            registration.user = true;
            registration.ready()
        }
        "PING" => ping(m, "*"),
        "QUIT" => Parsed::Command(Command::Quit),
        _ => numeric(
            "451",
            "*",
            &[],
            "You have not registered: send NICK and USER first",
        ),
    }
}

/// Once registered: every command the door knows, 421 for the rest.
fn registered(m: &Message, me: &str, max_text: usize) -> Parsed {
    let first = m.params.first().copied().filter(|p| !p.is_empty());
    match (m.command.as_str(), first) {
        ("PRIVMSG" | "NOTICE", _) => message(m, me, max_text),
        ("NICK", Some(nick)) => Parsed::Command(Command::Nick(nick.to_string())),
        ("NICK" | "WHOIS", None) => numeric("431", me, &[], "No nickname given"),
        ("JOIN", Some("0")) => Parsed::Command(Command::Leave),
        ("JOIN", Some(channels)) => each(me, channels, |channel| {
            Parsed::Command(Command::Join(channel.to_string()))
        }),
        ("PART", Some(channels)) => each(me, channels, |channel| {
            Parsed::Request(Request::Part(channel.to_string()))
        }),
        ("NAMES", None) => members(None, Roster::Names),
        ("NAMES", Some(channels)) => each(me, channels, |channel| {
            members(Some(channel), Roster::Names)
        }),
        ("WHO", Some(mask)) if mask.starts_with('#') => members(Some(mask), Roster::Who),
        ("WHO", Some(mask)) => whereabouts(mask, Lookup::Who),
        // `WHOIS server nick` asks a given server; there is only this one.
        ("WHOIS", Some(_)) => {
            let nicks = m.params.last().copied().unwrap_or_default();
            targets(me, nicks, |nick| whereabouts(nick, Lookup::Whois))
        }
        ("ISON", Some(_)) => {
            let nicks = m.params.iter().flat_map(|p| p.split(' '));
            let nicks = nicks.filter(|n| !n.is_empty()).map(str::to_string);
            Parsed::Request(Request::Query(Query::Online(nicks.collect())))
        }
        ("LIST", _) => Parsed::Command(Command::Rooms),
        ("TOPIC", Some(channel)) => topic(me, channel, m.params.len() > 1),
        ("LUSERS", _) => Parsed::Request(Request::Query(Query::Counts)),
        ("MOTD", _) => Parsed::Reply(motd(me)),
        ("MODE", Some(target)) => mode(me, target, m.params.get(1).copied()),
        ("PING", _) => ping(m, me),
        ("PONG", _) => Parsed::Command(Command::Empty),
        ("QUIT", _) => Parsed::Command(Command::Quit),
        ("HELP", _) => Parsed::Command(Command::Help),
        ("CAP", _) => cap(m, me).0,
        ("USER" | "PASS", _) => numeric("462", me, &[], "You may not reregister"),
        ("JOIN" | "PART" | "WHO" | "ISON" | "TOPIC" | "MODE", None) => {
            need_more_params(me, &m.command)
        }
        (other, _) => unknown(me, other),
    }
}

/// PRIVMSG and NOTICE (threadchat has one kind of message, so a NOTICE is
/// delivered as a PRIVMSG is): to `#room`, a chat line for the room the
/// client is in; to a nick, a whisper; `\x01ACTION ...\x01`, an action.
fn message(m: &Message, me: &str, max_text: usize) -> Parsed {
    let (Some(&targets_param), Some(&text)) = (m.params.first(), m.params.get(1)) else {
        let command = m.command.as_str();
        return match m.params.first() {
            None => numeric("411", me, &[], &format!("No recipient given ({command})")),
            Some(_) => numeric("412", me, &[], "No text to send"),
        };
    };
    let (text, action) = match irc::ctcp(text) {
        Some(("ACTION", action)) => (action, true),
        Some((other, _)) => {
            let why = format!(
                "CTCP {} is not supported here; only ACTION (/me)",
                protocol::excerpt(other)
            );
            return Parsed::refused(Refusal::Other, why);
        }
        None => (text, false),
    };
    if text.contains('\u{1}') {
        return Parsed::refused(
            Refusal::Other,
            ParseError::ControlCharacter('\u{1}').to_string(),
        );
    }
    if protocol::is_blank(text) {
        return numeric("412", me, &[], "No text to send");
    }
    if text.len() > max_text {
        let why = format!("line too long (max {max_text} bytes)");
        return Parsed::refused(Refusal::TooLong, why);
    }
    targets(me, targets_param, |target| match target.strip_prefix('#') {
        Some(_) => Parsed::Request(Request::SayIn {
            room: target.to_string(),
            text: text.to_string(),
            action,
        }),
        None if action => Parsed::refused(
            Refusal::Other,
            "an action (/me) goes to a room; to one person, say it in words".to_string(),
        ),
        None => Parsed::Command(Command::Whisper {
            to: target.to_string(),
            text: text.to_string(),
        }),
    })
}

/// Each comma-separated target of `param`, in order, through `one`; too
/// many get 407 and nothing else happens.
fn targets(me: &str, param: &str, one: impl Fn(&str) -> Parsed) -> Parsed {
    let all: Vec<&str> = irc::targets(param).collect();
    if all.len() > MAX_TARGETS {
        let why = format!("Too many targets: at most {MAX_TARGETS}");
        return numeric("407", me, &[&protocol::excerpt(param)], &why);
    }
    match all.as_slice() {
        [] => numeric("411", me, &[], "No recipient given"),
        [one_only] => one(one_only),
        _ => Parsed::Several(all.into_iter().map(one).collect()),
    }
}

/// As [`targets`], for channels: a target that does not start with `#` is
/// no channel here (403).
fn each(me: &str, channels: &str, one: impl Fn(&str) -> Parsed) -> Parsed {
    targets(me, channels, |channel| match channel.starts_with('#') {
        true => one(channel),
        false => no_such_channel(me, channel),
    })
}

fn members(room: Option<&str>, roster: Roster) -> Parsed {
    let room = room.map(str::to_string);
    Parsed::Request(Request::Members { room, roster })
}

fn whereabouts(name: &str, lookup: Lookup) -> Parsed {
    let name = name.to_string();
    Parsed::Request(Request::Query(Query::Whereabouts { name, lookup }))
}

/// TOPIC: rooms have none (331), and none can be set (482).
fn topic(me: &str, channel: &str, setting: bool) -> Parsed {
    match (channel.starts_with('#'), setting) {
        (false, _) => no_such_channel(me, channel),
        (true, false) => numeric("331", me, &[channel], "No topic is set"),
        (true, true) => numeric("482", me, &[channel], "threadchat rooms have no topic"),
    }
}

/// MODE: rooms have no modes but `n` (no messages from outside, which is
/// true: a line must come from a member), users none; lists are empty;
/// nothing can be changed.
fn mode(me: &str, target: &str, change: Option<&str>) -> Parsed {
    if target.starts_with('#') {
        return match change {
            None => bare_numeric("324", me, &[target, "+n"]),
            Some("b" | "+b") => numeric("368", me, &[target], "End of channel ban list"),
            Some("e" | "+e") => numeric("349", me, &[target], "End of channel exception list"),
            Some("I" | "+I") => numeric("347", me, &[target], "End of channel invite list"),
            Some(_) => numeric(
                "482",
                me,
                &[target],
                "threadchat rooms have no modes to change",
            ),
        };
    }
    match target.eq_ignore_ascii_case(me) {
        true => bare_numeric("221", me, &["+"]),
        false => numeric("502", me, &[], "Can't change mode for other users"),
    }
}

/// PING gets PONG with its token.
fn ping(m: &Message, me: &str) -> Parsed {
    match m.params.first() {
        None => need_more_params(me, "PING"),
        Some(token) => {
            let mut out = Vec::new();
            irc::push(&mut out, Some(SERVER), "PONG", &[SERVER], Some(token));
            Parsed::Reply(spelled(out))
        }
    }
}

/// CAP, with no capability to offer (modern.ircdocs.horse, "Capability
/// Negotiation"): the reply, and the subcommand, in capitals.
fn cap(m: &Message, me: &str) -> (Parsed, Option<String>) {
    let Some(subcommand) = m.params.first().map(|s| s.to_ascii_uppercase()) else {
        return (need_more_params(me, "CAP"), None);
    };
    let mut out = Vec::new();
    let reply = |out: &mut Vec<u8>, sub: &str, text: &str| {
        irc::push(out, Some(SERVER), "CAP", &[me, sub], Some(text))
    };
    match subcommand.as_str() {
        "LS" => reply(&mut out, "LS", ""),
        "LIST" => reply(&mut out, "LIST", ""),
        "REQ" => reply(
            &mut out,
            "NAK",
            m.params.get(1).copied().unwrap_or_default(),
        ),
        "END" => return (Parsed::Command(Command::Empty), Some(subcommand)),
        _ => {
            let word = protocol::excerpt(&subcommand);
            let parsed = numeric("410", me, &[&word], "Invalid CAP command");
            return (parsed, Some(subcommand));
        }
    }
    (Parsed::Reply(spelled(out)), Some(subcommand))
}

fn no_such_channel(me: &str, channel: &str) -> Parsed {
    let channel = protocol::excerpt(channel);
    numeric(
        "403",
        me,
        &[&channel],
        "No such channel: rooms start with #",
    )
}

fn need_more_params(me: &str, command: &str) -> Parsed {
    numeric("461", me, &[command], "Not enough parameters")
}

fn unknown(me: &str, command: &str) -> Parsed {
    let command = protocol::excerpt(command);
    numeric("421", me, &[&command], "Unknown command")
}

/// A numeric reply the door sends on its own.
fn numeric(code: &str, me: &str, middle: &[&str], text: &str) -> Parsed {
    let mut out = Vec::new();
    push_numeric(&mut out, code, me, middle, text);
    Parsed::Reply(spelled(out))
}

/// `:threadchat CODE ME MIDDLE... :TEXT`
pub(crate) fn push_numeric(out: &mut Vec<u8>, code: &str, me: &str, middle: &[&str], text: &str) {
    let mut params = Vec::with_capacity(middle.len() + 1);
    params.push(me);
    params.extend_from_slice(middle);
    irc::push(out, Some(SERVER), code, &params, Some(text));
}

/// `:threadchat CODE ME MIDDLE...`, for the numerics whose last parameter
/// is a word (004, 221, 324).
pub(crate) fn push_bare_numeric(out: &mut Vec<u8>, code: &str, me: &str, middle: &[&str]) {
    let mut params = Vec::with_capacity(middle.len() + 1);
    params.push(me);
    params.extend_from_slice(middle);
    irc::push(out, Some(SERVER), code, &params, None);
}

fn bare_numeric(code: &str, me: &str, middle: &[&str]) -> Parsed {
    let mut out = Vec::new();
    push_bare_numeric(&mut out, code, me, middle);
    Parsed::Reply(spelled(out))
}

/// 375, 372 for each line, 376.
pub(crate) fn push_motd(out: &mut Vec<u8>, me: &str) {
    push_numeric(out, "375", me, &[], "- threadchat Message of the Day -");
    for line in MOTD {
        push_numeric(out, "372", me, &[], line);
    }
    push_numeric(out, "376", me, &[], "End of /MOTD command.");
}

fn motd(me: &str) -> String {
    let mut out = Vec::new();
    push_motd(&mut out, me);
    spelled(out)
}

/// The door's own lines, spelled by `irc::push` from text: UTF-8.
fn spelled(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests;
