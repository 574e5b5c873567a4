//! A room's recent lines: a bounded ring buffer. Plain data, no I/O, no locks.
//!
//! Each room in [`rooms`](crate::rooms) has one, and the manager thread owns
//! the rooms, so only the manager ever touches a history. It keeps the very
//! same [`OutboundLine`]s that were fanned out (reference-counted), so
//! recording a line costs one pointer copy, and replaying fifty lines to a
//! newcomer costs fifty.

use std::collections::VecDeque;

use crate::event::OutboundLine;

#[derive(Debug)]
pub(crate) struct History {
    lines: VecDeque<OutboundLine>,
    /// At most this many lines are kept; 0 keeps none.
    limit: usize,
}

impl History {
    pub(crate) fn new(limit: usize) -> Self {
        History {
            // Grows as lines arrive: a room that is never spoken in costs
            // nothing, whatever the limit.
            lines: VecDeque::new(),
            limit,
        }
    }

    /// Keeps `line`, forgetting the oldest line if the buffer is full.
    pub(crate) fn record(&mut self, line: OutboundLine) {
        if self.limit == 0 {
            return;
        }
        if self.lines.len() == self.limit {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// The kept lines, oldest first.
    pub(crate) fn lines(&self) -> impl ExactSizeIterator<Item = &OutboundLine> {
        self.lines.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(history: &History) -> Vec<&str> {
        history.lines().map(OutboundLine::text).collect()
    }

    #[test]
    fn keeps_the_last_lines_oldest_first() {
        let mut history = History::new(3);
        for n in 1..=5 {
            history.record(OutboundLine::new(&n.to_string()));
        }
        assert_eq!(texts(&history), vec!["3", "4", "5"]);
        assert_eq!(history.len(), 3);
    }

    #[test]
    fn fewer_lines_than_the_limit_are_all_kept() {
        let mut history = History::new(50);
        history.record(OutboundLine::new("only"));
        assert_eq!(texts(&history), vec!["only"]);
    }

    #[test]
    fn a_limit_of_zero_keeps_nothing() {
        let mut history = History::new(0);
        history.record(OutboundLine::new("gone"));
        assert!(history.is_empty());
    }
}
