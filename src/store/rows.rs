//! The rows the store reads and writes whole: a message to store, its origin in a mailbox, a mailbox's high-water mark, outbox and listing rows.

use crate::model::{Outcome, TicketId, TicketStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxState {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

/// Where a stored message came from.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// The stored form of one inbound message.
#[derive(Debug, Clone)]
pub struct MessageRow<'a> {
    pub origin: Origin<'a>,
    pub raw: &'a [u8],
    pub message_id: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub content_hash: &'a str,
    pub arrival: DateTime<Utc>,
    pub class: &'a str,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The new text of the mail, for notifications and staff views.
    pub reply_text: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket_id: Option<TicketId>,
    pub kind: String,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub status: String,
    /// Real attempts: the server answered for this mail (250, 4xx or 5xx).
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Claims with no outcome recorded since (each claim is counted before
    /// the mail is sent; a recorded outcome sets it back to 0).
    pub claims: u32,
    /// Temporary failures that reached no server (no connection, no
    /// greeting, a timeout, a drop before the reply, a chunk deferred).
    pub deferrals: u32,
    pub created_at: DateTime<Utc>,
    /// The subject it was rendered with (`None` for mail queued before the
    /// store kept it).
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub id: TicketId,
    pub subject: String,
    pub status: TicketStatus,
    pub requester: String,
    pub mailbox: String,
    pub language: String,
    pub messages: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineRow {
    pub row: i64,
    pub mailbox: String,
    pub uid: u32,
    pub reason: Option<String>,
    pub size: i64,
    /// `quarantined`, or `spam` (marked so by the receiving server).
    pub outcome: String,
}

/// What a contracts import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportStats {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
}
