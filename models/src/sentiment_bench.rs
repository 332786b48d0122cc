//! Public sentiment benchmarks for the heads-on-frozen-encoder design, so
//! the anger and review signals the sentiment head learns from are also
//! scored on the data sets' own protocols:
//!
//! * GoEmotions (Demszky et al., 2020): English Reddit comments with one or
//!   more of 27 emotions or neutral. Train on `train`, early stopping,
//!   temperature and the decision threshold on `dev`, macro-F1 over the 28
//!   labels on `test`, plus the anger group (anger, annoyance, disgust) the
//!   handoff policy cares about.
//! * Chinese online shopping reviews (SophonPlus ChineseNlpCorpus): binary
//!   review sentiment; a seeded sample of `train`, accuracy on the whole
//!   `test` split.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use serde::Serialize;
use xiaoer_domain::SentimentLabel;

use crate::bench::{
    embed, label_id, label_names, pct, read_split, run_single_label, with_tone, Anchor,
    BenchConfig, SingleLabelResult, SingleLabelTask, Split,
};
use crate::cache::EmbeddingCache;
use crate::calibrate::{argmax, fit_temperature};
use crate::train::data::load_public_labels;
use crate::train::public::GOEMOTIONS_TO_SENTIMENT;
use crate::train::{fit_head, HeadConfig};
use crate::{Encoder, ModelError};

const GOEMOTIONS: &str = "goemotions";
const REVIEWS: &str = "chinese_online_shopping_10_cats";

/// GoEmotions anchor (test macro-F1 over 27 emotions + neutral, %).
pub const GOEMOTIONS_ANCHORS: [Anchor; 1] = [Anchor {
    system: "BERT-base, fine-tuned end to end, sigmoid outputs, threshold 0.3",
    metric: "test_macro_f1",
    value: 46.0,
    source: "Demszky et al. 2020, GoEmotions: A Dataset of Fine-Grained Emotions (full taxonomy)",
}];

/// Decision thresholds tried on `dev` for the multi-label prediction.
const THRESHOLDS: [f32; 14] = [
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
];

/// Precision, recall and F1 of one label or label group (percent).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelScore {
    /// Label name, or the group's name.
    pub label: String,
    /// Test examples carrying it.
    pub support: usize,
    /// Percent.
    pub precision: f64,
    /// Percent.
    pub recall: f64,
    /// Percent.
    pub f1: f64,
}

/// GoEmotions result.
#[derive(Debug, Clone, Serialize)]
pub struct GoEmotionsResult {
    /// [`Encoder::name`] of the frozen encoder.
    pub encoder: String,
    /// Training comments (each label of a comment is one training example).
    pub train_examples: usize,
    /// Official dev comments.
    pub dev_examples: usize,
    /// Official test comments.
    pub test_examples: usize,
    /// Probability a label needs to be predicted, chosen for dev macro-F1
    /// (the top label is always predicted).
    pub threshold: f32,
    /// Percent, at the chosen threshold.
    pub dev_macro_f1: f64,
    /// Percent, the headline number.
    pub test_macro_f1: f64,
    /// Percent, macro average.
    pub test_macro_precision: f64,
    /// Percent, macro average.
    pub test_macro_recall: f64,
    /// The labels GoEmotions maps to anger in our sentiment training
    /// (anger, annoyance, disgust), scored as one yes/no signal.
    pub anger_group: LabelScore,
    /// Every label on test.
    pub per_label: Vec<LabelScore>,
    /// Per ensemble member.
    pub best_epochs: Vec<usize>,
    /// Fitted on dev.
    pub temperature: f32,
    /// Embedding time (near zero with a warm cache).
    pub embed_seconds: f32,
    /// Head training and evaluation time.
    pub train_seconds: f32,
    /// Hyper-parameters used, for reproduction.
    pub head: HeadConfig,
    /// Published numbers to compare against.
    pub anchors: Vec<Anchor>,
}

/// Texts and label sets of one multi-label split.
struct MultiSplit {
    texts: Vec<String>,
    labels: Vec<Vec<usize>>,
}

fn read_multi(
    cfg: &BenchConfig,
    file: &str,
    index: &mut BTreeMap<String, usize>,
    grow: bool,
) -> Result<MultiSplit, ModelError> {
    let (rows, _) = load_public_labels(&cfg.datasets_dir, GOEMOTIONS, file)?;
    let mut split = MultiSplit {
        texts: Vec::with_capacity(rows.len()),
        labels: Vec::with_capacity(rows.len()),
    };
    for (text, names) in rows {
        let ids = names
            .into_iter()
            .map(|name| label_id(index, name, grow, GOEMOTIONS, file))
            .collect::<Result<Vec<_>, _>>()?;
        split.texts.push(text);
        split.labels.push(ids);
    }
    Ok(split)
}

/// One (embedding, label) pair per label of each comment: a softmax head
/// trained this way spreads a two-emotion comment's probability over both.
fn one_per_label(x: &[Vec<f32>], labels: &[Vec<usize>]) -> (Vec<Vec<f32>>, Vec<usize>) {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (row, ids) in x.iter().zip(labels) {
        for &y in ids {
            xs.push(row.clone());
            ys.push(y);
        }
    }
    (xs, ys)
}

/// Labels at or over `threshold`, and always the most likely one.
fn predict_set(probs: &[f32], threshold: f32) -> Vec<bool> {
    let mut chosen: Vec<bool> = probs.iter().map(|&p| p >= threshold).collect();
    if let Some((top, _)) = argmax(probs) {
        chosen[top] = true;
    }
    chosen
}

fn score(label: String, tp: usize, fp: usize, fn_: usize) -> LabelScore {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    LabelScore {
        label,
        support: tp + fn_,
        precision: pct(precision),
        recall: pct(recall),
        f1: pct(f1),
    }
}

/// Per-label scores of predicted label sets against gold label sets.
fn per_label_scores(pred: &[Vec<bool>], gold: &[Vec<usize>], names: &[String]) -> Vec<LabelScore> {
    names
        .iter()
        .enumerate()
        .map(|(label, name)| {
            let (mut tp, mut fp, mut fn_) = (0, 0, 0);
            for (p, g) in pred.iter().zip(gold) {
                match (p[label], g.contains(&label)) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    (false, false) => {}
                }
            }
            score(name.clone(), tp, fp, fn_)
        })
        .collect()
}

/// Yes/no score of "any label of `group`" predicted against gold.
fn group_score(name: &str, pred: &[Vec<bool>], gold: &[Vec<usize>], group: &[usize]) -> LabelScore {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (p, g) in pred.iter().zip(gold) {
        let predicted = group.iter().any(|&l| p[l]);
        let actual = g.iter().any(|l| group.contains(l));
        match (predicted, actual) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    score(name.to_string(), tp, fp, fn_)
}

fn macro_mean(scores: &[LabelScore], field: impl Fn(&LabelScore) -> f64) -> f64 {
    let mean = scores.iter().map(field).sum::<f64>() / scores.len().max(1) as f64;
    (mean * 100.0).round() / 100.0
}

/// GoEmotions with the data set's protocol: multi-label, macro-F1 over all
/// 28 labels on `test`; everything tuned on `dev` only.
pub fn run_goemotions(
    cfg: &BenchConfig,
    encoder: &dyn Encoder,
) -> Result<GoEmotionsResult, ModelError> {
    let mut index = BTreeMap::new();
    let train = read_multi(cfg, "train.jsonl", &mut index, true)?;
    let dev = read_multi(cfg, "dev.jsonl", &mut index, false)?;
    let test = read_multi(cfg, "test.jsonl", &mut index, false)?;
    let names = label_names(&index);

    let start = Instant::now();
    let mut cache = EmbeddingCache::open(&cfg.cache_dir, encoder)?;
    let train_x = embed(&mut cache, encoder, &train.texts)?;
    let dev_x = embed(&mut cache, encoder, &dev.texts)?;
    let test_x = embed(&mut cache, encoder, &test.texts)?;
    let embed_seconds = start.elapsed().as_secs_f32();
    let train_x = with_tone(train_x, &train.texts);
    let dev_x = with_tone(dev_x, &dev.texts);
    let test_x = with_tone(test_x, &test.texts);

    let start = Instant::now();
    let (tx, ty) = one_per_label(&train_x, &train.labels);
    let (vx, vy) = one_per_label(&dev_x, &dev.labels);
    let mut fit = fit_head(&tx, &ty, &vx, &vy, names.clone(), &cfg.head, cfg.seed)?;
    let dev_logits: Vec<Vec<f32>> = vx.iter().map(|x| fit.head.logits(x)).collect();
    let temperature = fit_temperature(&dev_logits, &vy);
    fit.head.set_temperature(temperature);
    let probs =
        |xs: &[Vec<f32>]| -> Vec<Vec<f32>> { xs.iter().map(|x| fit.head.probs(x)).collect() };
    let (dev_probs, test_probs) = (probs(&dev_x), probs(&test_x));
    let macro_f1_at = |all: &[Vec<f32>], gold: &[Vec<usize>], threshold: f32| {
        let pred: Vec<Vec<bool>> = all.iter().map(|p| predict_set(p, threshold)).collect();
        let scores = per_label_scores(&pred, gold, &names);
        (macro_mean(&scores, |s| s.f1), pred, scores)
    };
    let (threshold, dev_macro_f1) = THRESHOLDS
        .iter()
        .map(|&t| (t, macro_f1_at(&dev_probs, &dev.labels, t).0))
        .fold((THRESHOLDS[0], f64::MIN), |best, cand| {
            if cand.1 > best.1 {
                cand
            } else {
                best
            }
        });
    let (test_macro_f1, test_pred, per_label) = macro_f1_at(&test_probs, &test.labels, threshold);
    let anger: Vec<usize> = GOEMOTIONS_TO_SENTIMENT
        .iter()
        .filter(|(_, s)| *s == SentimentLabel::Angry)
        .filter_map(|(name, _)| index.get(*name).copied())
        .collect();
    let anger_group = group_score("anger|annoyance|disgust", &test_pred, &test.labels, &anger);
    let train_seconds = start.elapsed().as_secs_f32();

    Ok(GoEmotionsResult {
        encoder: encoder.name().to_string(),
        train_examples: train.texts.len(),
        dev_examples: dev.texts.len(),
        test_examples: test.texts.len(),
        threshold,
        dev_macro_f1,
        test_macro_f1,
        test_macro_precision: macro_mean(&per_label, |s| s.precision),
        test_macro_recall: macro_mean(&per_label, |s| s.recall),
        anger_group,
        per_label,
        best_epochs: fit.best_epochs.clone(),
        temperature,
        embed_seconds,
        train_seconds,
        head: cfg.head.clone(),
        anchors: GOEMOTIONS_ANCHORS.to_vec(),
    })
}

/// Chinese online shopping reviews, positive (1) or negative (0): a seeded
/// sample of [`BenchConfig::review_train_sample`] training rows, accuracy on
/// all of `test`. The data set publishes no reference figure.
pub fn run_online_shopping(
    cfg: &BenchConfig,
    encoder: &dyn Encoder,
) -> Result<SingleLabelResult, ModelError> {
    let mut index = BTreeMap::new();
    let train = read_split(cfg, REVIEWS, "train.jsonl", &mut index, true)?;
    let test = read_split(cfg, REVIEWS, "test.jsonl", &mut index, false)?;
    let train_rows = train.labels.len();
    let mut order: Vec<usize> = (0..train_rows).collect();
    order.shuffle(&mut ChaCha12Rng::seed_from_u64(cfg.seed ^ 0x5E11));
    order.truncate(cfg.review_train_sample);
    let sample = Split {
        texts: order.iter().map(|&i| train.texts[i].clone()).collect(),
        labels: order.iter().map(|&i| train.labels[i]).collect(),
    };
    let task = SingleLabelTask {
        dataset: REVIEWS,
        labels: label_names(&index),
        train_rows,
        anchors: Vec::new(),
        tone: true,
    };
    run_single_label(cfg, encoder, task, &sample, &test)
}

#[cfg(test)]
mod tests;
