//! The manager's side of `--redis`: what it tells the other servers, and what
//! it does with what they tell it. Runs on the manager thread, as part of
//! [`Manager`]; owns the [`Roster`] of the other servers' users and the
//! sending end of the `to_redis` channel.
//!
//! The rule that keeps the manager from ever waiting on Redis is the same as
//! for clients: every hand-off is a `try_send`. What does not fit is counted
//! (`cluster_unpublished`), and the speaker is told that the line reached
//! this server only.
//!
//! Without `--redis`, `Manager::remote` is `None` and nothing here runs.

use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use super::Manager;
use crate::cluster::roster::{RemoteUser, Roster};
use crate::cluster::{Body, ClusterEvent, LineId, Message, ServerId, Side, ToRedis};
use crate::event::{ClientId, OutboundLine};
use crate::protocol;
use crate::shared::Tally;

/// What the manager is connected to when it runs with `--redis`.
pub(crate) struct ClusterLink {
    pub(crate) server: ServerId,
    pub(crate) to_redis_tx: Sender<ToRedis>,
    pub(crate) ttl: Duration,
}

/// The manager's state for the cluster.
pub(super) struct Remote {
    link: ClusterLink,
    pub(super) roster: Roster,
    /// The number of the next line said here.
    next_seq: u64,
    /// What each Redis thread last reported; `None` before its first report.
    publisher_up: Option<bool>,
    subscriber_up: Option<bool>,
    /// Whether clients have been told the other servers cannot be reached.
    told_unreachable: bool,
}

impl Remote {
    pub(super) fn new(link: ClusterLink) -> Self {
        Remote {
            link,
            roster: Roster::default(),
            next_seq: 0,
            publisher_up: None,
            subscriber_up: None,
            told_unreachable: false,
        }
    }

    /// Hands `work` to the publisher without waiting. False if it did not
    /// fit (or the publisher is gone), which the caller counts.
    fn hand_over(&self, work: ToRedis) -> bool {
        match self.link.to_redis_tx.try_send(work) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    fn publish(&self, body: Body, tally: &mut Tally) -> bool {
        let handed = self.hand_over(ToRedis::Publish(body));
        if !handed {
            tally.cluster_unpublished += 1;
        }
        handed
    }

    fn next_line_id(&mut self) -> LineId {
        self.next_seq += 1;
        LineId {
            server: self.link.server,
            seq: self.next_seq,
        }
    }

    /// A down side makes the others unreachable; both up makes them
    /// reachable. `None` until that is known.
    fn reachable(&self) -> Option<bool> {
        match (self.publisher_up, self.subscriber_up) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        }
    }
}

const UNREACHABLE: &str =
    "other servers cannot be reached (Redis is down); chat on this server goes on";
const REACHABLE_AGAIN: &str = "other servers can be reached again";

impl Manager {
    /// Tells the other servers, if there are any.
    pub(super) fn tell_cluster(&mut self, body: Body) {
        if let Some(remote) = &self.remote {
            remote.publish(body, &mut self.tally);
        }
    }

    /// A line said here in `room`: published, with its id for the history.
    /// The speaker is told if it could not be handed to the publisher.
    pub(super) fn publish_said(
        &mut self,
        speaker: ClientId,
        room: &str,
        line: &str,
    ) -> Option<LineId> {
        let remote = self.remote.as_mut()?;
        let id = remote.next_line_id();
        let said = Body::Said {
            room: room.to_string(),
            seq: id.seq,
            line: line.to_string(),
        };
        if !remote.publish(said, &mut self.tally) && remote.reachable() != Some(false) {
            let warning = "the other servers are behind: that line reached this server only";
            self.reply(speaker, &protocol::error(warning));
        }
        Some(id)
    }

    /// Names let go of here; the publisher frees them in Redis.
    pub(super) fn release_in_cluster(&mut self, names: Vec<String>) {
        if let Some(remote) = &self.remote {
            // Not counted if it does not fit: the claim then simply runs
            // out after `--redis-ttl`, as it would if this server died.
            remote.hand_over(ToRedis::Release(names));
        }
    }

    /// A whisper to a name not on this server: sent on if another server
    /// has it. False if nobody has it.
    pub(super) fn whisper_elsewhere(
        &mut self,
        id: ClientId,
        from: &str,
        to: &str,
        text: &str,
    ) -> bool {
        let Some(remote) = &self.remote else {
            return false;
        };
        let Some((server, user)) = remote.roster.lookup(to) else {
            return false;
        };
        let whisper = Body::Whisper {
            to_server: server,
            from: from.to_string(),
            to: user.name.clone(),
            text: text.to_string(),
        };
        let sent = protocol::whisper_sent(&user.name, text);
        if remote.publish(whisper, &mut self.tally) {
            self.reply(id, &sent);
        } else {
            let name = user.name.clone();
            self.reply(
                id,
                &protocol::error(&format!("could not reach {name}'s server; try again")),
            );
        }
        true
    }

    /// At shutdown: the others drop our users at once, rather than after
    /// `--redis-ttl`, and our names are freed. Then the channel to the
    /// publisher closes, which is what lets it finish.
    pub(super) fn leave_cluster(&mut self, names: Vec<String>) {
        self.tell_cluster(Body::Goodbye);
        self.release_in_cluster(names);
        self.remote = None;
    }

    /// Once a second: servers silent for `--redis-ttl` are dead, and their
    /// users leave. Not while our own link is down, when silence proves
    /// nothing.
    pub(super) fn expire_servers(&mut self) {
        let Some(remote) = &mut self.remote else {
            return;
        };
        if remote.reachable() != Some(true) {
            return;
        }
        let gone = remote.roster.expire(Instant::now(), remote.link.ttl);
        for user in gone {
            self.remote_user_left(&user);
        }
    }

    pub(super) fn on_cluster(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::Message(message) => {
                self.tally.cluster_received += 1;
                self.on_message(message);
            }
            ClusterEvent::History { room, lines } => {
                let lines: Vec<_> = lines
                    .into_iter()
                    .map(|(id, text)| (id, OutboundLine::new(&text)))
                    .collect();
                self.rooms.history_of(&room).merge(lines);
            }
            ClusterEvent::Link { side, up } => self.on_link(side, up),
        }
    }

    fn on_message(&mut self, message: Message) {
        let Some(remote) = &mut self.remote else {
            return;
        };
        let from = message.from;
        let line_id = message.line_id();
        if remote.roster.heard(from, Instant::now())
            && !matches!(message.body, Body::Hello | Body::Roster(_) | Body::Goodbye)
        {
            // A server we did not know (new, or back after an outage): ask
            // for everyone's roster, and send ours.
            self.greet_cluster();
        }
        match message.body {
            Body::Said { room, line, .. } => self.remote_said(line_id, &room, &line),
            Body::Whisper {
                to_server,
                from: sender,
                to,
                text,
            } => self.remote_whisper(to_server, from, &sender, &to, &text),
            Body::Unreached {
                to_server,
                sender,
                target,
            } => self.remote_unreached(to_server, &sender, &target),
            Body::In { name, room } => self.remote_in(from, &name, &room),
            Body::Left { name } => {
                let user = self
                    .roster_mut()
                    .and_then(|roster| roster.remove(from, &name));
                if let Some(user) = user {
                    self.remote_user_left(&user);
                }
            }
            Body::Renamed { old, new } => self.remote_renamed(from, &old, &new),
            Body::Roster(users) => {
                if let Some(roster) = self.roster_mut() {
                    roster.replace(from, users, Instant::now());
                }
                self.users_reply = None;
            }
            Body::Hello => {
                let roster = self.roster_body();
                self.tell_cluster(roster);
            }
            Body::Alive => {}
            Body::Goodbye => {
                let gone = self
                    .roster_mut()
                    .map(|r| r.drop_server(from))
                    .unwrap_or_default();
                for user in gone {
                    self.remote_user_left(&user);
                }
            }
        }
    }

    fn roster_mut(&mut self) -> Option<&mut Roster> {
        self.remote.as_mut().map(|remote| &mut remote.roster)
    }

    /// "Hello" to ask for every roster, and our own, so that every server,
    /// us included, knows everyone.
    fn greet_cluster(&mut self) {
        self.tell_cluster(Body::Hello);
        let roster = self.roster_body();
        self.tell_cluster(roster);
    }

    /// Every user here, with their room.
    fn roster_body(&self) -> Body {
        let users = self
            .members
            .iter()
            .filter_map(|(id, member)| {
                let name = member.name.clone()?;
                let room = self.rooms.room_of(*id)?.to_string();
                Some((name, room))
            })
            .collect();
        Body::Roster(users)
    }

    /// A line said on another server: to our members of its room, and into
    /// the room's history, unless it is already there (read from Redis's
    /// copy when the subscriber connected).
    fn remote_said(&mut self, line_id: Option<LineId>, room: &str, text: &str) {
        let history = self.rooms.history_of(room);
        if line_id.is_some_and(|id| history.contains(id)) {
            return;
        }
        let line = OutboundLine::timed(text, &self.shared.gauges.fanout);
        history.record(line_id, line.clone());
        let members: Vec<ClientId> = self.rooms.members_of(room).collect();
        for id in members {
            if let Some(member) = self.members.get_mut(&id) {
                member.send(line.clone(), &mut self.tally);
            }
        }
        line.fan_out_done();
    }

    fn remote_whisper(
        &mut self,
        to_server: ServerId,
        from: ServerId,
        sender: &str,
        to: &str,
        text: &str,
    ) {
        let Some(remote) = &self.remote else {
            return;
        };
        if to_server != remote.link.server {
            return;
        }
        let target = self.shared.clients.lookup(to).map(|(id, _)| id);
        match target.filter(|id| self.name_of(*id).is_some()) {
            Some(id) => self.reply(id, &protocol::whisper_received(sender, text)),
            None => self.tell_cluster(Body::Unreached {
                to_server: from,
                sender: sender.to_string(),
                target: to.to_string(),
            }),
        }
    }

    fn remote_unreached(&mut self, to_server: ServerId, sender: &str, target: &str) {
        if self.remote.as_ref().map(|r| r.link.server) != Some(to_server) {
            return;
        }
        if let Some((id, _)) = self.shared.clients.lookup(sender) {
            let message = format!("{target} left before your whisper reached them");
            self.reply(id, &protocol::error(&message));
        }
    }

    fn remote_in(&mut self, from: ServerId, name: &str, room: &str) {
        let Some(roster) = self.roster_mut() else {
            return;
        };
        let before = roster.set_room(from, name, room);
        self.users_reply = None;
        if let Some(before) = &before {
            self.announce_in_room(before, &format!("{name} left"));
        }
        self.announce_in_room(room, &format!("{name} joined"));
    }

    fn remote_user_left(&mut self, user: &RemoteUser) {
        self.users_reply = None;
        self.announce_in_room(&user.room, &format!("{} left", user.name));
    }

    fn remote_renamed(&mut self, from: ServerId, old: &str, new: &str) {
        let room = self
            .roster_mut()
            .and_then(|roster| roster.rename(from, old, new));
        self.users_reply = None;
        if let Some(room) = room {
            self.announce_in_room(&room, &format!("{old} is now known as {new}"));
        }
    }

    /// `* TEXT` to our members of `room`, if the room (across servers) is
    /// small enough for that to be news (`--announce-up-to`).
    fn announce_in_room(&mut self, room: &str, text: &str) {
        let here = self.rooms.size_of(room);
        let everywhere = here + self.room_count_elsewhere(room);
        if here == 0 || everywhere > self.shared.config.announce_up_to {
            return;
        }
        let members: Vec<ClientId> = self.rooms.members_of(room).collect();
        let line = OutboundLine::new(&protocol::notice(text));
        for id in members {
            if let Some(member) = self.members.get_mut(&id) {
                member.send(line.clone(), &mut self.tally);
            }
        }
    }

    /// One of the Redis threads lost its connection, or has it back. Clients
    /// hear once when the other servers become unreachable, and once when
    /// they are back; the log has the details from the Redis threads.
    fn on_link(&mut self, side: Side, up: bool) {
        let Some(remote) = &mut self.remote else {
            return;
        };
        let before = remote.reachable();
        match side {
            Side::Publisher => remote.publisher_up = Some(up),
            Side::Subscriber => remote.subscriber_up = Some(up),
        }
        let now = remote.reachable();
        if now == Some(true) && before != Some(true) {
            // Both links are up (at start, or after an outage, when messages
            // were missed both ways): everyone's roster, again. Not sooner:
            // with the publisher still down, our hello would be lost.
            remote.roster.heard_from_all(Instant::now());
            self.greet_cluster();
        }
        let Some(remote) = &mut self.remote else {
            return;
        };
        match (before, now) {
            (_, Some(false)) if !remote.told_unreachable => {
                remote.told_unreachable = true;
                self.tell_everyone(UNREACHABLE);
            }
            (Some(false), Some(true)) if remote.told_unreachable => {
                remote.told_unreachable = false;
                self.tell_everyone(REACHABLE_AGAIN);
            }
            _ => {}
        }
    }

    /// A newcomer arriving while the others are unreachable is told so.
    pub(super) fn tell_if_unreachable(&mut self, id: ClientId) {
        if self.remote.as_ref().is_some_and(|r| r.told_unreachable) {
            self.reply(id, &protocol::notice(UNREACHABLE));
        }
    }

    /// `* TEXT` to every client that has a name.
    fn tell_everyone(&mut self, text: &str) {
        let line = OutboundLine::new(&protocol::notice(text));
        for member in self.members.values_mut() {
            if member.name.is_some() {
                member.send(line.clone(), &mut self.tally);
            }
        }
    }

    pub(super) fn user_count_elsewhere(&self) -> usize {
        self.remote.as_ref().map_or(0, |r| r.roster.len())
    }

    /// The names of the users on other servers.
    pub(super) fn users_elsewhere(&self) -> Vec<String> {
        self.remote
            .as_ref()
            .map(|r| r.roster.users().map(|u| u.name.clone()).collect())
            .unwrap_or_default()
    }

    /// How many users on other servers are in `room`.
    pub(super) fn room_count_elsewhere(&self, room: &str) -> usize {
        self.remote
            .as_ref()
            .map_or(0, |r| r.roster.count_in_room(room))
    }

    /// Users on other servers in `room`.
    pub(super) fn room_members_elsewhere(&self, room: &str) -> Vec<String> {
        self.remote
            .as_ref()
            .map(|r| r.roster.in_room(room).map(|u| u.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Rooms that have members on other servers and do not exist here.
    pub(super) fn rooms_only_elsewhere(&self) -> Vec<String> {
        let Some(remote) = &self.remote else {
            return Vec::new();
        };
        let mut rooms: Vec<String> = Vec::new();
        for user in remote.roster.users() {
            let known = rooms
                .iter()
                .any(|room| room.eq_ignore_ascii_case(&user.room));
            if !known && !self.rooms.exists(&user.room) {
                rooms.push(user.room.clone());
            }
        }
        rooms.sort_unstable_by_key(|room| room.to_ascii_lowercase());
        rooms
    }

    /// `/stats`'s words about the cluster, if there is one.
    pub(super) fn cluster_stats(&self) -> Option<String> {
        let remote = self.remote.as_ref()?;
        let snapshot = self.shared.snapshot();
        let state = match remote.reachable() {
            Some(true) => "reachable",
            Some(false) => "unreachable",
            None => "connecting",
        };
        Some(format!(
            "; cluster: server {}, other servers {state}, {} known with {} users, {} messages received, {} unpublished",
            remote.link.server,
            remote.roster.servers(),
            remote.roster.len(),
            snapshot.cluster_received,
            snapshot.cluster_unpublished
        ))
    }
}
