//! The other servers' users, as this server knows them. Plain data, no I/O,
//! no locks: owned by the manager thread alone, like the rooms.
//!
//! Each server is known by what it published: a [`Body::Roster`] replaces
//! everything known of it, `in` / `left` / `renamed` change one user, and
//! any message at all counts as a sign of life. A server not heard from for
//! `--redis-ttl` is taken for dead ([`Roster::expire`]), and its users with it.
//!
//! [`Body::Roster`]: super::Body::Roster

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::ServerId;
use crate::logic::names;

/// A user on another server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteUser {
    pub(crate) name: String,
    pub(crate) room: String,
}

#[derive(Debug)]
struct Peer {
    last_heard: Instant,
    /// By the name's lowercase key.
    users: HashMap<String, RemoteUser>,
}

#[derive(Debug, Default)]
pub(crate) struct Roster {
    peers: HashMap<ServerId, Peer>,
    /// How many of these users are in each room (by the room's lowercase
    /// key): kept up to date on every change, because the manager asks for
    /// it on every join and leave, and counting 5,000 remote users each
    /// time made a join storm quadratic.
    per_room: HashMap<String, usize>,
}

impl Roster {
    /// Notes a sign of life from `server`. Returns true if it was unknown,
    /// in which case the caller asks it for its roster.
    pub(crate) fn heard(&mut self, server: ServerId, now: Instant) -> bool {
        match self.peers.get_mut(&server) {
            Some(peer) => {
                peer.last_heard = now;
                false
            }
            None => {
                let peer = Peer {
                    last_heard: now,
                    users: HashMap::new(),
                };
                self.peers.insert(server, peer);
                true
            }
        }
    }

    /// `name` on `server` is now in `room`; returns the room it was in
    /// before, if it was known.
    pub(crate) fn set_room(&mut self, server: ServerId, name: &str, room: &str) -> Option<String> {
        let peer = self.peers.get_mut(&server)?;
        let user = RemoteUser {
            name: name.to_string(),
            room: room.to_string(),
        };
        let before = peer
            .users
            .insert(names::key(name), user)
            .map(|before| before.room);
        if let Some(before) = &before {
            self.count_out(before);
        }
        self.count_in(room);
        before
    }

    pub(crate) fn remove(&mut self, server: ServerId, name: &str) -> Option<RemoteUser> {
        let user = self
            .peers
            .get_mut(&server)?
            .users
            .remove(&names::key(name))?;
        self.count_out(&user.room);
        Some(user)
    }

    fn count_in(&mut self, room: &str) {
        *self.per_room.entry(names::key(room)).or_default() += 1;
    }

    fn count_out(&mut self, room: &str) {
        let key = names::key(room);
        if let Some(count) = self.per_room.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_room.remove(&key);
            }
        }
    }

    /// How many of these users are in `room` (ignoring case).
    pub(crate) fn count_in_room(&self, room: &str) -> usize {
        self.per_room.get(&names::key(room)).copied().unwrap_or(0)
    }

    /// Returns the room of the renamed user, if it was known.
    pub(crate) fn rename(&mut self, server: ServerId, old: &str, new: &str) -> Option<String> {
        let peer = self.peers.get_mut(&server)?;
        let mut user = peer.users.remove(&names::key(old))?;
        user.name = new.to_string();
        let room = user.room.clone();
        peer.users.insert(names::key(new), user);
        Some(room)
    }

    /// Everything known of `server` is replaced by `users`.
    pub(crate) fn replace(&mut self, server: ServerId, users: Vec<(String, String)>, now: Instant) {
        self.drop_server(server);
        for (_, room) in &users {
            self.count_in(room);
        }
        let users = users
            .into_iter()
            .map(|(name, room)| (names::key(&name), RemoteUser { name, room }))
            .collect();
        self.peers.insert(
            server,
            Peer {
                last_heard: now,
                users,
            },
        );
    }

    /// Forgets `server` (it said goodbye), returning its users.
    pub(crate) fn drop_server(&mut self, server: ServerId) -> Vec<RemoteUser> {
        let users: Vec<RemoteUser> = self
            .peers
            .remove(&server)
            .map(|peer| peer.users.into_values().collect())
            .unwrap_or_default();
        for user in &users {
            self.count_out(&user.room);
        }
        users
    }

    /// Forgets every server not heard from for `ttl`, returning their users.
    pub(crate) fn expire(&mut self, now: Instant, ttl: Duration) -> Vec<RemoteUser> {
        let dead: Vec<ServerId> = self
            .peers
            .iter()
            .filter(|(_, peer)| now.saturating_duration_since(peer.last_heard) > ttl)
            .map(|(server, _)| *server)
            .collect();
        dead.into_iter()
            .flat_map(|server| {
                log::warn!("server {server} not heard from for {ttl:?}: its users have left");
                self.drop_server(server)
            })
            .collect()
    }

    /// Counts every server as heard from now: after this server's own link
    /// to Redis was down, when silence proved nothing about the others.
    pub(crate) fn heard_from_all(&mut self, now: Instant) {
        for peer in self.peers.values_mut() {
            peer.last_heard = now;
        }
    }

    /// Which server holds `name` (ignoring case), and how it is spelled.
    pub(crate) fn lookup(&self, name: &str) -> Option<(ServerId, &RemoteUser)> {
        let key = names::key(name);
        self.peers
            .iter()
            .find_map(|(server, peer)| Some((*server, peer.users.get(&key)?)))
    }

    pub(crate) fn users(&self) -> impl Iterator<Item = &RemoteUser> {
        self.peers.values().flat_map(|peer| peer.users.values())
    }

    pub(crate) fn len(&self) -> usize {
        self.peers.values().map(|peer| peer.users.len()).sum()
    }

    pub(crate) fn servers(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ServerId = ServerId(1);
    const B: ServerId = ServerId(2);

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, room)| (name.to_string(), room.to_string()))
            .collect()
    }

    #[test]
    fn a_roster_replaces_what_was_known_and_changes_apply_on_top() {
        let now = Instant::now();
        let mut roster = Roster::default();
        assert!(roster.heard(A, now), "A was unknown");
        assert!(!roster.heard(A, now));
        roster.set_room(A, "old", "lobby");
        roster.replace(A, pairs(&[("Alice", "lobby"), ("bob", "rust")]), now);
        assert_eq!(roster.len(), 2, "old is gone: the roster replaced it");
        assert_eq!(roster.set_room(A, "alice", "rust"), Some("lobby".into()));
        assert_eq!(roster.rename(A, "BOB", "robert"), Some("rust".into()));
        let mut in_rust: Vec<&str> = (roster.users())
            .filter(|u| u.room.eq_ignore_ascii_case("RUST"))
            .map(|u| u.name.as_str())
            .collect();
        in_rust.sort();
        assert_eq!(in_rust, ["alice", "robert"]);
        assert_eq!(roster.count_in_room("Rust"), 2);
        assert_eq!(roster.count_in_room("lobby"), 0);
        let (server, user) = roster.lookup("ROBERT").expect("robert is known");
        assert_eq!((server, user.name.as_str()), (A, "robert"));
        assert_eq!(
            roster.remove(A, "robert").map(|u| u.room),
            Some("rust".into())
        );
        assert!(roster.lookup("robert").is_none());
        assert_eq!(roster.count_in_room("rust"), 1);
        assert_eq!(roster.drop_server(A).len(), 1);
        assert_eq!(roster.count_in_room("rust"), 0);
    }

    #[test]
    fn changes_from_an_unknown_server_are_ignored_until_it_is_heard() {
        let mut roster = Roster::default();
        assert_eq!(roster.set_room(B, "carol", "lobby"), None);
        assert_eq!(roster.len(), 0);
    }

    #[test]
    fn a_silent_server_expires_with_its_users_and_others_stay() {
        let start = Instant::now();
        let ttl = Duration::from_secs(3);
        let mut roster = Roster::default();
        roster.replace(A, pairs(&[("alice", "lobby")]), start);
        roster.replace(B, pairs(&[("bob", "lobby")]), start);
        roster.heard(B, start + Duration::from_secs(2));
        let gone = roster.expire(start + Duration::from_secs(4), ttl);
        assert_eq!(
            gone.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["alice"]
        );
        assert_eq!(roster.servers(), 1);
        roster.heard_from_all(start + Duration::from_secs(10));
        assert!(roster
            .expire(start + Duration::from_secs(12), ttl)
            .is_empty());
    }
}
