//! The two languages xiaoer answers in, and a pair type that holds one value
//! per language so no article can have a Chinese answer without an English one.

use std::fmt;
use std::str::FromStr;

/// A language of the shop's content and of a shopper's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    /// Simplified Chinese.
    Zh,
    /// English.
    En,
}

impl Lang {
    /// Both languages, in the order articles list them.
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The short code used in article headings (`# zh`), front matter keys and data files.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Lang {
    type Err = String;

    /// Accepts `zh`/`en` (any case) so data files and requests can name a language plainly.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zh" => Ok(Lang::Zh),
            "en" => Ok(Lang::En),
            other => Err(format!("unknown language {other:?} (expected \"zh\" or \"en\")")),
        }
    }
}

/// One value per language; indexing by [`Lang`] keeps call sites free of matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bilingual<T> {
    /// The Chinese value.
    pub zh: T,
    /// The English value.
    pub en: T,
}

impl<T> Bilingual<T> {
    /// The value for `lang`.
    pub fn get(&self, lang: Lang) -> &T {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_in_any_case() {
        assert_eq!("ZH".parse::<Lang>(), Ok(Lang::Zh));
        assert_eq!(" en ".parse::<Lang>(), Ok(Lang::En));
        assert!("fr".parse::<Lang>().is_err());
        assert_eq!(Lang::En.to_string(), "en");
    }

    #[test]
    fn bilingual_get_picks_the_language() {
        let b = Bilingual { zh: 1, en: 2 };
        assert_eq!(*b.get(Lang::Zh), 1);
        assert_eq!(*b.get(Lang::En), 2);
    }
}
