//! Order, tracking and phone numbers taken out of a shopper's message
//! before it is encoded.
//!
//! Shoppers paste identifiers all the time ("TB20261101889 还没发货，电话
//! 13812345678"), but the digits say nothing about what they want, and the
//! hand-written training data has few of them. Left in, a long digit string
//! becomes a dozen rare sub-word pieces that can outweigh the words around
//! it: with both an order number and a phone number, "my order has not
//! shipped" was read as a request for staff to act, and the same message
//! without the digits was not. The words that say an identifier was given
//! ("订单号", "my number is") stay; the entity extractor and the handoff
//! package still see the raw text.

use std::borrow::Cow;

/// Digits a run needs before it counts as an identifier: order, tracking and
/// phone numbers are longer; sizes, prices, years and short hotlines such as
/// 12315 (the consumer-complaint line, a sign of anger) are not.
const MIN_DIGITS: usize = 6;

/// Bumped whenever what [`strip_identifiers`] removes changes; part of the
/// embedding cache key of every query, so no vector made under an older
/// rule is reused.
pub const RULE_VERSION: u32 = 2;

/// ASCII or full-width digit ("１３８" is typed on some Chinese keyboards).
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

/// Letters, digits and hyphens make up an identifier run.
fn is_run_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || is_digit(c) || c == '-'
}

/// `text` with every identifier run replaced by one space. A run is a
/// maximal stretch of ASCII letters, digits (ASCII or full-width) and
/// hyphens ("TB20261101889", "SF1234567890", "138-1234-5678"); it is an
/// identifier when it holds at least [`MIN_DIGITS`] digits. Borrowed when
/// there is nothing to strip. A run does not continue over spaces, so a phone
/// number typed in groups ("177 0519 3862") stays: joining digit groups
/// would also swallow "160 100斤" (height and weight), which a size question
/// needs.
pub fn strip_identifiers(text: &str) -> Cow<'_, str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < chars.len() {
        if !is_run_char(chars[i].1) {
            i += 1;
            continue;
        }
        let start = chars[i].0;
        let mut digits = 0;
        while let Some(&(_, c)) = chars.get(i).filter(|&&(_, c)| is_run_char(c)) {
            digits += usize::from(is_digit(c));
            i += 1;
        }
        let end = chars.get(i).map_or(text.len(), |&(at, _)| at);
        if digits >= MIN_DIGITS {
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(&text[copied..start]);
            buf.push(' ');
            copied = end;
        }
    }
    match out {
        Some(mut buf) => {
            buf.push_str(&text[copied..]);
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn order_tracking_and_phone_numbers_go() {
        assert_eq!(
            strip_identifiers("我的订单号 TB20261101889 还没发货，电话13812345678"),
            "我的订单号   还没发货，电话 "
        );
        assert_eq!(
            strip_identifiers("tracking SF1234567890 hasn't moved, call 138-1234-5678"),
            "tracking   hasn't moved, call  "
        );
        assert_eq!(strip_identifiers("订单号:202611018893"), "订单号: ");
        assert_eq!(strip_identifiers("手机１３８１２３４５６７８"), "手机 ");
    }

    #[test]
    fn short_numbers_and_words_stay() {
        for keep in [
            "XXL还有货吗",
            "iPhone15的壳",
            "299元能用券吗",
            "再不处理我打12315",
            "2026年的发票",
            "size 42-43?",
            "42 43 都试过",
            "我160 100斤 选S还是M",
            "电话177 0519 3862",
            "iPhone 15 128GB",
            "买了 3 件 100 元",
            "COD ok?",
            "",
        ] {
            assert!(
                matches!(strip_identifiers(keep), Cow::Borrowed(_)),
                "{keep}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_never_keeps_an_identifier(text in "(\\PC|[0-9A-Z-]){0,60}") {
            let out = strip_identifiers(&text);
            let again = strip_identifiers(&out);
            prop_assert_eq!(again.as_ref(), out.as_ref(), "stripping is idempotent");
            let longest_run_digits = out
                .split(|c: char| !is_run_char(c))
                .map(|run| run.chars().filter(|&c| is_digit(c)).count())
                .max()
                .unwrap_or(0);
            prop_assert!(longest_run_digits < MIN_DIGITS);
        }

        #[test]
        fn text_without_long_digit_runs_is_untouched(text in "[^0-9]{0,60}") {
            let out = strip_identifiers(&text);
            prop_assert_eq!(out.as_ref(), text.as_str());
        }
    }
}
