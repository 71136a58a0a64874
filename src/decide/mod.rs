//! The heart: a pure function from a mail and what the database knows to what should happen. No I/O, no clock.
//!
//! [`decide`] sorts the mail: a duplicate changes nothing, a machine's mail is
//! recorded and never answered (`machine`), a person's mail runs the vendor's
//! rules and is acknowledged within the reply limits (`person`, `limits`).

mod action;
mod limits;
mod machine;
mod person;
mod rma;
mod sla;
mod staff;
#[cfg(test)]
mod tests;

/// What the decision's unit tests share: a shipped pack, an instant.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn pack(name: &str) -> Pack {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("config/vendors/{name}.toml"));
        Pack::load(&path).unwrap()
    }

    pub fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// An open ticket of `requester`, opened at `created` (RFC 3339), with
    /// nothing else on it yet.
    pub fn ticket(id: i64, requester: &str, created: &str) -> TicketInfo {
        TicketInfo {
            id: TicketId(id),
            subject: "Disk".into(),
            status: TicketStatus::Open,
            requester: requester.into(),
            language: "en".into(),
            mailbox: "support".into(),
            participants: vec![requester.into()],
            created_at: at(created),
            facts: vec![],
            staff_notes: vec![],
            updated_at: at(created),
            severity: None,
            last_answer: None,
            owner: None,
            timers: vec![],
            rmas: vec![],
        }
    }

    /// Our identity, with `staff` as the staff list.
    pub fn identity(staff: &[&str]) -> Identity {
        Identity {
            from_name: "Support".into(),
            message_id_domain: "t.test".into(),
            own_addresses: vec!["support@vendor.test".into()],
            staff: staff.iter().map(|s| s.to_string()).collect(),
        }
    }
}
mod timer;
mod waiting;

pub use action::{ActionInput, assign, note, set_severity, set_status, staff_reply};
pub use limits::{bucket_level, extra_bucket_keys};
pub use person::request_text;
pub use rma::{RmaOutcome, rma_action};
pub use staff::{Evidence, authority, staff_target};
pub use timer::{TimerDecision, TimerInput, on_timer};

use timer::escalation_key;

use limits::{consume, rate_limited};
use machine::machine;
use person::{new_ticket, person, ticket_subject};

use crate::classify::{Class, Classification, describe};
use crate::compose::{AutoSubmitted, deliverable};
use crate::config::{Identity, Limits, Rate, StaffDirectory};
use crate::extract::Extracted;
use crate::model::{
    BucketKey, Event, Language, Lookup, Outcome, PolicyRecord, Proof, Role, Sender, SideEffects,
    TicketId, TicketInfo, TicketStatus, TicketWrite, TimerKind, TimerPlan, Undeliverable,
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
    /// Who the pack's names are, and the SLA warning lead (`[staff]`).
    pub staff: &'a StaffDirectory,
    pub ticket_prefix: &'a str,
    /// The reply rate limits (`[limits]`).
    pub limits: &'a Limits,
    /// What the mail's headers prove of a staff sender (DKIM, Authentication-Results).
    pub evidence: &'a Evidence,
    /// The configured mailboxes (the address a ticket's mail goes from).
    pub mailboxes: &'a crate::config::Mailboxes,
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
    /// Where replies to it go (notifications: the ticket's mailbox).
    #[serde(skip)]
    pub reply_to: Option<String>,
    #[serde(skip)]
    pub auto_submitted: AutoSubmitted,
    /// One mail per recipient, each with a Message-ID carrying that
    /// address's reply token (when a key is configured), so a reply proves
    /// its sender (`token`).
    #[serde(skip)]
    pub staff_tokens: bool,
    /// The attachments of the mail being decided go with it (a relayed
    /// staff answer).
    #[serde(skip)]
    pub relay_attachments: bool,
    #[serde(skip)]
    pub in_reply_to: Option<String>,
    #[serde(skip)]
    pub references: Vec<String>,
    /// Template data; the renderer adds `ticket`.
    #[serde(skip)]
    pub data: serde_json::Value,
}

impl ReplyPlan {
    /// A notice nobody asked for (`Auto-Submitted: auto-generated`), outside any thread.
    pub(crate) fn notice(
        template: &'static str,
        to: Vec<String>,
        language: Language,
        from_address: &str,
        data: serde_json::Value,
    ) -> ReplyPlan {
        ReplyPlan {
            template,
            to,
            language,
            from_address: from_address.to_string(),
            reply_to: None,
            auto_submitted: AutoSubmitted::Generated,
            in_reply_to: None,
            references: vec![],
            staff_tokens: false,
            relay_attachments: false,
            data,
        }
    }

    /// An answer to the mail being decided (`Auto-Submitted: auto-replied`),
    /// to `to`, from the mailbox it came to, in its thread.
    pub(crate) fn answer(
        i: &Input<'_>,
        template: &'static str,
        to: &str,
        language: Language,
        data: serde_json::Value,
    ) -> ReplyPlan {
        let m = i.inbound;
        let mut references = m.references.clone();
        if let Some(id) = &m.message_id {
            references.retain(|r| r != id);
            references.push(id.clone());
        }
        references.truncate(20);
        ReplyPlan {
            template,
            to: vec![to.to_string()],
            language,
            from_address: i.mailbox.address.to_string(),
            reply_to: None,
            auto_submitted: AutoSubmitted::Replied,
            in_reply_to: m.message_id.clone(),
            references,
            staff_tokens: false,
            relay_attachments: false,
            data,
        }
    }
}

/// An instant as the pack's people read it: `2026-03-02 09:00 PST`.
pub(super) fn local(zone: chrono_tz::Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// The decision for mail recorded on ticket `t` without changing its state.
pub(super) fn attached(
    base: &Base<'_>,
    t: &TicketInfo,
    language: Language,
    replies: Vec<ReplyPlan>,
    reasons: Vec<String>,
    events: Vec<Event>,
) -> Decision {
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
    /// Why the replies are in `language` (`explain` shows it).
    pub language_reason: String,
    pub replies: Vec<ReplyPlan>,
    pub events: Vec<Event>,
    /// Contacts to mark undeliverable and reply buckets to update.
    pub effects: SideEffects,
    /// What the vendor's rules say, for mail from a person.
    pub policy: Option<Evaluation>,
    /// Who wrote the mail.
    pub sender: Sender,
    /// What proved a staff sender's mail theirs.
    pub proof: Option<Proof>,
    /// The staff commands it runs, as written back (`#close`).
    pub commands: Vec<String>,
}

fn addr_json(a: Option<&Addr>) -> serde_json::Value {
    match a {
        Some(a) => json!({"name": a.name.clone().unwrap_or_default(), "address": a.address}),
        None => json!({"name": "", "address": ""}),
    }
}

/// The ticket this mail belongs to, and why; or why a tag or a reference
/// was not trusted. A subject tag, a ticket number, an In-Reply-To or
/// References pointing at a ticket's mail: each joins the ticket only when
/// the sender has written on it (its requester or a participant), so a
/// stranger who learns a ticket number or a Message-ID cannot write on it,
/// nor get its answers.
fn thread_of<'a>(i: &Input<'a>, reasons: &mut Vec<String>) -> Option<&'a TicketInfo> {
    let sender = i.inbound.sender_address().map(str::to_ascii_lowercase);
    let on = |t: &TicketInfo| {
        sender
            .as_deref()
            .is_some_and(|s| s == t.requester || t.participants.iter().any(|p| p == s))
    };
    if let Some(t) = &i.lookup.tagged {
        if on(t) {
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
        if on(t) {
            reasons.push(format!("In-Reply-To/References point at ticket {}", t.id));
            return Some(t);
        }
        reasons.push(format!(
            "In-Reply-To/References point at ticket {} but the sender has never written on it",
            t.id
        ));
        return None;
    }
    // Mail on a ticket referenced this one before it came (it waited in
    // another mailbox), or referenced the mail this one answers, which has
    // not come either: it joins that ticket, but only from someone on the
    // ticket or the sender of that mail, so a forged References (or a Cc)
    // cannot pull a stranger's mail in.
    if let (Some((t, people)), Some(s)) = (&i.lookup.awaited_by, sender.as_deref()) {
        if on(t) || people.iter().any(|p| p == s) {
            reasons.push(format!(
                "mail stored earlier on ticket {} refers to this one or to the mail it answers",
                t.id
            ));
            return Some(t);
        }
        reasons.push(format!(
            "mail on ticket {} refers to this one or to the mail it answers, but the sender was not its sender",
            t.id
        ));
    }
    None
}

/// The language of the replies, and why: the pack's own when it answers in
/// no other, else the ticket's, else the contact's known one, else the one
/// the mail is written in (when templates exist for it), else the pack's.
fn language_for(i: &Input<'_>, ticket: Option<&TicketInfo>) -> (Language, String) {
    if let Some(rules) = i.pack.policy.language_only() {
        return (
            i.pack.language,
            format!(
                "the pack answers in {} only ({})",
                i.pack.language.as_str(),
                rules.join(", ")
            ),
        );
    }
    if let Some(l) = ticket.and_then(|t| Language::parse(&t.language)) {
        return (l, "the ticket's language".into());
    }
    if let Some(l) = i
        .lookup
        .contact
        .as_ref()
        .and_then(|c| c.language.as_deref())
        .and_then(Language::parse)
    {
        return (l, "the contact's language".into());
    }
    let text = person::request_text(i.inbound);
    if let Some(l) = written_in(&text) {
        return (l, format!("the mail is written in {}", l.as_str()));
    }
    (i.pack.language, "the pack's language".into())
}

/// The language a text is written in, when it is one we have templates for
/// and the detector is sure of it. Kana decide Japanese at once (a short
/// Japanese mail is often too short for a statistical guess).
pub(crate) fn written_in(text: &str) -> Option<Language> {
    if looks_japanese(text) {
        return Some(Language::Ja);
    }
    let info = whatlang::detect(text)?;
    if !info.is_reliable() {
        return None;
    }
    match info.lang() {
        whatlang::Lang::Eng => Some(Language::En),
        whatlang::Lang::Spa => Some(Language::Es),
        whatlang::Lang::Jpn => Some(Language::Ja),
        _ => None,
    }
}

/// Decides what `i` should do. Pure: same input, same decision.
pub fn decide(i: &Input<'_>) -> Decision {
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
                language_reason: String::new(),
                replies,
                events,
                effects: SideEffects::default(),
                policy: None,
                sender: if class == Class::Human {
                    Sender::Customer
                } else {
                    Sender::Machine
                },
                proof: None,
                commands: vec![],
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

    // A staff address's mail is staff mail, proven or not: never a customer's.
    if class == Class::Human
        && let Some(member) = i
            .inbound
            .sender_address()
            .and_then(|s| i.staff.member_by_address(s))
    {
        return staff::from_staff(i, member, reasons, events, &base);
    }

    let ticket = thread_of(i, &mut reasons);
    let (language, language_reason) = language_for(i, ticket);

    let mut d = if class != Class::Human {
        machine(i, ticket, language, reasons, events, &base)
    } else {
        person(i, ticket, language, reasons, events, &base)
    };
    // Someone naming a ticket they have never written on is no customer of it.
    if class == Class::Human
        && let Some(tagged) = &i.lookup.tagged
        && ticket.is_none_or(|t| t.id != tagged.id)
    {
        d.sender = Sender::Stranger;
    }
    if d.language == language {
        d.language_reason = language_reason;
    }
    d
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

/// The decision for a mail that cannot be handled: stored raw, moved to
/// quarantine, staff told why.
pub fn quarantine(i: &Input<'_>, mut reasons: Vec<String>) -> Decision {
    reasons.push("stored raw and quarantined".into());
    // A few notices per mailbox, then the count of those held back in the
    // next one: a flood of broken mail must not become a flood of notices.
    let mut effects = SideEffects::default();
    let notice =
        match limits::notice_allowed(i, &limits::quarantine_scope(i.mailbox.name), &mut effects) {
            Ok(held) => staff_notice(i, "staff_quarantine", &reasons).map(|mut n| {
                if let Some(obj) = n.data.as_object_mut() {
                    obj.insert("held".into(), json!(held));
                }
                n
            }),
            Err(held) => {
                reasons.push(format!(
                    "staff notice held back ({held} since the last one sent; the next says so)"
                ));
                None
            }
        };
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
        language_reason: "the pack's language".into(),
        replies: notice.into_iter().collect(),
        reasons,
        events: Vec::new(),
        effects,
        policy: None,
        sender: if i.classification.class == Class::Human {
            Sender::Customer
        } else {
            Sender::Machine
        },
        proof: None,
        commands: vec![],
    }
}

/// A notice to staff about a mail that needs a person.
fn staff_notice(i: &Input<'_>, template: &'static str, reasons: &[String]) -> Option<ReplyPlan> {
    if i.identity.staff.is_empty() {
        return None;
    }
    Some(ReplyPlan::notice(
        template,
        i.identity.staff.clone(),
        i.pack.language,
        i.mailbox.address,
        json!({
            "vendor": i.pack.vendor,
            "mailbox": {"name": i.mailbox.name, "role": i.mailbox.role.as_str(), "address": i.mailbox.address},
            "customer": addr_json(i.inbound.from.as_ref()),
            "message": {"subject": i.inbound.subject, "size": i.inbound.size, "message_id": i.inbound.message_id.clone().unwrap_or_default()},
            "reason": reasons.join("; "),
            "notes": reasons,
        }),
    ))
}

/// Template data with every field the shipped templates use, for tests.
#[cfg(test)]
pub fn sample_template_data() -> serde_json::Value {
    let mut v = json!({
        "vendor": "ACME",
        "customer": {"name": "Ann & Bob <ops>", "address": "ann@example.net"},
        "mailbox": {"name": "support", "role": "support", "address": "support@acme.test"},
        "received_at": "2026-03-02 10:00 PST",
        "message": {"subject": "Disk", "attachments": 0, "size": 10, "message_id": "x@y"},
        "ticket": {"id": 7, "tag": "[TKT#7]", "subject": "Disk"},
        "reason": "too large",
        "notes": ["QN-04: decide"],
        "failure": {"error": "550 no such user", "to": "ann@example.net", "subject": "Re: Disk"},
        "bounce": {"status": "5.1.1", "recipients": "ann@example.net", "diagnostic": "550 5.1.1 user unknown", "staff": false},
        "held": 2,
        "extracted": {"ticket_ids": [], "serials": [], "invoices": [], "rma_codes": [], "tax_ids": []},
        "ticket_state": "open",
        "escalation": {"to": "Director", "rule": "NX-03", "due": "2026-03-02 18:00 CST", "opened": "2026-03-02 10:00 CST",
                       "open_for": "8 hours", "late": true, "sent": "2026-03-02 19:00 CST", "unmapped": false},
        "sla": {"breach": true, "rule": "IX-03", "at": "2026-03-03 10:00 PST", "opened": "2026-03-02 10:00 PST",
                "late": false, "sent": "2026-03-03 10:00 PST"},
        "rma": [{"code": "7", "part": "DRIVE-1", "state": "issued", "state_name": "issued", "expires": "2026-04-01 10:00 PDT"}],
        "deadlines": {},
        "return_to": null,
        "due": "2026-03-04 10:00 PST",
        "rule": "QN-05",
        "asked_on": "2026-03-02",
        "missing": ["the serial number"],
        "body": "Hello Ann,\n\nplease send the log.",
    });
    // The staff templates' fields (a second literal: one is too deep for json!).
    let staff = json!({
        "new": true,
        "owner": "alice",
        "queue": ["alice"],
        "severity": 2,
        "tier": "gold",
        "contract": {"serial": "IX-1", "company": "Acme", "plans": ["onsite"], "matched_by": "serial"},
        "warranty": {"status": "covered", "until": "2027-01-17"},
        "sla_due": "2026-03-02 17:00 PST",
        "route": null,
        "attachments": ["log.txt"],
        "text": "The pool is degraded.",
        "commands": "#close",
        "member": "Alice",
        "done": ["state: open -> closed"],
        "relayed": false,
        "sent": false,
        "sent": false,
        "error": "line 1: `#clsoe`: is not a command",
        "syntax": "#close",
        "from": "alice@acme.test",
        "why": "no DKIM signature",
        "opened": "2026-03-02",
        "last_answer": null,
    });
    if let (Some(v), serde_json::Value::Object(m)) = (v.as_object_mut(), staff) {
        v.extend(m);
    }
    v
}
