//! The shop profile (`shop.toml`): the facts that differ between shops (name,
//! hotline, return address, …). Articles refer to them as `{{key}}`
//! placeholders so the same article set can serve another shop by swapping one
//! file, and a changed fact is edited in one place.

use std::collections::BTreeMap;

use serde::Deserialize;
use xiaoer_domain::ServiceHours;

use crate::lang::Language;
use crate::util::line_at;

/// Profile keys every shop must define, because the service greets shoppers
/// with the shop's name in their language.
pub const REQUIRED_PROFILE_KEYS: [&str; 2] = ["name_zh", "name_en"];

/// The parsed `shop.toml`: `id = "demo"` plus a `[profile]` table of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopProfile {
    /// Short machine id of the shop (used in logs and metrics labels).
    pub id: String,
    /// Placeholder values by key, e.g. `name_zh`, `hotline`.
    pub values: BTreeMap<String, String>,
    /// When the service team works (`[service_hours]`): handoff due times
    /// count only these hours. Without the table, always open.
    pub service_hours: ServiceHours,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopFile {
    id: String,
    #[serde(default)]
    profile: BTreeMap<String, String>,
    service_hours: Option<ServiceHours>,
}

impl ShopProfile {
    /// Parses `shop.toml` text. Errors are `(line, message)` pairs so the
    /// caller can attach the file name; all of them are returned, not just the first.
    pub(crate) fn parse(text: &str) -> Result<ShopProfile, Vec<(Option<usize>, String)>> {
        let file: ShopFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_at(text, s.start));
            vec![(
                line,
                format!("invalid shop profile: {}", e.message().trim()),
            )]
        })?;
        let mut problems = Vec::new();
        if file.id.trim().is_empty() {
            problems.push((None, "shop `id` is empty".to_string()));
        }
        for key in REQUIRED_PROFILE_KEYS {
            if file.profile.get(key).is_none_or(|v| v.trim().is_empty()) {
                problems.push((None, format!("[profile] needs a non-empty `{key}`")));
            }
        }
        for key in file.profile.keys() {
            if !is_placeholder_key(key) {
                problems.push((
                    None,
                    format!(
                        "[profile] key {key:?} can't be used as a placeholder (use a-z, 0-9, _)"
                    ),
                ));
            }
        }
        if problems.is_empty() {
            Ok(ShopProfile {
                id: file.id,
                values: file.profile,
                service_hours: file.service_hours.unwrap_or_else(ServiceHours::always_open),
            })
        } else {
            Err(problems)
        }
    }

    /// The value of a placeholder key, if the profile defines it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The shop's display name in `lang` (`name_zh` / `name_en`), falling back
    /// to the id so a greeting never comes out empty.
    pub fn name(&self, lang: Language) -> &str {
        let key = match lang {
            Language::Zh => "name_zh",
            Language::En => "name_en",
        };
        self.get(key).unwrap_or(&self.id)
    }
}

/// Whether `key` may appear inside `{{ }}`: lowercase ASCII letters, digits and `_`.
pub(crate) fn is_placeholder_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profile_and_names() {
        let shop = ShopProfile::parse(
            "id = \"demo\"\n[profile]\nname_zh = \"小店\"\nname_en = \"Little Shop\"\nhotline = \"400\"\n",
        )
        .expect("valid profile");
        assert_eq!(shop.id, "demo");
        assert_eq!(shop.name(Language::Zh), "小店");
        assert_eq!(shop.name(Language::En), "Little Shop");
        assert_eq!(shop.get("hotline"), Some("400"));
        assert_eq!(shop.get("nope"), None);
    }

    #[test]
    fn service_hours_are_read_and_checked() {
        let base = "id = \"demo\"\n[profile]\nname_zh = \"小店\"\nname_en = \"Shop\"\n";
        let open = ShopProfile::parse(base).expect("no table: always open");
        assert_eq!(open.service_hours, ServiceHours::always_open());
        let hours =
            format!("{base}[service_hours]\nutc_offset = \"+08:00\"\nmonday = \"09:00-18:00\"\n");
        let shop = ShopProfile::parse(&hours).expect("valid hours");
        assert_ne!(shop.service_hours, ServiceHours::always_open());
        let bad =
            format!("{base}[service_hours]\nutc_offset = \"+08:00\"\nmonday = \"18:00-09:00\"\n");
        let err = ShopProfile::parse(&bad).expect_err("start after end");
        assert!(err[0].1.contains("monday"), "{err:?}");
    }

    #[test]
    fn reports_syntax_error_line() {
        let err =
            ShopProfile::parse("id = \"demo\"\n[profile]\nname_zh = 小店\n").expect_err("bad toml");
        assert_eq!(err[0].0, Some(3), "{err:?}");
    }

    #[test]
    fn reports_missing_names_and_bad_keys() {
        let err =
            ShopProfile::parse("id = \"demo\"\n[profile]\nname_zh = \"x\"\n\"Bad Key\" = \"y\"\n")
                .expect_err("incomplete");
        let text: Vec<&str> = err.iter().map(|(_, m)| m.as_str()).collect();
        assert!(text.iter().any(|m| m.contains("name_en")), "{text:?}");
        assert!(text.iter().any(|m| m.contains("Bad Key")), "{text:?}");
    }

    #[test]
    fn non_string_values_are_rejected() {
        assert!(ShopProfile::parse("id = \"d\"\n[profile]\nname_zh = 3\n").is_err());
    }
}
