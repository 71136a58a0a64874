//! What every timer kind shares when it comes due: the input (`TimerInput`), the answer (`TimerDecision`), the `timer_fired` event and the notice. The per-kind files (`escalation`, `sla`, `waiting`, `rma`) build on it; `fire` dispatches. Pure.

use super::plan::ReplyPlan;
use crate::compose::AutoSubmitted;
use crate::model::{Event, Language, Role, TicketInfo, TicketStatus, TimerCancel, TimerPlan};
use crate::model::{Identity, StaffDirectory};
use crate::pack::Pack;
use chrono::{DateTime, Utc};
use serde_json::json;

/// Everything `on_timer` reads besides the ticket and the timer.
#[derive(Debug, Clone, Copy)]
pub struct TimerInput<'a> {
    pub pack: &'a Pack,
    pub identity: &'a Identity,
    pub staff: &'a StaffDirectory,
    /// The address the ticket's mailbox answers from.
    pub from_address: &'a str,
    /// The role of the ticket's mailbox, for the staff queues that name roles.
    pub mailbox_role: Option<Role>,
    /// The customer's last mail on the ticket, which a customer notice answers.
    pub thread: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// What a due timer does.
#[derive(Debug, Clone)]
pub enum TimerDecision {
    /// It fires: these notices are queued and these events recorded with
    /// it, the ticket may change state and other timers end.
    Fire {
        replies: Vec<ReplyPlan>,
        events: Vec<Event>,
        status: Option<TicketStatus>,
        cancel: Vec<TimerCancel>,
    },
    /// Its reason is gone: it ends without doing anything, and the history says why.
    Cancel { why: String, events: Vec<Event> },
}

impl TimerDecision {
    pub(crate) fn fire(replies: Vec<ReplyPlan>, events: Vec<Event>) -> TimerDecision {
        TimerDecision::Fire {
            replies,
            events,
            status: None,
            cancel: vec![],
        }
    }

    pub(crate) fn cancel(t: &TimerPlan, why: String) -> TimerDecision {
        TimerDecision::Cancel {
            events: vec![Event::TimerCancelled {
                timer: t.kind,
                key: t.cause.to_string(),
                rule: t.rule.clone(),
                why: why.clone(),
            }],
            why,
        }
    }
}

/// The event of a timer that did what it is for (`late`: after its due time).
pub(crate) fn fired(t: &TimerPlan, late: bool) -> Event {
    Event::TimerFired {
        timer: t.kind,
        key: t.cause.to_string(),
        due: t.due,
        rule: t.rule.clone(),
        late,
    }
}

/// Who a timer's notice goes to.
pub(crate) enum Audience {
    /// Staff, in the pack's language, outside the customer's thread.
    Staff(Vec<String>),
    /// The ticket's customer, in their language and thread.
    Customer,
}

impl TimerInput<'_> {
    /// Who hears of `ticket` on staff's side: its owner, else the staff
    /// members whose queue it is in, else the `[identity] staff` list.
    pub(crate) fn staff_for(&self, ticket: &TicketInfo) -> Vec<String> {
        let members = self.staff.notified(
            ticket.owner.as_deref(),
            &ticket.mailbox,
            self.mailbox_role,
            None,
        );
        if members.is_empty() {
            return self.identity.staff.clone();
        }
        crate::model::addresses_of(members)
    }

    /// A notice about `ticket` from its mailbox: `template` rendered with
    /// the vendor, the customer, the ticket's state and `extra` under `key`.
    pub(crate) fn notice(
        &self,
        template: &'static str,
        ticket: &TicketInfo,
        to: Audience,
        key: &str,
        extra: serde_json::Value,
    ) -> ReplyPlan {
        let mut data = json!({
            "vendor": self.pack.vendor,
            "customer": {"address": ticket.requester},
            "ticket_state": ticket.status.as_str(),
        });
        data[key] = extra;
        let staff = matches!(to, Audience::Staff(_));
        let (to, language, thread) = match to {
            Audience::Staff(to) => (to, self.pack.language, None),
            Audience::Customer => (
                vec![ticket.requester.clone()],
                Language::parse(&ticket.language).unwrap_or(self.pack.language),
                self.thread,
            ),
        };
        ReplyPlan {
            template,
            to,
            language,
            from_address: self.from_address.to_string(),
            reply_to: Some(self.from_address.to_string()),
            auto_submitted: AutoSubmitted::Generated,
            in_reply_to: thread.map(String::from),
            references: thread.map(String::from).into_iter().collect(),
            // A staff member can answer a staff notice like a notification.
            staff_tokens: staff,
            relay_attachments: false,
            data,
        }
    }
}

/// A timer fired later than this after its due time says so in its notice.
pub(crate) const LATE_AFTER: chrono::Duration = chrono::Duration::minutes(1);
