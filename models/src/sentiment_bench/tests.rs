use super::*;
use crate::test_support::HashEncoder;
use std::fs;
use std::path::Path;

fn write(dir: &Path, rel: &str, rows: &[serde_json::Value]) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let body: String = rows.iter().map(|r| r.to_string() + "\n").collect();
    fs::write(path, body).expect("write");
}

/// Comments whose words name their emotions, so the hash encoder can
/// separate them; every fourth one carries two emotions.
fn comments(n: usize, first: usize) -> Vec<serde_json::Value> {
    let emotions = ["anger", "joy", "neutral", "annoyance"];
    (first..first + n)
        .map(|i| {
            let a = emotions[i % 4];
            if i % 4 == 3 {
                serde_json::json!({"text": format!("{a} {a} grr {i}"), "label": [a, "anger"]})
            } else {
                serde_json::json!({"text": format!("{a} {a} {a} {i}"), "label": [a]})
            }
        })
        .collect()
}

fn config(dir: &Path) -> BenchConfig {
    BenchConfig {
        datasets_dir: dir.to_path_buf(),
        cache_dir: dir.join("cache"),
        head: HeadConfig {
            hidden: vec![32],
            max_epochs: 40,
            ..HeadConfig::default()
        },
        review_train_sample: 40,
        ..BenchConfig::for_workspace(dir)
    }
}

#[test]
fn label_sets_are_scored_per_label_and_as_a_group() {
    let names: Vec<String> = ["anger", "joy", "annoyance"].map(String::from).to_vec();
    let gold = vec![vec![0], vec![1], vec![2, 0], vec![1]];
    let pred = vec![
        vec![true, false, false],
        vec![true, true, false],
        vec![false, false, true],
        vec![false, true, false],
    ];
    let scores = per_label_scores(&pred, &gold, &names);
    // anger: tp 1 (row 0), fp 1 (row 1), fn 1 (row 2).
    assert_eq!(
        (scores[0].precision, scores[0].recall, scores[0].f1),
        (50.0, 50.0, 50.0)
    );
    assert_eq!((scores[1].precision, scores[1].recall), (100.0, 100.0));
    assert_eq!(scores[2].support, 1);
    // Group anger|annoyance: rows 0 and 2 are angry, both found; row 1 is a false alarm.
    let group = group_score("angry", &pred, &gold, &[0, 2]);
    assert_eq!(
        (group.support, group.precision, group.recall),
        (2, 66.67, 100.0)
    );
    assert_eq!(
        predict_set(&[0.1, 0.2, 0.15], 0.5),
        vec![false, true, false]
    );
    assert_eq!(
        predict_set(&[0.45, 0.5, 0.05], 0.4),
        vec![true, true, false]
    );
}

#[test]
fn goemotions_runner_tunes_on_dev_and_reports_the_anger_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "goemotions/train.jsonl", &comments(80, 0));
    write(dir.path(), "goemotions/dev.jsonl", &comments(20, 100));
    write(dir.path(), "goemotions/test.jsonl", &comments(20, 200));
    let result = run_goemotions(&config(dir.path()), &HashEncoder::new(64)).expect("bench");
    assert_eq!((result.train_examples, result.test_examples), (80, 20));
    assert_eq!(result.per_label.len(), 4);
    assert!(THRESHOLDS.contains(&result.threshold));
    assert!(result.test_macro_f1 > 60.0, "{result:?}");
    assert_eq!(result.anger_group.support, 10);
    assert!(result.anger_group.recall > 60.0, "{result:?}");
    assert_eq!(result.anchors[0].metric, "test_macro_f1");

    write(
        dir.path(),
        "goemotions/test.jsonl",
        &[serde_json::json!({"text": "meh", "label": ["boredom"]})],
    );
    let err = run_goemotions(&config(dir.path()), &HashEncoder::new(64)).expect_err("label");
    assert!(
        err.to_string().contains("label boredom does not occur"),
        "{err}"
    );
    write(
        dir.path(),
        "goemotions/test.jsonl",
        &[serde_json::json!({"text": "meh", "label": []})],
    );
    let err = run_goemotions(&config(dir.path()), &HashEncoder::new(64)).expect_err("empty");
    assert!(err.to_string().contains("empty list"), "{err}");
}

#[test]
fn review_runner_samples_train_and_scores_all_of_test() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reviews = |n: usize, first: usize| -> Vec<serde_json::Value> {
        (first..first + n)
            .map(|i| {
                let (text, label) = if i % 2 == 0 {
                    (format!("好评 很好 满意 {i}"), 1)
                } else {
                    (format!("差评 太差 失望 {i}"), 0)
                };
                serde_json::json!({"text": text, "label": label, "cat": "衣服"})
            })
            .collect()
    };
    write(
        dir.path(),
        &format!("{REVIEWS}/train.jsonl"),
        &reviews(100, 0),
    );
    write(
        dir.path(),
        &format!("{REVIEWS}/test.jsonl"),
        &reviews(30, 500),
    );
    let result = run_online_shopping(&config(dir.path()), &HashEncoder::new(64)).expect("bench");
    assert_eq!(result.dataset, REVIEWS);
    assert_eq!(result.train_rows, 100);
    assert_eq!(result.train_examples + result.val_examples, 40);
    assert_eq!(result.test_examples, 30);
    assert!(result.test_accuracy > 80.0, "{result:?}");
    assert!(result.anchors.is_empty());

    write(
        dir.path(),
        &format!("{REVIEWS}/test.jsonl"),
        &[serde_json::json!({"text": "还行", "label": {"score": 3}})],
    );
    let err = run_online_shopping(&config(dir.path()), &HashEncoder::new(64)).expect_err("bad");
    assert!(
        err.to_string()
            .contains("must be a name, an integer or a list"),
        "{err}"
    );
}
