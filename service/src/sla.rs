//! When an agent should have answered a handoff: its priority's response
//! time, counted only while the shop's service team works (shop.toml
//! `[service_hours]`), so a complaint at 23:00 is not "late" at 23:06.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use xiaoer_domain::ServiceHours;

use crate::duration::{format_duration, parse_duration};

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
