//! Fraud proofs for one block (the fraud-proof issue): the native reference of
//! `contracts/PogoFraud.sol`, the claims a challenger builds from the old model, the update
//! and the candidate's new-model leaves, and the Poseidon constants the contract reads from
//! data contracts.
//!
//! The statement: block `b` of a candidate is wrong when the leaves at `b` under its three
//! committed roots (old model, update, new model) are not related by DESIGN §2 — the new
//! leaf is not `H_16` of the old block with the update applied, a weight leaves
//! `[0, 2^32)`, the update's block is not a valid encoding, or (past the model's `nb`
//! blocks) a padding leaf is not 0. [`check`] decides a claim exactly as the contract does;
//! tests run both on the same claims.

use pogo_circuits::encoding::{UpdateBlock, BLOCK_WEIGHTS, ELEMENTS_PER_BLOCK, LIMBS_PER_ELEMENT};
use pogo_circuits::field::{Field, Fr, PrimeField};
use pogo_circuits::merkle::{MerkleError, MerklePath, MerkleTree};
use pogo_circuits::model::Model;
use pogo_circuits::poseidon::{self, OptimizedSpec};
use pogo_circuits::update::Update;

use crate::evm::{fr_to_u256, keccak256, B256, U256};

alloy_sol_types::sol!(
    #[sol(all_derives)]
    PogoFraud,
    "contracts/build/PogoFraud.json"
);

pub use PogoFraud::FraudClaim as ClaimAbi;

/// Inputs of the Poseidon instances the contract computes (`H_2`, `H_3`, `H_16`).
pub const WIDTHS_INPUTS: [usize; 3] = [2, 3, 16];
/// Data bytes a data contract holds (EIP-170 less the leading `0x00`, whole words).
pub const CHUNK_WORDS: usize = 767;

/// How a claim shows fraud (the contract's `check` answers the same numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FraudKind {
    /// The new leaf is not `H_16` of the old block with the update applied.
    NewLeafDiffers = 1,
    /// A weight of the applied block leaves `[0, 2^32)`.
    WeightOutOfRange = 2,
    /// The update's block is not 112 nibbles and a 32-bit scale.
    BadUpdateEncoding = 3,
    /// Past `nb`, a leaf of the new or the update tree is not 0.
    PaddingNotZero = 4,
}

impl FraudKind {
    /// The kind the contract reports as `kind`.
    pub fn from_code(kind: u8) -> Option<Self> {
        [Self::NewLeafDiffers, Self::WeightOutOfRange, Self::BadUpdateEncoding, Self::PaddingNotZero]
            .into_iter()
            .find(|k| *k as u8 == kind)
    }

    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NewLeafDiffers => "the new model's block is not the old block with the update applied",
            Self::WeightOutOfRange => "the update moves a weight of the block outside [0, 2^32)",
            Self::BadUpdateEncoding => "the update's block is not 112 nibbles and a 32-bit scale",
            Self::PaddingNotZero => "a padding leaf past the model's blocks is not 0",
        }
    }
}

/// A claim that one block of a candidate is wrong (the contract's `FraudClaim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudClaim {
    /// The block.
    pub block: u64,
    /// The old model's block, packed (`e_0..e_15`); zero past `nb`.
    pub old_block: [Fr; ELEMENTS_PER_BLOCK],
    /// The update's block as it is hashed (`q_lo`, `q_hi`, `s`); zero past `nb`.
    pub update: [Fr; 3],
    /// Past `nb`: the update tree's leaf at the block.
    pub update_leaf: Fr,
    /// The candidate's new-model leaf at the block.
    pub new_leaf: Fr,
    /// Siblings under the old root (empty past `nb`).
    pub old_path: Vec<Fr>,
    /// Siblings under the update root.
    pub update_path: Vec<Fr>,
    /// Siblings under the new root.
    pub new_path: Vec<Fr>,
}

/// Why a claim shows nothing (the contract reverts with the same).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The depth is outside 1..=32 or a path has another length.
    #[error("a path's length is not the task's depth {0}")]
    WrongDepth(u32),
    /// The block is past the tree.
    #[error("block {0} is outside the tree")]
    BlockOutsideTree(u64),
    /// A path (with its leaf) does not give the committed root.
    #[error("the {} path does not lead to the committed root", ["old model's", "update's", "new model's"][usize::from(*.0)])]
    WrongPath(u8),
    /// The old block is not packed 32-bit limbs.
    #[error("element {0} of the old block is not 7 packed 32-bit weights")]
    BadOldBlock(u8),
    /// The block is applied exactly.
    #[error("block {0} is applied exactly: no fraud there")]
    NoFraud(u64),
}

/// Decides `claim` against a candidate's roots exactly as `PogoFraud.check` does.
pub fn check(
    old_root: Fr,
    new_root: Fr,
    update_root: Fr,
    nb: u64,
    depth: u32,
    claim: &FraudClaim,
) -> Result<FraudKind, ClaimError> {
    if depth == 0 || depth > 32 {
        return Err(ClaimError::WrongDepth(depth));
    }
    let b = claim.block;
    if u128::from(b) >= 1u128 << depth {
        return Err(ClaimError::BlockOutsideTree(b));
    }
    let d = depth as usize;
    if claim.update_path.len() != d || claim.new_path.len() != d {
        return Err(ClaimError::WrongDepth(depth));
    }
    if b >= nb {
        if root_of(claim.update_leaf, b, &claim.update_path) != update_root {
            return Err(ClaimError::WrongPath(1));
        }
        if root_of(claim.new_leaf, b, &claim.new_path) != new_root {
            return Err(ClaimError::WrongPath(2));
        }
        if claim.update_leaf != Fr::ZERO || claim.new_leaf != Fr::ZERO {
            return Ok(FraudKind::PaddingNotZero);
        }
        return Err(ClaimError::NoFraud(b));
    }
    if claim.old_path.len() != d {
        return Err(ClaimError::WrongDepth(depth));
    }
    let mut limbs = [0u32; BLOCK_WEIGHTS];
    for (k, e) in claim.old_block.iter().enumerate() {
        let bytes = e.to_repr();
        if bytes.as_ref()[28..].iter().any(|&x| x != 0) {
            return Err(ClaimError::BadOldBlock(k as u8));
        }
        for j in 0..LIMBS_PER_ELEMENT {
            let at = 4 * j;
            limbs[LIMBS_PER_ELEMENT * k + j] = u32::from_le_bytes(bytes.as_ref()[at..at + 4].try_into().unwrap());
        }
    }
    if root_of(poseidon::hash(claim.old_block), b, &claim.old_path) != old_root {
        return Err(ClaimError::WrongPath(0));
    }
    if root_of(poseidon::hash(claim.update), b, &claim.update_path) != update_root {
        return Err(ClaimError::WrongPath(1));
    }
    if root_of(claim.new_leaf, b, &claim.new_path) != new_root {
        return Err(ClaimError::WrongPath(2));
    }
    let [lo, hi, scale] = claim.update.map(|x| x.to_repr());
    let wide = |r: &[u8], from: usize| r[from..].iter().any(|&x| x != 0);
    if wide(lo.as_ref(), 28) || wide(hi.as_ref(), 28) || wide(scale.as_ref(), 4) {
        return Ok(FraudKind::BadUpdateEncoding);
    }
    let s = i64::from(u32::from_le_bytes(scale.as_ref()[..4].try_into().unwrap()));
    let mut applied = [0u32; BLOCK_WEIGHTS];
    for (j, slot) in applied.iter_mut().enumerate() {
        let half = if j < 56 { lo.as_ref() } else { hi.as_ref() };
        let i = j % 56;
        let n = i64::from((half[i / 2] >> (4 * (i % 2))) & 0xf);
        match u32::try_from(i64::from(limbs[j]) + s * (n - 8)) {
            Ok(v) => *slot = v,
            Err(_) => return Ok(FraudKind::WeightOutOfRange),
        }
    }
    if pogo_circuits::encoding::block_leaf(&applied) != claim.new_leaf {
        return Ok(FraudKind::NewLeafDiffers);
    }
    Err(ClaimError::NoFraud(b))
}

fn root_of(leaf: Fr, index: u64, path: &[Fr]) -> Fr {
    MerklePath { index, siblings: path.to_vec() }.compute_root(leaf)
}

/// The first block where the candidate's new-model leaves differ from the honest rebuild
/// (`honest`: the leaves of old model + update), if any: the block to build a claim for.
/// Past either list the leaf is 0, as in the tree (a longer list with a nonzero leaf
/// there is a padding fraud).
pub fn first_mismatch(honest: &[Fr], claimed: &[Fr]) -> Option<u64> {
    let at = |leaves: &[Fr], b: usize| leaves.get(b).copied().unwrap_or(Fr::ZERO);
    (0..honest.len().max(claimed.len())).find(|&b| at(honest, b) != at(claimed, b)).map(|b| b as u64)
}

/// Bytes per leaf in a served leaf list.
pub const LEAF_BYTES: usize = 32;

/// A leaf list as miners serve it (`GET /leaves/<new root>`): each leaf's 32-byte
/// little-endian canonical encoding, in block order.
pub fn leaves_to_bytes(leaves: &[Fr]) -> Vec<u8> {
    leaves.iter().flat_map(|leaf| leaf.to_repr().as_ref().to_vec()).collect()
}

/// A served leaf list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeavesError {
    /// Not whole leaves.
    #[error("{0} bytes is not a whole number of {LEAF_BYTES}-byte leaves")]
    Length(usize),
    /// More leaves than a tree of the task's depth holds.
    #[error("{count} leaves do not fit a tree of depth {depth}")]
    TooMany {
        /// Leaves sent.
        count: usize,
        /// The task's depth.
        depth: u32,
    },
    /// A leaf is not a canonical field element.
    #[error("leaf {0} is not a canonical field element")]
    NotCanonical(usize),
}

/// Reads a served leaf list for a tree of `depth` (at most `2^depth` leaves).
pub fn leaves_from_bytes(bytes: &[u8], depth: u32) -> Result<Vec<Fr>, LeavesError> {
    if !bytes.len().is_multiple_of(LEAF_BYTES) {
        return Err(LeavesError::Length(bytes.len()));
    }
    let count = bytes.len() / LEAF_BYTES;
    if depth > 32 || count as u128 > 1u128 << depth {
        return Err(LeavesError::TooMany { count, depth });
    }
    bytes
        .chunks_exact(LEAF_BYTES)
        .enumerate()
        .map(|(i, chunk)| {
            let mut repr = <Fr as PrimeField>::Repr::default();
            repr.as_mut().copy_from_slice(chunk);
            Option::from(Fr::from_repr(repr)).ok_or(LeavesError::NotCanonical(i))
        })
        .collect()
}

/// The block a claim should be about, given the honest trees and the candidate's: the
/// first block where the update does not apply to the old model (a weight would leave
/// `[0, 2^32)`), else the first whose new leaf differs from the honest rebuild
/// (`honest_new`: the leaves of old model + update; `None` when the update does not apply).
pub fn suspect_block(old: &Model, update: &Update, honest_new: Option<&[Fr]>, claimed: &[Fr]) -> Option<u64> {
    match honest_new {
        Some(honest) => first_mismatch(honest, claimed),
        None => {
            update.check_model(old).ok()?;
            (0..update.block_count()).find(|&b| update.apply_block(old, b).is_err())
        }
    }
}

impl FraudClaim {
    /// The claim for block `b`: `old_block` and `update_block` are the old model's and the
    /// update's block (ignored past `nb`), the trees the committed ones (the candidate's
    /// new-model tree rebuilt from the leaves it served).
    pub fn build(
        b: u64,
        old_block: &[u32; BLOCK_WEIGHTS],
        update_block: &UpdateBlock,
        old_tree: &MerkleTree,
        update_tree: &MerkleTree,
        new_tree: &MerkleTree,
        nb: u64,
    ) -> Result<Self, MerkleError> {
        let leaf_at = |tree: &MerkleTree| tree.leaves().get(b as usize).copied().unwrap_or(Fr::ZERO);
        let siblings = |tree: &MerkleTree| tree.open_padded(b).map(|p| p.siblings);
        let padding = b >= nb;
        let (lo, hi) = update_block.packed_nibbles();
        Ok(FraudClaim {
            block: b,
            old_block: if padding {
                [Fr::ZERO; ELEMENTS_PER_BLOCK]
            } else {
                pogo_circuits::encoding::pack_block(old_block)
            },
            update: if padding { [Fr::ZERO; 3] } else { [lo, hi, Fr::from(u64::from(update_block.scale))] },
            update_leaf: if padding { leaf_at(update_tree) } else { Fr::ZERO },
            new_leaf: leaf_at(new_tree),
            old_path: if padding { Vec::new() } else { siblings(old_tree)? },
            update_path: siblings(update_tree)?,
            new_path: siblings(new_tree)?,
        })
    }

    /// The claim as the contract's ABI carries it.
    pub fn to_abi(&self) -> ClaimAbi {
        let u = |x: &Fr| fr_to_u256(x);
        let path = |p: &[Fr]| p.iter().map(u).collect::<Vec<U256>>();
        ClaimAbi {
            blockIndex: self.block,
            oldBlock: self.old_block.each_ref().map(u),
            qLo: u(&self.update[0]),
            qHi: u(&self.update[1]),
            scale: u(&self.update[2]),
            updateLeaf: u(&self.update_leaf),
            newLeaf: u(&self.new_leaf),
            oldPath: path(&self.old_path),
            updatePath: path(&self.update_path),
            newPath: path(&self.new_path),
        }
    }
}

/// The constant words of one Poseidon instance in the contract's layout: the first four
/// full rounds' constants, the partial rounds' constants, the last four full rounds'
/// constants, the MDS matrix, the matrix before the partial rounds, then per partial round
/// `m00 ‖ row ‖ col` of its sparse matrix.
pub fn spec_words(inputs: usize) -> Vec<Fr> {
    let spec = OptimizedSpec::for_inputs(inputs);
    let mut words = Vec::new();
    words.extend(spec.first_full_constants.iter().flatten());
    words.extend(&spec.partial_constants);
    words.extend(spec.second_full_constants.iter().flatten());
    words.extend(spec.mds.iter().flatten());
    words.extend(spec.pre_sparse.iter().flatten());
    for m in &spec.sparse {
        words.push(m.m00);
        words.extend(&m.row);
        words.extend(&m.col);
    }
    words
}

/// Every constant word the contract reads, `H_2`'s, `H_3`'s and `H_16`'s, as 32-byte
/// big-endian words.
pub fn constant_bytes() -> Vec<u8> {
    WIDTHS_INPUTS
        .iter()
        .flat_map(|&n| spec_words(n))
        .flat_map(|x| {
            let mut bytes = x.to_repr().as_ref().to_vec();
            bytes.reverse();
            bytes
        })
        .collect()
}

/// `PogoFraud.CONSTANTS_HASH`.
pub fn constants_hash() -> B256 {
    keccak256(constant_bytes())
}

/// Creation code of the data contracts, in order: each deploys `0x00 ‖ words` (the leading
/// STOP makes it inert as code).
pub fn data_contracts() -> Vec<Vec<u8>> {
    constant_bytes()
        .chunks(32 * CHUNK_WORDS)
        .map(|chunk| {
            let len = chunk.len() + 1;
            let [hi, lo] = u16::try_from(len).expect("a chunk fits EIP-170").to_be_bytes();
            // PUSH2 len, DUP1, PUSH1 12, PUSH1 0, CODECOPY, PUSH1 0, RETURN; then the code.
            let mut code = vec![0x61, hi, lo, 0x80, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3, 0x00];
            code.extend_from_slice(chunk);
            code
        })
        .collect()
}

/// Creation code of `PogoFraud` reading its constants from `data` (the deployed data
/// contracts, in order).
pub fn bytecode(data: &[crate::evm::Address]) -> Vec<u8> {
    use alloy_sol_types::SolValue;
    let mut code = PogoFraud::BYTECODE.to_vec();
    code.extend((data.to_vec(),).abi_encode_params());
    code
}

/// The claim error in revert `data`, as `Name(details)`, if it is one of `PogoFraud`'s.
pub fn decode_revert(data: &[u8]) -> Option<String> {
    use alloy_sol_types::SolInterface;
    use PogoFraud::PogoFraudErrors as E;
    let text = match E::abi_decode(data).ok()? {
        E::NoFraud(e) => format!("NoFraud(block {} is applied exactly)", e.blockIndex),
        E::WrongPath(e) => format!("WrongPath({})", ClaimError::WrongPath(e.tree)),
        E::BadOldBlock(e) => format!("BadOldBlock(element {})", e.element),
        E::WrongDepth(e) => format!("WrongDepth(paths must have {} siblings)", e.depth),
        E::BlockOutsideTree(e) => format!("BlockOutsideTree({})", e.blockIndex),
        E::NotFieldElement(e) => format!("NotFieldElement({})", e.value),
        E::BadConstants(_) => "BadConstants(the data contracts do not hold Poseidon's constants)".into(),
        E::WrongInputCount(e) => format!("WrongInputCount({})", e.count),
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_has_the_word_counts_the_contract_assumes() {
        assert_eq!([2, 3, 16].map(|n| spec_words(n).len()), [384, 512, 3026]);
        assert_eq!(constant_bytes().len(), 3922 * 32);
        let chunks = data_contracts();
        assert_eq!(chunks.len(), 6);
        assert!(chunks.iter().all(|c| c.len() - 12 <= crate::evm::CODE_SIZE_LIMIT));
    }

    #[test]
    fn contract_pins_the_constants_hash() {
        let wanted = format!("CONSTANTS_HASH = {};", constants_hash());
        assert!(crate::rounds::FRAUD_SOURCE.contains(&wanted), "PogoFraud.sol must say {wanted}");
    }

    #[test]
    fn a_leaf_list_round_trips_and_bad_lists_are_refused() {
        let leaves: Vec<Fr> = (0..5u64).map(|i| Fr::from(i * 7 + 1) - Fr::from(9)).collect();
        let bytes = leaves_to_bytes(&leaves);
        assert_eq!(bytes.len(), 5 * LEAF_BYTES);
        assert_eq!(leaves_from_bytes(&bytes, 3).unwrap(), leaves);
        assert_eq!(leaves_from_bytes(&bytes[..33], 3), Err(LeavesError::Length(33)));
        assert_eq!(leaves_from_bytes(&bytes, 2), Err(LeavesError::TooMany { count: 5, depth: 2 }));
        let mut bad = bytes.clone();
        bad[LEAF_BYTES..2 * LEAF_BYTES].fill(0xff);
        assert_eq!(leaves_from_bytes(&bad, 3), Err(LeavesError::NotCanonical(1)));
    }

    #[test]
    fn the_first_mismatch_pads_both_lists_with_zero_leaves() {
        let (a, b) = (Fr::from(3), Fr::from(4));
        assert_eq!(first_mismatch(&[a, b], &[a, b]), None);
        assert_eq!(first_mismatch(&[a, b], &[a, a]), Some(1));
        assert_eq!(first_mismatch(&[a, b], &[a, b, Fr::ZERO]), None, "a zero past the end is the tree's own");
        assert_eq!(first_mismatch(&[a, b], &[a, b, Fr::ZERO, a]), Some(3), "a nonzero padding leaf");
        assert_eq!(first_mismatch(&[a, b], &[a]), Some(1), "a missing leaf is 0");
    }

    #[test]
    fn the_suspect_block_is_the_first_that_overflows_or_differs() {
        use pogo_circuits::encoding::{Nibble, BIAS};
        use pogo_circuits::model::TensorInfo;
        let n = 3 * BLOCK_WEIGHTS;
        let mut weights = vec![BIAS; n];
        weights[2 * BLOCK_WEIGHTS + 5] = u32::MAX - 3;
        let old =
            Model::new(Default::default(), vec![TensorInfo { name: "w".into(), shape: vec![n] }], weights).unwrap();
        let mut blocks = vec![UpdateBlock::zero(); 3];
        blocks[2].scale = 1;
        blocks[2].nibbles[5] = Nibble::from_signed(7).unwrap();
        let overflowing = Update::new(n as u64, blocks).unwrap();
        assert_eq!(suspect_block(&old, &overflowing, None, &[]), Some(2), "u32::MAX - 3 + 7 leaves range");
        let honest: Vec<Fr> = (0..3).map(|b| old.leaf(b)).collect();
        let mut claimed = honest.clone();
        claimed[1] += Fr::ONE;
        let zero = Update::new(n as u64, vec![UpdateBlock::zero(); 3]).unwrap();
        assert_eq!(suspect_block(&old, &zero, Some(&honest), &claimed), Some(1));
        assert_eq!(suspect_block(&old, &zero, Some(&honest), &honest), None);
    }
}
