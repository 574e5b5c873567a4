//! A room's recent lines: a bounded ring buffer. Plain data, no I/O, no locks.
//!
//! Each room in [`rooms`](super::rooms) has one, and the manager thread owns
//! the rooms, so only the manager ever touches a history. It keeps the very
//! same [`OutboundLine`]s that were fanned out (reference-counted), so
//! recording a line costs one pointer copy; a replay makes an untimed copy
//! of each line (`OutboundLine::untimed`), as a replay is not a fan-out.
//!
//! Each line is kept with its [`LineId`], so that a line read from Redis's
//! copy of the history and heard again live (`--redis`) is kept, and shown,
//! once, and so that an event stream that reconnects (the curl door's
//! `Last-Event-ID`) is sent the lines after the last one it had.

use std::collections::{HashSet, VecDeque};
use std::mem;

use crate::line::OutboundLine;

pub(crate) use crate::line::LineId;

/// What a kept line costs beyond its text: its place in the buffer, and
/// the line's own bookkeeping.
pub(crate) const KEPT_LINE_BYTES: usize = 64;

/// The bytes a kept line costs, for the bound on all histories together.
pub(crate) fn kept_cost(line: &OutboundLine) -> usize {
    line.as_bytes().len() + KEPT_LINE_BYTES
}

#[derive(Debug)]
pub(crate) struct History {
    lines: VecDeque<(Option<LineId>, OutboundLine)>,
    /// At most this many lines are kept; 0 keeps none.
    limit: usize,
    /// What the kept lines cost, by [`kept_cost`].
    bytes: usize,
}

impl History {
    pub(crate) fn new(limit: usize) -> Self {
        History {
            // Grows as lines arrive: a room that is never spoken in costs
            // nothing, whatever the limit.
            lines: VecDeque::new(),
            limit,
            bytes: 0,
        }
    }

    /// Keeps `line`, forgetting the oldest line if the buffer is full.
    /// Returns the bytes it now costs more (or less) than before.
    pub(crate) fn record(&mut self, id: Option<LineId>, line: OutboundLine) -> isize {
        if self.limit == 0 {
            return 0;
        }
        let mut change = 0;
        if self.lines.len() == self.limit {
            change -= self.forget_oldest() as isize;
        }
        let cost = kept_cost(&line);
        self.bytes += cost;
        self.lines.push_back((id, line));
        change + cost as isize
    }

    /// Forgets the oldest line; the bytes it cost.
    pub(crate) fn forget_oldest(&mut self) -> usize {
        let Some((_, line)) = self.lines.pop_front() else {
            return 0;
        };
        let cost = kept_cost(&line);
        self.bytes -= cost;
        cost
    }

    /// What the kept lines cost.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The kept lines, oldest first.
    pub(crate) fn lines(&self) -> impl ExactSizeIterator<Item = &OutboundLine> {
        self.lines.iter().map(|(_, line)| line)
    }

    /// Is the line with this id kept here?
    pub(crate) fn contains(&self, id: LineId) -> bool {
        self.lines.iter().any(|(kept, _)| *kept == Some(id))
    }

    /// The kept lines said after the one numbered `id`, oldest first; `None`
    /// when that line is not kept here (forgotten, or said in another room),
    /// so that whatever came between it and the oldest kept line may have
    /// been missed.
    pub(crate) fn after(&self, id: LineId) -> Option<impl ExactSizeIterator<Item = &OutboundLine>> {
        let at = self.lines.iter().position(|(kept, _)| *kept == Some(id))?;
        Some(self.lines.range(at + 1..).map(|(_, line)| line))
    }

    /// Takes `shared` (Redis's copy, oldest first) as the history, followed
    /// by the lines kept here that it lacks (said here while Redis could not
    /// be reached), and keeps the last `limit` of them. Returns the bytes it
    /// now costs more (or less) than before.
    pub(crate) fn merge(&mut self, shared: Vec<(LineId, OutboundLine)>) -> isize {
        let before = self.bytes as isize;
        let ids: HashSet<LineId> = shared.iter().map(|(id, _)| *id).collect();
        let only_here = mem::take(&mut self.lines)
            .into_iter()
            .filter(|(id, _)| id.is_none_or(|id| !ids.contains(&id)));
        let merged: Vec<_> = shared
            .into_iter()
            .map(|(id, line)| (Some(id), line))
            .chain(only_here)
            .collect();
        self.bytes = 0;
        for (id, line) in merged {
            self.record(id, line);
        }
        self.bytes as isize - before
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
            history.record(None, OutboundLine::verbatim(&n.to_string()));
        }
        assert_eq!(texts(&history), vec!["3", "4", "5"]);
        assert_eq!(history.len(), 3);
    }

    #[test]
    fn fewer_lines_than_the_limit_are_all_kept() {
        let mut history = History::new(50);
        history.record(None, OutboundLine::verbatim("only"));
        assert_eq!(texts(&history), vec!["only"]);
    }

    #[test]
    fn a_limit_of_zero_keeps_nothing() {
        let mut history = History::new(0);
        history.record(None, OutboundLine::verbatim("gone"));
        assert!(history.is_empty());
    }

    #[test]
    fn the_lines_after_a_kept_one_are_found_and_a_forgotten_one_is_not() {
        let id = |seq| LineId { server: 9, seq };
        let mut history = History::new(3);
        for seq in 1..=4 {
            history.record(Some(id(seq)), OutboundLine::verbatim(&seq.to_string()));
        }
        fn after(history: &History, seq: u64) -> Option<Vec<String>> {
            let id = LineId { server: 9, seq };
            let lines = history.after(id)?;
            Some(lines.map(|line| line.text().to_string()).collect())
        }
        assert_eq!(after(&history, 2), Some(vec!["3".into(), "4".into()]));
        assert_eq!(after(&history, 4), Some(vec![]), "the last: nothing since");
        assert_eq!(after(&history, 1), None, "forgotten: lines may be missed");
        assert_eq!(
            history.after(LineId { server: 8, seq: 3 }).map(|l| l.len()),
            None
        );
    }

    #[test]
    fn a_merge_puts_the_shared_copy_first_and_keeps_each_line_once() {
        let id = |server, seq| LineId { server, seq };
        let mut history = History::new(4);
        history.record(Some(id(1, 1)), OutboundLine::verbatim("mine, published"));
        history.record(None, OutboundLine::verbatim("said while Redis was down"));
        history.merge(vec![
            (id(2, 7), OutboundLine::verbatim("theirs")),
            (id(1, 1), OutboundLine::verbatim("mine, published")),
        ]);
        assert_eq!(
            texts(&history),
            ["theirs", "mine, published", "said while Redis was down"]
        );
        assert!(history.contains(id(2, 7)) && !history.contains(id(2, 8)));
    }
}
