//! Fitting a head on cached embeddings with candle: one MLP per ensemble
//! member from its own seed, early stopping on validation, then the
//! temperature and the held-out figures every shipped head reports.
//!
//! Everything random (initialisation, shuffling, dropout) draws from RNGs
//! derived from the seed — never candle's own CPU RNG, which cannot be
//! seeded — so the same seed and data give the same heads.

use std::collections::BTreeMap;
use std::fmt;

use candle_core::{Device, Tensor, Var, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};

use super::data::Example;
use super::report::{lang_accuracy, HeadSummary, LangAccuracy};
use crate::calibrate::{
    argmax, expected_calibration_error, fit_temperature, mean_nll, precision_recall, softmax,
};
use crate::heads::{Dense, Head, Member};
use crate::ModelError;

/// Hyper-parameters of one head. Defaults are the shipped heads (a few
/// thousand examples; measured on a 384-d embedding, where hidden sizes
/// 256/512/1024 and 1 vs 5 members were within noise of each other on our
/// validation split, ±1.3 points on ~500 examples), so the cheapest robust
/// choice won — 256 units × 5 members. On the shipped 768-d input (two
/// feature layers) all three heads train in about two minutes.
/// Benchmarks with 10k+ examples use 1024 units and dropout 0.5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadConfig {
    /// Hidden layer sizes; empty means a linear (logistic-regression) head.
    pub hidden: Vec<usize>,
    /// Dropout after each hidden layer while training.
    pub dropout: f32,
    /// AdamW step size.
    pub learning_rate: f64,
    /// Decoupled AdamW weight decay.
    pub weight_decay: f64,
    /// Examples per optimiser step.
    pub batch_size: usize,
    /// Upper bound on epochs per member; early stopping usually ends sooner.
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping.
    pub patience: usize,
    /// Label smoothing ε in the loss; a little improves generalisation on
    /// small hand-written sets (calibration is fixed afterwards anyway).
    pub label_smoothing: f32,
    /// Weight classes by `sqrt(n / (classes · n_c))` so rare intents are not
    /// drowned by large public classes.
    pub class_weighting: bool,
    /// MLPs trained from consecutive seeds and averaged (see [`Head`]).
    pub members: usize,
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig {
            hidden: vec![256],
            dropout: 0.3,
            learning_rate: 1e-3,
            weight_decay: 1e-2,
            batch_size: 64,
            max_epochs: 200,
            patience: 20,
            label_smoothing: 0.1,
            class_weighting: true,
            members: 5,
        }
    }
}

/// A trained head and how training went.
#[derive(Debug, Clone)]
pub struct FitOutcome {
    /// The head (every member at its best validation epoch), temperature 1.
    pub head: Head,
    /// Per member: 1-based epoch whose weights were kept.
    pub best_epochs: Vec<usize>,
    /// Per member: epochs trained before early stopping.
    pub epochs_run: Vec<usize>,
    /// Validation accuracy of the averaged members.
    pub val_accuracy: f32,
    /// Validation NLL of the averaged members at temperature 1.
    pub val_loss: f32,
}

/// Maps a candle error to a training error naming what was being done.
fn train_err(context: &str) -> impl Fn(candle_core::Error) -> ModelError + '_ {
    move |e| ModelError::Training(format!("{context}: {e}"))
}

/// Per-dimension mean and 1/std over the training embeddings. E5 vectors
/// are anisotropic (cosines cluster in 0.7–1.0); centring and scaling makes
/// the few informative directions visible to a small head.
fn standardiser(xs: &[Vec<f32>], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let n = xs.len() as f64;
    let mut mean = vec![0f64; dim];
    for x in xs {
        for (m, v) in mean.iter_mut().zip(x) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; dim];
    for x in xs {
        for ((s, v), m) in var.iter_mut().zip(x).zip(&mean) {
            *s += (*v as f64 - m).powi(2);
        }
    }
    let std: Vec<f64> = var.iter().map(|s| (s / n).sqrt()).collect();
    // Floor at a tenth of the typical scale: a dimension (nearly) constant in
    // training must not turn a small deviation at inference into a huge input.
    let rms = (std.iter().map(|s| s * s).sum::<f64>() / dim as f64).sqrt();
    let floor = (0.1 * rms).max(1e-12);
    let inv_std = std.iter().map(|s| (1.0 / s.max(floor)) as f32).collect();
    (mean.iter().map(|m| *m as f32).collect(), inv_std)
}

/// The standardised inputs as one `[rows, dim]` tensor.
fn matrix(
    xs: &[Vec<f32>],
    mean: &[f32],
    inv_std: &[f32],
    dev: &Device,
) -> candle_core::Result<Tensor> {
    let dim = mean.len();
    let mut flat = Vec::with_capacity(xs.len() * dim);
    for x in xs {
        flat.extend(
            x.iter()
                .zip(mean.iter().zip(inv_std))
                .map(|(v, (m, s))| (v - m) * s),
        );
    }
    Tensor::from_vec(flat, (xs.len(), dim), dev)
}

/// PyTorch's default `Linear` init, U(-1/√in, 1/√in), drawn from our RNG.
fn init_layer(
    in_dim: usize,
    out_dim: usize,
    rng: &mut ChaCha12Rng,
    dev: &Device,
) -> candle_core::Result<(Var, Var)> {
    let bound = 1.0 / (in_dim as f32).sqrt();
    let mut uniform =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
    let w = Var::from_tensor(&Tensor::from_vec(
        uniform(in_dim * out_dim),
        (out_dim, in_dim),
        dev,
    )?)?;
    let b = Var::from_tensor(&Tensor::from_vec(uniform(out_dim), out_dim, dev)?)?;
    Ok((w, b))
}

/// Forward pass; `dropout` is `Some((p, rng))` while training.
fn forward(
    layers: &[(Var, Var)],
    x: &Tensor,
    mut dropout: Option<(f32, &mut ChaCha12Rng)>,
) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    let last = layers.len() - 1;
    for (i, (w, b)) in layers.iter().enumerate() {
        h = h
            .matmul(&w.as_tensor().t()?)?
            .broadcast_add(b.as_tensor())?;
        if i < last {
            h = h.relu()?;
            if let Some((p, rng)) = dropout.as_mut() {
                if *p > 0.0 {
                    let (rows, cols) = h.dims2()?;
                    let keep = 1.0 / (1.0 - *p);
                    let mask: Vec<f32> = (0..rows * cols)
                        .map(|_| if rng.random::<f32>() < *p { 0.0 } else { keep })
                        .collect();
                    h = h.mul(&Tensor::from_vec(mask, (rows, cols), h.device())?)?;
                }
            }
        }
    }
    Ok(h)
}

/// Class-weighted cross-entropy with label smoothing, averaged by weight.
fn loss(
    logits: &Tensor,
    y: &Tensor,
    class_w: &Tensor,
    smoothing: f32,
) -> candle_core::Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = logp.gather(&y.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    let per = if smoothing > 0.0 {
        let uniform = logp.mean(D::Minus1)?.neg()?;
        ((nll * (1.0 - smoothing as f64))? + (uniform * smoothing as f64)?)?
    } else {
        nll
    };
    let w = class_w.index_select(y, 0)?;
    per.mul(&w)?.sum_all()?.div(&w.sum_all()?)
}

/// The layers' current weights as a served (8-bit) member.
fn snapshot(layers: &[(Var, Var)]) -> Result<Member, ModelError> {
    let err = train_err("weight snapshot");
    layers
        .iter()
        .map(|(w, b)| {
            let (out_dim, in_dim) = w.as_tensor().dims2().map_err(&err)?;
            let weight = w
                .as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(&err)?;
            let bias = b.as_tensor().to_vec1::<f32>().map_err(&err)?;
            Dense::new(weight, bias, in_dim, out_dim)
        })
        .collect()
}

/// Training tensors shared by all ensemble members.
struct Prepared {
    xs: Tensor,
    ys: Tensor,
    vx: Tensor,
    class_w: Tensor,
    n: usize,
    dim: usize,
    n_classes: usize,
}

/// Trains one head with AdamW on `train`: `cfg.members` MLPs from seeds
/// `seed, seed + 1, …`, each keeping the epoch with the best validation
/// accuracy (lower validation loss breaks ties) and stopping after
/// `patience` epochs without improvement. Deterministic for a given seed.
pub fn fit_head(
    train_x: &[Vec<f32>],
    train_y: &[usize],
    val_x: &[Vec<f32>],
    val_y: &[usize],
    labels: Vec<String>,
    cfg: &HeadConfig,
    seed: u64,
) -> Result<FitOutcome, ModelError> {
    let n_classes = labels.len();
    if train_x.is_empty() || val_x.is_empty() {
        return Err(ModelError::Training(format!(
            "need training and validation examples (got {} and {})",
            train_x.len(),
            val_x.len()
        )));
    }
    if train_x.len() != train_y.len() || val_x.len() != val_y.len() {
        return Err(ModelError::Training(
            "examples and labels differ in length".into(),
        ));
    }
    if n_classes < 2 || train_y.iter().chain(val_y).any(|&y| y >= n_classes) {
        return Err(ModelError::Training(format!(
            "labels must index {n_classes} (≥ 2) classes"
        )));
    }
    if cfg.batch_size == 0 || cfg.members == 0 || !(0.0..1.0).contains(&cfg.dropout) {
        return Err(ModelError::Training(
            "batch size and members must be > 0 and dropout in [0, 1)".into(),
        ));
    }
    let dim = train_x[0].len();
    if train_x.iter().chain(val_x).any(|x| x.len() != dim) {
        return Err(ModelError::Training(
            "embeddings differ in dimension".into(),
        ));
    }

    let dev = Device::Cpu;
    let err = train_err("head training");
    let (mean, inv_std) = standardiser(train_x, dim);
    let mut counts = vec![0usize; n_classes];
    for &y in train_y {
        counts[y] += 1;
    }
    let class_w: Vec<f32> = counts
        .iter()
        .map(|&c| match (cfg.class_weighting, c) {
            (false, _) => 1.0,
            (true, 0) => 0.0,
            (true, c) => (train_y.len() as f32 / (n_classes as f32 * c as f32)).sqrt(),
        })
        .collect();
    let prepared = Prepared {
        xs: matrix(train_x, &mean, &inv_std, &dev).map_err(&err)?,
        ys: Tensor::from_vec(
            train_y.iter().map(|&y| y as u32).collect::<Vec<_>>(),
            train_y.len(),
            &dev,
        )
        .map_err(&err)?,
        vx: matrix(val_x, &mean, &inv_std, &dev).map_err(&err)?,
        class_w: Tensor::from_vec(class_w, n_classes, &dev).map_err(&err)?,
        n: train_x.len(),
        dim,
        n_classes,
    };
    let trained = (0..cfg.members)
        .map(|m| fit_member(&prepared, val_y, cfg, seed.wrapping_add(m as u64)))
        .collect::<Result<Vec<_>, ModelError>>()?;
    let mut members = Vec::with_capacity(cfg.members);
    let mut best_epochs = Vec::with_capacity(cfg.members);
    let mut epochs_run = Vec::with_capacity(cfg.members);
    for (layers, best, ran) in trained {
        members.push(layers);
        best_epochs.push(best);
        epochs_run.push(ran);
    }
    let head = Head::new(labels, mean, inv_std, members)?;
    let vlogits: Vec<Vec<f32>> = val_x.iter().map(|x| head.logits(x)).collect();
    Ok(FitOutcome {
        val_accuracy: accuracy(&vlogits, val_y),
        val_loss: mean_nll(&vlogits, val_y, 1.0) as f32,
        head,
        best_epochs,
        epochs_run,
    })
}

/// Trains one MLP; returns its best-epoch layers, that epoch and the
/// number of epochs run.
fn fit_member(
    p: &Prepared,
    val_y: &[usize],
    cfg: &HeadConfig,
    seed: u64,
) -> Result<(Member, usize, usize), ModelError> {
    let dev = Device::Cpu;
    let err = train_err("head training");
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    let mut sizes = vec![p.dim];
    sizes.extend(&cfg.hidden);
    sizes.push(p.n_classes);
    let layers: Vec<(Var, Var)> = sizes
        .windows(2)
        .map(|w| init_layer(w[0], w[1], &mut rng, &dev))
        .collect::<candle_core::Result<_>>()
        .map_err(&err)?;
    let vars: Vec<Var> = layers
        .iter()
        .flat_map(|(w, b)| [w.clone(), b.clone()])
        .collect();
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: cfg.learning_rate,
            weight_decay: cfg.weight_decay,
            ..ParamsAdamW::default()
        },
    )
    .map_err(&err)?;

    let mut order: Vec<u32> = (0..p.n as u32).collect();
    let mut best = (snapshot(&layers)?, 0usize, -1.0f32, f64::INFINITY);
    let mut since_best = 0;
    let mut epochs_run = 0;
    for epoch in 1..=cfg.max_epochs {
        epochs_run = epoch;
        order.shuffle(&mut rng);
        for chunk in order.chunks(cfg.batch_size) {
            let idx = Tensor::from_slice(chunk, chunk.len(), &dev).map_err(&err)?;
            let xb = p.xs.index_select(&idx, 0).map_err(&err)?;
            let yb = p.ys.index_select(&idx, 0).map_err(&err)?;
            let logits = forward(&layers, &xb, Some((cfg.dropout, &mut rng))).map_err(&err)?;
            let l = loss(&logits, &yb, &p.class_w, cfg.label_smoothing).map_err(&err)?;
            opt.backward_step(&l).map_err(&err)?;
        }
        let vlogits: Vec<Vec<f32>> = forward(&layers, &p.vx, None)
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(&err)?;
        let vloss = mean_nll(&vlogits, val_y, 1.0);
        if !vloss.is_finite() {
            return Err(ModelError::Training(format!(
                "validation loss diverged at epoch {epoch}"
            )));
        }
        let vacc = accuracy(&vlogits, val_y);
        if vacc > best.2 || (vacc == best.2 && vloss < best.3) {
            best = (snapshot(&layers)?, epoch, vacc, vloss);
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= cfg.patience {
                break;
            }
        }
    }
    Ok((best.0, best.1, epochs_run))
}

/// Share of rows whose largest logit is the gold class.
fn accuracy(logits: &[Vec<f32>], y: &[usize]) -> f32 {
    let ok = logits
        .iter()
        .zip(y)
        .filter(|(z, &y)| argmax(z).map(|(i, _)| i) == Some(y))
        .count();
    ok as f32 / y.len().max(1) as f32
}
/// The names of a vocabulary's values, in order: a head's labels.
pub(crate) fn label_names<L: fmt::Display>(labels: &[L]) -> Vec<String> {
    labels.iter().map(ToString::to_string).collect()
}

/// Each example's position among `labels`.
fn indices(examples: &[Example], labels: &[String]) -> Result<Vec<usize>, ModelError> {
    examples
        .iter()
        .map(|e| {
            labels
                .iter()
                .position(|l| *l == e.label)
                .ok_or_else(|| ModelError::Training(format!("label {} not in head", e.label)))
        })
        .collect()
}

/// Gold class indices of the training, validation and held-out examples.
pub(crate) fn gold_indices(
    labels: &[String],
    [train, val, heldout]: [&[Example]; 3],
) -> Result<[Vec<usize>; 3], ModelError> {
    Ok([
        indices(train, labels)?,
        indices(val, labels)?,
        indices(heldout, labels)?,
    ])
}

/// Every head's examples, three splits each (training, validation,
/// held-out) one head after another, and the seed every head is fitted
/// with.
pub(crate) struct HeadFitting<'a> {
    /// The splits, in the order of `prepare::HeadSets::all`.
    pub(crate) sets: [&'a [Example]; 9],
    /// Seed of initialisation, shuffling and dropout.
    pub(crate) seed: u64,
}

/// A head fitted on the training split, its temperature fitted on
/// validation, and the calibrated probabilities the thresholds (validation)
/// and the report (held-out) are computed from.
pub(crate) struct Calibrated<'a> {
    /// The head at its fitted temperature.
    pub(crate) head: Head,
    /// Training, calibration and example counts, for the report.
    pub(crate) summary: HeadSummary,
    /// Calibrated validation probabilities.
    pub(crate) val_probs: Vec<Vec<f32>>,
    /// Validation gold classes.
    pub(crate) val_gold: Vec<usize>,
    /// Calibrated held-out probabilities.
    pub(crate) heldout_probs: Vec<Vec<f32>>,
    /// Held-out gold classes.
    pub(crate) heldout_gold: Vec<usize>,
    heldout: &'a [Example],
}

impl<'a> HeadFitting<'a> {
    /// What every shipped head goes through: fit on training (early
    /// stopping on validation), fit the temperature on validation, and
    /// score the held-out split at temperature 1 and at the fitted one.
    /// The head's splits are `sets[first..first + 3]` and `inputs` what it
    /// reads for each of their examples; `labels` are its classes in logit
    /// order.
    pub(crate) fn fit<L: fmt::Display>(
        &self,
        labels: &[L],
        first: usize,
        inputs: &[Vec<Vec<f32>>],
        cfg: &HeadConfig,
    ) -> Result<Calibrated<'a>, ModelError> {
        let names = label_names(labels);
        let [train, val, heldout] = [0, 1, 2].map(|i| self.sets[first + i]);
        let [train_y, val_gold, heldout_gold] = gold_indices(&names, [train, val, heldout])?;
        let [train_x, val_x, heldout_x] = [0, 1, 2].map(|i| &inputs[i]);
        let mut fit = fit_head(train_x, &train_y, val_x, &val_gold, names, cfg, self.seed)?;
        let val_logits: Vec<Vec<f32>> = val_x.iter().map(|x| fit.head.logits(x)).collect();
        let temperature = fit_temperature(&val_logits, &val_gold);
        fit.head.set_temperature(temperature);
        let heldout_logits: Vec<Vec<f32>> = heldout_x.iter().map(|x| fit.head.logits(x)).collect();
        let at = |logits: &[Vec<f32>], t: f32| -> Vec<Vec<f32>> {
            logits.iter().map(|z| softmax(z, t)).collect()
        };
        let ece_before = expected_calibration_error(&at(&heldout_logits, 1.0), &heldout_gold);
        let heldout_probs = at(&heldout_logits, temperature);
        let ece_after = expected_calibration_error(&heldout_probs, &heldout_gold);
        let summary = HeadSummary {
            train_examples: train.len(),
            val_examples: val.len(),
            heldout_examples: heldout.len(),
            members: fit.head.members(),
            best_epochs: fit.best_epochs,
            epochs_run: fit.epochs_run,
            val_accuracy: fit.val_accuracy,
            temperature: fit.head.temperature(),
            ece_before,
            ece_after,
        };
        Ok(Calibrated {
            head: fit.head,
            summary,
            val_probs: at(&val_logits, temperature),
            val_gold,
            heldout_probs,
            heldout_gold,
            heldout,
        })
    }
}

impl Calibrated<'_> {
    /// Held-out accuracy per language of `decide` (the service's decision
    /// from calibrated probabilities) next to plain argmax.
    pub(crate) fn accuracy(
        &self,
        decide: impl Fn(&[f32]) -> usize,
    ) -> BTreeMap<String, LangAccuracy> {
        lang_accuracy(
            self.heldout,
            &self.heldout_gold,
            &self.heldout_probs,
            decide,
        )
    }

    /// Validation probabilities of `class` and whether each example is one:
    /// what a cut on that class is chosen from.
    pub(crate) fn val_scores(&self, class: usize) -> (Vec<f32>, Vec<bool>) {
        (
            column(&self.val_probs, class),
            is_class(&self.val_gold, class),
        )
    }

    /// Held-out precision and recall of "P(class) ≥ threshold".
    pub(crate) fn heldout_precision_recall(&self, class: usize, threshold: f32) -> (f32, f32) {
        precision_recall(
            &column(&self.heldout_probs, class),
            &is_class(&self.heldout_gold, class),
            threshold,
        )
    }

    /// Held-out examples of `class`.
    pub(crate) fn heldout_support(&self, class: usize) -> usize {
        self.heldout_gold.iter().filter(|&&y| y == class).count()
    }
}

/// One class's probability from each row of `probs`.
fn column(probs: &[Vec<f32>], class: usize) -> Vec<f32> {
    probs.iter().map(|p| p[class]).collect()
}

/// Whether each gold label is `class`.
fn is_class(gold: &[usize], class: usize) -> Vec<bool> {
    gold.iter().map(|&y| y == class).collect()
}

#[cfg(test)]
mod tests;
