//! The streamed pipelines against the in-memory ones: an update blob's tree, and an update
//! applied to a checkpoint (single file and sharded) give the same roots, the same new model
//! byte for byte, and the same refusals; a refused apply leaves no file behind.

use std::path::Path;

use pogo_circuits::checkpoint::{Checkpoint, CheckpointWriter};
use pogo_circuits::encoding::{Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::merkle::default_depth;
use pogo_circuits::model::{Model, TensorInfo, SHARD_INDEX};
use pogo_circuits::update::{Update, UpdateError};
use pogo_circuits::update_stream::UpdateStream;
use pogo_prover::commit::{model_tree, update_tree};
use pogo_prover::stream::{apply_streamed, update_stream_tree, StreamError};

/// A model of three tensors (`a`, `b`, `c`) and `weights` weights in all.
fn model(weights: usize, seed: u32) -> Model {
    let sizes = [weights / 3, weights / 3, weights - 2 * (weights / 3)];
    let tensors = ["a", "b", "c"].iter().zip(sizes).map(|(n, s)| TensorInfo { name: n.to_string(), shape: vec![s] });
    let values = (0..weights as u32).map(|i| (1u32 << 31).wrapping_add((i ^ seed).wrapping_mul(2_654_435_761) >> 8));
    Model::new(Default::default(), tensors.collect(), values.collect()).unwrap()
}

/// An update changing every `every`-th block with small scales.
fn update(weights: u64, every: u64) -> Update {
    let nb = weights.div_ceil(BLOCK_WEIGHTS as u64);
    let changed = (0..nb)
        .filter(|b| b % every == 1 % every)
        .map(|b| {
            let used = (weights - b * BLOCK_WEIGHTS as u64).min(BLOCK_WEIGHTS as u64) as usize;
            let mut block = UpdateBlock { scale: 3 + b as u32 % 5, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
            for (j, n) in block.nibbles[..used].iter_mut().enumerate() {
                *n = Nibble::new(((b as usize + j) % 16) as u8).unwrap();
            }
            (b, block)
        })
        .collect();
    Update::sparse(weights, changed).unwrap()
}

/// The model of `names`' tensors of `m` alone (in model order).
fn part(m: &Model, names: &[&str]) -> Model {
    let mut offset = 0;
    let (mut tensors, mut weights) = (Vec::new(), Vec::new());
    for t in m.tensors() {
        if names.contains(&t.name.as_str()) {
            tensors.push(t.clone());
            weights.extend_from_slice(&m.weights()[offset..offset + t.len()]);
        }
        offset += t.len();
    }
    Model::new(m.format(), tensors, weights).unwrap()
}

fn sharded(dir: &Path, model: &Model) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let map =
        serde_json::json!({ "weight_map": { "a": "s1.safetensors", "b": "s2.safetensors", "c": "s1.safetensors" } });
    std::fs::write(src.join(SHARD_INDEX), map.to_string()).unwrap();
    let out = dir.join("old");
    model.save_sharded(&out, &src.join(SHARD_INDEX)).unwrap();
    out
}

#[test]
fn streamed_update_trees_and_applies_equal_the_in_memory_ones() {
    let dir = tempfile::tempdir().unwrap();
    for (weights, every) in [(1_000usize, 1u64), (5_000, 3), (40_000, 50), (113, 1)] {
        let old = model(weights, weights as u32);
        let depth = default_depth(old.block_count()) + 1;
        for base in [false, true] {
            let mut up = update(weights as u64, every);
            if base {
                up = up.with_base(model_tree(&old, Some(depth), &()).unwrap().root(), depth);
            }
            let blob = dir.path().join("u.pogo");
            up.save(&blob).unwrap();
            let stream = UpdateStream::open(&blob, weights as u64).unwrap();
            let (root, _) = update_stream_tree(&stream, Some(depth), None, &()).unwrap();
            assert_eq!(root, update_tree(&up, Some(depth), &()).unwrap().root());

            let expected = up.apply(&old).unwrap();
            let whole_root = model_tree(&expected, None, &()).unwrap().root();
            // One file: the same bytes as Model::save.
            let single = dir.path().join("old.safetensors");
            old.save(&single).unwrap();
            let checkpoint = Checkpoint::open(&single, None).unwrap();
            let out = dir.path().join("new.safetensors");
            let tensors: Vec<_> = checkpoint.tensors().cloned().collect();
            let mut writer = CheckpointWriter::create(&out, None, &tensors, checkpoint.format()).unwrap();
            let applied = apply_streamed(&checkpoint, &stream, None, Some(&mut writer), None, &()).unwrap();
            writer.finish().unwrap();
            assert_eq!(applied.new_root, whole_root);
            let changed = old.weights().iter().zip(expected.weights()).filter(|(a, b)| a != b).count();
            assert_eq!(applied.changed_weights, changed as u64);
            let reference = dir.path().join("reference.safetensors");
            expected.save(&reference).unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&reference).unwrap(), "{weights} weights");
            // Sharded: each shard is what safetensors writes for its tensors (the in-memory
            // file of a model of those tensors alone), and the index keeps the layout.
            let old_dir = sharded(dir.path(), &old);
            let checkpoint = Checkpoint::open(&old_dir, None).unwrap();
            let new_dir = dir.path().join("new");
            let layout = old_dir.join(SHARD_INDEX);
            let mut writer = CheckpointWriter::create(&new_dir, Some(&layout), &tensors, checkpoint.format()).unwrap();
            apply_streamed(&checkpoint, &stream, None, Some(&mut writer), None, &()).unwrap();
            writer.finish().unwrap();
            for (file, names) in [("s1.safetensors", &["a", "c"][..]), ("s2.safetensors", &["b"][..])] {
                let shard = part(&expected, names).to_safetensors().unwrap();
                assert_eq!(std::fs::read(new_dir.join(file)).unwrap(), shard, "{file}");
            }
            let index: serde_json::Value =
                serde_json::from_slice(&std::fs::read(new_dir.join(SHARD_INDEX)).unwrap()).unwrap();
            let listed: serde_json::Value = serde_json::from_slice(&std::fs::read(&layout).unwrap()).unwrap();
            assert_eq!(index["weight_map"], listed["weight_map"]);
            assert_eq!(Model::load(&new_dir, None).unwrap(), expected);
            for d in [&old_dir, &new_dir] {
                std::fs::remove_dir_all(d).unwrap();
            }
        }
    }
}

#[test]
fn streamed_applies_refuse_what_the_in_memory_one_refuses_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let weights = 3_000;
    let old = model(weights, 1);
    let single = dir.path().join("old.safetensors");
    old.save(&single).unwrap();
    let checkpoint = Checkpoint::open(&single, None).unwrap();
    let tensors: Vec<_> = checkpoint.tensors().cloned().collect();
    let out = dir.path().join("new.safetensors");
    let run = |up: &Update| {
        let blob = dir.path().join("u.pogo");
        up.save(&blob).unwrap();
        let stream = UpdateStream::open(&blob, weights as u64).unwrap();
        let mut writer = CheckpointWriter::create(&out, None, &tensors, checkpoint.format()).unwrap();
        apply_streamed(&checkpoint, &stream, None, Some(&mut writer), None, &()).unwrap_err()
    };
    // Another base model: refused, naming both roots.
    let other = model_tree(&model(weights, 2), None, &()).unwrap().root();
    let err = run(&update(weights as u64, 2).with_base(other, default_depth(old.block_count())));
    assert!(matches!(err, StreamError::Update(UpdateError::WrongBase { .. })), "{err}");
    // An overflow: the tensor and index are named as in memory.
    let huge = UpdateBlock { scale: u32::MAX, nibbles: [Nibble::new(15).unwrap(); BLOCK_WEIGHTS] };
    let big = Update::sparse(weights as u64, vec![(12, huge)]).unwrap();
    let whole = big.apply(&old).unwrap_err().to_string();
    assert_eq!(run(&big).to_string(), whole);
    // Nothing written, no temporary file left.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!out.exists() && left.iter().all(|n| !n.to_string_lossy().contains(".tmp")), "{left:?}");
    // A blob for a model of another size.
    let blob = dir.path().join("small.pogo");
    update(2_000, 1).save(&blob).unwrap();
    let stream = UpdateStream::open(&blob, weights as u64).unwrap();
    let err = apply_streamed(&checkpoint, &stream, None, None, None, &()).unwrap_err();
    assert!(matches!(err, StreamError::Update(UpdateError::ModelSize { update: 2000, model: 3000 })), "{err}");
}

fn one_tensor(weights: Vec<u32>) -> Model {
    let tensors = vec![TensorInfo { name: "w".into(), shape: vec![weights.len()] }];
    Model::new(Default::default(), tensors, weights).unwrap()
}

/// Counts the blocks a pipeline reports.
struct Count(std::sync::atomic::AtomicU64);

impl pogo_prover::commit::Progress for Count {
    fn advance(&self, blocks: u64) {
        self.0.fetch_add(blocks, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Count {
    fn new() -> Self {
        Count(std::sync::atomic::AtomicU64::new(0))
    }

    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A model of more than one 2^16-leaf chunk (the last one partial, its last block
/// partial), saved in `dir`, and its checkpoint.
fn multi_chunk_checkpoint(dir: &Path) -> (Model, Checkpoint) {
    let weights = (65_536 + 1_000) * BLOCK_WEIGHTS as u64 - 5;
    let m = one_tensor((0..weights).map(|i| (i as u32).wrapping_mul(2_654_435_761)).collect());
    let path = dir.join("m.safetensors");
    m.save(&path).unwrap();
    (m, Checkpoint::open(&path, None).unwrap())
}

/// A checkpoint of more than one chunk streamed into a tree file gives the in-memory
/// tree's root and openings, with the progress counting every block once; a depth too
/// small fails before any hashing.
#[test]
fn streamed_checkpoints_give_the_in_memory_tree() {
    use pogo_circuits::tree_file::TreeFile;
    use pogo_prover::stream::checkpoint_tree;

    let dir = tempfile::tempdir().unwrap();
    let (m, checkpoint) = multi_chunk_checkpoint(dir.path());
    let out = dir.path().join("m.tree");
    let count = Count::new();
    let (root, depth) = checkpoint_tree(&checkpoint, None, Some(&out), &count).unwrap();
    let whole = model_tree(&m, None, &()).unwrap();
    assert_eq!((root, depth), (whole.root(), whole.depth()));
    assert_eq!(count.get(), m.block_count());
    let file = TreeFile::open(&out).unwrap();
    for b in [0, 1, 65_535, 65_536, 65_537, m.block_count() - 1] {
        assert_eq!(file.open_path(b).unwrap(), whole.open(b).unwrap(), "block {b}");
    }
    let count = Count::new();
    let err = checkpoint_tree(&checkpoint, Some(16), None, &count).unwrap_err();
    assert!(matches!(err, StreamError::Tree(_)), "{err}");
    assert_eq!(count.get(), 0, "no hashing before the shape check");
}

/// The GPU's streamed commit, its kernels' code run on the host: a chunk's leaves and each
/// level hashed by the kernels give the CPU's tree file byte for byte; where the hasher
/// fails (every other call here), the CPU hashes that part, the file is the same and the
/// failure is reported.
#[test]
fn trees_hashed_by_the_kernels_a_chunk_at_a_time_equal_the_cpu_tree_file() {
    use pogo_circuits::field::Fr;
    use pogo_prover::gpu::host::HostKernels;
    use pogo_prover::stream::{checkpoint_tree, checkpoint_tree_on, LayerHasher};
    use std::sync::atomic::{AtomicU64, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let (m, checkpoint) = multi_chunk_checkpoint(dir.path());
    let cpu = dir.path().join("cpu.tree");
    let (root, depth) = checkpoint_tree(&checkpoint, Some(18), Some(&cpu), &()).unwrap();
    let kernels = dir.path().join("kernels.tree");
    let count = Count::new();
    let got = checkpoint_tree_on(&checkpoint, Some(18), Some(&kernels), &HostKernels, &count).unwrap();
    assert_eq!(got, (root, depth, None));
    assert_eq!(count.get(), m.block_count());
    assert_eq!(std::fs::read(&kernels).unwrap(), std::fs::read(&cpu).unwrap());

    struct Flaky(AtomicU64);
    impl Flaky {
        fn fails(&self) -> bool {
            self.0.fetch_add(1, Ordering::Relaxed) % 2 == 1
        }
    }
    impl LayerHasher for Flaky {
        fn leaves(&self, weights: &[u32]) -> Result<Vec<Fr>, String> {
            if self.fails() {
                Err("leaves lost".into())
            } else {
                HostKernels.leaves(weights)
            }
        }
        fn level(&self, children: &[Fr], zero: &Fr) -> Result<Vec<Fr>, String> {
            if self.fails() {
                Err("level lost".into())
            } else {
                HostKernels.level(children, zero)
            }
        }
        fn name(&self) -> String {
            "flaky".into()
        }
    }
    let flaky = dir.path().join("flaky.tree");
    let count = Count::new();
    let (r, d, failed) =
        checkpoint_tree_on(&checkpoint, Some(18), Some(&flaky), &Flaky(AtomicU64::new(0)), &count).unwrap();
    assert_eq!((r, d), (root, depth));
    assert!(failed.is_some_and(|why| why.ends_with("lost")));
    assert_eq!(count.get(), m.block_count(), "every block counted once, on either side");
    assert_eq!(std::fs::read(&flaky).unwrap(), std::fs::read(&cpu).unwrap());
}

/// A round's witness from its files (blocks read in place, paths from tree files) is the
/// in-memory witness; tree files of another model or update are named, as are indices past
/// the end and an update for another model.
#[test]
fn witnesses_from_files_and_tree_files_equal_the_in_memory_ones() {
    use pogo_circuits::tree_file::TreeFile;
    use pogo_prover::stream::{checkpoint_tree, sampled_blocks};
    use pogo_prover::witness::{assemble, assemble_sampled, round_trees, WitnessError};

    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let weights = 5_000;
    let old = model(weights, 7);
    let up = update(weights as u64, 3);
    let new = up.apply(&old).unwrap();
    old.save(&path("old.safetensors")).unwrap();
    new.save(&path("new.safetensors")).unwrap();
    up.save(&path("u.pogo")).unwrap();
    let depth = default_depth(old.block_count()) + 2;
    let indices = [0, 1, 44, 4, 1];
    let trees = round_trees(&old, &new, &up, depth, &()).unwrap();
    let expected = assemble(&old, &new, &up, &trees, &indices).unwrap();

    let open = |name: &str| Checkpoint::open(&path(name), None).unwrap();
    let (old_file, new_file) = (open("old.safetensors"), open("new.safetensors"));
    let stream = UpdateStream::open(&path("u.pogo"), weights as u64).unwrap();
    checkpoint_tree(&old_file, Some(depth), Some(&path("old.tree")), &()).unwrap();
    checkpoint_tree(&new_file, Some(depth), Some(&path("new.tree")), &()).unwrap();
    update_stream_tree(&stream, Some(depth), Some(&path("u.tree")), &()).unwrap();
    let [o, n, u] = ["old.tree", "new.tree", "u.tree"].map(|t| TreeFile::open(&path(t)).unwrap());
    let sampled = sampled_blocks(&old_file, &new_file, &stream, &indices).unwrap();
    let (inputs, samples) = assemble_sampled(old.block_count(), &sampled, [&o, &n, &u]).unwrap();
    assert_eq!(inputs, expected.0);
    assert_eq!(samples, expected.1);

    let err = assemble_sampled(old.block_count(), &sampled, [&n, &n, &u]).unwrap_err();
    assert!(matches!(err, WitnessError::OtherTree { which: "old model", block: 1 }), "{err}");
    let err = assemble_sampled(old.block_count(), &sampled, [&o, &n, &o]).unwrap_err();
    assert!(matches!(err, WitnessError::OtherTree { which: "update", block: 0 }), "{err}");
    // The new model swapped for the old: not the old plus the update at a changed block.
    let swapped = sampled_blocks(&old_file, &old_file, &stream, &indices).unwrap();
    let err = assemble_sampled(old.block_count(), &swapped, [&o, &o, &u]).unwrap_err();
    assert!(matches!(err, WitnessError::NotApplied { block: 1, .. }), "{err}");
    let err = sampled_blocks(&old_file, &new_file, &stream, &[old.block_count()]).unwrap_err();
    assert!(matches!(err, StreamError::Update(UpdateError::BlockIndex { .. })), "{err}");
    model(weights + 1, 7).save(&path("bigger.safetensors")).unwrap();
    let bigger = open("bigger.safetensors");
    let err = sampled_blocks(&bigger, &bigger, &stream, &[0]).unwrap_err();
    assert!(matches!(err, StreamError::Update(UpdateError::ModelSize { .. })), "{err}");
}

/// Floats written as a stream (what `pogo export` does) are the bytes the in-memory export
/// writes, one file or each shard of a sharded checkpoint.
#[test]
fn float_checkpoints_written_as_streams_equal_the_in_memory_export() {
    use pogo_circuits::checkpoint::WriteAs;
    use pogo_circuits::model::FloatDtype;

    let dir = tempfile::tempdir().unwrap();
    let m = model(3_001, 5);
    let tensors: Vec<TensorInfo> = m.tensors().to_vec();
    let old_dir = sharded(dir.path(), &m);
    let checkpoint = Checkpoint::open(&old_dir, None).unwrap();
    for dtype in [FloatDtype::F32, FloatDtype::F16, FloatDtype::BF16] {
        let write = |out: &Path, layout: Option<&Path>| {
            let mut writer =
                CheckpointWriter::create_as(out, layout, &tensors, m.format(), WriteAs::Float(dtype)).unwrap();
            checkpoint.stream(7, |_, w| writer.write(w)).unwrap();
            writer.finish().unwrap();
        };
        let single = dir.path().join("single.safetensors");
        write(&single, None);
        assert_eq!(std::fs::read(&single).unwrap(), m.to_float_safetensors(dtype).unwrap(), "{dtype:?}");
        let out = dir.path().join("float");
        write(&out, Some(&old_dir.join(SHARD_INDEX)));
        for (file, names) in [("s1.safetensors", &["a", "c"][..]), ("s2.safetensors", &["b"][..])] {
            let shard = part(&m, names).to_float_safetensors(dtype).unwrap();
            assert_eq!(std::fs::read(out.join(file)).unwrap(), shard, "{dtype:?} {file}");
        }
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join(SHARD_INDEX)).unwrap()).unwrap();
        assert_eq!(index["metadata"], serde_json::json!({}), "not marked as pogo's fixed-point format");
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// An update held in memory applied a chunk at a time gives `Update::apply`'s model byte
/// for byte and the new model's leaves of exactly the changed blocks, for sparse and dense
/// updates over more than one chunk; an overflow is named as `Update::apply` names it, and
/// an update for another model size is refused, each before the writer is finished.
#[test]
fn updates_in_memory_applied_a_chunk_at_a_time_equal_the_whole_model_apply() {
    use pogo_circuits::model::TensorInfo;
    use pogo_prover::stream::apply_update_streamed;

    let dir = tempfile::tempdir().unwrap();
    let weights = (16_384 + 300) * BLOCK_WEIGHTS - 7;
    let m = model(weights, 11);
    let path = dir.path().join("old.safetensors");
    m.save(&path).unwrap();
    let old = Checkpoint::open(&path, None).unwrap();
    let tensors: Vec<TensorInfo> = m.tensors().to_vec();
    for every in [1u64, 3, 5_000] {
        let u = update(weights as u64, every);
        let out = dir.path().join(format!("new-{every}.safetensors"));
        let mut writer = CheckpointWriter::create(&out, None, &tensors, m.format()).unwrap();
        let leaves = apply_update_streamed(&old, &u, &mut writer).unwrap();
        writer.finish().unwrap();
        let whole = u.apply(&m).unwrap();
        let expected = dir.path().join(format!("whole-{every}.safetensors"));
        whole.save(&expected).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&expected).unwrap(), "every {every}th block");
        let want: Vec<_> = u.changed().iter().map(|(b, _)| (*b, whole.leaf(*b))).collect();
        assert_eq!(leaves, want);
    }
    // A weight pushed past 2^32 - 1: named as the whole-model apply names it.
    let mut top = m.weights().to_vec();
    top[5 * BLOCK_WEIGHTS + 2] = u32::MAX;
    let high = m.with_weights(top).unwrap();
    let high_path = dir.path().join("high.safetensors");
    high.save(&high_path).unwrap();
    let high_ckpt = Checkpoint::open(&high_path, None).unwrap();
    let mut block = UpdateBlock { scale: 1, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
    block.nibbles[2] = Nibble::new(15).unwrap();
    let u = Update::sparse(weights as u64, vec![(5, block)]).unwrap();
    let whole_err = u.apply(&high).unwrap_err();
    let out = dir.path().join("never.safetensors");
    let mut writer = CheckpointWriter::create(&out, None, &tensors, m.format()).unwrap();
    let err = apply_update_streamed(&high_ckpt, &u, &mut writer).unwrap_err();
    assert!(matches!(&err, StreamError::Update(UpdateError::Overflow { .. })), "{err}");
    assert_eq!(err.to_string(), whole_err.to_string());
    drop(writer);
    assert!(!out.exists());
    let other = update(weights as u64 + 1, 3);
    let mut writer = CheckpointWriter::create(&out, None, &tensors, m.format()).unwrap();
    let err = apply_update_streamed(&old, &other, &mut writer).unwrap_err();
    assert!(matches!(err, StreamError::Update(UpdateError::ModelSize { .. })), "{err}");
}
