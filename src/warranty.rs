//! Placeholder warranty terms (replaced by the real module on merge).
use crate::contracts::Contract;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarrantySpec {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub standard: Option<String>,
    #[serde(default)]
    pub series: Vec<SeriesTerm>,
    #[serde(default)]
    pub max_total: Option<String>,
    #[serde(default)]
    pub extension_window: Option<String>,
    #[serde(default)]
    pub reinstatement_hold: Option<String>,
}
#[derive(Debug, Clone, Deserialize)]
pub struct SeriesTerm {
    pub pattern: String,
    pub term: String,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WarrantyStatus {
    Active,
    Expired,
    Unknown,
}
#[derive(Debug, Clone, Serialize)]
pub struct Warranty {
    pub status: WarrantyStatus,
    pub until: Option<NaiveDate>,
    pub basis: String,
    pub notes: Vec<String>,
    pub hold_until: Option<NaiveDate>,
}
pub fn validate(_spec: &WarrantySpec) -> Result<(), Vec<String>> {
    Ok(())
}
pub fn evaluate(_spec: &WarrantySpec, contract: Option<&Contract>, today: NaiveDate) -> Warranty {
    let until = contract.and_then(|c| c.warranty_until);
    Warranty {
        status: match until {
            Some(u) if u >= today => WarrantyStatus::Active,
            Some(_) => WarrantyStatus::Expired,
            None => WarrantyStatus::Unknown,
        },
        until,
        basis: String::new(),
        notes: vec![],
        hold_until: None,
    }
}
