//! First-response targets kept: a warning to staff before the target (a lead on the SLA's own clock) and a notice when it is missed, both ended by a staff answer. Pure.

use super::plan::{Input, local};
use super::timer::{Audience, LATE_AFTER, TimerDecision, TimerInput, fired};
use crate::model::{
    SlaClock, SlaTarget, TicketInfo, TicketStatus, TimerCancel, TimerCause, TimerKind, TimerPlan,
    TimerRow,
};
use crate::policy::{ClockKind, Evaluation};
use chrono::{DateTime, Utc};
use serde_json::json;

/// The cause of a ticket's first-response timers, naming the clock they
/// run on (pausing and resuming count on it).
fn first_response(clock: ClockKind) -> TimerCause {
    TimerCause::Sla {
        target: SlaTarget::FirstResponse,
        clock: match clock {
            ClockKind::Business => SlaClock::Business,
            ClockKind::AllHours => SlaClock::AllHours,
            ClockKind::Calendar => SlaClock::Calendar,
        },
    }
}

/// The clock an SLA timer runs on, from its cause; `None` for a cause
/// that is not an SLA's.
pub(super) fn clock_of(cause: &TimerCause) -> Option<ClockKind> {
    match cause {
        TimerCause::Sla { clock, .. } => Some(match clock {
            SlaClock::Business => ClockKind::Business,
            SlaClock::AllHours => ClockKind::AllHours,
            SlaClock::Calendar => ClockKind::Calendar,
        }),
        _ => None,
    }
}

/// The warning and breach timers of a new ticket's first-response target.
pub(super) fn sla_timers(i: &Input<'_>, policy: &Evaluation) -> Vec<TimerPlan> {
    let (Some(due), Some(rule)) = (policy.first_response_due, &policy.sla_rule) else {
        return vec![];
    };
    // A target already missed before ticketd stored the mail (a backlog
    // after downtime) gets no timers: staff would get one notice per old
    // mail at once; the acknowledgement and the event still show the date.
    if !i.staff.sla_notices || due <= i.now {
        return vec![];
    }
    let mut out = Vec::new();
    if let Some(warn) = i
        .pack
        .policy
        .sla_warning_at(policy, i.staff.sla_warning_lead)
        && warn < due
    {
        out.push(TimerPlan {
            kind: TimerKind::SlaWarning,
            cause: first_response(policy.clock),
            due: warn,
            rule: rule.clone(),
            to: None,
        });
    }
    out.push(TimerPlan {
        kind: TimerKind::SlaBreach,
        cause: first_response(policy.clock),
        due,
        rule: rule.clone(),
        to: None,
    });
    out
}

/// What a staff answer ends: the ticket's first-response timers.
pub(super) fn answered(ticket: &TicketInfo, by: &str) -> Vec<TimerCancel> {
    ticket
        .timers
        .iter()
        .filter(|t| t.kind.is_sla())
        .map(|t| TimerCancel {
            kind: t.kind,
            cause: t.cause.clone(),
            why: format!("answered by {by}"),
        })
        .collect()
}

/// A due warning or breach: staff are told, unless the ticket waits on the
/// customer (its clock does not run then; the timer ends, and says so).
pub(super) fn on_sla_timer(
    ticket: &TicketInfo,
    timer: &TimerRow,
    i: &TimerInput<'_>,
) -> TimerDecision {
    let t = &timer.plan;
    if ticket.status == TicketStatus::WaitingCustomer {
        return TimerDecision::cancel(t, "the ticket waits on the customer".into());
    }
    let to = i.staff_for(ticket);
    if to.is_empty() {
        return TimerDecision::cancel(t, "no staff are configured to tell".into());
    }
    let local = |at: DateTime<Utc>| local(i.pack.zone, at);
    let breach = t.kind == TimerKind::SlaBreach;
    let late = (i.now - t.due) > LATE_AFTER;
    let reply = i.notice(
        "staff_sla",
        ticket,
        Audience::Staff(to),
        "sla",
        json!({
            "breach": breach,
            "rule": t.rule,
            "at": local(t.due),
            "opened": local(ticket.created_at),
            "late": late,
            "sent": local(i.now),
        }),
    );
    TimerDecision::fire(vec![reply], vec![fired(t, late)])
}
