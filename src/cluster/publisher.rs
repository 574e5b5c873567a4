//! The `redis-publisher` thread (`--redis`): everything this server tells
//! the others goes through it.
//!
//! It owns one Redis connection. It takes work from the manager over the
//! bounded `to_redis` channel (`to_redis_rx`), and tells the manager when
//! its link to Redis is lost or back, over the cluster channel (`cluster_tx`).
//! It reads the client directory (a read lock, no I/O under it) to know
//! which names to keep claimed.
//!
//! A chat line is one Redis transaction (`MULTI` … `EXEC`): append it to the
//! room's history, trim the history to `--history`, and publish it. Redis
//! runs a transaction as one step, so the order of the history and the
//! order of the channel are the same order.
//!
//! When Redis is down the thread keeps emptying its queue, counting each
//! message as unpublished, so that the manager never finds it full for
//! long; and it tries to reconnect after a wait that doubles each time.
//! It stops when the manager drops its end of the channel, after doing what
//! was queued (the last of which is this server's goodbye).

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{select, tick, Receiver, RecvTimeoutError, Sender};
use redis::{Client, Connection, RedisResult};

use super::names::open;
use super::{
    alive_every, history_key, name_key, Backoff, Body, ClusterEvent, Message, ServerId, Side,
    ToRedis, BUS, ROOMS_KEY,
};
use crate::logic::names;
use crate::shared::{Shared, Tally};

/// What `Server::start` hands the thread.
pub(crate) struct PublisherStart {
    pub(crate) client: Client,
    pub(crate) server: ServerId,
    pub(crate) to_redis_rx: Receiver<ToRedis>,
    pub(crate) cluster_tx: Sender<ClusterEvent>,
    pub(crate) shared: Arc<Shared>,
}

/// For each key: if this server holds it, its time-to-live starts again; if
/// nobody does (it ran out while Redis was unreachable), it is claimed
/// again. Returns how many are held by another server now. One script, so
/// that nothing can change a key between reading and writing it.
const REFRESH_NAMES: &str = r"
local lost = 0
for _, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[1] then
    redis.call('EXPIRE', key, ARGV[2])
  elseif not holder then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
  else
    lost = lost + 1
  end
end
return lost";

/// Deletes each key that this server still holds.
const RELEASE_NAMES: &str = r"
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0";

/// Names refreshed per script call: keeps each call short for Redis, which
/// runs nothing else meanwhile.
const NAMES_PER_CALL: usize = 500;

pub(crate) fn run(start: PublisherStart) {
    let publisher = Publisher {
        server: start.server,
        shared: start.shared,
        cluster_tx: start.cluster_tx,
    };
    let mut backoff = Backoff::new();
    // Whether this outage has been logged and reported: once per episode.
    let mut down = false;
    loop {
        let connected =
            publisher.connect(&start.client, &start.to_redis_rx, &mut backoff, &mut down);
        let Some(mut connection) = connected else {
            return;
        };
        match publisher.serve(&mut connection, &start.to_redis_rx) {
            Ok(()) => return,
            Err(error) => {
                log::warn!("redis-publisher: lost Redis: {error}; reconnecting with backoff");
                publisher.report(false);
                down = true;
            }
        }
    }
}

struct Publisher {
    server: ServerId,
    shared: Arc<Shared>,
    cluster_tx: Sender<ClusterEvent>,
}

impl Publisher {
    /// Connects, waiting longer after each failure, and meanwhile counts
    /// what the manager queues as unpublished. `None` once the manager has
    /// closed the channel: the server is stopping.
    fn connect(
        &self,
        client: &Client,
        to_redis_rx: &Receiver<ToRedis>,
        backoff: &mut Backoff,
        down: &mut bool,
    ) -> Option<Connection> {
        let started = Instant::now();
        let mut tries = 0;
        loop {
            tries += 1;
            match open(client) {
                Ok(connection) => {
                    if *down {
                        log::info!(
                            "redis-publisher: Redis is back ({tries} tries in {:.1?})",
                            started.elapsed()
                        );
                    }
                    *down = false;
                    backoff.reset();
                    self.report(true);
                    return Some(connection);
                }
                Err(error) if !*down => {
                    log::warn!(
                        "redis-publisher: cannot reach Redis: {error}; retrying with backoff"
                    );
                    self.report(false);
                    *down = true;
                }
                Err(_) => {}
            }
            if !self.discard_for(backoff.next_wait(), to_redis_rx) {
                return None;
            }
        }
    }

    /// Empties the queue for `wait`, counting what could not be published.
    /// False if the channel was closed.
    fn discard_for(&self, wait: std::time::Duration, to_redis_rx: &Receiver<ToRedis>) -> bool {
        let deadline = Instant::now() + wait;
        let mut lost = Tally::default();
        let open = loop {
            match to_redis_rx.recv_deadline(deadline) {
                Ok(ToRedis::Publish(_)) => lost.cluster_unpublished += 1,
                Ok(ToRedis::Release(_)) => {}
                Err(RecvTimeoutError::Timeout) => break true,
                Err(RecvTimeoutError::Disconnected) => break false,
            }
        };
        if !lost.is_empty() {
            self.shared.stats.add(lost);
        }
        open
    }

    /// Publishes what the manager sends, and says "alive" on a timer, until
    /// the channel closes (`Ok`) or Redis fails (`Err`).
    fn serve(
        &self,
        connection: &mut Connection,
        to_redis_rx: &Receiver<ToRedis>,
    ) -> RedisResult<()> {
        let alive = tick(alive_every(self.shared.config.redis_ttl));
        self.say_alive(connection)?;
        loop {
            select! {
                recv(to_redis_rx) -> work => match work {
                    Ok(work) => self.perform(connection, work)?,
                    Err(_) => return Ok(()),
                },
                recv(alive) -> _ => self.say_alive(connection)?,
            }
        }
    }

    fn perform(&self, connection: &mut Connection, work: ToRedis) -> RedisResult<()> {
        match work {
            ToRedis::Publish(body) => self.publish(connection, body).inspect_err(|_| {
                let lost = Tally {
                    cluster_unpublished: 1,
                    ..Tally::default()
                };
                self.shared.stats.add(lost);
            }),
            ToRedis::Release(names) => self.release(connection, names),
        }
    }

    fn publish(&self, connection: &mut Connection, body: Body) -> RedisResult<()> {
        let history = self.shared.config.history;
        let room = match &body {
            Body::Said { room, .. } if history > 0 => Some(names::key(room)),
            _ => None,
        };
        let payload = Message {
            from: self.server,
            body,
        }
        .encode();
        let mut transaction = redis::pipe();
        transaction.atomic();
        if let Some(room) = room {
            let key = history_key(&room);
            transaction
                .cmd("RPUSH")
                .arg(&key)
                .arg(&payload)
                .ignore()
                .cmd("LTRIM")
                .arg(&key)
                .arg(-(history as i64))
                .arg(-1)
                .ignore()
                // A room nobody says anything in for `--room-ttl` goes
                // from Redis too (the subscriber drops it from the set).
                .cmd("EXPIRE")
                .arg(&key)
                .arg(self.shared.config.room_ttl.as_secs())
                .ignore()
                .cmd("SADD")
                .arg(ROOMS_KEY)
                .arg(&room)
                .ignore();
        }
        transaction.cmd("PUBLISH").arg(BUS).arg(&payload).ignore();
        transaction.query::<()>(connection)
    }

    /// Frees in Redis the names nobody here holds any more (a client may
    /// have claimed one again since the manager let it go).
    fn release(&self, connection: &mut Connection, names: Vec<String>) -> RedisResult<()> {
        let keys: Vec<String> = names
            .iter()
            .filter(|name| self.shared.clients.lookup(name).is_none())
            .map(|name| name_key(name))
            .collect();
        for keys in keys.chunks(NAMES_PER_CALL) {
            run_script(connection, RELEASE_NAMES, keys, &[self.server.to_string()])?;
        }
        Ok(())
    }

    /// "alive" on the bus, and every name held here claimed for another
    /// `--redis-ttl`.
    fn say_alive(&self, connection: &mut Connection) -> RedisResult<()> {
        let alive = Message {
            from: self.server,
            body: Body::Alive,
        };
        redis::cmd("PUBLISH")
            .arg(BUS)
            .arg(alive.encode())
            .query::<()>(connection)?;
        let keys: Vec<String> = self
            .shared
            .clients
            .names()
            .iter()
            .map(|n| name_key(n))
            .collect();
        let args = [
            self.server.to_string(),
            self.shared.config.redis_ttl.as_secs().to_string(),
        ];
        let mut lost = 0;
        for keys in keys.chunks(NAMES_PER_CALL) {
            lost += run_script(connection, REFRESH_NAMES, keys, &args)?;
        }
        if lost > 0 {
            log::warn!(
                "redis-publisher: {lost} names held here were taken on another server \
                 while this one could not reach Redis"
            );
        }
        Ok(())
    }

    fn report(&self, up: bool) {
        let link = ClusterEvent::Link {
            side: Side::Publisher,
            up,
        };
        // Fails only when the manager is gone: nobody is left to tell.
        let _ = self.cluster_tx.send(link);
    }
}

/// `EVAL SCRIPT N KEYS… ARGS…`, through the plain command interface: the
/// `redis` crate's script helper is an optional feature we do not need.
fn run_script(
    connection: &mut Connection,
    script: &str,
    keys: &[String],
    args: &[String],
) -> RedisResult<i64> {
    redis::cmd("EVAL")
        .arg(script)
        .arg(keys.len())
        .arg(keys)
        .arg(args)
        .query(connection)
}
