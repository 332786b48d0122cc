//! Durations as people write them in configuration: `30s`, `15m`, `24h`,
//! `7d` — the one syntax of every duration flag, env variable and TOML key.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

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
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A configured duration: parses and prints in the `30s`/`15m`/`24h`/`7d`
/// syntax, from flags (clap uses `FromStr`) and from TOML strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_duration(text).map(Self)
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
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
    fn config_durations_round_trip_through_text_and_toml() {
        let d: HumanDuration = "15m".parse().unwrap();
        assert_eq!(d.0, Duration::from_secs(900));
        assert_eq!(d.to_string(), "15m");
        assert_eq!(HumanDuration(Duration::ZERO).to_string(), "0s");
        #[derive(Deserialize)]
        struct File {
            window: HumanDuration,
        }
        let file: File = toml::from_str("window = \"90s\"").unwrap();
        assert_eq!(file.window.0, Duration::from_secs(90));
        assert!(toml::from_str::<File>("window = \"soon\"").is_err());
        assert!(toml::from_str::<File>("window = 30").is_err());
    }
}
