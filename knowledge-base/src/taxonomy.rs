//! The intent taxonomy shared by the classifier, the dialogue policy and the
//! articles. Articles name the intents they answer; [`crate::check`] rejects
//! any name outside this list so a typo cannot silently unlink an article.

use xiaoer_domain::Intent;

/// The 24 shopper intents, defined once in the domain vocabulary the
/// classifier predicts.
pub const INTENTS: &[Intent] = Intent::ALL;

/// Whether `name` is one of [`INTENTS`] as written in article files.
pub fn is_intent(name: &str) -> bool {
    name.parse::<Intent>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taxonomy_has_24_unique_names() {
        let mut names: Vec<&str> = INTENTS.iter().map(|i| i.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 24);
        assert!(is_intent("return_request"));
        assert!(!is_intent("returns"));
    }
}
