//! The seam between the manager and other servers. Runs on the manager
//! thread. With one server (the default) the manager holds [`Alone`], and
//! nothing here does anything: a student may skip this file and
//! `cluster/`. With `--redis`, it holds a `cluster::Relay`, which
//! implements [`Elsewhere`] and owns everything it knows of the others.
//!
//! The manager calls these hooks after it has done its own work for an
//! event; a hook may act on this server's clients only through the [`Here`]
//! it is handed. No hook may wait (docs/ARCHITECTURE.md, invariant 1).

use std::convert::Infallible;

use crossbeam_channel::{never, Receiver};

use super::Here;
use crate::line::OutboundLine;
use crate::shared::ClientId;

/// What the manager asks of, and tells, the other servers.
pub(crate) trait Elsewhere {
    /// What the other servers' threads send the manager, on a channel of
    /// its own that the manager waits on beside the events.
    type Event: Send + 'static;

    /// Whether a room keeps its history when its last member here leaves
    /// (the room goes on elsewhere).
    const KEEPS_EMPTY_ROOMS: bool = false;

    /// The receiving end of that channel; `never()` when alone.
    fn events(&self) -> Receiver<Self::Event>;

    fn on_event(&mut self, event: Self::Event, here: &mut Here);

    /// Something happened here that the other servers should hear of.
    fn news(&mut self, _news: News, _here: &mut Here) {}

    /// This server's id among the others, for the [`LineId`](crate::line::LineId) of each line
    /// said here; `None` when alone (the manager picks one).
    fn server_id(&self) -> Option<u64> {
        None
    }

    /// `line` (numbered with its [`LineId`](crate::line::LineId)) was said in `room` here: the
    /// others are told.
    fn said(&mut self, _speaker: ClientId, _room: &str, _line: &OutboundLine, _here: &mut Here) {}

    /// A whisper to `to`, who is not on this server: true if another server
    /// has that name (the sender has then been answered).
    fn whisper(
        &mut self,
        _sender: ClientId,
        _from: &str,
        _to: &str,
        _text: &str,
        _here: &mut Here,
    ) -> bool {
        false
    }

    /// How many users the other servers have, in all and in `room`.
    fn user_count(&self) -> usize {
        0
    }

    fn count_in_room(&self, _room: &str) -> usize {
        0
    }

    /// Every user on the other servers, with their room.
    fn users(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// `/stats`'s words about the other servers, if there are any.
    fn stats(&self, _here: &Here) -> Option<String> {
        None
    }
}

/// What the manager tells the other servers.
#[derive(Debug)]
pub(crate) enum News {
    /// A user chose a name here and is in `room` (the lobby).
    Arrived {
        id: ClientId,
        name: String,
        room: String,
    },
    /// A user here went to another room.
    Moved {
        name: String,
        room: String,
    },
    Left {
        name: String,
    },
    Renamed {
        old: String,
        new: String,
    },
    /// Once a second, from the manager's report tick.
    Tick,
    /// This server is shutting down; these names are let go.
    Goodbye {
        names: Vec<String>,
    },
}

/// One server, on its own: no other server hears anything.
pub(crate) struct Alone;

impl Elsewhere for Alone {
    type Event = Infallible;

    fn events(&self) -> Receiver<Infallible> {
        never()
    }

    fn on_event(&mut self, event: Infallible, _here: &mut Here) {
        match event {}
    }
}
