//! Getting the Redis threads ready for [`Server::start`](super::Server::start)
//! (`--redis`). Runs on the caller's thread, like the rest of `server`.
//!
//! Built with the `redis` feature, this opens the Redis client (checking the
//! URL; no connection is made yet, so a Redis that is down does not stop the
//! server from starting: it runs alone until Redis is up), picks this
//! server's id, and makes the two thread bodies. Built without it, `--redis`
//! is refused, and everything here is empty.

use std::sync::Arc;

use crossbeam_channel::Sender;

use super::StartError;
use crate::config::Config;
use crate::event::Event;
use crate::manager::ClusterLink;
use crate::shared::{NamesElsewhere, Shared};
use crate::shutdown::ShutdownSignal;

/// A thread to start: its name and its body.
pub(super) type ThreadBody = (&'static str, Box<dyn FnOnce() + Send>);

#[cfg(feature = "redis")]
pub(super) struct Cluster(Option<Prepared>);

#[cfg(feature = "redis")]
struct Prepared {
    client: redis::Client,
    server: crate::cluster::ServerId,
    ttl: std::time::Duration,
}

#[cfg(feature = "redis")]
impl Cluster {
    pub(super) fn prepare(config: &Config) -> Result<Cluster, StartError> {
        let Some(url) = &config.redis else {
            return Ok(Cluster(None));
        };
        let client = redis::Client::open(url.as_str())
            .map_err(|error| StartError::Redis(format!("{url}: {error}")))?;
        let server = crate::cluster::ServerId::random();
        log::info!("server {server}: one chat with every threadchat server on {url}");
        Ok(Cluster(Some(Prepared {
            client,
            server,
            ttl: config.redis_ttl,
        })))
    }

    pub(super) fn names_elsewhere(&self) -> Option<Box<dyn NamesElsewhere>> {
        let prepared = self.0.as_ref()?;
        let names = crate::cluster::names::RedisNames::new(
            prepared.client.clone(),
            prepared.server,
            prepared.ttl,
        );
        Some(Box::new(names))
    }

    /// The manager's link to the publisher, and the two Redis threads.
    pub(super) fn split(
        self,
        shared: &Arc<Shared>,
        events_tx: &Sender<Event>,
        shutdown: &ShutdownSignal,
    ) -> (Option<ClusterLink>, Vec<ThreadBody>) {
        use crate::cluster::publisher::{self, PublisherStart};
        use crate::cluster::subscriber::{self, SubscriberStart};
        use crate::cluster::TO_REDIS_CAPACITY;

        let Some(Prepared { client, server, .. }) = self.0 else {
            return (None, Vec::new());
        };
        let (to_redis_tx, to_redis_rx) = crossbeam_channel::bounded(TO_REDIS_CAPACITY);
        let link = ClusterLink {
            server,
            to_redis_tx,
            ttl: shared.config.redis_ttl,
        };
        let publisher = PublisherStart {
            client: client.clone(),
            server,
            to_redis_rx,
            events_tx: events_tx.clone(),
            shared: shared.clone(),
        };
        let subscriber = SubscriberStart {
            client,
            server,
            history: shared.config.history,
            events_tx: events_tx.clone(),
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
        (Some(link), threads)
    }
}

#[cfg(not(feature = "redis"))]
pub(super) struct Cluster;

#[cfg(not(feature = "redis"))]
impl Cluster {
    /// `Config` is public: a library user could set `redis` without going
    /// through the command line, which refuses it in this build.
    pub(super) fn prepare(config: &Config) -> Result<Cluster, StartError> {
        match config.redis {
            Some(_) => Err(StartError::Redis(
                "this threadchat was built without Redis support \
                 (build it with `--features redis`)"
                    .into(),
            )),
            None => Ok(Cluster),
        }
    }

    pub(super) fn names_elsewhere(&self) -> Option<Box<dyn NamesElsewhere>> {
        None
    }

    pub(super) fn split(
        self,
        _shared: &Arc<Shared>,
        _events_tx: &Sender<Event>,
        _shutdown: &ShutdownSignal,
    ) -> (Option<ClusterLink>, Vec<ThreadBody>) {
        (None, Vec::new())
    }
}
