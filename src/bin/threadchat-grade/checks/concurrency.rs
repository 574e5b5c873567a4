//! Concurrency: hundreds of clients at once (300, or 100 with `--quick`),
//! with no line lost or reordered, one owner per name, and no deadlock when
//! everyone does everything at once.
//!
//! The clients are read by a few threads of the grader's, each taking its
//! share in turn; every wait is still bounded by `--wait`.

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;

use super::{test, Ctx, Test, GREETING, PROMPT};
use crate::client::{ensure, fail, is_presence, shown, Check, Client, Failure};

pub const TESTS: &[Test] = &[
    test(
        "concurrency",
        "hundreds_register_at_once",
        "300 clients connect and choose names at the same moment; each is welcomed",
        hundreds_register_at_once,
    )
    .limit(90),
    test(
        "concurrency",
        "every_line_reaches_hundreds_in_order",
        "10 of 300 clients talk at once; everyone gets every line, each sender's in order",
        every_line_reaches_hundreds_in_order,
    )
    .limit(120),
    test(
        "concurrency",
        "one_name_claimed_by_many_goes_to_one",
        "50 clients ask for the same name at once: exactly one gets it",
        one_name_claimed_by_many_goes_to_one,
    ),
    test(
        "concurrency",
        "no_deadlock_when_everyone_is_busy",
        "100 clients chat, rename, join, whisper and list at once; all get their answers",
        no_deadlock_when_everyone_is_busy,
    )
    .limit(120),
];

/// Threads that read the clients, each its share.
const READERS: usize = 8;

fn crowd_size(ctx: &Ctx, full: usize) -> usize {
    if ctx.settings.quick {
        full / 3
    } else {
        full
    }
}

/// `f` for each client, on [`READERS`] threads; the first failure wins.
fn on_each<F>(clients: Vec<Client>, f: F) -> Result<Vec<Client>, Failure>
where
    F: Fn(usize, &mut Client) -> Check + Send + Sync + 'static,
{
    let total = clients.len();
    let f = Arc::new(f);
    let mut shares: Vec<Vec<(usize, Client)>> = (0..READERS).map(|_| Vec::new()).collect();
    for (n, client) in clients.into_iter().enumerate() {
        shares[n % READERS].push((n, client));
    }
    let workers: Vec<_> = shares
        .into_iter()
        .map(|mut share| {
            let f = f.clone();
            thread::spawn(move || {
                for (n, client) in share.iter_mut() {
                    f(*n, client)?;
                }
                Ok::<_, Failure>(share)
            })
        })
        .collect();
    let mut back: Vec<Option<Client>> = (0..total).map(|_| None).collect();
    let mut first_failure = None;
    for worker in workers {
        match worker.join() {
            Ok(Ok(share)) => share.into_iter().for_each(|(n, c)| back[n] = Some(c)),
            Ok(Err(failure)) => first_failure = first_failure.or(Some(failure)),
            Err(_) => {
                first_failure =
                    first_failure.or(Some(Failure("grader: a reading thread panicked".into())))
            }
        }
    }
    match first_failure {
        Some(failure) => Err(failure),
        None => Ok(back.into_iter().flatten().collect()),
    }
}

/// `n` clients, connected first, then all choosing names at once; each has
/// read its welcome (and nothing after it).
fn crowd(ctx: &Ctx, n: usize) -> Result<Vec<Client>, Failure> {
    let mut clients = Vec::with_capacity(n);
    for k in 0..n {
        clients.push(ctx.connect(&ctx.name(&format!("c{k}")))?);
    }
    for client in &mut clients {
        let name = client.label.clone();
        client.send(&name)?;
    }
    on_each(clients, |_, client| {
        client.expect(GREETING)?;
        client.expect(PROMPT)?;
        client.expect_prefix(&format!("* welcome {}! you are in lobby;", client.label))?;
        Ok(())
    })
}

fn hundreds_register_at_once(ctx: &Ctx) -> Check {
    let clients = crowd(ctx, crowd_size(ctx, 300))?;
    // And the room works: the last one's line reaches the first.
    let mut clients = clients;
    let last = clients.len() - 1;
    let speaker = clients[last].label.clone();
    clients[last].send("hello, all")?;
    let want = format!("[lobby] {speaker}: hello, all");
    clients[0].expect_after_presence(&want)
}

fn every_line_reaches_hundreds_in_order(ctx: &Ctx) -> Check {
    const SENDERS: usize = 10;
    const LINES: usize = 30;
    let clients = crowd(ctx, crowd_size(ctx, 300))?;
    let names: Vec<String> = clients.iter().map(|c| c.label.clone()).collect();
    // The senders write at the same moment, each from a thread of its own.
    let start = Arc::new(Barrier::new(SENDERS));
    let mut sending = Vec::new();
    for client in &clients[..SENDERS] {
        let mut stream: TcpStream = client.writer()?;
        let start = start.clone();
        sending.push(thread::spawn(move || {
            let text: String = (0..LINES).map(|m| format!("m{m}\n")).collect();
            start.wait();
            stream.write_all(text.as_bytes())
        }));
    }
    for sender in sending {
        if !matches!(sender.join(), Ok(Ok(()))) {
            fail!("grader: a sender could not send its lines");
        }
    }
    let names = Arc::new(names);
    on_each(clients, move |me, client| {
        let mut next = [0usize; SENDERS];
        let expected = if me < SENDERS {
            (SENDERS - 1) * LINES
        } else {
            SENDERS * LINES
        };
        for _ in 0..expected {
            let line = loop {
                let line = client.line(&format!("the {expected} lines of {SENDERS} senders"))?;
                if !is_presence(&line) {
                    break line;
                }
            };
            let Some((sender, m)) = parse_crowd_line(&line, &names[..SENDERS]) else {
                fail!(
                    "{}: expected a line m0..m{} from one of the senders, got {}",
                    client.label,
                    LINES - 1,
                    shown(&line)
                );
            };
            ensure(sender != me, || {
                format!("{}: was sent its own line {}", client.label, shown(&line))
            })?;
            ensure(m == next[sender], || {
                format!(
                    "{}: from {} expected m{} next, got m{m}: lines lost or out of order",
                    client.label, names[sender], next[sender]
                )
            })?;
            next[sender] += 1;
        }
        Ok(())
    })
    .map(drop)
}

/// `[lobby] NAME: mN` → (which sender, N).
fn parse_crowd_line(line: &str, senders: &[String]) -> Option<(usize, usize)> {
    let rest = line.strip_prefix("[lobby] ")?;
    let (name, text) = rest.split_once(": ")?;
    let sender = senders.iter().position(|s| s == name)?;
    Some((sender, text.strip_prefix('m')?.parse().ok()?))
}

fn one_name_claimed_by_many_goes_to_one(ctx: &Ctx) -> Check {
    const CLAIMANTS: usize = 50;
    let name = ctx.name("same");
    let mut clients = Vec::new();
    for k in 0..CLAIMANTS {
        let mut client = ctx.greeted(&format!("claimant {k}"))?;
        client.label = format!("claimant {k}");
        clients.push(client);
    }
    let start = Arc::new(Barrier::new(CLAIMANTS));
    let claiming: Vec<_> = clients
        .iter()
        .map(|client| {
            let stream = client.writer();
            let (start, line) = (start.clone(), format!("{name}\n"));
            thread::spawn(move || {
                let mut stream = stream?;
                start.wait();
                stream
                    .write_all(line.as_bytes())
                    .map_err(|e| Failure(format!("grader: could not send a name: {e}")))
            })
        })
        .collect();
    for claim in claiming {
        claim
            .join()
            .map_err(|_| Failure("grader: a claiming thread panicked".into()))??;
    }
    let welcome = format!("* welcome {name}! ");
    let taken = format!("! name \"{name}\" is taken, choose another");
    let mut winners = Vec::new();
    for client in &mut clients {
        let line = client.line("a welcome or `is taken`")?;
        if line.starts_with(&welcome) {
            winners.push(client.label.clone());
        } else if line != taken {
            fail!(
                "{}: expected the welcome or {}, got {}",
                client.label,
                shown(&taken),
                shown(&line)
            );
        }
    }
    ensure(winners.len() == 1, || {
        format!(
            "{CLAIMANTS} clients asked for {name:?} at once and {} were welcomed ({}): a name must have one owner",
            winners.len(),
            winners.join(", ")
        )
    })
}

fn no_deadlock_when_everyone_is_busy(ctx: &Ctx) -> Check {
    let size = 100;
    let clients = crowd(ctx, size)?;
    let names: Arc<Vec<String>> = Arc::new(clients.iter().map(|c| c.label.clone()).collect());
    let rooms: Arc<Vec<String>> = Arc::new((0..5).map(|r| ctx.name(&format!("r{r}"))).collect());
    let scripts: Vec<String> = (0..size)
        .map(|k| {
            let me = &names[k];
            let peer = &names[(k * 7 + 1) % size];
            let room = &rooms[k % rooms.len()];
            // Renames (which claim names) and lists (which read them)
            // over and over: a lock taken in the wrong order, or twice,
            // shows up here.
            let renames = (0..3).flat_map(|_| {
                [
                    format!("/nick {me}x"),
                    "/users".to_string(),
                    format!("/nick {me}"),
                    "/users".to_string(),
                ]
            });
            let rest = [
                format!("hello from {me}"),
                format!("/w {peer} psst"),
                format!("/join {room}"),
                "/who".to_string(),
                "/rooms".to_string(),
                format!("in {room}"),
                "/leave".to_string(),
                format!("/done-{k}"),
            ];
            renames
                .chain(rest)
                .map(|line| line + "\n")
                .collect::<String>()
        })
        .collect();
    // Everyone sends their whole script at once...
    let mut clients = clients;
    for (client, script) in clients.iter_mut().zip(&scripts) {
        client.send_raw(script.as_bytes())?;
    }
    // ...and must get to the answer to its last line. (They stay
    // connected until the end.)
    let _crowd = on_each(clients, |k, client| {
        let done = format!("! unknown command /done-{k}, try /help");
        for _ in 0..100_000 {
            let line = client.line(&format!(
                "{} (the answer to its last command) while everyone was busy",
                shown(&done)
            ))?;
            if line == done {
                return Ok(());
            }
        }
        fail!("{}: never got {}", client.label, shown(&done))
    })?;
    // And the server still takes newcomers (who get the lobby's history).
    let mut late = ctx.register("late1")?;
    let mut later = ctx.register("late2")?;
    later.send("still alive")?;
    late.skip_until(&format!("[lobby] {}: still alive", ctx.name("late2")), 200)
        .map(drop)
}
