//! SQLite storage: schema, migrations, and every SQL statement of the daemon.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use serde::Serialize;
use std::path::Path;

/// Versioned migrations; `user_version` holds how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE mailbox_state (
    mailbox     TEXT PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE TABLE contacts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    address       TEXT NOT NULL UNIQUE,
    name          TEXT,
    language      TEXT,
    undeliverable INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
) STRICT;

CREATE TABLE tickets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subject      TEXT NOT NULL,
    status       TEXT NOT NULL,
    requester_id INTEGER NOT NULL REFERENCES contacts(id),
    mailbox      TEXT NOT NULL,
    language     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox      TEXT NOT NULL,
    uidvalidity  INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    message_id   TEXT,
    sender       TEXT,
    content_hash TEXT NOT NULL,
    arrival      TEXT NOT NULL,
    size         INTEGER NOT NULL,
    raw          BLOB NOT NULL,
    class        TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT,
    ticket_id    INTEGER REFERENCES tickets(id),
    stored_at    TEXT NOT NULL,
    UNIQUE (mailbox, uidvalidity, uid)
) STRICT;
CREATE INDEX messages_message_id ON messages(message_id);
CREATE INDEX messages_content_hash ON messages(content_hash);

CREATE TABLE thread_ids (
    message_id TEXT PRIMARY KEY,
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    origin     TEXT NOT NULL CHECK (origin IN ('in', 'out'))
) STRICT;

CREATE TABLE ticket_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    message_row INTEGER REFERENCES messages(id),
    detail      TEXT NOT NULL
) STRICT;
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id);
CREATE TRIGGER ticket_events_append_only_u BEFORE UPDATE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END;
CREATE TRIGGER ticket_events_append_only_d BEFORE DELETE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER REFERENCES tickets(id),
    kind            TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    mail_from       TEXT NOT NULL,
    rcpt_to         TEXT NOT NULL,
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
) STRICT;
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
"#,
    r#"
-- What the person wrote now (the reply text without quotes and signature);
-- the whole message stays in raw. NULL for messages stored before this column.
ALTER TABLE messages ADD COLUMN reply_text TEXT;
"#,
];

/// Timestamps are stored as fixed-width UTC text so that they sort as they compare.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("bad timestamp {s:?} in the database"))?
        .with_timezone(&Utc))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxState {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketInfo {
    pub id: i64,
    pub subject: String,
    pub status: String,
    pub requester: String,
    pub language: String,
    /// Every address that has written on this ticket.
    pub participants: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactInfo {
    pub address: String,
    pub language: Option<String>,
    pub undeliverable: bool,
}

/// A message already stored under the same identity (Message-ID and sender, or content).
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub row: i64,
    pub mailbox: String,
    pub ticket_id: Option<i64>,
}

/// What the database knows that bears on one mail.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub tagged: Option<TicketInfo>,
    pub referenced: Option<TicketInfo>,
    pub duplicate: Option<Duplicate>,
    pub contact: Option<ContactInfo>,
    pub next_ticket_id: i64,
}

/// Where a stored message came from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// The stored form of one inbound message.
#[derive(Debug, Clone)]
pub struct MessageRow<'a> {
    pub origin: Origin<'a>,
    pub raw: &'a [u8],
    pub message_id: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub content_hash: &'a str,
    pub arrival: DateTime<Utc>,
    pub class: &'a str,
    /// processed, duplicate, ignored or quarantined.
    pub outcome: &'a str,
    pub reason: Option<String>,
    /// The new text of the mail, for notifications and staff views.
    pub reply_text: Option<&'a str>,
}

/// What the message does to tickets.
#[derive(Debug, Clone)]
pub enum TicketWrite {
    None,
    New {
        subject: String,
        language: String,
        requester: String,
        requester_name: Option<String>,
    },
    /// A person wrote on the ticket: it is open again.
    Update {
        id: i64,
    },
    /// A machine wrote on the ticket: recorded, state unchanged.
    Attach {
        id: i64,
    },
}

/// One mail to send, fully rendered.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub kind: String,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub message_row: i64,
    pub ticket_id: Option<i64>,
    pub queued: Vec<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub kind: String,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub id: i64,
    pub subject: String,
    pub status: String,
    pub requester: String,
    pub mailbox: String,
    pub language: String,
    pub messages: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineRow {
    pub row: i64,
    pub mailbox: String,
    pub uid: u32,
    pub reason: Option<String>,
    pub size: i64,
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        Self::setup(conn, true)
    }

    /// Opens an existing database without the right to change it (`explain`, listings).
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open database {} read-only", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let store = Store { conn };
        let v = store.version()?;
        if v > MIGRATIONS.len() {
            bail!(
                "database schema {v} is newer than this ticketd ({})",
                MIGRATIONS.len()
            );
        }
        Ok(store)
    }

    pub fn in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?, false)
    }

    fn setup(conn: Connection, wal: bool) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        if wal {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    fn version(&self) -> Result<usize> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok(v as usize)
    }

    fn migrate(&mut self) -> Result<()> {
        let have = self.version()?;
        if have > MIGRATIONS.len() {
            bail!(
                "database schema {have} is newer than this ticketd ({})",
                MIGRATIONS.len()
            );
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(have) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(m)
                .with_context(|| format!("migration {} failed", i + 1))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<usize> {
        self.version()
    }

    // ----- mailboxes -------------------------------------------------------

    pub fn mailbox_state(&self, mailbox: &str) -> Result<Option<MailboxState>> {
        Ok(self
            .conn
            .query_row(
                "SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = ?1",
                [mailbox],
                |r| {
                    Ok(MailboxState {
                        uidvalidity: r.get::<_, i64>(0)? as u32,
                        last_uid: r.get::<_, i64>(1)? as u32,
                    })
                },
            )
            .optional()?)
    }

    /// Records a (new) UIDVALIDITY: the high-water mark starts again from zero.
    pub fn reset_mailbox(&self, mailbox: &str, uidvalidity: u32, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, updated_at) VALUES (?1, ?2, 0, ?3)
             ON CONFLICT(mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = 0, updated_at = excluded.updated_at",
            params![mailbox, uidvalidity as i64, ts(now)],
        )?;
        Ok(())
    }

    /// Which of `uids` already have a stored message, with its outcome.
    pub fn known_outcomes(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uids: &[u32],
    ) -> Result<Vec<(u32, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT outcome FROM messages WHERE mailbox = ?1 AND uidvalidity = ?2 AND uid = ?3",
        )?;
        let mut out = Vec::new();
        for &u in uids {
            if let Some(o) = stmt
                .query_row(params![mailbox, uidvalidity as i64, u as i64], |r| {
                    r.get::<_, String>(0)
                })
                .optional()?
            {
                out.push((u, o));
            }
        }
        Ok(out)
    }

    // ----- lookups for the decision ------------------------------------------

    pub fn ticket(&self, id: i64) -> Result<Option<TicketInfo>> {
        let row = self
            .conn
            .query_row(
                "SELECT t.id, t.subject, t.status, c.address, t.language
                 FROM tickets t JOIN contacts c ON c.id = t.requester_id WHERE t.id = ?1",
                [id],
                |r| {
                    Ok(TicketInfo {
                        id: r.get(0)?,
                        subject: r.get(1)?,
                        status: r.get(2)?,
                        requester: r.get(3)?,
                        language: r.get(4)?,
                        participants: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut t) = row else { return Ok(None) };
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT lower(sender) FROM messages WHERE ticket_id = ?1 AND sender IS NOT NULL",
        )?;
        t.participants = stmt
            .query_map([id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(t))
    }

    /// The ticket that any of `ids` (Message-IDs, nearest first) belongs to.
    pub fn ticket_by_message_ids(&self, ids: &[String]) -> Result<Option<TicketInfo>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT ticket_id FROM thread_ids WHERE message_id = ?1")?;
        for id in ids.iter().take(50) {
            if let Some(t) = stmt.query_row([id], |r| r.get::<_, i64>(0)).optional()? {
                return self.ticket(t);
            }
        }
        Ok(None)
    }

    pub fn contact(&self, address: &str) -> Result<Option<ContactInfo>> {
        Ok(self
            .conn
            .query_row(
                "SELECT address, language, undeliverable FROM contacts WHERE address = lower(?1)",
                [address],
                |r| {
                    Ok(ContactInfo {
                        address: r.get(0)?,
                        language: r.get(1)?,
                        undeliverable: r.get::<_, i64>(2)? != 0,
                    })
                },
            )
            .optional()?)
    }

    /// A stored message that is the same mail: same Message-ID from the same
    /// sender (the copy in another of our mailboxes), or the same bytes.
    pub fn duplicate(
        &self,
        message_id: Option<&str>,
        sender: Option<&str>,
        content_hash: &str,
    ) -> Result<Option<Duplicate>> {
        let map = |r: &rusqlite::Row<'_>| {
            Ok(Duplicate {
                row: r.get(0)?,
                mailbox: r.get(1)?,
                ticket_id: r.get(2)?,
            })
        };
        if let Some(id) = message_id {
            let d = self
                .conn
                .query_row(
                    "SELECT id, mailbox, ticket_id FROM messages
                     WHERE message_id = ?1 AND coalesce(lower(sender), '') = lower(?2) AND outcome != 'quarantined'
                     ORDER BY id LIMIT 1",
                    params![id, sender.unwrap_or("")],
                    map,
                )
                .optional()?;
            if d.is_some() {
                return Ok(d);
            }
        }
        Ok(self
            .conn
            .query_row(
                "SELECT id, mailbox, ticket_id FROM messages WHERE content_hash = ?1 AND outcome != 'quarantined'
                 ORDER BY id LIMIT 1",
                [content_hash],
                map,
            )
            .optional()?)
    }

    pub fn next_ticket_id(&self) -> Result<i64> {
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'tickets'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(seq.unwrap_or(0) + 1)
    }

    /// Everything the decision needs to know about a mail from the database.
    pub fn lookup(
        &self,
        tag: Option<i64>,
        referenced_ids: &[String],
        message_id: Option<&str>,
        sender: Option<&str>,
        content_hash: &str,
    ) -> Result<Lookup> {
        Ok(Lookup {
            tagged: match tag {
                Some(id) => self.ticket(id)?,
                None => None,
            },
            referenced: self.ticket_by_message_ids(referenced_ids)?,
            duplicate: self.duplicate(message_id, sender, content_hash)?,
            contact: match sender {
                Some(s) => self.contact(s)?,
                None => None,
            },
            next_ticket_id: self.next_ticket_id()?,
        })
    }

    // ----- the one write per message -------------------------------------------

    /// Writes every effect of one message in one transaction: the raw message,
    /// the contact, the ticket, its events, the outgoing mail `render` produces
    /// for the ticket, and the mailbox's high-water mark. `render` runs inside
    /// the transaction: if it fails, nothing is written.
    pub fn apply(
        &mut self,
        msg: &MessageRow<'_>,
        ticket: &TicketWrite,
        events: &[(&str, String)],
        now: DateTime<Utc>,
        render: impl FnOnce(Option<i64>) -> Result<Vec<NewMail>>,
    ) -> Result<Applied> {
        let tx = self.conn.transaction()?;
        let now_s = ts(now);
        let ticket_id = match ticket {
            TicketWrite::None => None,
            TicketWrite::New {
                subject,
                language,
                requester,
                requester_name,
            } => {
                let contact =
                    upsert_contact(&tx, requester, requester_name.as_deref(), language, &now_s)?;
                tx.execute(
                    "INSERT INTO tickets (subject, status, requester_id, mailbox, language, created_at, updated_at)
                     VALUES (?1, 'open', ?2, ?3, ?4, ?5, ?5)",
                    params![subject, contact, msg.origin.mailbox, language, now_s],
                )?;
                Some(tx.last_insert_rowid())
            }
            TicketWrite::Update { id } => {
                tx.execute(
                    "UPDATE tickets SET status = 'open', updated_at = ?2 WHERE id = ?1",
                    params![id, now_s],
                )?;
                Some(*id)
            }
            TicketWrite::Attach { id } => Some(*id),
        };
        tx.execute(
            "INSERT INTO messages (mailbox, uidvalidity, uid, message_id, sender, content_hash, arrival, size, raw,
                                   class, outcome, reason, ticket_id, stored_at, reply_text)
             VALUES (?1, ?2, ?3, ?4, lower(?5), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                msg.origin.mailbox,
                msg.origin.uidvalidity as i64,
                msg.origin.uid as i64,
                msg.message_id,
                msg.sender,
                msg.content_hash,
                ts(msg.arrival),
                msg.raw.len() as i64,
                msg.raw,
                msg.class,
                msg.outcome,
                msg.reason,
                ticket_id,
                now_s,
                msg.reply_text
            ],
        )?;
        let message_row = tx.last_insert_rowid();
        if let (Some(t), Some(mid)) = (ticket_id, msg.message_id)
            && msg.outcome == "processed"
        {
            tx.execute(
                "INSERT OR IGNORE INTO thread_ids (message_id, ticket_id, origin) VALUES (?1, ?2, 'in')",
                params![mid, t],
            )?;
        }
        if let Some(t) = ticket_id {
            for (kind, detail) in events {
                tx.execute(
                    "INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![t, now_s, kind, message_row, detail],
                )?;
            }
        }
        let mails = render(ticket_id)?;
        let mut queued = Vec::new();
        for m in &mails {
            queued.push(queue_mail(&tx, ticket_id, m, &now_s)?);
        }
        advance_mailbox(&tx, &msg.origin, &now_s)?;
        tx.commit()?;
        Ok(Applied {
            message_row,
            ticket_id,
            queued,
        })
    }

    /// Queues a mail outside any message (a notice about the outbox itself).
    pub fn queue(
        &mut self,
        ticket_id: Option<i64>,
        mail: &NewMail,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let id = queue_mail(&tx, ticket_id, mail, &ts(now))?;
        tx.commit()?;
        Ok(id)
    }

    // ----- outbox -------------------------------------------------------------

    fn outbox_rows(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(p, |r| {
                let rcpt: String = r.get(5)?;
                Ok(OutboxRow {
                    id: r.get(0)?,
                    ticket_id: r.get(1)?,
                    kind: r.get(2)?,
                    message_id: r.get(3)?,
                    mail_from: r.get(4)?,
                    rcpt_to: serde_json::from_str(&rcpt).unwrap_or_default(),
                    raw: r.get(6)?,
                    status: r.get(7)?,
                    attempts: r.get::<_, i64>(8)? as u32,
                    next_attempt_at: r.get(9)?,
                    last_error: r.get(10)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    const OUTBOX_COLS: &'static str = "id, ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, attempts, next_attempt_at, last_error";

    /// Queued mail whose time has come, oldest first.
    pub fn due_outbox(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxRow>> {
        self.outbox_rows(
            &format!(
                "SELECT {} FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
                Self::OUTBOX_COLS
            ),
            params![ts(now), limit as i64],
        )
    }

    /// When the next queued mail falls due, if any is queued.
    pub fn next_outbox_due(&self) -> Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self.conn.query_row(
            "SELECT min(next_attempt_at) FROM outbox WHERE status = 'queued'",
            [],
            |r| r.get(0),
        )?;
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
                [],
            ),
        }
    }

    /// Counts an attempt before it is made, so that a mail that crashes the
    /// sender still uses up its attempts.
    pub fn begin_attempt(&self, id: i64) -> Result<u32> {
        let n: i64 = self.conn.query_row(
            "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1 RETURNING attempts",
            [id],
            |r| r.get(0),
        )?;
        Ok(n as u32)
    }

    pub fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?2, last_error = NULL WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    pub fn mark_retry(&self, id: i64, at: DateTime<Utc>, error: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id, ts(at), error],
        )?;
        Ok(())
    }

    /// Records a permanent failure and, in the same transaction, the notice to staff.
    pub fn mark_failed(
        &mut self,
        id: i64,
        error: &str,
        notice: Option<&NewMail>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let now_s = ts(now);
        let ticket: Option<i64> = tx.query_row(
            "UPDATE outbox SET status = 'failed', last_error = ?2 WHERE id = ?1 RETURNING ticket_id",
            params![id, error],
            |r| r.get(0),
        )?;
        if let Some(t) = ticket {
            tx.execute(
                "INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES (?1, ?2, 'send_failed', NULL, ?3)",
                params![t, now_s, error],
            )?;
        }
        if let Some(n) = notice {
            queue_mail(&tx, ticket, n, &now_s)?;
        }
        tx.commit()?;
        Ok(())
    }

    // ----- listings -----------------------------------------------------------

    pub fn tickets(&self) -> Result<Vec<TicketSummary>> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, t.subject, t.status, c.address, t.mailbox, t.language,
                    (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id), t.created_at
             FROM tickets t JOIN contacts c ON c.id = t.requester_id ORDER BY t.id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TicketSummary {
                    id: r.get(0)?,
                    subject: r.get(1)?,
                    status: r.get(2)?,
                    requester: r.get(3)?,
                    mailbox: r.get(4)?,
                    language: r.get(5)?,
                    messages: r.get(6)?,
                    created_at: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn ticket_events(&self, ticket: i64) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, detail FROM ticket_events WHERE ticket_id = ?1 ORDER BY id")?;
        let rows = stmt
            .query_map([ticket], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn quarantined(&self) -> Result<Vec<QuarantineRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, mailbox, uid, reason, size FROM messages WHERE outcome = 'quarantined' ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(QuarantineRow {
                    row: r.get(0)?,
                    mailbox: r.get(1)?,
                    uid: r.get::<_, i64>(2)? as u32,
                    reason: r.get(3)?,
                    size: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// How many stored messages there are with each outcome.
    pub fn message_outcomes(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT outcome, count(*) FROM messages GROUP BY outcome ORDER BY outcome")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

fn upsert_contact(
    tx: &Transaction<'_>,
    address: &str,
    name: Option<&str>,
    language: &str,
    now: &str,
) -> Result<i64> {
    Ok(tx.query_row(
        "INSERT INTO contacts (address, name, language, created_at) VALUES (lower(?1), ?2, ?3, ?4)
         ON CONFLICT(address) DO UPDATE SET name = coalesce(excluded.name, contacts.name),
                                            language = coalesce(contacts.language, excluded.language)
         RETURNING id",
        params![address, name, language, now],
        |r| r.get(0),
    )?)
}

fn queue_mail(tx: &Transaction<'_>, ticket_id: Option<i64>, m: &NewMail, now: &str) -> Result<i64> {
    tx.execute(
        "INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, attempts, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?7)",
        params![
            ticket_id,
            m.kind,
            m.message_id,
            m.mail_from,
            serde_json::to_string(&m.rcpt_to)?,
            m.raw,
            now
        ],
    )?;
    let id = tx.last_insert_rowid();
    if let Some(t) = ticket_id {
        tx.execute(
            "INSERT OR IGNORE INTO thread_ids (message_id, ticket_id, origin) VALUES (?1, ?2, 'out')",
            params![m.message_id, t],
        )?;
        tx.execute(
            "INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES (?1, ?2, 'mail_queued', NULL, ?3)",
            params![t, now, format!("{} to {}", m.kind, m.rcpt_to.join(", "))],
        )?;
    }
    Ok(id)
}

fn advance_mailbox(tx: &Transaction<'_>, o: &Origin<'_>, now: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(mailbox) DO UPDATE SET last_uid = max(last_uid, excluded.last_uid), updated_at = excluded.updated_at
         WHERE mailbox_state.uidvalidity = excluded.uidvalidity",
        params![o.mailbox, o.uidvalidity as i64, o.uid as i64, now],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_ts("2026-03-02T10:00:00Z").unwrap()
    }

    fn row<'a>(uid: u32, raw: &'a [u8]) -> MessageRow<'a> {
        MessageRow {
            origin: Origin {
                mailbox: "support",
                uidvalidity: 7,
                uid,
            },
            raw,
            message_id: Some("m1@example.net"),
            sender: Some("Ann@Example.net"),
            content_hash: "h1",
            arrival: now(),
            class: "human",
            outcome: "processed",
            reason: None,
            reply_text: Some("new text"),
        }
    }

    #[test]
    fn migrations_run_once_and_events_are_append_only() {
        let mut s = Store::in_memory().unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        s.migrate().unwrap();
        let applied = s
            .apply(
                &row(1, b"x"),
                &TicketWrite::New {
                    subject: "Disk".into(),
                    language: "en".into(),
                    requester: "ann@example.net".into(),
                    requester_name: None,
                },
                &[("created", "new ticket".into())],
                now(),
                |_| Ok(vec![]),
            )
            .unwrap();
        let t = applied.ticket_id.unwrap();
        assert!(s.conn.execute("DELETE FROM ticket_events", []).is_err());
        assert!(
            s.conn
                .execute("UPDATE ticket_events SET kind = 'x'", [])
                .is_err()
        );
        assert_eq!(s.ticket_events(t).unwrap().len(), 1);
        // The whole message and its new text are both kept.
        let (raw, reply): (Vec<u8>, Option<String>) = s
            .conn
            .query_row(
                "SELECT raw, reply_text FROM messages WHERE ticket_id = ?1",
                [t],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(raw, b"x");
        assert_eq!(reply.as_deref(), Some("new text"));
    }

    #[test]
    fn a_failing_render_writes_nothing() {
        let mut s = Store::in_memory().unwrap();
        let r = s.apply(
            &row(1, b"x"),
            &TicketWrite::New {
                subject: "Disk".into(),
                language: "en".into(),
                requester: "ann@example.net".into(),
                requester_name: None,
            },
            &[],
            now(),
            |_| anyhow::bail!("template broke"),
        );
        assert!(r.is_err());
        assert!(s.tickets().unwrap().is_empty());
        assert!(s.mailbox_state("support").unwrap().is_none());
        assert!(s.known_outcomes("support", 7, &[1]).unwrap().is_empty());
    }

    #[test]
    fn duplicate_by_message_id_needs_the_same_sender() {
        let mut s = Store::in_memory().unwrap();
        s.apply(&row(1, b"x"), &TicketWrite::None, &[], now(), |_| {
            Ok(vec![])
        })
        .unwrap();
        assert!(
            s.duplicate(Some("m1@example.net"), Some("ann@example.net"), "zz")
                .unwrap()
                .is_some()
        );
        assert!(
            s.duplicate(Some("m1@example.net"), Some("eve@example.org"), "zz")
                .unwrap()
                .is_none()
        );
        assert!(s.duplicate(None, None, "h1").unwrap().is_some());
        assert_eq!(s.mailbox_state("support").unwrap().unwrap().last_uid, 1);
    }
}
