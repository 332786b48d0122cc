//! Report writing for `xiaoer eval bench`. The service runs the model on a
//! public dataset (it owns the model and data loading) and hands the
//! predictions here, so benchmark reports look exactly like the intent
//! section of case reports.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::classification::{ClassificationMetrics, Predictions};
use crate::cli::BenchArgs;
use crate::latency::LatencySummary;
use crate::report::{self, RunInfo, LATENCY_PNG};

/// One benchmark run's raw results, as produced by the service.
#[derive(Debug, Clone, Default)]
pub struct BenchRun {
    /// Dataset name as shown in the report (e.g. "MASSIVE zh-CN test").
    pub dataset: String,
    /// Dataset version or content hash, if known.
    pub dataset_version: Option<String>,
    /// Model version or weights hash, if known.
    pub model_version: Option<String>,
    /// Gold labels, predictions and confidences.
    pub predictions: Predictions,
    /// Milliseconds per prediction, if measured (may be empty).
    pub latencies_ms: Vec<f64>,
    /// Free-form remarks for the report (label mapping used, examples skipped…).
    pub notes: Vec<String>,
}

/// Where the benchmark report went and its main figures.
#[derive(Debug, Clone)]
pub struct BenchOutcome {
    /// Folder holding report.json, report.md and plots.
    pub report_dir: PathBuf,
    /// All classification figures.
    pub metrics: ClassificationMetrics,
    /// Latency of the predictions (empty when none were measured).
    pub latency: LatencySummary,
}

#[derive(Serialize)]
struct BenchReport<'a> {
    kind: &'static str,
    #[serde(flatten)]
    run: &'a RunInfo,
    dataset: &'a str,
    dataset_argument: &'a str,
    dataset_version: Option<&'a str>,
    model_version: Option<&'a str>,
    limit: Option<u64>,
    notes: &'a [String],
    metrics: &'a ClassificationMetrics,
    latency: &'a LatencySummary,
}

/// Scores `run`, writes report.json, report.md, confusion/reliability/
/// coverage plots (and latency.png when latencies were measured) into the
/// folder chosen by `args.out`, prints a two-line summary and returns it.
pub fn write_bench_report(args: &BenchArgs, run: &BenchRun) -> anyhow::Result<BenchOutcome> {
    let metrics = ClassificationMetrics::compute(&run.predictions)
        .context("cannot score the benchmark predictions")?;
    crate::plots::ensure_font()?;
    let latency = LatencySummary::from_samples(&run.latencies_ms);
    let report_dir = report::create_run_dir(args.out.as_deref())?;
    let info = RunInfo::now();
    let report = BenchReport {
        kind: "bench",
        run: &info,
        dataset: &run.dataset,
        dataset_argument: &args.dataset,
        dataset_version: run.dataset_version.as_deref(),
        model_version: run.model_version.as_deref(),
        limit: args.limit,
        notes: &run.notes,
        metrics: &metrics,
        latency: &latency,
    };
    report::write_json(&report_dir.join("report.json"), &report)?;
    report::write_text(&report_dir.join("report.md"), &markdown(&report))?;
    report::write_classification_plots(&report_dir, &run.dataset, &metrics, &run.predictions)?;
    if latency.count > 0 {
        crate::plots::latency_plot(
            &report_dir.join(LATENCY_PNG),
            "Prediction latency",
            &run.latencies_ms,
        )?;
    }
    println!(
        "{}: accuracy {} · macro-F1 {} · ECE {}",
        run.dataset,
        metrics.accuracy.display(),
        metrics
            .macro_f1
            .map_or("n/a".to_string(), |f1| format!("{f1:.3}")),
        metrics
            .calibration
            .ece
            .map_or("n/a".to_string(), |ece| format!("{ece:.3}"))
    );
    println!("report: {}", report_dir.display());
    Ok(BenchOutcome {
        report_dir,
        metrics,
        latency,
    })
}

fn markdown(report: &BenchReport<'_>) -> String {
    let mut md = report
        .run
        .markdown_header(&format!("xiaoer benchmark report: {}", report.dataset));
    let _ = writeln!(
        md,
        "- dataset: {} (version {})",
        report.dataset_argument,
        report.dataset_version.unwrap_or("unknown")
    );
    let _ = writeln!(
        md,
        "- model version: {}",
        report.model_version.unwrap_or("unknown")
    );
    if let Some(limit) = report.limit {
        let _ = writeln!(md, "- limited to the first {limit} examples");
    }
    for note in report.notes {
        let _ = writeln!(md, "- {note}");
    }
    md.push('\n');
    md.push_str(&report::classification_markdown(
        "Classification",
        report.metrics,
    ));
    if report.latency.count > 0 {
        let _ = writeln!(md, "## Latency per prediction\n");
        md.push_str(&report::latency_markdown(report.latency));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_complete_bench_report() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = BenchArgs {
            dataset: "toy".into(),
            limit: Some(6),
            out: Some(dir.path().join("bench")),
        };
        let labels = |items: &[&str]| {
            items
                .iter()
                .map(|item| item.to_string())
                .collect::<Vec<_>>()
        };
        let run = BenchRun {
            dataset: "toy set".into(),
            dataset_version: Some("v1".into()),
            model_version: None,
            predictions: Predictions {
                labels: labels(&["a", "b"]),
                gold: labels(&["a", "a", "b", "b", "a", "b"]),
                predicted: labels(&["a", "b", "b", "b", "a", "a"]),
                confidences: vec![0.9, 0.6, 0.8, 0.7, 0.95, 0.55],
            },
            latencies_ms: vec![1.0, 2.0, 3.0],
            notes: vec!["labels mapped 1:1".into()],
        };
        let outcome = write_bench_report(&args, &run).expect("writes");
        assert_eq!(outcome.metrics.accuracy.hits, 4);
        for file in [
            "report.json",
            "report.md",
            "confusion.png",
            "reliability.png",
            "coverage.png",
            "latency.png",
        ] {
            assert!(outcome.report_dir.join(file).is_file(), "{file}");
        }
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(outcome.report_dir.join("report.json")).expect("read"),
        )
        .expect("json");
        assert_eq!(json["kind"], "bench");
        assert_eq!(json["limit"], 6);
        assert_eq!(json["metrics"]["accuracy"]["hits"], 4);
        let md = std::fs::read_to_string(outcome.report_dir.join("report.md")).expect("read");
        assert!(
            md.contains("labels mapped 1:1") && md.contains("| a | 3 | 3 |"),
            "{md}"
        );

        let broken = BenchRun {
            predictions: Predictions {
                gold: labels(&["a"]),
                ..Default::default()
            },
            ..run
        };
        assert!(write_bench_report(&args, &broken).is_err());
    }
}
