//! Compiling a pack's raw policy entries into a `Policy`, with file and line for every problem.

use super::checks::{rule_ok, span, texts, words_regex};
use super::compiled::*;
use super::conditions::{When, parse_cond};
use super::facts::FACTS;
use super::lifecycle::{self, Lifecycle};
use super::raw::{
    RawDeadline, RawEscalation, RawLanguage, RawMailboxRule, RawNotice, RawPolicy, RawPromise,
    RawQuota, RawRequire, RawRoute, RawSeverity, RawSla, RawStaff, RawTiers, RawTopic, RawVersions,
};
use super::rma;
use super::time::{ClockKind, clock_kind};
use crate::calendar::{Calendar, CalendarSpec};
use crate::contracts::ContractMatch;
use crate::diag::Report;
use crate::warranty::{self, WarrantySpec};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

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
            language_only: false,
            rma: None,
            lifecycle: Lifecycle::default(),
        }
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Compiles the policy entries, reporting each problem with its line.
    ///
    /// A `when` list may name the pack's topics and the deadlines compiled
    /// before it, so topics come first and deadlines before the entries
    /// that wait for them.
    pub(crate) fn compile(r: &mut Report<'_>, raw: RawPolicy, zone: Tz) -> Policy {
        let mut p = Policy::none(zone);
        if let Some(c) = raw.calendar {
            p.read_calendar(r, c, zone);
        }
        if let Some(w) = raw.warranty {
            p.read_warranty(r, w);
        }
        if let Some(t) = raw.tiers {
            p.default_tier = default_tier(r, t);
        }
        if let Some(s) = raw.severity {
            p.read_severity(r, s);
        }
        p.topics = raw.topic.into_iter().filter_map(|t| topic(r, t)).collect();
        for (fact, pats) in raw.facts {
            if let Some(res) = fact_patterns(r, &fact, pats) {
                p.facts.extra.insert(fact, res);
            }
        }
        let mut names = Names {
            topics: p.topics.iter().map(|t| t.id.clone()).collect(),
            deadlines: Vec::new(),
        };
        p.sla = raw.sla.into_iter().map(|s| sla(r, s, &names)).collect();
        p.escalations = raw
            .escalation
            .into_iter()
            .map(|e| escalation(r, e))
            .collect();
        p.requires = raw
            .require
            .into_iter()
            .map(|q| require(r, q, &names))
            .collect();
        for d in raw.deadline {
            let d = deadline(r, d, &names);
            names.deadlines.push(d.id.clone());
            p.deadlines.push(d);
        }
        p.promises = raw
            .promise
            .into_iter()
            .map(|x| promise(r, x, &names))
            .collect();
        p.quotas = raw.quota.into_iter().map(|q| quota(r, q, &names)).collect();
        p.routes = raw.route.into_iter().map(|x| route(r, x, &names)).collect();
        p.staff = raw.staff.into_iter().map(|x| staff(r, x, &names)).collect();
        p.mailbox_rules = raw
            .mailbox
            .into_iter()
            .map(|m| mailbox_rule(r, m, &names))
            .collect();
        p.versions = raw.versions.map(|v| versions(r, v));
        p.notices = raw
            .notice
            .into_iter()
            .map(|n| notice(r, n, &names))
            .collect();
        if let Some(l) = raw.language {
            p.read_language(r, l);
        }
        if let Some(x) = raw.rma {
            p.rma = Some(rma::compile(r, x, &names.topics));
        }
        if let Some(x) = raw.lifecycle {
            p.lifecycle = lifecycle::compile(r, x);
        }
        p
    }

    /// `[calendar]`: the business calendar and its rules.
    fn read_calendar(&mut self, r: &mut Report<'_>, raw: Spanned<CalendarSpec>, zone: Tz) {
        let at = raw.span().start;
        let spec = raw.into_inner();
        for id in &spec.rules {
            rule_ok(r, at, id);
        }
        match Calendar::build(zone, &spec) {
            Ok(cal) => self.calendar = cal,
            Err(es) => {
                for e in es {
                    r.at(at, format!("calendar: {e}"));
                }
            }
        }
        self.calendar_rules = spec.rules;
    }

    /// `[warranty]`: the terms and their rules.
    fn read_warranty(&mut self, r: &mut Report<'_>, raw: Spanned<WarrantySpec>) {
        let at = raw.span().start;
        let spec = raw.into_inner();
        for id in &spec.rules {
            rule_ok(r, at, id);
        }
        if let Err(es) = warranty::validate(&spec) {
            for e in es {
                r.at(at, format!("warranty: {e}"));
            }
        }
        self.warranty_rules = spec.rules.clone();
        self.warranty = spec;
    }

    /// `[severity]`: the default, the levels, the mailboxes' and the critical words.
    fn read_severity(&mut self, r: &mut Report<'_>, raw: Spanned<RawSeverity>) {
        let at = raw.span().start;
        let s = raw.into_inner();
        for id in &s.rules {
            rule_ok(r, at, id);
        }
        if s.default == 0 || s.default > s.levels {
            r.at(
                at,
                format!("severity: default {} is not in 1..={}", s.default, s.levels),
            );
        }
        self.severity_default = s.default;
        self.severity_levels = s.levels;
        self.severity_rules = s.rules;
        self.severity_mailbox = s.mailbox;
        if !s.critical.is_empty() {
            match words_regex(&s.critical) {
                Ok(re) => self.critical = Some(re),
                Err(e) => r.at(at, format!("severity.critical: {e}")),
            }
        }
    }

    /// `[language]`: the rules of the pack's language, and whether it answers in no other.
    fn read_language(&mut self, r: &mut Report<'_>, raw: Spanned<RawLanguage>) {
        let at = raw.span().start;
        let l = raw.into_inner();
        for id in &l.rules {
            rule_ok(r, at, id);
        }
        self.language_rules = l.rules;
        self.language_only = l.only;
    }

    /// The pack answers only in its own language, and the rules that say so.
    pub fn language_only(&self) -> Option<&[String]> {
        self.language_only.then_some(self.language_rules.as_slice())
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
        s.extend(self.rma.iter().flat_map(|x| x.rule_ids().map(String::from)));
        s.extend(self.lifecycle.waiting.iter().map(|(r, _, _)| r.clone()));
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

/// The names a `when` list may refer to: the pack's topics, and the
/// deadlines compiled so far (a condition names only an earlier deadline).
struct Names {
    topics: Vec<String>,
    deadlines: Vec<String>,
}

impl Names {
    /// A `when` list, each condition it cannot read reported at `at`.
    fn when(&self, r: &mut Report<'_>, at: usize, list: &[String]) -> When {
        self.when_naming(r, at, list, &self.deadlines)
    }

    /// A `when` list that may name no deadline (quotas and mailboxes are
    /// decided before any deadline is computed).
    fn when_before_deadlines(&self, r: &mut Report<'_>, at: usize, list: &[String]) -> When {
        self.when_naming(r, at, list, &[])
    }

    fn when_naming(
        &self,
        r: &mut Report<'_>,
        at: usize,
        list: &[String],
        deadlines: &[String],
    ) -> When {
        let mut w = When::default();
        for c in list {
            match parse_cond(c, deadlines, &self.topics) {
                Ok(c) => w.0.push(c),
                Err(e) => r.at(at, e),
            }
        }
        w
    }
}

/// A clock name; the business clock when it is none.
fn clock(r: &mut Report<'_>, at: usize, s: &str) -> ClockKind {
    clock_kind(s).unwrap_or_else(|e| {
        r.at(at, e);
        ClockKind::Business
    })
}

/// `[tiers]`: the default tier, which must be a known one.
fn default_tier(r: &mut Report<'_>, raw: Spanned<RawTiers>) -> String {
    let at = raw.span().start;
    let t = raw.into_inner();
    if !t.known.contains(&t.default) {
        r.at(
            at,
            format!("tiers: default `{}` is not in `known`", t.default),
        );
    }
    t.default.to_ascii_lowercase()
}

/// A `[[topic]]`: its words and the phrases that do not count; none when
/// its words do not compile.
fn topic(r: &mut Report<'_>, raw: Spanned<RawTopic>) -> Option<Topic> {
    let at = raw.span().start;
    let t = raw.into_inner();
    if let Some(id) = &t.rule {
        rule_ok(r, at, id);
    }
    let not = if t.not.is_empty() {
        None
    } else {
        match words_regex(&t.not) {
            Ok(re) => Some(re),
            Err(e) => {
                r.at(at, format!("topic `{}`: not: {e}", t.id));
                None
            }
        }
    };
    match words_regex(&t.words) {
        Ok(re) => Some(Topic {
            id: t.id,
            rule: t.rule,
            re,
            not,
        }),
        Err(e) => {
            r.at(at, format!("topic `{}`: {e}", t.id));
            None
        }
    }
}

/// `[facts]`: a fact's extra patterns (those that compile); none when it
/// is not a fact.
fn fact_patterns(r: &mut Report<'_>, fact: &str, pats: Spanned<Vec<String>>) -> Option<Vec<Regex>> {
    let at = pats.span().start;
    if !FACTS.contains(&fact) {
        r.at(
            at,
            format!("facts.{fact}: not a fact ({})", FACTS.join(", ")),
        );
        return None;
    }
    let mut res = Vec::new();
    for pat in pats.get_ref() {
        match regex::RegexBuilder::new(pat).size_limit(1 << 20).build() {
            Ok(re) => res.push(re),
            Err(e) => r.at(at, format!("facts.{fact}: pattern `{pat}`: {e}")),
        }
    }
    Some(res)
}

/// An `[[sla]]`: a first-response target on its clock.
fn sla(r: &mut Report<'_>, raw: Spanned<RawSla>, names: &Names) -> Sla {
    let at = raw.span().start;
    let s = raw.into_inner();
    rule_ok(r, at, &s.rule);
    Sla {
        when: names.when(r, at, &s.when),
        within: span(r, at, "sla.within", &s.within),
        clock: clock(r, at, &s.clock),
        internal: s.internal,
        rule: s.rule,
    }
}

/// An `[[escalation]]` step of a severity.
fn escalation(r: &mut Report<'_>, raw: Spanned<RawEscalation>) -> Escalation {
    let at = raw.span().start;
    let e = raw.into_inner();
    rule_ok(r, at, &e.rule);
    Escalation {
        after: span(r, at, "escalation.after", &e.after),
        severity: e.severity,
        to: e.to,
        rule: e.rule,
    }
}

/// A `[[require]]`: the facts a request must and should carry.
fn require(r: &mut Report<'_>, raw: Spanned<RawRequire>, names: &Names) -> Require {
    let at = raw.span().start;
    let q = raw.into_inner();
    rule_ok(r, at, &q.rule);
    for f in q.facts.iter().chain(&q.recommended) {
        if !FACTS.contains(&f.as_str()) {
            r.at(
                at,
                format!("require: `{f}` is not a fact ({})", FACTS.join(", ")),
            );
        }
    }
    Require {
        when: names.when(r, at, &q.when),
        facts: q.facts,
        recommended: q.recommended,
        rule: q.rule,
    }
}

/// A `[[deadline]]`: what it counts from, how far, on which clock.
fn deadline(r: &mut Report<'_>, raw: Spanned<RawDeadline>, names: &Names) -> DeadlineRule {
    let at = raw.span().start;
    let d = raw.into_inner();
    rule_ok(r, at, &d.rule);
    let from = match d.from.as_str() {
        "arrival" => From::Arrival,
        "acknowledged" => From::Acknowledged,
        "shipped_on" => From::ShippedOn,
        "purchased_on" => From::PurchasedOn,
        "ticket_created" => From::TicketCreated,
        other => {
            r.at(
                at,
                format!(
                    "deadline `{}`: from `{other}` is arrival, acknowledged, shipped_on, purchased_on or ticket_created",
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
    DeadlineRule {
        when: names.when(r, at, &d.when),
        from,
        after: span(r, at, "deadline.after", &d.after),
        clock: clock(r, at, &d.clock),
        month_start,
        remind_before: d
            .remind_before
            .as_deref()
            .map(|s| span(r, at, "deadline.remind_before", s)),
        rule: d.rule,
        id: d.id,
    }
}

/// A `[[promise]]`: business days before and after a cutoff, perhaps
/// waiting for an earlier deadline.
fn promise(r: &mut Report<'_>, raw: Spanned<RawPromise>, names: &Names) -> Promise {
    let at = raw.span().start;
    let pr = raw.into_inner();
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
    if let Some(d) = &pr.not_before
        && !names.deadlines.contains(d)
    {
        r.at(
            at,
            format!(
                "promise `{}`: not_before `{d}` is not a [[deadline]] of the pack",
                pr.id
            ),
        );
    }
    Promise {
        when: names.when(r, at, &pr.when),
        not_before: pr.not_before,
        cutoff,
        before: pr.before,
        after: pr.after.unwrap_or(pr.before),
        rule: pr.rule,
        id: pr.id,
    }
}

/// A `[[quota]]`: a counted allowance a year or a contract term.
fn quota(r: &mut Report<'_>, raw: Spanned<RawQuota>, names: &Names) -> Quota {
    let at = raw.span().start;
    let q = raw.into_inner();
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
    Quota {
        when: names.when_before_deadlines(r, at, &q.when),
        free_when: names.when_before_deadlines(r, at, &q.free_when),
        limit: q.limit,
        yearly,
        limit_from_contract: q.limit_from_contract,
        sold: q.sold,
        rule: q.rule,
        id: q.id,
    }
}

/// A `[[route]]`: who handles the request.
fn route(r: &mut Report<'_>, raw: Spanned<RawRoute>, names: &Names) -> Line {
    let at = raw.span().start;
    let x = raw.into_inner();
    line(r, at, x.rule, &x.when, x.to, names)
}

/// A `[[staff]]` line: what staff must decide.
fn staff(r: &mut Report<'_>, raw: Spanned<RawStaff>, names: &Names) -> Line {
    let at = raw.span().start;
    let x = raw.into_inner();
    line(r, at, x.rule, &x.when, x.text, names)
}

fn line(
    r: &mut Report<'_>,
    at: usize,
    rule: String,
    when: &[String],
    text: String,
    names: &Names,
) -> Line {
    rule_ok(r, at, &rule);
    Line {
        when: names.when(r, at, when),
        text,
        rule,
    }
}

/// A `[[mailbox]]` rule: who may use a mailbox.
fn mailbox_rule(r: &mut Report<'_>, raw: Spanned<RawMailboxRule>, names: &Names) -> MailboxRule {
    let at = raw.span().start;
    let m = raw.into_inner();
    rule_ok(r, at, &m.rule);
    MailboxRule {
        requires: names.when_before_deadlines(r, at, &m.requires),
        mailbox: m.mailbox,
        rule: m.rule,
    }
}

/// `[versions]`: the release history, and how long a superseded version
/// stays supported.
fn versions(r: &mut Report<'_>, raw: Spanned<RawVersions>) -> Versions {
    let at = raw.span().start;
    let v = raw.into_inner();
    rule_ok(r, at, &v.rule);
    let mut releases = Vec::new();
    for rel in v.release {
        let date = rel
            .released_on
            .date
            .and_then(|d| NaiveDate::from_ymd_opt(d.year as i32, d.month as u32, d.day as u32));
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
    Versions {
        window: span(
            r,
            at,
            "versions.supported_after_successor",
            &v.supported_after_successor,
        ),
        releases,
        rule: v.rule,
    }
}

/// A `[[notice]]`: a sentence the acknowledgement carries, in each language.
fn notice(r: &mut Report<'_>, raw: Spanned<RawNotice>, names: &Names) -> Notice {
    let at = raw.span().start;
    let n = raw.into_inner();
    rule_ok(r, at, &n.rule);
    let text = texts(r, at, &format!("notice `{}`", n.id), &n.text);
    Notice {
        when: names.when(r, at, &n.when),
        text,
        rule: n.rule,
        id: n.id,
    }
}
