//! What a ticket's new state does to its timers: a ticket waiting on the customer pauses its SLA clock and gets a reminder, then a close (`[lifecycle]`); the customer's reply ends those and resumes the clock. Pure.

use super::sla::clock_of;
use super::timer::{Audience, LATE_AFTER, fired};
use super::*;
use crate::model::{PendingTimer, TimerCancel, TimerRow, TimerUpdate};

/// The key of a waiting ticket's reminder and close: when it was asked
/// and for what, so a later request gets timers of its own.
fn waiting_key(now: DateTime<Utc>, missing: &[String]) -> String {
    format!(
        "asked {}: {}",
        now.format("%Y-%m-%dT%H:%MZ"),
        missing.join("; ")
    )
}

/// What was asked for, from a waiting timer's key (the inverse of [`waiting_key`]).
fn asked(key: &str) -> (&str, Vec<&str>) {
    let rest = key.strip_prefix("asked ").unwrap_or(key);
    match rest.split_once(": ") {
        Some((at, list)) => (at, list.split("; ").filter(|s| !s.is_empty()).collect()),
        None => (rest, vec![]),
    }
}

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
            key: t.key.clone(),
            why: why_end.to_string(),
        });
    }
    let policy = &pack.policy;
    if status == TicketStatus::WaitingCustomer {
        if let Some((rule, remind, close)) = &policy.lifecycle().waiting {
            let key = waiting_key(now, missing);
            let remind_at = policy.after(now, *remind);
            set.push(TimerPlan {
                kind: TimerKind::CustomerReminder,
                key: key.clone(),
                due: remind_at,
                rule: rule.clone(),
                to: None,
            });
            set.push(TimerPlan {
                kind: TimerKind::AutoClose,
                key,
                due: policy.after(remind_at, *close),
                rule: rule.clone(),
                to: None,
            });
        }
        let running = existing
            .iter()
            .filter(|t| t.kind.is_sla() && t.paused_secs.is_none())
            .map(|t| (t.kind, &t.key, t.due))
            .chain(
                setting
                    .iter()
                    .filter(|t| t.kind.is_sla())
                    .map(|t| (t.kind, &t.key, t.due)),
            );
        for (kind, key, due) in running {
            updates.push(TimerUpdate::Pause {
                kind,
                key: key.clone(),
                left_secs: policy.sla_time_left(clock_of(key), now, due),
            });
        }
    } else {
        for t in existing.iter().filter(|t| t.kind.is_sla()) {
            if let Some(secs) = t.paused_secs {
                updates.push(TimerUpdate::Resume {
                    kind: t.kind,
                    key: t.key.clone(),
                    due: policy.sla_resume_at(clock_of(&t.key), now, secs),
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
    let zone = i.pack.zone;
    let (when, missing) = asked(&t.key);
    let when = chrono::NaiveDateTime::parse_from_str(when, "%Y-%m-%dT%H:%MZ")
        .map(|d| {
            d.and_utc()
                .with_timezone(&zone)
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_else(|_| when.to_string());
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
        .filter(|p| !(p.kind.is_rma() || p.kind == t.kind && p.key == t.key))
        .map(|p| TimerCancel {
            kind: p.kind,
            key: p.key.clone(),
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
    use super::super::fixtures::*;
    use super::*;

    fn sla(kind: TimerKind, due: &str, paused_secs: Option<i64>) -> PendingTimer {
        PendingTimer {
            kind,
            key: "first response, business clock".into(),
            due: at(due),
            paused_secs,
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
            set[0].key.ends_with(": the product version"),
            "{}",
            set[0].key
        );
    }

    #[test]
    fn nx_04_waiting_pauses_the_sla_clock_in_business_time_and_the_reply_resumes_it_after_the_weekend()
     {
        let p = pack("netex");
        // Friday 15:00 Central, the target due at 17:00 the same day: two
        // business hours left.
        let running = [sla(TimerKind::SlaBreach, "2026-12-04T17:00:00-06:00", None)];
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
                key: "first response, business clock".into(),
                left_secs: 7200
            }]
        );
        // The customer answers on Saturday: the two hours run from Monday's opening.
        let paused = [sla(
            TimerKind::SlaBreach,
            "9999-12-31T00:00:00Z",
            Some(7200),
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
        let waiting = [
            PendingTimer {
                kind: TimerKind::CustomerReminder,
                key: "asked 2026-12-01T17:00Z: proof of purchase".into(),
                due: at("2026-12-04T17:00:00Z"),
                paused_secs: None,
            },
            PendingTimer {
                kind: TimerKind::AutoClose,
                key: "asked 2026-12-01T17:00Z: proof of purchase".into(),
                due: at("2026-12-10T17:00:00Z"),
                paused_secs: None,
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
            asked(&waiting[0].key),
            ("2026-12-01T17:00Z", vec!["proof of purchase"])
        );
    }
}
