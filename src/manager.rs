//! The manager thread: the one place that decides who receives what.
//!
//! It receives every [`Event`] from every reader over one channel
//! (`events_rx`), and holds the only sender of every client's queue, inside
//! that client's `Outbox`. What it owns (the clients, the rooms with their
//! history) is in [`Here`]: only this thread sees it, so none of it needs a
//! lock. It reads the client directory and releases names in it, and adds
//! its counts to the stats once per event, through `Shared`'s methods.
//!
//! It never waits for a client (docs/ARCHITECTURE.md, invariant 1). Other servers
//! (`--redis`) are behind the [`Elsewhere`] seam; alone, that is [`Alone`].

mod elsewhere;
mod here;

pub(crate) use elsewhere::{Alone, Elsewhere, News};
pub(crate) use here::Here;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{never, select, tick, Receiver, Select};

use crate::event::{Event, LeaveReason, Named, Query};
use crate::line::{Change, LineId, OutboundLine, Refusal, Roster, Says};
use crate::logic::history::History;
use crate::logic::protocol;
use crate::logic::rate_limit::FLOOD_TOLERANCE;
use crate::logic::rooms::{TooManyRooms, LOBBY};
use crate::outbox::{Outbox, Wakeups};
use crate::shared::thread_states::{self, State};
use crate::shared::{ClientId, ManagerView, Shared};
use crate::shutdown::ShutdownSignal;
use crate::watch::trace::Trace;
use crate::watch::traces::Traces;

/// How often the manager publishes its view (rooms, deepest backlogs).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// The answer to `/trace`.
const TRACING: &str = "trace: your next line will be timed through reader, events, manager, \
                       outboxes, writers and sockets";

/// How many of the deepest backlogs the live view shows.
const DEEPEST_SHOWN: usize = 5;

/// The most events handled before the writers they woke are woken. Big
/// enough that a saturated manager wakes each writer once for many lines;
/// small enough that the first line of a batch does not wait long behind
/// the rest (docs/BENCHMARKS.md measures both).
pub(crate) const BATCH: usize = 256;

pub(crate) fn run<E: Elsewhere>(
    shared: Arc<Shared>,
    events_rx: Receiver<Event>,
    elsewhere: E,
    shutdown: ShutdownSignal,
) {
    let mut elsewhere_rx = elsewhere.events();
    let mut manager = Manager::new(shared, elsewhere);
    // Once a second, what only the manager knows goes to the live view.
    let report = tick(REPORT_EVERY);
    loop {
        let traces_due = manager.traces.due();
        // Until one of them is ready, the board shows the manager waiting
        // for its channels; then `select!` takes from it without waiting.
        thread_states::blocked(State::Channel, || {
            let mut any = Select::new();
            any.recv(&events_rx);
            any.recv(&elsewhere_rx);
            any.recv(&report);
            any.recv(shutdown.receiver());
            any.recv(&traces_due);
            any.ready()
        });
        // `select!` waits on several channels at once and runs the arm of
        // whichever is ready first.
        select! {
            recv(events_rx) -> event => match event {
                Ok(event) => {
                    manager.handle_guarded(event);
                    // The events already waiting, before anyone is woken:
                    // a writer given lines by several of them wakes once.
                    for event in events_rx.try_iter().take(BATCH - 1) {
                        manager.handle_guarded(event);
                    }
                }
                // Every reader and the acceptor are gone.
                Err(_) => break,
            },
            recv(elsewhere_rx) -> event => match event {
                Ok(event) => manager.handle_from_elsewhere(event),
                // The other servers' threads have stopped: nothing more to wait for.
                Err(_) => elsewhere_rx = never(),
            },
            recv(report) -> _ => manager.publish(),
            recv(shutdown.receiver()) -> _ => break,
            recv(traces_due) -> _ => {}
        }
        for (id, journey) in manager.traces.finished() {
            journey
                .iter()
                .for_each(|line| manager.here.notice(id, line));
        }
        // Whatever the arm, the writers it gave lines to while they slept
        // are woken now, once each (`outbox.rs`, rule 3).
        manager.here.wake_writers();
        manager.here.keep_backlogs_within_budget(false);
        let depth = &manager.here.shared.gauges.events_depth;
        depth.store(events_rx.len(), Ordering::Relaxed);
    }
    manager.say_goodbye_to_everyone();
    drain(&manager.here.shared, &events_rx);
}

/// Readers still running may have events on their way, and an
/// `Event::Connected` waiting in the channel holds the only `Outbox` of a
/// client's queue: left there, that client's writer would wait for it
/// forever, its reader would wait for the writer, and shutdown would wait
/// for them all. So the manager keeps receiving, and dropping, until every
/// reader has finished and the channel is closed. Names claimed by readers
/// for events that will not be handled are let go, so that nobody counts as
/// online once the server has stopped.
fn drain(shared: &Shared, events_rx: &Receiver<Event>) {
    let goodbye = OutboundLine::notice("server shutting down");
    let mut wakeups = Wakeups::default();
    for event in events_rx.iter() {
        match event {
            // Delivered, then dropped: closing the queue wakes its writer.
            Event::Connected {
                id,
                mut outbox,
                named,
                ..
            } => {
                outbox.deliver(goodbye.clone(), &mut wakeups);
                if let Some(named) = named {
                    shared.clients.release(&named.name, id);
                }
            }
            Event::Registered { id, name } => shared.clients.release(&name, id),
            Event::Renamed { id, new, .. } => shared.clients.release(&new, id),
            _ => {}
        }
    }
}

pub(crate) struct Manager<E: Elsewhere> {
    here: Here,
    elsewhere: E,
    /// Traced lines not yet written everywhere (`/trace`).
    traces: Traces,
    /// This server's part of every [`LineId`]: the cluster's id for it, or
    /// a random one when alone.
    server: u64,
    /// Room lines said here so far: the last one's number.
    said: u64,
}

impl<E: Elsewhere> Manager<E> {
    pub(crate) fn new(shared: Arc<Shared>, elsewhere: E) -> Self {
        let mut here = Here::new(shared);
        if E::KEEPS_EMPTY_ROOMS {
            here.rooms.keep_empty_rooms();
        }
        // Not a secret, only different from the last run's: std seeds each
        // `RandomState` from the operating system's random source.
        let random = || RandomState::new().build_hasher().finish();
        let server = elsewhere.server_id().unwrap_or_else(random);
        Manager {
            here,
            elsewhere,
            traces: Traces::default(),
            server,
            said: 0,
        }
    }

    /// Handles one event. A bug that panics while handling it loses that
    /// event, is logged, and the server goes on.
    pub(crate) fn handle_guarded(&mut self, event: Event) {
        self.guarded(|manager| manager.handle(event));
    }

    /// Handles what the other servers' threads sent, guarded the same way.
    pub(crate) fn handle_from_elsewhere(&mut self, event: E::Event) {
        self.guarded(|manager| manager.elsewhere.on_event(event, &mut manager.here));
    }

    /// Runs `work`, catching a panic inside it, then adds what it counted
    /// to the stats.
    ///
    /// `catch_unwind` runs a closure and turns a panic inside it into an
    /// `Err`, instead of letting it end the thread. It asks for a closure
    /// that is `UnwindSafe`, meaning one that cannot leave shared data
    /// half-changed for the code after it to see; a closure holding
    /// `&mut self` is not. `AssertUnwindSafe` is our promise that it is
    /// fine here: the worst a half-handled event leaves is a line sent to
    /// some members of a room and not others.
    fn guarded(&mut self, work: impl FnOnce(&mut Self)) {
        if panic::catch_unwind(AssertUnwindSafe(|| work(self))).is_err() {
            log::error!("manager: handling an event panicked; event dropped, server continues");
        }
        self.here.add_tally_to_stats();
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Connected {
                id,
                peer,
                outbox,
                names_on_entry,
                named,
            } => self.on_connected(id, peer, outbox, names_on_entry, named),
            Event::Registered { id, name } => self.on_registered(id, name, None),
            Event::Renamed { id, old, new } => self.on_renamed(id, old, new),
            Event::Chat { id, text, room } => self.say_in_room(id, text, false, room, None),
            Event::Action { id, text, room } => self.say_in_room(id, text, true, room, None),
            Event::Traced {
                id,
                text,
                action,
                room,
                trace,
            } => {
                trace.taken();
                self.say_in_room(id, text, action, room, Some(trace));
            }
            Event::Tracing { id } => self.here.notice(id, TRACING),
            Event::Whisper { id, to, text } => self.on_whisper(id, &to, text),
            Event::ListUsers { id } => self.list_users(id),
            Event::JoinRoom { id, room, leaving } => self.on_join_room(id, &room, leaving),
            Event::ListRooms { id } => self.list_rooms(id),
            Event::ListRoomMembers { id, room, roster } => {
                self.list_room_members(id, room.as_deref(), roster)
            }
            Event::Query { id, query } => self.on_query(id, query),
            Event::ShowStats { id } => self.show_stats(id),
            Event::Help { id } => self.show_help(id),
            Event::Refused {
                id,
                message,
                refusal,
            } => self.on_refused(id, &message, refusal),
            Event::DoorReply { id, text } => self.here.reply(id, Says::Door(text)),
            Event::Left { id, reason } => self.on_left(id, reason),
        }
    }

    fn on_connected(
        &mut self,
        id: ClientId,
        peer: SocketAddr,
        outbox: Outbox,
        names: bool,
        named: Option<Box<Named>>,
    ) {
        log::debug!("{id} connected from {peer}");
        self.here.connect(id, peer, outbox, names);
        self.here.notice(id, "welcome to threadchat");
        match named.map(|named| *named) {
            Some(Named { name, resume_after }) => self.on_registered(id, name, resume_after),
            None => self.prompt_for_name(id),
        }
    }

    /// `resume_after`: the history replay starts after that line.
    fn on_registered(&mut self, id: ClientId, name: String, resume_after: Option<LineId>) {
        let Some(member) = self.here.member_mut(id) else {
            // Cannot happen (Connected always comes first), but if it did the
            // name must not stay claimed by nobody.
            self.here.shared.clients.release(&name, id);
            return;
        };
        log::info!("{name} joined ({id}, {})", member.peer);
        member.name = Some(name.clone());
        self.here.users_changed();
        let online = self.here.shared.clients.len() + self.elsewhere.user_count();
        self.enter_room(id, &name, LOBBY, resume_after, |room, _| Says::Welcome {
            name: name.clone(),
            room: room.to_string(),
            online,
        });
        let room = LOBBY.to_string();
        self.elsewhere
            .news(News::Arrived { id, name, room }, &mut self.here);
    }

    // ASSIGNMENT a2: begin: leave the room (telling it) and enter `room`, unless already there
    /// `/join ROOM` and `/leave` (and IRC's PART of `leaving`): out of one
    /// room, into another.
    fn on_join_room(&mut self, id: ClientId, room: &str, leaving: Option<String>) {
        let Some(name) = self.here.name_of(id).map(str::to_string) else {
            return;
        };
        if let Some(leaving) = leaving.filter(|leaving| !self.here.rooms.is_in(id, leaving)) {
            let refusal = format!("you are not in #{leaving}");
            return self.here.refuse(id, Refusal::NotInRoom(leaving), &refusal);
        }
        if self.here.rooms.is_in(id, room) {
            let current = self.here.rooms.room_of(id).unwrap_or(room);
            let line = format!("you are already in #{current}");
            self.here.notice(id, &line);
            return;
        }
        if let Err(TooManyRooms(most)) = self.here.rooms.can_enter(room) {
            let refusal = format!("too many rooms (at most {most}): join one that /rooms lists");
            self.here.tally.refused += 1;
            self.here.error(id, &refusal);
            return;
        }
        // Told while the leaver is still a member, so it is not among the
        // recipients and the room still exists.
        self.announce(id, &name, Change::Parted);
        log::debug!("{name} ({id}) goes to {room}");
        let elsewhere = self.elsewhere.count_in_room(room);
        let left = self.here.rooms.room_of(id).map(str::to_string);
        self.enter_room(id, &name, room, None, |room, members| Says::Entered {
            room: room.to_string(),
            left,
            members: members + elsewhere,
        });
        if let Some(room) = self.here.rooms.room_of(id).map(str::to_string) {
            self.elsewhere
                .news(News::Moved { name, room }, &mut self.here);
        }
    }
    // ASSIGNMENT a2: end

    // ASSIGNMENT a2: begin: enter `room`: greeting, history after its header, then tell the room
    /// Puts `id` in `room` and tells it, in this order: the `greeting` (made
    /// from the room's name and member count), the room's members if its
    /// door lists them on entry, the room's history between a header line
    /// and what comes next (only what came after `resume_after`, if given:
    /// [`replay`]), then `* NAME joined` to the others.
    ///
    /// The replay and the live lines meet exactly, with none missed and none
    /// twice, because the manager handles one event at a time
    /// (docs/ARCHITECTURE.md, invariant 5).
    fn enter_room(
        &mut self,
        id: ClientId,
        name: &str,
        room: &str,
        resume_after: Option<LineId>,
        greeting: impl FnOnce(&str, usize) -> Says,
    ) {
        let Ok(entered) = self.here.rooms.enter(id, room) else {
            // Checked by the caller: the lobby always exists, and `/join`
            // asks `can_enter` first.
            return;
        };
        let greeting = OutboundLine::new(greeting(entered.name, entered.members));
        let room = entered.name.to_string();
        let replay = replay(entered.name, entered.history, resume_after);
        self.here.send(id, greeting);
        if self
            .here
            .member_mut(id)
            .is_some_and(|member| member.names_on_entry)
        {
            self.list_room_members(id, Some(&room), Roster::Names);
        }
        for line in replay {
            self.here.send(id, line);
        }
        self.announce(id, name, Change::Joined);
    }
    // ASSIGNMENT a2: end

    /// A presence line about `id` to the rest of its room.
    fn announce(&mut self, id: ClientId, name: &str, change: Change) {
        let Some(room) = self.here.rooms.room_of(id).map(str::to_string) else {
            return;
        };
        let elsewhere = self.elsewhere.count_in_room(&room);
        let says = Says::Presence {
            name: name.to_string(),
            room: room.clone(),
            change,
        };
        self.here.announce(&room, says, Some(id), elsewhere);
    }

    // ASSIGNMENT a1: begin: send the line to the rest of the room, and keep it in its history
    /// A chat line or an action: made once, sent to the rest of the
    /// sender's room (here, and on the other servers), and kept in the
    /// room's history. A traced one is watched until it is written.
    fn say_in_room(
        &mut self,
        id: ClientId,
        text: String,
        action: bool,
        named: Option<String>,
        trace: Option<Trace>,
    ) {
        self.here.tally.messages_in += 1;
        if let Some(named) = named.filter(|named| !self.here.rooms.is_in(id, named)) {
            let refusal = format!("you are not in #{named}: join it to speak there");
            self.here.tally.refused += 1;
            return self
                .here
                .refuse(id, Refusal::CannotSpeakIn(named), &refusal);
        }
        if !self.here.rooms.take_turn(id, Instant::now()) {
            return self.room_is_busy(id);
        }
        let (Some(room), Some(from)) = (self.here.rooms.room_of(id), self.here.name_of(id)) else {
            return;
        };
        let (room, from) = (room.to_string(), from.to_string());
        let says = match action {
            false => Says::Chat {
                room: room.clone(),
                from,
                text,
            },
            true => Says::Action {
                room: room.clone(),
                from,
                text,
            },
        };
        self.said += 1;
        let line_id = LineId {
            server: self.server,
            seq: self.said,
        };
        let fanout = &self.here.shared.gauges.fanout;
        let line = OutboundLine::timed_and_traced(says, Some(line_id), fanout, trace.clone());
        self.here.send_to_room(&room, &line, Some(id));
        if let Some(trace) = trace {
            trace.queued(line.copies_queued());
            self.traces.watch(id, &line, trace);
        }
        line.fan_out_done();
        self.elsewhere.said(id, &room, &line, &mut self.here);
        self.here.rooms.record(id, Some(line_id), line);
    }
    // ASSIGNMENT a1: end

    /// A line over `--room-rate`: its speaker is told, and nobody else.
    fn room_is_busy(&mut self, id: ClientId) {
        let room = self.here.rooms.room_of(id).unwrap_or(LOBBY);
        let busy = match self.here.rooms.rate() {
            Some(rate) => format!("#{room} is busy: at most {rate}; try again in a moment"),
            None => format!("#{room} is busy; try again in a moment"),
        };
        self.here.tally.refused += 1;
        self.here.error(id, &busy);
    }

    fn on_renamed(&mut self, id: ClientId, old: String, new: String) {
        let Some(member) = self.here.member_mut(id) else {
            self.here.shared.clients.release(&new, id);
            return;
        };
        log::info!("{old} is now {new} ({id})");
        member.name = Some(new.clone());
        self.here.users_changed();
        // Released only now (docs/ARCHITECTURE.md, invariant 4).
        self.here.shared.clients.release(&old, id);
        let you = Says::Renamed {
            old: old.clone(),
            new: new.clone(),
        };
        self.here.reply(id, you);
        if let Some(room) = self.here.rooms.room_of(id).map(str::to_string) {
            let change = Change::Renamed { new: new.clone() };
            let says = Says::Presence {
                name: old.clone(),
                room: room.clone(),
                change,
            };
            self.here
                .send_to_room(&room, &OutboundLine::new(says), Some(id));
        }
        self.elsewhere
            .news(News::Renamed { old, new }, &mut self.here);
    }

    // ASSIGNMENT a2: begin: whisper to the target alone, confirm it to the sender, or say why not
    fn on_whisper(&mut self, id: ClientId, to: &str, text: String) {
        self.here.tally.messages_in += 1;
        let Some(from) = self.here.name_of(id).map(str::to_string) else {
            return;
        };
        // The directory spells the name as its holder does now, even if a
        // rename is still on its way to us.
        match self.here.registered(to) {
            Some((target, _)) if target == id => {
                self.here.error(id, "you cannot whisper to yourself");
            }
            Some((target, spelled)) => {
                let text_back = text.clone();
                self.here.reply(target, Says::WhisperFrom { from, text });
                self.here.reply(
                    id,
                    Says::WhisperTo {
                        to: spelled,
                        text: text_back,
                    },
                );
            }
            None if self.here.shared.clients.lookup(to).is_none()
                && self.elsewhere.whisper(id, &from, to, &text, &mut self.here) => {}
            None => {
                let missing = format!("no user named \"{}\" is online", protocol::excerpt(to));
                self.here
                    .refuse(id, Refusal::NoSuchUser(to.to_string()), &missing);
            }
        }
    }
    // ASSIGNMENT a2: end

    fn list_users(&mut self, id: ClientId) {
        let elsewhere = &self.elsewhere;
        let others = || {
            elsewhere
                .users()
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        };
        let reply = self.here.users_reply(others);
        self.here.send(id, reply);
    }

    /// Every room with its members on every server; a room with nobody
    /// in it anywhere is not listed, but the lobby always is.
    fn list_rooms(&mut self, id: ClientId) {
        let mut listed = self.room_list();
        let total = listed.len();
        let counts = crate::line::room_counts(&listed);
        listed.truncate(protocol::fitting(
            "rooms",
            &counts,
            protocol::MAX_LIST_BYTES,
        ));
        let more = total - listed.len();
        listed.shrink_to_fit();
        self.here.reply(id, Says::Rooms(listed, more));
    }

    /// What `/rooms` lists: rooms with someone in them, here or elsewhere,
    /// and the lobby, with how many are in each.
    fn room_list(&self) -> Vec<(String, usize)> {
        let rooms = &self.here.rooms;
        let mut listed: Vec<(String, usize)> = (rooms.list().into_iter())
            .map(|(name, members)| {
                (
                    name.to_string(),
                    members + self.elsewhere.count_in_room(name),
                )
            })
            .collect();
        let mut only_elsewhere: Vec<String> = (self.elsewhere.users().into_iter())
            .map(|(_, room)| room)
            .filter(|room| !rooms.exists(room))
            .collect();
        only_elsewhere.sort_unstable_by_key(|room| room.to_ascii_lowercase());
        only_elsewhere.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        for room in only_elsewhere {
            let members = self.elsewhere.count_in_room(&room);
            listed.push((room, members));
        }
        listed.retain(|(name, members)| *members > 0 || name == LOBBY);
        listed
    }

    /// The members of `room`, or of the client's own room, here and on
    /// the other servers.
    fn list_room_members(&mut self, id: ClientId, room: Option<&str>, roster: Roster) {
        let rooms = &self.here.rooms;
        let room = match room {
            Some(asked) => rooms.spelled(asked).unwrap_or(asked),
            None => match rooms.room_of(id) {
                Some(room) => room,
                None => return,
            },
        }
        .to_string();
        let mut names: Vec<String> = (self.here.rooms.members_of(&room))
            .filter_map(|mate| self.here.name_of(mate).map(str::to_string))
            .collect();
        names.extend(
            (self.elsewhere.users().into_iter())
                .filter(|(_, theirs)| theirs.eq_ignore_ascii_case(&room))
                .map(|(name, _)| name),
        );
        names.sort_unstable_by_key(|name| name.to_ascii_lowercase());
        // Cut here, not where it is spelled, so that a queue never holds
        // more than a list reply's bound (docs/RELIABILITY.md, "Memory").
        let total = names.len();
        let title = format!("in #{room}");
        names.truncate(protocol::fitting(&title, &names, protocol::MAX_LIST_BYTES));
        // It may wait in a queue a long time: no spare room with it.
        names.shrink_to_fit();
        let members = Says::Members {
            room,
            more: total - names.len(),
            names,
            roster,
        };
        self.here.reply(id, members);
    }

    /// IRC's WHOIS and WHO NICK, ISON and LUSERS.
    fn on_query(&mut self, id: ClientId, query: Query) {
        let says = match query {
            Query::Whereabouts { name, lookup } => Says::User {
                found: self.whereabouts(&name),
                asked: name,
                lookup,
            },
            Query::Online(names) => Says::Online(
                (names.iter())
                    .filter_map(|name| self.whereabouts(name).map(|(spelled, _)| spelled))
                    .collect(),
            ),
            Query::Counts => Says::Counts {
                online: self.here.shared.clients.len() + self.elsewhere.user_count(),
                rooms: self.room_list().len(),
            },
        };
        self.here.reply(id, says);
    }

    /// The user called `name` (ignoring case), here or elsewhere, as they
    /// spell it now, and their room.
    fn whereabouts(&self, name: &str) -> Option<(String, String)> {
        if let Some((mate, spelled)) = self.here.registered(name) {
            let room = self.here.rooms.room_of(mate)?;
            return Some((spelled, room.to_string()));
        }
        (self.elsewhere.users().into_iter()).find(|(theirs, _)| theirs.eq_ignore_ascii_case(name))
    }

    /// The counters, then how each lock has been used: taken, and how often
    /// a thread found it taken and had to wait (`shared/gauges.rs`).
    fn show_stats(&mut self, id: ClientId) {
        let shared = &self.here.shared;
        let (clients, stats) = (shared.clients.lock_use(), shared.stats.lock_use());
        let line = format!(
            "stats: {}; locks: clients {} taken, {} waited; stats {} taken, {} waited{}",
            shared.snapshot(),
            clients.acquisitions,
            clients.contended,
            stats.acquisitions,
            stats.contended,
            self.elsewhere.stats(&self.here).unwrap_or_default()
        );
        self.here.notice(id, &line);
    }

    fn show_help(&mut self, id: ClientId) {
        for line in protocol::HELP {
            self.here.notice(id, line);
        }
    }

    fn on_refused(&mut self, id: ClientId, message: &str, refusal: Refusal) {
        self.here.tally.refused += 1;
        self.here.refuse(id, refusal, message);
        if self.here.member_mut(id).is_some_and(|m| m.name.is_none()) {
            self.prompt_for_name(id);
        }
    }

    fn on_left(&mut self, id: ClientId, reason: LeaveReason) {
        if self.here.member_mut(id).is_none() {
            return;
        }
        let name = self.here.name_of(id).map(str::to_string);
        if let Some(farewell) = self.farewell(name.as_deref(), &reason) {
            self.here.send(id, farewell);
        }
        let Some(name) = name else {
            log::debug!("{id} left before choosing a name: {reason}");
            // Dropping the member drops the only sender of the client's
            // queue: its writer sends what is queued and closes.
            self.here.disconnect(id);
            return;
        };
        log::info!("{name} left ({id}): {reason}");
        self.here.users_changed();
        self.announce(id, &name, Change::Quit);
        self.here.rooms.leave(id);
        // The name is free before the connection closes, so that someone
        // who sees their connection end can come back under it at once.
        self.here.shared.clients.release(&name, id);
        self.here.disconnect(id);
        self.elsewhere.news(News::Left { name }, &mut self.here);
    }

    /// The last line a leaving client gets, if any: a goodbye after `/quit`,
    /// or why the server is disconnecting it. (A client that closed or
    /// failed cannot be told anything.)
    fn farewell(&self, name: Option<&str>, reason: &LeaveReason) -> Option<OutboundLine> {
        let config = &self.here.shared.config;
        let error = |text: String| Some(OutboundLine::error(&text));
        match reason {
            LeaveReason::Quit => Some(OutboundLine::notice(&match name {
                Some(name) => format!("bye {name}"),
                None => "bye".to_string(),
            })),
            LeaveReason::NoName => error(format!(
                "no name chosen within {} s; disconnecting",
                config.name_timeout.as_secs()
            )),
            LeaveReason::Idle => error(format!(
                "idle for {} s; disconnecting",
                config.idle_timeout.unwrap_or_default().as_secs()
            )),
            LeaveReason::Flooding => error(format!(
                "disconnected for flooding: more than {} lines over the rate limit",
                config
                    .rate_limit
                    .map_or(0, |limit| limit.lines * FLOOD_TOLERANCE)
            )),
            LeaveReason::WrongProtocol(protocol) => error(protocol.explanation().to_string()),
            LeaveReason::Closed
            | LeaveReason::Failed(_)
            | LeaveReason::ServerClosing
            | LeaveReason::Unresponsive
            | LeaveReason::Panicked => None,
        }
    }

    /// Once a second: the rooms, and the clients with the most bytes
    /// waiting, for the live view; and the other servers' clock.
    fn publish(&mut self) {
        if E::KEEPS_EMPTY_ROOMS {
            let elsewhere = &self.elsewhere;
            let ttl = self.here.shared.config.room_ttl;
            let occupied = |room: &str| elsewhere.count_in_room(room) > 0;
            self.here.rooms.forget_empty(Instant::now(), ttl, occupied);
        }
        // The budget first, so that the view shows what is left after it.
        self.here.keep_backlogs_within_budget(true);
        let (backlog_bytes, deepest_backlogs) = self.here.backlogs(DEEPEST_SHOWN);
        let view = ManagerView {
            rooms: self.room_list().len(),
            rooms_kept: self.here.rooms.len(),
            history_bytes: self.here.rooms.history_bytes(),
            backlog_bytes,
            deepest_backlogs,
        };
        self.here.shared.stats.publish(view);
        self.guarded(|m| m.elsewhere.news(News::Tick, &mut m.here));
    }

    /// At shutdown: a last line to everyone, then every queue is dropped.
    pub(crate) fn say_goodbye_to_everyone(&mut self) {
        let goodbye = OutboundLine::notice("server shutting down");
        let names = self.here.say_goodbye_to_everyone(&goodbye);
        self.elsewhere.news(News::Goodbye { names }, &mut self.here);
        let tally = std::mem::take(&mut self.here.tally);
        self.here.shared.stats.add(tally);
    }

    fn prompt_for_name(&mut self, id: ClientId) {
        self.here.reply(id, Says::NamePrompt);
    }
}

/// What a newcomer to `room` is shown of its past: a header and the lines
/// its history keeps. Resuming after a line (an event stream's
/// `Last-Event-ID`), only the lines since it; or, when the history no longer
/// keeps that line, a `! ` line saying some may have been missed, then
/// everything it keeps.
fn replay(room: &str, history: &History, resume_after: Option<LineId>) -> Vec<OutboundLine> {
    let mut replay = Vec::with_capacity(history.len() + 2);
    if let Some(after) = resume_after {
        if let Some(since) = history.after(after) {
            let header = format!("{} messages in #{room} since event {after}", since.len());
            replay.push(OutboundLine::notice(&header));
            replay.extend(since.map(OutboundLine::untimed));
            return replay;
        }
        let missed = format!(
            "cannot resume after event {after}: #{room} no longer keeps it \
             (or it was said in another room), so lines may have been missed"
        );
        replay.push(OutboundLine::error(&missed));
    }
    if !history.is_empty() {
        let header = format!("last {} messages in #{room}", history.len());
        replay.push(OutboundLine::notice(&header));
        replay.extend(history.lines().map(OutboundLine::untimed));
    }
    replay
}

#[cfg(test)]
pub(crate) mod tests;
