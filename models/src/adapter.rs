//! Adapted top blocks: low-rank (LoRA) updates to the last encoder blocks,
//! trained on our intent and sentiment examples, so the classification
//! heads read an embedding tuned to shop-service language instead of the
//! frozen e5 one.
//!
//! Why: a frozen encoder plus MLP heads stopped near 90% held-out intent
//! accuracy however much data we wrote; the held-out files are worded by
//! other people, and the frozen embedding spreads a topic's paraphrases
//! further apart than a tuned one. Retrieval keeps the original blocks (e5
//! was trained for retrieval; an intent-tuned space would merge sibling
//! articles), so the service runs the top blocks twice: once as shipped,
//! once adapted (see [`crate::bert::BertModel::set_adapted_top`]).
//!
//! This module holds what the service needs: the trained updates as saved
//! with the heads, and merging them into the encoder's blocks. Training them
//! (`train::adapter`, feature `train`) is cheap on a CPU because the lower
//! blocks are frozen. Deltas are low-rank (`rank · (in + out)` parameters per
//! linear), which regularises a few thousand examples and keeps the committed
//! file small; they are merged into f32 weights to serve.

use candle_core::{DType, Device, Tensor};

use crate::bert::BlockParams;
use crate::ModelError;

/// One low-rank update `down · up` of a `[in, out]` weight, as plain row-major
/// data so the classifier that carries it stays comparable and cloneable.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRank {
    /// `[in_dim, rank]`.
    pub down: Vec<f32>,
    /// `[rank, out_dim]`, the LoRA scale already folded in.
    pub up: Vec<f32>,
    /// Input width of the adapted linear.
    pub in_dim: usize,
    /// Rank of the update.
    pub rank: usize,
    /// Output width of the adapted linear.
    pub out_dim: usize,
}

impl LowRank {
    /// Reads an update from its two factors (`[in, rank]`, `[rank, out]`):
    /// how saved updates are loaded and trained ones snapshotted.
    pub(crate) fn from_tensors(down: &Tensor, up: &Tensor) -> candle_core::Result<Self> {
        let (in_dim, rank) = down.dims2()?;
        let (rank_up, out_dim) = up.dims2()?;
        if rank != rank_up {
            candle_core::bail!("update ranks {rank} and {rank_up} differ");
        }
        Ok(LowRank {
            down: down.flatten_all()?.to_vec1()?,
            up: up.flatten_all()?.to_vec1()?,
            in_dim,
            rank,
            out_dim,
        })
    }

    /// The two factors as tensors, to merge or save.
    fn tensors(&self) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            Tensor::from_slice(&self.down, (self.in_dim, self.rank), &Device::Cpu)?,
            Tensor::from_slice(&self.up, (self.rank, self.out_dim), &Device::Cpu)?,
        ))
    }

    /// `W + down · up` for a weight `(Wᵀ [in, out], b)`.
    fn add_to(&self, (w, b): (Tensor, Tensor)) -> candle_core::Result<(Tensor, Tensor)> {
        if w.dims() != [self.in_dim, self.out_dim] {
            candle_core::bail!(
                "update is {}×{}, weight is {:?}",
                self.in_dim,
                self.out_dim,
                w.dims()
            );
        }
        let (down, up) = self.tensors()?;
        Ok(((w + down.matmul(&up)?)?, b))
    }
}

/// The trained low-rank updates of the top blocks, lowest block first: what
/// is saved with the heads (a few hundred kB, where merged f32 blocks would
/// be 14 MB) and merged into the encoder's own weights at load.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterWeights {
    /// Per block, one update per linear in [`LINEAR_NAMES`] order.
    pub updates: Vec<[LowRank; 4]>,
}

/// The adapted linears of a block, in [`AdapterWeights::updates`] order.
pub const LINEAR_NAMES: [&str; 4] = ["qkv", "attn_out", "ffn_in", "ffn_out"];

impl AdapterWeights {
    /// How many top blocks the updates are for.
    pub fn blocks(&self) -> usize {
        self.updates.len()
    }

    /// The blocks `base` (the model's last `blocks()` blocks, lowest first)
    /// with the updates added to their weights.
    pub fn merge(&self, base: Vec<BlockParams>) -> Result<Vec<BlockParams>, ModelError> {
        if base.len() != self.updates.len() {
            return Err(ModelError::Inference(format!(
                "adapter has {} blocks, {} given",
                self.updates.len(),
                base.len()
            )));
        }
        base.into_iter()
            .zip(&self.updates)
            .map(|(p, [qkv, ao, fi, fo])| {
                Ok(BlockParams {
                    qkv: qkv.add_to(p.qkv)?,
                    attn_out: ao.add_to(p.attn_out)?,
                    attn_ln: p.attn_ln,
                    ffn_in: fi.add_to(p.ffn_in)?,
                    ffn_out: fo.add_to(p.ffn_out)?,
                    out_ln: p.out_ln,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(|e| ModelError::Inference(format!("merging adapter: {e}")))
    }

    /// Tensors under `adapter.b{block}.{linear}.{down,up}`, to save.
    #[cfg(feature = "train")]
    pub fn insert_tensors(
        &self,
        out: &mut std::collections::HashMap<String, Tensor>,
    ) -> candle_core::Result<()> {
        for (b, linears) in self.updates.iter().enumerate() {
            for (name, update) in LINEAR_NAMES.iter().zip(linears) {
                let (down, up) = update.tensors()?;
                out.insert(format!("adapter.b{b}.{name}.down"), down);
                out.insert(format!("adapter.b{b}.{name}.up"), up);
            }
        }
        Ok(())
    }

    /// Reads `blocks` blocks of updates saved by [`AdapterWeights::insert_tensors`].
    pub fn from_tensors(
        blocks: usize,
        tensors: &std::collections::HashMap<String, Tensor>,
    ) -> Result<AdapterWeights, String> {
        let updates = (0..blocks)
            .map(|b| {
                let update = |name: &str| -> Result<LowRank, String> {
                    let get = |part: &str| {
                        let key = format!("adapter.b{b}.{name}.{part}");
                        tensors
                            .get(&key)
                            .and_then(|t| t.to_dtype(DType::F32).ok())
                            .ok_or_else(|| format!("missing tensor {key}"))
                    };
                    LowRank::from_tensors(&get("down")?, &get("up")?)
                        .map_err(|e| format!("adapter.b{b}.{name}: {e}"))
                };
                Ok([
                    update(LINEAR_NAMES[0])?,
                    update(LINEAR_NAMES[1])?,
                    update(LINEAR_NAMES[2])?,
                    update(LINEAR_NAMES[3])?,
                ])
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(AdapterWeights { updates })
    }
}
