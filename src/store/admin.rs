//! What the admin's tools read and change: the figures `/metrics` reports.

use super::{Store, parse_ts, ts};
use anyhow::Result;
use chrono::{DateTime, Utc};

/// The store's figures a scrape reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    pub outbox_queued: u64,
    /// When the oldest mail still queued was queued.
    pub oldest_queued: Option<DateTime<Utc>>,
    pub quarantined: u64,
    pub timers_pending: u64,
    /// Pending timers already due.
    pub timers_overdue: u64,
}

impl Store {
    /// The queue, quarantine and timer figures at `now`.
    pub fn gauges(&self, now: DateTime<Utc>) -> Result<Gauges> {
        let (outbox_queued, oldest): (i64, Option<String>) = self.conn.query_row(
            "SELECT count(*), min(created_at) FROM outbox WHERE status = 'queued'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let quarantined: i64 = self.conn.query_row(
            "SELECT count(*) FROM messages WHERE outcome = 'quarantined'",
            [],
            |r| r.get(0),
        )?;
        let (pending, overdue): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(due_at <= ?1), 0) FROM timers WHERE state = 'pending'",
            [ts(now)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Gauges {
            outbox_queued: outbox_queued as u64,
            oldest_queued: oldest.as_deref().map(parse_ts).transpose()?,
            quarantined: quarantined as u64,
            timers_pending: pending as u64,
            timers_overdue: overdue as u64,
        })
    }
}
