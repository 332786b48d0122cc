use super::*;
use crate::index::tests::fixture_index;
use crate::test_support::HashEncoder;
use std::path::PathBuf;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).expect("write");
    p
}

#[test]
fn loads_queries_and_reports_bad_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(
        dir.path(),
        "q.jsonl",
        "{\"id\":\"a\",\"lang\":\"zh\",\"query\":\"退货\",\"articles\":[\"returns\"]}\n\n{\"id\":\"b\",\"lang\":\"en\",\"query\":\"weather?\",\"articles\":[]}\n",
    );
    let qs = load_queries(&good).expect("load");
    assert_eq!(qs.len(), 2);
    assert_eq!(qs[0].lang, QueryLang::Zh);
    assert_eq!(qs[0].lang.answer_language(), Language::Zh);
    assert!(qs[1].articles.is_empty());

    let bad = write(
        dir.path(),
        "bad.jsonl",
        "{\"id\":\"a\",\"lang\":\"zh\",\"query\":\"x\",\"articles\":[]}\n{\"id\":\"b\"}\n",
    );
    let err = load_queries(&bad).expect_err("malformed");
    assert!(err.to_string().contains("bad.jsonl:2:"), "{err}");
    let mixed = write(
        dir.path(),
        "mixed.jsonl",
        "{\"id\":\"m\",\"lang\":\"mixed\",\"query\":\"订单咋cancel\",\"articles\":[\"c\"]}\n",
    );
    let m = load_queries(&mixed).expect("mixed");
    assert_eq!(
        (m[0].lang, m[0].lang.code(), m[0].lang.answer_language()),
        (QueryLang::Mixed, "mixed", Language::Zh)
    );
    let bad_lang = write(
        dir.path(),
        "lang.jsonl",
        "{\"id\":\"a\",\"lang\":\"fr\",\"query\":\"x\",\"articles\":[]}\n",
    );
    assert!(load_queries(&bad_lang)
        .expect_err("lang")
        .to_string()
        .contains("lang.jsonl:1:"));
    let dup = write(
        dir.path(),
        "dup.jsonl",
        "{\"id\":\"a\",\"lang\":\"en\",\"query\":\"x\",\"articles\":[]}\n{\"id\":\"a\",\"lang\":\"en\",\"query\":\"y\",\"articles\":[]}\n",
    );
    assert!(load_queries(&dup)
        .expect_err("dup")
        .to_string()
        .contains("dup.jsonl:2: duplicate id"));
}

fn q(id: &str, lang: Language, text: &str, gold: &[&str]) -> EvalQuery {
    EvalQuery {
        id: id.into(),
        lang: lang.into(),
        query: text.into(),
        articles: gold.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn evaluates_all_modes_on_fixture() {
    let enc = HashEncoder::new();
    let index = fixture_index(&enc);
    let queries = vec![
        q("1", Language::Zh, "我想退货", &["returns"]),
        q("2", Language::En, "where is my parcel", &["tracking"]),
        q(
            "3",
            Language::En,
            "how long does delivery take",
            &["shipping"],
        ),
        q("4", Language::En, "tell me a joke", &[]),
    ];
    for mode in RetrievalMode::ALL {
        let m = evaluate(&index, &queries, &enc, mode).expect("evaluate");
        assert_eq!(m.n, 3);
        assert!(m.hit_at_1 >= 2.0 / 3.0, "{mode:?} {m:?}");
        assert!(
            m.hit_at_3 >= m.hit_at_1 && m.mrr >= m.hit_at_1 - 1e-9,
            "{m:?}"
        );
    }
    let unknown = vec![q("x", Language::En, "refund", &["no-such-article"])];
    assert!(matches!(
        evaluate(&index, &unknown, &enc, RetrievalMode::Bm25),
        Err(KbError::UnknownArticle { .. })
    ));
}

#[test]
fn split_is_stable_and_disjoint() {
    let qs: Vec<EvalQuery> = (0..100)
        .map(|i| q(&format!("rq-{i:03}"), Language::En, "x", &["a"]))
        .collect();
    let (dev, test) = split_dev_test(&qs);
    assert_eq!(dev.len() + test.len(), 100);
    assert!(
        dev.len() > 30 && test.len() > 30,
        "{} / {}",
        dev.len(),
        test.len()
    );
    assert!(dev.iter().all(|d| !test.iter().any(|t| t.id == d.id)));
    assert_eq!(split_dev_test(&qs).0, dev);
}

#[test]
fn fits_thresholds_that_reject_negatives() {
    let enc = HashEncoder::new();
    let index = fixture_index(&enc);
    let queries = vec![
        q("1", Language::Zh, "我想退货", &["returns"]),
        q("2", Language::En, "where is my parcel", &["tracking"]),
        q("3", Language::En, "return policy please", &["returns"]),
        q("4", Language::En, "quantum chromodynamics lecture", &[]),
        q("5", Language::Zh, "今天天气怎么样", &[]),
    ];
    let embeddings = embed_queries(&enc, &queries).expect("embed");
    let (decision, m) = fit_decision(&index, &queries, &embeddings, 1.0);
    assert_eq!(m.negative_confident, 0, "{decision:?} {m:?}");
    assert_eq!(m.confident_wrong, 0);
    assert!(m.confident_correct >= 2, "{decision:?} {m:?}");
    assert_eq!(m.positives + m.negatives, 5);
    assert_eq!(
        decision_metrics(&index, &queries, &embeddings, &decision),
        m
    );
    let trials = compare_configs(
        &index,
        &queries,
        &embeddings,
        &fusion_candidates(index.config()),
    )
    .expect("trials");
    assert_eq!(trials.len(), fusion_candidates(index.config()).len());
    assert!(trials[0].metrics.mrr >= trials[trials.len() - 1].metrics.mrr);
}

#[test]
fn loads_negatives_with_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "oos.jsonl",
        "{\"text\":\"a\",\"label\":\"oos\"}\n{\"text\":\"b\",\"label\":\"oos\"}\nnot json\n",
    );
    let negs = load_negatives(&p, Language::En, 2).expect("negatives");
    assert_eq!(negs.len(), 2);
    assert!(negs.iter().all(|n| n.articles.is_empty()));
    assert!(load_negatives(&p, Language::En, 10)
        .expect_err("bad line")
        .to_string()
        .contains("oos.jsonl:3:"));
}

#[test]
fn loads_stackfaq_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "faqs.jsonl",
        "{\"faq_id\":0,\"question\":\"Strikethrough in Markdown\",\"answers\":[\"Use ~~tildes~~.\"]}\n{\"faq_id\":1,\"question\":\"Delete my Facebook account\",\"answers\":[\"Go to settings\",\"Deactivate it\"]}\n",
    );
    write(dir.path(), "queries.jsonl", "{\"query\":\"cross out text on github\",\"faq_id\":0}\n{\"query\":\"remove facebook profile\",\"faq_id\":1}\n");
    let sf = load_stackfaq(dir.path()).expect("load");
    assert_eq!(sf.set.len(), 2);
    assert_eq!(sf.queries[1].articles, vec!["faq-1"]);
    assert_eq!(
        sf.set.get("faq-1").map(|a| a.answer(Language::En)),
        Some("Go to settings\n\nDeactivate it")
    );
    let enc = HashEncoder::new();
    let index = KnowledgeIndex::build(sf.set, &enc).expect("build");
    let m = evaluate(&index, &sf.queries, &enc, RetrievalMode::Bm25).expect("evaluate");
    assert_eq!(m.n, 2);
    // The shipped build skips answer bodies: a config that weighs them
    // is refused instead of scoring them as zero.
    let body = crate::index::tests::body_weighing_config();
    assert!(matches!(
        evaluate_embedded(&index, &sf.queries, None, RetrievalMode::Hybrid, &body),
        Err(KbError::NoBodyEmbeddings)
    ));

    write(
        dir.path(),
        "queries.jsonl",
        "{\"query\":\"x\",\"faq_id\":7}\n",
    );
    assert!(load_stackfaq(dir.path())
        .expect_err("unknown faq")
        .to_string()
        .contains("queries.jsonl:1:"));
}
