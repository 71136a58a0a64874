//! Staff actions on a ticket from the shell (and, later, by mail): an answer sent to the customer, an internal note. Pure: each gives the change to write.

use super::escalation::escalation_steps;
use super::plan::ReplyPlan;
use super::sla::answered;
use super::waiting::on_state;
use crate::compose::AutoSubmitted;
use crate::model::Identity;
use crate::model::{
    Event, Language, TicketChange, TicketInfo, TicketStatus, TimerCancel, TimerKind,
};
use crate::pack::Pack;
use chrono::{DateTime, Utc};
use serde_json::json;

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
    change.cancel_timers = answered(ticket, i.by);
    if ticket.status != TicketStatus::WaitingCustomer {
        change.status = Some(TicketStatus::WaitingCustomer);
        change.events.push(Event::StatusChanged {
            from: ticket.status,
            to: TicketStatus::WaitingCustomer,
            by: i.by.to_string(),
        });
    }
    // The ticket now waits on the customer: the pack's reminder and close
    // count from this answer (a later answer sets them again). The SLA
    // timers end above rather than pause.
    let others: Vec<_> = ticket
        .timers
        .iter()
        .filter(|t| !t.kind.is_sla())
        .cloned()
        .collect();
    let (set, cancel, _) = on_state(
        i.pack,
        &others,
        &[],
        TicketStatus::WaitingCustomer,
        &[],
        &format!("answered again by {}", i.by),
        i.now,
    );
    change.set_timers = set;
    change.cancel_timers.extend(cancel);
    change.mails.push(ReplyPlan::to_customer(
        "staff_reply",
        &ticket.requester,
        language,
        i.from_address,
        i.thread,
        AutoSubmitted::Person,
        json!({"body": body}),
    ));
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

/// Staff give a ticket to one of them (`ticketd assign`, `#assign`): the
/// owner hears of it instead of the whole queue. Giving it to its owner
/// changes nothing.
pub fn assign(
    ticket: &TicketInfo,
    to: &crate::model::StaffMember,
    i: &ActionInput<'_>,
) -> Result<TicketChange<ReplyPlan>, String> {
    if ticket.owner.as_deref() == Some(to.name.as_str()) {
        return Ok(TicketChange::default());
    }
    Ok(TicketChange {
        events: vec![Event::Assigned {
            to: to.name.clone(),
            by: i.by.to_string(),
        }],
        ..TicketChange::default()
    })
}

/// Staff set a ticket's state (`ticketd close|reopen|status`): closing ends
/// every pending timer but the RMA's; waiting on the customer pauses the SLA clock and
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
            .filter(|t| !t.kind.is_rma())
            .map(|t| TimerCancel {
                kind: t.kind,
                cause: t.cause.clone(),
                why: format!("the ticket was closed by {}", i.by),
            })
            .collect();
        return Ok(change);
    }
    let (set, cancel, updates) = on_state(
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

/// Staff change a ticket's severity (`ticketd severity N S`): its
/// escalation ladder is planned again for the new severity, counted from
/// the report (NX-03), and the steps of the old one end. A step of the new
/// ladder already past is sent at once, saying it is late.
pub fn set_severity(
    ticket: &TicketInfo,
    severity: u8,
    i: &ActionInput<'_>,
) -> Result<TicketChange<ReplyPlan>, String> {
    let levels = i.pack.policy.severity_levels();
    if !(1..=levels).contains(&severity) {
        return Err(format!(
            "severity {severity} is not one of 1..={levels} in the {} pack",
            i.pack.name
        ));
    }
    if ticket.severity == Some(severity) {
        return Err(format!(
            "ticket {} is already severity {severity}",
            ticket.id
        ));
    }
    if ticket.status == TicketStatus::Closed {
        return Err(format!("ticket {} is closed: reopen it first", ticket.id));
    }
    let why = format!("severity changed to {severity} by {}", i.by);
    let mut change = TicketChange {
        events: vec![Event::SeverityChanged {
            from: ticket.severity.unwrap_or(0),
            to: severity,
            by: i.by.to_string(),
        }],
        ..TicketChange::default()
    };
    let ladder = i.pack.policy.escalation_ladder(severity, ticket.created_at);
    let new = escalation_steps(&ladder);
    change.cancel_timers = ticket
        .timers
        .iter()
        .filter(|t| t.kind == TimerKind::Escalation && !new.iter().any(|n| n.is(t.kind, &t.cause)))
        .map(|t| TimerCancel {
            kind: t.kind,
            cause: t.cause.clone(),
            why: why.clone(),
        })
        .collect();
    change.set_timers = new;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::*;
    use crate::model::{PendingTimer, SlaClock, SlaTarget, TimerCause, TimerState};

    #[test]
    fn nx_03_a_severity_change_plans_the_ladder_again_from_the_report_and_ends_the_old_steps() {
        let pack = pack("netex");
        let identity = identity(&[]);
        let mut ticket = ticket(2, "ann@customer.test", "2026-11-23T09:00:00-06:00");
        ticket.severity = Some(3);
        ticket.timers = vec![PendingTimer {
            kind: TimerKind::Escalation,
            cause: TimerCause::Escalation {
                to: "Director of Customer Services".into(),
                after: Some("10d".into()),
            },
            state: TimerState::Running {
                due: at("2026-12-03T09:00:00-06:00"),
            },
        }];
        let input = ActionInput {
            pack: &pack,
            identity: &identity,
            from_address: "support@netex.test",
            thread: None,
            by: "lead@netex.test",
            now: at("2026-11-23T12:00:00-06:00"),
        };
        let c = set_severity(&ticket, 2, &input).unwrap();
        let dues: Vec<DateTime<Utc>> = c.set_timers.iter().map(|t| t.due).collect();
        assert_eq!(
            dues,
            [
                at("2026-11-26T09:00:00-06:00"),
                at("2026-11-30T09:00:00-06:00")
            ],
            "severity 2: 3 and 7 days from the report"
        );
        assert_eq!(c.cancel_timers.len(), 1);
        assert!(c.cancel_timers[0].why.contains("severity changed to 2"));
        assert_eq!(
            c.events,
            [Event::SeverityChanged {
                from: 3,
                to: 2,
                by: "lead@netex.test".into()
            }]
        );
        assert!(
            set_severity(&ticket, 3, &input)
                .unwrap_err()
                .contains("already severity 3")
        );
        assert!(set_severity(&ticket, 9, &input).is_err());
    }

    #[test]
    fn ix_06_closing_a_ticket_ends_its_timers_but_not_its_rmas() {
        let pack = pack("ixsystems");
        let identity = identity(&[]);
        let timer = |kind: TimerKind, cause: TimerCause| PendingTimer {
            kind,
            cause,
            state: TimerState::Running {
                due: at("2026-12-20T09:00:00-08:00"),
            },
        };
        let mut ticket = ticket(3, "ann@customer.test", "2026-12-01T09:00:00-08:00");
        ticket.timers = vec![
            timer(
                TimerKind::SlaBreach,
                TimerCause::Sla {
                    target: SlaTarget::FirstResponse,
                    clock: SlaClock::Business,
                },
            ),
            timer(
                TimerKind::RmaDeadline,
                TimerCause::RmaDeadline {
                    deadline: "rma_valid".into(),
                    part: String::new(),
                },
            ),
        ];
        let input = ActionInput {
            pack: &pack,
            identity: &identity,
            from_address: "support@vendor.test",
            thread: None,
            by: "lead@vendor.test",
            now: at("2026-12-02T09:00:00-08:00"),
        };
        let c = set_status(&ticket, TicketStatus::Closed, &input).unwrap();
        let ended: Vec<TimerKind> = c.cancel_timers.iter().map(|t| t.kind).collect();
        assert_eq!(
            ended,
            [TimerKind::SlaBreach],
            "the RMA's validity still runs"
        );
    }
}
