//! What a classifier was trained from, saved with it so a run can be traced
//! and a wrong encoder refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// Identifies one input file of a training run (path relative to its root,
/// content hash, rows taken), saved with the heads so any run can be traced
/// back to the exact data that produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Relative to the data or datasets directory, `/`-separated.
    pub path: String,
    /// Hex SHA-256 of the whole file as read.
    pub sha256: String,
    /// Rows actually used after mapping and sampling.
    pub rows_used: usize,
}
