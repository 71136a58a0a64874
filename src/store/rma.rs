//! RMAs in the database: the `rma` table, written only as the projection of a ticket's `rma` events, and read back per ticket.

use super::columns::{ts, ts_column};
use super::conn::Store;
use super::db::{Conn, params};
use crate::model::{RmaRecord, RmaState, TicketId};
use anyhow::{Result, anyhow};
use chrono::{DateTime, Utc};

/// Writes what an `rma` event says into the ticket's RMA for `part`: a new
/// row for a part not seen before, else its new state (a code, once given,
/// and the first instant of each step are kept).
#[allow(clippy::too_many_arguments)]
pub(super) fn project(
    tx: &Conn,
    ticket: TicketId,
    part: &str,
    state: RmaState,
    code: Option<&str>,
    plans: &[String],
    expires_at: Option<DateTime<Utc>>,
    rule: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let at = |s: RmaState| (state == s).then(|| ts(now));
    tx.prepare_cached(
        "INSERT INTO rma (ticket_id, part, code, state, rule, plans, requested_at,
                          approved_at, issued_at, received_at, expires_at, updated_at,
                          shipped_at, returned_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?7, ?12, ?13)
         ON CONFLICT (ticket_id, part) DO UPDATE SET
             state = excluded.state,
             code = COALESCE(rma.code, excluded.code),
             plans = CASE WHEN excluded.plans <> '' THEN excluded.plans ELSE rma.plans END,
             approved_at = COALESCE(rma.approved_at, excluded.approved_at),
             issued_at = COALESCE(rma.issued_at, excluded.issued_at),
             received_at = COALESCE(rma.received_at, excluded.received_at),
             shipped_at = COALESCE(rma.shipped_at, excluded.shipped_at),
             returned_at = COALESCE(rma.returned_at, excluded.returned_at),
             expires_at = COALESCE(excluded.expires_at, rma.expires_at),
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        ticket.0,
        part,
        code,
        state.as_str(),
        rule,
        plans.join(","),
        ts(now),
        at(RmaState::Approved),
        at(RmaState::Issued),
        at(RmaState::Received),
        expires_at.map(ts),
        at(RmaState::Shipped),
        at(RmaState::Returned),
    ])?;
    Ok(())
}

impl Store {
    /// A ticket's RMAs, in the order they were asked for.
    pub fn rmas(&self, ticket: TicketId) -> Result<Vec<RmaRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT part, code, state, rule, plans, requested_at, issued_at, shipped_at,
                    received_at, returned_at, expires_at
             FROM rma WHERE ticket_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([ticket.0], |r| {
                let opt = |i: usize| -> Result<Option<DateTime<Utc>>> {
                    if r.is_null(i)? {
                        Ok(None)
                    } else {
                        ts_column(r, i).map(Some)
                    }
                };
                let state: String = r.get(2)?;
                let plans: String = r.get(4)?;
                Ok((
                    state,
                    RmaRecord {
                        ticket,
                        part: r.get(0)?,
                        code: r.get(1)?,
                        state: RmaState::Requested,
                        rule: r.get(3)?,
                        plans: plans
                            .split(',')
                            .filter(|p| !p.is_empty())
                            .map(String::from)
                            .collect(),
                        requested_at: ts_column(r, 5)?,
                        issued_at: opt(6)?,
                        shipped_at: opt(7)?,
                        received_at: opt(8)?,
                        returned_at: opt(9)?,
                        expires_at: opt(10)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(state, mut rec)| {
                rec.state = RmaState::parse(&state)
                    .ok_or_else(|| anyhow!("unknown RMA state {state:?} in the database"))?;
                Ok(rec)
            })
            .collect()
    }
}
