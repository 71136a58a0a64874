//! Placeholder business calendar (replaced by the real module on merge).
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    pub hours: Vec<String>,
    #[serde(default)]
    pub holidays: Vec<String>,
    #[serde(default)]
    pub closures: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Calendar {
    zone: Tz,
    open: Option<(NaiveTime, NaiveTime)>,
}

impl Calendar {
    pub fn build(zone: Tz, spec: &CalendarSpec) -> Result<Calendar, Vec<String>> {
        let h = spec.hours.first().cloned().unwrap_or_default();
        if h == "24x7" {
            return Ok(Calendar::always_open(zone));
        }
        let t = h.split_whitespace().nth(1).unwrap_or("09:00-17:00");
        let (a, b) = t
            .split_once('-')
            .ok_or_else(|| vec!["bad hours".to_string()])?;
        let p = |s: &str| NaiveTime::parse_from_str(s, "%H:%M").map_err(|e| vec![e.to_string()]);
        Ok(Calendar {
            zone,
            open: Some((p(a)?, p(b)?)),
        })
    }
    pub fn always_open(zone: Tz) -> Calendar {
        Calendar { zone, open: None }
    }
    pub fn zone(&self) -> Tz {
        self.zone
    }
    pub fn is_business_day(&self, d: NaiveDate) -> bool {
        self.open.is_none() || !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }
    pub fn holiday_name(&self, _d: NaiveDate) -> Option<String> {
        None
    }
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let Some((a, b)) = self.open else { return true };
        let l = t.with_timezone(&self.zone);
        self.is_business_day(l.date_naive()) && l.time() >= a && l.time() < b
    }
    pub fn next_open(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut x = t;
        while !self.is_open(x) {
            x += Duration::minutes(1);
        }
        x
    }
    pub fn add_business(&self, t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        let mut x = t;
        let mut left = d.num_minutes();
        while left > 0 {
            if self.is_open(x) {
                left -= 1;
            }
            x += Duration::minutes(1);
        }
        x
    }
    pub fn business_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        let mut x = a;
        let mut n = 0;
        while x < b {
            if self.is_open(x) {
                n += 1;
            }
            x += Duration::minutes(1);
        }
        Duration::minutes(n)
    }
    pub fn add_business_days(&self, t: DateTime<Utc>, n: u32) -> NaiveDate {
        let mut d = t.with_timezone(&self.zone).date_naive();
        if n == 0 {
            while !self.is_business_day(d) {
                d = d.succ_opt().unwrap();
            }
            return d;
        }
        let mut k = 0;
        while k < n {
            d = d.succ_opt().unwrap();
            if self.is_business_day(d) {
                k += 1;
            }
        }
        d
    }
    pub fn business_day_start(&self, d: NaiveDate) -> Option<DateTime<Utc>> {
        let (a, _) = self.open?;
        self.zone
            .from_local_datetime(&d.and_time(a))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }
}
