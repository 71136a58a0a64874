//! How values sit in columns: timestamps as fixed-width UTC text that sorts as it compares, ticket states by name; the readers and writers every store file shares.

use crate::model::TicketStatus;
use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};

/// Timestamps are stored as fixed-width UTC text so that they sort as they compare.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A timestamp column, for row mappers.
pub(crate) fn ts_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    let s: String = r.get(i)?;
    parse_ts(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// A nullable timestamp column.
pub(crate) fn opt_ts_column(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(s) => parse_ts(&s).map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
        }),
    }
}

pub fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("bad timestamp {s:?} in the database"))?
        .with_timezone(&Utc))
}

/// A `tickets.status` column (the schema's CHECK allows only the four names).
pub(crate) fn status_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<TicketStatus> {
    let s: String = r.get(i)?;
    TicketStatus::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown ticket status {s:?}").into(),
        )
    })
}
