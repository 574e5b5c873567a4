//! The curl door's open event streams, by token: where a `/say` request
//! finds the inbox of the stream that may speak as its name. One table for
//! the web door, shared by its `http-N` threads (in an `Arc`): a stream's
//! thread puts its token in when the stream opens and takes it out when it
//! ends; a `/say` thread looks one up.
//!
//! Behind a `parking_lot::Mutex`, a leaf lock (docs/ARCHITECTURE.md,
//! invariant 3): each method takes it for one hash-map operation and lets
//! go, so it is never held while a line is handed over, and no other lock is
//! taken while it is held.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use super::token::Token;

#[derive(Default)]
pub(crate) struct Streams {
    by_token: Mutex<HashMap<Token, Sender<String>>>,
}

impl Streams {
    /// A new stream's token, whose `/say` lines go to `inbox`. Its token
    /// leaves the table when the returned [`Open`] is dropped.
    pub(crate) fn open(self: &Arc<Self>, inbox: Sender<String>) -> Open {
        // 128 random bits do not repeat; if they ever did, a second stream
        // must not take over the first one's name. The token is made before
        // the lock is taken: making one reads /dev/urandom.
        let token = loop {
            let token = Token::random();
            let mut by_token = self.by_token.lock();
            if let Entry::Vacant(slot) = by_token.entry(token) {
                slot.insert(inbox);
                break token;
            }
        };
        Open {
            streams: self.clone(),
            token,
        }
    }

    /// Where the lines said with `token` go, if a stream has it.
    pub(crate) fn inbox(&self, token: Token) -> Option<Sender<String>> {
        self.by_token.lock().get(&token).cloned()
    }

    fn close(&self, token: Token) {
        self.by_token.lock().remove(&token);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_token.lock().len()
    }
}

/// An open stream's place in the table, held by its `http-N` thread.
pub(crate) struct Open {
    streams: Arc<Streams>,
    pub(crate) token: Token,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.streams.close(self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;

    #[test]
    fn a_token_finds_its_inbox_while_its_stream_is_open() {
        let streams = Arc::new(Streams::default());
        let (tx, rx) = unbounded();
        let open = streams.open(tx);
        let other = streams.open(unbounded().0);
        assert_ne!(open.token, other.token);
        let found = streams.inbox(open.token).expect("open");
        found.send("hi".to_string()).expect("send");
        assert_eq!(rx.try_recv().ok().as_deref(), Some("hi"));
        let token = open.token;
        drop(open);
        assert!(streams.inbox(token).is_none(), "gone with its stream");
        assert_eq!(streams.len(), 1);
    }
}
