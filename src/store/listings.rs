//! Listings for the CLI: tickets, a ticket's events, quarantined mail and mail set aside as spam, counts.

use super::columns::status_column;
use super::conn::Store;
use super::rows::{QuarantineRow, TicketSummary};
use crate::model::TicketId;
use anyhow::Result;

impl Store {
    pub fn tickets(&self) -> Result<Vec<TicketSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, t.subject, t.status, c.address, t.mailbox, t.language,
                    (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id), t.created_at
             FROM tickets t JOIN contacts c ON c.id = t.requester_id ORDER BY t.id",
        )?;
        let rows = stmt
            .query_map((), |r| {
                Ok(TicketSummary {
                    id: TicketId(r.get(0)?),
                    subject: r.get(1)?,
                    status: status_column(r, 2)?,
                    requester: r.get(3)?,
                    mailbox: r.get(4)?,
                    language: r.get(5)?,
                    messages: r.get(6)?,
                    created_at: super::columns::ts_column(r, 7)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A ticket's history as stored: each event's kind and detail, oldest first.
    pub fn ticket_events(&self, ticket: TicketId) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, detail FROM ticket_events WHERE ticket_id = ?1 ORDER BY id")?;
        let rows = stmt
            .query_map([ticket.0], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn quarantined(&self) -> Result<Vec<QuarantineRow>> {
        // Still in quarantine: a released message no longer is.
        let mut stmt = self.conn.prepare(&format!(
            "SELECT q.id, q.mailbox, q.uid, q.reason, q.size, q.outcome FROM messages q WHERE {} ORDER BY q.id",
            super::admin::IN_QUARANTINE
        ))?;
        let rows = stmt
            .query_map((), |r| {
                Ok(QuarantineRow {
                    row: r.get(0)?,
                    mailbox: r.get(1)?,
                    uid: r.get::<_, i64>(2)? as u32,
                    reason: r.get(3)?,
                    size: r.get(4)?,
                    outcome: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many outbox rows there are in each status.
    pub fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")?;
        let rows = stmt
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many stored messages there are with each outcome.
    pub fn message_outcomes(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT outcome, count(*) FROM messages GROUP BY outcome ORDER BY outcome")?;
        let rows = stmt
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }
}
