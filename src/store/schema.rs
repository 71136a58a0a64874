//! The schema: versioned migrations, each run once in its own transaction (with, for the few that convert data SQL cannot read, a Rust step in the same transaction: [`convert`]).

use super::columns::parse_ts;
use super::timer_columns::cause_text;
use crate::model::{SlaClock, SlaTarget, TimerCause, TimerKind};
use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{Connection, params};

/// Versioned migrations; `user_version` holds how many have run. A migration
/// never changes once released: a change of schema is a new entry.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // The facts a ticket has and the quota uses become tables written with
    // their events (they were read back from the events' JSON), and a ticket's
    // status is one of the four states. Runs with foreign keys off (see
    // `Store::migrate`): `tickets` is rebuilt to add its CHECK.
    r#"
CREATE TABLE ticket_facts (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    fact        TEXT NOT NULL,
    message_row INTEGER REFERENCES messages(id),
    UNIQUE (ticket_id, fact)
) STRICT;
INSERT OR IGNORE INTO ticket_facts (ticket_id, fact, message_row)
    SELECT e.ticket_id, f.value, e.message_row
    FROM ticket_events e, json_each(e.detail, '$.facts') f
    WHERE e.kind = 'policy' AND json_valid(e.detail) AND f.type = 'text'
    ORDER BY e.id, f.key;

CREATE TABLE quota_uses (
    id           INTEGER PRIMARY KEY,
    ticket_id    INTEGER NOT NULL REFERENCES tickets(id),
    message_row  INTEGER REFERENCES messages(id),
    quota        TEXT NOT NULL,
    contract     TEXT NOT NULL,
    period_start TEXT NOT NULL,
    charged      INTEGER NOT NULL CHECK (charged IN (0, 1))
) STRICT;
CREATE INDEX quota_uses_period ON quota_uses(quota, contract, period_start);
INSERT INTO quota_uses (ticket_id, message_row, quota, contract, period_start, charged)
    SELECT ticket_id, message_row, json_extract(detail, '$.id'), json_extract(detail, '$.contract'),
           json_extract(detail, '$.period_start'), json_extract(detail, '$.charged') = 1
    FROM ticket_events
    WHERE kind = 'quota' AND json_valid(detail) AND json_extract(detail, '$.id') IS NOT NULL
    ORDER BY id;

CREATE TABLE tickets_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subject      TEXT NOT NULL,
    status       TEXT NOT NULL
                 CHECK (status IN ('open', 'waiting_customer', 'waiting_staff', 'closed')),
    requester_id INTEGER NOT NULL REFERENCES contacts(id),
    mailbox      TEXT NOT NULL,
    language     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
INSERT INTO tickets_new (id, subject, status, requester_id, mailbox, language, created_at, updated_at)
    SELECT id, subject,
           CASE WHEN status IN ('open', 'waiting_customer', 'waiting_staff', 'closed') THEN status ELSE 'open' END,
           requester_id, mailbox, language, created_at, updated_at
    FROM tickets ORDER BY id;
UPDATE sqlite_sequence SET seq = (SELECT seq FROM sqlite_sequence WHERE name = 'tickets')
    WHERE name = 'tickets_new'
      AND seq < (SELECT seq FROM sqlite_sequence WHERE name = 'tickets');
DROP TABLE tickets;
ALTER TABLE tickets_new RENAME TO tickets;
"#,
    // Timers: what the rules set to happen later (NX-03 escalation steps),
    // fired once by the scheduler. A partial index keeps finding the next due
    // one a short index walk however many have fired.
    r#"
CREATE TABLE timers (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    rule        TEXT NOT NULL,
    recipient   TEXT,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'fired', 'cancelled')),
    created_at  TEXT NOT NULL,
    settled_at  TEXT,
    reason      TEXT,
    UNIQUE (ticket_id, kind, key)
) STRICT;
CREATE INDEX timers_pending_due ON timers(due_at) WHERE state = 'pending';
"#,
    // The outbox counts claims (a chunk taken for sending, counted before any
    // is sent: the guard against a mail that stops the sender every time) apart
    // from real attempts (`attempts`: the server answered for that mail) and
    // deferrals (no server reached: no connection, no greeting, a timeout).
    // `claims` goes back to 0 whenever an outcome is recorded.
    r#"
ALTER TABLE outbox ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN deferrals INTEGER NOT NULL DEFAULT 0;
"#,
    // RMAs, one per (ticket, part): the projection of a ticket's `rma`
    // events; a ticket's severity, the projection of its policy and
    // severity_changed events (backfilled from the first policy event, as
    // intake sets it); the
    // references of stored mail to mail not seen yet. A paused timer (an SLA clock while the ticket waits on the
    // customer) keeps the time it had left in `paused_secs`; its due_at is
    // then the far future, so it never comes due until it is resumed.
    r#"
CREATE TABLE rma (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    INTEGER NOT NULL REFERENCES tickets(id),
    part         TEXT NOT NULL,
    code         TEXT,
    state        TEXT NOT NULL
                 CHECK (state IN ('requested', 'approved', 'issued', 'shipped', 'received',
                                  'returned', 'expired', 'cancelled')),
    rule         TEXT NOT NULL,
    plans        TEXT NOT NULL DEFAULT '',
    requested_at TEXT NOT NULL,
    approved_at  TEXT,
    issued_at    TEXT,
    shipped_at   TEXT,
    received_at  TEXT,
    returned_at  TEXT,
    expires_at   TEXT,
    updated_at   TEXT NOT NULL,
    UNIQUE (ticket_id, part)
) STRICT;
ALTER TABLE timers ADD COLUMN paused_secs INTEGER;
ALTER TABLE tickets ADD COLUMN severity INTEGER;
-- Mail a stored mail referenced but that has not come yet (it waits in
-- another mailbox, or arrives late): when it comes, it joins that ticket
-- if its sender is on the ticket or was among the referencing mail's people.
CREATE TABLE awaited_refs (
    message_id TEXT NOT NULL,
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    people     TEXT NOT NULL,
    PRIMARY KEY (message_id, ticket_id)
) STRICT, WITHOUT ROWID;
UPDATE tickets SET severity = (
    SELECT json_extract(e.detail, '$.severity') FROM ticket_events e
    WHERE e.ticket_id = tickets.id AND e.kind = 'policy' AND json_valid(e.detail)
      AND json_extract(e.detail, '$.severity') IS NOT NULL
    ORDER BY e.id LIMIT 1);
"#,
    // A ticket's owner: the staff member it is assigned to, the projection
    // of its `assigned` events; a contract's assigned technician (AV-04, AV-05).
    r#"
ALTER TABLE tickets ADD COLUMN owner TEXT;
ALTER TABLE contracts ADD COLUMN technician TEXT NOT NULL DEFAULT '';
"#,
    // Typed timers. A timer's cause (`model::TimerCause`: the SLA target and
    // its clock, the waiting state's start and what is missing, the RMA
    // deadline and part, the escalation step) is JSON in `cause`, which with
    // the kind names the timer; it was text in `key` that the code parsed
    // back. A paused timer has state 'paused', its time left in
    // `paused_secs` and no due instant (it was due in the year 9999). The
    // table is rebuilt (foreign keys off, see `Store::migrate`); `cause`
    // holds the old key as a JSON string until `convert` reads it.
    r#"
CREATE TABLE timers_new (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT NOT NULL,
    cause       TEXT NOT NULL CHECK (json_valid(cause)),
    due_at      TEXT,
    paused_secs INTEGER,
    rule        TEXT NOT NULL,
    recipient   TEXT,
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'paused', 'fired', 'cancelled')),
    created_at  TEXT NOT NULL,
    settled_at  TEXT,
    reason      TEXT,
    CHECK (state <> 'pending' OR (due_at IS NOT NULL AND paused_secs IS NULL)),
    CHECK (state <> 'paused' OR (due_at IS NULL AND paused_secs IS NOT NULL)),
    UNIQUE (ticket_id, kind, cause)
) STRICT;
INSERT INTO timers_new (id, ticket_id, kind, cause, due_at, paused_secs, rule, recipient, state,
                        created_at, settled_at, reason)
    SELECT id, ticket_id, kind, json_quote(key),
           CASE WHEN paused_secs IS NOT NULL AND (state = 'pending' OR due_at >= '9999')
                THEN NULL ELSE due_at END,
           paused_secs, rule, recipient,
           CASE WHEN state = 'pending' AND paused_secs IS NOT NULL THEN 'paused' ELSE state END,
           created_at, settled_at, reason
    FROM timers ORDER BY id;
DROP TABLE timers;
ALTER TABLE timers_new RENAME TO timers;
CREATE INDEX timers_pending_due ON timers(due_at) WHERE state = 'pending';
"#,
    // A queued mail's subject, kept as it was rendered: what a notice of its
    // failure names, without reading the mail again. NULL for mail queued
    // before it was kept.
    r#"
ALTER TABLE outbox ADD COLUMN subject TEXT;
"#,
    // Webhook deliveries: one row per (event, webhook), written in the
    // transaction of the event, its body and `msg_id` (the Standard
    // Webhooks `webhook-id`, the same on every attempt) fixed then. An
    // attempt is counted and the next one set before it is made.
    r#"
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook         TEXT NOT NULL,
    event           TEXT NOT NULL,
    msg_id          TEXT NOT NULL UNIQUE,
    ticket_id       INTEGER REFERENCES tickets(id),
    message_row     INTEGER REFERENCES messages(id),
    body            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    settled_at      TEXT,
    last_status     INTEGER,
    last_error      TEXT
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'queued';
"#,
    // Merging tickets (`#merge`, `ticketd merge`): a merged ticket names the
    // one it was merged into, where its mail now lands, and its history
    // moves there: an event may change ticket, never what it says.
    r#"
ALTER TABLE tickets ADD COLUMN merged_into INTEGER REFERENCES tickets(id);
DROP TRIGGER ticket_events_append_only_u;
CREATE TRIGGER ticket_events_append_only_u BEFORE UPDATE OF id, at, kind, message_row, detail ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END;
"#,
    // A contract is looked up by its holder's address or tax number, the
    // latest purchased first: the indexes hold that order, so the look-up
    // (twice per mail) reads one entry instead of sorting. The CHECKs of the
    // states are written as comparisons by `convert` (see [`PLAIN_CHECKS`]).
    r#"
DROP INDEX contracts_email;
DROP INDEX contracts_tax_key;
CREATE INDEX contracts_email ON contracts(email, purchased_on DESC, serial_key);
CREATE INDEX contracts_tax_key ON contracts(tax_key, purchased_on DESC, serial_key);
"#,
    // Who claimed a queued mail (a PostgreSQL store's daemons claim by
    // node; on SQLite the one daemon): the same column on both backends.
    r#"
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
"#,
];

/// The connection's subscriptions live in a temporary table (this
/// connection's alone), so every writer of events, the daemon's or a shell
/// command's, queues deliveries for the configuration it was opened with.
pub(super) const SUBSCRIPTIONS: &str = "CREATE TEMP TABLE IF NOT EXISTS webhook_subscriptions (
    name TEXT PRIMARY KEY,
    pack TEXT NOT NULL,
    spec TEXT NOT NULL
) STRICT;";

/// The migration that typed the timers' causes: its Rust step reads the old keys.
const TYPED_TIMERS: usize = 11;

/// The migration that writes the states' CHECKs as comparisons.
const PLAIN_CHECKS: usize = 15;

/// The Rust step of migration `version`, in its transaction, after its SQL.
pub(super) fn convert(version: usize, tx: &Connection) -> Result<()> {
    if version == TYPED_TIMERS {
        timer_causes(tx)?;
    }
    if version == PLAIN_CHECKS {
        plain_checks(tx)?;
    }
    Ok(())
}

/// Migration 15: the CHECKs that name a state among three or more were
/// `col IN ('a', 'b', 'c')`, which SQLite evaluates by building a temporary
/// table on every insert and every update of the column (a page, a b-tree
/// and their release: with `RETURNING` and an unindexed sort, about a
/// quarter of a mail's SQLite work). The same
/// conditions as comparisons cost a few instructions. The rows already
/// satisfy them, so only the tables' definitions change: in `sqlite_schema`,
/// as SQLite documents for a change that leaves the stored content as it is
/// (lang_altertable.html, "other kinds of table schema changes").
fn plain_checks(tx: &Connection) -> Result<()> {
    const STATES: &[(&str, &str, &[&str])] = &[
        (
            "tickets",
            "status",
            &["open", "waiting_customer", "waiting_staff", "closed"],
        ),
        ("outbox", "status", &["queued", "sent", "failed"]),
        (
            "timers",
            "state",
            &["pending", "paused", "fired", "cancelled"],
        ),
        (
            "webhook_deliveries",
            "status",
            &["queued", "delivered", "failed"],
        ),
        (
            "rma",
            "state",
            &[
                "requested",
                "approved",
                "issued",
                "shipped",
                "received",
                "returned",
                "expired",
                "cancelled",
            ],
        ),
    ];
    let version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    tx.pragma_update(None, "writable_schema", true)?;
    let result = (|| -> Result<()> {
        for (table, column, states) in STATES {
            let sql: String = tx.query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )?;
            let (from, to) = state_check(&sql, column, states).with_context(|| {
                format!("table {table}: no CHECK of {column} as written by the earlier migrations")
            })?;
            tx.execute(
                "UPDATE sqlite_schema SET sql = ?2 WHERE type = 'table' AND name = ?1",
                params![table, sql.replacen(&from, &to, 1)],
            )?;
        }
        // Every connection reads the new definitions again.
        tx.pragma_update(None, "schema_version", version + 1)?;
        Ok(())
    })();
    tx.pragma_update(None, "writable_schema", false)?;
    result
}

/// The CHECK of `column` in a table's definition when it is the `IN` list of
/// `states`, and the same condition as comparisons: `CHECK (column = 'a' OR
/// column = 'b' …)`. The list is found whatever its line breaks and spaces.
fn state_check(sql: &str, column: &str, states: &[&str]) -> Option<(String, String)> {
    let quoted: Vec<String> = states.iter().map(|s| format!("'{s}'")).collect();
    let start = sql.find(&format!("CHECK ({column} IN ("))?;
    let end = start + sql[start..].find("))")? + 2;
    let found = &sql[start..end];
    let listed: Vec<&str> = found[found.find("IN (")? + 4..found.len() - 2]
        .split(',')
        .map(str::trim)
        .collect();
    if listed != quoted.iter().map(String::as_str).collect::<Vec<_>>() {
        return None;
    }
    let cmp: Vec<String> = quoted.iter().map(|q| format!("{column} = {q}")).collect();
    Some((found.to_string(), format!("CHECK ({})", cmp.join(" OR "))))
}

/// Migration 11: each timer's cause, read once from the key the code wrote
/// before it (held in `cause` as a JSON string by the migration's SQL).
fn timer_causes(tx: &Connection) -> Result<()> {
    let rows = tx
        .prepare("SELECT id, kind, cause, recipient, created_at FROM timers ORDER BY id")?
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut update = tx.prepare("UPDATE timers SET cause = ?2 WHERE id = ?1")?;
    for (id, kind, key, recipient, created_at) in rows {
        let key: String = serde_json::from_str(&key)
            .with_context(|| format!("timer {id}: its key {key:?} is not a JSON string"))?;
        let Some(kind) = TimerKind::parse(&kind) else {
            bail!("timer {id} has an unknown kind {kind:?}");
        };
        let created = parse_ts(&created_at)?;
        let cause = legacy_cause(kind, &key, recipient.as_deref(), created);
        update
            .execute(params![id, cause_text(&cause)])
            .with_context(|| format!("timer {id} ({key:?}): its cause {cause}"))?;
    }
    Ok(())
}

/// What a key of the code before migration 11 said, as a typed cause.
/// Those keys were `{to} after {span}` (escalation), `first response,
/// {business|24x7|calendar} clock` (SLA), `{deadline}:{part}` (RMA
/// reminder and deadline), `issue:{part}` (RMA issue due) and `asked
/// {YYYY-MM-DDTHH:MMZ}: {missing; ...}` (reminder and close); a key that
/// does not read so keeps what can be read (a waiting timer's start is
/// then when it was set, which is when it was asked).
fn legacy_cause(
    kind: TimerKind,
    key: &str,
    recipient: Option<&str>,
    created: DateTime<Utc>,
) -> TimerCause {
    match kind {
        TimerKind::Escalation => {
            let to = recipient.unwrap_or(key).to_string();
            let after = key
                .strip_prefix(to.as_str())
                .and_then(|rest| rest.strip_prefix(" after "))
                .map(String::from);
            TimerCause::Escalation { to, after }
        }
        TimerKind::SlaWarning | TimerKind::SlaBreach => TimerCause::Sla {
            target: SlaTarget::FirstResponse,
            clock: if key.ends_with("24x7 clock") {
                SlaClock::AllHours
            } else if key.ends_with("calendar clock") {
                SlaClock::Calendar
            } else {
                SlaClock::Business
            },
        },
        TimerKind::RmaReminder | TimerKind::RmaDeadline => {
            let (deadline, part) = key.split_once(':').unwrap_or((key, ""));
            TimerCause::RmaDeadline {
                deadline: deadline.to_string(),
                part: part.to_string(),
            }
        }
        TimerKind::RmaIssueDue => TimerCause::RmaIssue {
            part: key.split_once(':').map_or("", |(_, p)| p).to_string(),
        },
        TimerKind::CustomerReminder | TimerKind::AutoClose => {
            let rest = key.strip_prefix("asked ").unwrap_or(key);
            let (at, list) = rest.split_once(": ").unwrap_or((rest, ""));
            let since = NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%MZ")
                .map_or(created, |d| d.and_utc());
            TimerCause::Waiting {
                since,
                missing: list
                    .split("; ")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            }
        }
    }
}
