//! `when` conditions: the flags and `key=value` forms a policy entry is switched on by, parsed once at compile time.

use super::facts::FACTS;
use crate::model::WarrantyStatus;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cond {
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
pub(super) struct When(pub(super) Vec<(bool, Vec<Cond>)>);

const FLAGS: &[&str] = &[
    "new",
    "rma_issued",
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
    "unknown_version",
    "quota_unsold",
    "missing",
];

/// One entry of a `when` list: `|` separates alternatives, and a bare value
/// takes the key before it (`tier=gold|silver`, `mailbox=rma|topic=warranty`).
pub(super) fn parse_cond(
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
