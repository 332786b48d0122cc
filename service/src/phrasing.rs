//! What the bot says, in the shopper's language, in standard polite service
//! phrasing (您好/请/谢谢/抱歉): greetings, clarifying questions, holding
//! messages for handoffs and order-status answers. Texts never promise what
//! the shop cannot control (no 肯定/保证/绝对, no "guarantee").

use xiaoer_domain::{HandoffReason, Intent};
use xiaoer_models::Language;

use crate::policy::OrderFact;

/// Human-readable name of a topic (intent) for clarifying questions and summaries.
pub fn topic_label(intent: Intent, lang: Language) -> &'static str {
    let (zh, en) = match intent {
        Intent::Greeting => ("打招呼", "greeting"),
        Intent::ThanksGoodbye => ("致谢/结束", "thanks"),
        Intent::ProductInfo => ("商品信息", "product details"),
        Intent::SizeAdvice => ("尺码建议", "size advice"),
        Intent::StockAvailability => ("库存与补货", "stock and restocks"),
        Intent::PriceAndPromotions => ("价格与优惠", "prices and promotions"),
        Intent::ShippingOptions => ("发货与配送", "shipping and delivery"),
        Intent::OrderTracking => ("物流查询", "tracking an order"),
        Intent::ModifyOrder => ("修改订单", "changing an order"),
        Intent::CancelOrder => ("取消订单", "cancelling an order"),
        Intent::PaymentMethods => ("支付方式", "payment methods"),
        Intent::PaymentProblem => ("支付问题", "a payment problem"),
        Intent::InvoiceRequest => ("开发票", "invoices"),
        Intent::ReturnRequest => ("退货", "returns"),
        Intent::ExchangeRequest => ("换货", "exchanges"),
        Intent::RefundStatus => ("退款进度", "refund status"),
        Intent::DamagedOrWrongItem => ("破损/错发/漏发", "a damaged, wrong or missing item"),
        Intent::WarrantyRepair => ("保修与维修", "warranty and repairs"),
        Intent::AccountAccess => ("账号登录", "account access"),
        Intent::MembershipAndPoints => ("会员与积分", "membership and points"),
        Intent::ServiceHours => ("客服时间", "service hours"),
        Intent::HumanAgent => ("人工客服", "talking to a person"),
        Intent::Complaint => ("投诉", "a complaint"),
        Intent::OutOfScope => ("其他问题", "something else"),
    };
    match lang {
        Language::Zh => zh,
        Language::En => en,
    }
}

/// Greeting that names the shop and offers help.
pub fn greeting(shop_name: &str, lang: Language) -> String {
    match lang {
        Language::Zh => {
            format!("您好，欢迎光临{shop_name}！我是智能客服小二，请问有什么可以帮您？")
        }
        Language::En => format!(
            "Hello, welcome to {shop_name}! I'm the shop assistant. How can I help you today?"
        ),
    }
}

/// Polite close.
pub fn farewell(shop_name: &str, lang: Language) -> String {
    match lang {
        Language::Zh => format!("不客气，感谢您对{shop_name}的支持！如还有其他问题，请随时联系我们，祝您生活愉快～"),
        Language::En => format!("You're welcome, and thank you for shopping with {shop_name}! If anything else comes up, just message us. Have a great day!"),
    }
}

/// A clarifying question offering up to two topics.
pub fn clarify(options: &[String], lang: Language) -> String {
    match (lang, options) {
        (Language::Zh, [a, b, ..]) => format!("抱歉，我没有完全理解您的问题。请问您想咨询的是「{a}」还是「{b}」呢？也可以换个说法告诉我，谢谢！"),
        (Language::Zh, [a]) => format!("抱歉，我没有完全理解您的问题。请问您想咨询的是「{a}」吗？也可以换个说法告诉我，谢谢！"),
        (Language::Zh, []) => "抱歉，我没有完全理解您的问题。请您换个说法详细描述一下，比如订单、发货、退换货或退款方面的问题，谢谢！".to_string(),
        (Language::En, [a, b, ..]) => format!("Sorry, I'm not sure I understood. Is your question about {a} or {b}? You can also rephrase it, thank you!"),
        (Language::En, [a]) => format!("Sorry, I'm not sure I understood. Is your question about {a}? You can also rephrase it, thank you!"),
        (Language::En, []) => {
            "Sorry, I'm not sure I understood. Could you tell me a bit more, for example whether it's about an order, shipping, a return or a refund? Thank you!".to_string()
        }
    }
}

/// Holding message when a person takes over. An angry shopper hears
/// acknowledgement and an apology first, never an FAQ answer.
pub fn handoff_holding(cause: HandoffReason, wait_minutes: u32, lang: Language) -> String {
    match (lang, cause) {
        (Language::Zh, HandoffReason::NegativeSentiment) => format!(
            "非常抱歉给您带来了不好的体验，您的心情我们完全理解。我已将您的问题和聊天记录转给人工客服专员优先处理，预计{wait_minutes}分钟内会有同事联系您，您无需重复描述，请您稍等。"
        ),
        (Language::En, HandoffReason::NegativeSentiment) => format!(
            "I'm really sorry about this experience, and I understand your frustration. I've passed your conversation to a senior agent as a priority; someone should be with you within about {wait_minutes} minutes, and you won't need to repeat anything."
        ),
        (Language::Zh, HandoffReason::CustomerRequest) => {
            format!("好的，正在为您转接人工客服，预计{wait_minutes}分钟内会有同事接待您。您之前的聊天记录已同步给客服，无需重复描述，请稍等。")
        }
        (Language::En, HandoffReason::CustomerRequest) => format!(
            "Sure, I'm connecting you with a member of our team. Someone should be with you within about {wait_minutes} minutes, and they can already see our conversation, so there's no need to repeat anything."
        ),
        (Language::Zh, _) => format!("您的问题需要人工客服进一步处理，我已把情况转给同事，预计{wait_minutes}分钟内会联系您，请您稍等，感谢您的耐心。"),
        (Language::En, _) => format!(
            "This needs a member of our team to take a closer look. I've passed it on with our conversation, and someone should be with you within about {wait_minutes} minutes. Thank you for your patience."
        ),
    }
}

/// An off-topic question: plainly not something the assistant answers,
/// what it can help with, and a person if the shopper wants one.
pub fn out_of_scope(lang: Language) -> String {
    match lang {
        Language::Zh => "抱歉，这个问题我暂时无法为您解答。我可以帮您查询订单和物流，办理退换货、退款，解答优惠券、发票、会员积分等购物问题；如需人工客服，请回复「转人工」。".to_string(),
        Language::En => "Sorry, that's not something I can help with here. I can help with orders and delivery, returns, exchanges and refunds, coupons, invoices and points; if you'd like a person, just say \"agent\".".to_string(),
    }
}

/// Reassurance while a person already handles the conversation.
pub fn with_agent(lang: Language) -> String {
    match lang {
        Language::Zh => "您的消息已收到并同步给正在处理的人工客服，请您稍等，同事会尽快回复您。".to_string(),
        Language::En => "Thanks, I've added your message to the conversation our team member is handling. They'll reply as soon as they can.".to_string(),
    }
}

/// The bot's first words after an agent resolved the handoff, so the
/// shopper (and the transcript) know who is speaking again.
pub fn bot_back(lang: Language) -> &'static str {
    match lang {
        Language::Zh => "您好，人工客服已处理完您之前的问题，接下来由智能客服小二继续为您服务。",
        Language::En => "Hello again! Our team member has finished with your earlier request; I'm the shop's assistant and I'm back to help.",
    }
}

/// Status of an order from the storefront's facts.
pub fn order_status(order: &OrderFact, lang: Language) -> String {
    let tracking = !order.tracking_number.is_empty();
    match lang {
        Language::Zh => {
            let mut text = format!(
                "您好，您的订单 {} 当前状态为「{}」",
                order.order_id, order.status
            );
            if tracking {
                text.push_str(&format!(
                    "，承运快递：{}，运单号：{}，您可以在「我的订单」中查看实时物流",
                    order.carrier, order.tracking_number
                ));
            }
            text.push('。');
            text
        }
        Language::En => {
            let mut text = format!(
                "Hello, your order {} is currently \"{}\"",
                order.order_id, order.status
            );
            if tracking {
                text.push_str(&format!(", shipped with {} under tracking number {}; you can follow it live under My Orders", order.carrier, order.tracking_number));
            }
            text.push('.');
            text
        }
    }
}

/// Appended to a how-to answer when the bot needs the order number to go further.
pub fn ask_order_number(lang: Language) -> &'static str {
    match lang {
        Language::Zh => "如需我帮您查询具体订单，请提供一下订单号，谢谢！",
        Language::En => "If you'd like me to look at a specific order, please send me the order number. Thank you!",
    }
}

/// The first draft offered to an agent taking over from an angry shopper:
/// an apology, and the assurance that they need not repeat themselves.
pub fn agent_apology_draft(lang: Language) -> &'static str {
    match lang {
        Language::Zh => "非常抱歉让您久等了，给您带来不便真的很抱歉。我是人工客服，已经看到您之前的消息，现在马上为您核实处理，请您稍等一两分钟。",
        Language::En => "I'm so sorry for the trouble and the wait. I'm a member of the team and I've read your earlier messages, so there's no need to repeat anything. Let me check this for you right now.",
    }
}

/// Words that make a promise the shop cannot keep; replies must never contain them.
pub const ABSOLUTE_PROMISES: &[&str] = &[
    "肯定",
    "保证",
    "绝对",
    "百分之百",
    "guarantee",
    "definitely",
    "100%",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn all_texts() -> Vec<String> {
        let order = OrderFact {
            order_id: "A1".into(),
            status: "shipped".into(),
            carrier: "SF".into(),
            tracking_number: "SF1".into(),
        };
        let mut texts = vec![];
        for lang in [Language::Zh, Language::En] {
            texts.push(greeting("店", lang));
            texts.push(farewell("店", lang));
            texts.push(clarify(&[], lang));
            texts.push(clarify(&["a".into(), "b".into()], lang));
            texts.push(with_agent(lang));
            texts.push(order_status(&order, lang));
            texts.push(ask_order_number(lang).to_string());
            texts.push(agent_apology_draft(lang).to_string());
            for cause in HandoffReason::ALL {
                texts.push(handoff_holding(*cause, 5, lang));
            }
        }
        texts
    }

    #[test]
    fn no_text_makes_an_absolute_promise() {
        for text in all_texts() {
            for word in ABSOLUTE_PROMISES {
                assert!(
                    !text.to_lowercase().contains(word),
                    "{text} contains {word}"
                );
            }
        }
    }

    #[test]
    fn angry_holding_message_apologises_first() {
        assert!(
            handoff_holding(HandoffReason::NegativeSentiment, 3, Language::Zh)
                .starts_with("非常抱歉")
        );
        assert!(
            handoff_holding(HandoffReason::NegativeSentiment, 3, Language::En)
                .starts_with("I'm really sorry")
        );
    }

    #[test]
    fn every_intent_has_a_label_in_both_languages() {
        for &intent in crate::policy::FAQ_INTENTS
            .iter()
            .chain(crate::policy::ORDER_INTENTS)
        {
            assert_ne!(topic_label(intent, Language::Zh), "其他问题", "{intent}");
            assert_ne!(
                topic_label(intent, Language::En),
                "something else",
                "{intent}"
            );
        }
    }
}
