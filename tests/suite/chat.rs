//! The core protocol over real sockets: registration, chat, commands, leaving.

use crate::common::{register_all, start_server, test_config, wait_until, Client};

#[test]
fn registration_greets_prompts_and_welcomes() {
    let server = start_server(test_config());
    let mut alice = Client::connect(server.local_addr(), "alice");
    alice.expect_greeting();
    alice.send("alice");
    alice.expect("* welcome alice! you are in lobby; 1 online. /help lists the commands");

    let mut bob = Client::connect(server.local_addr(), "bob");
    bob.expect_greeting();
    // Spaces around the name are forgiven; a `\r\n` ending (telnet, nc -C) too.
    bob.send_raw(b"  bob \r\n");
    bob.expect("* welcome bob! you are in lobby; 2 online. /help lists the commands");
    alice.expect("* bob joined");
}

#[test]
fn bad_names_are_refused_with_the_reason_and_the_prompt_again() {
    let server = start_server(test_config());
    let mut client = Client::connect(server.local_addr(), "newcomer");
    client.expect_greeting();
    let prompt = "* choose a name (1-24 letters, digits, - or _):";

    client.send("al ice");
    client.expect("! name cannot contain ' ': use 1-24 letters, digits, - or _");
    client.expect(prompt);
    client.send(&"x".repeat(25));
    client.expect("! name too long: use 1-24 letters, digits, - or _");
    client.expect(prompt);
    client.send("bob!");
    client.expect("! name cannot contain '!': use 1-24 letters, digits, - or _");
    client.expect(prompt);
    client.send("/users");
    client.expect("! choose a name first (1-24 letters, digits, - or _)");
    client.expect(prompt);
    // Unknown or mistyped commands get the same answer before a name.
    for command in ["/bogus", "/w", "/ quit"] {
        client.send(command);
        client.expect("! choose a name first (1-24 letters, digits, - or _)");
        client.expect(prompt);
    }
    // An empty line is ignored: the next answer is for the next name.
    client.send("");
    client.send("fine_name-2");
    client.expect_prefix("* welcome fine_name-2! you are in lobby;");
}

#[test]
fn names_are_unique_ignoring_case_and_the_loser_can_retry() {
    let server = start_server(test_config());
    let _alice = Client::register(server.local_addr(), "alice");
    let mut second = Client::connect(server.local_addr(), "second");
    second.expect_greeting();
    second.send("ALICE");
    second.expect("! name \"ALICE\" is taken, choose another");
    second.expect("* choose a name (1-24 letters, digits, - or _):");
    second.send("alice2");
    second.expect_prefix("* welcome alice2!");
}

#[test]
fn a_line_goes_to_everyone_else_and_is_not_echoed() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob, mut carol] = register_all(addr, ["alice", "bob", "carol"]);

    alice.send("hello everyone");
    bob.expect("[lobby] alice: hello everyone");
    carol.expect("[lobby] alice: hello everyone");
    // Had alice been echoed, the echo would come before this reply.
    alice.send("/users");
    alice.expect("* online (3): alice, bob, carol");
}

#[test]
fn one_senders_lines_arrive_complete_and_in_order() {
    const LINES: usize = 1000;
    // The whole burst reaches the manager within a millisecond or two,
    // often before a receiver's writer thread has even been scheduled. The
    // default backlog (256 KiB) holds it all: a client that reads loses
    // nothing to a burst.
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [r0, r1, r2, mut sender] = register_all(addr, ["r0", "r1", "r2", "sender"]);
    let mut receivers = [r0, r1, r2];
    let batch: String = (0..LINES).map(|n| format!("line {n}\n")).collect();
    sender.send_raw(batch.as_bytes());

    for receiver in &mut receivers {
        for n in 0..LINES {
            receiver.expect(&format!("[lobby] sender: line {n}"));
        }
    }
    let stats = server.stats();
    assert_eq!(stats.lines_dropped, 0, "{stats:?}");
    assert!(stats.messages_in >= LINES as u64, "{stats:?}");
}

#[test]
fn users_lists_everyone_sorted() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut zed, _amy, _bo] = register_all(addr, ["Zed", "amy", "Bo"]);
    zed.send("/users");
    zed.expect("* online (3): amy, Bo, Zed");
}

#[test]
fn whispers_reach_one_person_and_confirm_to_the_sender() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob, mut carol] = register_all(addr, ["alice", "bob", "carol"]);

    alice.send("/w BOB meet at  noon");
    bob.expect("[dm from alice] meet at  noon");
    alice.expect("[dm to bob] meet at  noon");
    alice.send("/msg carol hi");
    carol.expect("[dm from alice] hi");
    alice.expect("[dm to carol] hi");
    // Nobody else saw the whispers: carol's next line is her own reply.
    carol.send("/users");
    carol.expect("* online (3): alice, bob, carol");
}

#[test]
fn whisper_errors_are_told_to_the_sender_only() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);

    alice.send("/w nobody hello");
    alice.expect("! no user named \"nobody\" is online");
    alice.send("/w bob");
    alice.expect("! usage: /w NAME TEXT");
    alice.send("/msg bob   ");
    alice.expect("! usage: /msg NAME TEXT");
    alice.send("/w");
    alice.expect("! usage: /w NAME TEXT");
    alice.send("/w Alice talking to myself");
    alice.expect("! you cannot whisper to yourself");
    bob.send("/users");
    bob.expect("* online (2): alice, bob");
}

#[test]
fn nick_renames_announces_and_frees_the_old_name() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);

    alice.send("/nick alicia");
    alice.expect("* you are now alicia");
    bob.expect("* alice is now known as alicia");
    bob.send("/users");
    bob.expect("* online (2): alicia, bob");
    bob.send("hi");
    alice.expect("[lobby] bob: hi");
    bob.send("/w alicia psst");
    alice.expect("[dm from bob] psst");
    bob.expect("[dm to alicia] psst");

    // The old name is free again.
    let mut other = Client::register(addr, "alice");
    bob.expect("* alice joined");
    alice.expect("* alice joined");
    other.send("/users");
    other.expect("* online (3): alice, alicia, bob");

    // Changing only the capitals is allowed and announced.
    bob.send("/nick BOB");
    bob.expect("* you are now BOB");
    alice.expect("* bob is now known as BOB");
}

#[test]
fn nick_errors() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, _bob] = register_all(addr, ["alice", "bob"]);

    alice.send("/nick Bob");
    alice.expect("! name \"Bob\" is taken, choose another");
    alice.send("/nick bad name");
    alice.expect("! usage: /nick NEW");
    alice.send("/nick");
    alice.expect("! usage: /nick NEW");
    alice.send("/nick b@d");
    alice.expect("! name cannot contain '@': use 1-24 letters, digits, - or _");
    alice.send("/nick alice");
    alice.expect("! you are already called alice");
    alice.send("/users");
    alice.expect("* online (2): alice, bob");
}

#[test]
fn me_sends_an_action_to_the_room() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);
    alice.send("/me waves hello");
    bob.expect("[lobby] * alice waves hello");
    alice.send("/me");
    alice.expect("! usage: /me TEXT");
}

#[test]
fn stats_reply_is_one_line_with_the_counters() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);
    alice.send("one");
    bob.expect("[lobby] alice: one");
    bob.send("/stats");
    let line = bob.expect_prefix("* stats: 2 online, 2 connections, 1 messages in, ");
    assert!(
        line.contains(" lines delivered, 0 dropped, 0 refused, up "),
        "{line}"
    );
    // Then how each lock has been used (numbers vary; their form does not).
    let locks = line
        .split("; locks: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no locks in {line}"));
    let words: Vec<&str> = locks.split(' ').collect();
    assert_eq!(
        (words[0], words[2], words[4], words[5], words[7], words[9]),
        ("clients", "taken,", "waited;", "stats", "taken,", "waited"),
        "{line}"
    );
}

#[test]
fn help_lists_the_commands_and_unknown_commands_are_named() {
    let server = start_server(test_config());
    let mut alice = Client::register(server.local_addr(), "alice");
    alice.send("/help");
    alice.expect("* commands:");
    // One `* ` line per entry of the help table, after "commands:".
    let count = threadchat::protocol::HELP.len() - 1;
    let lines: Vec<String> = (0..count).map(|_| alice.line()).collect();
    for command in [
        "/users",
        "/who",
        "/join ROOM",
        "/leave",
        "/rooms",
        "/groups",
        "/w NAME TEXT",
        "/me",
        "/nick",
        "/stats",
        "/help",
        "/quit",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("*   ") && l.contains(command)),
            "/help should mention {command}: {lines:#?}"
        );
    }
    alice.send("/dance now");
    alice.expect("! unknown command /dance, try /help");
    alice.send("/help me");
    alice.expect("! usage: /help");
    alice.send("//slash at the start");
    alice.send("/users");
    alice.expect("* online (1): alice");
}

#[test]
fn quit_says_goodbye_closes_and_is_announced() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);

    bob.send("/quit");
    bob.expect("* bye bob");
    bob.expect_closed();
    alice.expect("* bob left");
    alice.send("/users");
    alice.expect("* online (1): alice");
    wait_until(
        "the server to count one open connection",
        || server.stats().connections_open,
        |open| *open == 1,
    );
}

#[test]
fn quit_works_before_choosing_a_name() {
    let server = start_server(test_config());
    let mut shy = Client::connect(server.local_addr(), "shy");
    shy.expect_greeting();
    shy.send("/quit");
    shy.expect("* bye");
    shy.expect_closed();
}

#[test]
fn an_abrupt_disconnect_is_announced_and_frees_the_name() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, bob] = register_all(addr, ["alice", "bob"]);

    drop(bob);
    alice.expect("* bob left");
    let _bob_again = Client::register(addr, "bob");
    alice.expect("* bob joined");
}

#[test]
fn a_half_closed_client_has_its_lines_delivered_before_it_leaves() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let mut alice = Client::register(addr, "alice");
    // As `printf 'bob\nhi\nbye now' | nc -N`: lines, no final newline, then EOF.
    let mut bob = Client::connect(addr, "bob");
    bob.send_raw(b"bob\nhi\nbye now");
    bob.shutdown_write();
    alice.expect("* bob joined");
    alice.expect("[lobby] bob: hi");
    alice.expect("[lobby] bob: bye now");
    alice.expect("* bob left");
    bob.expect_greeting();
    bob.expect_prefix("* welcome bob!");
    bob.expect_closed();
}

#[test]
fn unnamed_clients_never_see_the_room() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let mut alice = Client::register(addr, "alice");
    let mut lurker = Client::connect(addr, "lurker");
    lurker.expect_greeting();
    alice.send("not for lurkers");
    let _bob = Client::register(addr, "bob");
    alice.expect("* bob joined");
    lurker.send("/quit");
    lurker.expect("* bye");
}

#[test]
fn quick_rename_round_trips_never_give_a_name_two_owners() {
    // `/nick bo1` then `/nick al1` in one write: the reader claims al1 back
    // before the manager may have handled the first rename, which releases
    // al1. That release must not free a name its client holds again. (If
    // the manager got there first, al1 was free for a moment and a rival
    // may fairly take it; then the second `/nick` must be refused.)
    const ROUND_TRIPS: usize = 200;
    let server = start_server(test_config());
    let addr = server.local_addr();
    let mut mover = Client::register(addr, "al1");
    let mut mover_name = "al1".to_string();
    let mut rival = Client::connect(addr, "rival");
    rival.expect_greeting();
    let mut rival_name: Option<String> = None;
    for trip in 0..ROUND_TRIPS {
        let (away, both) = if trip % 2 == 0 {
            ("bo1", "/nick bo1\n/nick al1\n")
        } else {
            ("AL1", "/nick AL1\n/nick al1\n")
        };
        mover.send_raw(both.as_bytes());
        rival.send("al1");
        mover.expect(&format!("* you are now {away}"));
        mover_name = away.to_string();
        // If the rival has just won al1, its arrival may be announced to
        // the mover before or after the mover's refusal.
        let mut reply = mover.line();
        if reply == "* al1 joined" {
            reply = mover.line();
        }
        match reply.as_str() {
            "* you are now al1" => mover_name = "al1".to_string(),
            "! name \"al1\" is taken, choose another" => {}
            other => panic!("round trip {trip}: unexpected reply to /nick al1: {other:?}"),
        }
        let answer = rival.line();
        if answer.starts_with("* welcome al1!") {
            rival_name = Some("al1".to_string());
            break;
        }
        assert_eq!(
            answer, "! name \"al1\" is taken, choose another",
            "round trip {trip}"
        );
        rival.expect("* choose a name (1-24 letters, digits, - or _):");
    }
    // Whatever happened, each name has exactly the owner who believes it is
    // theirs: the directory agrees with both clients, and a whisper to each
    // name reaches its believer.
    let mut believed: Vec<String> = [Some(mover_name.clone()), rival_name.clone()]
        .into_iter()
        .flatten()
        .collect();
    believed.sort_by_key(|name| name.to_ascii_lowercase());
    assert_eq!(server.online(), believed, "one owner per name");
    if let Some(rival_name) = rival_name {
        mover.send(&format!("/w {rival_name} hi"));
        rival.skip_until(&format!("[dm from {mover_name}] hi"));
        rival.send(&format!("/w {mover_name} back"));
        mover.skip_until(&format!("[dm from {rival_name}] back"));
    }
    drop(mover);
    wait_until(
        "the mover's name freed when it leaves",
        || server.online(),
        |online| !online.contains(&mover_name),
    );
}
