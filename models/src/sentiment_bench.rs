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

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::bench::{
    embed, label_id, label_names, pct, read_split, run_single_label, with_tone, Anchor,
    BenchConfig, SingleLabelResult, SingleLabelTask, Split,
};
use crate::cache::EmbeddingCache;
use crate::calibrate::{argmax, fit_temperature};
use crate::data::{load_public_labels, GOEMOTIONS_TO_SENTIMENT};
use crate::heads::SentimentLabel;
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
    order.shuffle(&mut StdRng::seed_from_u64(cfg.seed ^ 0x5E11));
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
mod tests {
    use super::*;
    use crate::test_support::HashEncoder;
    use std::fs;
    use std::path::Path;

    fn write(dir: &Path, rel: &str, rows: &[serde_json::Value]) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let body: String = rows.iter().map(|r| r.to_string() + "\n").collect();
        fs::write(path, body).expect("write");
    }

    /// Comments whose words name their emotions, so the hash encoder can
    /// separate them; every fourth one carries two emotions.
    fn comments(n: usize, first: usize) -> Vec<serde_json::Value> {
        let emotions = ["anger", "joy", "neutral", "annoyance"];
        (first..first + n)
            .map(|i| {
                let a = emotions[i % 4];
                if i % 4 == 3 {
                    serde_json::json!({"text": format!("{a} {a} grr {i}"), "label": [a, "anger"]})
                } else {
                    serde_json::json!({"text": format!("{a} {a} {a} {i}"), "label": [a]})
                }
            })
            .collect()
    }

    fn config(dir: &Path) -> BenchConfig {
        BenchConfig {
            datasets_dir: dir.to_path_buf(),
            cache_dir: dir.join("cache"),
            head: HeadConfig {
                hidden: vec![32],
                max_epochs: 40,
                ..HeadConfig::default()
            },
            review_train_sample: 40,
            ..BenchConfig::for_workspace(dir)
        }
    }

    #[test]
    fn label_sets_are_scored_per_label_and_as_a_group() {
        let names: Vec<String> = ["anger", "joy", "annoyance"].map(String::from).to_vec();
        let gold = vec![vec![0], vec![1], vec![2, 0], vec![1]];
        let pred = vec![
            vec![true, false, false],
            vec![true, true, false],
            vec![false, false, true],
            vec![false, true, false],
        ];
        let scores = per_label_scores(&pred, &gold, &names);
        // anger: tp 1 (row 0), fp 1 (row 1), fn 1 (row 2).
        assert_eq!(
            (scores[0].precision, scores[0].recall, scores[0].f1),
            (50.0, 50.0, 50.0)
        );
        assert_eq!((scores[1].precision, scores[1].recall), (100.0, 100.0));
        assert_eq!(scores[2].support, 1);
        // Group anger|annoyance: rows 0 and 2 are angry, both found; row 1 is a false alarm.
        let group = group_score("angry", &pred, &gold, &[0, 2]);
        assert_eq!(
            (group.support, group.precision, group.recall),
            (2, 66.67, 100.0)
        );
        assert_eq!(
            predict_set(&[0.1, 0.2, 0.15], 0.5),
            vec![false, true, false]
        );
        assert_eq!(
            predict_set(&[0.45, 0.5, 0.05], 0.4),
            vec![true, true, false]
        );
    }

    #[test]
    fn goemotions_runner_tunes_on_dev_and_reports_the_anger_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "goemotions/train.jsonl", &comments(80, 0));
        write(dir.path(), "goemotions/dev.jsonl", &comments(20, 100));
        write(dir.path(), "goemotions/test.jsonl", &comments(20, 200));
        let result = run_goemotions(&config(dir.path()), &HashEncoder::new(64)).expect("bench");
        assert_eq!((result.train_examples, result.test_examples), (80, 20));
        assert_eq!(result.per_label.len(), 4);
        assert!(THRESHOLDS.contains(&result.threshold));
        assert!(result.test_macro_f1 > 60.0, "{result:?}");
        assert_eq!(result.anger_group.support, 10);
        assert!(result.anger_group.recall > 60.0, "{result:?}");
        assert_eq!(result.anchors[0].metric, "test_macro_f1");

        write(
            dir.path(),
            "goemotions/test.jsonl",
            &[serde_json::json!({"text": "meh", "label": ["boredom"]})],
        );
        let err = run_goemotions(&config(dir.path()), &HashEncoder::new(64)).expect_err("label");
        assert!(
            err.to_string().contains("label boredom does not occur"),
            "{err}"
        );
        write(
            dir.path(),
            "goemotions/test.jsonl",
            &[serde_json::json!({"text": "meh", "label": []})],
        );
        let err = run_goemotions(&config(dir.path()), &HashEncoder::new(64)).expect_err("empty");
        assert!(err.to_string().contains("empty list"), "{err}");
    }

    #[test]
    fn review_runner_samples_train_and_scores_all_of_test() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reviews = |n: usize, first: usize| -> Vec<serde_json::Value> {
            (first..first + n)
                .map(|i| {
                    let (text, label) = if i % 2 == 0 {
                        (format!("好评 很好 满意 {i}"), 1)
                    } else {
                        (format!("差评 太差 失望 {i}"), 0)
                    };
                    serde_json::json!({"text": text, "label": label, "cat": "衣服"})
                })
                .collect()
        };
        write(
            dir.path(),
            &format!("{REVIEWS}/train.jsonl"),
            &reviews(100, 0),
        );
        write(
            dir.path(),
            &format!("{REVIEWS}/test.jsonl"),
            &reviews(30, 500),
        );
        let result =
            run_online_shopping(&config(dir.path()), &HashEncoder::new(64)).expect("bench");
        assert_eq!(result.dataset, REVIEWS);
        assert_eq!(result.train_rows, 100);
        assert_eq!(result.train_examples + result.val_examples, 40);
        assert_eq!(result.test_examples, 30);
        assert!(result.test_accuracy > 80.0, "{result:?}");
        assert!(result.anchors.is_empty());

        write(
            dir.path(),
            &format!("{REVIEWS}/test.jsonl"),
            &[serde_json::json!({"text": "还行", "label": {"score": 3}})],
        );
        let err = run_online_shopping(&config(dir.path()), &HashEncoder::new(64)).expect_err("bad");
        assert!(
            err.to_string()
                .contains("must be a name, an integer or a list"),
            "{err}"
        );
    }
}
