//! The IRC door's two halves without sockets: lines in and what they ask
//! for out (`translate`); what the manager queued in and IRC out
//! (`IrcEncoder`). tests/suite/irc.rs speaks to the whole door over
//! sockets, and drives irssi.

use super::*;
use crate::doors::Encode;
use crate::line::{Change, OutboundLine, Says};

const MAX_TEXT: usize = 1024;

/// A client's lines, one after the other, before and after it has a name.
struct Client {
    registration: Registration,
    name: Option<&'static str>,
}

impl Client {
    fn new() -> Self {
        Client {
            registration: Registration::default(),
            name: None,
        }
    }

    fn registered(name: &'static str) -> Self {
        Client {
            registration: Registration::default(),
            name: Some(name),
        }
    }

    fn send(&mut self, line: &str) -> Parsed {
        translate(&mut self.registration, MAX_TEXT, line, self.name)
    }

    /// The door's own reply to `line`, which must be one.
    fn reply(&mut self, line: &str) -> String {
        match self.send(line) {
            Parsed::Reply(text) => text,
            other => panic!("{line:?}: expected a reply of the door's, got {other:?}"),
        }
    }
}

fn empty() -> Parsed {
    Parsed::Command(Command::Empty)
}

#[test]
fn registration_waits_for_cap_end_after_cap_ls() {
    let mut c = Client::new();
    assert_eq!(c.reply("CAP LS 302"), ":threadchat CAP * LS :\r\n");
    assert_eq!(c.send("NICK alice"), empty());
    assert_eq!(c.send("USER alice 0 * :Alice Liddell"), empty());
    assert_eq!(c.send("CAP END"), Parsed::Name("alice".into()));
}

#[test]
fn nick_and_user_in_either_order_register_without_cap() {
    let mut c = Client::new();
    assert_eq!(
        c.send("PASS secret"),
        empty(),
        "PASS is accepted, and changes nothing"
    );
    assert_eq!(c.send("NICK alice"), empty());
    assert_eq!(c.send("USER alice 0 * :A"), Parsed::Name("alice".into()));
    let mut c = Client::new();
    assert_eq!(c.send("user bob 0 * :B"), empty(), "commands in any case");
    assert_eq!(c.send("nick bob"), Parsed::Name("bob".into()));
}

#[test]
fn a_bad_nick_gets_432_at_once_and_another_can_be_tried() {
    let mut c = Client::new();
    c.send("USER x 0 * :x");
    let refused = c.reply("NICK al!ce");
    assert!(
        refused.starts_with(":threadchat 432 * al!ce :name cannot contain '!'"),
        "{refused}"
    );
    assert_eq!(c.reply("NICK"), ":threadchat 431 * :No nickname given\r\n");
    // After a 433 (the reader's), the next NICK registers again.
    assert_eq!(c.send("NICK alice"), Parsed::Name("alice".into()));
    assert_eq!(c.send("NICK alice2"), Parsed::Name("alice2".into()));
    assert_eq!(c.send("CAP END"), empty(), "no negotiation to end");
}

#[test]
fn before_registration_only_the_registration_commands_work() {
    let mut c = Client::new();
    assert_eq!(
        c.reply("JOIN :"),
        ":threadchat 451 * :You have not registered: send NICK and USER first\r\n",
        "irssi's probe for CAP"
    );
    assert!(c.reply("PRIVMSG #a :hi").contains(" 451 * "));
    assert_eq!(c.reply("PING abc"), ":threadchat PONG threadchat :abc\r\n");
    assert_eq!(c.send("PONG x"), empty());
    assert_eq!(
        c.reply("USER a b"),
        ":threadchat 461 * USER :Not enough parameters\r\n"
    );
    assert_eq!(c.send("QUIT :bye"), Parsed::Command(Command::Quit));
}

#[test]
fn cap_offers_nothing_and_refuses_what_is_asked() {
    let mut c = Client::new();
    assert_eq!(
        c.reply("CAP REQ :sasl multi-prefix"),
        ":threadchat CAP * NAK :sasl multi-prefix\r\n"
    );
    assert_eq!(c.reply("CAP LIST"), ":threadchat CAP * LIST :\r\n");
    assert_eq!(
        c.reply("CAP FOO"),
        ":threadchat 410 * FOO :Invalid CAP command\r\n"
    );
    assert_eq!(
        c.reply("CAP"),
        ":threadchat 461 * CAP :Not enough parameters\r\n"
    );
    c.send("NICK a");
    assert_eq!(c.send("USER a 0 * :a"), empty(), "REQ began a negotiation");
    assert_eq!(c.send("CAP END"), Parsed::Name("a".into()));
    let mut alice = Client::registered("alice");
    assert_eq!(alice.reply("CAP LS"), ":threadchat CAP alice LS :\r\n");
}

#[test]
fn messages_to_a_room_and_to_a_nick() {
    let mut c = Client::registered("alice");
    assert_eq!(
        c.send("PRIVMSG #rust :hi there"),
        Parsed::Request(Request::SayIn {
            room: "#rust".into(),
            text: "hi there".into(),
            action: false
        })
    );
    assert_eq!(
        c.send("NOTICE bob :psst"),
        Parsed::Command(Command::Whisper {
            to: "bob".into(),
            text: "psst".into()
        })
    );
    assert_eq!(
        c.send("PRIVMSG #rust :\u{1}ACTION waves\u{1}"),
        Parsed::Request(Request::SayIn {
            room: "#rust".into(),
            text: "waves".into(),
            action: true
        })
    );
    assert_eq!(
        c.send("PRIVMSG #a,bob :x"),
        Parsed::Several(vec![
            Parsed::Request(Request::SayIn {
                room: "#a".into(),
                text: "x".into(),
                action: false
            }),
            Parsed::Command(Command::Whisper {
                to: "bob".into(),
                text: "x".into()
            }),
        ])
    );
    assert_eq!(
        c.send("PRIVMSG #rust :/join elsewhere"),
        Parsed::Request(Request::SayIn {
            room: "#rust".into(),
            text: "/join elsewhere".into(),
            action: false
        }),
        "text is text: no line-protocol command in it"
    );
}

#[test]
fn what_a_message_cannot_be() {
    let mut c = Client::registered("alice");
    assert_eq!(
        c.reply("PRIVMSG"),
        ":threadchat 411 alice :No recipient given (PRIVMSG)\r\n"
    );
    assert_eq!(
        c.reply("PRIVMSG #a"),
        ":threadchat 412 alice :No text to send\r\n"
    );
    assert_eq!(
        c.reply("PRIVMSG #a :   "),
        ":threadchat 412 alice :No text to send\r\n"
    );
    let many = (0..9)
        .map(|n| format!("u{n}"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(c
        .reply(&format!("PRIVMSG {many} :hi"))
        .starts_with(&format!(":threadchat 407 alice {many} :Too many targets")));
    let refusal = |parsed: Parsed| match parsed {
        Parsed::Refused { message, refusal } => (refusal, message),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let (kind, message) = refusal(c.send("PRIVMSG #a :\u{1b}[2Jgotcha"));
    assert_eq!(kind, Refusal::Other);
    assert_eq!(
        message,
        "line not sent: it contains the control character U+001B"
    );
    let (_, message) = refusal(c.send("PRIVMSG #a :bold \u{2}x\u{2}"));
    assert!(
        message.contains("U+0002"),
        "IRC's formatting codes too: {message}"
    );
    let (_, message) = refusal(c.send("PRIVMSG #a :see \u{202e}txt.exe"));
    assert!(message.contains("U+202E"), "{message}");
    let (_, message) = refusal(c.send("PRIVMSG #a :a\u{1}b"));
    assert!(message.contains("U+0001"), "{message}");
    let (_, message) = refusal(c.send("PRIVMSG bob :\u{1}VERSION\u{1}"));
    assert!(
        message.contains("CTCP VERSION is not supported"),
        "{message}"
    );
    let (_, message) = refusal(c.send("PRIVMSG bob :\u{1}ACTION waves\u{1}"));
    assert!(
        message.contains("an action (/me) goes to a room"),
        "{message}"
    );
    let long = format!("PRIVMSG #a :{}", "x".repeat(MAX_TEXT + 1));
    let (kind, message) = refusal(c.send(&long));
    assert_eq!(kind, Refusal::TooLong);
    assert_eq!(message, "line too long (max 1024 bytes)");
}

#[test]
fn join_part_and_the_lists() {
    let mut c = Client::registered("alice");
    let join = |room: &str| Parsed::Command(Command::Join(room.into()));
    assert_eq!(
        c.send("JOIN #a,#b key1,key2"),
        Parsed::Several(vec![join("#a"), join("#b")])
    );
    assert_eq!(c.send("JOIN #rust"), join("#rust"));
    assert_eq!(c.send("JOIN 0"), Parsed::Command(Command::Leave));
    assert_eq!(
        c.reply("JOIN rust"),
        ":threadchat 403 alice rust :No such channel: rooms start with #\r\n"
    );
    assert_eq!(
        c.reply("JOIN"),
        ":threadchat 461 alice JOIN :Not enough parameters\r\n"
    );
    assert_eq!(
        c.send("PART #a :bye"),
        Parsed::Request(Request::Part("#a".into()))
    );
    let members = |room: Option<&str>, roster| {
        let room = room.map(str::to_string);
        Parsed::Request(Request::Members { room, roster })
    };
    assert_eq!(c.send("NAMES"), members(None, Roster::Names));
    assert_eq!(c.send("NAMES #a"), members(Some("#a"), Roster::Names));
    assert_eq!(c.send("WHO #a"), members(Some("#a"), Roster::Who));
    let query = |query| Parsed::Request(Request::Query(query));
    assert_eq!(
        c.send("WHO bob"),
        query(Query::Whereabouts {
            name: "bob".into(),
            lookup: Lookup::Who
        })
    );
    assert_eq!(
        c.reply("WHO"),
        ":threadchat 461 alice WHO :Not enough parameters\r\n"
    );
    assert_eq!(
        c.send("WHOIS threadchat bob"),
        query(Query::Whereabouts {
            name: "bob".into(),
            lookup: Lookup::Whois
        })
    );
    assert_eq!(
        c.reply("WHOIS"),
        ":threadchat 431 alice :No nickname given\r\n"
    );
    assert_eq!(
        c.send("ISON bob carol :dave"),
        query(Query::Online(vec![
            "bob".into(),
            "carol".into(),
            "dave".into()
        ]))
    );
    assert_eq!(c.send("LIST"), Parsed::Command(Command::Rooms));
    assert_eq!(c.send("LUSERS"), query(Query::Counts));
}

#[test]
fn what_the_door_answers_on_its_own() {
    let mut c = Client::registered("alice");
    assert_eq!(
        c.reply("TOPIC #a"),
        ":threadchat 331 alice #a :No topic is set\r\n"
    );
    assert_eq!(
        c.reply("TOPIC #a :new"),
        ":threadchat 482 alice #a :threadchat rooms have no topic\r\n"
    );
    assert_eq!(c.reply("MODE #a"), ":threadchat 324 alice #a +n\r\n");
    assert_eq!(
        c.reply("MODE #a b"),
        ":threadchat 368 alice #a :End of channel ban list\r\n"
    );
    assert_eq!(c.reply("MODE alice +i"), ":threadchat 221 alice +\r\n");
    assert!(c.reply("MODE bob").starts_with(":threadchat 502 alice :"));
    let motd = c.reply("MOTD");
    assert!(motd.starts_with(":threadchat 375 alice :"), "{motd}");
    assert!(
        motd.ends_with(":threadchat 376 alice :End of /MOTD command.\r\n"),
        "{motd}"
    );
    assert_eq!(
        c.reply("USER a 0 * :a"),
        ":threadchat 462 alice :You may not reregister\r\n"
    );
    assert_eq!(
        c.reply("FROB x"),
        ":threadchat 421 alice FROB :Unknown command\r\n"
    );
    assert_eq!(c.reply("PING :x y"), ":threadchat PONG threadchat :x y\r\n");
    assert_eq!(c.send("PONG threadchat"), empty());
    assert_eq!(c.send("HELP"), Parsed::Command(Command::Help));
    assert_eq!(c.send("QUIT"), Parsed::Command(Command::Quit));
    assert_eq!(
        c.send("NICK bob"),
        Parsed::Command(Command::Nick("bob".into()))
    );
    assert_eq!(c.send(""), empty(), "an empty line is ignored");
    assert_eq!(
        c.reply("!!"),
        ":threadchat 421 alice !! :Unknown command\r\n"
    );
    assert!(c.reply("PRIV-MSG x").contains(" 421 alice PRIV-MSG "));
}

#[test]
fn what_a_client_typed_comes_back_cut_short_and_every_reply_fits_512_bytes() {
    let mut c = Client::registered("alice");
    let long = "x".repeat(490);
    for line in [
        format!("JOIN {long}"),
        format!("TOPIC {long}"),
        "Q".repeat(490),
        format!("PRIVMSG {} :hi", vec!["a"; 200].join(",")),
    ] {
        let reply = c.reply(&line);
        assert!(reply.len() <= 512, "{} bytes: {reply:?}", reply.len());
        assert!(reply.contains('…'), "{reply:?}");
    }
    let mut e = IrcEncoder::new();
    let refusal = Says::Error {
        text: "name too long: use 1-24 letters, digits, - or _".into(),
        refusal: Refusal::BadName(long.clone()),
    };
    let lines = written(&mut e, refusal);
    assert!(lines.iter().all(|l| l.len() + 2 <= 512), "{lines:?}");
    assert!(
        lines[0].starts_with(":threadchat 432 * xxxxxxxx"),
        "{lines:?}"
    );
}

/// What the encoder writes for `says`, line by line.
fn written(encoder: &mut IrcEncoder, says: Says) -> Vec<String> {
    let mut out = Vec::new();
    encoder.line(&OutboundLine::new(says), &mut out);
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
    text.lines().map(str::to_string).collect()
}

fn welcomed(nick: &str) -> IrcEncoder {
    let mut encoder = IrcEncoder::new();
    let welcome = Says::Welcome {
        name: nick.into(),
        room: "lobby".into(),
        online: 3,
    };
    written(&mut encoder, welcome);
    encoder
}

#[test]
fn the_welcome_is_001_to_005_lusers_the_motd_and_a_join() {
    let mut encoder = IrcEncoder::new();
    let lines = written(
        &mut encoder,
        Says::Welcome {
            name: "alice".into(),
            room: "lobby".into(),
            online: 3,
        },
    );
    let codes: Vec<&str> = lines.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    let mut expected = vec!["001", "002", "003", "004", "005", "251", "255", "375"];
    expected.extend(["372"; MOTD.len()]);
    expected.extend(["376", "JOIN"]);
    assert_eq!(codes, expected, "{lines:#?}");
    assert_eq!(
        lines[0],
        ":threadchat 001 alice :Welcome to threadchat, alice"
    );
    for token in [
        "CASEMAPPING=ascii",
        "CHANTYPES=#",
        "NICKLEN=24",
        "CHANNELLEN=33",
    ] {
        assert!(lines[4].contains(token), "{token} in {}", lines[4]);
    }
    assert!(lines[5].contains("There are 3 users"), "{}", lines[5]);
    assert_eq!(
        lines.last().map(String::as_str),
        Some(":alice!alice@threadchat JOIN #lobby")
    );
}

#[test]
fn chat_actions_whispers_and_presence() {
    let mut e = welcomed("alice");
    let chat = Says::Chat {
        room: "rust".into(),
        from: "bob".into(),
        text: "hi".into(),
    };
    assert_eq!(
        written(&mut e, chat),
        [":bob!bob@threadchat PRIVMSG #rust :hi"]
    );
    let action = Says::Action {
        room: "rust".into(),
        from: "bob".into(),
        text: "waves".into(),
    };
    assert_eq!(
        written(&mut e, action),
        [":bob!bob@threadchat PRIVMSG #rust :\u{1}ACTION waves\u{1}"]
    );
    let whisper = Says::WhisperFrom {
        from: "bob".into(),
        text: "psst".into(),
    };
    assert_eq!(
        written(&mut e, whisper),
        [":bob!bob@threadchat PRIVMSG alice :psst"]
    );
    let echo = Says::WhisperTo {
        to: "bob".into(),
        text: "psst".into(),
    };
    assert!(written(&mut e, echo).is_empty(), "IRC echoes nothing");
    assert!(written(&mut e, Says::NamePrompt).is_empty());
    let presence = |change| Says::Presence {
        name: "bob".into(),
        room: "rust".into(),
        change,
    };
    assert_eq!(
        written(&mut e, presence(Change::Joined)),
        [":bob!bob@threadchat JOIN #rust"]
    );
    assert_eq!(
        written(&mut e, presence(Change::Parted)),
        [":bob!bob@threadchat PART #rust"]
    );
    assert_eq!(
        written(&mut e, presence(Change::Quit)),
        [":bob!bob@threadchat QUIT :left"]
    );
    let renamed = presence(Change::Renamed { new: "bo".into() });
    assert_eq!(written(&mut e, renamed), [":bob!bob@threadchat NICK :bo"]);
}

#[test]
fn entering_a_room_parts_the_last_and_a_rename_readdresses_what_follows() {
    let mut e = welcomed("alice");
    let entered = Says::Entered {
        room: "rust".into(),
        left: Some("lobby".into()),
        members: 2,
    };
    assert_eq!(
        written(&mut e, entered),
        [
            ":alice!alice@threadchat PART #lobby :went to #rust",
            ":alice!alice@threadchat JOIN #rust"
        ]
    );
    let renamed = Says::Renamed {
        old: "alice".into(),
        new: "al".into(),
    };
    assert_eq!(
        written(&mut e, renamed),
        [":alice!alice@threadchat NICK :al"]
    );
    assert_eq!(
        written(&mut e, Says::Notice("hello".into())),
        [":threadchat NOTICE al :hello"]
    );
}

#[test]
fn a_cut_list_or_a_long_who_ends_with_how_many_were_left_out() {
    let mut e = welcomed("alice");
    let cut = Says::Members {
        room: "rust".into(),
        names: vec!["alice".into()],
        more: 5,
        roster: Roster::Names,
    };
    assert_eq!(
        written(&mut e, cut),
        [
            ":threadchat 353 alice = #rust :alice",
            ":threadchat NOTICE alice :… and 5 more in #rust",
            ":threadchat 366 alice #rust :End of /NAMES list"
        ]
    );
    // A 352 is many times its name: WHO stops past a list's bound.
    let many: Vec<String> = (0..300).map(|n| format!("user{n:03}")).collect();
    let who = Says::Members {
        room: "big".into(),
        names: many,
        more: 0,
        roster: Roster::Who,
    };
    let lines = written(&mut e, who);
    let bytes: usize = lines.iter().map(|l| l.len() + 2).sum();
    assert!(bytes < 2 * protocol::MAX_LIST_BYTES, "{bytes} bytes of WHO");
    let shown = lines.iter().filter(|l| l.contains(" 352 ")).count();
    let tail = format!(
        ":threadchat NOTICE alice :… and {} more in #big",
        300 - shown
    );
    assert!(lines.contains(&tail), "expected {tail:?} in {lines:?}");
}

#[test]
fn lists_become_their_numerics() {
    let mut e = welcomed("alice");
    let names = vec!["alice".to_string(), "bob".to_string()];
    let members = |roster| Says::Members {
        room: "rust".into(),
        names: names.clone(),
        more: 0,
        roster,
    };
    assert_eq!(
        written(&mut e, members(Roster::Names)),
        [
            ":threadchat 353 alice = #rust :alice bob",
            ":threadchat 366 alice #rust :End of /NAMES list"
        ]
    );
    assert_eq!(
        written(&mut e, members(Roster::Who)),
        [
            ":threadchat 352 alice #rust alice threadchat threadchat alice H :0 alice",
            ":threadchat 352 alice #rust bob threadchat threadchat bob H :0 bob",
            ":threadchat 315 alice #rust :End of /WHO list"
        ]
    );
    let many: Vec<String> = (0..300).map(|n| format!("user{n:03}")).collect();
    let big = Says::Members {
        room: "big".into(),
        names: many.clone(),
        more: 0,
        roster: Roster::Names,
    };
    let lines = written(&mut e, big);
    let listed: Vec<&str> = (lines.iter())
        .filter_map(|l| l.strip_prefix(":threadchat 353 alice = #big :"))
        .flat_map(|l| l.split(' '))
        .collect();
    assert_eq!(listed, many, "every name, none cut in two");
    assert!(lines.iter().all(|l| l.len() + 2 <= 512));
    let rooms = Says::Rooms(vec![("lobby".into(), 3), ("rust".into(), 2)], 0);
    assert_eq!(
        written(&mut e, rooms),
        [
            ":threadchat 322 alice #lobby 3 :",
            ":threadchat 322 alice #rust 2 :",
            ":threadchat 323 alice :End of /LIST"
        ]
    );
    let whois = |found| Says::User {
        asked: "BOB".into(),
        found,
        lookup: Lookup::Whois,
    };
    assert_eq!(
        written(&mut e, whois(Some(("bob".into(), "rust".into())))),
        [
            ":threadchat 311 alice bob bob threadchat * :bob",
            ":threadchat 319 alice bob :#rust",
            ":threadchat 312 alice bob threadchat :threadchat",
            ":threadchat 318 alice bob :End of /WHOIS list"
        ]
    );
    assert_eq!(
        written(&mut e, whois(None)),
        [
            ":threadchat 401 alice BOB :No such nick/channel",
            ":threadchat 318 alice BOB :End of /WHOIS list"
        ]
    );
    let online = Says::Online(vec!["bob".into(), "carol".into()]);
    assert_eq!(
        written(&mut e, online),
        [":threadchat 303 alice :bob carol"]
    );
    let counts = written(
        &mut e,
        Says::Counts {
            online: 4,
            rooms: 2,
        },
    );
    assert_eq!(
        counts.last().map(String::as_str),
        Some(":threadchat 254 alice 2 :channels formed")
    );
}

#[test]
fn each_refusal_has_its_numeric_and_the_rest_are_notices() {
    let mut e = IrcEncoder::new();
    let error = |refusal| Says::Error {
        text: "why".into(),
        refusal,
    };
    for (refusal, expected) in [
        (Refusal::BadName("a!".into()), ":threadchat 432 * a! :why"),
        (Refusal::NameTaken("al".into()), ":threadchat 433 * al :why"),
        (Refusal::NotRegistered, ":threadchat 451 * :why"),
        (
            Refusal::NoSuchUser("zed".into()),
            ":threadchat 401 * zed :why",
        ),
        (
            Refusal::BadRoom("#a.b".into()),
            ":threadchat 403 * #a.b :why",
        ),
        (
            Refusal::NotInRoom("go".into()),
            ":threadchat 442 * #go :why",
        ),
        (
            Refusal::CannotSpeakIn("go".into()),
            ":threadchat 404 * #go :why",
        ),
        (Refusal::TooLong, ":threadchat 417 * :why"),
        (Refusal::Other, ":threadchat NOTICE * :why"),
    ] {
        assert_eq!(written(&mut e, error(refusal)), [expected]);
    }
    let drop_notice =
        OutboundLine::error("3 lines were dropped because your connection is too slow");
    let mut out = Vec::new();
    e.line(&drop_notice, &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        ":threadchat NOTICE * :3 lines were dropped because your connection is too slow\r\n"
    );
}

#[test]
fn a_long_line_from_nc_reaches_irc_in_pieces_that_fit() {
    let mut e = welcomed("alice");
    let text = "word ".repeat(200);
    let chat = Says::Chat {
        room: "lobby".into(),
        from: "bob".into(),
        text: text.trim_end().into(),
    };
    let lines = written(&mut e, chat);
    assert!(lines.len() >= 2);
    for line in &lines {
        assert!(line.len() + 2 <= 512, "{} bytes", line.len() + 2);
        assert!(line.starts_with(":bob!bob@threadchat PRIVMSG #lobby :word"));
    }
}

#[test]
fn pings_goodbyes_and_the_doors_own_lines() {
    let mut e = welcomed("alice");
    let mut out = Vec::new();
    e.ping(&mut out);
    e.goodbye(&mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "PING :threadchat\r\nERROR :Closing link: alice (threadchat)\r\n"
    );
    let door = Says::Door(":threadchat PONG threadchat :x\r\n".into());
    assert_eq!(written(&mut e, door), [":threadchat PONG threadchat :x"]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        let command = prop_oneof![
            Just("PRIVMSG"),
            Just("NOTICE"),
            Just("JOIN"),
            Just("PART"),
            Just("NICK"),
            Just("USER"),
            Just("CAP"),
            Just("WHO"),
            Just("WHOIS"),
            Just("NAMES"),
            Just("MODE"),
            Just("TOPIC"),
            Just("ISON"),
            Just("PING"),
            Just("X"),
        ];
        let word = "[#a-z0-9,:!\u{1}*-]{0,12}";
        (command, proptest::collection::vec(word, 0..5), "\\PC{0,40}")
            .prop_map(|(command, words, rest)| format!("{command} {} {rest}", words.join(" ")))
    }

    proptest! {
        /// Whatever a client sends, before or after registering, the door
        /// answers without panicking, and what it spells itself is whole
        /// IRC lines of at most 512 bytes.
        #[test]
        fn any_line_gets_an_answer_made_of_whole_irc_lines(
            lines in proptest::collection::vec(line(), 1..8),
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            named in any::<bool>(),
        ) {
            let mut c = if named { Client::registered("alice") } else { Client::new() };
            let noise = String::from_utf8_lossy(&bytes).into_owned();
            for line in lines.iter().chain([&noise]) {
                let mut pending = vec![c.send(line)];
                while let Some(parsed) = pending.pop() {
                    match parsed {
                        Parsed::Several(all) => pending.extend(all),
                        Parsed::Reply(text) => {
                            prop_assert!(text.ends_with("\r\n"), "{text:?}");
                            for reply in text.strip_suffix("\r\n").unwrap_or(&text).split("\r\n") {
                                prop_assert!(reply.len() + 2 <= irc::MAX_LINE);
                                prop_assert!(irc::parse(reply).is_ok(), "{reply:?}");
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
