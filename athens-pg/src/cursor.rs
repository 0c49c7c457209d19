//! Where polls of the outbox start scanning (issue 12, finding 8).
//!
//! An acknowledged change's row is deleted, but its index entry and dead tuple stay until a vacuum
//! removes them, and no vacuum can while a snapshot older than the delete is open (a `pg_dump`, a
//! long report, any `REPEATABLE READ` transaction on the database). A poll reading
//! `ORDER BY id LIMIT n` from the first entry walks all of them, visiting each dead tuple, on every
//! poll: its cost grows with the changes acknowledged since the snapshot began
//! (`docs/benchmarks.md`, "Outbox: poll cost").
//!
//! The cursor lets polls start at a floor instead (`WHERE id >= floor`), past the entries of
//! acknowledged rows, without a "last id seen" high-water mark: a transaction that took its id
//! early and commits late is still read, because the floor only moves past ids that can no longer
//! appear.
//!
//! # Why a floor is safe
//! Capture takes an outbox id (the identity sequence) inside a transaction that already has its
//! transaction id: the AFTER triggers run after their statement modified its table, and the
//! `BEFORE TRUNCATE` trigger's `athens.had_rows` takes one before its insert. An acknowledgement
//! reads the sequence's last value `S` before its own transaction takes a transaction id, then
//! takes one, `X` (its delete does). Every transaction that took an id at or below `S` took it
//! before that read, so its transaction id is below `X`. Once a poll's snapshot has an xmin above
//! `X`, all those transactions have ended: each id at or below `S` is committed and visible to that
//! poll, or will never be. So the oldest id that can still be pending is the poll's first row (the
//! oldest pending at or above the old floor) or `S + 1`, whichever is smaller: the new floor.
//!
//! The floor belongs to one outbox table (its oid): a reinstall, whose ids start at 1 again,
//! resets it.

use std::sync::{Mutex, PoisonError};

/// The floor of one consumer's polls and the candidate that may raise it.
#[derive(Debug, Default)]
pub(crate) struct Cursor(Mutex<State>);

#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// Every id below it is acknowledged or will never commit; `None`: scan from the start.
    floor: Option<i64>,
    /// The outbox table the floor belongs to.
    table: Option<i64>,
    /// `(S, X)` of an acknowledgement: every id at or below `S` was taken by a transaction whose
    /// id is below `X`.
    candidate: Option<(i64, i64)>,
}

/// What one poll saw, read in the poll's own statement (one snapshot).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    /// The outbox table's oid.
    pub(crate) table: i64,
    /// The xmin of the poll's snapshot.
    pub(crate) xmin: i64,
    /// The id of the poll's first row, if it returned any.
    pub(crate) first: Option<i64>,
}

impl Cursor {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the next poll starts, and the table that floor belongs to.
    pub(crate) fn floor(&self) -> (i64, Option<i64>) {
        let state = self.state();
        (state.floor.unwrap_or(i64::MIN), state.table)
    }

    /// Records what a poll that started at `floor` saw. Returns `false` when the floor belonged to
    /// another outbox table (reinstalled since): it is reset, and the poll must be made again.
    pub(crate) fn saw(&self, floor: (i64, Option<i64>), seen: Seen) -> bool {
        let mut state = self.state();
        if state.table != Some(seen.table) {
            let stale = state.floor.is_some() && floor.0 != i64::MIN;
            *state = State {
                table: Some(seen.table),
                ..State::default()
            };
            return !stale;
        }
        if let Some((last, xid)) = state.candidate
            && seen.xmin > xid
        {
            let next = last.saturating_add(1);
            let raised = seen.first.map_or(next, |first| first.min(next));
            state.floor = Some(state.floor.map_or(raised, |floor| floor.max(raised)));
            state.candidate = None;
        }
        true
    }

    /// Records an acknowledgement's `(S, X)` (see the module's doc) unless one waits already.
    pub(crate) fn acknowledged(&self, table: i64, last: Option<i64>, xid: i64) {
        let mut state = self.state();
        if state.table == Some(table)
            && state.candidate.is_none()
            && let Some(last) = last
        {
            state.candidate = Some((last, xid));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(xmin: i64, first: Option<i64>) -> Seen {
        Seen {
            table: 7,
            xmin,
            first,
        }
    }

    #[test]
    fn the_floor_moves_only_once_every_earlier_writer_ended() {
        let cursor = Cursor::default();
        assert!(cursor.saw(cursor.floor(), seen(100, Some(1))));
        assert_eq!(cursor.floor(), (i64::MIN, Some(7)));
        cursor.acknowledged(7, Some(1000), 150);
        assert!(cursor.saw(cursor.floor(), seen(150, Some(1001))));
        assert_eq!(
            cursor.floor().0,
            i64::MIN,
            "a writer below xid 150 may still run"
        );
        assert!(cursor.saw(cursor.floor(), seen(151, Some(1001))));
        assert_eq!(cursor.floor().0, 1001);
    }

    #[test]
    fn the_floor_stays_at_the_oldest_pending_row() {
        let cursor = Cursor::default();
        cursor.saw(cursor.floor(), seen(1, None));
        cursor.acknowledged(7, Some(1000), 10);
        cursor.saw(cursor.floor(), seen(11, Some(420)));
        assert_eq!(cursor.floor().0, 420, "row 420 is still pending");
        cursor.acknowledged(7, Some(2000), 20);
        cursor.saw(cursor.floor(), seen(21, None));
        assert_eq!(
            cursor.floor().0,
            2001,
            "nothing pending: past the last id taken"
        );
        cursor.acknowledged(7, Some(1500), 30);
        cursor.saw(cursor.floor(), seen(31, Some(1200)));
        assert_eq!(cursor.floor().0, 2001, "never backwards");
    }

    #[test]
    fn a_reinstalled_outbox_resets_the_floor_and_asks_for_a_new_poll() {
        let cursor = Cursor::default();
        cursor.saw(cursor.floor(), seen(1, None));
        cursor.acknowledged(7, Some(1000), 10);
        cursor.saw(cursor.floor(), seen(11, None));
        assert_eq!(cursor.floor(), (1001, Some(7)));
        let other = Seen {
            table: 8,
            xmin: 12,
            first: None,
        };
        assert!(
            !cursor.saw(cursor.floor(), other),
            "poll again from the start"
        );
        assert_eq!(cursor.floor(), (i64::MIN, Some(8)));
        assert!(cursor.saw(cursor.floor(), other));
    }
}
