//! The IRC door over real sockets, in raw IRC (tests/common/irc.rs):
//! registration with and without CAP, every command the door answers and
//! each error numeric, nc, IRC and browser users chatting in one room and
//! whispering each way, one room at a time, history on joining, the limits,
//! server pings, a slow IRC reader told of what it lost; and a real client,
//! WeeChat, chatting with an nc user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use threadchat::{Config, RateLimit, ServerHandle};

use crate::common::irc::IrcClient;
use crate::common::process::{tool_available, Process};
use crate::common::ws::WsClient;
use crate::common::{start_server, test_config, wait_until, Client, NoLine, DEADLINE};

fn irc_config() -> Config {
    Config {
        irc: Some("127.0.0.1:0".to_string()),
        ..test_config()
    }
}

fn irc_addr(server: &ServerHandle) -> std::net::SocketAddr {
    server.irc_addr().expect("the IRC door was asked for")
}

/// `bob` (IRC) goes from the lobby to `#room`, where `already` are.
fn join(bob: &mut IrcClient, room: &str, already: &str) {
    let nick = bob.nick.clone();
    bob.send(&format!("JOIN #{room}"));
    bob.expect(&format!(
        ":{nick}!{nick}@threadchat PART #lobby :went to #{room}"
    ));
    bob.expect(&format!(":{nick}!{nick}@threadchat JOIN #{room}"));
    bob.expect(&format!(":threadchat 353 {nick} = #{room} :{already}"));
    bob.expect(&format!(
        ":threadchat 366 {nick} #{room} :End of /NAMES list"
    ));
}

#[test]
fn registration_after_cap_ls_waits_for_cap_end_then_welcomes() {
    let server = start_server(irc_config());
    let mut alice = IrcClient::connect(irc_addr(&server), "alice");
    alice.send("CAP LS 302");
    alice.send("NICK alice");
    alice.send("USER alice 0 * :Alice Liddell");
    // Answered in order: a PONG straight after the CAP reply shows that no
    // welcome was queued in between.
    alice.send("PING :still-negotiating");
    alice.expect(":threadchat CAP * LS :");
    alice.expect(":threadchat PONG threadchat :still-negotiating");
    assert!(server.online().is_empty(), "registered before CAP END");
    alice.send("CAP END");
    alice.expect(":threadchat 001 alice :Welcome to threadchat, alice");
    alice.expect_prefix(":threadchat 002 alice :Your host is threadchat, running version ");
    alice.expect_prefix(":threadchat 003 alice :");
    alice.expect_prefix(":threadchat 004 alice threadchat threadchat-");
    let isupport = alice.expect_prefix(":threadchat 005 alice ");
    for token in [
        " CASEMAPPING=ascii ",
        " CHANTYPES=# ",
        " NICKLEN=24 ",
        " CHANNELLEN=33 ",
        " CHANLIMIT=#:1 ",
    ] {
        assert!(isupport.contains(token), "{token:?} in {isupport:?}");
    }
    alice.expect(":threadchat 251 alice :There are 1 users and 0 invisible on 1 servers");
    alice.expect(":threadchat 255 alice :I have 1 clients and 1 servers");
    alice.expect(":threadchat 375 alice :- threadchat Message of the Day -");
    let motd = alice.skip_until(":threadchat 376 alice :End of /MOTD command.");
    assert!(
        motd.iter()
            .all(|l| l.starts_with(":threadchat 372 alice :- ")),
        "{motd:?}"
    );
    alice.expect(":alice!alice@threadchat JOIN #lobby");
    alice.expect(":threadchat 353 alice = #lobby :alice");
    alice.expect(":threadchat 366 alice #lobby :End of /NAMES list");
    assert_eq!(server.online(), ["alice"]);
}

#[test]
fn user_before_nick_works_a_pass_is_ignored_and_an_nc_user_sees_the_arrival() {
    let server = start_server(irc_config());
    let mut carol = Client::register(server.local_addr(), "carol");
    let mut bob = IrcClient::connect(irc_addr(&server), "bob");
    bob.send("PASS hunter2");
    bob.send("USER bob 0 * :Bob");
    bob.send("NICK bob");
    bob.expect(":threadchat 001 bob :Welcome to threadchat, bob");
    bob.skip_until(":bob!bob@threadchat JOIN #lobby");
    bob.expect(":threadchat 353 bob = #lobby :bob carol");
    carol.expect("* bob joined");
}

#[test]
fn a_bad_nick_gets_432_a_taken_one_433_and_another_can_be_tried() {
    let server = start_server(irc_config());
    let mut alice = Client::register(server.local_addr(), "alice");
    let mut irc = IrcClient::connect(irc_addr(&server), "newcomer");
    irc.send("NICK al!ce");
    irc.expect(
        ":threadchat 432 * al!ce :name cannot contain '!': use 1-24 letters, digits, - or _",
    );
    irc.send(&format!("NICK {}", "n".repeat(25)));
    irc.expect_prefix(&format!(
        ":threadchat 432 * {} :name too long",
        "n".repeat(25)
    ));
    irc.send("NICK");
    irc.expect(":threadchat 431 * :No nickname given");
    irc.send("USER al 0 *");
    irc.expect(":threadchat 461 * USER :Not enough parameters");
    irc.send("PRIVMSG #lobby :hello?");
    irc.expect(":threadchat 451 * :You have not registered: send NICK and USER first");
    irc.send("USER al 0 * :Al");
    irc.send("NICK alice");
    irc.expect(":threadchat 433 * alice :name \"alice\" is taken, choose another");
    irc.send("NICK ALICE");
    irc.expect(":threadchat 433 * ALICE :name \"ALICE\" is taken, choose another");
    irc.send("NICK alice_");
    irc.expect(":threadchat 001 alice_ :Welcome to threadchat, alice_");
    alice.expect("* alice_ joined");
}

#[test]
fn nc_irc_and_browser_users_chat_in_one_room_and_whisper_each_way() {
    let server = start_server(Config {
        http: Some("127.0.0.1:0".to_string()),
        ..irc_config()
    });
    let web = server.web_addr().expect("the web door");
    let mut alice = Client::register(server.local_addr(), "alice");
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    alice.expect("* bob joined");
    let mut carol = WsClient::register(web, "carol");
    alice.expect("* carol joined");
    bob.expect(":carol!carol@threadchat JOIN #lobby");

    // All three into #rust, one door after the other.
    alice.send("/join rust");
    alice.expect("* you joined #rust; 1 here");
    bob.expect(":alice!alice@threadchat PART #lobby");
    carol.expect("* alice left");
    join(&mut bob, "rust", "alice bob");
    alice.expect("* bob joined");
    carol.expect("* bob left");
    carol.send("/join rust");
    carol.expect("* you joined #rust; 3 here");
    alice.expect("* carol joined");
    bob.expect(":carol!carol@threadchat JOIN #rust");

    alice.send("hi from nc");
    bob.expect(":alice!alice@threadchat PRIVMSG #rust :hi from nc");
    carol.expect("[rust] alice: hi from nc");
    bob.send("PRIVMSG #rust :hi from irc: with a colon");
    alice.expect("[rust] bob: hi from irc: with a colon");
    carol.expect("[rust] bob: hi from irc: with a colon");
    carol.send("hi from the browser");
    alice.expect("[rust] carol: hi from the browser");
    bob.expect(":carol!carol@threadchat PRIVMSG #rust :hi from the browser");
    bob.send("PRIVMSG #rust :\u{1}ACTION waves\u{1}");
    alice.expect("[rust] * bob waves");
    carol.expect("[rust] * bob waves");
    alice.send("/me nods");
    bob.expect(":alice!alice@threadchat PRIVMSG #rust :\u{1}ACTION nods\u{1}");
    carol.expect("[rust] * alice nods");
    bob.send("NOTICE #rust :a notice is a line too");
    alice.expect("[rust] bob: a notice is a line too");
    carol.expect("[rust] bob: a notice is a line too");

    // Whispers, each way.
    bob.send("PRIVMSG alice :psst from irc");
    alice.expect("[dm from bob] psst from irc");
    alice.send("/w bob psst from nc");
    alice.expect("[dm to bob] psst from nc");
    bob.expect(":alice!alice@threadchat PRIVMSG bob :psst from nc");
    carol.send("/w BOB psst from the browser");
    carol.expect("[dm to bob] psst from the browser");
    bob.expect(":carol!carol@threadchat PRIVMSG bob :psst from the browser");
    bob.send("PRIVMSG Carol :psst back");
    carol.expect("[dm from bob] psst back");
    // Nothing came back to bob of his own lines: the next line is the PONG.
    bob.send("PING :done");
    bob.expect(":threadchat PONG threadchat :done");
}

#[test]
fn joining_a_second_channel_parts_the_first_and_an_autojoin_ends_in_the_last() {
    let server = start_server(irc_config());
    let mut watcher = Client::register(server.local_addr(), "watcher");
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    watcher.expect("* bob joined");
    bob.send("JOIN #a,#b,#c");
    let mut from = "lobby";
    for room in ["a", "b", "c"] {
        bob.expect(&format!(
            ":bob!bob@threadchat PART #{from} :went to #{room}"
        ));
        bob.expect(&format!(":bob!bob@threadchat JOIN #{room}"));
        bob.expect(&format!(":threadchat 353 bob = #{room} :bob"));
        bob.expect(&format!(":threadchat 366 bob #{room} :End of /NAMES list"));
        from = room;
    }
    watcher.expect("* bob left");
    bob.send("NAMES");
    bob.expect(":threadchat 353 bob = #c :bob");
    bob.expect(":threadchat 366 bob #c :End of /NAMES list");
    // #a and #b went with their last member.
    watcher.send("/rooms");
    watcher.expect("* rooms (2): lobby (1), c (1)");
    bob.send("JOIN #C");
    bob.expect(":threadchat NOTICE bob :you are already in #c");
    bob.send("JOIN 0");
    bob.expect(":bob!bob@threadchat PART #c :went to #lobby");
    bob.expect(":bob!bob@threadchat JOIN #lobby");
    bob.expect(":threadchat 353 bob = #lobby :bob watcher");
    bob.expect(":threadchat 366 bob #lobby :End of /NAMES list");
    watcher.expect("* bob joined");
}

#[test]
fn part_and_messages_where_one_is_not_are_refused_with_their_numerics() {
    let server = start_server(irc_config());
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    join(&mut bob, "rust", "bob");
    bob.send("PART #go");
    bob.expect(":threadchat 442 bob #go :you are not in #go");
    bob.send("PRIVMSG #go :hello?");
    bob.expect(":threadchat 404 bob #go :you are not in #go: join it to speak there");
    bob.send("PRIVMSG zed :hi");
    bob.expect(":threadchat 401 bob zed :no user named \"zed\" is online");
    bob.send("PRIVMSG bob :me");
    bob.expect(":threadchat NOTICE bob :you cannot whisper to yourself");
    bob.send("JOIN #bad.name");
    bob.expect(
        ":threadchat 403 bob #bad.name :room name cannot contain '.': use 1-32 letters, digits, - or _",
    );
    bob.send("JOIN rust");
    bob.expect(":threadchat 403 bob rust :No such channel: rooms start with #");
    bob.send("PART #rust :bye");
    bob.expect(":bob!bob@threadchat PART #rust :went to #lobby");
    bob.expect(":bob!bob@threadchat JOIN #lobby");
    bob.expect(":threadchat 353 bob = #lobby :bob");
    bob.expect(":threadchat 366 bob #lobby :End of /NAMES list");
    bob.send("PART #lobby");
    bob.expect(":threadchat NOTICE bob :you are already in #lobby");
}

#[test]
fn names_who_whois_ison_list_lusers_topic_mode_motd_and_help() {
    let server = start_server(irc_config());
    let mut alice = Client::register(server.local_addr(), "alice");
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    alice.expect("* bob joined");
    bob.send("NAMES #LOBBY");
    bob.expect(":threadchat 353 bob = #lobby :alice bob");
    bob.expect(":threadchat 366 bob #lobby :End of /NAMES list");
    bob.send("WHO #lobby");
    bob.expect(":threadchat 352 bob #lobby alice threadchat threadchat alice H :0 alice");
    bob.expect(":threadchat 352 bob #lobby bob threadchat threadchat bob H :0 bob");
    bob.expect(":threadchat 315 bob #lobby :End of /WHO list");
    bob.send("WHO Alice");
    bob.expect(":threadchat 352 bob #lobby alice threadchat threadchat alice H :0 alice");
    bob.expect(":threadchat 315 bob Alice :End of /WHO list");
    bob.send("WHOIS ALICE");
    bob.expect(":threadchat 311 bob alice alice threadchat * :alice");
    bob.expect(":threadchat 319 bob alice :#lobby");
    bob.expect(":threadchat 312 bob alice threadchat :threadchat");
    bob.expect(":threadchat 318 bob alice :End of /WHOIS list");
    bob.send("WHOIS zed");
    bob.expect(":threadchat 401 bob zed :No such nick/channel");
    bob.expect(":threadchat 318 bob zed :End of /WHOIS list");
    bob.send("ISON alice zed BOB");
    bob.expect(":threadchat 303 bob :alice bob");
    alice.send("/join rust");
    alice.expect("* you joined #rust; 1 here");
    bob.expect(":alice!alice@threadchat PART #lobby");
    bob.send("LIST");
    bob.expect(":threadchat 322 bob #lobby 1 :");
    bob.expect(":threadchat 322 bob #rust 1 :");
    bob.expect(":threadchat 323 bob :End of /LIST");
    bob.send("NAMES #rust,#nowhere");
    bob.expect(":threadchat 353 bob = #rust :alice");
    bob.expect(":threadchat 366 bob #rust :End of /NAMES list");
    bob.expect(":threadchat 366 bob #nowhere :End of /NAMES list");
    bob.send("LUSERS");
    bob.expect(":threadchat 251 bob :There are 2 users and 0 invisible on 1 servers");
    bob.expect(":threadchat 255 bob :I have 2 clients and 1 servers");
    bob.expect(":threadchat 254 bob 2 :channels formed");
    bob.send("TOPIC #lobby");
    bob.expect(":threadchat 331 bob #lobby :No topic is set");
    bob.send("TOPIC #lobby :chat here");
    bob.expect(":threadchat 482 bob #lobby :threadchat rooms have no topic");
    bob.send("MODE #lobby");
    bob.expect(":threadchat 324 bob #lobby +n");
    bob.send("MODE #lobby b");
    bob.expect(":threadchat 368 bob #lobby :End of channel ban list");
    bob.send("MODE bob +i");
    bob.expect(":threadchat 221 bob +");
    bob.send("MOTD");
    bob.expect(":threadchat 375 bob :- threadchat Message of the Day -");
    bob.skip_until(":threadchat 376 bob :End of /MOTD command.");
    bob.send("HELP");
    bob.expect(":threadchat NOTICE bob :commands:");
    bob.expect_prefix(":threadchat NOTICE bob :  /users ");
}

#[test]
fn each_error_numeric() {
    let server = start_server(irc_config());
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    let too_many = (0..9)
        .map(|n| format!("u{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let cases = [
        (
            "FROBNICATE x",
            ":threadchat 421 bob FROBNICATE :Unknown command".to_string(),
        ),
        (
            "JOIN",
            ":threadchat 461 bob JOIN :Not enough parameters".into(),
        ),
        (
            "PART",
            ":threadchat 461 bob PART :Not enough parameters".into(),
        ),
        (
            "WHO",
            ":threadchat 461 bob WHO :Not enough parameters".into(),
        ),
        (
            "ISON",
            ":threadchat 461 bob ISON :Not enough parameters".into(),
        ),
        (
            "TOPIC",
            ":threadchat 461 bob TOPIC :Not enough parameters".into(),
        ),
        (
            "MODE",
            ":threadchat 461 bob MODE :Not enough parameters".into(),
        ),
        (
            "PING",
            ":threadchat 461 bob PING :Not enough parameters".into(),
        ),
        (
            "CAP",
            ":threadchat 461 bob CAP :Not enough parameters".into(),
        ),
        (
            "CAP FOO",
            ":threadchat 410 bob FOO :Invalid CAP command".into(),
        ),
        ("NICK", ":threadchat 431 bob :No nickname given".into()),
        ("WHOIS", ":threadchat 431 bob :No nickname given".into()),
        (
            "PRIVMSG",
            ":threadchat 411 bob :No recipient given (PRIVMSG)".into(),
        ),
        (
            "PRIVMSG #lobby",
            ":threadchat 412 bob :No text to send".into(),
        ),
        (
            "USER b 0 * :b",
            ":threadchat 462 bob :You may not reregister".into(),
        ),
        (
            "MODE alice",
            ":threadchat 502 bob :Can't change mode for other users".into(),
        ),
        (
            "PRIVMSG #lobby :\u{1b}[2Jgotcha",
            ":threadchat NOTICE bob :line not sent: it contains the control character U+001B"
                .into(),
        ),
        (
            "PRIVMSG alice :\u{1}VERSION\u{1}",
            ":threadchat NOTICE bob :CTCP VERSION is not supported here; only ACTION (/me)".into(),
        ),
    ];
    for (line, expected) in &cases {
        bob.send(line);
        bob.expect(expected);
    }
    bob.send(&format!("PRIVMSG {too_many} :hi"));
    bob.expect(&format!(
        ":threadchat 407 bob {too_many} :Too many targets: at most 8"
    ));
    bob.send(&format!("PRIVMSG #lobby :{}", "x".repeat(600)));
    bob.expect(":threadchat 417 bob :line too long (max 510 bytes: IRC's 512 with \\r\\n)");
    bob.send_raw(b"PRIVMSG #lobby :caf\xe9\r\n");
    bob.expect(":threadchat NOTICE bob :line is not valid UTF-8");
    // Every one was answered, and the connection is still good.
    bob.send("PING :still here");
    bob.expect(":threadchat PONG threadchat :still here");
}

#[test]
fn renames_and_quits_reach_every_door_as_nick_and_quit() {
    let server = start_server(irc_config());
    let irc = irc_addr(&server);
    let mut alice = Client::register(server.local_addr(), "alice");
    let mut bob = IrcClient::register(irc, "bob");
    alice.expect("* bob joined");
    let mut carol = IrcClient::register(irc, "carol");
    alice.expect("* carol joined");
    bob.expect(":carol!carol@threadchat JOIN #lobby");

    bob.send("NICK robert");
    bob.expect(":bob!bob@threadchat NICK :robert");
    bob.nick = "robert".to_string();
    alice.expect("* bob is now known as robert");
    carol.expect(":bob!bob@threadchat NICK :robert");
    bob.send("NICK Alice");
    bob.expect(":threadchat 433 robert Alice :name \"Alice\" is taken, choose another");
    bob.send("NICK b@d");
    bob.expect_numeric("432");
    alice.send("/nick alicia");
    alice.expect("* you are now alicia");
    bob.expect(":alice!alice@threadchat NICK :alicia");
    carol.expect(":alice!alice@threadchat NICK :alicia");
    bob.send("PRIVMSG alicia :found you");
    alice.expect("[dm from robert] found you");

    bob.send("QUIT :off to bed");
    bob.expect(":threadchat NOTICE robert :bye robert");
    bob.expect("ERROR :Closing link: robert (threadchat)");
    bob.expect_closed();
    alice.expect("* robert left");
    carol.expect(":robert!robert@threadchat QUIT :left");
}

#[test]
fn history_on_join_comes_before_live_lines_with_no_gap_and_no_duplicate() {
    /// Lines the talker still sends once the joiner is in, so that live
    /// lines certainly follow the replay.
    const AFTER_JOIN: usize = 300;
    const MAX_LINES: usize = 20_000;
    let server = start_server(Config {
        history: 50,
        max_backlog: 64 << 20,
        ..irc_config()
    });
    let mut talker = Client::register(server.local_addr(), "talker");
    talker.send("/join busy");
    talker.expect("* you joined #busy; 1 here");
    let mut watcher = Client::register(server.local_addr(), "watcher");
    watcher.send("/join busy");
    watcher.expect("* you joined #busy; 2 here");
    let mut joiner = IrcClient::register(irc_addr(&server), "joiner");
    let joined = Arc::new(AtomicBool::new(false));
    let sending = thread::spawn({
        let joined = joined.clone();
        move || {
            let mut n = 0;
            while !joined.load(Ordering::SeqCst) && n < MAX_LINES - AFTER_JOIN {
                n += 1;
                talker.send(&n.to_string());
            }
            for _ in 0..AFTER_JOIN {
                n += 1;
                talker.send(&n.to_string());
            }
            talker.send("end");
            // Handed back, not dropped: closing a socket with unread data
            // sends a reset, which may overtake "end".
            (n, talker)
        }
    });
    // Join once the room has said more than its history keeps.
    watcher.skip_until("[busy] talker: 100");
    joiner.send("JOIN #busy");
    joiner.expect(":joiner!joiner@threadchat PART #lobby :went to #busy");
    joiner.expect(":joiner!joiner@threadchat JOIN #busy");
    joined.store(true, Ordering::SeqCst);
    joiner.expect(":threadchat 353 joiner = #busy :joiner talker watcher");
    joiner.expect(":threadchat 366 joiner #busy :End of /NAMES list");
    joiner.expect(":threadchat NOTICE joiner :last 50 messages in #busy");
    let (last, _talker) = sending.join().expect("the talker");
    let mut numbers = Vec::new();
    loop {
        let line = joiner.line();
        let text = line
            .strip_prefix(":talker!talker@threadchat PRIVMSG #busy :")
            .unwrap_or_else(|| panic!("expected the talker's lines only, got {line:?}"));
        if text == "end" {
            break;
        }
        numbers.push(text.parse::<usize>().expect("a number"));
    }
    let first = numbers[0];
    let expected: Vec<usize> = (first..=last).collect();
    assert_eq!(
        numbers, expected,
        "a gap or a repeat between replay and live"
    );
    assert!(numbers.len() >= 50 + AFTER_JOIN, "{} lines", numbers.len());
}

#[test]
fn a_long_line_from_nc_reaches_irc_in_pieces_of_at_most_512_bytes() {
    let server = start_server(irc_config());
    let mut alice = Client::register(server.local_addr(), "alice");
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    alice.expect("* bob joined");
    let words: Vec<String> = (0..200).map(|n| format!("w{n:03}")).collect();
    let text = words.join(" ");
    assert!(text.len() > 512 && text.len() <= 1024);
    alice.send(&text);
    let head = ":alice!alice@threadchat PRIVMSG #lobby :";
    let mut pieces = Vec::new();
    while pieces.join(" ") != text {
        let line = bob.line();
        assert!(line.len() + 2 <= 512, "{} bytes: {line:?}", line.len() + 2);
        let piece = line
            .strip_prefix(head)
            .unwrap_or_else(|| panic!("{line:?}"));
        pieces.push(piece.to_string());
        assert!(pieces.len() <= 3, "{pieces:?}");
    }
    assert!(pieces.len() >= 2);
}

#[test]
fn the_rate_limit_and_flood_control_answer_with_notices() {
    // Five lines an hour: NICK and USER are two of them.
    let limit = RateLimit {
        lines: 5,
        per: Duration::from_secs(3600),
    };
    let server = start_server(Config {
        rate_limit: Some(limit),
        ..irc_config()
    });
    let mut alice = Client::register(server.local_addr(), "alice");
    let mut mallory = IrcClient::register(irc_addr(&server), "mallory");
    alice.expect("* mallory joined");
    for n in 1..=3 {
        mallory.send(&format!("PRIVMSG #lobby :flood {n}"));
        alice.expect(&format!("[lobby] mallory: flood {n}"));
    }
    for n in 4..29 {
        mallory.send(&format!("PRIVMSG #lobby :flood {n}"));
        mallory.expect(":threadchat NOTICE mallory :slow down: at most 5 lines per 3600 s");
    }
    mallory.send("PRIVMSG #lobby :one too many");
    mallory.expect(
        ":threadchat NOTICE mallory :disconnected for flooding: more than 25 lines over the rate limit",
    );
    mallory.expect("ERROR :Closing link: mallory (threadchat)");
    mallory.expect_closed();
    alice.expect("* mallory left");
}

#[test]
fn a_quiet_irc_client_is_pinged_and_one_that_never_answers_is_let_go() {
    let server = start_server(Config {
        ping_after: Duration::from_millis(500),
        ..irc_config()
    });
    let irc = irc_addr(&server);
    let mut watcher = Client::register(server.local_addr(), "watcher");
    let mut answers = IrcClient::register(irc, "answers");
    watcher.expect("* answers joined");
    let mut silent = IrcClient::register(irc, "silent");
    watcher.expect("* silent joined");
    silent.expect("PING :threadchat");
    // `answers` answers every ping until `silent`, which does not, is gone.
    let deadline = Instant::now() + DEADLINE;
    let mut pongs = 0;
    loop {
        assert!(Instant::now() < deadline, "silent was never let go");
        match answers.try_line(Duration::from_millis(20)) {
            Ok(line) if line == "PING :threadchat" => {
                answers.send("PONG :threadchat");
                pongs += 1;
            }
            Ok(line) => assert!(
                [
                    ":silent!silent@threadchat JOIN #lobby",
                    ":silent!silent@threadchat QUIT :left"
                ]
                .contains(&line.as_str()),
                "answers: unexpected {line:?}"
            ),
            Err(NoLine::TimedOut) => {}
            Err(other) => panic!("answers lost its connection: {other:?}"),
        }
        match watcher.try_line(Duration::from_millis(20)) {
            Ok(line) if line == "* silent left" => break,
            Ok(line) => panic!("watcher: unexpected {line:?}"),
            Err(_) => {}
        }
    }
    assert!(pongs >= 1, "answers was pinged while silent went quiet");
    // Pinged once or twice, then let go.
    let pings = silent.skip_until("ERROR :Closing link: silent (threadchat)");
    assert!(pings.iter().all(|l| l == "PING :threadchat"), "{pings:?}");
    silent.expect_closed();
    watcher.send("still here?");
    loop {
        match answers.line().as_str() {
            "PING :threadchat" => answers.send("PONG :threadchat"),
            ":silent!silent@threadchat QUIT :left" | ":silent!silent@threadchat JOIN #lobby" => {}
            line => {
                assert_eq!(
                    line,
                    ":watcher!watcher@threadchat PRIVMSG #lobby :still here?"
                );
                break;
            }
        }
    }
}

#[test]
fn a_slow_irc_reader_loses_lines_alone_and_is_told_how_many() {
    let server = start_server(Config {
        max_backlog: 64 * 1024,
        // Long enough that the stuck client is not disconnected mid-test.
        write_timeout: Duration::from_secs(120),
        queue_full_timeout: Duration::from_secs(120),
        ..irc_config()
    });
    let mut reader = Client::register(server.local_addr(), "reader");
    let mut stuck = IrcClient::register(irc_addr(&server), "stuck");
    reader.expect("* stuck joined");
    let mut sender = Client::register(server.local_addr(), "sender");
    reader.expect("* sender joined");
    stuck.expect(":sender!sender@threadchat JOIN #lobby");
    // `stuck` reads nothing from here; `reader` reads every batch.
    let padding = "x".repeat(400);
    let mut sent = 0;
    while server.stats().lines_dropped == 0 {
        assert!(sent < 100_000, "no line dropped after {sent} lines");
        for n in sent..sent + 50 {
            sender.send(&format!("{n} {padding}"));
        }
        for n in sent..sent + 50 {
            reader.expect(&format!("[lobby] sender: {n} {padding}"));
        }
        sent += 50;
    }
    reader.send("/who");
    reader.expect("* in #lobby (3): reader, sender, stuck");
    // Now `stuck` reads again. Probes go out until one arrives: a probe
    // sent while its queue was still full is dropped too. The notice comes
    // before any probe that gets through.
    let mut told: Option<u64> = None;
    let said = ":sender!sender@threadchat PRIVMSG #lobby :";
    for probe in 0..1000 {
        sender.send(&format!("probe {probe}"));
        let expected = format!("{said}probe {probe}");
        let arrived = loop {
            match stuck.try_line(Duration::from_millis(300)) {
                Ok(line) if line.starts_with(":threadchat NOTICE stuck :") => {
                    let count = (line.strip_prefix(":threadchat NOTICE stuck :"))
                        .and_then(|rest| {
                            rest.strip_suffix(
                                " lines were dropped because your connection is too slow",
                            )
                        })
                        .and_then(|n| n.parse::<u64>().ok())
                        .unwrap_or_else(|| panic!("unexpected notice {line:?}"));
                    assert!(told.is_none(), "told twice: {line:?}");
                    told = Some(count);
                }
                Ok(line) if line == expected => break true,
                Ok(line) if line.starts_with(&format!("{said}probe ")) => {
                    assert!(told.is_some(), "a probe came before the notice: {line:?}");
                }
                Ok(line) => assert!(
                    line.starts_with(said),
                    "unexpected line for stuck: {line:?}"
                ),
                Err(NoLine::TimedOut) => break false,
                Err(other) => panic!("stuck lost its connection: {other:?}"),
            }
        };
        if arrived {
            break;
        }
    }
    assert!(
        told.is_some_and(|count| count >= 1),
        "never told of the drops"
    );
}

#[test]
fn shutdown_tells_irc_clients_with_a_notice_and_an_error() {
    let server = start_server(irc_config());
    let mut bob = IrcClient::register(irc_addr(&server), "bob");
    server.shutdown();
    bob.expect(":threadchat NOTICE bob :server shutting down");
    bob.expect("ERROR :Closing link: bob (threadchat)");
    bob.expect_closed();
}

#[test]
fn tls_or_http_to_the_irc_port_is_told_and_closed() {
    let server = start_server(irc_config());
    let irc = irc_addr(&server);
    let mut tls = IrcClient::connect(irc, "tls");
    tls.send_raw(&[0x16, 0x03, 0x01, 0x02, 0x00]);
    tls.expect_prefix(":threadchat NOTICE * :this is a plain-text threadchat chat server, not TLS");
    tls.expect("ERROR :Closing link: * (threadchat)");
    tls.expect_closed();
    let mut browser = IrcClient::connect(irc, "browser");
    browser.send("GET / HTTP/1.1");
    browser
        .expect_prefix(":threadchat NOTICE * :this is a threadchat chat server, not a web server");
}

/// A WeeChat (weechat-headless, driven by its own command line and its
/// FIFO, read through its log files) connects, joins #rust, sees a line
/// from an nc user and sends one back.
#[test]
fn weechat_joins_sees_an_nc_users_line_and_answers() {
    if !tool_available("weechat-headless", "--version", "weechat-headless") {
        return;
    }
    let server = start_server(irc_config());
    let irc = irc_addr(&server);
    let dir = std::env::temp_dir().join(format!("threadchat-weechat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("WeeChat's directory");
    let logs = dir.join("logs");
    let commands = [
        "/set logger.file.flush_delay 0".to_string(),
        format!("/set logger.file.path {}", logs.display()),
        format!("/server add tc {}/{}", irc.ip(), irc.port()),
        "/set irc.server.tc.nicks wee".to_string(),
        "/set irc.server.tc.autojoin #rust".to_string(),
        "/connect tc".to_string(),
    ];
    let weechat = Process::spawn(
        Command::new("weechat-headless")
            .arg("--dir")
            .arg(&dir)
            .args(["--run", &commands.join(";")]),
    );
    let mut alice = Client::register(server.local_addr(), "alice");
    alice.send("/join rust");
    // WeeChat may be anywhere on its way in: not yet here, in the lobby,
    // or already in #rust.
    let joined = loop {
        let line = alice.line();
        if line.starts_with("* you joined #rust;") {
            break line;
        }
        assert!(line.starts_with("* wee "), "{line:?}");
    };
    if joined == "* you joined #rust; 1 here" {
        alice.skip_until("* wee joined");
    } else {
        assert_eq!(
            joined, "* you joined #rust; 2 here",
            "WeeChat is there first"
        );
    }
    alice.send("hello wee, from nc");
    let log = logs.join("irc.tc.#rust.weechatlog");
    wait_until(
        "the nc user's line in WeeChat's log of #rust",
        || std::fs::read_to_string(&log).unwrap_or_default(),
        |text| text.contains("alice\thello wee, from nc"),
    );
    let fifo = wait_until("WeeChat's FIFO", || fifo_in(&dir), Option::is_some);
    let fifo = fifo.expect("found above");
    std::fs::write(&fifo, "irc.tc.#rust *hello alice, from WeeChat\n").expect("write to the FIFO");
    alice.expect("[rust] wee: hello alice, from WeeChat");
    // Gone before its directory is, so that it writes nothing more there.
    drop(weechat);
    let _ = std::fs::remove_dir_all(&dir);
}

/// WeeChat's FIFO, `weechat_fifo_PID` in its directory.
fn fifo_in(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    (entries.flatten()).map(|entry| entry.path()).find(|path| {
        (path.file_name().and_then(|n| n.to_str())).is_some_and(|n| n.starts_with("weechat_fifo"))
    })
}
