//! The dialogue policy: one decision per shopper message.
//!
//! Pure logic, no I/O: everything it needs (model outputs, retrieval result,
//! conversation history, storefront order facts) arrives in [`PolicyInput`],
//! so every rule is unit-tested and thresholds come from configuration.

use serde::Deserialize;
use xiaoer_domain::{HandoffReason, Intent, Queue};
use xiaoer_models::Language;

/// Intents whose questions the knowledge base answers.
pub const FAQ_INTENTS: &[Intent] = &[
    Intent::ProductInfo,
    Intent::SizeAdvice,
    Intent::StockAvailability,
    Intent::PriceAndPromotions,
    Intent::ShippingOptions,
    Intent::PaymentMethods,
    Intent::PaymentProblem,
    Intent::InvoiceRequest,
    Intent::ReturnRequest,
    Intent::ExchangeRequest,
    Intent::DamagedOrWrongItem,
    Intent::WarrantyRepair,
    Intent::AccountAccess,
    Intent::MembershipAndPoints,
    Intent::ServiceHours,
];

/// Intents about one specific order: answered from the storefront's order
/// facts when it sends them, otherwise with the how-to and a request for the
/// order number.
pub const ORDER_INTENTS: &[Intent] = &[
    Intent::OrderTracking,
    Intent::ModifyOrder,
    Intent::CancelOrder,
    Intent::RefundStatus,
];

/// Intents that do not say what a conversation is about, so they never
/// become its topic (a bare "转人工" is routed by the topic before it).
pub const NON_TOPIC_INTENTS: &[Intent] = &[
    Intent::Greeting,
    Intent::ThanksGoodbye,
    Intent::HumanAgent,
    Intent::OutOfScope,
    Intent::Complaint,
];

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
    /// Only punctuation or hesitation ("？？", "呃……"): nothing to answer,
    /// nothing angry; the shopper gets an open question.
    pub contentless: bool,
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
    pub last_topic_intent: Option<Intent>,
}

/// Everything the policy reads for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInput {
    pub lang: Language,
    /// Ranked calibrated intents, best first.
    pub intents: Vec<(Intent, f32)>,
    pub out_of_scope: bool,
    /// Calibrated P(angry).
    pub anger: f32,
    pub cues: Cues,
    pub kb: KbMatch,
    pub history: History,
    pub orders: Vec<OrderFact>,
}

impl PolicyInput {
    /// The top intent, or out_of_scope when the classifier gave none.
    pub fn top_intent(&self) -> Intent {
        self.intents
            .first()
            .map(|(intent, _)| *intent)
            .unwrap_or(Intent::OutOfScope)
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
        cause: HandoffReason,
        queue: Queue,
        priority: i32,
    },
    /// Already with a person: record the turn and reassure the shopper.
    WithAgent,
    /// Not something the shop assistant can answer: say so plainly, say
    /// what it can help with and offer a person. Sent as a clarifying
    /// question, so a second miss in a row hands off as any other would.
    OutOfScope,
}

/// One topic offered in a clarifying question.
#[derive(Debug, Clone, PartialEq)]
pub enum ClarifyOption {
    Article(String),
    Intent(Intent),
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
        || (intent == Intent::HumanAgent
            && input.top_confidence() >= config.agent_intent_confidence);
    if asks_for_person {
        let topic = input.history.last_topic_intent.unwrap_or(intent);
        return Decision::Handoff {
            cause: HandoffReason::CustomerRequest,
            queue: queue_for(topic),
            priority: if angry { 1 } else { 2 },
        };
    }
    // Before anger: the sentiment head reads "？？？" alone as angry, but a
    // message with nothing in it asks for an open question, not a person.
    if input.cues.contentless {
        return clarify_or_escalate(input, Vec::new());
    }
    if angry {
        let topic = if confident {
            intent
        } else {
            input.history.last_topic_intent.unwrap_or(intent)
        };
        return Decision::Handoff {
            cause: HandoffReason::NegativeSentiment,
            queue: queue_for(topic),
            priority: 1,
        };
    }
    if confident && intent == Intent::Complaint {
        return Decision::Handoff {
            cause: HandoffReason::NeedsAgent,
            queue: Queue::Complaints,
            priority: 2,
        };
    }
    if confident && needs_staff(input, intent) {
        return Decision::Handoff {
            cause: HandoffReason::NeedsAgent,
            queue: queue_for(intent),
            priority: 3,
        };
    }
    if confident {
        match intent {
            Intent::Greeting => return Decision::Answer(Answer::Greeting),
            Intent::ThanksGoodbye => return Decision::Answer(Answer::Farewell),
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
    // Off-topic ("今天天气怎么样"): offering two shop topics would read oddly.
    if (input.out_of_scope || intent == Intent::OutOfScope) && !input.history.last_bot_clarified {
        return Decision::OutOfScope;
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
            .unwrap_or(Intent::OutOfScope);
        return Decision::Handoff {
            cause: HandoffReason::LowConfidence,
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
        .map(|(intent, _)| *intent)
        .filter(|intent| FAQ_INTENTS.contains(intent) || ORDER_INTENTS.contains(intent))
        .take(2)
        .map(ClarifyOption::Intent)
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
fn needs_staff(input: &PolicyInput, intent: Intent) -> bool {
    let changes_order = matches!(intent, Intent::ModifyOrder | Intent::CancelOrder);
    let shipped =
        input.cues.says_already_shipped || input.orders.first().is_some_and(OrderFact::has_shipped);
    (changes_order && shipped)
        || (input.cues.asks_staff_action
            && (ORDER_INTENTS.contains(&intent) || FAQ_INTENTS.contains(&intent)))
}

fn order_answer(input: &PolicyInput, intent: Intent) -> Option<Answer> {
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
        (Some(order), Intent::OrderTracking | Intent::RefundStatus) => Some(Answer::OrderStatus {
            order: order.clone(),
            article_id,
        }),
        _ => article_id.map(|article_id| Answer::ArticleAskOrderNumber { article_id }),
    }
}

/// The how-to article for an order intent when retrieval found nothing better.
fn default_article(intent: Intent) -> Option<&'static str> {
    match intent {
        Intent::OrderTracking => Some("order-tracking-howto"),
        Intent::ModifyOrder => Some("change-address"),
        Intent::CancelOrder => Some("cancel-order"),
        Intent::RefundStatus => Some("refund-timeline"),
        _ => None,
    }
}

/// Helpdesk queue for a topic.
pub fn queue_for(intent: Intent) -> Queue {
    use Intent::*;
    match intent {
        ShippingOptions | OrderTracking | ModifyOrder | CancelOrder => Queue::Logistics,
        ReturnRequest | ExchangeRequest | RefundStatus | DamagedOrWrongItem | WarrantyRepair => {
            Queue::AfterSales
        }
        PaymentMethods | PaymentProblem | InvoiceRequest => Queue::Payments,
        ProductInfo | SizeAdvice | StockAvailability | PriceAndPromotions => Queue::Presale,
        Complaint => Queue::Complaints,
        Greeting | ThanksGoodbye | AccountAccess | MembershipAndPoints | ServiceHours
        | HumanAgent | OutOfScope => Queue::General,
    }
}

#[cfg(test)]
mod tests;
