//! Surface tone cues appended to the sentence embedding for the sentiment
//! head.
//!
//! Why: E5's mean-pooled embedding is trained for semantic similarity, so it
//! mostly encodes *what* a message is about. "The cup arrived broken" and
//! "the cup arrived broken AGAIN, you useless shop!!!" land close together,
//! and a head on the embedding alone confuses calm complaints with anger.
//! How a shopper writes — exclamation runs, shouting, insults, threats to
//! escalate, repeated asking, politeness — is exactly what the embedding
//! blurs, and it is cheap to read off the text. The head learns how much each
//! cue matters from the training data; nothing here decides anger by itself.
//!
//! The feature layout is part of the trained heads: changing a list or the
//! order means retraining (`xiaoer train`), and [`TONE_FEATURES`] is checked
//! against the stored head's input size at load time.

/// Number of tone features appended to the embedding.
pub const TONE_FEATURES: usize = 12;

/// Insults and abuse aimed at the shop or its staff.
const ABUSE: &[&str] = &[
    "垃圾",
    "骗子",
    "骗人",
    "破店",
    "黑店",
    "坑人",
    "坑钱",
    "恶心",
    "无语",
    "有病",
    "脑子",
    "妈的",
    "他妈",
    "tm的",
    "狗屁",
    "屁",
    "sb",
    "傻",
    "废物",
    "奸商",
    "太过分",
    "气死",
    "烦死",
    "什么鬼",
    "搞什么",
    "扯淡",
    "离谱",
    "忽悠",
    "敷衍",
    "不要脸",
    "吃屎",
    "useless",
    "pathetic",
    "ridiculous",
    "joke",
    "scam",
    "fraud",
    "thieves",
    "liars",
    "lied",
    "garbage",
    "trash",
    "rubbish",
    "incompetent",
    "idiot",
    "stupid",
    "disgusting",
    "shameful",
    "terrible",
    "horrible",
    "awful",
    "worst",
    "wtf",
    "damn",
    "hell",
    "crap",
    "shit",
    "fuck",
    "rip off",
    "ripoff",
    "unacceptable",
    "outrageous",
    "disgrace",
    "clowns",
    "insane",
];

/// Threats to escalate outside the chat: regulators, reviews, banks, law.
const ESCALATION: &[&str] = &[
    "12315",
    "消协",
    "消费者协会",
    "工商",
    "市场监管",
    "曝光",
    "差评",
    "举报",
    "报警",
    "起诉",
    "律师",
    "法院",
    "媒体",
    "黑猫",
    "再也不买",
    "再也不来",
    "拉黑",
    "全网",
    "维权",
    "chargeback",
    "charge back",
    "dispute",
    "lawyer",
    "attorney",
    "sue you",
    "small claims",
    "report you",
    "reporting you",
    "bbb",
    "trading standards",
    "bad review",
    "1 star",
    "one star",
    "1-star",
    "never again",
    "never shopping",
    "never buying",
    "never order",
    "social media",
    "go public",
    "consumer protection",
];

/// Repeated asking and long waits: anger builds on being ignored.
const REPEATED: &[&str] = &[
    "又",
    "还是没",
    "还没",
    "一直",
    "到现在",
    "几次",
    "几遍",
    "三遍",
    "两遍",
    "好几",
    "多少次",
    "第二次",
    "第三次",
    "n次",
    "无数次",
    "天天",
    "拖了",
    "拖到",
    "都几天",
    "半个月",
    "一个月了",
    "again",
    "still",
    "second time",
    "third time",
    "3rd time",
    "every time",
    "each time",
    "times now",
    "times already",
    "for weeks",
    "for days",
    "weeks ago",
    "nobody",
    "no one",
    "no reply",
    "no response",
    "ignored",
    "ignoring",
    "keep asking",
    "kept asking",
];

/// Rhetorical and sarcastic challenges.
const RHETORICAL: &[&str] = &[
    "是吧",
    "耍我",
    "逗我",
    "糊弄",
    "玩我",
    "凭什么",
    "凭啥",
    "到底",
    "还有脸",
    "还好意思",
    "有没有搞错",
    "开什么玩笑",
    "算什么",
    "干什么吃的",
    "搞笑",
    "seriously",
    "are you kidding",
    "you kidding",
    "you people",
    "are you even",
    "how hard",
    "what is wrong with",
    "what's wrong with",
    "unbelievable",
    "come on",
    "are you serious",
    "do your job",
    "so done",
    "fed up",
    "sick of",
    "tired of",
    "i'm done",
    "had enough",
];

/// Demands for immediate action.
const URGENT: &[&str] = &[
    "马上",
    "立刻",
    "立即",
    "赶紧",
    "现在就",
    "今天之内",
    "限你",
    "right now",
    "immediately",
    "asap",
    "at once",
    "this minute",
    "fix it",
    "now!",
    "now.",
];

/// Politeness and hedging, which calm shoppers use and angry ones drop.
const POLITE: &[&str] = &[
    "请问",
    "请帮",
    "麻烦",
    "谢谢",
    "多谢",
    "感谢",
    "您",
    "亲",
    "你好",
    "在吗",
    "想问",
    "问一下",
    "问下",
    "打扰",
    "不好意思",
    "辛苦",
    "有劳",
    "方便",
    "哈",
    "呀",
    "please",
    "pls",
    "plz",
    "thanks",
    "thank you",
    "thx",
    "hi",
    "hello",
    "hey",
    "could you",
    "would you",
    "can you",
    "wondering",
    "kindly",
    "appreciate",
    "sorry",
    "no worries",
    "no problem",
    "quick question",
    "just",
    "a bit",
    "a little",
];

/// Emoji that read as anger or contempt.
const ANGRY_EMOJI: &[char] = &['😡', '🤬', '😠', '💢', '👿', '😤', '🙄', '🖕', '💩', '👎'];

/// Emoji of sadness, pleading or softness: unhappy, but not hostile.
const SOFT_EMOJI: &[char] = &[
    '😭', '😢', '🥲', '🥺', '😞', '😔', '😟', '🙏', '😅', '😊', '🙂', '😂', '🤣', '❤', '👍', '🌹',
];

/// Exclamation marks, ASCII and full-width (Chinese input methods type the latter).
const EXCLAMATION: [char; 2] = ['!', '\u{FF01}'];
/// Question marks, ASCII and full-width.
const QUESTION: [char; 2] = ['?', '\u{FF1F}'];

/// Acronyms that are ordinary shop vocabulary, not shouting.
const ACRONYMS: &[&str] = &[
    "COD", "VIP", "SMS", "DHL", "UPS", "USPS", "EMS", "SKU", "XS", "XL", "XXL", "XXXL", "USB",
    "LED", "LCD", "TV", "PDF", "FAQ", "OK", "APP", "QR", "GPS", "IOS", "HDMI", "PIN", "OTP", "EU",
    "US", "UK", "USD", "RMB", "CNY", "VAT", "ID", "SF", "JD", "PS", "BTW", "FYI", "AM", "PM",
    "NFC", "SIM", "CPU", "GPU", "RAM", "SSD", "HD", "AI", "DIY", "ETA", "UTC", "GMT",
];

/// The tone features of one message, in a fixed order. Counts are
/// `ln(1 + n)` so one very long rant does not dominate; the head standardises
/// every input dimension anyway.
pub fn tone_features(text: &str) -> [f32; TONE_FEATURES] {
    let lower = text.to_lowercase();
    let count = |list: &[&str]| {
        list.iter()
            .map(|term| occurrences(&lower, term))
            .sum::<usize>()
    };
    let emoji = |set: &[char]| text.chars().filter(|c| set.contains(c)).count();
    let exclamations = text.chars().filter(|c| EXCLAMATION.contains(c)).count();
    let (shouted_words, caps_ratio) = shouting(text);
    let log = |n: usize| (1.0 + n as f32).ln();
    [
        log(exclamations),
        log(punctuation_runs(text, &QUESTION) + punctuation_runs(text, &EXCLAMATION)),
        log(shouted_words),
        caps_ratio,
        log(count(ABUSE)),
        log(count(ESCALATION)),
        log(count(REPEATED)),
        log(count(RHETORICAL)),
        log(count(URGENT)),
        log(count(POLITE)),
        log(emoji(ANGRY_EMOJI)) - log(emoji(SOFT_EMOJI)),
        log(text.chars().count()),
    ]
}

/// The sentiment head's input: the embedding followed by the tone features
/// of the same text. Training and serving both build it here, so they can
/// never disagree on the layout.
pub fn sentiment_input(embedding: &[f32], text: &str) -> Vec<f32> {
    let mut input = Vec::with_capacity(embedding.len() + TONE_FEATURES);
    input.extend_from_slice(embedding);
    input.extend_from_slice(&tone_features(text));
    input
}

/// How often `term` occurs in `text`. A Latin term must stand as a whole
/// word ("hi" is not in "ship", "hell" not in "hello"); Chinese has no word
/// boundaries, so a Chinese term counts wherever it appears.
fn occurrences(text: &str, term: &str) -> usize {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let starts_latin = is_word(term.chars().next());
    let ends_latin = is_word(term.chars().next_back());
    text.match_indices(term)
        .filter(|(at, _)| {
            let before = text[..*at].chars().next_back();
            let after = text[at + term.len()..].chars().next();
            !(starts_latin && is_word(before) || ends_latin && is_word(after))
        })
        .count()
}

/// Runs of two or more marks that start with one of `marks` ("??" and
/// "?!?!" each count once).
fn punctuation_runs(text: &str, marks: &[char]) -> usize {
    let mut runs = 0;
    let mut len = 0;
    for c in text.chars().chain(std::iter::once(' ')) {
        if marks.contains(&c) || (len > 0 && (EXCLAMATION.contains(&c) || QUESTION.contains(&c))) {
            len += 1;
        } else {
            if len >= 2 {
                runs += 1;
            }
            len = 0;
        }
    }
    runs
}

/// All-caps Latin words of three or more letters that are not everyday
/// acronyms, and the share of capitals among Latin letters when there are
/// enough letters to tell (at least 12).
fn shouting(text: &str) -> (usize, f32) {
    let words = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 3);
    let shouted = words
        .filter(|w| w.chars().all(|c| c.is_ascii_uppercase()) && !ACRONYMS.contains(w))
        .count();
    let letters = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    let upper = text.chars().filter(|c| c.is_ascii_uppercase()).count();
    let ratio = if letters >= 12 {
        upper as f32 / letters as f32
    } else {
        0.0
    };
    (shouted, ratio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feature(text: &str, i: usize) -> f32 {
        tone_features(text)[i]
    }

    #[test]
    fn a_calm_polite_question_has_no_hostile_cues() {
        let f = tone_features("您好,请问这个杯子收到有裂痕怎么处理呢?");
        for i in [0, 1, 2, 3, 4, 5, 7, 8] {
            assert_eq!(f[i], 0.0, "feature {i}");
        }
        assert!(f[9] > 0.0, "politeness counted");
    }

    #[test]
    fn shouting_ignores_shop_acronyms() {
        assert_eq!(shouting("Is COD available for XXL sizes via DHL?").0, 0);
        let (words, ratio) = shouting("WHERE IS MY PARCEL, nobody answers");
        assert_eq!(words, 2, "WHERE and PARCEL; IS and MY are too short");
        assert!(ratio > 0.3 && ratio < 0.7, "{ratio}");
        assert_eq!(shouting("GIVE ME").1, 0.0, "too few letters for a ratio");
    }

    #[test]
    fn latin_terms_match_whole_words_only() {
        assert_eq!(occurrences("hi, can you ship this", "hi"), 1);
        assert_eq!(occurrences("hello", "hell"), 0);
        assert_eq!(occurrences("still? still.", "still"), 2);
        assert_eq!(occurrences("fix it now!", "now!"), 1);
        assert_eq!(occurrences("又发错了,又", "又"), 2);
    }

    #[test]
    fn punctuation_runs_count_each_run_once() {
        assert_eq!(punctuation_runs("why??? really?!? ok?", &QUESTION), 2);
        assert_eq!(
            punctuation_runs("钱呢\u{FF1F}\u{FF1F}\u{FF01}!", &QUESTION),
            1
        );
        assert_eq!(punctuation_runs("fine.", &QUESTION), 0);
        assert_eq!(tone_features("到底发不发货\u{FF01}\u{FF01}")[0], 3f32.ln());
    }

    #[test]
    fn hostile_cues_are_counted_in_both_languages() {
        let zh = "退款拖了二十天了!!!再不退我就去12315投诉 垃圾店";
        assert!(feature(zh, 0) > 1.0, "three exclamation marks");
        assert!(feature(zh, 4) > 0.0, "abuse");
        assert!(feature(zh, 5) > 0.0, "escalation");
        assert!(feature(zh, 6) > 0.0, "waiting");
        let en =
            "Third time asking. Are you kidding me? Filing a chargeback, you people are useless";
        for i in [4, 5, 6, 7] {
            assert!(feature(en, i) > 0.0, "feature {i}");
        }
        assert!(feature("how could you 😡😡", 10) > 0.0);
        assert!(feature("杯子碎了😭", 10) < 0.0);
    }

    #[test]
    fn sentiment_input_appends_the_features_to_the_embedding() {
        let input = sentiment_input(&[0.5, -0.5], "hi!!");
        assert_eq!(input.len(), 2 + TONE_FEATURES);
        assert_eq!(&input[..2], &[0.5, -0.5]);
        assert_eq!(&input[2..], &tone_features("hi!!"));
    }

    proptest! {
        #[test]
        fn features_are_finite_and_bounded_for_any_text(text in any::<String>()) {
            let f = tone_features(&text);
            prop_assert!(f.iter().all(|v| v.is_finite()));
            prop_assert!((0.0..=1.0).contains(&f[3]));
        }
    }
}
