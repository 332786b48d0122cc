//! Report folders and the pieces every report shares: run identity (time,
//! git revision), JSON/Markdown writing, and the classification section with
//! its plots.
//!
//! Each run gets its own folder (`reports/<YYYYMMDD-HHMMSS>-<rev>` under the
//! current directory unless `--out` is given) so runs never overwrite each
//! other and any report.json can serve as a later baseline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::classification::{coverage_curve, percent, ClassificationMetrics, Predictions};
use crate::latency::LatencySummary;
use crate::plots::{self, PlotError};

/// Identity of a run, stored at the top of every report.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Start time, RFC 3339 in UTC.
    pub started_at: String,
    /// Short git revision of the checkout, when there is one.
    pub git_revision: Option<String>,
    /// Version of this crate (and so of the tool that wrote the report).
    pub tool_version: String,
}

impl RunInfo {
    /// The opening lines every report.md shares: title, start time, revision.
    pub fn markdown_header(&self, title: &str) -> String {
        let revision = self
            .git_revision
            .as_deref()
            .unwrap_or("unknown (no git checkout)");
        format!(
            "# {title}\n\n- started: {}\n- git revision: {revision}\n",
            self.started_at
        )
    }

    /// Captures the current time and revision.
    pub fn now() -> Self {
        RunInfo {
            started_at: rfc3339_utc(SystemTime::now()),
            git_revision: current_git_revision(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Creates the report folder: `out` if given, else a fresh
/// `reports/<YYYYMMDD-HHMMSS>-<git short rev or "nogit">` under the current
/// directory (with a `-2`, `-3`… suffix if two runs start in one second).
pub fn create_run_dir(out: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(out) = out {
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create report folder {}", out.display()))?;
        return Ok(out.to_path_buf());
    }
    let reports = PathBuf::from("reports");
    std::fs::create_dir_all(&reports)
        .with_context(|| format!("cannot create {}", reports.display()))?;
    let base = format!(
        "{}-{}",
        compact_utc(SystemTime::now()),
        current_git_revision().unwrap_or_else(|| "nogit".to_string())
    );
    for attempt in 1..100 {
        let name = if attempt == 1 {
            base.clone()
        } else {
            format!("{base}-{attempt}")
        };
        let dir = reports.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot create report folder {}", dir.display()))
            }
        }
    }
    anyhow::bail!(
        "cannot find a free report folder name under {}",
        reports.display()
    )
}

/// Writes pretty JSON.
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode report")?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a text file.
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// UTC calendar date and time of a unix timestamp: (year, month, day, hour,
/// minute, second), for report names and headers.
pub fn civil_from_unix(seconds: u64) -> (i64, u32, u32, u32, u32, u32) {
    let (year, month, day) = xiaoer_service::clock::civil_from_days((seconds / 86_400) as i64);
    let rem = seconds % 86_400;
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0)
}

/// `YYYYMMDD-HHMMSS` in UTC, for folder names.
pub fn compact_utc(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(unix_seconds(time));
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// RFC 3339 in UTC, second precision.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(unix_seconds(time));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Short revision of the git checkout around the current directory (or,
/// failing that, around this crate's sources). Reads `.git` directly, so it
/// works without a git binary and never changes anything.
pub fn current_git_revision() -> Option<String> {
    let from_cwd = std::env::current_dir()
        .ok()
        .and_then(|cwd| git_revision_at(&cwd));
    from_cwd.or_else(|| git_revision_at(Path::new(env!("CARGO_MANIFEST_DIR"))))
}

/// Short (7 hex digits) revision of the checkout containing `start`.
pub fn git_revision_at(start: &Path) -> Option<String> {
    let git_dir = start.ancestors().find_map(|dir| {
        let dot_git = dir.join(".git");
        if dot_git.is_dir() {
            Some(dot_git)
        } else if dot_git.is_file() {
            // Worktrees and submodules: ".git" is a file "gitdir: <path>".
            let text = std::fs::read_to_string(&dot_git).ok()?;
            let target = text.trim().strip_prefix("gitdir:")?.trim();
            Some(dir.join(target))
        } else {
            None
        }
    })?;
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let full = match head.strip_prefix("ref:") {
        Some(reference) => resolve_ref(&git_dir, reference.trim())?,
        None => head.to_string(),
    };
    let is_hash = full.len() >= 7 && full.chars().all(|c| c.is_ascii_hexdigit());
    is_hash.then(|| full[..7].to_string())
}

fn resolve_ref(git_dir: &Path, reference: &str) -> Option<String> {
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|relative| git_dir.join(relative.trim()))
        .unwrap_or_else(|| git_dir.to_path_buf());
    for dir in [git_dir, common.as_path()] {
        if let Ok(text) = std::fs::read_to_string(dir.join(reference)) {
            return Some(text.trim().to_string());
        }
    }
    for dir in [git_dir, common.as_path()] {
        if let Ok(packed) = std::fs::read_to_string(dir.join("packed-refs")) {
            let found = packed.lines().find_map(|line| {
                let (hash, name) = line.split_once(' ')?;
                (name.trim() == reference).then(|| hash.to_string())
            });
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// File names of the classification plots inside a report folder.
pub const CONFUSION_PNG: &str = "confusion.png";
/// Reliability diagram file name.
pub const RELIABILITY_PNG: &str = "reliability.png";
/// Accuracy-vs-coverage file name.
pub const COVERAGE_PNG: &str = "coverage.png";
/// Latency histogram + CDF file name.
pub const LATENCY_PNG: &str = "latency.png";

/// Draws the three classification plots into `dir` (the coverage curve on a
/// fine 1% threshold grid, finer than the table in the report).
pub fn write_classification_plots(
    dir: &Path,
    title: &str,
    metrics: &ClassificationMetrics,
    predictions: &Predictions,
) -> Result<(), PlotError> {
    plots::confusion_heatmap(
        &dir.join(CONFUSION_PNG),
        &format!("{title}: confusion matrix"),
        &metrics.labels,
        &metrics.confusion,
    )?;
    plots::reliability_diagram(
        &dir.join(RELIABILITY_PNG),
        &format!("{title}: reliability"),
        &metrics.calibration,
    )?;
    let correct: Vec<bool> = predictions
        .gold
        .iter()
        .zip(&predictions.predicted)
        .map(|(g, p)| g == p)
        .collect();
    let thresholds: Vec<f64> = (0..=100).map(|step| f64::from(step) / 100.0).collect();
    let fine = coverage_curve(&predictions.confidences, &correct, &thresholds);
    plots::accuracy_coverage_plot(
        &dir.join(COVERAGE_PNG),
        &format!("{title}: accuracy vs coverage"),
        &fine,
    )
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or("n/a".to_string(), |value| format!("{value:.decimals$}"))
}

/// Markdown section for a classification result: summary, per-label
/// table, top confusions, coverage table and the plots.
pub fn classification_markdown(heading: &str, metrics: &ClassificationMetrics) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## {heading}\n");
    let _ = writeln!(
        md,
        "Accuracy {} · macro-F1 {} · ECE {} ({} examples)\n",
        metrics.accuracy.display(),
        opt(metrics.macro_f1, 3),
        opt(metrics.calibration.ece, 3),
        metrics.examples
    );
    let _ = writeln!(
        md,
        "| label | support | predicted | precision | recall | F1 |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    for scores in &metrics.per_label {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            scores.label,
            scores.support,
            scores.predicted,
            percent(scores.precision),
            percent(scores.recall),
            opt(scores.f1, 3)
        );
    }
    let _ = writeln!(md, "\n### Top confusions\n");
    if metrics.top_confusions.is_empty() {
        let _ = writeln!(md, "None.");
    } else {
        let _ = writeln!(md, "| expected | predicted | count |\n|---|---|---:|");
        for pair in &metrics.top_confusions {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                pair.gold, pair.predicted, pair.count
            );
        }
    }
    let _ = writeln!(md, "\n### Accuracy vs coverage (confidence threshold)\n");
    let _ = writeln!(md, "| threshold | coverage | accuracy |\n|---:|---:|---:|");
    for point in metrics.coverage.iter().step_by(2) {
        let _ = writeln!(
            md,
            "| {:.2} | {} | {} |",
            point.threshold,
            percent(Some(point.coverage)),
            percent(point.accuracy)
        );
    }
    let _ = writeln!(
        md,
        "\n![confusion matrix]({CONFUSION_PNG})\n\n![reliability diagram]({RELIABILITY_PNG})\n\n![accuracy vs coverage]({COVERAGE_PNG})\n"
    );
    md
}

/// Markdown lines for a latency summary.
pub fn latency_markdown(latency: &LatencySummary) -> String {
    let ms = |value: Option<f64>| opt(value, 1);
    format!(
        "| calls | mean | p50 | p90 | p99 | max |\n|---:|---:|---:|---:|---:|---:|\n| {} | {} | {} | {} | {} | {} |\n\nAll figures in milliseconds.\n\n![latency]({LATENCY_PNG})\n",
        latency.count,
        ms(latency.mean_ms),
        ms(latency.p50_ms),
        ms(latency.p90_ms),
        ms(latency.p99_ms),
        ms(latency.max_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_formatting() {
        let time = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29T23:59:59Z
        assert_eq!(compact_utc(time), "20240229-235959");
        assert_eq!(rfc3339_utc(time), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn git_revision_from_loose_and_packed_refs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).expect("mkdir");
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").expect("write");
        std::fs::write(
            git.join("refs/heads/main"),
            "0123456789abcdef0123456789abcdef01234567\n",
        )
        .expect("write");
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).expect("mkdir");
        assert_eq!(git_revision_at(&nested).as_deref(), Some("0123456"));

        std::fs::remove_file(git.join("refs/heads/main")).expect("rm");
        std::fs::write(
            git.join("packed-refs"),
            "# pack-refs\nfedcba9876543210fedcba9876543210fedcba98 refs/heads/main\n",
        )
        .expect("write");
        assert_eq!(git_revision_at(dir.path()).as_deref(), Some("fedcba9"));

        std::fs::write(git.join("HEAD"), "ref: refs/heads/unborn\n").expect("write");
        assert_eq!(git_revision_at(dir.path()), None);
    }

    #[test]
    fn explicit_out_dir_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("x/y");
        assert_eq!(create_run_dir(Some(&out)).expect("created"), out);
        assert!(out.is_dir());
    }
}
