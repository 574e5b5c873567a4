//! The user list (PROTOCOL.md, `/users`): everyone online, counted, sorted
//! ignoring case, and up to date.

use std::time::Instant;

use super::{test, Ctx, Test};
use crate::client::{ensure, fail, shown, Check, Client, Failure};

pub const TESTS: &[Test] = &[
    test(
        "users",
        "users_lists_everyone_sorted_ignoring_case",
        "/users answers * online (N): every name, sorted ignoring case",
        users_lists_everyone_sorted_ignoring_case,
    ),
    test(
        "users",
        "users_follows_arrivals_and_departures",
        "the list gains newcomers and loses those who left",
        users_follows_arrivals_and_departures,
    ),
    test(
        "users",
        "users_usage_and_capitals",
        "/USERS works; /users with an argument gets ! usage: /users",
        users_usage_and_capitals,
    ),
];

/// Parses `* online (N): a, b, c` (or another `* WHAT (N): ...` list).
pub fn parse_list(line: &str, what: &str) -> Option<Vec<String>> {
    let rest = line.strip_prefix(&format!("* {what} ("))?;
    let (count, names) = rest.split_once("): ")?;
    let names: Vec<String> = names.split(", ").map(str::to_string).collect();
    (count.parse::<usize>().ok()? == names.len()).then_some(names)
}

/// Sends `/users` and checks the reply lists exactly `bases` (by this
/// test's names; on a shared server, others may be listed too).
pub fn expect_users(ctx: &Ctx, client: &mut Client, bases: &[&str]) -> Check {
    client.send("/users")?;
    let line = client.expect_prefix("* online (")?;
    check_users(ctx, &client.label, &line, bases)
}

fn check_users(ctx: &Ctx, who: &str, line: &str, bases: &[&str]) -> Check {
    let mut want: Vec<String> = bases.iter().map(|base| ctx.name(base)).collect();
    want.sort_by_key(|name| name.to_lowercase());
    let Some(listed) = parse_list(line, "online") else {
        fail!(
            "{who}: expected * online (N): NAME, NAME, ... with N names, got {}",
            shown(line)
        );
    };
    let mut sorted = listed.clone();
    sorted.sort_by_key(|name| name.to_lowercase());
    ensure(sorted == listed, || {
        format!(
            "{who}: /users should be sorted ignoring case, got {}",
            shown(line)
        )
    })?;
    let ours: Vec<String> = if ctx.own_server() {
        listed
    } else {
        listed
            .into_iter()
            .filter(|n| n.starts_with(&ctx.name("")))
            .collect()
    };
    ensure(ours == want, || {
        format!(
            "{who}: /users should list {}, got {}",
            want.join(", "),
            shown(line)
        )
    })
}

fn users_lists_everyone_sorted_ignoring_case(ctx: &Ctx) -> Check {
    let names = ["bob", "Alice", "carol", "Dave", "erin", "Frank"];
    let mut clients = ctx.register_all(&names)?;
    expect_users(ctx, &mut clients[2], &names)?;
    expect_users(ctx, &mut clients[5], &names)
}

/// Asks `/users` until it lists `bases` (a leave is handled a moment
/// after the connection closes), within the wait time.
fn users_until(ctx: &Ctx, client: &mut Client, bases: &[&str]) -> Check {
    let deadline = Instant::now() + ctx.wait();
    loop {
        client.send("/users")?;
        let line = loop {
            let line = client.line("the reply to /users")?;
            if !crate::client::is_presence(&line) {
                break line;
            }
        };
        match check_users(ctx, &client.label, &line, bases) {
            Ok(()) => return Ok(()),
            Err(Failure(why)) if Instant::now() >= deadline => {
                fail!(
                    "{why} (still, {} after the change)",
                    crate::client::secs(ctx.wait())
                )
            }
            Err(_) => continue,
        }
    }
}

fn users_follows_arrivals_and_departures(ctx: &Ctx) -> Check {
    let mut clients = ctx.register_all(&["alice", "bob"])?;
    expect_users(ctx, &mut clients[0], &["alice", "bob"])?;
    let carol = ctx.register("carol")?;
    users_until(ctx, &mut clients[0], &["alice", "bob", "carol"])?;
    let mut bob = clients
        .pop()
        .ok_or_else(|| Failure("grader: no bob".into()))?;
    bob.send("/quit")?;
    bob.expect_prefix_after_presence("* bye")?;
    users_until(ctx, &mut clients[0], &["alice", "carol"])?;
    drop(carol);
    users_until(ctx, &mut clients[0], &["alice"])
}

fn users_usage_and_capitals(ctx: &Ctx) -> Check {
    let mut alice = ctx.register("alice")?;
    alice.send("/USERS")?;
    let line = alice.expect_prefix("* online (")?;
    check_users(ctx, "alice", &line, &["alice"])?;
    alice.send("/users now")?;
    alice.expect("! usage: /users")
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    #[test]
    fn a_list_parses_only_when_its_count_matches() {
        assert_eq!(
            parse_list("* online (2): alice, bob", "online"),
            Some(vec!["alice".to_string(), "bob".to_string()])
        );
        assert_eq!(parse_list("* online (3): alice, bob", "online"), None);
        assert_eq!(
            parse_list("* in #rust (1): alice", "in #rust"),
            Some(vec!["alice".into()])
        );
        assert_eq!(parse_list("online: alice", "online"), None);
    }
}
