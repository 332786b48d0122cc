use super::*;
use crate::test_support::HashEncoder;
use std::fs;

fn write(dir: &Path, rel: &str, rows: &[(String, &str)]) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let body: String = rows
        .iter()
        .map(|(t, l)| serde_json::json!({"text": t, "label": l}).to_string() + "\n")
        .collect();
    fs::write(path, body).expect("write");
}

/// `n` rows per label numbered from `first`; texts of a label share
/// their characters so the hash encoder separates the classes.
fn rows(labels: &[&'static str], n: usize, first: usize) -> Vec<(String, &'static str)> {
    labels
        .iter()
        .flat_map(|&l| (first..first + n).map(move |i| (format!("{l} {l} {i}"), l)))
        .collect()
}

fn config(dir: &Path) -> BenchConfig {
    BenchConfig {
        datasets_dir: dir.to_path_buf(),
        cache_dir: dir.join("cache"),
        seed: 3,
        head: HeadConfig {
            hidden: vec![32],
            max_epochs: 40,
            ..HeadConfig::default()
        },
        val_fraction: 0.2,
        max_false_reject: 0.05,
        review_train_sample: 40,
    }
}

#[test]
fn banking77_runner_reports_accuracy_and_anchors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let labels = ["card_arrival", "pin_blocked", "top_up_failed"];
    write(dir.path(), "banking77/train.jsonl", &rows(&labels, 20, 0));
    write(dir.path(), "banking77/test.jsonl", &rows(&labels, 5, 100));
    let result = run_banking77(&config(dir.path()), &HashEncoder::new(64)).expect("bench");
    assert_eq!(result.test_examples, 15);
    assert_eq!(result.train_examples + result.val_examples, 60);
    assert!(result.test_accuracy > 80.0, "{result:?}");
    assert_eq!(result.anchors.len(), 2);
}

#[test]
fn clinc150_runner_reports_both_variants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let labels = ["weather", "translate", "timer"];
    write(dir.path(), "clinc150/train.jsonl", &rows(&labels, 20, 0));
    write(dir.path(), "clinc150/val.jsonl", &rows(&labels, 5, 200));
    write(dir.path(), "clinc150/test.jsonl", &rows(&labels, 5, 100));
    for (file, n) in [("oos_train", 10), ("oos_val", 5), ("oos_test", 5)] {
        let oos: Vec<(String, &str)> = (0..n)
            .map(|i| (format!("zzq xyv {file} {i}"), "oos"))
            .collect();
        write(dir.path(), &format!("clinc150/{file}.jsonl"), &oos);
    }
    let result = run_clinc150(&config(dir.path()), &HashEncoder::new(64)).expect("bench");
    assert_eq!((result.test_in_scope, result.test_oos), (15, 5));
    assert!(result.threshold_variant.test_class_only.is_none());
    assert!(result.oos_class_variant.test_class_only.is_some());
    assert_eq!(result.oos_class_variant.tradeoff.len(), TRADEOFF_CAPS.len());
    for point in &result.threshold_variant.tradeoff {
        assert!(
            point.val.false_reject_rate <= point.max_false_reject + 1e-6,
            "{point:?}"
        );
    }
    assert!(
        result.oos_class_variant.test.in_scope_accuracy > 0.6,
        "{result:?}"
    );
    // An unknown test label is a clear data error.
    write(
        dir.path(),
        "clinc150/test.jsonl",
        &[("hello".to_string(), "greeting")],
    );
    let err = run_clinc150(&config(dir.path()), &HashEncoder::new(64)).expect_err("unknown label");
    assert!(
        err.to_string().contains("label greeting does not occur"),
        "{err}"
    );
}
