//! The heart: a pure function from a mail and what the database knows to what should happen. No I/O, no clock.

use crate::classify::{Class, Classification};
use crate::compose::{AutoSubmitted, deliverable};
use crate::config::{Identity, Role};
use crate::extract::Extracted;
use crate::pack::{Language, Pack};
use crate::parse::{Addr, Inbound, looks_japanese};
use crate::policy::{Evaluation, Request};
use crate::store::{Lookup, TicketInfo, TicketWrite};
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
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Stored and acted on.
    Processed,
    /// The same mail was already stored (another mailbox, a rescan): nothing changes.
    Duplicate,
    /// Stored, no ticket (our own mail come back, unsolicited list mail).
    Ignored,
    /// Stored raw, moved aside, staff told.
    Quarantined,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Quarantined => "quarantined",
        }
    }
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
    pub id: Option<i64>,
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
    pub events: Vec<(&'static str, String)>,
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
    let mut events: Vec<(&'static str, String)> = Vec::new();
    let subject = {
        let s = thread::clean_subject(&m.subject, i.ticket_prefix);
        if s.is_empty() {
            "(no subject)".to_string()
        } else {
            s
        }
    };
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
                events.push((
                    "duplicate",
                    format!("also received in mailbox {}", i.mailbox.name),
                ));
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
    if class != Class::Human {
        // Machines never get an automatic reply. What they say is kept on the
        // ticket they belong to, without changing its state.
        return match (class, ticket) {
            (Class::OwnLoop, _) => ignored(reasons, events),
            (Class::List, None) if !i.mailbox.accept_lists => {
                reasons.push("list mail makes no ticket in this mailbox".into());
                ignored(reasons, events)
            }
            (_, Some(t)) => {
                events.push((
                    match class {
                        Class::Bounce => "bounce",
                        Class::List => "list_mail",
                        _ => "auto_reply",
                    },
                    format!("{} recorded; ticket state unchanged", class.as_str()),
                ));
                base(
                    Outcome::Processed,
                    TicketWrite::Attach { id: t.id },
                    TicketView {
                        action: "update",
                        id: Some(t.id),
                    },
                    language,
                    vec![],
                    reasons,
                    events,
                )
            }
            (_, None) => {
                reasons.push("no ticket to attach it to".into());
                ignored(reasons, events)
            }
        };
    }

    let Some(sender) = m.from.as_ref() else {
        reasons.push("no From address: nobody to answer".into());
        return quarantine(i, reasons);
    };

    let text = format!("{}\n{}", m.subject, m.text);
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
        "waiting_customer"
    } else {
        "open"
    };
    policy_events(&policy, &mut events);

    let (write, view, template) = match ticket {
        Some(t) => {
            events.push(("message", format!("follow-up from {}", sender.address)));
            if t.status != "open" {
                events.push(("reopened", format!("was {}", t.status)));
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
            events.push((
                "created",
                format!(
                    "new ticket from {} via mailbox {}",
                    sender.address, i.mailbox.name
                ),
            ));
            (
                TicketWrite::New {
                    subject: subject.clone(),
                    status,
                    language: language.as_str().to_string(),
                    requester: sender.address.to_ascii_lowercase(),
                    requester_name: sender.name.clone(),
                },
                TicketView {
                    action: "new",
                    id: Some(i.lookup.next_ticket_id),
                },
                "ack_new",
            )
        }
    };

    let mut replies = Vec::new();
    let undeliverable = i.lookup.contact.as_ref().is_some_and(|c| c.undeliverable);
    if undeliverable {
        reasons.push(format!(
            "{} is marked undeliverable: no reply",
            sender.address
        ));
    } else if !deliverable(&sender.address) {
        reasons.push(format!(
            "{} is not an address we can send to",
            sender.address
        ));
    } else {
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
                "policy": &policy,
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
    d.policy = Some(policy);
    d
}

/// What the rules decided, kept on the ticket's history.
fn policy_events(p: &Evaluation, events: &mut Vec<(&'static str, String)>) {
    events.push((
        "policy",
        json!({
            "pack": p.pack,
            "rules": p.rules,
            "tier": p.tier,
            "severity": p.severity,
            "business_open": p.business_open,
            "facts": p.facts,
            "missing": p.missing,
            "clock_starts_at": p.clock_starts_at,
            "first_response_due": p.first_response_due,
            "warranty": p.warranty,
            "contract": p.contract,
        })
        .to_string(),
    ));
    for e in &p.escalations {
        events.push((
            "escalation_due",
            json!({"at": e.at, "to": e.to, "rule": e.rule}).to_string(),
        ));
    }
    for (id, d) in &p.deadlines {
        events.push((
            "deadline",
            json!({"id": id, "at": d.at, "remind_at": d.remind_at, "rule": d.rule}).to_string(),
        ));
    }
    if let Some(q) = &p.quota {
        events.push(("quota", serde_json::to_string(q).unwrap_or_default()));
    }
    if p.waiting_on_customer {
        events.push((
            "waiting_on_customer",
            format!("asked for: {}", p.missing.join(", ")),
        ));
    }
    for n in &p.staff {
        events.push(("staff", format!("{}: {}", n.rule, n.text)));
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
        "failure": {"error": "550 no such user", "to": "ann@example.net", "subject": "Re: Disk"},
        "extracted": {"ticket_ids": [], "serials": [], "invoices": [], "rma_codes": [], "tax_ids": []},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;
    use crate::extract::extract;
    use crate::parse::parse;
    use crate::store::{ContactInfo, Duplicate};

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
            id,
            subject: "Disk".into(),
            status: "open".into(),
            requester: requester.into(),
            language: "en".into(),
            participants: vec![requester.into()],
            created_at: chrono::DateTime::UNIX_EPOCH,
            facts: vec![],
            staff_notes: vec![],
        }
    }

    fn run(raw: &str, lookup: Lookup) -> Decision {
        let identity = identity();
        let pack = Pack::fallback();
        let m = parse(
            raw.as_bytes(),
            DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        let c = classify(&m, &identity);
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
                accept_lists: false,
            },
            identity: &identity,
            pack: &pack,
            ticket_prefix: "TKT",
            now: m.arrival,
        })
    }

    const NEW: &str = "From: Ann <ann@example.net>\r\nSubject: Disk failed\r\nMessage-ID: <a1@example.net>\r\n\r\nHelp\r\n";

    #[test]
    fn a_new_mail_opens_a_ticket_and_is_acknowledged() {
        let d = run(
            NEW,
            Lookup {
                next_ticket_id: 5,
                ..Default::default()
            },
        );
        assert_eq!(d.outcome, Outcome::Processed);
        assert!(matches!(d.ticket, TicketWrite::New { .. }));
        assert_eq!(d.ticket_view.id, Some(5));
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
        assert!(matches!(d.ticket, TicketWrite::Update { id: 3, .. }));
        assert_eq!(d.replies[0].template, "ack_followup");
    }

    #[test]
    fn a_stranger_who_knows_a_ticket_number_cannot_write_on_it() {
        let raw = "From: eve@evil.example\r\nSubject: Re: [TKT#3] close this\r\n\r\nclose\r\n";
        let d = run(
            raw,
            Lookup {
                tagged: Some(ticket(3, "ann@example.net")),
                next_ticket_id: 9,
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
        assert!(matches!(d.ticket, TicketWrite::Update { id: 3, .. }));
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
        assert!(matches!(d.ticket, TicketWrite::Attach { id: 3 }));
    }

    #[test]
    fn a_duplicate_changes_nothing() {
        let d = run(
            NEW,
            Lookup {
                duplicate: Some(Duplicate {
                    row: 1,
                    mailbox: "rma".into(),
                    ticket_id: Some(4),
                }),
                ..Default::default()
            },
        );
        assert_eq!(d.outcome, Outcome::Duplicate);
        assert!(d.replies.is_empty());
        assert!(matches!(d.ticket, TicketWrite::Attach { id: 4 }));
    }

    #[test]
    fn an_undeliverable_contact_gets_no_reply() {
        let contact = ContactInfo {
            address: "ann@example.net".into(),
            language: None,
            undeliverable: true,
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
}
