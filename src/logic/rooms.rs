//! Rooms: who is in which room, and what each room said last. Plain data, no
//! I/O, no locks; time is passed in.
//!
//! Owned by the manager thread alone (a field of `Here`), so it needs no
//! lock: only one thread ever touches it. The manager asks it "who is in
//! this room" for every line it fans out, which is why membership is kept per
//! room: a line costs one step per member of its room, not per client online.
//! Each room keeps its own [`History`], which therefore lives exactly as long
//! as the room: a room exists while someone is in it, except the lobby, which
//! always exists (and keeps its history).
//!
//! Everything here is bounded ([`Limits`]): how many rooms there may be, what
//! all their histories may hold together, and how many lines a room takes
//! in, whoever says them.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::history::{History, LineId};
use super::names;
use super::rate_limit::{RateLimit, TokenBucket};
use crate::line::OutboundLine;
use crate::shared::ClientId;

/// What the rooms may take, from the command line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Lines each room keeps (`--history`).
    pub(crate) history_lines: usize,
    /// What all histories may hold together (`--max-history-bytes`).
    pub(crate) history_bytes: usize,
    /// Rooms at once, the lobby included (`--max-rooms`).
    pub(crate) rooms: usize,
    /// Lines a room takes in (`--room-rate`).
    pub(crate) rate: Option<RateLimit>,
}

/// `/join` of a new room when `--max-rooms` exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooManyRooms(pub(crate) usize);

/// The room everyone starts in. It always exists, even when empty.
pub(crate) const LOBBY: &str = "lobby";

#[derive(Debug)]
struct Room {
    /// The name as first spelled; the map's key is its lowercase form.
    name: String,
    members: HashSet<ClientId>,
    history: History,
    /// Its share of `--room-rate`.
    turns: Option<TokenBucket>,
    /// Since when nobody here has been in it (kept rooms only, `--redis`).
    empty_since: Option<Instant>,
}

/// What a client finds in the room it has just entered.
#[derive(Debug)]
pub(crate) struct Entered<'a> {
    /// The room's name, spelled as when it was created.
    pub name: &'a str,
    /// Members, the newcomer included.
    pub members: usize,
    /// The room's kept lines, oldest first.
    pub history: &'a History,
}

#[derive(Debug)]
pub(crate) struct Rooms {
    by_key: HashMap<String, Room>,
    /// Each registered client's room, by key.
    room_of: HashMap<ClientId, String>,
    limits: Limits,
    /// What every history holds together.
    history_bytes: usize,
    /// With `--redis`, a room's history outlives its last member here: the
    /// room goes on on other servers, and a newcomer here gets its history.
    keep_empty_rooms: bool,
}

impl Rooms {
    /// An empty set of rooms (the lobby only), each keeping its last
    /// `history_lines` lines.
    pub(crate) fn new(limits: Limits) -> Self {
        let mut rooms = Rooms {
            by_key: HashMap::new(),
            room_of: HashMap::new(),
            limits,
            history_bytes: 0,
            keep_empty_rooms: false,
        };
        rooms
            .by_key
            .insert(names::key(LOBBY), rooms.new_room(LOBBY));
        rooms
    }

    /// Rooms as the tests make them: `history_lines` each, and no other
    /// limit that a test would meet.
    #[cfg(test)]
    pub(crate) fn with_history(history_lines: usize) -> Self {
        Rooms::new(Limits {
            history_lines,
            history_bytes: usize::MAX,
            rooms: usize::MAX,
            rate: None,
        })
    }

    /// Rooms stay, with their history, when their last member here leaves
    /// (`--redis`).
    pub(crate) fn keep_empty_rooms(&mut self) {
        self.keep_empty_rooms = true;
    }

    fn new_room(&self, name: &str) -> Room {
        let now = Instant::now();
        Room {
            name: name.to_string(),
            members: HashSet::new(),
            history: History::new(self.limits.history_lines),
            turns: (self.limits.rate).map(|rate| TokenBucket::full(rate.lines, rate.per, now)),
            empty_since: Some(now),
        }
    }

    /// The room with this key, created if there is room for one more.
    fn make_room(&mut self, key: &str, name: &str) -> Result<&mut Room, TooManyRooms> {
        if !self.by_key.contains_key(key) {
            if self.by_key.len() >= self.limits.rooms {
                return Err(TooManyRooms(self.limits.rooms));
            }
            let room = self.new_room(name);
            self.by_key.insert(key.to_string(), room);
        }
        Ok(self.by_key.get_mut(key).expect("found or made just above"))
    }

    /// Whether `/join` of the room called `name` would be let in: it
    /// exists, or there is room for one more.
    pub(crate) fn can_enter(&self, name: &str) -> Result<(), TooManyRooms> {
        match self.exists(name) || self.by_key.len() < self.limits.rooms {
            true => Ok(()),
            false => Err(TooManyRooms(self.limits.rooms)),
        }
    }

    /// Puts `id` in the room called `name` (compared ignoring case), creating
    /// it if needed and allowed, after taking it out of the room it was in.
    /// Entering the room one is already in changes nothing.
    pub(crate) fn enter(&mut self, id: ClientId, name: &str) -> Result<Entered<'_>, TooManyRooms> {
        let key = names::key(name);
        if !self.by_key.contains_key(&key) && self.by_key.len() >= self.limits.rooms {
            return Err(TooManyRooms(self.limits.rooms));
        }
        if !self.is_in(id, name) {
            self.leave(id);
        }
        self.room_of.insert(id, key.clone());
        let room = self.make_room(&key, name)?;
        room.members.insert(id);
        room.empty_since = None;
        Ok(Entered {
            name: &room.name,
            members: room.members.len(),
            history: &room.history,
        })
    }

    /// Takes `id` out of its room; a room other than the lobby goes away with
    /// its last member, and its history with it. Returns the name of the room
    /// it left.
    pub(crate) fn leave(&mut self, id: ClientId) -> Option<String> {
        let key = self.room_of.remove(&id)?;
        let room = self.by_key.get_mut(&key)?;
        room.members.remove(&id);
        if !room.members.is_empty() {
            return Some(room.name.clone());
        }
        room.empty_since = Some(Instant::now());
        if key != LOBBY && !self.keep_empty_rooms {
            return self.remove(&key).map(|room| room.name);
        }
        Some(room.name.clone())
    }

    fn remove(&mut self, key: &str) -> Option<Room> {
        let room = self.by_key.remove(key)?;
        self.history_bytes -= room.history.bytes();
        Some(room)
    }

    /// Whether a line from `id` may go to its room now (`--room-rate`): a
    /// room takes so many lines, whoever says them.
    pub(crate) fn take_turn(&mut self, id: ClientId, now: Instant) -> bool {
        let Some(room) = self
            .room_of
            .get(&id)
            .and_then(|key| self.by_key.get_mut(key))
        else {
            return true;
        };
        room.turns.as_mut().is_none_or(|turns| turns.try_take(now))
    }

    /// The limit `take_turn` applies, if any.
    pub(crate) fn rate(&self) -> Option<RateLimit> {
        self.limits.rate
    }

    /// Kept rooms (`--redis`) empty here for `ttl`, that `occupied` says
    /// nobody is in elsewhere either, go, with their history. Returns how
    /// many went.
    pub(crate) fn forget_empty(
        &mut self,
        now: Instant,
        ttl: Duration,
        occupied: impl Fn(&str) -> bool,
    ) -> usize {
        let gone: Vec<String> = (self.by_key.iter())
            .filter(|(key, room)| {
                key.as_str() != LOBBY
                    && room.members.is_empty()
                    && room
                        .empty_since
                        .is_some_and(|since| now.saturating_duration_since(since) >= ttl)
                    && !occupied(&room.name)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in &gone {
            self.remove(key);
        }
        gone.len()
    }

    /// How many rooms there are, empty kept ones included.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// What every room's history holds together.
    pub(crate) fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// Does the room called `name` exist here?
    pub(crate) fn exists(&self, name: &str) -> bool {
        self.by_key.contains_key(&names::key(name))
    }

    /// The room called `name` (ignoring case), spelled as when it was
    /// created, if it exists here.
    pub(crate) fn spelled(&self, name: &str) -> Option<&str> {
        (self.by_key.get(&names::key(name))).map(|room| room.name.as_str())
    }

    /// Is `id` in the room called `name` (compared ignoring case)?
    pub(crate) fn is_in(&self, id: ClientId, name: &str) -> bool {
        self.room_of.get(&id) == Some(&names::key(name))
    }

    /// The name of the room `id` is in.
    pub(crate) fn room_of(&self, id: ClientId) -> Option<&str> {
        self.room(id).map(|room| room.name.as_str())
    }

    fn room(&self, id: ClientId) -> Option<&Room> {
        self.by_key.get(self.room_of.get(&id)?)
    }

    /// Keeps `line` in the history of `id`'s room.
    pub(crate) fn record(&mut self, id: ClientId, line_id: Option<LineId>, line: OutboundLine) {
        let Some(key) = self.room_of.get(&id).cloned() else {
            return;
        };
        self.record_in_key(&key, line_id, line);
    }

    fn record_in_key(&mut self, key: &str, line_id: Option<LineId>, line: OutboundLine) {
        if let Some(room) = self.by_key.get_mut(key) {
            let change = room.history.record(line_id, line);
            self.history_bytes = self.history_bytes.saturating_add_signed(change);
        }
        self.keep_histories_within_bounds();
    }

    /// While all histories together hold more than `--max-history-bytes`,
    /// the biggest forgets its oldest line: the rooms that say most give
    /// back first, and a quiet room keeps its last words.
    fn keep_histories_within_bounds(&mut self) {
        while self.history_bytes > self.limits.history_bytes {
            let biggest = (self.by_key.values_mut()).max_by_key(|room| room.history.bytes());
            let Some(room) = biggest else {
                return;
            };
            let freed = room.history.forget_oldest();
            if freed == 0 {
                return;
            }
            self.history_bytes -= freed;
        }
    }

    /// The members here of the room called `name`, if it exists here.
    pub(crate) fn members_of(&self, name: &str) -> impl Iterator<Item = ClientId> + '_ {
        self.by_key
            .get(&names::key(name))
            .into_iter()
            .flat_map(|room| room.members.iter().copied())
    }

    /// How many are in the room called `name` here.
    pub(crate) fn size_of(&self, name: &str) -> usize {
        self.by_key
            .get(&names::key(name))
            .map_or(0, |room| room.members.len())
    }

    /// Whether the room called `name` keeps the line with this id.
    pub(crate) fn has_line(&self, name: &str, id: LineId) -> bool {
        (self.by_key.get(&names::key(name))).is_some_and(|room| room.history.contains(id))
    }

    /// Keeps a line said in the room called `name` on another server, the
    /// room created (empty of members) if it does not exist here and there
    /// is room for it.
    pub(crate) fn record_in(
        &mut self,
        name: &str,
        line_id: Option<LineId>,
        line: OutboundLine,
    ) -> Result<(), TooManyRooms> {
        let key = names::key(name);
        self.make_room(&key, name)?;
        self.record_in_key(&key, line_id, line);
        Ok(())
    }

    /// Merges Redis's copy of a room's history into ours (`History::merge`).
    pub(crate) fn merge_history(
        &mut self,
        name: &str,
        lines: Vec<(LineId, OutboundLine)>,
    ) -> Result<(), TooManyRooms> {
        let key = names::key(name);
        let room = self.make_room(&key, name)?;
        let change = room.history.merge(lines);
        self.history_bytes = self.history_bytes.saturating_add_signed(change);
        self.keep_histories_within_bounds();
        Ok(())
    }

    /// Every room with its member count: the lobby first, then the others
    /// sorted ignoring case.
    pub(crate) fn list(&self) -> Vec<(&str, usize)> {
        let mut others: Vec<(&String, &Room)> = self
            .by_key
            .iter()
            .filter(|(key, _)| key.as_str() != LOBBY)
            .collect();
        others.sort_unstable_by(|a, b| a.0.cmp(b.0));
        self.by_key
            .get(LOBBY)
            .into_iter()
            .chain(others.into_iter().map(|(_, room)| room))
            .map(|room| (room.name.as_str(), room.members.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(ids: impl Iterator<Item = ClientId>) -> Vec<u64> {
        let mut ids: Vec<u64> = ids.map(|id| id.0).collect();
        ids.sort_unstable();
        ids
    }

    fn history_of(rooms: &mut Rooms, id: ClientId, room: &str) -> Vec<String> {
        let entered = rooms.enter(id, room).expect("room for it");
        entered
            .history
            .lines()
            .map(|line| line.text().to_string())
            .collect()
    }

    #[test]
    fn members_of_a_room_see_each_other_only() {
        let mut rooms = Rooms::with_history(10);
        rooms.enter(ClientId(1), LOBBY).expect("room for it");
        rooms.enter(ClientId(2), LOBBY).expect("room for it");
        rooms.enter(ClientId(3), "Rust").expect("room for it");
        assert_eq!(sorted(rooms.members_of("lobby")), vec![1, 2]);
        assert_eq!(sorted(rooms.members_of("RUST")), vec![3]);
        assert_eq!(rooms.room_of(ClientId(3)), Some("Rust"));
        assert_eq!(rooms.size_of(LOBBY), 2);
        assert_eq!(rooms.size_of("rust"), 1);
        assert_eq!(rooms.room_of(ClientId(4)), None, "in no room");
    }

    #[test]
    fn entering_a_room_leaves_the_previous_one_and_counts_members() {
        let mut rooms = Rooms::with_history(10);
        rooms.enter(ClientId(1), LOBBY).expect("room for it");
        rooms.enter(ClientId(2), LOBBY).expect("room for it");
        let entered = rooms.enter(ClientId(1), "rust").expect("room for it");
        assert_eq!((entered.name, entered.members), ("rust", 1));
        assert_eq!(sorted(rooms.members_of(LOBBY)), vec![2]);
        assert_eq!(
            rooms
                .enter(ClientId(2), "RUST")
                .expect("room for it")
                .members,
            2
        );
        assert!(rooms.is_in(ClientId(2), "Rust"));
        assert!(!rooms.is_in(ClientId(2), LOBBY));
    }

    #[test]
    fn a_room_goes_with_its_last_member_but_the_lobby_stays() {
        let mut rooms = Rooms::with_history(10);
        rooms.enter(ClientId(1), "Rust").expect("room for it");
        assert_eq!(rooms.leave(ClientId(1)), Some("Rust".to_string()));
        // Recreated by someone else: spelled their way now.
        assert_eq!(
            rooms.enter(ClientId(2), "RUST").expect("room for it").name,
            "RUST"
        );
        rooms.enter(ClientId(3), LOBBY).expect("room for it");
        rooms.leave(ClientId(3));
        assert_eq!(rooms.list(), vec![(LOBBY, 0), ("RUST", 1)]);
        assert_eq!(rooms.leave(ClientId(3)), None);
        assert_eq!(rooms.room_of(ClientId(3)), None);
    }

    #[test]
    fn rooms_are_listed_lobby_first_then_by_name() {
        let mut rooms = Rooms::with_history(10);
        rooms.enter(ClientId(1), "zed").expect("room for it");
        rooms.enter(ClientId(2), "Alpha").expect("room for it");
        rooms.enter(ClientId(3), "alpha").expect("room for it");
        rooms.enter(ClientId(4), LOBBY).expect("room for it");
        assert_eq!(rooms.list(), vec![(LOBBY, 1), ("Alpha", 2), ("zed", 1)]);
    }

    #[test]
    fn each_room_keeps_its_own_history_and_it_goes_with_the_room() {
        let mut rooms = Rooms::with_history(2);
        rooms.enter(ClientId(1), "rust").expect("room for it");
        rooms.enter(ClientId(2), LOBBY).expect("room for it");
        for n in 1..=3 {
            rooms.record(
                ClientId(1),
                None,
                OutboundLine::verbatim(&format!("rust {n}")),
            );
        }
        rooms.record(ClientId(2), None, OutboundLine::verbatim("lobby 1"));
        assert_eq!(
            history_of(&mut rooms, ClientId(3), "rust"),
            vec!["rust 2", "rust 3"]
        );
        assert_eq!(history_of(&mut rooms, ClientId(4), LOBBY), vec!["lobby 1"]);

        // Everyone leaves rust: its history goes with it.
        rooms.leave(ClientId(1));
        rooms.leave(ClientId(3));
        assert!(history_of(&mut rooms, ClientId(1), "rust").is_empty());
        // The lobby, emptied, keeps its history.
        rooms.leave(ClientId(2));
        rooms.leave(ClientId(4));
        assert_eq!(history_of(&mut rooms, ClientId(2), LOBBY), vec!["lobby 1"]);
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    fn limited(rooms: usize, history_bytes: usize, rate: Option<RateLimit>) -> Rooms {
        Rooms::new(Limits {
            history_lines: 50,
            history_bytes,
            rooms,
            rate,
        })
    }

    #[test]
    fn no_more_rooms_than_the_limit_but_existing_ones_can_always_be_joined() {
        let mut rooms = limited(3, usize::MAX, None);
        rooms.enter(ClientId(1), "a").expect("the second room");
        rooms.enter(ClientId(2), "b").expect("the third room");
        assert_eq!(rooms.enter(ClientId(3), "c").err(), Some(TooManyRooms(3)));
        assert_eq!(
            rooms.room_of(ClientId(3)),
            None,
            "a refused join changes nothing"
        );
        rooms.enter(ClientId(3), "A").expect("an existing room");
        // b empties and goes: room for another.
        rooms.leave(ClientId(2));
        rooms.enter(ClientId(4), "c").expect("room again");
    }

    #[test]
    fn all_histories_together_stay_within_their_bytes_and_the_biggest_gives_back() {
        let line = |text: &str| OutboundLine::verbatim(text);
        let one = super::super::history::kept_cost(&line("xxxxxxxxx"));
        let mut rooms = limited(10, 5 * one, None);
        rooms.enter(ClientId(1), "quiet").expect("room");
        rooms.enter(ClientId(2), "busy").expect("room");
        rooms.record(ClientId(1), None, line("quiet 001"));
        for _ in 0..10 {
            rooms.record(ClientId(2), None, line("busy 0001"));
            assert!(
                rooms.history_bytes() <= 5 * one,
                "{}",
                rooms.history_bytes()
            );
        }
        let quiet = rooms
            .enter(ClientId(3), "quiet")
            .expect("room")
            .history
            .len();
        assert_eq!(quiet, 1, "the quiet room kept its line");
    }

    #[test]
    fn a_room_takes_so_many_lines_whoever_says_them() {
        let rate = RateLimit {
            lines: 3,
            per: Duration::from_secs(10),
        };
        let mut rooms = limited(10, usize::MAX, Some(rate));
        let now = Instant::now();
        rooms.enter(ClientId(1), "rust").expect("room");
        rooms.enter(ClientId(2), "rust").expect("room");
        rooms.enter(ClientId(3), LOBBY).expect("room");
        let turns: Vec<bool> = (0..4)
            .map(|n| rooms.take_turn(ClientId(1 + n % 2), now))
            .collect();
        assert_eq!(turns, [true, true, true, false]);
        assert!(
            rooms.take_turn(ClientId(3), now),
            "another room has its own"
        );
        assert!(
            rooms.take_turn(ClientId(1), now + Duration::from_secs(4)),
            "and turns come back"
        );
    }

    #[test]
    fn kept_rooms_nobody_is_in_anywhere_go_after_their_time() {
        let mut rooms = limited(10, usize::MAX, None);
        rooms.keep_empty_rooms();
        rooms.enter(ClientId(1), "a").expect("room");
        rooms.enter(ClientId(2), "b").expect("room");
        rooms.leave(ClientId(1));
        rooms.leave(ClientId(2));
        let later = Instant::now() + Duration::from_secs(61);
        let gone = rooms.forget_empty(later, Duration::from_secs(60), |room| room == "b");
        assert_eq!(gone, 1);
        assert!(!rooms.exists("a") && rooms.exists("b") && rooms.exists(LOBBY));
    }
}
