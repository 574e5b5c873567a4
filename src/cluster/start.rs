//! Getting the cluster ready for `Server::start` (`--redis`). Runs on the
//! caller's thread, like the rest of `server`.
//!
//! Built with the `redis` feature, [`prepare`] opens the Redis client
//! (checking the URL; no connection is made yet, so a Redis that is down
//! does not stop the server from starting: it runs alone until Redis is
//! up) and picks this server's id; [`Prepared::split`] makes the manager's
//! [`Relay`] and the two Redis threads' bodies. Built without it, `--redis`
//! is refused, and [`Prepared`] cannot even be made.

use std::sync::Arc;

use super::relay::Relay;
use crate::config::Config;
use crate::shared::{NamesElsewhere, Shared};
use crate::shutdown::ShutdownSignal;

/// A thread to start: its name and its body.
pub(crate) type ThreadBody = (&'static str, Box<dyn FnOnce() + Send>);

#[cfg(feature = "redis")]
pub(crate) struct Prepared {
    client: redis::Client,
    server: super::ServerId,
}

/// `None` without `--redis`; `Err` holds what is wrong with it.
#[cfg(feature = "redis")]
pub(crate) fn prepare(config: &Config) -> Result<Option<Prepared>, String> {
    let Some(url) = &config.redis else {
        return Ok(None);
    };
    let client = redis::Client::open(url.as_str()).map_err(|error| format!("{url}: {error}"))?;
    let server = super::ServerId::random();
    log::info!("server {server}: one chat with every threadchat server on {url}");
    Ok(Some(Prepared { client, server }))
}

#[cfg(feature = "redis")]
impl Prepared {
    /// How readers claim names on every server.
    pub(crate) fn names(&self, config: &Config) -> Box<dyn NamesElsewhere> {
        let names =
            super::names::RedisNames::new(self.client.clone(), self.server, config.redis_ttl);
        Box::new(names)
    }

    /// The manager's relay, and the two Redis threads.
    pub(crate) fn split(
        self,
        shared: &Arc<Shared>,
        shutdown: &ShutdownSignal,
    ) -> (Relay, Vec<ThreadBody>) {
        use super::publisher::{self, PublisherStart};
        use super::relay::Link;
        use super::subscriber::{self, SubscriberStart};
        use super::{CLUSTER_QUEUE_CAPACITY, TO_REDIS_CAPACITY};
        use crossbeam_channel::bounded;

        let Prepared { client, server } = self;
        let (to_redis_tx, to_redis_rx) = bounded(TO_REDIS_CAPACITY);
        let (cluster_tx, cluster_rx) = bounded(CLUSTER_QUEUE_CAPACITY);
        let relay = Relay::new(Link {
            server,
            to_redis_tx,
            cluster_rx,
            ttl: shared.config.redis_ttl,
        });
        let publisher = PublisherStart {
            client: client.clone(),
            server,
            to_redis_rx,
            cluster_tx: cluster_tx.clone(),
            shared: shared.clone(),
        };
        let subscriber = SubscriberStart {
            client,
            server,
            history: shared.config.history,
            cluster_tx,
            shutdown: shutdown.clone(),
        };
        let threads: Vec<ThreadBody> = vec![
            (
                "redis-publisher",
                Box::new(move || publisher::run(publisher)),
            ),
            (
                "redis-subscriber",
                Box::new(move || subscriber::run(subscriber)),
            ),
        ];
        (relay, threads)
    }
}

/// Without the `redis` feature nothing can be prepared: this type has no
/// values, so the code that would use one is never reached.
#[cfg(not(feature = "redis"))]
pub(crate) enum Prepared {}

/// `Config` is public: a library user could set `redis` without going
/// through the command line, which refuses it in this build.
#[cfg(not(feature = "redis"))]
pub(crate) fn prepare(config: &Config) -> Result<Option<Prepared>, String> {
    match config.redis {
        Some(_) => Err("this threadchat was built without Redis support \
                        (build it with `--features redis`)"
            .into()),
        None => Ok(None),
    }
}

#[cfg(not(feature = "redis"))]
impl Prepared {
    pub(crate) fn names(&self, _config: &Config) -> Box<dyn NamesElsewhere> {
        match *self {}
    }

    pub(crate) fn split(
        self,
        _shared: &Arc<Shared>,
        _shutdown: &ShutdownSignal,
    ) -> (Relay, Vec<ThreadBody>) {
        match self {}
    }
}
