//! The heart: a pure function from a mail and what the database knows to what should happen. No I/O, no clock.

use crate::classify::{Class, Classification, describe};
use crate::compose::{AutoSubmitted, deliverable};
use crate::config::{Identity, Limits, Rate};
use crate::extract::Extracted;
use crate::model::{
    BucketKey, Event, Language, Lookup, Outcome, PolicyRecord, Role, SideEffects, TicketId,
    TicketInfo, TicketStatus, TicketWrite, Undeliverable,
};
use crate::pack::Pack;
use crate::parse::{Addr, Inbound, looks_japanese};
use crate::policy::{Evaluation, Request};
use crate::thread;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

/// The mailbox a mail arrived in, as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct MailboxView<'a> {
    pub name: &'a str,
    pub role: Role,
    pub address: &'a str,
    pub accept_lists: bool,
}

/// Everything the decision reads. `now` is given, never read.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub inbound: &'a Inbound,
    pub classification: &'a Classification,
    pub extracted: &'a Extracted,
    pub lookup: &'a Lookup,
    pub mailbox: MailboxView<'a>,
    pub identity: &'a Identity,
    pub pack: &'a Pack,
    pub ticket_prefix: &'a str,
    /// The reply rate limits (`[limits]`).
    pub limits: &'a Limits,
    pub now: DateTime<Utc>,
}

/// A mail to send, before the ticket number is known.
#[derive(Debug, Clone, Serialize)]
pub struct ReplyPlan {
    pub template: &'static str,
    pub to: Vec<String>,
    pub language: Language,
    #[serde(skip)]
    pub from_address: String,
    #[serde(skip)]
    pub auto_submitted: AutoSubmitted,
    #[serde(skip)]
    pub in_reply_to: Option<String>,
    #[serde(skip)]
    pub references: Vec<String>,
    /// Template data; the renderer adds `ticket`.
    #[serde(skip)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub action: &'static str,
    pub id: Option<TicketId>,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub class: Class,
    pub reasons: Vec<String>,
    pub outcome: Outcome,
    pub would_reply: bool,
    pub ticket: TicketWrite,
    pub ticket_view: TicketView,
    pub subject: String,
    pub language: Language,
    pub replies: Vec<ReplyPlan>,
    pub events: Vec<Event>,
    /// Contacts to mark undeliverable and reply buckets to update.
    pub effects: SideEffects,
    /// What the vendor's rules say, for mail from a person.
    pub policy: Option<Evaluation>,
}

fn addr_json(a: Option<&Addr>) -> serde_json::Value {
    match a {
        Some(a) => json!({"name": a.name.clone().unwrap_or_default(), "address": a.address}),
        None => json!({"name": "", "address": ""}),
    }
}

/// The ticket this mail belongs to, and why; or why a tag was not trusted.
fn thread_of<'a>(i: &Input<'a>, reasons: &mut Vec<String>) -> Option<&'a TicketInfo> {
    let sender = i.inbound.sender_address().map(str::to_ascii_lowercase);
    if let Some(t) = &i.lookup.tagged {
        let on_ticket = sender
            .as_deref()
            .is_some_and(|s| s == t.requester || t.participants.iter().any(|p| p == s));
        let referenced = i.lookup.referenced.as_ref().is_some_and(|r| r.id == t.id);
        if on_ticket || referenced {
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
        reasons.push(format!("In-Reply-To/References point at ticket {}", t.id));
        return Some(t);
    }
    None
}

fn language_for(i: &Input<'_>, ticket: Option<&TicketInfo>) -> Language {
    if let Some(l) = i
        .lookup
        .contact
        .as_ref()
        .and_then(|c| c.language.as_deref())
        .and_then(Language::parse)
    {
        return l;
    }
    if let Some(l) = ticket.and_then(|t| Language::parse(&t.language)) {
        return l;
    }
    if looks_japanese(&i.inbound.subject) || looks_japanese(&i.inbound.text) {
        return Language::Ja;
    }
    i.pack.language
}

/// Decides what `i` should do. Pure: same input, same decision.
pub fn decide(i: &Input<'_>) -> Decision {
    let m = i.inbound;
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
                replies,
                events,
                effects: SideEffects::default(),
                policy: None,
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

    let ticket = thread_of(i, &mut reasons);
    let language = language_for(i, ticket);

    if class != Class::Human {
        return machine(i, ticket, language, reasons, events, &base);
    }

    let Some(sender) = m.from.as_ref() else {
        reasons.push("no From address: nobody to answer".into());
        return quarantine(i, reasons);
    };

    let text = request_text(m);
    let attachments: Vec<String> = m
        .attachments
        .iter()
        .filter_map(|a| a.name.clone())
        .collect();
    let policy = i.pack.policy.evaluate(&Request {
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
    });
    let status = if policy.waiting_on_customer {
        TicketStatus::WaitingCustomer
    } else {
        TicketStatus::Open
    };
    policy_events(&policy, &mut events);

    let (write, view, template) = match ticket {
        Some(t) => {
            events.push(Event::Message {
                from: sender.address.clone(),
            });
            if t.status != TicketStatus::Open {
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

    let mut replies = Vec::new();
    let mut effects = SideEffects::default();
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
    } else {
        effects = consume(i, sender, ticket);
        let mut references = m.references.clone();
        if let Some(id) = &m.message_id {
            references.retain(|r| r != id);
            references.push(id.clone());
        }
        references.truncate(20);
        replies.push(ReplyPlan {
            template,
            to: vec![sender.address.clone()],
            language,
            from_address: i.mailbox.address.to_string(),
            auto_submitted: AutoSubmitted::Replied,
            in_reply_to: m.message_id.clone(),
            references,
            data: json!({
                "vendor": i.pack.vendor,
                "customer": addr_json(Some(sender)),
                "mailbox": {"name": i.mailbox.name, "role": i.mailbox.role.as_str(), "address": i.mailbox.address},
                "received_at": m.arrival.with_timezone(&i.pack.zone).format("%Y-%m-%d %H:%M %Z").to_string(),
                "message": {"subject": m.subject, "attachments": m.attachments.len()},
                "extracted": i.extracted,
                "policy": policy.view(),
                "ticket_state": ticket.map_or("new", |t| t.status.as_str()),
            }),
        });
    }
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
    d.policy = Some(policy);
    d
}

/// A ticket's name: the mail's subject without reply prefixes or our tag.
fn ticket_subject(i: &Input<'_>) -> String {
    let s = thread::clean_subject(&i.inbound.subject, i.ticket_prefix);
    if s.is_empty() {
        "(no subject)".to_string()
    } else {
        s
    }
}

/// The write and the view of a new ticket opened by `sender`.
fn new_ticket(
    i: &Input<'_>,
    sender: &Addr,
    subject: String,
    status: TicketStatus,
    language: Language,
) -> (TicketWrite, TicketView) {
    (
        TicketWrite::New {
            subject,
            status,
            language: language.as_str().to_string(),
            requester: sender.address.to_ascii_lowercase(),
            requester_name: sender.name.clone(),
        },
        TicketView {
            action: "new",
            id: Some(i.lookup.next_ticket_id),
        },
    )
}

/// What the vendor's rules read of a mail: its subject and what the person
/// wrote now, without the quoted history and the signature.
pub fn request_text(m: &Inbound) -> String {
    let body = if m.reply_text.trim().is_empty() {
        &m.text
    } else {
        &m.reply_text
    };
    format!("{}\n{}", m.subject, body)
}

/// What the rules decided, kept on the ticket's history.
fn policy_events(p: &Evaluation, events: &mut Vec<Event>) {
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

/// The level of a token bucket at `now`: refilled at `rate.per_hour` since
/// it was stored, never above `rate.burst`; a bucket never stored is full.
pub fn bucket_level(i: &Input<'_>, key: &str, rate: Rate) -> f64 {
    let burst = f64::from(rate.burst);
    match i.lookup.bucket(key) {
        None => burst,
        Some(b) => {
            let hours = (i.now - b.updated_at).num_milliseconds().max(0) as f64 / 3_600_000.0;
            (b.tokens + hours * f64::from(rate.per_hour)).min(burst)
        }
    }
}

fn recipient_key(sender: &Addr) -> String {
    BucketKey::Recipient(sender.address.clone())
        .name()
        .unwrap_or_default()
}

/// Why an automatic reply to `sender` must not be sent now, if it must not.
fn rate_limited(i: &Input<'_>, sender: &Addr, ticket: Option<&TicketInfo>) -> Option<String> {
    let r = i.limits.replies_per_recipient;
    if bucket_level(i, &recipient_key(sender), r) < 1.0 {
        return Some(format!(
            "reply rate limit for {} reached ({} at once, {} an hour): no reply",
            sender.address, r.burst, r.per_hour
        ));
    }
    let t = i.limits.replies_per_ticket;
    if let Some(tk) = ticket
        && bucket_level(i, &format!("ticket:{}", tk.id), t) < 1.0
    {
        return Some(format!(
            "reply rate limit for ticket {} reached ({} at once, {} an hour): no reply",
            tk.id, t.burst, t.per_hour
        ));
    }
    None
}

/// The bucket levels after one automatic reply to `sender` on `ticket`.
fn consume(i: &Input<'_>, sender: &Addr, ticket: Option<&TicketInfo>) -> SideEffects {
    let r = bucket_level(i, &recipient_key(sender), i.limits.replies_per_recipient) - 1.0;
    let (key, t) = match ticket {
        Some(tk) => (
            BucketKey::Ticket(tk.id),
            bucket_level(i, &format!("ticket:{}", tk.id), i.limits.replies_per_ticket) - 1.0,
        ),
        None => (
            BucketKey::NewTicket,
            f64::from(i.limits.replies_per_ticket.burst) - 1.0,
        ),
    };
    SideEffects {
        buckets: vec![
            (BucketKey::Recipient(sender.address.to_ascii_lowercase()), r),
            (key, t),
        ],
        undeliverable: vec![],
    }
}

type Base<'f> = dyn Fn(
        Outcome,
        TicketWrite,
        TicketView,
        Language,
        Vec<ReplyPlan>,
        Vec<String>,
        Vec<Event>,
    ) -> Decision
    + 'f;

/// Mail a machine wrote: never answered. What it says is kept on the ticket
/// it belongs to without changing the ticket's state; a permanent bounce
/// marks the failed recipients of that ticket undeliverable and tells staff.
fn machine(
    i: &Input<'_>,
    ticket: Option<&TicketInfo>,
    language: Language,
    mut reasons: Vec<String>,
    mut events: Vec<Event>,
    base: &Base<'_>,
) -> Decision {
    let class = i.classification.class;
    let none = || TicketView {
        action: "none",
        id: None,
    };
    let ignored = |reasons, events| {
        base(
            Outcome::Ignored,
            TicketWrite::None,
            none(),
            language,
            vec![],
            reasons,
            events,
        )
    };
    if class == Class::OwnLoop {
        return ignored(reasons, events);
    }
    let attach = |t: &TicketInfo, reasons, events, replies| {
        base(
            Outcome::Processed,
            TicketWrite::Attach { id: t.id },
            TicketView {
                action: "update",
                id: Some(t.id),
            },
            language,
            replies,
            reasons,
            events,
        )
    };
    match class {
        Class::Bounce => {
            let bounce = i.classification.bounce.as_ref();
            let Some(t) = i.lookup.bounced.as_ref().or(ticket) else {
                reasons.push(
                    "the returned mail is not one of ours on a ticket: nothing to attach it to"
                        .into(),
                );
                return ignored(reasons, events);
            };
            if i.lookup.bounced.is_some() {
                reasons.push(format!(
                    "returns our mail <{}> on ticket {}",
                    bounce
                        .and_then(|b| b.original_message_id.as_deref())
                        .unwrap_or(""),
                    t.id
                ));
            }
            events.push(Event::Bounce {
                text: match bounce {
                    Some(b) => describe(b),
                    None => "delivery failure report without details".into(),
                },
            });
            let mut replies = Vec::new();
            let mut marks = Vec::new();
            if let Some(b) = bounce.filter(|b| b.permanent) {
                let sent_to = &i.lookup.bounced_recipients;
                let on_ticket = |a: &str| {
                    t.requester == a
                        || t.participants.iter().any(|p| p == a)
                        || sent_to.iter().any(|s| s == a)
                };
                // A report that names nobody returns the one address we wrote to.
                let failed: Vec<String> = if b.recipients.is_empty() && sent_to.len() == 1 {
                    reasons.push(format!(
                        "the report names no recipient; our mail went to {} alone",
                        sent_to[0]
                    ));
                    sent_to.clone()
                } else {
                    b.recipients.clone()
                };
                for r in &failed {
                    let already = i
                        .lookup
                        .bounce_contacts
                        .iter()
                        .any(|c| c.address == *r && c.undeliverable);
                    if !on_ticket(r) {
                        reasons.push(format!(
                            "{r} is not on ticket {}: not marked undeliverable",
                            t.id
                        ));
                    } else if already {
                        reasons.push(format!("{r} was already marked undeliverable"));
                    } else {
                        let why = format!(
                            "Status {}{}",
                            b.status,
                            b.diagnostic
                                .as_deref()
                                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                                .unwrap_or_default()
                        );
                        reasons.push(format!("{r} marked undeliverable ({})", b.status));
                        events.push(Event::Undeliverable {
                            address: r.clone(),
                            why: why.clone(),
                        });
                        marks.push(Undeliverable {
                            address: r.clone(),
                            reason: why,
                        });
                    }
                }
                if !marks.is_empty()
                    && let Some(mut n) = staff_notice(i, "staff_undeliverable", &reasons)
                {
                    if let Some(obj) = n.data.as_object_mut() {
                        obj.insert(
                            "bounce".into(),
                            json!({
                                "status": b.status,
                                "recipients": marks.iter().map(|u| u.address.clone()).collect::<Vec<_>>().join(", "),
                                "diagnostic": b.diagnostic.clone().unwrap_or_default(),
                            }),
                        );
                    }
                    replies.push(n);
                }
            } else if let Some(b) = bounce {
                reasons.push(format!(
                    "temporary or unclear status {:?}: recorded only",
                    b.status
                ));
            }
            let mut d = attach(t, reasons, events, replies);
            d.effects.undeliverable = marks;
            d
        }
        Class::List if ticket.is_none() && i.mailbox.accept_lists => {
            let sender = i.inbound.from.as_ref();
            let Some(sender) = sender else {
                reasons.push("list mail without a From address makes no ticket".into());
                return ignored(reasons, events);
            };
            reasons.push("this mailbox accepts list mail: new ticket, no reply".into());
            events.push(Event::Created {
                from: sender.address.clone(),
                mailbox: i.mailbox.name.to_string(),
                list: true,
            });
            let (write, view) =
                new_ticket(i, sender, ticket_subject(i), TicketStatus::Open, language);
            base(
                Outcome::Processed,
                write,
                view,
                language,
                vec![],
                reasons,
                events,
            )
        }
        Class::List if ticket.is_none() => {
            reasons.push("list mail makes no ticket in this mailbox".into());
            ignored(reasons, events)
        }
        _ => match ticket {
            Some(t) => {
                let text = format!(
                    "{} recorded; ticket state unchanged ({})",
                    class.as_str(),
                    i.classification.reasons.join("; ")
                );
                events.push(if class == Class::List {
                    Event::ListMail { text }
                } else {
                    Event::AutoReply { text }
                });
                reasons.push(format!(
                    "recorded on ticket {}; its state is unchanged",
                    t.id
                ));
                attach(t, reasons, events, vec![])
            }
            None => {
                reasons.push("no ticket to attach it to".into());
                ignored(reasons, events)
            }
        },
    }
}

/// The decision for a mail that cannot be handled: stored raw, moved to
/// quarantine, staff told why.
pub fn quarantine(i: &Input<'_>, mut reasons: Vec<String>) -> Decision {
    reasons.push("stored raw and quarantined".into());
    let notice = staff_notice(i, "staff_quarantine", &reasons);
    Decision {
        class: i.classification.class,
        outcome: Outcome::Quarantined,
        would_reply: false,
        ticket: TicketWrite::None,
        ticket_view: TicketView {
            action: "none",
            id: None,
        },
        subject: i.inbound.subject.clone(),
        language: i.pack.language,
        replies: notice.into_iter().collect(),
        reasons,
        events: Vec::new(),
        effects: SideEffects::default(),
        policy: None,
    }
}

/// A notice to staff about a mail that needs a person.
fn staff_notice(i: &Input<'_>, template: &'static str, reasons: &[String]) -> Option<ReplyPlan> {
    if i.identity.staff.is_empty() {
        return None;
    }
    Some(ReplyPlan {
        template,
        to: i.identity.staff.clone(),
        language: i.pack.language,
        from_address: i.mailbox.address.to_string(),
        auto_submitted: AutoSubmitted::Generated,
        in_reply_to: None,
        references: vec![],
        data: json!({
            "vendor": i.pack.vendor,
            "mailbox": {"name": i.mailbox.name, "role": i.mailbox.role.as_str(), "address": i.mailbox.address},
            "customer": addr_json(i.inbound.from.as_ref()),
            "message": {"subject": i.inbound.subject, "size": i.inbound.size, "message_id": i.inbound.message_id.clone().unwrap_or_default()},
            "reason": reasons.join("; "),
            "notes": reasons,
        }),
    })
}

/// Template data with every field the shipped templates use, for tests.
#[cfg(test)]
pub fn sample_template_data() -> serde_json::Value {
    json!({
        "vendor": "ACME",
        "customer": {"name": "Ann & Bob <ops>", "address": "ann@example.net"},
        "mailbox": {"name": "support", "role": "support", "address": "support@acme.test"},
        "received_at": "2026-03-02 10:00 PST",
        "message": {"subject": "Disk", "attachments": 0, "size": 10, "message_id": "x@y"},
        "ticket": {"id": 7, "tag": "[TKT#7]", "subject": "Disk"},
        "reason": "too large",
        "notes": ["QN-04: decide"],
        "failure": {"error": "550 no such user", "to": "ann@example.net", "subject": "Re: Disk"},
        "bounce": {"status": "5.1.1", "recipients": "ann@example.net", "diagnostic": "550 5.1.1 user unknown"},
        "extracted": {"ticket_ids": [], "serials": [], "invoices": [], "rma_codes": [], "tax_ids": []},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify_message;
    use crate::extract::extract;
    use crate::model::{BucketLevel, ContactInfo, Duplicate};
    use crate::parse::parse;

    fn identity() -> Identity {
        Identity {
            from_name: "Support".into(),
            message_id_domain: "tickets.acme.test".into(),
            own_addresses: vec!["support@acme.test".into()],
            staff: vec!["lead@acme.test".into()],
        }
    }

    fn ticket(id: i64, requester: &str) -> TicketInfo {
        TicketInfo {
            id: TicketId(id),
            subject: "Disk".into(),
            status: TicketStatus::Open,
            requester: requester.into(),
            language: "en".into(),
            participants: vec![requester.into()],
            created_at: chrono::DateTime::UNIX_EPOCH,
            facts: vec![],
            staff_notes: vec![],
        }
    }

    fn run(raw: &str, lookup: Lookup) -> Decision {
        run_with(raw, lookup, &Limits::default(), false, None)
    }

    fn run_with(
        raw: &str,
        lookup: Lookup,
        limits: &Limits,
        accept_lists: bool,
        now: Option<DateTime<Utc>>,
    ) -> Decision {
        let identity = identity();
        let pack = Pack::fallback();
        let m = parse(
            raw.as_bytes(),
            DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        let c = classify_message(raw.as_bytes(), &m, &identity);
        let e = extract(&m, &pack.patterns, "TKT");
        decide(&Input {
            inbound: &m,
            classification: &c,
            extracted: &e,
            lookup: &lookup,
            mailbox: MailboxView {
                name: "support",
                role: Role::Support,
                address: "support@acme.test",
                accept_lists,
            },
            identity: &identity,
            pack: &pack,
            ticket_prefix: "TKT",
            limits,
            now: now.unwrap_or(m.arrival),
        })
    }

    const NEW: &str = "From: Ann <ann@example.net>\r\nSubject: Disk failed\r\nMessage-ID: <a1@example.net>\r\n\r\nHelp\r\n";

    #[test]
    fn a_new_mail_opens_a_ticket_and_is_acknowledged() {
        let d = run(
            NEW,
            Lookup {
                next_ticket_id: TicketId(5),
                ..Default::default()
            },
        );
        assert_eq!(d.outcome, Outcome::Processed);
        assert!(matches!(d.ticket, TicketWrite::New { .. }));
        assert_eq!(d.ticket_view.id, Some(TicketId(5)));
        assert!(d.would_reply);
        assert_eq!(d.replies[0].template, "ack_new");
        assert_eq!(d.replies[0].to, vec!["ann@example.net"]);
        assert_eq!(d.replies[0].in_reply_to.as_deref(), Some("a1@example.net"));
    }

    #[test]
    fn a_tagged_reply_from_the_requester_updates_its_ticket() {
        let raw =
            "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk failed\r\n\r\nStill broken\r\n";
        let d = run(
            raw,
            Lookup {
                tagged: Some(ticket(3, "ann@example.net")),
                ..Default::default()
            },
        );
        assert!(matches!(
            d.ticket,
            TicketWrite::Update {
                id: TicketId(3),
                ..
            }
        ));
        assert_eq!(d.replies[0].template, "ack_followup");
    }

    #[test]
    fn a_stranger_who_knows_a_ticket_number_cannot_write_on_it() {
        let raw = "From: eve@evil.example\r\nSubject: Re: [TKT#3] close this\r\n\r\nclose\r\n";
        let d = run(
            raw,
            Lookup {
                tagged: Some(ticket(3, "ann@example.net")),
                next_ticket_id: TicketId(9),
                ..Default::default()
            },
        );
        assert!(
            matches!(d.ticket, TicketWrite::New { .. }),
            "{:?}",
            d.ticket
        );
        assert!(d.reasons.iter().any(|r| r.contains("never written")));
    }

    #[test]
    fn references_thread_a_reply_with_a_mangled_subject() {
        let raw = "From: bob@example.net\r\nSubject: what about it\r\nReferences: <ticketd.3.1@tickets.acme.test>\r\n\r\nx\r\n";
        let d = run(
            raw,
            Lookup {
                referenced: Some(ticket(3, "ann@example.net")),
                ..Default::default()
            },
        );
        assert!(matches!(
            d.ticket,
            TicketWrite::Update {
                id: TicketId(3),
                ..
            }
        ));
    }

    #[test]
    fn machines_get_no_reply_and_leave_the_ticket_alone() {
        let raw = "From: ann@example.net\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\nIn-Reply-To: <ticketd.3.1@tickets.acme.test>\r\n\r\naway\r\n";
        let d = run(
            raw,
            Lookup {
                referenced: Some(ticket(3, "ann@example.net")),
                ..Default::default()
            },
        );
        assert!(!d.would_reply);
        assert!(d.replies.is_empty());
        assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(3) }));
    }

    #[test]
    fn a_duplicate_changes_nothing() {
        let d = run(
            NEW,
            Lookup {
                duplicate: Some(Duplicate {
                    row: 1,
                    mailbox: "rma".into(),
                    ticket_id: Some(TicketId(4)),
                }),
                ..Default::default()
            },
        );
        assert_eq!(d.outcome, Outcome::Duplicate);
        assert!(d.replies.is_empty());
        assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(4) }));
    }

    #[test]
    fn an_undeliverable_contact_gets_no_reply() {
        let contact = ContactInfo {
            address: "ann@example.net".into(),
            language: None,
            undeliverable: true,
            undeliverable_reason: Some("Status 5.1.1".into()),
        };
        let d = run(
            NEW,
            Lookup {
                contact: Some(contact),
                ..Default::default()
            },
        );
        assert!(!d.would_reply);
        assert!(matches!(d.ticket, TicketWrite::New { .. }));
    }

    #[test]
    fn language_follows_the_contact_then_the_text_then_the_pack() {
        let ja =
            "From: taro@example.jp\r\nSubject: =?UTF-8?B?6Zqc5a6z44Gr44Gk44GE44Gm?=\r\n\r\nx\r\n";
        assert_eq!(run(ja, Lookup::default()).language, Language::Ja);
        let contact = ContactInfo {
            address: "ann@example.net".into(),
            language: Some("es".into()),
            undeliverable: false,
            undeliverable_reason: None,
        };
        assert_eq!(
            run(
                NEW,
                Lookup {
                    contact: Some(contact),
                    ..Default::default()
                }
            )
            .language,
            Language::Es
        );
        assert_eq!(run(NEW, Lookup::default()).language, Language::En);
    }

    #[test]
    fn unparseable_mail_is_quarantined_and_staff_told() {
        let d = run("", Lookup::default());
        assert_eq!(d.outcome, Outcome::Quarantined);
        assert_eq!(d.replies.len(), 1);
        assert_eq!(d.replies[0].to, vec!["lead@acme.test"]);
        assert!(!d.would_reply);
    }

    const BOUNCE: &str = "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: support@acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.net.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; ann@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <ticketd.3.1@tickets.acme.test>\r\nTo: ann@example.net\r\n--b--\r\n";

    #[test]
    fn a_permanent_bounce_marks_the_contact_and_tells_staff() {
        let d = run(
            BOUNCE,
            Lookup {
                bounced: Some(ticket(3, "ann@example.net")),
                ..Default::default()
            },
        );
        assert_eq!(d.class, Class::Bounce);
        assert!(!d.would_reply);
        assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(3) }));
        assert_eq!(d.effects.undeliverable.len(), 1);
        assert_eq!(d.effects.undeliverable[0].address, "ann@example.net");
        assert!(
            d.effects.undeliverable[0]
                .reason
                .starts_with("Status 5.1.1")
        );
        assert_eq!(d.replies.len(), 1);
        assert_eq!(d.replies[0].template, "staff_undeliverable");
        assert_eq!(d.replies[0].to, vec!["lead@acme.test"]);
        assert_eq!(d.replies[0].auto_submitted, AutoSubmitted::Generated);
        assert!(d.events.iter().any(|e| e.kind() == "bounce"));
        assert!(d.events.iter().any(|e| e.kind() == "undeliverable"));
    }

    #[test]
    fn a_bounce_marks_only_addresses_on_its_ticket_and_only_once() {
        let d = run(
            BOUNCE,
            Lookup {
                bounced: Some(ticket(3, "bob@example.net")),
                ..Default::default()
            },
        );
        assert!(d.effects.undeliverable.is_empty());
        assert!(d.replies.is_empty());
        let d = run(
            BOUNCE,
            Lookup {
                bounced: Some(ticket(3, "ann@example.net")),
                bounce_contacts: vec![ContactInfo {
                    address: "ann@example.net".into(),
                    language: None,
                    undeliverable: true,
                    undeliverable_reason: None,
                }],
                ..Default::default()
            },
        );
        assert!(d.effects.undeliverable.is_empty());
        assert!(d.replies.is_empty(), "staff are told once");
    }

    #[test]
    fn a_report_naming_nobody_marks_the_one_address_our_mail_went_to() {
        let raw = "From: MAILER-DAEMON@mx.example.net\r\nSubject: Returned mail: User unknown\r\nIn-Reply-To: <ticketd.3.1@tickets.acme.test>\r\n\r\nThe user does not exist.\r\n";
        let d = run(
            raw,
            Lookup {
                bounced: None,
                referenced: Some(ticket(3, "ann@example.net")),
                bounced_recipients: vec!["ann@example.net".into()],
                ..Default::default()
            },
        );
        assert_eq!(d.class, Class::Bounce);
        assert_eq!(d.effects.undeliverable.len(), 1, "{:?}", d.reasons);
        assert_eq!(d.effects.undeliverable[0].address, "ann@example.net");
    }

    #[test]
    fn a_temporary_bounce_is_recorded_only() {
        let raw = BOUNCE
            .replace("Action: failed", "Action: delayed")
            .replace("Status: 5.1.1", "Status: 4.4.1");
        let d = run(
            &raw,
            Lookup {
                bounced: Some(ticket(3, "ann@example.net")),
                ..Default::default()
            },
        );
        assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(3) }));
        assert!(d.effects.undeliverable.is_empty());
        assert!(d.replies.is_empty());
        assert!(
            d.events
                .iter()
                .any(|e| e.kind() == "bounce" && e.detail().contains("4.4.1"))
        );
    }

    #[test]
    fn a_bounce_of_mail_that_is_not_ours_is_ignored() {
        let d = run(BOUNCE, Lookup::default());
        assert_eq!(d.outcome, Outcome::Ignored);
        assert!(d.effects.undeliverable.is_empty());
        assert!(d.replies.is_empty());
    }

    #[test]
    fn list_mail_makes_a_ticket_only_where_lists_are_accepted() {
        let raw =
            "From: news@example.net\r\nList-Id: <news.example.net>\r\nSubject: Weekly\r\n\r\nx\r\n";
        let d = run_with(raw, Lookup::default(), &Limits::default(), false, None);
        assert_eq!(d.outcome, Outcome::Ignored);
        let d = run_with(
            raw,
            Lookup {
                next_ticket_id: TicketId(4),
                ..Default::default()
            },
            &Limits::default(),
            true,
            None,
        );
        assert!(matches!(d.ticket, TicketWrite::New { .. }));
        assert!(d.replies.is_empty(), "list mail is never answered");
    }

    #[test]
    fn replies_stop_when_the_recipient_bucket_is_empty() {
        let limits = Limits::default();
        let at = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let empty = |key: &str, tokens: f64| BucketLevel {
            key: key.into(),
            tokens,
            updated_at: at,
        };
        // A full bucket: the reply goes out and the level drops by one.
        let d = run(NEW, Lookup::default());
        assert!(d.would_reply);
        let rcpt = d
            .effects
            .buckets
            .iter()
            .find(|(k, _)| *k == BucketKey::Recipient("ann@example.net".into()))
            .unwrap();
        assert_eq!(rcpt.1, f64::from(limits.replies_per_recipient.burst) - 1.0);
        // An empty bucket: no reply, an event says why.
        let lookup = Lookup {
            buckets: vec![empty("rcpt:ann@example.net", 0.2)],
            ..Default::default()
        };
        let d = run_with(NEW, lookup.clone(), &limits, false, Some(at));
        assert!(!d.would_reply);
        assert!(d.effects.buckets.is_empty());
        assert!(d.events.iter().any(|e| e.kind() == "reply_suppressed"));
        assert!(
            matches!(d.ticket, TicketWrite::New { .. }),
            "still a ticket"
        );
        // Half an hour later at two an hour, a token has come back.
        let later = at + chrono::Duration::minutes(30);
        let d = run_with(NEW, lookup, &limits, false, Some(later));
        assert!(d.would_reply);
    }

    #[test]
    fn replies_stop_when_the_ticket_bucket_is_empty() {
        let raw =
            "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk failed\r\n\r\nStill broken\r\n";
        let d = run(
            raw,
            Lookup {
                tagged: Some(ticket(3, "ann@example.net")),
                buckets: vec![BucketLevel {
                    key: "ticket:3".into(),
                    tokens: 0.0,
                    updated_at: DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
                        .unwrap()
                        .with_timezone(&Utc),
                }],
                ..Default::default()
            },
        );
        assert!(!d.would_reply);
        assert!(d.reasons.iter().any(|r| r.contains("ticket 3")));
        assert!(matches!(
            d.ticket,
            TicketWrite::Update {
                id: TicketId(3),
                ..
            }
        ));
    }
}
