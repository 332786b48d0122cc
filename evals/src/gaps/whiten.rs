//! Whitening of sentence embeddings before they are compared.
//!
//! E5 vectors crowd into a narrow cone: two unrelated shop questions score
//! about 0.80, two paraphrases about 0.85, and a few directions that every
//! shop message shares dominate the cosine. Whitening (subtract the mean,
//! rotate onto the covariance's eigenvectors, scale each by the inverse
//! square root of its variance, as in Su et al. 2021, "Whitening sentence
//! representations") gives each direction equal weight, so what tells two
//! questions apart counts as much as what they share.

/// A fitted whitening map: `y = (x - mean) · W`, then unit length.
#[derive(Debug, Clone)]
pub struct Whitening {
    mean: Vec<f32>,
    /// Column-major `dim × dim`: column `k` is eigenvector `k` divided by
    /// the square root of its eigenvalue plus the ridge.
    columns: Vec<Vec<f64>>,
}

/// Added to every variance before scaling, so directions with almost no
/// variance (noise) are not blown up. Of the order of a typical direction's
/// variance for unit vectors in a few hundred dimensions.
pub const RIDGE: f64 = 1e-3;

impl Whitening {
    /// Fits the map on `vectors` (all of the same length, at least two).
    pub fn fit(vectors: &[Vec<f32>]) -> Whitening {
        let dim = vectors.first().map_or(0, Vec::len);
        let n = vectors.len().max(1) as f64;
        let mut mean = vec![0f64; dim];
        for v in vectors {
            for (m, x) in mean.iter_mut().zip(v) {
                *m += f64::from(*x) / n;
            }
        }
        let mut covariance = vec![vec![0f64; dim]; dim];
        for v in vectors {
            let centred: Vec<f64> = v
                .iter()
                .zip(&mean)
                .map(|(x, m)| f64::from(*x) - m)
                .collect();
            for (i, row) in covariance.iter_mut().enumerate() {
                let ci = centred[i] / n;
                for (cell, cj) in row[i..].iter_mut().zip(&centred[i..]) {
                    *cell += ci * cj;
                }
            }
        }
        // Mirror the upper triangle into the lower one.
        for i in 1..dim {
            let (upper, lower) = covariance.split_at_mut(i);
            for (j, row) in upper.iter().enumerate() {
                lower[0][j] = row[i];
            }
        }
        let (values, vectors_of) = symmetric_eigen(covariance);
        let columns = (0..dim)
            .map(|k| {
                let scale = 1.0 / (values[k].max(0.0) + RIDGE).sqrt();
                (0..dim).map(|i| vectors_of[i][k] * scale).collect()
            })
            .collect();
        Whitening {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            columns,
        }
    }

    /// `vector` whitened and scaled to unit length.
    pub fn apply(&self, vector: &[f32]) -> Vec<f32> {
        let centred: Vec<f64> = vector
            .iter()
            .zip(&self.mean)
            .map(|(x, m)| f64::from(x - m))
            .collect();
        let out: Vec<f64> = self
            .columns
            .iter()
            .map(|column| column.iter().zip(&centred).map(|(w, x)| w * x).sum())
            .collect();
        let norm = out
            .iter()
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt()
            .max(f64::EPSILON);
        out.iter().map(|x| (x / norm) as f32).collect()
    }
}

/// Eigenvalues and eigenvectors (as the columns of the returned matrix) of
/// a symmetric matrix, by cyclic Jacobi rotations: simple, and accurate to
/// rounding for the few hundred dimensions of a sentence encoder.
pub fn symmetric_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    let scale: f64 = a
        .iter()
        .flatten()
        .map(|x| x * x)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..60 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off <= 1e-22 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (row_p, row_q) = (a[p].clone(), a[q].clone());
                for (k, (apk, aqk)) in row_p.iter().zip(&row_q).enumerate() {
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i][i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigen_decomposition_rebuilds_the_matrix() {
        let m = vec![
            vec![4.0, 1.0, 0.5],
            vec![1.0, 3.0, -0.2],
            vec![0.5, -0.2, 1.0],
        ];
        let (values, vectors) = symmetric_eigen(m.clone());
        for i in 0..3 {
            for j in 0..3 {
                let rebuilt: f64 = (0..3)
                    .map(|k| vectors[i][k] * values[k] * vectors[j][k])
                    .sum();
                assert!(
                    (rebuilt - m[i][j]).abs() < 1e-9,
                    "{i},{j}: {rebuilt} vs {}",
                    m[i][j]
                );
            }
        }
        let trace: f64 = values.iter().sum();
        assert!((trace - 8.0).abs() < 1e-9);
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
