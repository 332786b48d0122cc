//! One classification head: standardisation, averaged MLP members, softmax
//! at a fitted temperature, and its tensors in the heads file.

use std::collections::HashMap;

#[cfg(feature = "train")]
use candle_core::Device;
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

#[cfg(feature = "train")]
use super::dense::code_to_byte;
use super::dense::{byte_to_code, Dense};
use crate::calibrate::softmax;
use crate::ModelError;

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

    /// Adds this head's tensors under `prefix` to what the heads file holds.
    #[cfg(feature = "train")]
    pub(super) fn insert_tensors(
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

    /// Reads the head saved under `prefix`, checked against its metadata;
    /// `path` names the weights file in errors.
    pub(super) fn from_tensors(
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

    /// What `classifier.json` records about this head.
    #[cfg(feature = "train")]
    pub(super) fn meta(&self) -> HeadMeta {
        HeadMeta {
            labels: self.labels.clone(),
            temperature: self.temperature,
            hidden: self.hidden(),
            members: self.members.len(),
        }
    }
}

/// Output sizes of all layers but the last.
fn hidden_sizes(layers: &[Dense]) -> Vec<usize> {
    layers[..layers.len().saturating_sub(1)]
        .iter()
        .map(|l| l.out_dim)
        .collect()
}

/// One head's entry in `classifier.json`: the shapes to read its tensors
/// with, and what the tensors cannot hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct HeadMeta {
    labels: Vec<String>,
    temperature: f32,
    hidden: Vec<usize>,
    members: usize,
}
