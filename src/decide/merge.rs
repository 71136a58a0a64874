//! Merging one ticket into another (`#merge N`, `ticketd merge SOURCE INTO`): whether it may, which timers stand, which RMAs move, and the one notice each customer gets. Pure.
//!
//! Timers, for each pending timer of the source:
//! - an RMA's timers go with their RMA; an RMA of a part the target has an
//!   RMA for too stays on the source, cancelled, with its timers (refused when
//!   the source's is live and the target's finished);
//! - a waiting reminder or close ends: the target's state decides its own;
//! - an SLA or escalation timer of a kind the target has pending too: the
//!   one due sooner stands (on the same cause, the target's timer is
//!   re-planned to the sooner instant; on another, the later one ends); a
//!   paused one gives way to a running one;
//! - any other moves as it is (resumed when it was paused by the source's
//!   waiting and the target does not wait on its customer).
//!
//! The store moves what is left pending; one whose kind and cause already
//! fired or ended on the target ends instead, so none fires twice.

use super::action::ActionInput;
use super::plan::ReplyPlan;
use super::waiting::on_state;
use crate::compose::AutoSubmitted;
use crate::model::{
    Event, Language, MergePlan, PendingTimer, RmaState, TicketChange, TicketInfo, TicketStatus,
    TimerCancel, TimerCause, TimerPlan,
};
use crate::thread;
use serde_json::json;

/// What a merge needs besides the two tickets.
#[derive(Debug, Clone, Copy)]
pub struct MergeRequest<'a> {
    /// `#merge N force`: merge across customers' organisations.
    pub force: bool,
    /// The organisation (contract company) of each requester, by address.
    pub organisations: &'a std::collections::BTreeMap<String, String>,
    pub ticket_prefix: &'a str,
    /// The target customer's last mail, which their notice answers.
    pub into_thread: Option<&'a str>,
}

/// A merge decided: the source's own change (its timers and RMAs that end,
/// the notices), what the store then carries out, and a line per thing done.
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    pub source: TicketChange<ReplyPlan>,
    pub plan: MergePlan,
    pub done: Vec<String>,
}

/// The part of an RMA timer (`None` for other kinds).
fn rma_part(cause: &TimerCause) -> Option<&str> {
    match cause {
        TimerCause::RmaDeadline { part, .. } | TimerCause::RmaIssue { part } => Some(part),
        _ => None,
    }
}

/// Whether the tickets' requesters are one customer's organisation: the
/// same address, or contracts of the same company.
pub(super) fn same_organisation(
    a: &TicketInfo,
    b: &TicketInfo,
    orgs: &std::collections::BTreeMap<String, String>,
) -> bool {
    if a.requester.eq_ignore_ascii_case(&b.requester) {
        return true;
    }
    let org = |t: &TicketInfo| {
        orgs.get(&t.requester.to_ascii_lowercase())
            .map(|o| o.trim().to_lowercase())
            .filter(|o| !o.is_empty())
    };
    matches!((org(a), org(b)), (Some(x), Some(y)) if x == y)
}

/// Why ticket `source` cannot be merged into `into`, if it cannot.
fn refusal(source: &TicketInfo, into: &TicketInfo, m: &MergeRequest<'_>) -> Option<String> {
    if source.id == into.id {
        return Some(format!("ticket {} cannot be merged into itself", source.id));
    }
    if let Some(x) = source.merged_into {
        return Some(format!(
            "ticket {} was already merged into ticket {x}",
            source.id
        ));
    }
    if let Some(x) = into.merged_into {
        return Some(format!(
            "ticket {} was merged into ticket {x}: merge into {x} instead",
            into.id
        ));
    }
    if into.status == TicketStatus::Closed {
        return Some(format!("ticket {} is closed: reopen it first", into.id));
    }
    // One RMA per part on a ticket: a live one must not give way to a
    // finished one of the target's (its deadlines would end unmet).
    let done = |r: &crate::model::RmaRecord| {
        matches!(
            r.state,
            RmaState::Returned | RmaState::Expired | RmaState::Cancelled
        )
    };
    for r in source.rmas.iter().filter(|r| !done(r)) {
        if into.rmas.iter().any(|t| t.part == r.part && done(t)) {
            return Some(format!(
                "ticket {}'s RMA for {} is {} and ticket {}'s RMA for that part is {}: merged, the live one would be cancelled with its deadlines; merge ticket {} into ticket {} instead",
                source.id,
                r.part,
                r.state.as_str(),
                into.id,
                into.rmas
                    .iter()
                    .find(|t| t.part == r.part)
                    .map_or("", |t| t.state.as_str()),
                into.id,
                source.id
            ));
        }
    }
    if !m.force && !same_organisation(source, into, m.organisations) {
        let who = |t: &TicketInfo| match m.organisations.get(&t.requester.to_ascii_lowercase()) {
            Some(o) => format!("{} ({o})", t.requester),
            None => format!("{} (no contract)", t.requester),
        };
        return Some(format!(
            "ticket {} is {}'s and ticket {} is {}'s: different customers' organisations, so neither would see the other's history merged; `#merge {} force` (`ticketd merge {} {} --force`) merges them anyway",
            source.id,
            who(source),
            into.id,
            who(into),
            into.id,
            source.id,
            into.id
        ));
    }
    None
}

/// Merges ticket `source` into `into` (see the file's head for what
/// happens to timers), by `i.by`; refused with the reason when the
/// tickets are the same, either is merged already, the target is closed,
/// or they are different customers' organisations without `force`.
pub fn merge(
    source: &TicketInfo,
    into: &TicketInfo,
    m: &MergeRequest<'_>,
    i: &ActionInput<'_>,
) -> Result<MergeOutcome, String> {
    if let Some(why) = refusal(source, into, m) {
        return Err(why);
    }
    let why = |what: &str| {
        format!(
            "ticket {} was merged into {} by {}: {what}",
            source.id, into.id, i.by
        )
    };
    let mut change = TicketChange::default();
    let mut plan = MergePlan {
        source: source.id,
        into: into.id,
        by: i.by.to_string(),
        source_was: source.status,
        cancel_on_target: vec![],
        replan_on_target: vec![],
        updates_on_target: vec![],
        rmas_kept: vec![],
    };
    // An RMA of a part the target has one for stays, cancelled.
    for r in &source.rmas {
        if into.rmas.iter().any(|t| t.part == r.part) {
            plan.rmas_kept.push(r.part.clone());
            if !matches!(
                r.state,
                RmaState::Returned | RmaState::Expired | RmaState::Cancelled
            ) {
                change.events.push(Event::Rma {
                    part: r.part.clone(),
                    state: RmaState::Cancelled,
                    code: None,
                    plans: vec![],
                    expires_at: None,
                    tracking: None,
                    rule: r.rule.clone(),
                    by: i.by.to_string(),
                });
            }
        }
    }
    let moved = timers(source, into, &mut change, &mut plan, &why);
    // A paused SLA clock moves to a ticket that does not wait: it runs again.
    if into.status != TicketStatus::WaitingCustomer {
        let paused: Vec<PendingTimer> = moved
            .iter()
            .filter(|t| t.due().is_none() && t.kind.is_sla())
            .cloned()
            .collect();
        let (_, _, updates) = on_state(i.pack, &paused, &[], into.status, &[], "", i.now);
        plan.updates_on_target = updates;
    }
    change.mails = notices(source, into, m, i);
    let mut done = vec![format!(
        "merged into ticket {}: its messages, events, RMAs and {} pending timer(s) moved",
        into.id,
        moved.len()
    )];
    for p in &change.mails {
        done.push(format!("{} told of the merge", p.to.join(", ")));
    }
    Ok(MergeOutcome {
        source: change,
        plan,
        done,
    })
}

/// What becomes of each of the source's pending timers (see the file's
/// head): ends on the source (`change`), re-plans or ends the target's
/// (`plan`), or moves; returns those that move.
fn timers(
    source: &TicketInfo,
    into: &TicketInfo,
    change: &mut TicketChange<ReplyPlan>,
    plan: &mut MergePlan,
    why: &dyn Fn(&str) -> String,
) -> Vec<PendingTimer> {
    let end = |t: &PendingTimer, what: String| TimerCancel {
        kind: t.kind,
        cause: t.cause.clone(),
        why: why(&what),
    };
    let mut moved = Vec::new();
    for s in &source.timers {
        if let Some(part) = rma_part(&s.cause) {
            if plan.rmas_kept.iter().any(|p| p == part) {
                change.cancel_timers.push(end(
                    s,
                    format!("ticket {}'s own RMA for that part stands", into.id),
                ));
            } else {
                moved.push(s.clone());
            }
            continue;
        }
        if s.kind.is_waiting() {
            change.cancel_timers.push(end(
                s,
                format!("ticket {}'s state decides its reminders", into.id),
            ));
            continue;
        }
        let same_kind: Vec<&PendingTimer> =
            into.timers.iter().filter(|t| t.kind == s.kind).collect();
        if same_kind.is_empty() {
            moved.push(s.clone());
            continue;
        }
        // The target's timer of that kind due soonest.
        let soonest = same_kind
            .iter()
            .copied()
            .min_by_key(|t| t.due().map_or((1, None), |d| (0, Some(d))));
        let (Some(t), Some(due)) = (soonest, s.due()) else {
            change.cancel_timers.push(end(
                s,
                format!("ticket {}'s own {} timer stands", into.id, s.kind.as_str()),
            ));
            continue;
        };
        let sooner = t.due().is_none_or(|d| due < d);
        if !sooner {
            change.cancel_timers.push(end(
                s,
                format!(
                    "ticket {}'s own {} timer, due no later, stands",
                    into.id,
                    s.kind.as_str()
                ),
            ));
        } else if let Some(same) = same_kind.iter().find(|t| t.cause == s.cause) {
            // Same kind and cause: one row on the target, planned sooner.
            plan.replan_on_target.push(TimerPlan {
                kind: same.kind,
                cause: same.cause.clone(),
                due,
                rule: String::new(),
                to: None,
            });
            change.cancel_timers.push(end(
                s,
                format!(
                    "ticket {}'s own {} timer is re-planned to its instant",
                    into.id,
                    s.kind.as_str()
                ),
            ));
        } else {
            for t in &same_kind {
                plan.cancel_on_target.push(TimerCancel {
                    kind: t.kind,
                    cause: t.cause.clone(),
                    why: why(&format!(
                        "ticket {}'s {} timer, due sooner, stands instead",
                        source.id,
                        s.kind.as_str()
                    )),
                });
            }
            moved.push(s.clone());
        }
    }
    moved
}

/// One notice per customer (the requesters of both tickets, once each)
/// naming the surviving ticket, in their ticket's language and thread.
fn notices(
    source: &TicketInfo,
    into: &TicketInfo,
    m: &MergeRequest<'_>,
    i: &ActionInput<'_>,
) -> Vec<ReplyPlan> {
    let mut out: Vec<ReplyPlan> = Vec::new();
    for (t, thread) in [(source, i.thread), (into, m.into_thread)] {
        if out
            .iter()
            .any(|p| p.to[0].eq_ignore_ascii_case(&t.requester))
        {
            continue;
        }
        let language = Language::parse(&t.language).unwrap_or(i.pack.language);
        out.push(ReplyPlan::to_customer(
            "merged",
            &t.requester,
            language,
            i.from_address,
            thread,
            AutoSubmitted::Generated,
            json!({
                "vendor": i.pack.vendor,
                "customer": {"address": t.requester},
                "merged": {"id": source.id, "tag": thread::tag(m.ticket_prefix, source.id.0)},
                "into": {"id": into.id, "tag": thread::tag(m.ticket_prefix, into.id.0), "subject": into.subject},
            }),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::*;
    use crate::model::{Identity, RmaRecord, SlaClock, SlaTarget, TicketId, TimerKind, TimerState};
    use crate::pack::Pack;
    use chrono::{DateTime, Utc};
    use std::collections::BTreeMap;

    fn timer(kind: TimerKind, cause: TimerCause, due: &str) -> PendingTimer {
        PendingTimer {
            kind,
            cause,
            state: TimerState::Running { due: at(due) },
        }
    }

    fn sla(clock: SlaClock) -> TimerCause {
        TimerCause::Sla {
            target: SlaTarget::FirstResponse,
            clock,
        }
    }

    fn escalation(to: &str) -> TimerCause {
        TimerCause::Escalation {
            to: to.into(),
            after: Some("8h".into()),
        }
    }

    fn input<'a>(pack: &'a Pack, identity: &'a Identity, now: DateTime<Utc>) -> ActionInput<'a> {
        ActionInput {
            pack,
            identity,
            from_address: "support@vendor.test",
            thread: Some("dana-1@example.net"),
            by: "Alice by mail (reply token)",
            now,
        }
    }

    fn request<'a>(orgs: &'a BTreeMap<String, String>, force: bool) -> MergeRequest<'a> {
        MergeRequest {
            force,
            organisations: orgs,
            ticket_prefix: "TKT",
            into_thread: Some("dana-2@example.net"),
        }
    }

    fn kinds(c: &[TimerCancel]) -> Vec<(TimerKind, String)> {
        c.iter().map(|c| (c.kind, c.cause.to_string())).collect()
    }

    #[test]
    fn nx_03_a_merge_with_timers_on_both_sides_keeps_one_of_each_kind_the_one_due_sooner() {
        let pack = pack("netex");
        let identity = identity(&[]);
        let now = at("2026-11-23T12:00:00-06:00");
        let mut source = ticket(3, "dana@example.net", "2026-11-23T08:00:00-06:00");
        let mut into = ticket(5, "dana@example.net", "2026-11-23T10:00:00-06:00");
        source.timers = vec![
            // Same kind and cause as the target's, due sooner: the target's is re-planned.
            timer(
                TimerKind::SlaBreach,
                sla(SlaClock::Business),
                "2026-11-23T16:00:00-06:00",
            ),
            // Same kind, other cause, due later: it ends.
            timer(
                TimerKind::Escalation,
                escalation("Director"),
                "2026-11-23T20:00:00-06:00",
            ),
            // Only on the source: it moves.
            timer(
                TimerKind::SlaWarning,
                sla(SlaClock::Business),
                "2026-11-23T15:00:00-06:00",
            ),
            // The source's waiting reminder ends: the target's state decides.
            timer(
                TimerKind::CustomerReminder,
                TimerCause::Waiting {
                    since: at("2026-11-23T09:00:00-06:00"),
                    missing: vec![],
                },
                "2026-11-26T09:00:00-06:00",
            ),
        ];
        into.timers = vec![
            timer(
                TimerKind::SlaBreach,
                sla(SlaClock::Business),
                "2026-11-23T18:00:00-06:00",
            ),
            timer(
                TimerKind::Escalation,
                escalation("President"),
                "2026-11-23T18:00:00-06:00",
            ),
        ];
        let orgs = BTreeMap::new();
        let out = merge(
            &source,
            &into,
            &request(&orgs, false),
            &input(&pack, &identity, now),
        )
        .expect("one customer's tickets merge");
        assert_eq!(
            out.plan.replan_on_target,
            [TimerPlan {
                kind: TimerKind::SlaBreach,
                cause: sla(SlaClock::Business),
                due: at("2026-11-23T16:00:00-06:00"),
                rule: String::new(),
                to: None,
            }],
            "the first response is due when the older request's was"
        );
        assert_eq!(
            kinds(&out.source.cancel_timers),
            [
                (TimerKind::SlaBreach, sla(SlaClock::Business).to_string()),
                (TimerKind::Escalation, escalation("Director").to_string()),
                (
                    TimerKind::CustomerReminder,
                    out.source.cancel_timers[2].cause.to_string()
                ),
            ],
            "everything but the warning ends on the source: none fires twice"
        );
        assert!(out.source.cancel_timers[0].why.contains("re-planned"));
        assert!(out.plan.cancel_on_target.is_empty());
        // One notice: both tickets are dana's.
        assert_eq!(out.source.mails.len(), 1);
        let n = &out.source.mails[0];
        assert_eq!(
            (n.template, n.to.as_slice()),
            ("merged", &["dana@example.net".to_string()][..])
        );
        assert_eq!(n.data["into"]["tag"], "[TKT#5]");
        assert_eq!(n.data["merged"]["tag"], "[TKT#3]");
        assert_eq!(n.in_reply_to.as_deref(), Some("dana-1@example.net"));

        // The other way round: the source's escalation is due sooner, so the
        // target's of another cause ends and the source's moves.
        source.timers = vec![timer(
            TimerKind::Escalation,
            escalation("Director"),
            "2026-11-23T14:00:00-06:00",
        )];
        let out = merge(
            &source,
            &into,
            &request(&orgs, false),
            &input(&pack, &identity, now),
        )
        .unwrap();
        assert!(out.source.cancel_timers.is_empty());
        assert_eq!(
            kinds(&out.plan.cancel_on_target),
            [(TimerKind::Escalation, escalation("President").to_string())]
        );
        assert!(
            out.done[0].contains("1 pending timer(s) moved"),
            "{:?}",
            out.done
        );
    }

    #[test]
    fn ix_07_an_rma_moves_with_its_timers_unless_the_target_has_one_for_that_part() {
        let pack = pack("ixsystems");
        let identity = identity(&[]);
        let now = at("2026-03-06T10:00:00-08:00");
        let rma = |t: i64, part: &str| RmaRecord {
            ticket: TicketId(t),
            part: part.into(),
            code: Some(t.to_string()),
            state: RmaState::Shipped,
            rule: "IX-05".into(),
            plans: vec![],
            requested_at: at("2026-03-02T10:00:00-08:00"),
            issued_at: Some(at("2026-03-02T10:00:00-08:00")),
            shipped_at: Some(at("2026-03-05T10:00:00-08:00")),
            received_at: None,
            returned_at: None,
            expires_at: None,
        };
        let deadline = |part: &str| TimerCause::RmaDeadline {
            deadline: "return_label".into(),
            part: part.into(),
        };
        let mut source = ticket(3, "dana@example.net", "2026-03-02T10:00:00-08:00");
        let mut into = ticket(5, "dana@example.net", "2026-03-03T10:00:00-08:00");
        source.rmas = vec![rma(3, "DRIVE-1"), rma(3, "PSU-2")];
        source.timers = vec![
            timer(
                TimerKind::RmaDeadline,
                deadline("DRIVE-1"),
                "2026-03-15T10:00:00-07:00",
            ),
            timer(
                TimerKind::RmaDeadline,
                deadline("PSU-2"),
                "2026-03-15T10:00:00-07:00",
            ),
        ];
        into.rmas = vec![rma(5, "DRIVE-1")];
        let orgs = BTreeMap::new();
        let out = merge(
            &source,
            &into,
            &request(&orgs, false),
            &input(&pack, &identity, now),
        )
        .unwrap();
        assert_eq!(out.plan.rmas_kept, ["DRIVE-1"]);
        assert_eq!(
            kinds(&out.source.cancel_timers),
            [(TimerKind::RmaDeadline, deadline("DRIVE-1").to_string())],
            "PSU-2's label deadline moves with its RMA"
        );
        assert!(out.source.events.iter().any(|e| matches!(
            e,
            Event::Rma { part, state: RmaState::Cancelled, .. } if part == "DRIVE-1"
        )));
    }

    #[test]
    fn ix_07_a_live_rma_is_not_cancelled_for_the_target_s_finished_rma_of_that_part() {
        let pack = pack("ixsystems");
        let identity = identity(&[]);
        let now = at("2026-03-06T10:00:00-08:00");
        let rma = |t: i64, state: RmaState| RmaRecord {
            ticket: TicketId(t),
            part: "DRIVE-1".into(),
            code: Some(t.to_string()),
            state,
            rule: "IX-05".into(),
            plans: vec![],
            requested_at: at("2026-03-02T10:00:00-08:00"),
            issued_at: Some(at("2026-03-02T10:00:00-08:00")),
            shipped_at: Some(at("2026-03-05T10:00:00-08:00")),
            received_at: None,
            returned_at: None,
            expires_at: None,
        };
        let mut source = ticket(3, "dana@example.net", "2026-03-02T10:00:00-08:00");
        let mut into = ticket(5, "dana@example.net", "2026-03-03T10:00:00-08:00");
        // The replacement is out on 3, its label deadline running; 5's RMA
        // of that part is long done.
        source.rmas = vec![rma(3, RmaState::Shipped)];
        source.timers = vec![timer(
            TimerKind::RmaDeadline,
            TimerCause::RmaDeadline {
                deadline: "return_label".into(),
                part: "DRIVE-1".into(),
            },
            "2026-03-15T10:00:00-07:00",
        )];
        into.rmas = vec![rma(5, RmaState::Returned)];
        let orgs = BTreeMap::new();
        let i = input(&pack, &identity, now);
        let why = merge(&source, &into, &request(&orgs, false), &i).unwrap_err();
        assert!(why.contains("DRIVE-1"), "{why}");
        // The other way round, 5's finished RMA stays on 5 and 3's runs on.
        let mut back = into.clone();
        back.id = TicketId(5);
        let out = merge(&back, &source, &request(&orgs, false), &i).unwrap();
        assert_eq!(out.plan.rmas_kept, ["DRIVE-1"]);
        assert!(out.source.cancel_timers.is_empty());
    }

    #[test]
    fn a_merge_is_refused_across_organisations_unless_forced_and_when_either_is_merged() {
        let pack = pack("ixsystems");
        let identity = identity(&[]);
        let now = at("2026-03-06T10:00:00-08:00");
        let i = input(&pack, &identity, now);
        let source = ticket(3, "dana@example.net", "2026-03-02T10:00:00-08:00");
        let into = ticket(5, "eve@other.example", "2026-03-03T10:00:00-08:00");
        let mut orgs = BTreeMap::new();
        let why = merge(&source, &into, &request(&orgs, false), &i).unwrap_err();
        assert!(why.contains("different customers' organisations"), "{why}");
        assert!(why.contains("`#merge 5 force`"), "{why}");
        // Forced: both customers are told, each once.
        let out = merge(&source, &into, &request(&orgs, true), &i).unwrap();
        let to: Vec<&str> = out.source.mails.iter().map(|m| m.to[0].as_str()).collect();
        assert_eq!(to, ["dana@example.net", "eve@other.example"]);
        assert_eq!(
            out.source.mails[1].in_reply_to.as_deref(),
            Some("dana-2@example.net")
        );
        // Two addresses of one company's contracts are one organisation.
        orgs.insert("dana@example.net".into(), "Acme Storage".into());
        orgs.insert("eve@other.example".into(), "ACME storage ".into());
        assert!(merge(&source, &into, &request(&orgs, false), &i).is_ok());
        // Merged already, either side; itself; a closed target.
        let mut merged = source.clone();
        merged.merged_into = Some(TicketId(9));
        let why = merge(&merged, &into, &request(&orgs, true), &i).unwrap_err();
        assert!(why.contains("already merged into ticket 9"), "{why}");
        let mut gone = into.clone();
        gone.merged_into = Some(TicketId(9));
        let why = merge(&source, &gone, &request(&orgs, true), &i).unwrap_err();
        assert!(why.contains("merge into 9 instead"), "{why}");
        assert!(
            merge(&source, &source, &request(&orgs, true), &i)
                .unwrap_err()
                .contains("itself")
        );
        let mut closed = into.clone();
        closed.status = TicketStatus::Closed;
        assert!(
            merge(&source, &closed, &request(&orgs, true), &i)
                .unwrap_err()
                .contains("reopen it first")
        );
    }
}
