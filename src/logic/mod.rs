//! Plain logic (docs/ARCHITECTURE.md, invariant 6), each module unit-tested
//! in place.
//!
//! - [`protocol`]: what a line from a client means, and how every line the
//!   server sends is spelled;
//! - `names`: the rules for people's names and room names;
//! - `rooms`: who is in which room, owned by the manager;
//! - `history`: a room's last lines, a ring buffer;
//! - `rate_limit`: the flood guard, owned by each reader;
//! - `line_reader`: bounded line splitting, owned by each reader;
//! - `irc`: IRC's message format, parsed and spelled for the IRC door.

pub(crate) mod history;
pub(crate) mod irc;
pub(crate) mod line_reader;
pub(crate) mod names;
pub mod protocol;
pub(crate) mod rate_limit;
pub(crate) mod rooms;
