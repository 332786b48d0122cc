use super::*;

fn input(intent: Intent, confidence: f32) -> PolicyInput {
    PolicyInput {
        lang: Language::Zh,
        intents: vec![(intent, confidence), (Intent::ShippingOptions, 0.05)],
        out_of_scope: false,
        anger: 0.02,
        cues: Cues::default(),
        kb: KbMatch::None,
        history: History::default(),
        orders: vec![],
    }
}

fn confident_kb(id: &str) -> KbMatch {
    KbMatch::Confident {
        article_id: id.into(),
        score: 0.9,
    }
}

#[test]
fn explicit_request_for_a_person_hands_off_even_without_the_intent() {
    let mut i = input(Intent::OrderTracking, 0.9);
    i.cues.asks_for_person = true;
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Handoff {
            cause: HandoffReason::CustomerRequest,
            queue: Queue::Logistics,
            priority: 2
        }
    );
}

#[test]
fn bare_agent_request_routes_to_the_earlier_topic() {
    let mut i = input(Intent::HumanAgent, 0.95);
    i.history.last_topic_intent = Some(Intent::RefundStatus);
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Handoff {
            cause: HandoffReason::CustomerRequest,
            queue: Queue::AfterSales,
            priority: 2
        }
    );
}

#[test]
fn anger_beats_a_confident_faq_answer() {
    let mut i = input(Intent::ShippingOptions, 0.9);
    i.kb = confident_kb("shipping-times");
    i.anger = 0.8;
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Handoff {
            cause: HandoffReason::NegativeSentiment,
            queue: Queue::Logistics,
            priority: 1
        }
    );
}

#[test]
fn rising_anger_hands_off_before_the_threshold() {
    let mut i = input(Intent::OrderTracking, 0.9);
    i.history.earlier_anger = vec![0.1, 0.3];
    i.anger = 0.48;
    assert!(matches!(
        decide(&i, &PolicyConfig::default()),
        Decision::Handoff {
            cause: HandoffReason::NegativeSentiment,
            ..
        }
    ));
    i.history.earlier_anger = vec![0.4, 0.3];
    assert!(matches!(
        decide(&i, &PolicyConfig::default()),
        Decision::Answer(_)
    ));
}

#[test]
fn the_model_cut_applies_unless_the_config_sets_one() {
    let mut i = input(Intent::OrderTracking, 0.9);
    i.kb = confident_kb("order-tracking-howto");
    i.anger = 0.3;
    let model = PolicyConfig::default().with_model_anger_cut(0.25);
    assert_eq!(model.anger_cut(), 0.25);
    assert!(matches!(
        decide(&i, &model),
        Decision::Handoff {
            cause: HandoffReason::NegativeSentiment,
            ..
        }
    ));
    let configured = PolicyConfig {
        anger_threshold: Some(0.6),
        ..PolicyConfig::default()
    }
    .with_model_anger_cut(0.25);
    assert_eq!(configured.anger_cut(), 0.6);
    assert!(matches!(decide(&i, &configured), Decision::Answer(_)));
}

#[test]
fn calm_complaint_goes_to_the_complaints_queue() {
    let i = input(Intent::Complaint, 0.8);
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Handoff {
            cause: HandoffReason::NeedsAgent,
            queue: Queue::Complaints,
            priority: 2
        }
    );
}

#[test]
fn faq_with_confident_match_answers_with_the_article() {
    let mut i = input(Intent::ReturnRequest, 0.9);
    i.kb = confident_kb("return-policy");
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Answer(Answer::Article {
            article_id: "return-policy".into()
        })
    );
}

#[test]
fn close_call_between_articles_asks_which_one() {
    let mut i = input(Intent::ReturnRequest, 0.9);
    i.kb = KbMatch::Ambiguous {
        first: "return-policy".into(),
        second: "exchange-policy".into(),
    };
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Clarify {
            options: vec![
                ClarifyOption::Article("return-policy".into()),
                ClarifyOption::Article("exchange-policy".into())
            ]
        }
    );
}

#[test]
fn order_question_uses_storefront_facts_when_sent() {
    let mut i = input(Intent::OrderTracking, 0.9);
    let order = OrderFact {
        order_id: "A1".into(),
        status: "shipped".into(),
        carrier: "SF".into(),
        tracking_number: "SF1".into(),
    };
    i.orders = vec![order.clone()];
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Answer(Answer::OrderStatus {
            order,
            article_id: Some("order-tracking-howto".into())
        })
    );
}

#[test]
fn order_question_without_facts_gives_how_to_and_asks_for_the_number() {
    let i = input(Intent::CancelOrder, 0.9);
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Answer(Answer::ArticleAskOrderNumber {
            article_id: "cancel-order".into()
        })
    );
}

#[test]
fn changing_a_shipped_order_needs_an_agent() {
    let mut i = input(Intent::ModifyOrder, 0.9);
    i.orders = vec![OrderFact {
        status: "已发货".into(),
        ..Default::default()
    }];
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Handoff {
            cause: HandoffReason::NeedsAgent,
            queue: Queue::Logistics,
            priority: 3
        }
    );
    let mut j = input(Intent::CancelOrder, 0.9);
    j.cues.says_already_shipped = true;
    assert!(matches!(
        decide(&j, &PolicyConfig::default()),
        Decision::Handoff {
            cause: HandoffReason::NeedsAgent,
            ..
        }
    ));
}

#[test]
fn greeting_and_farewell_answer_without_articles() {
    assert_eq!(
        decide(&input(Intent::Greeting, 0.9), &PolicyConfig::default()),
        Decision::Answer(Answer::Greeting)
    );
    assert_eq!(
        decide(&input(Intent::ThanksGoodbye, 0.9), &PolicyConfig::default()),
        Decision::Answer(Answer::Farewell)
    );
}

#[test]
fn out_of_scope_says_what_the_bot_can_do_then_hands_off() {
    let mut i = input(Intent::OutOfScope, 0.9);
    i.out_of_scope = true;
    assert_eq!(decide(&i, &PolicyConfig::default()), Decision::OutOfScope);
    i.history.last_bot_clarified = true;
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Handoff {
            cause: HandoffReason::LowConfidence,
            queue: Queue::General,
            priority: 4
        }
    );
}

#[test]
fn low_confidence_clarifies_even_with_a_kb_match() {
    let mut i = input(Intent::ReturnRequest, 0.2);
    i.kb = confident_kb("return-policy");
    assert!(matches!(
        decide(&i, &PolicyConfig::default()),
        Decision::Clarify { .. }
    ));
}

#[test]
fn handed_off_conversation_is_not_auto_answered() {
    let mut i = input(Intent::ShippingOptions, 0.9);
    i.kb = confident_kb("shipping-times");
    i.history.handed_off = true;
    assert_eq!(decide(&i, &PolicyConfig::default()), Decision::WithAgent);
}

#[test]
fn queues_cover_the_helpdesk_routes() {
    let queues: std::collections::BTreeSet<_> = [
        Intent::OrderTracking,
        Intent::RefundStatus,
        Intent::PaymentProblem,
        Intent::SizeAdvice,
        Intent::Complaint,
        Intent::Greeting,
    ]
    .iter()
    .map(|i| queue_for(*i))
    .collect();
    assert_eq!(queues.len(), 6);
}

#[test]
fn a_message_with_nothing_in_it_gets_an_open_question_even_if_it_reads_angry() {
    let mut i = input(Intent::OutOfScope, 0.6);
    i.cues.contentless = true;
    i.anger = 0.97;
    assert_eq!(
        decide(&i, &PolicyConfig::default()),
        Decision::Clarify { options: vec![] }
    );
    // Right after a clarifying question, a second one would go in circles.
    i.history.last_bot_clarified = true;
    assert!(matches!(
        decide(&i, &PolicyConfig::default()),
        Decision::Handoff {
            cause: HandoffReason::LowConfidence,
            ..
        }
    ));
    // With a person already on it, the person answers.
    i.history.handed_off = true;
    assert_eq!(decide(&i, &PolicyConfig::default()), Decision::WithAgent);
}
