//! The manager thread: the one place that decides who receives what.
//!
//! It receives every [`Event`] from every reader over one channel, and holds
//! the only sender of every client's outgoing queue. It owns, without a lock
//! because no other thread sees them, the table of connected clients and the
//! room membership. It reads the client directory (to find a whisper's
//! target, to list users) and releases names in it; it adds its counts to the
//! stats once per event.
//!
//! It never blocks on a client: lines go into queues with `try_send`, and a
//! line that does not fit is dropped for that client alone and counted. One
//! slow client can therefore never slow the room down. The only place it
//! waits is on its own events channel (and the shutdown signal).

use std::collections::HashMap;
use std::mem;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender, TrySendError};

use crate::event::{ClientId, Event, Hangup, LeaveReason, OutboundLine};
use crate::names::NAME_RULE;
use crate::protocol;
use crate::rate_limit::FLOOD_TOLERANCE;
use crate::rooms::{Rooms, LOBBY};
use crate::server::Shared;
use crate::stats::Tally;

pub fn run(shared: Arc<Shared>, events: Receiver<Event>, shutdown: Receiver<()>) {
    let mut manager = Manager::new(shared);
    loop {
        select! {
            recv(events) -> event => match event {
                Ok(event) => manager.handle_guarded(event),
                // Every reader and the acceptor are gone.
                Err(_) => break,
            },
            recv(shutdown) -> _ => break,
        }
    }
    manager.say_goodbye_to_everyone();
    // Readers still running may have events on their way, and an
    // `Event::Connected` waiting in the channel holds the only sender of a
    // client's queue: left there, that client's writer would wait for it
    // forever, its reader would wait for the writer, and shutdown would wait
    // for them all. So the manager keeps receiving, and dropping, until every
    // reader has finished and the channel is closed.
    for event in events.iter() {
        if let Event::Connected { outbound, .. } = event {
            let _ = outbound.try_send(OutboundLine::new(&protocol::notice("server shutting down")));
        }
    }
}

/// A connected client, as the manager keeps it.
struct Member {
    peer: SocketAddr,
    /// `None` until the client has chosen a name.
    name: Option<String>,
    /// The only sender of this client's queue. Dropping it ends the writer.
    outbound: Sender<OutboundLine>,
    /// Ends the connection when the client has fallen hopelessly behind.
    hangup: Hangup,
    /// Lines dropped for this client since it was last told so.
    dropped_untold: u64,
    /// Since when every line for this client has found its queue full;
    /// `None` while lines get through.
    full_since: Option<Instant>,
}

struct Manager {
    shared: Arc<Shared>,
    members: HashMap<ClientId, Member>,
    rooms: Rooms,
    /// Counted while handling one event, added to the stats after it.
    tally: Tally,
    /// A client whose queue stays full this long is disconnected.
    stuck_after: Duration,
}

impl Manager {
    fn new(shared: Arc<Shared>) -> Self {
        Manager {
            members: HashMap::new(),
            rooms: Rooms::new(shared.config.history),
            tally: Tally::default(),
            stuck_after: shared.config.queue_full_timeout,
            shared,
        }
    }

    /// Handles one event. A bug that panics while handling it loses that
    /// event, is logged, and the server goes on.
    fn handle_guarded(&mut self, event: Event) {
        if panic::catch_unwind(AssertUnwindSafe(|| self.handle(event))).is_err() {
            log::error!("manager: handling an event panicked; event dropped, server continues");
        }
        if !self.tally.is_empty() {
            self.shared.stats.add(mem::take(&mut self.tally));
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Connected {
                id,
                peer,
                outbound,
                hangup,
            } => {
                log::debug!("{id} connected from {peer}");
                self.members.insert(
                    id,
                    Member {
                        peer,
                        name: None,
                        outbound,
                        hangup,
                        dropped_untold: 0,
                        full_since: None,
                    },
                );
                self.reply(id, &protocol::notice("welcome to threadchat"));
                self.prompt_for_name(id);
            }
            Event::Registered { id, name } => self.on_registered(id, name),
            Event::Renamed { id, old, new } => self.on_renamed(id, old, new),
            Event::Chat { id, text } => {
                self.say_in_room(id, |room, name| protocol::chat(room, name, &text))
            }
            Event::Action { id, text } => {
                self.say_in_room(id, |room, name| protocol::action(room, name, &text))
            }
            Event::Whisper { id, to, text } => self.on_whisper(id, &to, &text),
            Event::ListUsers { id } => {
                let names = self.shared.clients.names();
                let line = format!("online ({}): {}", names.len(), names.join(", "));
                self.reply(id, &protocol::notice(&line));
            }
            Event::JoinRoom { id, room } => self.on_join_room(id, &room),
            Event::ListRooms { id } => {
                let rooms = self.rooms.list();
                let listed: Vec<String> = rooms
                    .iter()
                    .map(|(name, members)| format!("{name} ({members})"))
                    .collect();
                let line = format!("rooms ({}): {}", rooms.len(), listed.join(", "));
                self.reply(id, &protocol::notice(&line));
            }
            Event::ListRoomMembers { id } => {
                let Some(room) = self.rooms.room_of(id) else {
                    return;
                };
                let mut names: Vec<&str> = self
                    .rooms
                    .roommates(id)
                    .filter_map(|mate| self.name_of(mate))
                    .collect();
                names.sort_unstable_by_key(|name| name.to_ascii_lowercase());
                let line = format!("in #{room} ({}): {}", names.len(), names.join(", "));
                self.reply(id, &protocol::notice(&line));
            }
            Event::ShowStats { id } => {
                let line = format!("stats: {}", self.shared.snapshot());
                self.reply(id, &protocol::notice(&line));
            }
            Event::Help { id } => {
                for line in protocol::HELP {
                    self.reply(id, &protocol::notice(line));
                }
            }
            Event::Refused { id, message } => {
                self.reply(id, &protocol::error(&message));
                if self.members.get(&id).is_some_and(|m| m.name.is_none()) {
                    self.prompt_for_name(id);
                }
            }
            Event::Left { id, reason } => self.on_left(id, reason),
        }
    }

    fn on_registered(&mut self, id: ClientId, name: String) {
        let Some(member) = self.members.get_mut(&id) else {
            // Cannot happen (Connected always comes first), but if it did the
            // name must not stay claimed by nobody.
            self.shared.clients.release(&name, id);
            return;
        };
        log::info!("{name} joined ({id}, {})", member.peer);
        member.name = Some(name.clone());
        let online = self.shared.clients.len();
        self.enter_room(id, &name, LOBBY, |room, _| {
            format!("welcome {name}! you are in {room}; {online} online. /help lists the commands")
        });
    }

    /// `/join ROOM` and `/leave`: out of one room, into another.
    fn on_join_room(&mut self, id: ClientId, room: &str) {
        let Some(name) = self.name_of(id).map(str::to_string) else {
            return;
        };
        if self.rooms.is_in(id, room) {
            let current = self.rooms.room_of(id).unwrap_or(room);
            let line = format!("you are already in #{current}");
            self.reply(id, &protocol::notice(&line));
            return;
        }
        // Told while the leaver is still a member, so it is not among the
        // recipients (`send_to_room_except`) and the room still exists.
        self.announce_presence(id, &format!("{name} left"));
        log::debug!("{name} ({id}) goes to {room}");
        self.enter_room(id, &name, room, |room, members| {
            format!("you joined #{room}; {members} here")
        });
    }

    /// Puts `id` in `room` and tells it, in this order: the `greeting` (made
    /// from the room's name and member count), the room's history between a
    /// header line and what comes next, then `* NAME joined` to the others.
    ///
    /// The manager handles one event at a time, so no chat line can slip in
    /// between the replay and the live stream: a line said before this event
    /// is in the history, a line said after it is delivered live, and none is
    /// both.
    fn enter_room(
        &mut self,
        id: ClientId,
        name: &str,
        room: &str,
        greeting: impl FnOnce(&str, usize) -> String,
    ) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let entered = self.rooms.enter(id, room);
        let greeting = greeting(entered.name, entered.members);
        deliver(
            &mut self.tally,
            self.stuck_after,
            member,
            OutboundLine::new(&protocol::notice(&greeting)),
        );
        let history = entered.history;
        if !history.is_empty() {
            let header = format!("last {} messages in #{}", history.len(), entered.name);
            deliver(
                &mut self.tally,
                self.stuck_after,
                member,
                OutboundLine::new(&protocol::notice(&header)),
            );
            for line in history.lines() {
                deliver(&mut self.tally, self.stuck_after, member, line.clone());
            }
        }
        self.announce_presence(id, &format!("{name} joined"));
    }

    /// `* NAME joined` or `* NAME left` to the rest of `id`'s room, if the
    /// room is small enough for that to be news (`--announce-up-to`). In a
    /// room of thousands these lines would drown the chat, and a room
    /// filling up would cost N²/2 of them: 50 million for 10,000 clients,
    /// minutes of the server's time (docs/BENCHMARKS.md).
    fn announce_presence(&mut self, id: ClientId, text: &str) {
        let others = self.rooms.size_of_room_of(id).saturating_sub(1);
        if others > self.shared.config.announce_up_to {
            return;
        }
        self.send_to_room_except(id, &OutboundLine::new(&protocol::notice(text)));
    }

    /// A chat line or an action: formatted once, sent to the rest of the
    /// sender's room, and kept in the room's history.
    fn say_in_room(&mut self, id: ClientId, format: impl FnOnce(&str, &str) -> String) {
        self.tally.messages_in += 1;
        let Some((room, name)) = self.room_and_name(id) else {
            return;
        };
        let line = OutboundLine::new(&format(room, name));
        self.send_to_room_except(id, &line);
        self.rooms.record(id, line);
    }

    fn on_renamed(&mut self, id: ClientId, old: String, new: String) {
        let Some(member) = self.members.get_mut(&id) else {
            self.shared.clients.release(&new, id);
            return;
        };
        log::info!("{old} is now {new} ({id})");
        member.name = Some(new.clone());
        // Released only now, after the change is ours: a newcomer taking the
        // old name is announced after this rename, never before.
        self.shared.clients.release(&old, id);
        self.reply(id, &protocol::notice(&format!("you are now {new}")));
        let renamed = protocol::notice(&format!("{old} is now known as {new}"));
        self.send_to_room_except(id, &OutboundLine::new(&renamed));
    }

    fn on_whisper(&mut self, id: ClientId, to: &str, text: &str) {
        self.tally.messages_in += 1;
        let Some(from) = self.name_of(id).map(str::to_string) else {
            return;
        };
        let target = self.shared.clients.lookup(to);
        let target_name = target.and_then(|target| self.name_of(target).map(str::to_string));
        match (target, target_name) {
            (Some(target), _) if target == id => {
                self.reply(id, &protocol::error("you cannot whisper to yourself"));
            }
            (Some(target), Some(target_name)) => {
                self.reply(target, &protocol::whisper_received(&from, text));
                self.reply(id, &protocol::whisper_sent(&target_name, text));
            }
            _ => self.reply(
                id,
                &protocol::error(&format!("no user named \"{to}\" is online")),
            ),
        }
    }

    fn on_left(&mut self, id: ClientId, reason: LeaveReason) {
        let Some(mut member) = self.members.remove(&id) else {
            return;
        };
        if let Some(farewell) = self.farewell(&member, &reason) {
            deliver(
                &mut self.tally,
                self.stuck_after,
                &mut member,
                OutboundLine::new(&farewell),
            );
        }
        match &member.name {
            Some(name) => {
                log::info!("{name} left ({id}): {reason}");
                self.announce_presence(id, &format!("{name} left"));
                self.rooms.leave(id);
                self.shared.clients.release(name, id);
            }
            None => log::debug!("{id} left before choosing a name: {reason}"),
        }
        // `member` is dropped here, and with it the only sender of the
        // client's queue: its writer sends what is queued and closes.
    }

    /// The last line a leaving client gets, if any: a goodbye after `/quit`,
    /// or why the server is disconnecting it. (A client that closed or
    /// failed cannot be told anything.)
    fn farewell(&self, member: &Member, reason: &LeaveReason) -> Option<String> {
        let config = &self.shared.config;
        Some(match reason {
            LeaveReason::Quit => match &member.name {
                Some(name) => protocol::notice(&format!("bye {name}")),
                None => protocol::notice("bye"),
            },
            LeaveReason::NoName => protocol::error(&format!(
                "no name chosen within {} s; disconnecting",
                config.name_timeout.as_secs()
            )),
            LeaveReason::Idle => protocol::error(&format!(
                "idle for {} s; disconnecting",
                config.idle_timeout.unwrap_or_default().as_secs()
            )),
            LeaveReason::Flooding => protocol::error(&format!(
                "disconnected for flooding: more than {} lines over the rate limit",
                config
                    .rate_limit
                    .map_or(0, |limit| limit.lines * FLOOD_TOLERANCE)
            )),
            LeaveReason::Closed
            | LeaveReason::Failed(_)
            | LeaveReason::ServerClosing
            | LeaveReason::Panicked => return None,
        })
    }

    /// At shutdown: a last line to everyone, then every queue is dropped.
    fn say_goodbye_to_everyone(&mut self) {
        let goodbye = OutboundLine::new(&protocol::notice("server shutting down"));
        for member in self.members.values_mut() {
            deliver(&mut self.tally, self.stuck_after, member, goodbye.clone());
        }
        log::info!(
            "told {} connections the server is shutting down",
            self.members.len()
        );
        self.members.clear();
        self.shared.stats.add(mem::take(&mut self.tally));
    }

    fn prompt_for_name(&mut self, id: ClientId) {
        self.reply(
            id,
            &protocol::notice(&format!("choose a name ({NAME_RULE}):")),
        );
    }

    fn name_of(&self, id: ClientId) -> Option<&str> {
        self.members.get(&id)?.name.as_deref()
    }

    fn room_and_name(&self, id: ClientId) -> Option<(&str, &str)> {
        Some((self.rooms.room_of(id)?, self.name_of(id)?))
    }

    /// One line to one client.
    fn reply(&mut self, id: ClientId, text: &str) {
        if let Some(member) = self.members.get_mut(&id) {
            deliver(
                &mut self.tally,
                self.stuck_after,
                member,
                OutboundLine::new(text),
            );
        }
    }

    /// One line, formatted once, to everyone in `sender`'s room but `sender`.
    fn send_to_room_except(&mut self, sender: ClientId, line: &OutboundLine) {
        for id in self.rooms.roommates(sender) {
            if id == sender {
                continue;
            }
            if let Some(member) = self.members.get_mut(&id) {
                deliver(&mut self.tally, self.stuck_after, member, line.clone());
            }
        }
    }
}

/// Queues `line` for `member` without ever waiting: if the queue is full (the
/// client is not keeping up) or closed (its writer has stopped), the line is
/// dropped for this client only, and counted.
///
/// A client that lost lines is told how many, just before the next line that
/// fits with room to spare: it learns of the gap in the place where it is.
/// A client whose queue has been full for `stuck_after` is not catching up:
/// it is hung up on, and leaves the usual way when its reader wakes.
fn deliver(tally: &mut Tally, stuck_after: Duration, member: &mut Member, line: OutboundLine) {
    if member.dropped_untold > 0 && has_room_for(&member.outbound, 2) {
        let notice = format!(
            "{} lines were dropped because your connection is too slow",
            member.dropped_untold
        );
        if member
            .outbound
            .try_send(OutboundLine::new(&protocol::error(&notice)))
            .is_ok()
        {
            tally.delivered += 1;
            member.dropped_untold = 0;
        }
    }
    match member.outbound.try_send(line) {
        Ok(()) => {
            tally.delivered += 1;
            member.full_since = None;
        }
        Err(TrySendError::Full(_)) => {
            tally.dropped += 1;
            member.dropped_untold += 1;
            let now = Instant::now();
            let full_since = *member.full_since.get_or_insert(now);
            if now.duration_since(full_since) >= stuck_after {
                let who = member.name.as_deref().unwrap_or("(no name)");
                log::warn!(
                    "{who} ({}): queue full for {stuck_after:?}, {} lines dropped; disconnecting a client that is not keeping up",
                    member.peer,
                    member.dropped_untold
                );
                member.hangup.hang_up();
                // Its reader will send `Left`; until then, no more warnings.
                member.full_since = None;
            }
        }
        Err(TrySendError::Disconnected(_)) => {
            tally.dropped += 1;
            member.dropped_untold += 1;
        }
    }
}

fn has_room_for(queue: &Sender<OutboundLine>, lines: usize) -> bool {
    queue
        .capacity()
        .is_none_or(|capacity| queue.len() + lines <= capacity)
}
