//! Model trees on disk, by root: the tree file of every model the store keeps (see
//! [`pogo_circuits::tree_file`]), so a node's roles open paths and re-hash a sparse
//! update's changed leaves without holding any tree in memory.

use std::path::PathBuf;

use alloy::primitives::U256;
use anyhow::Context;
use pogo_circuits::checkpoint::Checkpoint;
use pogo_circuits::field::Fr;
use pogo_circuits::tree_file::TreeFile;
use pogo_circuits::update::{Update, UpdateError};
use pogo_prover::commit::par_hash_pairs;
use pogo_prover::stream::{apply_update_streamed, checkpoint_tree, StreamError};
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
        super::rename_or_remove(pending, &path)?;
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

    /// The model kept under `old_root` plus `update`, streamed from the store into the store
    /// (one chunk of the model and the update in memory), its tree the old tree file with
    /// only the changed paths re-hashed: its root, and the model kept under it if it is
    /// `expect` (dropped otherwise). A root other than `expect` names a miner as a cheat,
    /// so it is confirmed by hashing the rebuilt model whole: a damaged old tree file cannot
    /// make an honest update look wrong (it is dropped, and hashed again when needed).
    /// `Ok(Err(_))`: the update does not apply.
    pub fn apply_update(
        &self,
        old_root: U256,
        depth: u32,
        update: &Update,
        expect: U256,
    ) -> anyhow::Result<Result<U256, UpdateError>> {
        let old = self.checkpoint(old_root)?;
        let tensors: Vec<_> = old.tensors().cloned().collect();
        let (mut writer, pending) = self.model_writer(&tensors, old.format())?;
        let changed = match apply_update_streamed(&old, update, &mut writer) {
            Ok(changed) => changed,
            Err(StreamError::Update(e)) => return Ok(Err(e)),
            Err(e) => return Err(e.into()),
        };
        writer.finish().context("writing the rebuilt model")?;
        let mut root = match self.tree_after(old_root, depth, &changed) {
            Ok((root, _)) => root,
            Err(e) => {
                let _ = self.keep_model(&pending, None);
                return Err(e.into());
            }
        };
        if root != expect {
            if !self.has_model(root) {
                self.drop_model(root)?;
            }
            let rebuilt = Checkpoint::open(&pending, None).context("reading the rebuilt model")?;
            let (whole, _) = checkpoint_tree(&rebuilt, Some(depth), None, &())?;
            if fr_to_u256(&whole) != root {
                eprintln!("note: the tree file of {old_root:#x} was damaged; it will be hashed again");
                self.drop_tree(old_root)?;
            }
            root = fr_to_u256(&whole);
        }
        self.keep_model(&pending, (root == expect).then_some(root))?;
        Ok(Ok(root))
    }

    /// Drops the tree file kept for `root` (it is hashed again from the model when needed);
    /// returns the bytes freed.
    pub fn drop_tree(&self, root: U256) -> Result<u64, StoreError> {
        super::remove_counted(&self.tree_path(root))
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

        // A rebuild from the store into the store: the committed root keeps the model (equal
        // to the whole-model apply); another root keeps nothing and says the true root.
        let mut block = pogo_circuits::encoding::UpdateBlock::zero();
        block.scale = 3;
        block.nibbles[5] = pogo_circuits::encoding::Nibble::new(12).unwrap();
        let update = Update::sparse(old.weight_count(), vec![(4, block)]).unwrap();
        let applied = update.apply(&old).unwrap();
        let want = fr_to_u256(&model_tree(&applied, Some(depth), &()).unwrap().root());
        assert_eq!(store.apply_update(root, depth, &update, want).unwrap().unwrap(), want);
        assert_eq!(store.model(want).unwrap().weights(), applied.weights());
        store.drop_model(want).unwrap();
        let liar = U256::from(99u64);
        assert_eq!(store.apply_update(root, depth, &update, liar).unwrap().unwrap(), want, "the true root");
        assert!(!store.has_model(want) && !store.has_model(liar) && !store.tree_path(want).exists());
        // A damaged old tree file (leaf 5, the changed block's sibling, overwritten with leaf
        // 6: a valid field element, the header intact) cannot make the honest update look
        // wrong: the whole rebuilt model is hashed, the bad file dropped.
        let path = store.tree_path(root);
        let mut bytes = std::fs::read(&path).unwrap();
        let leaf = |i: usize| 64 + 32 * i..64 + 32 * (i + 1);
        let six = bytes[leaf(6)].to_vec();
        bytes[leaf(5)].copy_from_slice(&six);
        std::fs::write(&path, &bytes).unwrap();
        let (damaged, _) = store.tree_after(root, depth, &[(4, applied.leaf(4))]).unwrap();
        assert_ne!(damaged, want, "the damaged file gives a wrong root");
        store.drop_model(damaged).unwrap();
        assert_eq!(store.apply_update(root, depth, &update, want).unwrap().unwrap(), want);
        assert!(store.has_model(want));
        assert_eq!(fr_to_u256(&store.tree(root, depth).unwrap().root()), root, "hashed again");
        // An update that overflows is the update's error, nothing kept.
        let mut top = old.weights().to_vec();
        top[4 * pogo_circuits::encoding::BLOCK_WEIGHTS + 5] = u32::MAX;
        let high = old.with_weights(top).unwrap();
        let high_root = fr_to_u256(&model_tree(&high, Some(depth), &()).unwrap().root());
        store.put_model(high_root, &high).unwrap();
        let err = store.apply_update(high_root, depth, &update, want).unwrap().unwrap_err();
        assert!(matches!(err, UpdateError::Overflow { block: 4, .. }), "{err}");
        // Work files a killed process left are swept; kept files are not.
        std::fs::write(dir.path().join("models/.pending.1.safetensors"), b"x").unwrap();
        std::fs::write(dir.path().join("trees/.after-00.1.pending"), b"x").unwrap();
        std::fs::create_dir_all(dir.path().join(".scratch-abc")).unwrap();
        assert_eq!(store.sweep_work_files(), 3);
        assert!(store.has_model(root) && store.has_model(want));

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
