//! The row writers every store transaction shares: an event and the projections and webhook deliveries it feeds, a queued mail, a timer, a contact and its undeliverable mark, a mailbox's high-water mark.

use super::columns::ts;
use super::db::{Conn, params};
use super::rma;
use super::rows::Origin;
use super::timer_columns::cause_text;
use super::webhooks;
use crate::model::{Event, NewMail, TicketId, TimerPlan, Undeliverable};
use anyhow::Result;
use chrono::{DateTime, Utc};

/// Appends one event to a ticket's history and, in the same transaction, the
/// projections it feeds (see [`record_only`]) and the webhook deliveries it
/// causes. Every event the store writes goes through here or, for a mail's
/// events together, [`record_events`].
pub(super) fn record_event(
    tx: &Conn,
    ticket: TicketId,
    message_row: Option<i64>,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<()> {
    record_only(tx, ticket, message_row, event, now)?;
    webhooks::queue_for_event(tx, ticket, message_row, event, &[], now)
}

/// A mail's events: all of them recorded, then the webhook deliveries of
/// each, so a new ticket's deliveries see the severity its policy set.
pub(super) fn record_events(
    tx: &Conn,
    ticket: TicketId,
    message_row: Option<i64>,
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<()> {
    for e in events {
        record_only(tx, ticket, message_row, e, now)?;
    }
    for e in events {
        webhooks::queue_for_event(tx, ticket, message_row, e, events, now)?;
    }
    Ok(())
}

/// The event and the projections it feeds: the facts a ticket has and its
/// severity (`policy`, `severity_changed`), its owner (`assigned`), the
/// quota uses (`quota`) and the RMAs (`rma`).
fn record_only(
    tx: &Conn,
    ticket: TicketId,
    message_row: Option<i64>,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        ticket.0,
        ts(now),
        event.kind(),
        message_row,
        event.detail()
    ])?;
    match event {
        Event::Policy(p) => {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO ticket_facts (ticket_id, fact, message_row) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?;
            for f in &p.facts {
                stmt.execute(params![ticket.0, f, message_row])?;
            }
            // The first mail's severity stands until staff change it.
            tx.prepare_cached(
                "UPDATE tickets SET severity = ?2 WHERE id = ?1 AND severity IS NULL",
            )?
            .execute(params![ticket.0, p.severity])?;
        }
        Event::Assigned { to, .. } => {
            tx.prepare_cached("UPDATE tickets SET owner = ?2 WHERE id = ?1")?
                .execute(params![ticket.0, to])?;
        }
        Event::SeverityChanged { to, .. } => {
            tx.prepare_cached("UPDATE tickets SET severity = ?2 WHERE id = ?1")?
                .execute(params![ticket.0, to])?;
        }
        Event::Quota(q) => {
            tx.prepare_cached(
                "INSERT INTO quota_uses (ticket_id, message_row, quota, contract, period_start, charged)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                ticket.0,
                message_row,
                q.id,
                q.contract,
                q.period_start.to_string(),
                q.charged
            ])?;
        }
        Event::Rma {
            part,
            state,
            code,
            plans,
            expires_at,
            rule,
            ..
        } => rma::project(
            tx,
            ticket,
            part,
            *state,
            code.as_deref(),
            plans,
            *expires_at,
            rule,
            now,
        )?,
        _ => {}
    }
    Ok(())
}

/// Sets a timer on `ticket`. One pending, paused or fired under the same
/// (kind, cause) stays as it is (a timer fires at most once); one cancelled is set
/// again (a ladder planned again after a severity change and back, a ticket
/// waiting on its customer a second time).
pub(super) fn set_timer(
    tx: &Conn,
    ticket: TicketId,
    t: &TimerPlan,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO timers (ticket_id, kind, cause, due_at, rule, recipient, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (ticket_id, kind, cause) DO UPDATE SET
             state = 'pending', due_at = excluded.due_at, rule = excluded.rule,
             recipient = excluded.recipient, created_at = excluded.created_at,
             settled_at = NULL, reason = NULL, paused_secs = NULL
         WHERE timers.state = 'cancelled'",
    )?
    .execute(params![
        ticket.0,
        t.kind.as_str(),
        cause_text(&t.cause),
        ts(t.due),
        t.rule,
        t.to,
        ts(now)
    ])?;
    Ok(())
}

pub(super) fn upsert_contact(
    tx: &Conn,
    address: &str,
    name: Option<&str>,
    language: &str,
    now: &str,
) -> Result<i64> {
    // Not `RETURNING id`: SQLite buffers a RETURNING row in a temporary
    // table, dearer than reading the row back by its unique index.
    tx.prepare_cached(
        "INSERT INTO contacts (address, name, language, created_at) VALUES (lower(?1), ?2, ?3, ?4)
         ON CONFLICT(address) DO UPDATE SET name = coalesce(excluded.name, contacts.name),
                                            language = coalesce(contacts.language, excluded.language)",
    )?
    .execute(params![address, name, language, now])?;
    Ok(tx
        .prepare_cached("SELECT id FROM contacts WHERE address = lower(?1)")?
        .query_row([address], |r| r.get(0))?)
}

/// Queues one rendered mail; on a ticket, its Message-ID threads replies back
/// to that ticket and the history says it was queued.
pub(super) fn queue_mail(
    tx: &Conn,
    ticket_id: Option<TicketId>,
    m: &NewMail,
    now: DateTime<Utc>,
) -> Result<i64> {
    let now_s = ts(now);
    let id = tx.prepare_insert(
        "INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, attempts, next_attempt_at, created_at, subject)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?7, ?8)",
    )?
    .insert(params![
        ticket_id.map(|t| t.0),
        m.kind,
        m.message_id,
        m.mail_from,
        serde_json::to_string(&m.rcpt_to)?,
        m.raw,
        now_s,
        m.subject
    ])?;
    if let Some(t) = ticket_id {
        tx.prepare_cached(
            "INSERT INTO thread_ids (message_id, ticket_id, origin) VALUES (?1, ?2, 'out') ON CONFLICT DO NOTHING",
        )?
        .execute(params![m.message_id, t.0])?;
        let queued = Event::MailQueued {
            template: m.kind.clone(),
            to: m.rcpt_to.clone(),
        };
        record_event(tx, t, None, &queued, now)?;
    }
    Ok(id)
}

/// Marks a contact undeliverable and fails the mail still queued to it alone,
/// with an event on each ticket concerned.
pub(super) fn mark_undeliverable(tx: &Conn, u: &Undeliverable, now: DateTime<Utc>) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO contacts (address, created_at, undeliverable, undeliverable_since, undeliverable_reason)
         VALUES (lower(?1), ?2, 1, ?2, ?3)
         ON CONFLICT(address) DO UPDATE SET undeliverable = 1,
             undeliverable_since = coalesce(contacts.undeliverable_since, excluded.undeliverable_since),
             undeliverable_reason = excluded.undeliverable_reason",
    )?
    .execute(params![u.address, ts(now), u.reason])?;
    let only_to = serde_json::to_string(&[u.address.to_ascii_lowercase()])?;
    let error = format!("not sent: {} is undeliverable ({})", u.address, u.reason);
    let mut stmt = tx.prepare_cached(
        "UPDATE outbox SET status = 'failed', last_error = ?2
         WHERE status = 'queued' AND lower(rcpt_to) = ?1 RETURNING ticket_id",
    )?;
    let tickets: Vec<Option<i64>> = stmt
        .query_map(params![only_to, error], |r| r.get(0))?
        .collect::<Result<_>>()?;
    let skipped = Event::SendSkipped { error };
    for t in tickets.into_iter().flatten() {
        record_event(tx, TicketId(t), None, &skipped, now)?;
    }
    Ok(())
}

pub(super) fn advance_mailbox(tx: &Conn, o: &Origin<'_>, now: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(mailbox) DO UPDATE SET last_uid = CASE WHEN excluded.last_uid > mailbox_state.last_uid THEN excluded.last_uid ELSE mailbox_state.last_uid END, updated_at = excluded.updated_at
         WHERE mailbox_state.uidvalidity = excluded.uidvalidity",
    )?
    .execute(params![o.mailbox, o.uidvalidity as i64, o.uid as i64, now])?;
    Ok(())
}
