//! A memory-lean SentencePiece Unigram model for the `tokenizers` pipeline.
//!
//! Why: `tokenizers`' own `Unigram` indexes the 250k-piece XLM-R vocabulary
//! with a byte trie of per-node hash maps, which measured 281 MB resident —
//! more than the whole model and most of the server's 400 MB budget. This
//! type stores the same vocabulary in ~9 MB (one string blob, offsets,
//! scores and an open-addressing hash index) and runs the same Viterbi
//! search as `tokenizers::models::unigram::Unigram::encode_optimized`
//! (same candidates in the same order, same strict-improvement tie rule,
//! same unknown-character penalty and fusing), so ids are identical.
//!
//! It implements `tokenizers::Model` and deserialises from the `"model"`
//! object of a `tokenizer.json`, so the file's normaliser, pre-tokenizer,
//! post-processor, added tokens, truncation and padding all still come from
//! `tokenizers` unchanged; only the vocabulary lookup is replaced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use tokenizers::models::unigram::UnigramTrainer;
use tokenizers::{Model, Token};

/// Score penalty of an unknown character below the lowest piece score
/// (`K_UNK_PENALTY` in sentencepiece and `tokenizers`).
const UNK_PENALTY: f64 = 10.0;
const EMPTY: u32 = u32::MAX;

/// Unigram vocabulary: pieces with log-probability scores, and `unk`.
#[derive(Debug, Clone)]
pub struct CompactUnigram {
    blob: String,
    offsets: Vec<u32>,
    scores: Vec<f64>,
    /// Open-addressing table of piece ids keyed by FNV-1a of the piece.
    slots: Vec<u32>,
    unk_id: u32,
    min_score: f64,
    max_piece_len: usize,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl CompactUnigram {
    /// Builds the model from `(piece, score)` pairs in id order. Errors on an
    /// empty vocabulary, a missing or out-of-range `unk_id`, or a vocabulary
    /// too large for u32 offsets. Duplicate pieces resolve to the later id,
    /// as in `tokenizers`.
    pub fn new(vocab: Vec<(String, f64)>, unk_id: Option<usize>) -> Result<Self, String> {
        let unk_id = unk_id.ok_or("a Unigram vocabulary needs an unk_id")?;
        if unk_id >= vocab.len() {
            return Err(format!(
                "unk_id {unk_id} is outside the {}-piece vocabulary",
                vocab.len()
            ));
        }
        let total: usize = vocab.iter().map(|(p, _)| p.len()).sum();
        if total >= u32::MAX as usize || vocab.len() >= (EMPTY / 2) as usize {
            return Err("vocabulary too large".into());
        }
        let mut blob = String::with_capacity(total);
        let mut offsets = Vec::with_capacity(vocab.len() + 1);
        let mut scores = Vec::with_capacity(vocab.len());
        offsets.push(0);
        for (piece, score) in &vocab {
            blob.push_str(piece);
            offsets.push(blob.len() as u32);
            scores.push(*score);
        }
        let min_score = scores.iter().copied().fold(f64::INFINITY, f64::min);
        let max_piece_len = vocab.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
        let mut model = Self {
            blob,
            offsets,
            scores,
            slots: vec![EMPTY; (vocab.len() * 2).next_power_of_two()],
            unk_id: unk_id as u32,
            min_score,
            max_piece_len,
        };
        drop(vocab);
        for id in 0..model.scores.len() as u32 {
            let mask = model.slots.len() - 1;
            let mut i = fnv1a(model.piece(id).as_bytes()) as usize & mask;
            loop {
                let slot = model.slots[i];
                if slot == EMPTY || model.piece(slot) == model.piece(id) {
                    model.slots[i] = id;
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        Ok(model)
    }

    fn piece(&self, id: u32) -> &str {
        let i = id as usize;
        &self.blob[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    fn lookup(&self, piece: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut i = fnv1a(piece.as_bytes()) as usize & mask;
        loop {
            match self.slots[i] {
                EMPTY => return None,
                id if self.piece(id) == piece => return Some(id),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Best segmentation of `text` as `(start, end, id)` byte ranges, with
    /// runs of unknown characters fused into one `unk` range.
    fn segment(&self, text: &str) -> Vec<(usize, usize, u32)> {
        #[derive(Clone, Copy)]
        struct Best {
            score: f64,
            start: usize,
            id: u32,
            set: bool,
        }
        let n = text.len();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![
            Best {
                score: 0.0,
                start: 0,
                id: 0,
                set: false
            };
            n + 1
        ];
        // A candidate replaces a node only if it is the first or strictly better.
        fn relax(best: &mut [Best], end: usize, start: usize, score: f64, id: u32) {
            let node = &mut best[end];
            if !node.set || score > node.score {
                *node = Best {
                    score,
                    start,
                    id,
                    set: true,
                };
            }
        }
        let mut start = 0;
        while let Some(c) = text[start..].chars().next() {
            let here = best[start].score;
            let char_len = c.len_utf8();
            let mut single = false;
            // Every vocabulary piece that is a prefix of text[start..], shortest
            // first — the order a trie's common-prefix search yields them.
            for (offset, ch) in text[start..].char_indices() {
                let end = start + offset + ch.len_utf8();
                if end - start > self.max_piece_len {
                    break;
                }
                if let Some(id) = self.lookup(&text[start..end]) {
                    relax(&mut best, end, start, here + self.scores[id as usize], id);
                    single |= end - start == char_len;
                }
            }
            if !single {
                relax(
                    &mut best,
                    start + char_len,
                    start,
                    here + unk_score,
                    self.unk_id,
                );
            }
            start += char_len;
        }
        let mut out: Vec<(usize, usize, u32)> = Vec::new();
        let mut end = n;
        while end > 0 {
            let node = best[end];
            match out.last_mut() {
                Some(last) if node.id == self.unk_id && last.2 == self.unk_id => {
                    last.0 = node.start
                }
                _ => out.push((node.start, end, node.id)),
            }
            end = node.start;
        }
        out.reverse();
        out
    }
}

impl Model for CompactUnigram {
    /// Training is out of scope; the trait still requires a trainer type, so
    /// this is the stock Unigram trainer (it trains a `tokenizers` Unigram).
    type Trainer = UnigramTrainer;

    fn tokenize(&self, sequence: &str) -> tokenizers::Result<Vec<Token>> {
        Ok(self
            .segment(sequence)
            .into_iter()
            .map(|(start, end, id)| {
                let value = &sequence[start..end];
                // A fused unknown run keeps the unk id unless the whole run
                // happens to be a piece (mirrors `tokenizers`' lookup).
                let id = if id == self.unk_id {
                    self.lookup(value).unwrap_or(id)
                } else {
                    id
                };
                Token::new(id, value.to_owned(), (start, end))
            })
            .collect())
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.lookup(token)
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        ((id as usize) < self.scores.len()).then(|| self.piece(id).to_owned())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        (0..self.scores.len() as u32)
            .map(|id| (self.piece(id).to_owned(), id))
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.scores.len()
    }

    /// Writes `[prefix-]unigram.json` in the `tokenizers` Unigram format.
    fn save(&self, folder: &Path, prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        let name = match prefix {
            Some(p) => format!("{p}-unigram.json"),
            None => "unigram.json".to_owned(),
        };
        let vocab: Vec<(&str, f64)> = (0..self.scores.len() as u32)
            .map(|id| (self.piece(id), self.scores[id as usize]))
            .collect();
        let json = serde_json::json!({"type": "Unigram", "unk_id": self.unk_id, "vocab": vocab});
        let path = folder.join(name);
        std::fs::write(&path, serde_json::to_vec(&json)?)?;
        Ok(vec![path])
    }

    fn get_trainer(&self) -> UnigramTrainer {
        UnigramTrainer::default()
    }
}

impl<'de> Deserialize<'de> for CompactUnigram {
    /// Reads the `"model"` object of a tokenizer.json (`type` must be
    /// `Unigram`; byte fallback is rejected because this model does not
    /// implement it and multilingual-e5 does not use it).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            kind: String,
            unk_id: Option<usize>,
            vocab: Vec<(String, f64)>,
            #[serde(default)]
            byte_fallback: bool,
        }
        let raw = Raw::deserialize(deserializer)?;
        if raw.kind != "Unigram" {
            return Err(serde::de::Error::custom(format!(
                "expected a Unigram model, found {}",
                raw.kind
            )));
        }
        if raw.byte_fallback {
            return Err(serde::de::Error::custom(
                "Unigram byte_fallback is not supported",
            ));
        }
        CompactUnigram::new(raw.vocab, raw.unk_id).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
