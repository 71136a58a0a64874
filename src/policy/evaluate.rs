//! Applying a compiled `Policy` to one request: what the rules say, and its view for templates and `explain`.

use super::checks::is_cjk;
use super::compiled::*;
use super::conditions::{Cond, When};
use super::facts::{FACTS, fact_name};
use super::time::{ClockKind, add_calendar, resolve};
use crate::contracts::{Contract, ContractMatch, ContractOut};
use crate::model::{Language, QuotaUse, Role, Span};
use crate::warranty::{self, Warranty, WarrantyStatus};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

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
    /// The ticket already has an RMA with its code.
    pub rma_issued: bool,
    /// When ticketd answers it (now; the arrival in `explain`).
    pub acknowledged: DateTime<Utc>,
    /// What [`Policy::scan`] read from `text` beforehand, when it was (the
    /// intake reads it before the store is locked); read here otherwise.
    pub scan: Option<&'a TextScan>,
}

/// What the rules read from a request's text alone: its facts by pattern,
/// the version it names, its topics and its severity words. Nothing of the
/// store or the clock, so intake reads it ahead, on every core.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextScan {
    /// The facts the patterns found (`version` among them).
    pub(crate) facts: Vec<&'static str>,
    pub(crate) description: bool,
    /// The first version pattern's capture.
    pub(crate) version_text: Option<String>,
    pub(crate) topics: Vec<String>,
    pub(crate) critical: bool,
    pub(crate) stated_severity: Option<u8>,
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
    /// The version is in the pack's release list (a version it does not
    /// list is neither supported nor unsupported as far as the pack knows).
    pub known: bool,
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
    /// The target is internal (`[[sla]] internal`): no promise to the customer.
    pub first_response_internal: bool,
    /// The `[[sla]]` rule that set `first_response_due`.
    #[serde(skip)]
    pub sla_rule: Option<String>,
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
    unknown_version: bool,
    quota_unsold: bool,
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
                "unknown_version" => self.unknown_version,
                "quota_unsold" => self.quota_unsold,
                "missing" => self.missing,
                "rma_issued" => r.rma_issued,
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

// Word boundaries in the built-in patterns are ASCII (`(?-u:\b)`): each
// one stands beside an ASCII letter or digit, and a Japanese character next
// to it counts as a boundary, since Japanese does not put spaces between
// words ("OSはWindows Server"). An ASCII boundary also lets the lazy DFA
// search any text; a Unicode one makes it give up at the first non-ASCII
// byte and hand the search to a backtracker.

/// The built-in patterns of each fact; `version`'s first group is the
/// version the text names, its digits ASCII or full-width (typed through a
/// Japanese input method), and what follows them not an ASCII letter or digit.
pub(super) const FACT_PATTERNS: [(&str, &str); 4] = [
    (
        "company",
        r"(?im)^\s*(?:company|organi[sz]ation|empresa|compa[ñn][ií]a|raz[oó]n social|会社名|社名|貴社名)\s*[:：]\s*\S",
    ),
    (
        "product",
        r"(?im)^\s*(?:product|model|producto|modelo|製品|製品名|型番)\s*[:：]\s*\S",
    ),
    (
        "version",
        r"(?i)(?:(?-u:\b)(?:version|versi[oó]n|ver\.?|release|rel\.?)\s*[:#]?\s*|(?-u:\b)v|バージョン\s*[:：]?\s*)(\d+(?:\.\d+){1,3})(?:[^0-9A-Za-z_]|$)",
    ),
    (
        "os",
        r"(?i)(?-u:\b)(?:windows(?:\s+server)?|linux|red\s*hat|rhel|ubuntu|debian|suse|centos|rocky|alma|z/os|os/390|mvs|z/vm|aix|solaris|hp-ux|macos|os\s*x|freebsd|truenas|vmware|esxi|ibm\s+i)(?-u:\b)|(?im)^\s*(?:os|operating system|sistema operativo|オペレーティングシステム)\s*[:：]\s*\S",
    ),
];

static DEFAULT_FACTS: std::sync::LazyLock<Vec<(&'static str, Regex)>> =
    std::sync::LazyLock::new(|| {
        FACT_PATTERNS
            .iter()
            .map(|(f, p)| (*f, Regex::new(p).expect("built-in fact pattern")))
            .collect()
    });

/// An attached file that is a proof of purchase.
static INVOICE_FILE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(r"(?i)invoice|receipt|factura|recibo|albar[aá]n|請求|領収|納品")
        .expect("invoice file pattern")
});

/// Phrases that mean the most severe level in every pack.
pub(super) const CRITICAL_PATTERN: &str = r"(?i)(?-u:\b)system\s+(?:is\s+)?down(?-u:\b)|(?-u:\b)production\s+(?:is\s+)?down(?-u:\b)|システム(?:停止|ダウン)|業務停止|(?-u:\b)sistema\s+ca[íi]do(?-u:\b)|(?-u:\b)ca[íi]da\s+total(?-u:\b)";

static CRITICAL: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(CRITICAL_PATTERN).expect("critical pattern"));

/// A severity the mail states: one of the three groups holds its digit.
pub(super) const SEVERITY_PATTERN: &str = r"(?i)(?-u:\b)(?:severity|sev|severidad|gravedad|prioridad|priority)\s*(?:level\s*|nivel\s*)?[:#=-]?\s*([1-4])(?-u:\b)|(?-i:(?-u:\b)S([1-4])(?-u:\b))|(?:重大度|緊急度|深刻度|優先度)\s*[:：]?\s*([1-4１-４])";

static SEVERITY_RE: std::sync::LazyLock<Regex> =
    std::sync::LazyLock::new(|| Regex::new(SEVERITY_PATTERN).expect("severity pattern"));

pub(super) fn read_severity(text: &str) -> Option<u8> {
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
pub(super) fn has_description(text: &str) -> bool {
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
        // What the customer is told: nothing of an internal target.
        v["first_response_local"] = self
            .first_response_due
            .filter(|_| !self.first_response_internal)
            .map(|t| fmt_local(z, t))
            .into();
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
    /// The escalation steps of `severity` for a problem reported at
    /// `reported`, on the calendar clock (days keep the wall-clock time).
    pub fn escalation_ladder(&self, severity: u8, reported: DateTime<Utc>) -> Vec<EscalationStep> {
        let zone = self.calendar.zone();
        self.escalations
            .iter()
            .filter(|e| e.severity == severity)
            .map(|e| EscalationStep {
                at: add_calendar(zone, reported, e.after, &self.calendar),
                to: e.to.clone(),
                after: span_text(e.after),
                rule: e.rule.clone(),
            })
            .collect()
    }

    /// The severity levels the pack knows (1 is the most severe).
    pub fn severity_levels(&self) -> u8 {
        self.severity_levels
    }

    /// When staff are warned that the first response is near: `lead`
    /// before it is due, counted on the SLA's own clock (business time for
    /// a business clock, so a warning never falls in a closed hour), and
    /// never before the clock starts.
    pub fn sla_warning_at(&self, e: &Evaluation, lead: Span) -> Option<DateTime<Utc>> {
        let due = e.first_response_due?;
        let at = match (e.clock, lead) {
            (ClockKind::Business, Span::Minutes(m)) => {
                let total = self.calendar.business_between(e.clock_starts_at, due);
                let left = total - Duration::minutes(m);
                if left <= Duration::zero() {
                    e.clock_starts_at
                } else {
                    self.calendar.add_business(e.clock_starts_at, left)
                }
            }
            (_, span) => self.before(due, span),
        };
        Some(at.max(e.clock_starts_at))
    }

    /// Every notice text in every language, the RMA texts too (compiled once by the templates).
    pub fn notice_texts(&self) -> impl Iterator<Item = &str> {
        self.notices
            .iter()
            .flat_map(|n| n.text.values().map(String::as_str))
            .chain(self.rma.iter().flat_map(|r| r.texts()))
    }

    /// Applies the pack's rules to one request.
    ///
    /// One step per kind of entry, in this order: later steps' conditions
    /// read the flags earlier ones set (`ineligible`, `quota_exhausted`,
    /// `unsupported_version`, `missing`, the deadlines computed).
    pub fn evaluate(&self, req: &Request<'_>) -> Evaluation {
        let mut run = Run::new(self, req);
        let eligible = run.mailbox_eligibility();
        let first = run.first_response();
        let escalations = run.escalations();
        let quota = run.quota();
        let version = run.version();
        let (missing, recommended) = run.requirements();
        // Dates and promises last: their conditions may read every flag above.
        run.deadlines();
        let promises = run.promises();
        let route = run.route();
        let staff = run.staff_notes(route.as_ref());
        let notices = run.notices();

        let names = |l: &[String]| {
            l.iter()
                .map(|f| fact_name(f, req.language).to_string())
                .collect()
        };
        Evaluation {
            pack: req.pack.to_string(),
            rules: run.rules.0,
            business_open: run.ctx.open,
            clock: first.clock,
            zone: run.zone,
            clock_starts_at: first.starts_at,
            clock_deferred: first.starts_at > req.arrival,
            first_response_due: first.due,
            first_response_internal: first.internal,
            sla_rule: first.rule,
            missing_names: names(&missing),
            facts: run.ctx.facts.iter().map(|f| f.to_string()).collect(),
            waiting_on_customer: !missing.is_empty(),
            missing,
            recommended_names: names(&recommended),
            recommended,
            warranty: run.warranty,
            escalations,
            tier: run.ctx.tier,
            severity: run.ctx.severity,
            severity_from: run.severity_from,
            contract: req.contract.map(contract_out),
            topics: run.ctx.topics,
            eligible,
            deadlines: run.ctx.deadlines,
            promises,
            quota,
            route,
            version,
            staff,
            notices,
        }
    }

    /// The facts the request carries, with the ticket's earlier mail, and
    /// the version the text names (the first pattern's capture).
    fn facts_in(
        &self,
        req: &Request<'_>,
        scan: &TextScan,
    ) -> (BTreeSet<&'static str>, Option<String>) {
        let text = req.text;
        let contract = req.contract.map(|m| &m.contract);
        let mut facts: BTreeSet<&'static str> = scan.facts.iter().copied().collect();
        let version_text = scan.version_text.clone();
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
        if scan.description {
            facts.insert("description");
        }
        for f in req.known_facts {
            if let Some(f) = FACTS.iter().find(|x| **x == f.as_str()) {
                facts.insert(f);
            }
        }
        (facts, version_text)
    }

    /// What the rules read from `text` alone (see [`TextScan`]).
    pub fn scan(&self, text: &str) -> TextScan {
        let mut facts = Vec::new();
        let mut version_text: Option<String> = None;
        for f in FACTS {
            let extra = self.facts.extra.get(*f);
            let builtin = DEFAULT_FACTS.iter().filter(|(n, _)| n == f).map(|(_, r)| r);
            let mut patterns = builtin.chain(extra.into_iter().flatten());
            if *f != "version" {
                // Whether one matches is all a fact needs: no groups.
                if patterns.any(|re| re.is_match(text)) {
                    facts.push(*f);
                }
                continue;
            }
            // The first pattern that matches with a first group names it.
            for re in patterns {
                if let Some(c) = re.captures(text) {
                    if !facts.contains(f) {
                        facts.push(*f);
                    }
                    version_text = c.get(1).map(|m| m.as_str().to_string());
                    if version_text.is_some() {
                        break;
                    }
                }
            }
        }
        TextScan {
            facts,
            description: has_description(text),
            version_text,
            topics: self
                .topics
                .iter()
                .filter(|t| t.matches(text))
                .map(|t| t.id.clone())
                .collect(),
            critical: self.critical.as_ref().is_some_and(|re| re.is_match(text))
                || CRITICAL.is_match(text),
            stated_severity: read_severity(text),
        }
    }

    /// Severity: the mail's own words, else the mailbox's, else the pack
    /// default; with what decided it. The `[severity]` rules are cited
    /// unless the default decided.
    fn severity_of(&self, req: &Request<'_>, scan: &TextScan, rules: &mut Cited) -> (u8, String) {
        // A severity the mail states wins over words that sound critical
        // ("Severity 4: planning a maintenance outage").
        let (severity, severity_from) = if let Some(n) = scan
            .stated_severity
            .filter(|n| *n >= 1 && *n <= self.severity_levels)
        {
            (n, format!("the mail states severity {n}"))
        } else if scan.critical {
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
            rules.cite_all(&self.severity_rules);
        }
        (severity, severity_from)
    }

    /// The contract's tier, else the pack's default tier.
    fn tier_of(&self, contract: Option<&Contract>) -> String {
        contract
            .map(|c| c.tier.to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| self.default_tier.clone())
    }

    /// The contract's warranty on `today`; the `[warranty]` rules are cited
    /// when there is a contract.
    fn warranty_of(
        &self,
        contract: Option<&Contract>,
        today: NaiveDate,
        rules: &mut Cited,
    ) -> Warranty {
        let w = warranty::evaluate(&self.warranty, contract, today);
        if contract.is_some() {
            rules.cite_all(&self.warranty_rules);
        }
        w
    }

    /// Under an extension: covered now, but not by the standard term alone.
    fn under_extension(&self, w: &Warranty, contract: Option<&Contract>, today: NaiveDate) -> bool {
        w.status == WarrantyStatus::Active
            && contract.is_some_and(|c| {
                c.extended_until.is_some() && {
                    let standard = Contract {
                        extended_until: None,
                        ..c.clone()
                    };
                    warranty::evaluate(&self.warranty, Some(&standard), today).status
                        == WarrantyStatus::Expired
                }
            })
    }
}

/// The rule IDs an evaluation cites, each once, in the order first cited.
#[derive(Default)]
struct Cited(Vec<String>);

impl Cited {
    fn cite(&mut self, id: &str) {
        if !self.0.iter().any(|r| r == id) {
            self.0.push(id.to_string());
        }
    }

    fn cite_all(&mut self, ids: &[String]) {
        for id in ids {
            self.cite(id);
        }
    }
}

/// The first-response target the `[[sla]]` entries set.
struct FirstResponse {
    clock: ClockKind,
    starts_at: DateTime<Utc>,
    due: Option<DateTime<Utc>>,
    internal: bool,
    rule: Option<String>,
}

/// One evaluation under way: what its steps share. The condition context
/// (`ctx`) gains its flags step by step; `rules` are those cited so far.
struct Run<'a> {
    policy: &'a Policy,
    req: &'a Request<'a>,
    zone: Tz,
    /// The arrival's day in the pack's zone.
    today: NaiveDate,
    ctx: Ctx<'a>,
    rules: Cited,
    warranty: Warranty,
    severity_from: String,
    version_text: Option<String>,
}

impl<'a> Run<'a> {
    /// What the request carries and the steps that need no condition:
    /// facts, topics, severity, tier, warranty, business hours.
    fn new(policy: &'a Policy, req: &'a Request<'a>) -> Run<'a> {
        let zone = policy.calendar.zone();
        let today = req.arrival.with_timezone(&zone).date_naive();
        let contract = req.contract.map(|m| &m.contract);
        let mut rules = Cited::default();
        let read_here;
        let scan = match req.scan {
            Some(s) => s,
            None => {
                read_here = policy.scan(req.text);
                &read_here
            }
        };
        let (facts, version_text) = policy.facts_in(req, scan);
        let topics = scan.topics.clone();
        let (severity, severity_from) = policy.severity_of(req, scan, &mut rules);
        let tier = policy.tier_of(contract);
        let plans = contract.map(|c| c.plans.clone()).unwrap_or_default();
        let warranty = policy.warranty_of(contract, today, &mut rules);
        let extended = policy.under_extension(&warranty, contract, today);
        let hold = warranty.hold_until.is_some_and(|h| h > today);
        let open = policy.calendar.is_open(req.arrival);
        rules.cite_all(&policy.calendar_rules);
        rules.cite_all(&policy.language_rules);
        for t in &policy.topics {
            if let Some(r) = &t.rule
                && topics.contains(&t.id)
            {
                rules.cite(r);
            }
        }
        let ctx = Ctx {
            req,
            new: req.ticket_created.is_none(),
            open,
            tier,
            severity,
            plans,
            topics,
            facts,
            warranty: warranty.status,
            extended,
            hold,
            ineligible: false,
            quota_exhausted: false,
            unsupported_version: false,
            unknown_version: false,
            quota_unsold: false,
            missing: false,
            deadlines: BTreeMap::new(),
        };
        Run {
            policy,
            req,
            zone,
            today,
            ctx,
            rules,
            warranty,
            severity_from,
            version_text,
        }
    }

    /// Who may use this mailbox: false when a `[[mailbox]]` rule of it
    /// refuses the request (the `ineligible` flag).
    fn mailbox_eligibility(&mut self) -> bool {
        let req = self.req;
        let mut eligible = true;
        for m in &self.policy.mailbox_rules {
            if m.mailbox == req.mailbox_name || m.mailbox == req.mailbox_role.as_str() {
                self.rules.cite(&m.rule);
                if !self.ctx.holds(&m.requires) {
                    eligible = false;
                }
            }
        }
        self.ctx.ineligible = !eligible;
        eligible
    }

    /// The SLA clock: the first `[[sla]]` that applies, its clock's start
    /// and the first response due.
    fn first_response(&mut self) -> FirstResponse {
        let p = self.policy;
        let zone = self.zone;
        let sla = p.sla.iter().find(|s| self.ctx.holds(&s.when));
        let clock = sla.map_or(ClockKind::Business, |s| s.clock);
        let starts_at = match clock {
            ClockKind::Business => p.calendar.next_open(self.req.arrival),
            _ => self.req.arrival,
        };
        let due = sla.map(|s| {
            self.rules.cite(&s.rule);
            match (s.clock, s.within) {
                (ClockKind::Business, Span::Minutes(m)) => {
                    p.calendar.add_business(starts_at, Duration::minutes(m))
                }
                (ClockKind::Business, span) => add_calendar(zone, starts_at, span, &p.calendar),
                (_, span) => add_calendar(zone, starts_at, span, &p.always),
            }
        });
        FirstResponse {
            clock,
            starts_at,
            due,
            internal: sla.is_some_and(|s| s.internal),
            rule: sla.map(|s| s.rule.clone()),
        }
    }

    /// Escalations run on the calendar clock from the report of a new ticket.
    fn escalations(&mut self) -> Vec<EscalationStep> {
        if !self.ctx.new {
            return vec![];
        }
        let steps = self
            .policy
            .escalation_ladder(self.ctx.severity, self.req.arrival);
        for s in &steps {
            self.rules.cite(&s.rule);
        }
        steps
    }

    /// Quotas: the first that applies. A sold allowance the customer has
    /// not bought is none at all (QJ-08: nobody is charged a ticket no
    /// one sold them).
    fn quota(&mut self) -> Option<QuotaUse> {
        let p = self.policy;
        let req = self.req;
        if self.ctx.new
            && p.quotas.iter().any(|q| {
                q.sold
                    && req
                        .contract
                        .is_none_or(|m| m.contract.tickets_per_year.is_none())
            })
        {
            self.ctx.quota_unsold = true;
        }
        let m = req.contract?;
        for q in &p.quotas {
            if !(self.ctx.new && self.ctx.holds(&q.when)) {
                continue;
            }
            self.rules.cite(&q.rule);
            if q.sold && m.contract.tickets_per_year.is_none() {
                continue;
            }
            let usage = self.quota_use(q, m);
            self.ctx.quota_exhausted = usage.exhausted;
            return Some(usage);
        }
        None
    }

    /// What this request uses of quota `q`: free, charged, or over the limit.
    fn quota_use(&self, q: &Quota, m: &ContractMatch) -> QuotaUse {
        let limit = if q.limit_from_contract {
            m.contract.tickets_per_year.unwrap_or(q.limit)
        } else {
            q.limit
        };
        let used = self.req.quota_used.get(&q.id).copied().unwrap_or(0);
        let free = !q.free_when.0.is_empty() && self.ctx.holds(&q.free_when);
        let exhausted = !free && used >= limit;
        let charged = !free && !exhausted;
        QuotaUse {
            id: q.id.clone(),
            rule: q.rule.clone(),
            contract: m.contract.serial.clone(),
            period_start: period_start(q, m, self.today),
            limit,
            used,
            charged,
            exhausted,
            remaining: limit.saturating_sub(used + u32::from(charged)),
        }
    }

    /// Supported versions: the version the mail names of the first product
    /// of the `[versions]` list it names, known or not.
    fn version(&mut self) -> Option<VersionOut> {
        let p = self.policy;
        let (Some(v), Some(vt)) = (&p.versions, self.version_text.as_deref()) else {
            return None;
        };
        let asked = parse_version(vt)?;
        let lower = self.req.text.to_lowercase();
        let product = v
            .releases
            .iter()
            .map(|r| r.product.as_str())
            .find(|p| lower.contains(*p))?;
        let mut rels: Vec<&Release> = v.releases.iter().filter(|r| r.product == product).collect();
        rels.sort_by(|a, b| a.version.cmp(&b.version));
        self.rules.cite(&v.rule);
        let Some(pos) = rels.iter().position(|r| r.version == asked) else {
            // A version the release list lacks: staff check it; the
            // customer is told nothing about its support.
            self.ctx.unknown_version = true;
            return Some(VersionOut {
                product: product.to_string(),
                version: vt.trim().to_string(),
                supported: true,
                supported_until: None,
                known: false,
            });
        };
        let until = self.supported_until(v, &rels[pos + 1..]);
        let supported = until.is_none_or(|u| self.today <= u);
        self.ctx.unsupported_version = !supported;
        Some(VersionOut {
            product: product.to_string(),
            version: rels[pos].version_text.clone(),
            supported,
            supported_until: until,
            known: true,
        })
    }

    /// The last supported day of a version whose later releases are
    /// `later`: the window after the first of them already released.
    fn supported_until(&self, v: &Versions, later: &[&Release]) -> Option<NaiveDate> {
        let (p, zone) = (self.policy, self.zone);
        let successor = later.iter().find(|r| r.released_on <= self.today);
        successor.map(|s| {
            add_calendar(
                zone,
                resolve(zone, s.released_on.and_time(NaiveTime::MIN)),
                v.window,
                &p.calendar,
            )
            .with_timezone(&zone)
            .date_naive()
        })
    }

    /// What the request must carry (missing) and should (recommended),
    /// by the `[[require]]` entries that apply; sets the `missing` flag.
    fn requirements(&mut self) -> (Vec<String>, Vec<String>) {
        let mut missing: Vec<String> = Vec::new();
        let mut recommended: Vec<String> = Vec::new();
        for q in &self.policy.requires {
            if !self.ctx.holds(&q.when) {
                continue;
            }
            self.rules.cite(&q.rule);
            for f in &q.facts {
                if !self.ctx.facts.contains(f.as_str()) && !missing.contains(f) {
                    missing.push(f.clone());
                }
            }
            for f in &q.recommended {
                if !self.ctx.facts.contains(f.as_str()) && !recommended.contains(f) {
                    recommended.push(f.clone());
                }
            }
        }
        self.ctx.missing = !missing.is_empty();
        (missing, recommended)
    }

    /// The `[[deadline]]` dates that apply and whose start is known, into
    /// the context (later deadlines and promises read them).
    fn deadlines(&mut self) {
        for d in &self.policy.deadlines {
            if !self.ctx.holds(&d.when) {
                continue;
            }
            let Some(from) = self.deadline_start(d) else {
                continue;
            };
            let at = self.deadline_at(d, from);
            let remind_at = d.remind_before.map(|r| match r {
                Span::Minutes(m) => at - Duration::minutes(m),
                Span::Days(n) => at - Duration::days(n),
                _ => at,
            });
            self.rules.cite(&d.rule);
            self.ctx.deadlines.insert(
                d.id.clone(),
                DeadlineOut {
                    at,
                    remind_at,
                    rule: d.rule.clone(),
                },
            );
        }
    }

    /// The instant a deadline counts from, aligned to its month's start
    /// when it says so; none when the request lacks it.
    fn deadline_start(&self, d: &DeadlineRule) -> Option<DateTime<Utc>> {
        let (req, zone) = (self.req, self.zone);
        let contract = req.contract.map(|m| &m.contract);
        let from = match d.from {
            From::Arrival => Some(req.arrival),
            From::Acknowledged => Some(req.acknowledged),
            From::TicketCreated => req.ticket_created,
            From::ShippedOn => contract
                .and_then(|c| c.shipped_on)
                .map(|s| resolve(zone, s.and_time(NaiveTime::MIN))),
            From::PurchasedOn => {
                contract.map(|c| resolve(zone, c.purchased_on.and_time(NaiveTime::MIN)))
            }
        };
        let mut from = from?;
        if d.month_start {
            let l = from.with_timezone(&zone).date_naive();
            let first = l.with_day(1).unwrap_or(l);
            from = resolve(zone, first.and_time(NaiveTime::MIN));
        }
        Some(from)
    }

    /// A deadline `from` its start, on its own clock.
    fn deadline_at(&self, d: &DeadlineRule, from: DateTime<Utc>) -> DateTime<Utc> {
        let p = self.policy;
        match (d.clock, d.after) {
            (ClockKind::Business, Span::Minutes(m)) => {
                p.calendar.add_business(from, Duration::minutes(m))
            }
            (_, span) => add_calendar(self.zone, from, span, &p.calendar),
        }
    }

    /// The `[[promise]]` dates that apply.
    fn promises(&mut self) -> BTreeMap<String, PromiseOut> {
        let mut promises = BTreeMap::new();
        for p in &self.policy.promises {
            if !self.ctx.holds(&p.when) {
                continue;
            }
            let by = self.promised_by(p);
            self.rules.cite(&p.rule);
            promises.insert(
                p.id.clone(),
                PromiseOut {
                    by,
                    rule: p.rule.clone(),
                },
            );
        }
        promises
    }

    /// The business day a promise falls on: `before` days for a request in
    /// time (a business day, before the cutoff), else `after`; never before
    /// the deadline it waits for.
    fn promised_by(&self, p: &Promise) -> NaiveDate {
        let (cal, req) = (&self.policy.calendar, self.req);
        let local = req.arrival.with_timezone(&self.zone);
        let in_time =
            cal.is_business_day(local.date_naive()) && p.cutoff.is_none_or(|c| local.time() < c);
        let n = if in_time { p.before } else { p.after };
        // A request on a closed day counts from the next business day.
        let by = if in_time || n == 0 {
            cal.add_business_days(req.arrival, n)
        } else {
            cal.add_business_days(req.arrival, n.max(1))
        };
        // Never before the date it must wait for (the business day on or after it).
        match p
            .not_before
            .as_ref()
            .and_then(|d| self.ctx.deadlines.get(d))
        {
            Some(d) => {
                let mut start = d.at.with_timezone(&self.zone).date_naive();
                while !cal.is_business_day(start) {
                    start = start.succ_opt().unwrap_or(start);
                }
                by.max(start)
            }
            None => by,
        }
    }

    /// Who handles it: the first `[[route]]` that applies.
    fn route(&mut self) -> Option<RouteOut> {
        let x = self
            .policy
            .routes
            .iter()
            .find(|x| self.ctx.holds(&x.when))?;
        self.rules.cite(&x.rule);
        Some(RouteOut {
            to: x.text.clone(),
            rule: x.rule.clone(),
        })
    }

    /// What staff must know: the `[[staff]]` lines that apply, what the
    /// warranty evaluation could not settle, and the route.
    fn staff_notes(&mut self, route: Option<&RouteOut>) -> Vec<StaffNote> {
        let p = self.policy;
        let mut staff: Vec<StaffNote> = Vec::new();
        for s in &p.staff {
            if self.ctx.holds(&s.when) {
                self.rules.cite(&s.rule);
                staff.push(StaffNote {
                    rule: s.rule.clone(),
                    text: s.text.clone(),
                });
            }
        }
        if self.req.contract.is_some() && !p.warranty_rules.is_empty() {
            for n in &self.warranty.notes {
                staff.push(StaffNote {
                    rule: p.warranty_rules.join("/"),
                    text: n.clone(),
                });
            }
        }
        if let Some(r) = route {
            staff.push(StaffNote {
                rule: r.rule.clone(),
                text: format!("route to {}", r.to),
            });
        }
        staff
    }

    /// The `[[notice]]` texts that apply, in the request's language.
    fn notices(&mut self) -> Vec<NoticeOut> {
        let mut notices = Vec::new();
        for n in &self.policy.notices {
            if self.ctx.holds(&n.when) {
                self.rules.cite(&n.rule);
                notices.push(NoticeOut {
                    id: n.id.clone(),
                    rule: n.rule.clone(),
                    text: n.text.get(&self.req.language).cloned().unwrap_or_default(),
                });
            }
        }
        notices
    }
}

/// The contract as the evaluation shows it.
fn contract_out(m: &ContractMatch) -> ContractOut {
    ContractOut {
        serial: m.contract.serial.clone(),
        matched_by: m.by,
        company: m.contract.company.clone(),
        plans: m.contract.plans.clone(),
        technician: m.contract.technician.clone(),
    }
}
