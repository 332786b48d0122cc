//! The handoff package: everything an agent needs so the shopper never
//! repeats themselves (首问负责): a summary in the conversation's language,
//! order and tracking numbers found, the sentiment trend, the articles the
//! bot already tried and suggested first replies.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use xiaoer_domain::{HandoffReason, Intent, Queue, TurnRole};
use xiaoer_models::Language;

use crate::phrasing::topic_label;
use crate::policy::OrderFact;
use crate::store::{DraftReply, NewHandoff, TurnRecord};

static ORDER_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:订单号?|order\s*(?:no\.?|number|id)?)\s*(?:是|为|:|：|#)?\s*#?([A-Za-z]{0,3}\d[0-9A-Za-z-]{4,23})|#([A-Za-z]{0,2}\d{5,20})\b")
        .expect("order regex")
});
static TRACKING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:运单号?|快递单号|物流单号|tracking\s*(?:no\.?|number|#)?)\s*(?:是|为|:|：|#)?\s*([A-Za-z]{0,4}\d{8,22})|\b((?:SF|JD|YT|ZTO|JT|YD)\d{10,18}|1Z[0-9A-Z]{16})\b")
        .expect("tracking regex")
});
static MASKED_PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"1[3-9]\d\*{4}\d{4}").expect("phone regex"));

/// Order ids, tracking numbers and (masked) phone numbers found in customer
/// turns and in the storefront's order facts.
pub fn extract_entities(turns: &[TurnRecord], orders: &[OrderFact]) -> BTreeMap<String, String> {
    let mut found: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut add = |key: &'static str, value: &str| {
        let list = found.entry(key).or_default();
        if !value.is_empty() && !list.iter().any(|v| v == value) {
            list.push(value.to_string());
        }
    };
    for turn in turns.iter().filter(|t| t.role == TurnRole::Customer) {
        for c in TRACKING.captures_iter(&turn.text) {
            if let Some(m) = c.get(1).or_else(|| c.get(2)) {
                add("tracking_number", m.as_str());
            }
        }
        for c in ORDER_ID.captures_iter(&turn.text) {
            if let Some(m) = c.get(1).or_else(|| c.get(2)) {
                add("order_id", m.as_str());
            }
        }
        for m in MASKED_PHONE.find_iter(&turn.text) {
            add("phone", m.as_str());
        }
    }
    if let Some(order) = orders.first() {
        add("order_id", &order.order_id);
        add("tracking_number", &order.tracking_number);
        add("carrier", &order.carrier);
    }
    found
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.join(", ")))
        .collect()
}

/// Direction of the shopper's anger over the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    Rising,
    Steady,
    Falling,
}

/// Compares the latest anger with the average of the earlier turns.
pub fn anger_trend(anger: &[f32]) -> Trend {
    let Some((last, earlier)) = anger.split_last() else {
        return Trend::Steady;
    };
    if earlier.is_empty() {
        return Trend::Steady;
    }
    let mean = earlier.iter().sum::<f32>() / earlier.len() as f32;
    if *last > mean + 0.15 {
        Trend::Rising
    } else if *last + 0.15 < mean {
        Trend::Falling
    } else {
        Trend::Steady
    }
}

/// Inputs for one handoff package.
#[derive(Debug, Clone)]
pub struct PackageInput<'a> {
    pub lang: Language,
    pub cause: HandoffReason,
    pub queue: Queue,
    pub priority: i32,
    /// The topic the shopper wants help with.
    pub topic: Intent,
    /// Masked transcript including the current customer turn.
    pub transcript: &'a [TurnRecord],
    pub orders: &'a [OrderFact],
    pub suggested_replies: Vec<DraftReply>,
}

/// Builds the handoff record the agent will see.
pub fn build_package(input: PackageInput<'_>) -> NewHandoff {
    let entities = extract_entities(input.transcript, input.orders);
    let anger: Vec<f32> = input
        .transcript
        .iter()
        .filter(|t| t.role == TurnRole::Customer)
        .map(|t| t.anger)
        .collect();
    let mut tried: Vec<String> = Vec::new();
    for article in input
        .transcript
        .iter()
        .filter(|t| t.role == TurnRole::Bot)
        .flat_map(|t| t.articles.iter())
    {
        if !tried.contains(article) {
            tried.push(article.clone());
        }
    }
    let summary = summarise(&input, &entities, &anger, &tried);
    NewHandoff {
        reason: input.cause,
        queue: input.queue,
        priority: input.priority,
        summary,
        kb_articles_tried: tried,
        suggested_replies: input.suggested_replies,
        entities,
    }
}

fn summarise(
    input: &PackageInput<'_>,
    entities: &BTreeMap<String, String>,
    anger: &[f32],
    tried: &[String],
) -> String {
    let lang = input.lang;
    let topic = topic_label(input.topic, lang);
    let peak = anger.iter().copied().fold(0.0f32, f32::max);
    let trend = anger_trend(anger);
    let customer_turns = anger.len();
    let latest = input
        .transcript
        .iter()
        .rev()
        .find(|t| t.role == TurnRole::Customer)
        .map(|t| t.text.as_str())
        .unwrap_or("");
    let latest: String = latest.chars().take(120).collect();
    let entity = |key: &str| entities.get(key).cloned().unwrap_or_default();
    match lang {
        Language::Zh => {
            let reason = match input.cause {
                HandoffReason::CustomerRequest => "顾客要求人工服务",
                HandoffReason::NegativeSentiment => "顾客情绪激动，需优先安抚",
                HandoffReason::LowConfidence => "机器人连续两次未能理解顾客问题",
                HandoffReason::NeedsAgent => "该诉求需人工办理",
            };
            let trend = match trend {
                Trend::Rising => "上升",
                Trend::Steady => "平稳",
                Trend::Falling => "下降",
            };
            let mut s = format!("转人工原因：{reason}。诉求：{topic}（共{customer_turns}条顾客消息，最新：「{latest}」）。");
            if !entity("order_id").is_empty() {
                s.push_str(&format!("订单号：{}。", entity("order_id")));
            }
            if !entity("tracking_number").is_empty() {
                s.push_str(&format!("运单号：{}。", entity("tracking_number")));
            }
            s.push_str(&format!(
                "情绪：愤怒概率峰值{:.0}%，趋势{trend}。",
                peak * 100.0
            ));
            if tried.is_empty() {
                s.push_str("机器人尚未提供知识库答案。");
            } else {
                s.push_str(&format!("已提供的知识库文章：{}。", tried.join("、")));
            }
            s
        }
        Language::En => {
            let reason = match input.cause {
                HandoffReason::CustomerRequest => "the shopper asked for a person",
                HandoffReason::NegativeSentiment => "the shopper is upset and needs priority care",
                HandoffReason::LowConfidence => {
                    "the bot did not understand the shopper twice in a row"
                }
                HandoffReason::NeedsAgent => "the request needs an agent to act",
            };
            let trend = match trend {
                Trend::Rising => "rising",
                Trend::Steady => "steady",
                Trend::Falling => "falling",
            };
            let mut s = format!("Handed off because {reason}. Wants help with: {topic} ({customer_turns} shopper messages, latest: \"{latest}\"). ");
            if !entity("order_id").is_empty() {
                s.push_str(&format!("Order: {}. ", entity("order_id")));
            }
            if !entity("tracking_number").is_empty() {
                s.push_str(&format!("Tracking: {}. ", entity("tracking_number")));
            }
            s.push_str(&format!(
                "Sentiment: peak anger {:.0}%, trend {trend}. ",
                peak * 100.0
            ));
            if tried.is_empty() {
                s.push_str("No knowledge-base answer given yet.");
            } else {
                s.push_str(&format!("Articles already given: {}.", tried.join(", ")));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xiaoer_privacy::mask;

    fn turn(role: TurnRole, text: &str, anger: f32, articles: &[&str]) -> TurnRecord {
        TurnRecord {
            id: "t".into(),
            role,
            text: mask(text),
            intent: Intent::OrderTracking,
            sentiment: 2,
            anger,
            action: 0,
            articles: articles.iter().map(|a| a.to_string()).collect(),
            at_ms: 0,
            agent_id: String::new(),
        }
    }

    #[test]
    fn entities_come_from_text_and_orders_with_phone_masked() {
        let turns = vec![
            turn(
                TurnRole::Customer,
                "订单号：TB20261101889 到哪了，电话13812345678",
                0.1,
                &[],
            ),
            turn(
                TurnRole::Customer,
                "快递单号 SF1234567890123 一直不动",
                0.3,
                &[],
            ),
        ];
        let e = extract_entities(&turns, &[]);
        assert_eq!(e["order_id"], "TB20261101889");
        assert_eq!(e["tracking_number"], "SF1234567890123");
        assert_eq!(e["phone"], "138****5678");
        assert!(!e.values().any(|v| v.contains("13812345678")));
    }

    #[test]
    fn english_order_numbers_are_found() {
        let turns = vec![turn(
            TurnRole::Customer,
            "where is order #A10293? tracking number 1Z999AA10123456784",
            0.2,
            &[],
        )];
        let e = extract_entities(&turns, &[]);
        assert_eq!(e["order_id"], "A10293");
        assert_eq!(e["tracking_number"], "1Z999AA10123456784");
    }

    #[test]
    fn trend_compares_latest_with_earlier_turns() {
        assert_eq!(anger_trend(&[0.1, 0.1, 0.7]), Trend::Rising);
        assert_eq!(anger_trend(&[0.8, 0.2]), Trend::Falling);
        assert_eq!(anger_trend(&[0.3]), Trend::Steady);
    }

    #[test]
    fn package_summarises_in_the_conversation_language() {
        let transcript = vec![
            turn(
                TurnRole::Customer,
                "我的订单号 TB998877 怎么还没到",
                0.2,
                &[],
            ),
            turn(TurnRole::Bot, "...", 0.0, &["order-tracking-howto"]),
            turn(
                TurnRole::Customer,
                "你们太差劲了，家住上海市浦东新区张江路123号5栋301室，电话13912345678",
                0.9,
                &[],
            ),
        ];
        let package = build_package(PackageInput {
            lang: Language::Zh,
            cause: HandoffReason::NegativeSentiment,
            queue: Queue::Logistics,
            priority: 1,
            topic: Intent::OrderTracking,
            transcript: &transcript,
            orders: &[],
            suggested_replies: vec![],
        });
        assert!(package.summary.contains("TB998877"), "{}", package.summary);
        assert!(package.summary.contains("趋势上升"), "{}", package.summary);
        assert!(package.summary.contains("order-tracking-howto"));
        assert!(
            !package.summary.contains("13912345678") && !package.summary.contains("张江路123号"),
            "{}",
            package.summary
        );
        assert_eq!(package.kb_articles_tried, vec!["order-tracking-howto"]);
        assert_eq!(package.reason, HandoffReason::NegativeSentiment);
    }
}
