//! A BERT with seeded random weights in the `E5S1` layout, for test models.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;

use crate::container::{write_container, Header, TensorData};

/// Serialises a BERT with seeded random weights in the `E5S1` layout, so test
/// models go through the same container parser and loader as the real one.
/// Weights are uniform in ±0.2 (linears) / ±0.5 (embeddings), layer-norm
/// gains near 1: enough to give distinct, well-conditioned vectors per input.
pub(crate) fn random_container(header: &Header, seed: u64) -> Vec<u8> {
    fn uniform(rng: &mut ChaCha12Rng, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    }
    fn norm(rng: &mut ChaCha12Rng, name: &str, dim: usize, out: &mut Vec<(String, TensorData)>) {
        let gain = uniform(rng, dim, 0.1)
            .into_iter()
            .map(|v| 1.0 + v)
            .collect();
        out.push((format!("{name}.w"), TensorData::F32(gain)));
        out.push((format!("{name}.b"), TensorData::F32(uniform(rng, dim, 0.1))));
    }

    let rng = &mut ChaCha12Rng::seed_from_u64(seed);
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
