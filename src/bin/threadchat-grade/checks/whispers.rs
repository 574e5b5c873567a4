//! Whispers (PROTOCOL.md, `/w` and `/msg`): one receiver, a confirmation
//! to the sender, targets matched ignoring case, errors to the sender only.

use super::{test, Ctx, Test};
use crate::client::{ensure, Check, Client};

pub const TESTS: &[Test] = &[
    test(
        "whispers",
        "a_whisper_reaches_one_and_is_confirmed",
        "/w NAME TEXT reaches NAME alone as [dm from ...]; the sender gets [dm to ...]",
        a_whisper_reaches_one_and_is_confirmed,
    ),
    test(
        "whispers",
        "msg_and_any_capitals_reach_the_owner",
        "/msg works like /w, and /w BOB reaches bob, confirmed as bob",
        msg_and_any_capitals_reach_the_owner,
    ),
    test(
        "whispers",
        "whisper_errors_go_to_the_sender_only",
        "unknown target, yourself, missing text: one ! line to the sender",
        whisper_errors_go_to_the_sender_only,
    ),
    test(
        "whispers",
        "whispers_arrive_in_order",
        "100 whispers sent at once arrive complete and in order",
        whispers_arrive_in_order,
    ),
    test(
        "whispers",
        "no_whisper_to_someone_who_left",
        "a whisper to a name that has left gets the unknown-user error",
        no_whisper_to_someone_who_left,
    ),
];

/// `from` whispers `text` to `to`, and both see what they should.
fn whisper(from: &mut Client, to: &mut Client, command: &str, text: &str) -> Check {
    from.send(&format!("{command} {} {text}", to.label))?;
    to.expect(&format!("[dm from {}] {text}", from.label))?;
    from.expect(&format!("[dm to {}] {text}", to.label))
}

fn a_whisper_reaches_one_and_is_confirmed(ctx: &Ctx) -> Check {
    let mut clients = ctx.register_all(&["alice", "bob", "carol"])?;
    let (left, right) = clients.split_at_mut(1);
    whisper(&mut left[0], &mut right[0], "/w", "psst, see you at 5?")?;
    // carol heard nothing: the reply to her own whisper comes first.
    let (bob_part, carol_part) = right.split_at_mut(1);
    whisper(&mut carol_part[0], &mut bob_part[0], "/w", "me too")
}

fn msg_and_any_capitals_reach_the_owner(ctx: &Ctx) -> Check {
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    let (alice, bob) = (ctx.name("alice"), ctx.name("bob"));
    let (left, right) = clients.split_at_mut(1);
    whisper(&mut left[0], &mut right[0], "/msg", "by msg")?;
    left[0].send(&format!("/W {} shouted", bob.to_uppercase()))?;
    right[0].expect(&format!("[dm from {alice}] shouted"))?;
    left[0].expect(&format!("[dm to {bob}] shouted"))
}

fn whisper_errors_go_to_the_sender_only(ctx: &Ctx) -> Check {
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    let (alice, zed) = (ctx.name("alice"), ctx.name("zed"));
    for (command, answer) in [
        (
            format!("/w {zed} hi"),
            format!("! no user named \"{zed}\" is online"),
        ),
        (
            format!("/w {alice} hi"),
            "! you cannot whisper to yourself".to_string(),
        ),
        (
            format!("/w {}", ctx.name("bob")),
            "! usage: /w NAME TEXT".to_string(),
        ),
        ("/w".to_string(), "! usage: /w NAME TEXT".to_string()),
    ] {
        clients[0].send(&command)?;
        clients[0].expect(&answer)?;
    }
    // /msg's usage may name either spelling.
    clients[0].send("/msg")?;
    let usage = clients[0].expect_prefix("! usage: /")?;
    ensure(
        ["! usage: /w NAME TEXT", "! usage: /msg NAME TEXT"].contains(&usage.as_str()),
        || {
            format!(
                "{alice}: expected \"! usage: /msg NAME TEXT\", got {}",
                crate::client::shown(&usage)
            )
        },
    )?;
    // bob was told nothing: his own whisper's confirmation comes first.
    let (left, right) = clients.split_at_mut(1);
    whisper(&mut right[0], &mut left[0], "/w", "all quiet?")
}

fn whispers_arrive_in_order(ctx: &Ctx) -> Check {
    const WHISPERS: usize = 100;
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    let (alice, bob) = (ctx.name("alice"), ctx.name("bob"));
    let burst: String = (0..WHISPERS)
        .map(|n| format!("/w {bob} secret {n}\n"))
        .collect();
    clients[0].send_raw(burst.as_bytes())?;
    for n in 0..WHISPERS {
        clients[1].expect(&format!("[dm from {alice}] secret {n}"))?;
    }
    for n in 0..WHISPERS {
        clients[0].expect(&format!("[dm to {bob}] secret {n}"))?;
    }
    Ok(())
}

fn no_whisper_to_someone_who_left(ctx: &Ctx) -> Check {
    let mut alice = ctx.register("alice")?;
    let mut bob = ctx.register("bob")?;
    let bob_name = bob.label.clone();
    bob.send("/quit")?;
    bob.expect_prefix("* bye")?;
    bob.expect_closed(0)?;
    // The leave is handled a moment later: retry within the wait time.
    let deadline = std::time::Instant::now() + ctx.wait();
    let gone = format!("! no user named \"{bob_name}\" is online");
    loop {
        alice.send(&format!("/w {bob_name} are you there?"))?;
        let line = alice.line(&crate::client::shown(&gone))?;
        if line == gone {
            return Ok(());
        }
        if !crate::client::is_presence(&line) && !line.starts_with("[dm to ") {
            crate::client::fail!(
                "{alice_name}: expected {}, got {}",
                crate::client::shown(&gone),
                crate::client::shown(&line),
                alice_name = alice.label
            );
        }
        if std::time::Instant::now() >= deadline {
            crate::client::fail!(
                "{}: a whisper to {bob_name}, who had quit, was still delivered after {}",
                alice.label,
                crate::client::secs(ctx.wait())
            );
        }
    }
}
