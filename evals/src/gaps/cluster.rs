//! Average-linkage clustering of unit vectors and the calibration of its
//! cut, free of I/O so the maths is tested on its own.
//!
//! The dendrogram is built with the nearest-neighbour chain, which gives
//! the same merges as the textbook algorithm for average linkage in O(n²)
//! time instead of O(n³): thousands of messages cluster in well under a
//! second.

use std::collections::BTreeMap;

/// One merge of the dendrogram: the groups holding items `a` and `b`
/// joined when their mean pairwise similarity was `similarity`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    /// An item of the first group.
    pub a: usize,
    /// An item of the second group.
    pub b: usize,
    /// Mean pairwise similarity of the two groups when they merged.
    pub similarity: f32,
}

/// Every merge of average-linkage clustering of `vectors` (dot product as
/// similarity), most similar first. Average linkage never merges at a
/// higher similarity than an earlier merge, so the merges at or above any
/// threshold give that threshold's clustering ([`cut`]).
pub fn dendrogram(vectors: &[Vec<f32>]) -> Vec<Merge> {
    let n = vectors.len();
    let mut sim = vec![0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let s = dot(&vectors[i], &vectors[j]);
            sim[i * n + j] = s;
            sim[j * n + i] = s;
        }
    }
    let mut size = vec![1f32; n];
    let mut live: Vec<bool> = vec![true; n];
    let mut remaining = n;
    let mut chain: Vec<usize> = Vec::new();
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    while remaining > 1 {
        if chain.is_empty() {
            chain.push(live.iter().position(|&l| l).expect("a live group"));
        }
        let a = *chain.last().expect("chain is not empty");
        let previous = chain.len().checked_sub(2).map(|i| chain[i]);
        // The nearest live group; on a tie the previous link wins, which
        // is what guarantees the chain ends in a reciprocal pair.
        let mut best = previous.map(|p| (p, sim[a * n + p]));
        for c in (0..n).filter(|&c| live[c] && c != a) {
            if best.is_none_or(|(_, s)| sim[a * n + c] > s) {
                best = Some((c, sim[a * n + c]));
            }
        }
        let (b, similarity) = best.expect("another live group");
        if Some(b) != previous {
            chain.push(b);
            continue;
        }
        chain.truncate(chain.len() - 2);
        let (keep, gone) = (a.min(b), a.max(b));
        let (na, nb) = (size[keep], size[gone]);
        for k in (0..n).filter(|&k| live[k] && k != keep && k != gone) {
            let merged = (na * sim[keep * n + k] + nb * sim[gone * n + k]) / (na + nb);
            sim[keep * n + k] = merged;
            sim[k * n + keep] = merged;
        }
        live[gone] = false;
        size[keep] += nb;
        remaining -= 1;
        merges.push(Merge {
            a: keep,
            b: gone,
            similarity,
        });
    }
    merges.sort_by(|x, y| y.similarity.total_cmp(&x.similarity));
    merges
}

/// The groups of `n` items after the merges at `threshold` or above,
/// largest first (ties: earliest member first).
pub fn cut(n: usize, merges: &[Merge], threshold: f32) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for merge in merges.iter().take_while(|m| m.similarity >= threshold) {
        let (a, b) = (root(&mut parent, merge.a), root(&mut parent, merge.b));
        parent[b] = a;
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().collect();
    out.sort_by(|x, y| y.len().cmp(&x.len()).then(x[0].cmp(&y[0])));
    out
}

/// The threshold at which clustering labelled vectors (the knowledge
/// base's example questions, labelled by article) best recovers their
/// labels: the cut with the highest pairwise F1 ("grouped together"
/// against "same label"), searched on a 0.0025 grid over `[-0.5, 1]`.
/// Calibrating here rather than on shopper messages keeps the threshold
/// independent of whatever is being mined.
pub fn calibrate(vectors: &[Vec<f32>], labels: &[usize]) -> f32 {
    let merges = dendrogram(vectors);
    let n = vectors.len();
    let pairs = |count: usize| count * count.saturating_sub(1) / 2;
    let mut per_label: BTreeMap<usize, usize> = BTreeMap::new();
    for &label in labels {
        *per_label.entry(label).or_default() += 1;
    }
    let same: usize = per_label.values().map(|&c| pairs(c)).sum();
    let mut best = (0.0f64, 1.0f32);
    for step in 0..=600 {
        let threshold = 1.0 - step as f32 * 0.0025;
        let groups = cut(n, &merges, threshold);
        let together: usize = groups.iter().map(|g| pairs(g.len())).sum();
        let right: usize = groups
            .iter()
            .map(|group| {
                let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
                for &i in group {
                    *counts.entry(labels[i]).or_default() += 1;
                }
                counts.values().map(|&c| pairs(c)).sum::<usize>()
            })
            .sum();
        if together == 0 || same == 0 {
            continue;
        }
        let f1 = 2.0 * right as f64 / (together + same) as f64;
        if f1 > best.0 {
            best = (f1, threshold);
        }
    }
    best.1
}

/// Dot product: the cosine of two unit vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = dot(v, v).sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn close_vectors_group_and_far_ones_stay_apart() {
        let vectors = vec![
            unit(&[1.0, 0.0, 0.0]),
            unit(&[0.98, 0.1, 0.0]),
            unit(&[0.0, 1.0, 0.0]),
            unit(&[0.97, 0.0, 0.1]),
            unit(&[0.0, 0.99, 0.1]),
            unit(&[0.0, 0.0, 1.0]),
        ];
        let merges = dendrogram(&vectors);
        assert_eq!(
            cut(6, &merges, 0.9),
            vec![vec![0, 1, 3], vec![2, 4], vec![5]]
        );
        assert_eq!(
            cut(6, &merges, 0.999).len(),
            6,
            "nothing merges above every pair"
        );
        assert_eq!(
            cut(6, &merges, -1.0).len(),
            1,
            "everything merges at the bottom"
        );
        assert!(dendrogram(&[]).is_empty());
    }

    /// The chain's merges equal the textbook algorithm's (repeatedly merge
    /// the most similar pair of groups), on random points.
    #[test]
    fn chain_agrees_with_naive_average_linkage() {
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let vectors: Vec<Vec<f32>> = (0..40)
            .map(|_| unit(&(0..5).map(|_| next()).collect::<Vec<_>>()))
            .collect();
        let chained: Vec<f32> = dendrogram(&vectors).iter().map(|m| m.similarity).collect();
        let naive = naive_similarities(&vectors);
        assert_eq!(chained.len(), naive.len());
        for (x, y) in chained.iter().zip(&naive) {
            assert!((x - y).abs() < 1e-4, "{chained:?}\n{naive:?}");
        }
    }

    fn naive_similarities(vectors: &[Vec<f32>]) -> Vec<f32> {
        let mut groups: Vec<Vec<usize>> = (0..vectors.len()).map(|i| vec![i]).collect();
        let mut out = Vec::new();
        while groups.len() > 1 {
            let mut best = (0, 1, f32::MIN);
            for x in 0..groups.len() {
                for y in x + 1..groups.len() {
                    let mut total = 0.0;
                    for &i in &groups[x] {
                        for &j in &groups[y] {
                            total += dot(&vectors[i], &vectors[j]);
                        }
                    }
                    let mean = total / (groups[x].len() * groups[y].len()) as f32;
                    if mean > best.2 {
                        best = (x, y, mean);
                    }
                }
            }
            let gone = groups.remove(best.1);
            groups[best.0].extend(gone);
            out.push(best.2);
        }
        out.sort_by(|a, b| b.total_cmp(a));
        out
    }

    #[test]
    fn average_linkage_does_not_chain_along_a_line() {
        let vectors: Vec<Vec<f32>> = (0..6)
            .map(|i| {
                let angle = i as f32 * 0.35;
                vec![angle.cos(), angle.sin()]
            })
            .collect();
        assert!(cut(6, &dendrogram(&vectors), 0.9).len() >= 2);
    }

    #[test]
    fn calibration_separates_same_from_different_labels() {
        let vectors = vec![
            unit(&[1.0, 0.05, 0.0]),
            unit(&[1.0, -0.05, 0.0]),
            unit(&[0.5, 1.0, 0.0]),
            unit(&[0.45, 1.0, 0.05]),
        ];
        let t = calibrate(&vectors, &[0, 0, 1, 1]);
        let same = dot(&vectors[0], &vectors[1]).min(dot(&vectors[2], &vectors[3]));
        let across = dot(&vectors[0], &vectors[2]).max(dot(&vectors[1], &vectors[3]));
        assert!(t > across && t <= same, "{across} < {t} <= {same}");
    }
}
