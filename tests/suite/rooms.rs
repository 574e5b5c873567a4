//! Rooms and history over real sockets: /join, /leave, /rooms, /groups,
//! /who, room isolation, and the replay of a room's last lines to newcomers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::{register_all, start_server, test_config, Client};
use threadchat::Config;

fn with_history(lines: usize) -> Config {
    Config {
        history: lines,
        ..test_config()
    }
}

/// `/join ROOM`, expecting the reply that names the room and its size.
fn join(client: &mut Client, room: &str, shown_as: &str, members: usize) {
    client.send(&format!("/join {room}"));
    client.expect(&format!("* you joined #{shown_as}; {members} here"));
}

/// Proves nothing else is queued for `client`: a command's reply must be the
/// very next line.
fn expect_nothing_pending(client: &mut Client) {
    client.send("/who");
    client.expect_prefix("* in #");
}

#[test]
fn lines_stay_in_their_room() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob, mut carol, mut dave] =
        register_all(addr, ["alice", "bob", "carol", "dave"]);

    join(&mut carol, "rust", "rust", 1);
    alice.expect("* carol left");
    bob.expect("* carol left");
    dave.expect("* carol left");
    join(&mut dave, "#rust", "rust", 2);
    carol.expect("* dave joined");
    alice.expect("* dave left");
    bob.expect("* dave left");

    carol.send("only for rust");
    dave.expect("[rust] carol: only for rust");
    alice.send("only for the lobby");
    bob.expect("[lobby] alice: only for the lobby");
    dave.send("/me nods");
    carol.expect("[rust] * dave nods");

    // Neither room heard the other.
    for client in [&mut alice, &mut bob, &mut carol, &mut dave] {
        expect_nothing_pending(client);
    }

    // Whispers cross rooms.
    alice.send("/w carol psst");
    carol.expect("[dm from alice] psst");
    alice.expect("[dm to carol] psst");
}

#[test]
fn rooms_groups_and_who_list_what_is_there() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob, mut carol] = register_all(addr, ["alice", "bob", "carol"]);
    join(&mut bob, "Rust", "Rust", 1);
    carol.expect("* bob left");
    join(&mut carol, "rust", "Rust", 2);

    alice.send("/rooms");
    alice.skip_until("* rooms (2): lobby (1), Rust (2)");
    alice.send("/groups");
    alice.expect("* rooms (2): lobby (1), Rust (2)");
    carol.send("/who");
    carol.skip_until("* in #Rust (2): bob, carol");
    alice.send("/who");
    alice.expect("* in #lobby (1): alice");
    // /users still lists everyone online, whatever their room.
    carol.send("/users");
    carol.expect("* online (3): alice, bob, carol");
}

#[test]
fn leave_goes_back_to_the_lobby_and_joining_where_you_are_says_so() {
    let server = start_server(test_config());
    let addr = server.local_addr();
    let [mut alice, mut bob] = register_all(addr, ["alice", "bob"]);

    alice.send("/leave");
    alice.expect("* you are already in #lobby");
    join(&mut alice, "rust", "rust", 1);
    bob.expect("* alice left");
    alice.send("/join RUST");
    alice.expect("* you are already in #rust");
    alice.send("/leave");
    alice.expect("* you joined #lobby; 2 here");
    bob.expect("* alice joined");
    // No announcement was made for the refused joins.
    expect_nothing_pending(&mut bob);
}

#[test]
fn bad_room_names_are_refused_with_the_rule() {
    let server = start_server(test_config());
    let mut alice = Client::register(server.local_addr(), "alice");
    let rule = "use 1-32 letters, digits, - or _";
    alice.send("/join a.b");
    alice.expect(&format!("! room name cannot contain '.': {rule}"));
    alice.send(&format!("/join {}", "r".repeat(33)));
    alice.expect(&format!("! room name too long: {rule}"));
    alice.send("/join #");
    alice.expect(&format!("! a room name cannot be empty: {rule}"));
    alice.send("/join");
    alice.expect("! usage: /join ROOM");
    alice.send("/join two words");
    alice.expect("! usage: /join ROOM");
    // Still in the lobby, and 32 characters is fine.
    join(&mut alice, &"r".repeat(32), &"r".repeat(32), 1);
}

#[test]
fn a_room_goes_away_with_its_last_member_and_its_history_with_it() {
    let server = start_server(with_history(50));
    let addr = server.local_addr();
    let mut alice = Client::register(addr, "alice");
    join(&mut alice, "Tmp", "Tmp", 1);
    let mut bob = Client::register(addr, "bob");
    join(&mut bob, "tmp", "Tmp", 2);
    alice.expect("* bob joined");
    bob.send("said in the old room");
    alice.expect("[Tmp] bob: said in the old room");

    alice.send("/leave");
    alice.expect("* you joined #lobby; 1 here");
    bob.expect("* alice left");
    bob.send("/leave");
    bob.expect("* you joined #lobby; 2 here");
    alice.expect("* bob joined");
    alice.send("/rooms");
    alice.expect("* rooms (1): lobby (2)");

    // Created anew, spelled the new way, with no history.
    join(&mut alice, "TMP", "TMP", 1);
    expect_nothing_pending(&mut alice);
}

#[test]
fn a_newcomer_gets_exactly_the_last_50_lines_in_order_then_live_lines() {
    let server = start_server(with_history(50));
    let addr = server.local_addr();
    let [mut talker, mut listener] = register_all(addr, ["talker", "listener"]);
    for n in 1..=60 {
        talker.send(&format!("line {n}"));
    }
    // Once the listener has them all, the manager has recorded them all.
    for n in 1..=60 {
        listener.expect(&format!("[lobby] talker: line {n}"));
    }

    let mut newcomer = Client::connect(addr, "newcomer");
    newcomer.expect_greeting();
    newcomer.send("newcomer");
    newcomer.expect("* welcome newcomer! you are in lobby; 3 online. /help lists the commands");
    newcomer.expect("* last 50 messages in #lobby");
    for n in 11..=60 {
        newcomer.expect(&format!("[lobby] talker: line {n}"));
    }
    talker.expect("* newcomer joined");
    talker.send("live");
    newcomer.expect("[lobby] talker: live");

    // The same on /join, and actions are kept too.
    join(&mut talker, "quiet", "quiet", 1);
    talker.send("/me hums");
    // The reply comes after the manager has handled the action (one
    // reader's events keep their order), so the action is in the history
    // before the listener asks to join.
    talker.send("/who");
    talker.expect("* in #quiet (1): talker");
    listener.skip_until("* talker left");
    join(&mut listener, "quiet", "quiet", 2);
    listener.expect("* last 1 messages in #quiet");
    listener.expect("[quiet] * talker hums");
    talker.expect("* listener joined");
}

#[test]
fn history_zero_replays_nothing() {
    let server = start_server(with_history(0));
    let addr = server.local_addr();
    let [mut talker, mut listener] = register_all(addr, ["talker", "listener"]);
    talker.send("not kept");
    listener.expect("[lobby] talker: not kept");
    // `register` expects the welcome; the next line must be live, not a header.
    let mut newcomer = Client::register(addr, "newcomer");
    talker.expect("* newcomer joined");
    talker.send("live");
    newcomer.expect("[lobby] talker: live");
}

#[test]
fn joining_while_others_talk_loses_and_repeats_nothing() {
    /// Lines the talker still sends once the joiner is in, so that live lines
    /// certainly follow the replay.
    const AFTER_JOIN: usize = 500;
    /// A bound on the whole run, whatever the timing: at the pace below, at
    /// least 2 s of talk, which the join must fall inside.
    const MAX_LINES: usize = 200_000;
    // Backlogs big enough that nothing is dropped for a slow test reader:
    // this test is about the seam between replay and live, not about drops.
    let server = start_server(Config {
        max_backlog: 64 << 20,
        ..with_history(50)
    });
    let addr = server.local_addr();
    let mut talker = Client::register(addr, "talker");
    join(&mut talker, "busy", "busy", 1);
    let mut watcher = Client::register(addr, "watcher");
    join(&mut watcher, "busy", "busy", 2);
    talker.expect("* watcher joined");

    let joined = Arc::new(AtomicBool::new(false));
    let sending = thread::spawn({
        let joined = joined.clone();
        move || {
            let mut n = 0;
            // Talk until the joiner is in, then AFTER_JOIN more.
            while !joined.load(Ordering::SeqCst) && n < MAX_LINES - AFTER_JOIN {
                n += 1;
                talker.send(&n.to_string());
                // A pace, not a synchronisation (that is `joined`): without
                // it a talker on a busy machine could say everything before
                // the join is handled, and there would be no seam to test.
                if n % 100 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            for _ in 0..AFTER_JOIN {
                n += 1;
                talker.send(&n.to_string());
            }
            talker.send("end");
            // Handed back, not dropped: closing a socket that still has
            // unread data (the joiner's `* joiner joined`) sends a reset,
            // and a reset may reach the server before "end" has been read.
            (n, talker)
        }
    });
    // Join once the stream is well under way.
    let mut joiner = Client::register(addr, "joiner");
    watcher.skip_until("[busy] talker: 200");
    joiner.send("/join busy");
    joiner.expect("* you joined #busy; 3 here");
    joined.store(true, Ordering::SeqCst);
    let header = joiner.expect_prefix("* last ");
    assert_eq!(
        header, "* last 50 messages in #busy",
        "the room had said at least 200 lines, so the replay must be full"
    );
    let mut numbers = Vec::new();
    loop {
        let line = joiner.line();
        if line == "[busy] talker: end" {
            break;
        }
        let number = line
            .strip_prefix("[busy] talker: ")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("joiner: expected a numbered line, got {line:?}"));
        numbers.push(number);
    }
    let (last, _talker) = sending.join().expect("the sending thread");
    let first = numbers[0];
    let expected: Vec<usize> = (first..=last).collect();
    assert_eq!(
        numbers, expected,
        "joiner: replay then live must be one gapless run with no repeats"
    );
    assert!(first > 150, "replay began at {first}, before the join");
    assert!(
        numbers.len() >= 50 + AFTER_JOIN,
        "joiner got {} lines: the 50 replayed and at least {AFTER_JOIN} live ones expected",
        numbers.len()
    );
}

#[test]
fn big_rooms_are_quiet_about_joins_and_leaves() {
    // With --announce-up-to 2, a join or leave is news to at most 2 others.
    let server = start_server(Config {
        announce_up_to: 2,
        ..test_config()
    });
    let addr = server.local_addr();
    let [mut alice, mut bob, mut carol] = register_all(addr, ["alice", "bob", "carol"]);

    // Three others would be told: dave arrives unannounced. His first line
    // is the next thing the others see, and /users still counts him.
    let mut dave = Client::register(addr, "dave");
    dave.send("hi from dave");
    alice.expect("[lobby] dave: hi from dave");
    bob.expect("[lobby] dave: hi from dave");
    carol.expect("[lobby] dave: hi from dave");
    alice.send("/users");
    alice.expect_prefix("* online (4):");

    // He leaves as quietly.
    dave.send("/quit");
    dave.expect("* bye dave");
    dave.expect_closed();
    carol.send("still here");
    alice.expect("[lobby] carol: still here");
    bob.expect("[lobby] carol: still here");

    // Back to two others: carol's going is announced again.
    join(&mut carol, "rust", "rust", 1);
    alice.expect("* carol left");
    bob.expect("* carol left");
}
