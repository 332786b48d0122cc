//! `xiaoer eval bench DATASET`: reruns the model and retrieval benchmarks
//! that the README reports, from one command, and writes the figures to a
//! report folder next to the published anchors.
//!
//! Datasets: `banking77`, `clinc150` (intent heads on the frozen encoder),
//! `goemotions`, `chinese_online_shopping_10_cats` (sentiment heads),
//! `stackfaq` (retrieval on a public FAQ set) and `retrieval` (our own
//! bilingual shop queries, evals/retrieval/queries.jsonl).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;
use xiaoer_kb::{ArticleSet, EvalQuery, KnowledgeIndex, RetrievalMetrics, RetrievalMode};
use xiaoer_models::bench::{run_banking77, run_clinc150, BenchConfig};
use xiaoer_models::cache::ClassificationView;
use xiaoer_models::e5::SHIPPED_FEATURE_LAYERS;
use xiaoer_models::sentiment_bench::{run_goemotions, run_online_shopping};
use xiaoer_models::train::datasets::missing_set;
use xiaoer_models::{E5Encoder, Encoder};

use xiaoer_service::config::workspace_path;

use crate::BenchArgs;

/// Runs one benchmark and writes `report.json` into the report folder.
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let dataset = args.dataset.to_lowercase();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(format!("bench-{dataset}")));
    let limit = args.limit.map(|n| n as usize);
    let datasets_dir = args.datasets_dir.clone();
    let figures = tokio::task::spawn_blocking(move || -> anyhow::Result<serde_json::Value> {
        let workspace = workspace_path(".");
        let mut encoder = E5Encoder::load(&workspace.join("models/weights"))
            .context("encoder weights — run scripts/fetch-weights.sh")?;
        // The heads' benchmarks read the features `xiaoer train` gives the
        // shipped heads; retrieval keeps the encoder's own embedding.
        encoder.set_feature_layers(&SHIPPED_FEATURE_LAYERS)?;
        let features = ClassificationView::new(&encoder)?;
        let mut config = BenchConfig::for_workspace(&workspace);
        if let Some(dir) = &datasets_dir {
            config.datasets_dir = dir.clone();
        }
        Ok(match dataset.as_str() {
            "banking77" => serde_json::to_value(run_banking77(&config, &features)?)?,
            "clinc150" => serde_json::to_value(run_clinc150(&config, &features)?)?,
            "goemotions" => serde_json::to_value(run_goemotions(&config, &features)?)?,
            "chinese_online_shopping_10_cats" | "online_shopping" => {
                serde_json::to_value(run_online_shopping(&config, &features)?)?
            }
            "stackfaq" => {
                if !config.datasets_dir.join("stackfaq").is_dir() {
                    return Err(missing_set(&config.datasets_dir, "stackfaq").into());
                }
                let faq = xiaoer_kb::load_stackfaq(config.datasets_dir.join("stackfaq"))?;
                let index = KnowledgeIndex::build(faq.set, &encoder)?;
                retrieval_table(
                    "StackFAQ (published: see ../shared/datasets/stackfaq/SOURCE.md)",
                    &index,
                    &truncate(faq.queries, limit),
                    &encoder,
                )?
            }
            "retrieval" => {
                let index = KnowledgeIndex::build(
                    ArticleSet::load(workspace.join("knowledge-base"))?,
                    &encoder,
                )?;
                let queries =
                    xiaoer_kb::load_queries(workspace.join("evals/retrieval/queries.jsonl"))?;
                retrieval_table(
                    "xiaoer shop queries (zh+en)",
                    &index,
                    &truncate(queries, limit),
                    &encoder,
                )?
            }
            other => bail!(
                "unknown benchmark {other:?}: expected banking77, clinc150, goemotions, chinese_online_shopping_10_cats, stackfaq or retrieval"
            ),
        })
    })
    .await??;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let text = serde_json::to_string_pretty(&figures)?;
    std::fs::write(out.join("report.json"), &text)?;
    println!("{text}");
    println!("report written to {}", display(&out));
    Ok(())
}

fn truncate(mut queries: Vec<EvalQuery>, limit: Option<usize>) -> Vec<EvalQuery> {
    if let Some(limit) = limit {
        queries.truncate(limit);
    }
    queries
}

#[derive(Serialize)]
struct ModeFigures {
    mode: &'static str,
    hit_at_1: f64,
    hit_at_3: f64,
    mrr: f64,
    queries: usize,
}

impl ModeFigures {
    fn new(mode: &'static str, m: RetrievalMetrics) -> Self {
        Self {
            mode,
            hit_at_1: m.hit_at_1,
            hit_at_3: m.hit_at_3,
            mrr: m.mrr,
            queries: m.n,
        }
    }
}

/// hit@1, hit@3 and MRR of BM25 alone, dense alone and hybrid on one query set.
fn retrieval_table(
    name: &str,
    index: &KnowledgeIndex,
    queries: &[EvalQuery],
    encoder: &dyn Encoder,
) -> anyhow::Result<serde_json::Value> {
    let mut rows = Vec::new();
    for (label, mode) in [
        ("bm25", RetrievalMode::Bm25),
        ("dense", RetrievalMode::Dense),
        ("hybrid", RetrievalMode::Hybrid),
    ] {
        let metrics = xiaoer_kb::evaluate(index, queries, encoder, mode)?;
        println!(
            "{name:<40} {label:<7} hit@1 {:.3}  hit@3 {:.3}  MRR {:.3}  (n={})",
            metrics.hit_at_1, metrics.hit_at_3, metrics.mrr, metrics.n
        );
        rows.push(ModeFigures::new(label, metrics));
    }
    Ok(serde_json::json!({ "benchmark": name, "encoder": encoder.name(), "modes": rows }))
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
