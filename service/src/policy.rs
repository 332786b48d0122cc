//! The dialogue policy: one decision per shopper message.
//!
//! Pure logic, no I/O: everything it needs (model outputs, retrieval result,
//! conversation history, storefront order facts) arrives in [`PolicyInput`],
//! so every rule is unit-tested and thresholds come from configuration.

use serde::Deserialize;

use xiaoer_models::Language;

/// Intents whose questions the knowledge base answers.
pub const FAQ_INTENTS: &[&str] = &[
    "product_info",
    "size_advice",
    "stock_availability",
    "price_and_promotions",
    "shipping_options",
    "payment_methods",
    "payment_problem",
    "invoice_request",
    "return_request",
    "exchange_request",
    "damaged_or_wrong_item",
    "warranty_repair",
    "account_access",
    "membership_and_points",
    "service_hours",
];

/// Intents about one specific order: answered from the storefront's order
/// facts when it sends them, otherwise with the how-to and a request for the
/// order number.
pub const ORDER_INTENTS: &[&str] = &[
    "order_tracking",
    "modify_order",
    "cancel_order",
    "refund_status",
];

/// Why a conversation goes to a person; numbers match the contract's `HandoffReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffCause {
    CustomerRequest = 1,
    NegativeSentiment = 2,
    LowConfidence = 3,
    NeedsAgent = 4,
}

/// Tunable thresholds, from the `[policy]` table of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Calibrated P(angry) at or above which the shopper goes to a person.
    /// Unset: the trained sentiment head's own cut (chosen on validation
    /// data, shipped with the heads), so Reply hands off exactly the
    /// messages Classify labels ANGRY and the cut moves with every retrain.
    pub anger_threshold: Option<f32>,
    /// Anger that, when rising over the last three customer turns, also hands off.
    pub anger_trend_floor: f32,
    /// Minimum calibrated intent confidence to act on the intent.
    pub min_intent_confidence: f32,
    /// Minimum confidence for the human_agent intent alone (without a cue
    /// phrase) to count as a request for a person.
    pub agent_intent_confidence: f32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            anger_threshold: None,
            anger_trend_floor: 0.45,
            min_intent_confidence: 0.45,
            agent_intent_confidence: 0.6,
        }
    }
}

impl PolicyConfig {
    /// Calibrated probability the heads fall back to when no cut is known:
    /// "more likely angry than not".
    const FALLBACK_ANGER_CUT: f32 = 0.5;

    /// The anger cut in force: the configured one, else the fallback.
    pub fn anger_cut(&self) -> f32 {
        self.anger_threshold.unwrap_or(Self::FALLBACK_ANGER_CUT)
    }

    /// Fills an unset anger cut with the trained heads' validated one.
    pub fn with_model_anger_cut(mut self, model_cut: f32) -> Self {
        self.anger_threshold.get_or_insert(model_cut);
        self
    }
}

/// What the knowledge base found for this message, already reconciled with the intent.
#[derive(Debug, Clone, PartialEq)]
pub enum KbMatch {
    /// One article answers the question.
    Confident { article_id: String, score: f32 },
    /// Two articles are a close call: ask which one the shopper means.
    Ambiguous { first: String, second: String },
    /// Nothing good enough.
    None,
}

/// A storefront order as the policy needs it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderFact {
    pub order_id: String,
    pub status: String,
    pub carrier: String,
    pub tracking_number: String,
}

impl OrderFact {
    /// Whether the parcel has left the warehouse, after which the bot can no
    /// longer change or cancel the order itself.
    pub fn has_shipped(&self) -> bool {
        let s = self.status.to_lowercase();
        [
            "shipped",
            "in_transit",
            "in transit",
            "delivered",
            "out_for_delivery",
            "已发货",
            "运输中",
            "派送中",
            "已签收",
        ]
        .iter()
        .any(|w| s.contains(w))
    }
}

/// Phrases in the message that a classifier alone may miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cues {
    /// An explicit request for a person ("转人工", "real person").
    pub asks_for_person: bool,
    /// The shopper says the order has already shipped.
    pub says_already_shipped: bool,
    /// The shopper asks for something only staff may do (approve a refund now, waive a fee).
    pub asks_staff_action: bool,
}

impl Cues {
    /// Adds the request head's verdict: the phrase patterns are precise but
    /// narrow, the learned head covers wordings no pattern lists.
    pub fn with_staff_action(mut self, asks_staff_action: bool) -> Cues {
        self.asks_staff_action |= asks_staff_action;
        self
    }
}

/// What the conversation's stored history tells the policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    /// The conversation is with a person now (an open handoff exists).
    pub handed_off: bool,
    /// The bot's previous reply was a clarifying question.
    pub last_bot_clarified: bool,
    /// P(angry) of earlier customer turns, oldest first.
    pub earlier_anger: Vec<f32>,
    /// The latest earlier customer intent that names a topic (not greeting,
    /// human_agent, ...), used to route a bare "转人工" to the right queue.
    pub last_topic_intent: Option<String>,
}

/// Everything the policy reads for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput {
    pub lang: Language,
    /// Ranked calibrated intents, best first.
    pub intents: Vec<(String, f32)>,
    pub out_of_scope: bool,
    /// Calibrated P(angry).
    pub anger: f32,
    pub cues: Cues,
    pub kb: KbMatch,
    pub history: History,
    pub orders: Vec<OrderFact>,
}

impl PolicyInput {
    /// The top intent name, or out_of_scope when the classifier gave none.
    pub fn top_intent(&self) -> &str {
        self.intents
            .first()
            .map(|(name, _)| name.as_str())
            .unwrap_or("out_of_scope")
    }

    fn top_confidence(&self) -> f32 {
        self.intents.first().map(|(_, p)| *p).unwrap_or(0.0)
    }
}

/// How the bot answers when it answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Greets and names the shop.
    Greeting,
    /// Polite close.
    Farewell,
    /// The article's answer, cited.
    Article { article_id: String },
    /// Status of the shopper's order from the storefront's facts, plus the article for how-to.
    OrderStatus {
        order: OrderFact,
        article_id: Option<String>,
    },
    /// The how-to article and a request for the order number.
    ArticleAskOrderNumber { article_id: String },
}

/// The policy's decision for one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Answer(Answer),
    /// Ask which of these topics (intent names or article ids) the shopper means.
    Clarify {
        options: Vec<ClarifyOption>,
    },
    /// Hand off to a person.
    Handoff {
        cause: HandoffCause,
        queue: &'static str,
        priority: i32,
    },
    /// Already with a person: record the turn and reassure the shopper.
    WithAgent,
}

/// One topic offered in a clarifying question.
#[derive(Debug, Clone, PartialEq)]
pub enum ClarifyOption {
    Article(String),
    Intent(String),
}

/// Decides what to do with one shopper message. Rules are checked from the
/// most to the least urgent; the first that applies wins.
pub fn decide(input: &PolicyInput, config: &PolicyConfig) -> Decision {
    let intent = input.top_intent();
    let confident = input.top_confidence() >= config.min_intent_confidence && !input.out_of_scope;
    let angry = input.anger >= config.anger_cut() || anger_rising(input, config);

    if input.history.handed_off {
        return Decision::WithAgent;
    }
    let asks_for_person = input.cues.asks_for_person
        || (intent == "human_agent" && input.top_confidence() >= config.agent_intent_confidence);
    if asks_for_person {
        let topic = input.history.last_topic_intent.as_deref().unwrap_or(intent);
        return Decision::Handoff {
            cause: HandoffCause::CustomerRequest,
            queue: queue_for(topic),
            priority: if angry { 1 } else { 2 },
        };
    }
    if angry {
        let topic = if confident {
            intent
        } else {
            input.history.last_topic_intent.as_deref().unwrap_or(intent)
        };
        return Decision::Handoff {
            cause: HandoffCause::NegativeSentiment,
            queue: queue_for(topic),
            priority: 1,
        };
    }
    if confident && intent == "complaint" {
        return Decision::Handoff {
            cause: HandoffCause::NeedsAgent,
            queue: "complaints",
            priority: 2,
        };
    }
    if confident && needs_staff(input, intent) {
        return Decision::Handoff {
            cause: HandoffCause::NeedsAgent,
            queue: queue_for(intent),
            priority: 3,
        };
    }
    if confident {
        match intent {
            "greeting" => return Decision::Answer(Answer::Greeting),
            "thanks_goodbye" => return Decision::Answer(Answer::Farewell),
            _ => {}
        }
        if let Some(answer) = order_answer(input, intent) {
            return Decision::Answer(answer);
        }
        if FAQ_INTENTS.contains(&intent) {
            match &input.kb {
                KbMatch::Confident { article_id, .. } => {
                    return Decision::Answer(Answer::Article {
                        article_id: article_id.clone(),
                    });
                }
                KbMatch::Ambiguous { first, second } => {
                    return clarify_or_escalate(
                        input,
                        vec![
                            ClarifyOption::Article(first.clone()),
                            ClarifyOption::Article(second.clone()),
                        ],
                    );
                }
                KbMatch::None => {}
            }
        }
    }
    clarify_or_escalate(input, intent_options(input))
}

/// A second clarifying question in a row would make the shopper repeat
/// themselves: hand off instead.
fn clarify_or_escalate(input: &PolicyInput, options: Vec<ClarifyOption>) -> Decision {
    if input.history.last_bot_clarified {
        let topic = input
            .history
            .last_topic_intent
            .as_deref()
            .unwrap_or("out_of_scope");
        return Decision::Handoff {
            cause: HandoffCause::LowConfidence,
            queue: queue_for(topic),
            priority: 4,
        };
    }
    Decision::Clarify { options }
}

/// The two most likely in-scope topics, as options for a clarifying question.
fn intent_options(input: &PolicyInput) -> Vec<ClarifyOption> {
    input
        .intents
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| FAQ_INTENTS.contains(name) || ORDER_INTENTS.contains(name))
        .take(2)
        .map(|name| ClarifyOption::Intent(name.to_string()))
        .collect()
}

fn anger_rising(input: &PolicyInput, config: &PolicyConfig) -> bool {
    let earlier = &input.history.earlier_anger;
    if earlier.len() < 2 || input.anger < config.anger_trend_floor {
        return false;
    }
    let last_two = &earlier[earlier.len() - 2..];
    last_two[0] < last_two[1] && last_two[1] < input.anger
}

/// Requests the bot may not carry out itself: changing or cancelling an order
/// that has already shipped, or actions that need staff approval.
fn needs_staff(input: &PolicyInput, intent: &str) -> bool {
    let changes_order = matches!(intent, "modify_order" | "cancel_order");
    let shipped =
        input.cues.says_already_shipped || input.orders.first().is_some_and(OrderFact::has_shipped);
    (changes_order && shipped)
        || (input.cues.asks_staff_action
            && (ORDER_INTENTS.contains(&intent) || FAQ_INTENTS.contains(&intent)))
}

fn order_answer(input: &PolicyInput, intent: &str) -> Option<Answer> {
    if !ORDER_INTENTS.contains(&intent) {
        return None;
    }
    let article_id = match &input.kb {
        KbMatch::Confident { article_id, .. } => Some(article_id.clone()),
        KbMatch::Ambiguous { first, .. } => Some(first.clone()),
        KbMatch::None => None,
    }
    .or_else(|| default_article(intent).map(str::to_string));
    match (input.orders.first(), intent) {
        (Some(order), "order_tracking" | "refund_status") => Some(Answer::OrderStatus {
            order: order.clone(),
            article_id,
        }),
        _ => article_id.map(|article_id| Answer::ArticleAskOrderNumber { article_id }),
    }
}

/// The how-to article for an order intent when retrieval found nothing better.
fn default_article(intent: &str) -> Option<&'static str> {
    match intent {
        "order_tracking" => Some("order-tracking-howto"),
        "modify_order" => Some("change-address"),
        "cancel_order" => Some("cancel-order"),
        "refund_status" => Some("refund-timeline"),
        _ => None,
    }
}

/// Helpdesk queue for a topic.
pub fn queue_for(intent: &str) -> &'static str {
    match intent {
        "shipping_options" | "order_tracking" | "modify_order" | "cancel_order" => "logistics",
        "return_request"
        | "exchange_request"
        | "refund_status"
        | "damaged_or_wrong_item"
        | "warranty_repair" => "after_sales",
        "payment_methods" | "payment_problem" | "invoice_request" => "payments",
        "product_info" | "size_advice" | "stock_availability" | "price_and_promotions" => "presale",
        "complaint" => "complaints",
        _ => "general",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(intent: &str, confidence: f32) -> PolicyInput {
        PolicyInput {
            lang: Language::Zh,
            intents: vec![
                (intent.to_string(), confidence),
                ("shipping_options".into(), 0.05),
            ],
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
        let mut i = input("order_tracking", 0.9);
        i.cues.asks_for_person = true;
        assert_eq!(
            decide(&i, &PolicyConfig::default()),
            Decision::Handoff {
                cause: HandoffCause::CustomerRequest,
                queue: "logistics",
                priority: 2
            }
        );
    }

    #[test]
    fn bare_agent_request_routes_to_the_earlier_topic() {
        let mut i = input("human_agent", 0.95);
        i.history.last_topic_intent = Some("refund_status".into());
        assert_eq!(
            decide(&i, &PolicyConfig::default()),
            Decision::Handoff {
                cause: HandoffCause::CustomerRequest,
                queue: "after_sales",
                priority: 2
            }
        );
    }

    #[test]
    fn anger_beats_a_confident_faq_answer() {
        let mut i = input("shipping_options", 0.9);
        i.kb = confident_kb("shipping-times");
        i.anger = 0.8;
        assert_eq!(
            decide(&i, &PolicyConfig::default()),
            Decision::Handoff {
                cause: HandoffCause::NegativeSentiment,
                queue: "logistics",
                priority: 1
            }
        );
    }

    #[test]
    fn rising_anger_hands_off_before_the_threshold() {
        let mut i = input("order_tracking", 0.9);
        i.history.earlier_anger = vec![0.1, 0.3];
        i.anger = 0.48;
        assert!(matches!(
            decide(&i, &PolicyConfig::default()),
            Decision::Handoff {
                cause: HandoffCause::NegativeSentiment,
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
        let mut i = input("order_tracking", 0.9);
        i.kb = confident_kb("order-tracking-howto");
        i.anger = 0.3;
        let model = PolicyConfig::default().with_model_anger_cut(0.25);
        assert_eq!(model.anger_cut(), 0.25);
        assert!(matches!(
            decide(&i, &model),
            Decision::Handoff {
                cause: HandoffCause::NegativeSentiment,
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
        let i = input("complaint", 0.8);
        assert_eq!(
            decide(&i, &PolicyConfig::default()),
            Decision::Handoff {
                cause: HandoffCause::NeedsAgent,
                queue: "complaints",
                priority: 2
            }
        );
    }

    #[test]
    fn faq_with_confident_match_answers_with_the_article() {
        let mut i = input("return_request", 0.9);
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
        let mut i = input("return_request", 0.9);
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
        let mut i = input("order_tracking", 0.9);
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
        let i = input("cancel_order", 0.9);
        assert_eq!(
            decide(&i, &PolicyConfig::default()),
            Decision::Answer(Answer::ArticleAskOrderNumber {
                article_id: "cancel-order".into()
            })
        );
    }

    #[test]
    fn changing_a_shipped_order_needs_an_agent() {
        let mut i = input("modify_order", 0.9);
        i.orders = vec![OrderFact {
            status: "已发货".into(),
            ..Default::default()
        }];
        assert_eq!(
            decide(&i, &PolicyConfig::default()),
            Decision::Handoff {
                cause: HandoffCause::NeedsAgent,
                queue: "logistics",
                priority: 3
            }
        );
        let mut j = input("cancel_order", 0.9);
        j.cues.says_already_shipped = true;
        assert!(matches!(
            decide(&j, &PolicyConfig::default()),
            Decision::Handoff {
                cause: HandoffCause::NeedsAgent,
                ..
            }
        ));
    }

    #[test]
    fn greeting_and_farewell_answer_without_articles() {
        assert_eq!(
            decide(&input("greeting", 0.9), &PolicyConfig::default()),
            Decision::Answer(Answer::Greeting)
        );
        assert_eq!(
            decide(&input("thanks_goodbye", 0.9), &PolicyConfig::default()),
            Decision::Answer(Answer::Farewell)
        );
    }

    #[test]
    fn out_of_scope_clarifies_then_hands_off() {
        let mut i = input("out_of_scope", 0.9);
        i.out_of_scope = true;
        assert_eq!(
            decide(&i, &PolicyConfig::default()),
            Decision::Clarify {
                options: vec![ClarifyOption::Intent("shipping_options".into())]
            }
        );
        i.history.last_bot_clarified = true;
        assert_eq!(
            decide(&i, &PolicyConfig::default()),
            Decision::Handoff {
                cause: HandoffCause::LowConfidence,
                queue: "general",
                priority: 4
            }
        );
    }

    #[test]
    fn low_confidence_clarifies_even_with_a_kb_match() {
        let mut i = input("return_request", 0.2);
        i.kb = confident_kb("return-policy");
        assert!(matches!(
            decide(&i, &PolicyConfig::default()),
            Decision::Clarify { .. }
        ));
    }

    #[test]
    fn handed_off_conversation_is_not_auto_answered() {
        let mut i = input("shipping_options", 0.9);
        i.kb = confident_kb("shipping-times");
        i.history.handed_off = true;
        assert_eq!(decide(&i, &PolicyConfig::default()), Decision::WithAgent);
    }

    #[test]
    fn queues_cover_the_helpdesk_routes() {
        let queues: std::collections::BTreeSet<_> = [
            "order_tracking",
            "refund_status",
            "payment_problem",
            "size_advice",
            "complaint",
            "greeting",
        ]
        .iter()
        .map(|i| queue_for(i))
        .collect();
        assert_eq!(queues.len(), 6);
    }
}
