//! A shopper message through everything that reads it before the model does:
//! the service's text validation, language detection, the E5 tokenizer (the
//! lean Unigram with the real vocabulary), privacy masking, phrase cues and
//! the dialogue policy.
//!
//! The input bytes are read twice: as the message (lossy UTF-8, since gRPC
//! strings are always valid UTF-8) and, through `arbitrary`, as the model
//! outputs and conversation state the policy sees next to it. That keeps the
//! seed corpus plain readable messages while libFuzzer still steers both.
//!
//! Invariants checked, each one a promise some other part of xiaoer relies on:
//! * language: a message with four or more Han characters appended is
//!   Chinese; one with neither Han nor Latin letters gets the default;
//! * tokenizer: the lean Unigram gives exactly the stock `tokenizers` ids
//!   and offsets (the encoder's embeddings assume it), within the vocabulary;
//! * masking: idempotent, and no Chinese mobile number, valid resident ID
//!   number or Luhn-valid card number survives in plain digits;
//! * cues: an explicit "转人工" always counts as asking for a person;
//! * policy: a conversation already with an agent stays there, a request for
//!   a person or an angry shopper is always handed off, answers cite only
//!   articles retrieval found, clarifying questions offer real topics only.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{Tokenizer, TokenizerImpl};
use xiaoer_models::data::{INTENTS, OUT_OF_SCOPE};
use xiaoer_models::e5::TOKENIZER_FILE;
use xiaoer_models::unigram::CompactUnigram;
use xiaoer_models::{detect_language, Language};
use xiaoer_service::cues;
use xiaoer_service::error::require_text;
use xiaoer_service::policy::{
    decide, Answer, ClarifyOption, Cues, Decision, HandoffCause, History, KbMatch, OrderFact,
    PolicyConfig, PolicyInput, FAQ_INTENTS, ORDER_INTENTS,
};
use xiaoer_service::privacy::mask;

/// The tokenizer exactly as `E5Encoder` builds it (minus truncation, so whole
/// sequences are compared).
type LeanTokenizer = TokenizerImpl<
    CompactUnigram,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// `$XIAOER_MODELS_DIR` or `models/weights` (filled by scripts/fetch-weights.sh).
fn tokenizer_path() -> PathBuf {
    std::env::var_os("XIAOER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/weights")))
        .join(TOKENIZER_FILE)
}

static TOKENIZERS: LazyLock<(LeanTokenizer, Tokenizer)> = LazyLock::new(|| {
    let path = tokenizer_path();
    let hint = "run scripts/fetch-weights.sh or set XIAOER_MODELS_DIR";
    let lean = LeanTokenizer::from_file(&path)
        .unwrap_or_else(|e| panic!("{}: {e} ({hint})", path.display()));
    let stock =
        Tokenizer::from_file(&path).unwrap_or_else(|e| panic!("{}: {e} ({hint})", path.display()));
    (lean, stock)
});

const QUEUES: [&str; 6] = [
    "logistics",
    "after_sales",
    "payments",
    "presale",
    "complaints",
    "general",
];
const ARTICLE_IDS: [&str; 4] = [
    "return-policy",
    "order-tracking-howto",
    "refund-timeline",
    "cancel-order",
];
const ORDER_STATUSES: [&str; 6] = ["paid", "shipped", "已发货", "delivered", "运输中", "待发货"];

/// What the service knows about a message besides its text: classifier and
/// sentiment outputs, retrieval, stored history and storefront orders.
#[derive(Debug, Arbitrary)]
struct Context {
    /// One raw weight per intent, normalised into calibrated probabilities.
    intent_weights: [u8; INTENTS.len()],
    below_threshold: bool,
    anger: u16,
    kb: KbChoice,
    handed_off: bool,
    last_bot_clarified: bool,
    earlier_anger: Vec<u16>,
    last_topic: Option<u8>,
    order_statuses: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum KbChoice {
    Confident(u8, u16),
    Ambiguous(u8, u8),
    None,
}

fn unit(v: u16) -> f32 {
    f32::from(v) / f32::from(u16::MAX)
}

fn article(i: u8) -> String {
    ARTICLE_IDS[usize::from(i) % ARTICLE_IDS.len()].to_owned()
}

/// The policy input the responder would build, clamped to what the model
/// crate guarantees: probabilities in [0, 1] summing to one, ranked best
/// first, every intent present once.
fn policy_input(lang: Language, cues: Cues, ctx: &Context) -> PolicyInput {
    let total: u32 = ctx.intent_weights.iter().map(|&w| u32::from(w)).sum();
    let mut intents: Vec<(String, f32)> = INTENTS
        .iter()
        .zip(ctx.intent_weights)
        .map(|(name, w)| {
            let p = if total == 0 {
                1.0 / INTENTS.len() as f32
            } else {
                w as f32 / total as f32
            };
            (name.to_string(), p)
        })
        .collect();
    intents.sort_by(|a, b| b.1.total_cmp(&a.1));
    let out_of_scope = intents[0].0 == OUT_OF_SCOPE || ctx.below_threshold;
    PolicyInput {
        lang,
        intents,
        out_of_scope,
        anger: unit(ctx.anger),
        cues,
        kb: match ctx.kb {
            KbChoice::Confident(id, score) => KbMatch::Confident {
                article_id: article(id),
                score: unit(score),
            },
            KbChoice::Ambiguous(a, b) => KbMatch::Ambiguous {
                first: article(a),
                second: article(b),
            },
            KbChoice::None => KbMatch::None,
        },
        history: History {
            handed_off: ctx.handed_off,
            last_bot_clarified: ctx.last_bot_clarified,
            earlier_anger: ctx.earlier_anger.iter().map(|&a| unit(a)).collect(),
            last_topic_intent: ctx
                .last_topic
                .map(|i| INTENTS[usize::from(i) % INTENTS.len()].to_owned()),
        },
        orders: ctx
            .order_statuses
            .iter()
            .enumerate()
            .map(|(n, &s)| OrderFact {
                order_id: format!("E{n}"),
                status: ORDER_STATUSES[usize::from(s) % ORDER_STATUSES.len()].to_owned(),
                carrier: "SF".into(),
                tracking_number: format!("SF{n:012}"),
            })
            .collect(),
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    // Exactly what the service accepts: non-blank, at most MAX_TEXT_CHARS.
    let Ok(text) = require_text("text", &raw) else {
        return;
    };
    let lang = check_language(text);
    check_tokenizer(text);
    check_masking(text);

    let cues = cues::detect(text);
    assert!(cues::detect(&format!("{text} 转人工")).asks_for_person);

    let ctx = Context::arbitrary(&mut Unstructured::new(data)).unwrap_or_else(|_| Context {
        intent_weights: [0; INTENTS.len()],
        below_threshold: false,
        anger: 0,
        kb: KbChoice::None,
        handed_off: false,
        last_bot_clarified: false,
        earlier_anger: Vec::new(),
        last_topic: None,
        order_statuses: Vec::new(),
    });
    let input = policy_input(lang, cues, &ctx);
    check_policy(&input);
});

fn check_language(text: &str) -> Language {
    let lang = detect_language(text);
    assert_eq!(detect_language(&format!("{text}订单发货")), Language::Zh);
    // Han characters and Latin letters are all alphabetic, so a message
    // without any alphabetic character has neither.
    if !text.chars().any(char::is_alphabetic) {
        assert_eq!(lang, Language::default(), "no letters at all: {text:?}");
    }
    lang
}

fn check_tokenizer(text: &str) {
    let (lean, stock) = &*TOKENIZERS;
    let query = format!("query: {text}");
    let ours = lean.encode(query.as_str(), true).expect("lean tokenizer");
    let theirs = stock.encode(query.as_str(), true).expect("stock tokenizer");
    assert_eq!(ours.get_ids(), theirs.get_ids(), "ids differ for {query:?}");
    assert_eq!(
        ours.get_offsets(),
        theirs.get_offsets(),
        "offsets differ for {query:?}"
    );
    let vocab = lean.get_vocab_size(true) as u32;
    assert!(ours.get_ids().iter().all(|&id| id < vocab));
}

fn check_masking(text: &str) {
    let masked = mask(text);
    assert_eq!(mask(&masked), masked, "mask is not idempotent on {text:?}");
    let lower = text.to_lowercase();
    let order_words = ["订单", "单号", "order", "tracking", "运单", "快递", "#"];
    let may_hold_order_numbers = order_words.iter().any(|w| lower.contains(w));
    for run in runs(&masked, |c| c.is_ascii_digit()) {
        let digits = run.as_bytes();
        assert!(
            !(digits.len() == 11 && digits[0] == b'1' && (b'3'..=b'9').contains(&digits[1])),
            "mobile number {run} survives in {masked:?} (from {text:?})"
        );
        assert!(
            may_hold_order_numbers || !((13..=19).contains(&digits.len()) && luhn_ok(digits)),
            "card number {run} survives in {masked:?} (from {text:?})"
        );
    }
    for run in runs(&masked, |c| c.is_ascii_alphanumeric()) {
        assert!(
            !is_resident_id(run),
            "ID number {run} survives in {masked:?} (from {text:?})"
        );
    }
}

/// Maximal runs of characters matching `keep`.
fn runs(text: &str, keep: fn(char) -> bool) -> impl Iterator<Item = &str> {
    text.split(move |c: char| !keep(c))
        .filter(|r| !r.is_empty())
}

fn luhn_ok(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 1 {
                if v * 2 > 9 {
                    v * 2 - 9
                } else {
                    v * 2
                }
            } else {
                v
            }
        })
        .sum();
    sum % 10 == 0
}

/// An 18-character mainland resident ID with a plausible birth date and a
/// valid GB 11643 check character.
fn is_resident_id(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18
        || b[0] == b'0'
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x')
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    if !matches!(&s[6..8], "19" | "20")
        || !(1..=12).contains(&num(10..12))
        || !(1..=31).contains(&num(12..14))
    {
        return false;
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    b"10X98765432"[(sum % 11) as usize] == b[17].to_ascii_uppercase()
}

fn check_policy(input: &PolicyInput) {
    let config = PolicyConfig::default();
    let decision = decide(input, &config);
    assert_eq!(decide(input, &config), decision, "deterministic");
    if input.history.handed_off {
        assert_eq!(decision, Decision::WithAgent);
        return;
    }
    let angry = input.anger >= config.anger_cut();
    match &decision {
        Decision::WithAgent => panic!("WithAgent without an open handoff"),
        Decision::Handoff {
            cause,
            queue,
            priority,
        } => {
            assert!(QUEUES.contains(queue), "unknown queue {queue}");
            assert!((1..=4).contains(priority), "priority {priority}");
            if angry {
                assert_eq!(*priority, 1, "an angry shopper is handed off first");
            }
            if input.cues.asks_for_person {
                assert_eq!(*cause, HandoffCause::CustomerRequest);
            }
        }
        Decision::Answer(_) | Decision::Clarify { .. } => {
            assert!(
                !input.cues.asks_for_person,
                "asked for a person, got {decision:?}"
            );
            assert!(
                !angry,
                "angry shopper (p={}), got {decision:?}",
                input.anger
            );
        }
    }
    let retrieved: Vec<&str> = match &input.kb {
        KbMatch::Confident { article_id, .. } => vec![article_id],
        KbMatch::Ambiguous { first, second } => vec![first, second],
        KbMatch::None => vec![],
    };
    match &decision {
        Decision::Answer(Answer::Article { article_id }) => {
            assert!(
                retrieved.contains(&article_id.as_str()),
                "{article_id} not retrieved"
            );
        }
        Decision::Answer(Answer::OrderStatus { order, .. }) => {
            assert_eq!(
                Some(order),
                input.orders.first(),
                "status of an order not given"
            );
        }
        Decision::Clarify { options } => {
            assert!(options.len() <= 2, "{options:?}");
            for option in options {
                match option {
                    ClarifyOption::Article(id) => assert!(retrieved.contains(&id.as_str())),
                    ClarifyOption::Intent(name) => assert!(
                        FAQ_INTENTS.contains(&name.as_str())
                            || ORDER_INTENTS.contains(&name.as_str()),
                        "clarifying with a non-topic {name}"
                    ),
                }
            }
        }
        _ => {}
    }
}
