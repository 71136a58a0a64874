//! A mail that cannot be handled: stored raw, quarantined, staff told why (a few notices per mailbox, then the count of those held back); a mail the receiving server marked as spam: stored, set aside, never answered.

use super::limits;
use super::plan::{Decision, Input, TicketView, staff_notice};
use crate::classify::Class;
use crate::model::{Outcome, Sender, SideEffects, TicketWrite};
use serde_json::json;

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

/// The decision for a person's mail the receiving server marked as spam
/// (`verdict`): stored and set aside with the quarantined mail, no ticket,
/// no reply (an acknowledgement to a spammer's forged From is backscatter)
/// and no staff notice (a flood of spam must not become a flood of
/// notices). Staff see it listed with the quarantined mail; a release
/// handles it as a person's mail.
pub fn spam(i: &Input<'_>, verdict: &str, mut reasons: Vec<String>) -> Decision {
    reasons.push(format!(
        "the receiving server marked it as spam ({verdict}): stored and set aside, not answered; `ticketd quarantine release ROW` handles it as a person's mail"
    ));
    Decision {
        class: i.classification.class,
        outcome: Outcome::Spam,
        would_reply: false,
        ticket: TicketWrite::None,
        ticket_view: TicketView {
            action: "none",
            id: None,
        },
        subject: i.inbound.subject.clone(),
        language: i.pack.language,
        language_reason: "the pack's language".into(),
        replies: Vec::new(),
        reasons,
        events: Vec::new(),
        effects: SideEffects::default(),
        policy: None,
        sender: Sender::Machine,
        proof: None,
        commands: vec![],
    }
}
