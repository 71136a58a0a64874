//! The `closures` grammar of a calendar spec: fixed dates, date ranges, yearly dates and ranges, weekday rules.

use super::holidays::{last_weekday, nth_weekday, observed, parse_weekday, ymd};
use chrono::{Datelike, NaiveDate, Weekday};

/// The longest dated range a closure may span, in days.
const MAX_RANGE_DAYS: i64 = 366;

/// One parsed `closures` entry.
#[derive(Debug, Clone)]
pub(crate) struct Closure {
    when: When,
    observed: bool,
    pub(crate) name: String,
}

#[derive(Debug, Clone)]
enum When {
    Date(NaiveDate),
    Range(NaiveDate, NaiveDate),
    Yearly(u32, u32),
    YearlyRange((u32, u32), (u32, u32)),
    Nth {
        nth: Nth,
        weekday: Weekday,
        month: u32,
    },
}

#[derive(Debug, Clone, Copy)]
enum Nth {
    Number(u8),
    Last,
}

const EXPECTED: &str = "expected a date (2026-12-24), a date range (2026-12-24..2027-01-02), \
a yearly date (12-24) or yearly range (12-29..01-03), or a rule such as \"3rd mon of jan\" or \
\"last mon of may\"; optionally followed by \"observed\" and \": name\"";

/// Parses one entry; the error is a sentence naming it.
pub(crate) fn parse(entry: &str) -> Result<Closure, String> {
    let err = |msg: &str| format!("closure {entry:?}: {msg}");
    let (when_text, label) = match entry.split_once(':') {
        Some((when, label)) => {
            let label = label.trim();
            if label.is_empty() {
                return Err(err("the name after \":\" is empty"));
            }
            (when, Some(label.to_string()))
        }
        None => (entry, None),
    };
    let lower = when_text.to_lowercase();
    let mut tokens: Vec<&str> = lower.split_whitespace().collect();
    let observed = tokens.last() == Some(&"observed");
    if observed {
        tokens.pop();
    }
    if tokens.is_empty() {
        return Err(err(EXPECTED));
    }
    let joined = tokens.join(" ");
    let when = if let Some((from, to)) = joined.split_once("..") {
        let (from, to) = (from.trim(), to.trim());
        if observed {
            return Err(err("\"observed\" applies to a single day, not to a range"));
        }
        match (parse_date(from), parse_date(to)) {
            (Some(start), Some(end)) => {
                if end < start {
                    return Err(err("the range ends before it starts"));
                }
                if (end - start).num_days() >= MAX_RANGE_DAYS {
                    return Err(err(&format!(
                        "the range is longer than {MAX_RANGE_DAYS} days"
                    )));
                }
                When::Range(start, end)
            }
            _ => match (parse_month_day(from), parse_month_day(to)) {
                (Some(start), Some(end)) => {
                    if start == (2, 29) || end == (2, 29) {
                        return Err(err(
                            "a yearly range cannot start or end on 02-29 (use 02-28 or 03-01)",
                        ));
                    }
                    When::YearlyRange(start, end)
                }
                _ => return Err(err(EXPECTED)),
            },
        }
    } else if tokens.len() == 1 {
        if let Some(date) = parse_date(tokens[0]) {
            When::Date(date)
        } else if let Some((month, day)) = parse_month_day(tokens[0]) {
            When::Yearly(month, day)
        } else {
            return Err(err(EXPECTED));
        }
    } else if tokens.len() == 4 && tokens[2] == "of" {
        let nth = parse_nth(tokens[0]).ok_or_else(|| {
            err(&format!(
                "unknown ordinal {:?} (use 1st..5th, first..fifth or last)",
                tokens[0]
            ))
        })?;
        let weekday = parse_weekday(tokens[1]).ok_or_else(|| {
            err(&format!(
                "unknown weekday {:?} (use mon, tue, wed, thu, fri, sat, sun)",
                tokens[1]
            ))
        })?;
        let month = parse_month(tokens[3]).ok_or_else(|| {
            err(&format!(
                "unknown month {:?} (use jan, feb, ... dec)",
                tokens[3]
            ))
        })?;
        When::Nth {
            nth,
            weekday,
            month,
        }
    } else {
        return Err(err(EXPECTED));
    };
    let name = label.unwrap_or_else(|| format!("closure {}", entry.trim()));
    Ok(Closure {
        when,
        observed,
        name,
    })
}

impl Closure {
    /// The closed dates of this entry that fall in `year` (unordered, may repeat).
    pub(crate) fn dates_in_year(&self, year: i32) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let push_day = |date: Option<NaiveDate>, out: &mut Vec<NaiveDate>| {
            if let Some(date) = date {
                out.push(date);
                if self.observed {
                    out.push(observed(date));
                }
            }
        };
        match self.when {
            When::Date(date) => push_day(Some(date), &mut out),
            When::Range(start, end) => push_range(start, end, year, &mut out),
            When::Yearly(month, day) => {
                for y in [year - 1, year, year + 1] {
                    push_day(ymd(y, month, day), &mut out);
                }
            }
            When::YearlyRange((m1, d1), (m2, d2)) => {
                for y in [year - 1, year] {
                    let end_year = if (m2, d2) >= (m1, d1) { y } else { y + 1 };
                    if let (Some(start), Some(end)) = (ymd(y, m1, d1), ymd(end_year, m2, d2)) {
                        push_range(start, end, year, &mut out);
                    }
                }
            }
            When::Nth {
                nth,
                weekday,
                month,
            } => {
                for y in [year - 1, year, year + 1] {
                    let date = match nth {
                        Nth::Number(n) => nth_weekday(y, month, weekday, n),
                        Nth::Last => last_weekday(y, month, weekday),
                    };
                    push_day(date, &mut out);
                }
            }
        }
        out.retain(|date| date.year() == year);
        out
    }
}

/// Pushes the days of `start..=end` that fall in `year`.
fn push_range(start: NaiveDate, end: NaiveDate, year: i32, out: &mut Vec<NaiveDate>) {
    let (Some(first), Some(last)) = (ymd(year, 1, 1), ymd(year, 12, 31)) else {
        return;
    };
    let mut day = start.max(first);
    let end = end.min(last);
    while day <= end {
        out.push(day);
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
}

/// `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let mut parts = text.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 {
        return None;
    }
    ymd(year.parse().ok()?, number(month)?, number(day)?)
}

/// `MM-DD`, any day that exists in some year (02-29 included).
fn parse_month_day(text: &str) -> Option<(u32, u32)> {
    let (month, day) = text.split_once('-')?;
    let (month, day) = (number(month)?, number(day)?);
    ymd(2000, month, day).map(|_| (month, day))
}

/// One or two ASCII digits.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 2 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_nth(text: &str) -> Option<Nth> {
    Some(match text {
        "1st" | "first" => Nth::Number(1),
        "2nd" | "second" => Nth::Number(2),
        "3rd" | "third" => Nth::Number(3),
        "4th" | "fourth" => Nth::Number(4),
        "5th" | "fifth" => Nth::Number(5),
        "last" => Nth::Last,
        _ => return None,
    })
}

fn parse_month(text: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let index = MONTHS.iter().position(|m| {
        text == *m
            || (text.len() == 3 && m.starts_with(text))
            || text == "sept" && *m == "september"
    })?;
    u32::try_from(index + 1).ok()
}
