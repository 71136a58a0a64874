//! Webhook deliveries: the subscriptions of this connection's configuration, a delivery row written in the transaction of each event a webhook wants (its id and body fixed then), and the sender's due rows, attempts and results.

use super::columns::{parse_ts, ts, ts_column};
use super::conn::Store;
use super::db::{Conn, OptionalExtension, Params, params};
use crate::hooks::{self, Occurrence};
use crate::model::{Event, HookEvent, HookTicket, Subscription, TicketId};
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// One delivery as the sender and the listing read it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub webhook: String,
    pub event: String,
    /// `webhook-id`: the same on every attempt.
    pub msg_id: String,
    pub ticket_id: Option<i64>,
    pub body: String,
    /// queued, delivered or failed.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last answer, if one came.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

const COLS: &str = "id, webhook, event, msg_id, ticket_id, body, status, attempts, next_attempt_at, created_at, settled_at, last_status, last_error";

impl Store {
    /// The webhooks events are queued for on this connection, under the
    /// daemon's `pack`.
    pub fn set_webhooks(&mut self, pack: &str, subs: &[Subscription]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM temp.webhook_subscriptions", ())?;
        let mut rows = Vec::with_capacity(subs.len());
        for s in subs {
            let row = [s.name.clone(), pack.to_string(), serde_json::to_string(s)?];
            tx.execute(
                "INSERT INTO temp.webhook_subscriptions (name, pack, spec) VALUES (?1, ?2, ?3)",
                params![row[0], row[1], row[2]],
            )?;
            rows.push(row);
        }
        tx.commit()?;
        if let super::db::Conn::Postgres(pg) = &self.conn {
            pg.remember_subscriptions(rows);
        }
        Ok(())
    }

    fn delivery_rows(&self, sql: &str, p: impl Params) -> Result<Vec<DeliveryRow>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(p, |r| {
                Ok(DeliveryRow {
                    id: r.get(0)?,
                    webhook: r.get(1)?,
                    event: r.get(2)?,
                    msg_id: r.get(3)?,
                    ticket_id: r.get(4)?,
                    body: r.get(5)?,
                    status: r.get(6)?,
                    attempts: r.get::<_, i64>(7)? as u32,
                    next_attempt_at: ts_column(r, 8)?,
                    created_at: ts_column(r, 9)?,
                    settled_at: r
                        .get::<_, Option<String>>(10)?
                        .and_then(|s| parse_ts(&s).ok()),
                    last_status: r.get::<_, Option<i64>>(11)?.map(|s| s as u16),
                    last_error: r.get(12)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Queued deliveries whose time has come, taken from each webhook in
    /// turn (its oldest first): a backlog for a receiver that is down does
    /// not hold back another webhook's page.
    pub fn due_deliveries(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<DeliveryRow>> {
        self.delivery_rows(
            &format!(
                "SELECT {COLS} FROM (
                    SELECT *, row_number() OVER (PARTITION BY webhook ORDER BY next_attempt_at, id) AS turn
                    FROM webhook_deliveries WHERE status = 'queued' AND next_attempt_at <= ?1) AS due
                 ORDER BY turn, next_attempt_at, id LIMIT ?2"
            ),
            params![ts(now), limit as i64],
        )
    }

    /// When the next queued delivery falls due.
    pub fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>> {
        let s: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'queued'",
            )?
            .query_row((), |r| r.get(0))?;
        s.map(|s| parse_ts(&s)).transpose()
    }

    /// Every delivery (or those of `status`), oldest first.
    pub fn deliveries(&self, status: Option<&str>) -> Result<Vec<DeliveryRow>> {
        match status {
            Some(s) => self.delivery_rows(
                &format!("SELECT {COLS} FROM webhook_deliveries WHERE status = ?1 ORDER BY id"),
                [s],
            ),
            None => self.delivery_rows(
                &format!("SELECT {COLS} FROM webhook_deliveries ORDER BY id"),
                (),
            ),
        }
    }

    /// Counts an attempt before it is made and sets when the next one is due
    /// should this one never report (the process dies on the wire): a
    /// delivery that kills its sender still runs out of lifetime. Returns the
    /// attempts so far, this one included; `None` when it is no longer queued.
    /// Only a delivery still due at `now` is begun: of several daemons
    /// that read it due, one attempts it.
    pub fn begin_delivery(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
        retry_at: DateTime<Utc>,
    ) -> Result<Option<u32>> {
        let n: Option<i64> = self
            .conn
            .prepare_cached(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?2
                 WHERE id = ?1 AND status = 'queued' AND next_attempt_at <= ?3 RETURNING attempts",
            )?
            .query_row(params![id, ts(retry_at), ts(now)], |r| r.get(0))
            .optional()?;
        Ok(n.map(|n| n as u32))
    }

    /// Records an attempt's outcome: `status` delivered or failed (settled
    /// now), or queued again at the time `begin_delivery` set.
    pub fn end_delivery(
        &mut self,
        id: i64,
        status: &str,
        http: Option<u16>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let settled = (status != "queued").then(|| ts(now));
        self.conn
            .prepare_cached(
                "UPDATE webhook_deliveries SET status = ?2, last_status = ?3, last_error = ?4,
                        settled_at = ?5
                 WHERE id = ?1 AND status = 'queued'",
            )?
            .execute(params![id, status, http, error, settled])?;
        Ok(())
    }
}

/// The subscriptions of the connection, with the pack in force.
fn subscriptions(tx: &Conn) -> Result<Vec<(String, Subscription)>> {
    let mut stmt = tx.prepare_cached("SELECT pack, spec FROM temp.webhook_subscriptions")?;
    let rows = stmt
        .query_map((), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(p, s)| Some((p, serde_json::from_str(&s).ok()?)))
        .collect())
}

/// What an event adds to its body (never the customer's words).
fn detail(e: &Event) -> Value {
    match e {
        Event::TimerFired {
            timer,
            key,
            due,
            late,
            ..
        } => json!({ "timer": timer, "step": key, "due": hooks::utc(*due), "late": late }),
        Event::StatusChanged { from, to, by } => json!({ "from": from, "to": to, "by": by }),
        Event::SeverityChanged { from, to, by } => json!({ "from": from, "to": to, "by": by }),
        Event::Assigned { to, by } => json!({ "to": to, "by": by }),
        Event::Rma {
            part, code, rule, ..
        } => json!({ "part": part, "code": code, "rule": rule }),
        Event::Unverified { from, why } => json!({ "from": from, "why": why }),
        Event::SendFailed { error } => json!({ "error": error }),
        Event::Reopened { was } => json!({ "was": was }),
        _ => Value::Null,
    }
}

/// A ticket as the filters and bodies read it.
struct TicketFacts {
    mailbox: String,
    status: String,
    severity: Option<u8>,
    subject: String,
}

fn ticket_of(tx: &Conn, t: TicketId) -> Result<Option<TicketFacts>> {
    tx.prepare_cached("SELECT mailbox, status, severity, subject FROM tickets WHERE id = ?1")?
        .query_row([t.0], |r| {
            Ok(TicketFacts {
                mailbox: r.get(0)?,
                status: r.get(1)?,
                severity: r.get::<_, Option<i64>>(2)?.map(|s| s as u8),
                subject: r.get(3)?,
            })
        })
        .optional()
}

fn reply_text(tx: &Conn, message_row: Option<i64>) -> Result<Option<String>> {
    let Some(row) = message_row else {
        return Ok(None);
    };
    Ok(tx
        .prepare_cached("SELECT reply_text FROM messages WHERE id = ?1")?
        .query_row([row], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// Queues, in the transaction `tx` that records `event` on `ticket`, a
/// delivery for each webhook that wants it. `siblings` are the other events
/// of the same mail (a new ticket's policy names its rules).
pub(super) fn queue_for_event(
    tx: &Conn,
    ticket: TicketId,
    message_row: Option<i64>,
    event: &Event,
    siblings: &[Event],
    now: DateTime<Utc>,
) -> Result<()> {
    let Some((ev, rule)) = HookEvent::of(event) else {
        return Ok(());
    };
    let subs = subscriptions(tx)?;
    if subs.is_empty() {
        return Ok(());
    }
    let Some(TicketFacts {
        mailbox,
        status,
        severity,
        subject,
    }) = ticket_of(tx, ticket)?
    else {
        return Ok(());
    };
    let rules: Vec<String> = match ev {
        HookEvent::TicketCreated => siblings
            .iter()
            .find_map(|e| match e {
                Event::Policy(p) => Some(p.rules.clone()),
                _ => None,
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let state = match ev {
        HookEvent::TicketClosed => "closed".to_string(),
        _ => status,
    };
    let mut o = Occurrence {
        event: ev,
        ticket: Some(ticket.0),
        mailbox,
        state: Some(state),
        severity,
        rule: rule.map(str::to_string).or_else(|| rules.first().cloned()),
        rules,
        pack: String::new(),
        at: now,
        detail: detail(event),
        text: None,
        subject: None,
    };
    let text = match ev {
        HookEvent::TicketCreated | HookEvent::TicketUpdated => reply_text(tx, message_row)?,
        _ => None,
    };
    for (pack, sub) in subs {
        let t = HookTicket {
            mailbox: &o.mailbox,
            severity: o.severity,
        };
        if !sub.wants(ev, &t, &pack) {
            continue;
        }
        o.pack = pack;
        (o.text, o.subject) = match sub.include_text {
            true => (text.clone(), Some(subject.clone())),
            false => (None, None),
        };
        insert(tx, &sub, &o, message_row)?;
    }
    Ok(())
}

/// Queues, in the transaction that stores it, a `mail.quarantined` delivery
/// for each webhook that wants to hear of mail set aside in `mailbox`.
pub(super) fn queue_for_quarantine(
    tx: &Conn,
    mailbox: &str,
    ticket: Option<TicketId>,
    message_row: i64,
    why: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let ev = HookEvent::MailQuarantined;
    let subs = subscriptions(tx)?;
    if subs.is_empty() {
        return Ok(());
    }
    let mut o = Occurrence {
        event: ev,
        ticket: ticket.map(|t| t.0),
        mailbox: mailbox.to_string(),
        state: None,
        severity: None,
        rule: None,
        rules: Vec::new(),
        pack: String::new(),
        at: now,
        detail: json!({ "why": why, "message": message_row }),
        text: None,
        subject: None,
    };
    for (pack, sub) in subs {
        let t = HookTicket {
            mailbox,
            severity: None,
        };
        if sub.wants(ev, &t, &pack) {
            o.pack = pack;
            insert(tx, &sub, &o, Some(message_row))?;
        }
    }
    Ok(())
}

fn insert(tx: &Conn, sub: &Subscription, o: &Occurrence, message_row: Option<i64>) -> Result<()> {
    let body = hooks::body(sub.kind, &sub.name, o);
    let at = ts(o.at);
    tx.prepare_cached(
        "INSERT INTO webhook_deliveries (webhook, event, msg_id, ticket_id, message_row, body,
                                         next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        sub.name,
        o.event.as_str(),
        format!("msg_{}", crate::secret::random_hex128()),
        o.ticket,
        message_row,
        body,
        at
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver that is down holds a backlog of deliveries, each taking
    /// its whole timeout: a page for another webhook, queued later, is still
    /// in the next batch, not behind the backlog.
    #[test]
    fn a_backlog_for_one_webhook_does_not_hold_back_anothers_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::open(&dir.path().join("t.db")).unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-11-21T08:00:00Z")
            .unwrap()
            .to_utc();
        let add = |webhook: &str, n: i64| {
            let at = ts(t0 + chrono::Duration::seconds(n));
            st.conn
                .execute(
                    "INSERT INTO webhook_deliveries (webhook, event, msg_id, body, next_attempt_at, created_at)
                     VALUES (?1, 'ticket.created', ?2, '{}', ?3, ?3)",
                    params![webhook, format!("msg_{webhook}_{n}"), at],
                )
                .unwrap();
        };
        for n in 0..40 {
            add("chat", n);
        }
        add("pager", 50);
        add("chat", 51);
        let due = st
            .due_deliveries(t0 + chrono::Duration::seconds(60), 16)
            .unwrap();
        assert_eq!(due.len(), 16);
        assert!(due.iter().any(|r| r.webhook == "pager"), "{due:?}");
        // Each webhook's own deliveries still go oldest first.
        let chat: Vec<&str> = due
            .iter()
            .filter(|r| r.webhook == "chat")
            .map(|r| r.msg_id.as_str())
            .collect();
        let expected: Vec<String> = (0..15).map(|n| format!("msg_chat_{n}")).collect();
        assert_eq!(chat, expected);
    }
}
