//! Rebuilding a committed update (DESIGN §3 step 6): a verifier takes the old model it
//! trusts and the miner's update blob, applies the update exactly and checks both
//! commitments the miner posted before it spends time evaluating the loss.

use pogo_circuits::field::{fr_to_hex, Fr};
use pogo_circuits::merkle::MerkleError;
use pogo_circuits::model::Model;
use pogo_circuits::update::{Update, UpdateError};

/// What a miner committed to for one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Tree depth `D` of the task.
    pub depth: u32,
    /// The claimed new model root.
    pub new_root: Fr,
    /// The claimed update root.
    pub update_root: Fr,
}

/// Why a rebuilt update does not match its claim.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The update does not apply to the old model.
    #[error("the update does not apply to the old model: {0}")]
    Apply(#[from] UpdateError),
    /// The tree shape is invalid for this model.
    #[error(transparent)]
    Shape(#[from] MerkleError),
    /// The update blob is not the one committed.
    #[error("update root mismatch: committed {committed}, blob gives {computed}")]
    UpdateRoot {
        /// Posted by the miner.
        committed: String,
        /// Computed from the blob.
        computed: String,
    },
    /// The new model is not the one committed.
    #[error("new model root mismatch: committed {committed}, rebuilt model gives {computed}")]
    NewRoot {
        /// Posted by the miner.
        committed: String,
        /// Computed from old model + update.
        computed: String,
    },
}

/// Applies `update` to `old` and checks the result against `claim`; returns the new model.
pub fn rebuild(old: &Model, update: &Update, claim: &Claim) -> Result<Model, RebuildError> {
    let update_root = update.reference_tree(claim.depth)?.root();
    if update_root != claim.update_root {
        return Err(RebuildError::UpdateRoot {
            committed: fr_to_hex(&claim.update_root),
            computed: fr_to_hex(&update_root),
        });
    }
    let new = update.apply(old)?;
    let new_root = new.reference_tree(claim.depth)?.root();
    if new_root != claim.new_root {
        return Err(RebuildError::NewRoot { committed: fr_to_hex(&claim.new_root), computed: fr_to_hex(&new_root) });
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pogo_circuits::encoding::{Nibble, UpdateBlock, BIAS, BLOCK_WEIGHTS};
    use pogo_circuits::model::TensorInfo;

    fn setup() -> (Model, Update, Claim) {
        let n = 300;
        let old = Model::new(Default::default(), vec![TensorInfo { name: "w".into(), shape: vec![n] }], vec![BIAS; n])
            .unwrap();
        let blocks = (0..3)
            .map(|b| {
                let mut block = UpdateBlock { scale: 10 + b, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
                block.nibbles[5] = Nibble::from_signed(-3).unwrap();
                block
            })
            .collect();
        let update = Update::new(n as u64, blocks).unwrap();
        let new = update.apply(&old).unwrap();
        let claim = Claim {
            depth: 3,
            new_root: new.reference_tree(3).unwrap().root(),
            update_root: update.reference_tree(3).unwrap().root(),
        };
        (old, update, claim)
    }

    #[test]
    fn honest_update_rebuilds() {
        let (old, update, claim) = setup();
        let new = rebuild(&old, &update, &claim).unwrap();
        assert_eq!(new.weights()[5], BIAS - 30);
    }

    #[test]
    fn wrong_update_root_is_rejected() {
        let (old, update, mut claim) = setup();
        claim.update_root += Fr::from(1);
        assert!(matches!(rebuild(&old, &update, &claim), Err(RebuildError::UpdateRoot { .. })));
    }

    #[test]
    fn wrong_new_root_is_rejected() {
        let (old, update, mut claim) = setup();
        claim.new_root = claim.update_root;
        assert!(matches!(rebuild(&old, &update, &claim), Err(RebuildError::NewRoot { .. })));
    }

    #[test]
    fn other_old_model_is_rejected() {
        let (old, update, claim) = setup();
        let mut weights = old.weights().to_vec();
        weights[200] += 1;
        let other = old.with_weights(weights).unwrap();
        assert!(matches!(rebuild(&other, &update, &claim), Err(RebuildError::NewRoot { .. })));
    }
}
