//! Business calendars: weekly opening hours in an IANA zone, holidays and closures, and business-time arithmetic.
//!
//! Pure: no I/O and no clock reads; every operation takes the instant it is about. A
//! [`Calendar`] is built from a [`CalendarSpec`] (the `[calendar]` table of a vendor pack)
//! and a zone, and is cheap to clone (one shared allocation).
//!
//! # `hours`
//!
//! Each entry is `"24x7"` (always open) or `DAYS WINDOWS`:
//!
//! - `DAYS` is a comma-separated list of days (`mon`, `tue`, `wed`, `thu`, `fri`, `sat`,
//!   `sun`, or the full English names) and day ranges (`mon-fri`; a range may wrap, as in
//!   `fri-mon`), or one of `daily`, `weekdays` (mon-fri), `weekends` (sat, sun).
//! - `WINDOWS` is one or more `HH:MM-HH:MM` windows separated by commas or spaces. Hours
//!   may have one digit (`9:00`); `24:00` is allowed as an end. A window must end after it
//!   starts: one that crosses midnight is written as two entries
//!   (`"mon 22:00-24:00"`, `"tue 00:00-06:00"`).
//!
//! Examples: `"mon-fri 06:00-18:00"`, `"mon-thu 09:00-14:00, 15:00-18:00"`,
//! `"sat 09:00-13:00"`. Several entries may name the same day; overlapping or touching
//! windows are merged. Matching is case-insensitive.
//!
//! Windows are local wall-clock time in the zone. On a day when the clocks go forward, a
//! window edge inside the skipped hour is the first instant after the gap; on a day when
//! they go back, an edge inside the repeated hour is its first occurrence. A window's
//! length is real elapsed time, so `"daily 00:00-04:00"` lasts 3 hours on a spring-forward
//! night and 5 on a fall-back one in America/Chicago.
//!
//! # `holidays`
//!
//! Names of shipped sets, computed for any year (not tables):
//!
//! - `us-federal`: New Year's Day, Martin Luther King Jr. Day, Washington's Birthday,
//!   Memorial Day, Juneteenth (from 2021), Independence Day, Labor Day, Columbus Day,
//!   Veterans Day, Thanksgiving Day, Christmas Day. A fixed-date holiday on a Saturday is
//!   also observed on the Friday before (New Year's Day on 31 December), on a Sunday on the
//!   Monday after; both the date and the observed day are closed.
//! - `jp-national`: the national holidays under the current law (and its changes since
//!   2000: the 2019 enthronement days, the 2020/2021 Olympic moves), equinoxes by the
//!   standard approximation formula, 振替休日 and 国民の休日. Names are Japanese.
//! - `jp-year-end`: 29 December to 3 January (年末年始休業).
//! - `es-national`: Spain's ten national holidays, Good Friday by the Easter computus.
//!   Names are Spanish.
//!
//! # `closures`
//!
//! Extra closed days. Each entry is `WHEN [observed] [: NAME]`, case-insensitive:
//!
//! | `WHEN` | meaning |
//! | --- | --- |
//! | `2026-12-24` | that date |
//! | `2026-12-24..2027-01-02` | every day of the range, both ends included (at most 366 days) |
//! | `12-24` | that day every year (`02-29` only in leap years) |
//! | `12-29..01-03` | that range every year; it may wrap over the new year |
//! | `ORD DAY of MONTH` | `ORD` is `1st`..`5th`, `first`..`fifth` or `last`; `DAY` as in `hours`; `MONTH` is `jan`..`dec` or the full name: `3rd mon of jan`, `last mon of may`, `4th thu of nov` (a year without a 5th such day has no closure) |
//!
//! `observed` (single days only) also closes the weekday the day is observed on when it
//! falls on a weekend: Saturday moves to the Friday before, Sunday to the Monday after.
//! `: NAME` names the closure for [`Calendar::holiday_name`] (default: `closure ` and the
//! entry). Example: `"12-24 observed: Christmas Eve"`.
//!
//! # Validation
//!
//! [`Calendar::build`] returns every problem, each a sentence naming the entry. A calendar
//! must have at least one opening window, and every year from 2000 to 2100 must keep at
//! least one business day. Searches for the next opening stop after
//! [`SCAN_LIMIT_DAYS`] closed days in a row; a calendar that `build` accepted never
//! gets there inside 2000..2100.

mod closures;
mod holidays;
#[cfg(test)]
mod tests;

use chrono::{
    DateTime, Datelike, Days, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Utc,
};
use chrono_tz::Tz;
use closures::Closure;
use holidays::HolidaySet;
pub(crate) use holidays::parse_weekday;
use serde::Deserialize;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// The TOML shape, used inside a vendor pack as `[calendar]`. See the module documentation
/// for the grammar of each field.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// The rule IDs a pack's calendar implements (read by the policy engine).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Weekly opening windows, e.g. `["mon-fri 06:00-18:00", "sat 09:00-13:00"]`; several per
    /// day allowed; `"24x7"` means always open.
    pub hours: Vec<String>,
    /// Shipped holiday sets by name: `us-federal`, `jp-national`, `jp-year-end`, `es-national`.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Extra closures: `2026-12-24`, `2026-12-24..2027-01-02`, `12-24`, `12-29..01-03`,
    /// `3rd mon of jan`, `last mon of may`, optionally with ` observed` and `: name`.
    #[serde(default)]
    pub closures: Vec<String>,
}

/// Consecutive closed days after which a search for an opening gives up.
pub const SCAN_LIMIT_DAYS: u32 = 3 * 366 + 7;

const MINUTES_PER_DAY: u16 = 24 * 60;
/// Years whose closed days are computed once and kept.
const CACHE_FIRST_YEAR: i32 = 1970;
const CACHE_YEARS: usize = 231;
/// Years that must each keep a business day.
const CHECKED_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// A business calendar: opening windows in a zone, minus holidays and closures.
#[derive(Clone)]
pub struct Calendar {
    inner: Arc<Inner>,
}

struct Inner {
    zone: Tz,
    /// Opening windows per weekday (Monday first), minutes from local midnight, sorted and
    /// merged, each `start < end <= 1440`.
    week: [Vec<(u16, u16)>; 7],
    sets: Vec<HolidaySet>,
    closures: Vec<Closure>,
    /// Open every minute of every day with no closed days: arithmetic is plain UTC.
    continuous: bool,
    /// Closed days with their names, per year from CACHE_FIRST_YEAR, sorted by date.
    years: Vec<OnceLock<Vec<(NaiveDate, String)>>>,
}

type Interval = (DateTime<Utc>, DateTime<Utc>);

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let week: Vec<String> = days
            .iter()
            .zip(&inner.week)
            .filter(|(_, windows)| !windows.is_empty())
            .map(|(day, windows)| {
                let list: Vec<String> = windows
                    .iter()
                    .map(|&(s, e)| format!("{}-{}", hhmm(s), hhmm(e)))
                    .collect();
                format!("{day} {}", list.join(","))
            })
            .collect();
        let sets: Vec<&str> = inner.sets.iter().map(|s| s.name()).collect();
        let closures: Vec<&str> = inner.closures.iter().map(|c| c.name.as_str()).collect();
        f.debug_struct("Calendar")
            .field("zone", &inner.zone.name())
            .field("hours", &week)
            .field("holidays", &sets)
            .field("closures", &closures)
            .finish()
    }
}

impl Calendar {
    /// Validates `spec` in `zone`; each error is a sentence naming the offending entry.
    pub fn build(zone: Tz, spec: &CalendarSpec) -> Result<Calendar, Vec<String>> {
        let mut errors = Vec::new();
        let mut week: [Vec<(u16, u16)>; 7] = Default::default();
        if spec.hours.is_empty() {
            errors.push(
                "hours: no opening windows; give entries such as \"mon-fri 09:00-17:00\", or \"24x7\""
                    .to_string(),
            );
        }
        for entry in &spec.hours {
            match parse_hours(entry) {
                Ok(windows) => {
                    for (day, start, end) in windows {
                        week[day].push((start, end));
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        for windows in &mut week {
            merge(windows);
        }
        let mut sets = Vec::new();
        for name in &spec.holidays {
            match HolidaySet::by_name(name.trim()) {
                Some(set) if !sets.contains(&set) => sets.push(set),
                Some(_) => {}
                None => {
                    let known: Vec<&str> = HolidaySet::ALL.iter().map(|s| s.name()).collect();
                    errors.push(format!(
                        "holidays entry {name:?}: unknown holiday set (known: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        let mut closures = Vec::new();
        for entry in &spec.closures {
            match closures::parse(entry) {
                Ok(closure) => closures.push(closure),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let calendar = Calendar::from_parts(zone, week, sets, closures);
        if !calendar.inner.week.iter().all(Vec::is_empty) {
            for year in CHECKED_YEARS {
                if !calendar.year_has_business_day(year) {
                    return Err(vec![format!(
                        "closures: no business day is left in {year}: every open weekday is a holiday or a closure"
                    )]);
                }
            }
        }
        Ok(calendar)
    }

    /// A 24x7 clock: always open, no holidays.
    pub fn always_open(zone: Tz) -> Calendar {
        let week = std::array::from_fn(|_| vec![(0, MINUTES_PER_DAY)]);
        Calendar::from_parts(zone, week, Vec::new(), Vec::new())
    }

    fn from_parts(
        zone: Tz,
        week: [Vec<(u16, u16)>; 7],
        sets: Vec<HolidaySet>,
        closures: Vec<Closure>,
    ) -> Calendar {
        let continuous = sets.is_empty()
            && closures.is_empty()
            && week.iter().all(|w| w.as_slice() == [(0, MINUTES_PER_DAY)]);
        let years = (0..CACHE_YEARS).map(|_| OnceLock::new()).collect();
        Calendar {
            inner: Arc::new(Inner {
                zone,
                week,
                sets,
                closures,
                continuous,
                years,
            }),
        }
    }

    /// The calendar's zone.
    pub fn zone(&self) -> Tz {
        self.inner.zone
    }

    /// Whether `t` is inside an opening window (windows include their start, not their end).
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        if self.inner.continuous {
            return true;
        }
        let today = self.local_date(t);
        let mut buf = Vec::new();
        [today.pred_opt(), Some(today), today.succ_opt()]
            .into_iter()
            .flatten()
            .any(|day| {
                buf.clear();
                self.day_openings(day, &mut buf);
                buf.iter().any(|&(s, e)| s <= t && t < e)
            })
    }

    /// A weekday with at least one opening window that is not a holiday or closure.
    pub fn is_business_day(&self, d: NaiveDate) -> bool {
        !self.inner.week[d.weekday().num_days_from_monday() as usize].is_empty()
            && !self.is_closed(d)
    }

    /// The name of the holiday or closure on `d` (also when it falls on a day without
    /// opening hours), e.g. "Thanksgiving Day", "振替休日", "Viernes Santo".
    pub fn holiday_name(&self, d: NaiveDate) -> Option<String> {
        self.with_year(d.year(), |days| {
            days.binary_search_by_key(&d, |(date, _)| *date)
                .ok()
                .map(|i| days[i].1.clone())
        })
    }

    /// Every holiday and closure dated in `year`, in date order, with its name.
    pub fn holidays_in_year(&self, year: i32) -> Vec<(NaiveDate, String)> {
        self.with_year(year, <[(NaiveDate, String)]>::to_vec)
    }

    /// `t` itself when open, else the start of the next opening window.
    pub fn next_open(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if self.inner.continuous {
            return t;
        }
        self.openings_from(t)
            .find(|&(_, e)| e > t)
            .map_or_else(|| horizon(t), |(s, _)| s.max(t))
    }

    /// `t` plus `d` of business time (only time inside opening windows counts). `d <= 0`
    /// gives `t`. A result is open or exactly the end of a window.
    pub fn add_business(&self, t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        if d <= Duration::zero() {
            return t;
        }
        if self.inner.continuous {
            return t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC);
        }
        let mut remaining = d;
        for (s, e) in self.openings_from(t) {
            if e <= t {
                continue;
            }
            let s = s.max(t);
            let available = e - s;
            if remaining <= available {
                return s + remaining;
            }
            remaining -= available;
        }
        horizon(t)
    }

    /// Business time between `a` and `b` (zero when `b <= a`).
    pub fn business_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if b <= a {
            return Duration::zero();
        }
        if self.inner.continuous {
            return b - a;
        }
        let mut total = Duration::zero();
        for (s, e) in self.openings_from(a) {
            if s >= b {
                break;
            }
            if e <= a {
                continue;
            }
            total += e.min(b) - s.max(a);
        }
        total
    }

    /// The date `n` business days after the local date of `t`; with `n = 0`, `t`'s date if
    /// it is a business day, else the next business day.
    pub fn add_business_days(&self, t: DateTime<Utc>, n: u32) -> NaiveDate {
        let mut day = self.local_date(t);
        let mut counted = 0;
        let mut closed_run = 0;
        if n == 0 {
            while !self.is_business_day(day) && closed_run < SCAN_LIMIT_DAYS {
                let Some(next) = day.succ_opt() else { break };
                day = next;
                closed_run += 1;
            }
            return day;
        }
        while counted < n && closed_run < SCAN_LIMIT_DAYS {
            let Some(next) = day.succ_opt() else { break };
            day = next;
            if self.is_business_day(day) {
                counted += 1;
                closed_run = 0;
            } else {
                closed_run += 1;
            }
        }
        day
    }

    /// The first opening instant of `d`, or `None` when `d` is not a business day.
    pub fn business_day_start(&self, d: NaiveDate) -> Option<DateTime<Utc>> {
        let mut buf = Vec::new();
        self.day_openings(d, &mut buf);
        buf.first().map(|&(s, _)| s)
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.inner.zone).date_naive()
    }

    fn is_closed(&self, d: NaiveDate) -> bool {
        self.with_year(d.year(), |days| {
            days.binary_search_by_key(&d, |(date, _)| *date).is_ok()
        })
    }

    /// Runs `f` on the sorted closed days of `year`, computed once per cached year.
    fn with_year<R>(&self, year: i32, f: impl FnOnce(&[(NaiveDate, String)]) -> R) -> R {
        let slot = usize::try_from(year - CACHE_FIRST_YEAR)
            .ok()
            .and_then(|i| self.inner.years.get(i));
        match slot {
            Some(cell) => f(cell.get_or_init(|| self.compute_year(year))),
            None => f(&self.compute_year(year)),
        }
    }

    fn compute_year(&self, year: i32) -> Vec<(NaiveDate, String)> {
        let mut days: Vec<(NaiveDate, String)> = Vec::new();
        for set in &self.inner.sets {
            days.extend(set.in_year(year));
        }
        for closure in &self.inner.closures {
            days.extend(
                closure
                    .dates_in_year(year)
                    .into_iter()
                    .map(|d| (d, closure.name.clone())),
            );
        }
        // Stable: on a shared date the holiday set listed first names it, closures last.
        days.sort_by_key(|(date, _)| *date);
        days.dedup_by_key(|(date, _)| *date);
        days
    }

    fn year_has_business_day(&self, year: i32) -> bool {
        let (Some(first), Some(last)) = (holidays::ymd(year, 1, 1), holidays::ymd(year, 12, 31))
        else {
            return true;
        };
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .any(|d| self.is_business_day(d))
    }

    /// The opening intervals (UTC) of local date `d`, in order; none when it is closed.
    fn day_openings(&self, d: NaiveDate, out: &mut Vec<Interval>) {
        if !self.is_business_day(d) {
            return;
        }
        for &(start, end) in &self.inner.week[d.weekday().num_days_from_monday() as usize] {
            if let (Some(s), Some(e)) = (self.resolve(d, start), self.resolve(d, end))
                && s < e
            {
                out.push((s, e));
            }
        }
    }

    /// The instant of local wall-clock `minute` (0..=1440) on date `d`.
    fn resolve(&self, d: NaiveDate, minute: u16) -> Option<DateTime<Utc>> {
        let naive = if minute >= MINUTES_PER_DAY {
            d.succ_opt()?.and_time(NaiveTime::MIN)
        } else {
            let time = NaiveTime::from_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)?;
            d.and_time(time)
        };
        Some(local_to_utc(self.inner.zone, naive))
    }

    /// Opening intervals in order, starting with the local day before `t`'s (callers skip
    /// those that end before `t`); ends after SCAN_LIMIT_DAYS closed days in a row.
    fn openings_from(&self, t: DateTime<Utc>) -> Openings<'_> {
        let today = self.local_date(t);
        Openings {
            calendar: self,
            day: Some(today.pred_opt().unwrap_or(today)),
            buf: Vec::new(),
            pos: 0,
            closed_run: 0,
        }
    }
}

/// Day-by-day iterator over opening intervals.
struct Openings<'a> {
    calendar: &'a Calendar,
    day: Option<NaiveDate>,
    buf: Vec<Interval>,
    pos: usize,
    closed_run: u32,
}

impl Iterator for Openings<'_> {
    type Item = Interval;

    fn next(&mut self) -> Option<Interval> {
        loop {
            if let Some(&interval) = self.buf.get(self.pos) {
                self.pos += 1;
                return Some(interval);
            }
            if self.closed_run > SCAN_LIMIT_DAYS {
                return None;
            }
            let day = self.day?;
            self.buf.clear();
            self.pos = 0;
            self.calendar.day_openings(day, &mut self.buf);
            if self.buf.is_empty() {
                self.closed_run += 1;
            } else {
                self.closed_run = 0;
            }
            self.day = day.succ_opt();
        }
    }
}

/// Where a search that found no opening stops: SCAN_LIMIT_DAYS after `t`.
fn horizon(t: DateTime<Utc>) -> DateTime<Utc> {
    t.checked_add_days(Days::new(u64::from(SCAN_LIMIT_DAYS)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The first instant whose local wall-clock time in `zone` is `naive` or later: the instant
/// itself, the earlier one in a repeated hour, the end of the gap in a skipped hour.
fn local_to_utc(zone: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.with_timezone(&Utc).min(b.with_timezone(&Utc)),
        LocalResult::None => {
            // In a gap: binary search for the first instant whose local time reaches `naive`.
            // Offsets lie within ±26 h, so the bounds bracket it.
            let reaches =
                |u: DateTime<Utc>| zone.from_utc_datetime(&u.naive_utc()).naive_local() >= naive;
            let centre = naive.and_utc();
            let span = Duration::hours(26);
            let (Some(mut lo), Some(mut hi)) = (
                centre.checked_sub_signed(span),
                centre.checked_add_signed(span),
            ) else {
                return centre;
            };
            while hi - lo > Duration::seconds(1) {
                let mid = lo + Duration::seconds((hi - lo).num_seconds() / 2);
                if reaches(mid) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            hi
        }
    }
}

/// Sorts and merges overlapping or touching windows.
fn merge(windows: &mut Vec<(u16, u16)>) {
    windows.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(windows.len());
    for &(start, end) in windows.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *windows = merged;
}

fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// One `hours` entry into (weekday index from Monday, start minute, end minute) windows.
fn parse_hours(entry: &str) -> Result<Vec<(usize, u16, u16)>, String> {
    let err = |msg: &str| format!("hours entry {entry:?}: {msg}");
    let text = entry.trim().to_lowercase();
    if text == "24x7" {
        return Ok((0..7).map(|day| (day, 0, MINUTES_PER_DAY)).collect());
    }
    let Some(split) = text.find(|c: char| c.is_ascii_digit()) else {
        return Err(err(
            "expected days and windows, e.g. \"mon-fri 09:00-17:00\", or \"24x7\"",
        ));
    };
    let (days_text, windows_text) = (text[..split].trim(), &text[split..]);
    if days_text.is_empty() {
        return Err(err(
            "expected days before the windows, e.g. \"mon-fri 09:00-17:00\"",
        ));
    }
    let days = parse_days(days_text).map_err(|msg| err(&msg))?;
    let windows_text = squeeze_dashes(windows_text);
    let mut out = Vec::new();
    for token in windows_text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        let (start, end) = token
            .split_once('-')
            .and_then(|(s, e)| Some((parse_time(s)?, parse_time(e)?)))
            .ok_or_else(|| err("expected HH:MM-HH:MM"))?;
        if start >= MINUTES_PER_DAY {
            return Err(err(&format!("window {token:?} cannot start at 24:00")));
        }
        if end <= start {
            return Err(err(&format!(
                "window {token:?} does not end after it starts (a window across midnight is two entries, e.g. \"mon 22:00-24:00\" and \"tue 00:00-06:00\")"
            )));
        }
        for (day, open) in days.iter().enumerate() {
            if *open {
                out.push((day, start, end));
            }
        }
    }
    Ok(out)
}

/// Drops whitespace next to a `-`, so `06:00 - 18:00` reads as one window.
fn squeeze_dashes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() {
            let prev = chars[..i].iter().rev().find(|c| !c.is_whitespace());
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if prev == Some(&'-') || next == Some(&'-') {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// `H:MM` or `HH:MM`, 00:00 to 24:00, as minutes from midnight.
fn parse_time(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

/// The days part of an `hours` entry: which weekdays (Monday first) it names.
fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let unknown = |item: &str| {
        format!(
            "unknown day {item:?} (use mon, tue, wed, thu, fri, sat, sun, ranges such as mon-fri, or daily, weekdays, weekends)"
        )
    };
    for item in compact.split(',').filter(|i| !i.is_empty()) {
        match item {
            "daily" => days = [true; 7],
            "weekdays" => days[..5].iter_mut().for_each(|d| *d = true),
            "weekends" => days[5..].iter_mut().for_each(|d| *d = true),
            _ => {
                let (from, to) = item.split_once('-').unwrap_or((item, item));
                let from = parse_weekday(from).ok_or_else(|| unknown(item))?;
                let to = parse_weekday(to).ok_or_else(|| unknown(item))?;
                let mut day = from;
                loop {
                    days[day.num_days_from_monday() as usize] = true;
                    if day == to {
                        break;
                    }
                    day = day.succ();
                }
            }
        }
    }
    if !days.contains(&true) {
        return Err(unknown(text));
    }
    Ok(days)
}
