//! The intent taxonomy shared by the classifier, the dialogue policy and the
//! articles. Articles name the intents they answer; [`crate::check`] rejects
//! any name outside this list so a typo cannot silently unlink an article.

/// The 24 shopper intents, exact names, in the order of the project brief.
pub const INTENTS: [&str; 24] = [
    "greeting",
    "thanks_goodbye",
    "product_info",
    "size_advice",
    "stock_availability",
    "price_and_promotions",
    "shipping_options",
    "order_tracking",
    "modify_order",
    "cancel_order",
    "payment_methods",
    "payment_problem",
    "invoice_request",
    "return_request",
    "exchange_request",
    "refund_status",
    "damaged_or_wrong_item",
    "warranty_repair",
    "account_access",
    "membership_and_points",
    "service_hours",
    "human_agent",
    "complaint",
    "out_of_scope",
];

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
