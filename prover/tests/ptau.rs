//! The `.ptau` importer: a file written from a known setup imports to exactly that setup; a
//! real snarkjs ceremony file gives keys whose proofs verify; every malformed or
//! inconsistent file is refused with its reason.

use std::path::PathBuf;
use std::process::Command;

use halo2_base::halo2_proofs::halo2curves::bn256::{G1Affine, G2Affine};
use halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;
use halo2_base::halo2_proofs::poly::commitment::{Params, ParamsProver};
use pogo_circuits::config::CircuitConfig;
use pogo_circuits::encoding::{Nibble, UpdateBlock, BIAS, BLOCK_WEIGHTS};
use pogo_circuits::model::{Model, TensorInfo};
use pogo_circuits::update::Update;
use pogo_prover::prove::{keygen, prove};
use pogo_prover::ptau::{import, PtauError};
use pogo_prover::setup::{dev_setup, to_bytes, Setup};
use pogo_prover::witness::{assemble, round_trees};

fn g1_bytes(p: &G1Affine) -> Vec<u8> {
    [p.x.to_raw_bytes(), p.y.to_raw_bytes()].concat()
}

fn g2_bytes(p: &G2Affine) -> Vec<u8> {
    [p.x.c0.to_raw_bytes(), p.x.c1.to_raw_bytes(), p.y.c0.to_raw_bytes(), p.y.c1.to_raw_bytes()].concat()
}

fn section(id: u32, data: &[u8]) -> Vec<u8> {
    [id.to_le_bytes().to_vec(), (data.len() as u64).to_le_bytes().to_vec(), data.to_vec()].concat()
}

/// A ptau file in snarkjs's layout for a setup's powers (G1 and the first two G2 powers).
fn ptau_of(setup: &Setup, g1: &[G1Affine]) -> Vec<u8> {
    let q = hex::decode("30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47").unwrap();
    let mut header = 32u32.to_le_bytes().to_vec();
    header.extend(q.iter().rev());
    header.extend(setup.k().to_le_bytes());
    header.extend(setup.k().to_le_bytes());
    let tau_g1: Vec<u8> = g1.iter().flat_map(g1_bytes).collect();
    let tau_g2 = [g2_bytes(&setup.g2()), g2_bytes(&setup.s_g2())].concat();
    let mut file = b"ptau".to_vec();
    file.extend(1u32.to_le_bytes());
    file.extend(3u32.to_le_bytes());
    file.extend(section(1, &header));
    file.extend(section(2, &tau_g1));
    file.extend(section(3, &tau_g2));
    file
}

#[test]
fn a_written_setup_imports_to_exactly_itself() {
    let setup = dev_setup(5, 3);
    let file = ptau_of(&setup, setup.get_g());
    assert_eq!(to_bytes(&import(&file, 5).unwrap()), to_bytes(&setup));
    // A smaller k takes a prefix of the powers.
    assert_eq!(import(&file, 3).unwrap().get_g(), &setup.get_g()[..8]);
}

#[test]
fn malformed_and_inconsistent_files_are_refused() {
    let setup = dev_setup(4, 5);
    let g = setup.get_g().to_vec();
    let good = ptau_of(&setup, &g);
    let err = |bytes: &[u8], k: u32| import(bytes, k).expect_err("refused");

    let mut magic = good.clone();
    magic[0] = b'x';
    assert!(matches!(err(&magic, 4), PtauError::Magic(_)));
    let mut version = good.clone();
    version[4] = 2;
    assert_eq!(err(&version, 4), PtauError::Version(2));
    assert!(matches!(err(&good[..good.len() - 10], 4), PtauError::Truncated(_)));
    assert!(matches!(err(&good[..6], 4), PtauError::Truncated(_)));
    assert_eq!(err(&good, 5), PtauError::TooSmall { power: 4, k: 5 });
    let mut other_curve = good.clone();
    other_curve[12 + 12 + 4] ^= 1; // first byte of the modulus
    assert!(matches!(err(&other_curve, 4), PtauError::Curve(32)));

    // Section 2 starts after magic/version/count (12), section 1 (12 + 44) and its own header (12).
    let g1_start = 12 + 12 + 44 + 12;
    let mut off_curve = good.clone();
    off_curve[g1_start + 64 * 3 + 32] ^= 1; // y of point 3
    assert!(matches!(err(&off_curve, 4), PtauError::NotOnCurve("G1", 3) | PtauError::NotCanonical("G1", 3)));
    let mut not_canonical = good.clone();
    not_canonical[g1_start + 64 * 2..g1_start + 64 * 2 + 32].fill(0xff);
    assert_eq!(err(&not_canonical, 4), PtauError::NotCanonical("G1", 2));

    let mut swapped = g.clone();
    swapped.swap(2, 3);
    assert_eq!(err(&ptau_of(&setup, &swapped), 4), PtauError::Inconsistent);
    let mut shifted = g.clone();
    shifted.rotate_left(1);
    assert_eq!(err(&ptau_of(&setup, &shifted), 4), PtauError::Generator("G1"));
    let missing: Vec<u8> = good[..12 + 12 + 44].to_vec();
    let mut missing = missing;
    missing[8] = 1; // one section only
    assert!(matches!(err(&missing, 4), PtauError::MissingSection(2, _)));
}

/// `target/test-fixtures/pot16.ptau`, made by snarkjs through `scripts/ptau` if absent.
fn snarkjs_ptau() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("target/test-fixtures/pot16.ptau");
    if !path.exists() {
        let status = Command::new(root.join("scripts/ptau/make-test-ptau.sh"))
            .arg(&path)
            .status()
            .expect("scripts/ptau/make-test-ptau.sh runs (needs node and npm)");
        assert!(status.success(), "making the snarkjs ptau fixture failed");
    }
    path
}

#[test]
fn a_snarkjs_ceremony_gives_keys_whose_proofs_verify() {
    let bytes = std::fs::read(snarkjs_ptau()).unwrap();
    let shape = CircuitConfig::new(1, 1).unwrap().shape().unwrap();
    assert!(shape.k <= 16, "the fixture has 2^16 powers");
    let setup = import(&bytes, shape.k).unwrap();
    assert_ne!(setup.s_g2(), dev_setup(shape.k, 0).s_g2());
    let keys = keygen(&setup, &shape).unwrap();

    let n = BLOCK_WEIGHTS + 30;
    let old =
        Model::new(Default::default(), vec![TensorInfo { name: "w".into(), shape: vec![n] }], vec![BIAS; n]).unwrap();
    let mut block = UpdateBlock { scale: 3, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] };
    block.nibbles[5] = Nibble::from_signed(-2).unwrap();
    let update = Update::new(n as u64, vec![block.clone(), UpdateBlock::zero()]).unwrap();
    let new = update.apply(&old).unwrap();
    let trees = round_trees(&old, &new, &update, 1, &()).unwrap();
    let (inputs, samples) = assemble(&old, &new, &update, &trees, &[0]).unwrap();
    let proof = prove(&setup, &keys, &inputs, &samples).unwrap();
    pogo_verifier::proof::verify(setup.verifier_params(), keys.vk(), &inputs, 1, &proof).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Corrupted ceremony files are refused, never a panic.
    #[test]
    fn importer_never_panics_on_corrupt_files(noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..64), at in proptest::prelude::any::<usize>()) {
        let setup = dev_setup(3, 9);
        let mut file = ptau_of(&setup, setup.get_g());
        for (i, b) in noise.iter().enumerate() {
            let len = file.len();
            file[(at.wrapping_add(i * 613)) % len] ^= b | 1;
        }
        let _ = import(&file, 3);
        let _ = import(&noise, 3);
    }
}
