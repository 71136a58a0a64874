//! What the admin's tools read and change: the figures `/metrics` reports, online backups, contacts and their undeliverable mark, quarantined messages to release.

use super::columns::{parse_ts, ts};
use super::conn::Store;
use super::db::{OptionalExtension, Row, params};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;
use std::path::Path;

/// A quarantined message (or one set aside as spam) still in quarantine: no
/// later stored copy of the same mail (the same bytes, or the same
/// Message-ID from the same sender) was handled since, as a release makes one.
pub(super) const IN_QUARANTINE: &str = "q.outcome IN ('quarantined', 'spam') AND NOT EXISTS (
    SELECT 1 FROM messages p WHERE p.id > q.id AND p.outcome NOT IN ('quarantined', 'spam')
      AND (p.content_hash = q.content_hash
           OR (q.message_id IS NOT NULL AND p.message_id = q.message_id
               AND coalesce(lower(p.sender), '') = coalesce(lower(q.sender), ''))))";

/// A contact as `ticketd contacts` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ContactRow {
    pub address: String,
    pub name: Option<String>,
    pub language: Option<String>,
    pub undeliverable: bool,
    pub undeliverable_reason: Option<String>,
    /// Tickets this contact opened.
    pub tickets: i64,
}

/// A stored quarantined message, for `quarantine show` and `release`.
#[derive(Debug, Clone, Serialize)]
pub struct StoredMessage {
    pub row: i64,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub content_hash: String,
    pub arrival: DateTime<Utc>,
    pub size: i64,
    pub reason: Option<String>,
    /// Still in quarantine (not released since).
    pub quarantined: bool,
    /// What is stored: the whole message, or only its header when it was too big.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

/// The store's figures a scrape reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    pub outbox_queued: u64,
    /// When the oldest mail still queued was queued.
    pub oldest_queued: Option<DateTime<Utc>>,
    pub quarantined: u64,
    pub timers_pending: u64,
    /// Pending timers already due.
    pub timers_overdue: u64,
    /// Writers of every node waiting for the writers' lock (PostgreSQL).
    pub writers_waiting: u64,
}

impl Store {
    /// The queue, quarantine and timer figures at `now`.
    pub fn gauges(&self, now: DateTime<Utc>) -> Result<Gauges> {
        let (outbox_queued, oldest): (i64, Option<String>) = self.conn.query_row(
            "SELECT count(*), min(created_at) FROM outbox WHERE status = 'queued'",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let quarantined: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM messages q WHERE {IN_QUARANTINE}"),
            (),
            |r| r.get(0),
        )?;
        let (pending, overdue): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(CASE WHEN due_at <= ?1 THEN 1 ELSE 0 END), 0) FROM timers
             WHERE state IN ('pending', 'paused')",
            [ts(now)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let writers_waiting = match self.conn.backend() {
            super::db::Backend::Postgres => self.writers_waiting()? as u64,
            super::db::Backend::Sqlite => 0,
        };
        Ok(Gauges {
            writers_waiting,
            outbox_queued: outbox_queued as u64,
            oldest_queued: oldest.as_deref().map(parse_ts).transpose()?,
            quarantined: quarantined as u64,
            timers_pending: pending as u64,
            timers_overdue: overdue as u64,
        })
    }

    /// Writes a consistent copy of the database to `dest` with SQLite's
    /// online backup, while other connections go on writing: the copy is the
    /// database as one read transaction sees it. Written beside `dest` and
    /// renamed into place once complete. `progress(done, total)` is told the
    /// pages copied.
    pub fn backup_to(&self, dest: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let conn = self.sqlite().context(
            "a PostgreSQL store is backed up by the server's own tools: pg_dump (or pg_basebackup)",
        )?;
        let tmp = dest.with_extension("backup-partial");
        let _ = std::fs::remove_file(&tmp);
        {
            let mut out = Connection::open(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            // One read transaction on the source for the whole copy: every
            // step sees the same snapshot, so writers never restart it.
            conn.execute_batch("BEGIN")?;
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
            let copied = (|| -> Result<()> {
                let b = rusqlite::backup::Backup::new(conn, &mut out)?;
                loop {
                    let r = b.step(256)?;
                    let p = b.progress();
                    let total = p.pagecount.max(0) as u64;
                    progress(total - p.remaining.max(0) as u64, total);
                    match r {
                        rusqlite::backup::StepResult::Done => return Ok(()),
                        rusqlite::backup::StepResult::More => {}
                        rusqlite::backup::StepResult::Busy
                        | rusqlite::backup::StepResult::Locked => {
                            std::thread::sleep(std::time::Duration::from_millis(10))
                        }
                        _ => {}
                    }
                }
            })();
            conn.execute_batch("COMMIT")?;
            copied.context("copying the database")?;
            let ok: String = out.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            if ok != "ok" {
                anyhow::bail!("the copy fails its integrity check: {ok}");
            }
            out.execute_batch("PRAGMA journal_mode = DELETE")?;
        }
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dest)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))?;
        Ok(())
    }

    /// Every contact, by address.
    pub fn contacts(&self) -> Result<Vec<ContactRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT c.address, c.name, c.language, c.undeliverable, c.undeliverable_reason,
                    (SELECT count(*) FROM tickets t WHERE t.requester_id = c.id)
             FROM contacts c ORDER BY c.address",
        )?;
        let rows = stmt
            .query_map((), |r| {
                Ok(ContactRow {
                    address: r.get(0)?,
                    name: r.get(1)?,
                    language: r.get(2)?,
                    undeliverable: r.get::<_, i64>(3)? != 0,
                    undeliverable_reason: r.get(4)?,
                    tickets: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Clears `address`'s undeliverable mark: mail may be sent to it again.
    /// `None`: no such contact; `Some(was)`: whether it was marked.
    pub fn set_deliverable(&mut self, address: &str) -> Result<Option<bool>> {
        let tx = self.conn.transaction()?;
        let was: Option<i64> = tx
            .query_row(
                "SELECT undeliverable FROM contacts WHERE address = lower(?1)",
                [address],
                |r| r.get(0),
            )
            .optional()?;
        if was.is_some() {
            tx.execute(
                "UPDATE contacts SET undeliverable = 0, undeliverable_since = NULL, undeliverable_reason = NULL
                 WHERE address = lower(?1)",
                [address],
            )?;
        }
        tx.commit()?;
        Ok(was.map(|w| w != 0))
    }

    /// The quarantined message stored as row `row`.
    pub fn quarantined_message(&self, row: i64) -> Result<Option<StoredMessage>> {
        self
            .conn
            .query_row(
                &format!(
                    "SELECT q.id, q.mailbox, q.uidvalidity, q.uid, q.message_id, q.sender, q.content_hash,
                            q.arrival, q.size, q.reason, q.raw, {IN_QUARANTINE}
                     FROM messages q WHERE q.id = ?1 AND q.outcome IN ('quarantined', 'spam')"
                ),
                params![row],
                stored_message,
            )
            .optional()
    }

    /// Every stored message that arrived at or before `until` (all without
    /// it), as it came: in arrival order, then in the order it was stored.
    /// What `replay` runs again.
    pub fn stored_mail(&self, until: Option<DateTime<Utc>>) -> Result<Vec<StoredMessage>> {
        let until = until.map_or_else(|| "9999".to_string(), ts);
        let mut stmt = self.conn.prepare(&format!(
            "SELECT q.id, q.mailbox, q.uidvalidity, q.uid, q.message_id, q.sender, q.content_hash,
                    q.arrival, q.size, q.reason, q.raw, {IN_QUARANTINE}
             FROM messages q WHERE q.arrival <= ?1 ORDER BY q.arrival, q.id"
        ))?;
        let rows = stmt.query_map([until], stored_message)?;
        rows.collect::<Result<_>>()
    }

    /// Whether a message from `(mailbox, uidvalidity, uid)` is stored: its row.
    pub fn stored_row(&self, mailbox: &str, uidvalidity: u32, uid: u32) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT id FROM messages WHERE mailbox = ?1 AND uidvalidity = ?2 AND uid = ?3",
                params![mailbox, uidvalidity, uid],
                |r| r.get(0),
            )
            .optional()
    }
}

/// A `messages` row selected as `id, mailbox, uidvalidity, uid, message_id,
/// sender, content_hash, arrival, size, reason, raw` and whether it is
/// [`IN_QUARANTINE`].
fn stored_message(r: &Row<'_>) -> Result<StoredMessage> {
    Ok(StoredMessage {
        row: r.get(0)?,
        mailbox: r.get(1)?,
        uidvalidity: r.get::<_, i64>(2)? as u32,
        uid: r.get::<_, i64>(3)? as u32,
        message_id: r.get(4)?,
        sender: r.get(5)?,
        content_hash: r.get(6)?,
        arrival: super::columns::ts_column(r, 7)?,
        size: r.get(8)?,
        reason: r.get(9)?,
        raw: r.get(10)?,
        quarantined: r.get(11)?,
    })
}
