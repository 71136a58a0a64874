//! Timers in the database: the next due instant, the due ones, listings, and settling one (fired or cancelled) with its events and mail in one transaction.

use super::intake::{queue_mail, record_event};
use super::{Store, parse_ts, ts};
use crate::model::{Event, NewMail, TicketId, TimerKind, TimerPlan, TimerRow};
use anyhow::{Result, anyhow};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

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
            .query_row([], |r| r.get(0))
            .optional()?;
        s.map(|s| parse_ts(&s)).transpose()
    }

    /// Pending timers due at or before `before`, earliest first, at most `limit`.
    pub fn pending_timers(
        &self,
        before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<TimerRow>> {
        let before = before.map_or_else(|| "9999".to_string(), ts);
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, ticket_id, kind, key, due_at, rule, recipient FROM timers
             WHERE state = 'pending' AND due_at <= ?1 ORDER BY due_at, id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![before, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, ticket, kind, key, due, rule, to)| {
                Ok(TimerRow {
                    id,
                    ticket: TicketId(ticket),
                    plan: TimerPlan {
                        kind: TimerKind::parse(&kind).ok_or_else(|| {
                            anyhow!("unknown timer kind {kind:?} in the database")
                        })?,
                        key,
                        due: parse_ts(&due)?,
                        rule,
                        to,
                    },
                })
            })
            .collect()
    }

    /// Ends a pending timer and, in the same transaction, records `events` on
    /// its ticket and queues `mails`. Returns false (and writes nothing) when
    /// the timer was no longer pending: a timer fires at most once.
    pub fn settle_timer(
        &mut self,
        timer: &TimerRow,
        how: Settle,
        reason: Option<&str>,
        events: &[Event],
        mails: &[NewMail],
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
                 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![timer.id, state, ts(now), reason])?;
        if changed == 0 {
            return Ok(false);
        }
        for e in events {
            record_event(&tx, timer.ticket, None, e, now)?;
        }
        for m in mails {
            queue_mail(&tx, Some(timer.ticket), m, now)?;
        }
        tx.commit()?;
        Ok(true)
    }
}
