use super::*;
use crate::test_support::HashEncoder;
use std::fs;

fn line(text: &str, field: &str, label: &str) -> String {
    serde_json::json!({ "text": text, field: label }).to_string() + "\n"
}

/// Writes a complete, tiny data + datasets layout. Texts repeat their
/// label so the hash encoder makes the classes separable.
fn fixture(root: &Path, skip_intent: Option<&str>) -> TrainConfig {
    let data = root.join("data");
    let ds = root.join("datasets");
    for (task, field, labels) in [
        ("intents", "intent", label_names(Intent::ALL)),
        ("sentiment", "label", label_names(SentimentLabel::ALL)),
        ("requests", "label", label_names(RequestLabel::ALL)),
    ] {
        fs::create_dir_all(data.join(task)).expect("mkdir");
        for (split, n) in [("train", 6), ("heldout", 2)] {
            for lang in ["zh", "en"] {
                let mut body = String::new();
                for label in &labels {
                    if Some(label.as_str()) == skip_intent && split == "train" {
                        continue;
                    }
                    for i in 0..n {
                        body += &line(&format!("{label} {label} {lang} {split} {i}"), field, label);
                    }
                }
                fs::write(data.join(task).join(format!("{split}.{lang}.jsonl")), body)
                    .expect("write");
            }
        }
    }
    let files: [(&str, String); 6] = [
        (
            "bitext_customer_support/train.jsonl",
            line("cancel my order please", "label", "cancel_order") + &line("newsletter pls", "label", "newsletter_subscription"),
        ),
        ("clinc150/oos_train.jsonl", line("how tall is everest", "label", "oos")),
        (
            "clinc150/train.jsonl",
            line("will it rain tomorrow", "label", "weather") + &line("what is my balance", "label", "balance"),
        ),
        (
            "smp2017_ecdt_task1/train.jsonl",
            line("明天天气怎么样", "label", "weather") + &line("你好呀", "label", "chat"),
        ),
        (
            "goemotions/train.jsonl",
            serde_json::json!({"text": "this is outrageous", "label": ["anger"], "id": "x"}).to_string()
                + "\n"
                + &serde_json::json!({"text": "mixed feelings", "label": ["anger", "joy"], "id": "y"}).to_string()
                + "\n",
        ),
        (
            "chinese_online_shopping_10_cats/train.jsonl",
            serde_json::json!({"text": "质量很好", "label": 1, "cat": "衣服"}).to_string()
                + "\n"
                + &serde_json::json!({"text": "太差了", "label": 0, "cat": "衣服"}).to_string()
                + "\n",
        ),
    ];
    for (rel, body) in files {
        let path = ds.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, body).expect("write");
    }
    let weights = root.join("weights");
    fs::create_dir_all(&weights).expect("mkdir");
    fs::write(weights.join("model.bin"), b"weights").expect("write");
    TrainConfig {
        data_dir: data,
        datasets_dir: ds,
        models_dir: weights,
        out_dir: root.join("heads"),
        cache_dir: root.join("cache"),
        seed: 5,
        val_fraction: 0.34,
        max_false_reject: 0.05,
        intent_head: HeadConfig {
            hidden: vec![32],
            max_epochs: 60,
            ..HeadConfig::default()
        },
        sentiment_head: HeadConfig {
            hidden: vec![],
            max_epochs: 60,
            ..HeadConfig::default()
        },
        request_head: HeadConfig {
            hidden: vec![],
            max_epochs: 60,
            ..HeadConfig::default()
        },
        // Exercise the public sentiment mapping too (off by default).
        public: PublicMix {
            per_sentiment: 5,
            ..PublicMix::default()
        },
        adapter: None,
    }
}

#[test]
fn only_shop_data_trains_without_any_public_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = fixture(dir.path(), None);
    config.datasets_dir = dir.path().join("no-such-folder");
    config.public = PublicMix::none();
    let report = train_shipped(config.clone(), &HashEncoder::new(64)).expect("train");
    let public = [
        "bitext",
        "clinc150",
        "smp2017",
        "goemotions",
        "chinese_online",
    ];
    let used: Vec<&str> = report.data.iter().map(|s| s.path.as_str()).collect();
    assert!(
        !used
            .iter()
            .any(|path| public.iter().any(|set| path.starts_with(set))),
        "only the shop's own files: {used:?}"
    );
    Classifier::load(&config.out_dir).expect("servable heads");
    // With the public mix on, the same missing folder is a clear error.
    config.public = PublicMix::default();
    let err = train_shipped(config, &HashEncoder::new(64)).unwrap_err();
    assert!(
        err.to_string().contains("scripts/fetch-datasets.sh"),
        "{err}"
    );
}

#[test]
fn train_shipped_end_to_end_is_reproducible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = fixture(dir.path(), None);
    let encoder = HashEncoder::new(64);
    let report = train_shipped(config.clone(), &encoder).expect("train");
    assert!(report.intent.accuracy.contains_key("zh") && report.intent.accuracy.contains_key("en"));
    assert!(report.intent.accuracy["all"].accuracy > 0.5, "{report}");
    assert_eq!(report.intent.heldout_oos_examples, 4);
    let rows = |path: &str| {
        report
            .data
            .iter()
            .find(|s| s.path == path)
            .map(|s| s.rows_used)
    };
    // One mapped bitext row (newsletter is dropped), one unambiguous
    // GoEmotions row (anger+joy is dropped), both reviews, SMP chat.
    assert_eq!(rows("bitext_customer_support/train.jsonl"), Some(1));
    assert_eq!(rows("goemotions/train.jsonl"), Some(1));
    assert_eq!(rows("chinese_online_shopping_10_cats/train.jsonl"), Some(2));
    assert_eq!(
        rows("clinc150/train.jsonl"),
        Some(1),
        "only the off-topic intent"
    );
    let classifier = Classifier::load(&config.out_dir).expect("load");
    classifier.check_encoder(&encoder).expect("same encoder");
    assert_eq!(classifier.provenance().encoder.files.len(), 1);
    let first = fs::read(config.out_dir.join(crate::heads::WEIGHTS_FILE)).expect("read");
    let encoded = encoder.encoded();
    train_shipped(config.clone(), &encoder).expect("train again");
    assert_eq!(
        encoder.encoded(),
        encoded,
        "second run uses the embedding cache only"
    );
    assert_eq!(
        fs::read(config.out_dir.join(crate::heads::WEIGHTS_FILE)).expect("read"),
        first
    );
    assert!(config.out_dir.join("train_report.json").exists());
}

#[test]
fn train_shipped_with_an_adapter_saves_it_with_the_heads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = fixture(dir.path(), None);
    config.adapter = Some(AdapterConfig {
        blocks: 1,
        rank: 2,
        epochs: 2,
        batch_size: 8,
        ..AdapterConfig::default()
    });
    // A hash encoder has no blocks to adapt: a clear error, nothing written.
    let err = train_shipped(config.clone(), &HashEncoder::new(64)).expect_err("not adaptable");
    assert!(err.to_string().contains("no blocks to adapt"), "{err}");
    assert!(!config.out_dir.join(crate::heads::META_FILE).exists());

    let mut encoder = crate::E5Encoder::tiny_random(21);
    let report = train_shipped(config.clone(), &encoder).expect("train with adapter");
    let adapter = report.adapter.as_ref().expect("adapter report");
    assert_eq!(adapter.val_accuracy.len(), 2);
    assert!((1..=2).contains(&adapter.best_epoch));
    let classifier = Classifier::load(&config.out_dir).expect("load");
    let weights = classifier.adapter().expect("adapter saved with the heads");
    assert_eq!(weights.blocks(), 1);
    // Installed, it gives the service the classification view the heads
    // were trained on, and leaves retrieval alone.
    let before = encoder
        .encode_batch(&["退货"], crate::TextRole::Query)
        .expect("retrieval");
    encoder.install_adapter(weights).expect("install");
    let views = encoder
        .encode_views(&["退货"], crate::TextRole::Query)
        .expect("views");
    assert_eq!(views[0].retrieval, before[0]);
    assert_eq!(views[0].classification.len(), classifier.dim());
    // An adapted view is never cached: the cache name cannot tell
    // adapters apart.
    let err = crate::cache::ClassificationView::new(&encoder)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("adapted"), "{err}");
}

#[test]
fn heads_record_their_feature_layers_and_need_them_installed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = fixture(dir.path(), None);
    let mut encoder = crate::E5Encoder::tiny_random(21);
    let blocks = encoder.model().layer_count();
    encoder.set_feature_layers(&[1, blocks]).expect("layers");
    train_shipped(config.clone(), &encoder).expect("train");
    let classifier = Classifier::load(&config.out_dir).expect("load");
    assert_eq!(classifier.feature_layers(), [1, blocks]);
    assert_eq!(classifier.dim(), 2 * encoder.dim());
    classifier.check_encoder(&encoder).expect("same view");

    // A service that forgot to install them is refused at start-up.
    let plain = crate::E5Encoder::tiny_random(21);
    let err = classifier.check_encoder(&plain).expect_err("other view");
    assert!(err.to_string().contains("feature layers"), "{err}");

    // An adapter trains on the final embedding only: a clear error.
    let mut with_adapter = fixture(&dir.path().join("adapter"), None);
    with_adapter.adapter = Some(AdapterConfig::default());
    let err = train_shipped(with_adapter.clone(), &encoder).expect_err("combined");
    assert!(err.to_string().contains("cannot be combined"), "{err}");
    assert!(!with_adapter.out_dir.join(crate::heads::META_FILE).exists());
}

#[test]
fn train_shipped_rejects_an_empty_class() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = fixture(dir.path(), Some("warranty_repair"));
    let err = train_shipped(config, &HashEncoder::new(16)).expect_err("empty class");
    let msg = err.to_string();
    assert!(
        msg.contains("no examples for class(es): warranty_repair"),
        "{msg}"
    );
}
