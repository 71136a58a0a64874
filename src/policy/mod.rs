//! The vendor policy engine: a pack's rules, compiled from TOML, applied to one request at its arrival. Pure: no I/O, no clock.
//!
//! A pack describes its vendor with a few kinds of entries, each carrying the
//! rule ID it implements (`rule = "NX-03"`):
//!
//! - `[calendar]`: opening hours, holidays, closures ([`crate::calendar`]).
//! - `[warranty]`: standard terms, model series, extensions ([`crate::warranty`]).
//! - `[tiers]`, `[severity]`: how the tier and the severity are read.
//! - `[[topic]]`: named sets of words and phrases in every language (out of
//!   scope, refund, …), with `not` phrases that do not count ("DC replacement").
//! - `[facts]`: extra patterns for the canonical facts a request can carry.
//! - `[[sla]]`: first-response times by condition, on the business or the 24×7 clock.
//! - `[[escalation]]`: steps by severity, on the calendar clock from the report.
//! - `[[require]]`: the facts a request must carry; what is missing is asked for.
//! - `[[deadline]]`, `[[promise]]`: dates computed from the request or the contract
//!   (a promise may wait for a deadline: `not_before`).
//! - `[[quota]]`: counted allowances (tickets a year, on-site visits a term).
//! - `[[route]]`, `[[staff]]`: who handles it, and what staff must decide.
//! - `[[mailbox]]`: who may use a mailbox (24x7@).
//! - `[versions]`: release history, for how long a superseded version is supported.
//! - `[[notice]]`: the sentences the acknowledgement carries, in en, ja and es.
//! - `[rma]`: how RMA codes are formed and issued, and the deadlines they start.
//! - `[lifecycle]`: reminding and closing tickets that wait on the customer; reopening.
//!
//! Entries are switched on by `when`, a list of conditions that must all hold:
//! `new`, `followup`, `open`, `closed` (business hours at arrival), `contract`,
//! `attachments`, `extended` (under an extended warranty), `warranty_hold`,
//! `ineligible` (a `[[mailbox]]` rule refused the sender), `quota_exhausted`,
//! `unsupported_version`, `unknown_version` (a version the `[versions]` list lacks), `quota_unsold` (a sold allowance the customer has none of), `missing`, `rma_issued` (the ticket has an RMA code), and `key=value` forms: `mailbox=rma`,
//! `tier=gold|silver`, `severity=1`, `severity<=2`, `plan=onsite`,
//! `topic=refund`, `warranty=expired`, `fact=company` (`fact=company,tax_id`:
//! both), `past=<deadline id>`
//! (the deadline was computed and has passed), `has=<deadline id>` (it was
//! computed: its inputs, such as a ship date, were known), `language=ja`. A leading `!` negates; `|` separates alternatives.

mod compile;
mod conditions;
mod evaluate;
mod lifecycle;
mod raw;
mod rma;
#[cfg(test)]
mod tests;

pub use evaluate::*;
pub use lifecycle::*;
pub use raw::*;
pub use rma::*;

use crate::calendar::{Calendar, CalendarSpec};
use crate::contracts::{ContractMatch, ContractOut};
use crate::diag::Report;
use crate::model::{Language, QuotaUse, Role};
use crate::warranty::{self, Warranty, WarrantySpec, WarrantyStatus};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use conditions::{Cond, When, parse_cond};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

/// The canonical facts a request can carry.
pub const FACTS: &[&str] = &[
    "serial",
    "invoice",
    "tax_id",
    "company",
    "product",
    "version",
    "os",
    "description",
];

/// The name of a fact as the customer reads it.
pub fn fact_name(fact: &str, lang: Language) -> &'static str {
    match (fact, lang) {
        ("serial", Language::En) => "the product's serial number",
        ("serial", Language::Ja) => "製品のシリアル番号",
        ("serial", Language::Es) => "el número de serie del producto",
        ("invoice", Language::En) => "proof of purchase (invoice number or a copy)",
        ("invoice", Language::Ja) => "購入証明（請求書番号または納品書の写し）",
        ("invoice", Language::Es) => "el número de factura o una copia de la factura",
        ("tax_id", Language::En) => "your company's tax ID",
        ("tax_id", Language::Ja) => "法人番号",
        ("tax_id", Language::Es) => "el CIF de su empresa",
        ("company", Language::En) => "your company's name",
        ("company", Language::Ja) => "会社名",
        ("company", Language::Es) => "el nombre de su empresa",
        ("product", Language::En) => "the product concerned",
        ("product", Language::Ja) => "対象製品名",
        ("product", Language::Es) => "el producto afectado",
        ("version", Language::En) => "the software version",
        ("version", Language::Ja) => "ソフトウェアのバージョン",
        ("version", Language::Es) => "la versión del software",
        ("os", Language::En) => "the operating system",
        ("os", Language::Ja) => "オペレーティングシステム",
        ("os", Language::Es) => "el sistema operativo",
        (_, Language::En) => "a description of the problem",
        (_, Language::Ja) => "問題の詳しい内容",
        (_, Language::Es) => "una descripción del problema",
    }
}

pub use crate::model::Span;

impl Span {
    pub fn parse(s: &str) -> Result<Span, String> {
        let s = s.trim();
        let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
        let (n, unit) = s.split_at(digits);
        let n: i64 = n
            .parse()
            .map_err(|_| format!("`{s}` is not a duration such as 8h, 30d, 2mo, 3y or 5bd"))?;
        let small = |n: i64| u32::try_from(n).map_err(|_| format!("`{s}` is too long"));
        Ok(match unit {
            "m" => Span::Minutes(n),
            "h" => Span::Minutes(n * 60),
            "d" => Span::Days(n),
            "w" => Span::Days(n * 7),
            "mo" => Span::Months(small(n)?),
            "y" => Span::Months(small(n * 12)?),
            "bd" => Span::BusinessDays(small(n)?),
            _ => {
                return Err(format!(
                    "`{s}` is not a duration such as 8h, 30d, 2mo, 3y or 5bd"
                ));
            }
        })
    }
}

/// Wall-clock arithmetic in `zone`: days and months move the local date and keep the local time.
fn add_calendar(zone: Tz, t: DateTime<Utc>, span: Span, cal: &Calendar) -> DateTime<Utc> {
    let local = t.with_timezone(&zone).naive_local();
    let moved = match span {
        Span::Minutes(m) => return t + Duration::minutes(m),
        Span::Days(d) => local + Duration::days(d),
        Span::Months(m) => local.checked_add_months(Months::new(m)).unwrap_or(local),
        Span::BusinessDays(n) => {
            let d = cal.add_business_days(t, n);
            d.and_time(local.time())
        }
    };
    resolve(zone, moved)
}

fn resolve(zone: Tz, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        // In a skipped hour: the same wall time an hour later exists.
        chrono::LocalResult::None => resolve(zone, local + Duration::hours(1)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    Business,
    #[serde(rename = "24x7")]
    AllHours,
    Calendar,
}

fn clock_kind(s: &str) -> Result<ClockKind, String> {
    match s {
        "business" => Ok(ClockKind::Business),
        "24x7" => Ok(ClockKind::AllHours),
        "calendar" => Ok(ClockKind::Calendar),
        _ => Err(format!("clock `{s}` is business, 24x7 or calendar")),
    }
}

#[derive(Debug, Clone)]
struct Topic {
    id: String,
    rule: Option<String>,
    re: Regex,
    not: Option<Regex>,
}

impl Topic {
    /// Whether `text` is about this topic: one of its words outside every
    /// phrase of `not`.
    fn matches(&self, text: &str) -> bool {
        match &self.not {
            Some(not) if not.is_match(text) => self.re.is_match(&not.replace_all(text, " ")),
            _ => self.re.is_match(text),
        }
    }
}

#[derive(Debug, Clone)]
struct Sla {
    rule: String,
    when: When,
    within: Span,
    clock: ClockKind,
    internal: bool,
}

#[derive(Debug, Clone)]
struct Escalation {
    rule: String,
    severity: u8,
    after: Span,
    to: String,
}

#[derive(Debug, Clone)]
struct Require {
    rule: String,
    when: When,
    facts: Vec<String>,
    recommended: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    Arrival,
    /// When ticketd answers the mail (an RMA code issued with the
    /// acknowledgement counts from then, not from a late arrival).
    Acknowledged,
    ShippedOn,
    PurchasedOn,
    TicketCreated,
}

#[derive(Debug, Clone)]
struct DeadlineRule {
    id: String,
    rule: String,
    when: When,
    from: From,
    after: Span,
    clock: ClockKind,
    month_start: bool,
    remind_before: Option<Span>,
}

#[derive(Debug, Clone)]
struct Promise {
    id: String,
    rule: String,
    when: When,
    cutoff: Option<NaiveTime>,
    before: u32,
    after: u32,
    not_before: Option<String>,
}

#[derive(Debug, Clone)]
struct Quota {
    id: String,
    rule: String,
    when: When,
    free_when: When,
    limit: u32,
    yearly: bool,
    limit_from_contract: bool,
    sold: bool,
}

/// A `[[route]]` (its `to`) or a `[[staff]]` note (its `text`): a sentence under conditions.
#[derive(Debug, Clone)]
struct Line {
    rule: String,
    when: When,
    text: String,
}

#[derive(Debug, Clone)]
struct MailboxRule {
    rule: String,
    mailbox: String,
    requires: When,
}

#[derive(Debug, Clone)]
struct Release {
    product: String,
    version: Vec<u32>,
    version_text: String,
    released_on: NaiveDate,
}

#[derive(Debug, Clone)]
struct Versions {
    rule: String,
    window: Span,
    releases: Vec<Release>,
}

#[derive(Debug, Clone)]
struct Notice {
    id: String,
    rule: String,
    when: When,
    text: BTreeMap<Language, String>,
}

#[derive(Debug, Clone)]
struct FactPatterns {
    extra: BTreeMap<String, Vec<Regex>>,
}

/// A pack's rules, compiled.
#[derive(Debug, Clone)]
pub struct Policy {
    calendar: Calendar,
    calendar_rules: Vec<String>,
    always: Calendar,
    warranty: WarrantySpec,
    warranty_rules: Vec<String>,
    default_tier: String,
    severity_default: u8,
    severity_levels: u8,
    severity_rules: Vec<String>,
    severity_mailbox: BTreeMap<String, u8>,
    critical: Option<Regex>,
    topics: Vec<Topic>,
    facts: FactPatterns,
    sla: Vec<Sla>,
    escalations: Vec<Escalation>,
    requires: Vec<Require>,
    deadlines: Vec<DeadlineRule>,
    promises: Vec<Promise>,
    quotas: Vec<Quota>,
    routes: Vec<Line>,
    staff: Vec<Line>,
    mailbox_rules: Vec<MailboxRule>,
    versions: Option<Versions>,
    notices: Vec<Notice>,
    language_rules: Vec<String>,
    /// Replies only in the pack's language (`[language] only`).
    language_only: bool,
    rma: Option<RmaSpec>,
    lifecycle: Lifecycle,
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

/// A keyword list as one case-insensitive regex; words in scripts without
/// spaces match anywhere, others as whole words.
fn words_regex(words: &[String]) -> Result<Regex, String> {
    let alts: Vec<String> = words
        .iter()
        .filter(|w| !w.trim().is_empty())
        .map(|w| {
            let e = regex::escape(w.trim())
                .replace("\\ ", r"\s+")
                .replace(' ', r"\s+");
            if w.chars()
                .all(|c| c.is_ascii() || c.is_alphabetic() && !is_cjk(c))
            {
                format!(r"\b{e}\b")
            } else {
                e
            }
        })
        .collect();
    if alts.is_empty() {
        return Err("the word list is empty".into());
    }
    regex::RegexBuilder::new(&format!("(?i)(?:{})", alts.join("|")))
        .size_limit(1 << 22)
        .build()
        .map_err(|e| e.to_string())
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

fn parse_version(s: &str) -> Option<Vec<u32>> {
    let v: Option<Vec<u32>> = s.split('.').map(|p| p.parse().ok()).collect();
    v.filter(|v| !v.is_empty())
}

fn period_start(q: &Quota, c: &ContractMatch, today: NaiveDate) -> NaiveDate {
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

fn valid_rule_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() >= 4
        && id.split_once('-').is_some_and(|(a, n)| {
            a.len() >= 2
                && a.bytes().all(|c| c.is_ascii_uppercase())
                && !n.is_empty()
                && n.bytes().all(|c| c.is_ascii_digit())
        })
}
