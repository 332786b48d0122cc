//! Public benchmarks for the heads-on-frozen-encoder design, with published
//! anchors next to our numbers so regressions and the gap to fine-tuned
//! models are visible in one report.
//!
//! * BANKING77 (Casanueva et al., 2020): 77 fine-grained intents; train on
//!   `train` (a stratified validation share is held back for early stopping
//!   and temperature), report accuracy on `test`.
//! * CLINC150 "full" (Larson et al., 2019): 150 intents plus out-of-scope
//!   queries; train on `train` (+ `oos_train` for the OOS-class variant),
//!   choose the threshold on `val` + `oos_val`, report in-scope accuracy on
//!   `test` and OOS recall on `oos_test`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use serde::Serialize;

use crate::cache::EmbeddingCache;
use crate::calibrate::{
    argmax, choose_oos_threshold, evaluate_oos, expected_calibration_error, fit_temperature,
    softmax, OosOperatingPoint,
};
use crate::train::data::load_public_labels;
use crate::train::{fit_head, FitOutcome, HeadConfig};
use crate::{Encoder, ModelError, TextRole};

/// A published result to compare against.
#[derive(Debug, Clone, Serialize)]
pub struct Anchor {
    /// Model and training regime the number belongs to.
    pub system: &'static str,
    /// Metric name as used in the result struct.
    pub metric: &'static str,
    /// Percent.
    pub value: f64,
    /// Where the number was published, so it can be checked.
    pub source: &'static str,
}

/// BANKING77 anchors (test accuracy, %).
pub const BANKING77_ANCHORS: [Anchor; 2] = [
    Anchor {
        system: "BERT-base, fine-tuned end to end",
        metric: "test_accuracy",
        value: 93.66,
        source: "Casanueva et al. 2020, Efficient Intent Detection with Dual Sentence Encoders (full data)",
    },
    Anchor {
        system: "bge-small + linear head",
        metric: "test_accuracy",
        value: 93.08,
        source: "anchor given in the xiaoer project brief (origin not re-verified here)",
    },
];

/// CLINC150 anchors (BERT with an OOS training class, "full" split, %).
pub const CLINC150_ANCHORS: [Anchor; 2] = [
    Anchor {
        system: "BERT-large, oos-train class",
        metric: "in_scope_accuracy",
        value: 96.9,
        source: "Larson et al. 2019, An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction",
    },
    Anchor {
        system: "BERT-large, oos-train class",
        metric: "oos_recall",
        value: 40.3,
        source: "Larson et al. 2019, An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction",
    },
];

/// Inputs shared by the benchmark runners.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Folder with the public data sets (`banking77/`, `clinc150/`,
    /// `goemotions/`, ...; read only).
    pub datasets_dir: PathBuf,
    /// Embedding cache, shared with shipped-head training.
    pub cache_dir: PathBuf,
    /// Seed of the validation carve-out, initialisation and dropout.
    pub seed: u64,
    /// Head trained on each benchmark.
    pub head: HeadConfig,
    /// Share of BANKING77 `train` held back for validation (it has no
    /// official validation split).
    pub val_fraction: f32,
    /// Cap on in-scope validation rejections when choosing the CLINC150
    /// threshold (see [`choose_oos_threshold`]).
    pub max_false_reject: f32,
    /// Training rows drawn (seeded) from the 56k online shopping reviews:
    /// embedding all of them takes over an hour on 2 cores, and accuracy
    /// flattens out well before that.
    pub review_train_sample: usize,
}

impl BenchConfig {
    /// Repository layout rooted at `workspace`, with a head sized for
    /// 10k+ training examples.
    pub fn for_workspace(workspace: &Path) -> BenchConfig {
        BenchConfig {
            datasets_dir: crate::train::datasets::resolve_datasets_dir(None, workspace),
            cache_dir: workspace.join("target").join("embedding-cache"),
            seed: 7,
            head: HeadConfig {
                hidden: vec![1024],
                dropout: 0.5,
                patience: 15,
                batch_size: 128,
                ..HeadConfig::default()
            },
            val_fraction: 0.1,
            max_false_reject: 0.05,
            review_train_sample: 8000,
        }
    }
}

/// Result of a single-label benchmark (BANKING77, the online shopping
/// reviews): one head, accuracy on the official test split.
#[derive(Debug, Clone, Serialize)]
pub struct SingleLabelResult {
    /// Data set folder name under `datasets_dir`.
    pub dataset: &'static str,
    /// [`Encoder::name`] of the frozen encoder.
    pub encoder: String,
    /// Rows of the data set's train split (before any sampling).
    pub train_rows: usize,
    /// Examples the head was trained on (train minus validation share).
    pub train_examples: usize,
    /// Validation carve-out used for early stopping and temperature.
    pub val_examples: usize,
    /// Official test examples.
    pub test_examples: usize,
    /// Percent, the headline number.
    pub test_accuracy: f64,
    /// Percent (optimistic: early stopping looked at it).
    pub val_accuracy: f64,
    /// Per ensemble member.
    pub best_epochs: Vec<usize>,
    /// Fitted on validation.
    pub temperature: f32,
    /// Test ECE at temperature 1.
    pub ece_before: f32,
    /// Test ECE at the fitted temperature.
    pub ece_after: f32,
    /// Embedding time (near zero with a warm cache).
    pub embed_seconds: f32,
    /// Head training and evaluation time.
    pub train_seconds: f32,
    /// Hyper-parameters used, for reproduction.
    pub head: HeadConfig,
    /// Published numbers to compare against.
    pub anchors: Vec<Anchor>,
}

/// One CLINC150 out-of-scope strategy.
#[derive(Debug, Clone, Serialize)]
pub struct OosVariant {
    /// `threshold` or `oos_class_plus_threshold`.
    pub name: &'static str,
    /// Per ensemble member.
    pub best_epochs: Vec<usize>,
    /// Operating point chosen on `val` + `oos_val` (fractions).
    pub val: OosOperatingPoint,
    /// The same threshold on `test` + `oos_test` (fractions).
    pub test: OosOperatingPoint,
    /// For the OOS-class variant: test result with the class alone
    /// (threshold 0), the setting of Larson et al.'s anchor.
    pub test_class_only: Option<OosOperatingPoint>,
    /// How in-scope accuracy trades against OOS recall: one point per
    /// [`TRADEOFF_CAPS`] entry, each threshold chosen on validation.
    pub tradeoff: Vec<TradeOff>,
}

/// One point of the in-scope / out-of-scope trade-off.
#[derive(Debug, Clone, Serialize)]
pub struct TradeOff {
    /// Cap on validation in-scope rejections the threshold was chosen under.
    pub max_false_reject: f32,
    /// Operating point on `val` + `oos_val`.
    pub val: OosOperatingPoint,
    /// The same threshold on `test` + `oos_test`.
    pub test: OosOperatingPoint,
}

/// CLINC150 result.
#[derive(Debug, Clone, Serialize)]
pub struct Clinc150Result {
    /// [`Encoder::name`] of the frozen encoder.
    pub encoder: String,
    /// In-scope training examples (`oos_train` not counted).
    pub train_examples: usize,
    /// In-scope test examples.
    pub test_in_scope: usize,
    /// Out-of-scope test examples.
    pub test_oos: usize,
    /// 150-class head, out of scope by threshold only.
    pub threshold_variant: OosVariant,
    /// 151-class head with a trained `oos` class, plus a threshold.
    pub oos_class_variant: OosVariant,
    /// Embedding time (near zero with a warm cache).
    pub embed_seconds: f32,
    /// Training and evaluation time of both variants.
    pub train_seconds: f32,
    /// Hyper-parameters used, for reproduction.
    pub head: HeadConfig,
    /// Published numbers to compare against.
    pub anchors: Vec<Anchor>,
}

/// Texts and label indices of one split.
pub(crate) struct Split {
    pub(crate) texts: Vec<String>,
    pub(crate) labels: Vec<usize>,
}

/// Reads a single-label split; `grow` lets new labels in (train), otherwise
/// a label the training split lacks is a data error.
pub(crate) fn read_split(
    cfg: &BenchConfig,
    dataset: &str,
    file: &str,
    index: &mut BTreeMap<String, usize>,
    grow: bool,
) -> Result<Split, ModelError> {
    let (rows, _) = load_public_labels(&cfg.datasets_dir, dataset, file)?;
    let mut split = Split {
        texts: Vec::with_capacity(rows.len()),
        labels: Vec::with_capacity(rows.len()),
    };
    for (text, labels) in rows {
        let [label] = <[String; 1]>::try_from(labels).map_err(|labels| ModelError::Data {
            path: format!("{dataset}/{file}"),
            reason: format!("expected one label per row, found {labels:?}"),
        })?;
        split.texts.push(text);
        split
            .labels
            .push(label_id(index, label, grow, dataset, file)?);
    }
    Ok(split)
}

/// Index of `label`, added when `grow` is set.
pub(crate) fn label_id(
    index: &mut BTreeMap<String, usize>,
    label: String,
    grow: bool,
    dataset: &str,
    file: &str,
) -> Result<usize, ModelError> {
    let next = index.len();
    match index.get(&label) {
        Some(&id) => Ok(id),
        None if grow => {
            index.insert(label, next);
            Ok(next)
        }
        None => Err(ModelError::Data {
            path: format!("{dataset}/{file}"),
            reason: format!("label {label} does not occur in the training split"),
        }),
    }
}

pub(crate) fn embed(
    cache: &mut EmbeddingCache,
    encoder: &dyn Encoder,
    texts: &[String],
) -> Result<Vec<Vec<f32>>, ModelError> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    cache.embed(encoder, &refs, TextRole::Query)
}

pub(crate) fn label_names(index: &BTreeMap<String, usize>) -> Vec<String> {
    let mut names = vec![String::new(); index.len()];
    for (name, &id) in index {
        names[id] = name.clone();
    }
    names
}

/// A fraction as a percentage with two decimals (f64, so reports print
/// `93.47`, not the f32 expansion `93.47000122070312`).
pub(crate) fn pct(v: f32) -> f64 {
    (v as f64 * 10000.0).round() / 100.0
}

/// Trains on BANKING77 `train` (minus a stratified validation share) and
/// reports `test` accuracy.
pub fn run_banking77(
    cfg: &BenchConfig,
    encoder: &dyn Encoder,
) -> Result<SingleLabelResult, ModelError> {
    let mut index = BTreeMap::new();
    let train = read_split(cfg, "banking77", "train.jsonl", &mut index, true)?;
    let test = read_split(cfg, "banking77", "test.jsonl", &mut index, false)?;
    let train_rows = train.labels.len();
    let task = SingleLabelTask {
        dataset: "banking77",
        labels: label_names(&index),
        train_rows,
        anchors: BANKING77_ANCHORS.to_vec(),
        tone: false,
    };
    run_single_label(cfg, encoder, task, &train, &test)
}

/// What a single-label benchmark reports besides its splits.
pub(crate) struct SingleLabelTask {
    pub(crate) dataset: &'static str,
    pub(crate) labels: Vec<String>,
    pub(crate) train_rows: usize,
    pub(crate) anchors: Vec<Anchor>,
    /// Whether the head also reads the tone features, as the shipped
    /// sentiment head does (sentiment benchmarks) or not (intent benchmarks).
    pub(crate) tone: bool,
}

/// Appends each text's [`crate::tone`] features to its embedding: the input
/// of the shipped sentiment head, so sentiment benchmarks measure that recipe.
pub(crate) fn with_tone(embeddings: Vec<Vec<f32>>, texts: &[String]) -> Vec<Vec<f32>> {
    embeddings
        .iter()
        .zip(texts)
        .map(|(e, t)| crate::tone::sentiment_input(e, t))
        .collect()
}

/// Embeds both splits, trains one head on `train` minus a stratified
/// validation share (early stopping, temperature) and scores `test`.
pub(crate) fn run_single_label(
    cfg: &BenchConfig,
    encoder: &dyn Encoder,
    task: SingleLabelTask,
    train: &Split,
    test: &Split,
) -> Result<SingleLabelResult, ModelError> {
    let labels = task.labels;
    let start = Instant::now();
    let mut cache = EmbeddingCache::open(&cfg.cache_dir, encoder)?;
    let mut train_x = embed(&mut cache, encoder, &train.texts)?;
    let mut test_x = embed(&mut cache, encoder, &test.texts)?;
    let embed_seconds = start.elapsed().as_secs_f32();
    if task.tone {
        train_x = with_tone(train_x, &train.texts);
        test_x = with_tone(test_x, &test.texts);
    }

    // Stratified validation split.
    let mut rng = ChaCha12Rng::seed_from_u64(cfg.seed ^ 0xB77);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); labels.len()];
    for (i, &y) in train.labels.iter().enumerate() {
        by_class[y].push(i);
    }
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for mut ids in by_class {
        ids.shuffle(&mut rng);
        let n_val = (ids.len() as f32 * cfg.val_fraction).round() as usize;
        va.extend_from_slice(&ids[..n_val]);
        tr.extend_from_slice(&ids[n_val..]);
    }
    let pick = |ids: &[usize]| -> (Vec<Vec<f32>>, Vec<usize>) {
        (
            ids.iter().map(|&i| train_x[i].clone()).collect(),
            ids.iter().map(|&i| train.labels[i]).collect(),
        )
    };
    let (tx, ty) = pick(&tr);
    let (vx, vy) = pick(&va);

    let start = Instant::now();
    let mut fit = fit_head(&tx, &ty, &vx, &vy, labels, &cfg.head, cfg.seed)?;
    let val_logits: Vec<Vec<f32>> = vx.iter().map(|x| fit.head.logits(x)).collect();
    let temperature = fit_temperature(&val_logits, &vy);
    fit.head.set_temperature(temperature);
    let test_logits: Vec<Vec<f32>> = test_x.iter().map(|x| fit.head.logits(x)).collect();
    let train_seconds = start.elapsed().as_secs_f32();
    let correct = test_logits
        .iter()
        .zip(&test.labels)
        .filter(|(z, &y)| argmax(z).map(|(i, _)| i) == Some(y))
        .count();
    let probs = |t: f32| -> Vec<Vec<f32>> { test_logits.iter().map(|z| softmax(z, t)).collect() };
    Ok(SingleLabelResult {
        dataset: task.dataset,
        encoder: encoder.name().to_string(),
        train_rows: task.train_rows,
        train_examples: tx.len(),
        val_examples: vx.len(),
        test_examples: test.labels.len(),
        test_accuracy: pct(correct as f32 / test.labels.len().max(1) as f32),
        val_accuracy: pct(fit.val_accuracy),
        best_epochs: fit.best_epochs.clone(),
        temperature,
        ece_before: expected_calibration_error(&probs(1.0), &test.labels),
        ece_after: expected_calibration_error(&probs(temperature), &test.labels),
        embed_seconds,
        train_seconds,
        head: cfg.head.clone(),
        anchors: task.anchors,
    })
}

/// False-reject caps for the reported CLINC150 trade-off curve.
pub const TRADEOFF_CAPS: [f32; 5] = [0.005, 0.01, 0.02, 0.05, 0.10];

/// Scores one out-of-scope strategy: the headline threshold (chosen on
/// validation under `max_false_reject`), the class-only point when there is
/// an OOS class, and the trade-off curve over [`TRADEOFF_CAPS`].
#[allow(clippy::too_many_arguments)]
fn variant(
    name: &'static str,
    fit: &FitOutcome,
    val_probs: &[Vec<f32>],
    val_gold: &[Option<usize>],
    test_probs: &[Vec<f32>],
    test_gold: &[Option<usize>],
    oos_index: Option<usize>,
    max_false_reject: f32,
) -> OosVariant {
    let point = |cap: f32| {
        let val = choose_oos_threshold(val_probs, val_gold, oos_index, cap);
        let test = evaluate_oos(test_probs, test_gold, oos_index, val.threshold);
        TradeOff {
            max_false_reject: cap,
            val,
            test,
        }
    };
    let headline = point(max_false_reject);
    OosVariant {
        name,
        best_epochs: fit.best_epochs.clone(),
        val: headline.val,
        test: headline.test,
        test_class_only: oos_index.map(|_| evaluate_oos(test_probs, test_gold, oos_index, 0.0)),
        tradeoff: TRADEOFF_CAPS.iter().map(|&cap| point(cap)).collect(),
    }
}

/// CLINC150 with Larson et al.'s protocol, two ways: (1) threshold only on a
/// 150-class head, (2) a 151st `oos` class trained on `oos_train` plus a
/// threshold. Thresholds and temperatures come from `val`/`oos_val` only.
pub fn run_clinc150(
    cfg: &BenchConfig,
    encoder: &dyn Encoder,
) -> Result<Clinc150Result, ModelError> {
    let mut index = BTreeMap::new();
    let train = read_split(cfg, "clinc150", "train.jsonl", &mut index, true)?;
    let val = read_split(cfg, "clinc150", "val.jsonl", &mut index, false)?;
    let test = read_split(cfg, "clinc150", "test.jsonl", &mut index, false)?;
    let in_scope = index.len();
    let mut oos_index = BTreeMap::from([("oos".to_string(), 0usize)]);
    let oos_train = read_split(cfg, "clinc150", "oos_train.jsonl", &mut oos_index, false)?;
    let oos_val = read_split(cfg, "clinc150", "oos_val.jsonl", &mut oos_index, false)?;
    let oos_test = read_split(cfg, "clinc150", "oos_test.jsonl", &mut oos_index, false)?;
    let labels = label_names(&index);

    let start = Instant::now();
    let mut cache = EmbeddingCache::open(&cfg.cache_dir, encoder)?;
    let mut emb = |s: &Split| embed(&mut cache, encoder, &s.texts);
    let (train_x, val_x, test_x) = (emb(&train)?, emb(&val)?, emb(&test)?);
    let (oos_train_x, oos_val_x, oos_test_x) = (emb(&oos_train)?, emb(&oos_val)?, emb(&oos_test)?);
    let embed_seconds = start.elapsed().as_secs_f32();

    let concat =
        |a: &[Vec<f32>], b: &[Vec<f32>]| -> Vec<Vec<f32>> { a.iter().chain(b).cloned().collect() };
    // Gold for OOS evaluation: in-scope class or None.
    let gold = |inside: &[usize], n_oos: usize| -> Vec<Option<usize>> {
        inside
            .iter()
            .map(|&y| Some(y))
            .chain(std::iter::repeat_n(None, n_oos))
            .collect()
    };
    let eval_x = concat(&val_x, &oos_val_x);
    let eval_gold = gold(&val.labels, oos_val_x.len());
    let test_all = concat(&test_x, &oos_test_x);
    let test_gold = gold(&test.labels, oos_test_x.len());

    let start = Instant::now();
    // (1) Threshold only: early stopping and temperature on in-scope val.
    let mut fit = fit_head(
        &train_x,
        &train.labels,
        &val_x,
        &val.labels,
        labels.clone(),
        &cfg.head,
        cfg.seed,
    )?;
    let vlogits: Vec<Vec<f32>> = val_x.iter().map(|x| fit.head.logits(x)).collect();
    fit.head
        .set_temperature(fit_temperature(&vlogits, &val.labels));
    let probs = |xs: &[Vec<f32>], head: &crate::heads::Head| -> Vec<Vec<f32>> {
        xs.iter().map(|x| head.probs(x)).collect()
    };
    let threshold_variant = variant(
        "threshold",
        &fit,
        &probs(&eval_x, &fit.head),
        &eval_gold,
        &probs(&test_all, &fit.head),
        &test_gold,
        None,
        cfg.max_false_reject,
    );

    // (2) OOS class (index 150) trained on oos_train, plus a threshold.
    let mut labels_oos = labels;
    labels_oos.push("oos".into());
    let x2 = concat(&train_x, &oos_train_x);
    let y2: Vec<usize> = train
        .labels
        .iter()
        .copied()
        .chain(std::iter::repeat_n(in_scope, oos_train_x.len()))
        .collect();
    let vy2: Vec<usize> = val
        .labels
        .iter()
        .copied()
        .chain(std::iter::repeat_n(in_scope, oos_val_x.len()))
        .collect();
    let mut fit2 = fit_head(&x2, &y2, &eval_x, &vy2, labels_oos, &cfg.head, cfg.seed)?;
    let vlogits2: Vec<Vec<f32>> = eval_x.iter().map(|x| fit2.head.logits(x)).collect();
    fit2.head.set_temperature(fit_temperature(&vlogits2, &vy2));
    let oos_class_variant = variant(
        "oos_class_plus_threshold",
        &fit2,
        &probs(&eval_x, &fit2.head),
        &eval_gold,
        &probs(&test_all, &fit2.head),
        &test_gold,
        Some(in_scope),
        cfg.max_false_reject,
    );
    let train_seconds = start.elapsed().as_secs_f32();

    Ok(Clinc150Result {
        encoder: encoder.name().to_string(),
        train_examples: train.labels.len(),
        test_in_scope: test.labels.len(),
        test_oos: oos_test_x.len(),
        threshold_variant,
        oos_class_variant,
        embed_seconds,
        train_seconds,
        head: cfg.head.clone(),
        anchors: CLINC150_ANCHORS.to_vec(),
    })
}

#[cfg(test)]
mod tests;
