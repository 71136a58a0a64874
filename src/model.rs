//! The domain model every layer shares: ticket ids and states, outcomes, mailbox roles, languages, typed events, and what the decision reads from and writes to the store.
//!
//! Nothing here does I/O or knows SQL; `store` maps these types to rows, `decide` and
//! `policy` compute with them, and the edges (templates, explain, the CLI) format them.

mod event;
mod io;

pub use event::{Event, PolicyRecord, QuotaUse};
pub use io::{
    Applied, BucketKey, BucketLevel, ContactInfo, Duplicate, Lookup, NewMail, OutAttachment,
    PendingTimer, RmaRecord, RmaState, RmaVerb, SideEffects, TicketChange, TicketInfo, TicketWrite,
    TimerCancel, TimerKind, TimerPlan, TimerRow, TimerUpdate, Undeliverable,
};

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
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Processed,
        Outcome::Duplicate,
        Outcome::Ignored,
        Outcome::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Processed => "processed",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Quarantined => "quarantined",
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in TicketStatus::ALL {
            assert_eq!(TicketStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        for l in Language::ALL {
            assert_eq!(Language::parse(l.as_str()), Some(l));
        }
        assert_eq!(TicketStatus::parse("pending"), None);
    }
}
