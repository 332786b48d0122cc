//! Judges the masker against the hand-made corpus in tests/pii/ (written
//! without reading the masker; see tests/pii/README.md).
//!
//! For every line the text is masked with its storefront `orders`, then:
//! * a `personal` span counts as masked when it no longer appears verbatim
//!   in the output (recall);
//! * a `keep` span must still appear verbatim (over-masking otherwise).
//!
//! Prints both figures per file and per kind (kinds guessed from each span's
//! shape, since the corpus stores none), lists every miss, and asserts the
//! goals of issue #21: recall ≥ 99.5 %, over-masking ≤ 1 %.
//!
//! A second corpus, tests/pii-holdout/, was written later by someone who saw
//! neither the masker nor the first corpus; it is never used to refine the
//! rules, only to measure how they generalise (docs/privacy.md).
//!
//! A third corpus, tests/pii-dev/, written by yet another writer who saw
//! neither the masker nor the other corpora, is the development set: rules
//! are checked against it (general rules only, never one of its strings),
//! and its floors keep what was reached.
//!
//! Run: `cargo test -p xiaoer-privacy --test corpus -- --nocapture`

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use xiaoer_privacy::mask_keeping;

const FILES: &[&str] = &["zh.jsonl", "en.jsonl", "mixed.jsonl"];
const RECALL_GOAL: f64 = 0.995;
const OVERMASK_GOAL: f64 = 0.01;
/// Held-out floors: first measured 2026-12-06 at recall 89.75 % and
/// over-masking 0 %; measured once more 2026-12-07, after the rules
/// checked against tests/pii-dev/, at 92.62 % (226/244) and 0 % (0/260)
/// (docs/privacy.md). Rounded to just below; never tuned on.
const HOLDOUT_RECALL_FLOOR: f64 = 0.92;
const HOLDOUT_OVERMASK_CEILING: f64 = 0.01;

/// Development-set floors (tests/pii-dev/): first measured 2026-12-07 at
/// recall 81.36 % and over-masking 1.55 % before any rule looked at it;
/// 99.09 % (218/220) and 0 % (0/193) after the general rules of that day
/// (docs/privacy.md). The floors sit just below, so a regression fails.
const DEV_RECALL_FLOOR: f64 = 0.99;
const DEV_OVERMASK_CEILING: f64 = 0.01;

#[derive(Default)]
struct Tally {
    total: usize,
    bad: usize,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        self.total += 1;
        self.bad += usize::from(!ok);
    }
    fn rate_bad(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.bad as f64 / self.total as f64
        }
    }
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn has(s: &str, words: &[&str]) -> bool {
    let lower = s.to_lowercase();
    words.iter().any(|w| lower.contains(w))
}

/// A rough kind for a personal span, from its shape alone.
fn personal_kind(span: &str) -> &'static str {
    let digits = span
        .chars()
        .filter(|c| c.is_ascii_digit() || ('０'..='９').contains(c))
        .count();
    let han = span.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c));
    let letters = span.chars().filter(char::is_ascii_alphabetic).count();
    if span.contains('@') {
        "email"
    } else if has(
        span,
        &[
            "路", "街", "号", "室", "栋", "区", "市", "道", "村", "苑", "大厦", "樓", "street",
            " st", "road", " rd", "avenue", " ave", "lane", "drive", "close", "box", "crescent",
            "place", "way", "flat", "apt", "unit", "blk", "floor",
        ],
    ) && (digits > 0 || han)
    {
        "address"
    } else if digits == 0 {
        if letters > 0 && span.chars().any(|c| c.is_ascii_digit()) {
            "account"
        } else if span.contains(' ') && letters > 0 && span.len() <= 8 {
            "postcode"
        } else {
            "name"
        }
    } else if span.starts_with("wxid")
        || (letters >= 3 && digits > 0 && !span.contains(' '))
            && !span.starts_with(|c: char| c.is_ascii_uppercase())
    {
        "account"
    } else if letters > 0 && digits >= 6 && letters <= 2 {
        let d: String = span.chars().filter(char::is_ascii_digit).collect();
        if d.len() == 17 || d.len() == 18 || span.ends_with(['X', 'x']) {
            "id"
        } else {
            "passport/permit/hkid"
        }
    } else if letters > 0 && digits > 0 && span.len() <= 8 {
        "postcode"
    } else if (15..=18).contains(&digits)
        && !span.contains(' ')
        && !span.contains('-')
        && !span.starts_with(['6', '4', '5', '3'])
    {
        "id"
    } else if (13..=19).contains(&digits) && !span.starts_with('+') {
        "card"
    } else if (5..=11).contains(&digits)
        && !span.contains(['-', ' ', '+', '('])
        && !span.starts_with('1')
        && !span.starts_with('0')
    {
        "qq/passport/other"
    } else {
        "phone"
    }
}

/// A rough kind for a keep span.
fn keep_kind(span: &str) -> &'static str {
    let digits = span
        .chars()
        .filter(|c| c.is_ascii_digit() || ('０'..='９').contains(c))
        .count();
    if has(
        span,
        &[
            "¥", "$", "£", "元", "块", "rmb", "hkd", "sgd", "usd", "aud", "€",
        ],
    ) {
        "price"
    } else if has(
        span,
        &[
            "cm", "kg", "斤", "码", "size", "号", "ml", "mm", "inch", "lb", "xl", "米", "公分",
            "英寸", "寸",
        ],
    ) {
        "size/measure"
    } else if has(
        span,
        &[
            "月", "日", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
            "nov", "dec", "/", "点", ":",
        ],
    ) || (digits == 8 && span.starts_with("20"))
        || span.matches('-').count() == 2 && digits == 8
    {
        "date/time"
    } else if digits >= 8 {
        "order/tracking number"
    } else if span.chars().any(|c| c.is_ascii_uppercase()) {
        "coupon/code"
    } else {
        "other"
    }
}

/// A piece of a masked span still in the output: a run of 5+ ASCII letters
/// or digits, or 3+ Chinese characters, that the output holds more often
/// than the text does outside the span. Informational: masked forms keep
/// four digits and e-mail domains on purpose, so those are not counted.
fn leaked_piece(span: &str, text: &str, masked: &str) -> Option<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_han = false;
    for c in span.chars().chain(std::iter::once(' ')) {
        let han = ('\u{4E00}'..='\u{9FFF}').contains(&c);
        let word = c.is_ascii_alphanumeric() || han;
        if !word || (han != cur_han && !cur.is_empty()) {
            let n = cur.chars().count();
            if (cur_han && n >= 3) || (!cur_han && n >= 5) {
                pieces.push(std::mem::take(&mut cur));
            }
            cur.clear();
        }
        if word {
            cur.push(c);
            cur_han = han;
        }
    }
    let domain = span.split('@').nth(1).unwrap_or("");
    pieces.into_iter().find(|p| {
        !domain.contains(p.as_str())
            && masked.matches(p.as_str()).count()
                > text.replacen(span, "", 1).matches(p.as_str()).count()
    })
}

/// Recall of personal spans and over-masking of keep spans on one corpus.
struct Figures {
    recall: f64,
    over_masking: f64,
}

/// Masks every line of `files` under `corpus`, prints the figures per file
/// and per kind and every miss; a missing or unreadable file fails.
fn judge(corpus: &str, files: &[&str]) -> Figures {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(corpus);
    let mut personal_all = Tally::default();
    let mut keep_all = Tally::default();
    let mut by_kind: BTreeMap<String, (Tally, Tally)> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    let mut leaks: Vec<String> = Vec::new();
    for file in files {
        let path = dir.join(file);
        let body =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut personal = Tally::default();
        let mut keep = Tally::default();
        for (n, line) in body
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{file}:{}: {e}", n + 1));
            let text = v["text"].as_str().expect("text");
            let orders = strings(&v, "orders");
            let orders: Vec<&str> = orders.iter().map(String::as_str).collect();
            let masked = mask_keeping(text, &orders);
            for span in strings(&v, "personal") {
                let ok = !masked.contains(&span);
                personal.add(ok);
                if ok {
                    if let Some(piece) = leaked_piece(&span, text, &masked) {
                        leaks.push(format!(
                            "PARTIAL  {file}:{} {span:?} leaves {piece:?}\n    out: {masked}",
                            n + 1
                        ));
                    }
                }
                by_kind
                    .entry(format!("personal {}", personal_kind(&span)))
                    .or_default()
                    .0
                    .add(ok);
                if !ok {
                    misses.push(format!(
                        "MISSED   {file}:{} {span:?}\n    in:  {text}\n    out: {masked}",
                        n + 1
                    ));
                }
            }
            for span in strings(&v, "keep") {
                let ok = masked.contains(&span);
                keep.add(ok);
                by_kind
                    .entry(format!("keep {}", keep_kind(&span)))
                    .or_default()
                    .1
                    .add(ok);
                if !ok {
                    misses.push(format!(
                        "OVERMASK {file}:{} {span:?}\n    in:  {text}\n    out: {masked}",
                        n + 1
                    ));
                }
            }
        }
        println!(
            "{file:12} recall {:6.2}% ({}/{} personal spans masked)   over-masking {:5.2}% ({}/{} keep spans lost)",
            100.0 * (1.0 - personal.rate_bad()),
            personal.total - personal.bad,
            personal.total,
            100.0 * keep.rate_bad(),
            keep.bad,
            keep.total
        );
        personal_all.total += personal.total;
        personal_all.bad += personal.bad;
        keep_all.total += keep.total;
        keep_all.bad += keep.bad;
    }
    println!("\nper kind (guessed from each span's shape):");
    for (kind, (p, k)) in &by_kind {
        if p.total > 0 {
            println!(
                "  {kind:32} recall {:6.2}% ({}/{})",
                100.0 * (1.0 - p.rate_bad()),
                p.total - p.bad,
                p.total
            );
        }
        if k.total > 0 {
            println!(
                "  {kind:32} over-masking {:5.2}% ({}/{})",
                100.0 * k.rate_bad(),
                k.bad,
                k.total
            );
        }
    }
    println!("\n{} misses:", misses.len());
    for m in &misses {
        println!("{m}");
    }
    println!(
        "\n{} masked spans still show a piece (5+ letters/digits or 3+ Chinese characters):",
        leaks.len()
    );
    for l in &leaks {
        println!("{l}");
    }
    let recall = 1.0 - personal_all.rate_bad();
    let over = keep_all.rate_bad();
    println!(
        "\nTOTAL recall {:.2}% ({}/{})   over-masking {:.2}% ({}/{})",
        100.0 * recall,
        personal_all.total - personal_all.bad,
        personal_all.total,
        100.0 * over,
        keep_all.bad,
        keep_all.total
    );
    Figures {
        recall,
        over_masking: over,
    }
}

/// The corpus the masker's rules were refined on: it must meet issue #21's
/// goals, so a rule change that loses any of it fails.
#[test]
fn corpus_meets_the_goals() {
    let figures = judge("tests/pii", FILES);
    assert!(
        figures.recall >= RECALL_GOAL,
        "recall {:.2}% below {:.1}%",
        100.0 * figures.recall,
        100.0 * RECALL_GOAL
    );
    assert!(
        figures.over_masking <= OVERMASK_GOAL,
        "over-masking {:.2}% above {:.1}%",
        100.0 * figures.over_masking,
        100.0 * OVERMASK_GOAL
    );
}

/// The held-out corpus: measured, never tuned on. The floors sit just below
/// its first measurement, so a change that generalises worse fails here
/// even when the tuned corpus still passes.
#[test]
fn held_out_corpus_stays_at_its_measured_level() {
    let figures = judge("tests/pii-holdout", &["holdout.jsonl"]);
    assert!(
        figures.recall >= HOLDOUT_RECALL_FLOOR,
        "held-out recall {:.2}% below its floor {:.1}%",
        100.0 * figures.recall,
        100.0 * HOLDOUT_RECALL_FLOOR
    );
    assert!(
        figures.over_masking <= HOLDOUT_OVERMASK_CEILING,
        "held-out over-masking {:.2}% above its ceiling {:.1}%",
        100.0 * figures.over_masking,
        100.0 * HOLDOUT_OVERMASK_CEILING
    );
}

/// The development corpus: rules are checked against it, so its figures are
/// no independent measure (the held-out corpus is); the floors keep what
/// was reached.
#[test]
fn dev_corpus_stays_at_its_measured_level() {
    let figures = judge("tests/pii-dev", FILES);
    assert!(
        figures.recall >= DEV_RECALL_FLOOR,
        "dev recall {:.2}% below its floor {:.1}%",
        100.0 * figures.recall,
        100.0 * DEV_RECALL_FLOOR
    );
    assert!(
        figures.over_masking <= DEV_OVERMASK_CEILING,
        "dev over-masking {:.2}% above its ceiling {:.1}%",
        100.0 * figures.over_masking,
        100.0 * DEV_OVERMASK_CEILING
    );
}
