//! Shapes that need no keyword: resident ID numbers (15 or 18 characters
//! with a real province code and birth date, checksum or not, or any
//! 18-character number whose GB 11643 checksum holds), WeChat's own
//! `wxid_…` ids, and — to keep — carriers' tracking-number shapes.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::checks::{id_checksum_ok, id_shape};

/// Resident ID numbers: every maximal run of 18 digits, of 17 digits and
/// an X, or of 15 digits, that has the shape (or the checksum) — letters
/// may touch it ("E110105…", "…002X4111"), digits may not.
pub(crate) fn resident_ids(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let is_id = |s: &[u8]| id_shape(s) || (id_checksum_ok(s) && s[0] != b'0' && id_dates(s));
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let end = match i - s {
            17 if matches!(b.get(i), Some(b'X' | b'x')) => i + 1,
            15 | 18 => i,
            _ => continue,
        };
        if is_id(&b[s..end]) {
            out.push(s..end);
        }
    }
    out
}

fn id_dates(s: &[u8]) -> bool {
    let n = |a: usize| u32::from(s[a] - b'0') * 10 + u32::from(s[a + 1] - b'0');
    matches!(&s[6..8], b"19" | b"20") && (1..=12).contains(&n(10)) && (1..=31).contains(&n(12))
}

static WXID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?-u:\b)wxid_[a-z0-9]{4,}").expect("wxid regex"));

/// WeChat's generated account ids.
pub(crate) fn wechat_ids(text: &str) -> Vec<Range<usize>> {
    WXID.find_iter(text).map(|m| m.range()).collect()
}

static TRACKING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?-u:\b)(?:(?:SF|JDV|JDX|JD|YT|YD|ZTO|ZT|STO|JT|EMS|DPK|KYE|DHL|UPS|TT|HTKY|YZ|YUN|CNG|LP)\d{8,20}|1Z[0-9A-Z]{16}|9[1-5]\d{2}(?:\s?\d{4}){4}\s?\d{2}|[A-Z]{2}\d{9}[A-Z]{2})(?-u:\b)",
    )
    .expect("tracking regex")
});

/// Tracking numbers by their carrier's shape (SF…, JD…, YT…, 1Z…, UPU
/// S10 like RR123456789CN, USPS's 22-digit 9[1-5]… numbers, grouped in
/// fours or not): readable even with no keyword before them.
pub(crate) fn tracking_numbers(text: &str) -> Vec<Range<usize>> {
    // A number that runs on from another digit group across one separator
    // ("1710628188 9205 5000 …") is part of something longer: not a
    // tracking number standing alone.
    let runs_on = |s: &str| {
        let s = s.strip_prefix([' ', '-']).unwrap_or(s);
        s.starts_with(|c: char| c.is_ascii_digit())
    };
    TRACKING
        .find_iter(text)
        .filter(|m| {
            let before: String = text[..m.start()].chars().rev().take(2).collect();
            !runs_on(&before) && !runs_on(&text[m.end()..])
        })
        .map(|m| m.range())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let t = "id 110105194912310021, 11010519491231002X; 110105491231002 x A110105194912310021";
        let found: Vec<&str> = resident_ids(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(
            found,
            vec![
                "110105194912310021",
                "11010519491231002X",
                "110105491231002",
                "110105194912310021"
            ]
        );
        assert!(resident_ids("订单 260101123456789012").is_empty());
    }

    #[test]
    fn tracking_and_wxid() {
        let t = "SF1234567890123 和 1Z999AA10123456784, RR123456789CN wxid_abc123456";
        let found: Vec<&str> = tracking_numbers(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(
            found,
            vec!["SF1234567890123", "1Z999AA10123456784", "RR123456789CN"]
        );
        assert_eq!(wechat_ids(t).len(), 1);
        let usps = "USPS 9205 5000 1234 5678 9012 34 and 9361289912345678901234";
        let found: Vec<&str> = tracking_numbers(usps)
            .into_iter()
            .map(|r| &usps[r])
            .collect();
        assert_eq!(
            found,
            vec!["9205 5000 1234 5678 9012 34", "9361289912345678901234"]
        );
        assert!(tracking_numbers("13800001111 9205 5000 1234 5678 9012 34").is_empty());
    }
}
