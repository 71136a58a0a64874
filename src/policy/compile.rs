//! Compiling a pack's raw policy entries into a `Policy`, with file and line for every problem.

use super::checks::{rule_ok, span, texts, words_regex};
use super::compiled::*;
use super::conditions::{When, parse_cond};
use super::facts::FACTS;
use super::lifecycle::{self, Lifecycle};
use super::raw::RawPolicy;
use super::rma;
use super::time::{ClockKind, clock_kind};
use crate::calendar::Calendar;
use crate::contracts::ContractMatch;
use crate::diag::Report;
use crate::warranty::{self, WarrantySpec};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

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
    pub(crate) fn compile(r: &mut Report<'_>, raw: RawPolicy, zone: Tz) -> Policy {
        let mut p = Policy::none(zone);
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
                Ok(re) => p.topics.push(Topic {
                    id: t.id,
                    rule: t.rule,
                    re,
                    not,
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
                internal: s.internal,
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
            if let Some(d) = &pr.not_before
                && !deadline_ids.contains(d)
            {
                r.at(
                    at,
                    format!(
                        "promise `{}`: not_before `{d}` is not a [[deadline]] of the pack",
                        pr.id
                    ),
                );
            }
            p.promises.push(Promise {
                when: when(r, at, &pr.when, &deadline_ids),
                not_before: pr.not_before,
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
                sold: q.sold,
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
            let text = texts(r, at, &format!("notice `{}`", n.id), &n.text);
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
            p.language_only = l.only;
        }
        if let Some(x) = raw.rma {
            p.rma = Some(rma::compile(r, x, &topics));
        }
        if let Some(x) = raw.lifecycle {
            p.lifecycle = lifecycle::compile(r, x);
        }
        p
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
