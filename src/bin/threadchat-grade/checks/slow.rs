//! The slow consumer (PROTOCOL.md, "backlog" in "Limits and errors"): a
//! client that stops reading costs the others nothing, and when it reads
//! again, every line it lost is told, in the place it was lost.
//!
//! The flood is 12 MB: more than the kernel's socket buffers on loopback
//! (about 4 MB on Linux) plus a backlog of 256 KiB, so a server that bounds
//! the backlog must drop lines for the client that does not read.

use super::{test, Ctx, Test};
use crate::client::{ensure, fail, shown, Check, Client, Failure};

pub const TESTS: &[Test] = &[
    test(
        "slow",
        "others_keep_receiving_while_one_stops_reading",
        "while one client reads nothing, another gets all 12,000 lines of a flood, in order",
        others_keep_receiving_while_one_stops_reading,
    )
    .limit(90),
    test(
        "slow",
        "drops_are_told_in_place",
        "the client that stopped reading gets ! N lines were dropped ... where they were lost",
        drops_are_told_in_place,
    )
    .limit(90),
];

const LINES: usize = 12_000;
const PADDING: usize = 1_000;
const BATCH: usize = 100;

struct Flood {
    /// Kept until the end: its leave would be one more line for stuck.
    _reader: Client,
    sender: Client,
    stuck: Client,
    /// What each flood line starts with, before its number.
    prefix: String,
}

/// reader, sender and stuck in the lobby; stuck stops reading; sender
/// floods, in batches of 100 lines that reader reads in full before the
/// next (so reader's own backlog never holds more than 100 KB), and reader
/// must get every line, in order.
fn flood(ctx: &Ctx) -> Result<Flood, Failure> {
    let mut c = ctx.register_all(&["reader", "sender", "stuck"])?;
    let stuck = c
        .pop()
        .ok_or_else(|| Failure("grader: no stuck client".into()))?;
    let mut sender = c.pop().ok_or_else(|| Failure("grader: no sender".into()))?;
    let mut reader = c.pop().ok_or_else(|| Failure("grader: no reader".into()))?;
    let prefix = format!("[lobby] {}: ", sender.label);
    let padding = "x".repeat(PADDING);
    for batch in 0..LINES / BATCH {
        let lines = batch * BATCH..(batch + 1) * BATCH;
        let text: String = lines.clone().map(|n| format!("{n} {padding}\n")).collect();
        sender.send_raw(text.as_bytes())?;
        for n in lines {
            let line = reader.line(&format!(
                "line {n} of the flood, while {} reads nothing",
                stuck.label
            ))?;
            let got = line
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split(' ').next());
            ensure(got == Some(n.to_string().as_str()), || {
                format!(
                    "{}: expected line {n} of the flood, got {}",
                    reader.label,
                    shown(&line)
                )
            })?;
        }
    }
    Ok(Flood {
        _reader: reader,
        sender,
        stuck,
        prefix,
    })
}

fn others_keep_receiving_while_one_stops_reading(ctx: &Ctx) -> Check {
    flood(ctx).map(drop)
}

/// `! N lines were dropped because your connection is too slow`.
fn dropped(line: &str) -> Option<usize> {
    line.strip_prefix("! ")?
        .strip_suffix(" lines were dropped because your connection is too slow")?
        .parse()
        .ok()
}

fn drops_are_told_in_place(ctx: &Ctx) -> Check {
    let Flood {
        _reader,
        mut sender,
        mut stuck,
        prefix,
    } = flood(ctx)?;
    // Reading again. One more line after the flood, so that the last gap
    // (if the flood ended in one) has a line after it.
    sender.send("after the flood")?;
    let after = format!("{prefix}after the flood");
    let (mut next, mut received, mut told) = (0usize, 0usize, 0usize);
    loop {
        let line = stuck.line(&format!("line {next} of the flood, or a drop notice"))?;
        if let Some(count) = dropped(&line) {
            ensure(count > 0 && next + count <= LINES, || {
                format!(
                    "{}: {} after line {next} of {LINES}",
                    stuck.label,
                    shown(&line)
                )
            })?;
            next += count;
            told += count;
            continue;
        }
        if line == after {
            ensure(next == LINES, || {
                format!(
                    "{}: got {received} of {LINES} lines and was told of {told} dropped: {} lines lost without a notice",
                    stuck.label,
                    LINES - next
                )
            })?;
            break;
        }
        let number = line
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok());
        match number {
            Some(n) if n == next => {
                next += 1;
                received += 1;
            }
            Some(n) => fail!(
                "{}: after line {} came line {n} with no notice of {} dropped lines before it",
                stuck.label,
                next.wrapping_sub(1) as isize,
                n as isize - next as isize
            ),
            None => fail!(
                "{}: expected a flood line, got {}",
                stuck.label,
                shown(&line)
            ),
        }
    }
    ensure(told > 0, || {
        format!(
            "{}: got all {LINES} lines ({} MB) though it read nothing while they were sent: its backlog should be bounded (PROTOCOL: --max-backlog, 256 KiB), dropping lines and saying so",
            stuck.label,
            LINES * PADDING / 1_000_000
        )
    })
}
