//! Escalation ladders (NX-03): each step the rules plan becomes a timer, and a due step tells the people it names (with the ticket's owner), saying how long the ticket has been open. Pure.

use super::plan::local;
use super::timer::{Audience, LATE_AFTER, TimerDecision, TimerInput, fired};
use crate::model::{Language, TicketInfo, TimerCause, TimerKind, TimerPlan, TimerRow};
use crate::policy::{EscalationStep, Evaluation};
use chrono::{DateTime, Utc};
use serde_json::json;

/// NX-03 and the like: each step of the ladder the rules planned (for a new
/// ticket, from its report) becomes a timer that sends the step's notice.
pub(super) fn escalation_timers(p: &Evaluation) -> Vec<TimerPlan> {
    escalation_steps(&p.escalations)
}

/// The timers of an escalation ladder's steps, one per recipient and span.
pub(super) fn escalation_steps(steps: &[EscalationStep]) -> Vec<TimerPlan> {
    steps
        .iter()
        .map(|e| TimerPlan {
            kind: TimerKind::Escalation,
            cause: TimerCause::Escalation {
                to: e.to.clone(),
                after: Some(e.after.clone()),
            },
            due: e.at,
            rule: e.rule.clone(),
            to: Some(e.to.clone()),
        })
        .collect()
}

/// A due step: its notice goes to the recipient the pack names (the staff
/// list when that name has no address), and to the ticket's owner.
pub(super) fn on_escalation_timer(
    ticket: &TicketInfo,
    timer: &TimerRow,
    i: &TimerInput<'_>,
) -> TimerDecision {
    let t = &timer.plan;
    let name = t.to.as_deref().unwrap_or("staff");
    let (mut to, unmapped) = match i.staff.addresses(name) {
        Some(a) => (a.to_vec(), false),
        None if !i.identity.staff.is_empty() => (i.identity.staff.clone(), true),
        None => {
            return TimerDecision::cancel(
                t,
                format!(
                    "\"{name}\" has no address under [staff] recipients and no staff are configured"
                ),
            );
        }
    };
    // The ticket's owner hears of its escalation too.
    if let Some(owner) = ticket.owner.as_deref().and_then(|o| i.staff.member(o)) {
        for a in &owner.addresses {
            if !to.contains(a) {
                to.push(a.clone());
            }
        }
    }
    let late = i.now - t.due > LATE_AFTER;
    let local = |at: DateTime<Utc>| local(i.pack.zone, at);
    let open_for = match &t.cause {
        TimerCause::Escalation {
            after: Some(span), ..
        } => span_words(span, i.pack.language),
        _ => span_words_of(t.due - ticket.created_at, i.pack.language),
    };
    let reply = i.notice(
        "staff_escalation",
        ticket,
        Audience::Staff(to),
        "escalation",
        json!({
            "to": name,
            "rule": t.rule,
            "due": local(t.due),
            "opened": local(ticket.created_at),
            "open_for": open_for,
            "late": late,
            "sent": local(i.now),
            "unmapped": unmapped,
        }),
    );
    TimerDecision::fire(vec![reply], vec![fired(t, late)])
}

/// A count of a unit in `lang`: "1 hour", "3 days"; "3 日"; "3 días".
fn unit(n: i64, u: Unit, lang: Language) -> String {
    let (one, many) = match (lang, u) {
        (Language::Ja, Unit::Minute) => ("分", "分"),
        (Language::Ja, Unit::Hour) => ("時間", "時間"),
        (Language::Ja, Unit::Day) => ("日", "日"),
        (Language::Ja, Unit::BusinessDay) => ("営業日", "営業日"),
        (Language::Es, Unit::Minute) => ("minuto", "minutos"),
        (Language::Es, Unit::Hour) => ("hora", "horas"),
        (Language::Es, Unit::Day) => ("día", "días"),
        (Language::Es, Unit::BusinessDay) => ("día laborable", "días laborables"),
        (Language::En, Unit::Minute) => ("minute", "minutes"),
        (Language::En, Unit::Hour) => ("hour", "hours"),
        (Language::En, Unit::Day) => ("day", "days"),
        (Language::En, Unit::BusinessDay) => ("business day", "business days"),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

#[derive(Clone, Copy)]
enum Unit {
    Minute,
    Hour,
    Day,
    BusinessDay,
}

/// A pack's span ("8h", "3d", "90m") as staff read it: "8 hours", "3 days".
fn span_words(span: &str, lang: Language) -> String {
    let (n, u) = span.split_at(
        span.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(span.len()),
    );
    let u = match u {
        "m" => Unit::Minute,
        "h" => Unit::Hour,
        "d" => Unit::Day,
        "bd" => Unit::BusinessDay,
        _ => return span.to_string(),
    };
    n.parse::<i64>()
        .map_or_else(|_| span.to_string(), |n| unit(n, u, lang))
}

/// A measured span as staff read it: "8 hours", "3 days", "1 day 6 hours".
fn span_words_of(d: chrono::Duration, lang: Language) -> String {
    let hours = d.num_hours().max(0);
    match (hours / 24, hours % 24) {
        (0, h) => unit(h, Unit::Hour, lang),
        (d, 0) => unit(d, Unit::Day, lang),
        (d, h) => format!("{} {}", unit(d, Unit::Day, lang), unit(h, Unit::Hour, lang)),
    }
}
