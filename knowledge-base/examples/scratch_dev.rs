// TEMPORARY dev-only analysis; deleted after tuning.
use std::path::PathBuf;
use xiaoer_kb::*;
use xiaoer_models::{E5Encoder, Encoder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = crate_dir.parent().unwrap().to_path_buf();
    let enc = E5Encoder::load(&repo.join("models/weights"))?;
    let index = KnowledgeIndex::build(ArticleSet::load(&crate_dir)?, &enc)?;
    let queries = load_queries(repo.join("evals/retrieval/queries.jsonl"))?;
    let (mut dev, _test) = split_dev_test(&queries);
    let ds = repo.join("../shared/datasets");
    dev.extend(load_negatives(ds.join("clinc150/oos_val.jsonl"), Language::En, 300)?);
    dev.extend(load_negatives(ds.join("smp2017_ecdt_task1/dev.jsonl"), Language::Zh, 300)?);
    let emb = embed_queries(&enc, &dev)?;
    let cfg = RetrievalConfig { dense: DenseAggregate::Max, ..*index.config() };
    let index = index.with_config(cfg);
    let cfg2 = RetrievalConfig { dense: DenseAggregate::TopMean(2), ..cfg };
    let index2 = KnowledgeIndex::build(ArticleSet::load(&crate_dir)?, &enc)?.with_config(cfg2);
    for (q, e) in dev.iter().zip(&emb) {
        let mk = |mode| SearchQuery { text: &q.query, embedding: Some(e), language: q.lang.answer_language(), limit: 64, mode };
        let mut line = format!("{}\t{}", q.id, q.articles.join(","));
        for (idx, mode) in [(&index, RetrievalMode::Dense), (&index2, RetrievalMode::Dense), (&index, RetrievalMode::Bm25)] {
            let hits = idx.search(&mk(mode));
            let cells: Vec<String> = hits.iter().map(|h| format!("{}={:.5}", h.article_id, h.score)).collect();
            line.push_str(&format!("\t{}", cells.join(" ")));
        }
        println!("{line}");
    }
    Ok(())
}
