//! RMAs: the one a new ticket asks for (IX-05 issues it at once), the staff steps (approve, issue, received; QN-05, AV-06) and what their deadlines do when due (IX-06, IX-07, QN-07). Pure.

use super::action::ActionInput;
use super::plan::{MailboxView, ReplyPlan, local};
use super::timer::{Audience, LATE_AFTER, TimerDecision, TimerInput, fired};
use crate::compose::AutoSubmitted;
use crate::model::{
    Event, Language, RmaRecord, RmaState, RmaVerb, TicketChange, TicketInfo, TicketStatus,
    TimerCancel, TimerCause, TimerKind, TimerPlan, TimerRow, Tracking,
};
use crate::pack::Pack;
use crate::policy::{Evaluation, IssueMode, RmaDeadline, RmaSpec, RmaStart};
use chrono::{DateTime, Utc};
use serde_json::json;

/// What a staff step does.
#[derive(Debug, Clone)]
pub struct RmaOutcome {
    pub part: String,
    pub state: RmaState,
    pub code: Option<String>,
    /// The RMA was already in that state: nothing changes and nothing is sent.
    pub already: bool,
    pub change: TicketChange<ReplyPlan>,
}

/// The cause of a part's timers for the deadline `deadline`.
fn deadline_cause(deadline: &str, part: &str) -> TimerCause {
    TimerCause::RmaDeadline {
        deadline: deadline.to_string(),
        part: part.to_string(),
    }
}

/// The cause of the timer that waits for an approved part's code (QN-05).
fn issue_cause(part: &str) -> TimerCause {
    TimerCause::RmaIssue {
        part: part.to_string(),
    }
}

/// When the RMA issued at `at` expires: the first expiring deadline that
/// counts from the issue.
fn expiry(
    spec: &RmaSpec,
    pack: &Pack,
    plans: &[String],
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    spec.deadlines_from(RmaStart::Issued, plans)
        .filter(|d| d.expires)
        .map(|d| pack.policy.after(at, d.after))
        .min()
}

/// The timers the deadlines starting at `from` set for `part`, counted from `at`.
fn deadline_timers(
    spec: &RmaSpec,
    pack: &Pack,
    from: RmaStart,
    part: &str,
    plans: &[String],
    at: DateTime<Utc>,
) -> Vec<TimerPlan> {
    let mut out = Vec::new();
    for d in spec.deadlines_from(from, plans) {
        let due = pack.policy.after(at, d.after);
        if let Some(before) = d.remind_before {
            out.push(TimerPlan {
                kind: TimerKind::RmaReminder,
                cause: deadline_cause(&d.id, part),
                due: pack.policy.before(due, before),
                rule: d.rule.clone(),
                to: None,
            });
        }
        out.push(TimerPlan {
            kind: TimerKind::RmaDeadline,
            cause: deadline_cause(&d.id, part),
            due,
            rule: d.rule.clone(),
            to: None,
        });
    }
    out
}

/// The RMA a new ticket asks for, when the pack's `[rma]` says it does:
/// issued at once (code left for the store's caller to fill in, since it
/// may be the ticket's number) under `auto`, else requested. Its deadlines
/// count from `now`, when the code goes out with the acknowledgement.
pub(super) fn on_new_ticket(
    pack: &Pack,
    policy: &Evaluation,
    mailbox: &MailboxView<'_>,
    serials: &[String],
    now: DateTime<Utc>,
) -> (Vec<Event>, Vec<TimerPlan>) {
    let Some(spec) = pack.policy.rma() else {
        return (vec![], vec![]);
    };
    if !spec.requested_by(&policy.topics, mailbox.name, mailbox.role) {
        return (vec![], vec![]);
    }
    let part = serials.first().cloned().unwrap_or_default();
    let plans = policy
        .contract
        .as_ref()
        .map(|c| c.plans.clone())
        .unwrap_or_default();
    match spec.issue {
        IssueMode::Auto => {
            let timers = deadline_timers(spec, pack, RmaStart::Issued, &part, &plans, now);
            let event = Event::Rma {
                expires_at: expiry(spec, pack, &plans, now),
                tracking: None,
                part,
                state: RmaState::Issued,
                code: None,
                plans,
                rule: spec.rule.clone(),
                by: "ticketd".into(),
            };
            (vec![event], timers)
        }
        IssueMode::Approval => (
            vec![Event::Rma {
                part,
                state: RmaState::Requested,
                code: None,
                plans,
                expires_at: None,
                tracking: None,
                rule: spec.rule.clone(),
                by: "ticketd".into(),
            }],
            vec![],
        ),
    }
}

/// The part a staff step is about: the one named, else the ticket's only
/// RMA, else the whole unit when it has none.
fn pick_part(
    ticket: &TicketInfo,
    rmas: &[RmaRecord],
    part: Option<&str>,
) -> Result<String, String> {
    match (part, rmas) {
        (Some(p), _) => Ok(p.trim().to_string()),
        (None, []) => Ok(String::new()),
        (None, [one]) => Ok(one.part.clone()),
        (None, many) => Err(format!(
            "ticket {} has RMAs for {}: name one with --part",
            ticket.id,
            many.iter()
                .map(|r| if r.part.is_empty() {
                    "the whole unit (--part \"\")".to_string()
                } else {
                    r.part.clone()
                })
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Where a customer mail about a ticket goes out from, in which language and thread.
#[derive(Clone, Copy)]
struct Addressing<'a> {
    pack: &'a Pack,
    language: Language,
    from_address: &'a str,
    thread: Option<&'a str>,
}

/// The customer mail about an RMA: its code, validity, where to send the
/// part, and the pack's texts (`texts`, rendered with the same data).
fn customer_mail(
    template: &'static str,
    ticket: &TicketInfo,
    rma: serde_json::Value,
    (deadlines, texts): (serde_json::Value, Vec<(String, String)>),
    to: &Addressing<'_>,
) -> ReplyPlan {
    let Addressing {
        pack,
        language,
        from_address,
        thread,
    } = *to;
    let return_to = pack
        .policy
        .rma()
        .and_then(|s| s.return_to.get(&language).cloned());
    let notices: Vec<serde_json::Value> = texts
        .into_iter()
        .map(|(id, text)| json!({"id": id, "text": text}))
        .collect();
    ReplyPlan::to_customer(
        template,
        &ticket.requester,
        language,
        from_address,
        thread,
        AutoSubmitted::Generated,
        json!({
            "vendor": pack.vendor,
            "customer": {"address": ticket.requester},
            "rma": rma,
            "deadlines": deadlines,
            "return_to": return_to,
            "tracking": null,
            "policy": {"notices": notices},
        }),
    )
}

/// The ticket's RMAs that have a code, as later replies show them
/// (`state_name` in the reply's language).
pub(super) fn codes(
    ticket: &TicketInfo,
    zone: chrono_tz::Tz,
    language: Language,
) -> Vec<serde_json::Value> {
    ticket
        .rmas
        .iter()
        .filter(|r| r.code.is_some())
        .map(|r| {
            let mut v = rma_json(r, None, zone);
            v["state_name"] = json!(state_name(r.state, language));
            v
        })
        .collect()
}

/// An RMA's state as the customer reads it.
fn state_name(s: RmaState, lang: Language) -> &'static str {
    match (lang, s) {
        (Language::En, RmaState::Requested) => "requested",
        (Language::En, RmaState::Approved) => "approved",
        (Language::En, RmaState::Issued) => "issued",
        (Language::En, RmaState::Shipped) => "replacement shipped",
        (Language::En, RmaState::Received) => "replacement received",
        (Language::En, RmaState::Returned) => "part returned",
        (Language::En, RmaState::Expired) => "expired",
        (Language::En, RmaState::Cancelled) => "cancelled",
        (Language::Ja, RmaState::Requested) => "申請受付",
        (Language::Ja, RmaState::Approved) => "承認済み",
        (Language::Ja, RmaState::Issued) => "発行済み",
        (Language::Ja, RmaState::Shipped) => "交換品発送済み",
        (Language::Ja, RmaState::Received) => "交換品受領済み",
        (Language::Ja, RmaState::Returned) => "返却済み",
        (Language::Ja, RmaState::Expired) => "期限切れ",
        (Language::Ja, RmaState::Cancelled) => "取消",
        (Language::Es, RmaState::Requested) => "solicitado",
        (Language::Es, RmaState::Approved) => "aprobado",
        (Language::Es, RmaState::Issued) => "emitido",
        (Language::Es, RmaState::Shipped) => "sustitución enviada",
        (Language::Es, RmaState::Received) => "sustitución recibida",
        (Language::Es, RmaState::Returned) => "pieza devuelta",
        (Language::Es, RmaState::Expired) => "caducado",
        (Language::Es, RmaState::Cancelled) => "cancelado",
    }
}

fn rma_json(r: &RmaRecord, code: Option<&str>, zone: chrono_tz::Tz) -> serde_json::Value {
    json!({
        "code": code.or(r.code.as_deref()),
        "part": r.part,
        "rule": r.rule,
        "state": r.state.as_str(),
        "issued": r.issued_at.map(|t| local(zone, t)),
        "expires": r.expires_at.map(|t| local(zone, t)),
        "received": r.received_at.map(|t| local(zone, t)),
    })
}

/// The deadlines an RMA step starts, as the customer's mail shows them:
/// `deadlines.<id>.due` for the pack's texts, and each one's `announce` text.
fn deadlines_view<'a>(
    ds: impl Iterator<Item = (&'a RmaDeadline, DateTime<Utc>)>,
    language: Language,
    zone: chrono_tz::Tz,
) -> (serde_json::Value, Vec<(String, String)>) {
    let mut view = serde_json::Map::new();
    let mut texts = Vec::new();
    for (d, due) in ds {
        view.insert(
            d.id.clone(),
            json!({"due": local(zone, due), "rule": d.rule}),
        );
        if let Some(t) = d.announce.get(&language) {
            texts.push((d.id.clone(), t.clone()));
        }
    }
    (serde_json::Value::Object(view), texts)
}

/// A staff step on a ticket's RMA. Issuing is idempotent: asking again for
/// the same ticket and part gives the same code and sends nothing. A
/// shipment may carry its carrier and tracking number (`tracking`), which
/// the customer's notice gives.
pub fn rma_action(
    ticket: &TicketInfo,
    verb: RmaVerb,
    part: Option<&str>,
    tracking: Option<&Tracking>,
    i: &ActionInput<'_>,
) -> Result<RmaOutcome, String> {
    let pack = i.pack;
    if tracking.is_some() && verb != RmaVerb::Shipped {
        return Err(format!(
            "a carrier and tracking number go with `shipped`, not `{}`",
            verb.as_str()
        ));
    }
    let rmas = ticket.rmas.as_slice();
    let Some(spec) = pack.policy.rma() else {
        return Err(format!(
            "the {} pack has no [rma] table: its RMAs are not kept by ticketd",
            pack.name
        ));
    };
    // The later steps (a shipment, a receipt, a return) are recorded on a
    // closed ticket too; a new approval or code needs it open.
    if ticket.status == TicketStatus::Closed && matches!(verb, RmaVerb::Approve | RmaVerb::Issue) {
        return Err(format!("ticket {} is closed: reopen it first", ticket.id));
    }
    let part = pick_part(ticket, rmas, part)?;
    let existing = rmas.iter().find(|r| r.part == part);
    let shown = if part.is_empty() {
        "the whole unit".to_string()
    } else {
        format!("part {part}")
    };
    let language = Language::parse(&ticket.language).unwrap_or(pack.language);
    // A part new to the ticket is under the plans its other RMAs were asked
    // under (the same contract).
    let plans = existing
        .or_else(|| rmas.iter().find(|r| !r.plans.is_empty()))
        .map(|r| r.plans.clone())
        .unwrap_or_default();
    let st = Step {
        ticket,
        spec,
        pack,
        i,
        verb,
        part,
        tracking: tracking.cloned(),
        shown,
        existing,
        plans,
        language,
        to: Addressing {
            pack,
            language,
            from_address: i.from_address,
            thread: i.thread,
        },
    };
    match verb {
        RmaVerb::Approve => approve(&st),
        RmaVerb::Issue => issue(&st),
        RmaVerb::Shipped | RmaVerb::Received => advance(&st),
        RmaVerb::Returned => returned(&st),
    }
}

/// What every staff step on one RMA reads.
struct Step<'a> {
    ticket: &'a TicketInfo,
    spec: &'a RmaSpec,
    pack: &'a Pack,
    i: &'a ActionInput<'a>,
    verb: RmaVerb,
    part: String,
    /// A shipment's carrier and tracking number.
    tracking: Option<Tracking>,
    /// The part as the staff read it ("part A1-1", "the whole unit").
    shown: String,
    existing: Option<&'a RmaRecord>,
    plans: Vec<String>,
    language: Language,
    to: Addressing<'a>,
}

impl Step<'_> {
    /// The `rma` event of this step, moving the RMA to `state`.
    fn event(
        &self,
        state: RmaState,
        code: Option<String>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Event {
        Event::Rma {
            part: self.part.clone(),
            state,
            code,
            plans: self.plans.clone(),
            expires_at,
            tracking: self.tracking.clone(),
            rule: match (self.verb, &self.spec.issue_within) {
                (RmaVerb::Approve, Some((_, r))) => r.clone(),
                _ => self.spec.rule.clone(),
            },
            by: self.i.by.to_string(),
        }
    }

    /// The RMA was in `state` already: nothing changes.
    fn same(&self, state: RmaState) -> RmaOutcome {
        RmaOutcome {
            part: self.part.clone(),
            state,
            code: self.existing.and_then(|r| r.code.clone()),
            already: true,
            change: TicketChange::default(),
        }
    }

    fn state(&self) -> Option<RmaState> {
        self.existing.map(|r| r.state)
    }
}

/// Staff verified the documents or the symptoms (QN-05, AV-06): the code
/// is due within the pack's time.
fn approve(st: &Step<'_>) -> Result<RmaOutcome, String> {
    let (spec, i, part, shown) = (st.spec, st.i, &st.part, &st.shown);
    let state = st.state();
    if spec.issue == IssueMode::Auto {
        return Err(format!(
            "{} issues RMA codes without approval ({}): use `rma issue`",
            st.pack.vendor, spec.rule
        ));
    }
    match state {
        None | Some(RmaState::Requested) => {}
        Some(RmaState::Approved) => return Ok(st.same(RmaState::Approved)),
        Some(s) => return Err(format!("the RMA for {shown} is already {s}")),
    }
    let mut change = TicketChange::default();
    change.events.push(st.event(RmaState::Approved, None, None));
    if let Some((within, rule)) = &spec.issue_within {
        change.set_timers.push(TimerPlan {
            kind: TimerKind::RmaIssueDue,
            cause: issue_cause(part),
            due: st.pack.policy.after(i.now, *within),
            rule: rule.clone(),
            to: None,
        });
    }
    Ok(RmaOutcome {
        part: part.clone(),
        state: RmaState::Approved,
        code: None,
        already: false,
        change,
    })
}

/// The code is given and sent to the customer with the deadlines that
/// count from the issue.
fn issue(st: &Step<'_>) -> Result<RmaOutcome, String> {
    let (spec, pack, i, ticket, part) = (st.spec, st.pack, st.i, st.ticket, &st.part);
    let (zone, rmas, plans, existing) = (pack.zone, ticket.rmas.as_slice(), &st.plans, st.existing);
    let (shown, language, to) = (&st.shown, st.language, &st.to);
    let state = st.state();
    match (spec.issue, state) {
        (
            _,
            Some(RmaState::Issued | RmaState::Shipped | RmaState::Received | RmaState::Returned),
        ) => {
            return Ok(st.same(state.unwrap_or(RmaState::Issued)));
        }
        (IssueMode::Approval, None | Some(RmaState::Requested)) => {
            return Err(format!(
                "the RMA for {shown} is not approved yet ({}): `rma approve` it first",
                spec.rule
            ));
        }
        (_, Some(s @ (RmaState::Expired | RmaState::Cancelled))) => {
            return Err(format!(
                "the RMA for {shown} is {s}; name another --part for a new one"
            ));
        }
        _ => {}
    }
    // Codes made from the ticket number are shared by its parts
    // (IX-05); `{seq}` counts the ticket's RMAs.
    let seq = rmas.iter().filter(|r| r.code.is_some()).count() as i64 + 1;
    let code = spec.code_for(ticket.id.0, seq, i.now, zone);
    let expires = expiry(spec, pack, plans, i.now);
    let mut change = TicketChange::default();
    change
        .events
        .push(st.event(RmaState::Issued, Some(code.clone()), expires));
    change.set_timers = deadline_timers(spec, pack, RmaStart::Issued, part, plans, i.now);
    change.cancel_timers.push(TimerCancel {
        kind: TimerKind::RmaIssueDue,
        cause: issue_cause(part),
        why: format!("the RMA was issued by {}", i.by),
    });
    let texts = deadlines_view(
        spec.deadlines_from(RmaStart::Issued, plans)
            .map(|d| (d, pack.policy.after(i.now, d.after))),
        language,
        zone,
    );
    let record = RmaRecord {
        ticket: ticket.id,
        part: part.clone(),
        code: Some(code.clone()),
        state: RmaState::Issued,
        rule: spec.rule.clone(),
        plans: plans.clone(),
        requested_at: existing.map_or(i.now, |r| r.requested_at),
        issued_at: Some(i.now),
        shipped_at: None,
        received_at: None,
        returned_at: None,
        expires_at: expires,
    };
    change.mails.push(customer_mail(
        "rma_issued",
        ticket,
        rma_json(&record, None, zone),
        texts,
        to,
    ));
    Ok(RmaOutcome {
        part: part.clone(),
        state: RmaState::Issued,
        code: Some(code),
        already: false,
        change,
    })
}

/// The replacement went out, or reached the customer: the deadlines that
/// count from then start.
fn advance(st: &Step<'_>) -> Result<RmaOutcome, String> {
    let (spec, pack, i, ticket, part, verb) =
        (st.spec, st.pack, st.i, st.ticket, &st.part, st.verb);
    let (zone, shown, language, to) = (pack.zone, &st.shown, st.language, &st.to);
    let Some(r) = st.existing else {
        return Err(format!("ticket {} has no RMA for {shown}", ticket.id));
    };
    let (to_state, start, allowed): (RmaState, RmaStart, &[RmaState]) = match verb {
        RmaVerb::Shipped => (RmaState::Shipped, RmaStart::Shipped, &[RmaState::Issued]),
        _ => (
            RmaState::Received,
            RmaStart::Received,
            &[RmaState::Issued, RmaState::Shipped],
        ),
    };
    if r.state == to_state {
        return Ok(st.same(to_state));
    }
    if !allowed.contains(&r.state) {
        return Err(format!(
            "the RMA for {shown} is {}: it cannot be {} now",
            r.state, to_state
        ));
    }
    let mut change = TicketChange::default();
    change.events.push(st.event(to_state, None, None));
    change.set_timers = deadline_timers(spec, pack, start, part, &r.plans, i.now);
    let texts = deadlines_view(
        spec.deadlines_from(start, &r.plans)
            .map(|d| (d, pack.policy.after(i.now, d.after))),
        language,
        zone,
    );
    if !texts.1.is_empty() || st.tracking.is_some() {
        // Only a deadline the pack announces, or a parcel to follow, is worth a mail.
        let mut record = r.clone();
        record.state = to_state;
        let mut mail = customer_mail(
            "rma_notice",
            ticket,
            rma_json(&record, None, zone),
            texts,
            to,
        );
        if let Some(t) = &st.tracking {
            mail.data["tracking"] = json!({"carrier": t.carrier, "number": t.number});
        }
        change.mails.push(mail);
    }
    Ok(RmaOutcome {
        part: part.clone(),
        state: to_state,
        code: r.code.clone(),
        already: false,
        change,
    })
}

/// The defective part is back: every deadline of the RMA ends.
fn returned(st: &Step<'_>) -> Result<RmaOutcome, String> {
    let (spec, i, ticket, part, shown) = (st.spec, st.i, st.ticket, &st.part, &st.shown);
    let Some(r) = st.existing else {
        return Err(format!("ticket {} has no RMA for {shown}", ticket.id));
    };
    match r.state {
        RmaState::Issued | RmaState::Shipped | RmaState::Received => {}
        RmaState::Returned => return Ok(st.same(RmaState::Returned)),
        s => return Err(format!("the RMA for {shown} is {s}: nothing is due back")),
    }
    // The part is back: every deadline of the RMA ends.
    let mut change = TicketChange::default();
    change.events.push(st.event(RmaState::Returned, None, None));
    for d in spec.deadlines.iter() {
        for kind in [TimerKind::RmaReminder, TimerKind::RmaDeadline] {
            change.cancel_timers.push(TimerCancel {
                kind,
                cause: deadline_cause(&d.id, part),
                why: format!("the part's return was recorded by {}", i.by),
            });
        }
    }
    Ok(RmaOutcome {
        part: part.clone(),
        state: RmaState::Returned,
        code: r.code.clone(),
        already: false,
        change,
    })
}

/// A due RMA timer: a reminder or a passed deadline for the customer
/// (IX-06, IX-07, QN-07), or staff told that an approved RMA waits for its
/// code (QN-05). Cancelled when the RMA moved on.
pub(super) fn on_rma_timer(
    ticket: &TicketInfo,
    timer: &TimerRow,
    i: &TimerInput<'_>,
) -> TimerDecision {
    let t = &timer.plan;
    let (deadline, part) = match &t.cause {
        TimerCause::RmaDeadline { deadline, part } => (Some(deadline.as_str()), part.as_str()),
        TimerCause::RmaIssue { part } => (None, part.as_str()),
        other => return TimerDecision::cancel(t, format!("it is not an RMA's timer ({other})")),
    };
    let cancel = |why: String| TimerDecision::cancel(t, why);
    let Some(spec) = i.pack.policy.rma() else {
        return cancel(format!(
            "the {} pack has no [rma] table any more",
            i.pack.name
        ));
    };
    let Some(r) = ticket.rmas.iter().find(|r| r.part == part) else {
        return cancel(format!("the ticket has no RMA for part \"{part}\""));
    };
    let zone = i.pack.zone;
    let language = Language::parse(&ticket.language).unwrap_or(i.pack.language);
    let late = (i.now - t.due) > LATE_AFTER;
    let fired = fired(t, late);
    if t.kind == TimerKind::RmaIssueDue {
        if r.state != RmaState::Approved {
            return cancel(format!("the RMA is {} now", r.state));
        }
        let to = i.staff_for(ticket);
        if to.is_empty() {
            return cancel("no staff are configured to tell".into());
        }
        let mut reply = i.notice(
            "staff_rma_due",
            ticket,
            Audience::Staff(to),
            "rma",
            rma_json(r, None, zone),
        );
        reply.data["due"] = json!(local(zone, t.due));
        reply.data["rule"] = json!(t.rule);
        return TimerDecision::fire(vec![reply], vec![fired]);
    }
    let Some(id) = deadline else {
        return cancel(format!("a {} timer names no RMA deadline", t.kind.as_str()));
    };
    let Some(d) = spec.deadline(id) else {
        return cancel(format!("the pack has no RMA deadline `{id}` any more"));
    };
    // The part back, or the RMA ended: its deadlines are gone.
    if matches!(
        r.state,
        RmaState::Cancelled | RmaState::Expired | RmaState::Returned
    ) {
        return cancel(format!("the RMA is {}", r.state));
    }
    let (template_text, kind) = match t.kind {
        TimerKind::RmaReminder => (&d.remind, "reminder"),
        _ => (&d.text, "deadline"),
    };
    let due = match t.kind {
        TimerKind::RmaReminder => {
            let start = match d.from {
                RmaStart::Issued => r.issued_at,
                RmaStart::Shipped => r.shipped_at,
                RmaStart::Received => r.received_at,
            };
            start.map_or(t.due, |s| i.pack.policy.after(s, d.after))
        }
        _ => t.due,
    };
    let text = template_text.get(&language).cloned().unwrap_or_default();
    let mut view = serde_json::Map::new();
    view.insert(
        d.id.clone(),
        json!({"due": local(zone, due), "rule": d.rule}),
    );
    let mut events = vec![fired];
    let mut record = r.clone();
    if t.kind == TimerKind::RmaDeadline && d.expires {
        record.state = RmaState::Expired;
        events.push(Event::Rma {
            part: r.part.clone(),
            state: RmaState::Expired,
            code: None,
            plans: vec![],
            expires_at: None,
            tracking: None,
            rule: t.rule.clone(),
            by: "ticketd".into(),
        });
    }
    let mut rma = rma_json(&record, None, zone);
    rma["notice"] = json!(kind);
    let reply = customer_mail(
        "rma_notice",
        ticket,
        rma,
        (serde_json::Value::Object(view), vec![(d.id.clone(), text)]),
        &Addressing {
            pack: i.pack,
            language,
            from_address: i.from_address,
            thread: i.thread,
        },
    );
    TimerDecision::fire(vec![reply], events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::*;
    use crate::model::TicketId;

    fn ticket() -> TicketInfo {
        let mut t =
            crate::decide::fixtures::ticket(7, "ann@customer.test", "2026-03-02T10:00:00-08:00");
        t.subject = "Replacement".into();
        t.mailbox = "rma".into();
        t
    }

    fn record(state: RmaState, part: &str, plans: &[&str], code: Option<&str>) -> RmaRecord {
        RmaRecord {
            ticket: TicketId(7),
            part: part.into(),
            code: code.map(String::from),
            state,
            rule: "X".into(),
            plans: plans.iter().map(|p| p.to_string()).collect(),
            requested_at: at("2026-03-02T10:00:00-08:00"),
            issued_at: Some(at("2026-03-02T10:00:00-08:00")),
            shipped_at: None,
            received_at: None,
            returned_at: None,
            expires_at: None,
        }
    }

    fn act(
        pack: &Pack,
        rmas: &[RmaRecord],
        verb: RmaVerb,
        part: Option<&str>,
        now: &str,
    ) -> Result<RmaOutcome, String> {
        let identity = identity(&["lead@vendor.test"]);
        let mut t = ticket();
        t.rmas = rmas.to_vec();
        rma_action(
            &t,
            verb,
            part,
            None,
            &ActionInput {
                pack,
                identity: &identity,
                from_address: "rma@vendor.test",
                thread: Some("m1@customer.test"),
                by: "lead@vendor.test",
                now: at(now),
            },
        )
    }

    #[test]
    fn ix_05_two_parts_on_one_ticket_share_the_ticket_number_as_code_but_not_the_record() {
        let p = pack("ixsystems");
        let first = record(RmaState::Issued, "DRIVE-1", &[], Some("7"));
        let second = act(
            &p,
            &[first],
            RmaVerb::Issue,
            Some("PSU-2"),
            "2026-03-03T10:00:00-08:00",
        )
        .unwrap();
        assert_eq!(second.code.as_deref(), Some("7"));
        assert_eq!(second.part, "PSU-2");
        assert!(!second.already);
        assert_eq!(second.change.mails.len(), 1);
        assert_eq!(
            second.change.mails[0].in_reply_to.as_deref(),
            Some("m1@customer.test")
        );
    }

    #[test]
    fn ix_07_the_label_and_invoice_deadlines_count_from_the_recorded_shipment_and_ix_06_from_the_issue()
     {
        let p = pack("ixsystems");
        let mut requested = record(RmaState::Requested, "", &["advance_exchange"], None);
        requested.issued_at = None;
        let issued = act(
            &p,
            &[requested],
            RmaVerb::Issue,
            None,
            "2026-03-02T10:00:00-08:00",
        )
        .unwrap();
        let keys = |o: &RmaOutcome| -> Vec<(TimerKind, String, DateTime<Utc>)> {
            o.change
                .set_timers
                .iter()
                .map(|t| (t.kind, t.cause.to_string(), t.due))
                .collect()
        };
        assert_eq!(
            keys(&issued),
            [
                (
                    TimerKind::RmaReminder,
                    "rma_valid:".to_string(),
                    at("2026-03-27T10:00:00-07:00")
                ),
                (
                    TimerKind::RmaDeadline,
                    "rma_valid:".to_string(),
                    at("2026-04-01T10:00:00-07:00")
                ),
            ],
            "nothing of IX-07 before the replacement ships"
        );
        // Shipped Thursday 5 March: the label ends on the 15th, the
        // invoice follows on the 19th (reminded on the 17th).
        let shipped = act(
            &p,
            &[record(
                RmaState::Issued,
                "",
                &["advance_exchange"],
                Some("7"),
            )],
            RmaVerb::Shipped,
            None,
            "2026-03-05T10:00:00-08:00",
        )
        .unwrap();
        assert_eq!(
            keys(&shipped),
            [
                (
                    TimerKind::RmaDeadline,
                    "return_label:".to_string(),
                    at("2026-03-15T10:00:00-07:00")
                ),
                (
                    TimerKind::RmaReminder,
                    "parts_invoiced:".to_string(),
                    at("2026-03-17T10:00:00-07:00")
                ),
                (
                    TimerKind::RmaDeadline,
                    "parts_invoiced:".to_string(),
                    at("2026-03-19T10:00:00-07:00")
                ),
            ]
        );
        assert_eq!(
            shipped.change.mails[0].template, "rma_notice",
            "the customer is told the dates"
        );
        // Without the plan a shipment starts nothing.
        let plain = act(
            &p,
            &[record(RmaState::Issued, "", &[], Some("7"))],
            RmaVerb::Shipped,
            None,
            "2026-03-05T10:00:00-08:00",
        )
        .unwrap();
        assert!(plain.change.set_timers.is_empty());
        // The part back: every deadline ends.
        let back = act(
            &p,
            &[record(
                RmaState::Shipped,
                "",
                &["advance_exchange"],
                Some("7"),
            )],
            RmaVerb::Returned,
            None,
            "2026-03-09T10:00:00-07:00",
        )
        .unwrap();
        assert_eq!(back.state, RmaState::Returned);
        assert!(
            back.change
                .cancel_timers
                .iter()
                .any(|c| c.cause == deadline_cause("parts_invoiced", ""))
        );
        assert!(
            back.change
                .cancel_timers
                .iter()
                .any(|c| c.cause == deadline_cause("rma_valid", ""))
        );
    }

    #[test]
    fn qn_07_the_return_deadline_counts_five_business_days_from_the_recorded_receipt() {
        let p = pack("qnap");
        let issued = record(
            RmaState::Issued,
            "Q20AB12345",
            &["advanced_replacement"],
            Some("QRMA2026-7-1"),
        );
        // Received Thursday 2026-12-03: five business days later is Thursday 12-10.
        let out = act(
            &p,
            &[issued],
            RmaVerb::Received,
            None,
            "2026-12-03T10:00:00-08:00",
        )
        .unwrap();
        let deadline = out
            .change
            .set_timers
            .iter()
            .find(|t| t.kind == TimerKind::RmaDeadline)
            .expect("the QN-07 deadline");
        assert_eq!(deadline.rule, "QN-07");
        assert_eq!(
            deadline.due.with_timezone(&p.zone).date_naive().to_string(),
            "2026-12-10"
        );
        let reminder = out
            .change
            .set_timers
            .iter()
            .find(|t| t.kind == TimerKind::RmaReminder)
            .unwrap();
        assert_eq!(
            reminder.due.with_timezone(&p.zone).date_naive().to_string(),
            "2026-12-09"
        );
        assert_eq!(
            out.change.mails[0].template, "rma_notice",
            "the customer is told the date"
        );
        // Over Christmas (a US federal holiday on Friday 25 December):
        // received Monday the 21st, due back Tuesday the 29th.
        let issued = record(
            RmaState::Issued,
            "Q20AB12345",
            &["advanced_replacement"],
            Some("QRMA2026-7-1"),
        );
        let out = act(
            &p,
            &[issued],
            RmaVerb::Received,
            None,
            "2026-12-21T10:00:00-08:00",
        )
        .unwrap();
        let deadline = out
            .change
            .set_timers
            .iter()
            .find(|t| t.kind == TimerKind::RmaDeadline)
            .unwrap();
        assert_eq!(
            deadline.due.with_timezone(&p.zone).date_naive().to_string(),
            "2026-12-29"
        );
    }

    #[test]
    fn qn_05_and_av_06_an_rma_is_issued_only_after_staff_approve_it() {
        for name in ["qnap", "avanzada7"] {
            let p = pack(name);
            let mut requested = record(RmaState::Requested, "", &[], None);
            requested.issued_at = None;
            let e = act(
                &p,
                std::slice::from_ref(&requested),
                RmaVerb::Issue,
                None,
                "2026-12-03T10:00:00Z",
            )
            .unwrap_err();
            assert!(e.contains("not approved yet"), "{name}: {e}");
            let ok = act(
                &p,
                &[requested],
                RmaVerb::Approve,
                None,
                "2026-12-03T10:00:00Z",
            )
            .unwrap();
            assert_eq!(ok.state, RmaState::Approved);
            assert_eq!(
                ok.change
                    .set_timers
                    .iter()
                    .any(|t| t.kind == TimerKind::RmaIssueDue),
                name == "qnap",
                "{name}: only QN-05 sets a time to issue by"
            );
        }
    }

    /// `on_rma_timer` for a timer of `kind` and `cause` on a ticket with `r`, at `now`.
    fn due(
        pack: &Pack,
        r: RmaRecord,
        kind: TimerKind,
        cause: TimerCause,
        rule: &str,
        now: &str,
    ) -> TimerDecision {
        let identity = identity(&["lead@vendor.test"]);
        let timer = TimerRow {
            id: 1,
            ticket: TicketId(7),
            plan: TimerPlan {
                kind,
                cause,
                due: at(now),
                rule: rule.into(),
                to: None,
            },
        };
        let mut t = ticket();
        t.rmas = vec![r];
        on_rma_timer(
            &t,
            &timer,
            &TimerInput {
                pack,
                identity: &identity,
                staff: &crate::model::StaffDirectory::default(),
                from_address: "support@vendor.test",
                mailbox_role: None,
                thread: Some("m1@customer.test"),
                now: at(now),
            },
        )
    }

    #[test]
    fn ix_06_a_reminder_whose_part_was_returned_is_cancelled() {
        let mut r = record(RmaState::Returned, "", &[], Some("7"));
        r.returned_at = Some(at("2026-03-10T10:00:00-07:00"));
        let d = due(
            &pack("ixsystems"),
            r,
            TimerKind::RmaReminder,
            deadline_cause("rma_valid", ""),
            "IX-06",
            "2026-03-27T10:00:00-07:00",
        );
        assert!(
            matches!(d, TimerDecision::Cancel { ref why, .. } if why.contains("returned")),
            "{d:?}"
        );
    }

    #[test]
    fn ix_06_the_validity_deadline_marks_the_rma_expired_and_tells_the_customer_in_their_thread() {
        let r = record(RmaState::Issued, "", &[], Some("7"));
        let d = due(
            &pack("ixsystems"),
            r,
            TimerKind::RmaDeadline,
            deadline_cause("rma_valid", ""),
            "IX-06",
            "2026-04-01T10:00:00-07:00",
        );
        let TimerDecision::Fire {
            replies, events, ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(replies[0].to, ["ann@customer.test"]);
        assert_eq!(replies[0].in_reply_to.as_deref(), Some("m1@customer.test"));
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Rma {
                state: RmaState::Expired,
                ..
            }
        )));
    }

    #[test]
    fn ix_07_the_invoice_notice_goes_unless_the_parts_came_back() {
        let r = record(RmaState::Issued, "", &["advance_exchange"], Some("7"));
        let d = due(
            &pack("ixsystems"),
            r.clone(),
            TimerKind::RmaDeadline,
            deadline_cause("parts_invoiced", ""),
            "IX-07",
            "2026-03-16T10:00:00-07:00",
        );
        let TimerDecision::Fire {
            replies, events, ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(replies[0].template, "rma_notice");
        assert!(
            replies[0].data["policy"]["notices"][0]["text"]
                .as_str()
                .unwrap()
                .contains("invoiced automatically")
        );
        assert!(
            !events.iter().any(|e| matches!(e, Event::Rma { .. })),
            "the label's end expires nothing"
        );
        let mut back = r;
        back.state = RmaState::Returned;
        let d = due(
            &pack("ixsystems"),
            back,
            TimerKind::RmaDeadline,
            deadline_cause("parts_invoiced", ""),
            "IX-07",
            "2026-03-16T10:00:00-07:00",
        );
        assert!(matches!(d, TimerDecision::Cancel { .. }), "{d:?}");
    }

    #[test]
    fn qn_05_staff_hear_of_an_approved_rma_without_a_code_after_two_business_days_and_not_once_issued()
     {
        let mut approved = record(RmaState::Approved, "", &[], None);
        approved.issued_at = None;
        let d = due(
            &pack("qnap"),
            approved.clone(),
            TimerKind::RmaIssueDue,
            issue_cause(""),
            "QN-05",
            "2026-12-07T10:00:00-08:00",
        );
        let TimerDecision::Fire { replies, .. } = d else {
            panic!("{d:?}")
        };
        assert_eq!(replies[0].template, "staff_rma_due");
        assert_eq!(replies[0].to, ["lead@vendor.test"]);
        let mut issued = approved;
        issued.state = RmaState::Issued;
        issued.code = Some("QRMA2026-7-1".into());
        let d = due(
            &pack("qnap"),
            issued,
            TimerKind::RmaIssueDue,
            issue_cause(""),
            "QN-05",
            "2026-12-07T10:00:00-08:00",
        );
        assert!(matches!(d, TimerDecision::Cancel { .. }), "{d:?}");
    }

    #[test]
    fn qn_07_after_the_return_deadline_the_customer_is_told_the_daily_charge_applies() {
        let mut r = record(
            RmaState::Received,
            "Q20AB12345",
            &["advanced_replacement"],
            Some("QRMA2026-7-1"),
        );
        r.received_at = Some(at("2026-12-03T10:00:00-08:00"));
        let d = due(
            &pack("qnap"),
            r,
            TimerKind::RmaDeadline,
            deadline_cause("ar_return", "Q20AB12345"),
            "QN-07",
            "2026-12-10T10:00:00-08:00",
        );
        let TimerDecision::Fire { replies, .. } = d else {
            panic!("{d:?}")
        };
        let text = replies[0].data["policy"]["notices"][0]["text"]
            .as_str()
            .unwrap();
        assert!(text.contains("USD 100"), "{text}");
    }
}
