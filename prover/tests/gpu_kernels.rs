//! The GPU commitment kernels' own C code, built for the host, against pogo's native
//! Poseidon and trees and circomlib's vectors (no GPU needed); with the `gpu` feature and
//! NVRTC present, the same source compiled to PTX for Hopper.

use pogo_circuits::encoding::{block_count, block_leaf, BIAS, BLOCK_WEIGHTS};
use pogo_circuits::field::{fr_from_decimal, fr_from_hex, Field, Fr};
use pogo_circuits::merkle::{default_depth, next_layer, zero_subtree_roots, MerkleTree};
use pogo_circuits::model::block_of;
use pogo_circuits::poseidon::{hash2, hash_slice};
use pogo_prover::commit::{model_leaves, tree_from_leaves};
use pogo_prover::gpu::host;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn random_fr(rng: &mut impl Rng) -> Fr {
    Fr::random(&mut *rng)
}

/// Field elements at the edges: 0, 1, p - 1, p - 2, 2^224 - 1 (the largest packed limb).
fn edge_elements() -> Vec<Fr> {
    vec![Fr::ZERO, Fr::ONE, -Fr::ONE, -Fr::from(2), Fr::from(2).pow_vartime([224]) - Fr::ONE]
}

#[test]
fn kernel_field_arithmetic_equals_native_on_random_and_edge_inputs() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut xs: Vec<Fr> = (0..200).map(|_| random_fr(&mut rng)).collect();
    xs.extend(edge_elements());
    for a in &xs {
        for b in xs.iter().step_by(7) {
            assert_eq!(host::mul(a, b), *a * b, "mul {a:?} {b:?}");
            assert_eq!(host::add(a, b), *a + b, "add {a:?} {b:?}");
        }
    }
}

#[test]
fn kernel_poseidon_matches_circomlib_vectors_for_its_widths() {
    let text = include_str!("../../circuits/tests/vectors/poseidon_circomlib.json");
    let parsed: serde_json::Value = serde_json::from_str(text).expect("vector file parses");
    let mut checked = 0;
    for v in parsed["vectors"].as_array().expect("a list of vectors") {
        let inputs: Vec<Fr> = v["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(|x| fr_from_decimal(x.as_str().expect("a decimal string")).expect("decimal"))
            .collect();
        let expected = fr_from_hex(v["output"].as_str().expect("a hex string")).expect("hex");
        if let Some(got) = host::hash(&inputs) {
            assert_eq!(got, expected, "H_{}", inputs.len());
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "H_2 and H_16, each on [1..n] and near the modulus");
    assert_eq!(host::hash(&[Fr::ONE; 3]), None, "only widths 3 and 17 are built");
}

#[test]
fn kernel_poseidon_equals_native_on_random_inputs_both_dot_products() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for trial in 0..50 {
        // Every input p - 1 now and then: the unreduced sums' largest case.
        let mut x = || if trial % 5 == 0 { -Fr::ONE } else { random_fr(&mut rng) };
        let (a, b) = (x(), x());
        let sixteen: Vec<Fr> = (0..16).map(|_| x()).collect();
        for narrow in [false, true] {
            assert_eq!(host::hash_with(&[a, b], narrow), Some(hash2(a, b)), "narrow {narrow}");
            assert_eq!(host::hash_with(&sixteen, narrow), Some(hash_slice(&sixteen).unwrap()), "narrow {narrow}");
        }
    }
}

fn random_weights(rng: &mut impl Rng, n: usize) -> Vec<u32> {
    // Mostly near the bias (real models), some anywhere in [0, 2^32).
    (0..n)
        .map(|_| if rng.gen_bool(0.8) { BIAS.wrapping_add(rng.gen_range(0..1u32 << 24)) } else { rng.gen() })
        .collect()
}

#[test]
fn kernel_leaves_equal_native_leaves_including_the_padded_last_block() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for n in [1, 7, BLOCK_WEIGHTS - 1, BLOCK_WEIGHTS, BLOCK_WEIGHTS + 1, 5 * BLOCK_WEIGHTS + 37] {
        let weights = random_weights(&mut rng, n);
        let nb = block_count(n as u64);
        let native: Vec<Fr> = (0..nb).map(|b| block_leaf(&block_of(&weights, b))).collect();
        assert_eq!(host::leaves(&weights, 0, nb as usize), native, "{n} weights");
        // A window that starts mid-model, as the GPU's chunks do.
        if nb > 1 {
            assert_eq!(host::leaves(&weights, 1, nb as usize - 1), native[1..], "{n} weights from block 1");
        }
    }
    // Extremes: every limb 0 and every limb u32::MAX.
    for fill in [0u32, u32::MAX] {
        let weights = vec![fill; BLOCK_WEIGHTS];
        assert_eq!(host::leaves(&weights, 0, 1), vec![block_leaf(&block_of(&weights, 0))]);
    }
}

#[test]
fn one_changed_weight_changes_only_its_kernel_leaf() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let weights = random_weights(&mut rng, 3 * BLOCK_WEIGHTS);
    let before = host::leaves(&weights, 0, 3);
    let mut tampered = weights.clone();
    tampered[BLOCK_WEIGHTS + 50] ^= 1;
    let after = host::leaves(&tampered, 0, 3);
    assert_eq!((before[0], before[2]), (after[0], after[2]));
    assert_ne!(before[1], after[1]);
}

/// The whole tree as the GPU builds it (leaf kernel, then the level kernel per level with
/// that level's padding root), run through the host build of the same code.
fn kernel_tree_root(weights: &[u32], depth: u32) -> Fr {
    let nb = block_count(weights.len() as u64) as usize;
    let mut layer = host::leaves(weights, 0, nb);
    for zero in &zero_subtree_roots()[..depth as usize] {
        layer = host::level(&layer, zero);
    }
    assert_eq!(layer.len(), 1);
    layer[0]
}

#[test]
fn kernel_levels_equal_the_reference_on_odd_and_even_lengths() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for n in [1usize, 2, 3, 8, 13] {
        let layer: Vec<Fr> = (0..n).map(|_| random_fr(&mut rng)).collect();
        let zero = random_fr(&mut rng);
        assert_eq!(host::level(&layer, &zero), next_layer(&layer, zero), "{n} children");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn kernel_tree_roots_equal_the_provers_on_random_models(n in 1usize..40 * BLOCK_WEIGHTS, extra in 0u32..3, seed: u64) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let weights = random_weights(&mut rng, n);
        let depth = default_depth(block_count(n as u64)) + extra;
        let cpu = tree_from_leaves(model_leaves(&weights, &()), Some(depth)).unwrap();
        prop_assert_eq!(kernel_tree_root(&weights, depth), cpu.root());
    }
}

#[test]
fn from_layers_accepts_a_built_tree_and_refuses_wrong_shapes() {
    let leaves: Vec<Fr> = (0..5u64).map(Fr::from).collect();
    let tree = MerkleTree::build(leaves.clone(), 4).unwrap();
    let mut layers = vec![leaves];
    for level in 0..4 {
        let next = next_layer(&layers[level], zero_subtree_roots()[level]);
        layers.push(next);
    }
    assert_eq!(MerkleTree::from_layers(layers.clone()).unwrap(), tree);
    let mut short = layers.clone();
    short[2].pop();
    assert!(MerkleTree::from_layers(short).is_err());
    let mut two_roots = layers.clone();
    two_roots[4].push(Fr::ONE);
    assert!(MerkleTree::from_layers(two_roots).is_err());
    assert!(MerkleTree::from_layers(vec![]).is_err());
}

/// NVRTC turns the kernel source into PTX for Hopper. Needs the `gpu` feature and
/// `libnvrtc.so` (`source scripts/cuda/env.sh` installs it from PyPI); no GPU.
#[cfg(feature = "gpu")]
#[test]
fn nvrtc_compiles_the_kernels_to_ptx_for_sm_90() {
    use pogo_prover::gpu::device::{compile, GpuError};
    use pogo_prover::gpu::KernelOptions;
    for (mul_calls, narrow_dot) in [(true, false), (false, false), (true, true)] {
        match compile(9, 0, KernelOptions { mul_calls, narrow_dot, max_registers: None }) {
            Ok(ptx) => {
                let text = ptx.to_src();
                // POGO_PTX_OUT=FILE keeps the PTX, for `ptxas -v` (registers, spills).
                if let Some(path) = std::env::var_os("POGO_PTX_OUT") {
                    std::fs::write(path, &text).expect("writing the PTX");
                }
                assert!(text.contains(".target sm_90"), "PTX for sm_90");
                for kernel in ["pogo_leaves", "pogo_level", "pogo_from_mont"] {
                    assert!(text.contains(&format!(".entry {kernel}")), "{kernel} in the PTX");
                }
            }
            Err(GpuError::NoNvrtc) if std::env::var_os("POGO_REQUIRE_NVRTC").is_none() => {
                eprintln!("skipped: libnvrtc.so not found (source scripts/cuda/env.sh)");
                return;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Without a driver (this machine, CI), the committer says so instead of panicking.
#[cfg(feature = "gpu")]
#[test]
fn no_driver_or_no_device_is_an_error_not_a_panic() {
    use pogo_prover::gpu::device::GpuCommitter;
    match GpuCommitter::new() {
        Ok(gpu) => eprintln!("a GPU is present: {}", gpu.device_name()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

#[test]
fn kernel_source_holds_both_widths_and_every_entry_point() {
    use pogo_prover::gpu::{kernel_source, KernelOptions};
    let src = kernel_source(KernelOptions { mul_calls: false, ..KernelOptions::default() });
    assert!(kernel_source(KernelOptions::default()).starts_with("#define POGO_MUL_CALLS 1"));
    let narrow = kernel_source(KernelOptions { narrow_dot: true, ..KernelOptions::default() });
    assert!(narrow.contains("#define POGO_NARROW_DOT 1"));
    for needle in
        ["poseidon3(", "poseidon17(", "pogo_leaves", "pogo_level", "#define POSEIDON_RP 57", "#define POSEIDON_RP 68"]
    {
        assert!(src.contains(needle), "{needle}");
    }
    assert!(!src.contains("#include \""), "NVRTC gets one self-contained text");
}
