//! The traced lines the manager is watching (`/trace`, `trace.rs`): once
//! every copy of one has been written, or after `GIVE_UP_AFTER`, the
//! sender is to be told its journey.
//!
//! Owned by the manager alone, like its `Here`. A writer never tells the
//! manager it has written a copy; the manager looks, at each turn of its
//! loop, and while it watches a trace it makes sure to turn at least every
//! [`LOOK_EVERY`] ([`Traces::due`]). With no trace, this costs nothing.

use std::time::Instant;

use crossbeam_channel::{after, never, Receiver};

use super::trace::{Trace, GIVE_UP_AFTER};
use crate::line::OutboundLine;
use crate::logic::protocol;
use crate::shared::ClientId;

/// How often the manager looks at the traces it watches.
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(2);

#[derive(Default)]
pub(crate) struct Traces {
    watching: Vec<Watching>,
}

struct Watching {
    /// Who sent the line, and is told.
    id: ClientId,
    /// The line itself, whose fan-out timer says when every copy is written.
    line: OutboundLine,
    trace: Trace,
    since: Instant,
}

impl Traces {
    /// Watches `line`, sent by `id` with `trace`, every copy now queued.
    pub(crate) fn watch(&mut self, id: ClientId, line: &OutboundLine, trace: Trace) {
        self.watching.push(Watching {
            id,
            line: line.clone(),
            trace,
            since: Instant::now(),
        });
    }

    /// A channel to wait on beside the others: ready in [`LOOK_EVERY`]
    /// while a trace is watched, never otherwise.
    pub(crate) fn due(&self) -> Receiver<Instant> {
        match self.watching.is_empty() {
            true => never(),
            false => after(LOOK_EVERY),
        }
    }

    /// The journeys of the lines written everywhere (or that have waited
    /// too long), each with the sender to tell, one notice a line.
    pub(crate) fn finished(&mut self) -> Vec<(ClientId, Vec<String>)> {
        if self.watching.is_empty() {
            return Vec::new();
        }
        let (done, waiting) = std::mem::take(&mut self.watching)
            .into_iter()
            .partition(|w| w.line.fan_out_finished() || w.since.elapsed() >= GIVE_UP_AFTER);
        self.watching = waiting;
        let journey = |w: Watching| (w.id, w.trace.journey(&protocol::excerpt(w.line.text())));
        done.into_iter().map(journey).collect()
    }
}
