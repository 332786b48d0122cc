//! Classification heads on top of frozen sentence embeddings, and the
//! [`Classifier`] the service loads at start-up.
//!
//! A head is a small MLP (or a linear layer), or the average of a few:
//! standardise the embedding per dimension, dense layers with ReLU, logits,
//! softmax at a fitted temperature. Inference is plain f32 arithmetic — no candle, no allocation
//! beyond the output — so one message costs tens of microseconds next to the
//! milliseconds of the encoder. Weights live in `heads.safetensors`; labels,
//! temperature, thresholds and provenance in `classifier.json`, both small
//! enough to commit (default location `models/heads/`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::adapter::AdapterWeights;
use crate::calibrate::{argmax, is_out_of_scope, softmax};
use crate::data::{SourceFile, OUT_OF_SCOPE, STAFF_ACTION};
use crate::tone::{sentiment_input, TONE_FEATURES};
use crate::{Encoder, ModelError};

/// Weights file inside a classifier directory.
pub const WEIGHTS_FILE: &str = "heads.safetensors";
/// Metadata file inside a classifier directory.
pub const META_FILE: &str = "classifier.json";
/// Bumped whenever the on-disk layout changes, so an old service refuses
/// new heads (and vice versa) with a clear message instead of misreading them.
/// Version 3 fed the sentiment head the embedding plus [`crate::tone`]
/// features; version 4 may also carry the encoder adapter the heads were
/// trained behind (`adapter_blocks`), so a build that cannot install it
/// refuses the file instead of serving the heads on the wrong embedding;
/// version 5 may name the encoder blocks the classification view is pooled
/// after (`provenance.encoder.feature_layers`); version 6 stores dense
/// weights as 8-bit codes with per-row scales instead of f16.
pub const FORMAT_VERSION: u32 = 6;

/// Oldest format this build reads. Older files hold f16 weights: rounding
/// them to 8 bits would serve weights their thresholds were not fitted on,
/// so they are refused with a request to retrain (a few minutes).
const OLDEST_READABLE_FORMAT: u32 = 6;

/// Sentiment classes. `Angry` drives the NEGATIVE_SENTIMENT handoff; plain
/// `Negative` (disappointed but calm) does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentimentLabel {
    /// Happy, thankful, praising.
    Positive,
    /// Plain questions and requests.
    Neutral,
    /// Disappointed or unhappy but calm: answered normally.
    Negative,
    /// Insults, threats, shouting, "third time I ask": handed off.
    Angry,
}

impl SentimentLabel {
    /// All classes in a fixed order (the order of [`SentimentScores::probs`]).
    pub const ALL: [SentimentLabel; 4] = [
        SentimentLabel::Positive,
        SentimentLabel::Neutral,
        SentimentLabel::Negative,
        SentimentLabel::Angry,
    ];

    /// The label as written in data files and metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            SentimentLabel::Positive => "positive",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Negative => "negative",
            SentimentLabel::Angry => "angry",
        }
    }
}

impl fmt::Display for SentimentLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fully connected layer, weights row-major `[out][in]` (the candle /
/// PyTorch `Linear` layout, so training output is stored as is).
///
/// Weights are rounded when the layer is built to 8-bit codes with one f32
/// scale per output row (`w = code · scale`, |code| ≤ 127, the scale set by
/// the row's largest weight) and stored that way, which keeps the committed
/// heads file at a quarter of f32. Because the rounding happens before
/// validation and calibration, the thresholds and temperature are fitted on
/// exactly the weights that are served, and a save/load round trip is exact.
/// Biases stay f32 (they are a rounding error in size).
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// `code · scale`, kept expanded so the forward pass is a plain dot product.
    weight: Vec<f32>,
    /// One per output row.
    scales: Vec<f32>,
    bias: Vec<f32>,
    in_dim: usize,
    out_dim: usize,
}

/// Largest stored code magnitude: symmetric, so zero stays exactly zero.
const CODE_MAX: f32 = 127.0;

impl Dense {
    /// Builds a layer from trained weights, rounding them to the stored
    /// 8-bit form; refuses mismatched shapes and non-finite weights.
    pub fn new(
        weight: Vec<f32>,
        bias: Vec<f32>,
        in_dim: usize,
        out_dim: usize,
    ) -> Result<Dense, ModelError> {
        check_shape(weight.len(), bias.len(), in_dim, out_dim)?;
        if weight.iter().any(|w| !w.is_finite()) {
            return Err(ModelError::Training(format!(
                "dense layer {in_dim}->{out_dim}: non-finite weight"
            )));
        }
        let scales: Vec<f32> = weight
            .chunks_exact(in_dim)
            .map(|row| row.iter().fold(0f32, |m, w| m.max(w.abs())) / CODE_MAX)
            .collect();
        let codes = quantise_rows(&weight, &scales, in_dim);
        Dense::from_codes(&codes, scales, bias, in_dim, out_dim)
    }

    /// Rebuilds a layer from stored codes and row scales.
    fn from_codes(
        codes: &[i8],
        scales: Vec<f32>,
        bias: Vec<f32>,
        in_dim: usize,
        out_dim: usize,
    ) -> Result<Dense, ModelError> {
        check_shape(codes.len(), bias.len(), in_dim, out_dim)?;
        if scales.len() != out_dim || scales.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(ModelError::Training(format!(
                "dense layer {in_dim}->{out_dim}: need {out_dim} finite, non-negative row scales"
            )));
        }
        let weight = codes
            .chunks_exact(in_dim)
            .zip(&scales)
            .flat_map(|(row, &scale)| row.iter().map(move |&c| f32::from(c) * scale))
            .collect();
        Ok(Dense {
            weight,
            scales,
            bias,
            in_dim,
            out_dim,
        })
    }

    /// The stored codes (exact: every weight is `code · scale`).
    fn codes(&self) -> Vec<i8> {
        quantise_rows(&self.weight, &self.scales, self.in_dim)
    }

    fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.weight
            .chunks_exact(self.in_dim)
            .zip(&self.bias)
            .map(|(row, b)| dot(row, x) + b)
            .collect()
    }
}

/// Dot product with 8 independent accumulators so the compiler vectorises it
/// (a plain fold is kept sequential by IEEE ordering rules).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn check_shape(
    weights: usize,
    biases: usize,
    in_dim: usize,
    out_dim: usize,
) -> Result<(), ModelError> {
    if in_dim == 0 || out_dim == 0 || weights != in_dim * out_dim || biases != out_dim {
        return Err(ModelError::Training(format!(
            "dense layer {in_dim}->{out_dim}: weight has {weights} values, bias {biases}"
        )));
    }
    Ok(())
}

/// Nearest codes for row-major `weight`, one scale per row.
fn quantise_rows(weight: &[f32], scales: &[f32], in_dim: usize) -> Vec<i8> {
    weight
        .chunks_exact(in_dim)
        .zip(scales)
        .flat_map(|(row, &scale)| row.iter().map(move |&w| quantise(w, scale)))
        .collect()
}

/// Nearest code for `w` in a row scaled by `scale` (0 for an all-zero row).
fn quantise(w: f32, scale: f32) -> i8 {
    if scale > 0.0 {
        (w / scale).round().clamp(-CODE_MAX, CODE_MAX) as i8
    } else {
        0
    }
}

/// Codes travel as `u8` (safetensors in candle has no `i8`), offset by 128.
fn code_to_byte(code: i8) -> u8 {
    (i16::from(code) + 128) as u8
}

fn byte_to_code(byte: u8) -> i8 {
    (i16::from(byte) - 128) as i8
}

/// One MLP: dense layers with ReLU between them.
pub type Member = Vec<Dense>;

/// One classification head: per-dimension standardisation, then one or more
/// MLPs ("members", trained from different seeds) whose logits are averaged,
/// then softmax at `temperature`. Averaging a few members removes most of the
/// seed-to-seed variance of a small head for a few extra microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    labels: Vec<String>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    members: Vec<Member>,
    temperature: f32,
}

impl Head {
    /// Builds a head and checks that every member chains from the embedding
    /// dimension to one logit per label with the same hidden sizes.
    /// Temperature starts at 1.
    pub fn new(
        labels: Vec<String>,
        mean: Vec<f32>,
        inv_std: Vec<f32>,
        members: Vec<Member>,
    ) -> Result<Head, ModelError> {
        let dim = mean.len();
        if dim == 0 || inv_std.len() != dim {
            return Err(ModelError::Training(format!(
                "standardisation has {} means and {} scales",
                dim,
                inv_std.len()
            )));
        }
        if members.is_empty() {
            return Err(ModelError::Training("head has no members".into()));
        }
        for layers in &members {
            let mut expected_in = dim;
            for layer in layers {
                if layer.in_dim != expected_in {
                    return Err(ModelError::Training(format!(
                        "layer expects {} inputs, previous output is {expected_in}",
                        layer.in_dim
                    )));
                }
                expected_in = layer.out_dim;
            }
            if layers.is_empty() || expected_in != labels.len() {
                return Err(ModelError::Training(format!(
                    "head outputs {expected_in} logits for {} labels",
                    labels.len()
                )));
            }
            if hidden_sizes(layers) != hidden_sizes(&members[0]) {
                return Err(ModelError::Training(
                    "ensemble members differ in hidden sizes".into(),
                ));
            }
        }
        Ok(Head {
            labels,
            mean,
            inv_std,
            members,
            temperature: 1.0,
        })
    }

    /// Class names, in logit order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Embedding dimension the head expects.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Sizes of the hidden layers (empty for a linear head).
    pub fn hidden(&self) -> Vec<usize> {
        hidden_sizes(&self.members[0])
    }

    /// Number of ensemble members.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Current softmax temperature (1 until calibrated).
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// Sets the temperature fitted by [`crate::calibrate::fit_temperature`].
    pub fn set_temperature(&mut self, temperature: f32) {
        self.temperature = temperature;
    }

    /// Raw logits (members averaged, before temperature). Panics if
    /// `embedding.len() != dim()`: that is a wiring bug, checked once at
    /// start-up by [`Classifier::check_encoder`].
    pub fn logits(&self, embedding: &[f32]) -> Vec<f32> {
        assert_eq!(
            embedding.len(),
            self.dim(),
            "embedding has {} values, head expects {}",
            embedding.len(),
            self.dim()
        );
        let x: Vec<f32> = embedding
            .iter()
            .zip(self.mean.iter().zip(&self.inv_std))
            .map(|(v, (m, s))| (v - m) * s)
            .collect();
        let mut sum = vec![0f32; self.labels.len()];
        for layers in &self.members {
            let mut h = x.clone();
            let last = layers.len() - 1;
            for (i, layer) in layers.iter().enumerate() {
                h = layer.forward(&h);
                if i < last {
                    for v in &mut h {
                        *v = v.max(0.0);
                    }
                }
            }
            for (s, v) in sum.iter_mut().zip(h) {
                *s += v;
            }
        }
        let n = self.members.len() as f32;
        sum.iter_mut().for_each(|s| *s /= n);
        sum
    }

    /// Calibrated probabilities, in label order.
    pub fn probs(&self, embedding: &[f32]) -> Vec<f32> {
        softmax(&self.logits(embedding), self.temperature)
    }

    fn insert_tensors(
        &self,
        prefix: &str,
        out: &mut HashMap<String, Tensor>,
    ) -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let tensor = |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &dev);
        out.insert(format!("{prefix}.mean"), tensor(&self.mean, &[self.dim()])?);
        out.insert(
            format!("{prefix}.inv_std"),
            tensor(&self.inv_std, &[self.dim()])?,
        );
        for (m, layers) in self.members.iter().enumerate() {
            for (i, layer) in layers.iter().enumerate() {
                let bytes: Vec<u8> = layer.codes().into_iter().map(code_to_byte).collect();
                out.insert(
                    format!("{prefix}.m{m}.l{i}.weight"),
                    Tensor::from_vec(bytes, (layer.out_dim, layer.in_dim), &dev)?,
                );
                out.insert(
                    format!("{prefix}.m{m}.l{i}.scale"),
                    tensor(&layer.scales, &[layer.out_dim])?,
                );
                out.insert(
                    format!("{prefix}.m{m}.l{i}.bias"),
                    tensor(&layer.bias, &[layer.out_dim])?,
                );
            }
        }
        Ok(())
    }

    fn from_tensors(
        prefix: &str,
        meta: &HeadMeta,
        tensors: &HashMap<String, Tensor>,
        path: &str,
    ) -> Result<Head, ModelError> {
        let bad = |reason: String| ModelError::Load {
            path: path.to_string(),
            reason,
        };
        let vec1 = |name: String| -> Result<Vec<f32>, ModelError> {
            let t = tensors
                .get(&name)
                .ok_or_else(|| bad(format!("missing tensor {name}")))?;
            t.flatten_all()
                .and_then(|t| t.to_dtype(DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| bad(format!("tensor {name}: {e}")))
        };
        let dims2 = |name: &str| -> Result<(usize, usize), ModelError> {
            let t = tensors
                .get(name)
                .ok_or_else(|| bad(format!("missing tensor {name}")))?;
            t.dims2().map_err(|e| bad(format!("tensor {name}: {e}")))
        };
        let codes = |name: &str| -> Result<Vec<i8>, ModelError> {
            let t = tensors
                .get(name)
                .ok_or_else(|| bad(format!("missing tensor {name}")))?;
            if t.dtype() != DType::U8 {
                return Err(bad(format!(
                    "tensor {name} is {:?}, expected 8-bit codes (U8)",
                    t.dtype()
                )));
            }
            t.flatten_all()
                .and_then(|t| t.to_vec1::<u8>())
                .map(|bytes| bytes.into_iter().map(byte_to_code).collect())
                .map_err(|e| bad(format!("tensor {name}: {e}")))
        };
        let mean = vec1(format!("{prefix}.mean"))?;
        let inv_std = vec1(format!("{prefix}.inv_std"))?;
        let mut members = Vec::new();
        for m in 0..meta.members {
            let mut layers = Vec::new();
            for i in 0..=meta.hidden.len() {
                let name = format!("{prefix}.m{m}.l{i}.weight");
                let (out_dim, in_dim) = dims2(&name)?;
                let layer = Dense::from_codes(
                    &codes(&name)?,
                    vec1(format!("{prefix}.m{m}.l{i}.scale"))?,
                    vec1(format!("{prefix}.m{m}.l{i}.bias"))?,
                    in_dim,
                    out_dim,
                )
                .map_err(|e| bad(e.to_string()))?;
                layers.push(layer);
            }
            members.push(layers);
        }
        let mut head = Head::new(meta.labels.clone(), mean, inv_std, members)
            .map_err(|e| bad(e.to_string()))?;
        if head.hidden() != meta.hidden {
            return Err(bad(format!(
                "{prefix} hidden sizes {:?} differ from metadata {:?}",
                head.hidden(),
                meta.hidden
            )));
        }
        if !(meta.temperature.is_finite() && meta.temperature > 0.0) {
            return Err(bad(format!(
                "{prefix} temperature {} is not positive",
                meta.temperature
            )));
        }
        head.set_temperature(meta.temperature);
        Ok(head)
    }

    fn meta(&self) -> HeadMeta {
        HeadMeta {
            labels: self.labels.clone(),
            temperature: self.temperature,
            hidden: self.hidden(),
            members: self.members.len(),
        }
    }
}

fn hidden_sizes(layers: &[Dense]) -> Vec<usize> {
    layers[..layers.len().saturating_sub(1)]
        .iter()
        .map(|l| l.out_dim)
        .collect()
}

/// Which encoder a classifier was trained on. Embeddings of another model
/// (or another quantisation) live in a different space, so the service
/// checks this before using the heads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderInfo {
    /// [`Encoder::name`] of the training encoder.
    pub name: String,
    /// [`Encoder::classification_dim`] of the training encoder: the input
    /// size of the heads.
    pub dim: usize,
    /// [`Encoder::feature_layers`] of the training encoder (empty: its one
    /// embedding); the service installs the same before serving.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_layers: Vec<usize>,
    /// SHA-256 of each file in the weights directory at training time.
    pub files: BTreeMap<String, String>,
}

/// Reproducibility record saved with the heads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The encoder whose embeddings the heads expect.
    pub encoder: EncoderInfo,
    /// Seed of data sampling, splits, initialisation and dropout.
    pub seed: u64,
    /// Every data file that went into training/validation, with hashes.
    pub training_data: Vec<SourceFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HeadMeta {
    labels: Vec<String>,
    temperature: f32,
    hidden: Vec<usize>,
    members: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MetaFile {
    format_version: u32,
    intent: HeadMeta,
    sentiment: HeadMeta,
    request: HeadMeta,
    thresholds: Thresholds,
    provenance: Provenance,
    /// Adapted top blocks stored in the weights file (0: none).
    #[serde(default)]
    adapter_blocks: usize,
}

/// Operating points chosen on validation data, saved with the heads so the
/// service decides exactly as the training report measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Calibrated top intent probability below which a message is out of scope.
    pub oos: f32,
    /// Calibrated `p_angry` at or above which sentiment is `Angry`.
    pub angry: f32,
    /// Calibrated P(staff_action) at or above which a message asks staff to act.
    pub staff_action: f32,
}

/// Intent result for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentScores {
    /// Every intent with its calibrated probability, most likely first.
    pub ranked: Vec<(String, f32)>,
    /// True if the top intent is `out_of_scope` or the top probability is
    /// below the validated threshold: the policy should clarify.
    pub out_of_scope: bool,
}

/// Sentiment result for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentScores {
    /// Decided class: `Angry` whenever `p_angry` reaches the validated angry
    /// threshold, otherwise the most likely of the other three.
    pub label: SentimentLabel,
    /// Calibrated probability of `Angry`, for policies that want their own cut.
    pub p_angry: f32,
    /// Calibrated probability of each class, in [`SentimentLabel::ALL`] order.
    pub probs: [(SentimentLabel, f32); 4],
}

/// Request result for one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestScores {
    /// Calibrated probability that the shopper asks staff to decide or do
    /// something the bot may not (waive a fee, approve a refund now).
    pub p_staff_action: f32,
    /// `p_staff_action` reached the validated threshold.
    pub staff_action: bool,
}

/// The intent, sentiment and request heads shipped with the service, with
/// their operating points and provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    intent: Head,
    oos_index: usize,
    sentiment: Head,
    /// Position of each [`SentimentLabel::ALL`] class in the sentiment head.
    sentiment_index: [usize; 4],
    request: Head,
    staff_action_index: usize,
    thresholds: Thresholds,
    provenance: Provenance,
    /// Low-rank updates of the encoder's top blocks the heads were trained
    /// behind ([`crate::adapter`]); the service installs them in the encoder.
    adapter: Option<AdapterWeights>,
}

impl Classifier {
    /// Bundles trained heads. The intent head must have an `out_of_scope`
    /// label, the sentiment head exactly the four sentiment labels, the
    /// request head a `staff_action` label, and all the same input dimension
    /// as the encoder in `provenance`.
    pub fn new(
        intent: Head,
        sentiment: Head,
        request: Head,
        thresholds: Thresholds,
        provenance: Provenance,
    ) -> Result<Classifier, ModelError> {
        let oos_index = intent
            .labels()
            .iter()
            .position(|l| l == OUT_OF_SCOPE)
            .ok_or_else(|| {
                ModelError::Training(format!("intent head has no {OUT_OF_SCOPE} label"))
            })?;
        if sentiment.labels().len() != 4 {
            return Err(ModelError::Training(format!(
                "sentiment head has {} labels, expected 4",
                sentiment.labels().len()
            )));
        }
        let mut sentiment_index = [0usize; 4];
        for (slot, label) in sentiment_index.iter_mut().zip(SentimentLabel::ALL) {
            *slot = sentiment
                .labels()
                .iter()
                .position(|l| l == label.as_str())
                .ok_or_else(|| {
                    ModelError::Training(format!("sentiment head has no {label} label"))
                })?;
        }
        let staff_action_index = request
            .labels()
            .iter()
            .position(|l| l == STAFF_ACTION)
            .ok_or_else(|| {
                ModelError::Training(format!("request head has no {STAFF_ACTION} label"))
            })?;
        let dim = provenance.encoder.dim;
        if intent.dim() != dim || request.dim() != dim || sentiment.dim() != dim + TONE_FEATURES {
            return Err(ModelError::Training(format!(
                "heads expect {}, {} and {} inputs; encoder {} has {dim} (the sentiment head takes {TONE_FEATURES} tone features more)",
                intent.dim(),
                sentiment.dim(),
                request.dim(),
                provenance.encoder.name
            )));
        }
        for (name, t) in [
            ("oos", thresholds.oos),
            ("angry", thresholds.angry),
            ("staff_action", thresholds.staff_action),
        ] {
            if !(0.0..=1.0).contains(&t) {
                return Err(ModelError::Training(format!(
                    "{name} threshold {t} outside [0, 1]"
                )));
            }
        }
        Ok(Classifier {
            intent,
            oos_index,
            sentiment,
            sentiment_index,
            request,
            staff_action_index,
            thresholds,
            provenance,
            adapter: None,
        })
    }

    /// The same heads, trained on embeddings from `adapter`-ed top blocks.
    pub fn with_adapter(mut self, adapter: Option<AdapterWeights>) -> Classifier {
        self.adapter = adapter;
        self
    }

    /// The adapter the heads expect installed in the encoder, if any.
    pub fn adapter(&self) -> Option<&AdapterWeights> {
        self.adapter.as_ref()
    }

    /// Loads `dir/heads.safetensors` + `dir/classifier.json`, validating
    /// format version, shapes and labels.
    pub fn load(dir: &Path) -> Result<Classifier, ModelError> {
        let meta_path = dir.join(META_FILE);
        let meta_display = meta_path.display().to_string();
        let text = std::fs::read_to_string(&meta_path).map_err(|e| ModelError::Load {
            path: meta_display.clone(),
            reason: e.to_string(),
        })?;
        let meta: MetaFile = serde_json::from_str(&text).map_err(|e| ModelError::Load {
            path: meta_display.clone(),
            reason: format!("invalid metadata: {e}"),
        })?;
        if !(OLDEST_READABLE_FORMAT..=FORMAT_VERSION).contains(&meta.format_version) {
            return Err(ModelError::Load {
                path: meta_display,
                reason: format!(
                    "format version {} (this build reads {OLDEST_READABLE_FORMAT} to {FORMAT_VERSION}; \
                     retrain the heads with `xiaoer train`)",
                    meta.format_version
                ),
            });
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        let weights_display = weights_path.display().to_string();
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|e| {
            ModelError::Load {
                path: weights_display.clone(),
                reason: e.to_string(),
            }
        })?;
        let intent = Head::from_tensors("intent", &meta.intent, &tensors, &weights_display)?;
        let sentiment =
            Head::from_tensors("sentiment", &meta.sentiment, &tensors, &weights_display)?;
        let request = Head::from_tensors("request", &meta.request, &tensors, &weights_display)?;
        let adapter =
            match meta.adapter_blocks {
                0 => None,
                blocks => Some(AdapterWeights::from_tensors(blocks, &tensors).map_err(
                    |reason| ModelError::Load {
                        path: weights_display.clone(),
                        reason,
                    },
                )?),
            };
        Classifier::new(intent, sentiment, request, meta.thresholds, meta.provenance)
            .map(|c| c.with_adapter(adapter))
            .map_err(|e| ModelError::Load {
                path: meta_display,
                reason: e.to_string(),
            })
    }

    /// Writes both files into `dir` (created if needed), weights first and
    /// metadata last, each to a temporary name then renamed, so a crash never
    /// leaves a half-written file for the service to load.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let write_err = |path: &Path, reason: String| ModelError::Write {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e.to_string()))?;
        let mut tensors = HashMap::new();
        self.intent
            .insert_tensors("intent", &mut tensors)
            .and_then(|()| self.sentiment.insert_tensors("sentiment", &mut tensors))
            .and_then(|()| self.request.insert_tensors("request", &mut tensors))
            .and_then(|()| match &self.adapter {
                Some(a) => a.insert_tensors(&mut tensors),
                None => Ok(()),
            })
            .map_err(|e| write_err(dir, e.to_string()))?;
        // safetensors itself writes a temporary file and renames it.
        let weights = dir.join(WEIGHTS_FILE);
        candle_core::safetensors::save(&tensors, &weights)
            .map_err(|e| write_err(&weights, e.to_string()))?;

        let meta = MetaFile {
            format_version: FORMAT_VERSION,
            intent: self.intent.meta(),
            sentiment: self.sentiment.meta(),
            request: self.request.meta(),
            thresholds: self.thresholds,
            provenance: self.provenance.clone(),
            adapter_blocks: self.adapter.as_ref().map_or(0, AdapterWeights::blocks),
        };
        let json =
            serde_json::to_string_pretty(&meta).map_err(|e| write_err(dir, e.to_string()))?;
        let meta_path = dir.join(META_FILE);
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        std::fs::write(&tmp, json + "\n").map_err(|e| write_err(&tmp, e.to_string()))?;
        std::fs::rename(&tmp, &meta_path).map_err(|e| write_err(&meta_path, e.to_string()))?;
        // That temporary file is private (0600); give the weights the
        // permissions of an ordinary new file, like the metadata, so a
        // service running as another user can read both.
        std::fs::metadata(&meta_path)
            .and_then(|m| std::fs::set_permissions(&weights, m.permissions()))
            .map_err(|e| write_err(&weights, e.to_string()))?;
        Ok(())
    }

    /// Fails unless `encoder` has the name, feature layers and
    /// classification dimension the heads were trained on. Call once at
    /// start-up, after installing [`Classifier::feature_layers`]: afterwards
    /// [`Classifier::intent`] and [`Classifier::sentiment`] can never see a
    /// wrong-sized embedding.
    pub fn check_encoder(&self, encoder: &dyn Encoder) -> Result<(), ModelError> {
        let info = &self.provenance.encoder;
        if encoder.classification_dim() != info.dim
            || encoder.name() != info.name
            || encoder.feature_layers() != info.feature_layers.as_slice()
        {
            return Err(ModelError::Load {
                path: META_FILE.into(),
                reason: format!(
                    "heads were trained on {} (dim {}, feature layers {:?}), service runs {} (dim {}, feature layers {:?})",
                    info.name,
                    info.dim,
                    info.feature_layers,
                    encoder.name(),
                    encoder.classification_dim(),
                    encoder.feature_layers()
                ),
            });
        }
        Ok(())
    }

    /// Encoder blocks the heads' embedding is pooled after (empty: the
    /// encoder's one embedding); install them before serving.
    pub fn feature_layers(&self) -> &[usize] {
        &self.provenance.encoder.feature_layers
    }

    /// Embedding dimension both heads expect.
    pub fn dim(&self) -> usize {
        self.intent.dim()
    }

    /// Intent probabilities for one L2-normalised query embedding
    /// (see [`Head::logits`] for the length requirement).
    pub fn intent(&self, embedding: &[f32]) -> IntentScores {
        let probs = self.intent.probs(embedding);
        let out_of_scope = is_out_of_scope(&probs, Some(self.oos_index), self.thresholds.oos);
        let mut ranked: Vec<(String, f32)> =
            self.intent.labels().iter().cloned().zip(probs).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        IntentScores {
            ranked,
            out_of_scope,
        }
    }

    /// Sentiment for one message: its L2-normalised query embedding and its
    /// text, whose tone cues the embedding blurs (see [`crate::tone`]).
    pub fn sentiment(&self, embedding: &[f32], text: &str) -> SentimentScores {
        let raw = self.sentiment.probs(&sentiment_input(embedding, text));
        let probs = SentimentLabel::ALL.map(|l| (l, raw[self.sentiment_index[l as usize]]));
        let label = decide_sentiment(&probs, self.thresholds.angry);
        SentimentScores {
            label,
            p_angry: probs[SentimentLabel::Angry as usize].1,
            probs,
        }
    }

    /// Whether one L2-normalised query embedding asks staff to act.
    pub fn request(&self, embedding: &[f32]) -> RequestScores {
        let p_staff_action = self.request.probs(embedding)[self.staff_action_index];
        RequestScores {
            p_staff_action,
            staff_action: p_staff_action >= self.thresholds.staff_action,
        }
    }

    /// The validated operating points.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// The intent head (for evaluation tools).
    pub fn intent_head(&self) -> &Head {
        &self.intent
    }

    /// The sentiment head (for evaluation tools).
    pub fn sentiment_head(&self) -> &Head {
        &self.sentiment
    }

    /// The request head (for evaluation tools).
    pub fn request_head(&self) -> &Head {
        &self.request
    }

    /// Encoder, seed and data the classifier was trained with.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }
}

/// The sentiment decision rule shared by the service and the training
/// report: `Angry` if `p_angry >= angry_threshold`, else the most likely of
/// the remaining classes. `probs` is in [`SentimentLabel::ALL`] order.
pub fn decide_sentiment(
    probs: &[(SentimentLabel, f32); 4],
    angry_threshold: f32,
) -> SentimentLabel {
    let p_angry = probs[SentimentLabel::Angry as usize].1;
    if p_angry >= angry_threshold {
        return SentimentLabel::Angry;
    }
    let others: Vec<f32> = probs[..3].iter().map(|p| p.1).collect();
    argmax(&others)
        .map(|(i, _)| SentimentLabel::ALL[i])
        .unwrap_or(SentimentLabel::Neutral)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::INTENTS;
    use crate::test_support::HashEncoder;

    const DIM: usize = 8;

    /// A head whose weights follow a fixed pattern, so tests need no RNG.
    fn pattern_head(
        labels: &[&str],
        input: usize,
        hidden: &[usize],
        members: usize,
        salt: f32,
    ) -> Head {
        let members = (0..members)
            .map(|m| {
                let salt = salt + m as f32;
                let mut layers = Vec::new();
                let mut in_dim = input;
                for &out_dim in hidden.iter().chain(std::iter::once(&labels.len())) {
                    let weight = (0..in_dim * out_dim)
                        .map(|i| ((i as f32 * 0.37 + salt).sin()) * 0.8)
                        .collect();
                    let bias = (0..out_dim)
                        .map(|i| (i as f32 * 0.11 + salt).cos() * 0.1)
                        .collect();
                    layers.push(Dense::new(weight, bias, in_dim, out_dim).expect("shape"));
                    in_dim = out_dim;
                }
                layers
            })
            .collect();
        let mean = (0..input).map(|i| i as f32 * 0.01).collect();
        let inv_std = vec![2.0; input];
        Head::new(
            labels.iter().map(|s| s.to_string()).collect(),
            mean,
            inv_std,
            members,
        )
        .expect("head")
    }

    fn provenance() -> Provenance {
        Provenance {
            encoder: EncoderInfo {
                name: "hash-test".into(),
                dim: DIM,
                feature_layers: Vec::new(),
                files: BTreeMap::from([("w.bin".to_string(), "ab".repeat(32))]),
            },
            seed: 7,
            training_data: vec![SourceFile {
                path: "intents/train.zh.jsonl".into(),
                sha256: "cd".repeat(32),
                rows_used: 3,
            }],
        }
    }

    fn classifier(oos: f32, angry: f32) -> Classifier {
        with_thresholds(Thresholds {
            oos,
            angry,
            staff_action: 0.5,
        })
    }

    fn with_thresholds(thresholds: Thresholds) -> Classifier {
        let mut intent = pattern_head(&INTENTS, DIM, &[16], 3, 0.3);
        intent.set_temperature(1.7);
        let sentiment_labels = ["angry", "neutral", "positive", "negative"];
        let mut sentiment = pattern_head(&sentiment_labels, DIM + TONE_FEATURES, &[], 1, 0.9);
        sentiment.set_temperature(0.8);
        let request = pattern_head(&["self_service", "staff_action"], DIM, &[4], 2, 0.6);
        Classifier::new(intent, sentiment, request, thresholds, provenance()).expect("classifier")
    }

    fn embedding(seed: usize) -> Vec<f32> {
        (0..DIM)
            .map(|i| ((i * 7 + seed * 13) as f32).sin())
            .collect()
    }

    #[test]
    fn adapter_travels_with_the_heads() {
        use crate::adapter::{AdapterWeights, LowRank};
        let update = |in_dim: usize, out_dim: usize| LowRank {
            down: (0..in_dim * 2).map(|i| (i as f32).cos()).collect(),
            up: (0..2 * out_dim).map(|i| (i as f32).sin()).collect(),
            in_dim,
            rank: 2,
            out_dim,
        };
        let adapter = AdapterWeights {
            updates: vec![[update(4, 12), update(4, 4), update(4, 8), update(8, 4)]],
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let original = classifier(0.35, 0.6).with_adapter(Some(adapter.clone()));
        original.save(dir.path()).expect("save");
        let loaded = Classifier::load(dir.path()).expect("load");
        assert_eq!(loaded.adapter(), Some(&adapter));
        assert_eq!(loaded, original);
        // Heads saved without an adapter load without one.
        let plain = tempfile::tempdir().expect("tempdir");
        classifier(0.35, 0.6).save(plain.path()).expect("save");
        assert_eq!(
            Classifier::load(plain.path()).expect("load").adapter(),
            None
        );
    }

    #[test]
    fn save_load_round_trip_is_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = classifier(0.35, 0.6);
        original.save(dir.path()).expect("save");
        let loaded = Classifier::load(dir.path()).expect("load");
        assert_eq!(loaded, original);
        let stored = candle_core::safetensors::load(dir.path().join(WEIGHTS_FILE), &Device::Cpu)
            .expect("read weights");
        for (name, tensor) in &stored {
            let want = if name.ends_with(".weight") {
                DType::U8
            } else {
                DType::F32
            };
            assert_eq!(tensor.dtype(), want, "{name}");
        }
        let perms = |f: &str| {
            std::fs::metadata(dir.path().join(f))
                .expect("stat")
                .permissions()
        };
        assert_eq!(
            perms(WEIGHTS_FILE),
            perms(META_FILE),
            "weights readable like metadata"
        );
        for s in 0..5 {
            let e = embedding(s);
            assert_eq!(loaded.intent(&e), original.intent(&e));
            let text = "WHY is it still not here?!";
            assert_eq!(loaded.sentiment(&e, text), original.sentiment(&e, text));
        }
        assert_eq!(loaded.intent_head().hidden(), vec![16]);
        assert_eq!(loaded.intent_head().members(), 3);
        assert!(loaded.sentiment_head().hidden().is_empty());
        // Saving twice gives byte-identical files (no timestamps): re-training
        // with the same seed and data produces no spurious diff.
        let first = std::fs::read(dir.path().join(META_FILE)).expect("read");
        loaded.save(dir.path()).expect("save again");
        assert_eq!(
            std::fs::read(dir.path().join(META_FILE)).expect("read"),
            first
        );
    }

    #[test]
    fn intent_scores_are_ranked_probabilities() {
        let c = classifier(0.0, 0.5);
        let scores = c.intent(&embedding(1));
        assert_eq!(scores.ranked.len(), INTENTS.len());
        let total: f32 = scores.ranked.iter().map(|r| r.1).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert!(scores.ranked.windows(2).all(|w| w[0].1 >= w[1].1));
        let top_is_oos = scores.ranked[0].0 == OUT_OF_SCOPE;
        assert_eq!(scores.out_of_scope, top_is_oos);
    }

    #[test]
    fn oos_threshold_flags_unsure_messages() {
        let e = embedding(2);
        let relaxed = classifier(0.0, 0.5).intent(&e);
        let top = relaxed.ranked[0].1;
        assert!(top < 1.0);
        // A threshold just above the top probability flags the same message.
        let strict = classifier((top + 0.01).min(1.0), 0.5).intent(&e);
        assert!(strict.out_of_scope);
        assert_eq!(strict.ranked, relaxed.ranked);
    }

    #[test]
    fn angry_threshold_decides_sentiment() {
        let probs = [
            (SentimentLabel::Positive, 0.1),
            (SentimentLabel::Neutral, 0.2),
            (SentimentLabel::Negative, 0.4),
            (SentimentLabel::Angry, 0.3),
        ];
        assert_eq!(decide_sentiment(&probs, 0.25), SentimentLabel::Angry);
        assert_eq!(decide_sentiment(&probs, 0.5), SentimentLabel::Negative);
        let c = classifier(0.0, 0.0);
        let s = c.sentiment(&embedding(3), "ok");
        assert_eq!(s.label, SentimentLabel::Angry);
        assert_eq!(s.probs.map(|p| p.0), SentimentLabel::ALL);
        assert_eq!(s.p_angry, s.probs[3].1);
        assert!((s.probs.iter().map(|p| p.1).sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn staff_action_threshold_decides_requests() {
        let e = embedding(5);
        let base = Thresholds {
            oos: 0.3,
            angry: 0.5,
            staff_action: 0.0,
        };
        let loose = with_thresholds(base).request(&e);
        assert!(loose.staff_action);
        assert!(loose.p_staff_action > 0.0 && loose.p_staff_action < 1.0);
        let strict = with_thresholds(Thresholds {
            staff_action: loose.p_staff_action + 0.01,
            ..base
        })
        .request(&e);
        assert!(!strict.staff_action);
        assert_eq!(strict.p_staff_action, loose.p_staff_action);
    }

    #[test]
    fn a_request_head_without_staff_action_is_rejected() {
        let c = classifier(0.3, 0.5);
        let err = Classifier::new(
            c.intent_head().clone(),
            c.sentiment_head().clone(),
            pattern_head(&["self_service", "other"], DIM, &[], 1, 0.6),
            c.thresholds(),
            provenance(),
        )
        .expect_err("no staff_action label");
        assert!(err.to_string().contains(STAFF_ACTION), "{err}");
    }

    #[test]
    fn load_rejects_missing_and_mismatched_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Classifier::load(dir.path()).expect_err("empty dir");
        assert!(err.to_string().contains(META_FILE), "{err}");

        classifier(0.3, 0.5).save(dir.path()).expect("save");
        let meta_path = dir.path().join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).expect("read");
        std::fs::write(
            &meta_path,
            text.replace(
                &format!("\"format_version\": {FORMAT_VERSION}"),
                "\"format_version\": 99",
            ),
        )
        .expect("write");
        let err = Classifier::load(dir.path()).expect_err("future format");
        assert!(err.to_string().contains("format version 99"), "{err}");
        // Version 5 (f16 weights) is refused with the way out.
        std::fs::write(
            &meta_path,
            text.replace(
                &format!("\"format_version\": {FORMAT_VERSION}"),
                "\"format_version\": 5",
            ),
        )
        .expect("write");
        let err = Classifier::load(dir.path()).expect_err("f16 format");
        assert!(err.to_string().contains("xiaoer train"), "{err}");

        std::fs::write(
            &meta_path,
            text.replace("\"hidden\": [\n      16\n    ]", "\"hidden\": []"),
        )
        .expect("write");
        let err = Classifier::load(dir.path()).expect_err("hidden mismatch");
        assert!(err.to_string().contains("logits"), "{err}");
    }

    #[test]
    fn dense_weights_round_to_eight_bit_codes_per_row() {
        let weight = vec![
            0.5, -0.25, 0.125, 0.001, 0.0, 0.0, 0.0, 0.0, -3.0, 2.9, 0.01, 1.5,
        ];
        let layer = Dense::new(weight.clone(), vec![0.0; 3], 4, 3).expect("layer");
        assert_eq!(layer.scales[1], 0.0, "an all-zero row keeps a zero scale");
        for ((w, served), row) in weight
            .iter()
            .zip(&layer.weight)
            .zip([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
        {
            assert!(
                (w - served).abs() <= layer.scales[row] / 2.0 + 1e-7,
                "{w} -> {served}"
            );
        }
        // Each row's largest weight is a full-scale code, stored exactly.
        assert_eq!(layer.weight[0], 0.5);
        assert_eq!(layer.weight[8], -3.0);
        assert!(layer.codes().iter().all(|c| c.unsigned_abs() <= 127));
        let rebuilt = Dense::from_codes(&layer.codes(), layer.scales.clone(), vec![0.0; 3], 4, 3)
            .expect("rebuild");
        assert_eq!(rebuilt, layer);
        // Stored bytes map back to the same codes.
        for code in [-127i8, -1, 0, 1, 127] {
            assert_eq!(byte_to_code(code_to_byte(code)), code);
        }
    }

    proptest::proptest! {
        /// Any finite weights: each served weight is within half a step of
        /// the trained one, and storing then reading the codes changes nothing.
        #[test]
        fn eight_bit_rounding_is_bounded_and_round_trips(
            rows in proptest::collection::vec(
                proptest::collection::vec(-1e3f32..1e3, 5), 1..6),
        ) {
            let in_dim = 5;
            let weight: Vec<f32> = rows.concat();
            let out_dim = rows.len();
            let layer = Dense::new(weight.clone(), vec![0.0; out_dim], in_dim, out_dim).unwrap();
            for (i, (w, served)) in weight.iter().zip(&layer.weight).enumerate() {
                let step = layer.scales[i / in_dim];
                proptest::prop_assert!((w - served).abs() <= step * 0.5 + step * 1e-3 + 1e-6);
            }
            let bytes: Vec<u8> = layer.codes().into_iter().map(code_to_byte).collect();
            let codes: Vec<i8> = bytes.into_iter().map(byte_to_code).collect();
            let read = Dense::from_codes(&codes, layer.scales.clone(), vec![0.0; out_dim], in_dim, out_dim)
                .unwrap();
            proptest::prop_assert_eq!(read, layer);
        }
    }

    #[test]
    fn bad_dense_layers_are_refused() {
        assert!(Dense::new(vec![1.0, f32::NAN], vec![0.0], 2, 1).is_err());
        assert!(Dense::new(vec![1.0, f32::INFINITY], vec![0.0], 2, 1).is_err());
        assert!(Dense::new(vec![1.0; 3], vec![0.0], 2, 1).is_err());
        assert!(Dense::from_codes(&[1, 2], vec![-1.0], vec![0.0], 2, 1).is_err());
        assert!(Dense::from_codes(&[1, 2], vec![f32::NAN], vec![0.0], 2, 1).is_err());
        assert!(Dense::from_codes(&[1, 2], vec![0.1, 0.1], vec![0.0], 2, 1).is_err());
    }

    #[test]
    fn weights_without_codes_or_scales_are_refused_on_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        classifier(0.3, 0.5).save(dir.path()).expect("save");
        let weights = dir.path().join(WEIGHTS_FILE);
        let stored = candle_core::safetensors::load(&weights, &Device::Cpu).expect("read");
        let mut as_f16 = stored.clone();
        let name = "intent.m0.l0.weight";
        as_f16.insert(
            name.into(),
            stored[name].to_dtype(DType::F16).expect("cast"),
        );
        candle_core::safetensors::save(&as_f16, &weights).expect("write");
        let err = Classifier::load(dir.path()).expect_err("f16 weights");
        assert!(err.to_string().contains("expected 8-bit codes"), "{err}");
        let mut no_scale = stored;
        no_scale.remove("intent.m0.l0.scale");
        candle_core::safetensors::save(&no_scale, &weights).expect("write");
        let err = Classifier::load(dir.path()).expect_err("missing scale");
        assert!(err.to_string().contains("intent.m0.l0.scale"), "{err}");
    }

    #[test]
    fn encoder_mismatch_is_caught_at_startup() {
        let c = classifier(0.3, 0.5);
        assert!(c.check_encoder(&HashEncoder::new(DIM)).is_err());
        let mut p = provenance();
        p.encoder.name = HashEncoder::new(DIM).name().to_string();
        let c = Classifier::new(
            c.intent_head().clone(),
            c.sentiment_head().clone(),
            c.request_head().clone(),
            c.thresholds(),
            p,
        )
        .expect("classifier");
        c.check_encoder(&HashEncoder::new(DIM))
            .expect("same encoder");
    }
}
