//! Registration and names (PROTOCOL.md, "Connecting and choosing a name",
//! and `/nick`): the greeting, the welcome, the rules for names, unique
//! names ignoring case, names freed when their owner leaves.

use super::{test, Ctx, Needs, Test, GREETING, PROMPT};
use crate::client::Check;

pub const TESTS: &[Test] = &[
    test(
        "registration",
        "greeting_and_prompt",
        "a new connection gets the greeting and the name prompt",
        greeting_and_prompt,
    ),
    test(
        "registration",
        "welcome_names_the_room_and_the_count",
        "a good name gets the welcome with the room and how many are online",
        welcome_names_the_room_and_the_count,
    )
    .needs(Needs::OwnServer),
    test(
        "registration",
        "bad_names_get_the_reason_and_the_prompt",
        "a bad name gets one ! line saying why, then the prompt again",
        bad_names_get_the_reason_and_the_prompt,
    ),
    test(
        "registration",
        "names_are_unique_ignoring_case",
        "a name taken in other capitals is refused, and the loser can retry",
        names_are_unique_ignoring_case,
    ),
    test(
        "registration",
        "commands_before_a_name_are_refused",
        "before a name, commands get `! choose a name first`; /quit works",
        commands_before_a_name_are_refused,
    ),
    test(
        "registration",
        "unnamed_clients_see_nothing",
        "a connection without a name sees nothing of the room",
        unnamed_clients_see_nothing,
    ),
    test(
        "registration",
        "a_name_is_free_again_when_its_owner_leaves",
        "after /quit or a dropped connection the name can be taken again",
        a_name_is_free_again_when_its_owner_leaves,
    ),
    test(
        "registration",
        "nick_renames_and_frees_the_old_name",
        "/nick renames, the room is told, the old name is free",
        nick_renames_and_frees_the_old_name,
    ),
    test(
        "registration",
        "nick_errors",
        "/nick refuses taken, bad and unchanged names, and bad usage",
        nick_errors,
    ),
];

fn greeting_and_prompt(ctx: &Ctx) -> Check {
    let mut client = ctx.connect("newcomer")?;
    client.expect(GREETING)?;
    client.expect(PROMPT)
}

fn welcome_names_the_room_and_the_count(ctx: &Ctx) -> Check {
    let mut alice = ctx.greeted("alice")?;
    alice.send("alice")?;
    alice.expect("* welcome alice! you are in lobby; 1 online. /help lists the commands")?;
    // Spaces around the name are trimmed; a \r\n ending is a line ending.
    let mut bob = ctx.greeted("bob")?;
    bob.send_raw(b"  bob \r\n")?;
    bob.expect("* welcome bob! you are in lobby; 2 online. /help lists the commands")?;
    alice.expect("* bob joined")
}

fn bad_names_get_the_reason_and_the_prompt(ctx: &Ctx) -> Check {
    let rule = "use 1-24 letters, digits, - or _";
    let mut client = ctx.greeted("newcomer")?;
    for (name, answer) in [
        ("al ice", format!("! name cannot contain ' ': {rule}")),
        ("bob!", format!("! name cannot contain '!': {rule}")),
        (&"x".repeat(25), format!("! name too long: {rule}")),
    ] {
        client.send(name)?;
        client.expect(&answer)?;
        client.expect(PROMPT)?;
    }
    // A blank line is ignored: the next answer is for the next name.
    client.send("")?;
    let longest = ctx.name(&"z".repeat(24 - ctx.name("").len()));
    client.send(&longest)?;
    client.expect_prefix(&format!("* welcome {longest}! you are in lobby;"))?;
    Ok(())
}

fn names_are_unique_ignoring_case(ctx: &Ctx) -> Check {
    let _alice = ctx.register("alice")?;
    let upper = ctx.name("ALICE");
    let mut second = ctx.greeted(&upper)?;
    second.send(&upper)?;
    second.expect(&format!("! name \"{upper}\" is taken, choose another"))?;
    second.expect(PROMPT)?;
    let other = ctx.name("alice2");
    second.send(&other)?;
    second.expect_prefix(&format!("* welcome {other}! "))?;
    Ok(())
}

fn commands_before_a_name_are_refused(ctx: &Ctx) -> Check {
    let mut client = ctx.greeted("shy")?;
    for command in ["/users", "/w bob hi", "/bogus", "/join rust"] {
        client.send(command)?;
        client.expect("! choose a name first (1-24 letters, digits, - or _)")?;
        client.expect(PROMPT)?;
    }
    client.send("/quit")?;
    client.expect_prefix("* bye")?;
    client.expect_closed(0)
}

fn unnamed_clients_see_nothing(ctx: &Ctx) -> Check {
    let mut lurker = ctx.greeted("lurker")?;
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    clients[0].send("not for lurkers")?;
    let alice = ctx.name("alice");
    clients[1].expect(&format!("[lobby] {alice}: not for lurkers"))?;
    let _carol = ctx.register("carol")?;
    clients[0].expect(&format!("* {} joined", ctx.name("carol")))?;
    // Had the lurker been shown the line or the join, they would come first.
    lurker.send("/quit")?;
    lurker.expect_prefix("* bye")?;
    Ok(())
}

fn a_name_is_free_again_when_its_owner_leaves(ctx: &Ctx) -> Check {
    let mut bob = ctx.register("bob")?;
    bob.send("/quit")?;
    bob.expect(&format!("* bye {}", ctx.name("bob")))?;
    bob.expect_closed(0)?;
    let bob = ctx.register_when_free("bob")?;
    drop(bob);
    ctx.register_when_free("bob").map(drop)
}

fn nick_renames_and_frees_the_old_name(ctx: &Ctx) -> Check {
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    let (alice, alicia) = (ctx.name("alice"), ctx.name("alicia"));
    clients[0].send(&format!("/nick {alicia}"))?;
    clients[0].expect(&format!("* you are now {alicia}"))?;
    clients[1].expect(&format!("* {alice} is now known as {alicia}"))?;
    // Lines are said under the new name.
    clients[0].send("renamed")?;
    clients[1].expect(&format!("[lobby] {alicia}: renamed"))?;
    // The old name is free again.
    let _again = ctx.register_when_free("alice")?;
    clients[1].expect(&format!("* {alice} joined"))?;
    // Only the capitals may change, and that is announced too.
    let upper = ctx.name("BOB");
    clients[1].send(&format!("/nick {upper}"))?;
    clients[1].expect(&format!("* you are now {upper}"))?;
    clients[0].expect_after_presence(&format!("* {} is now known as {upper}", ctx.name("bob")))
}

fn nick_errors(ctx: &Ctx) -> Check {
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    let alice = &mut clients[0];
    let rule = "use 1-24 letters, digits, - or _";
    let taken = ctx.name("Bob");
    let own = ctx.name("alice");
    for (command, answer) in [
        (
            format!("/nick {taken}"),
            format!("! name \"{taken}\" is taken, choose another"),
        ),
        ("/nick".to_string(), "! usage: /nick NEW".to_string()),
        (
            "/nick two words".to_string(),
            "! usage: /nick NEW".to_string(),
        ),
        (
            "/nick b@d".to_string(),
            format!("! name cannot contain '@': {rule}"),
        ),
        (
            format!("/nick {own}"),
            format!("! you are already called {own}"),
        ),
    ] {
        alice.send(&command)?;
        alice.expect(&answer)?;
    }
    // Nothing changed: bob still hears alice by her name.
    alice.send("unchanged")?;
    clients[1].expect(&format!("[lobby] {own}: unchanged"))
}
