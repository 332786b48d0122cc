//! The knowledge base's vectors on disk, so a restart re-encodes only the
//! titles, questions and answers that changed since the last run: encoding
//! them is almost all of `serve`'s start-up time.
//!
//! The file is named after a fingerprint of the encoder's behaviour — the
//! bits of its embedding of a fixed probe text — so other weights, another
//! adapter or changed arithmetic select another file instead of reusing
//! stale vectors. Inside, vectors are keyed by role and exact text, so an
//! edited article misses and is encoded afresh. A missing, truncated or
//! foreign file is an empty cache, never an error: the cost is one full
//! encode.
//!
//! Format: `XKB1`, u32 dim, then records of u8 role, u32 text length, the
//! UTF-8 text and `dim` little-endian f32. Written to a temporary file and
//! renamed, so a crash leaves the old file or the new one.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use xiaoer_models::{Encoder, ModelError, TextRole};

use crate::error::KbError;

const MAGIC: &[u8; 4] = b"XKB1";
/// Embedded to fingerprint the encoder; any fixed text would do.
const PROBE: &str = "店小二 xiaoer knowledge-base cache probe 7 天无理由退货";

/// Vectors known before encoding: (role, text) → vector.
pub type KnownVectors = HashMap<(TextRole, String), Vec<f32>>;

/// Where one encoder's knowledge-base vectors are kept.
#[derive(Debug, Clone)]
pub struct VectorCache {
    path: PathBuf,
    dim: usize,
}

fn role_code(role: TextRole) -> u8 {
    match role {
        TextRole::Query => 0,
        TextRole::Passage => 1,
    }
}

impl VectorCache {
    /// The cache file for `encoder` in `dir` (created if needed). Costs one
    /// encode of a short probe text.
    pub fn for_encoder(dir: &Path, encoder: &dyn Encoder) -> Result<VectorCache, KbError> {
        let probe = encoder.encode_batch(&[PROBE], TextRole::Query)?;
        let mut hash = Sha256::new();
        hash.update(encoder.name().as_bytes());
        for x in probe.iter().flatten() {
            hash.update(x.to_le_bytes());
        }
        let fingerprint: String = hash.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        fs::create_dir_all(dir).map_err(|source| KbError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(VectorCache {
            path: dir.join(format!("kb-vectors-{fingerprint}.bin")),
            dim: encoder.dim(),
        })
    }

    /// The file this cache reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything the file holds; empty if it is missing or unreadable.
    pub fn load(&self) -> KnownVectors {
        let Ok(bytes) = fs::read(&self.path) else {
            return KnownVectors::new();
        };
        let known = parse(&bytes, self.dim);
        if known.is_none() {
            tracing::warn!(path = %self.path.display(), "knowledge-base vector cache unreadable; encoding afresh");
        }
        known.unwrap_or_default()
    }

    /// Replaces the file with `known`; a failure is logged, not returned:
    /// the cache only saves time.
    pub fn save(&self, known: &KnownVectors) {
        let mut out = Vec::with_capacity(8 + known.len() * (self.dim * 4 + 64));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        for ((role, text), vector) in known {
            if vector.len() != self.dim {
                continue;
            }
            out.push(role_code(*role));
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
            for x in vector {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        let tmp = self.path.with_extension("tmp");
        let written = fs::File::create(&tmp)
            .and_then(|mut file| file.write_all(&out))
            .and_then(|()| fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the knowledge-base vector cache");
        }
    }
}

/// Reads the format above; `None` if anything is off.
fn parse(bytes: &[u8], dim: usize) -> Option<KnownVectors> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (header, mut rest) = rest.split_at_checked(4)?;
    if u32::from_le_bytes(header.try_into().ok()?) as usize != dim {
        return None;
    }
    let mut known = KnownVectors::new();
    while !rest.is_empty() {
        let (&code, after) = rest.split_first()?;
        let role = match code {
            0 => TextRole::Query,
            1 => TextRole::Passage,
            _ => return None,
        };
        let (len, after) = after.split_at_checked(4)?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let (text, after) = after.split_at_checked(len)?;
        let (floats, after) = after.split_at_checked(dim * 4)?;
        let vector = floats
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        known.insert((role, String::from_utf8(text.to_vec()).ok()?), vector);
        rest = after;
    }
    Some(known)
}

/// An encoder that answers texts it has seen from memory (a reload's
/// unchanged articles, the cache file, a report reusing `serve`'s vectors)
/// and passes the rest to `inner` in one batch.
pub struct Remembering<'a> {
    inner: &'a dyn Encoder,
    known: KnownVectors,
}

impl<'a> Remembering<'a> {
    /// `inner`, answering the texts of `known` without encoding them.
    pub fn new(inner: &'a dyn Encoder, known: KnownVectors) -> Self {
        Remembering { inner, known }
    }
}

impl Encoder for Remembering<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn encode_batch(&self, texts: &[&str], role: TextRole) -> Result<Vec<Vec<f32>>, ModelError> {
        let missing: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| !self.known.contains_key(&(role, (*t).to_string())))
            .collect();
        let mut fresh = if missing.is_empty() {
            Vec::new()
        } else {
            self.inner.encode_batch(&missing, role)?
        }
        .into_iter();
        texts
            .iter()
            .map(|t| match self.known.get(&(role, (*t).to_string())) {
                Some(v) => Ok(v.clone()),
                None => fresh.next().ok_or_else(|| {
                    ModelError::Inference("the encoder returned fewer vectors than texts".into())
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::HashEncoder;

    #[test]
    fn vectors_round_trip_and_damage_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let enc = HashEncoder::new();
        let cache = VectorCache::for_encoder(dir.path(), &enc).unwrap();
        assert!(cache.load().is_empty(), "no file yet");
        let mut known = KnownVectors::new();
        known.insert(
            (TextRole::Query, "运费险怎么赔".into()),
            vec![0.5; enc.dim()],
        );
        known.insert(
            (TextRole::Passage, "Returns within 7 days.".into()),
            vec![-1.0; enc.dim()],
        );
        cache.save(&known);
        assert_eq!(cache.load(), known);
        let bytes = fs::read(cache.path()).unwrap();
        fs::write(cache.path(), &bytes[..bytes.len() - 3]).unwrap();
        assert!(cache.load().is_empty(), "a torn file is an empty cache");
        fs::write(cache.path(), b"something else").unwrap();
        assert!(cache.load().is_empty());
    }

    #[test]
    fn another_encoder_uses_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = VectorCache::for_encoder(dir.path(), &HashEncoder::new()).unwrap();
        let b = VectorCache::for_encoder(dir.path(), &HashEncoder { dim: 8 }).unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(
            a.path(),
            VectorCache::for_encoder(dir.path(), &HashEncoder::new())
                .unwrap()
                .path(),
            "the same encoder finds its file again"
        );
    }
}
