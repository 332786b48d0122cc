//! Shape checks on plain digit strings: Luhn, resident-ID shapes and
//! checksum, calendar plausibility. Used to *find* values; a failed checksum
//! never clears a value that was named by its keyword.

/// Luhn (mod 10) check of an ASCII digit string, as bank cards carry.
pub(crate) fn luhn_ok(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// GB 11643 check character of an 18-character resident ID number.
pub(crate) fn id_checksum_ok(id: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    if id.len() != 18 || !id[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = id[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    b"10X98765432"[(sum % 11) as usize] == id[17].to_ascii_uppercase()
}

/// First two digits of a mainland administrative division code.
fn province_ok(d: &[u8]) -> bool {
    matches!(
        (d[0] - b'0') * 10 + (d[1] - b'0'),
        11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81..=83 | 91
    )
}

fn num(d: &[u8]) -> u32 {
    d.iter().fold(0, |n, b| n * 10 + u32::from(b - b'0'))
}

fn month_day_ok(d: &[u8]) -> bool {
    (1..=12).contains(&num(&d[..2])) && (1..=31).contains(&num(&d[2..4]))
}

/// Resident ID shape, checksum or not: 18 characters (region, 19xx/20xx
/// birth date, sequence, digit or X) or the older 15 digits (region,
/// two-digit year, date, sequence), the region starting with a real
/// province code.
pub(crate) fn id_shape(s: &[u8]) -> bool {
    match s.len() {
        18 => {
            s[..17].iter().all(u8::is_ascii_digit)
                && (s[17].is_ascii_digit() || s[17] == b'X' || s[17] == b'x')
                && province_ok(s)
                && matches!(&s[6..8], b"19" | b"20")
                && month_day_ok(&s[10..14])
        }
        15 => s.iter().all(u8::is_ascii_digit) && province_ok(s) && month_day_ok(&s[8..12]),
        _ => false,
    }
}

/// A four-digit group that reads as a year (1900–2099).
pub(crate) fn year_like(d: &[u8]) -> bool {
    d.len() == 4 && matches!(&d[..2], b"19" | b"20")
}

/// A four-digit group that reads as a month and day (0101–1231) or a time
/// of day (0000–2359).
pub(crate) fn date_or_time_like(d: &[u8]) -> bool {
    d.len() == 4 && (month_day_ok(d) || (num(&d[..2]) <= 23 && num(&d[2..]) <= 59))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(luhn_ok(b"4111111111111111"));
        assert!(!luhn_ok(b"4111111111111112"));
        assert!(id_checksum_ok(b"11010519491231002X"));
        assert!(!id_checksum_ok(b"110105194912310021"));
        assert!(id_shape(b"110105194912310021"));
        assert!(id_shape(b"110105491231002"));
        assert!(!id_shape(b"260101123456789012"));
        assert!(!id_shape(b"990105194912310021"));
        assert!(year_like(b"2024") && !year_like(b"9123"));
        assert!(date_or_time_like(b"1231") && date_or_time_like(b"2130"));
        assert!(!date_or_time_like(b"9123"));
    }
}
