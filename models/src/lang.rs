//! Reply-language detection for shop messages: Chinese or English.
//!
//! A character-class heuristic, not a model: shoppers write Chinese, English
//! or both in one line ("我的order到哪了"), and a code-switched message is
//! almost always from a Chinese speaker, so any meaningful Chinese makes the
//! reply Chinese. Counting is O(n), allocation-free and total (no input can
//! make it panic), which matters because it runs on every message.

/// A language the bot can answer in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Chinese (simplified answers). The default: the shop's home language,
    /// used when a message carries no letters at all ("👍", "123456").
    #[default]
    Zh,
    /// English.
    En,
}

impl Language {
    /// Both languages, in the order data files and articles list them.
    pub const ALL: [Language; 2] = [Language::Zh, Language::En];

    /// BCP-47 primary language subtag: `"zh"` or `"en"`.
    pub fn code(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
        }
    }

    /// Parses a locale such as `"zh-CN"`, `"zh_TW"`, `"en"` or `"EN-us"` by
    /// its primary subtag; `None` for other languages, so callers can fall
    /// back to [`detect_language`].
    pub fn from_locale(locale: &str) -> Option<Language> {
        let primary = locale.trim().split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("zh") {
            Some(Language::Zh)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Language::En)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Language {
    type Err = String;

    /// Accepts `zh`/`en` (any case) so data files and requests can name a language plainly.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zh" => Ok(Language::Zh),
            "en" => Ok(Language::En),
            other => Err(format!(
                "unknown language {other:?} (expected \"zh\" or \"en\")"
            )),
        }
    }
}

/// Han ideographs: CJK unified (BMP), extension A, compatibility, and the
/// supplementary ideographic planes (extensions B–H and compatibility supplement).
fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{323AF}')
}

/// Latin letters: ASCII, Latin-1/Extended-A/B (accents) and full-width forms.
fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || (('\u{00C0}'..='\u{024F}').contains(&c) && c.is_alphabetic())
        || matches!(c, '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}')
}

/// Detects the reply language of a message.
///
/// Rule: count Han characters `h` and Latin words `w` (runs of Latin
/// letters). The message is Chinese if `h > 0` and either `h >= 4` or
/// `2h >= w` — i.e. Chinese unless the Han characters are a small island in
/// clearly English text (a brand name like "小米" in a long English
/// sentence). No Han and at least one Latin word → English. Neither (emoji,
/// digits, punctuation, empty) → [`Language::default`] (Chinese).
pub fn detect_language(text: &str) -> Language {
    let mut han = 0usize;
    let mut words = 0usize;
    let mut in_word = false;
    for c in text.chars() {
        if is_han(c) {
            han += 1;
        }
        let latin = is_latin_letter(c);
        if latin && !in_word {
            words += 1;
        }
        in_word = latin;
    }
    if han > 0 && (han >= 4 || 2 * han >= words) {
        Language::Zh
    } else if words > 0 {
        Language::En
    } else {
        Language::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typical_messages() {
        let zh = [
            "亲，在吗？",
            "啥时候发货",
            "我的order到哪了",
            "where is my 订单",
            "can u help me 转人工",
            "ok 好",
            "my tracking number is SF1234567 但是一直没更新",
            "退款 refund",
            "（๑•̀ㅂ•́)و✧ 谢谢",
        ];
        for t in zh {
            assert_eq!(detect_language(t), Language::Zh, "{t}");
        }
        let en = [
            "where's my refund??",
            "agent please",
            "i want to return this",
            "Hi, I ordered the 小米 phone case last week, when will it ship?",
            "The 龙 t-shirt is too small, can I exchange it for a bigger size",
            "Ｈｅｌｌｏ",
            "café crème order",
        ];
        for t in en {
            assert_eq!(detect_language(t), Language::En, "{t}");
        }
        for t in ["", "👍", "123456", "？？？", "   "] {
            assert_eq!(detect_language(t), Language::Zh, "{t:?}");
        }
    }

    #[test]
    fn locales_and_codes() {
        assert_eq!(Language::from_locale("zh-CN"), Some(Language::Zh));
        assert_eq!(Language::from_locale("zh_TW"), Some(Language::Zh));
        assert_eq!(Language::from_locale("ZH"), Some(Language::Zh));
        assert_eq!(Language::from_locale("en-US"), Some(Language::En));
        assert_eq!(Language::from_locale(" en "), Some(Language::En));
        assert_eq!(Language::from_locale("fr-FR"), None);
        assert_eq!(Language::from_locale(""), None);
        assert_eq!(Language::Zh.code(), "zh");
        assert_eq!(Language::En.code(), "en");
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let lang = detect_language(&s);
            prop_assert!(matches!(lang, Language::Zh | Language::En));
            let _ = Language::from_locale(&s);
        }

        #[test]
        fn only_han_is_chinese(s in "[\u{4E00}-\u{9FFF}]{1,40}") {
            prop_assert_eq!(detect_language(&s), Language::Zh);
        }

        #[test]
        fn only_ascii_words_is_english(s in "[a-zA-Z]{1,12}( [a-zA-Z]{1,12}){0,10}[.?!]?") {
            prop_assert_eq!(detect_language(&s), Language::En);
        }

        #[test]
        fn appending_chinese_never_flips_to_english(s in "[ -~]{0,60}", zh in "[\u{4E00}-\u{9FFF}]{4,8}") {
            prop_assert_eq!(detect_language(&format!("{s}{zh}")), Language::Zh);
        }
    }
}
