//! What `/stats.json` adds for the page's board of threads and its chart:
//! the thread board (`watch/board.rs`) and the last minutes'
//! history (`watch/samples.rs`). Runs on an `http-N` thread, and reads both
//! without a lock: atomics only.

use std::fmt::Write as _;

use crate::watch::board::{LockId, RoleView, State, ThreadBoard, ThreadView};
use crate::watch::samples::{History, Sample, KEPT};

/// Client threads of each role shown one cell each; the rest are counted.
pub(crate) const CELLS: usize = 64;

/// `,"board":{...},"history":{...}`: the two fields, to go inside the
/// object `/stats.json` sends.
pub(crate) fn fields(board: &ThreadBoard, history: &History) -> String {
    format!(
        ",\"board\":{},\"history\":{}",
        board_json(
            &board.long_lived(),
            &board.by_role(CELLS),
            board.untracked()
        ),
        history_json(&history.samples())
    )
}

/// The states and the locks (with what each means, for the page's
/// legend), the long-lived threads one by one, and the client threads by
/// role.
fn board_json(long_lived: &[ThreadView], roles: &[RoleView], untracked: usize) -> String {
    let quoted = |state: &State| format!("\"{}\"", state.key());
    let states: Vec<String> = (State::ALL.iter())
        .map(|state| format!("{}:\"{}\"", quoted(state), state.describe()))
        .collect();
    let locks: Vec<String> = (LockId::ALL.iter())
        .map(|lock| format!("\"{}\":\"{}\"", lock.key(), lock.describe()))
        .collect();
    let threads: Vec<String> = (long_lived.iter())
        .map(|thread| {
            let holds: Vec<String> = (thread.holds.iter())
                .map(|lock| format!("\"{}\"", lock.key()))
                .collect();
            format!(
                "{{\"name\":\"{}\",\"state\":{},\"holds\":[{}]}}",
                thread.name,
                quoted(&thread.state),
                holds.join(",")
            )
        })
        .collect();
    let roles: Vec<String> = (roles.iter())
        .map(|view| {
            let by_state: Vec<String> = (State::ALL.iter().zip(view.by_state))
                .map(|(state, count)| format!("{}:{count}", quoted(state)))
                .collect();
            let cells: Vec<String> = view.cells.iter().map(quoted).collect();
            format!(
                "\"{}\":{{\"count\":{},\"by_state\":{{{}}},\"cells\":[{}]}}",
                view.role.key(),
                view.count,
                by_state.join(","),
                cells.join(",")
            )
        })
        .collect();
    format!(
        "{{\"states\":{{{}}},\"locks\":{{{}}},\"threads\":[{}],\"roles\":{{{}}},\"cells_max\":{CELLS},\"untracked\":{untracked}}}",
        states.join(","),
        locks.join(","),
        threads.join(","),
        roles.join(",")
    )
}

/// One sample a second, oldest first: `[at_ms, in, out, dropped, refused,
/// online]`.
fn history_json(samples: &[Sample]) -> String {
    let mut out = format!(
        "{{\"every_s\":1,\"kept\":{KEPT},\"fields\":[\"at_ms\",\"in\",\"out\",\"dropped\",\"refused\",\"online\"],\"samples\":["
    );
    for (n, s) in samples.iter().enumerate() {
        let comma = if n == 0 { "" } else { "," };
        let _ = write!(
            out,
            "{comma}[{},{},{},{},{},{}]",
            s.at_ms, s.lines_in, s.lines_out, s.dropped, s.refused, s.online
        );
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::board::{LockId, Role};

    #[test]
    fn the_board_and_the_history_are_json_the_page_can_read() {
        let long_lived = [ThreadView {
            name: "manager".into(),
            state: State::Channel,
            holds: vec![LockId::Stats],
        }];
        let mut writers = RoleView {
            role: Role::Writer,
            count: 2,
            by_state: [0; State::ALL.len()],
            cells: vec![State::Write, State::Channel],
        };
        writers.by_state[1] = 1;
        writers.by_state[5] = 1;
        let board = board_json(&long_lived, &[writers], 0);
        assert!(
            board.contains(
                "\"threads\":[{\"name\":\"manager\",\"state\":\"channel\",\"holds\":[\"stats\"]}]"
            ),
            "{board}"
        );
        assert!(
            board.contains("\"writer\":{\"count\":2,\"by_state\":{\"running\":0,\"channel\":1,"),
            "{board}"
        );
        assert!(
            board.contains("\"write\":1,\"accept\":0},\"cells\":[\"write\",\"channel\"]}"),
            "{board}"
        );
        assert!(
            board.contains("\"write\":\"blocked in a socket write\""),
            "{board}"
        );
        let sample = Sample {
            at_ms: 1000,
            lines_in: 1,
            lines_out: 2,
            dropped: 3,
            refused: 4,
            online: 5,
        };
        let history = history_json(&[sample, sample]);
        assert!(
            history.ends_with("\"samples\":[[1000,1,2,3,4,5],[1000,1,2,3,4,5]]}"),
            "{history}"
        );
    }
}
