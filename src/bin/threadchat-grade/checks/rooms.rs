//! Rooms (PROTOCOL.md, "Rooms and history" and `/join`, `/leave`,
//! `/rooms`, `/who`): moving between rooms, who is told, lines that stay
//! in their room, the lists, and the rules for room names.

use super::users::parse_list;
use super::{test, Ctx, Test};
use crate::client::{ensure, fail, shown, Check, Client, Failure};

pub const TESTS: &[Test] = &[
    test(
        "rooms",
        "join_moves_you_and_tells_both_rooms",
        "/join ROOM answers * you joined #ROOM; N here; the old room hears left, the new joined",
        join_moves_you_and_tells_both_rooms,
    ),
    test(
        "rooms",
        "lines_stay_in_their_room",
        "chat lines and actions reach only the sender's room",
        lines_stay_in_their_room,
    ),
    test(
        "rooms",
        "rooms_and_who_list_what_is_there",
        "/rooms (and /groups) lists the lobby first then each room and its size; /who the room",
        rooms_and_who_list_what_is_there,
    ),
    test(
        "rooms",
        "room_names_keep_their_creators_capitals",
        "room names ignore case and a leading #, and show as their creator spelled them",
        room_names_keep_their_creators_capitals,
    ),
    test(
        "rooms",
        "leave_and_already_there",
        "/leave goes back to the lobby; joining your own room says * you are already in",
        leave_and_already_there,
    ),
    test(
        "rooms",
        "bad_room_names_are_refused",
        "bad room names and bad usage get one ! line, and nothing changes",
        bad_room_names_are_refused,
    ),
    test(
        "rooms",
        "an_empty_room_goes_away",
        "a room nobody is in is no longer listed",
        an_empty_room_goes_away,
    ),
];

/// `/join ROOM`; expects `* you joined #SHOWN; N here` (skipping joins
/// and leaves before it), and then any replay of its history.
pub fn join(client: &mut Client, room: &str, shown_as: &str, members: usize) -> Check {
    client.send(&format!("/join {room}"))?;
    client.expect_after_presence(&format!("* you joined #{shown_as}; {members} here"))
}

/// Sends `/who` and expects exactly this room and these members.
fn expect_who(ctx: &Ctx, client: &mut Client, room: &str, bases: &[&str]) -> Check {
    let mut names: Vec<String> = bases.iter().map(|b| ctx.name(b)).collect();
    names.sort_by_key(|n| n.to_lowercase());
    client.send("/who")?;
    client.expect(&format!(
        "* in #{room} ({}): {}",
        names.len(),
        names.join(", ")
    ))
}

/// Sends `/rooms` (or `/groups`) and checks the lobby comes first, then
/// `rooms` (with their sizes) in order of name; on a shared server, only
/// this test's rooms are looked at, and the lobby's size is not.
fn expect_rooms(
    ctx: &Ctx,
    client: &mut Client,
    command: &str,
    lobby: usize,
    rooms: &[(&str, usize)],
) -> Check {
    client.send(command)?;
    let line = client.expect_prefix_after_presence("* rooms (")?;
    let mut want: Vec<String> = vec![format!("lobby ({lobby})")];
    want.extend(rooms.iter().map(|(room, n)| format!("{room} ({n})")));
    if ctx.own_server() {
        let wanted = format!("* rooms ({}): {}", want.len(), want.join(", "));
        return ensure(line == wanted, || {
            format!(
                "{}: {command} should answer {}, got {}",
                client.label,
                shown(&wanted),
                shown(&line)
            )
        });
    }
    let Some(listed) = parse_list(&line, "rooms") else {
        fail!(
            "{}: expected * rooms (N): ROOM (N), ..., got {}",
            client.label,
            shown(&line)
        );
    };
    let ours: Vec<&String> = listed
        .iter()
        .filter(|r| r.starts_with(&ctx.name("")))
        .collect();
    ensure(
        listed
            .first()
            .is_some_and(|first| first.starts_with("lobby ("))
            && ours
                .iter()
                .map(|s| s.as_str())
                .eq(want[1..].iter().map(|s| s.as_str())),
        || {
            format!(
                "{}: {command} should list lobby first, then {}, got {}",
                client.label,
                want[1..].join(", "),
                shown(&line)
            )
        },
    )
}

fn join_moves_you_and_tells_both_rooms(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob", "carol"])?;
    let (rust, bob, carol) = (ctx.name("rust"), ctx.name("bob"), ctx.name("carol"));
    join(&mut c[2], &rust, &rust, 1)?;
    c[0].expect(&format!("* {carol} left"))?;
    c[1].expect(&format!("* {carol} left"))?;
    join(&mut c[1], &format!("#{rust}"), &rust, 2)?;
    c[2].expect(&format!("* {bob} joined"))?;
    c[0].expect(&format!("* {bob} left"))
}

/// alice and dave stay in the lobby; bob and carol go to `rust`, and
/// everyone has read what that told them.
fn split_into_two_rooms(ctx: &Ctx) -> Result<Vec<Client>, Failure> {
    let mut c = ctx.register_all(&["alice", "dave", "bob", "carol"])?;
    let (rust, bob, carol) = (ctx.name("rust"), ctx.name("bob"), ctx.name("carol"));
    join(&mut c[2], &rust, &rust, 1)?;
    join(&mut c[3], &rust, &rust, 2)?;
    c[2].expect(&format!("* {carol} joined"))?;
    for lobby in &mut c[..2] {
        lobby.expect(&format!("* {bob} left"))?;
        lobby.expect(&format!("* {carol} left"))?;
    }
    Ok(c)
}

fn lines_stay_in_their_room(ctx: &Ctx) -> Check {
    let mut c = split_into_two_rooms(ctx)?;
    let names = ["alice", "dave", "bob", "carol"].map(|base| ctx.name(base));
    let [alice, dave, bob, carol] = &names;
    let rust = ctx.name("rust");
    // Each line is sent only once the one before it has been delivered,
    // so a line that leaked into the other room would arrive before the
    // line expected next.
    c[0].send("only for the lobby")?;
    c[1].expect(&format!("[lobby] {alice}: only for the lobby"))?;
    c[2].send("only for rust")?;
    c[3].expect(&format!("[{rust}] {bob}: only for rust"))?;
    c[3].send("/me nods")?;
    c[2].expect(&format!("[{rust}] * {carol} nods"))?;
    c[1].send("lobby again")?;
    c[0].expect(&format!("[lobby] {dave}: lobby again"))?;
    c[0].send("/me waves")?;
    c[1].expect(&format!("[lobby] * {alice} waves"))?;
    c[3].send("rust again")?;
    c[2].expect(&format!("[{rust}] {carol}: rust again"))
}

fn rooms_and_who_list_what_is_there(ctx: &Ctx) -> Check {
    let mut c = split_into_two_rooms(ctx)?;
    let rust = ctx.name("rust");
    expect_rooms(ctx, &mut c[0], "/rooms", 2, &[(&rust, 2)])?;
    expect_rooms(ctx, &mut c[2], "/groups", 2, &[(&rust, 2)])?;
    expect_who(ctx, &mut c[3], &rust, &["bob", "carol"])?;
    if ctx.own_server() {
        expect_who(ctx, &mut c[1], "lobby", &["alice", "dave"])?;
    }
    let zoo = ctx.name("zoo");
    join(&mut c[0], &zoo, &zoo, 1)?;
    expect_rooms(ctx, &mut c[0], "/rooms", 1, &[(&rust, 2), (&zoo, 1)])?;
    expect_who(ctx, &mut c[0], &zoo, &["alice"])
}

fn room_names_keep_their_creators_capitals(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    let rust = ctx.name("Rust");
    join(&mut c[0], &rust, &rust, 1)?;
    join(&mut c[1], &rust.to_lowercase(), &rust, 2)?;
    c[0].expect(&format!("* {} joined", ctx.name("bob")))?;
    c[1].send("in the same room")?;
    c[0].expect(&format!("[{rust}] {}: in the same room", ctx.name("bob")))
}

fn leave_and_already_there(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    let (alice, rust) = (ctx.name("alice"), ctx.name("rust"));
    c[0].send("/leave")?;
    c[0].expect("* you are already in #lobby")?;
    join(&mut c[0], &rust, &rust, 1)?;
    c[1].expect(&format!("* {alice} left"))?;
    c[0].send(&format!("/join {}", rust.to_uppercase()))?;
    c[0].expect(&format!("* you are already in #{rust}"))?;
    c[0].send("/leave")?;
    let back = c[0].expect_prefix("* you joined #lobby; ")?;
    ensure(
        !ctx.own_server() || back == "* you joined #lobby; 2 here",
        || {
            format!(
                "{alice}: expected \"* you joined #lobby; 2 here\", got {}",
                shown(&back)
            )
        },
    )?;
    c[1].expect(&format!("* {alice} joined"))?;
    // No one was told of the refused joins: this line comes next.
    c[0].send("back")?;
    c[1].expect(&format!("[lobby] {alice}: back"))
}

fn bad_room_names_are_refused(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    let rule = "use 1-32 letters, digits, - or _";
    for (command, answer) in [
        (
            "/join a.b".to_string(),
            format!("! room name cannot contain '.': {rule}"),
        ),
        (
            format!("/join {}", "r".repeat(33)),
            format!("! room name too long: {rule}"),
        ),
        ("/join".to_string(), "! usage: /join ROOM".to_string()),
        (
            "/join two words".to_string(),
            "! usage: /join ROOM".to_string(),
        ),
        ("/leave now".to_string(), "! usage: /leave".to_string()),
    ] {
        c[0].send(&command)?;
        c[0].expect(&answer)?;
    }
    // Still in the lobby, with bob.
    c[0].send("still in the lobby")?;
    c[1].expect(&format!(
        "[lobby] {}: still in the lobby",
        ctx.name("alice")
    ))?;
    let longest = ctx.name(&"r".repeat(32 - ctx.name("").len()));
    join(&mut c[0], &longest, &longest, 1)
}

fn an_empty_room_goes_away(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    let tmp = ctx.name("tmp");
    join(&mut c[0], &tmp, &tmp, 1)?;
    expect_rooms(ctx, &mut c[1], "/rooms", 1, &[(&tmp, 1)])?;
    c[0].send("/leave")?;
    c[0].expect_prefix_after_presence("* you joined #lobby; ")?;
    expect_rooms(ctx, &mut c[0], "/rooms", 2, &[])?;
    // Joining it again makes it anew, with one member.
    join(&mut c[1], &tmp, &tmp, 1)
}
