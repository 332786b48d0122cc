//! A tiny deterministic encoder for unit tests, so heads, training and the
//! cache can be tested without model weights.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Encoder, ModelError, TextRole};

/// Hashes character unigrams and bigrams into `dim` buckets and
/// L2-normalises: texts sharing characters get similar vectors, which is
/// enough for separable toy problems. Counts texts encoded so cache tests
/// can check that nothing is encoded twice.
pub struct HashEncoder {
    dim: usize,
    encoded: AtomicUsize,
}

impl HashEncoder {
    /// An encoder of `dim`-sized vectors that has encoded nothing yet.
    pub fn new(dim: usize) -> HashEncoder {
        HashEncoder {
            dim,
            encoded: AtomicUsize::new(0),
        }
    }

    /// Number of texts passed to `encode_batch` so far.
    pub fn encoded(&self) -> usize {
        self.encoded.load(Ordering::SeqCst)
    }

    fn bucket(&self, a: char, b: char) -> usize {
        let h = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        (h.rotate_left(17) % self.dim as u64) as usize
    }
}

impl Encoder for HashEncoder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn name(&self) -> &str {
        "hash-test-encoder"
    }

    fn encode_batch(&self, texts: &[&str], _role: TextRole) -> Result<Vec<Vec<f32>>, ModelError> {
        self.encoded.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; self.dim];
                let chars: Vec<char> = t.to_lowercase().chars().collect();
                for (i, &c) in chars.iter().enumerate() {
                    v[self.bucket(c, '\0')] += 1.0;
                    if let Some(&next) = chars.get(i + 1) {
                        v[self.bucket(c, next)] += 0.5;
                    }
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}
