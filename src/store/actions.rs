//! Staff actions on a ticket from the shell: each one transaction with the event that names who did it.

use super::intake::record_event;
use super::lookup::status_column;
use super::timers::write_change;
use super::{Store, ts};
use crate::model::{Event, NewMail, TicketChange, TicketId, TicketStatus, TimerKind};
use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

impl Store {
    /// Sets ticket `id` to `to` on behalf of `by`, recording a
    /// `status_changed` event; closing it also cancels its pending timers,
    /// each with the event saying why. Returns the state it had. Fails, writing
    /// nothing, on an unknown ticket or one already in `to`.
    pub fn set_status(
        &mut self,
        id: TicketId,
        to: TicketStatus,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<TicketStatus> {
        let tx = self.conn.transaction()?;
        let from = tx
            .query_row("SELECT status FROM tickets WHERE id = ?1", [id.0], |r| {
                status_column(r, 0)
            })
            .optional()?
            .ok_or_else(|| anyhow!("ticket {id} does not exist"))?;
        if from == to {
            bail!("ticket {id} is already {to}");
        }
        tx.execute(
            "UPDATE tickets SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id.0, to.as_str(), ts(now)],
        )?;
        let changed = Event::StatusChanged {
            from,
            to,
            by: by.to_string(),
        };
        record_event(&tx, id, None, &changed, now)?;
        if to == TicketStatus::Closed {
            let why = format!("the ticket was closed by {by}");
            let cancelled: Vec<(String, String, String)> = tx
                .prepare(
                    "UPDATE timers SET state = 'cancelled', settled_at = ?2, reason = ?3
                     WHERE ticket_id = ?1 AND state = 'pending' RETURNING kind, key, rule",
                )?
                .query_map(params![id.0, ts(now), why], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (kind, key, rule) in cancelled {
                let timer = TimerKind::parse(&kind)
                    .ok_or_else(|| anyhow!("unknown timer kind {kind:?} in the database"))?;
                let e = Event::TimerCancelled {
                    timer,
                    key,
                    rule,
                    why: why.clone(),
                };
                record_event(&tx, id, None, &e, now)?;
            }
        }
        tx.commit()?;
        Ok(from)
    }

    /// Writes a staff action's change to ticket `id` in one transaction
    /// (its events, timers set and ended, and mail). Fails, writing nothing,
    /// on an unknown ticket.
    pub fn apply_change(
        &mut self,
        id: TicketId,
        change: &TicketChange<NewMail>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let known: Option<i64> = tx
            .query_row("SELECT id FROM tickets WHERE id = ?1", [id.0], |r| r.get(0))
            .optional()?;
        if known.is_none() {
            bail!("ticket {id} does not exist");
        }
        write_change(&tx, id, change, now)?;
        tx.commit()?;
        Ok(())
    }

    /// The Message-ID of the last mail the ticket's people wrote, which our
    /// mail on the ticket answers.
    pub fn last_customer_message(&self, id: TicketId) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT message_id FROM messages
                 WHERE ticket_id = ?1 AND outcome = 'processed' AND message_id IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([id.0], |r| r.get(0))
            .optional()?)
    }
}
