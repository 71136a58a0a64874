//! Reads for intake and the decision: mailbox high-water marks, a ticket as the decision sees it, duplicates, contacts, quotas and reply buckets.

use super::columns::{parse_ts, status_column, ts};
use super::conn::Store;
use super::db::{Backend, OptionalExtension, Row, params};
use super::rows::MailboxState;
use crate::dsn::Bounce;
use crate::model::{
    BucketLevel, ContactInfo, Duplicate, Lookup, Outcome, PendingTimer, TicketId, TicketInfo,
    TimerKind,
};
use anyhow::{Result, anyhow};
use chrono::{DateTime, NaiveDate, Utc};

impl Store {
    pub fn mailbox_state(&self, mailbox: &str) -> Result<Option<MailboxState>> {
        self.conn
            .prepare_cached("SELECT uidvalidity, last_uid FROM mailbox_state WHERE mailbox = ?1")?
            .query_row([mailbox], |r| {
                Ok(MailboxState {
                    uidvalidity: r.get::<_, i64>(0)? as u32,
                    last_uid: r.get::<_, i64>(1)? as u32,
                })
            })
            .optional()
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
    ) -> Result<Vec<(u32, Outcome)>> {
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
                let o = Outcome::parse(&o)
                    .ok_or_else(|| anyhow!("unknown outcome {o:?} in the database"))?;
                out.push((u, o));
            }
        }
        Ok(out)
    }

    pub fn ticket(&self, id: TicketId) -> Result<Option<TicketInfo>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT t.subject, t.status, c.address, t.language, t.created_at, t.mailbox, t.updated_at,
                        t.severity, (SELECT max(e.at) FROM ticket_events e WHERE e.ticket_id = t.id AND e.kind = 'staff_reply'),
                        t.owner, t.merged_into
                 FROM tickets t JOIN contacts c ON c.id = t.requester_id WHERE t.id = ?1",
            )?
            .query_row([id.0], |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        status_column(r, 1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ),
                    (
                        super::columns::ts_column(r, 4)?,
                        r.get::<_, String>(5)?,
                        super::columns::ts_column(r, 6)?,
                        r.get::<_, Option<u8>>(7)?,
                        super::columns::opt_ts_column(r, 8)?,
                        r.get::<_, Option<String>>(9)?,
                        r.get::<_, Option<i64>>(10)?.map(TicketId),
                    ),
                ))
            })
            .optional()?;
        let Some((
            (subject, status, requester, language),
            (created_at, mailbox, updated_at, severity, last_answer, owner, merged_into),
        )) = row
        else {
            return Ok(None);
        };
        let timers = self
            .conn
            .prepare_cached(
                "SELECT kind, cause, due_at, paused_secs FROM timers
                 WHERE ticket_id = ?1 AND state IN ('pending', 'paused')
                 ORDER BY due_at IS NULL, due_at, id",
            )?
            .query_map([id.0], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    super::timer_columns::cause_column(r, 1)?,
                    super::timer_columns::state_columns(r, 2)?,
                ))
            })?
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter_map(|(kind, cause, state)| {
                Some(PendingTimer {
                    kind: TimerKind::parse(&kind)?,
                    cause,
                    state,
                })
            })
            .collect();
        let facts = self
            .conn
            .prepare_cached("SELECT fact FROM ticket_facts WHERE ticket_id = ?1 ORDER BY id")?
            .query_map([id.0], |r| r.get::<_, String>(0))?
            .collect::<Result<_>>()?;
        let staff_notes = self
            .conn
            .prepare_cached(
                "SELECT detail FROM ticket_events WHERE ticket_id = ?1 AND kind = 'staff' ORDER BY id",
            )?
            .query_map([id.0], |r| r.get::<_, String>(0))?
            .collect::<Result<_>>()?;
        let participants = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT lower(sender) FROM messages WHERE ticket_id = ?1 AND sender IS NOT NULL",
            )?
            .query_map([id.0], |r| r.get::<_, String>(0))?
            .collect::<Result<_>>()?;
        Ok(Some(TicketInfo {
            id,
            subject,
            status,
            requester,
            language,
            mailbox,
            participants,
            created_at,
            facts,
            staff_notes,
            updated_at,
            severity,
            last_answer,
            owner,
            timers,
            rmas: self.rmas(id)?,
            merged_into,
        }))
    }

    /// The ticket whose stored mail referenced Message-ID `id` before it
    /// came, and that mail's people.
    fn awaited_by(&self, id: &str) -> Result<Option<(TicketInfo, Vec<String>)>> {
        let row: Option<(i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT ticket_id, people FROM awaited_refs WHERE message_id = ?1
                 ORDER BY ticket_id LIMIT 1",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((t, people)) = row else {
            return Ok(None);
        };
        Ok(self.ticket(TicketId(t))?.map(|t| {
            let people = people
                .split(',')
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            (t, people)
        }))
    }

    /// The ticket that any of `ids` (Message-IDs, nearest first) belongs to.
    pub fn ticket_by_message_ids(&self, ids: &[String]) -> Result<Option<TicketInfo>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT ticket_id FROM thread_ids WHERE message_id = ?1")?;
        for id in ids.iter().take(50) {
            if let Some(t) = stmt.query_row([id], |r| r.get::<_, i64>(0)).optional()? {
                return self.ticket(TicketId(t));
            }
        }
        Ok(None)
    }

    pub fn contact(&self, address: &str) -> Result<Option<ContactInfo>> {
        self
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
            .optional()
    }

    /// A stored message that is the same mail: same Message-ID from the same
    /// sender (the copy in another of our mailboxes), or the same bytes.
    pub fn duplicate(
        &self,
        message_id: Option<&str>,
        sender: Option<&str>,
        content_hash: &str,
    ) -> Result<Option<Duplicate>> {
        let map = |r: &Row<'_>| {
            Ok(Duplicate {
                row: r.get(0)?,
                mailbox: r.get(1)?,
                ticket_id: r.get::<_, Option<i64>>(2)?.map(TicketId),
            })
        };
        if let Some(id) = message_id {
            let d = self.conn.prepare_cached("SELECT id, mailbox, ticket_id FROM messages
                     WHERE message_id = ?1 AND coalesce(lower(sender), '') = lower(?2) AND outcome NOT IN ('quarantined', 'spam')
                     ORDER BY id LIMIT 1")?.query_row(params![id, sender.unwrap_or("")],
                    map,
                )
                .optional()?;
            if d.is_some() {
                return Ok(d);
            }
        }
        self.conn.prepare_cached("SELECT id, mailbox, ticket_id FROM messages WHERE content_hash = ?1 AND outcome NOT IN ('quarantined', 'spam')
                 ORDER BY id LIMIT 1")?.query_row([content_hash],
                map,
            )
            .optional()
    }

    /// The number the next ticket opened will get (AUTOINCREMENT never reuses one).
    pub fn next_ticket_id(&self) -> Result<TicketId> {
        let sql = match self.conn.backend() {
            Backend::Sqlite => "SELECT seq FROM sqlite_sequence WHERE name = 'tickets'",
            // The sequence is shared by every daemon: this is the next as
            // far as this connection can see.
            Backend::Postgres => {
                "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM tickets_id_seq"
            }
        };
        let seq: Option<i64> = self
            .conn
            .prepare_cached(sql)?
            .query_row((), |r| r.get(0))
            .optional()?;
        Ok(TicketId(seq.unwrap_or(0) + 1))
    }

    /// Everything the decision needs to know about a mail from the database.
    pub fn lookup(
        &self,
        tag: Option<i64>,
        referenced_ids: &[String],
        message_id: Option<&str>,
        sender: Option<&str>,
        content_hash: &str,
        bounce: Option<&Bounce>,
    ) -> Result<Lookup> {
        let bounced_id = bounce.and_then(|b| b.original_message_id.as_deref());
        // A merged ticket's tag names the ticket it was merged into.
        let tagged = match tag {
            Some(id) => self.ticket(self.surviving(TicketId(id))?)?,
            None => None,
        };
        let referenced = self.ticket_by_message_ids(referenced_ids)?;
        // Stored mail referred to this one before it came, or (another
        // follow-up of the same mail came first) to what this one answers.
        let mut awaited_by = match message_id {
            Some(id) => self.awaited_by(id)?,
            None => None,
        };
        if awaited_by.is_none() && referenced.is_none() {
            for id in referenced_ids.iter().take(20) {
                awaited_by = self.awaited_by(id)?;
                if awaited_by.is_some() {
                    break;
                }
            }
        }
        // A bounce counts only when it returns mail ticketd itself sent (an
        // outbox row): a Message-ID of stored inbound mail, which its sender
        // chose, returns nothing of ours.
        let returned: Option<(Option<i64>, String)> = match bounced_id {
            Some(id) => self
                .conn
                .prepare_cached("SELECT ticket_id, rcpt_to FROM outbox WHERE message_id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?,
            None => None,
        };
        let bounced = match returned.as_ref().and_then(|(t, _)| *t) {
            Some(t) => self.ticket(TicketId(t))?,
            None => None,
        };
        let bounced_rcpt: Vec<String> = returned
            .map(|(_, j)| serde_json::from_str::<Vec<String>>(&j).unwrap_or_default())
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.to_ascii_lowercase())
            .collect();
        let mut keys: Vec<String> = Vec::new();
        if let Some(s) = sender {
            keys.push(format!("rcpt:{}", s.to_ascii_lowercase()));
        }
        for t in [&tagged, &referenced].into_iter().flatten() {
            keys.push(format!("ticket:{}", t.id));
        }
        Ok(Lookup {
            customer_thread: None,
            customer_undeliverable: false,
            tagged,
            referenced,
            awaited_by,
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
            merge_into: None,
            merge_thread: None,
            organisations: Default::default(),
            opening: None,
        })
    }

    /// The ticket `id`'s mail lands on: itself, or the ticket it was merged
    /// into (and so on, a few steps at most).
    pub fn surviving(&self, id: TicketId) -> Result<TicketId> {
        let mut id = id;
        for _ in 0..8 {
            let next: Option<Option<i64>> = self
                .conn
                .prepare_cached("SELECT merged_into FROM tickets WHERE id = ?1")?
                .query_row([id.0], |r| r.get(0))
                .optional()?;
            match next.flatten() {
                Some(n) => id = TicketId(n),
                None => break,
            }
        }
        Ok(id)
    }

    /// The organisation of `address`: the company of its contract (the
    /// latest purchased), if the entitlements know one.
    pub fn organisation(&self, address: &str) -> Result<Option<String>> {
        self.conn
            .prepare_cached(
                "SELECT company FROM contracts WHERE email = ?1
                 ORDER BY purchased_on DESC, serial_key ASC LIMIT 1",
            )?
            .query_row([crate::contracts::address_key(address)], |r| r.get(0))
            .optional()
    }

    /// How many tickets of contract `serial` were charged to quota `quota` in
    /// the period starting `since` (the `quota_uses` projection).
    pub fn quota_used(&self, quota: &str, serial: &str, since: NaiveDate) -> Result<u32> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM quota_uses
                 WHERE quota = ?1 AND contract = ?2 AND period_start = ?3 AND charged = 1",
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
}
