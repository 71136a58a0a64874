//! What the decision's parts share: its input (`Input`, `MailboxView`), the mail it plans (`ReplyPlan`), its answer (`Decision`), and small helpers every part uses. Imports no other file of `decide`.

use crate::classify::{Class, Classification};
use crate::compose::AutoSubmitted;
use crate::extract::Extracted;
use crate::model::DkimVerdict;
use crate::model::{
    Event, Language, Lookup, Outcome, Proof, Role, Sender, SideEffects, TicketId, TicketInfo,
    TicketStatus, TicketWrite,
};
use crate::model::{Identity, Limits, StaffDirectory};
use crate::pack::Pack;
use crate::parse::{Addr, Inbound};
use crate::policy::Evaluation;
use crate::thread;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

/// What the mail's headers prove, checked before the decision (DKIM needs
/// DNS, which never runs under the store lock). Only a staff address's mail
/// is checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evidence {
    /// The DKIM check, when one was made.
    pub dkim: Option<DkimVerdict>,
    /// A trusted Authentication-Results header's pass for the From domain.
    pub auth_results: Option<String>,
    /// Why the header section could be read two ways (`header_section`),
    /// or its From cannot name one person: then nothing in the mail proves
    /// anything, a reply token included.
    pub ambiguous: Option<String>,
    /// Proofs the mail carries that did not count, and why (a trusted
    /// Authentication-Results pass whose signature does not cover what
    /// ticketd reads, a signed mail addressed to someone else).
    pub refused: Vec<String>,
}

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
    pub mailboxes: &'a crate::model::Mailboxes,
    /// What was read from the mail's words ahead of the store's lock.
    pub prepared: Option<&'a super::words::Prepared>,
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

    /// A mail to a ticket's customer `to`, from `from_address`, in their
    /// thread: in reply to `thread`, the customer's last mail on it.
    pub(crate) fn to_customer(
        template: &'static str,
        to: &str,
        language: Language,
        from_address: &str,
        thread: Option<&str>,
        auto_submitted: AutoSubmitted,
        data: serde_json::Value,
    ) -> ReplyPlan {
        ReplyPlan {
            template,
            to: vec![to.to_string()],
            language,
            from_address: from_address.to_string(),
            reply_to: None,
            auto_submitted,
            in_reply_to: thread.map(String::from),
            references: thread.map(String::from).into_iter().collect(),
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
pub(crate) fn local(zone: chrono_tz::Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// The decision for mail recorded on ticket `t` without changing its state.
pub(crate) fn attached(
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

pub(crate) fn addr_json(a: Option<&Addr>) -> serde_json::Value {
    match a {
        Some(a) => json!({"name": a.name.clone().unwrap_or_default(), "address": a.address}),
        None => json!({"name": "", "address": ""}),
    }
}

pub(crate) type Base<'f> = dyn Fn(
        Outcome,
        TicketWrite,
        TicketView,
        Language,
        Vec<ReplyPlan>,
        Vec<String>,
        Vec<Event>,
    ) -> Decision
    + 'f;

/// A notice to staff about a mail that needs a person.
pub(crate) fn staff_notice(
    i: &Input<'_>,
    template: &'static str,
    reasons: &[String],
) -> Option<ReplyPlan> {
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

/// A ticket's name: the mail's subject without reply prefixes or our tag.
pub(crate) fn ticket_subject(i: &Input<'_>) -> String {
    let s = thread::clean_subject(&i.inbound.subject, i.ticket_prefix);
    if s.is_empty() {
        "(no subject)".to_string()
    } else {
        s
    }
}

/// The write and the view of a new ticket opened by `sender`.
pub(crate) fn new_ticket(
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
