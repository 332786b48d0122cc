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
//!
//! Label names are strings in the files and typed [`xiaoer_domain`] values
//! everywhere else: [`Classifier::new`] parses them, so a heads file naming
//! an unknown intent is refused at load.

#[cfg(feature = "train")]
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use candle_core::Device;
use serde::{Deserialize, Serialize};
use xiaoer_domain::{Intent, RequestLabel, SentimentLabel, UnknownName};

use crate::adapter::AdapterWeights;
use crate::calibrate::{argmax, is_out_of_scope};
use crate::tone::{sentiment_input, TONE_FEATURES};
use crate::{Encoder, ModelError};

mod dense;
mod head;
mod provenance;

pub use dense::Dense;
use head::HeadMeta;
pub use head::{Head, Member};
pub use provenance::{EncoderInfo, Provenance, SourceFile};

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

/// `classifier.json`: everything about the heads but their tensors.
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
    pub ranked: Vec<(Intent, f32)>,
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
    /// The intent head's labels, in logit order.
    intents: Vec<Intent>,
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
    /// Bundles trained heads. Every label must name a value of its head's
    /// vocabulary ([`Intent`], [`SentimentLabel`], [`RequestLabel`]); the
    /// intent head must have an `out_of_scope` label, the sentiment head
    /// exactly the four sentiment labels, the request head a `staff_action`
    /// label, and all the same input dimension as the encoder in
    /// `provenance`.
    pub fn new(
        intent: Head,
        sentiment: Head,
        request: Head,
        thresholds: Thresholds,
        provenance: Provenance,
    ) -> Result<Classifier, ModelError> {
        let intents: Vec<Intent> = parse_labels(&intent, "intent")?;
        let oos_index = position_of(&intents, Intent::OutOfScope, "intent")?;
        if sentiment.labels().len() != 4 {
            return Err(ModelError::Training(format!(
                "sentiment head has {} labels, expected 4",
                sentiment.labels().len()
            )));
        }
        let sentiments: Vec<SentimentLabel> = parse_labels(&sentiment, "sentiment")?;
        let mut sentiment_index = [0usize; 4];
        for (slot, &label) in sentiment_index.iter_mut().zip(SentimentLabel::ALL) {
            *slot = position_of(&sentiments, label, "sentiment")?;
        }
        let requests: Vec<RequestLabel> = parse_labels(&request, "request")?;
        let staff_action_index = position_of(&requests, RequestLabel::StaffAction, "request")?;
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
            intents,
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
    #[cfg(feature = "train")]
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
        let mut ranked: Vec<(Intent, f32)> = self.intents.iter().copied().zip(probs).collect();
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
        let probs: [(SentimentLabel, f32); 4] =
            std::array::from_fn(|i| (SentimentLabel::ALL[i], raw[self.sentiment_index[i]]));
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

/// A head's label names as vocabulary values, in logit order: the heads
/// file is an edge where they arrive as strings.
fn parse_labels<L: FromStr<Err = UnknownName>>(
    head: &Head,
    which: &str,
) -> Result<Vec<L>, ModelError> {
    head.labels()
        .iter()
        .map(|name| {
            name.parse()
                .map_err(|e| ModelError::Training(format!("{which} head: {e}")))
        })
        .collect()
}

/// Where `wanted` sits among a head's labels; the classifier cannot decide
/// without it.
fn position_of<L: PartialEq + fmt::Display>(
    labels: &[L],
    wanted: L,
    which: &str,
) -> Result<usize, ModelError> {
    labels
        .iter()
        .position(|l| *l == wanted)
        .ok_or_else(|| ModelError::Training(format!("{which} head has no {wanted} label")))
}

#[cfg(all(test, feature = "train"))]
mod tests;
