//! A pack's rules as compiled: the `Policy` and the entries it holds, ready for `evaluate`; `compile` builds them from the raw TOML.

use super::conditions::When;
use super::lifecycle::Lifecycle;
use super::rma::RmaSpec;
use super::time::{ClockKind, add_calendar, resolve};
use crate::calendar::Calendar;
use crate::contracts::ContractMatch;
use crate::model::{Language, Span};
use crate::warranty::WarrantySpec;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc};
use regex::Regex;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub(super) struct Topic {
    pub(super) id: String,
    pub(super) rule: Option<String>,
    pub(super) re: Regex,
    pub(super) not: Option<Regex>,
}

impl Topic {
    /// Whether `text` is about this topic: one of its words outside every
    /// phrase of `not`.
    pub(super) fn matches(&self, text: &str) -> bool {
        match &self.not {
            Some(not) if not.is_match(text) => self.re.is_match(&not.replace_all(text, " ")),
            _ => self.re.is_match(text),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Sla {
    pub(super) rule: String,
    pub(super) when: When,
    pub(super) within: Span,
    pub(super) clock: ClockKind,
    pub(super) internal: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Escalation {
    pub(super) rule: String,
    pub(super) severity: u8,
    pub(super) after: Span,
    pub(super) to: String,
}

#[derive(Debug, Clone)]
pub(super) struct Require {
    pub(super) rule: String,
    pub(super) when: When,
    pub(super) facts: Vec<String>,
    pub(super) recommended: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum From {
    Arrival,
    /// When ticketd answers the mail (an RMA code issued with the
    /// acknowledgement counts from then, not from a late arrival).
    Acknowledged,
    ShippedOn,
    PurchasedOn,
    TicketCreated,
}

#[derive(Debug, Clone)]
pub(super) struct DeadlineRule {
    pub(super) id: String,
    pub(super) rule: String,
    pub(super) when: When,
    pub(super) from: From,
    pub(super) after: Span,
    pub(super) clock: ClockKind,
    pub(super) month_start: bool,
    pub(super) remind_before: Option<Span>,
}

#[derive(Debug, Clone)]
pub(super) struct Promise {
    pub(super) id: String,
    pub(super) rule: String,
    pub(super) when: When,
    pub(super) cutoff: Option<NaiveTime>,
    pub(super) before: u32,
    pub(super) after: u32,
    pub(super) not_before: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Quota {
    pub(super) id: String,
    pub(super) rule: String,
    pub(super) when: When,
    pub(super) free_when: When,
    pub(super) limit: u32,
    pub(super) yearly: bool,
    pub(super) limit_from_contract: bool,
    pub(super) sold: bool,
}

/// A `[[route]]` (its `to`) or a `[[staff]]` note (its `text`): a sentence under conditions.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) rule: String,
    pub(super) when: When,
    pub(super) text: String,
}

#[derive(Debug, Clone)]
pub(super) struct MailboxRule {
    pub(super) rule: String,
    pub(super) mailbox: String,
    pub(super) requires: When,
}

#[derive(Debug, Clone)]
pub(super) struct Release {
    pub(super) product: String,
    pub(super) version: Vec<u32>,
    pub(super) version_text: String,
    pub(super) released_on: NaiveDate,
}

#[derive(Debug, Clone)]
pub(super) struct Versions {
    pub(super) rule: String,
    pub(super) window: Span,
    pub(super) releases: Vec<Release>,
}

#[derive(Debug, Clone)]
pub(super) struct Notice {
    pub(super) id: String,
    pub(super) rule: String,
    pub(super) when: When,
    pub(super) text: BTreeMap<Language, String>,
}

#[derive(Debug, Clone)]
pub(super) struct FactPatterns {
    pub(super) extra: BTreeMap<String, Vec<Regex>>,
}

/// A pack's rules, compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(super) calendar: Calendar,
    pub(super) calendar_rules: Vec<String>,
    pub(super) always: Calendar,
    pub(super) warranty: WarrantySpec,
    pub(super) warranty_rules: Vec<String>,
    pub(super) default_tier: String,
    pub(super) severity_default: u8,
    pub(super) severity_levels: u8,
    pub(super) severity_rules: Vec<String>,
    pub(super) severity_mailbox: BTreeMap<String, u8>,
    pub(super) critical: Option<Regex>,
    pub(super) topics: Vec<Topic>,
    pub(super) facts: FactPatterns,
    pub(super) sla: Vec<Sla>,
    pub(super) escalations: Vec<Escalation>,
    pub(super) requires: Vec<Require>,
    pub(super) deadlines: Vec<DeadlineRule>,
    pub(super) promises: Vec<Promise>,
    pub(super) quotas: Vec<Quota>,
    pub(super) routes: Vec<Line>,
    pub(super) staff: Vec<Line>,
    pub(super) mailbox_rules: Vec<MailboxRule>,
    pub(super) versions: Option<Versions>,
    pub(super) notices: Vec<Notice>,
    pub(super) language_rules: Vec<String>,
    /// Replies only in the pack's language (`[language] only`).
    pub(super) language_only: bool,
    pub(super) rma: Option<RmaSpec>,
    pub(super) lifecycle: Lifecycle,
}

impl Policy {
    /// The rule IDs of the pack's `[[route]]` entries (AV-04, AV-05): a
    /// staff member's queue may name them.
    pub fn route_rules(&self) -> Vec<&str> {
        self.routes.iter().map(|r| r.rule.as_str()).collect()
    }

    /// Every recipient an escalation step names, once each.
    pub fn escalation_recipients(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for e in &self.escalations {
            if !out.contains(&e.to.as_str()) {
                out.push(&e.to);
            }
        }
        out
    }
}

pub(super) fn parse_version(s: &str) -> Option<Vec<u32>> {
    let v: Option<Vec<u32>> = s.split('.').map(|p| p.parse().ok()).collect();
    v.filter(|v| !v.is_empty())
}

pub(super) fn period_start(q: &Quota, c: &ContractMatch, today: NaiveDate) -> NaiveDate {
    let start = c.contract.purchased_on;
    if !q.yearly || today < start {
        return start;
    }
    let mut years = today.year() - start.year();
    loop {
        let anniversary = start
            .checked_add_months(Months::new(12 * years.max(0) as u32))
            .unwrap_or(start);
        if anniversary <= today || years <= 0 {
            return anniversary;
        }
        years -= 1;
    }
}

impl Policy {
    /// The pack's RMA rules, if it has an `[rma]` table.
    pub fn rma(&self) -> Option<&RmaSpec> {
        self.rma.as_ref()
    }

    /// `t` moved by `span` as the pack counts it: minutes exactly, days and
    /// months on the wall clock of its zone, business days on its calendar.
    pub fn after(&self, t: DateTime<Utc>, span: Span) -> DateTime<Utc> {
        add_calendar(self.calendar.zone(), t, span, &self.calendar)
    }

    /// `t` moved back by `span` (minutes and calendar days; business days
    /// count back over the pack's calendar).
    pub fn before(&self, t: DateTime<Utc>, span: Span) -> DateTime<Utc> {
        let zone = self.calendar.zone();
        let local = t.with_timezone(&zone).naive_local();
        let moved = match span {
            Span::Minutes(m) => return t - Duration::minutes(m),
            Span::Days(d) => local - Duration::days(d),
            Span::Months(m) => local.checked_sub_months(Months::new(m)).unwrap_or(local),
            Span::BusinessDays(n) => {
                let mut d = local.date();
                let mut left = n;
                while left > 0 {
                    d = d.pred_opt().unwrap_or(d);
                    if self.calendar.is_business_day(d) {
                        left -= 1;
                    }
                }
                d.and_time(local.time())
            }
        };
        resolve(zone, moved)
    }
}

impl Policy {
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }
}

impl Policy {
    /// The time an SLA clock of kind `clock` has left at `now` until `due`,
    /// in seconds (business seconds for a business clock).
    pub fn sla_time_left(&self, clock: ClockKind, now: DateTime<Utc>, due: DateTime<Utc>) -> i64 {
        let left = match clock {
            ClockKind::Business => self.calendar.business_between(now, due),
            _ => due - now,
        };
        left.num_seconds().max(0)
    }

    /// When an SLA clock of kind `clock` with `secs` left, resumed at `now`, runs out.
    pub fn sla_resume_at(&self, clock: ClockKind, now: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
        match clock {
            ClockKind::Business => self.calendar.add_business(now, Duration::seconds(secs)),
            _ => now + Duration::seconds(secs),
        }
    }
}
