//! The manager thread: the one place that decides who receives what.
//!
//! It receives every [`Event`] from every reader over one channel
//! (`events_rx`), and holds the only sender of every client's queue, inside
//! that client's [`Outbox`]. It owns, without a lock because no other thread
//! sees them, the table of connected clients and the rooms with their
//! history. It reads the client directory (to find a whisper's target, to
//! list users) and releases names in it; it adds its counts to the stats
//! once per event.
//!
//! With `--redis` it also tells the other servers what happens here and
//! hears what happens there: that half is in [`remote`].
//!
//! It never blocks on a client: [`Outbox::deliver`] only ever `try_send`s,
//! and a line that does not fit is dropped for that client alone and
//! counted. One slow client can therefore never slow the room down. The only
//! place the manager waits is on its own events channel and the shutdown
//! signal.

use std::collections::HashMap;
use std::mem;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{select, tick, Receiver};

use crate::cluster::Body;
use crate::event::{ClientId, Event, LeaveReason, OutboundLine};
use crate::names::NAME_RULE;
use crate::outbox::{Delivery, Outbox};
use crate::protocol;
use crate::rate_limit::FLOOD_TOLERANCE;
use crate::rooms::{Rooms, LOBBY};
use crate::shared::{ManagerView, Shared, Tally};
use crate::shutdown::ShutdownSignal;

// Without the `redis` feature no `ClusterLink` is ever made (see lib.rs).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
mod remote;
pub(crate) use remote::ClusterLink;
use remote::Remote;

pub(crate) fn run(
    shared: Arc<Shared>,
    events_rx: Receiver<Event>,
    cluster: Option<ClusterLink>,
    shutdown: ShutdownSignal,
) {
    let mut manager = Manager::new(shared);
    if let Some(link) = cluster {
        manager.join_cluster(link);
    }
    // Once a second, what only the manager knows goes to the live view.
    let report = tick(REPORT_EVERY);
    loop {
        // `select!` waits on several channels at once and runs the arm of
        // whichever is ready first: the next event, the report, or the
        // shutdown.
        select! {
            recv(events_rx) -> event => match event {
                Ok(event) => {
                    manager.handle_guarded(event);
                    let depth = &manager.shared.gauges.events_depth;
                    depth.store(events_rx.len(), Ordering::Relaxed);
                }
                // Every reader and the acceptor are gone.
                Err(_) => break,
            },
            recv(report) -> _ => manager.publish(),
            recv(shutdown.receiver()) -> _ => break,
        }
    }
    manager.say_goodbye_to_everyone();
    // Readers still running may have events on their way, and an
    // `Event::Connected` waiting in the channel holds the only `Outbox` of a
    // client's queue: left there, that client's writer would wait for it
    // forever, its reader would wait for the writer, and shutdown would wait
    // for them all. So the manager keeps receiving, and dropping, until every
    // reader has finished and the channel is closed.
    let goodbye = OutboundLine::new(&protocol::notice("server shutting down"));
    // Names claimed by readers for events that will not be handled are let
    // go here, so that nobody counts as online once the server has stopped.
    for event in events_rx.iter() {
        match event {
            Event::Connected { mut outbox, .. } => {
                outbox.deliver(goodbye.clone(), &mut Tally::default());
            }
            Event::Registered { id, name } => manager.shared.clients.release(&name, id),
            Event::Renamed { id, new, .. } => manager.shared.clients.release(&new, id),
            _ => {}
        }
    }
}

/// How often the manager publishes its view (rooms, deepest backlogs).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// How many of the deepest backlogs the live view shows.
const DEEPEST_SHOWN: usize = 5;

/// A connected client, as the manager keeps it.
struct Member {
    peer: SocketAddr,
    /// `None` until the client has chosen a name.
    name: Option<String>,
    /// The only sender of this client's queue; dropping the member drops it,
    /// which ends the writer.
    outbox: Outbox,
}

impl Member {
    /// One line to this client, through the slow-consumer policy.
    fn send(&mut self, line: OutboundLine, tally: &mut Tally) {
        if self.outbox.deliver(line, tally) == Delivery::HungUp {
            let who = self.name.as_deref().unwrap_or("(no name)");
            log::warn!(
                "{who} ({}): its backlog stayed full; disconnecting a client \
                 that is not keeping up",
                self.peer
            );
        }
    }
}

pub(crate) struct Manager {
    shared: Arc<Shared>,
    members: HashMap<ClientId, Member>,
    rooms: Rooms,
    /// Counted while handling one event, added to the stats after it.
    tally: Tally,
    /// The `/users` reply, formatted once and shared until someone joins,
    /// leaves or is renamed. Building it is O(clients log clients) (copy
    /// and sort every name); a thousand clients asking at once would
    /// otherwise keep the manager busy for seconds, and every reader waits
    /// for the manager.
    users_reply: Option<OutboundLine>,
    /// With `--redis`: the other servers, and the way to them.
    remote: Option<Remote>,
}

impl Manager {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Manager {
            members: HashMap::new(),
            rooms: Rooms::new(shared.config.history),
            tally: Tally::default(),
            users_reply: None,
            remote: None,
            shared,
        }
    }

    /// From now on, tell the other servers what happens here (`--redis`).
    pub(crate) fn join_cluster(&mut self, link: ClusterLink) {
        self.rooms.keep_empty_rooms();
        self.remote = Some(Remote::new(link));
    }

    /// Handles one event. A bug that panics while handling it loses that
    /// event, is logged, and the server goes on.
    ///
    /// `catch_unwind` runs a closure and turns a panic inside it into an
    /// `Err`, instead of letting it end the thread. It asks for a closure
    /// that is `UnwindSafe`, meaning one that cannot leave shared data
    /// half-changed for the code after it to see; a closure holding
    /// `&mut self` is not. `AssertUnwindSafe` is our promise that it is
    /// fine here: the worst a half-handled event leaves is a line sent to
    /// some members of a room and not others.
    pub(crate) fn handle_guarded(&mut self, event: Event) {
        if panic::catch_unwind(AssertUnwindSafe(|| self.handle(event))).is_err() {
            log::error!("manager: handling an event panicked; event dropped, server continues");
        }
        if !self.tally.is_empty() {
            self.shared.stats.add(mem::take(&mut self.tally));
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Connected { id, peer, outbox } => self.on_connected(id, peer, outbox),
            Event::Registered { id, name } => self.on_registered(id, name),
            Event::Renamed { id, old, new } => self.on_renamed(id, old, new),
            Event::Chat { id, text } => {
                self.say_in_room(id, |room, name| protocol::chat(room, name, &text))
            }
            Event::Action { id, text } => {
                self.say_in_room(id, |room, name| protocol::action(room, name, &text))
            }
            Event::Whisper { id, to, text } => self.on_whisper(id, &to, &text),
            Event::ListUsers { id } => self.list_users(id),
            Event::JoinRoom { id, room } => self.on_join_room(id, &room),
            Event::ListRooms { id } => self.list_rooms(id),
            Event::ListRoomMembers { id } => self.list_room_members(id),
            Event::ShowStats { id } => self.show_stats(id),
            Event::Help { id } => self.show_help(id),
            Event::Refused { id, message } => self.on_refused(id, &message),
            Event::Left { id, reason } => self.on_left(id, reason),
            Event::Cluster(event) => self.on_cluster(event),
        }
    }

    fn on_connected(&mut self, id: ClientId, peer: SocketAddr, outbox: Outbox) {
        log::debug!("{id} connected from {peer}");
        let member = Member {
            peer,
            name: None,
            outbox,
        };
        self.members.insert(id, member);
        self.reply(id, &protocol::notice("welcome to threadchat"));
        self.prompt_for_name(id);
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
        self.users_reply = None;
        let online = self.shared.clients.len() + self.user_count_elsewhere();
        self.enter_room(id, &name, LOBBY, |room, _| {
            format!("welcome {name}! you are in {room}; {online} online. /help lists the commands")
        });
        self.tell_if_unreachable(id);
        self.tell_cluster(Body::In {
            name,
            room: LOBBY.to_string(),
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
        let elsewhere = self.room_count_elsewhere(room);
        self.enter_room(id, &name, room, |room, members| {
            format!("you joined #{room}; {} here", members + elsewhere)
        });
        if let Some(room) = self.rooms.room_of(id).map(str::to_string) {
            self.tell_cluster(Body::In { name, room });
        }
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
        member.send(
            OutboundLine::new(&protocol::notice(&greeting)),
            &mut self.tally,
        );
        let history = entered.history;
        if !history.is_empty() {
            let header = format!("last {} messages in #{}", history.len(), entered.name);
            member.send(
                OutboundLine::new(&protocol::notice(&header)),
                &mut self.tally,
            );
            for line in history.lines() {
                member.send(line.untimed(), &mut self.tally);
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
        let elsewhere = match self.rooms.room_of(id) {
            Some(room) => self.room_count_elsewhere(room),
            None => 0,
        };
        let others = self.rooms.size_of_room_of(id).saturating_sub(1) + elsewhere;
        if others > self.shared.config.announce_up_to {
            return;
        }
        self.send_to_room_except(id, &OutboundLine::new(&protocol::notice(text)));
    }

    /// A chat line or an action: formatted once, sent to the rest of the
    /// sender's room (here, and on the other servers), and kept in the
    /// room's history.
    fn say_in_room(&mut self, id: ClientId, format: impl FnOnce(&str, &str) -> String) {
        self.tally.messages_in += 1;
        let Some((room, name)) = self.room_and_name(id) else {
            return;
        };
        let (room, text) = (room.to_string(), format(room, name));
        let line = OutboundLine::timed(&text, &self.shared.gauges.fanout);
        self.send_to_room_except(id, &line);
        line.fan_out_done();
        let line_id = self.publish_said(id, &room, &text);
        self.rooms.record(id, line_id, line);
    }

    fn on_renamed(&mut self, id: ClientId, old: String, new: String) {
        let Some(member) = self.members.get_mut(&id) else {
            self.shared.clients.release(&new, id);
            return;
        };
        log::info!("{old} is now {new} ({id})");
        member.name = Some(new.clone());
        self.users_reply = None;
        // Released only now, after the change is ours: a newcomer taking the
        // old name is announced after this rename, never before.
        self.shared.clients.release(&old, id);
        self.reply(id, &protocol::notice(&format!("you are now {new}")));
        let renamed = protocol::notice(&format!("{old} is now known as {new}"));
        self.send_to_room_except(id, &OutboundLine::new(&renamed));
        self.tell_cluster(Body::Renamed {
            old: old.clone(),
            new,
        });
        self.release_in_cluster(vec![old]);
    }

    fn on_whisper(&mut self, id: ClientId, to: &str, text: &str) {
        self.tally.messages_in += 1;
        let Some(from) = self.name_of(id).map(str::to_string) else {
            return;
        };
        // The directory spells the name as its holder does now, even if a
        // rename is still on its way to us. The target must be registered
        // here too, or the whisper would reach it before its welcome.
        let target = self.shared.clients.lookup(to);
        let registered = target
            .as_ref()
            .is_some_and(|(target, _)| self.name_of(*target).is_some());
        match target {
            Some((target, _)) if target == id => {
                self.reply(id, &protocol::error("you cannot whisper to yourself"));
            }
            Some((target, target_name)) if registered => {
                self.reply(target, &protocol::whisper_received(&from, text));
                self.reply(id, &protocol::whisper_sent(&target_name, text));
            }
            None if self.whisper_elsewhere(id, &from, to, text) => {}
            _ => self.reply(
                id,
                &protocol::error(&format!(
                    "no user named \"{}\" is online",
                    protocol::excerpt(to)
                )),
            ),
        }
    }

    fn list_users(&mut self, id: ClientId) {
        if self.users_reply.is_none() {
            let mut names = self.shared.clients.names();
            names.extend(self.users_elsewhere());
            names.sort_unstable_by_key(|name| name.to_ascii_lowercase());
            let line = format!("online ({}): {}", names.len(), names.join(", "));
            self.users_reply = Some(OutboundLine::new(&protocol::notice(&line)));
        }
        let Some(reply) = &self.users_reply else {
            return;
        };
        let reply = reply.clone();
        if let Some(member) = self.members.get_mut(&id) {
            member.send(reply, &mut self.tally);
        }
    }

    /// Every room with its members on every server; a room with nobody
    /// in it anywhere is not listed, but the lobby always is.
    fn list_rooms(&mut self, id: ClientId) {
        let mut rooms: Vec<(String, usize)> = self
            .rooms
            .list()
            .into_iter()
            .map(|(name, members)| (name.to_string(), members))
            .collect();
        for (name, members) in &mut rooms {
            *members += self.room_count_elsewhere(name);
        }
        for name in self.rooms_only_elsewhere() {
            let members = self.room_count_elsewhere(&name);
            rooms.push((name, members));
        }
        rooms.retain(|(name, members)| *members > 0 || name == LOBBY);
        let listed: Vec<String> = rooms
            .iter()
            .map(|(name, members)| format!("{name} ({members})"))
            .collect();
        let line = format!("rooms ({}): {}", rooms.len(), listed.join(", "));
        self.reply(id, &protocol::notice(&line));
    }

    fn list_room_members(&mut self, id: ClientId) {
        let Some(room) = self.rooms.room_of(id) else {
            return;
        };
        let elsewhere = self.room_members_elsewhere(room);
        let mut names: Vec<&str> = self
            .rooms
            .roommates(id)
            .filter_map(|mate| self.name_of(mate))
            .chain(elsewhere.iter().map(String::as_str))
            .collect();
        names.sort_unstable_by_key(|name| name.to_ascii_lowercase());
        let line = format!("in #{room} ({}): {}", names.len(), names.join(", "));
        self.reply(id, &protocol::notice(&line));
    }

    /// The counters, then how each lock has been used: taken, and how often
    /// a thread found it taken and had to wait (`shared/gauges.rs`).
    fn show_stats(&mut self, id: ClientId) {
        let (clients, stats) = (self.shared.clients.lock_use(), self.shared.stats.lock_use());
        let line = format!(
            "stats: {}; locks: clients {} taken, {} waited; stats {} taken, {} waited{}",
            self.shared.snapshot(),
            clients.acquisitions,
            clients.contended,
            stats.acquisitions,
            stats.contended,
            self.cluster_stats().unwrap_or_default()
        );
        self.reply(id, &protocol::notice(&line));
    }

    fn show_help(&mut self, id: ClientId) {
        for line in protocol::HELP {
            self.reply(id, &protocol::notice(line));
        }
    }

    fn on_refused(&mut self, id: ClientId, message: &str) {
        self.tally.refused += 1;
        self.reply(id, &protocol::error(message));
        if self.members.get(&id).is_some_and(|m| m.name.is_none()) {
            self.prompt_for_name(id);
        }
    }

    fn on_left(&mut self, id: ClientId, reason: LeaveReason) {
        let Some(mut member) = self.members.remove(&id) else {
            return;
        };
        if let Some(farewell) = self.farewell(&member, &reason) {
            member.send(OutboundLine::new(&farewell), &mut self.tally);
        }
        match &member.name {
            Some(name) => {
                log::info!("{name} left ({id}): {reason}");
                self.users_reply = None;
                self.announce_presence(id, &format!("{name} left"));
                self.rooms.leave(id);
                self.shared.clients.release(name, id);
                self.tell_cluster(Body::Left { name: name.clone() });
                self.release_in_cluster(vec![name.clone()]);
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
            LeaveReason::WrongProtocol(protocol) => protocol::error(protocol.explanation()),
            LeaveReason::Closed
            | LeaveReason::Failed(_)
            | LeaveReason::ServerClosing
            | LeaveReason::Panicked => return None,
        })
    }

    /// The rooms, and the clients with the most bytes waiting, for the live
    /// view. One pass over the clients, once a second.
    fn publish(&mut self) {
        let mut deepest: Vec<(String, usize)> = self
            .members
            .iter()
            .map(|(id, member)| {
                (
                    member.name.clone().unwrap_or_else(|| id.to_string()),
                    member.outbox.backlog_bytes(),
                )
            })
            .filter(|(_, bytes)| *bytes > 0)
            .collect();
        deepest.sort_unstable_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
        deepest.truncate(DEEPEST_SHOWN);
        let rooms = self.rooms.list().len();
        self.expire_servers();
        self.shared.stats.publish(ManagerView {
            rooms,
            deepest_backlogs: deepest,
        });
    }

    /// At shutdown: a last line to everyone, then every queue is dropped.
    pub(crate) fn say_goodbye_to_everyone(&mut self) {
        let goodbye = OutboundLine::new(&protocol::notice("server shutting down"));
        let mut names = Vec::new();
        for (id, member) in &mut self.members {
            member.send(goodbye.clone(), &mut self.tally);
            // Nobody is online once the server has stopped: the final stats
            // line must not count them.
            if let Some(name) = &member.name {
                self.shared.clients.release(name, *id);
                names.push(name.clone());
            }
        }
        self.leave_cluster(names);
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
            member.send(OutboundLine::new(text), &mut self.tally);
        }
    }

    /// One line, formatted once, to everyone in `sender`'s room but `sender`.
    fn send_to_room_except(&mut self, sender: ClientId, line: &OutboundLine) {
        for id in self.rooms.roommates(sender) {
            if id == sender {
                continue;
            }
            if let Some(member) = self.members.get_mut(&id) {
                member.send(line.clone(), &mut self.tally);
            }
        }
    }
}

#[cfg(test)]
mod tests;
