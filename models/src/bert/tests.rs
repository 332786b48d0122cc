use super::linear::{erf, Weight};
use super::*;

fn tiny(format: LinearFormat) -> BertModel {
    let header = Header {
        hidden: 64,
        layers: 2,
        heads: 4,
        ffn: 128,
        vocab_rows: 50,
        max_positions: 32,
        type_vocab: 2,
        layer_norm_eps: 1e-12,
        n_pieces: 0,
        bos_id: 0,
        eos_id: 2,
        pad_id: 1,
        unk_id: 3,
    };
    let c = Container::from_bytes(random_container(&header, 7), "tiny").expect("tiny container");
    BertModel::from_container(&c, format).expect("tiny model")
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn forward_gives_unit_vectors_of_hidden_size() {
    let m = tiny(LinearFormat::F32);
    let ids = [0, 5, 6, 7, 2, 0, 9, 2, 1, 1];
    let mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    let out = m.forward(&ids, &mask, 2, 5).expect("forward");
    assert_eq!(out.len(), 2);
    for v in &out {
        assert_eq!(v.len(), 64);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    assert!(
        cosine(&out[0], &out[1]) < 0.999,
        "different inputs must differ"
    );
}

#[test]
fn padding_does_not_change_a_row() {
    for format in [LinearFormat::F32, LinearFormat::Q4] {
        let m = tiny(format);
        let alone = m
            .forward(&[0, 11, 12, 13, 2], &[1; 5], 1, 5)
            .expect("alone");
        let ids = [0, 11, 12, 13, 2, 1, 1, 1, 0, 20, 21, 22, 23, 24, 25, 2];
        let mask = [1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
        let batch = m.forward(&ids, &mask, 2, 8).expect("batch");
        let diff = alone[0]
            .iter()
            .zip(&batch[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{format:?}: max diff {diff}");
    }
}

#[test]
fn q4_and_f32_linears_agree() {
    let ids = [0, 4, 8, 15, 16, 23, 42, 2];
    let a = tiny(LinearFormat::F32)
        .forward(&ids, &[1; 8], 1, 8)
        .expect("f32");
    let b = tiny(LinearFormat::Q4)
        .forward(&ids, &[1; 8], 1, 8)
        .expect("q4");
    // Only the 8-bit activation quantisation of the Q4 path differs.
    assert!(cosine(&a[0], &b[0]) > 0.99, "cos {}", cosine(&a[0], &b[0]));
}

#[test]
fn packed_and_candle_f32_linears_agree() {
    // The packed kernel is what AVX2 machines run, alone or split over
    // threads; candle's GEMM is the fallback elsewhere. All must give the
    // same layer, GELU included (23 rows over 3 threads: uneven shares).
    let (rows, k, n) = (23, 40, 37);
    let val = |i: usize| ((i * 7919 % 1000) as f32 / 500.0) - 1.0;
    let wt = Tensor::from_vec((0..k * n).map(val).collect(), (k, n), &Device::Cpu).unwrap();
    let bias = Tensor::from_vec((0..n).map(|i| val(i + 3)).collect(), n, &Device::Cpu).unwrap();
    let x = Tensor::from_vec(
        (0..rows * k).map(|i| val(i + 11)).collect(),
        (rows, k),
        &Device::Cpu,
    )
    .unwrap();
    let candle = Linear {
        weight: Weight::F32(wt.clone()),
        bias: bias.clone(),
    };
    let packed = Linear::from_f32(wt, bias).unwrap();
    if !matches!(packed.weight, Weight::Packed(_)) {
        return; // no AVX2 + FMA here: only the fallback exists
    }
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for threads in [None, Some(&three)] {
        for (a, b) in [
            (
                candle.forward(&x, None).unwrap(),
                packed.forward(&x, threads).unwrap(),
            ),
            (
                candle.forward_gelu(&x, None).unwrap(),
                packed.forward_gelu(&x, threads).unwrap(),
            ),
        ] {
            assert_eq!(a.dims(), &[rows, n]);
            let gap = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            assert!(gap.to_scalar::<f32>().unwrap() < 1e-4);
        }
    }
    let (back, _) = packed.f32_params().unwrap().expect("f32 params");
    let (orig, _) = candle.f32_params().unwrap().expect("f32 params");
    assert_eq!(
        back.to_vec2::<f32>().unwrap(),
        orig.to_vec2::<f32>().unwrap()
    );
}

#[test]
fn erf_matches_reference_values() {
    // erf at a few points (Abramowitz & Stegun table 7.1), and its limits.
    for (x, want) in [
        (0.0, 0.0),
        (0.1, 0.112_462_92),
        (0.5, 0.520_499_9),
        (1.0, 0.842_700_8),
        (1.5, 0.966_105_1),
        (2.0, 0.995_322_3),
        (3.0, 0.999_977_9),
        (6.0, 1.0),
    ] {
        assert!(
            (erf(x) - want).abs() < 2e-7,
            "erf({x}) = {} want {want}",
            erf(x)
        );
        assert!((erf(-x) + want).abs() < 2e-7);
    }
}

#[test]
#[cfg(feature = "train")] // reads the token states adapter training uses
fn feature_layers_concatenate_pools_and_leave_retrieval_alone() {
    let mut m = tiny(LinearFormat::F32);
    let ids = [0, 5, 6, 7, 2, 0, 9, 2, 1, 1];
    let mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    let before = m.forward_views(&ids, &mask, 2, 5).expect("views");
    assert_eq!(m.feature_layers(), [2]);
    assert_eq!(before[0].classification, before[0].retrieval);

    m.set_feature_layers(&[1, 2]).expect("layers 1 and 2");
    assert_eq!(m.classification_dim(), 128);
    let after = m.forward_views(&ids, &mask, 2, 5).expect("views");
    let first_block = m.token_states(&ids, &mask, 2, 5, 1).expect("states");
    let scale = 1.0 / 2f32.sqrt();
    for (row, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(a.retrieval, b.retrieval, "retrieval unchanged");
        let pooled =
            mean_pool_normalised(&first_block[row], &[first_block[row].dim(0).expect("len")])
                .expect("pool")
                .to_vec2::<f32>()
                .expect("vec");
        let want: Vec<f32> = pooled[0]
            .iter()
            .chain(&b.retrieval)
            .map(|v| v * scale)
            .collect();
        let diff = want
            .iter()
            .zip(&a.classification)
            .map(|(w, g)| (w - g).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "row {row}: max diff {diff}");
        let norm: f32 = a.classification.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
#[cfg(feature = "train")] // reads the token states adapter training uses
fn feature_layers_past_an_adapter_pool_the_adapted_blocks() {
    let mut m = tiny(LinearFormat::F32);
    let mut top = m.top_block_params(1).expect("top block");
    // A ramp, not a constant: the layer norm after the FFN removes a
    // shift shared by every dimension.
    let ramp = (Tensor::arange(0f32, 64f32, &Device::Cpu).expect("ramp") * 0.05).expect("ramp");
    top[0].ffn_out.1 = (&top[0].ffn_out.1 + ramp).expect("shift bias");
    m.set_adapted_top(top.clone()).expect("adapter");
    m.set_feature_layers(&[1, 2]).expect("layers");
    let ids = [0, 5, 6, 7, 2, 0, 9, 2, 1, 1];
    let mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    let views = m.forward_views(&ids, &mask, 2, 5).expect("views");
    let shipped = m.forward(&ids, &mask, 2, 5).expect("retrieval");
    let first_block = m.token_states(&ids, &mask, 2, 5, 1).expect("states");
    let adapted = m
        .embed_states_through(&top, &first_block)
        .expect("adapted top");
    let scale = 1.0 / 2f32.sqrt();
    for row in 0..2 {
        assert_eq!(
            views[row].retrieval, shipped[row],
            "retrieval stays shipped"
        );
        let lengths = [first_block[row].dim(0).expect("len")];
        let lower = mean_pool_normalised(&first_block[row], &lengths)
            .expect("pool")
            .to_vec2::<f32>()
            .expect("vec");
        let want: Vec<f32> = lower[0]
            .iter()
            .chain(&adapted[row])
            .map(|v| v * scale)
            .collect();
        let diff = want
            .iter()
            .zip(&views[row].classification)
            .map(|(w, g)| (w - g).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "row {row}: max diff {diff}");
        assert!(
            cosine(&adapted[row], &shipped[row]) < 0.9999,
            "the adapted block must differ for this test to mean anything"
        );
    }
}

#[test]
fn bad_feature_layers_are_refused_and_change_nothing() {
    let mut m = tiny(LinearFormat::F32);
    for bad in [&[][..], &[0], &[3], &[2, 1], &[1, 1]] {
        let err = m.set_feature_layers(bad).expect_err("refused");
        assert!(err.to_string().contains("feature layers"), "{err}");
        assert_eq!(m.feature_layers(), [2], "{bad:?} left the default");
    }
}

#[test]
fn kernel_threads_change_speed_not_results() {
    let ids = [0, 4, 8, 15, 16, 23, 42, 2, 0, 9, 7, 2];
    let mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0];
    let mut m = tiny(LinearFormat::F32);
    let alone = m.forward(&ids, &mask, 2, 6).expect("one thread");
    m.set_kernel_threads(2).expect("two threads");
    assert_eq!(m.kernel_threads(), 2);
    let split = m.forward(&ids, &mask, 2, 6).expect("two threads");
    for (a, b) in alone.iter().zip(&split) {
        assert!(cosine(a, b) > 0.99999, "cos {}", cosine(a, b));
    }
    let err = m.set_kernel_threads(0).expect_err("zero refused");
    assert!(err.to_string().contains("at least 1"), "{err}");
    m.set_kernel_threads(1).expect("back to one");
    assert_eq!(m.kernel_threads(), 1);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let m = tiny(LinearFormat::F32);
    assert!(m.forward(&[], &[], 0, 0).expect("empty").is_empty());
    assert!(m.forward(&[], &[], 1, 0).is_err());
    assert!(m.forward(&[0, 1], &[1], 1, 2).is_err());
    assert!(m.forward(&[0, 99], &[1, 1], 1, 2).is_err());
    assert!(m.forward(&[0; 33], &[1; 33], 1, 33).is_err());
    assert!(m.forward(&[1, 1], &[0, 0], 1, 2).is_err());
}
