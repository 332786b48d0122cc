//! TEMPORARY: time per training step (to be deleted).
use xiaoer_models::train::{fit_head, HeadConfig};
fn main() {
    let n = 4000; let dim = 384; let c = 77;
    let mut s = 1u64;
    let mut r = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5 };
    let x: Vec<Vec<f32>> = (0..n).map(|_| (0..dim).map(|_| r()).collect()).collect();
    let y: Vec<usize> = (0..n).map(|i| i % c).collect();
    let labels: Vec<String> = (0..c).map(|i| i.to_string()).collect();
    for (h, b) in [(256usize, 64usize), (1024, 128)] {
        let cfg = HeadConfig { hidden: vec![h], batch_size: b, max_epochs: 5, patience: 100, ..HeadConfig::default() };
        let t = std::time::Instant::now();
        fit_head(&x, &y, &x[..500], &y[..500], labels.clone(), &cfg, 1).unwrap();
        let steps = 5 * n.div_ceil(b);
        println!("h{h} b{b}: {:.1} ms/step", t.elapsed().as_secs_f64() * 1000.0 / steps as f64);
    }
}
