//! A pack's `[rma]` table: how its RMA codes are formed and issued (IX-05, QN-05, AV-06) and the deadlines an issued, shipped or received RMA starts (IX-06, IX-07, QN-07); a returned part ends them.

use super::checks::{rule_ok, span, texts};
use crate::diag::Report;
use crate::model::{Language, Role, Span};
use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

/// The `[rma]` table as serde reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRma {
    pub rule: String,
    /// `auto`: a mail that asks for an RMA gets its code at once; `approval`:
    /// staff approve it (documents or symptoms verified), then issue it.
    pub issue: String,
    /// How a code is written: `{ticket}` (the ticket number), `{year}` (of the
    /// issue, in the pack's zone), `{seq}` (the RMA's own number), e.g. `{ticket}`
    /// or `Q{year}-{seq}`.
    pub code: String,
    /// A new ticket asks for an RMA when it has one of these topics or
    /// arrives in one of these mailboxes (by role or name).
    #[serde(default)]
    pub request_topics: Vec<String>,
    #[serde(default)]
    pub request_mailboxes: Vec<String>,
    /// Approval packs: staff are told when an approved RMA is not issued
    /// within this span (QN-05: `2bd`), under `issue_rule`.
    #[serde(default)]
    pub issue_within: Option<String>,
    #[serde(default)]
    pub issue_rule: Option<String>,
    /// Where the customer sends the part, per language (`return_to.en`, ...).
    #[serde(default)]
    pub return_to: BTreeMap<String, String>,
    #[serde(default)]
    pub deadline: Vec<RawRmaDeadline>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRmaDeadline {
    pub id: String,
    pub rule: String,
    /// `issued`, `shipped` or `received` (staff record the steps mail cannot
    /// see: the replacement sent, the replacement received).
    pub from: String,
    pub after: String,
    /// Contract plans it applies to; empty: every RMA.
    #[serde(default)]
    pub plans: Vec<String>,
    /// The RMA is marked expired when the deadline passes.
    #[serde(default)]
    pub expires: bool,
    /// A reminder this long before it, with the `remind` text.
    #[serde(default)]
    pub remind_before: Option<String>,
    /// What the customer is told when it passes, per language.
    pub text: BTreeMap<String, String>,
    /// What the mail that starts it (the code's, or the receipt's) says of it.
    #[serde(default)]
    pub announce: BTreeMap<String, String>,
    #[serde(default)]
    pub remind: BTreeMap<String, String>,
}

/// When an RMA gets its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueMode {
    Auto,
    Approval,
}

/// The step of an RMA a deadline counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RmaStart {
    Issued,
    Shipped,
    Received,
}

/// One deadline an RMA starts, compiled.
#[derive(Debug, Clone)]
pub struct RmaDeadline {
    pub id: String,
    pub rule: String,
    pub from: RmaStart,
    pub after: Span,
    pub plans: Vec<String>,
    pub expires: bool,
    pub remind_before: Option<Span>,
    pub text: BTreeMap<Language, String>,
    pub announce: BTreeMap<Language, String>,
    pub remind: BTreeMap<Language, String>,
}

/// A pack's RMA rules, compiled.
#[derive(Debug, Clone)]
pub struct RmaSpec {
    pub rule: String,
    pub issue: IssueMode,
    pub code: String,
    pub request_topics: Vec<String>,
    pub request_mailboxes: Vec<String>,
    pub issue_within: Option<(Span, String)>,
    pub return_to: BTreeMap<Language, String>,
    pub deadlines: Vec<RmaDeadline>,
}

impl RmaSpec {
    /// The code of an RMA issued at `at` (`seq` is its own row number).
    pub fn code_for(&self, ticket: i64, seq: i64, at: DateTime<Utc>, zone: Tz) -> String {
        self.code
            .replace("{ticket}", &ticket.to_string())
            .replace("{seq}", &seq.to_string())
            .replace("{year}", &at.with_timezone(&zone).year().to_string())
    }

    /// Whether a new ticket with these topics, in this mailbox, asks for an RMA.
    pub fn requested_by(&self, topics: &[String], mailbox_name: &str, role: Role) -> bool {
        topics.iter().any(|t| self.request_topics.contains(t))
            || self
                .request_mailboxes
                .iter()
                .any(|m| m == mailbox_name || m == role.as_str())
    }

    /// The deadlines that apply to an RMA under these contract plans and
    /// start at `from`.
    pub fn deadlines_from<'a>(
        &'a self,
        from: RmaStart,
        plans: &'a [String],
    ) -> impl Iterator<Item = &'a RmaDeadline> {
        self.deadlines.iter().filter(move |d| {
            d.from == from && (d.plans.is_empty() || d.plans.iter().any(|p| plans.contains(p)))
        })
    }

    pub fn deadline(&self, id: &str) -> Option<&RmaDeadline> {
        self.deadlines.iter().find(|d| d.id == id)
    }

    /// Every text the customer can be sent (compiled once at start).
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.deadlines
            .iter()
            .flat_map(|d| {
                d.text
                    .values()
                    .chain(d.remind.values())
                    .chain(d.announce.values())
            })
            .chain(self.return_to.values())
            .map(String::as_str)
    }

    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.rule.as_str())
            .chain(self.issue_within.iter().map(|(_, r)| r.as_str()))
            .chain(self.deadlines.iter().map(|d| d.rule.as_str()))
    }
}

/// Compiles `[rma]`, reporting every problem at its line.
pub(super) fn compile(r: &mut Report<'_>, raw: Spanned<RawRma>, topics: &[String]) -> RmaSpec {
    let at = raw.span().start;
    let raw = raw.into_inner();
    rule_ok(r, at, &raw.rule);
    let issue = match raw.issue.as_str() {
        "auto" => IssueMode::Auto,
        "approval" => IssueMode::Approval,
        other => {
            r.at(at, format!("rma: issue `{other}` is auto or approval"));
            IssueMode::Approval
        }
    };
    let rest = raw
        .code
        .replace("{ticket}", "")
        .replace("{seq}", "")
        .replace("{year}", "");
    if !raw.code.contains("{ticket}") && !raw.code.contains("{seq}") {
        r.at(
            at,
            "rma: code must contain {ticket} or {seq}, so that codes differ",
        );
    }
    if rest.contains(['{', '}']) {
        r.at(
            at,
            format!(
                "rma: code `{}` knows only {{ticket}}, {{seq}} and {{year}}",
                raw.code
            ),
        );
    }
    for t in &raw.request_topics {
        if !topics.contains(t) {
            r.at(at, format!("rma: request_topics: `{t}` is not a [[topic]]"));
        }
    }
    let issue_within = match (&raw.issue_within, &raw.issue_rule) {
        (Some(w), Some(rule)) => {
            rule_ok(r, at, rule);
            Some((span(r, at, "rma: issue_within", w), rule.clone()))
        }
        (None, None) => None,
        _ => {
            r.at(at, "rma: issue_within and issue_rule go together");
            None
        }
    };
    let return_to = if raw.return_to.is_empty() {
        BTreeMap::new()
    } else {
        texts(r, at, "rma: return_to", &raw.return_to)
    };
    let mut deadlines: Vec<RmaDeadline> = Vec::new();
    for d in raw.deadline {
        let what = format!("rma deadline `{}`", d.id);
        rule_ok(r, at, &d.rule);
        if d.id.is_empty() || d.id.contains(':') {
            r.at(at, format!("{what}: an id is a word without `:`"));
        }
        if deadlines.iter().any(|x| x.id == d.id) {
            r.at(at, format!("{what}: the id is used twice"));
        }
        let from = match d.from.as_str() {
            "issued" => RmaStart::Issued,
            "shipped" => RmaStart::Shipped,
            "received" => RmaStart::Received,
            other => {
                r.at(
                    at,
                    format!("{what}: from `{other}` is issued, shipped or received"),
                );
                RmaStart::Issued
            }
        };
        let remind_before = d
            .remind_before
            .as_deref()
            .map(|s| span(r, at, &format!("{what}: remind_before"), s));
        let remind = match (remind_before.is_some(), d.remind.is_empty()) {
            (true, false) => texts(r, at, &format!("{what}: remind"), &d.remind),
            (false, true) => BTreeMap::new(),
            (true, true) => {
                r.at(at, format!("{what}: remind_before needs a remind text"));
                BTreeMap::new()
            }
            (false, false) => {
                r.at(at, format!("{what}: a remind text needs remind_before"));
                BTreeMap::new()
            }
        };
        let announce = if d.announce.is_empty() {
            BTreeMap::new()
        } else {
            texts(r, at, &format!("{what}: announce"), &d.announce)
        };
        deadlines.push(RmaDeadline {
            after: span(r, at, &format!("{what}: after"), &d.after),
            text: texts(r, at, &what, &d.text),
            announce,
            id: d.id,
            rule: d.rule,
            from,
            plans: d.plans,
            expires: d.expires,
            remind_before,
            remind,
        });
    }
    RmaSpec {
        rule: raw.rule,
        issue,
        code: raw.code,
        request_topics: raw.request_topics,
        request_mailboxes: raw.request_mailboxes,
        issue_within,
        return_to,
        deadlines,
    }
}
