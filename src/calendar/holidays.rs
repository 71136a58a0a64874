//! Shipped holiday sets (US federal, Japanese national, Japanese year-end closure, Spanish national), computed for any year.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use std::collections::BTreeMap;

/// A holiday set a calendar spec can name in `holidays`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HolidaySet {
    UsFederal,
    JpNational,
    JpYearEnd,
    EsNational,
}

impl HolidaySet {
    pub(crate) const ALL: [HolidaySet; 4] = [
        HolidaySet::UsFederal,
        HolidaySet::JpNational,
        HolidaySet::JpYearEnd,
        HolidaySet::EsNational,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            HolidaySet::UsFederal => "us-federal",
            HolidaySet::JpNational => "jp-national",
            HolidaySet::JpYearEnd => "jp-year-end",
            HolidaySet::EsNational => "es-national",
        }
    }

    pub(crate) fn by_name(name: &str) -> Option<HolidaySet> {
        HolidaySet::ALL.into_iter().find(|set| set.name() == name)
    }

    /// The set's closed days whose date falls in `year`, in date order, each with its name.
    pub(crate) fn in_year(self, year: i32) -> Vec<(NaiveDate, String)> {
        match self {
            HolidaySet::UsFederal => us_federal(year),
            HolidaySet::JpNational => jp_national(year),
            HolidaySet::JpYearEnd => jp_year_end(year),
            HolidaySet::EsNational => es_national(year),
        }
    }
}

/// A date from year, month and day, `None` when there is no such day.
pub(crate) fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

/// The `n`th (1-based) `weekday` of a month, `None` when the month has fewer.
pub(crate) fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// The last `weekday` of a month.
pub(crate) fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    let (next_year, next_month) = if month == 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month + 1)
    };
    let last = ymd(next_year, next_month, 1)?.pred_opt()?;
    let back = (7 + last.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
    last.checked_sub_days(Days::new(u64::from(back)))
}

/// The weekday a fixed-date holiday is observed on: Saturday moves to the Friday before,
/// Sunday to the Monday after.
pub(crate) fn observed(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date.pred_opt().unwrap_or(date),
        Weekday::Sun => date.succ_opt().unwrap_or(date),
        _ => date,
    }
}

/// Western (Gregorian) Easter Sunday by the anonymous Gregorian computus.
pub(crate) fn easter(year: i32) -> Option<NaiveDate> {
    if year < 1583 {
        return None;
    }
    let y = i64::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    ymd(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// US federal holidays (5 U.S.C. 6103) with their observed days, for the dates in `year`.
/// New Year's Day of the next year observed on 31 December lands in this year.
fn us_federal(year: i32) -> Vec<(NaiveDate, String)> {
    let mut out = Vec::new();
    for y in [year - 1, year, year + 1] {
        let mut fixed = |month: u32, day: u32, name: &str| {
            if let Some(date) = ymd(y, month, day) {
                out.push((date, name.to_string()));
                let moved = observed(date);
                if moved != date {
                    out.push((moved, format!("{name} (observed)")));
                }
            }
        };
        fixed(1, 1, "New Year's Day");
        if y >= 2021 {
            fixed(6, 19, "Juneteenth National Independence Day");
        }
        fixed(7, 4, "Independence Day");
        fixed(11, 11, "Veterans Day");
        fixed(12, 25, "Christmas Day");
        let ruled = [
            (
                nth_weekday(y, 1, Weekday::Mon, 3),
                "Martin Luther King Jr. Day",
            ),
            (nth_weekday(y, 2, Weekday::Mon, 3), "Washington's Birthday"),
            (last_weekday(y, 5, Weekday::Mon), "Memorial Day"),
            (nth_weekday(y, 9, Weekday::Mon, 1), "Labor Day"),
            (nth_weekday(y, 10, Weekday::Mon, 2), "Columbus Day"),
            (nth_weekday(y, 11, Weekday::Thu, 4), "Thanksgiving Day"),
        ];
        out.extend(
            ruled
                .into_iter()
                .filter_map(|(date, name)| Some((date?, name.to_string()))),
        );
    }
    out.retain(|(date, _)| date.year() == year);
    out.sort_by_key(|(date, _)| *date);
    out
}

/// Day of March (vernal) or September (autumnal) of the equinox by the standard approximation
/// used for Japan's 春分の日 and 秋分の日, in exact integer arithmetic (millionths of a day).
fn equinox_day(year: i32, autumn: bool) -> u32 {
    let y = i64::from(year);
    // (constant for 1900..1979, 1980..2099, 2100..2150), the 1900..1979 rule counts leap years from 1983.
    let (base, leap_from) = match (year, autumn) {
        (..1980, false) => (20_835_700, 1983),
        (..1980, true) => (23_258_800, 1983),
        (1980..2100, false) => (20_843_100, 1980),
        (1980..2100, true) => (23_248_800, 1980),
        (_, false) => (21_851_000, 1980),
        (_, true) => (24_248_800, 1980),
    };
    let value = base + 242_194 * (y - 1980) - (y - leap_from).div_euclid(4) * 1_000_000;
    u32::try_from(value.div_euclid(1_000_000)).unwrap_or(21)
}

/// Japanese national holidays (国民の祝日に関する法律) for `year`, with 振替休日 and 国民の休日.
fn jp_national(year: i32) -> Vec<(NaiveDate, String)> {
    let y = year;
    let mut days: BTreeMap<NaiveDate, &'static str> = BTreeMap::new();
    let mut add = |date: Option<NaiveDate>, name: &'static str| {
        if let Some(date) = date {
            days.insert(date, name);
        }
    };
    add(ymd(y, 1, 1), "元日");
    add(
        if y >= 2000 {
            nth_weekday(y, 1, Weekday::Mon, 2)
        } else {
            ymd(y, 1, 15)
        },
        "成人の日",
    );
    add(ymd(y, 2, 11), "建国記念の日");
    match y {
        2020.. => add(ymd(y, 2, 23), "天皇誕生日"),
        1989..=2018 => add(ymd(y, 12, 23), "天皇誕生日"),
        _ => {}
    }
    add(ymd(y, 3, equinox_day(y, false)), "春分の日");
    add(
        ymd(y, 4, 29),
        if y >= 2007 {
            "昭和の日"
        } else {
            "みどりの日"
        },
    );
    add(ymd(y, 5, 3), "憲法記念日");
    if y >= 2007 {
        add(ymd(y, 5, 4), "みどりの日");
    }
    add(ymd(y, 5, 5), "こどもの日");
    match y {
        2020 => add(ymd(y, 7, 23), "海の日"),
        2021 => add(ymd(y, 7, 22), "海の日"),
        2003.. => add(nth_weekday(y, 7, Weekday::Mon, 3), "海の日"),
        1996..=2002 => add(ymd(y, 7, 20), "海の日"),
        _ => {}
    }
    match y {
        2020 => add(ymd(y, 8, 10), "山の日"),
        2021 => add(ymd(y, 8, 8), "山の日"),
        2016.. => add(ymd(y, 8, 11), "山の日"),
        _ => {}
    }
    add(
        if y >= 2003 {
            nth_weekday(y, 9, Weekday::Mon, 3)
        } else {
            ymd(y, 9, 15)
        },
        "敬老の日",
    );
    add(ymd(y, 9, equinox_day(y, true)), "秋分の日");
    match y {
        2020 => add(ymd(y, 7, 24), "スポーツの日"),
        2021 => add(ymd(y, 7, 23), "スポーツの日"),
        2022.. => add(nth_weekday(y, 10, Weekday::Mon, 2), "スポーツの日"),
        2000..=2019 => add(nth_weekday(y, 10, Weekday::Mon, 2), "体育の日"),
        _ => add(ymd(y, 10, 10), "体育の日"),
    }
    add(ymd(y, 11, 3), "文化の日");
    add(ymd(y, 11, 23), "勤労感謝の日");
    if y == 2019 {
        add(ymd(y, 5, 1), "天皇の即位の日");
        add(ymd(y, 10, 22), "即位礼正殿の儀の行われる日");
    }

    // 振替休日: a national holiday on a Sunday moves to the next day that is not one
    // (before 2007: to the Monday).
    let mut extra: BTreeMap<NaiveDate, &'static str> = BTreeMap::new();
    for date in days.keys() {
        if date.weekday() != Weekday::Sun {
            continue;
        }
        let mut next = date.succ_opt();
        if y >= 2007 {
            while let Some(d) = next.filter(|d| days.contains_key(d)) {
                next = d.succ_opt();
            }
        }
        if let Some(d) = next.filter(|d| !days.contains_key(d)) {
            extra.insert(d, "振替休日");
        }
    }
    // 国民の休日: a day that is not a national holiday, between two that are
    // (before 2007 not on a Sunday).
    for (date, _) in days.iter() {
        let (Some(mid), Some(after)) = (date.succ_opt(), date.checked_add_days(Days::new(2)))
        else {
            continue;
        };
        let sunday_excluded = y < 2007 && mid.weekday() == Weekday::Sun;
        if !days.contains_key(&mid) && days.contains_key(&after) && !sunday_excluded {
            extra.entry(mid).or_insert("国民の休日");
        }
    }
    days.extend(extra);
    days.into_iter()
        .filter(|(date, _)| date.year() == year)
        .map(|(date, name)| (date, name.to_string()))
        .collect()
}

/// The Japanese year-end and new-year closure, 29 December to 3 January.
fn jp_year_end(year: i32) -> Vec<(NaiveDate, String)> {
    [(1, 1), (1, 2), (1, 3), (12, 29), (12, 30), (12, 31)]
        .into_iter()
        .filter_map(|(month, day)| Some((ymd(year, month, day)?, "年末年始休業".to_string())))
        .collect()
}

/// Spain's national holidays (fiestas laborales de ámbito nacional), Good Friday by the computus.
fn es_national(year: i32) -> Vec<(NaiveDate, String)> {
    let y = year;
    let mut out: Vec<(NaiveDate, String)> = [
        (ymd(y, 1, 1), "Año Nuevo"),
        (ymd(y, 1, 6), "Epifanía del Señor"),
        (
            easter(y).and_then(|e| e.checked_sub_days(Days::new(2))),
            "Viernes Santo",
        ),
        (ymd(y, 5, 1), "Fiesta del Trabajo"),
        (ymd(y, 8, 15), "Asunción de la Virgen"),
        (ymd(y, 10, 12), "Fiesta Nacional de España"),
        (ymd(y, 11, 1), "Todos los Santos"),
        (ymd(y, 12, 6), "Día de la Constitución Española"),
        (ymd(y, 12, 8), "Inmaculada Concepción"),
        (ymd(y, 12, 25), "Natividad del Señor"),
    ]
    .into_iter()
    .filter_map(|(date, name)| Some((date?, name.to_string())))
    .collect();
    out.sort_by_key(|(date, _)| *date);
    out
}

/// A weekday by its English name or three-letter abbreviation (lowercase).
pub(crate) fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tues" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thur" | "thurs" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}
