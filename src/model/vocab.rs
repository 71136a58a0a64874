//! The words every layer shares: ticket ids and states, outcomes, mailbox roles, languages, who wrote a mail and what proved it, the kinds of timers, a shipment's tracking.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who wrote a mail, as the decision sees it (`explain` shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// A person writing as a customer (a new request, or on their ticket).
    Customer,
    /// A configured staff member whose mail is proven theirs.
    Staff,
    /// A configured staff address without proof: it does nothing as staff.
    UnverifiedStaff,
    /// Someone naming a ticket they have never written on.
    Stranger,
    /// An auto-reply, a bounce, list mail, our own mail.
    Machine,
}

impl Sender {
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Customer => "customer",
            Sender::Staff => "staff",
            Sender::UnverifiedStaff => "unverified_staff",
            Sender::Stranger => "stranger",
            Sender::Machine => "machine",
        }
    }
}

/// What proves a staff member's mail theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Proof {
    /// The reply carries the token of a notification sent to that address
    /// about this ticket (In-Reply-To or References).
    ReplyToken,
    /// A DKIM signature that verifies and aligns with the From domain.
    Dkim { domain: String, selector: String },
    /// An Authentication-Results header of the vendor's own receiving server.
    AuthenticationResults { detail: String },
}

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proof::ReplyToken => f.write_str("reply token"),
            Proof::Dkim { domain, selector } => write!(f, "DKIM d={domain} s={selector}"),
            Proof::AuthenticationResults { detail } => f.write_str(detail),
        }
    }
}

/// A ticket's number, as customers see it in the subject tag.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TicketId(pub i64);

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i64> for TicketId {
    fn from(n: i64) -> TicketId {
        TicketId(n)
    }
}

impl PartialEq<i64> for TicketId {
    fn eq(&self, other: &i64) -> bool {
        self.0 == *other
    }
}

/// Where a ticket stands. The schema's CHECK on `tickets.status` allows these names only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Someone at the vendor has to act.
    Open,
    /// The vendor asked the customer for something and waits for it.
    WaitingCustomer,
    /// The customer answered; staff have to read it.
    WaitingStaff,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 4] = [
        TicketStatus::Open,
        TicketStatus::WaitingCustomer,
        TicketStatus::WaitingStaff,
        TicketStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::WaitingCustomer => "waiting_customer",
            TicketStatus::WaitingStaff => "waiting_staff",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<TicketStatus> {
        TicketStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What became of one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Marked as spam by the receiving server: stored, moved aside with the
    /// quarantined mail, never answered; an admin may release it.
    Spam,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Processed,
        Outcome::Duplicate,
        Outcome::Ignored,
        Outcome::Quarantined,
        Outcome::Spam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Quarantined => "quarantined",
            Outcome::Spam => "spam",
        }
    }

    /// Set aside in the mailbox's quarantine folder, until an admin releases it.
    pub fn set_aside(self) -> bool {
        matches!(self, Outcome::Quarantined | Outcome::Spam)
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The role a watched mailbox plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Support,
    Rma,
    TwentyFourSeven,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Support => "support",
            Role::Rma => "rma",
            Role::TwentyFourSeven => "24x7",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "support" => Some(Role::Support),
            "rma" => Some(Role::Rma),
            "24x7" => Some(Role::TwentyFourSeven),
            _ => None,
        }
    }
}

/// A language we have templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Ja,
    Es,
}

impl Language {
    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "en" => Some(Language::En),
            "ja" => Some(Language::Ja),
            "es" => Some(Language::Es),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ja => "ja",
            Language::Es => "es",
        }
    }

    pub const ALL: [Language; 3] = [Language::En, Language::Ja, Language::Es];
}

/// What a timer is for. Each kind is fired by `decide::on_timer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// A step of an escalation ladder (NX-03): a notice to the people it names.
    Escalation,
    /// Staff are warned that a first-response target is near.
    SlaWarning,
    /// Staff are told that a first-response target was missed.
    SlaBreach,
    /// The customer is reminded that an RMA deadline is near (IX-06, ...).
    RmaReminder,
    /// An RMA deadline passed: the customer is told, the RMA may expire.
    RmaDeadline,
    /// An approved RMA has not been issued in time (QN-05): staff are told.
    RmaIssueDue,
    /// A ticket waiting on the customer: they are reminded of what is missing.
    CustomerReminder,
    /// A ticket still waiting on the customer is closed, and they are told.
    AutoClose,
}

impl TimerKind {
    pub const ALL: [TimerKind; 8] = [
        TimerKind::Escalation,
        TimerKind::SlaWarning,
        TimerKind::SlaBreach,
        TimerKind::RmaReminder,
        TimerKind::RmaDeadline,
        TimerKind::RmaIssueDue,
        TimerKind::CustomerReminder,
        TimerKind::AutoClose,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Escalation => "escalation",
            TimerKind::SlaWarning => "sla_warning",
            TimerKind::SlaBreach => "sla_breach",
            TimerKind::RmaReminder => "rma_reminder",
            TimerKind::RmaDeadline => "rma_deadline",
            TimerKind::RmaIssueDue => "rma_issue_due",
            TimerKind::CustomerReminder => "customer_reminder",
            TimerKind::AutoClose => "auto_close",
        }
    }

    pub fn parse(s: &str) -> Option<TimerKind> {
        TimerKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The RMA's timers: they follow the RMA, not the ticket's state (a
    /// closed ticket's RMA still expires, its part is still due back).
    pub fn is_rma(self) -> bool {
        matches!(self, TimerKind::RmaReminder | TimerKind::RmaDeadline)
    }

    /// The SLA clock's timers: an answer from staff ends them, and they
    /// pause while the ticket waits on the customer.
    pub fn is_sla(self) -> bool {
        matches!(self, TimerKind::SlaWarning | TimerKind::SlaBreach)
    }

    /// The timers of a ticket waiting on its customer: their reply ends them.
    pub fn is_waiting(self) -> bool {
        matches!(self, TimerKind::CustomerReminder | TimerKind::AutoClose)
    }
}

/// The steps of an RMA (`rma.state`; the schema allows these only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RmaState {
    /// A mail asked for it; staff have not approved it yet.
    Requested,
    /// Staff verified the documents or the symptoms (QN-05, AV-06).
    Approved,
    /// It has its code, sent to the customer.
    Issued,
    /// The replacement went out with a prepaid return label (IX-07).
    Shipped,
    /// The replacement reached the customer (QN-07).
    Received,
    /// The defective part is back: nothing more is due.
    Returned,
    Expired,
    Cancelled,
}

impl RmaState {
    pub const ALL: [RmaState; 8] = [
        RmaState::Requested,
        RmaState::Approved,
        RmaState::Issued,
        RmaState::Shipped,
        RmaState::Received,
        RmaState::Returned,
        RmaState::Expired,
        RmaState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RmaState::Requested => "requested",
            RmaState::Approved => "approved",
            RmaState::Issued => "issued",
            RmaState::Shipped => "shipped",
            RmaState::Received => "received",
            RmaState::Returned => "returned",
            RmaState::Expired => "expired",
            RmaState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RmaState> {
        RmaState::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How a shipped replacement travels: the carrier and its tracking number,
/// as staff give them (`#rma shipped CARRIER TRACKING`, `--carrier --tracking`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    pub carrier: String,
    pub number: String,
}

impl fmt::Display for Tracking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.carrier, self.number)
    }
}
