//! When an agent should have answered a handoff: its priority's response
//! time, counted only while the shop's service team works (shop.toml
//! `[service_hours]`), so a complaint at 23:00 is not "late" at 23:06.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use xiaoer_domain::ServiceHours;

/// Response time per priority, 1 (most urgent) to 4. Written like
/// `5m,15m,1h,4h` in flags, env and TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ResponseTimes([Duration; 4]);

impl Default for ResponseTimes {
    /// Angry shoppers within 5 minutes, explicit requests 15, unsure
    /// answers an hour, the rest half a working day.
    fn default() -> Self {
        Self([60 * 5, 60 * 15, 3600, 4 * 3600].map(Duration::from_secs))
    }
}

impl ResponseTimes {
    /// The response time of `priority` (clamped to 1..=4).
    pub fn for_priority(&self, priority: i32) -> Duration {
        self.0[(priority.clamp(1, 4) - 1) as usize]
    }
}

impl FromStr for ResponseTimes {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [p1, p2, p3, p4] = parts[..] else {
            return Err(format!(
                "response times: expected four durations for priorities 1-4 like 5m,15m,1h,4h, got {text:?}"
            ));
        };
        let mut out = [Duration::ZERO; 4];
        for (slot, part) in out.iter_mut().zip([p1, p2, p3, p4]) {
            *slot = parse_duration(part).map_err(|e| format!("response times: {e}"))?;
        }
        Ok(Self(out))
    }
}

impl TryFrom<String> for ResponseTimes {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl fmt::Display for ResponseTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|d| format_duration(*d)).collect();
        f.write_str(&parts.join(","))
    }
}

/// Parses `30s`, `15m`, `24h`, `7d` (a whole number and one unit), the way
/// every duration in xiaoer's configuration is written.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (write 30s, 15m, 24h or 7d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use s, m, h or d)"
            ))
        }
    };
    n.checked_mul(seconds)
        .filter(|s| *s <= 366 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is longer than a year"))
}

/// The shortest exact form of a duration in whole units.
fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// Due times for new handoffs.
#[derive(Debug, Clone)]
pub struct DueClock {
    pub response_times: ResponseTimes,
    pub hours: ServiceHours,
}

impl Default for DueClock {
    /// The default response times around the clock.
    fn default() -> Self {
        Self {
            response_times: ResponseTimes::default(),
            hours: ServiceHours::always_open(),
        }
    }
}

impl DueClock {
    /// When a handoff of `priority` created at `created_ms` is due.
    pub fn due_at(&self, created_ms: i64, priority: i32) -> i64 {
        let minutes = self
            .response_times
            .for_priority(priority)
            .as_secs()
            .div_ceil(60);
        self.hours
            .due_at(created_ms, u32::try_from(minutes).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration(" 24h "), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "15", "m", "1.5h", "-5m", "5 m", "3w", "400d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn response_times_parse_print_and_clamp() {
        let times: ResponseTimes = "2m, 10m,1h,1d".parse().unwrap();
        assert_eq!(times.to_string(), "2m,10m,1h,1d");
        assert_eq!(times.for_priority(1), Duration::from_secs(120));
        assert_eq!(times.for_priority(0), Duration::from_secs(120));
        assert_eq!(times.for_priority(9), Duration::from_secs(86_400));
        assert_eq!(ResponseTimes::default().to_string(), "5m,15m,1h,4h");
        assert!("5m,15m,1h".parse::<ResponseTimes>().is_err());
        assert!("5m,15m,1h,soon".parse::<ResponseTimes>().is_err());
    }

    #[test]
    fn always_open_shops_add_the_response_time() {
        let clock = DueClock::default();
        assert_eq!(clock.due_at(1_000, 1), 1_000 + 5 * 60_000);
        assert_eq!(clock.due_at(1_000, 4), 1_000 + 4 * 3_600_000);
    }
}
