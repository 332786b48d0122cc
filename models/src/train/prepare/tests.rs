use super::*;

#[test]
fn validation_split_is_stratified_and_keeps_singletons_in_train() {
    let mut examples = Vec::new();
    for i in 0..10 {
        examples.push(Example {
            text: format!("a{i}"),
            label: "a".into(),
            lang: Language::Zh,
            origin: Origin::Own,
        });
    }
    examples.push(Example {
        text: "b".into(),
        label: "b".into(),
        lang: Language::En,
        origin: Origin::Own,
    });
    let (train, val) = split_validation(examples, 0.2, &mut ChaCha12Rng::seed_from_u64(0));
    assert_eq!(val.len(), 2);
    assert!(val.iter().all(|e| e.label == "a"));
    assert_eq!(train.len(), 9);
}

#[test]
fn request_files_override_borrowed_self_service_examples() {
    let own = |text: &str, intent: &str| Example {
        text: text.into(),
        label: intent.into(),
        lang: Language::En,
        origin: Origin::Own,
    };
    let intents = [
        own("how do I cancel an order", "cancel_order"),
        own("cancel order 5521 for me", "cancel_order"),
        own("I want to file a complaint", "complaint"),
    ];
    let labelled: HashSet<String> = ["cancel order 5521 for me".to_string()].into();
    let borrowed: Vec<Example> = as_self_service(&intents, &labelled).collect();
    assert_eq!(borrowed.len(), 1, "{borrowed:?}");
    assert_eq!(borrowed[0].text, "how do I cancel an order");
    assert_eq!(borrowed[0].label, RequestLabel::SelfService.as_str());
}
