//! `ticketd store copy`: a whole store copied to an empty one, SQLite to PostgreSQL or back, in one transaction on the target, row by row with their ids, then every table's count compared.

use super::conn::Store;
use super::db::{Backend, FromDb, Param, Value};
use anyhow::{Context, Result, bail};

/// The tables a store holds, parents before children, with the columns
/// both backends have (`outbox.claimed_by`, the nodes and the leases are
/// PostgreSQL's own and start empty).
const TABLES: &[(&str, &str)] = &[
    (
        "contacts",
        "id, address, name, language, undeliverable, created_at, undeliverable_since, undeliverable_reason",
    ),
    (
        "tickets",
        "id, subject, status, requester_id, mailbox, language, created_at, updated_at, severity, owner",
    ),
    (
        "messages",
        "id, mailbox, uidvalidity, uid, message_id, sender, content_hash, arrival, size, raw, class, outcome, reason, ticket_id, stored_at, reply_text",
    ),
    ("thread_ids", "message_id, ticket_id, origin"),
    (
        "ticket_events",
        "id, ticket_id, at, kind, message_row, detail",
    ),
    ("ticket_facts", "id, ticket_id, fact, message_row"),
    (
        "quota_uses",
        "id, ticket_id, message_row, quota, contract, period_start, charged",
    ),
    (
        "outbox",
        "id, ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, attempts, next_attempt_at, last_error, created_at, sent_at, claims, deferrals, subject",
    ),
    (
        "contracts",
        "id, serial, serial_key, email, company, tax_id, tax_key, tier, model, purchased_on, shipped_on, warranty_until, extended_until, extended_on, plans, plans_on, tickets_per_year, technician",
    ),
    ("reply_buckets", "key, tokens, updated_at"),
    (
        "rma",
        "id, ticket_id, part, code, state, rule, plans, requested_at, approved_at, issued_at, shipped_at, received_at, returned_at, expires_at, updated_at",
    ),
    ("awaited_refs", "message_id, ticket_id, people"),
    (
        "timers",
        "id, ticket_id, kind, cause, due_at, paused_secs, rule, recipient, state, created_at, settled_at, reason",
    ),
    (
        "webhook_deliveries",
        "id, webhook, event, msg_id, ticket_id, message_row, body, status, attempts, next_attempt_at, created_at, settled_at, last_status, last_error",
    ),
    (
        "mailbox_state",
        "mailbox, uidvalidity, last_uid, updated_at",
    ),
];

/// A column's value whatever its type, owned.
#[derive(Debug, Clone, PartialEq)]
enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl rusqlite::types::FromSql for Owned {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        use rusqlite::types::ValueRef;
        Ok(match v {
            ValueRef::Null => Owned::Null,
            ValueRef::Integer(i) => Owned::Int(i),
            ValueRef::Real(f) => Owned::Real(f),
            ValueRef::Text(t) => Owned::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Owned::Blob(b.to_vec()),
        })
    }
}

impl FromDb for Owned {
    fn from_value(v: Value<'_>) -> Result<Self> {
        Ok(match v {
            Value::Null => Owned::Null,
            Value::Int(i) => Owned::Int(i),
            Value::Real(f) => Owned::Real(f),
            Value::Text(s) => Owned::Text(s.to_owned()),
            Value::Blob(b) => Owned::Blob(b.to_vec()),
        })
    }
}

impl Param for Owned {
    fn value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Int(i) => Value::Int(*i),
            Owned::Real(f) => Value::Real(*f),
            Owned::Text(s) => Value::Text(s),
            Owned::Blob(b) => Value::Blob(b),
        }
    }
}

/// How many rows each table holds, in [`TABLES`]' order.
pub type Counts = Vec<(&'static str, i64)>;

impl Store {
    /// Rows per table.
    pub fn counts(&self) -> Result<Counts> {
        counts_of(&self.conn)
    }

    /// Copies every row of `from` into this store, which must hold no
    /// message, ticket or contract yet, in one transaction; the counts of
    /// both after, which match (or the copy is rolled back).
    pub fn copy_from(&mut self, from: &Store) -> Result<Counts> {
        if self.counts()?.iter().any(|(_, n)| *n > 0) {
            bail!("the target store is not empty: copy only into a new one");
        }
        let tx = self.conn.transaction()?;
        for (table, cols) in TABLES {
            let n = cols.split(',').count();
            let marks: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
            let order = if cols.starts_with("id,") {
                "ORDER BY id"
            } else {
                ""
            };
            let rows = from
                .conn
                .prepare(&format!("SELECT {cols} FROM {table} {order}"))?
                .query_map((), |r| {
                    (0..n)
                        .map(|i| r.get::<_, Owned>(i))
                        .collect::<Result<Vec<_>>>()
                })?
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("reading {table}"))?;
            let mut insert = tx.prepare(&format!(
                "INSERT INTO {table} ({cols}) VALUES ({})",
                marks.join(", ")
            ))?;
            for row in &rows {
                let params: Vec<&dyn Param> = row.iter().map(|v| v as &dyn Param).collect();
                insert
                    .execute(params.as_slice())
                    .with_context(|| format!("writing {table}"))?;
            }
        }
        // A merged ticket names a later one: set once all are in.
        let merged = from
            .conn
            .prepare("SELECT id, merged_into FROM tickets WHERE merged_into IS NOT NULL")?
            .query_map((), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>>>()?;
        for (id, into) in merged {
            tx.execute(
                "UPDATE tickets SET merged_into = ?2 WHERE id = ?1",
                super::db::params![id, into],
            )?;
        }
        if tx.backend() == Backend::Postgres {
            // New rows are numbered after the copied ones.
            for (table, _) in TABLES.iter().filter(|(_, c)| c.starts_with("id,")) {
                tx.execute_batch(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT max(id) FROM {table}), 1), (SELECT max(id) FROM {table}) IS NOT NULL)"
                ))?;
            }
        }
        let (have, want) = (counts_of(&tx)?, from.counts()?);
        if have != want {
            bail!(
                "the copy's counts {have:?} differ from the source's {want:?}: nothing was written"
            );
        }
        tx.commit()?;
        Ok(have)
    }
}

fn counts_of(conn: &super::db::Conn) -> Result<Counts> {
    TABLES
        .iter()
        .map(|(t, _)| {
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {t}"), (), |r| r.get(0))?;
            Ok((*t, n))
        })
        .collect()
}
