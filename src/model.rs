//! The domain model every layer shares: ticket ids and states, outcomes, mailbox roles, languages, typed events, entitlements, and what the decision reads from and writes to the store.
//!
//! Nothing here does I/O or knows SQL, and nothing here imports the rest of
//! the project: `store` maps these types to rows, `decide` and `policy`
//! compute with them, and the edges (templates, explain, the CLI) format them.

mod entitlement;
mod event;
mod findings;
mod hooks;
mod io;
mod settings;
mod vocab;

pub use entitlement::{Contract, ContractMatch, ContractOut, MatchedBy, Warranty, WarrantyStatus};
pub use event::{Event, PolicyRecord, QuotaUse};
pub use findings::{Bounce, DkimVerdict};
pub use hooks::{HookEvent, HookKind, HookTicket, Subscription};
pub use io::{
    Applied, BucketKey, BucketLevel, ContactInfo, Duplicate, Lookup, MergePlan, NewMail, Opening,
    OutAttachment, PendingTimer, RmaRecord, RmaVerb, SideEffects, SlaClock, SlaTarget,
    TicketChange, TicketInfo, TicketWrite, TimerCancel, TimerCause, TimerPlan, TimerRow,
    TimerState, TimerUpdate, Undeliverable,
};
pub use settings::{
    DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_PROCESSING_MS, DkimSettings, Identity, Limits,
    Mailboxes, Rate, Span, StaffDirectory, StaffMember, TokenKey, addresses_of,
};
pub use vocab::{
    Language, Outcome, Proof, RmaState, Role, Sender, TicketId, TicketStatus, TimerKind, Tracking,
};

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
