//! The monitor's stats line (optional): every five seconds (`--monitor-every`)
//! the server writes a line to its standard error or output that says how
//! many clients are online as `N online`, as threadchat's monitor thread
//! does.

use std::time::{Duration, Instant};

use super::{test, Ctx, Needs, Test};
use crate::client::{ensure, fail, secs, shown, Check, Failure};
use crate::server::Output;

pub const TESTS: &[Test] = &[
    test(
        "monitor",
        "a_stats_line_every_interval",
        "a line with `N online` in the server's output every 5 s, give or take a quarter",
        a_stats_line_every_interval,
    )
    .needs(Needs::OwnServer)
    .limit(60),
    test(
        "monitor",
        "the_line_counts_clients_online",
        "with 2 clients registered, the next stats line says `2 online`",
        the_line_counts_clients_online,
    )
    .needs(Needs::OwnServer)
    .limit(60),
];

/// The number before ` online`, if the line has one.
fn online(line: &str) -> Option<usize> {
    let (before, _) = line.split_once(" online")?;
    before
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .filter(|digits| !digits.is_empty())?
        .parse()
        .ok()
}

/// The next stats line after line number `from`, within `within`: its
/// number, when it came, and its count.
fn next_stats_line(
    output: &Output,
    from: usize,
    within: Duration,
) -> Result<(usize, Instant, usize, String), Failure> {
    let deadline = Instant::now() + within;
    loop {
        let found = output
            .since(from)
            .into_iter()
            .find_map(|(n, at, line)| online(&line).map(|count| (n, at, count, line)));
        if let Some(found) = found {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            fail!(
                "no line saying `N online` in the server's output within {}; its last output: {}",
                secs(within),
                output.tail(3)
            );
        }
        // Polling the output collected by the grader's own threads.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn a_stats_line_every_interval(ctx: &Ctx) -> Check {
    let output = &ctx.process()?.output;
    let every = ctx.settings.monitor_every;
    let slack = (every / 4).max(Duration::from_millis(500));
    let (first, first_at, _, _) = next_stats_line(output, 0, every + slack)?;
    let (_, second_at, _, line) = next_stats_line(output, first + 1, every + slack)?;
    let gap = second_at - first_at;
    ensure(gap + slack >= every && gap <= every + slack, || {
        format!(
            "two stats lines {} apart, expected {} give or take {}: {}",
            secs(gap),
            secs(every),
            secs(slack),
            shown(&line)
        )
    })
}

fn the_line_counts_clients_online(ctx: &Ctx) -> Check {
    let output = &ctx.process()?.output;
    let every = ctx.settings.monitor_every;
    let _clients = ctx.register_all(&["alice", "bob"])?;
    let registered = output.count();
    let deadline = Instant::now() + 2 * every + Duration::from_secs(1);
    let mut from = registered;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (n, _, count, line) = next_stats_line(output, from, left)?;
        if count == 2 {
            return Ok(());
        }
        // A line written as the clients registered may count fewer.
        if n > registered {
            fail!("with 2 clients online the stats line said {}", shown(&line));
        }
        from = n + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::online;

    #[test]
    fn the_count_is_the_number_just_before_online() {
        assert_eq!(
            online("[INFO monitor] stats: 2 online, 3 connections"),
            Some(2)
        );
        assert_eq!(online("12 online"), Some(12));
        assert_eq!(online("users online: 3"), None);
        assert_eq!(online("x7 online"), Some(7));
    }
}
