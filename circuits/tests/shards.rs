//! Sharded checkpoints (the Hugging Face layout: `model.safetensors.index.json` and its
//! shards): the same tensors give the same model, and so the same root, however they are
//! sharded; an index and shards that disagree are refused by name.

use std::collections::BTreeMap;
use std::path::Path;

use pogo_circuits::model::{FloatDtype, Model, ModelError, SHARD_INDEX};
use safetensors::tensor::{Dtype, TensorView};

/// Eleven BF16 tensors of assorted shapes, as (name, shape, bytes).
fn tensors() -> Vec<(String, Vec<usize>, Vec<u8>)> {
    (0..11u32)
        .map(|t| {
            let shape = vec![3 + t as usize, 5 + (t as usize % 3)];
            let n: usize = shape.iter().product();
            let bytes = (0..n)
                .flat_map(|i| half::bf16::from_f32(((i as f32) * 0.01 - 0.3) * (t as f32 + 1.0)).to_le_bytes())
                .collect();
            (format!("layers.{t}.weight"), shape, bytes)
        })
        .collect()
}

/// Writes `tensors` as `shards` shard files (tensor `i` in shard `i % shards`) and an index.
fn write_sharded(dir: &Path, shards: usize) {
    let all = tensors();
    let mut map = BTreeMap::new();
    for s in 0..shards {
        let file = format!("model-{:05}-of-{shards:05}.safetensors", s + 1);
        let views: Vec<(String, TensorView)> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % shards == s)
            .map(|(_, (name, shape, bytes))| {
                map.insert(name.clone(), file.clone());
                (name.clone(), TensorView::new(Dtype::BF16, shape.clone(), bytes).unwrap())
            })
            .collect();
        std::fs::write(dir.join(&file), safetensors::serialize(views, None).unwrap()).unwrap();
    }
    let index = serde_json::json!({ "metadata": { "total_size": 0 }, "weight_map": map });
    std::fs::write(dir.join(SHARD_INDEX), serde_json::to_vec_pretty(&index).unwrap()).unwrap();
}

fn one_file() -> Model {
    let all = tensors();
    let views: Vec<(String, TensorView)> = all
        .iter()
        .map(|(name, shape, bytes)| (name.clone(), TensorView::new(Dtype::BF16, shape.clone(), bytes).unwrap()))
        .collect();
    Model::from_safetensors(&safetensors::serialize(views, None).unwrap(), None).unwrap()
}

fn sharded(shards: usize) -> (tempfile::TempDir, Model) {
    let dir = tempfile::tempdir().unwrap();
    write_sharded(dir.path(), shards);
    let model = Model::load(dir.path(), None).unwrap();
    (dir, model)
}

fn refused(dir: &Path) -> String {
    match Model::load(dir, None) {
        Err(e @ ModelError::Shards { .. }) => e.to_string(),
        other => panic!("expected a shard error, got {other:?}"),
    }
}

#[test]
fn one_file_and_one_three_or_seven_shards_give_one_model() {
    let single = one_file();
    for shards in [1, 3, 7] {
        let (dir, model) = sharded(shards);
        assert_eq!(model, single, "{shards} shards");
        // The index file itself names the checkpoint too.
        assert_eq!(Model::load(&dir.path().join(SHARD_INDEX), None).unwrap(), single);
    }
    // Saved by pogo (fixed point), the model reads back exactly; as floats, it re-encodes
    // to the same model.
    let (dir, model) = sharded(3);
    let back = Model::from_safetensors(&model.to_float_safetensors(FloatDtype::BF16).unwrap(), None).unwrap();
    assert_eq!(back, model);
    drop(dir);
}

#[test]
fn an_index_and_shards_that_disagree_are_refused_by_name() {
    let index_of = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(SHARD_INDEX)).unwrap()).unwrap()
    };
    let set_index = |dir: &Path, value: &serde_json::Value| {
        std::fs::write(dir.join(SHARD_INDEX), serde_json::to_vec(value).unwrap()).unwrap()
    };

    // A shard the index lists is missing.
    let (dir, _) = sharded(3);
    std::fs::remove_file(dir.path().join("model-00002-of-00003.safetensors")).unwrap();
    assert!(refused(dir.path()).contains("shard model-00002-of-00003.safetensors:"), "{}", refused(dir.path()));

    // A truncated shard.
    let (dir, _) = sharded(3);
    let shard = dir.path().join("model-00003-of-00003.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 10]).unwrap();
    assert!(refused(dir.path()).contains("model-00003-of-00003.safetensors: not a valid safetensors file"));

    // The index puts a tensor in another shard than the one holding it.
    let (dir, _) = sharded(3);
    let mut index = index_of(dir.path());
    index["weight_map"]["layers.0.weight"] = "model-00002-of-00003.safetensors".into();
    set_index(dir.path(), &index);
    let err = refused(dir.path());
    assert!(err.contains("tensor \"layers.0.weight\" is in shard model-00001-of-00003.safetensors, the index puts it in model-00002-of-00003.safetensors"), "{err}");

    // A shard holds a tensor the index does not list.
    let (dir, _) = sharded(3);
    let mut index = index_of(dir.path());
    index["weight_map"].as_object_mut().unwrap().remove("layers.4.weight");
    set_index(dir.path(), &index);
    assert!(refused(dir.path()).contains("holds tensor \"layers.4.weight\", which the index does not list"));

    // The index lists a tensor no shard holds.
    let (dir, _) = sharded(3);
    let mut index = index_of(dir.path());
    index["weight_map"]["ghost"] = "model-00001-of-00003.safetensors".into();
    set_index(dir.path(), &index);
    assert!(refused(dir.path())
        .contains("puts tensor \"ghost\" in shard model-00001-of-00003.safetensors, which does not hold it"));

    // The same tensor in two shards.
    let (dir, _) = sharded(2);
    let all = tensors();
    let (name, shape, bytes) = &all[0];
    let extra = vec![(name.clone(), TensorView::new(Dtype::BF16, shape.clone(), bytes).unwrap())];
    std::fs::write(dir.path().join("extra.safetensors"), safetensors::serialize(extra, None).unwrap()).unwrap();
    let mut index = index_of(dir.path());
    index["weight_map"]["other"] = "extra.safetensors".into();
    set_index(dir.path(), &index);
    let err = refused(dir.path());
    assert!(err.contains("layers.0.weight") && err.contains("extra.safetensors"), "{err}");

    // A shard name that leaves the folder, and an index that is not one.
    let (dir, _) = sharded(1);
    let mut index = index_of(dir.path());
    index["weight_map"]["layers.0.weight"] = "../model-00001-of-00001.safetensors".into();
    set_index(dir.path(), &index);
    assert!(refused(dir.path()).contains("is not a file name beside the index"));
    std::fs::write(dir.path().join(SHARD_INDEX), b"{\"weight_map\": 3}").unwrap();
    assert!(refused(dir.path()).contains("not a shard index"));
}

#[test]
fn a_model_is_written_back_in_the_layout_it_came_in() {
    let (dir, model) = sharded(3);
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("new");
    model.save_like(&target, dir.path()).unwrap();
    // The same shard files, holding the same tensors, as pogo's exact fixed-point shards.
    let mut files: Vec<String> =
        std::fs::read_dir(&target).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(
        files,
        [
            "model-00001-of-00003.safetensors",
            "model-00002-of-00003.safetensors",
            "model-00003-of-00003.safetensors",
            SHARD_INDEX
        ]
    );
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(target.join(SHARD_INDEX)).unwrap()).unwrap();
    let source: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(SHARD_INDEX)).unwrap()).unwrap();
    assert_eq!(written["weight_map"], source["weight_map"]);
    assert_eq!(Model::load(&target, None).unwrap(), model);
    // Asked for a .safetensors file, or from a one-file model: one file.
    let file = out.path().join("one.safetensors");
    model.save_like(&file, dir.path()).unwrap();
    assert!(file.is_file());
    assert_eq!(Model::load(&file, None).unwrap(), model);
    // A model whose tensors the index does not list is refused, nothing written.
    let other = Model::from_floats(Default::default(), vec![("x".into(), vec![2], vec![0.5, 1.0])]).unwrap();
    let refused = out.path().join("refused");
    let err = other.save_sharded(&refused, &dir.path().join(SHARD_INDEX)).unwrap_err();
    assert!(err.to_string().contains("not the ones this index lists"), "{err}");
    assert!(!refused.exists());
}

/// Streaming a checkpoint (any chunk size) and reading single blocks from it give the
/// weights and blocks of the model read whole, for one file and for shards alike; so do
/// F32 and F16 files.
#[test]
fn streamed_checkpoints_give_the_whole_models_weights_and_blocks() {
    use pogo_circuits::checkpoint::Checkpoint;
    use pogo_circuits::encoding::BLOCK_WEIGHTS;

    let check = |path: &Path, model: &Model| {
        let checkpoint = Checkpoint::open(path, None).unwrap();
        assert_eq!(checkpoint.weight_count(), model.weight_count());
        assert_eq!(checkpoint.tensors().cloned().collect::<Vec<_>>(), model.tensors());
        for chunk_blocks in [1, 2, 3, 7, 1000] {
            let mut streamed = Vec::new();
            checkpoint
                .stream(chunk_blocks, |first, weights| -> Result<(), ModelError> {
                    assert_eq!(first as usize * BLOCK_WEIGHTS, streamed.len(), "chunks in order");
                    streamed.extend_from_slice(weights);
                    Ok(())
                })
                .unwrap();
            assert_eq!(streamed, model.weights(), "chunks of {chunk_blocks} blocks");
        }
        for b in 0..model.block_count() {
            assert_eq!(checkpoint.block(b).unwrap(), model.block(b), "block {b}");
        }
        assert_eq!(checkpoint.to_model().unwrap(), *model);
    };
    for shards in [1, 3, 7] {
        let (dir, model) = sharded(shards);
        check(dir.path(), &model);
    }
    let dir = tempfile::tempdir().unwrap();
    let model = one_file();
    for dtype in [FloatDtype::F32, FloatDtype::F16, FloatDtype::BF16] {
        let path = dir.path().join(format!("{dtype:?}.safetensors"));
        std::fs::write(&path, model.to_float_safetensors(dtype).unwrap()).unwrap();
        check(&path, &Model::load(&path, None).unwrap());
    }
    let exact = dir.path().join("exact.safetensors");
    model.save(&exact).unwrap();
    check(&exact, &model);
}

/// A value that cannot be encoded is named by its tensor and index, streamed or not.
#[test]
fn a_bad_value_is_named_the_same_when_streamed() {
    use pogo_circuits::checkpoint::Checkpoint;
    let dir = tempfile::tempdir().unwrap();
    let mut values: Vec<f32> = (0..500).map(|i| i as f32 * 1e-3).collect();
    values[321] = f32::INFINITY;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![500], &bytes).unwrap();
    let path = dir.path().join("inf.safetensors");
    std::fs::write(&path, safetensors::serialize([("w".to_string(), view)], None).unwrap()).unwrap();
    let whole = Model::load(&path, None).unwrap_err().to_string();
    let checkpoint = Checkpoint::open(&path, None).unwrap();
    let streamed = checkpoint.stream(1, |_, _| -> Result<(), ModelError> { Ok(()) }).unwrap_err().to_string();
    assert_eq!(whole, streamed);
    assert!(streamed.contains("tensor \"w\", element 321"), "{streamed}");
}
