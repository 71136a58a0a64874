//! The store's connection: opening SQLite (WAL, a statement cache, foreign keys), the versioned migrations, and the schema check a build makes before it writes.

use super::db::Conn;
use super::schema::{MIGRATIONS, SUBSCRIPTIONS};
use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;

/// Prepared statements kept per connection: more than the store has (every
/// statement is kept, the one-off `execute` and `query_row` ones too), so none
/// is parsed twice.
const STATEMENT_CACHE: usize = 256;

pub struct Store {
    pub(crate) conn: Conn,
    /// The daemon this store writes for (`[daemon] node`): whose claims
    /// queued mail carries on PostgreSQL.
    pub(crate) node: Option<String>,
}

/// What every connection, the writer and a read-only one, is opened with.
fn tune(conn: &Connection) -> Result<()> {
    // A savepoint (per message, when a slice is written the careful way)
    // journals the pages it changes; in memory that costs a copy, in a
    // temporary file a write each.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Pages kept in memory, up to 8 MiB (SQLite's default is 2 MiB): the
    // indexes intake reads per mail outgrow the default within a few
    // thousand tickets, and every page missed is read again from the file.
    conn.pragma_update(None, "cache_size", -8192)?;
    // Every statement of the intake path stays prepared (the default keeps 16).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // A plan per statement, not per bound value: with STAT4 compiled in,
    // SQLite otherwise prepares some lookups again on every execution.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
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
        tune(&conn)?;
        let store = Store {
            conn: Conn::Sqlite(conn),
            node: None,
        };
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
        tune(&conn)?;
        let mut store = Store {
            conn: Conn::Sqlite(conn),
            node: None,
        };
        store.migrate()?;
        store.conn.execute_batch(SUBSCRIPTIONS)?;
        Ok(store)
    }

    fn version(&self) -> Result<usize> {
        let sql = match self.conn {
            Conn::Sqlite(_) => "PRAGMA user_version",
            Conn::Postgres(_) => "SELECT version FROM ticketd_schema",
        };
        let v: i64 = self.conn.prepare_cached(sql)?.query_row((), |r| r.get(0))?;
        Ok(v as usize)
    }

    /// The SQLite connection (every store but a PostgreSQL one).
    pub(super) fn sqlite(&self) -> Result<&Connection> {
        self.conn
            .sqlite()
            .context("this is done only on a SQLite store")
    }

    pub(super) fn migrate(&mut self) -> Result<()> {
        if self.conn.backend() == super::db::Backend::Postgres {
            return self.migrate_postgres();
        }
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
        let Conn::Sqlite(conn) = &mut self.conn else {
            bail!("a SQLite migration on another backend");
        };
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        let run = |conn: &mut Connection| -> Result<()> {
            for (i, m) in MIGRATIONS.iter().enumerate().skip(have) {
                let tx = conn.transaction()?;
                tx.execute_batch(m)
                    .with_context(|| format!("migration {} failed", i + 1))?;
                super::schema::convert(i + 1, &tx)
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
        let result = run(conn);
        conn.pragma_update(None, "foreign_keys", "ON")?;
        result
    }

    pub fn schema_version(&self) -> Result<usize> {
        self.version()
    }

    /// Fails with a clear message when the schema is older than this ticketd
    /// (a read-only store cannot migrate it).
    pub fn require_current(&self) -> Result<()> {
        let v = self.version()?;
        if v < self.known_schema() {
            bail!(
                "database schema {v} is older than this ticketd ({}): run `ticketd run --once` to bring it up to date",
                self.known_schema()
            );
        }
        Ok(())
    }
}
