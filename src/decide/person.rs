//! Mail a person wrote: the vendor's rules, the ticket it opens or updates, the acknowledgement and the staff notes.

use super::escalation::escalation_timers;
use super::limits::{acks_capped, consume, rate_limited};
use super::plan::{
    Base, Decision, Input, ReplyPlan, TicketView, addr_json, attached, local, new_ticket,
    staff_notice, ticket_subject,
};
use super::quarantine::quarantine;
use super::rma::{codes, on_new_ticket};
use super::sla::sla_timers;
use super::staff::notifications;
use super::waiting::on_state;
use super::words::{new_text, request_text};
use crate::compose::deliverable;
use crate::model::{
    Event, Language, Outcome, PolicyRecord, SideEffects, TicketInfo, TicketStatus, TicketWrite,
};
use crate::parse::{Addr, looks_japanese};
use crate::policy::{Evaluation, Request};
use serde_json::json;

/// Mail a person wrote: the vendor's rules at its arrival, its ticket
/// (opened, or updated and reopened), the acknowledgement within the reply
/// limits, and the staff notes the rules raise.
pub(super) fn person(
    i: &Input<'_>,
    ticket: Option<&TicketInfo>,
    language: Language,
    mut reasons: Vec<String>,
    mut events: Vec<Event>,
    base: &Base<'_>,
) -> Decision {
    let m = i.inbound;
    // A status request is answered whatever the ticket's state, even one
    // closed long ago: it changes nothing.
    if let (Some(t), Some(sender)) = (ticket, m.from.as_ref())
        && let Some(d) = status_request(i, t, sender, language, &mut reasons, &mut events, base)
    {
        return d;
    }
    let ticket = reopenable(i, ticket, &mut reasons, &mut events);
    let subject = ticket_subject(i);
    let Some(sender) = m.from.as_ref() else {
        reasons.push("no From address: nobody to answer".into());
        return quarantine(i, reasons);
    };

    let policy = evaluate(i, ticket, language);
    // A customer who writes again after staff answered waits on staff.
    let status = if policy.waiting_on_customer {
        TicketStatus::WaitingCustomer
    } else if ticket.is_some_and(TicketInfo::answered) {
        TicketStatus::WaitingStaff
    } else {
        TicketStatus::Open
    };
    policy_events(&policy, &mut events);

    let (write, view, template) = match ticket {
        Some(t) => {
            events.push(Event::Message {
                from: sender.address.clone(),
            });
            if !matches!(t.status, TicketStatus::Open | TicketStatus::WaitingStaff) {
                events.push(Event::Reopened {
                    was: t.status.as_str().to_string(),
                });
            }
            (
                TicketWrite::Update { id: t.id, status },
                TicketView {
                    action: "update",
                    id: Some(t.id),
                },
                "ack_followup",
            )
        }
        None => {
            events.push(Event::Created {
                from: sender.address.clone(),
                mailbox: i.mailbox.name.to_string(),
                list: false,
            });
            let (write, view) = new_ticket(i, sender, subject.clone(), status, language);
            (write, view, "ack_new")
        }
    };

    let (mut replies, effects, rate_limited_now) = acknowledge(
        i,
        ticket,
        sender,
        (template, language),
        &policy,
        (&mut reasons, &mut events),
    );
    // Staff hear of each note once per ticket; the events keep every one.
    let notes: Vec<String> = policy
        .staff
        .iter()
        .map(|n| format!("{}: {}", n.rule, n.text))
        .filter(|n| ticket.is_none_or(|t| !t.staff_notes.contains(n)))
        .collect();
    if !notes.is_empty() {
        replies.extend(staff_notice(i, "staff_policy", &notes));
    }
    let owner = route(i, ticket, &policy, &mut reasons, &mut events);
    // Mail past the reply limits is most likely a loop: staff are not
    // notified of each one either (the ticket still records it).
    if rate_limited_now {
        if !i.staff.members.is_empty() {
            reasons.push("staff are not notified either (the reply limit)".into());
        }
    } else {
        replies.extend(notifications(
            i,
            ticket,
            owner.as_deref(),
            status,
            &policy,
            new_text(m),
        ));
    }
    let mut d = base(
        Outcome::Processed,
        write,
        view,
        language,
        replies,
        reasons,
        events,
    );
    if let Some(t) = ticket {
        // A follow-up keeps the ticket's name, whatever its subject says now.
        d.subject = t.subject.clone();
    }
    d.effects = effects;
    set_timers(i, ticket, &policy, status, &mut d);
    // What this mail refers to and has not come yet joins this ticket when it
    // comes: the order mail is stored in must not split a conversation.
    // Only its sender may join through them: listing the To and Cc would
    // let a forged mail name a stranger who then joins with a mail of the
    // Message-ID it made up.
    d.effects.awaited = m.referenced_ids().into_iter().take(20).collect();
    if !d.effects.awaited.is_empty() {
        d.effects.awaited_people = vec![sender.address.to_ascii_lowercase()];
    }
    d.policy = Some(policy);
    d
}

/// The ticket the mail writes on: `ticket`, unless it was closed longer
/// ago than the pack's window (`reopen_within`): then none, and the mail
/// opens a new ticket that names it.
fn reopenable<'t>(
    i: &Input<'_>,
    ticket: Option<&'t TicketInfo>,
    reasons: &mut Vec<String>,
    events: &mut Vec<Event>,
) -> Option<&'t TicketInfo> {
    let m = i.inbound;
    let closed_long_ago = ticket.filter(|t| {
        t.status == TicketStatus::Closed
            && i.pack
                .policy
                .lifecycle()
                .reopen_within
                .is_some_and(|w| i.pack.policy.after(t.updated_at, w) < m.arrival)
    });
    if let Some(old) = closed_long_ago {
        reasons.push(format!(
            "ticket {} was closed on {}, longer ago than the pack's reopen window: a new ticket linked to it",
            old.id,
            old.updated_at.with_timezone(&i.pack.zone).format("%Y-%m-%d")
        ));
        events.push(Event::LinkedTo { ticket: old.id });
        None
    } else {
        ticket
    }
}

/// The vendor's rules at the mail's arrival, with what the ticket already has.
fn evaluate(i: &Input<'_>, ticket: Option<&TicketInfo>, language: Language) -> Evaluation {
    let m = i.inbound;
    let prepared = i.prepared.and_then(|p| p.of(m, i.pack));
    let text = match prepared {
        Some(p) => std::borrow::Cow::Borrowed(p.text()),
        None => std::borrow::Cow::Owned(request_text(m)),
    };
    let attachments: Vec<String> = m
        .attachments
        .iter()
        .filter_map(|a| a.name.clone())
        .collect();
    i.pack.policy.evaluate(&Request {
        pack: &i.pack.name,
        arrival: m.arrival,
        mailbox_name: i.mailbox.name,
        mailbox_role: i.mailbox.role,
        text: &text,
        attachments: &attachments,
        serials: &i.extracted.serials,
        invoices: &i.extracted.invoices,
        tax_ids: &i.extracted.tax_ids,
        contract: i.lookup.contract.as_ref(),
        language,
        ticket_created: ticket.map(|t| t.created_at),
        known_facts: ticket.map_or(&[], |t| t.facts.as_slice()),
        quota_used: &i.lookup.quota_used,
        rma_issued: ticket.is_some_and(|t| t.rmas.iter().any(|r| r.code.is_some())),
        acknowledged: i.now,
        scan: prepared.map(|p| p.scan(i.pack)),
    })
}

/// The acknowledgement, within the reply limits: none to an undeliverable
/// or unusable address, none past the buckets (`rate_limited` is then
/// true), none past the cap on all new tickets' (staff told once); else
/// the reply and the buckets it draws from.
fn acknowledge(
    i: &Input<'_>,
    ticket: Option<&TicketInfo>,
    sender: &Addr,
    (template, language): (&'static str, Language),
    policy: &Evaluation,
    (reasons, events): (&mut Vec<String>, &mut Vec<Event>),
) -> (Vec<ReplyPlan>, SideEffects, bool) {
    let m = i.inbound;
    let mut replies = Vec::new();
    let mut effects = SideEffects::default();
    let mut rate_limited_now = false;
    let undeliverable = i.lookup.contact.as_ref().filter(|c| c.undeliverable);
    if let Some(c) = undeliverable {
        let why = format!(
            "{} is marked undeliverable ({}): no reply",
            sender.address,
            c.undeliverable_reason
                .as_deref()
                .unwrap_or("an earlier bounce")
        );
        reasons.push(why.clone());
        events.push(Event::ReplySuppressed { why });
    } else if !deliverable(&sender.address) {
        reasons.push(format!(
            "{} is not an address we can send to",
            sender.address
        ));
    } else if let Some(limited) = rate_limited(i, sender, ticket) {
        reasons.push(limited.clone());
        events.push(Event::ReplySuppressed { why: limited });
        rate_limited_now = true;
    } else if let Some((why, tell)) = ticket
        .is_none()
        .then(|| acks_capped(i, &mut effects))
        .flatten()
    {
        // A flood of new senders (forged, most likely): the ticket opens and
        // staff hear of it, but no acknowledgement goes; staff are told
        // once each time the cap runs dry.
        reasons.push(why.clone());
        events.push(Event::ReplySuppressed { why });
        effects.acks_capped = true;
        if tell {
            replies.extend(staff_notice(i, "staff_acks_capped", reasons));
        }
    } else {
        effects = consume(i, sender, ticket);
        replies.push(ReplyPlan::answer(
            i,
            template,
            &sender.address,
            language,
            json!({
                "vendor": i.pack.vendor,
                "customer": addr_json(Some(sender)),
                "mailbox": {"name": i.mailbox.name, "role": i.mailbox.role.as_str(), "address": i.mailbox.address},
                "received_at": local(i.pack.zone, m.arrival),
                "message": {"subject": m.subject, "attachments": m.attachments.len()},
                "extracted": i.extracted,
                "policy": policy.view(),
                "ticket_state": ticket.map_or("new", |t| t.status.as_str()),
                "rma": ticket.map_or_else(Vec::new, |t| codes(t, i.pack.zone, language)),
            }),
        ));
    }
    (replies, effects, rate_limited_now)
}

/// The ticket's owner: its own, else (AV-04, AV-05) the contract's
/// technician when the rules routed the request.
fn route(
    i: &Input<'_>,
    ticket: Option<&TicketInfo>,
    policy: &Evaluation,
    reasons: &mut Vec<String>,
    events: &mut Vec<Event>,
) -> Option<String> {
    let mut owner = ticket.and_then(|t| t.owner.clone());
    if let (None, Some(route), Some(c)) = (&owner, &policy.route, &policy.contract)
        && !c.technician.is_empty()
    {
        match i.staff.member(&c.technician) {
            Some(tech) => {
                reasons.push(format!(
                    "{}: routed to {}, the contract's technician",
                    route.rule, tech.name
                ));
                events.push(Event::Assigned {
                    to: tech.name.clone(),
                    by: format!("route {}", route.rule),
                });
                owner = Some(tech.name.clone());
            }
            None => reasons.push(format!(
                "{}: the contract names technician `{}`, who is not in [staff.members]; the queue hears of it",
                route.rule, c.technician
            )),
        }
    }
    owner
}

/// The timers the mail sets, ends, pauses or resumes: the escalation
/// ladder; for a new ticket its RMA's deadlines and SLA timers; and what
/// the ticket's new state does to the waiting timers and the SLA clock.
fn set_timers(
    i: &Input<'_>,
    ticket: Option<&TicketInfo>,
    policy: &Evaluation,
    status: TicketStatus,
    d: &mut Decision,
) {
    d.effects.timers = escalation_timers(policy);
    let sla = if ticket.is_none() {
        let (rma_events, rma_timers) =
            on_new_ticket(i.pack, policy, &i.mailbox, &i.extracted.serials, i.now);
        d.events.extend(rma_events);
        d.effects.timers.extend(rma_timers);
        sla_timers(i, policy)
    } else {
        vec![]
    };
    let (set, cancel, updates) = on_state(
        i.pack,
        ticket.map_or(&[], |t| t.timers.as_slice()),
        &sla,
        status,
        &policy.missing_names,
        "the customer wrote again",
        i.now,
    );
    d.effects.timers.extend(sla);
    d.effects.timers.extend(set);
    d.effects.cancel_timers = cancel;
    d.effects.timer_updates = updates;
}

/// Phrases that ask for a ticket's state, in the languages we answer in.
static STATUS_ASKED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(concat!(
        r"(?i)\b(?:what(?:'s| is) the (?:current )?status|status (?:of|on|update)|",
        r"(?:any|an) (?:update|news|progress)\b|update on (?:my|our|the|this|ticket|case|request)|",
        r"where (?:are we|do we stand|does (?:it|this|my \w+) stand)|how is (?:it|my \w+) going|",
        r"progress on|estado de (?:mi|la|el|nuestr[oa]|su)|en qu[eé] estado|c[oó]mo va|",
        r"alguna novedad|hay novedades|qu[eé] tal va)",
        r"|状況|進捗|ステータス|どうなって",
        r"|^\W*(?:status|estado)\W*$"
    ))
    .expect("a valid pattern")
});

/// Whether `text` says nothing but a request for the ticket's state: every
/// sentence asks for it (`STATUS_ASKED`) or is a courtesy (a greeting,
/// thanks, a sign-off, a name), and one asks, here or in the subject. "Any
/// update? The pool went offline again." says more: a follow-up.
fn only_asks_for_state(text: &str, subject: &str) -> bool {
    const COURTESY: &[&str] = &[
        "hi",
        "hello",
        "dear",
        "hey",
        "thanks",
        "thank",
        "regards",
        "best",
        "cheers",
        "sincerely",
        "hola",
        "buenos",
        "buenas",
        "estimado",
        "estimada",
        "gracias",
        "saludos",
        "saludo",
        "atentamente",
        "cordialmente",
    ];
    const COURTESY_JA: &[&str] = &[
        "お世話",
        "よろしく",
        "宜しく",
        "ありがと",
        "失礼",
        "様",
        "お疲れ",
        "お願い",
    ];
    let courtesy = |s: &str| {
        if looks_japanese(s) {
            return COURTESY_JA.iter().any(|w| s.contains(w)) && !STATUS_ASKED.is_match(s);
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        let lower = s.to_lowercase();
        let polite = lower
            .split(|c: char| !c.is_alphabetic())
            .any(|w| COURTESY.contains(&w));
        // A name, a company or a phone number under the sign-off.
        let signature = words.len() <= 3
            && words
                .iter()
                .all(|w| !w.starts_with(|c: char| c.is_lowercase()));
        (polite && words.len() <= 5) || signature
    };
    let mut asked = STATUS_ASKED.is_match(subject);
    for sentence in text.split(['.', '?', '!', '\n', '。', '？', '！']) {
        let s = sentence.trim().trim_matches([',', '、', ' ']);
        if s.is_empty() {
            continue;
        }
        if STATUS_ASKED.is_match(s) {
            asked = true;
        } else if !courtesy(s) {
            return false;
        }
    }
    asked
}

/// A customer's mail that only asks for the state of the ticket it names
/// (IX-13, NX-02: by its tag, or its number in the pack's form): short, no
/// attachments, and asking in so many words. It is answered with the state,
/// the last staff answer's date and the next step, and changes nothing else
/// (no state change, no timer, no staff notification). A mail that says
/// more is a follow-up.
fn status_request(
    i: &Input<'_>,
    t: &TicketInfo,
    sender: &Addr,
    language: Language,
    reasons: &mut Vec<String>,
    events: &mut Vec<Event>,
    base: &Base<'_>,
) -> Option<Decision> {
    let m = i.inbound;
    let named = i.lookup.tagged.as_ref().is_some_and(|x| x.id == t.id);
    let text = new_text(m).trim();
    let new_facts = !i.extracted.serials.is_empty() || !i.extracted.invoices.is_empty();
    if !named
        || !m.attachments.is_empty()
        || new_facts
        || text.chars().count() > 300
        || !only_asks_for_state(text, &m.subject)
    {
        return None;
    }
    reasons.push(format!(
        "{} asks for the state of ticket {} (IX-13, NX-02): answered, nothing else changes",
        sender.address, t.id
    ));
    events.push(Event::StatusRequest {
        from: sender.address.clone(),
    });
    let mut replies = Vec::new();
    let mut effects = SideEffects::default();
    if i.lookup.contact.as_ref().is_some_and(|c| c.undeliverable) || !deliverable(&sender.address) {
        reasons.push(format!("{} cannot be written to: no reply", sender.address));
    } else if let Some(limited) = rate_limited(i, sender, Some(t)) {
        reasons.push(limited.clone());
        events.push(Event::ReplySuppressed { why: limited });
    } else {
        effects = consume(i, sender, Some(t));
        let zone = i.pack.zone;
        replies.push(ReplyPlan::answer(
            i,
            "status_reply",
            &sender.address,
            language,
            json!({
                "vendor": i.pack.vendor,
                "customer": addr_json(Some(sender)),
                "ticket_state": t.status.as_str(),
                "opened": t.created_at.with_timezone(&zone).format("%Y-%m-%d").to_string(),
                "last_answer": t.last_answer.map(|a| a.with_timezone(&zone).format("%Y-%m-%d").to_string()),
                "rma": codes(t, zone, language),
            }),
        ));
    }
    let mut d = attached(
        base,
        t,
        language,
        replies,
        std::mem::take(reasons),
        std::mem::take(events),
    );
    d.subject = t.subject.clone();
    d.effects = effects;
    Some(d)
}

/// What the rules decided, kept on the ticket's history.
pub(super) fn policy_events(p: &Evaluation, events: &mut Vec<Event>) {
    events.push(Event::Policy(PolicyRecord {
        pack: p.pack.clone(),
        rules: p.rules.clone(),
        tier: p.tier.clone(),
        severity: p.severity,
        business_open: p.business_open,
        facts: p.facts.clone(),
        missing: p.missing.clone(),
        clock_starts_at: p.clock_starts_at,
        first_response_due: p.first_response_due,
        warranty: p.warranty.clone(),
        contract: p.contract.clone(),
    }));
    for e in &p.escalations {
        events.push(Event::EscalationDue {
            at: e.at,
            to: e.to.clone(),
            rule: e.rule.clone(),
        });
    }
    for (id, d) in &p.deadlines {
        events.push(Event::Deadline {
            id: id.clone(),
            at: d.at,
            remind_at: d.remind_at,
            rule: d.rule.clone(),
        });
    }
    if let Some(q) = &p.quota {
        events.push(Event::Quota(q.clone()));
    }
    if p.waiting_on_customer {
        events.push(Event::WaitingOnCustomer {
            missing: p.missing.clone(),
        });
    }
    for n in &p.staff {
        events.push(Event::Staff {
            rule: n.rule.clone(),
            text: n.text.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::only_asks_for_state;

    #[test]
    fn ix_13_nx_02_only_a_mail_that_says_nothing_but_asking_is_a_status_request() {
        for asks in [
            "What is the status of ticket 7?",
            "Hi,\n\nany update on my ticket?\n\nThanks,\nAnn Smith\nACME Corp",
            "Hello, could you tell me the status of case 4711? Best regards, Ann",
            "¿En qué estado está mi incidencia?\n\nUn saludo,\nJuan",
            "お世話になっております。\nチケット7の進捗を教えてください。\nよろしくお願いいたします。",
            "Status?",
        ] {
            assert!(only_asks_for_state(asks, "Re: [TKT#7] Disk"), "{asks:?}");
        }
        for says_more in [
            "Any update? The pool went offline again tonight.",
            "What is the status? I have attached the new logs and the disk failed again.",
            "The pool is degraded.",
            "Thanks, it works now.",
            "Disk failed again",
            "進捗はどうですか。ディスクがまた壊れました。",
        ] {
            assert!(
                !only_asks_for_state(says_more, "Re: [TKT#7] Disk"),
                "{says_more:?}"
            );
        }
        // Asked in the subject, with nothing but courtesy in the text.
        assert!(only_asks_for_state("Thanks,\nAnn", "Status of ticket 7?"));
        assert!(!only_asks_for_state("Thanks,\nAnn", "Re: [TKT#7] Disk"));
    }
}
