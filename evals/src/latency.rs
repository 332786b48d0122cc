//! Latency summaries from raw per-call milliseconds.
//!
//! Runs are small (thousands of calls), so sorting the samples gives exact
//! nearest-rank percentiles without an HDR histogram.

use serde::{Deserialize, Serialize};

/// Count, mean and nearest-rank percentiles of a set of call latencies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Calls measured.
    pub count: usize,
    /// Arithmetic mean (ms).
    pub mean_ms: Option<f64>,
    /// Fastest call (ms).
    pub min_ms: Option<f64>,
    /// Median (ms).
    pub p50_ms: Option<f64>,
    /// 90th percentile (ms).
    pub p90_ms: Option<f64>,
    /// 99th percentile (ms).
    pub p99_ms: Option<f64>,
    /// Slowest call (ms).
    pub max_ms: Option<f64>,
}

impl LatencySummary {
    /// Summarises the samples; non-finite values are ignored.
    pub fn from_samples(samples: &[f64]) -> Self {
        let sorted = sorted_finite(samples);
        if sorted.is_empty() {
            return LatencySummary::default();
        }
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        LatencySummary {
            count: sorted.len(),
            mean_ms: Some(mean),
            min_ms: sorted.first().copied(),
            p50_ms: percentile(&sorted, 0.50),
            p90_ms: percentile(&sorted, 0.90),
            p99_ms: percentile(&sorted, 0.99),
            max_ms: sorted.last().copied(),
        }
    }

    /// "p50 12.3 ms · p90 … · max …" for console and Markdown.
    pub fn one_line(&self) -> String {
        let ms =
            |value: Option<f64>| value.map_or("n/a".to_string(), |value| format!("{value:.1} ms"));
        format!(
            "{} calls · mean {} · p50 {} · p90 {} · p99 {} · max {}",
            self.count,
            ms(self.mean_ms),
            ms(self.p50_ms),
            ms(self.p90_ms),
            ms(self.p99_ms),
            ms(self.max_ms)
        )
    }
}

/// Finite samples in ascending order.
pub fn sorted_finite(samples: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = samples
        .iter()
        .copied()
        .filter(|value| value.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// Nearest-rank percentile of ascending samples: the smallest sample with at
/// least `q` of the samples at or below it.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let summary = LatencySummary::from_samples(&samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, Some(50.0));
        assert_eq!(summary.p90_ms, Some(90.0));
        assert_eq!(summary.p99_ms, Some(99.0));
        assert_eq!(summary.max_ms, Some(100.0));
        assert_eq!(summary.min_ms, Some(1.0));
        assert_eq!(summary.mean_ms, Some(50.5));
    }

    #[test]
    fn small_and_empty_sets() {
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        let empty = LatencySummary::from_samples(&[f64::NAN]);
        assert_eq!(empty.count, 0);
        assert_eq!(empty.p50_ms, None);
        assert!(empty.one_line().contains("p50 n/a"));
    }
}
