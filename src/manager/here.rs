//! This server's side of the chat, as the manager thread keeps it: the
//! connected clients (each with the [`Outbox`] of its queue), the rooms with
//! their history, and what is being counted for the current event.
//!
//! Owned by the manager alone, so none of it needs a lock. It reads the
//! client directory (to find a whisper's target, to list users) and adds
//! its tally to the stats once per event, through `Shared`'s methods. The
//! manager's event handlers and, with `--redis`, the `cluster::Relay` act
//! on clients only through the methods here.

use std::collections::HashMap;
use std::mem;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::line::{OutboundLine, Refusal, Says};
use crate::logic::protocol;
use crate::logic::rooms::{Limits, Rooms};
use crate::outbox::{self, Delivery, Outbox, Wakeups};
use crate::shared::{ClientId, Shared, Tally};

/// A connected client, as the manager keeps it.
pub(super) struct Member {
    pub(super) peer: SocketAddr,
    /// `None` until the client has chosen a name.
    pub(super) name: Option<String>,
    /// Its door lists a room's members to it on entering (IRC).
    pub(super) names_on_entry: bool,
    /// The only sender of this client's queue; dropping the member drops it,
    /// which ends the writer.
    outbox: Outbox,
}

/// Bytes queued between two additions of every backlog, at most (besides
/// the one each second): about 16 MiB, a fraction of a second of a busy
/// server, and a small part of the budget.
const CHECK_BUDGET_EVERY: usize = 16 * 1024 * 1024;

/// What a client given up on for the total budget is told.
pub(super) const EVICTED: &str =
    "disconnected: the server is short of memory for slow connections, \
                       and yours was the furthest behind";

pub(crate) struct Here {
    pub(crate) shared: Arc<Shared>,
    members: HashMap<ClientId, Member>,
    pub(crate) rooms: Rooms,
    /// Counted while handling one event, added to the stats after it.
    pub(crate) tally: Tally,
    /// The writers given lines while they slept, woken once the batch of
    /// events is handled (`outbox.rs`, "The hand-over").
    wakeups: Wakeups,
    /// Bytes queued since the backlogs were last added up: past
    /// [`CHECK_BUDGET_EVERY`], they are added up again.
    queued_since_check: usize,
    /// The `/users` reply, made once and shared until someone joins, leaves
    /// or is renamed. Building it is O(clients log clients) (copy and sort
    /// every name); a thousand clients asking at once would otherwise keep
    /// the manager busy for seconds, and every reader waits for the manager.
    users_reply: Option<OutboundLine>,
}

impl Here {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Here {
            members: HashMap::new(),
            rooms: Rooms::new(Limits {
                history_lines: shared.config.history,
                history_bytes: shared.config.max_history_bytes,
                rooms: shared.config.max_rooms,
                rate: shared.config.room_rate,
            }),
            tally: Tally::default(),
            wakeups: Wakeups::default(),
            queued_since_check: 0,
            users_reply: None,
            shared,
        }
    }

    pub(super) fn connect(
        &mut self,
        id: ClientId,
        peer: SocketAddr,
        outbox: Outbox,
        names_on_entry: bool,
    ) {
        let member = Member {
            peer,
            name: None,
            names_on_entry,
            outbox,
        };
        self.members.insert(id, member);
    }

    pub(super) fn member_mut(&mut self, id: ClientId) -> Option<&mut Member> {
        self.members.get_mut(&id)
    }

    /// Takes the client out of the table. Dropping what comes back closes
    /// its queue.
    pub(super) fn disconnect(&mut self, id: ClientId) -> Option<Member> {
        self.members.remove(&id)
    }

    pub(crate) fn name_of(&self, id: ClientId) -> Option<&str> {
        self.members.get(&id)?.name.as_deref()
    }

    /// The client called `name` here (ignoring case), with the name as it
    /// spells it now, if it has been welcomed: a whisper must not reach a
    /// client before its welcome does.
    pub(crate) fn registered(&self, name: &str) -> Option<(ClientId, String)> {
        let (id, spelled) = self.shared.clients.lookup(name)?;
        self.name_of(id).is_some().then_some((id, spelled))
    }

    /// One line to one client, through the slow-consumer policy, counted.
    pub(crate) fn send(&mut self, id: ClientId, line: OutboundLine) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        self.queued_since_check += member.deliver(line, &mut self.tally, &mut self.wakeups);
    }

    pub(crate) fn reply(&mut self, id: ClientId, says: Says) {
        self.send(id, OutboundLine::new(says));
    }

    /// `* TEXT` to one client.
    pub(crate) fn notice(&mut self, id: ClientId, text: &str) {
        self.send(id, OutboundLine::notice(text));
    }

    /// `! TEXT` to one client.
    pub(crate) fn error(&mut self, id: ClientId, text: &str) {
        self.send(id, OutboundLine::error(text));
    }

    /// `! TEXT` to one client, about `refusal`.
    pub(crate) fn refuse(&mut self, id: ClientId, refusal: Refusal, text: &str) {
        self.send(id, OutboundLine::refusal(text, refusal));
    }

    /// One line, made once, to everyone here in `room` but `except`.
    pub(crate) fn send_to_room(
        &mut self,
        room: &str,
        line: &OutboundLine,
        except: Option<ClientId>,
    ) {
        for id in self.rooms.members_of(room) {
            if Some(id) == except {
                continue;
            }
            if let Some(member) = self.members.get_mut(&id) {
                self.queued_since_check +=
                    member.deliver(line.clone(), &mut self.tally, &mut self.wakeups);
            }
        }
    }

    /// A presence line to the rest of `room`, if the room is small enough
    /// for that to be news (`--announce-up-to`): in a room of thousands
    /// these lines would drown the chat, and a room filling up would cost
    /// N²/2 of them, 50 million for 10,000 clients (docs/BENCHMARKS.md).
    /// `elsewhere` is how many of the room are on other servers.
    pub(crate) fn announce(
        &mut self,
        room: &str,
        says: Says,
        except: Option<ClientId>,
        elsewhere: usize,
    ) {
        let here = self.rooms.size_of(room);
        let others = here.saturating_sub(usize::from(except.is_some())) + elsewhere;
        if here == 0 || others > self.shared.config.announce_up_to {
            return;
        }
        self.send_to_room(room, &OutboundLine::new(says), except);
    }

    /// One line to every client that has a name.
    pub(crate) fn tell_everyone(&mut self, line: &OutboundLine) {
        let named: Vec<ClientId> = (self.members.iter())
            .filter(|(_, member)| member.name.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in named {
            self.send(id, line.clone());
        }
    }

    /// Every named client here, with their room.
    pub(crate) fn roster(&self) -> Vec<(String, String)> {
        (self.members.iter())
            .filter_map(|(id, member)| {
                let room = self.rooms.room_of(*id)?;
                Some((member.name.clone()?, room.to_string()))
            })
            .collect()
    }

    /// Someone arrived, left or was renamed: `/users` must be made again.
    pub(crate) fn users_changed(&mut self) {
        self.users_reply = None;
    }

    /// The `/users` reply, made from `others` (the names on other servers)
    /// and the directory if the last one is out of date.
    pub(super) fn users_reply(&mut self, others: impl FnOnce() -> Vec<String>) -> OutboundLine {
        let shared = &self.shared;
        self.users_reply
            .get_or_insert_with(|| {
                let mut names = shared.clients.names();
                names.extend(others());
                names.sort_unstable_by_key(|name| name.to_ascii_lowercase());
                let line = protocol::listing("online", &names, protocol::MAX_LIST_BYTES);
                OutboundLine::notice(&line)
            })
            .clone()
    }

    /// Wakes, once each, the writers that were given lines while they slept.
    pub(super) fn wake_writers(&mut self) {
        self.wakeups.wake_all();
    }

    /// Adds what this event counted to the stats: one lock per event, not
    /// one per recipient.
    pub(super) fn add_tally_to_stats(&mut self) {
        if !self.tally.is_empty() {
            self.shared.stats.add(mem::take(&mut self.tally));
        }
    }

    /// Adds up every backlog once a second, or sooner after a lot has been
    /// queued, and keeps the total within `--max-total-backlog`.
    pub(super) fn keep_backlogs_within_budget(&mut self, every_second: bool) {
        if !every_second && self.queued_since_check < CHECK_BUDGET_EVERY {
            return;
        }
        self.queued_since_check = 0;
        let budget = self.shared.config.max_total_backlog;
        // A client already given up on holds only its notice until its
        // writer has written it: it is not given up on again.
        let mut backlogs: Vec<(usize, ClientId)> = (self.members.iter())
            .filter(|(_, member)| !member.outbox.evicted())
            .map(|(id, member)| (member.outbox.backlog_bytes(), *id))
            .filter(|(bytes, _)| *bytes > 0)
            .collect();
        let mut total: usize = backlogs.iter().map(|(bytes, _)| bytes).sum();
        if total <= budget {
            return;
        }
        // The furthest behind go first, until the total is a tenth under
        // the budget, so that the next check does not start again at once.
        backlogs.sort_unstable_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
        let enough = budget - budget / 10;
        for (bytes, id) in backlogs {
            if total <= enough {
                break;
            }
            self.evict(id, total);
            total -= bytes;
        }
    }

    fn evict(&mut self, id: ClientId, total: usize) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let who = member.name.as_deref().unwrap_or("(no name)");
        log::warn!(
            "{who} ({}): disconnected: the slow clients' backlogs held {total} bytes, \
             over --max-total-backlog, and this one was the furthest behind",
            member.peer
        );
        let notice = OutboundLine::error(EVICTED);
        self.tally.dropped += member.outbox.evict(notice);
        self.tally.evicted += 1;
    }

    /// What every backlog holds together, and the clients with the most
    /// bytes waiting, deepest first, for the live view: (name, or `#id`
    /// before one is chosen; bytes).
    pub(super) fn backlogs(&self, shown: usize) -> (usize, Vec<(String, usize)>) {
        let mut deepest: Vec<(String, usize)> = (self.members.iter())
            .map(|(id, member)| {
                let who = member.name.clone().unwrap_or_else(|| id.to_string());
                (who, member.outbox.backlog_bytes())
            })
            .filter(|(_, bytes)| *bytes > 0)
            .collect();
        let total = deepest.iter().map(|(_, bytes)| bytes).sum();
        deepest.sort_unstable_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
        deepest.truncate(shown);
        (total, deepest)
    }

    /// At shutdown: `line` to every client, every name let go, and every
    /// queue dropped. Returns the names.
    pub(super) fn say_goodbye_to_everyone(&mut self, line: &OutboundLine) -> Vec<String> {
        let ids: Vec<ClientId> = self.members.keys().copied().collect();
        for id in &ids {
            self.send(*id, line.clone());
        }
        let mut names = Vec::new();
        for (id, member) in self.members.drain() {
            if let Some(name) = member.name {
                // Nobody is online once the server has stopped: the final
                // stats line must not count them.
                self.shared.clients.release(&name, id);
                names.push(name);
            }
        }
        log::info!("told {} connections the server is shutting down", ids.len());
        names
    }
}

impl Member {
    /// One line to this client, through the slow-consumer policy, counted.
    /// Returns the bytes it queued.
    fn deliver(&mut self, line: OutboundLine, tally: &mut Tally, wakeups: &mut Wakeups) -> usize {
        let cost = outbox::cost(&line);
        match self.outbox.deliver(line, wakeups) {
            Delivery::Queued => {
                tally.delivered += 1;
                return cost;
            }
            Delivery::Dropped => tally.dropped += 1,
            Delivery::HungUp => {
                tally.dropped += 1;
                let who = self.name.as_deref().unwrap_or("(no name)");
                log::warn!(
                    "{who} ({}): its backlog stayed full; disconnecting a client \
                     that is not keeping up",
                    self.peer
                );
            }
        }
        0
    }
}
