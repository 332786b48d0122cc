use std::collections::BTreeMap;

use candle_core::DType;

use super::dense::{byte_to_code, code_to_byte};
use super::*;
use crate::test_support::HashEncoder;

const DIM: usize = 8;

/// A head whose weights follow a fixed pattern, so tests need no RNG.
fn pattern_head(
    labels: &[&str],
    input: usize,
    hidden: &[usize],
    members: usize,
    salt: f32,
) -> Head {
    let members = (0..members)
        .map(|m| {
            let salt = salt + m as f32;
            let mut layers = Vec::new();
            let mut in_dim = input;
            for &out_dim in hidden.iter().chain(std::iter::once(&labels.len())) {
                let weight = (0..in_dim * out_dim)
                    .map(|i| ((i as f32 * 0.37 + salt).sin()) * 0.8)
                    .collect();
                let bias = (0..out_dim)
                    .map(|i| (i as f32 * 0.11 + salt).cos() * 0.1)
                    .collect();
                layers.push(Dense::new(weight, bias, in_dim, out_dim).expect("shape"));
                in_dim = out_dim;
            }
            layers
        })
        .collect();
    let mean = (0..input).map(|i| i as f32 * 0.01).collect();
    let inv_std = vec![2.0; input];
    Head::new(
        labels.iter().map(|s| s.to_string()).collect(),
        mean,
        inv_std,
        members,
    )
    .expect("head")
}

fn provenance() -> Provenance {
    Provenance {
        encoder: EncoderInfo {
            name: "hash-test".into(),
            dim: DIM,
            feature_layers: Vec::new(),
            files: BTreeMap::from([("w.bin".to_string(), "ab".repeat(32))]),
        },
        seed: 7,
        training_data: vec![SourceFile {
            path: "intents/train.zh.jsonl".into(),
            sha256: "cd".repeat(32),
            rows_used: 3,
        }],
    }
}

fn classifier(oos: f32, angry: f32) -> Classifier {
    with_thresholds(Thresholds {
        oos,
        angry,
        staff_action: 0.5,
    })
}

fn with_thresholds(thresholds: Thresholds) -> Classifier {
    let intents: Vec<&str> = Intent::ALL.iter().map(|i| i.as_str()).collect();
    let mut intent = pattern_head(&intents, DIM, &[16], 3, 0.3);
    intent.set_temperature(1.7);
    let sentiment_labels = ["angry", "neutral", "positive", "negative"];
    let mut sentiment = pattern_head(&sentiment_labels, DIM + TONE_FEATURES, &[], 1, 0.9);
    sentiment.set_temperature(0.8);
    let request = pattern_head(&["self_service", "staff_action"], DIM, &[4], 2, 0.6);
    Classifier::new(intent, sentiment, request, thresholds, provenance()).expect("classifier")
}

fn embedding(seed: usize) -> Vec<f32> {
    (0..DIM)
        .map(|i| ((i * 7 + seed * 13) as f32).sin())
        .collect()
}

#[test]
fn adapter_travels_with_the_heads() {
    use crate::adapter::{AdapterWeights, LowRank};
    let update = |in_dim: usize, out_dim: usize| LowRank {
        down: (0..in_dim * 2).map(|i| (i as f32).cos()).collect(),
        up: (0..2 * out_dim).map(|i| (i as f32).sin()).collect(),
        in_dim,
        rank: 2,
        out_dim,
    };
    let adapter = AdapterWeights {
        updates: vec![[update(4, 12), update(4, 4), update(4, 8), update(8, 4)]],
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let original = classifier(0.35, 0.6).with_adapter(Some(adapter.clone()));
    original.save(dir.path()).expect("save");
    let loaded = Classifier::load(dir.path()).expect("load");
    assert_eq!(loaded.adapter(), Some(&adapter));
    assert_eq!(loaded, original);
    // Heads saved without an adapter load without one.
    let plain = tempfile::tempdir().expect("tempdir");
    classifier(0.35, 0.6).save(plain.path()).expect("save");
    assert_eq!(
        Classifier::load(plain.path()).expect("load").adapter(),
        None
    );
}

#[test]
fn save_load_round_trip_is_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = classifier(0.35, 0.6);
    original.save(dir.path()).expect("save");
    let loaded = Classifier::load(dir.path()).expect("load");
    assert_eq!(loaded, original);
    let stored = candle_core::safetensors::load(dir.path().join(WEIGHTS_FILE), &Device::Cpu)
        .expect("read weights");
    for (name, tensor) in &stored {
        let want = if name.ends_with(".weight") {
            DType::U8
        } else {
            DType::F32
        };
        assert_eq!(tensor.dtype(), want, "{name}");
    }
    let perms = |f: &str| {
        std::fs::metadata(dir.path().join(f))
            .expect("stat")
            .permissions()
    };
    assert_eq!(
        perms(WEIGHTS_FILE),
        perms(META_FILE),
        "weights readable like metadata"
    );
    for s in 0..5 {
        let e = embedding(s);
        assert_eq!(loaded.intent(&e), original.intent(&e));
        let text = "WHY is it still not here?!";
        assert_eq!(loaded.sentiment(&e, text), original.sentiment(&e, text));
    }
    assert_eq!(loaded.intent_head().hidden(), vec![16]);
    assert_eq!(loaded.intent_head().members(), 3);
    assert!(loaded.sentiment_head().hidden().is_empty());
    // Saving twice gives byte-identical files (no timestamps): re-training
    // with the same seed and data produces no spurious diff.
    let first = std::fs::read(dir.path().join(META_FILE)).expect("read");
    loaded.save(dir.path()).expect("save again");
    assert_eq!(
        std::fs::read(dir.path().join(META_FILE)).expect("read"),
        first
    );
}

#[test]
fn intent_scores_are_ranked_probabilities() {
    let c = classifier(0.0, 0.5);
    let scores = c.intent(&embedding(1));
    assert_eq!(scores.ranked.len(), Intent::ALL.len());
    let total: f32 = scores.ranked.iter().map(|r| r.1).sum();
    assert!((total - 1.0).abs() < 1e-5);
    assert!(scores.ranked.windows(2).all(|w| w[0].1 >= w[1].1));
    let top_is_oos = scores.ranked[0].0 == Intent::OutOfScope;
    assert_eq!(scores.out_of_scope, top_is_oos);
}

#[test]
fn oos_threshold_flags_unsure_messages() {
    let e = embedding(2);
    let relaxed = classifier(0.0, 0.5).intent(&e);
    let top = relaxed.ranked[0].1;
    assert!(top < 1.0);
    // A threshold just above the top probability flags the same message.
    let strict = classifier((top + 0.01).min(1.0), 0.5).intent(&e);
    assert!(strict.out_of_scope);
    assert_eq!(strict.ranked, relaxed.ranked);
}

#[test]
fn angry_threshold_decides_sentiment() {
    let probs = [
        (SentimentLabel::Positive, 0.1),
        (SentimentLabel::Neutral, 0.2),
        (SentimentLabel::Negative, 0.4),
        (SentimentLabel::Angry, 0.3),
    ];
    assert_eq!(decide_sentiment(&probs, 0.25), SentimentLabel::Angry);
    assert_eq!(decide_sentiment(&probs, 0.5), SentimentLabel::Negative);
    let c = classifier(0.0, 0.0);
    let s = c.sentiment(&embedding(3), "ok");
    assert_eq!(s.label, SentimentLabel::Angry);
    assert_eq!(s.probs.map(|p| p.0), SentimentLabel::ALL);
    assert_eq!(s.p_angry, s.probs[3].1);
    assert!((s.probs.iter().map(|p| p.1).sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn staff_action_threshold_decides_requests() {
    let e = embedding(5);
    let base = Thresholds {
        oos: 0.3,
        angry: 0.5,
        staff_action: 0.0,
    };
    let loose = with_thresholds(base).request(&e);
    assert!(loose.staff_action);
    assert!(loose.p_staff_action > 0.0 && loose.p_staff_action < 1.0);
    let strict = with_thresholds(Thresholds {
        staff_action: loose.p_staff_action + 0.01,
        ..base
    })
    .request(&e);
    assert!(!strict.staff_action);
    assert_eq!(strict.p_staff_action, loose.p_staff_action);
}

#[test]
fn a_request_head_without_staff_action_is_rejected() {
    let c = classifier(0.3, 0.5);
    let err = Classifier::new(
        c.intent_head().clone(),
        c.sentiment_head().clone(),
        pattern_head(&["self_service", "other"], DIM, &[], 1, 0.6),
        c.thresholds(),
        provenance(),
    )
    .expect_err("no staff_action label");
    assert!(
        err.to_string().contains(RequestLabel::StaffAction.as_str()),
        "{err}"
    );
}

#[test]
fn load_rejects_missing_and_mismatched_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Classifier::load(dir.path()).expect_err("empty dir");
    assert!(err.to_string().contains(META_FILE), "{err}");

    classifier(0.3, 0.5).save(dir.path()).expect("save");
    let meta_path = dir.path().join(META_FILE);
    let text = std::fs::read_to_string(&meta_path).expect("read");
    std::fs::write(
        &meta_path,
        text.replace(
            &format!("\"format_version\": {FORMAT_VERSION}"),
            "\"format_version\": 99",
        ),
    )
    .expect("write");
    let err = Classifier::load(dir.path()).expect_err("future format");
    assert!(err.to_string().contains("format version 99"), "{err}");
    // Version 5 (f16 weights) is refused with the way out.
    std::fs::write(
        &meta_path,
        text.replace(
            &format!("\"format_version\": {FORMAT_VERSION}"),
            "\"format_version\": 5",
        ),
    )
    .expect("write");
    let err = Classifier::load(dir.path()).expect_err("f16 format");
    assert!(err.to_string().contains("xiaoer train"), "{err}");

    std::fs::write(
        &meta_path,
        text.replace("\"hidden\": [\n      16\n    ]", "\"hidden\": []"),
    )
    .expect("write");
    let err = Classifier::load(dir.path()).expect_err("hidden mismatch");
    assert!(err.to_string().contains("logits"), "{err}");
}

#[test]
fn unknown_label_names_in_the_heads_file_are_a_load_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    classifier(0.3, 0.5).save(dir.path()).expect("save");
    let meta_path = dir.path().join(META_FILE);
    let text = std::fs::read_to_string(&meta_path).expect("read");
    std::fs::write(&meta_path, text.replace("\"refund_status\"", "\"refunds\"")).expect("write");
    let err = Classifier::load(dir.path()).expect_err("unknown intent");
    let msg = err.to_string();
    assert!(msg.contains(META_FILE), "{msg}");
    assert!(msg.contains("unknown intent \"refunds\""), "{msg}");
}

#[test]
fn dense_weights_round_to_eight_bit_codes_per_row() {
    let weight = vec![
        0.5, -0.25, 0.125, 0.001, 0.0, 0.0, 0.0, 0.0, -3.0, 2.9, 0.01, 1.5,
    ];
    let layer = Dense::new(weight.clone(), vec![0.0; 3], 4, 3).expect("layer");
    assert_eq!(layer.scales[1], 0.0, "an all-zero row keeps a zero scale");
    for ((w, served), row) in weight
        .iter()
        .zip(&layer.weight)
        .zip([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    {
        assert!(
            (w - served).abs() <= layer.scales[row] / 2.0 + 1e-7,
            "{w} -> {served}"
        );
    }
    // Each row's largest weight is a full-scale code, stored exactly.
    assert_eq!(layer.weight[0], 0.5);
    assert_eq!(layer.weight[8], -3.0);
    assert!(layer.codes().iter().all(|c| c.unsigned_abs() <= 127));
    let rebuilt = Dense::from_codes(&layer.codes(), layer.scales.clone(), vec![0.0; 3], 4, 3)
        .expect("rebuild");
    assert_eq!(rebuilt, layer);
    // Stored bytes map back to the same codes.
    for code in [-127i8, -1, 0, 1, 127] {
        assert_eq!(byte_to_code(code_to_byte(code)), code);
    }
}

proptest::proptest! {
    /// Any finite weights: each served weight is within half a step of
    /// the trained one, and storing then reading the codes changes nothing.
    #[test]
    fn eight_bit_rounding_is_bounded_and_round_trips(
        rows in proptest::collection::vec(
            proptest::collection::vec(-1e3f32..1e3, 5), 1..6),
    ) {
        let in_dim = 5;
        let weight: Vec<f32> = rows.concat();
        let out_dim = rows.len();
        let layer = Dense::new(weight.clone(), vec![0.0; out_dim], in_dim, out_dim).unwrap();
        for (i, (w, served)) in weight.iter().zip(&layer.weight).enumerate() {
            let step = layer.scales[i / in_dim];
            proptest::prop_assert!((w - served).abs() <= step * 0.5 + step * 1e-3 + 1e-6);
        }
        let bytes: Vec<u8> = layer.codes().into_iter().map(code_to_byte).collect();
        let codes: Vec<i8> = bytes.into_iter().map(byte_to_code).collect();
        let read = Dense::from_codes(&codes, layer.scales.clone(), vec![0.0; out_dim], in_dim, out_dim)
            .unwrap();
        proptest::prop_assert_eq!(read, layer);
    }
}

#[test]
fn bad_dense_layers_are_refused() {
    assert!(Dense::new(vec![1.0, f32::NAN], vec![0.0], 2, 1).is_err());
    assert!(Dense::new(vec![1.0, f32::INFINITY], vec![0.0], 2, 1).is_err());
    assert!(Dense::new(vec![1.0; 3], vec![0.0], 2, 1).is_err());
    assert!(Dense::from_codes(&[1, 2], vec![-1.0], vec![0.0], 2, 1).is_err());
    assert!(Dense::from_codes(&[1, 2], vec![f32::NAN], vec![0.0], 2, 1).is_err());
    assert!(Dense::from_codes(&[1, 2], vec![0.1, 0.1], vec![0.0], 2, 1).is_err());
}

#[test]
fn weights_without_codes_or_scales_are_refused_on_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    classifier(0.3, 0.5).save(dir.path()).expect("save");
    let weights = dir.path().join(WEIGHTS_FILE);
    let stored = candle_core::safetensors::load(&weights, &Device::Cpu).expect("read");
    let mut as_f16 = stored.clone();
    let name = "intent.m0.l0.weight";
    as_f16.insert(
        name.into(),
        stored[name].to_dtype(DType::F16).expect("cast"),
    );
    candle_core::safetensors::save(&as_f16, &weights).expect("write");
    let err = Classifier::load(dir.path()).expect_err("f16 weights");
    assert!(err.to_string().contains("expected 8-bit codes"), "{err}");
    let mut no_scale = stored;
    no_scale.remove("intent.m0.l0.scale");
    candle_core::safetensors::save(&no_scale, &weights).expect("write");
    let err = Classifier::load(dir.path()).expect_err("missing scale");
    assert!(err.to_string().contains("intent.m0.l0.scale"), "{err}");
}

#[test]
fn encoder_mismatch_is_caught_at_startup() {
    let c = classifier(0.3, 0.5);
    assert!(c.check_encoder(&HashEncoder::new(DIM)).is_err());
    let mut p = provenance();
    p.encoder.name = HashEncoder::new(DIM).name().to_string();
    let c = Classifier::new(
        c.intent_head().clone(),
        c.sentiment_head().clone(),
        c.request_head().clone(),
        c.thresholds(),
        p,
    )
    .expect("classifier");
    c.check_encoder(&HashEncoder::new(DIM))
        .expect("same encoder");
}
