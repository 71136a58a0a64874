//! Mail a machine wrote (auto-replies, bounces, list mail): recorded on its ticket, never answered.

use super::plan::{
    Base, Decision, Input, TicketView, attached, new_ticket, staff_notice, ticket_subject,
};
use crate::classify::{Class, describe};
use crate::model::{
    Event, Language, Outcome, TicketInfo, TicketStatus, TicketWrite, Undeliverable,
};
use serde_json::json;

/// Mail a machine wrote: never answered. What it says is kept on the ticket
/// it belongs to without changing the ticket's state; a permanent bounce
/// marks the failed recipients of that ticket undeliverable and tells staff.
pub(super) fn machine(
    i: &Input<'_>,
    ticket: Option<&TicketInfo>,
    language: Language,
    mut reasons: Vec<String>,
    mut events: Vec<Event>,
    base: &Base<'_>,
) -> Decision {
    let class = i.classification.class;
    if class == Class::OwnLoop {
        return ignored(base, language, reasons, events);
    }
    let attach = |t: &TicketInfo, reasons, events, replies| {
        attached(base, t, language, replies, reasons, events)
    };
    match class {
        Class::Bounce => bounce(i, ticket, language, reasons, events, base),
        Class::List if ticket.is_none() && i.mailbox.accept_lists => {
            let sender = i.inbound.from.as_ref();
            let Some(sender) = sender else {
                reasons.push("list mail without a From address makes no ticket".into());
                return ignored(base, language, reasons, events);
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
            ignored(base, language, reasons, events)
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
                ignored(base, language, reasons, events)
            }
        },
    }
}

/// A delivery report: recorded on the ticket of the mail it returns; a
/// permanent failure marks that mail's failed recipients undeliverable and
/// tells staff (never marking a staff address: staff are told instead).
fn bounce(
    i: &Input<'_>,
    ticket: Option<&TicketInfo>,
    language: Language,
    mut reasons: Vec<String>,
    mut events: Vec<Event>,
    base: &Base<'_>,
) -> Decision {
    let bounce = i.classification.bounce.as_ref();
    let Some(t) = i.lookup.bounced.as_ref().or(ticket) else {
        reasons.push(
            "the returned mail is not one of ours on a ticket: nothing to attach it to".into(),
        );
        return ignored(base, language, reasons, events);
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
        let (found, staff_hit) = failed_recipients(i, b, &mut reasons);
        for r in found {
            let already = i
                .lookup
                .bounce_contacts
                .iter()
                .any(|c| c.address == r && c.undeliverable);
            if already {
                reasons.push(format!("{r} was already marked undeliverable"));
                continue;
            }
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
                address: r,
                reason: why,
            });
        }
        let notice = |recipients: Vec<String>, staff_member: bool, reasons: &[String]| {
            let mut n = staff_notice(i, "staff_undeliverable", reasons)?;
            // Never to an address that bounces: its notice would bounce too.
            n.to.retain(|a| !recipients.contains(&a.to_ascii_lowercase()));
            if n.to.is_empty() {
                return None;
            }
            if let Some(obj) = n.data.as_object_mut() {
                obj.insert(
                    "bounce".into(),
                    json!({
                        "status": b.status,
                        "recipients": recipients.join(", "),
                        "diagnostic": b.diagnostic.clone().unwrap_or_default(),
                        "staff": staff_member,
                    }),
                );
            }
            Some(n)
        };
        if !marks.is_empty() {
            let marked = marks.iter().map(|u| u.address.clone()).collect();
            replies.extend(notice(marked, false, &reasons));
        }
        if !staff_hit.is_empty() {
            events.push(Event::Bounce {
                text: format!(
                    "staff address {} not marked undeliverable: staff are told instead",
                    staff_hit.join(", ")
                ),
            });
            replies.extend(notice(staff_hit, true, &reasons));
        }
    } else if let Some(b) = bounce {
        reasons.push(format!(
            "temporary or unclear status {:?}: recorded only",
            b.status
        ));
    }
    let mut d = attached(base, t, language, replies, reasons, events);
    d.effects.undeliverable = marks;
    d
}

/// The decision for a machine's mail that changes nothing.
fn ignored(
    base: &Base<'_>,
    language: Language,
    reasons: Vec<String>,
    events: Vec<Event>,
) -> Decision {
    base(
        Outcome::Ignored,
        TicketWrite::None,
        TicketView {
            action: "none",
            id: None,
        },
        language,
        vec![],
        reasons,
        events,
    )
}

/// The addresses a permanent bounce may mark undeliverable, and the staff
/// addresses among its failures (never marked: staff are told instead).
/// Only a report that returns mail ticketd sent (its Message-ID is an
/// outbox row's) marks anyone, and only that mail's recipients: a forged
/// report naming a Message-ID of stored inbound mail, or naming addresses
/// our mail did not go to, marks nobody.
fn failed_recipients(
    i: &Input<'_>,
    b: &crate::model::Bounce,
    reasons: &mut Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let sent_to = &i.lookup.bounced_recipients;
    if sent_to.is_empty() {
        reasons.push(
            "the report returns no mail ticketd sent (no outbox mail has its Message-ID): nobody is marked undeliverable"
                .into(),
        );
        return (Vec::new(), Vec::new());
    }
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
    let (mut found, mut staff) = (Vec::new(), Vec::new());
    for r in failed {
        if !sent_to.contains(&r) {
            reasons.push(format!(
                "{r} was not a recipient of the returned mail: not marked undeliverable"
            ));
        } else if i.staff.member_by_address(&r).is_some()
            || i.identity.is_own(&r)
            || i.identity.staff.iter().any(|s| s.eq_ignore_ascii_case(&r))
        {
            reasons.push(format!(
                "{r} is a staff address: never marked undeliverable; staff are told"
            ));
            staff.push(r);
        } else {
            found.push(r);
        }
    }
    (found, staff)
}
