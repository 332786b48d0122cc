//! f32 matrix products for the encoder's linear layers with the weights
//! packed once, at load, into the layout the kernel reads.
//!
//! Why not candle's GEMM: a shopper's message is ~20 tokens, so every linear
//! is a `[20 × 384] · [384 × n]` product. The general GEMM re-packs the
//! whole weight panel on every call and works in row tiles sized for large
//! matrices, so a lone message ran at ~37% of a core's FMA peak (README,
//! "Encoder"). Here the weights are already in kernel order, the activation
//! rows are read in place, and rows are split into balanced blocks of at most
//! [`MAX_BLOCK_ROWS`], so short inputs keep every accumulator register busy.
//!
//! The kernel needs AVX2 + FMA ([`PackedLinear::supported`]); on other CPUs
//! the encoder keeps candle's GEMM.

/// Output columns per packed panel: two 8-lane AVX registers.
const PANEL: usize = 16;
/// Most activation rows one kernel call keeps in registers: 6 rows × 2
/// registers of accumulators + 2 of weights + 1 broadcast fit the 16 YMM
/// registers.
const MAX_BLOCK_ROWS: usize = 6;
/// Activation rows per outer chunk: 48 rows of a 1,536-wide input are
/// 295 KB, which stays in L2 while every weight panel streams past it once.
const CHUNK_ROWS: usize = 48;

/// The weights and bias of one `y = x Wᵀ + b` layer in panel order:
/// panel `p` holds output columns `16p .. 16p + 16` for every input index,
/// `[in][16]` contiguous (zero-padded past `out_dim`).
pub(crate) struct PackedLinear {
    in_dim: usize,
    out_dim: usize,
    panels: Vec<f32>,
    /// Bias padded to a whole number of panels.
    bias: Vec<f32>,
}

impl PackedLinear {
    /// Whether this CPU runs the kernel (x86-64 with AVX2 and FMA).
    pub(crate) fn supported() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Packs `Wᵀ` (`[in_dim, out_dim]` row-major) and `b` (`out_dim`).
    ///
    /// # Panics
    /// If `in_dim` is 0 (a layer without inputs is a broken model file,
    /// which `bert::Linear::from_f32` reports as an error first) or the lengths disagree.
    pub(crate) fn new(weight_t: &[f32], bias: &[f32], in_dim: usize, out_dim: usize) -> Self {
        assert!(in_dim > 0, "a linear layer needs at least one input");
        assert_eq!(weight_t.len(), in_dim * out_dim, "Wᵀ is not [in, out]");
        assert_eq!(bias.len(), out_dim, "bias length is not out_dim");
        let panel_count = out_dim.div_ceil(PANEL);
        let mut panels = vec![0f32; panel_count * in_dim * PANEL];
        for (p, panel) in panels.chunks_exact_mut(in_dim * PANEL).enumerate() {
            let first = p * PANEL;
            let width = PANEL.min(out_dim - first);
            for (k, lane) in panel.chunks_exact_mut(PANEL).enumerate() {
                let row = &weight_t[k * out_dim + first..k * out_dim + first + width];
                lane[..width].copy_from_slice(row);
            }
        }
        let mut padded_bias = vec![0f32; panel_count * PANEL];
        padded_bias[..out_dim].copy_from_slice(bias);
        Self {
            in_dim,
            out_dim,
            panels,
            bias: padded_bias,
        }
    }

    /// Input width.
    pub(crate) fn in_dim(&self) -> usize {
        self.in_dim
    }

    /// Output width.
    pub(crate) fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// `Wᵀ` back in `[in_dim, out_dim]` row-major order: what adapter
    /// training reads. Exact (packing only moves values).
    pub(crate) fn weight_t(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.in_dim * self.out_dim];
        for (p, panel) in self.panels.chunks_exact(self.in_dim * PANEL).enumerate() {
            let first = p * PANEL;
            let width = PANEL.min(self.out_dim - first);
            for (k, lane) in panel.chunks_exact(PANEL).enumerate() {
                out[k * self.out_dim + first..k * self.out_dim + first + width]
                    .copy_from_slice(&lane[..width]);
            }
        }
        out
    }

    /// `x Wᵀ + b` for `x` of `[rows, in_dim]` row-major; returns
    /// `[rows, out_dim]` row-major. With `threads`, the rows are split into
    /// contiguous shares, one for the calling thread and one per thread of
    /// that pool (each share streams the whole weight, which the second
    /// reader mostly finds in the shared L3).
    ///
    /// # Panics
    /// If `x` is not a whole number of `in_dim` rows, or the CPU lacks the
    /// kernel's features (callers check [`PackedLinear::supported`] once at
    /// load).
    pub(crate) fn forward(&self, x: &[f32], threads: Option<&rayon::ThreadPool>) -> Vec<f32> {
        assert_eq!(x.len() % self.in_dim, 0, "input is not whole rows");
        assert!(Self::supported(), "packed GEMM needs AVX2 + FMA");
        let rows = x.len() / self.in_dim;
        let mut out = vec![0f32; rows * self.out_dim];
        match threads {
            Some(pool) if rows > 1 => {
                // The calling thread takes the first share, the pool's
                // threads the others.
                let parts = (pool.current_num_threads() + 1).min(rows);
                let share = rows.div_ceil(parts);
                let mut shares = out
                    .chunks_mut(share * self.out_dim)
                    .zip(x.chunks(share * self.in_dim));
                let (first_out, first_x) = shares.next().expect("rows > 1");
                pool.in_place_scope(|scope| {
                    for (out, x) in shares {
                        scope.spawn(move |_| self.forward_rows(x, out));
                    }
                    self.forward_rows(first_x, first_out);
                });
            }
            _ => self.forward_rows(x, &mut out),
        }
        out
    }

    /// The single-threaded product of [`PackedLinear::forward`] into `out`.
    fn forward_rows(&self, x: &[f32], out: &mut [f32]) {
        let rows = x.len() / self.in_dim;
        for first_row in (0..rows).step_by(CHUNK_ROWS) {
            let blocks = balanced_blocks(CHUNK_ROWS.min(rows - first_row));
            for (p, panel) in self.panels.chunks_exact(self.in_dim * PANEL).enumerate() {
                let first_col = p * PANEL;
                let mut tile = Panel {
                    weights: panel,
                    bias: &self.bias[first_col..first_col + PANEL],
                    width: PANEL.min(self.out_dim - first_col),
                    prefetch: true,
                };
                let mut row = first_row;
                for &block in &blocks {
                    let a = &x[row * self.in_dim..(row + block) * self.in_dim];
                    let c = &mut out[row * self.out_dim + first_col..];
                    // SAFETY: `supported()` was asserted above; `rows`
                    // checks the slice lengths it relies on.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        avx2::block(a, &tile, c, self.out_dim)
                    };
                    // Later blocks find the panel in cache.
                    tile.prefetch = false;
                    row += block;
                }
            }
        }
    }
}

/// One 16-column panel of a [`PackedLinear`] as the kernel reads it.
struct Panel<'a> {
    /// `[in_dim][16]` weights.
    weights: &'a [f32],
    /// The panel's 16 bias values.
    bias: &'a [f32],
    /// Real (unpadded) output columns in this panel.
    width: usize,
    /// Fetch the panel ahead of use: set for its first block of rows, when
    /// it comes from memory rather than cache.
    prefetch: bool,
}

/// Splits `rows` into the fewest blocks of at most [`MAX_BLOCK_ROWS`], as
/// even as possible: 20 rows → 5, 5, 5, 5 rather than 6, 6, 6, 2, because a
/// 2-row block leaves the FMA units waiting on their own latency.
fn balanced_blocks(rows: usize) -> Vec<usize> {
    let count = rows.div_ceil(MAX_BLOCK_ROWS);
    (0..count)
        .map(|i| rows / count + usize::from(i < rows % count))
        .collect()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Panel, MAX_BLOCK_ROWS, PANEL};

    /// One block of `a.len() / k` rows (1..=6) against one panel, written
    /// to the first `panel.width` columns of `c`'s rows (`ldc` apart).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block(a: &[f32], panel: &Panel<'_>, c: &mut [f32], ldc: usize) {
        let k = panel.weights.len() / PANEL;
        match a.len() / k {
            1 => rows::<1>(a, panel, c, ldc),
            2 => rows::<2>(a, panel, c, ldc),
            3 => rows::<3>(a, panel, c, ldc),
            4 => rows::<4>(a, panel, c, ldc),
            5 => rows::<5>(a, panel, c, ldc),
            6 => rows::<6>(a, panel, c, ldc),
            n => unreachable!("block of {n} rows (at most {MAX_BLOCK_ROWS})"),
        }
    }

    /// `R` rows × 16 columns, accumulators in registers, bias as the start
    /// value.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn rows<const R: usize>(a: &[f32], panel: &Panel<'_>, c: &mut [f32], ldc: usize) {
        let k = panel.weights.len() / PANEL;
        let (width, prefetch) = (panel.width, panel.prefetch);
        assert!(a.len() >= R * k && panel.bias.len() >= PANEL);
        assert!(width <= PANEL && c.len() >= (R - 1) * ldc + width);
        let (a, w, b) = (a.as_ptr(), panel.weights.as_ptr(), panel.bias.as_ptr());
        // SAFETY (all pointer reads below): indices stay under `R * k` for
        // `a`, `k * 16` for `w` and 16 for `b`, as asserted; the prefetch
        // address may run past the panel, which a prefetch tolerates.
        let start = [_mm256_loadu_ps(b), _mm256_loadu_ps(b.add(8))];
        let mut acc = [start; R];
        for p in 0..k {
            let w0 = _mm256_loadu_ps(w.add(p * PANEL));
            let w1 = _mm256_loadu_ps(w.add(p * PANEL + 8));
            if prefetch {
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add((p + 16) * PANEL) as *const i8);
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_broadcast_ss(&*a.add(r * k + p));
                acc[0] = _mm256_fmadd_ps(x, w0, acc[0]);
                acc[1] = _mm256_fmadd_ps(x, w1, acc[1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let mut row = [0f32; PANEL];
            _mm256_storeu_ps(row.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(row.as_mut_ptr().add(8), acc[1]);
            c[r * ldc..r * ldc + width].copy_from_slice(&row[..width]);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `x Wᵀ + b` the obvious way, in f64, as the reference.
    fn reference(x: &[f32], wt: &[f32], b: &[f32], k: usize, n: usize) -> Vec<f32> {
        let rows = x.len() / k;
        let mut y = vec![0f32; rows * n];
        for r in 0..rows {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|i| x[r * k + i] as f64 * wt[i * n + j] as f64)
                    .sum();
                y[r * n + j] = (dot + b[j] as f64) as f32;
            }
        }
        y
    }

    fn values(seed: u64, n: usize) -> Vec<f32> {
        // Small deterministic pseudo-random values in [-1, 1).
        (0..n as u64)
            .map(|i| {
                let h = (i ^ seed)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(17);
                (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn blocks_are_balanced_and_cover_the_rows() {
        assert_eq!(balanced_blocks(20), vec![5, 5, 5, 5]);
        assert_eq!(balanced_blocks(7), vec![4, 3]);
        assert_eq!(balanced_blocks(6), vec![6]);
        assert_eq!(balanced_blocks(1), vec![1]);
        assert!(balanced_blocks(0).is_empty());
    }

    #[test]
    fn weights_unpack_exactly() {
        let (k, n) = (5, 37);
        let wt = values(1, k * n);
        let packed = PackedLinear::new(&wt, &values(2, n), k, n);
        assert_eq!(packed.weight_t(), wt);
        assert_eq!((packed.in_dim(), packed.out_dim()), (k, n));
    }

    #[test]
    fn no_rows_give_no_output() {
        if !PackedLinear::supported() {
            return;
        }
        let packed = PackedLinear::new(&values(1, 12), &values(2, 4), 3, 4);
        assert!(packed.forward(&[], None).is_empty());
    }

    #[test]
    #[should_panic(expected = "at least one input")]
    fn layer_without_inputs_is_refused() {
        PackedLinear::new(&[], &values(2, 4), 0, 4);
    }

    #[test]
    #[should_panic(expected = "whole rows")]
    fn ragged_input_is_refused() {
        PackedLinear::new(&values(1, 12), &values(2, 4), 3, 4).forward(&[1.0; 7], None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any shape — rows across several chunks, widths that are not a
        /// multiple of the panel — matches the f64 reference.
        #[test]
        fn matches_the_reference(rows in 0usize..110, k in 1usize..70, n in 1usize..50, seed: u64) {
            prop_assume!(PackedLinear::supported());
            let (x, wt, b) = (values(seed, rows * k), values(seed ^ 1, k * n), values(seed ^ 2, n));
            let got = PackedLinear::new(&wt, &b, k, n).forward(&x, None);
            let want = reference(&x, &wt, &b, k, n);
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((g - w).abs() <= 1e-5 * (k as f32).sqrt() + 1e-6, "{g} vs {w}");
            }
        }
    }
}
