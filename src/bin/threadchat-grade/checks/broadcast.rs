//! Broadcast (PROTOCOL.md, "Chatting" and "Leaving"): a line reaches
//! everyone else in the room, in order, without an echo; joins and leaves
//! are told; `/me`, `//`, and the last lines of a client that closes.

use super::{test, Ctx, Test};
use crate::client::{ensure, fail, Check};

pub const TESTS: &[Test] = &[
    test(
        "broadcast",
        "a_line_reaches_everyone_else",
        "a plain line reaches every other client as [lobby] NAME: TEXT",
        a_line_reaches_everyone_else,
    ),
    test(
        "broadcast",
        "the_sender_gets_no_echo",
        "the sender is not sent its own line",
        the_sender_gets_no_echo,
    ),
    test(
        "broadcast",
        "joins_and_leaves_are_announced",
        "the room is told * NAME joined and * NAME left (after /quit or a drop)",
        joins_and_leaves_are_announced,
    ),
    test(
        "broadcast",
        "lines_arrive_complete_and_in_order",
        "300 lines sent at once reach every receiver, all of them, in order",
        lines_arrive_complete_and_in_order,
    ),
    test(
        "broadcast",
        "actions_and_double_slashes",
        "/me TEXT is an action; //TEXT says /TEXT; commands ignore case",
        actions_and_double_slashes,
    ),
    test(
        "broadcast",
        "a_closing_client_is_heard_to_the_end",
        "lines sent just before a half-close, the last without \\n, are delivered",
        a_closing_client_is_heard_to_the_end,
    ),
];

fn a_line_reaches_everyone_else(ctx: &Ctx) -> Check {
    let mut clients = ctx.register_all(&["alice", "bob", "carol"])?;
    let alice = ctx.name("alice");
    clients[0].send("hello everyone")?;
    clients[1].expect(&format!("[lobby] {alice}: hello everyone"))?;
    clients[2].expect(&format!("[lobby] {alice}: hello everyone"))?;
    clients[2].send("and back")?;
    let carol = ctx.name("carol");
    clients[0].expect(&format!("[lobby] {carol}: and back"))?;
    clients[1].expect(&format!("[lobby] {carol}: and back"))
}

fn the_sender_gets_no_echo(ctx: &Ctx) -> Check {
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    let (alice, bob) = (ctx.name("alice"), ctx.name("bob"));
    clients[0].send("hello")?;
    clients[1].expect(&format!("[lobby] {alice}: hello"))?;
    // bob answers only after he has alice's line, so an echo to alice
    // would have been sent to her before bob's answer.
    clients[1].send("ack")?;
    clients[0].expect(&format!("[lobby] {bob}: ack"))
}

fn joins_and_leaves_are_announced(ctx: &Ctx) -> Check {
    let mut alice = ctx.register("alice")?;
    let (bob, carol) = (ctx.name("bob"), ctx.name("carol"));
    let mut bob_client = ctx.register("bob")?;
    alice.expect(&format!("* {bob} joined"))?;
    bob_client.send("/quit")?;
    bob_client.expect(&format!("* bye {bob}"))?;
    bob_client.expect_closed(0)?;
    alice.expect(&format!("* {bob} left"))?;
    // A client that just goes away is announced the same way.
    let carol_client = ctx.register("carol")?;
    alice.expect(&format!("* {carol} joined"))?;
    drop(carol_client);
    alice.expect(&format!("* {carol} left"))
}

fn lines_arrive_complete_and_in_order(ctx: &Ctx) -> Check {
    const LINES: usize = 300;
    let mut clients = ctx.register_all(&["alice", "bob", "carol"])?;
    let alice = ctx.name("alice");
    let burst: String = (0..LINES)
        .map(|n| format!("line {n} of {LINES}\n"))
        .collect();
    clients[0].send_raw(burst.as_bytes())?;
    for receiver in &mut clients[1..] {
        for n in 0..LINES {
            let line = receiver.line(&format!("line {n} of {LINES} from {alice}"))?;
            let want = format!("[lobby] {alice}: line {n} of {LINES}");
            ensure(line == want, || {
                format!(
                    "{}: expected line {n} of {alice}'s {LINES} (sent in one write), got {}",
                    receiver.label,
                    crate::client::shown(&line)
                )
            })?;
        }
    }
    Ok(())
}

fn actions_and_double_slashes(ctx: &Ctx) -> Check {
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    let alice = ctx.name("alice");
    for (sent, seen) in [
        ("/me waves", format!("[lobby] * {alice} waves")),
        ("/ME waves again", format!("[lobby] * {alice} waves again")),
        ("//etc/hosts", format!("[lobby] {alice}: /etc/hosts")),
        ("GET / HTTP/1.1", format!("[lobby] {alice}: GET / HTTP/1.1")),
    ] {
        clients[0].send(sent)?;
        clients[1].expect(&seen)?;
    }
    Ok(())
}

fn a_closing_client_is_heard_to_the_end(ctx: &Ctx) -> Check {
    let mut alice = ctx.register("alice")?;
    let bob = ctx.name("bob");
    // As `printf 'bob\nhi\nbye now' | nc -N`: lines, no final newline, EOF.
    let mut bob_client = ctx.connect(&bob)?;
    bob_client.send_raw(format!("{bob}\nhi\nbye now").as_bytes())?;
    bob_client.shutdown_write();
    for want in [
        format!("* {bob} joined"),
        format!("[lobby] {bob}: hi"),
        format!("[lobby] {bob}: bye now"),
        format!("* {bob} left"),
    ] {
        match alice.line(&crate::client::shown(&want)) {
            Ok(line) if line == want => {}
            Ok(line) => fail!(
                "{}: expected {} from a client that sent \"hi\\nbye now\" and closed, got {}",
                alice.label,
                crate::client::shown(&want),
                crate::client::shown(&line)
            ),
            Err(why) => return Err(why),
        }
    }
    Ok(())
}
