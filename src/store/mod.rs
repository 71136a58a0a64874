//! SQLite storage: the only module that knows SQL. The schema and its
//! migrations, lookups for the decision, the one transaction per message,
//! the outbox queue and the listings.
//!
//! Every value crossing this boundary is a `model` type; SQL details
//! (AUTOINCREMENT's `sqlite_sequence`, `INSERT OR IGNORE`, savepoints) stay here.

mod actions;
mod admin;
mod contracts;
mod history;
mod intake;
mod journal;
mod listings;
mod lock;
mod lookup;
mod outbox;
mod rma;
mod schema;
#[cfg(test)]
mod tests;
mod timers;

pub use admin::{ContactRow, Gauges, StoredMessage};
pub use history::TicketHistory;
pub use intake::MessageTx;
pub use journal::SentJournal;
pub use lock::RunLock;
pub use timers::Settle;

use crate::model::{Outcome, TicketId, TicketStatus};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use schema::MIGRATIONS;
use serde::Serialize;
use std::path::Path;

/// Prepared statements kept per connection: more than the store has, so none is parsed twice.
const STATEMENT_CACHE: usize = 128;

/// Timestamps are stored as fixed-width UTC text so that they sort as they compare.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A timestamp column, for row mappers.
pub(super) fn ts_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    let s: String = r.get(i)?;
    parse_ts(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// A nullable timestamp column.
pub(super) fn opt_ts_column(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(s) => parse_ts(&s).map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
        }),
    }
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
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The new text of the mail, for notifications and staff views.
    pub reply_text: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket_id: Option<TicketId>,
    pub kind: String,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub status: String,
    /// Real attempts: the server answered for this mail (250, 4xx or 5xx).
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Claims with no outcome recorded since (each claim is counted before
    /// the mail is sent; a recorded outcome sets it back to 0).
    pub claims: u32,
    /// Temporary failures that reached no server (no connection, no
    /// greeting, a timeout, a drop before the reply, a chunk deferred).
    pub deferrals: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub id: TicketId,
    pub subject: String,
    pub status: TicketStatus,
    pub requester: String,
    pub mailbox: String,
    pub language: String,
    pub messages: i64,
    pub created_at: DateTime<Utc>,
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
    pub(super) conn: Connection,
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
        if have == MIGRATIONS.len() {
            return Ok(());
        }
        // A migration that rebuilds a table drops the old one while other
        // tables still refer to it: foreign keys are off meanwhile (the pragma
        // has no effect inside a transaction), and checked before each commit.
        self.conn.pragma_update(None, "foreign_keys", "OFF")?;
        let run = |conn: &mut Connection| -> Result<()> {
            for (i, m) in MIGRATIONS.iter().enumerate().skip(have) {
                let tx = conn.transaction()?;
                tx.execute_batch(m)
                    .with_context(|| format!("migration {} failed", i + 1))?;
                let broken: Option<String> = tx
                    .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                    .optional()?;
                if let Some(table) = broken {
                    bail!("migration {} left a broken reference in {table}", i + 1);
                }
                tx.pragma_update(None, "user_version", (i + 1) as i64)?;
                tx.commit()?;
            }
            Ok(())
        };
        let result = run(&mut self.conn);
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        result
    }

    pub fn schema_version(&self) -> Result<usize> {
        self.version()
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
}
