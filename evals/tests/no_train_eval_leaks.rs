//! Evaluation data must be written separately from training data.
//!
//! The figures the eval suites report are only honest if the bot has never
//! seen the shopper messages it is graded on. A copied or near-copied message
//! (one word added or swapped) in a training file or in an article's example
//! questions lets the intent head or retrieval score it by memory, and the
//! report then overstates how the bot does on new wording. The same holds for
//! the models' held-out files against their training files.
//!
//! This test reads every evaluated text (each turn of `evals/cases/*.jsonl`,
//! each query of `evals/retrieval/queries.jsonl`, and `models/data/*/heldout.*`)
//! and every text it must be independent of (`models/data/*/train.*` and the
//! `[questions]` of `knowledge-base/articles/*.md`), normalises both, and flags
//! a pair when
//!
//! * the normalised texts are equal, or
//! * one contains the other, the shorter has at least [`MIN_CONTAINED_CJK`]
//!   tokens (CJK) / [`MIN_CONTAINED_WORDS`] words (Latin), and it is at least
//!   [`MIN_CONTAINED_RATIO`] of the longer, or
//! * their character-trigram Jaccard similarity is at least [`MAX_JACCARD`].
//!
//! Very short generic texts ("thanks", "人工", "你好") are exempt: there is no
//! other way to write them. Fix a flagged pair by rewriting the training side
//! (or the held-out side) into genuinely different wording, not by editing
//! the evaluation set.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A pair is flagged when its trigram Jaccard similarity reaches this.
/// Measured on our data: a word added or swapped in a sentence of seven or
/// more CJK characters / five or more words scores 0.6–0.9, while different
/// questions built on the same stock phrase ("积分怎么查" / "积分怎么用",
/// "how long do i have to cancel" / "… to swap sizes") score 0.5–0.57, so a
/// lower value would flag genuinely different texts. Shorter near-copies are
/// left to the containment rule; the test prints the closest unflagged pairs.
const MAX_JACCARD: f64 = 0.6;
/// Containment counts only when the shorter text has this many CJK tokens…
const MIN_CONTAINED_CJK: usize = 6;
/// …or this many words when it has no CJK at all…
const MIN_CONTAINED_WORDS: usize = 3;
/// …and is at least this share of the longer text's tokens.
const MIN_CONTAINED_RATIO: f64 = 0.6;
/// Texts with at most this many tokens are exempt (CJK: characters).
const MAX_EXEMPT_CJK: usize = 3;
/// Texts without CJK and at most this many words are exempt.
const MAX_EXEMPT_WORDS: usize = 2;

/// One text with where it came from, normalised for comparison.
struct Text {
    /// `path:line`, plus the turn for multi-turn cases.
    location: String,
    raw: String,
    /// Each CJK character is a token; Latin letters and digits form words.
    tokens: Vec<String>,
    cjk: bool,
    /// Sorted, deduplicated character trigrams of the normalised text.
    trigrams: Vec<[char; 3]>,
}

impl Text {
    fn new(location: String, raw: &str) -> Text {
        let mut tokens: Vec<String> = Vec::new();
        let mut word = String::new();
        let mut cjk = false;
        for c in raw.chars().map(fold_width).flat_map(char::to_lowercase) {
            if is_cjk(c) {
                cjk = true;
                tokens.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
                tokens.push(c.to_string());
            } else if c.is_alphanumeric() {
                word.push(c);
            } else {
                // Punctuation, whitespace and emoji only separate words.
                tokens.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
            }
        }
        tokens.extend((!word.is_empty()).then_some(word));

        // Latin words keep one space between them so trigrams see word
        // boundaries; CJK characters are joined directly.
        let mut joined: Vec<char> = Vec::new();
        let is_word = |t: &str| !t.chars().any(is_cjk);
        for (i, t) in tokens.iter().enumerate() {
            if i > 0 && is_word(t) && is_word(&tokens[i - 1]) {
                joined.push(' ');
            }
            joined.extend(t.chars());
        }
        let mut trigrams: Vec<[char; 3]> = joined.windows(3).map(|w| [w[0], w[1], w[2]]).collect();
        trigrams.sort_unstable();
        trigrams.dedup();

        Text {
            location,
            raw: raw.to_string(),
            tokens,
            cjk,
            trigrams,
        }
    }

    fn exempt(&self) -> bool {
        let max = if self.cjk {
            MAX_EXEMPT_CJK
        } else {
            MAX_EXEMPT_WORDS
        };
        self.tokens.len() <= max
    }
}

/// Full-width ASCII and the ideographic space fold to their ASCII forms.
fn fold_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'     // kana
        | '\u{3400}'..='\u{4DBF}'   // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'   // CJK unified ideographs
        | '\u{AC00}'..='\u{D7AF}'   // hangul
        | '\u{F900}'..='\u{FAFF}'   // CJK compatibility ideographs
        | '\u{20000}'..='\u{2FFFF}' // CJK extensions B–F
    )
}

/// Why a pair was flagged.
enum Reason {
    Identical,
    Contained,
    Similar,
}

impl Reason {
    fn name(&self) -> &'static str {
        match self {
            Reason::Identical => "identical",
            Reason::Contained => "contained",
            Reason::Similar => "similar",
        }
    }
}

fn contains(long: &[String], short: &[String]) -> bool {
    long.windows(short.len()).any(|w| w == short)
}

/// The flagging rule for a pair with trigram similarity `jaccard`.
fn judge(a: &Text, b: &Text, jaccard: f64) -> Option<Reason> {
    if a.tokens == b.tokens {
        return Some(Reason::Identical);
    }
    let (short, long) = if a.tokens.len() <= b.tokens.len() {
        (a, b)
    } else {
        (b, a)
    };
    let min_short = if short.cjk {
        MIN_CONTAINED_CJK
    } else {
        MIN_CONTAINED_WORDS
    };
    if short.tokens.len() >= min_short
        && short.tokens.len() as f64 >= MIN_CONTAINED_RATIO * long.tokens.len() as f64
        && contains(&long.tokens, &short.tokens)
    {
        return Some(Reason::Contained);
    }
    (jaccard >= MAX_JACCARD).then_some(Reason::Similar)
}

/// The reference texts indexed by trigram, so each probe is compared only
/// with the texts it shares a trigram with.
struct Index<'a> {
    texts: &'a [Text],
    postings: HashMap<[char; 3], Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new(texts: &'a [Text]) -> Index<'a> {
        let mut postings: HashMap<[char; 3], Vec<usize>> = HashMap::new();
        for (i, t) in texts.iter().enumerate().filter(|(_, t)| !t.exempt()) {
            for g in &t.trigrams {
                postings.entry(*g).or_default().push(i);
            }
        }
        Index { texts, postings }
    }

    /// Every non-exempt reference text sharing a trigram with `probe`, with
    /// their trigram Jaccard similarity.
    fn candidates(&self, probe: &Text) -> Vec<(&'a Text, f64)> {
        let mut shared: HashMap<usize, usize> = HashMap::new();
        for g in &probe.trigrams {
            for &i in self.postings.get(g).into_iter().flatten() {
                *shared.entry(i).or_default() += 1;
            }
        }
        shared
            .into_iter()
            .map(|(i, n)| {
                let t = &self.texts[i];
                let union = probe.trigrams.len() + t.trigrams.len() - n;
                (t, n as f64 / union as f64)
            })
            .collect()
    }
}

struct Flag<'a> {
    reason: Reason,
    jaccard: f64,
    probe: &'a Text,
    reference: &'a Text,
}

/// What one comparison (probes against references) found.
struct Outcome<'a> {
    flags: Vec<Flag<'a>>,
    /// Each non-exempt probe's highest Jaccard, for the distribution.
    best: Vec<f64>,
    /// The closest pairs that were not flagged, to show the margin.
    near_misses: Vec<(f64, &'a Text, &'a Text)>,
}

fn compare<'a>(probes: &'a [Text], references: &'a [Text]) -> Outcome<'a> {
    let index = Index::new(references);
    let mut out = Outcome {
        flags: Vec::new(),
        best: Vec::new(),
        near_misses: Vec::new(),
    };
    for probe in probes.iter().filter(|p| !p.exempt()) {
        let mut best = 0.0f64;
        for (reference, jaccard) in index.candidates(probe) {
            best = best.max(jaccard);
            match judge(probe, reference, jaccard) {
                Some(reason) => out.flags.push(Flag {
                    reason,
                    jaccard,
                    probe,
                    reference,
                }),
                None => out.near_misses.push((jaccard, probe, reference)),
            }
        }
        out.best.push(best);
    }
    out.near_misses
        .sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.location.cmp(&b.1.location)));
    out.near_misses.truncate(8);
    out.flags.sort_by(|a, b| {
        (&a.probe.location, &a.reference.location).cmp(&(&b.probe.location, &b.reference.location))
    });
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the evals crate lives inside the workspace")
        .to_path_buf()
}

/// `*.ext` files of `dir` (relative to the workspace root), sorted.
fn files(dir: &str, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.expect("directory entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_string))
        .filter(|name| name.ends_with(&format!(".{ext}")))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    out.sort();
    out
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Each non-blank line of a JSONL file with its 1-based number.
fn jsonl<T: for<'de> Deserialize<'de>>(path: &str) -> Vec<(usize, T)> {
    read(path)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let row = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{path}:{}: invalid JSON line: {e}", i + 1));
            (i + 1, row)
        })
        .collect()
}

/// A training or held-out example (`intent` or `label` is not needed here).
#[derive(Deserialize)]
struct Example {
    text: String,
}

#[derive(Deserialize)]
struct Case {
    turns: Vec<String>,
}

#[derive(Deserialize)]
struct Query {
    query: String,
}

#[derive(Deserialize)]
struct FrontMatter {
    questions: Questions,
}

#[derive(Deserialize)]
struct Questions {
    zh: Vec<toml::Spanned<String>>,
    en: Vec<toml::Spanned<String>>,
}

fn examples(path: &str) -> Vec<Text> {
    jsonl::<Example>(path)
        .into_iter()
        .map(|(line, e)| Text::new(format!("{path}:{line}"), &e.text))
        .collect()
}

/// The example questions of one article, as `xiaoer-kb` reads them: the
/// TOML between the first two `+++` lines, `questions.zh` and `questions.en`.
fn article_questions(path: &str) -> Vec<Text> {
    let text = read(path);
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines.first().map(|l| l.trim()),
        Some("+++"),
        "{path}: no front matter"
    );
    let close = 1 + lines[1..]
        .iter()
        .position(|l| l.trim() == "+++")
        .unwrap_or_else(|| panic!("{path}: front matter is never closed"));
    let front_matter = lines[1..close].join("\n");
    let front: FrontMatter =
        toml::from_str(&front_matter).unwrap_or_else(|e| panic!("{path}: front matter: {e}"));
    front
        .questions
        .zh
        .iter()
        .chain(&front.questions.en)
        .map(|q| {
            // Front matter starts on line 2 of the file.
            let line = 2 + front_matter[..q.span().start].matches('\n').count();
            Text::new(format!("{path}:{line}"), q.get_ref())
        })
        .collect()
}

fn evaluated() -> Vec<Text> {
    let mut out = Vec::new();
    for path in files("evals/cases", "jsonl") {
        for (line, case) in jsonl::<Case>(&path) {
            let many = case.turns.len() > 1;
            for (i, turn) in case.turns.iter().enumerate() {
                let turn_note = if many {
                    format!(" (turn {})", i + 1)
                } else {
                    String::new()
                };
                out.push(Text::new(format!("{path}:{line}{turn_note}"), turn));
            }
        }
    }
    let path = "evals/retrieval/queries.jsonl";
    for (line, q) in jsonl::<Query>(path) {
        out.push(Text::new(format!("{path}:{line}"), &q.query));
    }
    out
}

fn split(head: &str, split: &str) -> Vec<Text> {
    ["zh", "en"]
        .iter()
        .flat_map(|lang| examples(&format!("models/data/{head}/{split}.{lang}.jsonl")))
        .collect()
}

fn learned() -> Vec<Text> {
    let mut out = split("intents", "train");
    out.extend(split("sentiment", "train"));
    for path in files("knowledge-base/articles", "md") {
        out.extend(article_questions(&path));
    }
    out
}

/// Counts of the best Jaccard per probe in tenths, e.g. `0.3–0.4: 120`.
fn distribution(best: &[f64]) -> String {
    let mut bins: BTreeMap<usize, usize> = BTreeMap::new();
    for b in best {
        *bins.entry(((b * 10.0) as usize).min(9)).or_default() += 1;
    }
    bins.iter()
        .map(|(bin, n)| {
            format!(
                "{:.1}–{:.1}: {n}",
                *bin as f64 / 10.0,
                (*bin + 1) as f64 / 10.0
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn evaluation_and_heldout_texts_are_not_copied_from_training_texts() {
    let evaluated = evaluated();
    let learned = learned();
    let heads: Vec<(String, Vec<Text>, Vec<Text>)> = ["intents", "sentiment"]
        .iter()
        .map(|head| {
            let name = format!("{head} held-out vs {head} train");
            (name, split(head, "heldout"), split(head, "train"))
        })
        .collect();

    let mut checks = vec![(
        "eval sets vs training data and article questions",
        compare(&evaluated, &learned),
    )];
    for (name, heldout, train) in &heads {
        checks.push((name.as_str(), compare(heldout, train)));
    }

    let mut report = String::new();
    let mut total = 0;
    for (name, outcome) in &checks {
        println!(
            "{name}: best trigram Jaccard per text: {}",
            distribution(&outcome.best)
        );
        println!("  closest pairs not flagged:");
        for (jaccard, probe, reference) in &outcome.near_misses {
            println!("    {jaccard:.2}  {:?} / {:?}", probe.raw, reference.raw);
        }
        total += outcome.flags.len();
        for f in &outcome.flags {
            let _ = writeln!(
                report,
                "  [{name}] {} (trigram Jaccard {:.2})\n    {}  {:?}\n    {}  {:?}",
                f.reason.name(),
                f.jaccard,
                f.probe.location,
                f.probe.raw,
                f.reference.location,
                f.reference.raw,
            );
        }
    }
    assert!(
        total == 0,
        "{total} evaluated text(s) copy or nearly copy a training text. Rewrite the \
         training side (or the held-out side) in genuinely different wording:\n{report}"
    );
}
