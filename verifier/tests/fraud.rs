//! `PogoFraud` on the EVM against its native reference (`pogo_verifier::fraud`): its Poseidon
//! equals pogo's native one and circomlib's vectors, and every claim — honest blocks, each
//! field tampered in turn, each kind of fraud — gets the same answer from both.

use pogo_circuits::encoding::{Nibble, UpdateBlock, BIAS, BLOCK_WEIGHTS};
use pogo_circuits::field::{fr_from_decimal, fr_from_hex, Field, Fr};
use pogo_circuits::merkle::MerkleTree;
use pogo_circuits::model::{Model, TensorInfo};
use pogo_circuits::poseidon;
use pogo_circuits::update::Update;
use pogo_verifier::evm::{fr_to_u256, u256_to_fr, Address, Evm, EvmError, Fork, U256};
use pogo_verifier::fraud::{self, check, ClaimError, FraudClaim, FraudKind, PogoFraud};
use rand::{Rng, SeedableRng};

struct Chain {
    evm: Evm,
    fraud: Address,
}

impl Chain {
    fn new() -> Self {
        let mut evm = Evm::new(Fork::Prague);
        let from = Address::repeat_byte(7);
        let deployed =
            pogo_verifier::rounds::deploy_contracts(|_, code| evm.deploy(from, code, U256::ZERO).map(|(a, _)| a))
                .unwrap();
        Chain { evm, fraud: deployed.fraud }
    }

    fn poseidon(&mut self, inputs: &[Fr]) -> Fr {
        let call = PogoFraud::poseidonCall { inputs: inputs.iter().map(fr_to_u256).collect() };
        let out = self.evm.view(Address::ZERO, self.fraud, alloy_sol_types::SolCall::abi_encode(&call)).unwrap();
        u256_to_fr(U256::from_be_slice(&out.output)).unwrap()
    }

    /// The contract's answer to a claim, and the gas of a transaction making it.
    fn check(&mut self, f: &Fixture, new_root: Fr, claim: &FraudClaim) -> (Result<FraudKind, String>, u64) {
        let call = PogoFraud::checkCall {
            oldRoot: fr_to_u256(&f.old_root),
            newRoot: fr_to_u256(&new_root),
            updateRoot: fr_to_u256(&f.update_root),
            nb: f.nb,
            depth: f.depth,
            c: claim.to_abi(),
        };
        let data = alloy_sol_types::SolCall::abi_encode(&call);
        match self.evm.call(Address::repeat_byte(9), self.fraud, data, U256::ZERO) {
            Ok(receipt) => {
                let kind = FraudKind::from_code(receipt.output[31]).expect("a known kind");
                (Ok(kind), receipt.gas_used)
            }
            Err(EvmError::Reverted { data, .. }) => {
                (Err(fraud::decode_revert(&data).unwrap_or_else(|| format!("unknown revert {data:?}"))), 0)
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// An old model of `nb` blocks, an honest update of it and the trees at `depth`.
struct Fixture {
    nb: u64,
    depth: u32,
    old: Model,
    update: Update,
    old_tree: MerkleTree,
    update_tree: MerkleTree,
    new_tree: MerkleTree,
    old_root: Fr,
    update_root: Fr,
}

impl Fixture {
    fn new(nb: u64, depth: u32, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // The last block is partly padding: 5 weights short of nb full blocks.
        let n = nb as usize * BLOCK_WEIGHTS - 5;
        let weights = (0..n).map(|_| BIAS.wrapping_add(rng.gen_range(0..1_000_000)) - 500_000).collect();
        let old =
            Model::new(Default::default(), vec![TensorInfo { name: "w".into(), shape: vec![n] }], weights).unwrap();
        // Padding weights take no change (the update would not be valid otherwise).
        let blocks = (0..nb)
            .map(|blk| UpdateBlock {
                scale: rng.gen_range(0..1000),
                nibbles: std::array::from_fn(|j| {
                    let real = (blk as usize) * BLOCK_WEIGHTS + j < n;
                    if real {
                        Nibble::new(rng.gen_range(0..16)).unwrap()
                    } else {
                        Nibble::ZERO
                    }
                }),
            })
            .collect();
        let update = Update::new(n as u64, blocks).unwrap();
        let new = update.apply(&old).unwrap();
        let old_tree = old.reference_tree(depth).unwrap();
        let update_tree = update.reference_tree(depth).unwrap();
        let new_tree = new.reference_tree(depth).unwrap();
        let (old_root, update_root) = (old_tree.root(), update_tree.root());
        Fixture { nb, depth, old, update, old_tree, update_tree, new_tree, old_root, update_root }
    }

    /// The new-model tree with leaf `b` replaced (a miner that altered block `b`).
    fn tampered(&self, b: u64, leaf: Fr) -> MerkleTree {
        let mut leaves = self.new_tree.leaves().to_vec();
        if leaves.len() <= b as usize {
            leaves.resize(b as usize + 1, Fr::ZERO);
        }
        leaves[b as usize] = leaf;
        MerkleTree::build(leaves, self.depth).unwrap()
    }

    fn claim(&self, b: u64, new_tree: &MerkleTree) -> FraudClaim {
        let update_block = self.update.block(b);
        let old_block = if b < self.nb { self.old.block(b) } else { [BIAS; BLOCK_WEIGHTS] };
        FraudClaim::build(b, &old_block, &update_block, &self.old_tree, &self.update_tree, new_tree, self.nb).unwrap()
    }

    fn native(&self, new_root: Fr, claim: &FraudClaim) -> Result<FraudKind, ClaimError> {
        check(self.old_root, new_root, self.update_root, self.nb, self.depth, claim)
    }
}

fn rng_fr(rng: &mut impl Rng) -> Fr {
    Fr::random(&mut *rng)
}

#[test]
fn poseidon_on_chain_equals_native_on_random_inputs() {
    let mut chain = Chain::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for n in [2usize, 3, 16] {
        for _ in 0..4 {
            let inputs: Vec<Fr> = (0..n).map(|_| rng_fr(&mut rng)).collect();
            assert_eq!(chain.poseidon(&inputs), poseidon::hash_slice(&inputs).unwrap(), "H_{n}");
        }
    }
}

#[test]
fn poseidon_on_chain_reproduces_circomlib_vectors() {
    let mut chain = Chain::new();
    let text = include_str!("../../circuits/tests/vectors/poseidon_circomlib.json");
    let vectors: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut seen = 0;
    for v in vectors["vectors"].as_array().unwrap() {
        let inputs: Vec<Fr> =
            v["inputs"].as_array().unwrap().iter().map(|x| fr_from_decimal(x.as_str().unwrap()).unwrap()).collect();
        if ![2, 3, 16].contains(&inputs.len()) {
            continue;
        }
        assert_eq!(chain.poseidon(&inputs), fr_from_hex(v["output"].as_str().unwrap()).unwrap(), "{v}");
        seen += 1;
    }
    assert!(seen >= 3, "circomlib vectors for H_2, H_3 and H_16: {seen}");
    // DESIGN §2's vector.
    let h = chain.poseidon(&[Fr::from(1), Fr::from(2)]);
    assert_eq!(h, fr_from_hex("0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a").unwrap());
}

#[test]
fn a_tampered_block_is_proven_and_every_tampered_claim_is_refused() {
    let f = Fixture::new(40, 6, 2);
    let mut chain = Chain::new();
    let b = 17;
    // A miner altered weight 3 of block 17 of its new model.
    let mut altered = f.update.apply_block(&f.old, b).unwrap();
    altered[3] ^= 1;
    let bad = f.tampered(b, pogo_circuits::encoding::block_leaf(&altered));
    let claim = f.claim(b, &bad);
    assert_eq!(f.native(bad.root(), &claim), Ok(FraudKind::NewLeafDiffers));
    assert_eq!(chain.check(&f, bad.root(), &claim).0, Ok(FraudKind::NewLeafDiffers));

    let refused = |chain: &mut Chain, claim: &FraudClaim, native: ClaimError, name: &str| {
        assert_eq!(f.native(bad.root(), claim), Err(native.clone()));
        let (answer, _) = chain.check(&f, bad.root(), claim);
        let text = answer.expect_err("refused");
        assert!(text.starts_with(name), "{text} for {native}");
    };
    // Another block, honest, with correct paths: nothing to prove.
    refused(&mut chain, &f.claim(16, &bad), ClaimError::NoFraud(16), "NoFraud");
    // The right block with another block's paths.
    let mut other = claim.clone();
    other.new_path = f.claim(16, &bad).new_path;
    refused(&mut chain, &other, ClaimError::WrongPath(2), "WrongPath");
    // A sibling changed in each path.
    for (tree, which) in [(0u8, 0usize), (1, 1), (2, 2)] {
        let mut c = claim.clone();
        let path = match which {
            0 => &mut c.old_path,
            1 => &mut c.update_path,
            _ => &mut c.new_path,
        };
        path[3] += Fr::ONE;
        refused(&mut chain, &c, ClaimError::WrongPath(tree), "WrongPath");
    }
    // A preimage that does not hash to the committed leaf: the old block, the update block.
    let mut c = claim.clone();
    c.old_block[5] += Fr::ONE;
    refused(&mut chain, &c, ClaimError::WrongPath(0), "WrongPath");
    let mut c = claim.clone();
    c.update[2] += Fr::ONE;
    refused(&mut chain, &c, ClaimError::WrongPath(1), "WrongPath");
    // The honest new leaf in place of the committed one.
    let mut c = claim.clone();
    c.new_leaf = f.new_tree.leaves()[b as usize];
    refused(&mut chain, &c, ClaimError::WrongPath(2), "WrongPath");
    // Another block index with this block's preimages and paths.
    let mut c = claim.clone();
    c.block = b + 2;
    refused(&mut chain, &c, ClaimError::WrongPath(0), "WrongPath");
    // Paths of the wrong length.
    let mut c = claim.clone();
    c.update_path.pop();
    refused(&mut chain, &c, ClaimError::WrongDepth(6), "WrongDepth");
    // A block outside the tree.
    let mut c = claim.clone();
    c.block = 64;
    refused(&mut chain, &c, ClaimError::BlockOutsideTree(64), "BlockOutsideTree");
    // The honest candidate: no block of it can be proven wrong.
    for block in [0, b, f.nb - 1, f.nb, 63] {
        let c = f.claim(block, &f.new_tree);
        assert_eq!(f.native(f.new_tree.root(), &c), Err(ClaimError::NoFraud(block)));
        let (answer, _) = chain.check(&f, f.new_tree.root(), &c);
        assert!(answer.unwrap_err().starts_with("NoFraud"));
    }
}

#[test]
fn padding_leaves_past_nb_must_be_zero() {
    let f = Fixture::new(5, 3, 3);
    let mut chain = Chain::new();
    let bad = f.tampered(6, Fr::from(42));
    let claim = f.claim(6, &bad);
    assert_eq!(f.native(bad.root(), &claim), Ok(FraudKind::PaddingNotZero));
    assert_eq!(chain.check(&f, bad.root(), &claim).0, Ok(FraudKind::PaddingNotZero));
}

#[test]
fn an_invalid_update_block_is_fraud_whatever_the_new_leaf() {
    let f = Fixture::new(6, 3, 4);
    let mut chain = Chain::new();
    let b = 2u64;
    // A committed update leaf whose scale is 2^32 (no 32-bit scale): the update tree the
    // miner committed holds it; nothing it applies to can be right.
    let (lo, hi) = f.update.block(b).packed_nibbles();
    let wide = [lo, hi, Fr::from(1u64 << 32)];
    let mut leaves = f.update_tree.leaves().to_vec();
    leaves[b as usize] = poseidon::hash(wide);
    let update_tree = MerkleTree::build(leaves, f.depth).unwrap();
    let g = Fixture { update_root: update_tree.root(), update_tree, ..Fixture::new(6, 3, 4) };
    let mut claim = g.claim(b, &g.new_tree);
    claim.update = wide;
    claim.update_path = g.update_tree.open(b).unwrap().siblings;
    assert_eq!(g.native(g.new_tree.root(), &claim), Ok(FraudKind::BadUpdateEncoding));
    assert_eq!(chain.check(&g, g.new_tree.root(), &claim).0, Ok(FraudKind::BadUpdateEncoding));

    // A weight pushed below 0: an update block that the quantizer would never make.
    let mut block = UpdateBlock::zero();
    block.scale = u32::MAX;
    block.nibbles[0] = Nibble::new(0).unwrap(); // q = -8
    let mut leaves = f.update_tree.leaves().to_vec();
    leaves[b as usize] = block.leaf();
    let update_tree = MerkleTree::build(leaves, f.depth).unwrap();
    let h = Fixture { update_root: update_tree.root(), update_tree, ..Fixture::new(6, 3, 4) };
    let old_block = h.old.block(b);
    let claim = FraudClaim::build(b, &old_block, &block, &h.old_tree, &h.update_tree, &h.new_tree, h.nb).unwrap();
    assert_eq!(h.native(h.new_tree.root(), &claim), Ok(FraudKind::WeightOutOfRange));
    assert_eq!(chain.check(&h, h.new_tree.root(), &claim).0, Ok(FraudKind::WeightOutOfRange));
}

#[test]
fn fraud_proof_gas_at_depth_10_and_20() {
    let mut chain = Chain::new();
    for depth in [10u32, 20] {
        let f = Fixture::new(64, depth, 5);
        let mut altered = f.update.apply_block(&f.old, 9).unwrap();
        altered[100] ^= 1 << 7;
        let bad = f.tampered(9, pogo_circuits::encoding::block_leaf(&altered));
        let (answer, gas) = chain.check(&f, bad.root(), &f.claim(9, &bad));
        assert_eq!(answer, Ok(FraudKind::NewLeafDiffers));
        // Gas is recorded by `cargo bench -p pogo-prover --bench gas`; this only shows it.
        println!("fraud check at D = {depth}: {gas} gas");
        assert!(gas < 30_000_000);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// Random models, random single-block tamperings (a changed weight in a real block, or a
    /// non-zero padding leaf): the tampered block is provable, on chain and natively, and
    /// no other block is.
    #[test]
    fn every_single_block_tampering_is_provable_and_no_honest_block_is(
        nb in 2u64..24,
        extra_depth in 0u32..2,
        seed in proptest::prelude::any::<u64>(),
        pick in proptest::prelude::any::<u64>(),
        other in proptest::prelude::any::<u64>(),
        weight in 0usize..BLOCK_WEIGHTS - 5,
    ) {
        let depth = pogo_circuits::merkle::default_depth(nb) + extra_depth;
        let f = Fixture::new(nb, depth, seed);
        let positions = 1u64 << depth;
        let b = pick % positions;
        let leaf = if b < nb {
            let mut altered = f.update.apply_block(&f.old, b).unwrap();
            altered[weight] ^= 1;
            pogo_circuits::encoding::block_leaf(&altered)
        } else {
            Fr::from(pick | 1)
        };
        let bad = f.tampered(b, leaf);
        let mut chain = Chain::new();
        let claim = f.claim(b, &bad);
        let native = f.native(bad.root(), &claim);
        proptest::prop_assert!(native.is_ok(), "block {b}: {native:?}");
        proptest::prop_assert_eq!(chain.check(&f, bad.root(), &claim).0, Ok(native.unwrap()));
        let c = other % positions;
        if c != b {
            let honest = f.claim(c, &bad);
            proptest::prop_assert_eq!(f.native(bad.root(), &honest), Err(ClaimError::NoFraud(c)));
            proptest::prop_assert!(chain.check(&f, bad.root(), &honest).0.unwrap_err().starts_with("NoFraud"));
        }
    }
}
