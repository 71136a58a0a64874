//! Time as packs write it: lengths (`8h`, `30d`, `5bd`), wall-clock arithmetic in the pack's zone, and the clocks an SLA runs on.

use crate::calendar::Calendar;
use crate::model::Span;
use chrono::{DateTime, Duration, Months, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

impl Span {
    pub fn parse(s: &str) -> Result<Span, String> {
        let s = s.trim();
        let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
        let (n, unit) = s.split_at(digits);
        let n: i64 = n
            .parse()
            .map_err(|_| format!("`{s}` is not a duration such as 8h, 30d, 2mo, 3y or 5bd"))?;
        let small = |n: i64| u32::try_from(n).map_err(|_| format!("`{s}` is too long"));
        Ok(match unit {
            "m" => Span::Minutes(n),
            "h" => Span::Minutes(n * 60),
            "d" => Span::Days(n),
            "w" => Span::Days(n * 7),
            "mo" => Span::Months(small(n)?),
            "y" => Span::Months(small(n * 12)?),
            "bd" => Span::BusinessDays(small(n)?),
            _ => {
                return Err(format!(
                    "`{s}` is not a duration such as 8h, 30d, 2mo, 3y or 5bd"
                ));
            }
        })
    }
}

/// Wall-clock arithmetic in `zone`: days and months move the local date and keep the local time.
pub(super) fn add_calendar(
    zone: Tz,
    t: DateTime<Utc>,
    span: Span,
    cal: &Calendar,
) -> DateTime<Utc> {
    let local = t.with_timezone(&zone).naive_local();
    let moved = match span {
        Span::Minutes(m) => return t + Duration::minutes(m),
        Span::Days(d) => local + Duration::days(d),
        Span::Months(m) => local.checked_add_months(Months::new(m)).unwrap_or(local),
        Span::BusinessDays(n) => {
            let d = cal.add_business_days(t, n);
            d.and_time(local.time())
        }
    };
    resolve(zone, moved)
}

pub(super) fn resolve(zone: Tz, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        // In a skipped hour: the same wall time an hour later exists.
        chrono::LocalResult::None => resolve(zone, local + Duration::hours(1)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    Business,
    #[serde(rename = "24x7")]
    AllHours,
    Calendar,
}

pub(super) fn clock_kind(s: &str) -> Result<ClockKind, String> {
    match s {
        "business" => Ok(ClockKind::Business),
        "24x7" => Ok(ClockKind::AllHours),
        "calendar" => Ok(ClockKind::Calendar),
        _ => Err(format!("clock `{s}` is business, 24x7 or calendar")),
    }
}
