use super::*;
use crate::{E5Encoder, Encoder, TextRole};

const TEXTS: [(&str, usize); 8] = [
    ("where is my parcel", 0),
    ("快递到哪了", 0),
    ("has my order shipped yet?", 0),
    ("物流怎么不动了", 0),
    ("can i get a refund", 1),
    ("退款什么时候到", 1),
    ("money back please", 1),
    ("钱退了吗", 1),
];

fn tiny_task(enc: &E5Encoder, first: usize) -> (Vec<Tensor>, Vec<usize>) {
    let texts: Vec<&str> = TEXTS.iter().map(|(t, _)| *t).collect();
    let states = enc
        .token_states(&texts, TextRole::Query, first)
        .expect("states");
    (states, TEXTS.iter().map(|(_, y)| *y).collect())
}

fn config() -> AdapterConfig {
    AdapterConfig {
        blocks: 1,
        rank: 4,
        alpha: 8.0,
        learning_rate: 1e-2,
        epochs: 3,
        batch_size: 4,
    }
}

fn train_tiny(enc: &E5Encoder) -> TrainedAdapter {
    let model = enc.model();
    let first = model.layer_count() - 1;
    let (states, y) = tiny_task(enc, first);
    let task = Task {
        name: "toy",
        train: &states,
        train_y: &y,
        val: &states,
        val_y: &y,
        classes: 2,
    };
    train_adapter(
        vec![model.block_params(first).expect("params")],
        model.attention_heads(),
        model.layer_norm_eps(),
        &[task],
        &config(),
        3,
    )
    .expect("train")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn training_forward_matches_the_served_forward() {
    // The padded, differentiable forward used in training and the packed
    // serving forward must compute the same function, or heads trained
    // on one would be served on another.
    let enc = E5Encoder::tiny_random(11);
    let model = enc.model();
    let first = model.layer_count() - 1;
    let (states, _) = tiny_task(&enc, first);
    let mut rng = ChaCha12Rng::seed_from_u64(1);
    let cfg = config();
    let stack = Stack {
        blocks: vec![
            TrainBlock::new(model.block_params(first).expect("params"), &cfg, &mut rng)
                .expect("block"),
        ],
        heads: model.attention_heads(),
        eps: model.layer_norm_eps(),
    };
    let padded = stack.embed_all(&states, 3).expect("padded");
    let base = vec![model.block_params(first).expect("params")];
    let packed = model.embed_states_through(&base, &states).expect("packed");
    // And with an untrained (zero) update the adapted view is e5's own.
    let direct = enc
        .encode_batch(&TEXTS.map(|(t, _)| t), TextRole::Query)
        .expect("direct");
    for ((p, q), d) in padded.iter().zip(&packed).zip(&direct) {
        assert!(max_diff(p, q) < 1e-4, "padded vs packed {}", max_diff(p, q));
        assert!(max_diff(q, d) < 1e-4, "packed vs direct {}", max_diff(q, d));
    }
}

#[test]
fn installed_adapter_changes_only_the_classification_view() {
    let mut enc = E5Encoder::tiny_random(12);
    let trained = train_tiny(&enc);
    assert_eq!(trained.val_accuracy.len(), config().epochs);
    assert!((1..=config().epochs).contains(&trained.best_epoch));
    let texts = TEXTS.map(|(t, _)| t);
    let before = enc.encode_batch(&texts, TextRole::Query).expect("before");
    enc.install_adapter(&trained.weights).expect("install");
    let views = enc.encode_views(&texts, TextRole::Query).expect("views");
    let after = enc.encode_batch(&texts, TextRole::Query).expect("after");
    assert_eq!(before, after, "retrieval embedding must not move");
    let moved = views
        .iter()
        .zip(&before)
        .map(|(v, b)| {
            assert!(max_diff(&v.retrieval, b) < 1e-5);
            max_diff(&v.classification, b)
        })
        .fold(0.0, f32::max);
    assert!(moved > 1e-3, "adapter had no effect ({moved})");
    // Served classification views equal the training-time embedding of
    // cached states through the merged blocks.
    let model = enc.model();
    let first = model.layer_count() - 1;
    let (states, _) = tiny_task(&enc, first);
    let merged = trained
        .weights
        .merge(vec![model.block_params(first).expect("params")])
        .expect("merge");
    let offline = model
        .embed_states_through(&merged, &states)
        .expect("offline");
    for (v, o) in views.iter().zip(&offline) {
        assert!(max_diff(&v.classification, o) < 1e-4);
    }
}

#[test]
fn saved_updates_read_back_identically() {
    let enc = E5Encoder::tiny_random(13);
    let weights = train_tiny(&enc).weights;
    let mut tensors = std::collections::HashMap::new();
    weights.insert_tensors(&mut tensors).expect("insert");
    let back = AdapterWeights::from_tensors(weights.blocks(), &tensors).expect("read");
    assert_eq!(back, weights);
    tensors.remove("adapter.b0.ffn_in.up");
    let err = AdapterWeights::from_tensors(1, &tensors).expect_err("missing tensor");
    assert!(err.contains("adapter.b0.ffn_in.up"), "{err}");
}

#[test]
fn adapters_that_do_not_fit_are_refused() {
    let mut enc = E5Encoder::tiny_random(14);
    let weights = train_tiny(&enc).weights;
    let three = AdapterWeights {
        updates: vec![weights.updates[0].clone(); 3],
    };
    let err = enc
        .install_adapter(&three)
        .expect_err("more blocks than the model");
    assert!(err.to_string().contains("3 top blocks"), "{err}");
    let mut wrong = weights.clone();
    let qkv = &mut wrong.updates[0][0];
    qkv.out_dim -= 1;
    qkv.up.truncate(qkv.rank * qkv.out_dim);
    assert!(enc.install_adapter(&wrong).is_err());
    // Nothing was installed by the failed attempts.
    assert_eq!(enc.model().adapted_blocks(), 0);
}

#[test]
fn bad_training_input_is_a_clear_error() {
    let enc = E5Encoder::tiny_random(15);
    let model = enc.model();
    let first = model.layer_count() - 1;
    let (states, y) = tiny_task(&enc, first);
    let params = || vec![model.block_params(first).expect("params")];
    let run = |tasks: &[Task<'_>], cfg: &AdapterConfig| {
        train_adapter(params(), model.attention_heads(), 1e-12, tasks, cfg, 1)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(run(&[], &config()).contains("needs tasks"));
    let short = Task {
        name: "short labels",
        train: &states,
        train_y: &y[..3],
        val: &states,
        val_y: &y,
        classes: 2,
    };
    assert!(run(&[short], &config()).contains("differ in length"));
    let bad_label = Task {
        name: "bad label",
        train: &states,
        train_y: &y,
        val: &states,
        val_y: &y,
        classes: 1,
    };
    assert!(run(&[bad_label], &config()).contains("bad label"));
    let ok = Task {
        name: "ok",
        train: &states,
        train_y: &y,
        val: &states,
        val_y: &y,
        classes: 2,
    };
    let zero_rank = AdapterConfig {
        rank: 0,
        ..config()
    };
    assert!(run(&[ok], &zero_rank).contains("rank"));
}
