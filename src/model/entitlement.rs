//! Entitlements as the decision and the store see them: a contract row, how a mail found it, what a ticket records of it, and the warranty it gives; `contracts` and `warranty` compute them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One unit under contract: a row of the contracts CSV.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    pub serial: String,
    /// Lowercased; empty when the contract names no address.
    pub email: String,
    pub company: String,
    /// As written in the file; matched through [`tax_id_key`].
    pub tax_id: String,
    pub tier: String,
    pub model: String,
    pub purchased_on: NaiveDate,
    pub shipped_on: Option<NaiveDate>,
    /// An explicit end of the standard warranty (last covered day).
    pub warranty_until: Option<NaiveDate>,
    /// The end of a bought extension (last covered day).
    pub extended_until: Option<NaiveDate>,
    /// Plan names, lowercased (e.g. `advanced_replacement`, `onsite`).
    pub plans: Vec<String>,
    pub tickets_per_year: Option<u32>,
    /// When the extension was bought (optional column `extended_on`): checked against
    /// the pack's extension window (QN-02) and reinstatement hold (IX-10).
    pub extended_on: Option<NaiveDate>,
    /// When the plans were bought (optional column `plans_on`): checked against the
    /// pack's extension window (QN-11).
    pub plans_on: Option<NaiveDate>,
    /// The staff member (a `[staff.members]` name) assigned to this
    /// customer (optional column `technician`): a pack route (AV-04, AV-05)
    /// gives the ticket to them. Empty when none.
    pub technician: String,
}

/// Which identifier found the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    Serial,
    Email,
    TaxId,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContractMatch {
    pub contract: Contract,
    pub by: MatchedBy,
}

/// What a ticket's history and the rules' output say of the contract that was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractOut {
    pub serial: String,
    pub matched_by: MatchedBy,
    pub company: String,
    pub plans: Vec<String>,
    /// The contract's assigned technician, empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub technician: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarrantyStatus {
    Active,
    Expired,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warranty {
    pub status: WarrantyStatus,
    /// The last covered day.
    pub until: Option<NaiveDate>,
    /// How `until` was reached, e.g. "series TS-x53: 2y from purchase 2025-03-01".
    pub basis: String,
    /// What staff should know, e.g. an extension bought outside its window.
    pub notes: Vec<String>,
    /// IX-10: no service ticket before this day (a warranty extended after it expired).
    pub hold_until: Option<NaiveDate>,
}
