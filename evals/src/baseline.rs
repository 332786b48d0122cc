//! Baseline gate: compare this run's headline figures with an earlier
//! report.json and flag regressions beyond a tolerance.
//!
//! The tolerance is in percentage points (default [`DEFAULT_TOLERANCE_PP`] =
//! 2 pp): with ~400 cases one case is ~0.25 pp, so 2 pp is about eight cases
//! going the wrong way, more than run-to-run noise of a deterministic model
//! but small enough to catch a real slip. "Worse" means lower for the
//! accuracies and recall, higher for the unnecessary-handoff rate.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classification::percent;
use crate::metrics::{Headline, Metric};

/// Default regression tolerance, in percentage points.
pub const DEFAULT_TOLERANCE_PP: f64 = 2.0;

/// The parts of a cases report.json a baseline needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Its headline figures.
    pub headline: Headline,
    /// SHA-256 of the case files it ran on, when recorded.
    pub cases_sha256: Option<String>,
    /// Git revision it ran at, when recorded.
    pub git_revision: Option<String>,
}

/// Why a baseline could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The file cannot be read.
    #[error("cannot read baseline {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a cases report.
    #[error("baseline {path} is not a cases report.json: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
struct ReportShape {
    metrics: MetricsShape,
    #[serde(default)]
    data: Option<DataShape>,
    #[serde(default)]
    git_revision: Option<String>,
}

#[derive(Deserialize)]
struct MetricsShape {
    headline: Headline,
}

#[derive(Deserialize)]
struct DataShape {
    cases_sha256: String,
}

/// Reads the headline of an earlier `report.json` written by the case runner.
pub fn load_baseline(path: &Path) -> Result<Baseline, BaselineError> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Io {
        path: label.clone(),
        source,
    })?;
    let report: ReportShape = serde_json::from_str(&text).map_err(|err| BaselineError::Format {
        path: label,
        reason: err.to_string(),
    })?;
    Ok(Baseline {
        headline: report.metrics.headline,
        cases_sha256: report.data.map(|data| data.cases_sha256),
        git_revision: report.git_revision,
    })
}

/// One metric's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// Which figure.
    pub metric: Metric,
    /// Baseline value.
    pub baseline: Option<f64>,
    /// This run's value.
    pub current: Option<f64>,
    /// `current - baseline` in percentage points (`None` if either is missing).
    pub delta_pp: Option<f64>,
    /// Worse than the baseline by more than the tolerance.
    pub regressed: bool,
}

/// The whole comparison, kept in report.json and printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Tolerance applied, in percentage points.
    pub tolerance_pp: f64,
    /// Per-metric rows in headline order.
    pub rows: Vec<ComparisonRow>,
    /// Whether both runs used the same case files (`None` when the baseline
    /// did not record it): a changed suite explains moved numbers.
    pub same_cases: Option<bool>,
    /// Git revision of the baseline, when recorded.
    pub baseline_revision: Option<String>,
    /// Any row regressed.
    pub regressed: bool,
}

impl Comparison {
    /// Console/Markdown lines, one per metric plus a verdict.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "baseline comparison (rev {}, tolerance {:.1} pp){}:",
            self.baseline_revision.as_deref().unwrap_or("unknown"),
            self.tolerance_pp,
            match self.same_cases {
                Some(false) => ", NOTE: case files differ from the baseline's",
                _ => "",
            }
        )];
        for row in &self.rows {
            let delta = row
                .delta_pp
                .map_or("n/a".to_string(), |delta| format!("{delta:+.1} pp"));
            lines.push(format!(
                "  {:<34} {:>7} -> {:>7}  {:>9}{}",
                row.metric.label(),
                percent(row.baseline),
                percent(row.current),
                delta,
                if row.regressed { "  REGRESSED" } else { "" }
            ));
        }
        lines.push(if self.regressed {
            "  verdict: REGRESSION beyond tolerance".to_string()
        } else {
            "  verdict: no regression beyond tolerance".to_string()
        });
        lines
    }
}

/// Compares `current` with `baseline`. A metric missing on either side is
/// shown but never counts as a regression (there is nothing to compare).
pub fn compare(
    baseline: &Baseline,
    current: &Headline,
    current_cases_sha256: &str,
    tolerance_pp: f64,
) -> Comparison {
    let rows: Vec<ComparisonRow> = baseline
        .headline
        .entries()
        .into_iter()
        .zip(current.entries())
        .map(|((metric, before), (_, now))| {
            let delta_pp = before.zip(now).map(|(before, now)| (now - before) * 100.0);
            let worse_pp = delta_pp.map(|delta| {
                if metric.higher_is_better() {
                    -delta
                } else {
                    delta
                }
            });
            // A hair of slack so that exactly the tolerance is not a regression
            // despite floating-point rounding.
            let regressed = worse_pp.is_some_and(|worse| worse > tolerance_pp + 1e-9);
            ComparisonRow {
                metric,
                baseline: before,
                current: now,
                delta_pp,
                regressed,
            }
        })
        .collect();
    Comparison {
        tolerance_pp,
        regressed: rows.iter().any(|row| row.regressed),
        rows,
        same_cases: baseline
            .cases_sha256
            .as_deref()
            .map(|sha| sha == current_cases_sha256),
        baseline_revision: baseline.git_revision.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headline(action: f64, recall: f64, unnecessary: f64) -> Headline {
        Headline {
            action_accuracy: Some(action),
            handoff_recall: Some(recall),
            unnecessary_handoff_rate: Some(unnecessary),
            source_accuracy: Some(0.9),
            intent_accuracy: None,
        }
    }

    fn baseline(h: Headline) -> Baseline {
        Baseline {
            headline: h,
            cases_sha256: Some("abc".into()),
            git_revision: Some("1234567".into()),
        }
    }

    #[test]
    fn within_tolerance_is_not_a_regression() {
        let before = baseline(headline(0.95, 0.98, 0.02));
        let comparison = compare(&before, &headline(0.93, 0.99, 0.04), "abc", 2.0);
        assert!(!comparison.regressed, "{:?}", comparison.lines());
        assert_eq!(comparison.same_cases, Some(true));
        let action = &comparison.rows[0];
        assert!((action.delta_pp.expect("delta") + 2.0).abs() < 1e-9);
    }

    #[test]
    fn drops_and_rises_beyond_tolerance_regress() {
        let before = baseline(headline(0.95, 0.98, 0.02));
        let lower_recall = compare(&before, &headline(0.95, 0.95, 0.02), "abc", 2.0);
        assert!(lower_recall.regressed);
        assert!(lower_recall.rows[1].regressed);
        let more_handoffs = compare(&before, &headline(0.95, 0.98, 0.05), "other", 2.0);
        assert!(more_handoffs.regressed);
        assert!(more_handoffs.rows[2].regressed);
        assert_eq!(more_handoffs.same_cases, Some(false));
        assert!(more_handoffs.lines()[0].contains("case files differ"));
        // Improvements never regress, however large.
        let better = compare(&before, &headline(1.0, 1.0, 0.0), "abc", 0.0);
        assert!(!better.regressed);
        // Missing values are not comparable.
        let missing = Headline {
            action_accuracy: None,
            ..headline(0.95, 0.98, 0.02)
        };
        assert!(!compare(&before, &missing, "abc", 2.0).regressed);
    }

    #[test]
    fn reads_a_report_and_rejects_other_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("report.json");
        let report = serde_json::json!({
            "git_revision": "abc1234",
            "data": {"cases_sha256": "ff"},
            "metrics": {"headline": headline(0.9, 0.9, 0.1)}
        });
        std::fs::write(&good, report.to_string()).expect("write");
        let loaded = load_baseline(&good).expect("loads");
        assert_eq!(loaded.headline.action_accuracy, Some(0.9));
        assert_eq!(loaded.cases_sha256.as_deref(), Some("ff"));
        let bad = dir.path().join("other.json");
        std::fs::write(&bad, "{\"throughput\": 3}").expect("write");
        let err = load_baseline(&bad).expect_err("not a cases report");
        assert!(
            err.to_string().contains("is not a cases report.json"),
            "{err}"
        );
        assert!(load_baseline(&dir.path().join("missing.json")).is_err());
    }
}
