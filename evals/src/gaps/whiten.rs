//! Whitening of sentence embeddings before they are compared.
//!
//! E5 vectors crowd into a narrow cone: two unrelated shop questions score
//! about 0.80, two paraphrases about 0.85, and a few directions that every
//! shop message shares dominate the cosine. Whitening (subtract the mean,
//! rotate onto the covariance's eigenvectors, scale each by the inverse
//! square root of its variance, as in Su et al. 2021, "Whitening sentence
//! representations") gives each direction equal weight, so what tells two
//! questions apart counts as much as what they share.

/// A fitted whitening map: `y = L⁻¹ (x - mean)`, then unit length, where
/// `L Lᵀ` is the covariance plus [`RIDGE`]. Any two whitening maps differ by
/// a rotation, so cosines are the same as with PCA whitening; the Cholesky
/// factor is simply the cheapest to compute.
#[derive(Debug, Clone)]
pub struct Whitening {
    mean: Vec<f64>,
    /// Lower-triangular Cholesky factor, row by row (row `i` has `i + 1`
    /// entries).
    factor: Vec<Vec<f64>>,
}

/// Added to every variance before scaling, so directions with almost no
/// variance (noise) are not blown up. Of the order of a typical direction's
/// variance for unit vectors in a few hundred dimensions.
pub const RIDGE: f64 = 1e-3;

impl Whitening {
    /// Fits the map on `vectors` (all of the same length).
    pub fn fit(vectors: &[Vec<f32>]) -> Whitening {
        let dim = vectors.first().map_or(0, Vec::len);
        let n = vectors.len().max(1) as f64;
        let mut mean = vec![0f64; dim];
        for v in vectors {
            for (m, x) in mean.iter_mut().zip(v) {
                *m += f64::from(*x) / n;
            }
        }
        // Lower triangle of the covariance, row by row.
        let mut covariance: Vec<Vec<f64>> = (0..dim).map(|i| vec![0f64; i + 1]).collect();
        for v in vectors {
            let centred: Vec<f64> = v
                .iter()
                .zip(&mean)
                .map(|(x, m)| f64::from(*x) - m)
                .collect();
            for (i, row) in covariance.iter_mut().enumerate() {
                let ci = centred[i] / n;
                for (cell, cj) in row.iter_mut().zip(&centred) {
                    *cell += ci * cj;
                }
            }
        }
        for (i, row) in covariance.iter_mut().enumerate() {
            row[i] += RIDGE;
        }
        Whitening {
            mean,
            factor: cholesky(covariance),
        }
    }

    /// `vector` whitened and scaled to unit length.
    pub fn apply(&self, vector: &[f32]) -> Vec<f32> {
        // Forward substitution: L y = x - mean.
        let mut out: Vec<f64> = Vec::with_capacity(self.factor.len());
        for (row, (x, m)) in self.factor.iter().zip(vector.iter().zip(&self.mean)) {
            let (diagonal, before) = row.split_last().expect("a row has its diagonal");
            let known: f64 = before.iter().zip(&out).map(|(l, y)| l * y).sum();
            out.push((f64::from(*x) - m - known) / diagonal);
        }
        let norm = out
            .iter()
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt()
            .max(f64::EPSILON);
        out.iter().map(|x| (x / norm) as f32).collect()
    }
}

/// Cholesky factor of a symmetric positive-definite matrix given as its
/// lower triangle, row by row; returned in the same shape.
pub fn cholesky(a: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let mut l: Vec<Vec<f64>> = Vec::with_capacity(a.len());
    for (i, row) in a.iter().enumerate() {
        let mut out: Vec<f64> = Vec::with_capacity(i + 1);
        for j in 0..i {
            let known: f64 = out.iter().zip(&l[j][..j]).map(|(x, y)| x * y).sum();
            out.push((row[j] - known) / l[j][j]);
        }
        let squares: f64 = out.iter().map(|x| x * x).sum();
        out.push((row[i] - squares).max(f64::MIN_POSITIVE).sqrt());
        l.push(out);
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_rebuilds_the_matrix() {
        let lower = vec![vec![4.0], vec![1.0, 3.0], vec![0.5, -0.2, 1.0]];
        let l = cholesky(lower.clone());
        for i in 0..3 {
            for j in 0..=i {
                let rebuilt: f64 = (0..=j).map(|k| l[i][k] * l[j][k]).sum();
                assert!((rebuilt - lower[i][j]).abs() < 1e-12, "{i},{j}: {rebuilt}");
            }
        }
    }

    #[test]
    fn whitening_equalises_a_dominant_shared_direction() {
        // Every vector shares a large first component; the second tells
        // two groups apart. Raw cosine calls all of them near-identical;
        // whitened, the groups are far apart.
        let vectors: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let side = if i % 2 == 0 { 0.1 } else { -0.1 };
                let noise = (i as f32 * 0.37).sin() * 0.01;
                let v = [1.0, side + noise, noise];
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / n).collect()
            })
            .collect();
        let raw: f32 = vectors[0].iter().zip(&vectors[1]).map(|(a, b)| a * b).sum();
        assert!(raw > 0.95, "{raw}");
        let w = Whitening::fit(&vectors);
        let (a, b, c) = (
            w.apply(&vectors[0]),
            w.apply(&vectors[1]),
            w.apply(&vectors[2]),
        );
        let across: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let within: f32 = a.iter().zip(&c).map(|(x, y)| x * y).sum();
        assert!(
            across < 0.0 && within > 0.5,
            "across {across}, within {within}"
        );
    }
}
