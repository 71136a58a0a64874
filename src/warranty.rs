//! Warranty terms: a pack's `[warranty]` table and what it gives a contract on a given day.
//!
//! Pure: `today` is an argument. Readings chosen here (each pack states its terms in
//! these words):
//! - A term counts from the day after its start date, as periods are counted in law:
//!   30 days from 1 March end on 31 March, one year from 2025-03-01 ends on 2026-03-01,
//!   and that end day is still covered. A window ("within 60 days of purchase") is
//!   measured the same way: the last day inside it is purchase + 60 days.
//! - The standard end is the contract's `warranty_until` when it gives one, else the
//!   start date (purchase or ship, per `from`) plus the matching series term, else
//!   plus `standard`.
//! - `extended_until` moves the end later, capped at start + `max_total`.
//! - The CSV cannot say when an extension or a plan was bought unless it carries the
//!   optional `extended_on` / `plans_on` columns. When `extension_window` is set and
//!   `extended_on` is after purchase + window, the extension is not counted and a note
//!   says so (staff decide); a late `plans_on` only gives a note. When
//!   `reinstatement_hold` is set and `extended_on` is after the standard end (the
//!   warranty had expired when it was extended), `hold_until` = `extended_on` + hold.
//!   Without `extended_on` these checks cannot be made, and a note says that.

use crate::contracts::Contract;
use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// TOML shape for a pack's `[warranty]` table.
#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WarrantySpec {
    /// The rule IDs a pack's warranty table implements (read by the policy engine).
    #[serde(default)]
    pub rules: Vec<String>,
    /// "purchase" | "ship" (default purchase): which date the standard term counts from
    /// (IX-10 counts from the ship date, NX-06 from shipment).
    #[serde(default)]
    pub from: Option<String>,
    /// Standard term when no series matches, e.g. "1y", "90d", "30d", "18m".
    #[serde(default)]
    pub standard: Option<String>,
    /// QN-01: model series table: `[[warranty.series]] pattern = "TS-x53", term = "2y"`.
    #[serde(default)]
    pub series: Vec<SeriesTerm>,
    /// Longest total term with extensions, e.g. "5y" (QN-02: at most 5 years; IX-10: at most 7).
    #[serde(default)]
    pub max_total: Option<String>,
    /// Window after purchase in which an extension or a plan can be bought, e.g. "60d"
    /// (QN-02, QN-11).
    #[serde(default)]
    pub extension_window: Option<String>,
    /// IX-10: a warranty extended after it had expired holds service for this long, e.g. "21d".
    #[serde(default)]
    pub reinstatement_hold: Option<String>,
    /// QN-11: a plan that needs another, e.g. `plan_requires = { onsite = "advanced_replacement" }`.
    #[serde(default)]
    pub plan_requires: BTreeMap<String, String>,
}

/// One row of a model series table.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SeriesTerm {
    /// A model name in which a lowercase `x` stands for the bay-count digits
    /// (`TS-x53` holds TS-453D, TS-253D, TS-1253U); compared without regard to case.
    pub pattern: String,
    /// The standard term of the series, e.g. "2y".
    pub term: String,
}

pub use crate::model::{Warranty, WarrantyStatus};

/// A duration as packs write it: a number and d (days), w (weeks), m (months) or y (years).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    Days(u32),
    Months(u32),
}

impl Term {
    pub fn parse(s: &str) -> Option<Term> {
        let s = s.trim();
        let unit = s.chars().last()?;
        let digits = &s[..s.len() - unit.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = digits.parse().ok()?;
        if n == 0 || n > 100_000 {
            return None;
        }
        match unit {
            'd' => Some(Term::Days(n)),
            'w' => Some(Term::Days(n * 7)),
            'm' => Some(Term::Months(n)),
            'y' if n <= 1000 => Some(Term::Months(n * 12)),
            _ => None,
        }
    }

    /// `start` plus this term; months that lack the day end on the month's last day.
    pub fn after(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Term::Days(n) => start.checked_add_days(Days::new(n.into())),
            Term::Months(n) => start.checked_add_months(Months::new(n)),
        }
    }
}

/// Parses an optional term already accepted by [`validate`]; a bad one counts as absent.
fn term(s: &Option<String>) -> Option<(Term, &str)> {
    let s = s.as_deref()?;
    Term::parse(s).map(|t| (t, s.trim()))
}

/// Every problem of a `[warranty]` table, as sentences naming the bad entry.
pub fn validate(spec: &WarrantySpec) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let bad_term = |what: &str, v: &str| {
        format!("warranty {what} = \"{v}\" is not a term such as 90d, 6w, 18m or 2y")
    };
    if let Some(f) = &spec.from
        && f != "purchase"
        && f != "ship"
    {
        problems.push(format!(
            "warranty from = \"{f}\" is not one of purchase, ship"
        ));
    }
    for (what, v) in [
        ("standard", &spec.standard),
        ("max_total", &spec.max_total),
        ("extension_window", &spec.extension_window),
        ("reinstatement_hold", &spec.reinstatement_hold),
    ] {
        if let Some(v) = v
            && Term::parse(v).is_none()
        {
            problems.push(bad_term(what, v));
        }
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in spec.series.iter().enumerate() {
        let name = format!("series[{i}] (pattern \"{}\")", s.pattern);
        if Term::parse(&s.term).is_none() {
            problems.push(bad_term(&format!("{name}: term"), &s.term));
        }
        let p = s.pattern.trim();
        if p.is_empty() {
            problems.push(format!("warranty series[{i}]: the pattern is empty"));
            continue;
        }
        if p.matches('x').count() > 1 {
            problems.push(format!(
                "warranty {name}: more than one `x` (the one `x` stands for the bay count)"
            ));
        }
        if p.replace('x', "").is_empty() {
            problems.push(format!(
                "warranty {name}: the pattern needs text besides `x`"
            ));
        }
        if let Some(c) = p
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.' | ' ')))
        {
            problems.push(format!(
                "warranty {name}: `{c}` is not allowed in a model pattern"
            ));
        }
        if let Some(first) = seen.insert(p.to_string(), i) {
            problems.push(format!(
                "warranty {name}: the same pattern as series[{first}]"
            ));
        }
    }
    for (plan, needs) in &spec.plan_requires {
        if plan.trim().is_empty() || needs.trim().is_empty() {
            problems.push(format!(
                "warranty plan_requires: `{plan}` = `{needs}` needs two plan names"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// How well `pattern` matches `model`: `None` when it does not, else the number of
/// literal characters it matched (the longer, the more specific).
fn match_len(pattern: &str, model: &str) -> Option<usize> {
    let pat: Vec<char> = pattern.trim().chars().collect();
    let model: Vec<char> = model.trim().chars().flat_map(char::to_uppercase).collect();
    let literal = pat.iter().filter(|c| **c != 'x').count();
    // The pattern may start anywhere that is not inside a word ("QNAP TS-453D").
    (0..model.len())
        .filter(|&i| i == 0 || !model[i - 1].is_alphanumeric())
        .find(|&i| matches_at(&pat, &model[i..]))
        .map(|_| literal)
}

/// `pat` matches a prefix of `model`, and the model does not go on with a digit
/// (TS-x53 does not hold TS-4530); a letter suffix is the variant (TS-453Be).
fn matches_at(pat: &[char], model: &[char]) -> bool {
    let Some((first, rest)) = pat.split_first() else {
        return !model.first().is_some_and(char::is_ascii_digit);
    };
    if *first == 'x' {
        // One or two bay-count digits; try both lengths.
        (1..=2).any(|n| {
            model.len() >= n
                && model[..n].iter().all(char::is_ascii_digit)
                && matches_at(rest, &model[n..])
        })
    } else {
        let up: Vec<char> = first.to_uppercase().collect();
        model.len() >= up.len()
            && model[..up.len()] == up[..]
            && matches_at(rest, &model[up.len()..])
    }
}

/// The series a model belongs to (QN-01): the matching pattern with the most literal
/// characters, the earlier in the table on a tie.
pub fn series_of<'a>(model: &str, spec: &'a WarrantySpec) -> Option<&'a SeriesTerm> {
    let mut best: Option<(usize, &SeriesTerm)> = None;
    for s in &spec.series {
        if let Some(n) = match_len(&s.pattern, model)
            && best.is_none_or(|(b, _)| n > b)
        {
            best = Some((n, s));
        }
    }
    best.map(|(_, s)| s)
}

/// The warranty a contract has on `today` under `spec`.
pub fn evaluate(spec: &WarrantySpec, contract: Option<&Contract>, today: NaiveDate) -> Warranty {
    let unknown = |basis: String, notes: Vec<String>| Warranty {
        status: WarrantyStatus::Unknown,
        until: None,
        basis,
        notes,
        hold_until: None,
    };
    let Some(c) = contract else {
        return unknown("no contract".into(), vec![]);
    };
    let mut notes = Vec::new();
    let from_ship = spec.from.as_deref() == Some("ship");
    let (from_name, start) = if from_ship {
        ("ship", c.shipped_on)
    } else {
        ("purchase", Some(c.purchased_on))
    };

    // The standard end.
    let (base, mut basis) = if let Some(u) = c.warranty_until {
        (u, format!("contract warranty_until {u}"))
    } else {
        let Some(start) = start else {
            return unknown(
                format!("no {from_name} date to count the warranty from"),
                notes,
            );
        };
        let series = series_of(&c.model, spec);
        let chosen = match series {
            Some(s) => Term::parse(&s.term)
                .map(|t| (t, format!("series {}: {}", s.pattern, s.term.trim()))),
            None => term(&spec.standard).map(|(t, s)| (t, format!("standard {s}"))),
        };
        let Some((t, what)) = chosen else {
            return unknown(
                format!("no term for model `{}` and no standard term", c.model),
                notes,
            );
        };
        let Some(end) = t.after(start) else {
            return unknown(
                format!("{what} from {from_name} {start} is out of range"),
                notes,
            );
        };
        (end, format!("{what} from {from_name} {start}"))
    };

    // Windows after purchase for extensions and plans (QN-02, QN-11).
    let window = term(&spec.extension_window);
    let window_end = window.and_then(|(t, _)| t.after(c.purchased_on));
    let mut extension_counts = true;
    if let (Some((_, w)), Some(end)) = (window, window_end) {
        if c.extended_until.is_some() {
            match c.extended_on {
                Some(on) if on > end => {
                    extension_counts = false;
                    notes.push(format!(
                        "extension bought {on}, outside the {w} window after purchase {} (last day {end}): not counted",
                        c.purchased_on
                    ));
                }
                Some(_) => {}
                None => notes.push(format!(
                    "the contract does not say when the extension was bought (extended_on): the {w} window was not checked"
                )),
            }
        }
        if !c.plans.is_empty()
            && let Some(on) = c.plans_on
            && on > end
        {
            notes.push(format!(
                "plans {} bought {on}, outside the {w} window after purchase {} (last day {end})",
                c.plans.join(", "),
                c.purchased_on
            ));
        }
    }
    for (plan, needs) in &spec.plan_requires {
        let has = |p: &str| c.plans.iter().any(|x| x.eq_ignore_ascii_case(p.trim()));
        if has(plan) && !has(needs) {
            notes.push(format!(
                "plan {plan} needs plan {needs}, which the contract does not have"
            ));
        }
    }

    // The extension, capped at the longest total term.
    let mut until = base;
    if let Some(ext) = c.extended_until.filter(|_| extension_counts) {
        if ext <= base {
            notes.push(format!(
                "extended_until {ext} is not after the standard end {base}: ignored"
            ));
        } else {
            until = ext;
            basis.push_str(&format!("; extended to {ext}"));
            let cap_start = start.unwrap_or(c.purchased_on);
            if let Some((t, total)) = term(&spec.max_total)
                && let Some(cap) = t.after(cap_start)
                && ext > cap
            {
                until = cap.max(base);
                basis.push_str(&format!(
                    ", capped at {total} in total from {from_name} {cap_start}: {until}"
                ));
            }
        }
    }

    // IX-10: an extension bought after the warranty had expired holds service.
    let mut hold_until = None;
    if let Some((hold, h)) = term(&spec.reinstatement_hold)
        && c.extended_until.is_some()
        && extension_counts
    {
        match c.extended_on {
            Some(on) if on > base => {
                hold_until = hold.after(on);
                if let Some(hu) = hold_until {
                    notes.push(format!(
                        "extended on {on} after the warranty had expired on {base}: no service ticket before {hu} ({h} hold)"
                    ));
                }
            }
            Some(_) => {}
            None => notes.push(format!(
                "the contract does not say when the extension was bought (extended_on): the {h} reinstatement hold was not checked"
            )),
        }
    }

    Warranty {
        status: if today > until {
            WarrantyStatus::Expired
        } else {
            WarrantyStatus::Active
        },
        until: Some(until),
        basis,
        notes,
        hold_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn st(pattern: &str, term: &str) -> SeriesTerm {
        SeriesTerm {
            pattern: pattern.into(),
            term: term.into(),
        }
    }

    /// QN-01's table as the qnap pack writes it.
    fn qnap() -> WarrantySpec {
        let mut series = vec![st("TVS-ECx80U-SAS", "5y")];
        for p in ["TS-x79", "TS-x80", "TVS-x80", "TS-1685"] {
            series.push(st(p, "3y"));
        }
        for p in [
            "TS-x51", "TS-x53", "TS-x69", "TS-x70", "TVS-x63", "TVS-x71", "TVS-x82", "TS-1635",
            "TS-x31X",
        ] {
            series.push(st(p, "2y"));
        }
        WarrantySpec {
            from: None,
            standard: Some("1y".into()),
            series,
            max_total: Some("5y".into()),
            extension_window: Some("60d".into()),
            reinstatement_hold: None,
            plan_requires: [("onsite".to_string(), "advanced_replacement".to_string())].into(),
            ..WarrantySpec::default()
        }
    }

    fn unit(model: &str, purchased: &str) -> Contract {
        Contract {
            serial: "Q23A0001".into(),
            model: model.into(),
            purchased_on: d(purchased),
            ..Contract::default()
        }
    }

    // QN-01
    #[test]
    fn qn_01_models_belong_to_their_series() {
        let spec = qnap();
        let cases = [
            ("TS-453D", Some("TS-x53")),
            ("TS-453Be", Some("TS-x53")),
            ("ts-253d", Some("TS-x53")),
            ("TS-1253U-RP", Some("TS-x53")),
            ("QNAP TS-453D 4G", Some("TS-x53")),
            ("TS-1635", Some("TS-1635")),
            ("TS-1635AX", Some("TS-1635")),
            ("TS-1685", Some("TS-1685")),
            ("TS-431X", Some("TS-x31X")),
            ("TS-231X", Some("TS-x31X")),
            ("TS-431P", None),
            ("TVS-EC1080U-SAS", Some("TVS-ECx80U-SAS")),
            ("TVS-EC1680U-SAS-RP", Some("TVS-ECx80U-SAS")),
            ("TVS-880", Some("TVS-x80")),
            ("TS-880", Some("TS-x80")),
            ("TS-879U-RP", Some("TS-x79")),
            ("TS-1279U", Some("TS-x79")),
            ("TVS-682", Some("TVS-x82")),
            ("TS-4530", None),
            ("TS-12345", None),
            ("XTS-453", None),
            ("TS-x53", None),
            ("", None),
        ];
        for (model, want) in cases {
            assert_eq!(
                series_of(model, &spec).map(|s| s.pattern.as_str()),
                want,
                "{model}"
            );
        }
    }

    // QN-01
    #[test]
    fn qn_01_the_series_term_counts_from_purchase() {
        let spec = qnap();
        let w = evaluate(&spec, Some(&unit("TS-453D", "2025-03-01")), d("2027-03-01"));
        assert_eq!(w.status, WarrantyStatus::Active);
        assert_eq!(w.until, Some(d("2027-03-01")));
        assert_eq!(w.basis, "series TS-x53: 2y from purchase 2025-03-01");
        let w = evaluate(&spec, Some(&unit("TS-453D", "2025-03-01")), d("2027-03-02"));
        assert_eq!(w.status, WarrantyStatus::Expired);
        let w = evaluate(
            &spec,
            Some(&unit("TVS-EC1080U-SAS", "2025-03-01")),
            d("2030-03-01"),
        );
        assert_eq!(
            (w.status, w.until),
            (WarrantyStatus::Active, Some(d("2030-03-01")))
        );
        // A model in no series falls back to the standard term.
        let w = evaluate(&spec, Some(&unit("TS-431P", "2025-03-01")), d("2025-06-01"));
        assert_eq!(w.until, Some(d("2026-03-01")));
        assert_eq!(w.basis, "standard 1y from purchase 2025-03-01");
    }

    // QN-02
    #[test]
    fn qn_02_extension_follows_the_standard_term_and_is_capped_at_five_years() {
        let spec = qnap();
        let mut c = unit("TS-453D", "2025-03-01");
        c.extended_until = Some(d("2030-03-01"));
        c.extended_on = Some(d("2025-04-10"));
        let w = evaluate(&spec, Some(&c), d("2029-01-01"));
        assert_eq!(
            (w.status, w.until),
            (WarrantyStatus::Active, Some(d("2030-03-01")))
        );
        assert!(w.notes.is_empty(), "{:?}", w.notes);
        // Six years in total is more than QNAP sells: capped at five from purchase.
        c.extended_until = Some(d("2031-03-01"));
        let w = evaluate(&spec, Some(&c), d("2030-06-01"));
        assert_eq!(
            (w.status, w.until),
            (WarrantyStatus::Expired, Some(d("2030-03-01")))
        );
        assert!(w.basis.contains("capped at 5y"), "{}", w.basis);
    }

    // QN-02
    #[test]
    fn qn_02_an_extension_bought_after_the_60_day_window_is_not_counted() {
        let spec = qnap();
        let mut c = unit("TS-453D", "2025-03-01");
        c.extended_until = Some(d("2028-03-01"));
        // 2025-04-30 is purchase + 60 days: still inside.
        c.extended_on = Some(d("2025-04-30"));
        let w = evaluate(&spec, Some(&c), d("2027-06-01"));
        assert_eq!(
            (w.status, w.until),
            (WarrantyStatus::Active, Some(d("2028-03-01")))
        );
        c.extended_on = Some(d("2025-05-01"));
        let w = evaluate(&spec, Some(&c), d("2027-06-01"));
        assert_eq!(
            (w.status, w.until),
            (WarrantyStatus::Expired, Some(d("2027-03-01")))
        );
        assert!(
            w.notes[0].contains("outside the 60d window after purchase 2025-03-01"),
            "{:?}",
            w.notes
        );
        // Without a purchase date for the extension the window cannot be checked.
        c.extended_on = None;
        let w = evaluate(&spec, Some(&c), d("2027-06-01"));
        assert_eq!(w.until, Some(d("2028-03-01")));
        assert!(w.notes[0].contains("was not checked"), "{:?}", w.notes);
    }

    // QN-11
    #[test]
    fn qn_11_plans_bought_late_or_onsite_without_advanced_replacement_are_noted() {
        let spec = qnap();
        let mut c = unit("TS-453D", "2025-03-01");
        c.plans = vec!["advanced_replacement".into(), "onsite".into()];
        c.plans_on = Some(d("2025-04-15"));
        assert!(evaluate(&spec, Some(&c), d("2025-06-01")).notes.is_empty());
        c.plans_on = Some(d("2025-05-15"));
        let w = evaluate(&spec, Some(&c), d("2025-06-01"));
        assert_eq!(
            w.notes,
            vec![
                "plans advanced_replacement, onsite bought 2025-05-15, outside the 60d window after purchase 2025-03-01 (last day 2025-04-30)"
            ]
        );
        c.plans = vec!["onsite".into()];
        c.plans_on = None;
        let w = evaluate(&spec, Some(&c), d("2025-06-01"));
        assert_eq!(
            w.notes,
            vec!["plan onsite needs plan advanced_replacement, which the contract does not have"]
        );
    }

    fn ixsystems() -> WarrantySpec {
        WarrantySpec {
            from: Some("ship".into()),
            standard: Some("1y".into()),
            max_total: Some("7y".into()),
            reinstatement_hold: Some("21d".into()),
            ..WarrantySpec::default()
        }
    }

    // IX-10
    #[test]
    fn ix_10_warranty_counts_from_the_ship_date_and_extends_to_at_most_seven_years() {
        let spec = ixsystems();
        let mut c = unit("TrueNAS M40", "2024-01-10");
        c.shipped_on = Some(d("2024-02-01"));
        let w = evaluate(&spec, Some(&c), d("2025-01-15"));
        assert_eq!(
            (w.status, w.until),
            (WarrantyStatus::Active, Some(d("2025-02-01")))
        );
        assert_eq!(w.basis, "standard 1y from ship 2024-02-01");
        // A three-year term bought with the unit is written in the contract.
        c.warranty_until = Some(d("2027-02-01"));
        let w = evaluate(&spec, Some(&c), d("2026-01-15"));
        assert_eq!(w.until, Some(d("2027-02-01")));
        // Extended to ten years: capped at seven from the ship date.
        c.extended_until = Some(d("2034-02-01"));
        c.extended_on = Some(d("2024-02-01"));
        let w = evaluate(&spec, Some(&c), d("2031-02-02"));
        assert_eq!(
            (w.status, w.until),
            (WarrantyStatus::Expired, Some(d("2031-02-01")))
        );
        assert_eq!(w.hold_until, None);
        // No ship date and no explicit end: nothing to count from.
        let w = evaluate(
            &spec,
            Some(&unit("TrueNAS M40", "2024-01-10")),
            d("2024-06-01"),
        );
        assert_eq!((w.status, w.until), (WarrantyStatus::Unknown, None));
    }

    // IX-10
    #[test]
    fn ix_10_a_warranty_extended_after_it_expired_holds_service_21_days() {
        let spec = ixsystems();
        let mut c = unit("TrueNAS M40", "2024-01-10");
        c.shipped_on = Some(d("2024-02-01"));
        c.extended_until = Some(d("2027-02-01"));
        c.extended_on = Some(d("2025-03-10"));
        let w = evaluate(&spec, Some(&c), d("2025-03-20"));
        assert_eq!(w.status, WarrantyStatus::Active);
        assert_eq!(w.hold_until, Some(d("2025-03-31")));
        assert!(
            w.notes[0].contains("no service ticket before 2025-03-31"),
            "{:?}",
            w.notes
        );
        // Extended before it expired: no hold.
        c.extended_on = Some(d("2025-01-20"));
        let w = evaluate(&spec, Some(&c), d("2025-03-20"));
        assert_eq!(w.hold_until, None);
        assert!(w.notes.is_empty());
    }

    // NX-06
    #[test]
    fn nx_06_software_is_warranted_90_days_from_shipment() {
        let spec = WarrantySpec {
            from: Some("ship".into()),
            standard: Some("90d".into()),
            ..WarrantySpec::default()
        };
        let mut c = unit("HyperMAX", "2026-01-02");
        c.shipped_on = Some(d("2026-01-05"));
        let w = evaluate(&spec, Some(&c), d("2026-04-05"));
        assert_eq!(
            (w.status, w.until),
            (WarrantyStatus::Active, Some(d("2026-04-05")))
        );
        assert_eq!(w.basis, "standard 90d from ship 2026-01-05");
        let w = evaluate(&spec, Some(&c), d("2026-04-06"));
        assert_eq!(w.status, WarrantyStatus::Expired);
    }

    // AV-01
    #[test]
    fn av_01_free_support_lasts_30_days_from_purchase() {
        let spec = WarrantySpec {
            from: Some("purchase".into()),
            standard: Some("30d".into()),
            ..WarrantySpec::default()
        };
        let c = unit("Gateway AV7", "2026-03-01");
        let w = evaluate(&spec, Some(&c), d("2026-03-31"));
        assert_eq!(
            (w.status, w.until),
            (WarrantyStatus::Active, Some(d("2026-03-31")))
        );
        let w = evaluate(&spec, Some(&c), d("2026-04-01"));
        assert_eq!(w.status, WarrantyStatus::Expired);
        // No contract: unknown, whatever the day.
        let w = evaluate(&spec, None, d("2026-03-02"));
        assert_eq!((w.status, w.until), (WarrantyStatus::Unknown, None));
    }

    #[test]
    fn months_end_on_the_last_day_when_the_day_is_missing() {
        assert_eq!(
            Term::parse("1m").unwrap().after(d("2026-01-31")),
            Some(d("2026-02-28"))
        );
        assert_eq!(
            Term::parse("1y").unwrap().after(d("2024-02-29")),
            Some(d("2025-02-28"))
        );
        assert_eq!(Term::parse("2w"), Some(Term::Days(14)));
        for bad in ["", "y", "0d", "2 years", "-1d", "+1d", "1.5y", "3h", "１d"] {
            assert_eq!(Term::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn validate_names_every_bad_entry() {
        let spec: WarrantySpec = toml::from_str(
            r#"
from = "invoice"
standard = "1 year"
max_total = "5y"
[[series]]
pattern = "TS-x53"
term = "2y"
[[series]]
pattern = "TS-x5x"
term = "2y"
[[series]]
pattern = "TS-x53"
term = "forever"
"#,
        )
        .unwrap();
        let errs = validate(&spec).unwrap_err();
        assert_eq!(
            errs,
            vec![
                "warranty from = \"invoice\" is not one of purchase, ship",
                "warranty standard = \"1 year\" is not a term such as 90d, 6w, 18m or 2y",
                "warranty series[1] (pattern \"TS-x5x\"): more than one `x` (the one `x` stands for the bay count)",
                "warranty series[2] (pattern \"TS-x53\"): term = \"forever\" is not a term such as 90d, 6w, 18m or 2y",
                "warranty series[2] (pattern \"TS-x53\"): the same pattern as series[0]",
            ]
        );
        assert!(validate(&qnap()).is_ok());
        assert!(toml::from_str::<WarrantySpec>("colour = \"red\"").is_err());
    }
}
