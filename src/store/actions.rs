//! Staff actions on a ticket: each change written in one transaction with the events that name who did it.

use super::conn::Store;
use super::db::{OptionalExtension, params};
use super::timers::write_change;
use crate::model::{NewMail, TicketChange, TicketId};
use anyhow::{Result, bail};
use chrono::{DateTime, Utc};

impl Store {
    /// Writes a staff action's change to ticket `id` in one transaction
    /// (its events, timers set and ended, and mail). Fails, writing nothing,
    /// on an unknown ticket.
    pub fn apply_change(
        &mut self,
        id: TicketId,
        change: &TicketChange<NewMail>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // A savepoint: its own transaction, or part of the caller's (a
        // staff action reads and writes in one `in_batch`).
        let tx = self.conn.savepoint()?;
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
    pub fn last_customer_message(&self, id: TicketId, staff: &[String]) -> Result<Option<String>> {
        let staff = serde_json::to_string(staff)?;
        self.conn
            .prepare_cached(
                "SELECT message_id FROM messages
                 WHERE ticket_id = ?1 AND outcome = 'processed' AND message_id IS NOT NULL
                   AND (sender IS NULL OR sender NOT IN (SELECT value FROM json_each(?2)))
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![id.0, staff], |r| r.get(0))
            .optional()
    }
}
