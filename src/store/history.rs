//! One ticket's whole history for `ticketd ticket N`: its messages with what each person wrote now, events, timers in every state, RMAs and outgoing mail.

use super::columns::status_column;
use super::columns::ts_column;
use super::conn::Store;
use super::db::OptionalExtension;
use super::rows::OutboxRow;
use crate::model::{Event, RmaRecord, TicketId, TicketStatus};
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub struct TicketHistory {
    pub id: TicketId,
    pub subject: String,
    pub status: TicketStatus,
    pub requester: String,
    pub mailbox: String,
    pub language: String,
    pub created_at: DateTime<Utc>,
    /// The staff member it is assigned to.
    pub owner: Option<String>,
    pub messages: Vec<HistoryMessage>,
    pub events: Vec<HistoryEvent>,
    pub timers: Vec<HistoryTimer>,
    pub rma: Vec<RmaRecord>,
    pub outbox: Vec<OutboxRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryMessage {
    pub row: i64,
    pub arrival: DateTime<Utc>,
    pub sender: Option<String>,
    pub mailbox: String,
    pub class: String,
    pub outcome: String,
    /// What the person wrote now, without quoted history and signature.
    pub new_text: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEvent {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryTimer {
    pub kind: String,
    /// Its cause, as people read it.
    pub key: String,
    /// `None` while paused (an SLA clock while the ticket waits on the customer).
    pub due: Option<DateTime<Utc>>,
    pub rule: String,
    pub to: Option<String>,
    pub state: String,
    pub reason: Option<String>,
}

impl Store {
    /// Ticket `id`'s history, or `None` when there is no such ticket.
    pub fn history(&self, id: TicketId) -> Result<Option<TicketHistory>> {
        let head = self
            .conn
            .query_row(
                "SELECT t.subject, t.status, c.address, t.mailbox, t.language, t.created_at, t.owner
                 FROM tickets t JOIN contacts c ON c.id = t.requester_id WHERE t.id = ?1",
                [id.0],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        status_column(r, 1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        ts_column(r, 5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((subject, status, requester, mailbox, language, created_at, owner)) = head else {
            return Ok(None);
        };
        let messages = self
            .conn
            .prepare(
                "SELECT id, arrival, sender, mailbox, class, outcome, reply_text
                 FROM messages WHERE ticket_id = ?1 ORDER BY id",
            )?
            .query_map([id.0], |r| {
                Ok(HistoryMessage {
                    row: r.get(0)?,
                    arrival: ts_column(r, 1)?,
                    sender: r.get(2)?,
                    mailbox: r.get(3)?,
                    class: r.get(4)?,
                    outcome: r.get(5)?,
                    new_text: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        let events = self
            .conn
            .prepare("SELECT at, kind, detail FROM ticket_events WHERE ticket_id = ?1 ORDER BY id")?
            .query_map([id.0], |r| {
                Ok(HistoryEvent {
                    at: ts_column(r, 0)?,
                    kind: r.get(1)?,
                    detail: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        let timers = self
            .conn
            .prepare(
                "SELECT kind, cause, due_at, rule, recipient, state, reason
                 FROM timers WHERE ticket_id = ?1 ORDER BY due_at IS NULL, due_at, id",
            )?
            .query_map([id.0], |r| {
                Ok(HistoryTimer {
                    kind: r.get(0)?,
                    key: super::timer_columns::cause_column(r, 1)?.to_string(),
                    due: super::columns::opt_ts_column(r, 2)?,
                    rule: r.get(3)?,
                    to: r.get(4)?,
                    state: r.get(5)?,
                    reason: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        let outbox = self.outbox_rows(
            &format!(
                "SELECT {} FROM outbox WHERE ticket_id = ?1 ORDER BY id",
                Self::OUTBOX_COLS
            ),
            [id.0],
        )?;
        Ok(Some(TicketHistory {
            rma: self.rmas(id)?,
            id,
            subject,
            status,
            requester,
            mailbox,
            language,
            created_at,
            owner,
            messages,
            events,
            timers,
            outbox,
        }))
    }
}

impl TicketHistory {
    /// The history as staff read it on a terminal, instants in `zone`.
    pub fn text(&self, zone: chrono_tz::Tz) -> String {
        let t = |at: DateTime<Utc>| {
            at.with_timezone(&zone)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string()
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "ticket {}: {}\n  {} from {} via {} ({}), opened {}",
            self.id,
            self.subject,
            self.status,
            self.requester,
            self.mailbox,
            self.language,
            t(self.created_at)
        );
        if let Some(o) = &self.owner {
            let _ = writeln!(s, "  assigned to {o}");
        }
        let _ = writeln!(s, "\nmessages:");
        for m in &self.messages {
            let _ = writeln!(
                s,
                "  {}  {} ({}, {}, row {})",
                t(m.arrival),
                m.sender.as_deref().unwrap_or("(no sender)"),
                m.class,
                m.outcome,
                m.row
            );
            for line in m.new_text.as_deref().unwrap_or_default().lines() {
                let _ = writeln!(s, "    | {line}");
            }
        }
        let _ = writeln!(s, "\nevents:");
        for e in &self.events {
            let detail = Event::from_stored(&e.kind, &e.detail)
                .map_or_else(|| e.detail.clone(), |ev| event_line(&ev, zone));
            let _ = writeln!(s, "  {}  {:<18} {}", t(e.at), e.kind, detail);
        }
        if !self.timers.is_empty() {
            let _ = writeln!(s, "\ntimers:");
            for x in &self.timers {
                let _ = writeln!(
                    s,
                    "  {}  {:<13} {:<10} {:<6} {}{}",
                    x.due.map_or_else(|| format!("{:<20}", "(paused)"), t),
                    x.kind,
                    x.state,
                    x.rule,
                    x.key,
                    x.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                );
            }
        }
        if !self.rma.is_empty() {
            let _ = writeln!(s, "\nRMA:");
            for r in &self.rma {
                let _ = writeln!(
                    s,
                    "  {:<12} {:<9} {:<10} {}{}",
                    if r.part.is_empty() {
                        "(whole unit)"
                    } else {
                        &r.part
                    },
                    r.state,
                    r.code.as_deref().unwrap_or("-"),
                    r.rule,
                    r.expires_at
                        .map(|e| format!(", expires {}", t(e)))
                        .unwrap_or_default()
                );
            }
        }
        let _ = writeln!(s, "\noutbox:");
        for o in &self.outbox {
            let _ = writeln!(
                s,
                "  #{:<5} {:<18} {:<7} to {}{}",
                o.id,
                o.kind,
                o.status,
                o.rcpt_to.join(", "),
                o.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
        s
    }
}

/// A structured event (policy, escalation_due, deadline, quota, timer_fired,
/// timer_cancelled, rma) as a line a person reads, instants in `zone`.
fn event_line(e: &Event, zone: chrono_tz::Tz) -> String {
    let t = |at: DateTime<Utc>| {
        at.with_timezone(&zone)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    match e {
        Event::Policy(p) => {
            let mut line = format!(
                "rules {}; severity {}, tier {}; clock starts {}; first response due {}",
                if p.rules.is_empty() {
                    "none".to_string()
                } else {
                    p.rules.join(", ")
                },
                p.severity,
                p.tier,
                t(p.clock_starts_at),
                p.first_response_due.map_or("none".to_string(), t),
            );
            if !p.missing.is_empty() {
                let _ = write!(line, "; missing {}", p.missing.join(", "));
            }
            let _ = write!(line, " (pack {})", p.pack);
            line
        }
        Event::EscalationDue { at, to, rule } => format!("to {to} due {} ({rule})", t(*at)),
        Event::Deadline {
            id,
            at,
            remind_at,
            rule,
        } => format!(
            "{id} due {}{} ({rule})",
            t(*at),
            remind_at
                .map(|r| format!(", reminder {}", t(r)))
                .unwrap_or_default()
        ),
        Event::Quota(q) => format!(
            "{}: {} of {} used, {} left{} (contract {}, {})",
            q.id,
            q.used,
            q.limit,
            q.remaining,
            if q.charged { ", charged" } else { "" },
            q.contract,
            q.rule
        ),
        Event::TimerFired {
            timer,
            key,
            due,
            rule,
            late,
        } => format!(
            "{} {key} due {}{} ({rule})",
            timer.as_str(),
            t(*due),
            if *late { ", fired late" } else { "" }
        ),
        Event::TimerCancelled {
            timer,
            key,
            rule,
            why,
        } => format!("{} {key} cancelled: {why} ({rule})", timer.as_str()),
        Event::Rma {
            part,
            state,
            code,
            expires_at,
            rule,
            by,
            ..
        } => format!(
            "{} {state}{}{} ({rule}, by {by})",
            if part.is_empty() {
                "whole unit".to_string()
            } else {
                format!("part {part}")
            },
            code.as_deref()
                .map(|c| format!(", code {c}"))
                .unwrap_or_default(),
            expires_at
                .map(|x| format!(", expires {}", t(x)))
                .unwrap_or_default()
        ),
        other => other.detail(),
    }
}
