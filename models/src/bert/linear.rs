//! The linear layers and layer norms of a BERT block: weight storage in the
//! chosen [`LinearFormat`], the packed f32 kernel, and GELU.

use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Storage, Tensor};
use rayon::ThreadPool;

use crate::container::Container;
use crate::packed::PackedLinear;
use crate::ModelError;

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
pub(super) enum Weight {
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
pub(super) struct Linear {
    /// `W` in the layer's storage format.
    pub(super) weight: Weight,
    /// `b`, `[out]`.
    pub(super) bias: Tensor,
}

impl Linear {
    /// Loads one layer, or several with the same input stacked along the
    /// output dimension (`names.len()·out_dim` outputs), e.g. fused Q/K/V.
    pub(super) fn load(
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
    pub(super) fn from_f32(weight_t: Tensor, bias: Tensor) -> candle_core::Result<Self> {
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
    pub(super) fn f32_params(&self) -> candle_core::Result<Option<(Tensor, Tensor)>> {
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
    pub(super) fn forward(
        &self,
        x: &Tensor,
        threads: Option<&ThreadPool>,
    ) -> candle_core::Result<Tensor> {
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
    pub(super) fn forward_gelu(
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
pub(super) fn erf(x: f32) -> f32 {
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
pub(super) struct LayerNorm {
    /// Gain, `[dim]`.
    pub(super) weight: Tensor,
    /// Shift, `[dim]`.
    pub(super) bias: Tensor,
    /// Added to the variance; the model's configured epsilon.
    pub(super) eps: f32,
}

impl LayerNorm {
    /// Reads `{name}.w` and `{name}.b` from the container.
    pub(super) fn load(
        c: &Container,
        name: &str,
        dim: usize,
        eps: f32,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            weight: c.f32_tensor(&format!("{name}.w"), &[dim])?,
            bias: c.f32_tensor(&format!("{name}.b"), &[dim])?,
            eps,
        })
    }

    /// Normalises each row of `x`.
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}
