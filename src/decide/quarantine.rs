//! A mail that cannot be handled: stored raw, quarantined, staff told why (a few notices per mailbox, then the count of those held back).

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
