//! Rooms: who is in which room, and what each room said last. Plain data, no
//! I/O, no locks.
//!
//! Owned by the manager thread alone (a field of `Manager`), so it needs no
//! lock: only one thread ever touches it. The manager asks it "who is in
//! this room" for every line it fans out, which is why membership is kept per
//! room: a line costs one step per member of its room, not per client online.
//! Each room keeps its own [`History`], which therefore lives exactly as long
//! as the room: a room exists while someone is in it, except the lobby, which
//! always exists (and keeps its history).

use std::collections::{HashMap, HashSet};

use super::history::{History, LineId};
use super::names;
use crate::line::OutboundLine;
use crate::shared::ClientId;

/// The room everyone starts in. It always exists, even when empty.
pub(crate) const LOBBY: &str = "lobby";

#[derive(Debug)]
struct Room {
    /// The name as first spelled; the map's key is its lowercase form.
    name: String,
    members: HashSet<ClientId>,
    history: History,
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
    /// How many lines each room keeps (`--history`).
    history_limit: usize,
    /// With `--redis`, a room's history outlives its last member here: the
    /// room goes on on other servers, and a newcomer here gets its history.
    keep_empty_rooms: bool,
}

impl Rooms {
    /// An empty set of rooms (the lobby only), each keeping its last
    /// `history_limit` lines.
    pub(crate) fn new(history_limit: usize) -> Self {
        let mut rooms = Rooms {
            by_key: HashMap::new(),
            room_of: HashMap::new(),
            history_limit,
            keep_empty_rooms: false,
        };
        rooms
            .by_key
            .insert(names::key(LOBBY), rooms.new_room(LOBBY));
        rooms
    }

    /// Rooms stay, with their history, when their last member here leaves
    /// (`--redis`).
    pub(crate) fn keep_empty_rooms(&mut self) {
        self.keep_empty_rooms = true;
    }

    fn new_room(&self, name: &str) -> Room {
        Room {
            name: name.to_string(),
            members: HashSet::new(),
            history: History::new(self.history_limit),
        }
    }

    /// Puts `id` in the room called `name` (compared ignoring case), creating
    /// it if needed, after taking it out of the room it was in.
    /// Entering the room one is already in changes nothing.
    pub(crate) fn enter(&mut self, id: ClientId, name: &str) -> Entered<'_> {
        if !self.is_in(id, name) {
            self.leave(id);
        }
        let key = names::key(name);
        if !self.by_key.contains_key(&key) {
            let room = self.new_room(name);
            self.by_key.insert(key.clone(), room);
        }
        self.room_of.insert(id, key.clone());
        let room = self
            .by_key
            .get_mut(&key)
            .expect("the room was found or created just above");
        room.members.insert(id);
        Entered {
            name: &room.name,
            members: room.members.len(),
            history: &room.history,
        }
    }

    /// Takes `id` out of its room; a room other than the lobby goes away with
    /// its last member, and its history with it. Returns the name of the room
    /// it left.
    pub(crate) fn leave(&mut self, id: ClientId) -> Option<String> {
        let key = self.room_of.remove(&id)?;
        let room = self.by_key.get_mut(&key)?;
        room.members.remove(&id);
        if room.members.is_empty() && key != LOBBY && !self.keep_empty_rooms {
            return self.by_key.remove(&key).map(|room| room.name);
        }
        Some(room.name.clone())
    }

    /// Does the room called `name` exist here?
    pub(crate) fn exists(&self, name: &str) -> bool {
        self.by_key.contains_key(&names::key(name))
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
        let Some(key) = self.room_of.get(&id) else {
            return;
        };
        if let Some(room) = self.by_key.get_mut(key) {
            room.history.record(line_id, line);
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

    /// The history of the room called `name`, the room created (empty of
    /// members) if it does not exist here: for lines said on other servers.
    pub(crate) fn history_of(&mut self, name: &str) -> &mut History {
        let key = names::key(name);
        if !self.by_key.contains_key(&key) {
            let room = self.new_room(name);
            self.by_key.insert(key.clone(), room);
        }
        let room = self
            .by_key
            .get_mut(&key)
            .expect("the room was found or created just above");
        &mut room.history
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
        let entered = rooms.enter(id, room);
        entered
            .history
            .lines()
            .map(|line| line.text().to_string())
            .collect()
    }

    #[test]
    fn members_of_a_room_see_each_other_only() {
        let mut rooms = Rooms::new(10);
        rooms.enter(ClientId(1), LOBBY);
        rooms.enter(ClientId(2), LOBBY);
        rooms.enter(ClientId(3), "Rust");
        assert_eq!(sorted(rooms.members_of("lobby")), vec![1, 2]);
        assert_eq!(sorted(rooms.members_of("RUST")), vec![3]);
        assert_eq!(rooms.room_of(ClientId(3)), Some("Rust"));
        assert_eq!(rooms.size_of(LOBBY), 2);
        assert_eq!(rooms.size_of("rust"), 1);
        assert_eq!(rooms.room_of(ClientId(4)), None, "in no room");
    }

    #[test]
    fn entering_a_room_leaves_the_previous_one_and_counts_members() {
        let mut rooms = Rooms::new(10);
        rooms.enter(ClientId(1), LOBBY);
        rooms.enter(ClientId(2), LOBBY);
        let entered = rooms.enter(ClientId(1), "rust");
        assert_eq!((entered.name, entered.members), ("rust", 1));
        assert_eq!(sorted(rooms.members_of(LOBBY)), vec![2]);
        assert_eq!(rooms.enter(ClientId(2), "RUST").members, 2);
        assert!(rooms.is_in(ClientId(2), "Rust"));
        assert!(!rooms.is_in(ClientId(2), LOBBY));
    }

    #[test]
    fn a_room_goes_with_its_last_member_but_the_lobby_stays() {
        let mut rooms = Rooms::new(10);
        rooms.enter(ClientId(1), "Rust");
        assert_eq!(rooms.leave(ClientId(1)), Some("Rust".to_string()));
        // Recreated by someone else: spelled their way now.
        assert_eq!(rooms.enter(ClientId(2), "RUST").name, "RUST");
        rooms.enter(ClientId(3), LOBBY);
        rooms.leave(ClientId(3));
        assert_eq!(rooms.list(), vec![(LOBBY, 0), ("RUST", 1)]);
        assert_eq!(rooms.leave(ClientId(3)), None);
        assert_eq!(rooms.room_of(ClientId(3)), None);
    }

    #[test]
    fn rooms_are_listed_lobby_first_then_by_name() {
        let mut rooms = Rooms::new(10);
        rooms.enter(ClientId(1), "zed");
        rooms.enter(ClientId(2), "Alpha");
        rooms.enter(ClientId(3), "alpha");
        rooms.enter(ClientId(4), LOBBY);
        assert_eq!(rooms.list(), vec![(LOBBY, 1), ("Alpha", 2), ("zed", 1)]);
    }

    #[test]
    fn each_room_keeps_its_own_history_and_it_goes_with_the_room() {
        let mut rooms = Rooms::new(2);
        rooms.enter(ClientId(1), "rust");
        rooms.enter(ClientId(2), LOBBY);
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
