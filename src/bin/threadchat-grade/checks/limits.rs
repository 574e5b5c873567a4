//! Limits and hostile input (PROTOCOL.md, "Lines" and "Limits and
//! errors"): every bad line gets one clear `! ` answer, the connection
//! stays where it should, and two clients beside it go on chatting in
//! order.

use super::{still_chatting, test, Ctx, Test};
use crate::client::{ensure, Check, Next};

pub const TESTS: &[Test] = &[
    test(
        "limits",
        "a_too_long_line_is_refused_and_the_connection_stays",
        "a line over 1,024 bytes gets ! line too long; 2 MB without \\n is refused once",
        a_too_long_line_is_refused_and_the_connection_stays,
    ),
    test(
        "limits",
        "bytes_that_are_not_utf8_are_refused",
        "a line that is not UTF-8 gets ! line is not valid UTF-8, before and after a name",
        bytes_that_are_not_utf8_are_refused,
    ),
    test(
        "limits",
        "control_characters_are_refused_not_stripped",
        "a line with ESC, BEL, DEL or a C1 control is refused, naming it; tab is fine",
        control_characters_are_refused_not_stripped,
    ),
    test(
        "limits",
        "blank_lines_are_ignored",
        "empty lines and lines of spaces and tabs get no answer and reach no one",
        blank_lines_are_ignored,
    ),
    test(
        "limits",
        "unknown_commands_and_usage_errors",
        "an unknown command is named in its error; extra arguments get ! usage:",
        unknown_commands_and_usage_errors,
    ),
    test(
        "limits",
        "echoes_are_cut_at_32_characters",
        "an error that repeats what was typed shows at most 32 characters, then …",
        echoes_are_cut_at_32_characters,
    ),
    test(
        "limits",
        "wrong_protocols_get_one_line_and_are_closed",
        "an HTTP request or a TLS handshake as first line: one ! line, then closed",
        wrong_protocols_get_one_line_and_are_closed,
    ),
    test(
        "limits",
        "random_bytes_harm_nobody",
        "100 KB of random bytes from one client leave the others chatting",
        random_bytes_harm_nobody,
    ),
    test(
        "limits",
        "clients_vanishing_mid_line_leave_no_trace",
        "connections closed mid-name or mid-line leave the room as it was",
        clients_vanishing_mid_line_leave_no_trace,
    ),
];

fn a_too_long_line_is_refused_and_the_connection_stays(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob", "mallory"])?;
    let mallory = ctx.name("mallory");
    c[2].send(&"x".repeat(1025))?;
    c[2].expect("! line too long (max 1024 bytes)")?;
    // Exactly the limit is fine, and a \r before the \n does not count.
    let longest = "y".repeat(1024);
    c[2].send_raw(format!("{longest}\r\n").as_bytes())?;
    c[0].expect(&format!("[lobby] {mallory}: {longest}"))?;
    c[1].expect(&format!("[lobby] {mallory}: {longest}"))?;
    // Two megabytes with no newline: one refusal, and the next line is read.
    let chunk = vec![b'z'; 64 * 1024];
    for _ in 0..32 {
        c[2].send_raw(&chunk)?;
    }
    c[2].send_raw(b"\nafter the long one\n")?;
    c[2].expect("! line too long (max 1024 bytes)")?;
    c[0].expect(&format!("[lobby] {mallory}: after the long one"))?;
    c[1].expect(&format!("[lobby] {mallory}: after the long one"))?;
    let (left, right) = c.split_at_mut(1);
    still_chatting(&mut left[0], &mut right[0], "lobby", "after long lines")
}

fn bytes_that_are_not_utf8_are_refused(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    // Latin-1, and telnet's IAC WILL ECHO before text.
    for bytes in [&b"caf\xe9\n"[..], b"\xff\xfb\x01hello\n"] {
        c[0].send_raw(bytes)?;
        c[0].expect("! line is not valid UTF-8")?;
    }
    let mut eve = ctx.greeted("eve")?;
    eve.send_raw(b"ev\xffe\n")?;
    eve.expect("! line is not valid UTF-8")?;
    let (left, right) = c.split_at_mut(1);
    still_chatting(&mut left[0], &mut right[0], "lobby", "after bad bytes")
}

fn control_characters_are_refused_not_stripped(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    let refused = |code: &str| format!("! line not sent: it contains the control character {code}");
    for (line, code) in [
        ("\u{1b}[2Jscreen cleared", "U+001B"),
        ("bell\u{7}", "U+0007"),
        ("/me \u{1b}]0;new title\u{7}", "U+001B"),
        ("del\u{7f}", "U+007F"),
        ("c1 \u{9b}2J", "U+009B"),
    ] {
        c[0].send(line)?;
        c[0].expect(&refused(code))?;
    }
    let mut eve = ctx.greeted("eve")?;
    eve.send("e\u{1b}[1mve")?;
    eve.expect(&refused("U+001B"))?;
    c[0].send("a\ttab")?;
    c[1].expect(&format!("[lobby] {}: a\ttab", ctx.name("alice")))?;
    let (left, right) = c.split_at_mut(1);
    still_chatting(&mut left[0], &mut right[0], "lobby", "after escapes")
}

fn blank_lines_are_ignored(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    c[0].send_raw(b"\n   \n\t \r\n")?;
    c[0].send("not blank")?;
    c[1].expect(&format!("[lobby] {}: not blank", ctx.name("alice")))?;
    let (left, right) = c.split_at_mut(1);
    // alice was sent nothing for the blank lines: bob's answer is next.
    still_chatting(&mut right[0], &mut left[0], "lobby", "after blank lines")
}

fn unknown_commands_and_usage_errors(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    for (command, answer) in [
        ("/dance now", "! unknown command /dance, try /help"),
        ("/ quit", "! unknown command /, try /help"),
        ("/help me", "! usage: /help"),
        ("/me", "! usage: /me TEXT"),
        ("/quit now", "! usage: /quit"),
    ] {
        c[0].send(command)?;
        c[0].expect(answer)?;
    }
    let (left, right) = c.split_at_mut(1);
    still_chatting(&mut left[0], &mut right[0], "lobby", "after bad commands")
}

fn echoes_are_cut_at_32_characters(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    c[0].send(&format!("/{}", "a".repeat(40)))?;
    c[0].expect(&format!(
        "! unknown command /{}…, try /help",
        "a".repeat(32)
    ))?;
    // Cut between characters, never inside one.
    c[0].send(&format!("/{}", "語".repeat(40)))?;
    c[0].expect(&format!(
        "! unknown command /{}…, try /help",
        "語".repeat(32)
    ))?;
    let (left, right) = c.split_at_mut(1);
    still_chatting(&mut left[0], &mut right[0], "lobby", "after long echoes")
}

fn wrong_protocols_get_one_line_and_are_closed(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    let mut browser = ctx.connect("browser")?;
    browser.send_raw(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: grader\r\n\r\n")?;
    browser.expect(super::GREETING)?;
    browser.expect(super::PROMPT)?;
    browser.expect(
        "! this is a threadchat chat server, not a web server: connect with nc HOST PORT or threadchat-client",
    )?;
    browser.expect_closed(0)?;
    let mut tls = ctx.connect("tls")?;
    tls.send_raw(&[
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ])?;
    tls.expect(super::GREETING)?;
    tls.expect(super::PROMPT)?;
    tls.expect_prefix("! this is a plain-text threadchat chat server, not TLS")?;
    tls.expect_closed(0)?;
    let (left, right) = c.split_at_mut(1);
    still_chatting(&mut left[0], &mut right[0], "lobby", "after the strays")
}

/// xorshift64*: the same bytes for the same seed, on any machine.
fn junk(mut seed: u64, bytes: usize) -> Vec<u8> {
    (0..bytes)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn random_bytes_harm_nobody(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    let mut mallory = ctx.register("mallory")?;
    for client in c.iter_mut() {
        client.expect(&format!("* {} joined", ctx.name("mallory")))?;
    }
    // Random bytes, then a line that is plain text: whatever the server
    // made of the junk, alice and bob must still talk in order.
    for seed in 1..=4u64 {
        mallory.send_raw(&junk(seed * 7919, 25_000))?;
    }
    mallory.shutdown_write();
    // Whatever of mallory's reaches the others (a line that happened to be
    // valid, its leave) is skipped: alice and bob must hear each other.
    let (alice, bob) = (ctx.name("alice"), ctx.name("bob"));
    c[0].send("after the junk")?;
    c[1].skip_until(&format!("[lobby] {alice}: after the junk"), 10_000)?;
    c[1].send("me too")?;
    c[0].skip_until(&format!("[lobby] {bob}: me too"), 10_000)?;
    let newcomer = ctx.register("after")?;
    drop(newcomer);
    Ok(())
}

fn clients_vanishing_mid_line_leave_no_trace(ctx: &Ctx) -> Check {
    let mut c = ctx.register_all(&["alice", "bob"])?;
    // Gone before a whole name, or just after connecting. (The half name
    // is not a good one: had it arrived as a last line, it would only be
    // refused.)
    for n in 0..10 {
        let mut ghost = ctx.connect("ghost")?;
        if n % 2 == 0 {
            ghost.send_raw(b"gh o")?;
        }
        drop(ghost);
    }
    // Registered, then gone in the middle of a line, with lines unread.
    let mut half = ctx.register("half")?;
    for client in c.iter_mut() {
        client.expect(&format!("* {} joined", ctx.name("half")))?;
    }
    c[1].send("something half never reads")?;
    c[0].expect(&format!(
        "[lobby] {}: something half never reads",
        ctx.name("bob")
    ))?;
    half.send_raw(b"this line never ends")?;
    // Wait for the unread line to be there, so that the close is a reset.
    let got = half.next(ctx.wait());
    ensure(matches!(got, Next::Line(_)), || {
        format!("half: expected bob's line, got {got:?}")
    })?;
    half.send_raw(b" and more")?;
    drop(half);
    // The names are free again, and the room is as it was.
    let _again = ctx.register_when_free("half")?;
    for client in c.iter_mut() {
        loop {
            let line = client.line("half's return")?;
            if line == format!("* {} joined", ctx.name("half")) {
                break;
            }
            // half's leave, and, if its half line arrived before the reset,
            // that line said as its last.
            ensure(
                crate::client::is_presence(&line) || line.contains("this line never ends"),
                || {
                    format!(
                        "{}: unexpected {}",
                        client.label,
                        crate::client::shown(&line)
                    )
                },
            )?;
        }
    }
    let (left, right) = c.split_at_mut(1);
    still_chatting(&mut left[0], &mut right[0], "lobby", "after the ghosts")
}
