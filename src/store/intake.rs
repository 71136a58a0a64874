//! The one transaction per message: its ticket, the message row, its events with their projections, reply buckets, queued mail, a merge it asks for and the mailbox's high-water mark.

use super::columns::ts;
use super::conn::Store;
use super::db::{Conn, Tx, params};
use super::rows::MessageRow;
use super::writers::{
    advance_mailbox, mark_undeliverable, queue_mail, record_events, set_timer, upsert_contact,
};
use crate::model::{
    Applied, BucketKey, Event, NewMail, Outcome, SideEffects, TicketId, TicketWrite,
};
use anyhow::{Result, bail};
use chrono::{DateTime, Utc};

/// The writes of one message in progress: a savepoint, rolled back when
/// dropped before [`MessageTx::finish`], or the enclosing transaction itself
/// ([`WriteMode::Direct`]). Intake opens it, writes the ticket
/// (learning a new ticket's number), renders the replies that name that
/// number, and finishes with the rest.
pub struct MessageTx<'s> {
    writes: Writes<'s>,
    now: DateTime<Utc>,
    ticket: Option<TicketId>,
}

/// How a message's writes are undone when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// A savepoint of its own: a message that fails is undone alone.
    Savepoint,
    /// Straight into the enclosing `in_batch` transaction, without the
    /// savepoint that would copy every page the message changes: a message
    /// that fails leaves its writes there, so the caller fails the whole
    /// batch and nothing of it is written.
    Direct,
}

/// Where a message's writes go, after its [`WriteMode`].
enum Writes<'s> {
    Savepoint(Tx<'s>),
    Direct(&'s Conn),
}

impl std::ops::Deref for Writes<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        match self {
            Writes::Savepoint(sp) => sp,
            Writes::Direct(conn) => conn,
        }
    }
}

impl Store {
    /// Runs `f` in one transaction: a message written inside it with a
    /// savepoint of its own ([`WriteMode::Savepoint`]) that fails leaves the
    /// others standing, and all of them are committed together (one sync)
    /// when `f` returns `Ok`. When `f` fails, nothing of it is written. A
    /// panic in `f` rolls the transaction back before it goes on, so the
    /// connection is never left inside a transaction.
    pub fn in_batch<T>(&mut self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        self.conn.begin()?;
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)))
            .unwrap_or_else(|panic| {
                let _ = self.conn.rollback();
                std::panic::resume_unwind(panic)
            });
        match done {
            Ok(v) => match self.conn.commit() {
                Ok(()) => Ok(v),
                Err(e) => {
                    let _ = self.conn.rollback();
                    Err(e)
                }
            },
            Err(e) => {
                let _ = self.conn.rollback();
                Err(e)
            }
        }
    }

    /// Starts the writes of one message in a savepoint. Outside `in_batch`
    /// the savepoint is its own transaction, committed by `finish`; inside,
    /// it becomes durable when the batch commits.
    pub fn begin_message(&mut self, now: DateTime<Utc>) -> Result<MessageTx<'_>> {
        self.begin_message_as(now, WriteMode::Savepoint)
    }

    /// Starts the writes of one message the way `mode` says; `Direct` only
    /// inside `in_batch`.
    pub fn begin_message_as(
        &mut self,
        now: DateTime<Utc>,
        mode: WriteMode,
    ) -> Result<MessageTx<'_>> {
        let writes = match mode {
            WriteMode::Savepoint => Writes::Savepoint(self.conn.savepoint()?),
            WriteMode::Direct if self.conn.is_autocommit() => {
                bail!("a message written without a savepoint needs an enclosing transaction")
            }
            WriteMode::Direct => Writes::Direct(&self.conn),
        };
        Ok(MessageTx {
            writes,
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
        let tx = &*self.writes;
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
                let id = tx.prepare_insert(
                    "INSERT INTO tickets (subject, status, requester_id, mailbox, language, created_at, updated_at)
                     VALUES (?1, ?6, ?2, ?3, ?4, ?5, ?5)",
                )?
                .insert(params![subject, contact, mailbox, language, now, status.as_str()])?;
                Some(TicketId(id))
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
    /// releases the savepoint, if it has one.
    pub fn finish(
        self,
        msg: &MessageRow<'_>,
        events: &[Event],
        effects: &SideEffects,
        mails: &[NewMail],
    ) -> Result<Applied> {
        let MessageTx {
            writes: tx,
            now,
            ticket,
        } = self;
        let now_s = ts(now);
        let message_row = tx.prepare_insert(
            "INSERT INTO messages (mailbox, uidvalidity, uid, message_id, sender, content_hash, arrival, size, raw,
                                   class, outcome, reason, ticket_id, stored_at, reply_text)
             VALUES (?1, ?2, ?3, ?4, lower(?5), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .insert(params![
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
        if let (Some(t), Some(mid)) = (ticket, msg.message_id)
            && msg.outcome == Outcome::Processed
            && !effects.hold
        {
            tx.prepare_cached(
                "INSERT INTO thread_ids (message_id, ticket_id, origin) VALUES (?1, ?2, 'in') ON CONFLICT DO NOTHING",
            )?
            .execute(params![mid, t.0])?;
            // A delete that may match several rows collects them in a
            // temporary table first: most mail was awaited by nobody.
            let awaited = tx
                .prepare_cached("SELECT 1 FROM awaited_refs WHERE message_id = ?1 LIMIT 1")?
                .exists([mid])?;
            if awaited {
                tx.prepare_cached("DELETE FROM awaited_refs WHERE message_id = ?1")?
                    .execute([mid])?;
            }
        }
        if let Some(t) = ticket
            && msg.outcome == Outcome::Processed
        {
            let people = effects.awaited_people.join(",");
            for id in effects.awaited.iter().take(20) {
                tx.prepare_cached(
                    "INSERT INTO awaited_refs (message_id, ticket_id, people)
                     SELECT ?1, CAST(?2 AS BIGINT), ?3 WHERE NOT EXISTS (SELECT 1 FROM thread_ids WHERE message_id = ?1)
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![id, t.0, people])?;
            }
        }
        if let Some(t) = ticket {
            record_events(&tx, t, Some(message_row), events, now)?;
        }
        if matches!(msg.outcome, Outcome::Quarantined | Outcome::Spam) {
            let why = msg.reason.as_deref();
            let (mailbox, row) = (msg.origin.mailbox, message_row);
            super::webhooks::queue_for_quarantine(&tx, mailbox, ticket, row, why, now)?;
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
        if let Some(plan) = &effects.merge {
            super::merge::carry_out(&tx, plan, now)?;
        }
        advance_mailbox(&tx, &msg.origin, &now_s)?;
        if let Writes::Savepoint(sp) = tx {
            sp.commit()?;
        }
        Ok(Applied {
            message_row,
            ticket_id: ticket,
            queued,
        })
    }
}
