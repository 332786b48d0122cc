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
//! Training is cheap on a CPU because the lower blocks are frozen: every
//! example's token states after them are computed once
//! ([`crate::E5Encoder::token_states`]) and only the top blocks run forward
//! and backward per step. Deltas are low-rank (`rank · (in + out)`
//! parameters per linear), which regularises a few thousand examples and
//! keeps the committed file small; they are merged into f32 weights to serve.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::ops::{layer_norm_slow, softmax};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::bert::BlockParams;
use crate::ModelError;

/// Hyper-parameters of adapter training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    /// How many of the last blocks are adapted.
    pub blocks: usize,
    /// Rank of every low-rank update.
    pub rank: usize,
    /// LoRA scaling numerator: updates are multiplied by `alpha / rank`.
    pub alpha: f32,
    /// AdamW step size (adapters and the temporary task heads).
    pub learning_rate: f64,
    /// Epochs over the largest task; the best validation epoch is kept.
    pub epochs: usize,
    /// Examples per task per optimiser step.
    pub batch_size: usize,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            blocks: 2,
            rank: 16,
            alpha: 32.0,
            learning_rate: 1e-3,
            epochs: 8,
            batch_size: 32,
        }
    }
}

/// One classification task the adapter is trained on: frozen token states
/// (`[len, hidden]` per example) and class indices.
pub struct Task<'a> {
    /// Name for logs.
    pub name: &'a str,
    /// Training examples' token states.
    pub train: &'a [Tensor],
    /// Training labels.
    pub train_y: &'a [usize],
    /// Validation examples' token states.
    pub val: &'a [Tensor],
    /// Validation labels.
    pub val_y: &'a [usize],
    /// Number of classes.
    pub classes: usize,
}

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
    fn from_tensors(down: &Tensor, up: &Tensor) -> candle_core::Result<Self> {
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

/// Result of adapter training.
pub struct TrainedAdapter {
    /// The updates of the best epoch.
    pub weights: AdapterWeights,
    /// 1-based epoch kept (best mean validation accuracy over tasks).
    pub best_epoch: usize,
    /// Per epoch, validation accuracy per task (in task order).
    pub val_accuracy: Vec<Vec<f32>>,
}

/// `y = x Wᵀ + b + (x A) U · scale` with `W`, `b` frozen and `A`, `U` trained.
struct LoraLinear {
    weight_t: Tensor,
    bias: Tensor,
    down: Var,
    up: Var,
    scale: f64,
}

impl LoraLinear {
    fn new(
        (weight_t, bias): (Tensor, Tensor),
        cfg: &AdapterConfig,
        rng: &mut StdRng,
    ) -> candle_core::Result<Self> {
        let (in_dim, out_dim) = weight_t.dims2()?;
        // LoRA's init: A random, U zero, so training starts at the frozen model.
        let bound = 1.0 / (in_dim as f32).sqrt();
        let a: Vec<f32> = (0..in_dim * cfg.rank)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        Ok(Self {
            down: Var::from_tensor(&Tensor::from_vec(a, (in_dim, cfg.rank), &Device::Cpu)?)?,
            up: Var::zeros((cfg.rank, out_dim), DType::F32, &Device::Cpu)?,
            scale: f64::from(cfg.alpha) / cfg.rank as f64,
            weight_t,
            bias,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let base = x.matmul(&self.weight_t)?.broadcast_add(&self.bias)?;
        let low = x
            .matmul(self.down.as_tensor())?
            .matmul(self.up.as_tensor())?;
        base + (low * self.scale)?
    }

    /// The current update `down · (up · scale)`, detached from the graph.
    fn update(&self) -> candle_core::Result<LowRank> {
        LowRank::from_tensors(
            self.down.as_tensor(),
            &(self.up.as_tensor().detach() * self.scale)?,
        )
    }

    fn vars(&self) -> [Var; 2] {
        [self.down.clone(), self.up.clone()]
    }
}

/// One block in training form.
struct TrainBlock {
    qkv: LoraLinear,
    attn_out: LoraLinear,
    attn_ln: (Tensor, Tensor),
    ffn_in: LoraLinear,
    ffn_out: LoraLinear,
    out_ln: (Tensor, Tensor),
}

impl TrainBlock {
    fn new(p: BlockParams, cfg: &AdapterConfig, rng: &mut StdRng) -> candle_core::Result<Self> {
        Ok(Self {
            qkv: LoraLinear::new(p.qkv, cfg, rng)?,
            attn_out: LoraLinear::new(p.attn_out, cfg, rng)?,
            attn_ln: p.attn_ln,
            ffn_in: LoraLinear::new(p.ffn_in, cfg, rng)?,
            ffn_out: LoraLinear::new(p.ffn_out, cfg, rng)?,
            out_ln: p.out_ln,
        })
    }

    fn linears(&self) -> [&LoraLinear; 4] {
        [&self.qkv, &self.attn_out, &self.ffn_in, &self.ffn_out]
    }

    fn update(&self) -> candle_core::Result<[LowRank; 4]> {
        Ok([
            self.qkv.update()?,
            self.attn_out.update()?,
            self.ffn_in.update()?,
            self.ffn_out.update()?,
        ])
    }
}

/// The adapted blocks and the shape facts their forward needs.
struct Stack {
    blocks: Vec<TrainBlock>,
    heads: usize,
    eps: f32,
}

impl Stack {
    /// Differentiable forward over a right-padded batch of token states:
    /// masked attention, then masked mean pooling and L2 normalisation
    /// (the same function as the serving path's packed forward).
    fn embed(&self, states: &[&Tensor]) -> candle_core::Result<Tensor> {
        let dev = Device::Cpu;
        let b = states.len();
        let h = states[0].dim(1)?;
        let l = states
            .iter()
            .map(|s| s.dim(0))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let max_len = l.iter().copied().max().unwrap_or(1);
        let (nh, hd) = (self.heads, h / self.heads);
        let padded = states
            .iter()
            .zip(&l)
            .map(|(s, &len)| {
                if len == max_len {
                    Ok((*s).clone())
                } else {
                    Tensor::cat(
                        &[*s, &Tensor::zeros((max_len - len, h), DType::F32, &dev)?],
                        0,
                    )
                }
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut x = Tensor::stack(&padded, 0)?.reshape((b * max_len, h))?;
        let mut keep = vec![0f32; b * max_len];
        for (row, &len) in l.iter().enumerate() {
            keep[row * max_len..row * max_len + len].fill(1.0);
        }
        let bias: Vec<f32> = keep
            .iter()
            .map(|&k| if k > 0.0 { 0.0 } else { -1e9 })
            .collect();
        let bias = Tensor::from_vec(bias, (b, 1, 1, max_len), &dev)?;
        let scale = 1.0 / (hd as f64).sqrt();
        for blk in &self.blocks {
            let qkv = blk.qkv.forward(&x)?;
            let split = |i: usize| -> candle_core::Result<Tensor> {
                qkv.narrow(1, i * h, h)?
                    .reshape((b, max_len, nh, hd))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, v) = ((split(0)? * scale)?, split(1)?, split(2)?);
            let scores = q.matmul(&k.t()?)?.broadcast_add(&bias)?;
            let ctx = softmax(&scores, D::Minus1)?
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * max_len, h))?;
            let attn = blk.attn_out.forward(&ctx)?;
            x = layer_norm_slow(&(x + attn)?, &blk.attn_ln.0, &blk.attn_ln.1, self.eps)?;
            let mid = blk.ffn_in.forward(&x)?.gelu_erf()?;
            let out = blk.ffn_out.forward(&mid)?;
            x = layer_norm_slow(&(x + out)?, &blk.out_ln.0, &blk.out_ln.1, self.eps)?;
        }
        let lens: Vec<f32> = l.iter().map(|&n| n as f32).collect();
        let keep = Tensor::from_vec(keep, (b, max_len, 1), &dev)?;
        let mean = x
            .reshape((b, max_len, h))?
            .broadcast_mul(&keep)?
            .sum(1)?
            .broadcast_div(&Tensor::from_vec(lens, (b, 1), &dev)?)?;
        let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
        mean.broadcast_div(&norm)
    }

    /// Embeddings of many examples, in batches, without gradients.
    fn embed_all(&self, states: &[Tensor], batch: usize) -> candle_core::Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(states.len());
        for chunk in states.chunks(batch.max(1)) {
            let refs: Vec<&Tensor> = chunk.iter().collect();
            out.extend(self.embed(&refs)?.detach().to_vec2::<f32>()?);
        }
        Ok(out)
    }
}

/// A linear task head used only while training the adapter; the shipped
/// heads are trained afterwards on the adapted embeddings. Inputs are
/// scaled so unit vectors give logits of a useful range from the start.
struct TaskHead {
    weight: Var,
    bias: Var,
}

/// Cosine-softmax scale: unit-length embeddings times this give logits wide
/// enough to reach confident probabilities.
const LOGIT_SCALE: f64 = 20.0;

impl TaskHead {
    fn new(hidden: usize, classes: usize) -> candle_core::Result<Self> {
        Ok(Self {
            weight: Var::zeros((hidden, classes), DType::F32, &Device::Cpu)?,
            bias: Var::zeros(classes, DType::F32, &Device::Cpu)?,
        })
    }

    fn logits(&self, emb: &Tensor) -> candle_core::Result<Tensor> {
        (emb * LOGIT_SCALE)?
            .matmul(self.weight.as_tensor())?
            .broadcast_add(self.bias.as_tensor())
    }
}

fn train_err(e: candle_core::Error) -> ModelError {
    ModelError::Training(format!("adapter training: {e}"))
}

/// Trains low-rank updates of `top` (the last blocks' parameters, lowest
/// first) on `tasks` jointly: each step takes one batch per task and sums
/// their cross-entropies, so no task's signal is lost from the shared
/// embedding. Keeps the epoch with the best mean validation accuracy.
/// Deterministic for a seed.
pub fn train_adapter(
    top: Vec<BlockParams>,
    heads: usize,
    eps: f32,
    tasks: &[Task<'_>],
    cfg: &AdapterConfig,
    seed: u64,
) -> Result<TrainedAdapter, ModelError> {
    if tasks.is_empty() || tasks.iter().any(|t| t.train.is_empty() || t.val.is_empty()) {
        return Err(ModelError::Training(
            "adapter training needs tasks with training and validation examples".into(),
        ));
    }
    if tasks
        .iter()
        .any(|t| t.train.len() != t.train_y.len() || t.val.len() != t.val_y.len())
    {
        return Err(ModelError::Training(
            "adapter examples and labels differ in length".into(),
        ));
    }
    if let Some(t) = tasks
        .iter()
        .find(|t| t.train_y.iter().chain(t.val_y).any(|&y| y >= t.classes))
    {
        return Err(ModelError::Training(format!(
            "task {}: a label is not one of its {} classes",
            t.name, t.classes
        )));
    }
    if cfg.rank == 0 || cfg.batch_size == 0 || cfg.epochs == 0 {
        return Err(ModelError::Training(
            "adapter rank, batch size and epochs must be > 0".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let hidden = top
        .first()
        .ok_or_else(|| ModelError::Training("no blocks to adapt".into()))?
        .attn_ln
        .0
        .dim(0)
        .map_err(train_err)?;
    let stack = Stack {
        blocks: top
            .into_iter()
            .map(|p| TrainBlock::new(p, cfg, &mut rng))
            .collect::<candle_core::Result<_>>()
            .map_err(train_err)?,
        heads,
        eps,
    };
    let task_heads = tasks
        .iter()
        .map(|t| TaskHead::new(hidden, t.classes))
        .collect::<candle_core::Result<Vec<_>>>()
        .map_err(train_err)?;
    let mut vars: Vec<Var> = stack
        .blocks
        .iter()
        .flat_map(|b| b.linears().into_iter().flat_map(LoraLinear::vars))
        .collect();
    vars.extend(
        task_heads
            .iter()
            .flat_map(|h| [h.weight.clone(), h.bias.clone()]),
    );
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: cfg.learning_rate,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )
    .map_err(train_err)?;

    let ys: Vec<Tensor> = tasks
        .iter()
        .map(|t| {
            let y: Vec<u32> = t.train_y.iter().map(|&y| y as u32).collect();
            Tensor::from_vec(y, t.train_y.len(), &Device::Cpu)
        })
        .collect::<candle_core::Result<_>>()
        .map_err(train_err)?;
    let steps = tasks
        .iter()
        .map(|t| t.train.len().div_ceil(cfg.batch_size))
        .max()
        .unwrap_or(0);
    let mut best: Option<(f32, usize, AdapterWeights)> = None;
    let mut history = Vec::with_capacity(cfg.epochs);
    for epoch in 1..=cfg.epochs {
        let mut orders: Vec<Vec<usize>> = tasks
            .iter()
            .map(|t| {
                let mut o: Vec<usize> = (0..t.train.len()).collect();
                o.shuffle(&mut rng);
                o
            })
            .collect();
        for step in 0..steps {
            let mut total: Option<Tensor> = None;
            for (ti, task) in tasks.iter().enumerate() {
                // Smaller tasks wrap around so every step sees every task.
                let order = &mut orders[ti];
                let n = order.len();
                let idx: Vec<usize> = (0..cfg.batch_size.min(n))
                    .map(|i| order[(step * cfg.batch_size + i) % n])
                    .collect();
                let batch: Vec<&Tensor> = idx.iter().map(|&i| &task.train[i]).collect();
                let y = ys[ti]
                    .index_select(
                        &Tensor::from_vec(
                            idx.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                            idx.len(),
                            &Device::Cpu,
                        )
                        .map_err(train_err)?,
                        0,
                    )
                    .map_err(train_err)?;
                let logits = stack
                    .embed(&batch)
                    .and_then(|e| task_heads[ti].logits(&e))
                    .map_err(train_err)?;
                let loss = candle_nn::loss::cross_entropy(&logits, &y).map_err(train_err)?;
                total = Some(match total {
                    None => loss,
                    Some(t) => (t + loss).map_err(train_err)?,
                });
            }
            if let Some(loss) = total {
                opt.backward_step(&loss).map_err(train_err)?;
            }
        }
        let accs = tasks
            .iter()
            .zip(&task_heads)
            .map(|(t, head)| {
                let emb = stack.embed_all(t.val, 64)?;
                let flat: Vec<f32> = emb.iter().flatten().copied().collect();
                let logits = head
                    .logits(&Tensor::from_vec(flat, (emb.len(), hidden), &Device::Cpu)?)?
                    .to_vec2::<f32>()?;
                let ok = logits
                    .iter()
                    .zip(t.val_y)
                    .filter(|(z, &y)| crate::calibrate::argmax(z).map(|(i, _)| i) == Some(y))
                    .count();
                Ok(ok as f32 / t.val.len() as f32)
            })
            .collect::<candle_core::Result<Vec<f32>>>()
            .map_err(train_err)?;
        let mean = accs.iter().sum::<f32>() / accs.len() as f32;
        for (t, acc) in tasks.iter().zip(&accs) {
            tracing::info!(epoch, task = t.name, val_accuracy = acc, "adapter epoch");
        }
        if best.as_ref().is_none_or(|(b, _, _)| mean > *b) {
            let updates = stack
                .blocks
                .iter()
                .map(TrainBlock::update)
                .collect::<candle_core::Result<Vec<_>>>()
                .map_err(train_err)?;
            best = Some((mean, epoch, AdapterWeights { updates }));
        }
        history.push(accs);
    }
    let (_, best_epoch, weights) = best.expect("at least one epoch ran");
    Ok(TrainedAdapter {
        weights,
        best_epoch,
        val_accuracy: history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{E5Encoder, Encoder, TextRole};

    const TEXTS: [(&str, usize); 8] = [
        ("where is my parcel", 0),
        ("快递到哪了", 0),
        ("has my order shipped yet?", 0),
        ("物流怎么不动了", 0),
        ("can i get a refund", 1),
        ("退款什么时候到", 1),
        ("money back please", 1),
        ("钱退了吗", 1),
    ];

    fn tiny_task(enc: &E5Encoder, first: usize) -> (Vec<Tensor>, Vec<usize>) {
        let texts: Vec<&str> = TEXTS.iter().map(|(t, _)| *t).collect();
        let states = enc
            .token_states(&texts, TextRole::Query, first)
            .expect("states");
        (states, TEXTS.iter().map(|(_, y)| *y).collect())
    }

    fn config() -> AdapterConfig {
        AdapterConfig {
            blocks: 1,
            rank: 4,
            alpha: 8.0,
            learning_rate: 1e-2,
            epochs: 3,
            batch_size: 4,
        }
    }

    fn train_tiny(enc: &E5Encoder) -> TrainedAdapter {
        let model = enc.model();
        let first = model.layer_count() - 1;
        let (states, y) = tiny_task(enc, first);
        let task = Task {
            name: "toy",
            train: &states,
            train_y: &y,
            val: &states,
            val_y: &y,
            classes: 2,
        };
        train_adapter(
            vec![model.block_params(first).expect("params")],
            model.attention_heads(),
            model.layer_norm_eps(),
            &[task],
            &config(),
            3,
        )
        .expect("train")
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn training_forward_matches_the_served_forward() {
        // The padded, differentiable forward used in training and the packed
        // serving forward must compute the same function, or heads trained
        // on one would be served on another.
        let enc = E5Encoder::tiny_random(11);
        let model = enc.model();
        let first = model.layer_count() - 1;
        let (states, _) = tiny_task(&enc, first);
        let mut rng = StdRng::seed_from_u64(1);
        let cfg = config();
        let stack = Stack {
            blocks: vec![TrainBlock::new(
                model.block_params(first).expect("params"),
                &cfg,
                &mut rng,
            )
            .expect("block")],
            heads: model.attention_heads(),
            eps: model.layer_norm_eps(),
        };
        let padded = stack.embed_all(&states, 3).expect("padded");
        let base = vec![model.block_params(first).expect("params")];
        let packed = model.embed_states_through(&base, &states).expect("packed");
        // And with an untrained (zero) update the adapted view is e5's own.
        let direct = enc
            .encode_batch(&TEXTS.map(|(t, _)| t), TextRole::Query)
            .expect("direct");
        for ((p, q), d) in padded.iter().zip(&packed).zip(&direct) {
            assert!(max_diff(p, q) < 1e-4, "padded vs packed {}", max_diff(p, q));
            assert!(max_diff(q, d) < 1e-4, "packed vs direct {}", max_diff(q, d));
        }
    }

    #[test]
    fn installed_adapter_changes_only_the_classification_view() {
        let mut enc = E5Encoder::tiny_random(12);
        let trained = train_tiny(&enc);
        assert_eq!(trained.val_accuracy.len(), config().epochs);
        assert!((1..=config().epochs).contains(&trained.best_epoch));
        let texts = TEXTS.map(|(t, _)| t);
        let before = enc.encode_batch(&texts, TextRole::Query).expect("before");
        enc.install_adapter(&trained.weights).expect("install");
        let views = enc.encode_views(&texts, TextRole::Query).expect("views");
        let after = enc.encode_batch(&texts, TextRole::Query).expect("after");
        assert_eq!(before, after, "retrieval embedding must not move");
        let moved = views
            .iter()
            .zip(&before)
            .map(|(v, b)| {
                assert!(max_diff(&v.retrieval, b) < 1e-5);
                max_diff(&v.classification, b)
            })
            .fold(0.0, f32::max);
        assert!(moved > 1e-3, "adapter had no effect ({moved})");
        // Served classification views equal the training-time embedding of
        // cached states through the merged blocks.
        let model = enc.model();
        let first = model.layer_count() - 1;
        let (states, _) = tiny_task(&enc, first);
        let merged = trained
            .weights
            .merge(vec![model.block_params(first).expect("params")])
            .expect("merge");
        let offline = model
            .embed_states_through(&merged, &states)
            .expect("offline");
        for (v, o) in views.iter().zip(&offline) {
            assert!(max_diff(&v.classification, o) < 1e-4);
        }
    }

    #[test]
    fn saved_updates_read_back_identically() {
        let enc = E5Encoder::tiny_random(13);
        let weights = train_tiny(&enc).weights;
        let mut tensors = std::collections::HashMap::new();
        weights.insert_tensors(&mut tensors).expect("insert");
        let back = AdapterWeights::from_tensors(weights.blocks(), &tensors).expect("read");
        assert_eq!(back, weights);
        tensors.remove("adapter.b0.ffn_in.up");
        let err = AdapterWeights::from_tensors(1, &tensors).expect_err("missing tensor");
        assert!(err.contains("adapter.b0.ffn_in.up"), "{err}");
    }

    #[test]
    fn adapters_that_do_not_fit_are_refused() {
        let mut enc = E5Encoder::tiny_random(14);
        let weights = train_tiny(&enc).weights;
        let three = AdapterWeights {
            updates: vec![weights.updates[0].clone(); 3],
        };
        let err = enc
            .install_adapter(&three)
            .expect_err("more blocks than the model");
        assert!(err.to_string().contains("3 top blocks"), "{err}");
        let mut wrong = weights.clone();
        let qkv = &mut wrong.updates[0][0];
        qkv.out_dim -= 1;
        qkv.up.truncate(qkv.rank * qkv.out_dim);
        assert!(enc.install_adapter(&wrong).is_err());
        // Nothing was installed by the failed attempts.
        assert_eq!(enc.model().adapted_blocks(), 0);
    }

    #[test]
    fn bad_training_input_is_a_clear_error() {
        let enc = E5Encoder::tiny_random(15);
        let model = enc.model();
        let first = model.layer_count() - 1;
        let (states, y) = tiny_task(&enc, first);
        let params = || vec![model.block_params(first).expect("params")];
        let run = |tasks: &[Task<'_>], cfg: &AdapterConfig| {
            train_adapter(params(), model.attention_heads(), 1e-12, tasks, cfg, 1)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(run(&[], &config()).contains("needs tasks"));
        let short = Task {
            name: "short labels",
            train: &states,
            train_y: &y[..3],
            val: &states,
            val_y: &y,
            classes: 2,
        };
        assert!(run(&[short], &config()).contains("differ in length"));
        let bad_label = Task {
            name: "bad label",
            train: &states,
            train_y: &y,
            val: &states,
            val_y: &y,
            classes: 1,
        };
        assert!(run(&[bad_label], &config()).contains("bad label"));
        let ok = Task {
            name: "ok",
            train: &states,
            train_y: &y,
            val: &states,
            val_y: &y,
            classes: 2,
        };
        let zero_rank = AdapterConfig {
            rank: 0,
            ..config()
        };
        assert!(run(&[ok], &zero_rank).contains("rank"));
    }
}
