//! The one transaction per message: its ticket, the message row, its events with their projections, reply buckets, queued mail and the mailbox's high-water mark.

use super::{MessageRow, Origin, Store, ts};
use crate::model::{
    Applied, BucketKey, Event, NewMail, Outcome, SideEffects, TicketId, TicketWrite, TimerPlan,
    Undeliverable,
};
use anyhow::Result;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Savepoint, params};

/// The writes of one message in progress: a savepoint, rolled back when
/// dropped before [`MessageTx::finish`]. Intake opens it, writes the ticket
/// (learning a new ticket's number), renders the replies that name that
/// number, and finishes with the rest.
pub struct MessageTx<'s> {
    sp: Savepoint<'s>,
    now: DateTime<Utc>,
    ticket: Option<TicketId>,
}

impl Store {
    /// Runs `f` in one transaction: every message written inside it is a
    /// savepoint of that transaction, so a message that fails leaves the others
    /// standing, and all of them are committed together (one sync) when `f`
    /// returns `Ok`. When `f` fails, nothing of it is written.
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

    /// Starts the writes of one message. Outside `in_batch` the savepoint is
    /// its own transaction, committed by `finish`; inside, it becomes durable
    /// when the batch commits.
    pub fn begin_message(&mut self, now: DateTime<Utc>) -> Result<MessageTx<'_>> {
        Ok(MessageTx {
            sp: self.conn.savepoint()?,
            now,
            ticket: None,
        })
    }

    /// Writes every effect of one message atomically when its mail is already
    /// rendered (or there is none): `begin_message`, `write_ticket`, `finish`.
    pub fn apply(
        &mut self,
        msg: &MessageRow<'_>,
        ticket: &TicketWrite,
        events: &[Event],
        effects: &SideEffects,
        mails: &[NewMail],
        now: DateTime<Utc>,
    ) -> Result<Applied> {
        let mut tx = self.begin_message(now)?;
        tx.write_ticket(msg.origin.mailbox, ticket)?;
        tx.finish(msg, events, effects, mails)
    }

    /// Queues a mail outside any message (a notice about the outbox itself).
    pub fn queue(
        &mut self,
        ticket_id: Option<TicketId>,
        mail: &NewMail,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let tx = self.conn.transaction()?;
        let id = queue_mail(&tx, ticket_id, mail, now)?;
        tx.commit()?;
        Ok(id)
    }
}

impl MessageTx<'_> {
    /// Opens, updates or attaches to the message's ticket and returns it (the
    /// new ticket's number for `TicketWrite::New`).
    pub fn write_ticket(
        &mut self,
        mailbox: &str,
        ticket: &TicketWrite,
    ) -> Result<Option<TicketId>> {
        let now = ts(self.now);
        let tx = &self.sp;
        self.ticket = match ticket {
            TicketWrite::None => None,
            TicketWrite::New {
                subject,
                status,
                language,
                requester,
                requester_name,
            } => {
                let contact =
                    upsert_contact(tx, requester, requester_name.as_deref(), language, &now)?;
                tx.prepare_cached(
                    "INSERT INTO tickets (subject, status, requester_id, mailbox, language, created_at, updated_at)
                     VALUES (?1, ?6, ?2, ?3, ?4, ?5, ?5)",
                )?
                .execute(params![subject, contact, mailbox, language, now, status.as_str()])?;
                Some(TicketId(tx.last_insert_rowid()))
            }
            TicketWrite::Update { id, status } => {
                tx.prepare_cached("UPDATE tickets SET status = ?3, updated_at = ?2 WHERE id = ?1")?
                    .execute(params![id.0, now, status.as_str()])?;
                Some(*id)
            }
            TicketWrite::Attach { id } => Some(*id),
        };
        Ok(self.ticket)
    }

    /// Writes the message row, its events (and their projections), the side
    /// effects, the queued `mails` and the mailbox's high-water mark, and
    /// releases the savepoint.
    pub fn finish(
        self,
        msg: &MessageRow<'_>,
        events: &[Event],
        effects: &SideEffects,
        mails: &[NewMail],
    ) -> Result<Applied> {
        let MessageTx {
            sp: tx,
            now,
            ticket,
        } = self;
        let now_s = ts(now);
        tx.prepare_cached(
            "INSERT INTO messages (mailbox, uidvalidity, uid, message_id, sender, content_hash, arrival, size, raw,
                                   class, outcome, reason, ticket_id, stored_at, reply_text)
             VALUES (?1, ?2, ?3, ?4, lower(?5), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .execute(params![
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
            msg.outcome.as_str(),
            msg.reason,
            ticket.map(|t| t.0),
            now_s,
            msg.reply_text
        ])?;
        let message_row = tx.last_insert_rowid();
        if let (Some(t), Some(mid)) = (ticket, msg.message_id)
            && msg.outcome == Outcome::Processed
            && !effects.hold
        {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO thread_ids (message_id, ticket_id, origin) VALUES (?1, ?2, 'in')",
            )?
            .execute(params![mid, t.0])?;
            tx.prepare_cached("DELETE FROM awaited_refs WHERE message_id = ?1")?
                .execute([mid])?;
        }
        if let Some(t) = ticket
            && msg.outcome == Outcome::Processed
        {
            let people = effects.awaited_people.join(",");
            for id in effects.awaited.iter().take(20) {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO awaited_refs (message_id, ticket_id, people)
                     SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM thread_ids WHERE message_id = ?1)",
                )?
                .execute(params![id, t.0, people])?;
            }
        }
        if let Some(t) = ticket {
            for e in events {
                record_event(&tx, t, Some(message_row), e, now)?;
            }
        }
        for u in &effects.undeliverable {
            mark_undeliverable(&tx, u, now)?;
        }
        for (key, tokens) in &effects.buckets {
            let name = match (key.name(), ticket) {
                (Some(n), _) => n,
                (None, Some(t)) => BucketKey::Ticket(t).name().unwrap_or_default(),
                (None, None) => continue,
            };
            tx.prepare_cached(
                "INSERT INTO reply_buckets (key, tokens, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
            )?
            .execute(params![name, tokens, now_s])?;
        }
        if let Some(t) = ticket {
            super::timers::end_timers(&tx, t, &effects.cancel_timers, now)?;
            for timer in &effects.timers {
                set_timer(&tx, t, timer, now)?;
            }
            super::timers::update_timers(&tx, t, &effects.timer_updates)?;
        }
        let mut queued = Vec::with_capacity(mails.len());
        for m in mails {
            queued.push(queue_mail(&tx, ticket, m, now)?);
        }
        advance_mailbox(&tx, &msg.origin, &now_s)?;
        tx.commit()?;
        Ok(Applied {
            message_row,
            ticket_id: ticket,
            queued,
        })
    }
}

/// Appends one event to a ticket's history and, in the same transaction, the
/// projections it feeds: the facts a ticket has and its severity (`policy`,
/// `severity_changed`), its owner (`assigned`), the quota uses (`quota`) and the RMAs (`rma`). Every event the store writes goes through here.
pub(super) fn record_event(
    tx: &Connection,
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
                "INSERT OR IGNORE INTO ticket_facts (ticket_id, fact, message_row) VALUES (?1, ?2, ?3)",
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
        } => super::rma::project(
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

/// Sets a timer on `ticket`. One pending or fired under the same (kind,
/// key) stays as it is (a timer fires at most once); one cancelled is set
/// again (a ladder planned again after a severity change and back, a ticket
/// waiting on its customer a second time).
pub(super) fn set_timer(
    tx: &Connection,
    ticket: TicketId,
    t: &TimerPlan,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO timers (ticket_id, kind, key, due_at, rule, recipient, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (ticket_id, kind, key) DO UPDATE SET
             state = 'pending', due_at = excluded.due_at, rule = excluded.rule,
             recipient = excluded.recipient, created_at = excluded.created_at,
             settled_at = NULL, reason = NULL, paused_secs = NULL
         WHERE timers.state = 'cancelled'",
    )?
    .execute(params![
        ticket.0,
        t.kind.as_str(),
        t.key,
        ts(t.due),
        t.rule,
        t.to,
        ts(now)
    ])?;
    Ok(())
}

fn upsert_contact(
    tx: &Connection,
    address: &str,
    name: Option<&str>,
    language: &str,
    now: &str,
) -> Result<i64> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO contacts (address, name, language, created_at) VALUES (lower(?1), ?2, ?3, ?4)
             ON CONFLICT(address) DO UPDATE SET name = coalesce(excluded.name, contacts.name),
                                                language = coalesce(contacts.language, excluded.language)
             RETURNING id",
        )?
        .query_row(params![address, name, language, now], |r| r.get(0))?)
}

/// Queues one rendered mail; on a ticket, its Message-ID threads replies back
/// to that ticket and the history says it was queued.
pub(super) fn queue_mail(
    tx: &Connection,
    ticket_id: Option<TicketId>,
    m: &NewMail,
    now: DateTime<Utc>,
) -> Result<i64> {
    let now_s = ts(now);
    tx.prepare_cached(
        "INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, attempts, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?7)",
    )?
    .execute(params![
        ticket_id.map(|t| t.0),
        m.kind,
        m.message_id,
        m.mail_from,
        serde_json::to_string(&m.rcpt_to)?,
        m.raw,
        now_s
    ])?;
    let id = tx.last_insert_rowid();
    if let Some(t) = ticket_id {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO thread_ids (message_id, ticket_id, origin) VALUES (?1, ?2, 'out')",
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
fn mark_undeliverable(tx: &Connection, u: &Undeliverable, now: DateTime<Utc>) -> Result<()> {
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
        .collect::<rusqlite::Result<_>>()?;
    let skipped = Event::SendSkipped { error };
    for t in tickets.into_iter().flatten() {
        record_event(tx, TicketId(t), None, &skipped, now)?;
    }
    Ok(())
}

fn advance_mailbox(tx: &Connection, o: &Origin<'_>, now: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO mailbox_state (mailbox, uidvalidity, last_uid, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(mailbox) DO UPDATE SET last_uid = max(last_uid, excluded.last_uid), updated_at = excluded.updated_at
         WHERE mailbox_state.uidvalidity = excluded.uidvalidity",
    )?
    .execute(params![o.mailbox, o.uidvalidity as i64, o.uid as i64, now])?;
    Ok(())
}
