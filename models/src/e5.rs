//! [`E5Encoder`]: multilingual-e5-small behind the crate's [`Encoder`] trait,
//! plus a seeded tiny random model for tests that must run without weights.

use std::path::{Path, PathBuf};

use serde_json::json;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{TokenizerImpl, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::adapter::AdapterWeights;
use crate::bert::{BertModel, EmbeddingViews, LinearFormat, FORWARD_CHUNK};
use crate::container::{Container, Header};
use crate::identifiers::strip_identifiers;
use crate::unigram::CompactUnigram;
use crate::{Encoder, ModelError, TextRole};

/// Weight file name inside a models directory (as written by `scripts/fetch-weights.sh`).
pub const WEIGHTS_FILE: &str = "e5-small-q4.bin";
/// Tokenizer file name inside a models directory.
pub const TOKENIZER_FILE: &str = "e5-tokenizer.json";
/// Default token budget per text, including `<s>`/`</s>` and the role prefix.
/// Shop messages are short; 128 keeps attention cheap and bounds worst-case
/// latency, while the model itself would accept 512.
pub const DEFAULT_MAX_TOKENS: usize = 128;
/// Texts are cut to this many bytes (at a char boundary) before tokenising, so
/// a pathological megabyte message cannot stall a worker. 128 tokens of any
/// real text fit comfortably in 16 KiB, so results are unaffected.
pub const MAX_INPUT_BYTES: usize = 16 * 1024;

/// The tokenizer.json pipeline with the lean Unigram vocabulary in place of
/// `tokenizers`' own (281 MB → ~9 MB resident, same ids; see [`crate::unigram`]).
type E5Tokenizer = TokenizerImpl<
    CompactUnigram,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// Blocks of multilingual-e5-small (12 in all) whose mean-pooled outputs the
/// shipped heads read: the 8th keeps more of a message's wording, the 12th
/// more of its topic. The default of `xiaoer train` (without an adapter) and
/// what the intent and sentiment benchmarks use (README, "Intent and
/// sentiment heads").
pub const SHIPPED_FEATURE_LAYERS: [usize; 2] = [8, 12];

/// Load-time options for [`E5Encoder::load_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E5Options {
    /// How linear weights are kept; see [`LinearFormat`].
    pub format: LinearFormat,
    /// Truncation length in tokens, including specials; at most the model's
    /// position count.
    pub max_tokens: usize,
    /// Threads one forward pass splits its linear layers over (see
    /// [`BertModel::set_kernel_threads`]); one per core by default, which on
    /// the 2-core host gave both the lowest single-message latency and the
    /// highest pool throughput (README, "Encoder").
    pub kernel_threads: usize,
}

impl Default for E5Options {
    fn default() -> Self {
        Self {
            format: LinearFormat::default(),
            max_tokens: DEFAULT_MAX_TOKENS,
            kernel_threads: crate::pool::one_per_core(),
        }
    }
}

/// A BERT sentence encoder with its tokenizer, following the E5 recipe:
/// `"query: "`/`"passage: "` prefix, `<s> … </s>`, mean pooling over all real
/// tokens, L2 normalisation. Thread-safe (`&self` only); run it on dedicated
/// threads via [`crate::InferencePool`] because a forward pass is CPU-bound.
pub struct E5Encoder {
    model: BertModel,
    tokenizer: E5Tokenizer,
    pad_id: u32,
    name: String,
}

impl std::fmt::Debug for E5Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E5Encoder")
            .field("name", &self.name)
            .field("model", &self.model)
            .finish()
    }
}

impl E5Encoder {
    /// Loads `e5-small-q4.bin` and `e5-tokenizer.json` from `models_dir` with
    /// default options.
    pub fn load(models_dir: &Path) -> Result<Self, ModelError> {
        Self::load_with(models_dir, E5Options::default())
    }

    /// Loads from `models_dir` with explicit options. The container is read
    /// once and dropped after the tensors are built, so only the model's own
    /// copies stay resident.
    pub fn load_with(models_dir: &Path, options: E5Options) -> Result<Self, ModelError> {
        let weights = models_dir.join(WEIGHTS_FILE);
        let (model, header) = {
            let container = Container::open(&weights)?;
            let mut model = BertModel::from_container(&container, options.format)?;
            model.set_kernel_threads(options.kernel_threads)?;
            (model, container.header().clone())
        }; // the 72 MB file image is freed before the tokenizer is parsed
        let tok_path = models_dir.join(TOKENIZER_FILE);
        let tokenizer = E5Tokenizer::from_file(&tok_path).map_err(|e| ModelError::Load {
            path: tok_path.display().to_string(),
            reason: format!("cannot load tokenizer: {e}"),
        })?;
        Self::assemble(
            model,
            tokenizer,
            &header,
            options.max_tokens,
            "multilingual-e5-small".into(),
        )
        .map_err(|reason| ModelError::Load {
            path: tok_path.display().to_string(),
            reason,
        })
    }

    /// Checks that tokenizer and model agree, then configures truncation in
    /// code (the shipped tokenizer.json has none). Padding (with the model's
    /// pad id, 1 for e5 — not 0) is done per forward chunk in
    /// `encode_batch`, so the tokenizer's own padding stays off.
    fn assemble(
        model: BertModel,
        mut tokenizer: E5Tokenizer,
        header: &Header,
        max_tokens: usize,
        name: String,
    ) -> Result<Self, String> {
        if !(3..=model.max_positions()).contains(&max_tokens) {
            return Err(format!(
                "max_tokens {max_tokens} must be in 3..={} (model positions)",
                model.max_positions()
            ));
        }
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > header.vocab_rows {
            return Err(format!(
                "tokenizer has {vocab} tokens but the model only {} embedding rows",
                header.vocab_rows
            ));
        }
        for (token, id) in [
            ("<s>", header.bos_id),
            ("</s>", header.eos_id),
            ("<pad>", header.pad_id),
        ] {
            if tokenizer.token_to_id(token) != Some(id) {
                return Err(format!(
                    "tokenizer id of {token} differs from the model's {id}"
                ));
            }
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| format!("cannot set truncation: {e}"))?;
        tokenizer.with_padding(None);
        Ok(Self {
            model,
            tokenizer,
            pad_id: header.pad_id,
            name,
        })
    }

    /// A tiny BERT with seeded random weights and a built-in character-level
    /// tokenizer — a **test model**, meaningless as an encoder. It exists so
    /// tests of this and other crates (pool, knowledge base, service) run
    /// without the 72 MB weights while exercising the real code paths:
    /// container parsing, 4-bit embedding rows, the Unigram tokenizer with
    /// SentencePiece word marks (`▁`), attention masking, pooling, truncation
    /// and padding. 2 layers, hidden 64, 4 heads, 128 positions.
    ///
    /// The tokenizer lowercases and knows single characters only: `▁`, ASCII
    /// letters, digits, common punctuation and ~60 frequent shop-related
    /// Chinese characters; runs of anything else become one `<unk>`. Same
    /// seed, same vectors.
    ///
    /// # Panics
    /// Never for any seed: the model and tokenizer are built from constants
    /// in this function; a failure would be a bug here, not bad input.
    pub fn tiny_random(seed: u64) -> Self {
        const CHARS: &str = "▁abcdefghijklmnopqrstuvwxyz0123456789.,!?:'-@#%&()/+\
            ，。！？：、的我你他是了吗呢在不有人这个到哪货发退换款订单买号码什么时候怎么好谢亲快递钱价优惠尺寸颜色衣服鞋";
        let specials = ["<s>", "<pad>", "</s>", "<unk>"];
        let vocab: Vec<(String, f64)> = specials
            .iter()
            .map(|t| ((*t).to_owned(), 0.0))
            .chain(CHARS.chars().map(|c| (c.to_string(), -1.0)))
            .collect();
        let vocab_rows = vocab.len();
        let special_token = |id: usize, tok: &str| {
            json!({"id": id, "content": tok, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        };
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": specials.iter().enumerate().map(|(i, t)| special_token(i, t)).collect::<Vec<_>>(),
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "</s>", "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 0}},
                         {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                "special_tokens": {
                    "<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},
                    "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
            "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
            "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab},
        });
        let tokenizer = E5Tokenizer::from_bytes(spec.to_string().as_bytes())
            .expect("built-in tiny tokenizer spec is valid");
        let header = Header {
            hidden: 64,
            layers: 2,
            heads: 4,
            ffn: 128,
            vocab_rows,
            max_positions: DEFAULT_MAX_TOKENS,
            type_vocab: 2,
            layer_norm_eps: 1e-12,
            n_pieces: 0,
            bos_id: 0,
            eos_id: 2,
            pad_id: 1,
            unk_id: 3,
        };
        let bytes = crate::bert::random_container(&header, seed);
        let container =
            Container::from_bytes(bytes, "tiny-random").expect("generated container is valid");
        let model = BertModel::from_container(&container, LinearFormat::F32)
            .expect("generated model is valid");
        Self::assemble(
            model,
            tokenizer,
            &header,
            DEFAULT_MAX_TOKENS,
            format!("tiny-random-bert-{seed}"),
        )
        .expect("tiny tokenizer matches tiny model")
    }

    /// The e5 role prefix plus the text, cut to [`MAX_INPUT_BYTES`]; a
    /// shopper's message (a query) also loses its order, tracking and phone
    /// numbers ([`strip_identifiers`]).
    fn prefixed(texts: &[&str], role: TextRole) -> Vec<String> {
        let prefix = match role {
            TextRole::Query => "query: ",
            TextRole::Passage => "passage: ",
        };
        texts
            .iter()
            .map(|t| {
                let mut end = t.len().min(MAX_INPUT_BYTES);
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                let text = &t[..end];
                match role {
                    TextRole::Query => format!("{prefix}{}", strip_identifiers(text)),
                    TextRole::Passage => format!("{prefix}{text}"),
                }
            })
            .collect()
    }

    fn tokenize(
        &self,
        texts: &[&str],
        role: TextRole,
    ) -> Result<Vec<tokenizers::Encoding>, ModelError> {
        self.tokenizer
            .encode_batch(Self::prefixed(texts, role), true)
            .map_err(|e| ModelError::Inference(format!("tokenizer: {e}")))
    }

    /// Tokens each text occupies after prefixing and truncation (specials
    /// included): the unit of encoder cost, used for throughput reports.
    pub fn token_counts(&self, texts: &[&str], role: TextRole) -> Result<Vec<usize>, ModelError> {
        Ok(self
            .tokenize(texts, role)?
            .iter()
            .map(|e| e.get_ids().len())
            .collect())
    }

    /// Tokenises all texts, then runs `run(ids, mask, batch, seq)` once per
    /// chunk of up to [`FORWARD_CHUNK`] texts, each chunk right-padded with
    /// the pad id and masked; results come back in input order.
    fn per_chunk<T>(
        &self,
        texts: &[&str],
        role: TextRole,
        run: impl Fn(&[u32], &[u32], usize, usize) -> Result<Vec<T>, ModelError>,
    ) -> Result<Vec<T>, ModelError> {
        let encodings = self.tokenize(texts, role)?;
        let mut out = Vec::with_capacity(encodings.len());
        for chunk in encodings.chunks(FORWARD_CHUNK) {
            let (ids, mask, seq) = self.padded(chunk);
            out.extend(run(&ids, &mask, chunk.len(), seq)?);
        }
        Ok(out)
    }

    /// Right-pads a chunk of encodings with the pad id: row-major `ids` and
    /// `mask` (1 = real token) of `chunk.len() × seq`, and `seq`.
    fn padded(&self, chunk: &[tokenizers::Encoding]) -> (Vec<u32>, Vec<u32>, usize) {
        let seq = chunk.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(chunk.len() * seq);
        let mut mask = Vec::with_capacity(chunk.len() * seq);
        for e in chunk {
            let (real, pad) = (e.get_ids().len(), seq - e.get_ids().len());
            ids.extend_from_slice(e.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_id, pad));
            mask.extend(std::iter::repeat_n(1, real));
            mask.extend(std::iter::repeat_n(0, pad));
        }
        (ids, mask, seq)
    }

    /// Token states of each text after the first `layers` blocks (see
    /// [`BertModel::token_states`]): what adapter training starts from.
    #[cfg(feature = "train")]
    pub fn token_states(
        &self,
        texts: &[&str],
        role: TextRole,
        layers: usize,
    ) -> Result<Vec<candle_core::Tensor>, ModelError> {
        self.per_chunk(texts, role, |ids, mask, batch, seq| {
            self.model.token_states(ids, mask, batch, seq, layers)
        })
    }

    /// Installs the low-rank updates the heads were trained behind, so
    /// [`Encoder::encode_views`] gives their classification embedding.
    /// Retrieval ([`Encoder::encode_batch`]) keeps the shipped blocks.
    pub fn install_adapter(&mut self, adapter: &AdapterWeights) -> Result<(), ModelError> {
        let base = self.model.top_block_params(adapter.blocks())?;
        self.model.set_adapted_top(adapter.merge(base)?)
    }

    /// Pools the classification view after `layers` blocks (see
    /// [`BertModel::set_feature_layers`]); the heads record which ones they
    /// were trained on and the service installs the same.
    /// An empty list restores the default: the final embedding alone.
    pub fn set_feature_layers(&mut self, layers: &[usize]) -> Result<(), ModelError> {
        match layers {
            [] => self.model.set_feature_layers(&[self.model.layer_count()]),
            _ => self.model.set_feature_layers(layers),
        }
    }

    /// The underlying model (hidden size, format, position limit).
    pub fn model(&self) -> &BertModel {
        &self.model
    }
}

impl Encoder for E5Encoder {
    fn adaptable(&self) -> Option<&E5Encoder> {
        Some(self)
    }

    fn dim(&self) -> usize {
        self.model.hidden()
    }

    fn classification_dim(&self) -> usize {
        self.model.classification_dim()
    }

    fn feature_layers(&self) -> &[usize] {
        let layers = self.model.feature_layers();
        if layers == [self.model.layer_count()] {
            &[]
        } else {
            layers
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    /// Both views from one forward per chunk (see [`BertModel::forward_views`]).
    fn encode_views(
        &self,
        texts: &[&str],
        role: TextRole,
    ) -> Result<Vec<EmbeddingViews>, ModelError> {
        self.per_chunk(texts, role, |ids, mask, batch, seq| {
            self.model.forward_views(ids, mask, batch, seq)
        })
    }

    fn encode_batch(&self, texts: &[&str], role: TextRole) -> Result<Vec<Vec<f32>>, ModelError> {
        self.per_chunk(texts, role, |ids, mask, batch, seq| {
            self.model.forward(ids, mask, batch, seq)
        })
    }
}

/// Where tests find the real weights: `$XIAOER_MODELS_DIR`, else
/// `<workspace>/models/weights`. Returns `None` (skip) only when
/// `XIAOER_SKIP_WEIGHT_TESTS=1`; otherwise missing weights are a test failure
/// rather than a silent skip, because CI fetches them first and a quietly
/// skipped accuracy test would hide a broken model.
///
/// # Panics
/// When the weights are absent and skipping was not requested, with a message
/// saying to run `scripts/fetch-weights.sh`. Meant for tests only.
pub fn models_dir_for_tests() -> Option<PathBuf> {
    if std::env::var("XIAOER_SKIP_WEIGHT_TESTS").is_ok_and(|v| v == "1") {
        return None;
    }
    let dir = std::env::var_os("XIAOER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("weights"));
    let missing: Vec<_> = [WEIGHTS_FILE, TOKENIZER_FILE]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "model weights {missing:?} not found in {}: run scripts/fetch-weights.sh \
         (or set XIAOER_MODELS_DIR, or XIAOER_SKIP_WEIGHT_TESTS=1 to skip these tests)",
        dir.display()
    );
    Some(dir)
}

#[cfg(test)]
mod tests;
