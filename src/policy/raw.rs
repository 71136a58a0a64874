//! The TOML shape of a pack's policy entries, as serde reads them (spans kept for file:line problems).

use super::lifecycle::RawLifecycle;
use super::rma::RawRma;
use crate::calendar::CalendarSpec;
use crate::warranty::WarrantySpec;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

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
    pub rma: Option<Spanned<RawRma>>,
    pub lifecycle: Option<Spanned<RawLifecycle>>,
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
    /// Words and phrases (a phrase matches across any whitespace).
    pub words: Vec<String>,
    /// Phrases that do not count: their text is taken out before the words
    /// are looked for ("DC replacement" is not a hardware replacement).
    #[serde(default)]
    pub not: Vec<String>,
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
    /// The vendor's to set: a target its published policy does not state.
    /// Staff are warned by it; the customer is promised nothing by it.
    #[serde(default)]
    pub internal: bool,
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
    /// A deadline's id: the promised day is never before that date (QJ-06:
    /// no visit before the maintenance starts).
    #[serde(default)]
    pub not_before: Option<String>,
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
    /// The allowance is sold (QJ-08's tickets): a customer whose contract
    /// lists no `tickets_per_year`, or who has no contract, has none, and the
    /// `quota_unsold` condition holds.
    #[serde(default)]
    pub sold: bool,
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
    /// The vendor answers in the pack's language only (QJ-09, AV-09).
    #[serde(default)]
    pub only: bool,
}
