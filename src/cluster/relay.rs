//! The manager's side of `--redis`: what it tells the other servers, and
//! what it does with what they tell it. Runs on the manager thread: the
//! manager holds the [`Relay`] behind its `Elsewhere` seam and calls it
//! after its own work for an event. The relay owns the [`Roster`] of the
//! other servers' users, the sending end of the `to_redis` channel and the
//! receiving end of the cluster channel; it acts on this server's clients
//! only through the manager's `Here`.
//!
//! Every hand-off to the publisher is a `try_send`, so the manager never
//! waits on Redis (docs/ARCHITECTURE.md, invariant 1). What does not fit is
//! counted (`cluster_unpublished`), and the speaker is told that the line
//! reached this server only.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::roster::{RemoteUser, Roster};
use super::{Body, ClusterEvent, LineId, Message, ServerId, Side, ToRedis};
use crate::line::{Change, OutboundLine, Says};
use crate::manager::{Elsewhere, Here, News};
use crate::shared::ClientId;

/// What the relay is connected to.
pub(crate) struct Link {
    pub(crate) server: ServerId,
    pub(crate) to_redis_tx: Sender<ToRedis>,
    pub(crate) cluster_rx: Receiver<ClusterEvent>,
    pub(crate) ttl: Duration,
}

pub(crate) struct Relay {
    link: Link,
    roster: Roster,
    /// What each Redis thread last reported; `None` before its first report.
    publisher_up: Option<bool>,
    subscriber_up: Option<bool>,
    /// Whether clients have been told the other servers cannot be reached.
    told_unreachable: bool,
}

const UNREACHABLE: &str =
    "other servers cannot be reached (Redis is down); chat on this server goes on";
const REACHABLE_AGAIN: &str = "other servers can be reached again";

impl Relay {
    pub(crate) fn new(link: Link) -> Self {
        Relay {
            link,
            roster: Roster::default(),
            publisher_up: None,
            subscriber_up: None,
            told_unreachable: false,
        }
    }

    /// Hands `work` to the publisher without waiting. False if it did not
    /// fit (or the publisher is gone).
    fn hand_over(&self, work: ToRedis) -> bool {
        self.link.to_redis_tx.try_send(work).is_ok()
    }

    /// Tells the other servers, counting a message that did not fit.
    fn publish(&self, body: Body, here: &mut Here) -> bool {
        let handed = self.hand_over(ToRedis::Publish(body));
        if !handed {
            here.tally.cluster_unpublished += 1;
        }
        handed
    }

    /// Names let go of here; the publisher frees them in Redis. Not counted
    /// if it does not fit: the claim then runs out after `--redis-ttl`, as
    /// it would if this server died.
    fn release(&self, names: Vec<String>) {
        self.hand_over(ToRedis::Release(names));
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

    /// "Hello" to ask for every roster, and our own, so that every server,
    /// us included, knows everyone.
    fn greet(&self, here: &mut Here) {
        self.publish(Body::Hello, here);
        self.publish(Body::Roster(here.roster()), here);
    }

    /// Servers silent for `--redis-ttl` are dead, and their users leave.
    /// Not while our own link is down, when silence proves nothing.
    fn expire_servers(&mut self, here: &mut Here) {
        if self.reachable() != Some(true) {
            return;
        }
        for user in self.roster.expire(Instant::now(), self.link.ttl) {
            self.user_left(&user, Change::Quit, here);
        }
    }

    fn on_message(&mut self, message: Message, here: &mut Here) {
        let from = message.from;
        let line_id = message.line_id();
        if self.roster.heard(from, Instant::now())
            && !matches!(message.body, Body::Hello | Body::Roster(_) | Body::Goodbye)
        {
            // A server we did not know (new, or back after an outage): ask
            // for everyone's roster, and send ours.
            self.greet(here);
        }
        match message.body {
            Body::Said { room, line, .. } => self.remote_said(line_id, &room, &line, here),
            Body::Whisper {
                to_server,
                from: sender,
                to,
                text,
            } => self.remote_whisper(to_server, from, sender, &to, text, here),
            Body::Unreached {
                to_server,
                sender,
                target,
            } => self.remote_unreached(to_server, &sender, &target, here),
            Body::In { name, room } => self.remote_in(from, &name, &room, here),
            Body::Left { name } => {
                if let Some(user) = self.roster.remove(from, &name) {
                    self.user_left(&user, Change::Quit, here);
                }
            }
            Body::Renamed { old, new } => self.remote_renamed(from, &old, &new, here),
            Body::Roster(users) => {
                self.roster.replace(from, users, Instant::now());
                here.users_changed();
            }
            Body::Hello => {
                self.publish(Body::Roster(here.roster()), here);
            }
            Body::Alive => {}
            Body::Goodbye => {
                for user in self.roster.drop_server(from) {
                    self.user_left(&user, Change::Quit, here);
                }
            }
        }
    }

    /// A line said on another server: to our members of its room, and into
    /// the room's history, unless it is already there (read from Redis's
    /// copy when the subscriber connected).
    fn remote_said(&mut self, line_id: Option<LineId>, room: &str, text: &str, here: &mut Here) {
        if line_id.is_some_and(|id| here.rooms.has_line(room, id)) {
            return;
        }
        let Some(says) = said(text) else {
            log::debug!("cluster: a room line we cannot read: {text:?}");
            return;
        };
        let line = OutboundLine::timed(says, line_id, &here.shared.gauges.fanout);
        // With `--max-rooms` full here, the line still reaches whoever is
        // in the room here (nobody, if it does not exist); it is not kept.
        let _ = here.rooms.record_in(room, line_id, line.clone());
        here.send_to_room(room, &line, None);
        line.fan_out_done();
    }

    fn remote_whisper(
        &mut self,
        to_server: ServerId,
        from: ServerId,
        sender: String,
        to: &str,
        text: String,
        here: &mut Here,
    ) {
        if to_server != self.link.server {
            return;
        }
        match here.registered(to) {
            Some((id, _)) => here.reply(id, Says::WhisperFrom { from: sender, text }),
            None => {
                let unreached = Body::Unreached {
                    to_server: from,
                    sender,
                    target: to.to_string(),
                };
                self.publish(unreached, here);
            }
        }
    }

    fn remote_unreached(
        &mut self,
        to_server: ServerId,
        sender: &str,
        target: &str,
        here: &mut Here,
    ) {
        if to_server != self.link.server {
            return;
        }
        if let Some((id, _)) = here.shared.clients.lookup(sender) {
            here.error(
                id,
                &format!("{target} left before your whisper reached them"),
            );
        }
    }

    fn remote_in(&mut self, from: ServerId, name: &str, room: &str, here: &mut Here) {
        let before = self.roster.set_room(from, name, room);
        here.users_changed();
        if let Some(before) = before {
            self.announce(&before, name, Change::Parted, here);
        }
        self.announce(room, name, Change::Joined, here);
    }

    fn user_left(&mut self, user: &RemoteUser, change: Change, here: &mut Here) {
        here.users_changed();
        self.announce(&user.room, &user.name, change, here);
    }

    fn remote_renamed(&mut self, from: ServerId, old: &str, new: &str, here: &mut Here) {
        let room = self.roster.rename(from, old, new);
        here.users_changed();
        if let Some(room) = room {
            let change = Change::Renamed {
                new: new.to_string(),
            };
            self.announce(&room, old, change, here);
        }
    }

    /// A presence line about a user elsewhere, to our members of `room`.
    fn announce(&self, room: &str, name: &str, change: Change, here: &mut Here) {
        let says = Says::Presence {
            name: name.to_string(),
            room: room.to_string(),
            change,
        };
        here.announce(room, says, None, self.roster.count_in_room(room));
    }

    /// One of the Redis threads lost its connection, or has it back. Clients
    /// hear once when the other servers become unreachable, and once when
    /// they are back; the log has the details from the Redis threads.
    fn on_link(&mut self, side: Side, up: bool, here: &mut Here) {
        let before = self.reachable();
        match side {
            Side::Publisher => self.publisher_up = Some(up),
            Side::Subscriber => self.subscriber_up = Some(up),
        }
        let now = self.reachable();
        if now == Some(true) && before != Some(true) {
            // Both links are up (at start, or after an outage, when messages
            // were missed both ways): everyone's roster, again. Not sooner:
            // with the publisher still down, our hello would be lost.
            self.roster.heard_from_all(Instant::now());
            self.greet(here);
        }
        match (before, now) {
            (_, Some(false)) if !self.told_unreachable => {
                self.told_unreachable = true;
                here.tell_everyone(&OutboundLine::notice(UNREACHABLE));
            }
            (Some(false), Some(true)) if self.told_unreachable => {
                self.told_unreachable = false;
                here.tell_everyone(&OutboundLine::notice(REACHABLE_AGAIN));
            }
            _ => {}
        }
    }
}

/// What a line from another server says, read back from how the line
/// protocol spelled it (`[ROOM] NAME: TEXT`, `[ROOM] * NAME TEXT`): that is
/// what goes over Redis and into its history. Names and room names hold no
/// spaces, `]`, `:` or `*`, so the spelling reads back one way only.
pub(super) fn said(line: &str) -> Option<Says> {
    let (room, rest) = line.strip_prefix('[')?.split_once("] ")?;
    let (action, rest) = match rest.strip_prefix("* ") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let (from, text) = if action {
        rest.split_once(' ')?
    } else {
        rest.split_once(": ")?
    };
    let plain = |word: &str| !word.is_empty() && !word.contains([' ', ']', ':', '*', '[']);
    if !(plain(room) && plain(from)) {
        return None;
    }
    let (room, from, text) = (room.to_string(), from.to_string(), text.to_string());
    Some(match action {
        false => Says::Chat { room, from, text },
        true => Says::Action { room, from, text },
    })
}

impl Elsewhere for Relay {
    type Event = ClusterEvent;

    /// The room goes on on other servers, and a newcomer here gets its
    /// history.
    const KEEPS_EMPTY_ROOMS: bool = true;

    fn events(&self) -> Receiver<ClusterEvent> {
        self.link.cluster_rx.clone()
    }

    fn on_event(&mut self, event: ClusterEvent, here: &mut Here) {
        match event {
            ClusterEvent::Message(message) => {
                here.tally.cluster_received += 1;
                self.on_message(message, here);
            }
            ClusterEvent::History { room, lines } => {
                let lines = (lines.into_iter())
                    .filter_map(|(id, text)| Some((id, OutboundLine::numbered(said(&text)?, id))))
                    .collect();
                let _ = here.rooms.merge_history(&room, lines);
            }
            ClusterEvent::Link { side, up } => self.on_link(side, up, here),
        }
    }

    fn news(&mut self, news: News, here: &mut Here) {
        match news {
            News::Arrived { id, name, room } => {
                // A newcomer arriving while the others are unreachable is
                // told so.
                if self.told_unreachable {
                    here.notice(id, UNREACHABLE);
                }
                self.publish(Body::In { name, room }, here);
            }
            News::Moved { name, room } => {
                self.publish(Body::In { name, room }, here);
            }
            News::Left { name } => {
                self.publish(Body::Left { name: name.clone() }, here);
                self.release(vec![name]);
            }
            News::Renamed { old, new } => {
                let renamed = Body::Renamed {
                    old: old.clone(),
                    new,
                };
                self.publish(renamed, here);
                self.release(vec![old]);
            }
            News::Tick => self.expire_servers(here),
            // The others drop our users at once, rather than after
            // `--redis-ttl`, and our names are freed. The manager then
            // drops the relay, and with it the channel to the publisher,
            // which is what lets the publisher finish.
            News::Goodbye { names } => {
                self.publish(Body::Goodbye, here);
                self.release(names);
            }
        }
    }

    fn server_id(&self) -> Option<u64> {
        Some(self.link.server.0)
    }

    /// The manager numbers the lines said here, with our id
    /// ([`server_id`](Elsewhere::server_id)): the others read the same
    /// [`LineId`] from the message.
    fn said(&mut self, speaker: ClientId, room: &str, line: &OutboundLine, here: &mut Here) {
        let Some(id) = line.id() else {
            return;
        };
        let said = Body::Said {
            room: room.to_string(),
            seq: id.seq,
            line: line.text().to_string(),
        };
        if !self.publish(said, here) && self.reachable() != Some(false) {
            let warning = "the other servers are behind: that line reached this server only";
            here.error(speaker, warning);
        }
    }

    fn whisper(
        &mut self,
        sender: ClientId,
        from: &str,
        to: &str,
        text: &str,
        here: &mut Here,
    ) -> bool {
        let Some((server, user)) = self.roster.lookup(to) else {
            return false;
        };
        let name = user.name.clone();
        let whisper = Body::Whisper {
            to_server: server,
            from: from.to_string(),
            to: name.clone(),
            text: text.to_string(),
        };
        if self.publish(whisper, here) {
            let text = text.to_string();
            here.reply(sender, Says::WhisperTo { to: name, text });
        } else {
            here.error(
                sender,
                &format!("could not reach {name}'s server; try again"),
            );
        }
        true
    }

    fn user_count(&self) -> usize {
        self.roster.len()
    }

    fn count_in_room(&self, room: &str) -> usize {
        self.roster.count_in_room(room)
    }

    fn users(&self) -> Vec<(String, String)> {
        (self.roster.users())
            .map(|user| (user.name.clone(), user.room.clone()))
            .collect()
    }

    fn stats(&self, here: &Here) -> Option<String> {
        let snapshot = here.shared.snapshot();
        let state = match self.reachable() {
            Some(true) => "reachable",
            Some(false) => "unreachable",
            None => "connecting",
        };
        Some(format!(
            "; cluster: server {}, other servers {state}, {} known with {} users, {} messages received, {} unpublished",
            self.link.server,
            self.roster.servers(),
            self.roster.len(),
            snapshot.cluster_received,
            snapshot.cluster_unpublished
        ))
    }
}

#[cfg(test)]
mod tests;
