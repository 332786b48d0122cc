//! On-disk cache of sentence embeddings for training and benchmarks.
//!
//! Encoding is the slow part of every run (milliseconds per text on CPU,
//! microseconds for the heads), and the same texts are embedded again on
//! every re-run with another seed or head size. The cache stores each vector
//! under a key derived from the model name, the role and the text, so a
//! re-run only encodes new or edited texts.
//!
//! Format: one append-only file per model, `<model>-<dim>.embcache`: a header
//! (`XEC1`, u32 dim) followed by records of a 16-byte key (truncated SHA-256)
//! and `dim` little-endian f32. Records are appended after every batch, so an
//! interrupted run keeps its progress; a torn last record is dropped on open.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::{Encoder, ModelError, TextRole};

const MAGIC: &[u8; 4] = b"XEC1";
const HEADER_LEN: usize = 8;
const KEY_LEN: usize = 16;
/// Texts per encoder call: large enough to amortise per-call overhead, small
/// enough that padding to the longest text (texts are length-sorted) is cheap.
const BATCH: usize = 32;

type Key = [u8; KEY_LEN];

/// Embeddings of one encoder, loaded in memory and backed by a file.
pub struct EmbeddingCache {
    path: PathBuf,
    model: String,
    dim: usize,
    entries: HashMap<Key, Vec<f32>>,
}

impl EmbeddingCache {
    /// Opens (or creates) the cache file for `encoder` in `cache_dir`. A file
    /// with another header is replaced: it can only be stale or foreign.
    pub fn open(cache_dir: &Path, encoder: &dyn Encoder) -> Result<EmbeddingCache, ModelError> {
        let model = encoder.name().to_string();
        let dim = encoder.dim();
        let safe: String = model
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = cache_dir.join(format!("{safe}-{dim}.embcache"));
        let write_err = |e: std::io::Error| ModelError::Write {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(cache_dir).map_err(write_err)?;
        let mut entries = HashMap::new();
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&(dim as u32).to_le_bytes());
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(write_err(e)),
        };
        if bytes.len() >= HEADER_LEN && bytes[..HEADER_LEN] == header[..] {
            let record = KEY_LEN + 4 * dim;
            let body = &bytes[HEADER_LEN..];
            let whole = body.len() / record * record;
            for rec in body[..whole].chunks_exact(record) {
                let mut key = [0u8; KEY_LEN];
                key.copy_from_slice(&rec[..KEY_LEN]);
                let vector = rec[KEY_LEN..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                entries.insert(key, vector);
            }
            if whole != body.len() {
                tracing::warn!(path = %path.display(), "dropping torn record at end of embedding cache");
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(write_err)?;
                file.set_len((HEADER_LEN + whole) as u64)
                    .map_err(write_err)?;
            }
        } else {
            if !bytes.is_empty() {
                tracing::warn!(path = %path.display(), "embedding cache has a foreign header; starting afresh");
            }
            std::fs::write(&path, &header).map_err(write_err)?;
        }
        Ok(EmbeddingCache {
            path,
            model,
            dim,
            entries,
        })
    }

    /// Number of cached vectors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn key(&self, role: TextRole, text: &str) -> Key {
        let mut h = Sha256::new();
        h.update(self.model.as_bytes());
        h.update([0u8]);
        h.update(match role {
            TextRole::Query => b"q",
            TextRole::Passage => b"p",
        });
        if role == TextRole::Query {
            // Queries are encoded without their identifiers: vectors made
            // under another stripping rule must not be reused.
            h.update(crate::identifiers::RULE_VERSION.to_le_bytes());
        }
        h.update([0u8]);
        h.update(text.as_bytes());
        let digest = h.finalize();
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&digest[..KEY_LEN]);
        key
    }

    /// Embeddings of `texts` in order, encoding (in length-sorted batches)
    /// and persisting only those not cached yet. `encoder` must be the one
    /// the cache was opened for.
    pub fn embed(
        &mut self,
        encoder: &dyn Encoder,
        texts: &[&str],
        role: TextRole,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if encoder.name() != self.model || encoder.dim() != self.dim {
            return Err(ModelError::Inference(format!(
                "embedding cache for {} (dim {}) used with {} (dim {})",
                self.model,
                self.dim,
                encoder.name(),
                encoder.dim()
            )));
        }
        let keys: Vec<Key> = texts.iter().map(|t| self.key(role, t)).collect();
        let mut missing: Vec<(Key, &str)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (key, text) in keys.iter().zip(texts) {
            if !self.entries.contains_key(key) && seen.insert(*key) {
                missing.push((*key, text));
            }
        }
        if !missing.is_empty() {
            self.encode_missing(encoder, missing, role)?;
        }
        keys.iter()
            .map(|k| {
                self.entries
                    .get(k)
                    .cloned()
                    .ok_or_else(|| ModelError::Inference("embedding missing after encoding".into()))
            })
            .collect()
    }

    fn encode_missing(
        &mut self,
        encoder: &dyn Encoder,
        mut missing: Vec<(Key, &str)>,
        role: TextRole,
    ) -> Result<(), ModelError> {
        missing.sort_by_key(|(_, t)| t.chars().count());
        let write_err = |e: std::io::Error| ModelError::Write {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        };
        let file: File = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(write_err)?;
        let mut out = BufWriter::new(file);
        let total = missing.len();
        let start = Instant::now();
        tracing::info!(model = %self.model, texts = total, "encoding texts not in the embedding cache");
        for (done, batch) in missing.chunks(BATCH).enumerate() {
            let batch_texts: Vec<&str> = batch.iter().map(|(_, t)| *t).collect();
            let vectors = encoder.encode_batch(&batch_texts, role)?;
            if vectors.len() != batch.len() || vectors.iter().any(|v| v.len() != self.dim) {
                return Err(ModelError::Inference(format!(
                    "encoder returned {} vectors for {} texts (or wrong dimension)",
                    vectors.len(),
                    batch.len()
                )));
            }
            let mut buf = Vec::with_capacity(batch.len() * (KEY_LEN + 4 * self.dim));
            for ((key, _), v) in batch.iter().zip(&vectors) {
                buf.extend_from_slice(key);
                for x in v {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
            }
            out.write_all(&buf)
                .and_then(|()| out.flush())
                .map_err(write_err)?;
            for ((key, _), v) in batch.iter().zip(vectors) {
                self.entries.insert(*key, v);
            }
            let encoded = ((done + 1) * BATCH).min(total);
            if (done + 1) % 20 == 0 || encoded == total {
                let secs = start.elapsed().as_secs_f32().max(1e-3);
                tracing::info!(
                    encoded,
                    total,
                    per_second = encoded as f32 / secs,
                    "encoding"
                );
            }
        }
        Ok(())
    }
}

/// An encoder's classification view ([`Encoder::encode_views`]) as an
/// encoder of its own, so the cache keys, sizes and fills it like any other
/// and training and benchmarks read exactly the features the service hands
/// the heads. Named after the feature layers, so views pooled differently
/// never share a cache file; without feature layers it is the encoder's own
/// embedding under the encoder's own name, and old cache files stay valid.
pub struct ClassificationView<'a> {
    inner: &'a dyn Encoder,
    name: String,
}

impl<'a> ClassificationView<'a> {
    /// The classification view of `inner` as it is configured now. Refused
    /// with an adapter installed: the name could not tell two adapters apart,
    /// and adapter training embeds through its own cached token states.
    pub fn new(inner: &'a dyn Encoder) -> Result<ClassificationView<'a>, ModelError> {
        if let Some(blocks) = inner
            .adaptable()
            .map(|e5| e5.model().adapted_blocks())
            .filter(|&blocks| blocks > 0)
        {
            return Err(ModelError::Inference(format!(
                "{} has {blocks} adapted block(s); its classification view is not cached",
                inner.name()
            )));
        }
        let name = match inner.feature_layers() {
            [] => inner.name().to_string(),
            layers => {
                let layers: Vec<String> = layers.iter().map(|l| l.to_string()).collect();
                format!("{}+layers-{}", inner.name(), layers.join("-"))
            }
        };
        Ok(ClassificationView { inner, name })
    }
}

impl Encoder for ClassificationView<'_> {
    fn dim(&self) -> usize {
        self.inner.classification_dim()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn encode_batch(&self, texts: &[&str], role: TextRole) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(self
            .inner
            .encode_views(texts, role)?
            .into_iter()
            .map(|v| v.classification)
            .collect())
    }
}

/// Opens the cache for `encoder` in `cache_dir` and embeds `texts` as queries
/// (the E5 role for classification).
pub fn embed_queries(
    cache_dir: &Path,
    encoder: &dyn Encoder,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>, ModelError> {
    EmbeddingCache::open(cache_dir, encoder)?.embed(encoder, texts, TextRole::Query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::HashEncoder;

    #[test]
    fn second_run_encodes_nothing_and_returns_same_vectors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let enc = HashEncoder::new(16);
        let texts = ["where is my parcel", "转人工", "where is my parcel", "hi"];
        let first = embed_queries(dir.path(), &enc, &texts).expect("embed");
        assert_eq!(enc.encoded(), 3, "duplicates are encoded once");
        assert_eq!(first[0], first[2]);
        let again = embed_queries(dir.path(), &enc, &texts).expect("embed");
        assert_eq!(enc.encoded(), 3, "nothing re-encoded");
        assert_eq!(again, first);
        // A new text only encodes itself; the passage role is a different key.
        let mut cache = EmbeddingCache::open(dir.path(), &enc).expect("open");
        assert_eq!(cache.len(), 3);
        cache
            .embed(&enc, &["hi", "new one"], TextRole::Query)
            .expect("embed");
        assert_eq!(enc.encoded(), 4);
        cache
            .embed(&enc, &["hi"], TextRole::Passage)
            .expect("embed");
        assert_eq!(enc.encoded(), 5);
    }

    #[test]
    fn torn_tail_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let enc = HashEncoder::new(16);
        embed_queries(dir.path(), &enc, &["a", "b"]).expect("embed");
        let path = dir.path().join("hash-test-encoder-16.embcache");
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).expect("write");
        let mut cache = EmbeddingCache::open(dir.path(), &enc).expect("open");
        assert_eq!(cache.len(), 2);
        cache.embed(&enc, &["c"], TextRole::Query).expect("embed");
        let cache = EmbeddingCache::open(dir.path(), &enc).expect("reopen");
        assert_eq!(cache.len(), 3, "record after the repaired tail is aligned");
    }
}
