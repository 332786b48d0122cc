//! A deterministic stand-in for the sentence encoder so index, hybrid and
//! reload tests run without model weights: hashed bag of lowercase English
//! words and Chinese character bigrams, L2-normalised.

use xiaoer_models::{Encoder, ModelError, TextRole};

pub(crate) struct HashEncoder {
    pub dim: usize,
}

impl HashEncoder {
    pub(crate) fn new() -> Self {
        HashEncoder { dim: 256 }
    }

    pub(crate) fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dim];
        let lower = text.to_lowercase();
        let mut bump = |feature: &str| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in feature.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
            v[(h % self.dim as u64) as usize] += 1.0;
        };
        for word in lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            bump(word);
        }
        let han: Vec<char> = lower
            .chars()
            .filter(|c| !c.is_ascii() && c.is_alphanumeric())
            .collect();
        for pair in han.windows(2) {
            bump(&pair.iter().collect::<String>());
        }
        for c in &han {
            bump(&c.to_string());
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
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
        Ok(texts.iter().map(|t| self.embed(t)).collect())
    }
}
