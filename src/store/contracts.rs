//! Entitlements in the database: the contracts import and the lookup of a mail's contract.

use super::conn::Store;
use super::db::{OptionalExtension, Row, params};
use super::rows::ImportStats;
use crate::contracts::{Contract, ContractMatch, MatchedBy, address_key, serial_key, tax_id_key};
use anyhow::{Context, Result, bail};
use chrono::NaiveDate;

impl Store {
    /// Imports contracts in one transaction: a serial not yet known is inserted, a
    /// known one (by [`serial_key`]) is updated in place when anything differs.
    /// Contracts absent from `contracts` stay. On any error (an empty serial, the same
    /// serial twice) nothing is written.
    pub fn import_contracts(&mut self, contracts: &[Contract]) -> Result<ImportStats> {
        self.import_contracts_with(contracts, &mut |_| {})
    }

    /// [`Store::import_contracts`], telling `progress` how many rows are done.
    pub fn import_contracts_with(
        &mut self,
        contracts: &[Contract],
        progress: &mut dyn FnMut(usize),
    ) -> Result<ImportStats> {
        let tx = self.conn.transaction()?;
        let mut stats = ImportStats::default();
        let mut seen = std::collections::HashSet::new();
        for (i, c) in contracts.iter().enumerate() {
            progress(i);
            let key = serial_key(&c.serial);
            if key.is_empty() {
                bail!("contract {}: empty serial", i + 1);
            }
            if !seen.insert(key.clone()) {
                bail!("contract {}: serial {} appears twice", i + 1, c.serial);
            }
            let old: Option<Contract> = tx
                .query_row(
                    &format!("SELECT {CONTRACT_COLUMNS} FROM contracts WHERE serial_key = ?1"),
                    [&key],
                    contract_row,
                )
                .optional()
                .with_context(|| format!("cannot read contract {}", c.serial))?;
            let c = &Contract {
                email: address_key(&c.email),
                ..c.clone()
            };
            let values = params![
                c.serial,
                c.email,
                c.company,
                c.tax_id,
                c.tier,
                c.model,
                date_text(Some(c.purchased_on)),
                date_text(c.shipped_on),
                date_text(c.warranty_until),
                date_text(c.extended_until),
                date_text(c.extended_on),
                serde_json::to_string(&c.plans)?,
                date_text(c.plans_on),
                c.tickets_per_year.map(i64::from),
                c.technician,
                key,
                tax_id_key(&c.tax_id),
            ];
            match old {
                None => {
                    tx.execute(
                        &format!(
                            "INSERT INTO contracts ({CONTRACT_COLUMNS}, serial_key, tax_key)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                        ),
                        values,
                    )?;
                    stats.inserted += 1;
                }
                Some(old) if old == *c => stats.unchanged += 1,
                Some(_) => {
                    tx.prepare_cached("UPDATE contracts SET serial = ?1, email = ?2, company = ?3, tax_id = ?4, tier = ?5,
                             model = ?6, purchased_on = ?7, shipped_on = ?8, warranty_until = ?9,
                             extended_until = ?10, extended_on = ?11, plans = ?12, plans_on = ?13,
                             tickets_per_year = ?14, technician = ?15, tax_key = ?17
                         WHERE serial_key = ?16")?.execute(
                        values,
                    )?;
                    stats.updated += 1;
                }
            }
        }
        tx.commit()?;
        Ok(stats)
    }

    /// The contract of a mail, found exactly as `ContractBook::find` finds it: by the
    /// first of `serials` that has one, else by the sender's address, else by the first
    /// of `tax_ids` that has one; among several, the latest purchase, then the smallest
    /// serial key (`contracts::preferred`).
    pub fn find_contract(
        &self,
        serials: &[String],
        sender: &str,
        tax_ids: &[String],
    ) -> Result<Option<ContractMatch>> {
        let one = |sql: &str, key: &str| -> Result<Option<Contract>> {
            self.conn
                .prepare_cached(&format!(
                    "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE {sql}"
                ))?
                .query_row([key], contract_row)
                .optional()
        };
        let hit = |c: Contract, by| Ok(Some(ContractMatch { contract: c, by }));
        for s in serials {
            let key = serial_key(s);
            if key.is_empty() {
                continue;
            }
            if let Some(c) = one("serial_key = ?1", &key)? {
                return hit(c, MatchedBy::Serial);
            }
        }
        let sender = address_key(sender);
        if !sender.is_empty()
            && let Some(c) = one(
                "email = ?1 ORDER BY purchased_on DESC, serial_key ASC LIMIT 1",
                &sender,
            )?
        {
            return hit(c, MatchedBy::Email);
        }
        for t in tax_ids {
            let key = tax_id_key(t);
            if key.is_empty() {
                continue;
            }
            if let Some(c) = one(
                "tax_key = ?1 ORDER BY purchased_on DESC, serial_key ASC LIMIT 1",
                &key,
            )? {
                return hit(c, MatchedBy::TaxId);
            }
        }
        Ok(None)
    }

    /// Every contract, by serial (what `replay` copies into its stores).
    pub fn all_contracts(&self) -> Result<Vec<Contract>> {
        self.conn
            .prepare(&format!(
                "SELECT {CONTRACT_COLUMNS} FROM contracts ORDER BY serial_key"
            ))?
            .query_map((), contract_row)?
            .collect::<Result<_>>()
    }

    pub fn contract_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT count(*) FROM contracts")?
            .query_row((), |r| r.get(0))?)
    }
}

const CONTRACT_COLUMNS: &str = "serial, email, company, tax_id, tier, model, purchased_on, shipped_on, \
     warranty_until, extended_until, extended_on, plans, plans_on, tickets_per_year, technician";

fn date_text(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

fn date_column(r: &Row<'_>, i: usize) -> Result<Option<NaiveDate>> {
    let v: Option<String> = r.get(i)?;
    v.map(|s| {
        NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map_err(|e| anyhow::Error::from(e).context(format!("column {}", i)))
    })
    .transpose()
}

/// A `contracts` row selected with [`CONTRACT_COLUMNS`].
fn contract_row(r: &Row<'_>) -> Result<Contract> {
    let plans: String = r.get(11)?;
    let plans = serde_json::from_str(&plans)
        .map_err(|e| anyhow::Error::from(e).context(format!("column {}", 11)))?;
    let tickets: Option<i64> = r.get(13)?;
    Ok(Contract {
        serial: r.get(0)?,
        email: r.get(1)?,
        company: r.get(2)?,
        tax_id: r.get(3)?,
        tier: r.get(4)?,
        model: r.get(5)?,
        purchased_on: date_column(r, 6)?.context("column 6: purchased_on is NULL")?,
        shipped_on: date_column(r, 7)?,
        warranty_until: date_column(r, 8)?,
        extended_until: date_column(r, 9)?,
        extended_on: date_column(r, 10)?,
        plans,
        plans_on: date_column(r, 12)?,
        tickets_per_year: tickets.and_then(|n| u32::try_from(n).ok()),
        technician: r.get(14)?,
    })
}
