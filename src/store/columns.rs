//! How values sit in columns: timestamps as fixed-width UTC text that sorts as it compares, ticket states by name; the readers and writers every store file shares.

use super::db::Row;
use crate::model::TicketStatus;
use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};

/// Timestamps are stored as fixed-width UTC text so that they sort as they compare.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A timestamp column, for row mappers.
pub(crate) fn ts_column(r: &Row<'_>, i: usize) -> Result<DateTime<Utc>> {
    let s: String = r.get(i)?;
    parse_ts(&s).map_err(|e| e.context(format!("column {}", i)))
}

/// A nullable timestamp column.
pub(crate) fn opt_ts_column(r: &Row<'_>, i: usize) -> Result<Option<DateTime<Utc>>> {
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(s) => parse_ts(&s)
            .map(Some)
            .map_err(|e| e.context(format!("column {}", i))),
    }
}

pub fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("bad timestamp {s:?} in the database"))?
        .with_timezone(&Utc))
}

/// A `tickets.status` column (the schema's CHECK allows only the four names).
pub(crate) fn status_column(r: &Row<'_>, i: usize) -> Result<TicketStatus> {
    let s: String = r.get(i)?;
    TicketStatus::parse(&s).ok_or_else(|| {
        anyhow::anyhow!(format!("unknown ticket status {s:?}")).context(format!("column {}", i))
    })
}
