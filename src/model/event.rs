//! Ticket events: one typed, serde-tagged enum for everything a ticket's history records.
//!
//! The store keeps an event as its `kind` and a `detail`: the fields as a JSON
//! object for the structured kinds (policy, escalation_due, deadline, quota,
//! timer_fired, timer_cancelled, rma),
//! a line of text for the rest, as staff read them.

use super::entitlement::{ContractOut, Warranty};
use super::vocab::{RmaState, TicketId, TicketStatus, TimerKind, Tracking};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What the vendor's rules decided for one mail, kept on its ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub pack: String,
    pub rules: Vec<String>,
    pub tier: String,
    pub severity: u8,
    pub business_open: bool,
    pub facts: Vec<String>,
    pub missing: Vec<String>,
    pub clock_starts_at: DateTime<Utc>,
    pub first_response_due: Option<DateTime<Utc>>,
    pub warranty: Warranty,
    pub contract: Option<ContractOut>,
}

/// One use of a pack quota (QN-09, QJ-08 tickets per year) by a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaUse {
    pub id: String,
    pub rule: String,
    pub contract: String,
    pub period_start: NaiveDate,
    pub limit: u32,
    pub used: u32,
    pub charged: bool,
    pub exhausted: bool,
    pub remaining: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The mail opened the ticket.
    Created {
        from: String,
        mailbox: String,
        list: bool,
    },
    /// A person wrote again on the ticket.
    Message {
        from: String,
    },
    Reopened {
        was: String,
    },
    /// The same mail arrived again (another mailbox, a rescan).
    Duplicate {
        mailbox: String,
    },
    ReplySuppressed {
        why: String,
    },
    Policy(PolicyRecord),
    EscalationDue {
        at: DateTime<Utc>,
        to: String,
        rule: String,
    },
    Deadline {
        id: String,
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remind_at: Option<DateTime<Utc>>,
        rule: String,
    },
    Quota(QuotaUse),
    WaitingOnCustomer {
        missing: Vec<String>,
    },
    /// A note of the rules for staff.
    Staff {
        rule: String,
        text: String,
    },
    Bounce {
        text: String,
    },
    Undeliverable {
        address: String,
        why: String,
    },
    AutoReply {
        text: String,
    },
    ListMail {
        text: String,
    },
    MailQueued {
        template: String,
        to: Vec<String>,
    },
    SendSkipped {
        error: String,
    },
    SendFailed {
        error: String,
    },
    /// A timer came due and did what it is for (`late` when it fired after
    /// its due time, e.g. the daemon was down).
    TimerFired {
        timer: TimerKind,
        key: String,
        due: DateTime<Utc>,
        rule: String,
        late: bool,
    },
    /// Someone changed the ticket's state by hand (a shell command).
    StatusChanged {
        from: TicketStatus,
        to: TicketStatus,
        by: String,
    },
    /// A timer whose reason was gone when it came due.
    TimerCancelled {
        timer: TimerKind,
        key: String,
        rule: String,
        why: String,
    },
    /// An RMA changed state (asked for by a mail, approved, issued,
    /// received, expired): the `rma` table is its projection.
    Rma {
        part: String,
        state: RmaState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        plans: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<DateTime<Utc>>,
        /// The shipped replacement's carrier and tracking number, when given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracking: Option<Tracking>,
        rule: String,
        by: String,
    },
    /// Staff answered the customer (`ticketd reply`): the first response.
    StaffReply {
        by: String,
        to: Vec<String>,
    },
    /// An internal note: never sent to the customer.
    Note {
        by: String,
        text: String,
    },
    SeverityChanged {
        from: u8,
        to: u8,
        by: String,
    },
    /// The mail was about a closed ticket and opened this one, linked to it.
    LinkedTo {
        ticket: TicketId,
    },
    /// The ticket was given to a staff member (`#assign`, `ticketd assign`).
    Assigned {
        to: String,
        by: String,
    },
    /// A staff member's mail on the ticket: who, the proof it had, the
    /// commands it ran and whether its text was relayed to the customer.
    StaffMail {
        from: String,
        member: String,
        proof: String,
        commands: Vec<String>,
        relayed: bool,
    },
    /// Mail from a staff address without proof: kept here, nothing done.
    Unverified {
        from: String,
        why: String,
    },
    /// A staff mail whose commands could not run: nothing of it was done.
    CommandRefused {
        from: String,
        error: String,
    },
    /// A customer asked for the ticket's state and was told (IX-13, NX-02).
    StatusRequest {
        from: String,
    },
    /// This ticket was merged into `into` (`#merge`, `ticketd merge`): its
    /// history moved there, it is closed, and its mail lands there.
    MergedInto {
        into: TicketId,
        by: String,
    },
    /// Ticket `from` was merged into this one: its messages, events, RMAs,
    /// pending timers and thread moved here.
    Merged {
        from: TicketId,
        by: String,
    },
}

impl Event {
    /// The name stored in `ticket_events.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Created { .. } => "created",
            Event::Message { .. } => "message",
            Event::Reopened { .. } => "reopened",
            Event::Duplicate { .. } => "duplicate",
            Event::ReplySuppressed { .. } => "reply_suppressed",
            Event::Policy(_) => "policy",
            Event::EscalationDue { .. } => "escalation_due",
            Event::Deadline { .. } => "deadline",
            Event::Quota(_) => "quota",
            Event::WaitingOnCustomer { .. } => "waiting_on_customer",
            Event::Staff { .. } => "staff",
            Event::Bounce { .. } => "bounce",
            Event::Undeliverable { .. } => "undeliverable",
            Event::AutoReply { .. } => "auto_reply",
            Event::ListMail { .. } => "list_mail",
            Event::MailQueued { .. } => "mail_queued",
            Event::SendSkipped { .. } => "send_skipped",
            Event::SendFailed { .. } => "send_failed",
            Event::TimerFired { .. } => "timer_fired",
            Event::StatusChanged { .. } => "status_changed",
            Event::TimerCancelled { .. } => "timer_cancelled",
            Event::Rma { .. } => "rma",
            Event::StaffReply { .. } => "staff_reply",
            Event::Note { .. } => "note",
            Event::SeverityChanged { .. } => "severity_changed",
            Event::LinkedTo { .. } => "linked_to",
            Event::Assigned { .. } => "assigned",
            Event::StaffMail { .. } => "staff_mail",
            Event::Unverified { .. } => "unverified",
            Event::CommandRefused { .. } => "command_refused",
            Event::StatusRequest { .. } => "status_request",
            Event::MergedInto { .. } => "merged_into",
            Event::Merged { .. } => "merged",
        }
    }

    /// The text stored in `ticket_events.detail`.
    pub fn detail(&self) -> String {
        match self {
            Event::Created {
                from,
                mailbox,
                list,
            } => {
                let what = if *list { "list mail" } else { "new ticket" };
                format!("{what} from {from} via mailbox {mailbox}")
            }
            Event::Message { from } => format!("follow-up from {from}"),
            Event::Reopened { was } => format!("was {was}"),
            Event::Duplicate { mailbox } => format!("also received in mailbox {mailbox}"),
            Event::WaitingOnCustomer { missing } => format!("asked for: {}", missing.join(", ")),
            Event::Staff { rule, text } => format!("{rule}: {text}"),
            Event::Undeliverable { address, why } => format!("{address}: {why}"),
            Event::MailQueued { template, to } => format!("{template} to {}", to.join(", ")),
            Event::StatusChanged { from, to, by } => format!("{to} by {by} (was {from})"),
            Event::StaffReply { by, to } => format!("answer by {by} to {}", to.join(", ")),
            Event::Note { by, text } => format!("{by}: {text}"),
            Event::SeverityChanged { from, to, by } => {
                format!("severity {to} by {by} (was {from})")
            }
            Event::LinkedTo { ticket } => format!("follows closed ticket {ticket}"),
            Event::Assigned { to, by } => format!("assigned to {to} by {by}"),
            Event::StaffMail {
                from,
                member,
                proof,
                commands,
                relayed,
            } => {
                let commands = if commands.is_empty() {
                    "no commands".to_string()
                } else {
                    commands.join(", ")
                };
                let relayed = if *relayed {
                    "text relayed to the customer"
                } else {
                    "nothing relayed"
                };
                format!("mail from {member} <{from}>, proven by {proof}: {commands}; {relayed}")
            }
            Event::Unverified { from, why } => {
                format!("held: mail from staff address {from} without proof ({why}); nothing done")
            }
            Event::CommandRefused { from, error } => {
                format!("refused mail from {from}: {error}; nothing done")
            }
            Event::StatusRequest { from } => format!("{from} asked for the state and was told"),
            Event::MergedInto { into, by } => format!("merged into ticket {into} by {by}"),
            Event::Merged { from, by } => {
                format!("ticket {from} merged into this one by {by}: its history is here")
            }
            Event::ReplySuppressed { why: t }
            | Event::Bounce { text: t }
            | Event::AutoReply { text: t }
            | Event::ListMail { text: t }
            | Event::SendSkipped { error: t }
            | Event::SendFailed { error: t } => t.clone(),
            Event::Policy(_)
            | Event::EscalationDue { .. }
            | Event::Deadline { .. }
            | Event::Quota(_)
            | Event::TimerFired { .. }
            | Event::TimerCancelled { .. }
            | Event::Rma { .. } => {
                // Serialized with its tag first (`{"kind":"policy",…}`);
                // the tag is dropped, the `kind` column holds it.
                let mut s = serde_json::to_string(self).unwrap_or_default();
                let tag = "{\"kind\":\"".len() + self.kind().len() + 1;
                match s.as_bytes().get(tag) {
                    Some(b',') => s.replace_range(1..=tag, ""),
                    Some(b'}') => s.replace_range(1..tag, ""),
                    _ => {}
                }
                s
            }
        }
    }

    /// The structured event stored as `kind` and `detail`; `None` for the text kinds.
    pub fn from_stored(kind: &str, detail: &str) -> Option<Event> {
        if !matches!(
            kind,
            "policy"
                | "escalation_due"
                | "deadline"
                | "quota"
                | "timer_fired"
                | "timer_cancelled"
                | "rma"
        ) {
            return None;
        }
        let mut v: serde_json::Value = serde_json::from_str(detail).ok()?;
        v.as_object_mut()?.insert("kind".into(), kind.into());
        serde_json::from_value(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_events_round_trip_through_their_stored_form() {
        let at = DateTime::parse_from_rfc3339("2026-11-21T16:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let e = Event::EscalationDue {
            at,
            to: "director".into(),
            rule: "NX-03".into(),
        };
        assert_eq!(e.kind(), "escalation_due");
        assert_eq!(
            e.detail(),
            r#"{"at":"2026-11-21T16:00:00Z","to":"director","rule":"NX-03"}"#
        );
        let deadline = Event::Deadline {
            id: "rma_ship".into(),
            at,
            remind_at: None,
            rule: "IX-06".into(),
        };
        let cancelled = Event::TimerCancelled {
            timer: TimerKind::SlaBreach,
            key: "first_response".into(),
            rule: "QN-04".into(),
            why: "answered".into(),
        };
        for e in [e, deadline, cancelled] {
            // The stored form is the event's fields without its tag.
            let mut fields = serde_json::to_value(&e).unwrap();
            fields.as_object_mut().unwrap().remove("kind");
            let stored: serde_json::Value = serde_json::from_str(&e.detail()).unwrap();
            assert_eq!(stored, fields, "{}", e.kind());
            assert_eq!(Event::from_stored(e.kind(), &e.detail()), Some(e));
        }
    }

    #[test]
    fn text_events_keep_the_lines_staff_read() {
        let e = Event::Created {
            from: "ann@example.net".into(),
            mailbox: "support".into(),
            list: false,
        };
        assert_eq!(
            e.detail(),
            "new ticket from ann@example.net via mailbox support"
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "created");
        assert_eq!(Event::from_stored("created", &e.detail()), None);
    }
}
