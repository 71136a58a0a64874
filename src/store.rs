//! SQLite storage: schema, migrations, and every SQL statement of the daemon.

use crate::contracts::{Contract, ContractMatch, MatchedBy, address_key, serial_key, tax_id_key};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;

/// Versioned migrations; `user_version` holds how many have run.
/// Prepared statements kept per connection: more than the store has, so none is parsed twice.
const STATEMENT_CACHE: usize = 128;

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
CREATE TABLE contracts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    serial           TEXT NOT NULL,
    serial_key       TEXT NOT NULL UNIQUE CHECK (serial_key <> ''),
    email            TEXT NOT NULL,
    company          TEXT NOT NULL,
    tax_id           TEXT NOT NULL,
    tax_key          TEXT NOT NULL,
    tier             TEXT NOT NULL,
    model            TEXT NOT NULL,
    purchased_on     TEXT NOT NULL,
    shipped_on       TEXT,
    warranty_until   TEXT,
    extended_until   TEXT,
    extended_on      TEXT,
    plans            TEXT NOT NULL,
    plans_on         TEXT,
    tickets_per_year INTEGER
) STRICT;
CREATE INDEX contracts_email ON contracts(email);
CREATE INDEX contracts_tax_key ON contracts(tax_key);
"#,
    r#"
-- Mail hygiene: why and since when a contact cannot be written to, and the
-- token buckets that limit automatic replies.
ALTER TABLE contacts ADD COLUMN undeliverable_since TEXT;
ALTER TABLE contacts ADD COLUMN undeliverable_reason TEXT;
CREATE TABLE reply_buckets (
    key        TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
"#,
    r#"
-- What the person wrote now (the reply text without quotes and signature);
-- the whole message stays in raw. NULL for messages stored before this column.
ALTER TABLE messages ADD COLUMN reply_text TEXT;
"#,
    // A ticket's participants are read for every tagged or threaded mail;
    // without this index that read scans every stored message.
    r#"
CREATE INDEX messages_ticket ON messages(ticket_id);
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
    pub created_at: DateTime<Utc>,
    /// Facts the ticket's earlier mail carried (from its `policy` events).
    pub facts: Vec<String>,
    /// Staff notes already recorded on the ticket (its `staff` events).
    pub staff_notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactInfo {
    pub address: String,
    pub language: Option<String>,
    pub undeliverable: bool,
    /// Why the contact is undeliverable (the bounce that said so).
    pub undeliverable_reason: Option<String>,
}

/// A message already stored under the same identity (Message-ID and sender, or content).
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub row: i64,
    pub mailbox: String,
    pub ticket_id: Option<i64>,
}

/// The stored level of one reply token bucket (`rcpt:<address>` or `ticket:<id>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketLevel {
    pub key: String,
    pub tokens: f64,
    pub updated_at: DateTime<Utc>,
}

/// Which bucket a new level is for.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketKey {
    Recipient(String),
    Ticket(i64),
    /// The ticket this message creates.
    NewTicket,
}

impl BucketKey {
    pub fn name(&self) -> Option<String> {
        match self {
            BucketKey::Recipient(a) => Some(format!("rcpt:{}", a.to_ascii_lowercase())),
            BucketKey::Ticket(t) => Some(format!("ticket:{t}")),
            BucketKey::NewTicket => None,
        }
    }
}

/// A contact that must not be written to any more.
#[derive(Debug, Clone, PartialEq)]
pub struct Undeliverable {
    pub address: String,
    pub reason: String,
}

/// Writes besides the ticket that one message causes.
#[derive(Debug, Clone, Default)]
pub struct SideEffects {
    /// New bucket levels, stamped with the apply time.
    pub buckets: Vec<(BucketKey, f64)>,
    pub undeliverable: Vec<Undeliverable>,
}

/// What the database knows that bears on one mail.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub tagged: Option<TicketInfo>,
    pub referenced: Option<TicketInfo>,
    pub duplicate: Option<Duplicate>,
    pub contact: Option<ContactInfo>,
    pub next_ticket_id: i64,
    /// The sender's contract, if the entitlements know one.
    pub contract: Option<crate::contracts::ContractMatch>,
    /// Uses of each pack quota in its current period.
    pub quota_used: std::collections::BTreeMap<String, u32>,
    /// The ticket of our mail that a bounce returns (by its original Message-ID).
    pub bounced: Option<TicketInfo>,
    /// Reply buckets of the sender and of the tickets the mail may belong to.
    pub buckets: Vec<BucketLevel>,
    /// The recipients (lower-cased) of our mail that a bounce returns.
    pub bounced_recipients: Vec<String>,
    /// The stored contacts among a bounce's failed recipients and those of
    /// the mail it returns.
    pub bounce_contacts: Vec<ContactInfo>,
}

impl Lookup {
    pub fn bucket(&self, key: &str) -> Option<&BucketLevel> {
        self.buckets.iter().find(|b| b.key == key)
    }
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
        status: &'static str,
        language: String,
        requester: String,
        requester_name: Option<String>,
    },
    /// A person wrote on the ticket: it is open again, or waits on the customer.
    Update {
        id: i64,
        status: &'static str,
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

/// What a contracts import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportStats {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
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
        // The savepoint per message journals the pages it changes; in memory
        // that costs a copy, in a temporary file a write each.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Every statement of the intake path stays prepared (the default keeps 16).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // A plan per statement, not per bound value: with STAT4 compiled in,
        // SQLite otherwise prepares some lookups again on every execution.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    fn version(&self) -> Result<usize> {
        let v: i64 = self
            .conn
            .prepare_cached("PRAGMA user_version")?
            .query_row([], |r| r.get(0))?;
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

    // ----- contracts -------------------------------------------------------

    /// Imports contracts in one transaction: a serial not yet known is inserted, a
    /// known one (by [`serial_key`]) is updated in place when anything differs.
    /// Contracts absent from `contracts` stay. On any error (an empty serial, the same
    /// serial twice) nothing is written.
    pub fn import_contracts(&mut self, contracts: &[Contract]) -> Result<ImportStats> {
        let tx = self.conn.transaction()?;
        let mut stats = ImportStats::default();
        let mut seen = std::collections::HashSet::new();
        for (i, c) in contracts.iter().enumerate() {
            let key = serial_key(&c.serial);
            if key.is_empty() {
                bail!("contract {}: empty serial", i + 1);
            }
            if !seen.insert(key.clone()) {
                bail!("contract {}: serial {} appears twice", i + 1, c.serial);
            }
            let old: Option<Contract> = tx
                .query_row(
                    &format!("SELECT {CONTRACT_COLUMNS} FROM contracts WHERE serial_key = ?1"),
                    [&key],
                    contract_row,
                )
                .optional()
                .with_context(|| format!("cannot read contract {}", c.serial))?;
            let c = &Contract {
                email: address_key(&c.email),
                ..c.clone()
            };
            let values = params![
                c.serial,
                c.email,
                c.company,
                c.tax_id,
                c.tier,
                c.model,
                date_text(Some(c.purchased_on)),
                date_text(c.shipped_on),
                date_text(c.warranty_until),
                date_text(c.extended_until),
                date_text(c.extended_on),
                serde_json::to_string(&c.plans)?,
                date_text(c.plans_on),
                c.tickets_per_year.map(i64::from),
                key,
                tax_id_key(&c.tax_id),
            ];
            match old {
                None => {
                    tx.execute(
                        &format!(
                            "INSERT INTO contracts ({CONTRACT_COLUMNS}, serial_key, tax_key)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                        ),
                        values,
                    )?;
                    stats.inserted += 1;
                }
                Some(old) if old == *c => stats.unchanged += 1,
                Some(_) => {
                    tx.prepare_cached("UPDATE contracts SET serial = ?1, email = ?2, company = ?3, tax_id = ?4, tier = ?5,
                             model = ?6, purchased_on = ?7, shipped_on = ?8, warranty_until = ?9,
                             extended_until = ?10, extended_on = ?11, plans = ?12, plans_on = ?13,
                             tickets_per_year = ?14, tax_key = ?16
                         WHERE serial_key = ?15")?.execute(
                        values,
                    )?;
                    stats.updated += 1;
                }
            }
        }
        tx.commit()?;
        Ok(stats)
    }

    /// The contract of a mail, found exactly as `ContractBook::find` finds it: by the
    /// first of `serials` that has one, else by the sender's address, else by the first
    /// of `tax_ids` that has one; among several, the latest purchase, then the smallest
    /// serial key (`contracts::preferred`).
    pub fn find_contract(
        &self,
        serials: &[String],
        sender: &str,
        tax_ids: &[String],
    ) -> Result<Option<ContractMatch>> {
        let one = |sql: &str, key: &str| -> Result<Option<Contract>> {
            Ok(self
                .conn
                .prepare_cached(&format!(
                    "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE {sql}"
                ))?
                .query_row([key], contract_row)
                .optional()?)
        };
        let hit = |c: Contract, by| Ok(Some(ContractMatch { contract: c, by }));
        for s in serials {
            let key = serial_key(s);
            if key.is_empty() {
                continue;
            }
            if let Some(c) = one("serial_key = ?1", &key)? {
                return hit(c, MatchedBy::Serial);
            }
        }
        let sender = address_key(sender);
        if !sender.is_empty()
            && let Some(c) = one(
                "email = ?1 ORDER BY purchased_on DESC, serial_key ASC LIMIT 1",
                &sender,
            )?
        {
            return hit(c, MatchedBy::Email);
        }
        for t in tax_ids {
            let key = tax_id_key(t);
            if key.is_empty() {
                continue;
            }
            if let Some(c) = one(
                "tax_key = ?1 ORDER BY purchased_on DESC, serial_key ASC LIMIT 1",
                &key,
            )? {
                return hit(c, MatchedBy::TaxId);
            }
        }
        Ok(None)
    }

    pub fn contract_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT count(*) FROM contracts")?
            .query_row([], |r| r.get(0))?)
    }

    /// Fails with a clear message when the schema is older than this ticketd
    /// (a read-only store cannot migrate it).
    pub fn require_current(&self) -> Result<()> {
        let v = self.version()?;
        if v < MIGRATIONS.len() {
            bail!(
                "database schema {v} is older than this ticketd ({}): run `ticketd run --once` to bring it up to date",
                MIGRATIONS.len()
            );
        }
        Ok(())
    }

    // ----- mailboxes -------------------------------------------------------

    pub fn mailbox_state(&self, mailbox: &str) -> Result<Option<MailboxState>> {
        Ok(self
            .conn
            .prepare_cached("SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = ?1")?
            .query_row([mailbox], |r| {
                Ok(MailboxState {
                    uidvalidity: r.get::<_, i64>(0)? as u32,
                    last_uid: r.get::<_, i64>(1)? as u32,
                })
            })
            .optional()?)
    }

    /// Records a (new) UIDVALIDITY: the high-water mark starts again from zero.
    pub fn reset_mailbox(&self, mailbox: &str, uidvalidity: u32, now: DateTime<Utc>) -> Result<()> {
        self.conn.prepare_cached("INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, updated_at) VALUES (?1, ?2, 0, ?3)
             ON CONFLICT(mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = 0, updated_at = excluded.updated_at")?.execute(
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
            .prepare_cached(
                "SELECT t.id, t.subject, t.status, c.address, t.language, t.created_at
                 FROM tickets t JOIN contacts c ON c.id = t.requester_id WHERE t.id = ?1",
            )?
            .query_row([id], |r| {
                Ok((
                    TicketInfo {
                        id: r.get(0)?,
                        subject: r.get(1)?,
                        status: r.get(2)?,
                        requester: r.get(3)?,
                        language: r.get(4)?,
                        participants: Vec::new(),
                        created_at: DateTime::<Utc>::MIN_UTC,
                        facts: Vec::new(),
                        staff_notes: Vec::new(),
                    },
                    r.get::<_, String>(5)?,
                ))
            })
            .optional()?;
        let Some((mut t, created)) = row else {
            return Ok(None);
        };
        t.created_at = parse_ts(&created)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, detail FROM ticket_events WHERE ticket_id = ?1 AND kind IN ('policy', 'staff')",
        )?;
        for row in stmt.query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (kind, detail) = row?;
            if kind == "staff" {
                t.staff_notes.push(detail);
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
            for f in v["facts"].as_array().into_iter().flatten() {
                if let Some(f) = f.as_str()
                    && !t.facts.iter().any(|x| x == f)
                {
                    t.facts.push(f.to_string());
                }
            }
        }
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
            .prepare_cached("SELECT address, language, undeliverable, undeliverable_reason FROM contacts WHERE address = lower(?1)")?
.query_row(
                [address],
                |r| {
                    Ok(ContactInfo {
                        address: r.get(0)?,
                        language: r.get(1)?,
                        undeliverable: r.get::<_, i64>(2)? != 0,
                        undeliverable_reason: r.get(3)?,
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
            let d = self.conn.prepare_cached("SELECT id, mailbox, ticket_id FROM messages
                     WHERE message_id = ?1 AND coalesce(lower(sender), '') = lower(?2) AND outcome != 'quarantined'
                     ORDER BY id LIMIT 1")?.query_row(params![id, sender.unwrap_or("")],
                    map,
                )
                .optional()?;
            if d.is_some() {
                return Ok(d);
            }
        }
        Ok(self.conn.prepare_cached("SELECT id, mailbox, ticket_id FROM messages WHERE content_hash = ?1 AND outcome != 'quarantined'
                 ORDER BY id LIMIT 1")?.query_row([content_hash],
                map,
            )
            .optional()?)
    }

    pub fn next_ticket_id(&self) -> Result<i64> {
        let seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'tickets'")?
            .query_row([], |r| r.get(0))
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
        bounce: Option<&crate::dsn::Bounce>,
    ) -> Result<Lookup> {
        let bounced_id = bounce.and_then(|b| b.original_message_id.as_deref());
        let tagged = match tag {
            Some(id) => self.ticket(id)?,
            None => None,
        };
        let referenced = self.ticket_by_message_ids(referenced_ids)?;
        let bounced = match bounced_id {
            Some(id) => self.ticket_by_message_ids(&[id.to_string()])?,
            None => None,
        };
        let bounced_rcpt: Vec<String> = match bounced_id {
            Some(id) => self
                .conn
                .prepare_cached("SELECT rcpt_to FROM outbox WHERE message_id = ?1")?
                .query_row([id], |r| r.get::<_, String>(0))
                .optional()?
                .map(|j| serde_json::from_str::<Vec<String>>(&j).unwrap_or_default())
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
            None => Vec::new(),
        };
        let mut keys: Vec<String> = Vec::new();
        if let Some(s) = sender {
            keys.push(format!("rcpt:{}", s.to_ascii_lowercase()));
        }
        for t in [&tagged, &referenced].into_iter().flatten() {
            keys.push(format!("ticket:{}", t.id));
        }
        Ok(Lookup {
            tagged,
            referenced,
            duplicate: self.duplicate(message_id, sender, content_hash)?,
            contact: match sender {
                Some(s) => self.contact(s)?,
                None => None,
            },
            next_ticket_id: self.next_ticket_id()?,
            bounced,
            buckets: self.buckets(&keys)?,
            bounced_recipients: bounced_rcpt.clone(),
            bounce_contacts: match bounce {
                Some(b) => b
                    .recipients
                    .iter()
                    .chain(bounced_rcpt.iter())
                    .take(60)
                    .map(|r| self.contact(r))
                    .filter_map(Result::transpose)
                    .collect::<Result<_>>()?,
                None => Vec::new(),
            },
            contract: None,
            quota_used: Default::default(),
        })
    }

    /// How many tickets of contract `serial` used quota `quota` in the period starting `since`.
    pub fn quota_used(&self, quota: &str, serial: &str, since: NaiveDate) -> Result<u32> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM ticket_events WHERE kind = 'quota'
               AND json_extract(detail, '$.id') = ?1
               AND json_extract(detail, '$.contract') = ?2
               AND json_extract(detail, '$.period_start') = ?3
               AND json_extract(detail, '$.charged') = 1",
            )?
            .query_row(params![quota, serial, since.to_string()], |r| r.get(0))?;
        Ok(n as u32)
    }

    /// The stored levels of the reply buckets named `keys` (absent ones are full).
    pub fn buckets(&self, keys: &[String]) -> Result<Vec<BucketLevel>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tokens, updated_at FROM reply_buckets WHERE key = ?1")?;
        let mut out = Vec::new();
        for k in keys {
            if let Some((tokens, at)) = stmt
                .query_row([k], |r| Ok((r.get::<_, f64>(0)?, r.get::<_, String>(1)?)))
                .optional()?
            {
                out.push(BucketLevel {
                    key: k.clone(),
                    tokens,
                    updated_at: parse_ts(&at)?,
                });
            }
        }
        Ok(out)
    }

    // ----- the one write per message -------------------------------------------

    /// Runs `f` in one transaction: every `apply` inside it is a savepoint of
    /// that transaction, so a message that fails leaves the others standing,
    /// and all of them are committed together (one sync) when `f` returns
    /// `Ok`. When `f` fails, nothing of it is written.
    pub fn in_batch<T>(&mut self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(v) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(v),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(e.into())
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Writes every effect of one message atomically: the raw message,
    /// the contact, the ticket, its events, the outgoing mail `render` produces
    /// for the ticket, and the mailbox's high-water mark. `render` runs inside
    /// the savepoint: if it fails, nothing is written. Outside `in_batch` the
    /// savepoint is its own transaction, committed on return; inside, it
    /// becomes durable when the batch commits.
    pub fn apply(
        &mut self,
        msg: &MessageRow<'_>,
        ticket: &TicketWrite,
        events: &[(&str, String)],
        effects: &SideEffects,
        now: DateTime<Utc>,
        render: impl FnOnce(Option<i64>) -> Result<Vec<NewMail>>,
    ) -> Result<Applied> {
        let tx = self.conn.savepoint()?;
        let now_s = ts(now);
        let ticket_id = match ticket {
            TicketWrite::None => None,
            TicketWrite::New {
                subject,
                status,
                language,
                requester,
                requester_name,
            } => {
                let contact =
                    upsert_contact(&tx, requester, requester_name.as_deref(), language, &now_s)?;
                tx.prepare_cached("INSERT INTO tickets (subject, status, requester_id, mailbox, language, created_at, updated_at)
                     VALUES (?1, ?6, ?2, ?3, ?4, ?5, ?5)")?.execute(
                    params![subject, contact, msg.origin.mailbox, language, now_s, status],
                )?;
                Some(tx.last_insert_rowid())
            }
            TicketWrite::Update { id, status } => {
                tx.prepare_cached("UPDATE tickets SET status = ?3, updated_at = ?2 WHERE id = ?1")?
                    .execute(params![id, now_s, status])?;
                Some(*id)
            }
            TicketWrite::Attach { id } => Some(*id),
        };
        tx.prepare_cached("INSERT INTO messages (mailbox, uidvalidity, uid, message_id, sender, content_hash, arrival, size, raw,
                                   class, outcome, reason, ticket_id, stored_at, reply_text)
             VALUES (?1, ?2, ?3, ?4, lower(?5), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)")?.execute(
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
            tx.prepare_cached("INSERT OR IGNORE INTO thread_ids (message_id, ticket_id, origin) VALUES (?1, ?2, 'in')")?.execute(params![mid, t],
            )?;
        }
        if let Some(t) = ticket_id {
            for (kind, detail) in events {
                tx.prepare_cached("INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![t, now_s, kind, message_row, detail],
                )?;
            }
        }
        for u in &effects.undeliverable {
            mark_undeliverable(&tx, u, &now_s)?;
        }
        for (key, tokens) in &effects.buckets {
            let name = match (key.name(), ticket_id) {
                (Some(n), _) => n,
                (None, Some(t)) => BucketKey::Ticket(t).name().unwrap_or_default(),
                (None, None) => continue,
            };
            tx.prepare_cached("INSERT INTO reply_buckets (key, tokens, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at")?.execute(
                params![name, tokens, now_s],
            )?;
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
        let ids = self
            .conn
            .prepare_cached(
                "SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![ts(now), (limit + except.len()) as i64], |r| {
                r.get::<_, i64>(0)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
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
            .query_row([], |r| r.get(0))?;
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

    /// Counts an attempt for each of `ids` before any of them is made (one
    /// savepoint: its own transaction, or part of an `in_batch`), so that a
    /// mail that crashes the sender still uses up its attempts. Returns the
    /// new attempt count of each, in order.
    pub fn begin_attempts(&mut self, ids: &[i64]) -> Result<Vec<u32>> {
        let tx = self.conn.savepoint()?;
        let mut out = Vec::with_capacity(ids.len());
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1 RETURNING attempts",
            )?;
            for id in ids {
                let n: i64 = stmt.query_row([id], |r| r.get(0))?;
                out.push(n as u32);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records in one savepoint the mail the server accepted (`sent`) and the
    /// mail to try again at a later time (`retry`: id, when, why).
    pub fn record_sends(
        &mut self,
        sent: &[i64],
        retry: &[(i64, DateTime<Utc>, String)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.savepoint()?;
        let now_s = ts(now);
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET status = 'sent', sent_at = ?2, last_error = NULL WHERE id = ?1",
            )?;
            for id in sent {
                stmt.execute(params![id, now_s])?;
            }
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
            )?;
            for (id, at, error) in retry {
                stmt.execute(params![id, ts(*at), error])?;
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
            tx.prepare_cached("INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES (?1, ?2, 'send_skipped', NULL, ?3)")?.execute(
                params![t, ts(now), error],
            )?;
        }
        tx.commit()?;
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
        let tx = self.conn.savepoint()?;
        let now_s = ts(now);
        let ticket: Option<i64> = tx.prepare_cached("UPDATE outbox SET status = 'failed', last_error = ?2 WHERE id = ?1 RETURNING ticket_id")?.query_row(
            params![id, error],
            |r| r.get(0),
        )?;
        if let Some(t) = ticket {
            tx.prepare_cached("INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES (?1, ?2, 'send_failed', NULL, ?3)")?.execute(
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

    /// How many outbox rows there are in each status.
    pub fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, count(*) FROM outbox GROUP BY status ORDER BY status")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
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

const CONTRACT_COLUMNS: &str = "serial, email, company, tax_id, tier, model, purchased_on, shipped_on, \
     warranty_until, extended_until, extended_on, plans, plans_on, tickets_per_year";

fn date_text(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

fn date_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<NaiveDate>> {
    let v: Option<String> = r.get(i)?;
    v.map(|s| {
        NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

/// A `contracts` row selected with [`CONTRACT_COLUMNS`].
fn contract_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Contract> {
    let plans: String = r.get(11)?;
    let plans = serde_json::from_str(&plans).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(11, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let tickets: Option<i64> = r.get(13)?;
    Ok(Contract {
        serial: r.get(0)?,
        email: r.get(1)?,
        company: r.get(2)?,
        tax_id: r.get(3)?,
        tier: r.get(4)?,
        model: r.get(5)?,
        purchased_on: date_column(r, 6)?.ok_or(rusqlite::Error::InvalidColumnType(
            6,
            "purchased_on".into(),
            rusqlite::types::Type::Null,
        ))?,
        shipped_on: date_column(r, 7)?,
        warranty_until: date_column(r, 8)?,
        extended_until: date_column(r, 9)?,
        extended_on: date_column(r, 10)?,
        plans,
        plans_on: date_column(r, 12)?,
        tickets_per_year: tickets.and_then(|n| u32::try_from(n).ok()),
    })
}

fn upsert_contact(
    tx: &Connection,
    address: &str,
    name: Option<&str>,
    language: &str,
    now: &str,
) -> Result<i64> {
    Ok(tx.prepare_cached("INSERT INTO contacts (address, name, language, created_at) VALUES (lower(?1), ?2, ?3, ?4)
         ON CONFLICT(address) DO UPDATE SET name = coalesce(excluded.name, contacts.name),
                                            language = coalesce(contacts.language, excluded.language)
         RETURNING id")?.query_row(params![address, name, language, now],
        |r| r.get(0),
    )?)
}

fn queue_mail(tx: &Connection, ticket_id: Option<i64>, m: &NewMail, now: &str) -> Result<i64> {
    tx.prepare_cached("INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, attempts, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?7)")?.execute(params![
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
        tx.prepare_cached("INSERT OR IGNORE INTO thread_ids (message_id, ticket_id, origin) VALUES (?1, ?2, 'out')")?.execute(params![m.message_id, t],
        )?;
        tx.prepare_cached("INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES (?1, ?2, 'mail_queued', NULL, ?3)")?.execute(params![t, now, format!("{} to {}", m.kind, m.rcpt_to.join(", "))],
        )?;
    }
    Ok(id)
}

/// Marks a contact undeliverable and fails the mail still queued to it alone,
/// with an event on each ticket concerned.
fn mark_undeliverable(tx: &Connection, u: &Undeliverable, now: &str) -> Result<()> {
    tx.prepare_cached("INSERT INTO contacts (address, created_at, undeliverable, undeliverable_since, undeliverable_reason)
         VALUES (lower(?1), ?2, 1, ?2, ?3)
         ON CONFLICT(address) DO UPDATE SET undeliverable = 1,
             undeliverable_since = coalesce(contacts.undeliverable_since, excluded.undeliverable_since),
             undeliverable_reason = excluded.undeliverable_reason")?.execute(
        params![u.address, now, u.reason],
    )?;
    let only_to = serde_json::to_string(&[u.address.to_ascii_lowercase()])?;
    let error = format!("not sent: {} is undeliverable ({})", u.address, u.reason);
    let mut stmt = tx.prepare_cached(
        "UPDATE outbox SET status = 'failed', last_error = ?2
         WHERE status = 'queued' AND lower(rcpt_to) = ?1 RETURNING ticket_id",
    )?;
    let tickets: Vec<Option<i64>> = stmt
        .query_map(params![only_to, error], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for t in tickets.into_iter().flatten() {
        tx.prepare_cached("INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES (?1, ?2, 'send_skipped', NULL, ?3)")?.execute(
            params![t, now, error],
        )?;
    }
    Ok(())
}

fn advance_mailbox(tx: &Connection, o: &Origin<'_>, now: &str) -> Result<()> {
    tx.prepare_cached("INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(mailbox) DO UPDATE SET last_uid = max(last_uid, excluded.last_uid), updated_at = excluded.updated_at
         WHERE mailbox_state.uidvalidity = excluded.uidvalidity")?.execute(params![o.mailbox, o.uidvalidity as i64, o.uid as i64, now],
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
                    status: "open",
                    subject: "Disk".into(),
                    language: "en".into(),
                    requester: "ann@example.net".into(),
                    requester_name: None,
                },
                &[("created", "new ticket".into())],
                &SideEffects::default(),
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
                status: "open",
                subject: "Disk".into(),
                language: "en".into(),
                requester: "ann@example.net".into(),
                requester_name: None,
            },
            &[],
            &SideEffects::default(),
            now(),
            |_| anyhow::bail!("template broke"),
        );
        assert!(r.is_err());
        assert!(s.tickets().unwrap().is_empty());
        assert!(s.mailbox_state("support").unwrap().is_none());
        assert!(s.known_outcomes("support", 7, &[1]).unwrap().is_empty());
    }

    fn new_ticket(who: &str) -> TicketWrite {
        TicketWrite::New {
            status: "open",
            subject: "Disk".into(),
            language: "en".into(),
            requester: who.into(),
            requester_name: None,
        }
    }

    fn reply(id: &str) -> NewMail {
        NewMail {
            kind: "ack".into(),
            message_id: id.into(),
            mail_from: "support@vendor.test".into(),
            rcpt_to: vec!["ann@example.net".into()],
            raw: b"reply".to_vec(),
        }
    }

    #[test]
    fn a_message_that_fails_in_a_batch_is_rolled_back_alone_and_the_rest_commit() {
        let mut s = Store::in_memory().unwrap();
        let results = s
            .in_batch(|st| {
                let a = st.apply(
                    &row(1, b"one"),
                    &new_ticket("ann@example.net"),
                    &[("created", "a".into())],
                    &SideEffects::default(),
                    now(),
                    |_| Ok(vec![reply("r1@t")]),
                );
                // Fails after its ticket, message and event rows were written.
                let b = st.apply(
                    &row(2, b"two"),
                    &new_ticket("bob@example.net"),
                    &[("created", "b".into())],
                    &SideEffects::default(),
                    now(),
                    |_| anyhow::bail!("template broke"),
                );
                let c = st.apply(
                    &row(3, b"three"),
                    &new_ticket("cy@example.net"),
                    &[("created", "c".into())],
                    &SideEffects::default(),
                    now(),
                    |_| Ok(vec![reply("r3@t")]),
                );
                Ok((a.is_ok(), b.is_ok(), c.is_ok()))
            })
            .unwrap();
        assert_eq!(results, (true, false, true));
        let known: Vec<u32> = s
            .known_outcomes("support", 7, &[1, 2, 3])
            .unwrap()
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        assert_eq!(known, vec![1, 3], "the failed message left nothing behind");
        let requesters: Vec<String> = s
            .tickets()
            .unwrap()
            .into_iter()
            .map(|t| t.requester)
            .collect();
        assert_eq!(requesters, vec!["ann@example.net", "cy@example.net"]);
        assert_eq!(s.outbox(None).unwrap().len(), 2);
        assert_eq!(s.mailbox_state("support").unwrap().unwrap().last_uid, 3);
        // The failed message can be stored afterwards (as the quarantine path does).
        s.apply(
            &row(2, b"two"),
            &TicketWrite::None,
            &[],
            &SideEffects::default(),
            now(),
            |_| Ok(vec![]),
        )
        .unwrap();
        assert_eq!(s.known_outcomes("support", 7, &[2]).unwrap().len(), 1);
    }

    #[test]
    fn a_batch_that_fails_writes_nothing_of_any_message() {
        let mut s = Store::in_memory().unwrap();
        let r: Result<()> = s.in_batch(|st| {
            st.apply(
                &row(1, b"one"),
                &new_ticket("ann@example.net"),
                &[],
                &SideEffects::default(),
                now(),
                |_| Ok(vec![reply("r1@t")]),
            )?;
            anyhow::bail!("database went away")
        });
        assert!(r.is_err());
        assert!(s.tickets().unwrap().is_empty());
        assert!(s.outbox(None).unwrap().is_empty());
        assert!(s.mailbox_state("support").unwrap().is_none());
        // The store is usable again: the transaction was closed.
        s.in_batch(|st| {
            st.apply(
                &row(1, b"one"),
                &TicketWrite::None,
                &[],
                &SideEffects::default(),
                now(),
                |_| Ok(vec![]),
            )
        })
        .unwrap();
        assert_eq!(s.known_outcomes("support", 7, &[1]).unwrap().len(), 1);
    }

    #[test]
    fn attempts_are_counted_before_sending_and_results_recorded_together() {
        let mut s = Store::in_memory().unwrap();
        let a = s.queue(None, &reply("a@t"), now()).unwrap();
        let b = s.queue(None, &reply("b@t"), now()).unwrap();
        assert_eq!(s.begin_attempts(&[a, b]).unwrap(), vec![1, 1]);
        let later = now() + chrono::Duration::seconds(30);
        s.record_sends(&[a], &[(b, later, "451 try later".into())], now())
            .unwrap();
        let rows = s.outbox(None).unwrap();
        assert_eq!(rows[0].status, "sent");
        assert_eq!(rows[1].status, "queued");
        assert_eq!(rows[1].last_error.as_deref(), Some("451 try later"));
        assert!(s.due_outbox(now(), 10).unwrap().is_empty(), "b waits");
        assert_eq!(s.due_outbox(later, 10).unwrap().len(), 1);
        assert_eq!(s.begin_attempts(&[b]).unwrap(), vec![2]);
    }

    #[test]
    fn an_outbox_step_records_and_claims_in_one_transaction_skipping_mail_in_flight() {
        let mut s = Store::in_memory().unwrap();
        let a = s.queue(None, &reply("a@t"), now()).unwrap();
        let b = s.queue(None, &reply("b@t"), now()).unwrap();
        let c = s.queue(None, &reply("c@t"), now()).unwrap();
        // `a` is in flight: the next claim passes over it without reading it.
        let due = s.due_outbox_except(now(), 1, &[a]).unwrap();
        assert_eq!(due.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b]);
        // A step that fails writes nothing, the outcomes of the last chunk
        // included: they are written again by the next step.
        let r: Result<()> = s.in_batch(|st| {
            st.record_sends(&[a], &[], now())?;
            st.begin_attempts(&[b])?;
            Err(anyhow::anyhow!("disk full"))
        });
        assert!(r.is_err());
        let rows = s.outbox(None).unwrap();
        assert!(rows.iter().all(|r| r.status == "queued" && r.attempts == 0));
        // A step that works writes both.
        s.in_batch(|st| {
            st.record_sends(&[a], &[], now())?;
            st.mark_failed(c, "550 no such user", None, now())?;
            st.begin_attempts(&[b]).map(|_| ())
        })
        .unwrap();
        let rows = s.outbox(None).unwrap();
        let status: Vec<(&str, u32)> = rows
            .iter()
            .map(|r| (r.status.as_str(), r.attempts))
            .collect();
        assert_eq!(status, vec![("sent", 0), ("queued", 1), ("failed", 0)]);
    }

    #[test]
    fn duplicate_by_message_id_needs_the_same_sender() {
        let mut s = Store::in_memory().unwrap();
        s.apply(
            &row(1, b"x"),
            &TicketWrite::None,
            &[],
            &SideEffects::default(),
            now(),
            |_| Ok(vec![]),
        )
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

    fn contract(serial: &str, email: &str, tier: &str) -> Contract {
        Contract {
            serial: serial.into(),
            email: email.into(),
            company: "Acme".into(),
            tax_id: "ES B12345678".into(),
            tier: tier.into(),
            model: "TS-453D".into(),
            purchased_on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            plans: vec!["onsite".into()],
            ..Contract::default()
        }
    }

    #[test]
    fn reimporting_contracts_updates_in_place() {
        let mut s = Store::in_memory().unwrap();
        let first = vec![
            contract("Q23A0001", "ann@acme.test", "gold"),
            contract("Q23A0002", "bob@acme.test", "silver"),
        ];
        let st = s.import_contracts(&first).unwrap();
        assert_eq!((st.inserted, st.updated, st.unchanged), (2, 0, 0));
        let second = vec![
            contract("q23a0001", "ANN@acme.test", "silver"),
            contract("Q23A0002", "bob@acme.test", "silver"),
            contract("Q23A0003", "cy@acme.test", "bronze"),
        ];
        let st = s.import_contracts(&second).unwrap();
        assert_eq!((st.inserted, st.updated, st.unchanged), (1, 1, 1));
        assert_eq!(s.contract_count().unwrap(), 3);
        let m = s
            .find_contract(&["Q23A0001".into()], "", &[])
            .unwrap()
            .unwrap();
        assert_eq!(m.by, MatchedBy::Serial);
        assert_eq!(
            (m.contract.serial.as_str(), m.contract.tier.as_str()),
            ("q23a0001", "silver")
        );
        assert_eq!(m.contract.email, "ann@acme.test");
        assert_eq!(m.contract.plans, vec!["onsite"]);
        // The same file again changes nothing.
        let st = s.import_contracts(&second).unwrap();
        assert_eq!((st.inserted, st.updated, st.unchanged), (0, 0, 3));
    }

    #[test]
    fn a_failed_contract_import_leaves_the_table_unchanged() {
        let mut s = Store::in_memory().unwrap();
        s.import_contracts(&[contract("Q23A0001", "ann@acme.test", "gold")])
            .unwrap();
        // The first two rows would insert and update; the third repeats a serial.
        let bad = vec![
            contract("Q23A0009", "zed@acme.test", "gold"),
            contract("Q23A0001", "ann@acme.test", "bronze"),
            contract("Q23A0009", "zed@acme.test", "gold"),
        ];
        let err = s.import_contracts(&bad).unwrap_err();
        assert!(format!("{err:#}").contains("appears twice"), "{err:#}");
        assert_eq!(s.contract_count().unwrap(), 1);
        let m = s.find_contract(&[], "ann@acme.test", &[]).unwrap().unwrap();
        assert_eq!(m.contract.tier, "gold");
        assert!(
            s.import_contracts(&[contract(" ", "x@y.z", "gold")])
                .is_err()
        );
        assert_eq!(s.contract_count().unwrap(), 1);
    }

    #[test]
    fn find_contract_matches_as_the_contract_book_does() {
        use crate::contracts::ContractBook;
        let mut list = vec![
            contract("Q23A0001", "ann@acme.test", "gold"),
            contract("Q23A0002", "ann@acme.test", "gold"),
            contract("AV7-000123", "", "silver"),
        ];
        list[1].purchased_on = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        list[2].tax_id = "B87654321".into();
        let mut s = Store::in_memory().unwrap();
        s.import_contracts(&list).unwrap();
        let book = ContractBook::new(list);
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let queries = [
            (v(&["zz", "q23a0001"]), "ann@acme.test", v(&[])),
            (v(&["zz"]), "Ann <ANN@Acme.test>", v(&["B87654321"])),
            (v(&[]), "nobody@x.test", v(&["nope", "ES-B87654321"])),
            (v(&[]), "nobody@x.test", v(&["ES B12345678"])),
            (v(&["nothing"]), "", v(&[""])),
        ];
        let mut found = 0;
        for (serials, sender, tax) in &queries {
            let a = book.find(serials, sender, tax);
            let b = s.find_contract(serials, sender, tax).unwrap();
            assert_eq!(a, b, "{serials:?} {sender} {tax:?}");
            found += usize::from(a.is_some());
        }
        assert_eq!(found, 4);
    }

    #[test]
    fn marking_a_contact_undeliverable_fails_its_queued_mail_and_buckets_are_kept() {
        let mut s = Store::in_memory().unwrap();
        let mail = |id: &str| NewMail {
            kind: "ack_new".into(),
            message_id: id.into(),
            mail_from: "support@vendor.test".into(),
            rcpt_to: vec!["Ann@example.net".into()],
            raw: b"x".to_vec(),
        };
        let first = s
            .apply(
                &row(1, b"x"),
                &TicketWrite::New {
                    subject: "Disk".into(),
                    status: "open",
                    language: "en".into(),
                    requester: "ann@example.net".into(),
                    requester_name: None,
                },
                &[],
                &SideEffects {
                    buckets: vec![
                        (BucketKey::Recipient("Ann@example.net".into()), 4.0),
                        (BucketKey::NewTicket, 4.0),
                    ],
                    undeliverable: vec![],
                },
                now(),
                |_| Ok(vec![mail("m-out-1@t")]),
            )
            .unwrap();
        let t = first.ticket_id.unwrap();
        let levels = s
            .buckets(&["rcpt:ann@example.net".into(), format!("ticket:{t}")])
            .unwrap();
        assert_eq!(levels.len(), 2);
        assert_eq!(levels[0].tokens, 4.0);
        let mut bounce = row(2, b"y");
        bounce.message_id = Some("b1@mx");
        bounce.content_hash = "h2";
        s.apply(
            &bounce,
            &TicketWrite::Attach { id: t },
            &[("bounce", "Status 5.1.1".into())],
            &SideEffects {
                buckets: vec![],
                undeliverable: vec![Undeliverable {
                    address: "ann@example.net".into(),
                    reason: "Status 5.1.1".into(),
                }],
            },
            now(),
            |_| Ok(vec![]),
        )
        .unwrap();
        let c = s.contact("ann@example.net").unwrap().unwrap();
        assert!(c.undeliverable);
        assert_eq!(c.undeliverable_reason.as_deref(), Some("Status 5.1.1"));
        assert_eq!(
            s.undeliverable_among(&["bob@example.net".into(), "ANN@example.net".into()])
                .unwrap(),
            vec!["ANN@example.net".to_string()]
        );
        let out = s.outbox(None).unwrap();
        assert_eq!(out[0].status, "failed");
        assert!(
            out[0]
                .last_error
                .as_deref()
                .unwrap()
                .contains("undeliverable")
        );
        assert!(
            s.ticket_events(t)
                .unwrap()
                .iter()
                .any(|(k, _)| k == "send_skipped")
        );
    }
}
