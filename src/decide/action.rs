//! Staff actions on a ticket from the shell (and, later, by mail): an answer sent to the customer, an internal note. Pure: each gives the change to write.

use super::*;
use crate::model::TicketChange;

/// Who acts and where the ticket's mail goes, for a staff action.
#[derive(Debug, Clone, Copy)]
pub struct ActionInput<'a> {
    pub pack: &'a Pack,
    pub identity: &'a Identity,
    /// The address the ticket's mailbox answers from.
    pub from_address: &'a str,
    /// The customer's last mail on the ticket, which our mail answers.
    pub thread: Option<&'a str>,
    pub by: &'a str,
    pub now: DateTime<Utc>,
}

/// A staff answer to the customer, sent in their thread from the ticket's
/// mailbox as the person's own mail (`Auto-Submitted: no`, no rate-limit
/// bucket). It is the first response (the SLA timers end) and the ticket
/// then waits on the customer.
pub fn staff_reply(
    ticket: &TicketInfo,
    body: &str,
    i: &ActionInput<'_>,
) -> Result<TicketChange<ReplyPlan>, String> {
    if ticket.status == TicketStatus::Closed {
        return Err(format!("ticket {} is closed: reopen it first", ticket.id));
    }
    let body = body.trim_end();
    if body.trim().is_empty() {
        return Err("the answer is empty".into());
    }
    let language = Language::parse(&ticket.language).unwrap_or(i.pack.language);
    let to = vec![ticket.requester.clone()];
    let mut change = TicketChange::default();
    change.events.push(Event::StaffReply {
        by: i.by.to_string(),
        to: to.clone(),
    });
    change.cancel_timers = super::sla::answered(ticket, i.by);
    if ticket.status != TicketStatus::WaitingCustomer {
        change.status = Some(TicketStatus::WaitingCustomer);
        change.events.push(Event::StatusChanged {
            from: ticket.status,
            to: TicketStatus::WaitingCustomer,
            by: i.by.to_string(),
        });
    }
    change.mails.push(ReplyPlan {
        template: "staff_reply",
        to,
        language,
        from_address: i.from_address.to_string(),
        auto_submitted: AutoSubmitted::Person,
        in_reply_to: i.thread.map(String::from),
        references: i.thread.map(String::from).into_iter().collect(),
        data: json!({"body": body}),
    });
    Ok(change)
}

/// An internal note on the ticket: an event, never sent to the customer.
pub fn note(text: &str, by: &str) -> Result<TicketChange<ReplyPlan>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the note is empty".into());
    }
    Ok(TicketChange {
        events: vec![Event::Note {
            by: by.to_string(),
            text: text.to_string(),
        }],
        ..TicketChange::default()
    })
}

/// Staff set a ticket's state (`ticketd close|reopen|status`): closing ends
/// every pending timer; waiting on the customer pauses the SLA clock and
/// sets the pack's reminder and close; leaving that state resumes the clock.
pub fn set_status(
    ticket: &TicketInfo,
    to: TicketStatus,
    i: &ActionInput<'_>,
) -> Result<TicketChange<ReplyPlan>, String> {
    if ticket.status == to {
        return Err(format!("ticket {} is already {to}", ticket.id));
    }
    let mut change = TicketChange {
        status: Some(to),
        events: vec![Event::StatusChanged {
            from: ticket.status,
            to,
            by: i.by.to_string(),
        }],
        ..TicketChange::default()
    };
    if to == TicketStatus::Closed {
        change.cancel_timers = ticket
            .timers
            .iter()
            .map(|t| crate::model::TimerCancel {
                kind: t.kind,
                key: t.key.clone(),
                why: format!("the ticket was closed by {}", i.by),
            })
            .collect();
        return Ok(change);
    }
    let (set, cancel, updates) = super::waiting::on_state(
        i.pack,
        &ticket.timers,
        &[],
        to,
        &[],
        &format!("the ticket was set {to} by {}", i.by),
        i.now,
    );
    change.set_timers = set;
    change.cancel_timers = cancel;
    change.timer_updates = updates;
    Ok(change)
}
