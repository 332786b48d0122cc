//! Encoder speed and memory on this machine, for choosing `LinearFormat` and
//! pool sizing and for comparing against the CPU's arithmetic limit.
//!
//! ```text
//! cargo run --release -p xiaoer-models --example encode_bench -- [q4|f32] [N] [CORE_PEAK_GFLOPS]
//! ```
//! Run once per format (each in its own process, so resident memory is that
//! format's alone). Kernels are single-threaded, as recommended for the
//! server (see `prefer_single_threaded_kernels`); export
//! `RAYON_NUM_THREADS=2 CANDLE_NUM_THREADS=2` first to measure candle's
//! intra-op threading instead. `XIAOER_KERNEL_THREADS=N` sets how many
//! threads each forward splits its linear layers over (default one per
//! core, as `serve`). Weights come from `$XIAOER_MODELS_DIR` or
//! `models/weights` (`scripts/fetch-weights.sh`); the heads' adapter (f32
//! only) from `$XIAOER_HEADS_DIR` or `models/heads`. `N` messages (default 1000)
//! are synthesised from shop-chat fragments — short, long, Chinese, English
//! and mixed — in a fixed pseudo-random order. `CORE_PEAK_GFLOPS` is one
//! core's f32 FMA peak (default 32 FLOP/cycle × 2.6 GHz = 83.2: a Zen 4 core
//! issues two 256-bit FMAs per cycle, also for AVX-512); the arithmetic
//! limit multiplies it by the available cores.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use xiaoer_models::perf::{
    measure_batch_throughput, measure_single_latency, process_cpu_time, resident_memory,
};
use xiaoer_models::{
    prefer_single_threaded_kernels, Classifier, E5Encoder, E5Options, Encoder, InferencePool,
    LinearFormat, PoolConfig, TextRole,
};

const ZH: &[&str] = &[
    "亲，在吗",
    "我的订单啥时候发货",
    "快递到哪了",
    "怎么还没到",
    "可以换个颜色吗",
    "这个是正品吗",
    "身高170体重65穿什么码",
    "退款什么时候到账",
    "我要退货",
    "能开发票吗",
    "有优惠券吗",
    "质量太差了",
    "地址填错了能改吗",
    "包装破了",
    "少发了一件",
    "会员积分怎么用",
    "客服几点上班",
    "转人工",
    "花呗可以分期吗",
    "买了就降价了能保价吗",
    "什么时候补货",
    "收到的颜色不对",
    "能不能加急",
    "密码忘了登不上",
    "谢谢啦",
];
const EN: &[&str] = &[
    "hi",
    "where is my order",
    "it has been a week and nothing",
    "can i get a refund",
    "the item arrived broken",
    "do you ship to canada",
    "which size should i get",
    "is this in stock",
    "how do i return this",
    "i want to talk to a real person",
    "my payment failed twice",
    "can you change my address",
    "thanks that's all",
    "is there a discount code",
    "when will it be restocked",
    "the zipper broke after a week",
    "i was charged twice for the same order",
    "please cancel my order",
    "how long do refunds take",
    "what are your opening hours",
];

/// A message of 1–4 fragments (3% get 8–14, to include truncated inputs),
/// each fragment Chinese or English, so languages mix within messages too.
fn messages(n: usize) -> Vec<String> {
    let mut rng = ChaCha12Rng::seed_from_u64(2026);
    (0..n)
        .map(|_| {
            let parts = if rng.random_bool(0.03) {
                rng.random_range(8..=14)
            } else {
                rng.random_range(1..=4)
            };
            let zh_bias = rng.random_range(0.0..1.0);
            (0..parts)
                .map(|_| {
                    if rng.random_bool(zh_bias) {
                        ZH[rng.random_range(0..ZH.len())]
                    } else {
                        EN[rng.random_range(0..EN.len())]
                    }
                })
                .collect::<Vec<_>>()
                .join(if rng.random_bool(0.5) { "，" } else { " " })
        })
        .collect()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// CPU milliseconds per message since `before` (all threads): robust to
/// other load on the machine, unlike wall time.
fn cpu_ms_per_msg(before: Option<std::time::Duration>, n: usize) -> String {
    match (before, process_cpu_time()) {
        (Some(a), Some(b)) => format!(
            "{:.1} CPU-ms/msg",
            (b - a).as_secs_f64() * 1e3 / n.max(1) as f64
        ),
        _ => "CPU time n/a".into(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    prefer_single_threaded_kernels(); // first: no other thread exists yet
    let args: Vec<String> = std::env::args().collect();
    let format = match args.get(1).map(String::as_str) {
        None | Some("f32") => LinearFormat::F32,
        Some("q4") => LinearFormat::Q4,
        Some(other) => return Err(format!("format must be q4 or f32, not {other}").into()),
    };
    let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let core_gflops: f64 = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(32.0 * 2.6);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let dir = std::env::var_os("XIAOER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights"));

    let kernel_threads: usize = std::env::var("XIAOER_KERNEL_THREADS")
        .ok()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or_else(|| E5Options::default().kernel_threads);

    let started = Instant::now();
    let mut encoder = E5Encoder::load_with(
        &dir,
        E5Options {
            format,
            kernel_threads,
            ..E5Options::default()
        },
    )?;
    // Measure what the service runs: the shipped heads' feature layers are
    // pooled, and with an adapter the adapted top blocks run too (see
    // xiaoer_models::adapter).
    let heads = std::env::var_os("XIAOER_HEADS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("heads"));
    let classifier = Classifier::load(&heads)?;
    encoder.set_feature_layers(classifier.feature_layers())?;
    if format == LinearFormat::F32 {
        if let Some(adapter) = classifier.adapter() {
            encoder.install_adapter(adapter)?;
        }
    }
    println!(
        "format {format:?}: loaded in {:.2} s; adapted top blocks: {}; feature layers {:?}; kernel threads {}",
        started.elapsed().as_secs_f64(),
        encoder.model().adapted_blocks(),
        encoder.model().feature_layers(),
        encoder.model().kernel_threads()
    );
    if let Some((rss, peak)) = resident_memory() {
        println!(
            "after load: RSS {:.0} MB (peak {:.0} MB)",
            mb(rss),
            mb(peak)
        );
    }

    let owned = messages(n);
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let counts = encoder.token_counts(&texts, TextRole::Query)?;
    let tokens: usize = counts.iter().sum();
    let flops: f64 = counts
        .iter()
        .map(|&l| encoder.model().flops_per_token(l) * l as f64)
        .sum();
    println!(
        "{n} messages, tokens/msg mean {:.1} min {} max {} (incl. prefix and specials)",
        tokens as f64 / n as f64,
        counts.iter().min().unwrap_or(&0),
        counts.iter().max().unwrap_or(&0)
    );

    measure_batch_throughput(&encoder, &texts[..texts.len().min(64)], 16, TextRole::Query)?; // warm-up
    let cpu = process_cpu_time();
    if let Some(lat) = measure_single_latency(&encoder, &texts, TextRole::Query)? {
        println!(
            "single: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  mean {:.2} ms  max {:.2} ms  ({:.1} msgs/s, {})",
            lat.p50_ms,
            lat.p90_ms,
            lat.p99_ms,
            lat.mean_ms,
            lat.max_ms,
            1e3 / lat.mean_ms,
            cpu_ms_per_msg(cpu, n)
        );
    }
    for batch in [16, 32] {
        let cpu = process_cpu_time();
        let t = measure_batch_throughput(&encoder, &texts, batch, TextRole::Query)?;
        println!(
            "batch {batch}: {:.1} msgs/s, {:.0} tokens/s, {}",
            t.texts_per_sec,
            tokens as f64 / t.seconds,
            cpu_ms_per_msg(cpu, n)
        );
    }

    let per_msg = flops / n as f64;
    println!(
        "arithmetic: {:.1} MFLOP/token, {:.1} MFLOP/msg = {:.1} CPU-ms/msg at {core_gflops:.1} GFLOP/s per core; \
         {cores} cores => limit {:.0} msgs/s",
        flops / tokens as f64 / 1e6,
        per_msg / 1e6,
        per_msg / (core_gflops * 1e9) * 1e3,
        cores as f64 * core_gflops * 1e9 / per_msg
    );

    let encoder: Arc<dyn Encoder> = Arc::new(encoder);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    for workers in [1, 2] {
        let config = PoolConfig {
            workers,
            queue_capacity: n.max(1),
            ..PoolConfig::default()
        };
        let pool = Arc::new(InferencePool::start(Arc::clone(&encoder), config.clone()));
        let started = Instant::now();
        let cpu = process_cpu_time();
        let ok = rt.block_on(async {
            let tasks: Vec<_> = owned
                .iter()
                .map(|t| {
                    let (pool, t) = (Arc::clone(&pool), t.clone());
                    tokio::spawn(async move { pool.embed(t, TextRole::Query).await.is_ok() })
                })
                .collect();
            let mut ok = 0;
            for t in tasks {
                ok += usize::from(t.await.unwrap_or(false));
            }
            ok
        });
        let secs = started.elapsed().as_secs_f64();
        println!(
            "pool {workers} worker(s), max_batch {}, all {n} at once: {:.1} msgs/s, {} ({ok} ok)",
            config.max_batch,
            n as f64 / secs,
            cpu_ms_per_msg(cpu, n)
        );
    }
    if let Some((rss, peak)) = resident_memory() {
        println!("end: RSS {:.0} MB (peak {:.0} MB)", mb(rss), mb(peak));
    }
    Ok(())
}
