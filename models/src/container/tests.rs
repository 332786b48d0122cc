use super::*;

fn header() -> Header {
    Header {
        hidden: 32,
        layers: 1,
        heads: 2,
        ffn: 64,
        vocab_rows: 8,
        max_positions: 16,
        type_vocab: 2,
        layer_norm_eps: 1e-12,
        n_pieces: 0,
        bos_id: 0,
        eos_id: 2,
        pad_id: 1,
        unk_id: 3,
    }
}

fn sample_weights() -> Vec<f32> {
    (0..8 * 32)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 100.0)
        .collect()
}

fn sample() -> Vec<u8> {
    let b: Vec<f32> = (0..32).map(|i| i as f32 * 0.5).collect();
    write_container(
        &header(),
        &[
            ("w".into(), TensorData::Q4(sample_weights())),
            ("b".into(), TensorData::F32(b)),
        ],
    )
}

fn load_reason(bytes: Vec<u8>) -> String {
    match Container::from_bytes(bytes, "test.bin") {
        Err(ModelError::Load { path, reason }) => {
            assert_eq!(path, "test.bin");
            reason
        }
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[test]
fn round_trip_reads_header_and_tensors() {
    let c = Container::from_bytes(sample(), "test.bin").expect("valid container");
    assert_eq!(c.header(), &header());
    let b = c.f32_tensor("b", &[32]).expect("b");
    assert_eq!(b.to_vec1::<f32>().expect("vec")[3], 1.5);
    let w = c.q4_tensor("w", 8, 32).expect("w");
    let deq = w
        .dequantize(&Device::Cpu)
        .expect("deq")
        .flatten_all()
        .expect("flat");
    let deq = deq.to_vec1::<f32>().expect("vec");
    // 4-bit: each weight within half a quant step (|block extreme|/8) of
    // the original. Q4_0 spans 8 steps towards the block's extreme but
    // only 7 the other way, where larger values clamp.
    for (orig, got) in sample_weights().chunks(Q4_BLOCK).zip(deq.chunks(Q4_BLOCK)) {
        let extreme = orig
            .iter()
            .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        let step = extreme.abs() / 8.0;
        for (o, g) in orig.iter().zip(got) {
            let want = if o.signum() == extreme.signum() {
                *o
            } else {
                o.clamp(-7.0 * step, 7.0 * step)
            };
            assert!(
                (want - g).abs() <= step / 2.0 + 1e-3,
                "{g} vs {o} (step {step})"
            );
        }
    }
}

#[test]
fn every_truncation_is_a_clean_error() {
    let bytes = sample();
    for len in 0..bytes.len() {
        let reason = load_reason(bytes[..len].to_vec());
        assert!(!reason.is_empty());
    }
    assert!(load_reason(bytes[..10].to_vec()).starts_with("truncated"));
}

#[test]
fn corrupt_fields_are_reported() {
    let good = sample();
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(load_reason(bad).contains("not an E5S1"));

    let mut bad = good.clone();
    bad[4] = 2;
    assert!(load_reason(bad).contains("version 2"));

    let mut bad = good.clone();
    bad[16..20].copy_from_slice(&3i32.to_le_bytes()); // heads 3 does not divide 32
    assert!(load_reason(bad).contains("not divisible by heads"));

    let mut bad = good.clone();
    bad[24..28].copy_from_slice(&(-5i32).to_le_bytes());
    assert!(load_reason(bad).contains("vocab = -5"));

    let mut bad = good.clone();
    bad[64..72].copy_from_slice(&u64::MAX.to_le_bytes()); // blob_len
    assert!(load_reason(bad).contains("piece bytes"));

    let mut bad = good.clone();
    bad.extend_from_slice(&[0; 3]);
    assert!(load_reason(bad).contains("unexpected bytes"));
}

#[test]
fn corrupt_directory_entries_are_reported() {
    let good = sample();
    // Directory starts after header (72) + offsets (4) + norm (8) + count (4).
    let dir = 72 + 4 + 8 + 4;
    // Entry 0 is "w": u16 len(1) + "w" + dtype at dir+3.
    let mut bad = good.clone();
    bad[dir + 3] = 7;
    assert!(load_reason(bad).contains("unknown dtype code 7"));

    let mut bad = good.clone();
    bad[dir + 4..dir + 8].copy_from_slice(&31u32.to_le_bytes()); // n_elements
    assert!(load_reason(bad).contains("do not hold"));

    let mut bad = good.clone();
    bad[dir + 8..dir + 16].copy_from_slice(&(u64::MAX - 63).to_le_bytes()); // offset
    assert!(load_reason(bad).contains("truncated: tensor w"));

    let mut bad = good.clone();
    bad[dir + 8..dir + 16].copy_from_slice(&65u64.to_le_bytes());
    assert!(load_reason(bad).contains("not 64-byte aligned"));

    let mut bad = good.clone();
    bad[dir + 8..dir + 16].copy_from_slice(&64u64.to_le_bytes());
    assert!(load_reason(bad).contains("overlaps"));
}

#[test]
fn stacking_q4_tensors_is_exact() {
    let w: Vec<f32> = (0..4 * 32).map(|i| (i as f32 * 0.37).sin()).collect();
    let v: Vec<f32> = (0..4 * 32).map(|i| (i as f32 * 0.11).cos()).collect();
    let bytes = write_container(
        &header(),
        &[
            ("w".into(), TensorData::Q4(w)),
            ("v".into(), TensorData::Q4(v)),
        ],
    );
    let c = Container::from_bytes(bytes, "test.bin").expect("valid");
    let deq = |t: QTensor| {
        t.dequantize(&Device::Cpu)
            .expect("deq")
            .to_vec2::<f32>()
            .expect("vec")
    };
    let stacked = deq(c.q4_stacked(&["w", "v"], 4, 32).expect("stacked"));
    let (w, v) = (
        deq(c.q4_tensor("w", 4, 32).expect("w")),
        deq(c.q4_tensor("v", 4, 32).expect("v")),
    );
    assert_eq!(stacked.len(), 8);
    assert_eq!(&stacked[..4], &w[..]);
    assert_eq!(&stacked[4..], &v[..]);
    assert!(c.q4_stacked(&["w", "nope"], 4, 32).is_err());
}

#[test]
fn tensor_lookups_check_shape_dtype_and_values() {
    let c = Container::from_bytes(sample(), "test.bin").expect("valid");
    let err = |r: Result<Tensor, ModelError>| match r {
        Err(ModelError::Load { reason, .. }) => reason,
        other => panic!("expected error, got {other:?}"),
    };
    assert!(err(c.f32_tensor("nope", &[1])).contains("missing"));
    assert!(err(c.f32_tensor("b", &[31])).contains("expected shape"));
    assert!(err(c.f32_tensor("w", &[8, 32])).contains("expected F32"));

    let mut bytes = sample();
    let off = c.entry("b").expect("b").offset;
    bytes[off..off + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let c = Container::from_bytes(bytes, "test.bin").expect("still parses");
    assert!(err(c.f32_tensor("b", &[32])).contains("non-finite"));

    let mut bytes = sample();
    let off = c.entry("w").expect("w").offset;
    bytes[off..off + 2].copy_from_slice(&f16::INFINITY.to_le_bytes());
    let c = Container::from_bytes(bytes, "test.bin").expect("still parses");
    match c.q4_tensor("w", 8, 32) {
        Err(ModelError::Load { reason, .. }) => assert!(reason.contains("non-finite scale")),
        other => panic!("expected error, got {other:?}"),
    }
}
