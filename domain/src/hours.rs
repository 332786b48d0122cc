//! The shop's service hours, and when a handoff to a person is due.
//!
//! Each handoff gets a due time from its priority (minutes of *working*
//! time) and the hours the service team works: the response clock only
//! runs while the shop is open. The hours come from the `[service_hours]`
//! table of `knowledge-base/shop.toml`; the free-text hours lines there stay
//! for phrasing answers, this table is for arithmetic.
//!
//! ```toml
//! [service_hours]
//! utc_offset = "+08:00"      # fixed offset, "±HH:MM" or "UTC"
//! monday = "09:00-22:00"     # "HH:MM-HH:MM", comma-separated ranges, or "closed"
//! tuesday = "09:00-12:00, 13:30-22:00"
//! wednesday = "09:00-22:00"
//! thursday = "09:00-22:00"
//! friday = "09:00-24:00"     # "24:00" ends at midnight
//! saturday = "10:00-18:00"
//! # sunday missing: closed
//!
//! # Dates with other hours (holidays), in the shop's local calendar.
//! [service_hours.dates]
//! "2027-02-06" = "closed"
//! "2027-02-07" = "10:00-18:00"
//! ```
//!
//! Rules of the format, each enforced with an error naming the field:
//! - `utc_offset` is required and is `"UTC"` or a sign, two-digit hours and
//!   two-digit minutes (`"+08:00"`, `"-03:30"`), at most ±14:00. One
//!   spelling only (`"+0800"` and `"+8"` are refused) so the file reads the
//!   same everywhere. An offset and not a zone name: the shop is in China,
//!   which has no daylight saving, and no zone database is needed.
//! - A day is `"closed"` or ranges `"H:MM-HH:MM"` separated by commas; the
//!   hour may have one digit, the minutes always have two. Ranges are
//!   half-open (open at the start, closed at the end), in order and not
//!   overlapping; ranges that touch (`"09:00-12:00, 12:00-13:00"`) are
//!   joined. `"24:00"` is allowed only as an end. Hours past midnight are
//!   written as `"…-24:00"` on one day and `"00:00-…"` on the next.
//! - A missing weekday is closed; an unknown day name is refused.
//! - `dates` keys are `YYYY-MM-DD` calendar dates and replace that date's
//!   weekly hours.
//! - Some day or date must have open time, or nothing could ever be due.

use std::collections::BTreeMap;

use serde::Deserialize;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
/// 14:00, the largest offset in use anywhere (Kiribati).
const MAX_OFFSET_MINUTES: i64 = 14 * 60;
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A `[service_hours]` value that cannot be used, with the field it was
/// found in, so whoever edits shop.toml knows which line to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    /// `utc_offset` is not `"UTC"` or `±HH:MM`, or is beyond ±14:00.
    #[error("service_hours.utc_offset = {value:?}: {reason}")]
    Offset {
        /// The offset as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A weekday's or a date's hours cannot be read.
    #[error("service_hours.{field} = {value:?}: {reason}")]
    Hours {
        /// `monday` … `sunday`, or `dates."YYYY-MM-DD"`.
        field: String,
        /// The hours as written.
        value: String,
        /// What is wrong with them.
        reason: String,
    },
    /// A key of `[service_hours.dates]` is not a calendar date.
    #[error("service_hours.dates: {date:?} is not a date: {reason}")]
    Date {
        /// The key as written.
        date: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No weekday and no date has open time: no handoff could ever be due.
    #[error(
        "service_hours: every weekday and every date is closed, so no handoff could ever be due"
    )]
    NeverOpen,
}

/// The table as written: strings only, checked by
/// `TryFrom<RawServiceHours> for ServiceHours`, so a bad value fails
/// deserialization with a [`HoursError`] message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceHours {
    utc_offset: String,
    monday: Option<String>,
    tuesday: Option<String>,
    wednesday: Option<String>,
    thursday: Option<String>,
    friday: Option<String>,
    saturday: Option<String>,
    sunday: Option<String>,
    #[serde(default)]
    dates: BTreeMap<String, String>,
}

/// One open range of a day, in milliseconds since local midnight,
/// half-open: `start <= t < end`, `0 <= start < end <= DAY_MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: i64,
    end: i64,
}

/// When the shop's service team works: weekly hours, per-date exceptions,
/// in the shop's local time at a fixed UTC offset. Handoff due times are
/// counted in this open time only (see [`ServiceHours::due_at`]).
///
/// Read it from the `[service_hours]` table of shop.toml with serde (the
/// format is described in the [module docs](crate::hours)):
///
/// ```
/// use xiaoer_domain::ServiceHours;
///
/// #[derive(serde::Deserialize)]
/// struct Shop {
///     service_hours: ServiceHours,
/// }
///
/// let shop: Shop = toml::from_str(r#"
///     [service_hours]
///     utc_offset = "+08:00"
///     monday = "09:00-12:00, 13:30-22:00"
///     saturday = "closed"
///     [service_hours.dates]
///     "2027-02-06" = "10:00-18:00"
/// "#).unwrap();
///
/// // Monday 2027-02-01 11:30 in Beijing is 03:30 UTC; 60 working minutes
/// // are 30 before lunch and 30 after: due 14:00 Beijing, 06:00 UTC.
/// let created = 1_801_452_600_000; // 2027-02-01T03:30:00Z
/// assert_eq!(shop.service_hours.due_at(created, 60), created + 150 * 60_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawServiceHours")]
pub struct ServiceHours {
    /// Local time minus UTC.
    offset_ms: i64,
    /// Monday first.
    week: [Vec<Span>; 7],
    /// Keyed by local day number (days since 1970-01-01).
    dates: BTreeMap<i64, Vec<Span>>,
}

impl TryFrom<RawServiceHours> for ServiceHours {
    type Error = HoursError;

    fn try_from(raw: RawServiceHours) -> Result<Self, HoursError> {
        let offset_ms = parse_offset(&raw.utc_offset)? * MINUTE_MS;
        let days = [
            raw.monday,
            raw.tuesday,
            raw.wednesday,
            raw.thursday,
            raw.friday,
            raw.saturday,
            raw.sunday,
        ];
        let mut week: [Vec<Span>; 7] = Default::default();
        for ((spans, name), text) in week.iter_mut().zip(WEEKDAYS).zip(days) {
            if let Some(text) = text {
                *spans = parse_day(&text).map_err(|reason| HoursError::Hours {
                    field: name.to_string(),
                    value: text,
                    reason,
                })?;
            }
        }
        let mut dates = BTreeMap::new();
        for (date, text) in raw.dates {
            let day = parse_date(&date).map_err(|reason| HoursError::Date {
                date: date.clone(),
                reason,
            })?;
            let spans = parse_day(&text).map_err(|reason| HoursError::Hours {
                field: format!("dates.{date:?}"),
                value: text,
                reason,
            })?;
            dates.insert(day, spans);
        }
        let hours = ServiceHours {
            offset_ms,
            week,
            dates,
        };
        if hours.week_ms() == 0 && hours.dates.values().all(Vec::is_empty) {
            return Err(HoursError::NeverOpen);
        }
        Ok(hours)
    }
}

impl ServiceHours {
    /// Open all day every day at UTC: due times are plain additions. For
    /// tests, and for a deployment whose shop.toml has no hours table.
    pub fn always_open() -> Self {
        let day = vec![Span {
            start: 0,
            end: DAY_MS,
        }];
        ServiceHours {
            offset_ms: 0,
            week: std::array::from_fn(|_| day.clone()),
            dates: BTreeMap::new(),
        }
    }

    /// When a handoff created at `created_ms` is due if it must be answered
    /// within `working_minutes` of open time: the earliest instant by which
    /// that much open time has passed since `created_ms`. All times are unix
    /// milliseconds (UTC); exact to the millisecond.
    ///
    /// - Created while closed, the clock starts at the next opening.
    /// - Time that runs out exactly at a closing time is due at that closing
    ///   time, not at the next opening.
    /// - `working_minutes == 0` gives `created_ms` if the shop is open then,
    ///   else the next opening.
    /// - `due_at(c, a + b) == due_at(due_at(c, a), b)` except when `b == 0`,
    ///   `a > 0` and `due_at(c, a)` is a closing time: the left side is that
    ///   closing time, the right side the next opening.
    ///
    /// There is no search cap and no approximation: past the last listed
    /// date the hours repeat every week, so whole weeks are skipped at once
    /// and the work is bounded by the number of dates, not by the minutes.
    /// If no open time is left at all (every weekday closed and every
    /// opening date passed) the handoff is never due: `i64::MAX`. A result
    /// beyond the range of `i64` is also `i64::MAX`.
    pub fn due_at(&self, created_ms: i64, working_minutes: u32) -> i64 {
        let local = i128::from(created_ms) + i128::from(self.offset_ms);
        let mut day = local.div_euclid(i128::from(DAY_MS)) as i64;
        let mut from = local.rem_euclid(i128::from(DAY_MS)) as i64;
        let mut left = i64::from(working_minutes) * MINUTE_MS;
        let weekly = self.week_ms();
        loop {
            for span in self.spans_on(day) {
                if span.end <= from {
                    continue;
                }
                let begin = span.start.max(from);
                if left <= span.end - begin {
                    return self.instant(day, begin + left);
                }
                left -= span.end - begin;
            }
            day += 1;
            from = 0;
            // Days before the next listed date follow the weekly hours, so
            // whole weeks of them can be skipped, keeping some time left
            // (`left > 0`) so the answer is found by walking the days.
            let next_date = self.dates.range(day..).next().map(|(&d, _)| d);
            if weekly == 0 {
                match next_date {
                    Some(date) => day = date,
                    None => return i64::MAX,
                }
            } else if left > weekly {
                let free_weeks = next_date.map_or(i64::MAX, |date| (date - day) / 7);
                let weeks = free_weeks.min((left - 1) / weekly);
                day += 7 * weeks;
                left -= weeks * weekly;
            }
        }
    }

    /// Whether the service team is working at `at_ms` (unix milliseconds):
    /// ranges include their start and exclude their end.
    pub fn is_open(&self, at_ms: i64) -> bool {
        let local = i128::from(at_ms) + i128::from(self.offset_ms);
        let day = local.div_euclid(i128::from(DAY_MS)) as i64;
        let ms = local.rem_euclid(i128::from(DAY_MS)) as i64;
        self.spans_on(day)
            .iter()
            .any(|span| span.start <= ms && ms < span.end)
    }

    /// The open ranges of a local day: its date entry, else its weekday's.
    fn spans_on(&self, day: i64) -> &[Span] {
        match self.dates.get(&day) {
            Some(spans) => spans,
            // Day 0, 1970-01-01, was a Thursday (index 3, Monday first).
            None => &self.week[(day + 3).rem_euclid(7) as usize],
        }
    }

    /// Open milliseconds in a week of weekly hours.
    fn week_ms(&self) -> i64 {
        self.week
            .iter()
            .flatten()
            .map(|span| span.end - span.start)
            .sum()
    }

    /// The unix milliseconds of `ms` after the local midnight starting
    /// `day`, saturating at `i64::MAX`.
    fn instant(&self, day: i64, ms: i64) -> i64 {
        let utc =
            i128::from(day) * i128::from(DAY_MS) + i128::from(ms) - i128::from(self.offset_ms);
        i64::try_from(utc).unwrap_or(i64::MAX)
    }
}

/// `"UTC"` or `±HH:MM` to minutes east of UTC.
fn parse_offset(text: &str) -> Result<i64, HoursError> {
    let error = |reason: &str| HoursError::Offset {
        value: text.to_string(),
        reason: reason.to_string(),
    };
    if text == "UTC" {
        return Ok(0);
    }
    let parsed = match (
        text.get(..1),
        text.get(1..).and_then(|rest| rest.split_once(':')),
    ) {
        (Some(sign @ ("+" | "-")), Some((h, m))) if h.len() == 2 && m.len() == 2 => {
            let sign = if sign == "-" { -1 } else { 1 };
            digits(h).zip(digits(m)).map(|(h, m)| (sign, h, m))
        }
        _ => None,
    };
    let Some((sign, hours, minutes)) = parsed else {
        return Err(error(
            "expected \"UTC\" or a signed \"+HH:MM\" / \"-HH:MM\"",
        ));
    };
    if minutes > 59 {
        return Err(error("minutes must be 00-59"));
    }
    let total = hours * 60 + minutes;
    if total > MAX_OFFSET_MINUTES {
        return Err(error("offsets go from -14:00 to +14:00"));
    }
    Ok(sign * total)
}

/// `"closed"` or comma-separated `"HH:MM-HH:MM"` ranges to sorted,
/// joined spans; the error is the reason, the caller adds the field.
fn parse_day(text: &str) -> Result<Vec<Span>, String> {
    let text = text.trim();
    if text == "closed" {
        return Ok(Vec::new());
    }
    let mut spans: Vec<Span> = Vec::new();
    for range in text.split(',').map(str::trim) {
        let Some((start, end)) = range.split_once('-') else {
            return Err(format!(
                "{range:?} is not a range \"HH:MM-HH:MM\" (or write \"closed\")"
            ));
        };
        let (start, end) = (parse_time(start.trim())?, parse_time(end.trim())?);
        if start >= end {
            return Err(format!(
                "{range:?} does not end after it starts (hours past midnight are \
                 written \"…-24:00\" and \"00:00-…\" on the next day)"
            ));
        }
        match spans.last_mut() {
            Some(last) if start < last.end => {
                return Err(format!(
                    "{range:?} starts before the range before it ends \
                     (ranges must be in order and must not overlap)"
                ));
            }
            Some(last) if start == last.end => last.end = end,
            _ => spans.push(Span { start, end }),
        }
    }
    Ok(spans)
}

/// `"H:MM"` or `"HH:MM"`, up to `"24:00"`, to milliseconds since midnight.
fn parse_time(text: &str) -> Result<i64, String> {
    let parsed = match text.split_once(':') {
        Some((h, m)) if (1..=2).contains(&h.len()) && m.len() == 2 => digits(h).zip(digits(m)),
        _ => None,
    };
    let Some((hours, minutes)) = parsed else {
        return Err(format!("{text:?} is not a time \"HH:MM\""));
    };
    if minutes > 59 {
        return Err(format!("{text:?}: minutes must be 00-59"));
    }
    if hours > 24 || (hours == 24 && minutes > 0) {
        return Err(format!("{text:?}: times go from 00:00 to 24:00"));
    }
    Ok((hours * 60 + minutes) * MINUTE_MS)
}

/// `YYYY-MM-DD` to days since 1970-01-01 (a real date of the proleptic
/// Gregorian calendar, else why not).
pub fn parse_date(text: &str) -> Result<i64, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let parsed = match parts[..] {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            (digits(y), digits(m), digits(d))
        }
        _ => (None, None, None),
    };
    let (Some(year), Some(month), Some(day)) = parsed else {
        return Err("expected YYYY-MM-DD".to_string());
    };
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} is not 01-12"));
    }
    let month_days = days_in_month(year, month);
    if !(1..=month_days).contains(&day) {
        return Err(format!("day {day} is not 01-{month_days:02} in that month"));
    }
    Ok(days_from_civil(year, month, day))
}

/// An ASCII decimal number (no sign, no spaces).
fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days in a month of the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date (Howard
/// Hinnant's `days_from_civil`: years counted from March, 400-year eras).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests;
