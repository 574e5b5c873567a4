//! The `redis-subscriber` thread (`--redis`): everything the other servers
//! say reaches this server through it.
//!
//! It owns one Redis connection, subscribed to the bus. It decodes each
//! message, skips this server's own, and sends the rest to the manager as
//! [`ClusterEvent`]s over the cluster channel (`cluster_tx`), which the
//! manager waits on beside its events; a blocking `send`, so when the
//! manager is busy, Redis keeps the messages in its buffer for this
//! subscriber instead of us.
//!
//! Each time it connects it first subscribes, then reads every room's
//! history from Redis (on a second, short-lived connection) and hands it to
//! the manager. Subscribing first means no line can fall between the two;
//! a line that is in both is recognised by its id and kept once.
//!
//! A blocking read cannot be interrupted, so the connection has a read
//! timeout: every quarter second without a message, the thread checks the
//! shutdown signal.

use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};
use redis::{Client, Connection, RedisResult};

use super::names::open;
use super::{
    history_key, Backoff, Body, ClusterEvent, LineId, Message, ServerId, Side, BUS, ROOMS_KEY,
};
use crate::shutdown::ShutdownSignal;

/// How often, at most, a quiet subscriber looks at the shutdown signal.
const CHECK_SHUTDOWN_EVERY: Duration = Duration::from_millis(250);

/// What `Server::start` hands the thread.
pub(crate) struct SubscriberStart {
    pub(crate) client: Client,
    pub(crate) server: ServerId,
    /// `--history`: how many lines of each room to read from Redis.
    pub(crate) history: usize,
    pub(crate) cluster_tx: Sender<ClusterEvent>,
    pub(crate) shutdown: ShutdownSignal,
}

pub(crate) fn run(start: SubscriberStart) {
    let mut backoff = Backoff::new();
    // When the current outage began, if there is one: logged once per episode.
    let mut down_since: Option<Instant> = None;
    while !start.shutdown.has_fired() {
        match listen(&start, &mut backoff, &mut down_since) {
            Ok(()) => return,
            Err(error) => {
                if down_since.is_none() {
                    log::warn!("redis-subscriber: lost Redis: {error}; reconnecting with backoff");
                    down_since = Some(Instant::now());
                    if !report(&start.cluster_tx, false) {
                        return;
                    }
                }
            }
        }
        // Waiting on the shutdown channel rather than sleeping: shutdown
        // ends the wait at once.
        let wait = backoff.next_wait();
        if start.shutdown.receiver().recv_timeout(wait) == Err(RecvTimeoutError::Disconnected) {
            return;
        }
    }
}

/// Subscribes, reads the histories, then forwards messages until Redis
/// fails (`Err`) or the server stops (`Ok`).
fn listen(
    start: &SubscriberStart,
    backoff: &mut Backoff,
    down_since: &mut Option<Instant>,
) -> RedisResult<()> {
    let mut connection = open(&start.client)?;
    connection.set_read_timeout(Some(CHECK_SHUTDOWN_EVERY))?;
    let mut pubsub = connection.as_pubsub();
    pubsub.subscribe(BUS)?;
    let histories = read_histories(&start.client, start.history)?;
    if let Some(since) = down_since.take() {
        log::info!(
            "redis-subscriber: Redis is back after {:.1?}",
            since.elapsed()
        );
    }
    backoff.reset();
    for (room, lines) in histories {
        if !forward(&start.cluster_tx, ClusterEvent::History { room, lines }) {
            return Ok(());
        }
    }
    if !report(&start.cluster_tx, true) {
        return Ok(());
    }
    loop {
        let message = match pubsub.get_message() {
            Ok(message) => message,
            Err(error) if error.is_timeout() => {
                if start.shutdown.has_fired() {
                    return Ok(());
                }
                continue;
            }
            Err(error) => return Err(error),
        };
        let Ok(payload) = message.get_payload::<String>() else {
            log::debug!("redis-subscriber: a message that is not text; ignored");
            continue;
        };
        match Message::decode(&payload) {
            Ok(message) if message.from == start.server => {}
            Ok(message) => {
                if !forward(&start.cluster_tx, ClusterEvent::Message(message)) {
                    return Ok(());
                }
            }
            Err(error) => log::debug!("redis-subscriber: ignored a message: {error}"),
        }
    }
}

/// A room's name and its lines, oldest first.
type RoomHistory = (String, Vec<(LineId, String)>);

/// Every room's last `limit` lines, as Redis keeps them.
fn read_histories(client: &Client, limit: usize) -> RedisResult<Vec<RoomHistory>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut connection: Connection = open(client)?;
    let rooms: Vec<String> = redis::cmd("SMEMBERS")
        .arg(ROOMS_KEY)
        .query(&mut connection)?;
    let mut histories = Vec::new();
    for room_key in rooms {
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(history_key(&room_key))
            .arg(-(limit as i64))
            .arg(-1)
            .query(&mut connection)?;
        if entries.is_empty() {
            // Its history ran out (`--room-ttl`): the room is gone.
            redis::cmd("SREM")
                .arg(ROOMS_KEY)
                .arg(&room_key)
                .query::<()>(&mut connection)?;
            continue;
        }
        let mut room_name = None;
        let mut lines = Vec::new();
        for entry in entries {
            let Ok(message) = Message::decode(&entry) else {
                continue;
            };
            let id = message.line_id();
            if let (Some(id), Body::Said { room, line, .. }) = (id, message.body) {
                room_name.get_or_insert(room);
                lines.push((id, line));
            }
        }
        if let Some(room) = room_name {
            histories.push((room, lines));
        }
    }
    Ok(histories)
}

/// False if the manager is gone.
fn forward(cluster_tx: &Sender<ClusterEvent>, event: ClusterEvent) -> bool {
    cluster_tx.send(event).is_ok()
}

fn report(cluster_tx: &Sender<ClusterEvent>, up: bool) -> bool {
    forward(
        cluster_tx,
        ClusterEvent::Link {
            side: Side::Subscriber,
            up,
        },
    )
}
