//! Claiming a name on every server at once, for reader threads (`--redis`).
//!
//! Runs on whichever reader thread is registering or renaming its client.
//! The claim is one Redis command, `SET threadchat:name:NAME SERVER NX EX
//! TTL`: Redis runs commands one at a time, so of two servers claiming one
//! name at once exactly one gets `OK`. The `redis-publisher` thread keeps
//! the claims of this server's users alive, and lets them go.
//!
//! Readers share a few connections in a pool: a `Mutex<Vec<Connection>>`.
//! The lock is held only to take a connection out or put it back, never
//! while talking to Redis; a reader that finds the pool empty opens a new
//! connection. It is a leaf lock: nothing else is locked while it is held.

use std::time::Duration;

use parking_lot::Mutex;
use redis::{Client, Connection, RedisResult};

use super::{name_key, ServerId};
use crate::shared::NamesElsewhere;

/// Connections kept for the next claims; more are opened when needed, and
/// closed when they would not fit back.
const IDLE_CONNECTIONS: usize = 8;

/// Longest a reader waits on Redis for one claim, per step (connect,
/// send, receive).
pub(crate) const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) struct RedisNames {
    client: Client,
    server: ServerId,
    ttl: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl RedisNames {
    pub(crate) fn new(client: Client, server: ServerId, ttl: Duration) -> Self {
        RedisNames {
            client,
            server,
            ttl,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection, if there is one. The guard is a temporary,
    /// dropped at the end of the statement, before any talking to Redis.
    fn take_idle(&self) -> Option<Connection> {
        self.idle.lock().pop()
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock();
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(connection);
        }
    }

    /// True if the name is ours now (newly, or already: a rename that only
    /// changes case, or a claim made again before its release).
    fn try_claim(&self, connection: &mut Connection, name: &str) -> RedisResult<bool> {
        let key = name_key(name);
        let server = self.server.to_string();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&server)
            .arg("NX")
            .arg("EX")
            .arg(self.ttl.as_secs())
            .query(connection)?;
        if set.is_some() {
            return Ok(true);
        }
        let holder: Option<String> = redis::cmd("GET").arg(&key).query(connection)?;
        Ok(holder == Some(server))
    }
}

impl NamesElsewhere for RedisNames {
    fn claim(&self, name: &str) -> Result<(), String> {
        // An idle connection may have died with a Redis that has since
        // restarted; then the claim is tried once more on a new connection.
        // A connection that failed is dropped, never given back.
        let pooled = self.take_idle().and_then(|mut connection| {
            match self.try_claim(&mut connection, name) {
                Ok(ours) => Some((ours, connection)),
                Err(_) => None,
            }
        });
        let fresh = || -> RedisResult<(bool, Connection)> {
            let mut connection = open(&self.client)?;
            Ok((self.try_claim(&mut connection, name)?, connection))
        };
        let (ours, connection) = match pooled.map(Ok).unwrap_or_else(fresh) {
            Ok(answer) => answer,
            Err(error) => {
                log::debug!("claiming {name:?} in Redis: {error}");
                return Err(format!(
                    "cannot check \"{name}\" with the other servers (Redis is unreachable); try again soon"
                ));
            }
        };
        self.give_back(connection);
        if ours {
            Ok(())
        } else {
            Err(format!("name \"{name}\" is taken, choose another"))
        }
    }
}

/// A connection whose every step gives up after [`REDIS_TIMEOUT`].
pub(crate) fn open(client: &Client) -> RedisResult<Connection> {
    let connection = client.get_connection_with_timeout(REDIS_TIMEOUT)?;
    connection.set_read_timeout(Some(REDIS_TIMEOUT))?;
    connection.set_write_timeout(Some(REDIS_TIMEOUT))?;
    Ok(connection)
}
