//! Model trees on disk, by root: the tree file of every model the store keeps (see
//! [`pogo_circuits::tree_file`]), so a node's roles open paths and re-hash a sparse
//! update's changed leaves without holding any tree in memory.

use std::path::PathBuf;

use alloy::primitives::U256;
use pogo_circuits::field::Fr;
use pogo_circuits::tree_file::TreeFile;
use pogo_prover::commit::par_hash_pairs;
use pogo_prover::stream::checkpoint_tree;
use pogo_verifier::evm::fr_to_u256;

use super::{Store, StoreError};

impl Store {
    pub(super) fn tree_path(&self, root: U256) -> PathBuf {
        self.dir.join("trees").join(format!("{root:064x}.tree"))
    }

    /// A name in the trees folder for a tree whose root is not known yet (this process's
    /// own, hidden); renamed to its root's name once checked.
    fn pending_tree(&self, what: &str) -> Result<PathBuf, StoreError> {
        let dir = self.dir.join("trees");
        std::fs::create_dir_all(&dir).map_err(|e| Self::io(&dir, e))?;
        Ok(dir.join(format!(".{what}.{}.pending", std::process::id())))
    }

    /// Renames the checked tree file at `pending` to its root's name.
    fn keep_tree(&self, pending: &std::path::Path, root: U256) -> Result<TreeFile, StoreError> {
        let path = self.tree_path(root);
        if let Err(e) = std::fs::rename(pending, &path) {
            let _ = std::fs::remove_file(pending);
            return Err(Self::io(&path, e));
        }
        TreeFile::open(&path).map_err(|e| Self::io(&path, e))
    }

    /// The tree file of the model kept under `root`, at `depth`: the store's own if it opens
    /// with that root and depth, else hashed from the kept model (streamed, on every core)
    /// and kept. Errors: no model kept under `root`, or a kept model whose root is another
    /// (nothing is kept then).
    pub fn tree(&self, root: U256, depth: u32) -> Result<TreeFile, StoreError> {
        let path = self.tree_path(root);
        if let Ok(tree) = TreeFile::open(&path) {
            if tree.depth() == depth && fr_to_u256(&tree.root()) == root {
                return Ok(tree);
            }
        }
        let model = self.model_path(root);
        let checkpoint = self.checkpoint(root)?;
        let pending = self.pending_tree(&format!("{root:064x}"))?;
        let (got, _) =
            checkpoint_tree(&checkpoint, Some(depth), Some(&pending), &()).map_err(|e| Self::io(&model, e))?;
        if fr_to_u256(&got) != root {
            let _ = std::fs::remove_file(&pending);
            return Err(StoreError::Damaged {
                what: model.display().to_string(),
                why: format!(
                    "it is kept under root {root:#x} but its root at depth {depth} is {:#x}",
                    fr_to_u256(&got)
                ),
            });
        }
        self.keep_tree(&pending, root)
    }

    /// The tree of a model that differs from the one kept under `old_root` only in the
    /// leaves `changed` (sorted by block, each once): the old tree file copied with only
    /// their paths re-hashed, `O(k · D)` for `k` changed leaves. Kept under its root, which
    /// it returns with the tree.
    pub fn tree_after(
        &self,
        old_root: U256,
        depth: u32,
        changed: &[(u64, Fr)],
    ) -> Result<(U256, TreeFile), StoreError> {
        let old = self.tree(old_root, depth)?;
        let pending = self.pending_tree(&format!("after-{old_root:064x}"))?;
        let tree = old.with_leaves_replaced(&pending, changed, par_hash_pairs).map_err(|e| Self::io(&pending, e))?;
        let root = fr_to_u256(&tree.root());
        drop(tree);
        Ok((root, self.keep_tree(&pending, root)?))
    }

    /// Keeps the leaf list of `tree` (the model with root `root`) for challengers, copied
    /// from its tree file a megabyte at a time.
    pub fn put_leaves_of(&self, root: U256, tree: &TreeFile) -> Result<(), StoreError> {
        let path = self.leaves_path(root);
        std::fs::create_dir_all(path.parent().expect("leaves folder")).map_err(|e| Self::io(&self.dir, e))?;
        pogo_circuits::files::write_atomic_with(&path, |out| tree.write_leaves(out).map_err(std::io::Error::other))
            .map_err(|e| Self::io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pogo_circuits::encoding::FixedPoint;
    use pogo_circuits::model::{Model, TensorInfo};
    use pogo_prover::commit::model_tree;

    fn model(seed: u32, n: u32) -> Model {
        let weights: Vec<u32> = (0..n).map(|i| (i ^ seed).wrapping_mul(2_654_435_761) >> 8).collect();
        Model::new(FixedPoint::default(), vec![TensorInfo { name: "w".into(), shape: vec![n as usize] }], weights)
            .unwrap()
    }

    #[test]
    fn tree_files_are_kept_by_root_and_a_sparse_change_is_rehashed_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let (depth, old) = (6, model(1, 3000));
        let root = fr_to_u256(&model_tree(&old, Some(depth), &()).unwrap().root());
        // No model kept: an error naming it, nothing written.
        let missing = store.tree(root, depth).unwrap_err();
        assert!(missing.to_string().contains(&format!("{root:064x}.safetensors")), "{missing}");
        store.put_model(root, &old).unwrap();
        let tree = store.tree(root, depth).unwrap();
        assert_eq!(fr_to_u256(&tree.root()), root);
        // Kept: opened again, not re-hashed (a damaged file is hashed anew instead).
        let path = store.tree_path(root);
        assert!(path.exists());
        std::fs::write(&path, b"damaged").unwrap();
        assert_eq!(fr_to_u256(&store.tree(root, depth).unwrap().root()), root);
        // At another depth the model has another root: not the one it is kept under.
        assert!(store.tree(root, depth + 1).is_err());
        assert_eq!(fr_to_u256(&store.tree(root, depth).unwrap().root()), root);

        // Three blocks changed: the kept tree equals the new model's whole tree.
        let mut weights = old.weights().to_vec();
        for b in [0usize, 7, 26] {
            weights[b * pogo_circuits::encoding::BLOCK_WEIGHTS] ^= 0x55;
        }
        let new = old.with_weights(weights).unwrap();
        let whole = model_tree(&new, Some(depth), &()).unwrap();
        let changed: Vec<(u64, Fr)> = [0u64, 7, 26].iter().map(|&b| (b, new.leaf(b))).collect();
        let (new_root, new_tree) = store.tree_after(root, depth, &changed).unwrap();
        assert_eq!(new_root, fr_to_u256(&whole.root()));
        for b in 0..new.block_count() {
            assert_eq!(new_tree.open_path(b).unwrap(), whole.open(b).unwrap());
        }
        // Its leaf list is the whole tree's.
        store.put_leaves_of(new_root, &new_tree).unwrap();
        assert_eq!(store.local_leaves(new_root).unwrap(), pogo_verifier::fraud::leaves_to_bytes(whole.leaves()));

        // Dropping a model takes its tree file and leaf list with it; a blob goes alone.
        store.put_model(new_root, &new).unwrap();
        let hash = store.put_blob(b"blob").unwrap();
        let sizes = |root| {
            [store.model_path(root), store.tree_path(root), store.leaves_path(root)]
                .iter()
                .map(|p| std::fs::metadata(p).unwrap().len())
                .sum::<u64>()
        };
        let expected = sizes(new_root);
        assert_eq!(store.drop_model(new_root).unwrap(), expected);
        assert!(!store.has_model(new_root) && !store.tree_path(new_root).exists());
        assert!(store.local_leaves(new_root).is_none());
        assert_eq!(store.drop_model(new_root).unwrap(), 0, "dropping what is gone frees nothing");
        assert_eq!(store.drop_blob(hash).unwrap(), 4);
        assert!(store.local_blob(hash).is_none());
        assert!(store.has_model(root), "the other model stays");

        // A model kept under a root that is not its own: refused, no tree kept.
        let liar = U256::from(12345u64);
        store.put_model(liar, &old).unwrap();
        let err = store.tree(liar, depth).unwrap_err();
        assert!(err.to_string().contains("its root at depth 6 is"), "{err}");
        assert!(!store.tree_path(liar).exists());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("trees")).unwrap().filter_map(Result::ok).collect();
        assert!(left.iter().all(|e| !e.file_name().to_string_lossy().starts_with('.')), "no pending file stays");
    }
}
