//! Training the adapted top blocks ([`crate::adapter`]): LoRA updates of
//! the last encoder blocks, trained jointly with throwaway linear heads on
//! our intent and sentiment examples.
//!
//! Training is cheap on a CPU because the lower blocks are frozen: every
//! example's token states after them are computed once
//! ([`crate::E5Encoder::token_states`]) and only the top blocks run forward
//! and backward per step.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::ops::{layer_norm_slow, softmax};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use serde::{Deserialize, Serialize};
use xiaoer_domain::{Intent, SentimentLabel};

use super::data::Example;
use super::prepare::SetEmbeddings;
use crate::adapter::{AdapterWeights, LowRank};
use crate::bert::BlockParams;
use crate::calibrate::argmax;
use crate::{E5Encoder, ModelError, TextRole};

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
        rng: &mut ChaCha12Rng,
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
    fn new(
        p: BlockParams,
        cfg: &AdapterConfig,
        rng: &mut ChaCha12Rng,
    ) -> candle_core::Result<Self> {
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

/// Maps a candle error to a training error.
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
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
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
                    .filter(|(z, &y)| argmax(z).map(|(i, _)| i) == Some(y))
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

/// What adapter training produced, for the classifier and the report.
pub(super) struct Adapted {
    /// The updates, saved with the heads.
    pub(super) weights: AdapterWeights,
    /// How training went.
    pub(super) report: AdapterReport,
}

/// How adapter training went (in `train_report.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdapterReport {
    /// Hyper-parameters used.
    pub config: AdapterConfig,
    /// 1-based epoch kept.
    pub best_epoch: usize,
    /// Per epoch: validation accuracy of the temporary intent and sentiment
    /// heads trained with the adapter.
    pub val_accuracy: Vec<Vec<f32>>,
    /// Seconds computing the lower blocks' token states.
    pub states_seconds: f32,
    /// Seconds training the adapter.
    pub train_seconds: f32,
}

/// Trains an adapter of the encoder's top blocks on the intent and
/// sentiment training sets (validation sets for epoch selection), then
/// embeds every set through it. Texts shared by several sets are run
/// through the lower blocks once.
pub(super) fn adapt_and_embed(
    e5: &E5Encoder,
    cfg: &AdapterConfig,
    sets: &[&[Example]; 9],
    iy: &[Vec<usize>; 3],
    sy: &[Vec<usize>; 3],
    seed: u64,
) -> Result<(SetEmbeddings, Adapted), ModelError> {
    let started = Instant::now();
    let model = e5.model();
    let first = model.layer_count().checked_sub(cfg.blocks).ok_or_else(|| {
        ModelError::Training(format!(
            "cannot adapt {} blocks of a {}-block model",
            cfg.blocks,
            model.layer_count()
        ))
    })?;
    let mut unique: BTreeMap<&str, usize> = BTreeMap::new();
    for set in sets {
        for e in set.iter() {
            let next = unique.len();
            unique.entry(e.text.as_str()).or_insert(next);
        }
    }
    let mut texts = vec![""; unique.len()];
    for (&t, &i) in &unique {
        texts[i] = t;
    }
    let states = e5.token_states(&texts, TextRole::Query, first)?;
    let of = |set: &[Example]| -> Vec<Tensor> {
        set.iter()
            .map(|e| states[unique[e.text.as_str()]].clone())
            .collect()
    };
    let states_seconds = started.elapsed().as_secs_f32();
    let started = Instant::now();
    let [it_train, it_val, st_train, st_val] = [0, 1, 3, 4].map(|i| of(sets[i]));
    let tasks = [
        ("intent", [&it_train, &it_val], iy, Intent::ALL.len()),
        (
            "sentiment",
            [&st_train, &st_val],
            sy,
            SentimentLabel::ALL.len(),
        ),
    ]
    .map(|(name, [train, val], y, classes)| Task {
        name,
        train,
        train_y: &y[0],
        val,
        val_y: &y[1],
        classes,
    });
    let trained = train_adapter(
        model.top_block_params(cfg.blocks)?,
        model.attention_heads(),
        model.layer_norm_eps(),
        &tasks,
        cfg,
        seed,
    )?;
    let all = model.embed_states_through(
        &trained.weights.merge(model.top_block_params(cfg.blocks)?)?,
        &states,
    )?;
    let emb = sets
        .iter()
        .map(|set| {
            set.iter()
                .map(|e| all[unique[e.text.as_str()]].clone())
                .collect()
        })
        .collect();
    let report = AdapterReport {
        config: cfg.clone(),
        best_epoch: trained.best_epoch,
        val_accuracy: trained.val_accuracy,
        states_seconds,
        train_seconds: started.elapsed().as_secs_f32(),
    };
    Ok((
        emb,
        Adapted {
            weights: trained.weights,
            report,
        },
    ))
}

#[cfg(test)]
mod tests;
