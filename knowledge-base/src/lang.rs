//! A pair type that holds one value per language, so no article can have a
//! Chinese answer without an English one.

pub use xiaoer_models::Language;

/// One value per language; indexing by [`Language`] keeps call sites free of matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bilingual<T> {
    /// The Chinese value.
    pub zh: T,
    /// The English value.
    pub en: T,
}

impl<T> Bilingual<T> {
    /// The value for `lang`.
    pub fn get(&self, lang: Language) -> &T {
        match lang {
            Language::Zh => &self.zh,
            Language::En => &self.en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_in_any_case() {
        assert_eq!("ZH".parse::<Language>(), Ok(Language::Zh));
        assert_eq!(" en ".parse::<Language>(), Ok(Language::En));
        assert!("fr".parse::<Language>().is_err());
        assert_eq!(Language::En.to_string(), "en");
    }

    #[test]
    fn bilingual_get_picks_the_language() {
        let b = Bilingual { zh: 1, en: 2 };
        assert_eq!(*b.get(Language::Zh), 1);
        assert_eq!(*b.get(Language::En), 2);
    }
}
