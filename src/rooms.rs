//! Room membership: who is in which room. Plain data, no I/O, no locks.
//!
//! Owned by the manager thread alone (a field of `Manager`), so it needs no
//! lock: only one thread ever touches it. The manager asks it "who is in
//! this room" for every line it fans out, which is why membership is kept per
//! room: a line costs one step per member of its room, not per client online.

use std::collections::{HashMap, HashSet};

use crate::event::ClientId;

/// The room everyone starts in. It always exists, even when empty.
pub const LOBBY: &str = "lobby";

#[derive(Debug)]
struct Room {
    /// The name as first spelled; the map's key is its lowercase form.
    name: String,
    members: HashSet<ClientId>,
}

#[derive(Debug)]
pub struct Rooms {
    by_key: HashMap<String, Room>,
    /// Each registered client's room, by key.
    room_of: HashMap<ClientId, String>,
}

impl Default for Rooms {
    fn default() -> Self {
        let mut by_key = HashMap::new();
        by_key.insert(
            LOBBY.to_string(),
            Room {
                name: LOBBY.to_string(),
                members: HashSet::new(),
            },
        );
        Rooms {
            by_key,
            room_of: HashMap::new(),
        }
    }
}

impl Rooms {
    /// Puts `id` in the room called `name`, creating it if needed, after
    /// taking it out of the room it was in. Returns the room's name as it is
    /// spelled.
    pub fn enter(&mut self, id: ClientId, name: &str) -> &str {
        self.leave(id);
        let key = name.to_ascii_lowercase();
        let room = self.by_key.entry(key.clone()).or_insert_with(|| Room {
            name: name.to_string(),
            members: HashSet::new(),
        });
        room.members.insert(id);
        self.room_of.insert(id, key);
        &room.name
    }

    /// Takes `id` out of its room; a room other than the lobby goes away with
    /// its last member. Returns the name of the room it left.
    pub fn leave(&mut self, id: ClientId) -> Option<String> {
        let key = self.room_of.remove(&id)?;
        let room = self.by_key.get_mut(&key)?;
        room.members.remove(&id);
        let name = room.name.clone();
        if room.members.is_empty() && key != LOBBY {
            self.by_key.remove(&key);
        }
        Some(name)
    }

    /// The name of the room `id` is in.
    pub fn room_of(&self, id: ClientId) -> Option<&str> {
        let key = self.room_of.get(&id)?;
        self.by_key.get(key).map(|room| room.name.as_str())
    }

    /// Everyone in `id`'s room, `id` included.
    pub fn roommates(&self, id: ClientId) -> impl Iterator<Item = ClientId> + '_ {
        self.room_of
            .get(&id)
            .and_then(|key| self.by_key.get(key))
            .into_iter()
            .flat_map(|room| room.members.iter().copied())
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

    #[test]
    fn members_of_a_room_see_each_other_only() {
        let mut rooms = Rooms::default();
        rooms.enter(ClientId(1), LOBBY);
        rooms.enter(ClientId(2), LOBBY);
        rooms.enter(ClientId(3), "Rust");
        assert_eq!(sorted(rooms.roommates(ClientId(1))), vec![1, 2]);
        assert_eq!(sorted(rooms.roommates(ClientId(3))), vec![3]);
        assert_eq!(rooms.room_of(ClientId(3)), Some("Rust"));
    }

    #[test]
    fn entering_a_room_leaves_the_previous_one() {
        let mut rooms = Rooms::default();
        rooms.enter(ClientId(1), LOBBY);
        rooms.enter(ClientId(2), LOBBY);
        assert_eq!(rooms.enter(ClientId(1), "rust"), "rust");
        assert_eq!(sorted(rooms.roommates(ClientId(2))), vec![2]);
    }

    #[test]
    fn a_room_goes_with_its_last_member_but_the_lobby_stays() {
        let mut rooms = Rooms::default();
        rooms.enter(ClientId(1), "Rust");
        assert_eq!(rooms.leave(ClientId(1)), Some("Rust".to_string()));
        // Recreated by someone else: spelled their way now.
        assert_eq!(rooms.enter(ClientId(2), "RUST"), "RUST");
        rooms.enter(ClientId(3), LOBBY);
        rooms.leave(ClientId(3));
        assert!(rooms.by_key.contains_key(LOBBY));
        assert_eq!(rooms.leave(ClientId(3)), None);
        assert_eq!(rooms.roommates(ClientId(3)).count(), 0);
    }
}
