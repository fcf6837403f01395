//! Model files and update blobs: round trips, and a clear error (never a panic) for every
//! kind of bad input.

use pogo_circuits::encoding::{FixedPoint, Nibble, UpdateBlock, BIAS, BLOCK_WEIGHTS};
use pogo_circuits::model::{FloatDtype, Model, ModelError, FIXED_POINT_KEY};
use pogo_circuits::update::{BlobError, Update, UpdateError, BLOB_HEADER_LEN, BLOB_VERSION};
use proptest::prelude::*;
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;

mod support;

fn float_file(dtype: Dtype, tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, values)| {
            let bytes = match dtype {
                Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Dtype::F16 => values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
                Dtype::BF16 => values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
                Dtype::F64 => values.iter().flat_map(|v| f64::from(*v).to_le_bytes()).collect(),
                other => panic!("test helper does not write {other:?}"),
            };
            (name.to_string(), shape.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, TensorView)> = encoded
        .iter()
        .map(|(name, shape, bytes)| (name.clone(), TensorView::new(dtype, shape.clone(), bytes).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn small_tensors() -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    vec![
        ("layer.weight", vec![3, 50], (0..150).map(|i| (i as f32 - 75.0) / 64.0).collect()),
        ("layer.bias", vec![3], vec![0.5, -0.25, 1.0]),
        ("embed", vec![100], (0..100).map(|i| i as f32 / 128.0).collect()),
    ]
}

#[test]
fn float_models_import_in_name_order_for_every_dtype() {
    for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16] {
        let model = Model::from_safetensors(&float_file(dtype, &small_tensors()), None).unwrap();
        let names: Vec<_> = model.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["embed", "layer.bias", "layer.weight"], "byte-wise name order");
        assert_eq!(model.weight_count(), 253);
        assert_eq!(model.block_count(), 3);
        // All these values are exact in every dtype and on the 2^-24 grid.
        let values = model.to_f64();
        assert_eq!(values[100], 0.5);
        assert_eq!(values[103], -75.0 / 64.0);
        assert_eq!(model.format(), FixedPoint::default());
    }
}

#[test]
fn fixed_point_files_round_trip_exactly_and_keep_their_format() {
    let format = FixedPoint::new(20).unwrap();
    let model = Model::from_safetensors(&float_file(Dtype::F32, &small_tensors()), Some(format)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model.save(&path).unwrap();
    assert_eq!(Model::load(&path, None).unwrap(), model);
    assert_eq!(Model::load(&path, Some(format)).unwrap(), model);
    // Byte-for-byte deterministic, so files can be content-addressed.
    assert_eq!(model.to_safetensors().unwrap(), model.to_safetensors().unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), model.to_safetensors().unwrap());
    let err = Model::load(&path, Some(FixedPoint::default())).unwrap_err();
    assert!(matches!(err, ModelError::FractionBitsMismatch { found: 20, requested: 24 }), "{err}");
}

#[test]
fn float_export_round_trips_values_on_the_grid() {
    let model = Model::from_safetensors(&float_file(Dtype::F32, &small_tensors()), None).unwrap();
    for dtype in [FloatDtype::F32, FloatDtype::F16, FloatDtype::BF16] {
        let back = Model::from_safetensors(&model.to_float_safetensors(dtype).unwrap(), None).unwrap();
        assert_eq!(back, model, "{dtype:?}");
    }
}

#[test]
fn bad_values_name_tensor_and_index() {
    for (bad, what) in [(f32::NAN, "not finite"), (f32::INFINITY, "not finite"), (1e9, "does not fit")] {
        let mut tensors = small_tensors();
        tensors[0].2[42] = bad;
        let err = Model::from_safetensors(&float_file(Dtype::F32, &tensors), None).unwrap_err();
        match &err {
            ModelError::Value { tensor, index, .. } => assert_eq!((tensor.as_str(), *index), ("layer.weight", 42)),
            other => panic!("expected a value error, got {other}"),
        }
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[test]
fn truncated_and_lying_containers_are_rejected() {
    let bytes = float_file(Dtype::F32, &small_tensors());
    for cut in [0, 4, 8, 20, bytes.len() - 1] {
        let err = Model::from_safetensors(&bytes[..cut], None).unwrap_err();
        assert!(matches!(err, ModelError::Container(_)), "cut at {cut}: {err}");
    }
    // A header length that points past the end of the file.
    let mut lying = bytes.clone();
    lying[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(matches!(Model::from_safetensors(&lying, None), Err(ModelError::Container(_))));
    // A header whose offsets claim more data than there is.
    let text = String::from_utf8_lossy(&bytes).replace("[0,400]", "[0,4000]");
    assert!(Model::from_safetensors(text.as_bytes(), None).is_err());
    // Not JSON at all.
    let mut garbage = 16u64.to_le_bytes().to_vec();
    garbage.extend_from_slice(b"{not json here!!");
    assert!(matches!(Model::from_safetensors(&garbage, None), Err(ModelError::Container(_))));
}

#[test]
fn unsupported_dtypes_and_foreign_integers_are_rejected() {
    let err = Model::from_safetensors(&float_file(Dtype::F64, &small_tensors()), None).unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedDtype { dtype: Dtype::F64, .. }), "{err}");
    let data = [0u8; 16];
    let i32_file = safetensors::serialize([("x", TensorView::new(Dtype::I32, vec![4], &data).unwrap())], None).unwrap();
    assert!(matches!(Model::from_safetensors(&i32_file, None), Err(ModelError::Format { .. })));
    let meta = HashMap::from([(FIXED_POINT_KEY.to_string(), "99".to_string())]);
    let bad_meta =
        safetensors::serialize([("x", TensorView::new(Dtype::I32, vec![4], &data).unwrap())], Some(meta)).unwrap();
    assert!(matches!(Model::from_safetensors(&bad_meta, None), Err(ModelError::Metadata(_))));
    let empty = safetensors::serialize(Vec::<(&str, TensorView)>::new(), None).unwrap();
    assert!(matches!(Model::from_safetensors(&empty, None), Err(ModelError::Empty)));
}

fn model_of(weights: Vec<u32>) -> Model {
    let tensors = vec![pogo_circuits::model::TensorInfo { name: "w".into(), shape: vec![weights.len()] }];
    Model::new(FixedPoint::default(), tensors, weights).unwrap()
}

fn random_update(weights: u64, seed: u64) -> Update {
    let nb = weights.div_ceil(BLOCK_WEIGHTS as u64);
    let mut x = seed;
    let mut next = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) as u32
    };
    let blocks = (0..nb)
        .map(|b| {
            let used = (weights - b * BLOCK_WEIGHTS as u64).min(BLOCK_WEIGHTS as u64) as usize;
            let mut block = UpdateBlock { scale: next() % 1000, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
            for n in &mut block.nibbles[..used] {
                *n = Nibble::new((next() % 16) as u8).unwrap();
            }
            block
        })
        .collect();
    Update::new(weights, blocks).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn blobs_round_trip(weights in 1u64..2000, seed in any::<u64>()) {
        let update = random_update(weights, seed);
        prop_assert_eq!(Update::from_blob(&update.to_blob()).unwrap(), update.clone());
        // Streamed, block by block, dense and (a sparse subset) sparse alike.
        support::assert_stream_agrees(&update.to_blob());
        let sparse = Update::sparse(weights, update.changed().iter().step_by(7).cloned().collect()).unwrap();
        support::assert_stream_agrees(&sparse.to_blob());
    }
}

#[test]
fn blob_header_corruptions_are_each_rejected() {
    let blob = random_update(300, 7).to_blob();
    let tamper = |at: usize, value: u8| {
        let mut b = blob.clone();
        b[at] = value;
        support::assert_stream_agrees(&b);
        Update::from_blob(&b).unwrap_err()
    };
    assert!(matches!(Update::from_blob(&blob[..10]), Err(BlobError::TooShort(10))));
    assert!(matches!(tamper(0, b'X'), BlobError::Magic(_)));
    assert!(matches!(tamper(8, 4), BlobError::Version(4)));
    assert!(matches!(tamper(12, 1), BlobError::Reserved));
    assert!(matches!(tamper(24, 9), BlobError::BlockCount { declared: 9, weights: 300, expected: 3 }));
    // 300 -> 44 weights changes nb; 300 -> 256 keeps nb but the checksum covers the header.
    assert!(matches!(tamper(17, 0), BlobError::BlockCount { declared: 3, weights: 44, expected: 1 }));
    assert!(matches!(tamper(16, 0), BlobError::Checksum));
    assert!(matches!(tamper(33, blob[33] ^ 1), BlobError::Checksum));
    assert!(matches!(Update::from_blob(&blob[..blob.len() - 1]), Err(BlobError::Length { .. })));
    let mut longer = blob.clone();
    longer.push(0);
    assert!(matches!(Update::from_blob(&longer), Err(BlobError::Length { .. })));
    let mut zero_weights = blob.clone();
    zero_weights[16..24].copy_from_slice(&0u64.to_le_bytes());
    assert!(matches!(Update::from_blob(&zero_weights), Err(BlobError::Update(UpdateError::WeightCount(0)))));
}

/// Version 2 records the model an update was made against; version 1 (no base) is still
/// written for such updates and read; the base is covered by the checksum, must be a field
/// element, and a model with another root is refused naming both.
#[test]
fn blobs_record_their_base_model_and_version_1_still_reads() {
    use pogo_circuits::field::{fr_to_hex, Fr};
    let plain = random_update(300, 5);
    let v1 = plain.to_blob();
    assert_eq!(u16::from_le_bytes([v1[8], v1[9]]), 1, "no base: version 1, as before");
    assert_eq!(Update::from_blob(&v1).unwrap().base(), None);
    let root = Fr::from(123_456_789u64);
    let based = plain.clone().with_base(root, 7);
    let v2 = based.to_blob();
    assert_eq!(u16::from_le_bytes([v2[8], v2[9]]), BLOB_VERSION);
    assert_eq!(v2.len(), v1.len() + 32);
    let back = Update::from_blob(&v2).unwrap();
    assert_eq!(back, based);
    assert_eq!(back.base().map(|b| (b.root, b.depth)), Some((root, 7)));
    back.check_base(&root).unwrap();
    let other = Fr::from(5u64);
    let err = back.check_base(&other).unwrap_err().to_string();
    assert!(err.contains(&fr_to_hex(&root)) && err.contains(&fr_to_hex(&other)) && err.contains("depth 7"), "{err}");
    plain.check_base(&other).unwrap();
    // The base root is under the checksum.
    let mut tampered = v2.clone();
    tampered[BLOB_HEADER_LEN] ^= 1;
    assert!(matches!(Update::from_blob(&tampered), Err(BlobError::Checksum)));
    // Not a field element (all ones is above the modulus), or a depth past the maximum.
    let mut unreduced = v2.clone();
    unreduced[BLOB_HEADER_LEN..BLOB_HEADER_LEN + 32].fill(0xff);
    assert!(matches!(Update::from_blob(&unreduced), Err(BlobError::Base { depth: 7 })));
    let mut deep = v2.clone();
    deep[10] = 200;
    assert!(matches!(Update::from_blob(&deep), Err(BlobError::Base { depth: 200 })));
    assert!(matches!(Update::from_blob(&v2[..BLOB_HEADER_LEN + 10]), Err(BlobError::TooShort(_))));
    let mut reserved = v2.clone();
    reserved[15] = 1;
    assert!(matches!(Update::from_blob(&reserved), Err(BlobError::Reserved)));
}

#[test]
fn blob_body_corruptions_are_each_rejected() {
    let update = random_update(300, 11);
    let blob = update.to_blob();
    // A flipped byte inside the compressed frame: zstd's own checks or ours must catch it.
    for at in [BLOB_HEADER_LEN + 3, blob.len() / 2, blob.len() - 2] {
        let mut b = blob.clone();
        b[at] ^= 0x55;
        assert!(Update::from_blob(&b).is_err(), "flip at {at}");
    }
    // A valid zstd frame of the wrong size: refused by the size its frame header declares,
    // or, when it declares none (a streamed frame), once decompressed.
    let with_body = |body: Vec<u8>| {
        let mut short = blob[..BLOB_HEADER_LEN].to_vec();
        short[64..72].copy_from_slice(&(body.len() as u64).to_le_bytes());
        short.extend_from_slice(&body);
        short
    };
    let sized = with_body(zstd::bulk::compress(&[0u8; 10], 3).unwrap());
    assert!(matches!(Update::from_blob(&sized), Err(BlobError::FrameSize { declared: 10, expected: 180 })));
    let streamed = with_body(zstd::stream::encode_all(&[0u8; 10][..], 3).unwrap());
    assert!(matches!(Update::from_blob(&streamed), Err(BlobError::BodySize { expected: 180, got: 10 })));
    // Not a zstd frame at all.
    let mut junk = blob[..BLOB_HEADER_LEN].to_vec();
    junk[64..72].copy_from_slice(&8u64.to_le_bytes());
    junk.extend_from_slice(b"notzstd!");
    assert!(matches!(Update::from_blob(&junk), Err(BlobError::Decompress(_))));
}

#[test]
fn updates_may_not_touch_padding() {
    let mut block = UpdateBlock { scale: 3, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
    block.nibbles[50] = Nibble::from_signed(1).unwrap();
    let err = Update::new(50, vec![block.clone()]).unwrap_err();
    assert!(matches!(err, UpdateError::Padding { block: 0, position: 50, weights: 50 }), "{err}");
    assert!(Update::new(51, vec![block]).is_ok());
    assert!(matches!(Update::new(200, vec![UpdateBlock::zero()]), Err(UpdateError::BlockCount { .. })));
}

#[test]
fn apply_is_exact_and_refuses_wrong_sizes_and_overflow() {
    let update = random_update(250, 3);
    let old = model_of((0..250).map(|i| BIAS + i * 1000).collect());
    let new = update.apply(&old).unwrap();
    for i in 0..250usize {
        let block = &update.block((i / BLOCK_WEIGHTS) as u64);
        let expected =
            i64::from(old.weights()[i]) + i64::from(block.scale) * i64::from(block.nibbles[i % 112].signed());
        assert_eq!(i64::from(new.weights()[i]), expected);
    }
    let err = update.apply(&model_of(vec![BIAS; 251])).unwrap_err();
    assert!(matches!(err, UpdateError::ModelSize { update: 250, model: 251 }), "{err}");

    let mut block = UpdateBlock { scale: 5, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
    block.nibbles[9] = Nibble::from_signed(-1).unwrap();
    let overflowing = Update::new(20, vec![block]).unwrap();
    let mut weights = vec![BIAS; 20];
    weights[9] = 4;
    let err = overflowing.apply(&model_of(weights)).unwrap_err();
    assert!(matches!(err, UpdateError::Overflow { block: 0, index: 9, old: 4, scale: 5, q: -1, .. }), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Untrusted bytes never panic the blob decoder: random files, and valid blobs with
    /// random bytes overwritten.
    #[test]
    fn blob_decoder_never_panics(noise in prop::collection::vec(any::<u8>(), 0..300), at in any::<usize>(), seed in any::<u64>()) {
        let _ = Update::from_blob(&noise);
        let mut blob = random_update(150, seed).to_blob();
        for (i, b) in noise.iter().enumerate().take(8) {
            let len = blob.len();
            blob[(at.wrapping_add(i * 7919)) % len] = *b;
        }
        let _ = Update::from_blob(&blob);
    }

    /// The same for model files: random bytes and corrupted valid files.
    #[test]
    fn model_parser_never_panics(noise in prop::collection::vec(any::<u8>(), 0..300), at in any::<usize>()) {
        let _ = Model::from_safetensors(&noise, None);
        let mut file = float_file(Dtype::F32, &small_tensors());
        for (i, b) in noise.iter().enumerate().take(8) {
            let len = file.len();
            file[(at.wrapping_add(i * 131)) % len] = *b;
        }
        let _ = Model::from_safetensors(&file, None);
    }
}
