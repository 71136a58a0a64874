//! The outbox queue: due mail, claims, attempts, results, failures and skips.

use super::columns::{parse_ts, ts, ts_column};
use super::conn::Store;
use super::db::{Backend, Params, params};
use super::rows::OutboxRow;
use super::writers::{queue_mail, record_event};
use crate::model::{Event, NewMail, TicketId};
use anyhow::Result;
use chrono::{DateTime, Utc};

impl Store {
    pub(super) fn outbox_rows(&self, sql: &str, p: impl Params) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(p, |r| {
                let rcpt: String = r.get(5)?;
                Ok(OutboxRow {
                    id: r.get(0)?,
                    ticket_id: r.get::<_, Option<i64>>(1)?.map(TicketId),
                    kind: r.get(2)?,
                    message_id: r.get(3)?,
                    mail_from: r.get(4)?,
                    rcpt_to: serde_json::from_str(&rcpt).unwrap_or_default(),
                    raw: r.get(6)?,
                    status: r.get(7)?,
                    attempts: r.get::<_, i64>(8)? as u32,
                    next_attempt_at: ts_column(r, 9)?,
                    last_error: r.get(10)?,
                    claims: r.get::<_, i64>(11)? as u32,
                    deferrals: r.get::<_, i64>(12)? as u32,
                    created_at: ts_column(r, 13)?,
                    subject: r.get(14)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub(super) const OUTBOX_COLS: &'static str = "id, ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, attempts, next_attempt_at, last_error, claims, deferrals, created_at, subject";

    /// Queued mail whose time has come, oldest first.
    pub fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxRow>> {
        self.due_outbox_except(now, limit, &[])
    }

    /// Like `due_outbox`, without the mail in `except` (mail in flight), whose
    /// bodies are not even read.
    pub fn due_outbox_except(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        except: &[i64],
    ) -> Result<Vec<OutboxRow>> {
        let ids = match (self.conn.backend(), &self.node) {
            // Several daemons may send: each claims the mail it reads, and
            // skips what another live node claimed (a dead node's claims
            // return when its row's lease ends).
            (Backend::Postgres, Some(node)) => self
                .conn
                .prepare_cached(
                    "SELECT id FROM outbox o WHERE status = 'queued' AND next_attempt_at <= ?1
                        AND (claimed_by IS NULL OR claimed_by = ?3
                             OR NOT EXISTS (SELECT 1 FROM nodes n
                                            WHERE n.node || '/' || n.incarnation = o.claimed_by
                                              AND n.expires_at > to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                                                         'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')))
                     ORDER BY id LIMIT ?2 FOR UPDATE SKIP LOCKED",
                )?
                .query_map(params![ts(now), (limit + except.len()) as i64, node], |r| {
                    r.get::<_, i64>(0)
                })?
                .collect::<Result<Vec<_>>>()?,
            _ => self
                .conn
                .prepare_cached(
                    "SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
                )?
                .query_map(params![ts(now), (limit + except.len()) as i64], |r| {
                    r.get::<_, i64>(0)
                })?
                .collect::<Result<Vec<_>>>()?,
        };
        let sql = format!("SELECT {} FROM outbox WHERE id = ?1", Self::OUTBOX_COLS);
        let mut out = Vec::with_capacity(limit.min(ids.len()));
        for id in ids.into_iter().filter(|i| !except.contains(i)).take(limit) {
            out.extend(self.outbox_rows(&sql, [id])?);
        }
        Ok(out)
    }

    /// When the next queued mail falls due, if any is queued.
    pub fn next_outbox_due(&self) -> Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self
            .conn
            .prepare_cached("SELECT min(next_attempt_at) FROM outbox WHERE status = 'queued'")?
            .query_row((), |r| r.get(0))?;
        s.map(|s| parse_ts(&s)).transpose()
    }

    pub fn outbox(&self, status: Option<&str>) -> Result<Vec<OutboxRow>> {
        match status {
            Some(s) => self.outbox_rows(
                &format!(
                    "SELECT {} FROM outbox WHERE status = ?1 ORDER BY id",
                    Self::OUTBOX_COLS
                ),
                [s],
            ),
            None => self.outbox_rows(
                &format!("SELECT {} FROM outbox ORDER BY id", Self::OUTBOX_COLS),
                (),
            ),
        }
    }

    /// Counts a claim for each of `ids` before any of them is sent (one
    /// savepoint: its own transaction, or part of an `in_batch`), so that a
    /// mail that stops the sender every time still leaves the queue after a
    /// few claims with no outcome. Returns the new claim count of each, in
    /// order.
    pub fn begin_claims(&mut self, ids: &[i64]) -> Result<Vec<u32>> {
        let tx = self.conn.savepoint()?;
        let mut out = Vec::with_capacity(ids.len());
        {
            // Read back rather than `RETURNING`, which SQLite buffers in a
            // temporary table per statement.
            // The claim names this process: on a shared store, the others
            // leave the mail to it while it lives.
            let mut count = tx.prepare_cached(
                "UPDATE outbox SET claims = claims + 1, claimed_by = ?2 WHERE id = ?1",
            )?;
            let mut read = tx.prepare_cached("SELECT claims FROM outbox WHERE id = ?1")?;
            for id in ids {
                count.execute(params![id, self.node])?;
                let n: i64 = read.query_row([id], |r| r.get(0))?;
                out.push(n as u32);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records in one savepoint the mail the server accepted (`sent`; a row
    /// no longer queued, e.g. recorded before a crash and replayed from the
    /// sent journal, is left as it is) and the mail to try again at a later time
    /// (`retry`: id, when, why, and whether the server answered for it: a
    /// real attempt, else a deferral).
    pub fn record_sends(
        &mut self,
        sent: &[i64],
        retry: &[(i64, DateTime<Utc>, String, bool)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.savepoint()?;
        let now_s = ts(now);
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET status = 'sent', sent_at = ?2, last_error = NULL, attempts = attempts + 1, claims = 0
                 WHERE id = ?1 AND status = 'queued'",
            )?;
            for id in sent {
                stmt.execute(params![id, now_s])?;
            }
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3, claims = 0, claimed_by = NULL,
                        attempts = attempts + ?4, deferrals = deferrals + 1 - ?4
                 WHERE id = ?1",
            )?;
            for (id, at, error, reached) in retry {
                stmt.execute(params![id, ts(*at), error, *reached as i64])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Gives back the last claim of queued mail that a killed process
    /// claimed but never tried (the sent journal says which), so that the
    /// crash guard counts only the mail on the wire when a process died.
    pub fn release_claims(&mut self, ids: &[i64]) -> Result<()> {
        let tx = self.conn.savepoint()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET claims = claims - 1 WHERE id = ?1 AND status = 'queued' AND claims > 0",
            )?;
            for id in ids {
                stmt.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Which of `addresses` are contacts marked undeliverable.
    pub fn undeliverable_among(&self, addresses: &[String]) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for a in addresses {
            if self.contact(a)?.is_some_and(|c| c.undeliverable) {
                out.push(a.clone());
            }
        }
        Ok(out)
    }

    /// Gives up a queued mail without trying: its recipients are undeliverable.
    pub fn skip_outbox(&mut self, id: i64, error: &str, now: DateTime<Utc>) -> Result<()> {
        let tx = self.conn.savepoint()?;
        let ticket: Option<i64> = tx.prepare_cached("UPDATE outbox SET status = 'failed', last_error = ?2 WHERE id = ?1 RETURNING ticket_id")?.query_row(
            params![id, error],
            |r| r.get(0),
        )?;
        if let Some(t) = ticket {
            let skipped = Event::SendSkipped {
                error: error.to_string(),
            };
            record_event(&tx, TicketId(t), None, &skipped, now)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a failure for good and, in the same transaction, the notice
    /// to staff; `reached`: the server answered for this mail (a real
    /// attempt, counted).
    pub fn mark_failed(
        &mut self,
        id: i64,
        error: &str,
        notice: Option<&NewMail>,
        reached: bool,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.savepoint()?;
        let ticket: Option<i64> = tx.prepare_cached("UPDATE outbox SET status = 'failed', last_error = ?2, claims = 0, attempts = attempts + ?3 WHERE id = ?1 RETURNING ticket_id")?.query_row(
            params![id, error, reached as i64],
            |r| r.get(0),
        )?;
        let ticket = ticket.map(TicketId);
        if let Some(t) = ticket {
            let failed = Event::SendFailed {
                error: error.to_string(),
            };
            record_event(&tx, t, None, &failed, now)?;
        }
        if let Some(n) = notice {
            queue_mail(&tx, ticket, n, now)?;
        }
        tx.commit()?;
        Ok(())
    }
}
