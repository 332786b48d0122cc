//! Encoder performance measurement shared by `examples/encode_bench.rs` and
//! `xiaoer eval`: the same code produces the numbers in reports and in
//! ad-hoc runs, so they stay comparable.

use std::time::{Duration, Instant};

use crate::{Encoder, ModelError, TextRole};

/// Latency distribution of single-text encodes, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyStats {
    /// Number of samples.
    pub count: usize,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median (nearest-rank).
    pub p50_ms: f64,
    /// 90th percentile (nearest-rank).
    pub p90_ms: f64,
    /// 99th percentile (nearest-rank): the tail that decides timeouts.
    pub p99_ms: f64,
    /// Slowest sample.
    pub max_ms: f64,
}

impl LatencyStats {
    /// Summarises samples (order irrelevant); `None` when there are none.
    pub fn from_samples(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Some(Self {
            count: ms.len(),
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: ms[ms.len() - 1],
        })
    }
}

/// Encodes each text alone, one after another (the latency a lone shopper
/// sees on an idle server, without pool batching delay).
pub fn measure_single_latency(
    encoder: &dyn Encoder,
    texts: &[&str],
    role: TextRole,
) -> Result<Option<LatencyStats>, ModelError> {
    let mut samples = Vec::with_capacity(texts.len());
    for text in texts {
        let start = Instant::now();
        encoder.encode_views(&[text], role)?;
        samples.push(start.elapsed());
    }
    Ok(LatencyStats::from_samples(&samples))
}

/// Result of a batched throughput run.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// Texts per forward pass (the last batch may be smaller).
    pub batch_size: usize,
    /// Texts encoded.
    pub texts: usize,
    /// Wall-clock time for all of them.
    pub seconds: f64,
    /// `texts / seconds`.
    pub texts_per_sec: f64,
}

/// Encodes `texts` in consecutive batches of `batch_size` (in the given
/// order, so padding waste is what real mixed traffic would cause).
pub fn measure_batch_throughput(
    encoder: &dyn Encoder,
    texts: &[&str],
    batch_size: usize,
    role: TextRole,
) -> Result<Throughput, ModelError> {
    let batch_size = batch_size.max(1);
    let start = Instant::now();
    for chunk in texts.chunks(batch_size) {
        encoder.encode_views(chunk, role)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Throughput {
        batch_size,
        texts: texts.len(),
        seconds,
        texts_per_sec: if seconds > 0.0 {
            texts.len() as f64 / seconds
        } else {
            0.0
        },
    })
}

/// CPU time (user + system, all threads) this process has used, from
/// `/proc/self/stat`. Wall-clock numbers on a shared machine depend on the
/// neighbours; CPU time per message does not, so reports give both. `None`
/// off Linux. Assumes the kernel's fixed user-space tick of 100 Hz.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, i.e. the 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// Resident memory of this process from `/proc/self/status`: `(current,
/// peak)` in bytes. `None` off Linux or if the file is unreadable; memory is
/// part of the deployment budget, so reports include it when available.
pub fn resident_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::E5Encoder;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = LatencyStats::from_samples(&samples).expect("stats");
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 1e-9);
        assert!((s.p99_ms - 99.0).abs() < 1e-9);
        assert!((s.max_ms - 100.0).abs() < 1e-9);
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        assert!(LatencyStats::from_samples(&[]).is_none());
        let one = LatencyStats::from_samples(&[Duration::from_millis(3)]).expect("one");
        assert!((one.p99_ms - 3.0).abs() < 1e-9);
    }

    #[test]
    fn measurements_run_on_the_tiny_model() {
        let enc = E5Encoder::tiny_random(0);
        let texts = ["a", "bb", "退货", "where", "ok"];
        let lat = measure_single_latency(&enc, &texts, TextRole::Query)
            .expect("latency")
            .expect("stats");
        assert_eq!(lat.count, 5);
        let tp = measure_batch_throughput(&enc, &texts, 2, TextRole::Query).expect("throughput");
        assert_eq!((tp.texts, tp.batch_size), (5, 2));
        assert!(tp.texts_per_sec > 0.0);
        if cfg!(target_os = "linux") {
            let (rss, peak) = resident_memory().expect("rss on linux");
            assert!(rss > 0 && peak >= rss);
            let before = process_cpu_time().expect("cpu time on linux");
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_millis(50) {
                std::hint::black_box(0u64);
            }
            assert!(process_cpu_time().expect("cpu time") > before);
        }
    }
}
