//! Real proofs of `UpdateCircuit{D, S}` (SHPLONK, KZG, Keccak transcript): honest statements
//! prove and verify; tampered proofs, other public inputs, another configuration's key and
//! unsatisfying witnesses do not.

use pogo_circuits::config::CircuitConfig;
use pogo_circuits::encoding::BLOCK_WEIGHTS;
use pogo_circuits::field::{Field, Fr};
use pogo_circuits::model::Model;
use pogo_circuits::sampling::sample_indices;
use pogo_circuits::update::Update;
use pogo_prover::audit::synthetic_round;
use pogo_prover::prove::{keygen, prove, Keys};
use pogo_prover::setup::{dev_setup, Setup};
use pogo_prover::witness::{assemble, round_trees};
use pogo_verifier::proof::{verify, ProofError};

struct Round {
    old: Model,
    new: Model,
    update: Update,
}

/// A model of `blocks` blocks (the last partial) and a random valid update.
fn round(blocks: u64, seed: u64) -> Round {
    let (old, new, update) = synthetic_round(blocks, seed);
    Round { old, new, update }
}

fn setup_and_keys(depth: u32, samples: usize) -> (Setup, Keys) {
    let shape = CircuitConfig::new(depth, samples).unwrap().shape().unwrap();
    let setup = dev_setup(shape.k, 42);
    let keys = keygen(&setup, &shape).unwrap();
    (setup, keys)
}

#[test]
fn honest_proofs_verify_and_every_tampering_fails() {
    let (setup, keys) = setup_and_keys(3, 2);
    let r = round(5, 1); // nb = 5: not a power of two
    let trees = round_trees(&r.old, &r.new, &r.update, 3, &()).unwrap();
    let indices = sample_indices(&[9; 32], 2, r.old.block_count());
    let (inputs, samples) = assemble(&r.old, &r.new, &r.update, &trees, &indices).unwrap();
    let proof = prove(&setup, &keys, &inputs, &samples).unwrap();
    verify(&setup, keys.vk(), &inputs, 2, &proof).expect("honest proof verifies");

    // Any public input changed.
    for position in 0..inputs.to_instances().len() {
        let mut other = inputs.clone();
        match position {
            0 => other.old_root += Fr::ONE,
            1 => other.new_root += Fr::ONE,
            2 => other.update_root += Fr::ONE,
            3 => other.blocks += 1,
            p => other.indices[p - 4] = (other.indices[p - 4] + 1) % 5,
        }
        assert!(verify(&setup, keys.vk(), &other, 2, &proof).is_err(), "public input {position}");
    }
    // A tampered proof: flipped bytes at the start, middle and end.
    for at in [0, proof.len() / 2, proof.len() - 1] {
        let mut bad = proof.clone();
        bad[at] ^= 1;
        assert!(verify(&setup, keys.vk(), &inputs, 2, &bad).is_err(), "byte {at}");
    }
    assert!(matches!(verify(&setup, keys.vk(), &inputs, 2, &proof[..proof.len() - 5]), Err(ProofError::Malformed(_))));
    assert!(matches!(verify(&setup, keys.vk(), &inputs, 3, &proof), Err(ProofError::InstanceCount { .. })));

    // Another configuration's key (same k, other D): refused.
    let (other_setup, other_keys) = setup_and_keys(4, 2);
    assert_eq!(other_keys.shape.k, keys.shape.k, "same k, so only the key differs");
    assert!(verify(&other_setup, other_keys.vk(), &inputs, 2, &proof).is_err());
}

#[test]
fn an_unsatisfying_witness_gives_no_valid_proof() {
    let (setup, keys) = setup_and_keys(1, 1);
    let r = round(2, 2);
    let trees = round_trees(&r.old, &r.new, &r.update, 1, &()).unwrap();
    let (inputs, mut samples) = assemble(&r.old, &r.new, &r.update, &trees, &[1]).unwrap();
    samples[0].new_limbs[3] += Fr::ONE;
    // halo2 may refuse outright or emit a proof; either way nothing may verify.
    if let Ok(proof) = prove(&setup, &keys, &inputs, &samples) {
        assert!(verify(&setup, keys.vk(), &inputs, 1, &proof).is_err());
    }
}

#[test]
fn assembly_refuses_bad_statements_by_name() {
    let r = round(3, 3);
    let trees = round_trees(&r.old, &r.new, &r.update, 2, &()).unwrap();
    let err = assemble(&r.old, &r.new, &r.update, &trees, &[3]).err().unwrap();
    assert!(err.to_string().contains("not below nb = 3"), "{err}");
    let mut weights = r.new.weights().to_vec();
    weights[BLOCK_WEIGHTS + 4] ^= 1;
    let wrong_new = r.new.with_weights(weights).unwrap();
    let trees = round_trees(&r.old, &wrong_new, &r.update, 2, &()).unwrap();
    let err = assemble(&r.old, &wrong_new, &r.update, &trees, &[1]).err().unwrap();
    assert!(err.to_string().contains("block 1") && err.to_string().contains("weight 4"), "{err}");
    assert!(round_trees(&r.old, &r.new, &r.update, 1, &()).is_err(), "3 blocks do not fit depth 1");
}

#[test]
fn key_folders_round_trip_and_refuse_corruption_and_other_keys() {
    use pogo_verifier::keys::{KeysError, ProofFile, SetupOrigin, VK_FILE};
    let dir = tempfile::tempdir().unwrap();
    let (setup, keys) = setup_and_keys(2, 1);
    let manifest =
        pogo_prover::keys::write(dir.path(), &setup, SetupOrigin::DevSeededInsecure { seed: 42 }, &keys).unwrap();
    let (_, loaded_setup, loaded) = pogo_prover::keys::load(dir.path()).unwrap();
    assert_eq!(loaded.vk().transcript_repr(), keys.vk().transcript_repr());

    let r = round(3, 4);
    let trees = round_trees(&r.old, &r.new, &r.update, 2, &()).unwrap();
    let (inputs, samples) = assemble(&r.old, &r.new, &r.update, &trees, &[2]).unwrap();
    let proof = prove(&loaded_setup, &loaded, &inputs, &samples).unwrap();
    let file = ProofFile::new("d2-s1".into(), manifest.sha256.vk.clone(), &inputs, &proof);
    assert_eq!(file.verify_with(dir.path()).unwrap(), inputs);

    // A proof naming another key is refused before any arithmetic.
    let mut other = file.clone();
    other.vk_sha256 = "00".repeat(32);
    assert!(matches!(other.verify_with(dir.path()), Err(KeysError::KeyMismatch { .. })));
    // Tampered public inputs in the file.
    let mut moved = file.clone();
    moved.indices = vec![1];
    assert!(matches!(moved.verify_with(dir.path()), Err(KeysError::Proof(_))));
    // A corrupted key file is caught by its hash.
    let vk_path = dir.path().join(VK_FILE);
    let mut vk = std::fs::read(&vk_path).unwrap();
    vk[40] ^= 1;
    std::fs::write(&vk_path, vk).unwrap();
    assert!(matches!(file.verify_with(dir.path()), Err(KeysError::Hash { .. })));
}

/// Re-derives siblings and roots after a sample's witness was edited, so only the edited
/// values' own constraints can object.
fn make_consistent(
    r: &Round,
    depth: u32,
    index: u64,
    w: &mut pogo_circuits::update_circuit::SampleWitness,
) -> pogo_circuits::update_circuit::PublicInputs {
    use pogo_circuits::merkle::MerkleTree;
    use pogo_circuits::update_circuit::{limbs_leaf, nibbles_leaf, PublicInputs};
    let nb = r.old.block_count();
    let mut leaves = [
        (0..nb).map(|b| r.old.leaf(b)).collect::<Vec<_>>(),
        (0..nb).map(|b| r.new.leaf(b)).collect(),
        (0..nb).map(|b| r.update.leaf(b)).collect(),
    ];
    leaves[0][index as usize] = limbs_leaf(&w.old_limbs);
    leaves[1][index as usize] = limbs_leaf(&w.new_limbs);
    leaves[2][index as usize] = nibbles_leaf(&w.nibbles, w.scale);
    let trees = leaves.map(|l| MerkleTree::build(l, depth).unwrap());
    w.old_siblings = trees[0].open(index).unwrap().siblings;
    w.new_siblings = trees[1].open(index).unwrap().siblings;
    w.update_siblings = trees[2].open(index).unwrap().siblings;
    PublicInputs {
        old_root: trees[0].root(),
        new_root: trees[1].root(),
        update_root: trees[2].root(),
        blocks: nb,
        indices: vec![index],
    }
}

#[test]
fn out_of_range_witnesses_give_no_valid_proof() {
    let (setup, keys) = setup_and_keys(1, 1);
    let r = round(2, 5);
    let trees = round_trees(&r.old, &r.new, &r.update, 1, &()).unwrap();
    let (_, honest) = assemble(&r.old, &r.new, &r.update, &trees, &[0]).unwrap();
    type Edit = Box<dyn Fn(&mut pogo_circuits::update_circuit::SampleWitness)>;
    let edits: [(&str, Edit); 3] = [
        // (16, n-1) packs like (0, n): same update leaf.
        (
            "nibble 16",
            Box::new(|w| {
                w.nibbles[10] = Fr::from(16);
                w.nibbles[11] = Fr::from(4);
                for j in [10, 11] {
                    w.new_limbs[j] = w.old_limbs[j] + w.scale * (w.nibbles[j] - Fr::from(8));
                }
            }),
        ),
        (
            "scale 2^32",
            Box::new(|w| {
                w.scale = Fr::from(1u64 << 32);
                w.nibbles.iter_mut().for_each(|n| *n = Fr::from(8));
                w.new_limbs = w.old_limbs.clone();
            }),
        ),
        (
            "wrapped u_new",
            Box::new(|w| {
                w.old_limbs[9] = Fr::from((1u64 << 32) - 2);
                w.scale = Fr::ONE;
                w.nibbles.iter_mut().for_each(|n| *n = Fr::from(8));
                w.nibbles[9] = Fr::from(15);
                w.new_limbs = w.old_limbs.clone();
                w.new_limbs[9] = Fr::from(5);
            }),
        ),
    ];
    for (name, edit) in edits {
        let mut w = honest[0].clone();
        edit(&mut w);
        let inputs = make_consistent(&r, 1, 0, &mut w);
        if let Ok(proof) = prove(&setup, &keys, &inputs, &[w]) {
            assert!(verify(&setup, keys.vk(), &inputs, 1, &proof).is_err(), "{name}");
        }
    }
}

#[test]
fn random_proof_bytes_are_refused_without_panicking() {
    use rand::{Rng, SeedableRng};
    let (setup, keys) = setup_and_keys(1, 1);
    let r = round(2, 6);
    let trees = round_trees(&r.old, &r.new, &r.update, 1, &()).unwrap();
    let (inputs, samples) = assemble(&r.old, &r.new, &r.update, &trees, &[1]).unwrap();
    let proof = prove(&setup, &keys, &inputs, &samples).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for len in [32, 64, proof.len(), proof.len() + 32] {
        let noise: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        assert!(verify(&setup, keys.vk(), &inputs, 1, &noise).is_err(), "{len} random bytes");
    }
    for _ in 0..8 {
        let mut bad = proof.clone();
        let at = rng.gen_range(0..bad.len());
        bad[at] = rng.gen();
        if bad != proof {
            assert!(verify(&setup, keys.vk(), &inputs, 1, &bad).is_err());
        }
    }
}

/// The fuzzing issue's A and B: a key folder whose manifest declares 10^9 advice columns,
/// or whose `setup.bin` declares 2^55 (or 2^40) powers, with every file hash consistent, is
/// refused with an error naming the file — before any library call allocates by them (an
/// allocation failure aborts the process, where no test could even observe it).
#[test]
fn key_folders_declaring_huge_sizes_are_refused_before_any_allocation() {
    use pogo_verifier::keys::{sha256_hex, KeysError, Manifest, SetupOrigin, MANIFEST_FILE, SETUP_FILE};
    let dir = tempfile::tempdir().unwrap();
    let (setup, keys) = setup_and_keys(2, 1);
    pogo_prover::keys::write(dir.path(), &setup, SetupOrigin::DevSeededInsecure { seed: 42 }, &keys).unwrap();
    let manifest_path = dir.path().join(MANIFEST_FILE);
    let honest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let write_manifest =
        |m: &serde_json::Value| std::fs::write(&manifest_path, serde_json::to_vec(m).unwrap()).unwrap();

    // A: 10^9 advice columns (the file hashes untouched, so only the shape check can stop it).
    let mut wide = honest.clone();
    wide["circuit_params"]["num_advice_per_phase"] = serde_json::json!([1_000_000_000u64]);
    write_manifest(&wide);
    let err = Manifest::load(dir.path()).unwrap_err();
    assert!(matches!(err, KeysError::Malformed { .. }) && err.to_string().contains("num_advice_per_phase"), "{err}");
    assert!(pogo_prover::keys::load(dir.path()).is_err());

    // B: a setup file declaring a huge k, its hash in the manifest so that it is "genuine".
    for bytes in [55u32.to_le_bytes().to_vec(), [40u32.to_le_bytes().to_vec(), vec![0; 60]].concat()] {
        std::fs::write(dir.path().join(SETUP_FILE), &bytes).unwrap();
        let mut lying = honest.clone();
        lying["sha256"]["setup"] = sha256_hex(&bytes).into();
        write_manifest(&lying);
        let manifest = Manifest::load(dir.path()).unwrap();
        let err = manifest.load_setup(dir.path()).unwrap_err();
        assert!(matches!(err, KeysError::Malformed { .. }) && err.to_string().contains("declares"), "{err}");
    }
    // A setup of the right k and size whose point is off the curve.
    let mut bytes = pogo_prover::setup::to_bytes(&setup);
    bytes[4 + 64] ^= 1;
    std::fs::write(dir.path().join(SETUP_FILE), &bytes).unwrap();
    let mut off_curve = honest.clone();
    off_curve["sha256"]["setup"] = sha256_hex(&bytes).into();
    write_manifest(&off_curve);
    let err = Manifest::load(dir.path()).unwrap().load_setup(dir.path()).unwrap_err();
    assert!(matches!(err, KeysError::Malformed { .. }), "{err}");
}
