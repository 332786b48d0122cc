use super::*;
use proptest::prelude::*;

/// A week with a lunch gap on Monday, a closed weekend and three dates
/// around the Spring Festival of 2027 (2027-02-01 is a Monday).
const SHOP: &str = r#"
    utc_offset = "+08:00"
    monday = "09:00-12:00, 13:30-22:00"
    tuesday = "09:00-22:00"
    wednesday = "09:00-22:00"
    thursday = "09:00-22:00"
    friday = "09:00-22:00"
    saturday = "closed"
    # no sunday: closed

    [dates]
    "2027-02-10" = "closed"        # a Wednesday
    "2027-02-11" = "10:00-18:00"   # a Thursday, shortened
    "2027-02-12" = "20:00-24:00"   # a Friday, late
"#;

fn shop() -> ServiceHours {
    toml::from_str(SHOP).unwrap()
}

/// Unix ms of a local wall-clock time at `offset` minutes east of UTC.
fn local(offset: i64, y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
    days_from_civil(y, mo, d) * DAY_MS + (h * 60 + mi - offset) * MINUTE_MS
}

/// Unix ms of a Beijing wall-clock time.
fn bj(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
    local(8 * 60, y, mo, d, h, mi)
}

/// The deserialization error of a table, as shop.toml's reader shows it.
fn error(table: &str) -> String {
    toml::from_str::<ServiceHours>(table)
        .unwrap_err()
        .to_string()
}

/// A table with a valid offset and the given lines.
fn with_offset(lines: &str) -> String {
    format!("utc_offset = \"+08:00\"\n{lines}")
}

#[test]
fn civil_dates_count_days_from_1970() {
    assert_eq!(days_from_civil(1970, 1, 1), 0);
    assert_eq!(days_from_civil(1969, 12, 31), -1);
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    assert_eq!(days_from_civil(2024, 1, 1), 19_723);
    assert_eq!(days_from_civil(2027, 2, 6), 20_855);
    assert_eq!(days_from_civil(1, 1, 1), -719_162);
    assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
    // Every valid date is the day after the one before it.
    let mut expected = days_from_civil(1599, 12, 31) + 1;
    for year in 1600..2401 {
        for month in 1..=12 {
            for day in 1..=days_in_month(year, month) {
                assert_eq!(days_from_civil(year, month, day), expected);
                expected += 1;
            }
        }
    }
}

#[test]
fn weekdays_follow_the_calendar() {
    let hours = shop();
    // Saturday 2027-02-06 (not a listed date) is closed all day, Monday
    // 2027-02-01 has its lunch gap, 1969-12-31 was a Wednesday.
    assert!(!hours.is_open(bj(2027, 2, 6, 12, 0)));
    assert!(hours.is_open(bj(2027, 2, 1, 11, 59)));
    assert!(!hours.is_open(bj(2027, 2, 1, 12, 0)));
    assert!(hours.is_open(bj(2027, 2, 1, 13, 30)));
    assert!(!hours.is_open(bj(2027, 2, 1, 22, 0)));
    assert_eq!(hours.spans_on(-1), hours.week[2].as_slice());
}

#[test]
fn created_inside_hours_adds_the_minutes() {
    let hours = shop();
    let created = bj(2027, 2, 2, 10, 0) + 1234; // Tuesday 10:00:01.234
    assert_eq!(hours.due_at(created, 30), created + 30 * MINUTE_MS);
    assert_eq!(hours.due_at(created, 0), created);
}

#[test]
fn created_at_night_starts_next_morning() {
    let hours = shop();
    assert_eq!(
        hours.due_at(bj(2027, 2, 2, 23, 0), 30),
        bj(2027, 2, 3, 9, 30)
    );
    assert_eq!(
        hours.due_at(bj(2027, 2, 2, 3, 0), 30),
        bj(2027, 2, 2, 9, 30)
    );
    // Zero minutes while closed: the next opening.
    assert_eq!(hours.due_at(bj(2027, 2, 2, 22, 0), 0), bj(2027, 2, 3, 9, 0));
}

#[test]
fn the_lunch_gap_does_not_count() {
    let hours = shop();
    assert_eq!(
        hours.due_at(bj(2027, 2, 1, 11, 30), 60),
        bj(2027, 2, 1, 14, 0)
    );
    // Time running out at a closing time is due then, not after lunch.
    assert_eq!(
        hours.due_at(bj(2027, 2, 1, 11, 30), 30),
        bj(2027, 2, 1, 12, 0)
    );
    assert_eq!(
        hours.due_at(bj(2027, 2, 1, 12, 45), 1),
        bj(2027, 2, 1, 13, 31)
    );
}

#[test]
fn friday_evening_is_due_monday_when_the_weekend_is_closed() {
    let hours = shop();
    // 60 minutes on Friday, 60 on Monday.
    assert_eq!(
        hours.due_at(bj(2027, 2, 5, 21, 0), 120),
        bj(2027, 2, 8, 10, 0)
    );
    assert_eq!(hours.due_at(bj(2027, 2, 6, 15, 0), 0), bj(2027, 2, 8, 9, 0));
}

#[test]
fn dates_replace_the_weekly_hours() {
    let hours = shop();
    // Tuesday evening → Wednesday the 10th is closed → Thursday the 11th
    // opens at 10:00, not 09:00.
    assert_eq!(
        hours.due_at(bj(2027, 2, 9, 21, 30), 60),
        bj(2027, 2, 11, 10, 30)
    );
    assert!(!hours.is_open(bj(2027, 2, 10, 12, 0)));
    assert!(!hours.is_open(bj(2027, 2, 11, 9, 30)));
    // The shortened day closes at 18:00; the 12th opens only at 20:00.
    assert_eq!(
        hours.due_at(bj(2027, 2, 11, 17, 0), 120),
        bj(2027, 2, 12, 21, 0)
    );
}

#[test]
fn ranges_may_end_at_midnight() {
    let hours = shop();
    // Friday the 12th is open until 24:00; the weekend is closed.
    assert_eq!(
        hours.due_at(bj(2027, 2, 12, 23, 0), 60),
        bj(2027, 2, 13, 0, 0)
    );
    assert_eq!(
        hours.due_at(bj(2027, 2, 12, 23, 30), 60),
        bj(2027, 2, 15, 9, 30)
    );
    assert!(hours.is_open(bj(2027, 2, 12, 23, 59) + 59_999));
    // "…-24:00" and "00:00-…" run on without a break.
    let late: ServiceHours = toml::from_str(
        r#"
        utc_offset = "UTC"
        friday = "20:00-24:00"
        saturday = "00:00-02:00"
        "#,
    )
    .unwrap();
    assert_eq!(
        late.due_at(local(0, 2027, 2, 5, 23, 0), 120),
        local(0, 2027, 2, 6, 1, 0)
    );
    assert!(late.is_open(local(0, 2027, 2, 6, 0, 0)));
}

#[test]
fn the_offset_decides_the_local_day() {
    let hours = shop();
    // Monday 2027-02-01 16:30 UTC is Tuesday 00:30 in Beijing: closed,
    // although Monday's hours at 16:30 would be open.
    let created = local(0, 2027, 2, 1, 16, 30);
    assert!(!hours.is_open(created));
    assert_eq!(hours.due_at(created, 30), local(0, 2027, 2, 2, 1, 30));
    // Dates are local dates too: 2027-02-09 16:00 UTC is already the
    // closed 10th in Beijing.
    assert!(!hours.is_open(local(0, 2027, 2, 9, 16, 0)));
    assert!(hours.is_open(local(0, 2027, 2, 9, 13, 59)));
    // West of UTC.
    let west: ServiceHours = toml::from_str(
        r#"
        utc_offset = "-05:30"
        monday = "09:00-17:00"
        "#,
    )
    .unwrap();
    let created = local(0, 2027, 2, 2, 2, 0); // Monday 20:30 at -05:30
    assert_eq!(west.due_at(created, 10), local(-330, 2027, 2, 8, 9, 10));
}

#[test]
fn always_open_is_plain_addition() {
    let hours = ServiceHours::always_open();
    for created in [0, -1, 1_801_452_600_123, -86_400_001] {
        for minutes in [0, 1, 59, 1440, 10_000_000, u32::MAX] {
            assert_eq!(
                hours.due_at(created, minutes),
                created + i64::from(minutes) * MINUTE_MS
            );
        }
        assert!(hours.is_open(created));
    }
    assert_eq!(hours.due_at(i64::MIN, 0), i64::MIN);
    assert_eq!(hours.due_at(i64::MAX, 0), i64::MAX);
    assert_eq!(hours.due_at(i64::MAX - 5, u32::MAX), i64::MAX, "saturates");
}

#[test]
fn many_weeks_are_skipped_exactly() {
    let hours = shop();
    // After the last date a week has 11.5 + 4 × 13 hours = 3810 minutes.
    assert_eq!(hours.week_ms(), 3810 * MINUTE_MS);
    let monday = bj(2027, 2, 15, 9, 0);
    // Exactly 100 weeks of open time end at a Friday's 22:00 closing.
    let friday = monday + 100 * 7 * DAY_MS - 59 * 60 * MINUTE_MS;
    assert_eq!(hours.due_at(monday, 3810 * 100), friday);
    assert_eq!(
        hours.due_at(monday, 3810 * 100 + 1),
        monday + 100 * 7 * DAY_MS + MINUTE_MS
    );
    // Counting from before the dates walks through them: Monday the 8th
    // to Monday the 15th loses Wednesday (780 minutes) and gains 480 + 240
    // on Thursday and Friday instead of 1560.
    let week_before = bj(2027, 2, 8, 9, 0);
    assert_eq!(
        hours.due_at(week_before, 3810 * 101 - 780 - 1560 + 480 + 240),
        friday
    );
}

#[test]
fn a_schedule_whose_open_dates_have_passed_is_never_due() {
    let hours: ServiceHours = toml::from_str(
        r#"
        utc_offset = "+08:00"
        [dates]
        "2027-02-07" = "10:00-18:00"
        "#,
    )
    .unwrap();
    assert_eq!(
        hours.due_at(bj(2027, 1, 1, 0, 0), 60),
        bj(2027, 2, 7, 11, 0)
    );
    assert_eq!(hours.due_at(bj(2027, 2, 7, 17, 30), 60), i64::MAX);
    assert_eq!(hours.due_at(bj(2027, 2, 8, 0, 0), 0), i64::MAX);
}

#[test]
fn touching_ranges_are_joined_and_spaces_ignored() {
    let joined: ServiceHours =
        toml::from_str(&with_offset(r#"monday = " 09:00 - 12:00 ,12:00-13:00 ""#)).unwrap();
    let single: ServiceHours = toml::from_str(&with_offset(r#"monday = "9:00-13:00""#)).unwrap();
    assert_eq!(joined, single);
    assert_eq!(joined.week[0].len(), 1);
}

#[test]
fn offsets_are_utc_or_signed_hours_and_minutes() {
    let offset = |text: &str| {
        toml::from_str::<ServiceHours>(&format!("utc_offset = {text:?}\nmonday = \"09:00-10:00\""))
            .map(|hours| hours.offset_ms / MINUTE_MS)
    };
    assert_eq!(offset("UTC").unwrap(), 0);
    assert_eq!(offset("-00:00").unwrap(), 0);
    assert_eq!(offset("+08:00").unwrap(), 480);
    assert_eq!(offset("+05:45").unwrap(), 345);
    assert_eq!(offset("-03:30").unwrap(), -210);
    assert_eq!(offset("+14:00").unwrap(), 840);
    assert_eq!(offset("-14:00").unwrap(), -840);
    let cases = [
        ("+14:30", "offsets go from -14:00 to +14:00"),
        ("-15:00", "offsets go from -14:00 to +14:00"),
        ("+08:60", "minutes must be 00-59"),
        ("+0800", "expected \"UTC\" or a signed"),
        ("+8:00", "expected \"UTC\" or a signed"),
        ("08:00", "expected \"UTC\" or a signed"),
        ("Asia/Shanghai", "expected \"UTC\" or a signed"),
        ("utc", "expected \"UTC\" or a signed"),
        ("", "expected \"UTC\" or a signed"),
    ];
    for (text, reason) in cases {
        let message = offset(text).unwrap_err().to_string();
        let expected = format!("service_hours.utc_offset = {text:?}: {reason}");
        assert!(message.contains(&expected), "{text}: {message}");
    }
    assert!(error("monday = \"09:00-10:00\"").contains("missing field `utc_offset`"));
}

#[test]
fn bad_hours_are_refused_with_the_field_named() {
    let cases = [
        ("25:00-26:00", r#""25:00": times go from 00:00 to 24:00"#),
        ("09:00-24:01", r#""24:01": times go from 00:00 to 24:00"#),
        ("9:60-10:00", r#""9:60": minutes must be 00-59"#),
        (
            "10:00-09:00",
            r#""10:00-09:00" does not end after it starts"#,
        ),
        (
            "10:00-10:00",
            r#""10:00-10:00" does not end after it starts"#,
        ),
        (
            "24:00-24:00",
            r#""24:00-24:00" does not end after it starts"#,
        ),
        (
            "09:00-12:00, 11:00-13:00",
            r#""11:00-13:00" starts before the range before it ends"#,
        ),
        (
            "13:00-14:00, 09:00-10:00",
            r#""09:00-10:00" starts before the range before it ends"#,
        ),
        ("9am-5pm", r#""9am" is not a time "HH:MM""#),
        ("09:00-9:0", r#""9:0" is not a time "HH:MM""#),
        ("009:00-10:00", r#""009:00" is not a time "HH:MM""#),
        ("09:00", r#""09:00" is not a range "HH:MM-HH:MM""#),
        ("09:00–22:00", r#""09:00–22:00" is not a range"#),
        ("", r#""" is not a range"#),
        ("Closed", r#""Closed" is not a range"#),
        ("09:00-12:00,", r#""" is not a range"#),
    ];
    for (value, reason) in cases {
        let message = error(&with_offset(&format!("tuesday = {value:?}")));
        let expected = format!("service_hours.tuesday = {value:?}: {reason}");
        assert!(message.contains(&expected), "{value}: {message}");
    }
    let message = error(&with_offset(
        "monday = \"09:00-10:00\"\n[dates]\n\"2027-02-07\" = \"18:00-10:00\"",
    ));
    assert!(
        message.contains(
            r#"service_hours.dates."2027-02-07" = "18:00-10:00": "18:00-10:00" does not end"#
        ),
        "{message}"
    );
}

#[test]
fn unknown_day_names_are_refused() {
    let message = error(&with_offset("mondy = \"09:00-10:00\""));
    assert!(message.contains("unknown field `mondy`"), "{message}");
    assert!(message.contains("monday"), "{message}");
}

#[test]
fn bad_dates_are_refused() {
    let cases = [
        ("2027-02-30", "day 30 is not 01-28 in that month"),
        ("2100-02-29", "day 29 is not 01-28 in that month"),
        ("2027-04-31", "day 31 is not 01-30 in that month"),
        ("2027-13-01", "month 13 is not 01-12"),
        ("2027-00-10", "month 0 is not 01-12"),
        ("2027-02-00", "day 0 is not 01-28 in that month"),
        ("2027-2-6", "expected YYYY-MM-DD"),
        ("27-02-06", "expected YYYY-MM-DD"),
        ("2027/02/06", "expected YYYY-MM-DD"),
        ("2027-02-06-01", "expected YYYY-MM-DD"),
        ("2027-+2-06", "expected YYYY-MM-DD"),
        ("monday", "expected YYYY-MM-DD"),
    ];
    for (date, reason) in cases {
        let message = error(&with_offset(&format!(
            "monday = \"09:00-10:00\"\n[dates]\n{date:?} = \"closed\""
        )));
        let expected = format!("service_hours.dates: {date:?} is not a date: {reason}");
        assert!(message.contains(&expected), "{date}: {message}");
    }
    let leap: ServiceHours = toml::from_str(&with_offset(
        "monday = \"09:00-10:00\"\n[dates]\n\"2028-02-29\" = \"closed\"",
    ))
    .unwrap();
    assert!(leap.dates.contains_key(&days_from_civil(2028, 2, 29)));
}

#[test]
fn a_schedule_with_no_open_time_is_refused() {
    let never = "service_hours: every weekday and every date is closed";
    assert!(error(&with_offset("")).contains(never));
    assert!(error(&with_offset("monday = \"closed\"")).contains(never));
    assert!(error(&with_offset("[dates]\n\"2027-02-07\" = \"closed\"")).contains(never));
    assert_eq!(HoursError::NeverOpen.to_string().find(never), Some(0));
    // One open date is enough to be valid.
    assert!(toml::from_str::<ServiceHours>(&with_offset(
        "[dates]\n\"2027-02-07\" = \"10:00-11:00\""
    ))
    .is_ok());
}

/// Quarter hours, so a brute-force count over quarter-hour slots is exact.
const SLOT_MS: i64 = 15 * MINUTE_MS;

/// Due time by walking local quarter-hour slots one by one: the open state
/// cannot change inside a slot when every range starts and ends on a
/// quarter hour.
fn slot_by_slot(hours: &ServiceHours, created: i64, minutes: u32) -> i64 {
    let offset = hours.offset_ms;
    let mut at = created;
    let mut left = i64::from(minutes) * MINUTE_MS;
    loop {
        let slot_end = ((at + offset).div_euclid(SLOT_MS) + 1) * SLOT_MS - offset;
        if hours.is_open(at) {
            if left <= slot_end - at {
                return at + left;
            }
            left -= slot_end - at;
        }
        at = slot_end;
    }
}

fn hhmm(slot: u32) -> String {
    format!("{:02}:{:02}", slot / 4, slot % 4 * 15)
}

/// One day's hours on quarter hours: "closed" or up to three ranges.
fn day_hours() -> impl Strategy<Value = String> {
    proptest::collection::btree_set(0u32..=96, 0..=6).prop_map(|bounds| {
        let bounds: Vec<u32> = bounds.into_iter().collect();
        let ranges: Vec<String> = bounds
            .chunks_exact(2)
            .map(|pair| format!("{}-{}", hhmm(pair[0]), hhmm(pair[1])))
            .collect();
        if ranges.is_empty() {
            "closed".to_string()
        } else {
            ranges.join(", ")
        }
    })
}

/// Random valid schedules with some weekly open time, any whole-minute
/// offset, and up to four dates in February and March 2027.
fn schedule() -> impl Strategy<Value = ServiceHours> {
    (
        -840i64..=840,
        proptest::collection::vec(proptest::option::of(day_hours()), 7),
        proptest::collection::btree_map((2u32..=3, 1u32..=28), day_hours(), 0..=4),
    )
        .prop_filter_map("no weekly open time", |(offset, week, dates)| {
            let sign = if offset < 0 { '-' } else { '+' };
            let mut text = format!(
                "utc_offset = \"{sign}{:02}:{:02}\"\n",
                offset.abs() / 60,
                offset.abs() % 60
            );
            for (name, hours) in WEEKDAYS.iter().zip(week) {
                if let Some(hours) = hours {
                    text += &format!("{name} = {hours:?}\n");
                }
            }
            text += "[dates]\n";
            for ((month, day), hours) in dates {
                text += &format!("\"2027-{month:02}-{day:02}\" = {hours:?}\n");
            }
            let hours: ServiceHours = toml::from_str(&text).ok()?;
            (hours.week_ms() > 0).then_some(hours)
        })
}

/// A creation time from late January to April 2027: on a local quarter
/// hour (where ranges start and end) half of the time, else anywhere.
fn created_in(hours: &ServiceHours, slot: i64, jitter: i64) -> i64 {
    local(0, 2027, 1, 25, 0, 0) + slot * SLOT_MS + jitter - hours.offset_ms
}

fn jitter() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), 0..SLOT_MS]
}

fn minutes() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..2000, (0u32..130).prop_map(|q| q * 15)]
}

fn many_minutes() -> impl Strategy<Value = u32> {
    prop_oneof![minutes(), 0u32..2_000_000, any::<u32>()]
}

proptest! {
    #[test]
    fn due_at_matches_a_slot_by_slot_count(
        hours in schedule(),
        slot in 0i64..7000,
        jitter in jitter(),
        minutes in minutes(),
    ) {
        let created = created_in(&hours, slot, jitter);
        prop_assert_eq!(hours.due_at(created, minutes), slot_by_slot(&hours, created, minutes));
    }

    #[test]
    fn due_at_is_never_before_creation_and_grows_with_both_inputs(
        hours in schedule(),
        slot in 0i64..7000,
        jitter in jitter(),
        later in 0i64..3 * DAY_MS,
        minutes in many_minutes(),
        more in many_minutes(),
    ) {
        let created = created_in(&hours, slot, jitter);
        let due = hours.due_at(created, minutes);
        prop_assert!(due >= created);
        prop_assert!(due <= hours.due_at(created, minutes.saturating_add(more)));
        prop_assert!(due <= hours.due_at(created + later, minutes));
    }

    #[test]
    fn zero_minutes_is_now_if_open_else_the_next_opening(
        hours in schedule(),
        slot in 0i64..7000,
        jitter in jitter(),
    ) {
        let created = created_in(&hours, slot, jitter);
        let due = hours.due_at(created, 0);
        prop_assert!(hours.is_open(due));
        if hours.is_open(created) {
            prop_assert_eq!(due, created);
        } else {
            // An opening: closed just before, and closed since creation.
            prop_assert!(due > created);
            prop_assert!(!hours.is_open(due - 1));
            prop_assert_eq!(due, slot_by_slot(&hours, created, 0));
        }
    }

    /// Splitting the minutes gives the same due time, except when the
    /// first part ends exactly at a closing time and the second part is 0:
    /// then `due_at(closing, 0)` is the next opening.
    #[test]
    fn due_at_adds_up(
        hours in schedule(),
        slot in 0i64..7000,
        jitter in jitter(),
        a in many_minutes(),
        b in many_minutes(),
    ) {
        let b = b.min(u32::MAX - a);
        let created = created_in(&hours, slot, jitter);
        let whole = hours.due_at(created, a + b);
        let first = hours.due_at(created, a);
        let split = hours.due_at(first, b);
        if b > 0 || a == 0 || hours.is_open(first) {
            prop_assert_eq!(whole, split);
        } else {
            prop_assert!(!hours.is_open(first) && hours.is_open(first - 1), "a closing");
            prop_assert_eq!(whole, first);
            prop_assert!(split > first);
        }
    }
}
