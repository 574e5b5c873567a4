//! The writing half of the IRC door: each line the manager queued for an
//! IRC client, spelled as IRC messages and numerics. Runs on the client's
//! writer thread, and owns one thing: the client's nick as the lines it
//! wrote have told it (a welcome, then each rename), which every numeric
//! and private message is addressed to. It reads each line's [`Says`], the
//! data behind the line protocol's sentence, and never the sentence.

use super::{push_bare_numeric, push_motd, push_numeric, ISUPPORT, SERVER};
use crate::doors::Encode;
use crate::line::{Change, Lookup, OutboundLine, Refusal, Roster, Says};
use crate::logic::{irc, protocol};

pub(crate) struct IrcEncoder {
    /// `*` until the welcome, as IRC has it.
    nick: String,
}

impl IrcEncoder {
    pub(crate) fn new() -> Self {
        IrcEncoder {
            nick: "*".to_string(),
        }
    }
}

impl Encode for IrcEncoder {
    fn line(&mut self, line: &OutboundLine, out: &mut Vec<u8>) {
        self.says(line.says(), out);
    }

    fn ping(&mut self, out: &mut Vec<u8>) {
        irc::push(out, None, "PING", &[], Some(SERVER));
    }

    /// The server ends the connection (modern.ircdocs.horse, ERROR).
    fn goodbye(&mut self, out: &mut Vec<u8>) {
        let why = format!("Closing link: {} (threadchat)", self.nick);
        irc::push(out, None, "ERROR", &[], Some(&why));
    }
}

/// `nick!nick@threadchat`: how a user is named as the source of a message.
fn user(nick: &str) -> String {
    format!("{nick}!{nick}@{SERVER}")
}

impl IrcEncoder {
    fn says(&mut self, says: &Says, out: &mut Vec<u8>) {
        match says {
            Says::Chat { room, from, text } => irc::push(
                out,
                Some(&user(from)),
                "PRIVMSG",
                &[&channel(room)],
                Some(text),
            ),
            Says::Action { room, from, text } => {
                let action = format!("\u{1}ACTION {text}\u{1}");
                irc::push(
                    out,
                    Some(&user(from)),
                    "PRIVMSG",
                    &[&channel(room)],
                    Some(&action),
                )
            }
            Says::WhisperFrom { from, text } => {
                irc::push(out, Some(&user(from)), "PRIVMSG", &[&self.nick], Some(text))
            }
            // IRC does not echo a message back to its sender.
            Says::WhisperTo { .. } | Says::NamePrompt => {}
            Says::Presence { name, room, change } => presence(out, name, room, change),
            Says::Welcome { name, room, online } => {
                self.nick = name.clone();
                self.welcome(out, *online);
                irc::push(out, Some(&user(name)), "JOIN", &[&channel(room)], None);
            }
            Says::Entered { room, left, .. } => {
                let me = user(&self.nick);
                if let Some(left) = left {
                    let why = format!("went to #{room}");
                    irc::push(out, Some(&me), "PART", &[&channel(left)], Some(&why));
                }
                irc::push(out, Some(&me), "JOIN", &[&channel(room)], None);
            }
            Says::Renamed { old, new } => {
                irc::push(out, Some(&user(old)), "NICK", &[], Some(new));
                self.nick = new.clone();
            }
            Says::Members {
                room,
                names,
                more,
                roster,
            } => self.members(out, room, names, *more, *roster),
            Says::Rooms(rooms, more) => {
                for (room, members) in rooms {
                    let count = members.to_string();
                    self.numeric(out, "322", &[&channel(room), &count], "");
                }
                if *more > 0 {
                    self.notice(out, &format!("… and {more} more rooms"));
                }
                self.numeric(out, "323", &[], "End of /LIST");
            }
            Says::User {
                asked,
                found,
                lookup,
            } => self.user(out, asked, found.as_ref(), *lookup),
            Says::Online(names) => self.numeric(out, "303", &[], &names.join(" ")),
            Says::Counts { online, rooms } => {
                self.lusers(out, *online);
                self.numeric(out, "254", &[&rooms.to_string()], "channels formed");
            }
            Says::Door(text) => out.extend_from_slice(text.as_bytes()),
            Says::Notice(text) => self.notice(out, text),
            Says::Error { text, refusal } => self.error(out, text, refusal),
        }
    }

    fn numeric(&self, out: &mut Vec<u8>, code: &str, middle: &[&str], text: &str) {
        push_numeric(out, code, &self.nick, middle, text);
    }

    fn notice(&self, out: &mut Vec<u8>, text: &str) {
        irc::push(out, Some(SERVER), "NOTICE", &[&self.nick], Some(text));
    }

    /// 001 to 005, the LUSERS numerics and the MOTD (modern.ircdocs.horse,
    /// "Connection Registration").
    fn welcome(&self, out: &mut Vec<u8>, online: usize) {
        let version = concat!("threadchat-", env!("CARGO_PKG_VERSION"));
        let nick = &self.nick;
        let welcome = format!("Welcome to threadchat, {nick}");
        self.numeric(out, "001", &[], &welcome);
        let host = format!("Your host is {SERVER}, running version {version}");
        self.numeric(out, "002", &[], &host);
        self.numeric(out, "003", &[], "This server was created when it started");
        push_bare_numeric(out, "004", nick, &[SERVER, version, "i", "n"]);
        self.numeric(out, "005", ISUPPORT, "are supported by this server");
        self.lusers(out, online);
        push_motd(out, nick);
    }

    fn lusers(&self, out: &mut Vec<u8>, online: usize) {
        let users = format!("There are {online} users and 0 invisible on 1 servers");
        self.numeric(out, "251", &[], &users);
        let clients = format!("I have {online} clients and 1 servers");
        self.numeric(out, "255", &[], &clients);
    }

    /// NAMES: 353 (as many as the names take) and 366; WHO: a 352 each and
    /// 315.
    /// NAMES or WHO. A list the manager cut (`more`), or a WHO reply that
    /// grows past a list's bound (a 352 per name is ten times a name's
    /// bytes), ends with a NOTICE of how many were left out, so that what
    /// one reply adds to the writer's batch stays bounded.
    fn members(
        &self,
        out: &mut Vec<u8>,
        room: &str,
        names: &[String],
        more: usize,
        roster: Roster,
    ) {
        let room = channel(room);
        match roster {
            Roster::Names => {
                if !names.is_empty() {
                    self.numeric(out, "353", &["=", &room], &names.join(" "));
                }
                self.left_out(out, &room, more);
                self.numeric(out, "366", &[&room], "End of /NAMES list");
            }
            Roster::Who => {
                let start = out.len();
                let mut told = names.len();
                for (n, name) in names.iter().enumerate() {
                    if out.len() - start > protocol::MAX_LIST_BYTES {
                        told = n;
                        break;
                    }
                    self.who_reply(out, &room, name);
                }
                self.left_out(out, &room, names.len() - told + more);
                self.numeric(out, "315", &[&room], "End of /WHO list");
            }
        }
    }

    fn left_out(&self, out: &mut Vec<u8>, room: &str, more: usize) {
        if more > 0 {
            self.notice(out, &format!("… and {more} more in {room}"));
        }
    }

    /// `352 ME #ROOM USER HOST SERVER NICK H :0 REALNAME`
    fn who_reply(&self, out: &mut Vec<u8>, room: &str, name: &str) {
        let real = format!("0 {name}");
        self.numeric(out, "352", &[room, name, SERVER, SERVER, name, "H"], &real);
    }

    /// WHOIS: 311, 319, 312, 318 (or 401, 318); WHO NICK: 352, 315.
    fn user(
        &self,
        out: &mut Vec<u8>,
        asked: &str,
        found: Option<&(String, String)>,
        lookup: Lookup,
    ) {
        let asked = &protocol::excerpt(asked);
        match (lookup, found) {
            (Lookup::Whois, Some((name, room))) => {
                self.numeric(out, "311", &[name, name, SERVER, "*"], name);
                self.numeric(out, "319", &[name], &channel(room));
                self.numeric(out, "312", &[name, SERVER], "threadchat");
                self.numeric(out, "318", &[name], "End of /WHOIS list");
            }
            (Lookup::Whois, None) => {
                self.numeric(out, "401", &[asked], "No such nick/channel");
                self.numeric(out, "318", &[asked], "End of /WHOIS list");
            }
            (Lookup::Who, found) => {
                if let Some((name, room)) = found {
                    self.who_reply(out, &channel(room), name);
                }
                self.numeric(out, "315", &[asked], "End of /WHO list");
            }
        }
    }

    /// An error with an IRC numeric of its own gets it, with threadchat's
    /// sentence as its text; any other is a NOTICE.
    fn error(&self, out: &mut Vec<u8>, text: &str, refusal: &Refusal) {
        // What the client typed comes back cut short, as in any error.
        let (code, about) = match refusal {
            Refusal::BadName(name) => ("432", Some(protocol::excerpt(name))),
            Refusal::NameTaken(name) => ("433", Some(protocol::excerpt(name))),
            Refusal::NotRegistered => ("451", None),
            Refusal::NoSuchUser(name) => ("401", Some(protocol::excerpt(name))),
            Refusal::BadRoom(typed) => ("403", Some(protocol::excerpt(typed))),
            Refusal::NotInRoom(room) => ("442", Some(channel(room))),
            Refusal::CannotSpeakIn(room) => ("404", Some(channel(room))),
            Refusal::TooLong => ("417", None),
            Refusal::Other => return self.notice(out, text),
        };
        let about: Vec<&str> = about.iter().map(String::as_str).collect();
        self.numeric(out, code, &about, text);
    }
}

/// Someone else came, went, or was renamed: JOIN, PART, QUIT, NICK.
fn presence(out: &mut Vec<u8>, name: &str, room: &str, change: &Change) {
    let source = user(name);
    let room = channel(room);
    match change {
        Change::Joined => irc::push(out, Some(&source), "JOIN", &[&room], None),
        Change::Parted => irc::push(out, Some(&source), "PART", &[&room], None),
        Change::Quit => irc::push(out, Some(&source), "QUIT", &[], Some("left")),
        Change::Renamed { new } => irc::push(out, Some(&source), "NICK", &[], Some(new)),
    }
}

fn channel(room: &str) -> String {
    format!("#{room}")
}
