//! Phrase cues the classifier alone may miss, matched on normalised text.
//!
//! An explicit "转人工" must reach a person even when the intent model is
//! unsure, and "it has already shipped" changes what the bot may do. These
//! are narrow, high-precision patterns: the word "human" or "人" alone never
//! counts as asking for a person.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use crate::policy::Cues;

/// Explicit asks to be put through to a person, whatever else the message says.
static DEMANDS_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        转\s*人\s*工 | ^\s*(人工|人工客服|真人|客服)\s*[!！?？。.~～]*\s*$ | 找\s*(个|一个)?\s*(人工|真人|活人|客服|主管|经理|领导) |
        (要|换|叫|来|接)\s*(你们的?|个|一个)?\s*(人工|真人|活人|主管|经理|负责人) | 不要\s*(机器人|自动回复) |
        别(用)?\s*机器人 | 机器人.{0,6}(滚|走开|没用) |
        \b(talk|speak|chat)\s+(to|with)\s+(a|an|some)?\s*(human|person|agent|someone|somebody|representative|manager|supervisor|staff)\b |
        \bagent\s*(please|pls|plz)\b | ^\s*(agent|human|representative|operator)\s*[.!?]*\s*$ |
        \b(get|give|connect|transfer)\s+me\s+(to\s+)?(a|an|your)?\s*(human|person|agent|representative|manager|supervisor|someone)\b |
        \bstop\s+the\s+bot\b | \bnot\s+a\s+bot\b | \bno\s+(more\s+)?bots?\b |
        zhuan\s*ren\s*gong | ren\s*gong\s*ke\s*fu | ^\s*ren\s*gong\s*[!！?？.]*\s*$ |
        客服本人 | (跟|和|同)\s*(人工|真人|活人)\s*(聊|说|谈|沟通) | (客服|人工|你们).{0,3}(给我)?回\s*(个|一个)?\s*电话 | (打|用)电话联系我 |
        \b(can|could|would)\s+(someone|somebody|a\s+person|an\s+agent|a\s+human|your\s+(staff|team|agent))\b.{0,30}\b(call|phone|ring)\s+me\b |
        \b(have|get)\s+(someone|somebody|an?\s+(agent|person|human))\s+(to\s+)?(call|phone|ring|contact)\s+me\b
        ",
    )
    .expect("person regex")
});

/// "人工客服几点在", "when are your live agents on": the shopper asks about
/// service hours and names a person only as the subject of the question.
static ASKS_WHEN_STAFF_ON_DUTY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        (人工|真人|客服).{0,6}(几点|几时|什么时候|啥时候|什么时间|啥时间|上班|下班|在线时间|工作时间|营业时间) |
        \b(what\s+time|when|what\s+hours|which\s+hours|hours)\b.{0,40}\b(agents?|humans?|people|staff|reps?|representatives?|customer\s+service)\b.{0,20}\b(available|online|on|around|working|open|there|in)\b
        ",
    )
    .expect("on-duty regex")
});

/// A person named without a verb ("人工客服在吗", "real person pls"): a
/// request, unless the message asks when such a person is on duty.
static MENTIONS_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)人工客服|真人客服|\b(real|live|actual)\s+(person|human|agent|people)($|[^\w-])|\b(human|live)\s+agent\b")
        .expect("person mention regex")
});

/// Nothing to understand: only punctuation and hesitation sounds ("？？",
/// "。。。", "呃……", "hmm..."). Such a message is not angry and not a
/// topic; it gets an open question. Acknowledgements ("ok", "好的") and
/// emoji are words here, not fillers.
static CONTENTLESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^[\p{P}\s]*(?:(?:嗯|额|呃|啊|哦|噢|唔|诶|欸|em+|hm+|um+|uh+|erm|er)[\p{P}\s]*)*$",
    )
    .expect("contentless regex")
});

static ALREADY_SHIPPED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(已经|都|已)\s*(发货|发出|寄出|在路上|揽收|出库)|显示.{0,4}已发货|\b(already|has|have|had)\s+(been\s+)?(shipped|dispatched|sent\s+out)\b|\bit'?s\s+already\s+on\s+(its|the)\s+way\b")
        .expect("shipped regex")
});

static ASKS_STAFF_ACTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(马上|立刻|现在就|直接)\s*(给我)?\s*(退款|退钱|打款)|(加急|催一下|帮我催).{0,4}(退款|审核)|(免|减免|退还).{0,2}(运费|手续费)|\b(approve|process|issue)\s+(my\s+)?refund\s+(now|today|immediately|asap)|\brefund\s+me\s+(now|right\s+now|immediately|today)\b|\bwaive\s+(the\s+)?(fee|shipping|charge)")
        .expect("staff action regex")
});

/// A request for a person turned down in the same breath: "不用转人工",
/// "别找客服了", "no need for an agent", "skip the human handoff", "I'd
/// rather not wait for a person". The clause is talk about the chat, not
/// the question, and its words ("人工", "agent") would otherwise read as a
/// request. The gap in English stops at punctuation, so "no need to be
/// rude, get me a human" keeps its request.
static DECLINES_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        (不用|不需要|无需|不必|用不着|别|不要|不麻烦|先不|暂时不)\s*(再)?\s*(帮我|给我|麻烦|帮忙)?\s*(转接|转|找|叫|接|等)?\s*(人工客服|真人客服|人工|真人|客服|human|agent)\s*(了)?\s*(哈|啊|呀|哦|吧)? |
        \b(no\s+need|don'?t\s+(want|need)|do\s+not\s+(want|need)|rather\s+not|skip|without)\b[^,.;:!?，。；：！？]{0,25}?
            (\b(human|agent|person|anyone|someone|somebody|rep|representative)s?\b(\s+handoff)? | 转\s*人\s*工 | 人工)
        ",
    )
    .expect("declined person regex")
});

/// The message with any turned-down request for a person taken out (see
/// [`DECLINES_PERSON`]): what the classifier, the retriever and the cues
/// should read. A message that is nothing but such a clause stays as it is.
pub fn without_declined_person(text: &str) -> Cow<'_, str> {
    let stripped = DECLINES_PERSON.replace_all(text, " ");
    if stripped
        .trim_matches(|c: char| {
            c.is_whitespace() || c.is_ascii_punctuation() || "，。！？、".contains(c)
        })
        .is_empty()
    {
        return Cow::Borrowed(text);
    }
    stripped
}

/// Finds the cues in a shopper message.
pub fn detect(text: &str) -> Cues {
    let text = without_declined_person(text.trim());
    let text = text.trim();
    Cues {
        asks_for_person: DEMANDS_PERSON.is_match(text)
            || (MENTIONS_PERSON.is_match(text) && !ASKS_WHEN_STAFF_ON_DUTY.is_match(text)),
        says_already_shipped: ALREADY_SHIPPED.is_match(text),
        asks_staff_action: ASKS_STAFF_ACTION.is_match(text),
        contentless: CONTENTLESS.is_match(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turned_down_person_is_not_a_request() {
        for (text, left, gone) in [
            ("不用转人工，我就问下发票多久开好", "发票多久开好", "人工"),
            ("别给我找客服了 优惠券怎么领", "优惠券怎么领", "客服"),
            ("不需要真人哈 退货地址是哪里", "退货地址是哪里", "真人"),
            (
                "no need for an agent, what sizes does it come in",
                "what sizes",
                "agent",
            ),
            (
                "I don't need a human. How long is the warranty?",
                "warranty",
                "human",
            ),
            (
                "skip the human handoff please, just the refund times",
                "refund times",
                "handoff",
            ),
            ("not now, no need 转人工 问个运费", "问个运费", "人工"),
        ] {
            let understood = without_declined_person(text);
            assert!(understood.contains(left), "{text:?} -> {understood:?}");
            assert!(!understood.contains(gone), "{text:?} -> {understood:?}");
            assert!(!detect(text).asks_for_person, "{text:?}");
        }
    }

    #[test]
    fn a_request_next_to_other_words_stays_a_request() {
        for text in [
            "不用了 转人工",
            "别废话 转人工",
            "不要机器人 我要人工",
            "no need to be rude, get me a human",
            "不用转人工…算了 还是转人工吧",
            "I don't want the bot, talk to a person",
        ] {
            assert!(detect(text).asks_for_person, "{text:?}");
        }
        // Nothing but the clause: kept as written.
        assert_eq!(without_declined_person("不用转人工了"), "不用转人工了");
    }

    #[test]
    fn punctuation_and_hesitation_alone_say_nothing() {
        for text in [
            "？？",
            "?!?",
            "。。。",
            "……",
            "...",
            "呃……",
            "嗯。",
            "emmm",
            "hmm...",
            "um, uh",
        ] {
            assert!(detect(text).contentless, "{text:?}");
        }
        for text in [
            "where is my refund????",
            "？？？我的退款呢",
            "在吗",
            "ok",
            "好的",
            "👍",
            "嗯，那运费谁出",
            "hmm is it waterproof",
        ] {
            assert!(!detect(text).contentless, "{text:?}");
        }
    }

    #[test]
    fn explicit_requests_for_a_person_are_found() {
        for text in [
            "转人工",
            "人工",
            "人工客服在吗",
            "人工!!",
            "我要找真人",
            "别用机器人糊弄我",
            "叫你们经理来",
            "agent please",
            "can I talk to a human",
            "real person pls",
            "get me a representative",
            "Agent!",
            "zhuan rengong",
            "ren gong ke fu 在吗",
            "rengong!",
            "我想跟客服本人说",
            "能不能跟真人聊两句",
            "客服能给我回个电话吗",
            "麻烦打电话联系我",
            "could somebody from your team call me about this",
            "please have an agent contact me",
            "人工客服什么时候上班 我要转人工",
            "什么时候能找个真人客服",
            "when can I talk to a real person",
            "I need an actual human, now",
            "real person.",
        ] {
            assert!(detect(text).asks_for_person, "{text}");
        }
    }

    #[test]
    fn the_word_human_alone_is_not_a_request() {
        for text in [
            "is this jacket for humans or dogs lol",
            "这个人穿好看吗",
            "适合什么人群",
            "human hair wig in stock?",
            "我家人说尺码偏小",
            "where is my parcel",
            "人工智能是啥",
            "the courier didn't call me before leaving it",
            "can the driver call me when he arrives",
            "快递员没给我打电话就放驿站了",
            "我家人跟客服聊过了 说可以退",
            "call me crazy but I love this color",
            "人工客服一般几点到几点在",
            "你们客服周末上班吗",
            "what time are your live agents available on weekends?",
            "when are human agents online",
            "is this real human-hair or synthetic",
            "an actual human-sized teddy bear?",
        ] {
            assert!(!detect(text).asks_for_person, "{text}");
        }
    }

    #[test]
    fn shipped_and_staff_action_cues() {
        assert!(detect("已经发货了还能改地址吗").says_already_shipped);
        assert!(detect("it has already shipped, can i still cancel").says_already_shipped);
        assert!(!detect("什么时候发货").says_already_shipped);
        assert!(detect("马上给我退款").asks_staff_action);
        assert!(detect("please approve my refund now").asks_staff_action);
        assert!(!detect("退款多久到账").asks_staff_action);
    }
}
