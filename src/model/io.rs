//! What the decision reads from the store (`Lookup`) and what it asks the store to write.

use super::{TicketId, TicketStatus};
use crate::contracts::ContractMatch;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct TicketInfo {
    pub id: TicketId,
    pub subject: String,
    pub status: TicketStatus,
    pub requester: String,
    pub language: String,
    /// The mailbox the ticket was opened in.
    pub mailbox: String,
    /// Every address that has written on this ticket.
    pub participants: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Facts the ticket's earlier mail carried (the `ticket_facts` projection).
    pub facts: Vec<String>,
    /// Staff notes already recorded on the ticket (its `staff` events).
    pub staff_notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactInfo {
    pub address: String,
    pub language: Option<String>,
    pub undeliverable: bool,
    /// Why the contact is undeliverable (the bounce that said so).
    pub undeliverable_reason: Option<String>,
}

/// A message already stored under the same identity (Message-ID and sender, or content).
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub row: i64,
    pub mailbox: String,
    pub ticket_id: Option<TicketId>,
}

/// The stored level of one reply token bucket (`rcpt:<address>` or `ticket:<id>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketLevel {
    pub key: String,
    pub tokens: f64,
    pub updated_at: DateTime<Utc>,
}

/// Which bucket a new level is for.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketKey {
    Recipient(String),
    Ticket(TicketId),
    /// The ticket this message creates.
    NewTicket,
}

impl BucketKey {
    pub fn name(&self) -> Option<String> {
        match self {
            BucketKey::Recipient(a) => Some(format!("rcpt:{}", a.to_ascii_lowercase())),
            BucketKey::Ticket(t) => Some(format!("ticket:{t}")),
            BucketKey::NewTicket => None,
        }
    }
}

/// A contact that must not be written to any more.
#[derive(Debug, Clone, PartialEq)]
pub struct Undeliverable {
    pub address: String,
    pub reason: String,
}

/// Writes besides the ticket that one message causes.
#[derive(Debug, Clone, Default)]
pub struct SideEffects {
    /// New bucket levels, stamped with the apply time.
    pub buckets: Vec<(BucketKey, f64)>,
    pub undeliverable: Vec<Undeliverable>,
    /// Timers to set on the message's ticket (kept if already set).
    pub timers: Vec<TimerPlan>,
}

/// What the database knows that bears on one mail.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub tagged: Option<TicketInfo>,
    pub referenced: Option<TicketInfo>,
    pub duplicate: Option<Duplicate>,
    pub contact: Option<ContactInfo>,
    /// The number a ticket opened by this mail would get (for `explain`).
    pub next_ticket_id: TicketId,
    /// The sender's contract, if the entitlements know one.
    pub contract: Option<ContractMatch>,
    /// Uses of each pack quota in its current period.
    pub quota_used: BTreeMap<String, u32>,
    /// The ticket of our mail that a bounce returns (by its original Message-ID).
    pub bounced: Option<TicketInfo>,
    /// Reply buckets of the sender and of the tickets the mail may belong to.
    pub buckets: Vec<BucketLevel>,
    /// The recipients (lower-cased) of our mail that a bounce returns.
    pub bounced_recipients: Vec<String>,
    /// The stored contacts among a bounce's failed recipients and those of
    /// the mail it returns.
    pub bounce_contacts: Vec<ContactInfo>,
}

impl Lookup {
    pub fn bucket(&self, key: &str) -> Option<&BucketLevel> {
        self.buckets.iter().find(|b| b.key == key)
    }
}

/// What the message does to tickets.
#[derive(Debug, Clone)]
pub enum TicketWrite {
    None,
    New {
        subject: String,
        status: TicketStatus,
        language: String,
        requester: String,
        requester_name: Option<String>,
    },
    /// A person wrote on the ticket: it is open again, or waits on the customer.
    Update {
        id: TicketId,
        status: TicketStatus,
    },
    /// A machine wrote on the ticket: recorded, state unchanged.
    Attach {
        id: TicketId,
    },
}

/// One mail to send, fully rendered.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub kind: String,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
}

/// What the store wrote for one message.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub message_row: i64,
    pub ticket_id: Option<TicketId>,
    pub queued: Vec<i64>,
}

/// What a timer is for. Each kind is fired by `decide::on_timer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// A step of an escalation ladder (NX-03): a notice to the people it names.
    Escalation,
}

impl TimerKind {
    pub const ALL: [TimerKind; 1] = [TimerKind::Escalation];

    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Escalation => "escalation",
        }
    }

    pub fn parse(s: &str) -> Option<TimerKind> {
        TimerKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A timer a decision sets: unique per (ticket, kind, key), so setting it
/// again changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerPlan {
    pub kind: TimerKind,
    pub key: String,
    pub due: DateTime<Utc>,
    /// The rule ID it carries out.
    pub rule: String,
    /// The recipient the pack names (`[staff] recipients` maps it to addresses).
    pub to: Option<String>,
}

/// A stored pending timer, as the scheduler reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerRow {
    pub id: i64,
    pub ticket: TicketId,
    #[serde(flatten)]
    pub plan: TimerPlan,
}
