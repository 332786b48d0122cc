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
//! * masking: the masker's own invariants (idempotent; no mobile, card or
//!   resident ID number in plain digits outside order context), and no span
//!   the hand-written corpus marks as personal survives, whatever noise
//!   surrounds the message;
//! * cues: an explicit "转人工" in a sentence of its own always counts as
//!   asking for a person;
//! * policy: a conversation already with an agent stays there, a request for
//!   a person or an angry shopper is always handed off (a message of only
//!   punctuation or hesitation gets an open question however it reads),
//!   answers cite only articles retrieval found, clarifying questions offer
//!   real topics only.
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
use xiaoer_domain::{HandoffReason, Intent};
use xiaoer_models::e5::TOKENIZER_FILE;
use xiaoer_models::unigram::CompactUnigram;
use xiaoer_models::{detect_language, Language};
use xiaoer_privacy::invariants;
use xiaoer_service::cues;
use xiaoer_service::error::require_text;
use xiaoer_service::policy::{
    decide, Answer, ClarifyOption, Cues, Decision, History, KbMatch, OrderFact, PolicyConfig,
    PolicyInput, FAQ_INTENTS, ORDER_INTENTS,
};

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

/// Every intent, each with a fuzzed weight.
const INTENT_COUNT: usize = Intent::ALL.len();
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
    intent_weights: [u8; INTENT_COUNT],
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
    let mut intents: Vec<(Intent, f32)> = Intent::ALL
        .iter()
        .zip(ctx.intent_weights)
        .map(|(name, w)| {
            let p = if total == 0 {
                1.0 / INTENT_COUNT as f32
            } else {
                w as f32 / total as f32
            };
            (*name, p)
        })
        .collect();
    intents.sort_by(|a, b| b.1.total_cmp(&a.1));
    let out_of_scope = intents[0].0 == Intent::OutOfScope || ctx.below_threshold;
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
                .map(|i| Intent::ALL[usize::from(i) % INTENT_COUNT]),
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
    check_masking(text, data);

    let cues = cues::detect(text);
    // A request for a person in a sentence of its own is always heard,
    // whatever came before ("…不用 转人工" in one breath declines it).
    assert!(cues::detect(&format!("{text}。转人工")).asks_for_person);

    let ctx = Context::arbitrary(&mut Unstructured::new(data)).unwrap_or_else(|_| Context {
        intent_weights: [0; INTENT_COUNT],
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

fn check_masking(text: &str, data: &[u8]) {
    if let Err(broken) = invariants::check(text) {
        panic!("masking: {broken} (from {text:?})");
    }
    // A corpus message with fuzzed separators around it: none of the spans
    // the corpus marks as personal may survive, whatever surrounds them.
    let Some(&pick) = data.first() else { return };
    let line = &PII_CORPUS[usize::from(pick) % PII_CORPUS.len()];
    let noise: String = text
        .chars()
        .filter(|c| c.is_whitespace() || "，。！？,.!?".contains(*c))
        .take(8)
        .collect();
    let framed = format!("{noise}{}{noise}", line.text);
    let personal: Vec<&str> = line.personal.iter().map(String::as_str).collect();
    let orders: Vec<&str> = line.orders.iter().map(String::as_str).collect();
    if let Err(broken) = invariants::check_spans(&framed, &personal, &orders) {
        panic!("corpus line {:?}: {broken}", line.text);
    }
}

/// One line of the hand-written personal-data corpus (privacy/tests/pii).
#[derive(serde::Deserialize)]
struct PiiLine {
    text: String,
    personal: Vec<String>,
    #[serde(default)]
    orders: Vec<String>,
}

/// The corpus, compiled in so every fuzz execution can draw from it.
static PII_CORPUS: LazyLock<Vec<PiiLine>> = LazyLock::new(|| {
    [
        include_str!("../../privacy/tests/pii/zh.jsonl"),
        include_str!("../../privacy/tests/pii/en.jsonl"),
        include_str!("../../privacy/tests/pii/mixed.jsonl"),
    ]
    .iter()
    .flat_map(|file| file.lines().filter(|l| !l.trim().is_empty()))
    .map(|l| serde_json::from_str(l).expect("corpus line"))
    .collect()
});

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
            cause, priority, ..
        } => {
            assert!((1..=4).contains(priority), "priority {priority}");
            if angry && !input.cues.contentless {
                assert_eq!(*priority, 1, "an angry shopper is handed off first");
            }
            if input.cues.asks_for_person {
                assert_eq!(*cause, HandoffReason::CustomerRequest);
            }
        }
        Decision::Answer(_) | Decision::Clarify { .. } | Decision::OutOfScope => {
            assert!(
                !input.cues.asks_for_person,
                "asked for a person, got {decision:?}"
            );
            // A message of only punctuation or hesitation reads angry to the
            // sentiment head but has nothing to hand off: it gets an open question.
            assert!(
                !angry || (input.cues.contentless && matches!(decision, Decision::Clarify { .. })),
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
                    ClarifyOption::Intent(intent) => assert!(
                        FAQ_INTENTS.contains(intent) || ORDER_INTENTS.contains(intent),
                        "clarifying with a non-topic {intent}"
                    ),
                }
            }
        }
        _ => {}
    }
}
