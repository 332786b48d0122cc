use super::*;
use std::fs;

fn write(dir: &Path, rel: &str, body: &str) -> PathBuf {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(&path, body).expect("write");
    path
}

fn load(body: &str) -> Result<LabelledSet, ModelError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "intents/train.en.jsonl", body);
    load_own_file::<Intent>(&path, dir.path(), "intent", Language::En)
}

fn record_error(body: &str) -> (usize, String) {
    match load(body) {
        Err(ModelError::Record { line, reason, path }) => {
            assert!(path.ends_with("train.en.jsonl"), "{path}");
            (line, reason)
        }
        other => panic!("expected a record error, got {other:?}"),
    }
}

#[test]
fn reads_valid_file_and_skips_blank_lines() {
    let set = load("{\"text\":\"hi there\",\"intent\":\"greeting\"}\n\n{\"text\":\" where is it \",\"intent\":\"order_tracking\"}\n")
        .expect("valid file");
    assert_eq!(set.examples.len(), 2);
    assert_eq!(set.examples[1].text, "where is it");
    assert_eq!(set.sources[0].rows_used, 2);
    assert_eq!(set.sources[0].path, "intents/train.en.jsonl");
    assert_eq!(set.sources[0].sha256.len(), 64);
}

#[test]
fn malformed_json_names_the_line() {
    let (line, reason) =
        record_error("{\"text\":\"hi\",\"intent\":\"greeting\"}\n{\"text\":\"oops\",\"intent\":\n");
    assert_eq!(line, 2);
    assert!(reason.starts_with("malformed JSON"), "{reason}");
}

#[test]
fn missing_field_names_the_line_and_field() {
    let (line, reason) =
        record_error("{\"text\":\"hi\",\"intent\":\"greeting\"}\n\n{\"text\":\"where\"}\n");
    assert_eq!(line, 3);
    assert_eq!(reason, "missing field \"intent\"");
    let (_, reason) = record_error("{\"intent\":\"greeting\"}\n");
    assert_eq!(reason, "missing field \"text\"");
    let (_, reason) = record_error("{\"text\":\"  \",\"intent\":\"greeting\"}\n");
    assert_eq!(reason, "field \"text\" is empty");
    let (_, reason) = record_error("{\"text\":\"hi\",\"intent\":3}\n");
    assert_eq!(reason, "field \"intent\" must be a string, found a number");
}

#[test]
fn unknown_label_names_the_line_and_label() {
    let (line, reason) = record_error(
        "{\"text\":\"hi\",\"intent\":\"greeting\"}\n{\"text\":\"refund?\",\"intent\":\"refund\"}\n",
    );
    assert_eq!(line, 2);
    assert!(reason.starts_with("unknown intent \"refund\""), "{reason}");
    let msg = load("{\"text\":\"refund?\",\"intent\":\"refund\"}\n")
        .expect_err("unknown label")
        .to_string();
    assert!(msg.contains("train.en.jsonl:1: unknown intent"), "{msg}");
}

#[test]
fn missing_file_is_a_data_error_with_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = load_intents(dir.path(), Split::Train).expect_err("missing files");
    let msg = err.to_string();
    assert!(msg.contains("intents/train.zh.jsonl"), "{msg}");
    assert!(msg.contains("cannot read"), "{msg}");
}

#[test]
fn empty_class_is_reported_by_name() {
    let set = load("{\"text\":\"hi\",\"intent\":\"greeting\"}\n").expect("valid");
    let err = require_every_class(
        &set.examples,
        &["greeting", "complaint", "human_agent"],
        "intents train",
    )
    .expect_err("two empty classes");
    let msg = err.to_string();
    assert!(msg.contains("complaint, human_agent"), "{msg}");
    assert!(msg.contains("intents train"), "{msg}");
}

#[test]
fn sentiment_labels_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "sentiment/train.zh.jsonl",
        "{\"text\":\"太棒了\",\"label\":\"positive\"}\n",
    );
    write(
        dir.path(),
        "sentiment/train.en.jsonl",
        "{\"text\":\"meh\",\"label\":\"furious\"}\n",
    );
    let msg = load_sentiment(dir.path(), Split::Train)
        .expect_err("furious is not a label")
        .to_string();
    assert!(
        msg.contains("train.en.jsonl:1: unknown label \"furious\""),
        "{msg}"
    );
}
