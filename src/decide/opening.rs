//! A ticket a proven member opens for a customer: the customer's forwarded mail read as any mail is read, the checks that keep it a customer's, and the ticket as the member's commands see it. Pure.

use super::plan::{Decision, Input};
use crate::classify::{Class, Classification, classify_message};
use crate::extract::{Extracted, extract};
use crate::model::{Opening, PendingTimer, TicketInfo, TicketStatus, TicketWrite, TimerState};
use crate::parse::{Inbound, parse};
use chrono::{DateTime, Utc};

/// A forwarded customer's mail, read as ticketd reads every mail.
pub(super) struct CustomerMail {
    pub inbound: Inbound,
    pub classification: Classification,
    pub extracted: Extracted,
}

/// Why `address` cannot be a customer a member opens a ticket for.
pub(super) fn not_a_customer(i: &Input<'_>, address: &str) -> Option<String> {
    if i.staff.member_by_address(address).is_some() {
        return Some(format!(
            "{address} is a staff member's address: a ticket is opened for a customer"
        ));
    }
    if i.identity.is_own(address) {
        return Some(format!("{address} is one of ticketd's own addresses"));
    }
    None
}

/// The forwarded mail of `o`, read; refused when it has no sender, is from
/// staff or ourselves, or is a machine's.
pub(super) fn read_forwarded(i: &Input<'_>, o: &Opening) -> Result<CustomerMail, String> {
    let inbound = parse(&o.raw, i.inbound.arrival);
    let Some(from) = inbound
        .from
        .as_ref()
        .map(|a| a.address.to_ascii_lowercase())
    else {
        return Err(format!(
            "the forwarded mail ({}) names no sender it could be read from",
            o.format
        ));
    };
    if let Some(why) = not_a_customer(i, &from) {
        return Err(format!("the forwarded mail is from {from}: {why}"));
    }
    let classification = classify_message(&o.raw, &inbound, i.identity);
    if classification.class != Class::Human {
        return Err(format!(
            "the forwarded mail from {from} is a machine's ({}): ticketd answers no machine",
            classification.class.as_str()
        ));
    }
    let extracted = extract(&inbound, &i.pack.patterns, i.ticket_prefix);
    Ok(CustomerMail {
        inbound,
        classification,
        extracted,
    })
}

/// The ticket a decision opens, as the commands run on it see it: its
/// number the next one, the customer's, the timers it sets running.
pub(super) fn opened_ticket(
    d: &Decision,
    mailbox: &str,
    owner: &str,
    now: DateTime<Utc>,
) -> Option<TicketInfo> {
    let TicketWrite::New {
        subject,
        status,
        language,
        requester,
        ..
    } = &d.ticket
    else {
        return None;
    };
    Some(TicketInfo {
        id: d.ticket_view.id?,
        subject: subject.clone(),
        status: *status,
        requester: requester.clone(),
        language: language.clone(),
        mailbox: mailbox.to_string(),
        participants: vec![requester.clone()],
        created_at: now,
        facts: d
            .policy
            .as_ref()
            .map(|p| p.facts.clone())
            .unwrap_or_default(),
        staff_notes: vec![],
        updated_at: now,
        severity: d.policy.as_ref().map(|p| p.severity),
        last_answer: None,
        owner: Some(owner.to_string()),
        timers: d
            .effects
            .timers
            .iter()
            .map(|t| PendingTimer {
                kind: t.kind,
                cause: t.cause.clone(),
                state: TimerState::Running { due: t.due },
            })
            .collect(),
        rmas: vec![],
        merged_into: None,
    })
}

/// A new open ticket of `requester` with nothing on it yet (`#open ADDRESS`).
pub(super) fn blank_ticket(
    i: &Input<'_>,
    requester: &str,
    subject: &str,
    language: &str,
    owner: &str,
) -> TicketInfo {
    TicketInfo {
        id: i.lookup.next_ticket_id,
        subject: subject.to_string(),
        status: TicketStatus::Open,
        requester: requester.to_string(),
        language: language.to_string(),
        mailbox: i.mailbox.name.to_string(),
        participants: vec![requester.to_string()],
        created_at: i.now,
        facts: vec![],
        staff_notes: vec![],
        updated_at: i.now,
        severity: None,
        last_answer: None,
        owner: Some(owner.to_string()),
        timers: vec![],
        rmas: vec![],
        merged_into: None,
    }
}
