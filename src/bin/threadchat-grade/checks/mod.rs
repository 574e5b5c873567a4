//! The tests, by category, and what each one is handed: a [`Ctx`] with the
//! server's address, the names to use, and, when the grader started the
//! server, the process itself.
//!
//! Each test runs on a thread of its own (the runner's), with its own
//! clients; nothing is shared between tests but the server process. What a
//! test checks comes from docs/PROTOCOL.md, and only what a client can see,
//! so that any server of the protocol can pass. Tests lean on registration
//! and plain chat lines, which every category needs, and otherwise only on
//! their own category's features (with joins and leaves skipped where they
//! are not the point), so that a server with one bug loses points in one
//! category.

mod broadcast;
mod concurrency;
mod history;
mod limits;
mod monitor;
mod registration;
mod rooms;
mod shutdown;
mod slow;
mod threads;
mod users;
mod whispers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::Settings;
use crate::client::{fail, Client, Failure};
use crate::server::ServerProcess;

/// What a test needs beyond a connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Needs {
    /// Runs against any server, even one others use.
    Connection,
    /// A server of its own, new and empty (exact counts, shutdown, output).
    OwnServer,
    /// A server of its own on this machine, read through Linux's /proc.
    Proc,
}

pub struct Test {
    pub category: &'static str,
    pub name: &'static str,
    /// One line: what it checks.
    pub summary: &'static str,
    pub needs: Needs,
    /// The most it may take, whatever the server does.
    pub limit: Duration,
    pub run: fn(&Ctx) -> Result<(), Failure>,
}

impl Test {
    pub fn id(&self) -> String {
        format!("{}/{}", self.category, self.name)
    }
}

/// A test of `category` that needs only a connection, with the usual limit.
const fn test(
    category: &'static str,
    name: &'static str,
    summary: &'static str,
    run: fn(&Ctx) -> Result<(), Failure>,
) -> Test {
    Test {
        category,
        name,
        summary,
        needs: Needs::Connection,
        limit: Duration::from_secs(30),
        run,
    }
}

impl Test {
    const fn needs(self, needs: Needs) -> Test {
        Test { needs, ..self }
    }

    const fn limit(self, secs: u64) -> Test {
        Test {
            limit: Duration::from_secs(secs),
            ..self
        }
    }
}

/// Every test, in the order they run.
pub fn all() -> Vec<&'static Test> {
    [
        registration::TESTS,
        broadcast::TESTS,
        whispers::TESTS,
        users::TESTS,
        rooms::TESTS,
        history::TESTS,
        limits::TESTS,
        slow::TESTS,
        concurrency::TESTS,
        shutdown::TESTS,
        threads::TESTS,
        monitor::TESTS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// What a test is handed.
pub struct Ctx {
    pub addr: SocketAddr,
    pub settings: Settings,
    /// Put before every name and room name: empty on a server of the test's
    /// own, unique per test on a shared one.
    prefix: String,
    process: Option<Arc<ServerProcess>>,
}

pub const PROMPT: &str = "* choose a name (1-24 letters, digits, - or _):";
pub const GREETING: &str = "* welcome to threadchat";

impl Ctx {
    pub fn new(
        addr: SocketAddr,
        settings: Settings,
        prefix: String,
        process: Option<Arc<ServerProcess>>,
    ) -> Ctx {
        Ctx {
            addr,
            settings,
            prefix,
            process,
        }
    }

    /// The name this test uses for `base`.
    pub fn name(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    /// Whether the server is this test's alone (counts are exact).
    pub fn own_server(&self) -> bool {
        self.prefix.is_empty()
    }

    pub fn wait(&self) -> Duration {
        self.settings.wait
    }

    /// The server process, for the tests that need it.
    pub fn process(&self) -> Result<&ServerProcess, Failure> {
        match &self.process {
            Some(process) => Ok(process),
            None => fail!("grader: this test needs a server it started itself (--exe)"),
        }
    }

    /// A connection, nothing read yet.
    pub fn connect(&self, label: &str) -> Result<Client, Failure> {
        let ours = (!self.prefix.is_empty()).then(|| self.prefix.clone());
        Client::connect(self.addr, label, self.wait(), ours)
    }

    /// A connection that has read the greeting and the name prompt.
    pub fn greeted(&self, label: &str) -> Result<Client, Failure> {
        let mut client = self.connect(label)?;
        client.expect(GREETING)?;
        client.expect(PROMPT)?;
        Ok(client)
    }

    /// A client registered as `self.name(base)`, having read its welcome.
    pub fn register(&self, base: &str) -> Result<Client, Failure> {
        let name = self.name(base);
        let mut client = self.greeted(&name)?;
        client.send(&name)?;
        client.expect_prefix(&format!("* welcome {name}! you are in lobby;"))?;
        Ok(client)
    }

    /// Registers each in turn; each earlier one reads the newcomer's
    /// `* NAME joined`.
    pub fn register_all(&self, bases: &[&str]) -> Result<Vec<Client>, Failure> {
        let mut clients: Vec<Client> = Vec::with_capacity(bases.len());
        for base in bases {
            let newcomer = self.register(base)?;
            let joined = format!("* {} joined", self.name(base));
            for earlier in &mut clients {
                earlier.expect(&joined)?;
            }
            clients.push(newcomer);
        }
        Ok(clients)
    }

    /// Registers `base`, retrying while the name is still held (a name is
    /// freed a moment after its owner leaves), for at most the wait time.
    pub fn register_when_free(&self, base: &str) -> Result<Client, Failure> {
        let name = self.name(base);
        let mut client = self.greeted(&name)?;
        let deadline = Instant::now() + self.wait();
        let taken = format!("! name \"{name}\" is taken, choose another");
        loop {
            client.send(&name)?;
            // The prompt after a refusal is registration's to check.
            let line = loop {
                let line = client.line(&format!("the welcome for {name}"))?;
                if line != PROMPT {
                    break line;
                }
            };
            if line.starts_with(&format!("* welcome {name}! ")) {
                return Ok(client);
            }
            if line != taken || Instant::now() >= deadline {
                fail!(
                    "{name}: expected the name to be free again within {}, got {}",
                    crate::client::secs(self.wait()),
                    crate::client::shown(&line)
                );
            }
            // Polling for the old owner's leave to be handled: the server
            // offers nothing to wait on.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Two clients still talk both ways, and nothing else was waiting for
/// either: the line sent is the very next line received.
pub fn still_chatting(
    a: &mut Client,
    b: &mut Client,
    room: &str,
    tag: &str,
) -> Result<(), Failure> {
    let (a_name, b_name) = (a.label.clone(), b.label.clone());
    a.send(&format!("{a_name} still here {tag}"))?;
    b.expect(&format!("[{room}] {a_name}: {a_name} still here {tag}"))?;
    b.send(&format!("{b_name} still here {tag}"))?;
    a.expect(&format!("[{room}] {b_name}: {b_name} still here {tag}"))
}
