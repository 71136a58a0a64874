//! Webhooks as the store reads them: the events a webhook may want, which ticket event is which, and what one `[[webhook]]` entry subscribes to.

use super::event::Event;
use super::vocab::{RmaState, TicketStatus, TimerKind};
use serde::{Deserialize, Serialize};

/// What a webhook can be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HookEvent {
    #[serde(rename = "ticket.created")]
    TicketCreated,
    #[serde(rename = "ticket.updated")]
    TicketUpdated,
    #[serde(rename = "ticket.closed")]
    TicketClosed,
    #[serde(rename = "escalation.due")]
    EscalationDue,
    #[serde(rename = "sla.warning")]
    SlaWarning,
    #[serde(rename = "sla.breach")]
    SlaBreach,
    #[serde(rename = "rma.issued")]
    RmaIssued,
    #[serde(rename = "rma.deadline")]
    RmaDeadline,
    #[serde(rename = "staff.unverified")]
    StaffUnverified,
    #[serde(rename = "mail.quarantined")]
    MailQuarantined,
    #[serde(rename = "send.failed")]
    SendFailed,
}

impl HookEvent {
    pub const ALL: [HookEvent; 11] = [
        HookEvent::TicketCreated,
        HookEvent::TicketUpdated,
        HookEvent::TicketClosed,
        HookEvent::EscalationDue,
        HookEvent::SlaWarning,
        HookEvent::SlaBreach,
        HookEvent::RmaIssued,
        HookEvent::RmaDeadline,
        HookEvent::StaffUnverified,
        HookEvent::MailQuarantined,
        HookEvent::SendFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::TicketCreated => "ticket.created",
            HookEvent::TicketUpdated => "ticket.updated",
            HookEvent::TicketClosed => "ticket.closed",
            HookEvent::EscalationDue => "escalation.due",
            HookEvent::SlaWarning => "sla.warning",
            HookEvent::SlaBreach => "sla.breach",
            HookEvent::RmaIssued => "rma.issued",
            HookEvent::RmaDeadline => "rma.deadline",
            HookEvent::StaffUnverified => "staff.unverified",
            HookEvent::MailQuarantined => "mail.quarantined",
            HookEvent::SendFailed => "send.failed",
        }
    }

    pub fn parse(s: &str) -> Option<HookEvent> {
        HookEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The webhook event a ticket event is, and the rule behind it (a
    /// timer's rule, an RMA's rule); `None` for the events no webhook hears
    /// of (queued mail, notes, policy records...). Mail set aside is
    /// `mail.quarantined`, told by the message's outcome, not by an event.
    pub fn of(e: &Event) -> Option<(HookEvent, Option<&str>)> {
        Some(match e {
            Event::Created { .. } => (HookEvent::TicketCreated, None),
            Event::StatusChanged {
                to: TicketStatus::Closed,
                ..
            } => (HookEvent::TicketClosed, None),
            Event::Message { .. }
            | Event::Reopened { .. }
            | Event::StatusChanged { .. }
            | Event::StaffReply { .. }
            | Event::Assigned { .. }
            | Event::SeverityChanged { .. } => (HookEvent::TicketUpdated, None),
            Event::TimerFired { timer, rule, .. } => {
                let ev = match timer {
                    TimerKind::Escalation => HookEvent::EscalationDue,
                    TimerKind::SlaWarning => HookEvent::SlaWarning,
                    TimerKind::SlaBreach => HookEvent::SlaBreach,
                    TimerKind::RmaDeadline => HookEvent::RmaDeadline,
                    _ => return None,
                };
                (ev, Some(rule.as_str()))
            }
            Event::Rma {
                state: RmaState::Issued,
                rule,
                ..
            } => (HookEvent::RmaIssued, Some(rule.as_str())),
            Event::Unverified { .. } => (HookEvent::StaffUnverified, None),
            Event::SendFailed { .. } => (HookEvent::SendFailed, None),
            _ => return None,
        })
    }
}

impl std::fmt::Display for HookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shape a webhook's body takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    /// ticketd's own JSON, signed per Standard Webhooks.
    Standard,
    /// PagerDuty Events API v2: trigger, resolve on close.
    Pagerduty,
    /// A Slack incoming webhook's `text`.
    Slack,
    /// A Microsoft Teams incoming webhook's `text`.
    Teams,
}

impl HookKind {
    pub fn parse(s: &str) -> Option<HookKind> {
        match s {
            "standard" => Some(HookKind::Standard),
            "pagerduty" => Some(HookKind::Pagerduty),
            "slack" => Some(HookKind::Slack),
            "teams" => Some(HookKind::Teams),
            _ => None,
        }
    }
}

/// What one `[[webhook]]` entry wants to hear of: the store writes a
/// delivery for it in the transaction of each event that matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub name: String,
    pub kind: HookKind,
    pub events: Vec<HookEvent>,
    /// Only tickets of this mailbox (its name).
    pub mailbox: Option<String>,
    /// Only while this pack is in force (the daemon runs one pack).
    pub pack: Option<String>,
    /// Only tickets of this severity or more severe (1 is the most).
    pub max_severity: Option<u8>,
    /// The customer's text of the mail behind the event goes in the body.
    pub include_text: bool,
}

/// The ticket an event is about, as a webhook's filters read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookTicket<'a> {
    pub mailbox: &'a str,
    pub severity: Option<u8>,
}

impl Subscription {
    /// Whether `ev` about `ticket` is for this webhook, under `pack`.
    pub fn wants(&self, ev: HookEvent, ticket: &HookTicket<'_>, pack: &str) -> bool {
        self.events.contains(&ev)
            && self.mailbox.as_deref().is_none_or(|m| m == ticket.mailbox)
            && self.pack.as_deref().is_none_or(|p| p == pack)
            && self
                .max_severity
                .is_none_or(|max| ticket.severity.is_some_and(|s| s <= max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip_and_closing_is_its_own_event() {
        for e in HookEvent::ALL {
            assert_eq!(HookEvent::parse(e.as_str()), Some(e));
            assert_eq!(
                serde_json::to_string(&e).unwrap(),
                format!("\"{}\"", e.as_str())
            );
        }
        let close = Event::StatusChanged {
            from: TicketStatus::Open,
            to: TicketStatus::Closed,
            by: "alice".into(),
        };
        assert_eq!(HookEvent::of(&close), Some((HookEvent::TicketClosed, None)));
        let wait = Event::StatusChanged {
            from: TicketStatus::Open,
            to: TicketStatus::WaitingCustomer,
            by: "alice".into(),
        };
        assert_eq!(HookEvent::of(&wait), Some((HookEvent::TicketUpdated, None)));
    }

    #[test]
    fn filters_need_a_known_severity_at_most_theirs() {
        let s = Subscription {
            name: "pager".into(),
            kind: HookKind::Pagerduty,
            events: vec![HookEvent::TicketCreated],
            mailbox: Some("support".into()),
            pack: Some("netex".into()),
            max_severity: Some(1),
            include_text: false,
        };
        let t = |mailbox, severity| HookTicket { mailbox, severity };
        assert!(s.wants(HookEvent::TicketCreated, &t("support", Some(1)), "netex"));
        assert!(!s.wants(HookEvent::TicketCreated, &t("support", Some(2)), "netex"));
        assert!(!s.wants(HookEvent::TicketCreated, &t("support", None), "netex"));
        assert!(!s.wants(HookEvent::TicketCreated, &t("rma", Some(1)), "netex"));
        assert!(!s.wants(HookEvent::TicketCreated, &t("support", Some(1)), "qnap"));
        assert!(!s.wants(HookEvent::TicketClosed, &t("support", Some(1)), "netex"));
    }
}
