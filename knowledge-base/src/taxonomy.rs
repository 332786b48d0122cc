//! The intent taxonomy shared by the classifier, the dialogue policy and the
//! articles. Articles name the intents they answer; [`crate::check`] rejects
//! any name outside this list so a typo cannot silently unlink an article.

/// The 24 shopper intents, defined once by the classifier that predicts them.
pub use xiaoer_models::data::INTENTS;

/// Whether `name` is one of [`INTENTS`].
pub fn is_intent(name: &str) -> bool {
    INTENTS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taxonomy_has_24_unique_names() {
        let mut names: Vec<&str> = INTENTS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 24);
        assert!(is_intent("return_request"));
        assert!(!is_intent("returns"));
    }
}
