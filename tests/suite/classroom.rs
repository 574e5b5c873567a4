//! A class of 60 behind one NAT (one address), for a minute, as a class
//! goes: half in a terminal, half in the browser with the page's polling,
//! chatting, changing rooms, leaving and coming back. Nobody gets a 503, a
//! `slow down`, a busy room or a flood kick (docs/PROTOCOL.md, "Limits":
//! every per-address limit is sized for this).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::http::{self, status};
use crate::common::rng::Rng;
use crate::common::ws::{WsClient, CLOSE, TEXT};
use crate::common::{start_server, test_config, Client, DEADLINE};
use threadchat::{Config, RateLimit};

/// One student, in a terminal or in a browser.
enum Student {
    Nc(Client),
    Page(WsClient),
}

impl Student {
    fn send(&mut self, line: &str) {
        match self {
            Student::Nc(client) => client.send(line),
            Student::Page(page) => page.send(line),
        }
    }

    /// Says `/quit` and waits until the server has closed the connection,
    /// so that the name is free again; returns the lines that came first.
    fn quit(mut self) -> Vec<String> {
        self.send("/quit");
        let deadline = Instant::now() + DEADLINE;
        let mut lines = Vec::new();
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            match &mut self {
                Student::Nc(client) => match client.try_line(left) {
                    Ok(line) => lines.push(line),
                    Err(_) => return lines,
                },
                Student::Page(page) => match page.try_frame_within(left) {
                    Ok(frame) if frame.opcode == TEXT => lines.push(frame.text()),
                    Ok(frame) if frame.opcode == CLOSE => return lines,
                    Ok(_) => {}
                    Err(_) => return lines,
                },
            }
        }
        panic!("the server did not close a connection within {DEADLINE:?} of its /quit");
    }

    /// Whatever has arrived, without waiting.
    fn drain(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        match self {
            Student::Nc(client) => {
                while let Ok(line) = client.try_line(Duration::from_millis(1)) {
                    lines.push(line);
                }
            }
            Student::Page(page) => {
                while let Ok(frame) = page.try_frame_within(Duration::from_millis(1)) {
                    if frame.opcode == TEXT {
                        lines.push(frame.text());
                    }
                }
            }
        }
        lines
    }
}

fn join(addr: SocketAddr, web: SocketAddr, n: usize) -> Student {
    let name = format!("student{n:02}");
    match n % 2 {
        0 => Student::Nc(Client::register(addr, &name)),
        _ => Student::Page(WsClient::register(web, &name)),
    }
}

#[test]
fn a_class_of_sixty_behind_one_nat_chats_for_a_minute_without_a_refusal() {
    // The defaults a real server runs with, the web door on.
    let server = start_server(Config {
        http: Some("127.0.0.1:0".to_string()),
        max_per_addr: Config::default().max_per_addr,
        rate_limit: Some(RateLimit {
            lines: 20,
            per: Duration::from_secs(10),
        }),
        room_rate: Config::default().room_rate,
        ..test_config()
    });
    let (addr, web) = (server.local_addr(), server.web_addr().expect("web door"));
    let mut students: Vec<Student> = (0..60).map(|n| join(addr, web, n)).collect();
    let mut random = Rng::new(60);
    let started = Instant::now();
    let mut polled = Instant::now();
    let mut refusals = Vec::new();
    let mut polls = 0;
    // Pages that saw someone come or go ask for lists, at most once a second.
    let mut asked: Vec<Instant> = vec![started; students.len()];
    let mut presence_changed: HashSet<usize> = HashSet::new();
    while started.elapsed() < Duration::from_secs(60) {
        for (n, student) in students.iter_mut().enumerate() {
            for line in student.drain() {
                if line.starts_with("! ") {
                    refusals.push(format!("student{n:02}: {line}"));
                }
                if line.ends_with(" joined") || line.ends_with(" left") {
                    presence_changed.insert(n);
                }
            }
            // A line every ten seconds or so each.
            if random.below(100) == 0 {
                student.send(&format!("a thought from student{n:02}"));
            }
            if let Student::Page(page) = student {
                if presence_changed.contains(&n) && asked[n].elapsed() >= Duration::from_secs(1) {
                    page.send("/who");
                    page.send("/rooms");
                    asked[n] = Instant::now();
                    presence_changed.remove(&n);
                }
            }
        }
        // Now and then someone goes to another room and back, or leaves
        // and comes back.
        match random.below(40) {
            0 => {
                let n = random.below(60) as usize;
                students[n].send("/join groupwork");
            }
            1 => {
                let n = random.below(60) as usize;
                students[n].send("/leave");
            }
            2 => {
                // The same student comes back under the same name, once
                // the old connection is gone (until then the name is
                // rightly taken).
                let n = random.below(60) as usize;
                for line in students.remove(n).quit() {
                    if line.starts_with("! ") {
                        refusals.push(format!("student{n:02}: {line}"));
                    }
                }
                students.insert(n, join(addr, web, n));
            }
            _ => {}
        }
        // Every open page polls the live view once a second.
        if polled.elapsed() >= Duration::from_secs(1) {
            polled = Instant::now();
            for student in &students {
                if let Student::Page(_) = student {
                    let answer = http::request(
                        web,
                        &format!("GET /stats.json HTTP/1.1\r\nHost: {web}\r\n\r\n"),
                    );
                    polls += 1;
                    if status(&answer) != 200 {
                        refusals.push(format!("a poll: {}", answer.lines().next().unwrap_or("")));
                    }
                }
            }
        }
    }
    assert!(
        polls >= 30 * 30,
        "the pages polled {polls} times: at least 30 rounds of 30"
    );
    assert!(
        refusals.is_empty(),
        "{} refusals:\n{}",
        refusals.len(),
        refusals.join("\n")
    );
}
