//! `xiaoer kb`: validate and search the knowledge base from the terminal.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use xiaoer_kb::{ArticleSet, KnowledgeIndex, RetrievalMode, SearchQuery};
use xiaoer_models::{E5Encoder, Encoder, TextRole};
use xiaoer_service::config::workspace_path;

/// `xiaoer kb …`.
#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Validate the knowledge-base folder; fails with file and line on any problem.
    Check {
        #[arg(long, env = "XIAOER_KB_DIR", default_value_os_t = workspace_path("knowledge-base"))]
        kb_dir: PathBuf,
    },
    /// Search the knowledge base from the terminal, with scores and snippets.
    Search {
        /// The shopper's question.
        query: String,
        #[arg(long, env = "XIAOER_KB_DIR", default_value_os_t = workspace_path("knowledge-base"))]
        kb_dir: PathBuf,
        #[arg(long, env = "XIAOER_MODELS_DIR", default_value_os_t = workspace_path("models/weights"))]
        models_dir: PathBuf,
        /// bm25, dense or hybrid.
        #[arg(long, default_value = "hybrid")]
        mode: String,
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
}

/// Runs a knowledge-base subcommand.
pub async fn kb(command: KbCommand) -> anyhow::Result<()> {
    match command {
        KbCommand::Check { kb_dir } => {
            let problems = xiaoer_kb::check(&kb_dir);
            for p in &problems {
                println!("{p}");
            }
            if !problems.is_empty() {
                bail!("{} problem(s) in {}", problems.len(), kb_dir.display());
            }
            let set = ArticleSet::load(&kb_dir)?;
            println!(
                "{}: {} articles OK (version {})",
                kb_dir.display(),
                set.len(),
                set.version()
            );
            Ok(())
        }
        KbCommand::Search {
            query,
            kb_dir,
            models_dir,
            mode,
            limit,
        } => {
            let mode = match mode.as_str() {
                "bm25" => RetrievalMode::Bm25,
                "dense" => RetrievalMode::Dense,
                "hybrid" => RetrievalMode::Hybrid,
                other => bail!("--mode must be bm25, dense or hybrid, not {other:?}"),
            };
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let encoder = E5Encoder::load(&models_dir).with_context(|| {
                    format!("{} — run scripts/fetch-weights.sh", models_dir.display())
                })?;
                let index = KnowledgeIndex::build(ArticleSet::load(&kb_dir)?, &encoder)?;
                let embedding = encoder
                    .encode_batch(&[query.as_str()], TextRole::Query)?
                    .remove(0);
                let language = xiaoer_models::detect_language(&query);
                let hits = index.search(&SearchQuery {
                    text: &query,
                    embedding: Some(&embedding),
                    language,
                    limit,
                    mode,
                });
                for (rank, hit) in hits.iter().enumerate() {
                    println!(
                        "{}. {:<24} {:.3}  {}\n   {}",
                        rank + 1,
                        hit.article_id,
                        hit.score,
                        hit.title,
                        hit.snippet
                    );
                }
                println!("decision: {:?}", index.decide(&hits));
                Ok(())
            })
            .await?
        }
    }
}
