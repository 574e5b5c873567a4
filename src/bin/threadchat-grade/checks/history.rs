//! History replay (PROTOCOL.md, "Rooms and history"): whoever enters a
//! room gets its last 50 chat lines and actions after a header that counts
//! them, and then the live stream, meeting it exactly.

use std::io::Write;
use std::thread;

use super::rooms::join;
use super::{test, Ctx, Needs, Test};
use crate::client::{ensure, fail, shown, Check, Client, Failure};

pub const TESTS: &[Test] = &[
    test(
        "history",
        "a_newcomer_gets_the_lobbys_last_lines",
        "registering replays the lobby's lines and actions, after * last N messages in #lobby",
        a_newcomer_gets_the_lobbys_last_lines,
    )
    .needs(Needs::OwnServer),
    test(
        "history",
        "only_the_last_50_are_kept",
        "after 60 lines, a newcomer gets the last 50, oldest first",
        only_the_last_50_are_kept,
    ),
    test(
        "history",
        "joining_replays_the_rooms_history",
        "/join replays the room's own lines after its reply; whispers and notices are not kept",
        joining_replays_the_rooms_history,
    ),
    test(
        "history",
        "replay_and_live_lines_meet_exactly",
        "joining while someone talks: replay then live, nothing lost, nothing twice",
        replay_and_live_lines_meet_exactly,
    )
    .limit(60),
    test(
        "history",
        "a_new_or_emptied_room_replays_nothing",
        "a new room, or one that emptied, sends no header and no old lines",
        a_new_or_emptied_room_replays_nothing,
    ),
];

/// The header and then exactly `lines`, in order.
fn expect_replay(client: &mut Client, room: &str, lines: &[String]) -> Check {
    client.expect(&format!("* last {} messages in #{room}", lines.len()))?;
    for line in lines {
        client.expect(line)?;
    }
    Ok(())
}

/// `speaker` says `lines` in `room`, and `listener` (in the same room) has
/// them all: so they have been handled, and kept.
fn say(
    speaker: &mut Client,
    listener: &mut Client,
    room: &str,
    lines: &[&str],
) -> Result<Vec<String>, Failure> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    speaker.send_raw(text.as_bytes())?;
    let mut seen = Vec::new();
    for line in lines {
        let want = match line.strip_prefix("/me ") {
            Some(action) => format!("[{room}] * {} {action}", speaker.label),
            None => format!("[{room}] {}: {line}", speaker.label),
        };
        listener.expect(&want)?;
        seen.push(want);
    }
    Ok(seen)
}

fn a_newcomer_gets_the_lobbys_last_lines(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "carol"])?;
    let (left, right) = c.split_at_mut(1);
    let kept = say(
        &mut left[0],
        &mut right[0],
        "lobby",
        &["first", "second", "/me waves"],
    )?;
    let mut bob = ctx.greeted("bob")?;
    bob.send("bob")?;
    bob.expect_prefix("* welcome bob! you are in lobby;")?;
    expect_replay(&mut bob, "lobby", &kept)?;
    // Then live lines.
    left[0].send("now live")?;
    bob.expect("[lobby] alice: now live")
}

fn only_the_last_50_are_kept(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "carol"])?;
    let room = ctx.name("talk");
    join(&mut c[0], &room, &room, 1)?;
    join(&mut c[1], &room, &room, 2)?;
    c[0].expect(&format!("* {} joined", ctx.name("carol")))?;
    let said: Vec<String> = (0..60).map(|n| format!("line {n}")).collect();
    let said: Vec<&str> = said.iter().map(String::as_str).collect();
    let (left, right) = c.split_at_mut(1);
    let kept = say(&mut left[0], &mut right[0], &room, &said)?;
    let mut bob = ctx.register("bob")?;
    join(&mut bob, &room, &room, 3)?;
    expect_replay(&mut bob, &room, &kept[10..])
}

fn joining_replays_the_rooms_history(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "carol", "bob"])?;
    let (rust, carol) = (ctx.name("rust"), ctx.name("carol"));
    join(&mut c[0], &rust, &rust, 1)?;
    join(&mut c[1], &rust, &rust, 2)?;
    c[0].expect(&format!("* {carol} joined"))?;
    // A whisper is not kept.
    c[0].send(&format!("/w {carol} not kept"))?;
    c[1].expect(&format!("[dm from {}] not kept", ctx.name("alice")))?;
    let (left, right) = c.split_at_mut(1);
    let kept = say(&mut left[0], &mut right[0], &rust, &["in rust", "/me nods"])?;
    // The lobby's own line is not rust's history.
    let bob = &mut right[1];
    bob.send("said in the lobby")?;
    join(bob, &rust, &rust, 3)?;
    expect_replay(bob, &rust, &kept)
}

/// Numbers out of `[ROOM] NAME: n N`, the stream's lines.
fn number(line: &str, prefix: &str) -> Option<usize> {
    line.strip_prefix(prefix)?.parse().ok()
}

fn replay_and_live_lines_meet_exactly(ctx: &Ctx) -> Check {
    const LINES: usize = 2_000;
    let mut c = ctx.register_all(&["alice", "carol"])?;
    let room = ctx.name("busy");
    join(&mut c[0], &room, &room, 1)?;
    join(&mut c[1], &room, &room, 2)?;
    c[0].expect(&format!("* {} joined", ctx.name("carol")))?;
    let prefix = format!("[{room}] {}: n ", ctx.name("alice"));
    // alice talks on a thread of her own, in chunks, for as long as it
    // takes bob to register and join.
    let mut talker = c[0].writer()?;
    let speaking = thread::spawn(move || {
        for chunk in 0..LINES / 20 {
            let text: String = (chunk * 20..chunk * 20 + 20)
                .map(|n| format!("n {n}\n"))
                .collect();
            if talker.write_all(text.as_bytes()).is_err() {
                return;
            }
            // Pacing, so the stream lasts a while; nothing waits on it.
            thread::sleep(std::time::Duration::from_millis(2));
        }
    });
    // bob enters once the stream has begun.
    c[1].expect(&format!("{prefix}0"))?;
    let mut bob = ctx.register("bob")?;
    join(&mut bob, &room, &room, 3)?;
    let result = check_meeting(&mut bob, &room, &prefix, LINES);
    let _ = speaking.join();
    result
}

/// What bob sees: an optional replay, then live lines, which together must
/// be one run of consecutive numbers ending at the last.
fn check_meeting(bob: &mut Client, room: &str, prefix: &str, lines: usize) -> Check {
    let mut next: Option<usize> = None;
    let first = bob.line("the replay's header or a live line")?;
    let mut pending = Some(first.clone());
    if let Some(count) = first
        .strip_prefix("* last ")
        .and_then(|rest| rest.strip_suffix(&format!(" messages in #{room}")))
    {
        ensure(count.parse::<usize>().is_ok_and(|n| n <= 50), || {
            format!(
                "{}: a replay of at most 50 lines, got {}",
                bob.label,
                shown(&first)
            )
        })?;
        pending = None;
    }
    loop {
        let line = match pending.take() {
            Some(line) => line,
            None => bob.line(&format!("{prefix}{}", next.map_or(0, |n| n)))?,
        };
        let Some(n) = number(&line, prefix) else {
            fail!(
                "{}: expected the stream's lines, got {}",
                bob.label,
                shown(&line)
            );
        };
        if let Some(want) = next {
            ensure(n == want, || {
                format!(
                    "{}: after line {} came line {n}: the replay and the live lines must meet with nothing lost and nothing twice",
                    bob.label,
                    want - 1
                )
            })?;
        }
        if n + 1 == lines {
            return Ok(());
        }
        next = Some(n + 1);
    }
}

fn a_new_or_emptied_room_replays_nothing(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    let (tmp, alice, bob) = (ctx.name("tmp"), ctx.name("alice"), ctx.name("bob"));
    join(&mut c[0], &tmp, &tmp, 1)?;
    c[0].send("said to nobody")?;
    c[0].send("/leave")?;
    c[0].expect_prefix("* you joined #lobby; ")?;
    // The room went away with its last member, and its history with it.
    join(&mut c[1], &tmp, &tmp, 1)?;
    join(&mut c[0], &tmp, &tmp, 2)?;
    c[1].expect(&format!("* {alice} joined"))?;
    c[0].send("first words")?;
    c[1].expect(&format!("[{tmp}] {alice}: first words"))?;
    // And a room that never existed has nothing either.
    let fresh = ctx.name("fresh");
    join(&mut c[1], &fresh, &fresh, 1)?;
    join(&mut c[0], &fresh, &fresh, 2)?;
    c[1].expect(&format!("* {alice} joined"))?;
    c[1].send("hello")?;
    c[0].expect(&format!("[{fresh}] {bob}: hello"))
}
