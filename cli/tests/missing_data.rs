//! What a user without the public data sets sees: `xiaoer eval bench` and
//! `xiaoer train` stop with one sentence naming the fetch command, never a
//! stack trace, even with RUST_BACKTRACE set in their shell (issue #20).

use std::process::Command;

/// Runs the real binary from the workspace root with an empty datasets
/// folder and returns (success, stderr).
fn run_without_data(args: &[&str]) -> (bool, String) {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xiaoer"))
        .args(args)
        .args(["--out".as_ref(), empty.path().join("out").as_os_str()])
        .arg("--datasets-dir")
        .arg(empty.path())
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_clear_sentence(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.last().copied().unwrap_or_default();
    assert!(last.starts_with("error: "), "{stderr}");
    assert!(last.contains("scripts/fetch-datasets.sh"), "{stderr}");
    assert!(
        !stderr.to_lowercase().contains("backtrace"),
        "a stack trace reached the user: {stderr}"
    );
}

#[test]
fn bench_without_data_names_the_fetch_command() {
    let (ok, stderr) = run_without_data(&["eval", "bench", "banking77", "--limit", "5"]);
    assert!(!ok);
    assert_one_clear_sentence(&stderr);
    assert!(stderr.contains("banking77"), "{stderr}");
}

#[test]
fn train_without_data_names_the_fetch_command() {
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().to_str().unwrap();
    let (ok, stderr) = run_without_data(&["train", "--cache-dir", cache]);
    assert!(!ok);
    assert_one_clear_sentence(&stderr);
}
