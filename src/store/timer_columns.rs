//! How a timer sits in its row: its kind by name, its cause as serde's JSON (compared as text, so one spelling per cause), and running (a due instant) or paused (the time left). Read and written by the timer writers, the lookups and the migration that typed the causes.

use super::columns::ts_column;
use super::db::{Result, Row};
use crate::model::{TimerCause, TimerKind, TimerState};

/// A timer's cause as the `timers.cause` column holds it: serde's JSON, one
/// spelling per cause, so the column is compared as text.
pub(crate) fn cause_text(cause: &TimerCause) -> String {
    serde_json::to_string(cause).expect("a timer cause serializes")
}

/// A `timers.cause` column.
pub(crate) fn cause_column(r: &Row<'_>, i: usize) -> Result<TimerCause> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| anyhow::Error::from(e).context(format!("column {}", i)))
}

/// A `timers.kind` column.
pub(crate) fn kind_column(r: &Row<'_>, i: usize) -> Result<TimerKind> {
    let s: String = r.get(i)?;
    TimerKind::parse(&s).ok_or_else(|| {
        anyhow::anyhow!(format!("unknown timer kind {s:?} in the database"))
            .context(format!("column {}", i))
    })
}

/// A pending or paused timer's state from its `due_at` and `paused_secs` columns.
pub(crate) fn state_columns(r: &Row<'_>, due: usize) -> Result<TimerState> {
    match r.get::<_, Option<i64>>(due + 1)? {
        Some(left_secs) => Ok(TimerState::Paused { left_secs }),
        None => Ok(TimerState::Running {
            due: ts_column(r, due)?,
        }),
    }
}
