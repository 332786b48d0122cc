use super::*;

fn round_trips<T>(all: &[T])
where
    T: Copy + PartialEq + fmt::Debug + fmt::Display + std::str::FromStr<Err = UnknownName>,
{
    for value in all {
        assert_eq!(value.to_string().parse::<T>().unwrap(), *value);
    }
}

#[test]
fn every_name_parses_back_to_its_value() {
    round_trips(Intent::ALL);
    round_trips(SentimentLabel::ALL);
    round_trips(RequestLabel::ALL);
    round_trips(Queue::ALL);
    round_trips(TurnRole::ALL);
    round_trips(HandoffReason::ALL);
}

#[test]
fn the_taxonomy_has_24_unique_intents() {
    let mut names: Vec<&str> = Intent::ALL.iter().map(|i| i.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 24);
}

#[test]
fn unknown_names_are_refused_with_the_vocabulary_named() {
    let err = "returns".parse::<Intent>().unwrap_err();
    assert_eq!(err.kind, "intent");
    assert!(err.to_string().contains("return_request"), "{err}");
    assert!(
        "Customer".parse::<TurnRole>().is_err(),
        "names are case-sensitive"
    );
    assert!("".parse::<Queue>().is_err());
}

#[test]
fn serde_uses_the_same_names() {
    assert_eq!(
        serde_json::to_string(&Intent::HumanAgent).unwrap(),
        "\"human_agent\""
    );
    assert_eq!(
        serde_json::from_str::<HandoffReason>("\"NEEDS_AGENT\"").unwrap(),
        HandoffReason::NeedsAgent
    );
    let err = serde_json::from_str::<SentimentLabel>("\"furious\"").unwrap_err();
    assert!(err.to_string().contains("unknown sentiment label"), "{err}");
}
