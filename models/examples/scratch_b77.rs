//! TEMPORARY banking77 experiments (to be deleted).
use std::path::Path;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use xiaoer_models::cache::EmbeddingCache;
use xiaoer_models::calibrate::*;
use xiaoer_models::data::load_public_pairs;
use xiaoer_models::train::{fit_head, HeadConfig};
use xiaoer_models::{E5Encoder, TextRole};

fn main() {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let enc = E5Encoder::load(&ws.join("models/weights")).expect("enc");
    let mut cache = EmbeddingCache::open(&ws.join("target/embedding-cache"), &enc).expect("cache");
    let ds = ws.join("../shared/datasets");
    let (train, _) = load_public_pairs(&ds, "banking77", "train.jsonl").unwrap();
    let (test, _) = load_public_pairs(&ds, "banking77", "test.jsonl").unwrap();
    let mut labels: Vec<String> = train.iter().map(|p| p.1.clone()).collect();
    labels.sort(); labels.dedup();
    let idx = |l: &str| labels.iter().position(|x| x == l).unwrap();
    let tr_t: Vec<&str> = train.iter().map(|p| p.0.as_str()).collect();
    let te_t: Vec<&str> = test.iter().map(|p| p.0.as_str()).collect();
    let x = cache.embed(&enc, &tr_t, TextRole::Query).unwrap();
    let y: Vec<usize> = train.iter().map(|p| idx(&p.1)).collect();
    let tx = cache.embed(&enc, &te_t, TextRole::Query).unwrap();
    let ty: Vec<usize> = test.iter().map(|p| idx(&p.1)).collect();
    let mut rng = StdRng::seed_from_u64(7 ^ 0xB77);
    let mut by: Vec<Vec<usize>> = vec![Vec::new(); labels.len()];
    for (i, &c) in y.iter().enumerate() { by[c].push(i); }
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for mut ids in by { ids.shuffle(&mut rng); let n = (ids.len() as f32 * 0.1).round() as usize; va.extend_from_slice(&ids[..n]); tr.extend_from_slice(&ids[n..]); }
    let pick = |ids: &[usize]| -> (Vec<Vec<f32>>, Vec<usize>) { (ids.iter().map(|&i| x[i].clone()).collect(), ids.iter().map(|&i| y[i]).collect()) };
    let (trx, try_) = pick(&tr);
    let (vax, vay) = pick(&va);
    let base = HeadConfig { hidden: vec![1024], dropout: 0.5, patience: 15, batch_size: 128, ..HeadConfig::default() };
    let which: Vec<String> = std::env::args().skip(1).collect();
    let variants: Vec<(&str, HeadConfig)> = vec![
        ("base", base.clone()),
        ("h2048", HeadConfig { hidden: vec![2048], ..base.clone() }),
        ("lr3e-3", HeadConfig { learning_rate: 3e-3, ..base.clone() }),
        ("ls0", HeadConfig { label_smoothing: 0.0, ..base.clone() }),
        ("ls0.2", HeadConfig { label_smoothing: 0.2, ..base.clone() }),
        ("d0.3", HeadConfig { dropout: 0.3, ..base.clone() }),
        ("wd0.1", HeadConfig { weight_decay: 0.1, ..base.clone() }),
        ("2x1024", HeadConfig { hidden: vec![1024, 1024], ..base.clone() }),
    ];
    let acc = |p: &[Vec<f32>], y: &[usize]| p.iter().zip(y).filter(|(p, &y)| argmax(p).unwrap().0 == y).count() as f32 / y.len() as f32 * 100.0;
    for (name, cfg) in variants {
        if !which.is_empty() && !which.iter().any(|w| w == name || w == "ens") { continue; }
        let seeds: Vec<u64> = if which.iter().any(|w| w == "ens") { vec![7, 8, 9, 10, 11] } else { vec![7] };
        let mut vsum = vec![vec![0f32; labels.len()]; vax.len()];
        let mut tsum = vec![vec![0f32; labels.len()]; tx.len()];
        for &seed in &seeds {
            let t0 = std::time::Instant::now();
            let fit = fit_head(&trx, &try_, &vax, &vay, labels.clone(), &cfg, seed).unwrap();
            let vp: Vec<Vec<f32>> = vax.iter().map(|v| fit.head.probs(v)).collect();
            let tp: Vec<Vec<f32>> = tx.iter().map(|v| fit.head.probs(v)).collect();
            for (s, p) in vsum.iter_mut().zip(&vp) { for (a, b) in s.iter_mut().zip(p) { *a += b; } }
            for (s, p) in tsum.iter_mut().zip(&tp) { for (a, b) in s.iter_mut().zip(p) { *a += b; } }
            println!("{name} seed {seed} ep {} val {:.2} test {:.2} ({:.0}s) | ens-so-far val {:.2} test {:.2}", fit.best_epochs[0], acc(&vp, &vay), acc(&tp, &ty), t0.elapsed().as_secs_f32(), acc(&vsum, &vay), acc(&tsum, &ty));
        }
        if which.iter().any(|w| w == "ens") { break; }
    }
}
