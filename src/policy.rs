//! The vendor policy engine: a pack's rules, compiled from TOML, applied to one request at its arrival. Pure: no I/O, no clock.
//!
//! A pack describes its vendor with a few kinds of entries, each carrying the
//! rule ID it implements (`rule = "NX-03"`):
//!
//! - `[calendar]`: opening hours, holidays, closures ([`crate::calendar`]).
//! - `[warranty]`: standard terms, model series, extensions ([`crate::warranty`]).
//! - `[tiers]`, `[severity]`: how the tier and the severity are read.
//! - `[[topic]]`: named keyword sets in every language (out of scope, refund, …).
//! - `[facts]`: extra patterns for the canonical facts a request can carry.
//! - `[[sla]]`: first-response times by condition, on the business or the 24×7 clock.
//! - `[[escalation]]`: steps by severity, on the calendar clock from the report.
//! - `[[require]]`: the facts a request must carry; what is missing is asked for.
//! - `[[deadline]]`, `[[promise]]`: dates computed from the request or the contract.
//! - `[[quota]]`: counted allowances (tickets a year, on-site visits a term).
//! - `[[route]]`, `[[staff]]`: who handles it, and what staff must decide.
//! - `[[mailbox]]`: who may use a mailbox (24x7@).
//! - `[versions]`: release history, for how long a superseded version is supported.
//! - `[[notice]]`: the sentences the acknowledgement carries, in en, ja and es.
//!
//! Entries are switched on by `when`, a list of conditions that must all hold:
//! `new`, `followup`, `open`, `closed` (business hours at arrival), `contract`,
//! `attachments`, `extended` (under an extended warranty), `warranty_hold`,
//! `ineligible` (a `[[mailbox]]` rule refused the sender), `quota_exhausted`,
//! `unsupported_version`, `missing`, and `key=value` forms: `mailbox=rma`,
//! `tier=gold|silver`, `severity=1`, `severity<=2`, `plan=onsite`,
//! `topic=refund`, `warranty=expired`, `fact=company` (`fact=company,tax_id`:
//! both), `past=<deadline id>`
//! (the deadline was computed and has passed), `has=<deadline id>` (it was
//! computed: its inputs, such as a ship date, were known), `language=ja`. A leading `!` negates; `|` separates alternatives.

use crate::calendar::{Calendar, CalendarSpec};
use crate::contracts::{ContractMatch, ContractOut};
use crate::diag::Report;
use crate::model::{Language, QuotaUse, Role};
use crate::warranty::{self, Warranty, WarrantySpec, WarrantyStatus};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

// ----- the TOML shape ---------------------------------------------------------

/// The policy part of a pack file; `pack` moves these fields here from its own shape.
#[derive(Debug, Default)]
pub struct RawPolicy {
    pub calendar: Option<Spanned<CalendarSpec>>,
    pub warranty: Option<Spanned<WarrantySpec>>,
    pub tiers: Option<Spanned<RawTiers>>,
    pub severity: Option<Spanned<RawSeverity>>,
    pub topic: Vec<Spanned<RawTopic>>,
    pub facts: BTreeMap<String, Spanned<Vec<String>>>,
    pub sla: Vec<Spanned<RawSla>>,
    pub escalation: Vec<Spanned<RawEscalation>>,
    pub require: Vec<Spanned<RawRequire>>,
    pub deadline: Vec<Spanned<RawDeadline>>,
    pub promise: Vec<Spanned<RawPromise>>,
    pub quota: Vec<Spanned<RawQuota>>,
    pub route: Vec<Spanned<RawRoute>>,
    pub staff: Vec<Spanned<RawStaff>>,
    pub mailbox: Vec<Spanned<RawMailboxRule>>,
    pub versions: Option<Spanned<RawVersions>>,
    pub notice: Vec<Spanned<RawNotice>>,
    pub language: Option<Spanned<RawLanguage>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTiers {
    pub known: Vec<String>,
    pub default: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeverity {
    #[serde(default)]
    pub rules: Vec<String>,
    pub default: u8,
    #[serde(default = "four")]
    pub levels: u8,
    /// Severity implied by the mailbox a mail arrives in, by role or name.
    #[serde(default)]
    pub mailbox: BTreeMap<String, u8>,
    /// Phrases that mean the most severe level ("system down").
    #[serde(default)]
    pub critical: Vec<String>,
}

fn four() -> u8 {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopic {
    pub id: String,
    #[serde(default)]
    pub rule: Option<String>,
    pub words: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSla {
    pub rule: String,
    #[serde(default)]
    pub when: Vec<String>,
    pub within: String,
    #[serde(default = "business")]
    pub clock: String,
}

fn business() -> String {
    "business".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    pub rule: String,
    pub severity: u8,
    pub after: String,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequire {
    pub rule: String,
    #[serde(default)]
    pub when: Vec<String>,
    pub facts: Vec<String>,
    /// Asked for, but the ticket does not wait on them.
    #[serde(default)]
    pub recommended: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeadline {
    pub id: String,
    pub rule: String,
    #[serde(default)]
    pub when: Vec<String>,
    #[serde(default = "arrival")]
    pub from: String,
    pub after: String,
    #[serde(default = "calendar_clock")]
    pub clock: String,
    #[serde(default)]
    pub align: Option<String>,
    #[serde(default)]
    pub remind_before: Option<String>,
}

fn arrival() -> String {
    "arrival".into()
}
fn calendar_clock() -> String {
    "calendar".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPromise {
    pub id: String,
    pub rule: String,
    #[serde(default)]
    pub when: Vec<String>,
    /// Local time of day; a request before it on a business day gets `before` business days, otherwise `after`.
    #[serde(default)]
    pub cutoff: Option<String>,
    pub before: u32,
    #[serde(default)]
    pub after: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub id: String,
    pub rule: String,
    #[serde(default)]
    pub when: Vec<String>,
    /// Conditions under which the request is free and uses nothing.
    #[serde(default)]
    pub free_when: Vec<String>,
    pub limit: u32,
    /// `year` (contract years from the purchase date) or `term` (the whole contract).
    pub period: String,
    /// Take the limit from the contract's `tickets_per_year` when it has one.
    #[serde(default)]
    pub limit_from_contract: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub rule: String,
    #[serde(default)]
    pub when: Vec<String>,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaff {
    pub rule: String,
    #[serde(default)]
    pub when: Vec<String>,
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMailboxRule {
    pub rule: String,
    pub mailbox: String,
    pub requires: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVersions {
    pub rule: String,
    pub supported_after_successor: String,
    pub release: Vec<RawRelease>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelease {
    pub product: String,
    pub version: String,
    pub released_on: toml::value::Datetime,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotice {
    pub id: String,
    pub rule: String,
    #[serde(default)]
    pub when: Vec<String>,
    pub text: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLanguage {
    pub rules: Vec<String>,
}

// ----- compiled -----------------------------------------------------------------

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

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Flag(&'static str),
    Mailbox(Vec<String>),
    Tier(Vec<String>),
    Severity(u8),
    SeverityAtMost(u8),
    Plan(Vec<String>),
    Topic(Vec<String>),
    Warranty(Vec<WarrantyStatus>),
    Fact(Vec<String>),
    Past(String),
    Has(String),
    Language(Vec<String>),
}

#[derive(Debug, Clone, Default)]
struct When(Vec<(bool, Vec<Cond>)>);

const FLAGS: &[&str] = &[
    "new",
    "followup",
    "open",
    "closed",
    "contract",
    "attachments",
    "extended",
    "warranty_hold",
    "ineligible",
    "quota_exhausted",
    "unsupported_version",
    "missing",
];

/// One entry of a `when` list: `|` separates alternatives, and a bare value
/// takes the key before it (`tier=gold|silver`, `mailbox=rma|topic=warranty`).
fn parse_cond(
    s: &str,
    deadlines: &[String],
    topics: &[String],
) -> Result<(bool, Vec<Cond>), String> {
    let (neg, body) = match s.strip_prefix('!') {
        Some(b) => (true, b.trim()),
        None => (false, s.trim()),
    };
    let mut alts = Vec::new();
    let mut key: Option<&str> = None;
    for part in body.split('|').map(str::trim) {
        let full = if part.contains('=') || FLAGS.contains(&part) {
            key = part.split_once('=').map(|(k, _)| k);
            part.to_string()
        } else if let Some(k) = key {
            format!("{k}={part}")
        } else {
            part.to_string()
        };
        alts.push(parse_one(&full, s, deadlines, topics)?);
    }
    Ok((neg, alts))
}

fn parse_one(body: &str, s: &str, deadlines: &[String], topics: &[String]) -> Result<Cond, String> {
    let list = |v: &str| {
        v.split('|')
            .map(|x| x.trim().to_string())
            .collect::<Vec<_>>()
    };
    if let Some(v) = body.strip_prefix("severity<=") {
        let n = v
            .parse()
            .map_err(|_| format!("`{s}`: severity must be a number"))?;
        return Ok(Cond::SeverityAtMost(n));
    }
    let cond = match body.split_once('=') {
        None => match FLAGS.iter().find(|f| **f == body) {
            Some(f) => Cond::Flag(f),
            None => {
                return Err(format!(
                    "condition `{s}` is not known (flags: {}; or key=value with mailbox, tier, severity, plan, topic, warranty, fact, past, has, language)",
                    FLAGS.join(", ")
                ));
            }
        },
        Some(("mailbox", v)) => Cond::Mailbox(list(v)),
        Some(("tier", v)) => Cond::Tier(list(v)),
        Some(("severity", v)) => Cond::Severity(
            v.parse()
                .map_err(|_| format!("`{s}`: severity must be a number"))?,
        ),
        Some(("plan", v)) => Cond::Plan(list(v)),
        Some(("topic", v)) => {
            let l = list(v);
            if let Some(t) = l.iter().find(|t| !topics.contains(t)) {
                return Err(format!("`{s}`: no [[topic]] has id `{t}`"));
            }
            Cond::Topic(l)
        }
        Some(("warranty", v)) => Cond::Warranty(
            list(v)
                .iter()
                .map(|w| match w.as_str() {
                    "active" => Ok(WarrantyStatus::Active),
                    "expired" => Ok(WarrantyStatus::Expired),
                    "unknown" => Ok(WarrantyStatus::Unknown),
                    _ => Err(format!("`{s}`: warranty is active, expired or unknown")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(("fact", v)) => {
            // `fact=company,tax_id`: all of them.
            let l: Vec<String> = v.split(',').map(|x| x.trim().to_string()).collect();
            if let Some(f) = l.iter().find(|f| !FACTS.contains(&f.as_str())) {
                return Err(format!("`{s}`: `{f}` is not a fact ({})", FACTS.join(", ")));
            }
            Cond::Fact(l)
        }
        Some(("past", v)) => {
            if !deadlines.iter().any(|d| d == v) {
                return Err(format!("`{s}`: no earlier [[deadline]] has id `{v}`"));
            }
            Cond::Past(v.to_string())
        }
        Some(("has", v)) => {
            if !deadlines.iter().any(|d| d == v) {
                return Err(format!("`{s}`: no earlier [[deadline]] has id `{v}`"));
            }
            Cond::Has(v.to_string())
        }
        Some(("language", v)) => Cond::Language(list(v)),
        Some((k, _)) => return Err(format!("condition `{s}`: unknown key `{k}`")),
    };
    Ok(cond)
}

/// A length of time as packs write it: `90m`, `8h`, `30d`, `2w`, `2mo`, `3y`, or `5bd` (business days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Minutes(i64),
    Days(i64),
    Months(u32),
    BusinessDays(u32),
}

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
}

#[derive(Debug, Clone)]
struct Sla {
    rule: String,
    when: When,
    within: Span,
    clock: ClockKind,
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

impl Policy {
    /// A pack without rules: open around the clock, nothing required.
    pub fn none(zone: Tz) -> Policy {
        Policy {
            calendar: Calendar::always_open(zone),
            calendar_rules: vec![],
            always: Calendar::always_open(zone),
            warranty: WarrantySpec::default(),
            warranty_rules: vec![],
            default_tier: "standard".into(),
            severity_default: 3,
            severity_levels: 4,
            severity_rules: vec![],
            severity_mailbox: BTreeMap::new(),
            critical: None,
            topics: vec![],
            facts: FactPatterns {
                extra: BTreeMap::new(),
            },
            sla: vec![],
            escalations: vec![],
            requires: vec![],
            deadlines: vec![],
            promises: vec![],
            quotas: vec![],
            routes: vec![],
            staff: vec![],
            mailbox_rules: vec![],
            versions: None,
            notices: vec![],
            language_rules: vec![],
        }
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Compiles the policy entries, reporting each problem with its line.
    pub(crate) fn compile(r: &mut Report<'_>, raw: RawPolicy, zone: Tz) -> Policy {
        let mut p = Policy::none(zone);
        let rule_ok = |r: &mut Report<'_>, at: usize, id: &str| {
            if !valid_rule_id(id) {
                r.at(at, format!("rule `{id}` is not a rule ID such as NX-03"));
            }
        };
        if let Some(c) = raw.calendar {
            let at = c.span().start;
            let spec = c.into_inner();
            for id in &spec.rules {
                rule_ok(r, at, id);
            }
            match Calendar::build(zone, &spec) {
                Ok(cal) => p.calendar = cal,
                Err(es) => {
                    for e in es {
                        r.at(at, format!("calendar: {e}"));
                    }
                }
            }
            p.calendar_rules = spec.rules;
        }
        if let Some(w) = raw.warranty {
            let at = w.span().start;
            let spec = w.into_inner();
            for id in &spec.rules {
                rule_ok(r, at, id);
            }
            if let Err(es) = warranty::validate(&spec) {
                for e in es {
                    r.at(at, format!("warranty: {e}"));
                }
            }
            p.warranty_rules = spec.rules.clone();
            p.warranty = spec;
        }
        if let Some(t) = raw.tiers {
            let at = t.span().start;
            let t = t.into_inner();
            if !t.known.contains(&t.default) {
                r.at(
                    at,
                    format!("tiers: default `{}` is not in `known`", t.default),
                );
            }
            p.default_tier = t.default.to_ascii_lowercase();
        }
        if let Some(s) = raw.severity {
            let at = s.span().start;
            let s = s.into_inner();
            for id in &s.rules {
                rule_ok(r, at, id);
            }
            if s.default == 0 || s.default > s.levels {
                r.at(
                    at,
                    format!("severity: default {} is not in 1..={}", s.default, s.levels),
                );
            }
            p.severity_default = s.default;
            p.severity_levels = s.levels;
            p.severity_rules = s.rules;
            p.severity_mailbox = s.mailbox;
            if !s.critical.is_empty() {
                match words_regex(&s.critical) {
                    Ok(re) => p.critical = Some(re),
                    Err(e) => r.at(at, format!("severity.critical: {e}")),
                }
            }
        }
        for t in raw.topic {
            let at = t.span().start;
            let t = t.into_inner();
            if let Some(id) = &t.rule {
                rule_ok(r, at, id);
            }
            match words_regex(&t.words) {
                Ok(re) => p.topics.push(Topic {
                    id: t.id,
                    rule: t.rule,
                    re,
                }),
                Err(e) => r.at(at, format!("topic `{}`: {e}", t.id)),
            }
        }
        for (fact, pats) in raw.facts {
            let at = pats.span().start;
            if !FACTS.contains(&fact.as_str()) {
                r.at(
                    at,
                    format!("facts.{fact}: not a fact ({})", FACTS.join(", ")),
                );
                continue;
            }
            let mut res = Vec::new();
            for pat in pats.get_ref() {
                match regex::RegexBuilder::new(pat).size_limit(1 << 20).build() {
                    Ok(re) => res.push(re),
                    Err(e) => r.at(at, format!("facts.{fact}: pattern `{pat}`: {e}")),
                }
            }
            p.facts.extra.insert(fact, res);
        }
        let topics: Vec<String> = p.topics.iter().map(|t| t.id.clone()).collect();
        let mut deadline_ids: Vec<String> = Vec::new();
        let when = |r: &mut Report<'_>, at: usize, list: &[String], deadlines: &[String]| {
            let mut w = When::default();
            for c in list {
                match parse_cond(c, deadlines, &topics) {
                    Ok(c) => w.0.push(c),
                    Err(e) => r.at(at, e),
                }
            }
            w
        };
        let span = |r: &mut Report<'_>, at: usize, what: &str, s: &str| {
            Span::parse(s).unwrap_or_else(|e| {
                r.at(at, format!("{what}: {e}"));
                Span::Minutes(0)
            })
        };
        let clock = |r: &mut Report<'_>, at: usize, s: &str| {
            clock_kind(s).unwrap_or_else(|e| {
                r.at(at, e);
                ClockKind::Business
            })
        };
        for s in raw.sla {
            let at = s.span().start;
            let s = s.into_inner();
            rule_ok(r, at, &s.rule);
            p.sla.push(Sla {
                when: when(r, at, &s.when, &deadline_ids),
                within: span(r, at, "sla.within", &s.within),
                clock: clock(r, at, &s.clock),
                rule: s.rule,
            });
        }
        for e in raw.escalation {
            let at = e.span().start;
            let e = e.into_inner();
            rule_ok(r, at, &e.rule);
            p.escalations.push(Escalation {
                after: span(r, at, "escalation.after", &e.after),
                severity: e.severity,
                to: e.to,
                rule: e.rule,
            });
        }
        for q in raw.require {
            let at = q.span().start;
            let q = q.into_inner();
            rule_ok(r, at, &q.rule);
            for f in q.facts.iter().chain(&q.recommended) {
                if !FACTS.contains(&f.as_str()) {
                    r.at(
                        at,
                        format!("require: `{f}` is not a fact ({})", FACTS.join(", ")),
                    );
                }
            }
            p.requires.push(Require {
                when: when(r, at, &q.when, &deadline_ids),
                facts: q.facts,
                recommended: q.recommended,
                rule: q.rule,
            });
        }
        for d in raw.deadline {
            let at = d.span().start;
            let d = d.into_inner();
            rule_ok(r, at, &d.rule);
            let from = match d.from.as_str() {
                "arrival" => From::Arrival,
                "shipped_on" => From::ShippedOn,
                "purchased_on" => From::PurchasedOn,
                "ticket_created" => From::TicketCreated,
                other => {
                    r.at(
                        at,
                        format!(
                            "deadline `{}`: from `{other}` is arrival, shipped_on, purchased_on or ticket_created",
                            d.id
                        ),
                    );
                    From::Arrival
                }
            };
            let month_start = match d.align.as_deref() {
                None => false,
                Some("month_start") => true,
                Some(other) => {
                    r.at(
                        at,
                        format!("deadline `{}`: align `{other}` is month_start", d.id),
                    );
                    false
                }
            };
            p.deadlines.push(DeadlineRule {
                when: when(r, at, &d.when, &deadline_ids),
                from,
                after: span(r, at, "deadline.after", &d.after),
                clock: clock(r, at, &d.clock),
                month_start,
                remind_before: d
                    .remind_before
                    .as_deref()
                    .map(|s| span(r, at, "deadline.remind_before", s)),
                rule: d.rule,
                id: d.id.clone(),
            });
            deadline_ids.push(d.id);
        }
        for pr in raw.promise {
            let at = pr.span().start;
            let pr = pr.into_inner();
            rule_ok(r, at, &pr.rule);
            let cutoff = pr.cutoff.as_deref().and_then(|c| {
                NaiveTime::parse_from_str(c, "%H:%M")
                    .map_err(|_| {
                        r.at(
                            at,
                            format!("promise `{}`: cutoff `{c}` is not HH:MM", pr.id),
                        )
                    })
                    .ok()
            });
            p.promises.push(Promise {
                when: when(r, at, &pr.when, &deadline_ids),
                cutoff,
                before: pr.before,
                after: pr.after.unwrap_or(pr.before),
                rule: pr.rule,
                id: pr.id,
            });
        }
        for q in raw.quota {
            let at = q.span().start;
            let q = q.into_inner();
            rule_ok(r, at, &q.rule);
            let yearly = match q.period.as_str() {
                "year" => true,
                "term" => false,
                other => {
                    r.at(
                        at,
                        format!("quota `{}`: period `{other}` is year or term", q.id),
                    );
                    true
                }
            };
            p.quotas.push(Quota {
                when: when(r, at, &q.when, &[]),
                free_when: when(r, at, &q.free_when, &[]),
                limit: q.limit,
                yearly,
                limit_from_contract: q.limit_from_contract,
                rule: q.rule,
                id: q.id,
            });
        }
        let routes = raw.route.into_iter().map(|x| {
            let at = x.span().start;
            let x = x.into_inner();
            (at, x.rule, x.when, x.to)
        });
        let staff = raw.staff.into_iter().map(|x| {
            let at = x.span().start;
            let x = x.into_inner();
            (at, x.rule, x.when, x.text)
        });
        for (is_route, (at, rule, w, text)) in
            routes.map(|x| (true, x)).chain(staff.map(|x| (false, x)))
        {
            rule_ok(r, at, &rule);
            let line = Line {
                when: when(r, at, &w, &deadline_ids),
                text,
                rule,
            };
            if is_route {
                p.routes.push(line);
            } else {
                p.staff.push(line);
            }
        }
        for m in raw.mailbox {
            let at = m.span().start;
            let m = m.into_inner();
            rule_ok(r, at, &m.rule);
            p.mailbox_rules.push(MailboxRule {
                requires: when(r, at, &m.requires, &[]),
                mailbox: m.mailbox,
                rule: m.rule,
            });
        }
        if let Some(v) = raw.versions {
            let at = v.span().start;
            let v = v.into_inner();
            rule_ok(r, at, &v.rule);
            let mut releases = Vec::new();
            for rel in v.release {
                let date = rel.released_on.date.and_then(|d| {
                    NaiveDate::from_ymd_opt(d.year as i32, d.month as u32, d.day as u32)
                });
                match (parse_version(&rel.version), date) {
                    (Some(version), Some(released_on)) => releases.push(Release {
                        product: rel.product.to_lowercase(),
                        version,
                        version_text: rel.version,
                        released_on,
                    }),
                    _ => r.at(
                        at,
                        format!(
                            "versions: release `{} {}` needs a dotted version and a date",
                            rel.product, rel.version
                        ),
                    ),
                }
            }
            p.versions = Some(Versions {
                window: span(
                    r,
                    at,
                    "versions.supported_after_successor",
                    &v.supported_after_successor,
                ),
                releases,
                rule: v.rule,
            });
        }
        for n in raw.notice {
            let at = n.span().start;
            let n = n.into_inner();
            rule_ok(r, at, &n.rule);
            let mut text = BTreeMap::new();
            for lang in Language::ALL {
                match n.text.get(lang.as_str()) {
                    Some(t) => {
                        if let Err(e) = handlebars::Template::compile(t) {
                            r.at(
                                at,
                                format!("notice `{}`: text.{}: {e}", n.id, lang.as_str()),
                            );
                        }
                        text.insert(lang, t.clone());
                    }
                    None => r.at(
                        at,
                        format!(
                            "notice `{}`: text.{} is missing (every notice is written in en, ja and es)",
                            n.id,
                            lang.as_str()
                        ),
                    ),
                }
            }
            for k in n.text.keys() {
                if Language::parse(k).is_none() {
                    r.at(
                        at,
                        format!("notice `{}`: text.{k} is not en, ja or es", n.id),
                    );
                }
            }
            p.notices.push(Notice {
                when: when(r, at, &n.when, &deadline_ids),
                text,
                rule: n.rule,
                id: n.id,
            });
        }
        if let Some(l) = raw.language {
            let at = l.span().start;
            let l = l.into_inner();
            for id in &l.rules {
                rule_ok(r, at, id);
            }
            p.language_rules = l.rules;
        }
        p
    }

    /// Every rule ID the pack names.
    pub fn rule_ids(&self) -> BTreeSet<String> {
        let mut s: BTreeSet<String> = BTreeSet::new();
        s.extend(self.calendar_rules.iter().cloned());
        s.extend(self.warranty_rules.iter().cloned());
        s.extend(self.severity_rules.iter().cloned());
        s.extend(self.language_rules.iter().cloned());
        s.extend(self.topics.iter().filter_map(|t| t.rule.clone()));
        s.extend(self.sla.iter().map(|x| x.rule.clone()));
        s.extend(self.escalations.iter().map(|x| x.rule.clone()));
        s.extend(self.requires.iter().map(|x| x.rule.clone()));
        s.extend(self.deadlines.iter().map(|x| x.rule.clone()));
        s.extend(self.promises.iter().map(|x| x.rule.clone()));
        s.extend(self.quotas.iter().map(|x| x.rule.clone()));
        s.extend(self.routes.iter().map(|x| x.rule.clone()));
        s.extend(self.staff.iter().map(|x| x.rule.clone()));
        s.extend(self.mailbox_rules.iter().map(|x| x.rule.clone()));
        s.extend(self.versions.iter().map(|x| x.rule.clone()));
        s.extend(self.notices.iter().map(|x| x.rule.clone()));
        s
    }

    /// The quota counters a request would read: (quota id, period start).
    /// The caller counts what each has used and passes it back in [`Request::quota_used`].
    pub fn quota_periods(
        &self,
        contract: Option<&ContractMatch>,
        arrival: DateTime<Utc>,
    ) -> Vec<(String, NaiveDate)> {
        let Some(c) = contract else { return vec![] };
        let today = arrival.with_timezone(&self.calendar.zone()).date_naive();
        self.quotas
            .iter()
            .map(|q| (q.id.clone(), period_start(q, c, today)))
            .collect()
    }
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

// ----- evaluation -----------------------------------------------------------------

/// What the engine is told about one request.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub pack: &'a str,
    pub arrival: DateTime<Utc>,
    pub mailbox_name: &'a str,
    pub mailbox_role: Role,
    /// Subject and the new text of the mail.
    pub text: &'a str,
    pub attachments: &'a [String],
    pub serials: &'a [String],
    pub invoices: &'a [String],
    pub tax_ids: &'a [String],
    pub contract: Option<&'a ContractMatch>,
    pub language: Language,
    /// The ticket a follow-up belongs to: when it was opened.
    pub ticket_created: Option<DateTime<Utc>>,
    /// Facts the ticket's earlier mail already carried.
    pub known_facts: &'a [String],
    /// Uses so far per quota id, in the period [`Policy::quota_periods`] named.
    pub quota_used: &'a BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EscalationStep {
    pub at: DateTime<Utc>,
    pub to: String,
    pub after: String,
    pub rule: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadlineOut {
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remind_at: Option<DateTime<Utc>>,
    pub rule: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromiseOut {
    pub by: NaiveDate,
    pub rule: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteOut {
    pub to: String,
    pub rule: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaffNote {
    pub rule: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoticeOut {
    pub id: String,
    pub rule: String,
    /// A handlebars template, rendered with the reply's data.
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionOut {
    pub product: String,
    pub version: String,
    pub supported: bool,
    pub supported_until: Option<NaiveDate>,
}

/// What the rules say about one request.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub pack: String,
    pub rules: Vec<String>,
    pub business_open: bool,
    pub clock: ClockKind,
    /// The pack's zone, in which [`Evaluation::view`] shows the instants.
    #[serde(skip)]
    pub zone: Tz,
    pub clock_starts_at: DateTime<Utc>,
    /// The clock starts later than the mail arrived (it came outside business hours).
    pub clock_deferred: bool,
    pub first_response_due: Option<DateTime<Utc>>,
    /// The facts the request (with its ticket's earlier mail) carries.
    pub facts: Vec<String>,
    pub missing: Vec<String>,
    pub missing_names: Vec<String>,
    pub recommended: Vec<String>,
    pub recommended_names: Vec<String>,
    pub waiting_on_customer: bool,
    pub warranty: Warranty,
    pub escalations: Vec<EscalationStep>,
    pub tier: String,
    pub severity: u8,
    pub severity_from: String,
    pub contract: Option<ContractOut>,
    pub topics: Vec<String>,
    pub eligible: bool,
    pub deadlines: BTreeMap<String, DeadlineOut>,
    pub promises: BTreeMap<String, PromiseOut>,
    pub quota: Option<QuotaUse>,
    pub route: Option<RouteOut>,
    pub version: Option<VersionOut>,
    pub staff: Vec<StaffNote>,
    pub notices: Vec<NoticeOut>,
}

struct Ctx<'a> {
    req: &'a Request<'a>,
    new: bool,
    open: bool,
    tier: String,
    severity: u8,
    plans: Vec<String>,
    topics: Vec<String>,
    facts: BTreeSet<&'static str>,
    warranty: WarrantyStatus,
    extended: bool,
    hold: bool,
    ineligible: bool,
    quota_exhausted: bool,
    unsupported_version: bool,
    missing: bool,
    deadlines: BTreeMap<String, DeadlineOut>,
}

impl Ctx<'_> {
    fn holds(&self, w: &When) -> bool {
        w.0.iter()
            .all(|(neg, alts)| alts.iter().any(|c| self.one(c)) != *neg)
    }

    fn one(&self, c: &Cond) -> bool {
        let r = self.req;
        match c {
            Cond::Flag(f) => match *f {
                "new" => self.new,
                "followup" => !self.new,
                "open" => self.open,
                "closed" => !self.open,
                "contract" => r.contract.is_some(),
                "attachments" => !r.attachments.is_empty(),
                "extended" => self.extended,
                "warranty_hold" => self.hold,
                "ineligible" => self.ineligible,
                "quota_exhausted" => self.quota_exhausted,
                "unsupported_version" => self.unsupported_version,
                "missing" => self.missing,
                _ => false,
            },
            Cond::Mailbox(v) => v
                .iter()
                .any(|m| m == r.mailbox_name || m == r.mailbox_role.as_str()),
            Cond::Tier(v) => v.iter().any(|t| t.eq_ignore_ascii_case(&self.tier)),
            Cond::Severity(n) => self.severity == *n,
            Cond::SeverityAtMost(n) => self.severity <= *n,
            Cond::Plan(v) => v.iter().any(|p| self.plans.iter().any(|q| q == p)),
            Cond::Topic(v) => v.iter().any(|t| self.topics.contains(t)),
            Cond::Warranty(v) => v.contains(&self.warranty),
            Cond::Fact(v) => v.iter().all(|f| self.facts.contains(f.as_str())),
            Cond::Past(id) => self.deadlines.get(id).is_some_and(|d| r.arrival > d.at),
            Cond::Has(id) => self.deadlines.contains_key(id),
            Cond::Language(v) => v.iter().any(|l| l == r.language.as_str()),
        }
    }
}

static DEFAULT_FACTS: std::sync::LazyLock<Vec<(&'static str, Regex)>> = std::sync::LazyLock::new(
    || {
        let c = |f: &'static str, p: &str| (f, Regex::new(p).expect("built-in fact pattern"));
        vec![
            c(
                "company",
                r"(?im)^\s*(?:company|organi[sz]ation|empresa|compa[ñn][ií]a|raz[oó]n social|会社名|社名|貴社名)\s*[:：]\s*\S",
            ),
            c(
                "product",
                r"(?im)^\s*(?:product|model|producto|modelo|製品|製品名|型番)\s*[:：]\s*\S",
            ),
            c(
                "version",
                r"(?i)(?:\b(?:version|versi[oó]n|ver\.?|release|rel\.?)\s*[:#]?\s*|\bv|バージョン\s*[:：]?\s*)(\d+(?:\.\d+){1,3})\b",
            ),
            c(
                "os",
                r"(?i)\b(?:windows(?:\s+server)?|linux|red\s*hat|rhel|ubuntu|debian|suse|centos|rocky|alma|z/os|os/390|mvs|z/vm|aix|solaris|hp-ux|macos|os\s*x|freebsd|truenas|vmware|esxi|ibm\s+i)\b|(?im)^\s*(?:os|operating system|sistema operativo|オペレーティングシステム)\s*[:：]\s*\S",
            ),
        ]
    },
);

/// An attached file that is a proof of purchase.
static INVOICE_FILE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(r"(?i)invoice|receipt|factura|recibo|albar[aá]n|請求|領収|納品")
        .expect("invoice file pattern")
});

/// Phrases that mean the most severe level in every pack.
static CRITICAL: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(r"(?i)\bsystem\s+(?:is\s+)?down\b|\bproduction\s+(?:is\s+)?down\b|システム(?:停止|ダウン)|業務停止|\bsistema\s+ca[íi]do\b|\bca[íi]da\s+total\b")
        .expect("critical pattern")
});

static SEVERITY_RE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:severity|sev|severidad|gravedad|prioridad|priority)\s*(?:level\s*|nivel\s*)?[:#=-]?\s*([1-4])\b|(?-i:\bS([1-4])\b)|(?:重大度|緊急度|深刻度|優先度)\s*[:：]?\s*([1-4１-４])",
    )
    .expect("severity pattern")
});

fn read_severity(text: &str) -> Option<u8> {
    let c = SEVERITY_RE.captures(text)?;
    let d = (1..=3).find_map(|i| c.get(i))?.as_str();
    let ch = d.chars().next()?;
    let n = match ch {
        '１'..='４' => ch as u32 - '１' as u32 + 1,
        _ => ch.to_digit(10)?,
    };
    Some(n as u8)
}

/// Whether the text describes anything beyond its identifiers.
fn has_description(text: &str) -> bool {
    let mut letters = 0usize;
    let mut cjk = 0usize;
    let mut words = 0usize;
    for w in text.split_whitespace() {
        if w.chars().filter(|c| c.is_alphabetic()).count() >= 2 {
            words += 1;
        }
        for c in w.chars() {
            if is_cjk(c) {
                cjk += 1;
            } else if c.is_alphabetic() {
                letters += 1;
            }
        }
        if words >= 12 || cjk >= 20 || (words >= 8 && letters >= 40) {
            return true;
        }
    }
    false
}

impl Evaluation {
    /// The evaluation as templates and `explain` show it: each instant as
    /// RFC 3339 with the pack's offset, and beside the clock start, the first
    /// response and each deadline a `_local`/`local` text in the pack's zone.
    pub fn view(&self) -> serde_json::Value {
        let z = self.zone;
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["clock_starts_at"] = rfc3339(z, self.clock_starts_at).into();
        v["clock_starts_local"] = fmt_local(z, self.clock_starts_at).into();
        v["first_response_due"] = self.first_response_due.map(|t| rfc3339(z, t)).into();
        v["first_response_local"] = self.first_response_due.map(|t| fmt_local(z, t)).into();
        for (i, e) in self.escalations.iter().enumerate() {
            v["escalations"][i]["at"] = rfc3339(z, e.at).into();
        }
        for (id, d) in &self.deadlines {
            let out = &mut v["deadlines"][id.as_str()];
            out["at"] = rfc3339(z, d.at).into();
            out["local"] = fmt_local(z, d.at).into();
            if let Some(r) = d.remind_at {
                out["remind_at"] = rfc3339(z, r).into();
            }
        }
        v
    }
}

fn fmt_local(zone: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// An instant as RFC 3339 with the offset `zone` has at that instant.
pub fn rfc3339(zone: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&zone)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

fn span_text(s: Span) -> String {
    match s {
        Span::Minutes(m) if m % 60 == 0 => format!("{}h", m / 60),
        Span::Minutes(m) => format!("{m}m"),
        Span::Days(d) => format!("{d}d"),
        Span::Months(m) if m % 12 == 0 => format!("{}y", m / 12),
        Span::Months(m) => format!("{m}mo"),
        Span::BusinessDays(n) => format!("{n}bd"),
    }
}

impl Policy {
    /// Every notice text in every language (compiled once by the templates).
    pub fn notice_texts(&self) -> impl Iterator<Item = &str> {
        self.notices
            .iter()
            .flat_map(|n| n.text.values().map(String::as_str))
    }

    /// Applies the pack's rules to one request.
    pub fn evaluate(&self, req: &Request<'_>) -> Evaluation {
        let zone = self.calendar.zone();
        let mut rules: Vec<String> = Vec::new();
        let cite = |rules: &mut Vec<String>, id: &str| {
            if !rules.iter().any(|r| r == id) {
                rules.push(id.to_string());
            }
        };
        let today = req.arrival.with_timezone(&zone).date_naive();
        let text = req.text;
        let contract = req.contract.map(|m| &m.contract);

        // Facts the request carries.
        let mut facts: BTreeSet<&'static str> = BTreeSet::new();
        let mut version_text: Option<String> = None;
        if !req.serials.is_empty()
            || req
                .contract
                .is_some_and(|m| m.by == crate::contracts::MatchedBy::Serial)
        {
            facts.insert("serial");
        }
        if !req.tax_ids.is_empty() {
            facts.insert("tax_id");
        }
        // A contract on record is a purchase on record.
        if !req.invoices.is_empty()
            || req.attachments.iter().any(|a| INVOICE_FILE.is_match(a))
            || req.contract.is_some()
        {
            facts.insert("invoice");
        }
        if contract.is_some_and(|c| {
            !c.company.trim().is_empty() && text.to_lowercase().contains(&c.company.to_lowercase())
        }) {
            facts.insert("company");
        }
        if has_description(text) {
            facts.insert("description");
        }
        for f in FACTS {
            let extra = self.facts.extra.get(*f);
            let builtin = DEFAULT_FACTS.iter().filter(|(n, _)| n == f).map(|(_, r)| r);
            for re in builtin.chain(extra.into_iter().flatten()) {
                if let Some(c) = re.captures(text) {
                    facts.insert(f);
                    if *f == "version" && version_text.is_none() {
                        version_text = c.get(1).map(|m| m.as_str().to_string());
                    }
                }
            }
        }

        for f in req.known_facts {
            if let Some(f) = FACTS.iter().find(|x| **x == f.as_str()) {
                facts.insert(f);
            }
        }
        let topics: Vec<String> = self
            .topics
            .iter()
            .filter(|t| t.re.is_match(text))
            .map(|t| t.id.clone())
            .collect();

        // Severity: the mail's own words, else the mailbox's, else the pack default.
        let critical =
            self.critical.as_ref().is_some_and(|re| re.is_match(text)) || CRITICAL.is_match(text);
        // A severity the mail states wins over words that sound critical
        // ("Severity 4: planning a maintenance outage").
        let (severity, severity_from) = if let Some(n) =
            read_severity(text).filter(|n| *n >= 1 && *n <= self.severity_levels)
        {
            (n, format!("the mail states severity {n}"))
        } else if critical {
            (1, "the mail describes a system down".to_string())
        } else if let Some(n) = self
            .severity_mailbox
            .get(req.mailbox_name)
            .or_else(|| self.severity_mailbox.get(req.mailbox_role.as_str()))
        {
            (*n, format!("mailbox {}", req.mailbox_name))
        } else {
            (self.severity_default, "the pack's default".to_string())
        };
        if severity_from != "the pack's default" {
            for r in &self.severity_rules {
                cite(&mut rules, r);
            }
        }

        let tier = contract
            .map(|c| c.tier.to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| self.default_tier.clone());
        let plans = contract.map(|c| c.plans.clone()).unwrap_or_default();

        let w = warranty::evaluate(&self.warranty, contract, today);
        if contract.is_some() {
            for r in &self.warranty_rules {
                cite(&mut rules, r);
            }
        }
        // Under an extension: covered now, but not by the standard term alone.
        let extended = w.status == WarrantyStatus::Active
            && contract.is_some_and(|c| {
                c.extended_until.is_some() && {
                    let standard = crate::contracts::Contract {
                        extended_until: None,
                        ..c.clone()
                    };
                    warranty::evaluate(&self.warranty, Some(&standard), today).status
                        == WarrantyStatus::Expired
                }
            });
        let hold = w.hold_until.is_some_and(|h| h > today);

        let business_open = self.calendar.is_open(req.arrival);
        for r in &self.calendar_rules {
            cite(&mut rules, r);
        }
        for r in &self.language_rules {
            cite(&mut rules, r);
        }

        let mut ctx = Ctx {
            req,
            new: req.ticket_created.is_none(),
            open: business_open,
            tier: tier.clone(),
            severity,
            plans,
            topics: topics.clone(),
            facts,
            warranty: w.status,
            extended,
            hold,
            ineligible: false,
            quota_exhausted: false,
            unsupported_version: false,
            missing: false,
            deadlines: BTreeMap::new(),
        };
        for t in &self.topics {
            if let Some(r) = &t.rule
                && topics.contains(&t.id)
            {
                cite(&mut rules, r);
            }
        }

        // Who may use this mailbox.
        let mut eligible = true;
        for m in &self.mailbox_rules {
            if m.mailbox == req.mailbox_name || m.mailbox == req.mailbox_role.as_str() {
                cite(&mut rules, &m.rule);
                if !ctx.holds(&m.requires) {
                    eligible = false;
                }
            }
        }
        ctx.ineligible = !eligible;

        // The SLA clock.
        let sla = self.sla.iter().find(|s| ctx.holds(&s.when));
        let clock = sla.map_or(ClockKind::Business, |s| s.clock);
        let clock_starts = match clock {
            ClockKind::Business => self.calendar.next_open(req.arrival),
            _ => req.arrival,
        };
        let due = sla.map(|s| {
            cite(&mut rules, &s.rule);
            match (s.clock, s.within) {
                (ClockKind::Business, Span::Minutes(m)) => self
                    .calendar
                    .add_business(clock_starts, Duration::minutes(m)),
                (ClockKind::Business, span) => {
                    add_calendar(zone, clock_starts, span, &self.calendar)
                }
                (_, span) => add_calendar(zone, clock_starts, span, &self.always),
            }
        });

        // Escalations run on the calendar clock from the report.
        let escalations: Vec<EscalationStep> = if ctx.new {
            self.escalations
                .iter()
                .filter(|e| e.severity == severity)
                .map(|e| {
                    cite(&mut rules, &e.rule);
                    EscalationStep {
                        at: add_calendar(zone, req.arrival, e.after, &self.calendar),
                        to: e.to.clone(),
                        after: span_text(e.after),
                        rule: e.rule.clone(),
                    }
                })
                .collect()
        } else {
            vec![]
        };

        // Quotas: the first that applies.
        let mut quota = None;
        if let Some(m) = req.contract {
            for q in &self.quotas {
                if !(ctx.new && ctx.holds(&q.when)) {
                    continue;
                }
                cite(&mut rules, &q.rule);
                let limit = if q.limit_from_contract {
                    m.contract.tickets_per_year.unwrap_or(q.limit)
                } else {
                    q.limit
                };
                let used = req.quota_used.get(&q.id).copied().unwrap_or(0);
                let free = !q.free_when.0.is_empty() && ctx.holds(&q.free_when);
                let exhausted = !free && used >= limit;
                let charged = !free && !exhausted;
                quota = Some(QuotaUse {
                    id: q.id.clone(),
                    rule: q.rule.clone(),
                    contract: m.contract.serial.clone(),
                    period_start: period_start(q, m, today),
                    limit,
                    used,
                    charged,
                    exhausted,
                    remaining: limit.saturating_sub(used + u32::from(charged)),
                });
                ctx.quota_exhausted = exhausted;
                break;
            }
        }

        // Supported versions.
        let mut version = None;
        if let (Some(v), Some(vt)) = (&self.versions, &version_text)
            && let Some(asked) = parse_version(vt)
        {
            let lower = text.to_lowercase();
            let mut products: Vec<&str> = v
                .releases
                .iter()
                .map(|r| r.product.as_str())
                .filter(|p| lower.contains(*p))
                .collect();
            products.dedup();
            if let Some(product) = products.first() {
                let mut rels: Vec<&Release> = v
                    .releases
                    .iter()
                    .filter(|r| r.product == *product)
                    .collect();
                rels.sort_by(|a, b| a.version.cmp(&b.version));
                if let Some(pos) = rels.iter().position(|r| r.version == asked) {
                    cite(&mut rules, &v.rule);
                    let successor = rels[pos + 1..].iter().find(|r| r.released_on <= today);
                    let until = successor.map(|s| {
                        add_calendar(
                            zone,
                            resolve(zone, s.released_on.and_time(NaiveTime::MIN)),
                            v.window,
                            &self.calendar,
                        )
                        .with_timezone(&zone)
                        .date_naive()
                    });
                    let supported = until.is_none_or(|u| today <= u);
                    ctx.unsupported_version = !supported;
                    version = Some(VersionOut {
                        product: product.to_string(),
                        version: rels[pos].version_text.clone(),
                        supported,
                        supported_until: until,
                    });
                }
            }
        }

        // What the request must carry.
        let mut missing: Vec<String> = Vec::new();
        let mut recommended: Vec<String> = Vec::new();
        for q in &self.requires {
            if !ctx.holds(&q.when) {
                continue;
            }
            cite(&mut rules, &q.rule);
            for f in &q.facts {
                if !ctx.facts.contains(f.as_str()) && !missing.contains(f) {
                    missing.push(f.clone());
                }
            }
            for f in &q.recommended {
                if !ctx.facts.contains(f.as_str()) && !recommended.contains(f) {
                    recommended.push(f.clone());
                }
            }
        }
        ctx.missing = !missing.is_empty();

        // Dates and promises last: their conditions may read every flag above.
        // Dates.
        for d in &self.deadlines {
            if !ctx.holds(&d.when) {
                continue;
            }
            let from = match d.from {
                From::Arrival => Some(req.arrival),
                From::TicketCreated => req.ticket_created,
                From::ShippedOn => contract
                    .and_then(|c| c.shipped_on)
                    .map(|s| resolve(zone, s.and_time(NaiveTime::MIN))),
                From::PurchasedOn => {
                    contract.map(|c| resolve(zone, c.purchased_on.and_time(NaiveTime::MIN)))
                }
            };
            let Some(mut from) = from else { continue };
            if d.month_start {
                let l = from.with_timezone(&zone).date_naive();
                let first = l.with_day(1).unwrap_or(l);
                from = resolve(zone, first.and_time(NaiveTime::MIN));
            }
            let at = match (d.clock, d.after) {
                (ClockKind::Business, Span::Minutes(m)) => {
                    self.calendar.add_business(from, Duration::minutes(m))
                }
                (_, span) => add_calendar(zone, from, span, &self.calendar),
            };
            let remind_at = d.remind_before.map(|r| match r {
                Span::Minutes(m) => at - Duration::minutes(m),
                Span::Days(n) => at - Duration::days(n),
                _ => at,
            });
            cite(&mut rules, &d.rule);
            ctx.deadlines.insert(
                d.id.clone(),
                DeadlineOut {
                    at,
                    remind_at,
                    rule: d.rule.clone(),
                },
            );
        }

        let mut promises = BTreeMap::new();
        for p in &self.promises {
            if !ctx.holds(&p.when) {
                continue;
            }
            let local = req.arrival.with_timezone(&zone);
            let in_time = self.calendar.is_business_day(local.date_naive())
                && p.cutoff.is_none_or(|c| local.time() < c);
            let n = if in_time { p.before } else { p.after };
            // A request on a closed day counts from the next business day.
            let by = if in_time || n == 0 {
                self.calendar.add_business_days(req.arrival, n)
            } else {
                self.calendar.add_business_days(req.arrival, n.max(1))
            };
            cite(&mut rules, &p.rule);
            promises.insert(
                p.id.clone(),
                PromiseOut {
                    by,
                    rule: p.rule.clone(),
                },
            );
        }

        let route = self.routes.iter().find(|x| ctx.holds(&x.when)).map(|x| {
            cite(&mut rules, &x.rule);
            RouteOut {
                to: x.text.clone(),
                rule: x.rule.clone(),
            }
        });
        let mut staff: Vec<StaffNote> = self
            .staff
            .iter()
            .filter(|s| ctx.holds(&s.when))
            .map(|s| {
                cite(&mut rules, &s.rule);
                StaffNote {
                    rule: s.rule.clone(),
                    text: s.text.clone(),
                }
            })
            .collect();
        // What the warranty evaluation could not settle goes to staff.
        if contract.is_some() && !self.warranty_rules.is_empty() {
            for n in &w.notes {
                staff.push(StaffNote {
                    rule: self.warranty_rules.join("/"),
                    text: n.clone(),
                });
            }
        }
        if let Some(r) = &route {
            staff.push(StaffNote {
                rule: r.rule.clone(),
                text: format!("route to {}", r.to),
            });
        }
        let notices: Vec<NoticeOut> = self
            .notices
            .iter()
            .filter(|n| ctx.holds(&n.when))
            .map(|n| {
                cite(&mut rules, &n.rule);
                NoticeOut {
                    id: n.id.clone(),
                    rule: n.rule.clone(),
                    text: n.text.get(&req.language).cloned().unwrap_or_default(),
                }
            })
            .collect();

        let names = |l: &[String]| {
            l.iter()
                .map(|f| fact_name(f, req.language).to_string())
                .collect()
        };
        Evaluation {
            pack: req.pack.to_string(),
            rules,
            business_open,
            clock,
            zone,
            clock_starts_at: clock_starts,
            clock_deferred: clock_starts > req.arrival,
            first_response_due: due,
            missing_names: names(&missing),
            facts: ctx.facts.iter().map(|f| f.to_string()).collect(),
            waiting_on_customer: !missing.is_empty(),
            missing,
            recommended_names: names(&recommended),
            recommended,
            warranty: w,
            escalations,
            tier,
            severity,
            severity_from,
            contract: req.contract.map(|m| ContractOut {
                serial: m.contract.serial.clone(),
                matched_by: m.by,
                company: m.contract.company.clone(),
                plans: m.contract.plans.clone(),
            }),
            topics,
            eligible,
            deadlines: ctx.deadlines,
            promises,
            quota,
            route,
            version,
            staff,
            notices,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_is_read_in_english_japanese_and_spanish() {
        for (text, want) in [
            ("Severity 1: array offline", Some(1)),
            ("this is sev 2", Some(2)),
            ("Priority: S3", Some(3)),
            ("the disk in slot s1 and p2", None),
            ("重大度：２ です", Some(2)),
            ("緊急度 1", Some(1)),
            ("Severidad 4, sin prisa", Some(4)),
            ("prioridad: 2", Some(2)),
            ("we have 12 disks and S5 cables", None),
            ("nothing here", None),
        ] {
            assert_eq!(read_severity(text), want, "{text}");
        }
    }

    #[test]
    fn spans_parse_and_reject_what_they_cannot_read() {
        assert_eq!(Span::parse("8h"), Ok(Span::Minutes(480)));
        assert_eq!(Span::parse("30d"), Ok(Span::Days(30)));
        assert_eq!(Span::parse("2w"), Ok(Span::Days(14)));
        assert_eq!(Span::parse("3y"), Ok(Span::Months(36)));
        assert_eq!(Span::parse("5bd"), Ok(Span::BusinessDays(5)));
        assert!(Span::parse("8 hours").is_err());
        assert!(Span::parse("h").is_err());
    }

    #[test]
    fn conditions_take_alternatives_across_keys_and_reject_unknown_ones() {
        let topics = vec!["warranty".to_string()];
        let (neg, alts) = parse_cond("!mailbox=rma|topic=warranty", &[], &topics).unwrap();
        assert!(neg);
        assert_eq!(
            alts,
            vec![
                Cond::Mailbox(vec!["rma".into()]),
                Cond::Topic(vec!["warranty".into()])
            ]
        );
        let (_, alts) = parse_cond("tier=gold|silver", &[], &topics).unwrap();
        assert_eq!(alts.len(), 2);
        assert!(parse_cond("topic=refund", &[], &topics).is_err());
        assert!(parse_cond("past=nothing", &[], &topics).is_err());
        assert!(parse_cond("fact=shoe_size", &[], &topics).is_err());
        assert!(parse_cond("weekend", &[], &topics).is_err());
    }

    #[test]
    fn keywords_match_whole_words_and_japanese_anywhere() {
        let re = words_regex(&["network".into(), "故障".into(), "sistema caído".into()]).unwrap();
        assert!(re.is_match("a NETWORK issue"));
        assert!(!re.is_match("networking"));
        assert!(re.is_match("ディスクが故障した"));
        assert!(re.is_match("el sistema   caído desde ayer"));
    }

    #[test]
    fn a_description_needs_more_than_identifiers() {
        assert!(!has_description("Serial: A1-12345"));
        assert!(has_description(
            "The pool went offline after a power cut and two disks show checksum errors since then."
        ));
        assert!(has_description(
            "電源投入後にビープ音が鳴り続け、管理画面にアクセスできない状態です。"
        ));
    }
}
