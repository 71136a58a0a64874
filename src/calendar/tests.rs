//! Unit and property tests of the business calendar: holiday sets, the spec grammar, DST and year boundaries.

use super::*;
use chrono::Weekday;
use chrono_tz::America::{Chicago, Los_Angeles};
use chrono_tz::Asia::Tokyo;
use chrono_tz::Europe::Madrid;
use proptest::prelude::*;

fn cal(zone: Tz, hours: &[&str], holidays: &[&str], closures: &[&str]) -> Calendar {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    let spec = CalendarSpec {
        hours: strings(hours),
        holidays: strings(holidays),
        closures: strings(closures),
        ..CalendarSpec::default()
    };
    Calendar::build(zone, &spec).unwrap_or_else(|e| panic!("calendar should build: {e:?}"))
}

fn build_err(hours: &[&str], holidays: &[&str], closures: &[&str]) -> Vec<String> {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    let spec = CalendarSpec {
        hours: strings(hours),
        holidays: strings(holidays),
        closures: strings(closures),
        ..CalendarSpec::default()
    };
    Calendar::build(Los_Angeles, &spec).expect_err("spec should be rejected")
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn hours(h: i64) -> Duration {
    Duration::hours(h)
}

/// IX-02: Monday to Friday 06:00–18:00 Pacific, except US holidays.
fn ix_02() -> Calendar {
    cal(Los_Angeles, &["mon-fri 06:00-18:00"], &["us-federal"], &[])
}

/// QJ-01: weekdays 09:00–17:30 Tokyo, national holidays, the year-end closure.
fn qj_01() -> Calendar {
    cal(
        Tokyo,
        &["mon-fri 09:00-17:30"],
        &["jp-national", "jp-year-end"],
        &[],
    )
}

/// NX-01: 08:00–17:00 Chicago, Monday to Friday.
fn nx_01() -> Calendar {
    cal(Chicago, &["mon-fri 08:00-17:00"], &["us-federal"], &[])
}

/// Avanzada7 (AV), Madrid: split hours Monday to Thursday, mornings on Friday.
fn av() -> Calendar {
    cal(
        Madrid,
        &["mon-thu 09:00-14:00, 15:00-18:00", "fri 08:00-15:00"],
        &["es-national"],
        &["12-24", "12-31"],
    )
}

/// Windows whose edges sit in the hours the clocks skip or repeat.
fn dst_edges(zone: Tz) -> Calendar {
    cal(
        zone,
        &[
            "daily 01:30-02:30",
            "sun 02:45-03:15",
            "mon 22:00-24:00",
            "tue 00:00-03:00",
        ],
        &[],
        &["12-24..12-26", "last mon of may"],
    )
}

// ---- US federal holidays ----

#[test]
fn us_federal_2026_all_holidays_and_observed_days() {
    let calendar = ix_02();
    let got: Vec<(NaiveDate, String)> = calendar.holidays_in_year(2026);
    let want = [
        (date(2026, 1, 1), "New Year's Day"),
        (date(2026, 1, 19), "Martin Luther King Jr. Day"),
        (date(2026, 2, 16), "Washington's Birthday"),
        (date(2026, 5, 25), "Memorial Day"),
        (date(2026, 6, 19), "Juneteenth National Independence Day"),
        (date(2026, 7, 3), "Independence Day (observed)"),
        (date(2026, 7, 4), "Independence Day"),
        (date(2026, 9, 7), "Labor Day"),
        (date(2026, 10, 12), "Columbus Day"),
        (date(2026, 11, 11), "Veterans Day"),
        (date(2026, 11, 26), "Thanksgiving Day"),
        (date(2026, 12, 25), "Christmas Day"),
    ];
    let want: Vec<(NaiveDate, String)> = want.iter().map(|(d, n)| (*d, n.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn ix_02_july_4_on_saturday_closes_friday_july_3() {
    let calendar = ix_02();
    assert!(!calendar.is_business_day(date(2026, 7, 3)));
    assert!(calendar.is_business_day(date(2026, 7, 2)));
    // Thu 2 Jul 2026 17:00 PDT + 2 h: one hour Thursday, the next on Monday 6 Jul.
    let t = utc("2026-07-03T00:00:00Z");
    assert_eq!(
        calendar.add_business(t, hours(2)),
        utc("2026-07-06T14:00:00Z")
    );
}

#[test]
fn us_new_year_on_saturday_is_observed_on_previous_december_31() {
    let calendar = ix_02();
    assert_eq!(
        calendar.holiday_name(date(2021, 12, 31)).as_deref(),
        Some("New Year's Day (observed)")
    );
    assert!(!calendar.is_business_day(date(2021, 12, 31)));
    assert_eq!(
        calendar.holiday_name(date(2027, 12, 31)).as_deref(),
        Some("New Year's Day (observed)")
    );
    assert!(calendar.is_business_day(date(2026, 12, 31)));
    // The Friday before is the last day of the year: Thu 30 Dec 2021 -> Mon 3 Jan 2022.
    assert_eq!(
        calendar.add_business_days(utc("2021-12-30T18:00:00Z"), 1),
        date(2022, 1, 3)
    );
}

#[test]
fn us_sunday_holidays_are_observed_on_monday() {
    let calendar = ix_02();
    assert_eq!(
        calendar.holiday_name(date(2023, 1, 2)).as_deref(),
        Some("New Year's Day (observed)")
    );
    assert_eq!(
        calendar.holiday_name(date(2022, 12, 26)).as_deref(),
        Some("Christmas Day (observed)")
    );
    assert!(!calendar.is_business_day(date(2022, 12, 26)));
    // Juneteenth 2021 (a Saturday) was observed on Friday 18 June; none before 2021.
    assert!(!calendar.is_business_day(date(2021, 6, 18)));
    assert_eq!(calendar.holiday_name(date(2020, 6, 19)), None);
}

#[test]
fn ix_02_year_boundary_dec_31_to_jan_2() {
    let calendar = ix_02();
    // Tue 31 Dec 2024 -> Thu 2 Jan 2025 (1 Jan is New Year's Day).
    assert_eq!(
        calendar.add_business_days(utc("2024-12-31T18:00:00Z"), 1),
        date(2025, 1, 2)
    );
    // Thu 31 Dec 2026 17:00 PST + 2 h: an hour on Thursday, then Fri 1 Jan (holiday) and
    // the weekend are skipped: Mon 4 Jan 2027 07:00 PST.
    let t = utc("2027-01-01T01:00:00Z");
    let due = calendar.add_business(t, hours(2));
    assert_eq!(due, utc("2027-01-04T15:00:00Z"));
    assert_eq!(calendar.business_between(t, due), hours(2));
}

#[test]
fn us_thanksgiving_and_memorial_day_in_other_years() {
    let calendar = ix_02();
    assert_eq!(
        calendar.holiday_name(date(2025, 11, 27)).as_deref(),
        Some("Thanksgiving Day")
    );
    assert_eq!(
        calendar.holiday_name(date(2100, 11, 25)).as_deref(),
        Some("Thanksgiving Day")
    );
    assert_eq!(
        calendar.holiday_name(date(2027, 5, 31)).as_deref(),
        Some("Memorial Day")
    );
}

// ---- Japanese holidays ----

#[test]
fn jp_national_2026_with_substitute_and_citizens_holiday() {
    let calendar = qj_01();
    let national = cal(Tokyo, &["mon-fri 09:00-17:30"], &["jp-national"], &[]);
    let got: Vec<(NaiveDate, String)> = national.holidays_in_year(2026);
    let want = [
        (date(2026, 1, 1), "元日"),
        (date(2026, 1, 12), "成人の日"),
        (date(2026, 2, 11), "建国記念の日"),
        (date(2026, 2, 23), "天皇誕生日"),
        (date(2026, 3, 20), "春分の日"),
        (date(2026, 4, 29), "昭和の日"),
        (date(2026, 5, 3), "憲法記念日"),
        (date(2026, 5, 4), "みどりの日"),
        (date(2026, 5, 5), "こどもの日"),
        (date(2026, 5, 6), "振替休日"),
        (date(2026, 7, 20), "海の日"),
        (date(2026, 8, 11), "山の日"),
        (date(2026, 9, 21), "敬老の日"),
        (date(2026, 9, 22), "国民の休日"),
        (date(2026, 9, 23), "秋分の日"),
        (date(2026, 10, 12), "スポーツの日"),
        (date(2026, 11, 3), "文化の日"),
        (date(2026, 11, 23), "勤労感謝の日"),
    ];
    let want: Vec<(NaiveDate, String)> = want.iter().map(|(d, n)| (*d, n.to_string())).collect();
    assert_eq!(got, want);
    // QJ-01: the substitute holiday is closed; the day after is open.
    assert!(!calendar.is_business_day(date(2026, 5, 6)));
    assert!(calendar.is_business_day(date(2026, 5, 7)));
}

#[test]
fn jp_equinoxes_by_the_approximation_formula() {
    let calendar = qj_01();
    for (vernal, autumnal) in [
        (date(2023, 3, 21), date(2023, 9, 23)),
        (date(2024, 3, 20), date(2024, 9, 22)),
        (date(2025, 3, 20), date(2025, 9, 23)),
        (date(2026, 3, 20), date(2026, 9, 23)),
        (date(2027, 3, 21), date(2027, 9, 23)),
    ] {
        assert_eq!(
            calendar.holiday_name(vernal).as_deref(),
            Some("春分の日"),
            "{vernal}"
        );
        assert_eq!(
            calendar.holiday_name(autumnal).as_deref(),
            Some("秋分の日"),
            "{autumnal}"
        );
    }
}

#[test]
fn jp_olympic_moves_and_enthronement_years() {
    let calendar = cal(Tokyo, &["mon-fri 09:00-17:30"], &["jp-national"], &[]);
    let name = |d: NaiveDate| calendar.holiday_name(d);
    assert_eq!(name(date(2020, 7, 23)).as_deref(), Some("海の日"));
    assert_eq!(name(date(2020, 7, 24)).as_deref(), Some("スポーツの日"));
    assert_eq!(name(date(2020, 8, 10)).as_deref(), Some("山の日"));
    assert_eq!(name(date(2020, 10, 12)), None);
    assert_eq!(name(date(2020, 8, 11)), None);
    assert_eq!(name(date(2021, 7, 22)).as_deref(), Some("海の日"));
    assert_eq!(name(date(2021, 7, 23)).as_deref(), Some("スポーツの日"));
    assert_eq!(name(date(2021, 8, 9)).as_deref(), Some("振替休日"));
    // 2019: no emperor's birthday; the enthronement made a ten-day break.
    assert_eq!(name(date(2019, 12, 23)), None);
    assert_eq!(name(date(2019, 2, 23)), None);
    assert_eq!(name(date(2018, 12, 24)).as_deref(), Some("振替休日"));
    assert_eq!(name(date(2019, 4, 30)).as_deref(), Some("国民の休日"));
    assert_eq!(name(date(2019, 5, 1)).as_deref(), Some("天皇の即位の日"));
    assert_eq!(name(date(2019, 5, 2)).as_deref(), Some("国民の休日"));
    assert_eq!(name(date(2019, 5, 6)).as_deref(), Some("振替休日"));
    assert_eq!(
        name(date(2019, 10, 22)).as_deref(),
        Some("即位礼正殿の儀の行われる日")
    );
    // Holidays on a Sunday: 11 Feb 2024 and 23 Feb 2025 move to the Monday.
    assert_eq!(name(date(2024, 2, 12)).as_deref(), Some("振替休日"));
    assert_eq!(name(date(2025, 2, 24)).as_deref(), Some("振替休日"));
    // Citizens' holidays of other years.
    assert_eq!(name(date(2015, 9, 22)).as_deref(), Some("国民の休日"));
    assert_eq!(name(date(2032, 9, 21)).as_deref(), Some("国民の休日"));
}

#[test]
fn qj_01_year_end_closure_across_the_new_year() {
    let calendar = qj_01();
    for day in [
        date(2026, 12, 29),
        date(2026, 12, 30),
        date(2026, 12, 31),
        date(2027, 1, 1),
        date(2027, 1, 2),
        date(2027, 1, 3),
    ] {
        assert!(!calendar.is_business_day(day), "{day}");
    }
    assert_eq!(
        calendar.holiday_name(date(2026, 12, 30)).as_deref(),
        Some("年末年始休業")
    );
    // Mon 28 Dec 2026 17:00 JST + 1 h: half an hour that day, the rest on Mon 4 Jan 2027.
    let t = utc("2026-12-28T08:00:00Z");
    let due = calendar.add_business(t, hours(1));
    assert_eq!(due, utc("2027-01-04T00:30:00Z"));
    assert_eq!(calendar.business_between(t, due), hours(1));
    assert_eq!(calendar.add_business_days(t, 1), date(2027, 1, 4));
    assert_eq!(
        calendar.next_open(utc("2026-12-28T09:00:00Z")),
        utc("2027-01-04T00:00:00Z")
    );
}

#[test]
fn qj_01_reception_hours_weekdays_0900_1730_tokyo() {
    let calendar = qj_01();
    // Fri 6 Nov 2026 (JST): open 09:00, closed 17:30, open again Monday 09:00.
    assert!(!calendar.is_open(utc("2026-11-05T23:59:59Z")));
    assert!(calendar.is_open(utc("2026-11-06T00:00:00Z")));
    assert!(calendar.is_open(utc("2026-11-06T08:29:59Z")));
    assert!(!calendar.is_open(utc("2026-11-06T08:30:00Z")));
    assert_eq!(
        calendar.next_open(utc("2026-11-06T08:30:00Z")),
        utc("2026-11-09T00:00:00Z")
    );
    // A holiday on a weekday: Tue 3 Nov 2026 (文化の日) is closed.
    assert!(!calendar.is_open(utc("2026-11-03T02:00:00Z")));
}

// ---- Spanish holidays ----

#[test]
fn es_national_2026_and_good_friday_by_computus() {
    let calendar = av();
    assert_eq!(
        calendar.holiday_name(date(2026, 4, 3)).as_deref(),
        Some("Viernes Santo")
    );
    for (year, good_friday) in [
        (2024, date(2024, 3, 29)),
        (2025, date(2025, 4, 18)),
        (2027, date(2027, 3, 26)),
        (2038, date(2038, 4, 23)),
    ] {
        assert_eq!(
            calendar.holiday_name(good_friday).as_deref(),
            Some("Viernes Santo"),
            "{year}"
        );
    }
    let es = cal(Madrid, &["mon-fri 09:00-18:00"], &["es-national"], &[]);
    let days: Vec<NaiveDate> = es
        .holidays_in_year(2026)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(
        days,
        [
            date(2026, 1, 1),
            date(2026, 1, 6),
            date(2026, 4, 3),
            date(2026, 5, 1),
            date(2026, 8, 15),
            date(2026, 10, 12),
            date(2026, 11, 1),
            date(2026, 12, 6),
            date(2026, 12, 8),
            date(2026, 12, 25),
        ]
    );
}

// ---- DST ----

#[test]
fn ix_02_six_business_hours_across_spring_forward_in_los_angeles() {
    let calendar = ix_02();
    // Fri 6 Mar 2026 15:00 PST + 6 h: 3 h Friday, 3 h from Mon 9 Mar 06:00 PDT (13:00Z).
    let t = utc("2026-03-06T23:00:00Z");
    let due = calendar.add_business(t, hours(6));
    assert_eq!(due, utc("2026-03-09T16:00:00Z"));
    assert_eq!(calendar.business_between(t, due), hours(6));
}

#[test]
fn ix_02_six_business_hours_across_fall_back_in_los_angeles() {
    let calendar = ix_02();
    // Fri 30 Oct 2026 15:00 PDT + 6 h: Mon 2 Nov 09:00 PST.
    let t = utc("2026-10-30T22:00:00Z");
    let due = calendar.add_business(t, hours(6));
    assert_eq!(due, utc("2026-11-02T17:00:00Z"));
    assert_eq!(calendar.business_between(t, due), hours(6));
}

#[test]
fn qn_10_email_hours_0600_1800_pacific_on_the_dst_mondays() {
    // QN-10: technical support answers email 06:00–18:00 Pacific, Monday to Friday.
    let calendar = cal(Los_Angeles, &["mon-fri 06:00-18:00"], &["us-federal"], &[]);
    assert_eq!(
        calendar.next_open(utc("2026-03-08T12:00:00Z")),
        utc("2026-03-09T13:00:00Z")
    );
    assert_eq!(
        calendar.next_open(utc("2026-11-01T12:00:00Z")),
        utc("2026-11-02T14:00:00Z")
    );
    assert_eq!(
        calendar.business_day_start(date(2026, 3, 9)),
        Some(utc("2026-03-09T13:00:00Z"))
    );
    assert_eq!(calendar.business_day_start(date(2026, 3, 8)), None);
}

#[test]
fn nx_01_six_business_hours_across_both_changes_in_chicago() {
    let calendar = nx_01();
    // Fri 6 Mar 2026 14:00 CST + 6 h: 3 h Friday, Mon 9 Mar 08:00 CDT + 3 h = 16:00Z.
    let t = utc("2026-03-06T20:00:00Z");
    assert_eq!(
        calendar.add_business(t, hours(6)),
        utc("2026-03-09T16:00:00Z")
    );
    // Fri 30 Oct 2026 14:00 CDT + 6 h: Mon 2 Nov 08:00 CST + 3 h = 17:00Z.
    let t = utc("2026-10-30T19:00:00Z");
    assert_eq!(
        calendar.add_business(t, hours(6)),
        utc("2026-11-02T17:00:00Z")
    );
}

#[test]
fn windows_through_the_changed_hour_last_real_time_in_chicago() {
    let calendar = cal(Chicago, &["daily 00:00-04:00"], &[], &[]);
    // 8 Mar 2026: 00:00 CST (06:00Z) to 04:00 CDT (09:00Z) is 3 hours.
    let day = |d: &str, e: &str| calendar.business_between(utc(d), utc(e));
    assert_eq!(
        day("2026-03-08T06:00:00Z", "2026-03-09T05:00:00Z"),
        hours(3)
    );
    // 1 Nov 2026: 00:00 CDT (05:00Z) to 04:00 CST (10:00Z) is 5 hours.
    assert_eq!(
        day("2026-11-01T05:00:00Z", "2026-11-02T06:00:00Z"),
        hours(5)
    );
    // 3 h 30 min from the start of 8 Mar: 3 h that night, 30 min from 00:00 CDT on 9 Mar.
    assert_eq!(
        calendar.add_business(utc("2026-03-08T06:00:00Z"), Duration::minutes(210)),
        utc("2026-03-09T05:30:00Z")
    );
    // Inside the repeated hour (01:30 CST, the second time round) it is still open.
    assert!(calendar.is_open(utc("2026-11-01T07:30:00Z")));
}

#[test]
fn av_six_business_hours_across_both_changes_in_madrid() {
    let calendar = av();
    // Fri 27 Mar 2026 13:00 CET + 6 h: 2 h to 15:00 CET, Mon 30 Mar 09:00 CEST + 4 h.
    let t = utc("2026-03-27T12:00:00Z");
    let due = calendar.add_business(t, hours(6));
    assert_eq!(due, utc("2026-03-30T11:00:00Z"));
    assert_eq!(calendar.business_between(t, due), hours(6));
    // Fri 23 Oct 2026 13:00 CEST + 6 h: 2 h Friday, Mon 26 Oct 09:00 CET + 4 h.
    let t = utc("2026-10-23T11:00:00Z");
    let due = calendar.add_business(t, hours(6));
    assert_eq!(due, utc("2026-10-26T12:00:00Z"));
    // Six hours from 12:00 on a split day skip the lunch break: Thu 5 Nov 2026 12:00 CET
    // + 6 h = 2 h morning, 3 h afternoon, 1 h Friday from 08:00 CET.
    assert_eq!(
        calendar.add_business(utc("2026-11-05T11:00:00Z"), hours(6)),
        utc("2026-11-06T08:00:00Z")
    );
}

#[test]
fn window_edges_in_the_skipped_and_repeated_hour_in_madrid() {
    let calendar = cal(Madrid, &["sun 02:30-04:00"], &[], &[]);
    // 29 Mar 2026: 02:30 does not exist; the window opens at 03:00 CEST (01:00Z).
    assert_eq!(
        calendar.business_day_start(date(2026, 3, 29)),
        Some(utc("2026-03-29T01:00:00Z"))
    );
    assert_eq!(
        calendar.business_between(utc("2026-03-28T00:00:00Z"), utc("2026-03-30T00:00:00Z")),
        hours(1)
    );
    // 25 Oct 2026: 02:30 happens twice; the window opens at the first (00:30Z), closes at
    // 04:00 CET (03:00Z).
    assert_eq!(
        calendar.business_day_start(date(2026, 10, 25)),
        Some(utc("2026-10-25T00:30:00Z"))
    );
    assert_eq!(
        calendar.business_between(utc("2026-10-24T00:00:00Z"), utc("2026-10-26T00:00:00Z")),
        Duration::minutes(150)
    );
}

#[test]
fn always_open_is_real_elapsed_time_across_dst() {
    for zone in [Los_Angeles, Chicago, Madrid] {
        let clock = Calendar::always_open(zone);
        let t = utc("2026-03-08T08:00:00Z");
        assert!(clock.is_open(t));
        assert_eq!(clock.next_open(t), t);
        assert_eq!(clock.add_business(t, hours(6)), utc("2026-03-08T14:00:00Z"));
        assert_eq!(
            clock.business_between(t, utc("2026-11-01T08:00:00Z")),
            utc("2026-11-01T08:00:00Z") - t
        );
        assert_eq!(clock.holiday_name(date(2026, 12, 25)), None);
    }
    // "24x7" as hours is the same clock; with a holiday set it closes on holidays.
    let spec_clock = cal(Madrid, &["24x7"], &[], &[]);
    let t = utc("2026-03-28T22:00:00Z");
    assert_eq!(
        spec_clock.add_business(t, hours(6)),
        utc("2026-03-29T04:00:00Z")
    );
    let with_holidays = cal(Madrid, &["24x7"], &["es-national"], &[]);
    assert!(!with_holidays.is_open(utc("2026-12-25T12:00:00Z")));
    assert!(with_holidays.is_open(utc("2026-12-26T12:00:00Z")));
}

// ---- Spec grammar ----

#[test]
fn hours_grammar_accepts_lists_ranges_and_several_windows() {
    let calendar = cal(
        Los_Angeles,
        &[
            "Mon,Wed - Fri 9:00-12:00 13:00 - 17:00",
            "sat 09:00-13:00",
            "fri-mon 20:00-24:00",
        ],
        &[],
        &[],
    );
    let week = &calendar.inner.week;
    assert_eq!(week[0], [(540, 720), (780, 1020), (1200, 1440)]);
    assert!(week[1].is_empty());
    assert_eq!(week[2], [(540, 720), (780, 1020)]);
    assert_eq!(week[5], [(540, 780), (1200, 1440)]);
    assert_eq!(week[6], [(1200, 1440)]);
    // Overlapping and touching windows merge.
    let merged = cal(
        Los_Angeles,
        &["mon 09:00-12:00", "mon 11:00-13:00, 13:00-14:00"],
        &[],
        &[],
    );
    assert_eq!(merged.inner.week[0], [(540, 840)]);
}

#[test]
fn build_names_each_bad_entry() {
    assert_eq!(
        build_err(&["mon-fri 6-18"], &[], &[]),
        ["hours entry \"mon-fri 6-18\": expected HH:MM-HH:MM"]
    );
    let errors = build_err(
        &["mon-fry 06:00-18:00", "sat 18:00-06:00", "06:00-18:00"],
        &["us-federl"],
        &["13-01", "4th mon of mai", "2026-12-24..2026-12-01"],
    );
    assert_eq!(errors.len(), 7, "{errors:#?}");
    assert!(errors[0].starts_with("hours entry \"mon-fry 06:00-18:00\": unknown day \"mon-fry\""));
    assert!(errors[1].contains("\"18:00-06:00\" does not end after it starts"));
    assert!(errors[2].contains("expected days before the windows"));
    assert!(errors[3].starts_with("holidays entry \"us-federl\": unknown holiday set"));
    assert!(errors[4].starts_with("closure \"13-01\": expected a date"));
    assert!(errors[5].contains("unknown month \"mai\""));
    assert!(errors[6].contains("the range ends before it starts"));
    assert_eq!(
        build_err(&[], &[], &[]),
        ["hours: no opening windows; give entries such as \"mon-fri 09:00-17:00\", or \"24x7\""]
    );
    assert!(build_err(&["mon 24:00-24:00"], &[], &[])[0].contains("cannot start at 24:00"));
    assert!(build_err(&["mon 09:60-10:00"], &[], &[])[0].contains("expected HH:MM-HH:MM"));
    assert!(
        build_err(
            &["mon-fri 09:00-17:00"],
            &[],
            &["2026-12-24..2027-01-01 observed"]
        )[0]
        .contains("applies to a single day")
    );
}

#[test]
fn build_rejects_a_calendar_closed_all_year() {
    let errors = build_err(&["mon-fri 09:00-17:00"], &[], &["01-01..12-31"]);
    assert_eq!(
        errors,
        ["closures: no business day is left in 2000: every open weekday is a holiday or a closure"]
    );
    let errors = build_err(&["sat 09:00-17:00"], &[], &["2030-01-01..2030-12-31"]);
    assert!(errors[0].contains("2030"), "{errors:?}");
    assert!(
        build_err(&["mon 09:00-10:00"], &[], &["2026-01-01..2027-06-01"])[0]
            .contains("longer than 366 days")
    );
}

#[test]
fn closure_grammar_dates_ranges_rules_and_observed() {
    let calendar = cal(
        Chicago,
        &["mon-fri 08:00-17:00"],
        &[],
        &[
            "3rd mon of jan",
            "Last Mon of May",
            "12-24: Christmas Eve",
            "2026-11-27",
            "2026-12-28..2027-01-02: Winter break",
            "08-01..08-03",
            "07-04 observed",
            "01-01 observed",
            "5th fri of feb",
        ],
    );
    let closed = |d: NaiveDate| !calendar.is_business_day(d);
    assert!(closed(date(2026, 1, 19)));
    assert!(closed(date(2026, 5, 25)));
    assert!(!closed(date(2026, 5, 18)));
    assert_eq!(
        calendar.holiday_name(date(2026, 12, 24)).as_deref(),
        Some("Christmas Eve")
    );
    assert!(closed(date(2027, 12, 24)));
    assert!(closed(date(2026, 11, 27)));
    assert!(!closed(date(2027, 11, 26)));
    assert!(closed(date(2026, 12, 28)));
    assert_eq!(
        calendar.holiday_name(date(2027, 1, 1)).as_deref(),
        Some("Winter break")
    );
    assert!(closed(date(2027, 8, 3)));
    assert!(!closed(date(2027, 8, 4)));
    assert_eq!(
        calendar.holiday_name(date(2027, 8, 2)).as_deref(),
        Some("closure 08-01..08-03")
    );
    // Observed: 4 Jul 2026 (Sat) closes Fri 3 Jul; 1 Jan 2022 (Sat) closes Fri 31 Dec 2021.
    assert!(closed(date(2026, 7, 3)));
    assert!(closed(date(2021, 12, 31)));
    assert!(!closed(date(2021, 12, 30)));
    // Feb 2036 has five Fridays, Feb 2026 four.
    assert!(closed(date(2036, 2, 29)));
    assert!(!closed(date(2026, 2, 27)));
}

#[test]
fn yearly_range_wraps_over_the_new_year() {
    let calendar = cal(
        Tokyo,
        &["mon-fri 09:00-17:30"],
        &["jp-national"],
        &["12-30..01-04"],
    );
    for day in [date(2026, 12, 30), date(2027, 1, 4), date(2030, 1, 2)] {
        assert!(!calendar.is_business_day(day), "{day}");
    }
    assert!(calendar.is_business_day(date(2026, 12, 29)));
    assert!(calendar.is_business_day(date(2027, 1, 5)));
    // A national holiday keeps its own name inside a closure.
    assert_eq!(
        calendar.holiday_name(date(2027, 1, 1)).as_deref(),
        Some("元日")
    );
}

#[test]
fn spec_reads_from_toml_and_refuses_unknown_keys() {
    let spec: CalendarSpec =
        toml::from_str("hours = [\"mon-fri 06:00-18:00\"]\nholidays = [\"us-federal\"]\n")
            .expect("valid spec");
    assert!(spec.closures.is_empty());
    let calendar = Calendar::build(Los_Angeles, &spec).expect("builds");
    assert_eq!(calendar.zone(), Los_Angeles);
    assert!(toml::from_str::<CalendarSpec>("hours = []\nholiday = []\n").is_err());
    assert!(format!("{calendar:?}").contains("mon 06:00-18:00"));
}

#[test]
fn sixty_days_of_business_time_steps_by_day() {
    // 60 days of business time at 12 h a day is 120 business days (about half a year).
    let calendar = ix_02();
    let t = utc("2026-01-05T14:00:00Z");
    let d = Duration::days(60);
    let due = calendar.add_business(t, d);
    assert_eq!(calendar.business_between(t, due), d);
    assert!(calendar.is_open(due - Duration::nanoseconds(1)));
    assert!(due > utc("2026-06-01T00:00:00Z") && due < utc("2026-08-01T00:00:00Z"));
}

#[test]
fn add_business_days_counts_from_the_local_date() {
    let calendar = ix_02();
    // Sat 21 Nov 2026 in LA (05:00Z Sunday is still Saturday evening there).
    let t = utc("2026-11-22T05:00:00Z");
    assert_eq!(calendar.add_business_days(t, 0), date(2026, 11, 23));
    assert_eq!(calendar.add_business_days(t, 1), date(2026, 11, 23));
    // Mon 23, Tue 24, Wed 25, (Thanksgiving 26), Fri 27.
    assert_eq!(calendar.add_business_days(t, 4), date(2026, 11, 27));
    // On a business day n = 0 is that day.
    assert_eq!(
        calendar.add_business_days(utc("2026-11-23T20:00:00Z"), 0),
        date(2026, 11, 23)
    );
}

#[test]
fn calendar_is_shareable_across_tasks() {
    fn shareable<T: Send + Sync + Clone + 'static>(_: &T) {}
    let calendar = qj_01();
    shareable(&calendar);
    let copy = calendar.clone();
    assert!(Arc::ptr_eq(&calendar.inner, &copy.inner));
}

// ---- Properties ----

/// The calendars the properties run on: the four vendor zones with realistic specs, and
/// windows placed on the DST edges.
fn property_calendars() -> &'static [Calendar] {
    static CALENDARS: OnceLock<Vec<Calendar>> = OnceLock::new();
    CALENDARS.get_or_init(|| {
        vec![
            ix_02(),
            nx_01(),
            av(),
            qj_01(),
            dst_edges(Los_Angeles),
            dst_edges(Chicago),
            dst_edges(Madrid),
        ]
    })
}

/// A DST change day of `zone` in `year` (spring when `spring`), midnight UTC.
fn change_day(zone: Tz, year: i32, spring: bool) -> DateTime<Utc> {
    let day = if zone == Madrid {
        holidays::last_weekday(year, if spring { 3 } else { 10 }, Weekday::Sun)
    } else if spring {
        holidays::nth_weekday(year, 3, Weekday::Sun, 2)
    } else {
        holidays::nth_weekday(year, 11, Weekday::Sun, 1)
    };
    day.expect("the change day exists")
        .and_time(NaiveTime::MIN)
        .and_utc()
}

/// Random instants from 2020 to 2035, half of them within three days of a DST change.
fn instant(zone: Tz) -> impl Strategy<Value = DateTime<Utc>> {
    let start = utc("2020-01-01T00:00:00Z").timestamp();
    let end = utc("2036-01-01T00:00:00Z").timestamp();
    prop_oneof![
        (start..end).prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range")),
        (2020i32..2036, any::<bool>(), -3 * 86_400i64..3 * 86_400)
            .prop_map(move |(year, spring, offset)| change_day(zone, year, spring)
                + Duration::seconds(offset)),
    ]
}

fn calendar_and_instant() -> impl Strategy<Value = (Calendar, DateTime<Utc>)> {
    (0..property_calendars().len()).prop_flat_map(|i| {
        let calendar = property_calendars()[i].clone();
        let zone = calendar.zone();
        (Just(calendar), instant(zone))
    })
}

/// Business durations from zero to 20 days, to the millisecond.
fn business_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0i64..20 * 86_400_000).prop_map(Duration::milliseconds),
        (0i64..48 * 60).prop_map(Duration::minutes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn next_open_is_the_first_open_instant((calendar, t) in calendar_and_instant()) {
        let next = calendar.next_open(t);
        prop_assert!(next >= t);
        prop_assert!(calendar.is_open(next), "{calendar:?} {t} -> {next} not open");
        prop_assert_eq!(calendar.is_open(t), next == t);
        if next > t {
            let gap = next - t;
            for k in 0..16 {
                let sample = t + gap * k / 16;
                prop_assert!(!calendar.is_open(sample), "{calendar:?} open at {sample} before {next}");
            }
            prop_assert!(!calendar.is_open(next - Duration::seconds(1)));
            prop_assert_eq!(calendar.business_between(t, next), Duration::zero());
        }
    }

    #[test]
    fn add_business_is_monotonic_and_lands_open_or_on_a_window_end(
        (calendar, t) in calendar_and_instant(),
        a in business_duration(),
        b in business_duration(),
    ) {
        let (small, large) = (a.min(b), a.max(b));
        let r_small = calendar.add_business(t, small);
        let r_large = calendar.add_business(t, large);
        prop_assert!(r_small <= r_large);
        prop_assert!(r_small >= t);
        for (d, r) in [(small, r_small), (large, r_large)] {
            if d > Duration::zero() {
                prop_assert!(
                    calendar.is_open(r) || calendar.is_open(r - Duration::nanoseconds(1)),
                    "{calendar:?} {t} + {d} = {r} is inside a closed period"
                );
            } else {
                prop_assert_eq!(r, t);
            }
        }
    }

    #[test]
    fn business_between_gives_back_the_added_duration(
        (calendar, t) in calendar_and_instant(),
        d in business_duration(),
    ) {
        let due = calendar.add_business(t, d);
        prop_assert_eq!(calendar.business_between(t, due), d, "{:?} {} + {}", calendar, t, d);
    }

    #[test]
    fn add_business_days_lands_on_a_business_day(
        (calendar, t) in calendar_and_instant(),
        n in 0u32..30,
    ) {
        let day = calendar.add_business_days(t, n);
        prop_assert!(calendar.is_business_day(day));
        let local = t.with_timezone(&calendar.zone()).date_naive();
        let after_start = if n == 0 { day >= local } else { day > local };
        prop_assert!(after_start, "{} {} -> {}", t, n, day);
        prop_assert!(calendar.business_day_start(day).is_some());
    }
}
