//! Timers in the database: the next due instant, the due ones, listings, and settling one (fired or cancelled) with its events and mail in one transaction.

use super::columns::{parse_ts, ts, ts_column};
use super::conn::Store;
use super::db::{Conn, OptionalExtension, params};
use super::timer_columns::{cause_column, cause_text, kind_column};
use super::writers::{queue_mail, record_event, set_timer};
use crate::model::{
    Event, NewMail, TicketChange, TicketId, TimerCancel, TimerPlan, TimerRow, TimerUpdate,
};
use anyhow::Result;
use chrono::{DateTime, Utc};

/// How a timer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Fired,
    Cancelled,
}

impl Store {
    /// When the next pending timer falls due, if any is pending.
    pub fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT due_at FROM timers WHERE state = 'pending' ORDER BY due_at LIMIT 1",
            )?
            .query_row((), |r| r.get(0))
            .optional()?;
        s.map(|s| parse_ts(&s)).transpose()
    }

    /// Pending timers due at or before `before` (all of them without it),
    /// earliest first, at most `limit`. Paused timers are not due.
    pub fn pending_timers(
        &self,
        before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<TimerRow>> {
        // Two statements, each with one plan: a range walk of the pending
        // index, or all of it.
        let (sql, before) = match before {
            Some(b) => (
                "SELECT id, ticket_id, kind, cause, due_at, rule, recipient FROM timers
                 WHERE state = 'pending' AND due_at <= ?1 ORDER BY due_at, id LIMIT ?2",
                Some(ts(b)),
            ),
            None => (
                "SELECT id, ticket_id, kind, cause, due_at, rule, recipient FROM timers
                 WHERE state = 'pending' AND CAST(?1 AS TEXT) IS NULL ORDER BY due_at, id LIMIT ?2",
                None,
            ),
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params![before, limit as i64], |r| {
                Ok(TimerRow {
                    id: r.get(0)?,
                    ticket: TicketId(r.get(1)?),
                    plan: TimerPlan {
                        kind: kind_column(r, 2)?,
                        cause: cause_column(r, 3)?,
                        due: ts_column(r, 4)?,
                        rule: r.get(5)?,
                        to: r.get(6)?,
                    },
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Ends a pending timer and, in the same transaction, writes what it
    /// changes on its ticket (events, state, timers, mail). Returns false
    /// (and writes nothing) when the timer was no longer pending: a timer
    /// fires at most once.
    pub fn settle_timer(
        &mut self,
        timer: &TimerRow,
        how: Settle,
        reason: Option<&str>,
        change: &TicketChange<NewMail>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let tx = self.conn.savepoint()?;
        let state = match how {
            Settle::Fired => "fired",
            Settle::Cancelled => "cancelled",
        };
        let changed = tx
            .prepare_cached(
                "UPDATE timers SET state = ?2, settled_at = ?3, reason = ?4
                 WHERE id = ?1 AND state = 'pending' AND due_at = ?5",
            )?
            .execute(params![
                timer.id,
                state,
                ts(now),
                reason,
                ts(timer.plan.due)
            ])?;
        if changed == 0 {
            return Ok(false);
        }
        write_change(&tx, timer.ticket, change, now)?;
        tx.commit()?;
        Ok(true)
    }
}

/// Writes a change to one ticket inside the caller's transaction: its
/// state, its events, the timers it ends (each with its event) and sets,
/// and its mail.
pub(super) fn write_change(
    tx: &Conn,
    ticket: TicketId,
    change: &TicketChange<NewMail>,
    now: DateTime<Utc>,
) -> Result<()> {
    if let Some(to) = change.status {
        tx.prepare_cached("UPDATE tickets SET status = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![ticket.0, to.as_str(), ts(now)])?;
    }
    for e in &change.events {
        record_event(tx, ticket, None, e, now)?;
    }
    end_timers(tx, ticket, &change.cancel_timers, now)?;
    for t in &change.set_timers {
        set_timer(tx, ticket, t, now)?;
    }
    update_timers(tx, ticket, &change.timer_updates)?;
    for m in &change.mails {
        queue_mail(tx, Some(ticket), m, now)?;
    }
    Ok(())
}

/// Ends the pending (or paused) timers `cancel` names, each with its
/// `timer_cancelled` event; one no longer pending is left as it is.
pub(super) fn end_timers(
    tx: &Conn,
    ticket: TicketId,
    cancel: &[TimerCancel],
    now: DateTime<Utc>,
) -> Result<()> {
    for c in cancel {
        let rule: Option<String> = tx
            .prepare_cached(
                "UPDATE timers SET state = 'cancelled', settled_at = ?4, reason = ?5
                 WHERE ticket_id = ?1 AND kind = ?2 AND cause = ?3
                   AND state IN ('pending', 'paused')
                 RETURNING rule",
            )?
            .query_row(
                params![
                    ticket.0,
                    c.kind.as_str(),
                    cause_text(&c.cause),
                    ts(now),
                    c.why
                ],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(rule) = rule {
            let e = Event::TimerCancelled {
                timer: c.kind,
                key: c.cause.to_string(),
                rule,
                why: c.why.clone(),
            };
            record_event(tx, ticket, None, &e, now)?;
        }
    }
    Ok(())
}

/// Pauses running timers of `ticket` (no due instant while paused, the
/// time left kept) or resumes paused ones at their new due instant.
pub(super) fn update_timers(tx: &Conn, ticket: TicketId, updates: &[TimerUpdate]) -> Result<()> {
    for u in updates {
        match u {
            TimerUpdate::Pause {
                kind,
                cause,
                left_secs,
            } => tx
                .prepare_cached(
                    "UPDATE timers SET state = 'paused', due_at = NULL, paused_secs = ?4
                     WHERE ticket_id = ?1 AND kind = ?2 AND cause = ?3 AND state = 'pending'",
                )?
                .execute(params![
                    ticket.0,
                    kind.as_str(),
                    cause_text(cause),
                    left_secs
                ])?,
            TimerUpdate::Resume { kind, cause, due } => tx
                .prepare_cached(
                    "UPDATE timers SET state = 'pending', due_at = ?4, paused_secs = NULL
                     WHERE ticket_id = ?1 AND kind = ?2 AND cause = ?3 AND state = 'paused'",
                )?
                .execute(params![
                    ticket.0,
                    kind.as_str(),
                    cause_text(cause),
                    ts(*due)
                ])?,
        };
    }
    Ok(())
}
