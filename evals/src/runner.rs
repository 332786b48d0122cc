//! `xiaoer eval cases`: run every case over gRPC, judge it, compute the
//! figures, write the report folder and print what failed.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tokio::task::JoinSet;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;

use crate::baseline::{compare, load_baseline, Comparison};
use crate::cases::{load_suite, resolve_case_files, Case, CaseFileInfo, CaseSuite};
use crate::classification::Ratio;
use crate::cli::CasesArgs;
use crate::client::{connect, AuthChannel};
use crate::judge::{CaseResult, Observation};
use crate::metrics::{intent_predictions, CaseMetrics, GroupMetrics, Headline, Metric};
use crate::progress;
use crate::report::{self, RunInfo, LATENCY_PNG};

/// `channel` sent with every eval request, so analytics can leave eval
/// traffic out.
pub const EVAL_CHANNEL: &str = "eval";

/// What the CLI needs after a case run: the counts, the headline and whether
/// the baseline gate tripped (the process should then exit non-zero).
#[derive(Debug, Clone)]
pub struct CasesOutcome {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// This run's headline figures.
    pub headline: Headline,
    /// The baseline comparison, when `--baseline` was given.
    pub comparison: Option<Comparison>,
    /// A headline figure worsened beyond the tolerance.
    pub regressed: bool,
    /// Folder holding report.json, report.md and the plots.
    pub report_dir: PathBuf,
}

/// Data identity recorded in report.json: which case files, how many, and
/// a hash of their content.
#[derive(Debug, Clone, Serialize)]
struct DataInfo<'a> {
    case_file_count: usize,
    case_count: usize,
    cases_sha256: &'a str,
    case_files: &'a [CaseFileInfo],
}

#[derive(Debug, Clone, Serialize)]
struct GoalRow {
    metric: Metric,
    label: &'static str,
    value: Option<f64>,
    goal: Option<f64>,
    higher_is_better: bool,
    status: &'static str,
}

#[derive(Serialize)]
struct CasesReport<'a> {
    kind: &'static str,
    #[serde(flatten)]
    run: &'a RunInfo,
    endpoint: &'a str,
    model_version: Option<&'a str>,
    data: DataInfo<'a>,
    passed: usize,
    failed: usize,
    goals: Vec<GoalRow>,
    metrics: &'a CaseMetrics,
    baseline: Option<&'a Comparison>,
    failed_cases: Vec<String>,
    results: &'a [CaseResult],
}

/// Runs the suite against `endpoint` (the URL of a running server; the CLI
/// passes its in-process server's URL when `--endpoint` is absent).
///
/// Cases and the baseline are loaded first, so a malformed line fails as
/// `file:line: reason` before any request; an unreachable server fails
/// within ~3 s. Prints one line per failed case, the figures with their
/// goals, the baseline comparison and finally `N passed, N failed`.
pub async fn run_cases(args: &CasesArgs, endpoint: &str) -> anyhow::Result<CasesOutcome> {
    let files = resolve_case_files(&args.files)?;
    let suite = load_suite(&files)?;
    let baseline = args.baseline.as_deref().map(load_baseline).transpose()?;
    // Plots come last; a missing font should not waste a whole run.
    crate::plots::ensure_font()?;
    let client = connect(endpoint, &args.auth).await?;
    let report_dir = report::create_run_dir(args.out.as_deref())?;
    let run = RunInfo::now();

    let results = run_suite(client, &suite.cases, usize::from(args.concurrency)).await?;
    let metrics = CaseMetrics::compute(&results).context("cannot score the results")?;
    let comparison = baseline
        .map(|baseline| compare(&baseline, &metrics.headline, &suite.sha256, args.tolerance));
    let failures: Vec<String> = results
        .iter()
        .filter(|result| !result.passed())
        .map(CaseResult::failure_line)
        .collect();
    let passed = results.len() - failures.len();

    let report = CasesReport {
        kind: "cases",
        run: &run,
        endpoint,
        model_version: args.model_version.as_deref(),
        data: DataInfo {
            case_file_count: suite.files.len(),
            case_count: suite.cases.len(),
            cases_sha256: &suite.sha256,
            case_files: &suite.files,
        },
        passed,
        failed: failures.len(),
        goals: goal_rows(&metrics.headline),
        metrics: &metrics,
        baseline: comparison.as_ref(),
        failed_cases: failures.clone(),
        results: &results,
    };
    report::write_json(&report_dir.join("report.json"), &report)?;
    report::write_text(&report_dir.join("report.md"), &markdown(&report, &suite))?;
    let predictions = intent_predictions(&results, metrics.intents.labels.clone());
    report::write_classification_plots(&report_dir, "Intents", &metrics.intents, &predictions)?;
    let latencies: Vec<f64> = results
        .iter()
        .flat_map(|result| result.latencies_ms.iter().copied())
        .collect();
    crate::plots::latency_plot(
        &report_dir.join(LATENCY_PNG),
        "Reply latency per call",
        &latencies,
    )?;

    for line in &failures {
        println!("{line}");
    }
    for line in summary_lines(&metrics) {
        println!("{line}");
    }
    if let Some(comparison) = &comparison {
        for line in comparison.lines() {
            println!("{line}");
        }
    }
    println!("report: {}", report_dir.display());
    println!("{passed} passed, {} failed", failures.len());

    Ok(CasesOutcome {
        passed,
        failed: failures.len(),
        headline: metrics.headline,
        regressed: comparison
            .as_ref()
            .is_some_and(|comparison| comparison.regressed),
        comparison,
        report_dir,
    })
}

/// Runs the cases with `concurrency` workers; results come back in case order.
async fn run_suite(
    client: AutoReplyClient<AuthChannel>,
    cases: &[Case],
    concurrency: usize,
) -> anyhow::Result<Vec<CaseResult>> {
    let cases = Arc::new(cases.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let bar = progress::bar(
        cases.len() as u64,
        "cases",
        "{prefix} [{bar:40}] {pos}/{len} ({elapsed})",
    );
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.clamp(1, cases.len().max(1)) {
        let (cases, next, bar, run_id) = (
            Arc::clone(&cases),
            Arc::clone(&next),
            bar.clone(),
            run_id.clone(),
        );
        let mut client = client.clone();
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(index) else { break };
                done.push((index, run_case(&mut client, case, &run_id).await));
                bar.inc(1);
            }
            done
        });
    }
    let mut indexed = Vec::with_capacity(cases.len());
    while let Some(joined) = workers.join_next().await {
        indexed.extend(joined.context("a case worker crashed")?);
    }
    bar.finish_and_clear();
    indexed.sort_by_key(|(index, _)| *index);
    Ok(indexed.into_iter().map(|(_, result)| result).collect())
}

/// Sends a case's turns in order in one fresh conversation; the last
/// response (or the first failure) is judged.
async fn run_case(
    client: &mut AutoReplyClient<AuthChannel>,
    case: &Case,
    run_id: &str,
) -> CaseResult {
    let conversation_id = format!("eval-{run_id}-{}", case.id);
    let customer = case.customer.as_ref().map(pb::CustomerContext::from);
    let mut latencies_ms = Vec::with_capacity(case.turns.len());
    let mut last = None;
    for (turn, text) in case.turns.iter().enumerate() {
        let request = pb::ReplyRequest {
            conversation_id: conversation_id.clone(),
            text: text.clone(),
            locale: String::new(),
            shop_id: String::new(),
            channel: EVAL_CHANNEL.to_string(),
            customer: customer.clone(),
            client_turn_id: format!("{conversation_id}-{}", turn + 1),
        };
        let started = Instant::now();
        match client.reply(request).await {
            Ok(response) => {
                latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
                last = Some(Observation::from_response(response.get_ref()));
            }
            Err(status) => {
                last = Some(Observation::from_error(&status));
                break;
            }
        }
    }
    // Validation guarantees at least one turn; this only guards the type.
    let got = last.unwrap_or_else(|| {
        Observation::from_error(&tonic::Status::invalid_argument("case has no turns"))
    });
    CaseResult::new(case, got, latencies_ms)
}

fn goal_rows(headline: &Headline) -> Vec<GoalRow> {
    headline
        .entries()
        .into_iter()
        .map(|(metric, value)| GoalRow {
            metric,
            label: metric.label(),
            value,
            goal: metric.goal(),
            higher_is_better: metric.higher_is_better(),
            status: metric.goal_status(value),
        })
        .collect()
}

fn ratio_for(group: &GroupMetrics, metric: Metric) -> Ratio {
    match metric {
        Metric::ActionAccuracy => group.action_accuracy,
        Metric::HandoffRecall => group.handoff_recall,
        Metric::UnnecessaryHandoffRate => group.unnecessary_handoffs,
        Metric::SourceAccuracy => group.source_accuracy,
        Metric::IntentAccuracy => group.intent_accuracy,
    }
}

/// The console block printed after the failures.
fn summary_lines(metrics: &CaseMetrics) -> Vec<String> {
    let overall = &metrics.overall;
    let mut lines = Vec::new();
    for (metric, _) in metrics.headline.entries() {
        let ratio = ratio_for(overall, metric);
        let line = format!(
            "{:<40} {:>18}  goal {:<6} {}",
            metric.label(),
            ratio.display(),
            metric.goal_text(),
            metric.goal_status(ratio.value)
        );
        lines.push(line.trim_end().to_string());
        if metric == Metric::HandoffRecall {
            lines.push(format!(
                "{:<40} {:>18}",
                "  angry (NEGATIVE_SENTIMENT)",
                overall.handoff_recall_angry.display()
            ));
            lines.push(format!(
                "{:<40} {:>18}",
                "  explicit requests (CUSTOMER_REQUEST)",
                overall.handoff_recall_request.display()
            ));
        }
    }
    lines.push(format!(
        "{:<40} {:>18}",
        "handoff drafts on the conversation's topic",
        overall.drafts_on_topic.display()
    ));
    lines.push(format!(
        "intents: macro-F1 {} · ECE {}",
        metrics
            .intents
            .macro_f1
            .map_or("n/a".to_string(), |f1| format!("{f1:.3}")),
        metrics
            .intents
            .calibration
            .ece
            .map_or("n/a".to_string(), |ece| format!("{ece:.3}"))
    ));
    lines.push(format!("latency: {}", metrics.latency.one_line()));
    lines
}

fn group_table(
    md: &mut String,
    first_column: &str,
    groups: &std::collections::BTreeMap<String, GroupMetrics>,
) {
    let _ = writeln!(
        md,
        "| {first_column} | cases | passed | action | handoff recall | unnecessary handoffs | top source | intent |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, group) in groups {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            group.cases,
            group.passed,
            group.action_accuracy.display(),
            group.handoff_recall.display(),
            group.unnecessary_handoffs.display(),
            group.source_accuracy.display(),
            group.intent_accuracy.display()
        );
    }
}

fn markdown(report: &CasesReport<'_>, suite: &CaseSuite) -> String {
    let metrics = report.metrics;
    let mut md = report.run.markdown_header("xiaoer case suite report");
    let _ = writeln!(
        md,
        "- model version: {}",
        report.model_version.unwrap_or("not recorded")
    );
    let _ = writeln!(md, "- endpoint: {}", report.endpoint);
    let _ = writeln!(
        md,
        "- cases: {} in {} files, sha256 `{}`",
        suite.cases.len(),
        suite.files.len(),
        suite.sha256
    );
    let _ = writeln!(
        md,
        "- result: **{} passed, {} failed**\n",
        report.passed, report.failed
    );

    let _ = writeln!(md, "## Headline\n");
    let _ = writeln!(
        md,
        "| metric | value | goal | status |\n|---|---:|---:|---|"
    );
    for (metric, _) in metrics.headline.entries() {
        let ratio = ratio_for(&metrics.overall, metric);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            metric.label(),
            ratio.display(),
            metric.goal_text(),
            metric.goal_status(ratio.value)
        );
    }
    let _ = writeln!(
        md,
        "| ↳ angry (NEGATIVE_SENTIMENT) | {} | | |",
        metrics.overall.handoff_recall_angry.display()
    );
    let _ = writeln!(
        md,
        "| ↳ explicit requests (CUSTOMER_REQUEST) | {} | | |",
        metrics.overall.handoff_recall_request.display()
    );
    let _ = writeln!(
        md,
        "| handoff drafts on the conversation's topic | {} | | |",
        metrics.overall.drafts_on_topic.display()
    );
    let _ = writeln!(
        md,
        "\nHandoff recall counts a handoff for any reason; a wrong reason still fails the case. \
         Unnecessary handoffs are handoffs on cases that expect ANSWER or CLARIFY, over those cases.\n"
    );

    if let Some(comparison) = report.baseline {
        let _ = writeln!(md, "## Baseline\n\n```");
        for line in comparison.lines() {
            let _ = writeln!(md, "{line}");
        }
        let _ = writeln!(md, "```\n");
    }

    let _ = writeln!(md, "## By language\n");
    group_table(&mut md, "language", &metrics.by_language);
    let _ = writeln!(md, "\n## By expected intent\n");
    group_table(&mut md, "intent", &metrics.by_intent);
    md.push('\n');
    md.push_str(&report::classification_markdown(
        "Intent classification",
        &metrics.intents,
    ));
    let _ = writeln!(md, "## Latency per Reply call\n");
    md.push_str(&report::latency_markdown(&metrics.latency));
    let _ = writeln!(md, "\n## Failed cases ({})\n", report.failed_cases.len());
    if report.failed_cases.is_empty() {
        let _ = writeln!(md, "None.");
    }
    for line in &report.failed_cases {
        let _ = writeln!(md, "- `{}`", line.replace('`', "'"));
    }
    md
}

#[cfg(test)]
mod tests;
