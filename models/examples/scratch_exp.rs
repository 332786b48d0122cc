//! TEMPORARY experiment runner (to be deleted).
use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use xiaoer_models::cache::EmbeddingCache;
use xiaoer_models::calibrate::*;
use xiaoer_models::data::*;
use xiaoer_models::train::{fit_head, HeadConfig};
use xiaoer_models::{E5Encoder, Encoder, TextRole};

fn split(examples: Vec<Example>, fraction: f32, rng: &mut StdRng) -> (Vec<Example>, Vec<Example>) {
    let mut groups: BTreeMap<(String, Language), Vec<Example>> = BTreeMap::new();
    for e in examples {
        groups.entry((e.label.clone(), e.lang)).or_default().push(e);
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (_, mut group) in groups {
        group.shuffle(rng);
        let n_val = (group.len() as f32 * fraction).floor() as usize;
        let rest = group.split_off(n_val);
        val.extend(group);
        train.extend(rest);
    }
    (train, val)
}

fn main() {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let enc = E5Encoder::load(&ws.join("models/weights")).expect("enc");
    let mut cache = EmbeddingCache::open(&ws.join("target/embedding-cache"), &enc).expect("cache");
    let data = ws.join("models/data");
    let ds = ws.join("../shared/datasets");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("intent");
    let seed = 7u64;
    let labels: Vec<String> = if task == "intent" {
        INTENTS.iter().map(|s| s.to_string()).collect()
    } else {
        ["positive", "neutral", "negative", "angry"].iter().map(|s| s.to_string()).collect()
    };
    let (train_own, heldout) = if task == "intent" {
        (load_intents(&data, Split::Train).unwrap(), load_intents(&data, Split::Heldout).unwrap())
    } else {
        (load_sentiment(&data, Split::Train).unwrap(), load_sentiment(&data, Split::Heldout).unwrap())
    };
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5_9117);
    let (tr_own, val) = split(train_own.examples, 0.2, &mut rng);
    let idx = |e: &[Example]| -> Vec<usize> { e.iter().map(|x| labels.iter().position(|l| *l == x.label).unwrap()).collect() };
    let mut emb = |e: &[Example]| -> Vec<Vec<f32>> {
        let t: Vec<&str> = e.iter().map(|x| x.text.as_str()).collect();
        cache.embed(&enc, &t, TextRole::Query).unwrap()
    };
    let vx = emb(&val);
    let vy = idx(&val);
    let hx = emb(&heldout.examples);
    let hy = idx(&heldout.examples);
    let oos = labels.iter().position(|l| l == "out_of_scope");

    let mixes: Vec<(&str, PublicMix)> = vec![
        ("none", PublicMix { per_intent: 0, out_of_scope_en: 0, out_of_scope_zh: 0, per_sentiment: 0, max_sentiment_chars: 120 }),
        ("default", PublicMix::default()),
        ("more", PublicMix { per_intent: 120, out_of_scope_en: 300, out_of_scope_zh: 200, per_sentiment: 300, max_sentiment_chars: 120 }),
    ];
    let cfgs: Vec<(&str, HeadConfig)> = vec![
        ("h256", HeadConfig::default()),
        ("lin", HeadConfig { hidden: vec![], ..HeadConfig::default() }),
        ("h512d5", HeadConfig { hidden: vec![512], dropout: 0.5, ..HeadConfig::default() }),
        ("h1024d5", HeadConfig { hidden: vec![1024], dropout: 0.5, ..HeadConfig::default() }),
        ("h256ls0", HeadConfig { label_smoothing: 0.0, ..HeadConfig::default() }),
        ("h256nocw", HeadConfig { class_weighting: false, ..HeadConfig::default() }),
    ];
    let only_mix = args.get(1).cloned();
    for (mname, mix) in &mixes {
        if only_mix.as_deref().is_some_and(|m| m != *mname) {
            continue;
        }
        let public = if task == "intent" { public_intents(&ds, mix, seed).unwrap() } else { public_sentiment(&ds, mix, seed).unwrap() };
        let mut tr = tr_own.clone();
        tr.extend(public.examples);
        let tx = emb(&tr);
        let ty = idx(&tr);
        for (cname, cfg) in &cfgs {
            let t0 = std::time::Instant::now();
            let mut fit = fit_head(&tx, &ty, &vx, &vy, labels.clone(), cfg, seed).unwrap();
            let vl: Vec<Vec<f32>> = vx.iter().map(|x| fit.head.logits(x)).collect();
            let t = fit_temperature(&vl, &vy);
            fit.head.set_temperature(t);
            let vp: Vec<Vec<f32>> = vx.iter().map(|x| fit.head.probs(x)).collect();
            let hp: Vec<Vec<f32>> = hx.iter().map(|x| fit.head.probs(x)).collect();
            let acc = |p: &[Vec<f32>], y: &[usize], lang: Option<Language>, ex: &[Example]| {
                let mut n = 0; let mut ok = 0;
                for ((pp, &yy), e) in p.iter().zip(y).zip(ex) {
                    if lang.is_some_and(|l| l != e.lang) { continue; }
                    n += 1; if argmax(pp).unwrap().0 == yy { ok += 1; }
                }
                ok as f32 / n as f32 * 100.0
            };
            let mut line = format!(
                "{task} {mname:8} {cname:9} n={} ep={:3} T={:.2} val={:.1} held={:.1} zh={:.1} en={:.1} ece={:.3} {:.1}s",
                tx.len(), fit.best_epochs[0], t, acc(&vp, &vy, None, &val), acc(&hp, &hy, None, &heldout.examples),
                acc(&hp, &hy, Some(Language::Zh), &heldout.examples), acc(&hp, &hy, Some(Language::En), &heldout.examples),
                expected_calibration_error(&hp, &hy), t0.elapsed().as_secs_f32()
            );
            if let Some(o) = oos {
                let g = |y: &[usize]| -> Vec<Option<usize>> { y.iter().map(|&v| (v != o).then_some(v)).collect() };
                for cap in [0.0, 0.03, 0.05, 0.1] {
                    let c = choose_oos_threshold(&vp, &g(&vy), Some(o), cap);
                    let h = evaluate_oos(&hp, &g(&hy), Some(o), c.threshold);
                    line += &format!(" | cap{cap}: t={:.2} in={:.1} oos={:.1} fr={:.1}", c.threshold, h.in_scope_accuracy * 100.0, h.oos_recall * 100.0, h.false_reject_rate * 100.0);
                }
            } else {
                // angry p/r at argmax
                let a = 3;
                let (mut tp, mut fp, mut fne) = (0, 0, 0);
                for (p, &y) in hp.iter().zip(&hy) {
                    let pred = argmax(p).unwrap().0 == a;
                    match (pred, y == a) { (true, true) => tp += 1, (true, false) => fp += 1, (false, true) => fne += 1, _ => {} }
                }
                line += &format!(" angryP={:.1} R={:.1}", tp as f32 / (tp + fp) as f32 * 100.0, tp as f32 / (tp + fne) as f32 * 100.0);
            }
            println!("{line}");
        }
    }
    let _ = enc.dim();
}
