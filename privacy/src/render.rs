//! Masked forms, one per kind. Each keeps just enough for an agent to match
//! what the shopper says (last four digits, an e-mail's first letter and
//! domain) and is built so that masking it again changes nothing: every
//! kept run of digits or letters touches a `*`, which no detector accepts.

use crate::span::Kind;

/// Chinese placeholder for an address span written in Chinese.
pub const ADDRESS_ZH: &str = "[地址已隐藏]";
/// English placeholder for an address span written in Latin letters.
pub const ADDRESS_EN: &str = "[address hidden]";
/// Chinese placeholder for a name written in Chinese characters.
pub const NAME_ZH: &str = "[姓名已隐藏]";
/// English placeholder for a name written in Latin letters.
pub const NAME_EN: &str = "[name hidden]";

/// The masked form of `value` (folded text of one resolved span).
pub(crate) fn render(kind: Kind, value: &str) -> String {
    match kind {
        Kind::Phone => phone(value),
        Kind::Email => email(value).unwrap_or_else(|| token(value)),
        Kind::IdCard | Kind::Passport | Kind::Account => token(value),
        Kind::BankCard => card(value),
        Kind::Address => placeholder(value, ADDRESS_ZH, ADDRESS_EN),
        Kind::Name => placeholder(value, NAME_ZH, NAME_EN),
    }
}

fn has_han(value: &str) -> bool {
    value
        .chars()
        .any(|c| ('\u{3400}'..='\u{9FFF}').contains(&c))
}

fn placeholder(value: &str, zh: &str, en: &str) -> String {
    if has_han(value) { zh } else { en }.to_string()
}

/// Mainland mobiles as `138****5678` (what the handoff package's phone
/// entity looks for), any prefix ("+86 ") as written; every other phone with
/// all digits starred but the last four of the number itself, separators
/// kept, an extension starred whole.
fn phone(value: &str) -> String {
    let main_end = extension_start(value).unwrap_or(value.len());
    let (main, ext) = value.split_at(main_end);
    let digits: Vec<(usize, u8)> = main
        .bytes()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_digit())
        .collect();
    let mut out = String::with_capacity(value.len() + 4);
    if let Some(at) = mobile_start(&digits) {
        let first = digits[at].0;
        out.push_str(&main[..first]);
        let d: Vec<u8> = digits[at..].iter().map(|&(_, b)| b).collect();
        out.push_str(std::str::from_utf8(&d[..3]).unwrap_or("1**"));
        out.push_str("****");
        out.push_str(std::str::from_utf8(&d[7..]).unwrap_or("****"));
        out.push_str(&main[digits[digits.len() - 1].0 + 1..]);
    } else {
        let keep = match digits.len() {
            0..=4 => 0,
            5..=7 => 2,
            _ => 4,
        };
        let clear_from = digits.len() - keep;
        let mut n = 0;
        for c in main.chars() {
            if c.is_ascii_digit() {
                out.push(if n >= clear_from { c } else { '*' });
                n += 1;
            } else {
                out.push(c);
            }
        }
    }
    out.extend(
        ext.chars()
            .map(|c| if c.is_ascii_digit() { '*' } else { c }),
    );
    out
}

/// Where the 11 digits of a mainland mobile start, when the number is one
/// (optionally after 86 or 0086).
fn mobile_start(digits: &[(usize, u8)]) -> Option<usize> {
    let d: Vec<u8> = digits.iter().map(|&(_, b)| b).collect();
    let at = match d.len() {
        11 => 0,
        13 if d.starts_with(b"86") => 2,
        15 if d.starts_with(b"0086") => 4,
        _ => return None,
    };
    (d[at] == b'1' && (b'3'..=b'9').contains(&d[at + 1])).then_some(at)
}

/// Start of an extension: a word marker ("转", "ext", "x", "#", "分机")
/// after the number, or a last dash group of at most five digits after a
/// group of seven or more ("0755-88889999-801").
pub(crate) fn extension_start(value: &str) -> Option<usize> {
    let first_digit = value.find(|c: char| c.is_ascii_digit())?;
    if let Some(at) =
        value[first_digit..].find(|c: char| !(c.is_ascii_digit() || " -.()+/".contains(c)))
    {
        return Some(first_digit + at);
    }
    let last_dash = value.rfind('-')?;
    let tail = &value[last_dash + 1..];
    let before = value[..last_dash]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("");
    (!tail.is_empty()
        && tail.len() <= 5
        && tail.bytes().all(|b| b.is_ascii_digit())
        && before.len() >= 7)
        .then_some(last_dash)
}

/// `a***@domain`: the local part's first character and the domain stay;
/// a spelled-out address keeps its "at" as written (`j*** at gmail dot com`).
fn email(value: &str) -> Option<String> {
    let Some(at) = value.rfind('@') else {
        let lower = value.to_ascii_lowercase();
        let at = ["[at]", "(at)", "{at}", "<at>", " at "]
            .iter()
            .filter_map(|m| lower.find(m))
            .min()?;
        let marker = value[..at].len() - value[..at].trim_end_matches([' ', '\t']).len();
        let first = value.chars().next()?;
        return Some(format!("{first}***{}", &value[at - marker..]));
    };
    let first = value.chars().next().filter(|c| *c != '@')?;
    Some(format!("{first}***{}", &value[at..]))
}

/// `**** 1234`: the last four digits of a card stay.
fn card(value: &str) -> String {
    let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("**** {tail}")
}

/// Identity and account values: an 18-character ID keeps its first three and
/// last four characters (`110***********002X`, today's form), shorter values
/// their first and last two (`E******78`), separators stay.
fn token(value: &str) -> String {
    let alnum = value.chars().filter(|c| c.is_alphanumeric()).count();
    let (head, tail) = match alnum {
        15.. => (3, 4),
        8..=14 => (1, 2),
        4..=7 => (1, 1),
        _ => (0, 0),
    };
    let mut n = 0;
    value
        .chars()
        .map(|c| {
            if !c.is_alphanumeric() {
                return c;
            }
            n += 1;
            if n <= head || n > alnum - tail {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert_eq!(phone("13812345678"), "138****5678");
        assert_eq!(phone("+86 139-1234-5678"), "+86 139****5678");
        assert_eq!(phone("+44 20 7946 0958"), "+** ** **** 0958");
        assert_eq!(phone("(415) 555-2671"), "(***) ***-2671");
        assert_eq!(phone("010-12345678转8001"), "***-****5678转****");
        assert_eq!(phone("0755-88889999-801"), "****-****9999-***");
        assert_eq!(phone("95588"), "***88");
    }

    #[test]
    fn other_kinds() {
        assert_eq!(
            email("jane.doe@example.co.uk").unwrap(),
            "j***@example.co.uk"
        );
        assert_eq!(
            email("ken dot wu at gmail dot com").unwrap(),
            "k*** at gmail dot com"
        );
        assert_eq!(email("r.hall [at] uni.edu").unwrap(), "r*** [at] uni.edu");
        assert_eq!(card("6222 0212 3456 7890 123"), "**** 0123");
        assert_eq!(token("11010519491231002X"), "110***********002X");
        assert_eq!(token("E12345678"), "E******78");
        assert_eq!(token("wxid_abc123456"), "w***_*******56");
        assert_eq!(render(Kind::Address, "221B Baker Street"), ADDRESS_EN);
        assert_eq!(render(Kind::Address, "张江路123号"), ADDRESS_ZH);
        assert_eq!(render(Kind::Name, "张三"), NAME_ZH);
    }
}
