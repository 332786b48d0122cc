//! The dense layers of a head, stored as 8-bit codes with per-row scales.

use crate::ModelError;

/// A fully connected layer, weights row-major `[out][in]` (the candle /
/// PyTorch `Linear` layout, so training output is stored as is).
///
/// Weights are rounded when the layer is built to 8-bit codes with one f32
/// scale per output row (`w = code · scale`, |code| ≤ 127, the scale set by
/// the row's largest weight) and stored that way, which keeps the committed
/// heads file at a quarter of f32. Because the rounding happens before
/// validation and calibration, the thresholds and temperature are fitted on
/// exactly the weights that are served, and a save/load round trip is exact.
/// Biases stay f32 (they are a rounding error in size).
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// `code · scale`, kept expanded so the forward pass is a plain dot product.
    pub(super) weight: Vec<f32>,
    /// One per output row.
    pub(super) scales: Vec<f32>,
    /// One per output row, kept f32.
    pub(super) bias: Vec<f32>,
    /// Inputs per row.
    pub(super) in_dim: usize,
    /// Rows: one output each.
    pub(super) out_dim: usize,
}

/// Largest stored code magnitude: symmetric, so zero stays exactly zero.
#[cfg(feature = "train")]
const CODE_MAX: f32 = 127.0;

impl Dense {
    /// Builds a layer from trained weights, rounding them to the stored
    /// 8-bit form; refuses mismatched shapes and non-finite weights.
    #[cfg(feature = "train")]
    pub fn new(
        weight: Vec<f32>,
        bias: Vec<f32>,
        in_dim: usize,
        out_dim: usize,
    ) -> Result<Dense, ModelError> {
        check_shape(weight.len(), bias.len(), in_dim, out_dim)?;
        if weight.iter().any(|w| !w.is_finite()) {
            return Err(ModelError::Training(format!(
                "dense layer {in_dim}->{out_dim}: non-finite weight"
            )));
        }
        let scales: Vec<f32> = weight
            .chunks_exact(in_dim)
            .map(|row| row.iter().fold(0f32, |m, w| m.max(w.abs())) / CODE_MAX)
            .collect();
        let codes = quantise_rows(&weight, &scales, in_dim);
        Dense::from_codes(&codes, scales, bias, in_dim, out_dim)
    }

    /// Rebuilds a layer from stored codes and row scales.
    pub(super) fn from_codes(
        codes: &[i8],
        scales: Vec<f32>,
        bias: Vec<f32>,
        in_dim: usize,
        out_dim: usize,
    ) -> Result<Dense, ModelError> {
        check_shape(codes.len(), bias.len(), in_dim, out_dim)?;
        if scales.len() != out_dim || scales.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(ModelError::Training(format!(
                "dense layer {in_dim}->{out_dim}: need {out_dim} finite, non-negative row scales"
            )));
        }
        let weight = codes
            .chunks_exact(in_dim)
            .zip(&scales)
            .flat_map(|(row, &scale)| row.iter().map(move |&c| f32::from(c) * scale))
            .collect();
        Ok(Dense {
            weight,
            scales,
            bias,
            in_dim,
            out_dim,
        })
    }

    /// The stored codes (exact: every weight is `code · scale`).
    #[cfg(feature = "train")]
    pub(super) fn codes(&self) -> Vec<i8> {
        quantise_rows(&self.weight, &self.scales, self.in_dim)
    }

    /// `W x + b` for one input.
    pub(super) fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.weight
            .chunks_exact(self.in_dim)
            .zip(&self.bias)
            .map(|(row, b)| dot(row, x) + b)
            .collect()
    }
}

/// Dot product with 8 independent accumulators so the compiler vectorises it
/// (a plain fold is kept sequential by IEEE ordering rules).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Refuses a layer whose weight and bias counts do not match its shape.
fn check_shape(
    weights: usize,
    biases: usize,
    in_dim: usize,
    out_dim: usize,
) -> Result<(), ModelError> {
    if in_dim == 0 || out_dim == 0 || weights != in_dim * out_dim || biases != out_dim {
        return Err(ModelError::Training(format!(
            "dense layer {in_dim}->{out_dim}: weight has {weights} values, bias {biases}"
        )));
    }
    Ok(())
}

/// Nearest codes for row-major `weight`, one scale per row.
#[cfg(feature = "train")]
fn quantise_rows(weight: &[f32], scales: &[f32], in_dim: usize) -> Vec<i8> {
    weight
        .chunks_exact(in_dim)
        .zip(scales)
        .flat_map(|(row, &scale)| row.iter().map(move |&w| quantise(w, scale)))
        .collect()
}

/// Nearest code for `w` in a row scaled by `scale` (0 for an all-zero row).
#[cfg(feature = "train")]
fn quantise(w: f32, scale: f32) -> i8 {
    if scale > 0.0 {
        (w / scale).round().clamp(-CODE_MAX, CODE_MAX) as i8
    } else {
        0
    }
}

/// Codes travel as `u8` (safetensors in candle has no `i8`), offset by 128.
#[cfg(feature = "train")]
pub(super) fn code_to_byte(code: i8) -> u8 {
    (i16::from(code) + 128) as u8
}

/// The code a stored byte stands for (see [`code_to_byte`]).
pub(super) fn byte_to_code(byte: u8) -> i8 {
    (i16::from(byte) - 128) as i8
}
