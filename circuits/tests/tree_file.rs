//! Tree files against the in-memory reference: the streamed builder gives the reference
//! root and, read back, the reference's every path, for any leaf count and chunk size;
//! a damaged, truncated or foreign file is refused by name, and nothing half-written stays.

use pogo_circuits::field::{Field, Fr, PrimeField};
use pogo_circuits::merkle::{hash_pairs, next_layer, MerkleTree};
use pogo_circuits::tree_file::{TreeBuilder, TreeFile, TreeFileError};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn leaves(n: u64, seed: u64) -> Vec<Fr> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| Fr::random(&mut rng)).collect()
}

/// Builds `leaves` at `depth` in chunks of `2^height` into `out`.
fn build(leaves: &[Fr], depth: u32, height: u32, out: Option<&std::path::Path>) -> Fr {
    let mut builder = TreeBuilder::new(leaves.len() as u64, depth, out, next_layer).unwrap().with_chunk_height(height);
    for chunk in leaves.chunks(builder.chunk_leaves()) {
        builder.push(chunk).unwrap();
    }
    builder.finish().unwrap()
}

#[test]
fn streamed_trees_equal_the_reference_in_root_and_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    for case in 0..24u64 {
        let n = match case {
            0 => 1,
            1 => 2,
            2 => 8,
            3 => 9,
            _ => rng.gen_range(1..300),
        };
        let depth = pogo_circuits::merkle::default_depth(n) + rng.gen_range(0..3);
        let height = rng.gen_range(0..=depth + 1);
        let leaves = leaves(n, case);
        let reference = MerkleTree::build(leaves.clone(), depth).unwrap();
        let path = dir.path().join(format!("t{case}.tree"));
        assert_eq!(build(&leaves, depth, height, Some(&path)), reference.root(), "n {n}, D {depth}, chunk 2^{height}");
        assert_eq!(build(&leaves, depth, height, None), reference.root());
        let file = TreeFile::open(&path).unwrap();
        assert_eq!((file.root(), file.depth(), file.leaves()), (reference.root(), depth, n));
        for i in 0..n {
            assert_eq!(file.leaf(i).unwrap(), leaves[i as usize]);
            assert_eq!(file.open_path(i).unwrap(), reference.open(i).unwrap(), "leaf {i} of {n}");
        }
        assert!(matches!(file.leaf(n), Err(TreeFileError::Shape(_))));
        let mut served = Vec::new();
        file.write_leaves(&mut served).unwrap();
        let expected: Vec<u8> = leaves.iter().flat_map(|l| l.to_repr()).collect();
        assert_eq!(served, expected, "the leaf list is the leaves' bytes in order");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok).collect();
    assert!(left.iter().all(|e| e.file_name().to_string_lossy().ends_with(".tree")), "no temporary file stays");
}

fn refused(path: &std::path::Path, needle: &str) {
    match TreeFile::open(path) {
        Err(e) => assert!(e.to_string().contains(needle), "{e}"),
        Ok(_) => panic!("a bad tree file was accepted (wanted: {needle})"),
    }
}

#[test]
fn damaged_truncated_and_foreign_tree_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tree");
    let leaves = leaves(37, 1);
    build(&leaves, 6, 2, Some(&good));
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.path().join("bad.tree");
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        edit(&mut b);
        std::fs::write(&bad, b).unwrap();
    };
    with(&|b| b.truncate(b.len() - 32));
    refused(&bad, "truncated");
    with(&|b| b.extend_from_slice(&[0; 32]));
    refused(&bad, "truncated or padded");
    with(&|b| b.truncate(10));
    refused(&bad, "shorter than");
    with(&|b| b[0] = b'X');
    refused(&bad, "not a pogo tree file");
    with(&|b| b[8] = 2);
    refused(&bad, "version 2 is not supported");
    with(&|b| b[12] = 40);
    refused(&bad, "header");
    with(&|b| b[16] = 38);
    refused(&bad, "bytes, but a tree of 38 leaves");
    with(&|b| b[24] ^= 1);
    refused(&bad, "not the header's root");
    with(&|b| b[24..56].copy_from_slice(&[0xff; 32]));
    refused(&bad, "not a field element");
    // One interior node of level 2 damaged: the paths through it are refused, others not.
    let level2 = 64 + 32 * (37 + 19);
    with(&|b| b[level2 + 32 * 3] ^= 1);
    let file = TreeFile::open(&bad).unwrap();
    // Node 3 of level 2 is the sibling on the paths of leaves 8..12.
    let err = file.open_path(9).unwrap_err().to_string();
    assert!(err.contains("leaf 9 does not lead to the root"), "{err}");
    assert!(file.open_path(20).is_ok());
    // A file that is not one: the one-line message names it.
    std::fs::write(&bad, b"{\"model\": 1}").unwrap();
    refused(&bad, "bad.tree");
    refused(&dir.path().join("missing.tree"), "missing.tree");
}

#[test]
fn an_unfinished_build_leaves_nothing_and_a_wrong_push_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.tree");
    let leaves = leaves(20, 3);
    let mut builder = TreeBuilder::new(20, 5, Some(&out), next_layer).unwrap().with_chunk_height(2);
    assert!(matches!(builder.push(&leaves[..3]), Err(TreeFileError::Misuse(_))), "a short chunk mid-tree");
    builder.push(&leaves[..4]).unwrap();
    assert!(matches!(TreeBuilder::new(40, 5, None, next_layer), Err(TreeFileError::Shape(_))));
    drop(builder);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the unfinished tree's temporary file is gone");
    let builder = TreeBuilder::new(20, 5, Some(&out), next_layer).unwrap();
    assert!(matches!(builder.finish(), Err(TreeFileError::Misuse(_))), "finished before every leaf");
    assert!(!out.exists());
}

/// Replacing leaves of a tree file re-hashes only their paths and gives, byte for byte, the
/// file of the new tree built whole; out-of-order, repeated or out-of-range leaves are
/// refused and leave no file behind.
#[test]
fn replacing_leaves_in_a_file_equals_building_the_new_tree() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    for case in 0..16u64 {
        let n = if case == 0 { 1 } else { rng.gen_range(1..400) };
        let depth = pogo_circuits::merkle::default_depth(n) + rng.gen_range(0..3);
        let old = leaves(n, case);
        let old_path = dir.path().join("old.tree");
        build(&old, depth, 3, Some(&old_path));
        let mut indices: Vec<u64> = (0..rng.gen_range(0..6)).map(|_| rng.gen_range(0..n)).collect();
        if case == 1 {
            indices = (0..n).collect();
        }
        indices.sort_unstable();
        indices.dedup();
        let fresh = leaves(indices.len() as u64, 1000 + case);
        let changed: Vec<(u64, Fr)> = indices.iter().copied().zip(fresh).collect();
        let mut new = old.clone();
        for &(i, leaf) in &changed {
            new[i as usize] = leaf;
        }
        let whole = dir.path().join("whole.tree");
        build(&new, depth, 2, Some(&whole));
        let patched = dir.path().join("patched.tree");
        let file = TreeFile::open(&old_path).unwrap().with_leaves_replaced(&patched, &changed, hash_pairs).unwrap();
        assert_eq!(std::fs::read(&patched).unwrap(), std::fs::read(&whole).unwrap(), "n {n}, D {depth}, {changed:?}");
        assert_eq!(file.root(), MerkleTree::build(new, depth).unwrap().root());
    }
    let old = TreeFile::open(&dir.path().join("old.tree")).unwrap();
    let n = old.leaves();
    let bad = dir.path().join("bad.tree");
    for changed in [vec![(n, Fr::ONE)], vec![(0, Fr::ONE), (0, Fr::ONE)]] {
        assert!(matches!(old.with_leaves_replaced(&bad, &changed, hash_pairs), Err(TreeFileError::Shape(_))));
    }
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "old, whole and patched only: {names:?}");
}
