//! Local text understanding for xiaoer: a bilingual sentence encoder
//! (multilingual-e5-small, 4-bit, run with candle on CPU) plus small intent and
//! sentiment heads trained on top of it.
//!
//! The served path (encoder, inference pool, heads, tone, language and
//! identifier rules, the calibration applied at inference) is always built.
//! Training, threshold fitting, the embedding cache and the public
//! benchmarks are behind the `train` feature, so the service does not
//! compile them. The labels the heads predict are the shared
//! [`xiaoer_domain`] vocabulary.

use std::fmt;

pub mod adapter;
#[cfg(feature = "train")]
pub mod bench;
pub mod bert;
#[cfg(feature = "train")]
pub mod cache;
pub mod calibrate;
pub mod container;
pub mod e5;
pub mod heads;
pub mod identifiers;
pub mod lang;
mod packed;
pub mod perf;
pub mod pool;
#[cfg(feature = "train")]
pub mod sentiment_bench;
#[cfg(all(test, feature = "train"))]
mod test_support;
pub mod tone;
#[cfg(feature = "train")]
pub mod train;
pub mod unigram;

pub use bert::{EmbeddingViews, LinearFormat};
pub use e5::{E5Encoder, E5Options};
pub use heads::{Classifier, IntentScores, RequestScores, SentimentScores, Thresholds};
pub use lang::{detect_language, Language};
pub use pool::{prefer_single_threaded_kernels, InferencePool, PoolConfig};
#[cfg(feature = "train")]
pub use train::{train_shipped, TrainConfig, TrainReport};

/// What a text is for, because E5 models are trained with a role prefix:
/// `"query: "` for questions and symmetric tasks, `"passage: "` for documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextRole {
    /// A shopper's message (or any text compared with its like); its order,
    /// tracking and phone numbers are stripped before encoding.
    Query,
    /// A knowledge-base article, encoded as written.
    Passage,
}

/// Errors from loading or running a model, kept typed so the service can map
/// them to gRPC statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A weights, tokenizer or heads file is missing, malformed or does not
    /// fit this build or encoder: the service cannot start with it.
    #[error("model file {path}: {reason}")]
    Load {
        /// The file, as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Encoding or classifying failed on valid-looking input.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The pool's queue is full: back off (`RESOURCE_EXHAUSTED`).
    #[error("inference queue is full")]
    Overloaded,
    /// The pool's workers are gone (shutdown or a panic).
    #[error("inference workers have stopped")]
    Stopped,
    /// One line of a data file is unusable (malformed JSON, missing field,
    /// unknown label). Carries the file and 1-based line so a hand-written
    /// data file can be fixed without hunting.
    #[error("{path}:{line}: {reason}")]
    Record {
        /// The data file, as given.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// A data file or a whole training set is unusable: missing, unreadable,
    /// or a class without a single example.
    #[error("data {path}: {reason}")]
    Data {
        /// The file, directory or set, as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Training could not produce a usable head (bad shapes, no data, numeric
    /// failure), kept apart from `Inference` so the CLI can tell the two apart.
    #[error("training failed: {0}")]
    Training(String),
    /// A trained artefact (heads, report, embedding cache) could not be written.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file or directory that could not be written.
        path: String,
        /// The I/O or serialisation error.
        reason: String,
    },
}

impl From<candle_core::Error> for ModelError {
    fn from(e: candle_core::Error) -> Self {
        ModelError::Inference(e.to_string())
    }
}

/// A sentence encoder: texts in, L2-normalised vectors out. The service, the
/// knowledge base and the evals depend on this trait only, so the model behind
/// it can change without touching them.
pub trait Encoder: Send + Sync {
    /// Length of every vector this encoder returns.
    fn dim(&self) -> usize;
    /// Short model name for reports and logs.
    fn name(&self) -> &str;
    /// Length of the classification view of [`Encoder::encode_views`]: the
    /// input size of the heads.
    fn classification_dim(&self) -> usize {
        self.dim()
    }
    /// Blocks after which the classification view is pooled (empty: the
    /// encoder's one embedding). Recorded with trained heads so the service
    /// serves them the view they were trained on.
    fn feature_layers(&self) -> &[usize] {
        &[]
    }
    /// Encodes a batch; the result has one L2-normalised vector per text, in order.
    fn encode_batch(&self, texts: &[&str], role: TextRole) -> Result<Vec<Vec<f32>>, ModelError>;
    /// Both embeddings of each text: `retrieval` is what [`Encoder::encode_batch`]
    /// returns, `classification` what the heads read (different when an
    /// adapter or feature layers are installed). One pass: the lower blocks
    /// run once.
    fn encode_views(
        &self,
        texts: &[&str],
        role: TextRole,
    ) -> Result<Vec<EmbeddingViews>, ModelError> {
        Ok(self
            .encode_batch(texts, role)?
            .into_iter()
            .map(|v| EmbeddingViews {
                classification: v.clone(),
                retrieval: v,
            })
            .collect())
    }
    /// The e5 encoder behind this one when its top blocks can be adapted
    /// ([`adapter`]); `None` for encoders without transformer blocks.
    fn adaptable(&self) -> Option<&E5Encoder> {
        None
    }
}

impl fmt::Debug for dyn Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Encoder({}, dim {})", self.name(), self.dim())
    }
}
