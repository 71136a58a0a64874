//! What a ticket's new state does to its timers: a ticket waiting on the customer pauses its SLA clock and gets a reminder, then a close (`[lifecycle]`); the customer's reply ends those and resumes the clock. Pure.

use super::sla::clock_of;
use super::timer::{Audience, LATE_AFTER, TimerDecision, TimerInput, fired};
use crate::model::{
    Event, PendingTimer, TicketInfo, TicketStatus, TimerCancel, TimerCause, TimerKind, TimerPlan,
    TimerRow, TimerState, TimerUpdate,
};
use crate::pack::Pack;
use chrono::{DateTime, Utc};
use serde_json::json;

/// The timer changes that leave a ticket in `status` (a person's mail, or
/// staff setting it): `existing` are the ticket's pending timers (none for a
/// new ticket), `setting` the SLA timers being set with it; the waiting
/// timers end, saying `why_end`.
pub(super) fn on_state(
    pack: &Pack,
    existing: &[PendingTimer],
    setting: &[TimerPlan],
    status: TicketStatus,
    missing: &[String],
    why_end: &str,
    now: DateTime<Utc>,
) -> (Vec<TimerPlan>, Vec<TimerCancel>, Vec<TimerUpdate>) {
    let (mut set, mut cancel, mut updates) = (vec![], vec![], vec![]);
    for t in existing.iter().filter(|t| t.kind.is_waiting()) {
        cancel.push(TimerCancel {
            kind: t.kind,
            cause: t.cause.clone(),
            why: why_end.to_string(),
        });
    }
    let policy = &pack.policy;
    if status == TicketStatus::WaitingCustomer {
        if let Some((rule, remind, close)) = &policy.lifecycle().waiting {
            // When it was asked and for what: a later request gets timers of its own.
            let cause = TimerCause::Waiting {
                since: now,
                missing: missing.to_vec(),
            };
            let remind_at = policy.after(now, *remind);
            set.push(TimerPlan {
                kind: TimerKind::CustomerReminder,
                cause: cause.clone(),
                due: remind_at,
                rule: rule.clone(),
                to: None,
            });
            set.push(TimerPlan {
                kind: TimerKind::AutoClose,
                cause,
                due: policy.after(remind_at, *close),
                rule: rule.clone(),
                to: None,
            });
        }
        let running = existing
            .iter()
            .filter(|t| t.kind.is_sla())
            .filter_map(|t| Some((t.kind, &t.cause, t.due()?)))
            .chain(
                setting
                    .iter()
                    .filter(|t| t.kind.is_sla())
                    .map(|t| (t.kind, &t.cause, t.due)),
            );
        for (kind, cause, due) in running {
            let Some(clock) = clock_of(cause) else {
                continue;
            };
            updates.push(TimerUpdate::Pause {
                kind,
                cause: cause.clone(),
                left_secs: policy.sla_time_left(clock, now, due),
            });
        }
    } else {
        for t in existing.iter().filter(|t| t.kind.is_sla()) {
            if let (TimerState::Paused { left_secs }, Some(clock)) = (t.state, clock_of(&t.cause)) {
                updates.push(TimerUpdate::Resume {
                    kind: t.kind,
                    cause: t.cause.clone(),
                    due: policy.sla_resume_at(clock, now, left_secs),
                });
            }
        }
    }
    (set, cancel, updates)
}

/// A due reminder or close of a ticket waiting on its customer. Cancelled
/// when the ticket no longer waits on them.
pub(super) fn on_waiting_timer(
    ticket: &TicketInfo,
    timer: &TimerRow,
    i: &TimerInput<'_>,
) -> TimerDecision {
    let t = &timer.plan;
    if ticket.status != TicketStatus::WaitingCustomer {
        return TimerDecision::cancel(t, format!("the ticket is {} now", ticket.status));
    }
    let TimerCause::Waiting { since, missing } = &t.cause else {
        return TimerDecision::cancel(t, format!("it is not a waiting timer ({})", t.cause));
    };
    let when = since
        .with_timezone(&i.pack.zone)
        .format("%Y-%m-%d")
        .to_string();
    let close = t.kind == TimerKind::AutoClose;
    let late = (i.now - t.due) > LATE_AFTER;
    let mut reply = i.notice(
        if close {
            "auto_closed"
        } else {
            "customer_reminder"
        },
        ticket,
        Audience::Customer,
        "missing",
        json!(missing),
    );
    reply.data["asked_on"] = json!(when);
    let mut events = vec![fired(t, late)];
    if !close {
        return TimerDecision::fire(vec![reply], events);
    }
    events.push(Event::StatusChanged {
        from: ticket.status,
        to: TicketStatus::Closed,
        by: format!("ticketd ({}: no answer from the customer)", t.rule),
    });
    let cancel = ticket
        .timers
        .iter()
        .filter(|p| !(p.kind.is_rma() || p.is(t.kind, &t.cause)))
        .map(|p| TimerCancel {
            kind: p.kind,
            cause: p.cause.clone(),
            why: "the ticket was closed: no answer from the customer".into(),
        })
        .collect();
    TimerDecision::Fire {
        replies: vec![reply],
        events,
        status: Some(TicketStatus::Closed),
        cancel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::*;
    use crate::model::{SlaClock, SlaTarget};

    const BUSINESS: TimerCause = TimerCause::Sla {
        target: SlaTarget::FirstResponse,
        clock: SlaClock::Business,
    };

    fn sla(kind: TimerKind, state: TimerState) -> PendingTimer {
        PendingTimer {
            kind,
            cause: BUSINESS,
            state,
        }
    }

    #[test]
    fn nx_04_a_ticket_waiting_on_the_customer_is_reminded_after_3_business_days_and_closed_4_later()
    {
        let p = pack("netex");
        // Friday 10:00 Central: 3 business days is Wednesday, 4 more the next Tuesday.
        let (set, cancel, _) = on_state(
            &p,
            &[],
            &[],
            TicketStatus::WaitingCustomer,
            &["the product version".into()],
            "x",
            at("2026-12-04T10:00:00-06:00"),
        );
        assert!(cancel.is_empty());
        let due: Vec<(TimerKind, DateTime<Utc>, &str)> = set
            .iter()
            .map(|t| (t.kind, t.due, t.rule.as_str()))
            .collect();
        assert_eq!(
            due,
            [
                (
                    TimerKind::CustomerReminder,
                    at("2026-12-09T10:00:00-06:00"),
                    "NX-04"
                ),
                (
                    TimerKind::AutoClose,
                    at("2026-12-15T10:00:00-06:00"),
                    "NX-04"
                ),
            ]
        );
        assert!(
            matches!(&set[0].cause, TimerCause::Waiting { missing, .. } if missing == &["the product version"]),
            "{}",
            set[0].cause
        );
    }

    #[test]
    fn nx_04_waiting_pauses_the_sla_clock_in_business_time_and_the_reply_resumes_it_after_the_weekend()
     {
        let p = pack("netex");
        // Friday 15:00 Central, the target due at 17:00 the same day: two
        // business hours left.
        let running = [sla(
            TimerKind::SlaBreach,
            TimerState::Running {
                due: at("2026-12-04T17:00:00-06:00"),
            },
        )];
        let (_, _, updates) = on_state(
            &p,
            &running,
            &[],
            TicketStatus::WaitingCustomer,
            &[],
            "x",
            at("2026-12-04T15:00:00-06:00"),
        );
        assert_eq!(
            updates,
            [TimerUpdate::Pause {
                kind: TimerKind::SlaBreach,
                cause: BUSINESS,
                left_secs: 7200
            }]
        );
        // The customer answers on Saturday: the two hours run from Monday's opening.
        let paused = [sla(
            TimerKind::SlaBreach,
            TimerState::Paused { left_secs: 7200 },
        )];
        let (_, _, updates) = on_state(
            &p,
            &paused,
            &[],
            TicketStatus::Open,
            &[],
            "x",
            at("2026-12-05T11:00:00-06:00"),
        );
        let TimerUpdate::Resume { due, .. } = &updates[0] else {
            panic!("{updates:?}")
        };
        let monday_open = p
            .policy
            .calendar()
            .next_open(at("2026-12-05T11:00:00-06:00"));
        assert_eq!(*due, monday_open + chrono::Duration::hours(2));
    }

    #[test]
    fn qn_03_the_customers_reply_ends_the_reminder_and_the_close() {
        let p = pack("qnap");
        let asked = TimerCause::Waiting {
            since: at("2026-12-01T17:00:00Z"),
            missing: vec!["proof of purchase".into()],
        };
        let waiting = [
            PendingTimer {
                kind: TimerKind::CustomerReminder,
                cause: asked.clone(),
                state: TimerState::Running {
                    due: at("2026-12-04T17:00:00Z"),
                },
            },
            PendingTimer {
                kind: TimerKind::AutoClose,
                cause: asked,
                state: TimerState::Running {
                    due: at("2026-12-10T17:00:00Z"),
                },
            },
        ];
        let (set, cancel, _) = on_state(
            &p,
            &waiting,
            &[],
            TicketStatus::Open,
            &[],
            "the customer wrote again",
            at("2026-12-02T17:00:00Z"),
        );
        assert!(set.is_empty());
        assert_eq!(cancel.len(), 2);
        assert!(cancel.iter().all(|c| c.why == "the customer wrote again"));
        assert_eq!(
            waiting[0].cause.to_string(),
            "asked 2026-12-01T17:00Z: proof of purchase"
        );
    }
}
