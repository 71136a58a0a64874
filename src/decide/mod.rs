//! The heart: a pure function from a mail and what the database knows to what should happen. No I/O, no clock.
//!
//! This file declares the parts, re-exports what the rest of ticketd uses
//! and holds [`decide`] itself (the sorting: a duplicate changes nothing, a
//! staff address's mail goes to `staff`, a machine's mail is recorded and
//! never answered, a person's mail runs the vendor's rules and is
//! acknowledged within the reply limits, unless the receiving server marked
//! it as spam). No part imports this file, and
//! the parts depend on each other one way (each imports only parts listed
//! before it):
//!
//! - `language`: the language a mail is written in.
//! - `plan`: the shared types (`Input`, `MailboxView`, `ReplyPlan`,
//!   `Decision`, `Evidence`) and helpers; `limits`: the reply buckets;
//!   `quarantine`.
//! - `timer`: what every timer kind shares (`TimerInput`, `TimerDecision`,
//!   the notice); above it the kinds: `escalation`, `sla`, `waiting` (what
//!   a ticket's new state does to its timers).
//! - `action`: the staff actions; `rma`: the RMA a new ticket asks for,
//!   the staff steps and its deadlines; `merge`: one ticket merged into
//!   another; `fire` (`on_timer`): a due timer sent to its kind's file.
//! - `opening`: a ticket a member opens for a customer (their forwarded
//!   mail read, the checks); `staff`: staff by mail; `person`, `machine`:
//!   a person's and a machine's mail.

mod action;
mod escalation;
mod fire;
#[cfg(test)]
pub(crate) mod fixtures;
mod language;
mod limits;
mod machine;
mod merge;
mod opening;
mod person;
mod plan;
mod quarantine;
mod rma;
mod sla;
mod staff;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_issue26;
mod timer;
mod waiting;
mod words;

pub use action::{ActionInput, assign, note, set_severity, set_status, staff_reply};
pub use fire::on_timer;
#[cfg(test)]
pub use fixtures::sample_template_data;
pub use limits::{bucket_level, extra_bucket_keys};
pub use merge::{MergeOutcome, MergeRequest, merge};
pub use plan::{Decision, Evidence, Input, MailboxView, ReplyPlan, TicketView};
pub use quarantine::{quarantine, spam};
pub use rma::{RmaOutcome, rma_action};
pub use staff::{authority, staff_target};
pub use timer::{TimerDecision, TimerInput};
pub use words::{Prepared, request_text};

use crate::classify::Class;
use crate::model::{Event, Language, Outcome, Sender, SideEffects, TicketInfo, TicketWrite};
use machine::machine;
use person::person;
use plan::ticket_subject;
use staff::from_staff;

/// The ticket this mail belongs to, and why; or why a tag or a reference
/// was not trusted. A subject tag, a ticket number, an In-Reply-To or
/// References pointing at a ticket's mail: each joins the ticket only when
/// the sender has written on it (its requester or a participant), so a
/// stranger who learns a ticket number or a Message-ID cannot write on it,
/// nor get its answers.
fn thread_of<'a>(i: &Input<'a>, reasons: &mut Vec<String>) -> Option<&'a TicketInfo> {
    let sender = i.inbound.sender_address().map(str::to_ascii_lowercase);
    let on = |t: &TicketInfo| {
        sender
            .as_deref()
            .is_some_and(|s| s == t.requester || t.participants.iter().any(|p| p == s))
    };
    if let Some(t) = &i.lookup.tagged {
        if on(t) {
            reasons.push(format!("subject tag names ticket {}", t.id));
            return Some(t);
        }
        // A stranger who knows a ticket number cannot write on it.
        reasons.push(format!(
            "subject tag names ticket {} but the sender has never written on it",
            t.id
        ));
    }
    if let Some(t) = &i.lookup.referenced {
        if on(t) {
            reasons.push(format!("In-Reply-To/References point at ticket {}", t.id));
            return Some(t);
        }
        reasons.push(format!(
            "In-Reply-To/References point at ticket {} but the sender has never written on it",
            t.id
        ));
        return None;
    }
    // Mail on a ticket referenced this one before it came (it waited in
    // another mailbox), or referenced the mail this one answers, which has
    // not come either: it joins that ticket, but only from someone on the
    // ticket or the sender of that mail, so a forged References (or a Cc)
    // cannot pull a stranger's mail in.
    if let (Some((t, people)), Some(s)) = (&i.lookup.awaited_by, sender.as_deref()) {
        if on(t) || people.iter().any(|p| p == s) {
            reasons.push(format!(
                "mail stored earlier on ticket {} refers to this one or to the mail it answers",
                t.id
            ));
            return Some(t);
        }
        reasons.push(format!(
            "mail on ticket {} refers to this one or to the mail it answers, but the sender was not its sender",
            t.id
        ));
    }
    None
}

/// The language of the replies, and why: the pack's own when it answers in
/// no other, else the ticket's, else the contact's known one, else the one
/// the mail is written in (when templates exist for it), else the pack's.
fn language_for(i: &Input<'_>, ticket: Option<&TicketInfo>) -> (Language, String) {
    if let Some(rules) = i.pack.policy.language_only() {
        return (
            i.pack.language,
            format!(
                "the pack answers in {} only ({})",
                i.pack.language.as_str(),
                rules.join(", ")
            ),
        );
    }
    if let Some(l) = ticket.and_then(|t| Language::parse(&t.language)) {
        return (l, "the ticket's language".into());
    }
    if let Some(l) = i
        .lookup
        .contact
        .as_ref()
        .and_then(|c| c.language.as_deref())
        .and_then(Language::parse)
    {
        return (l, "the contact's language".into());
    }
    let written_in = match i.prepared.and_then(|p| p.of(i.inbound, i.pack)) {
        Some(p) => p.written_in(),
        None => language::written_in(&request_text(i.inbound), words::declared_charset(i.inbound)),
    };
    if let Some((l, by)) = written_in {
        return (l, format!("the mail is written in {} ({by})", l.as_str()));
    }
    (i.pack.language, "the pack's language".into())
}

/// Decides what `i` should do. Pure: same input, same decision.
pub fn decide(i: &Input<'_>) -> Decision {
    let class = i.classification.class;
    let mut reasons = i.classification.reasons.clone();
    let mut events: Vec<Event> = Vec::new();
    let subject = ticket_subject(i);
    let base =
        |outcome, ticket, view: TicketView, language, replies: Vec<ReplyPlan>, reasons, events| {
            Decision {
                class,
                reasons,
                outcome,
                would_reply: replies.iter().any(|r| r.template.starts_with("ack")),
                ticket,
                ticket_view: view,
                subject: subject.clone(),
                language,
                language_reason: String::new(),
                replies,
                events,
                effects: SideEffects::default(),
                policy: None,
                sender: if class == Class::Human {
                    Sender::Customer
                } else {
                    Sender::Machine
                },
                proof: None,
                commands: vec![],
            }
        };
    let none = || TicketView {
        action: "none",
        id: None,
    };

    if class == Class::Unparseable {
        return quarantine(i, reasons);
    }

    if let Some(d) = &i.lookup.duplicate {
        reasons.push(format!(
            "the same mail is already stored (from mailbox {}), so nothing changes",
            d.mailbox
        ));
        let (ticket, view) = match d.ticket_id {
            Some(t) => {
                events.push(Event::Duplicate {
                    mailbox: i.mailbox.name.to_string(),
                });
                (
                    TicketWrite::Attach { id: t },
                    TicketView {
                        action: "update",
                        id: Some(t),
                    },
                )
            }
            None => (TicketWrite::None, none()),
        };
        return base(
            Outcome::Duplicate,
            ticket,
            view,
            i.pack.language,
            vec![],
            reasons,
            events,
        );
    }

    // A staff address's mail is staff mail, proven or not: never a customer's.
    if class == Class::Human
        && let Some(member) = i
            .inbound
            .sender_address()
            .and_then(|s| i.staff.member_by_address(s))
    {
        // A member's forward is decided as its customer's own mail would be.
        return from_staff(i, member, (reasons, events), &base, &decide);
    }

    // A person's mail the receiving server marked as spam is set aside, unanswered.
    if class == Class::Human
        && let Some(verdict) = &i.classification.spam
    {
        return spam(i, verdict, reasons);
    }

    let ticket = thread_of(i, &mut reasons);
    let (language, language_reason) = language_for(i, ticket);

    let mut d = if class != Class::Human {
        machine(i, ticket, language, reasons, events, &base)
    } else {
        person(i, ticket, language, reasons, events, &base)
    };
    // Someone naming a ticket they have never written on is no customer of it.
    if class == Class::Human
        && let Some(tagged) = &i.lookup.tagged
        && ticket.is_none_or(|t| t.id != tagged.id)
    {
        d.sender = Sender::Stranger;
    }
    if d.language == language {
        d.language_reason = language_reason;
    }
    d
}
