//! The commitment kernels' C code built for the CPU (`kernels/host.c`, by `build.rs`).
//!
//! Not a fast path: it runs the kernels' own arithmetic and per-thread bodies one index at
//! a time so that tests can hold them against the native reference with no GPU.

use std::sync::OnceLock;

use pogo_circuits::encoding::block_count;
use pogo_circuits::field::Fr;

use super::constants::{flat, from_limbs, to_limbs, Limbs};
use crate::stream::LayerHasher;

extern "C" {
    fn pogo_host_mul(a: *const Limbs, b: *const Limbs, out: *mut Limbs);
    fn pogo_host_add(a: *const Limbs, b: *const Limbs, out: *mut Limbs);
    fn pogo_host_leaves(
        weights: *const u32,
        n_weights: u64,
        first: u64,
        count: u64,
        k17: *const Limbs,
        out: *mut Limbs,
    );
    fn pogo_host_hash(n: u32, inputs: *const Limbs, k: *const Limbs, narrow: u32, out: *mut Limbs) -> i32;
    fn pogo_host_level(
        children: *const Limbs,
        n_children: u64,
        zero: *const Limbs,
        k3: *const Limbs,
        scratch: *mut Limbs,
        out: *mut Limbs,
    );
}

fn table(inputs: usize) -> &'static [Limbs] {
    static T3: OnceLock<Vec<Limbs>> = OnceLock::new();
    static T17: OnceLock<Vec<Limbs>> = OnceLock::new();
    match inputs {
        2 => T3.get_or_init(|| flat(2)),
        16 => T17.get_or_init(|| flat(16)),
        n => unreachable!("the kernels hash 2 or 16 inputs, not {n}"),
    }
}

fn fr(limbs: &Limbs) -> Fr {
    from_limbs(limbs).expect("the kernels return reduced elements")
}

/// `a · b` by the kernels' Montgomery multiplication.
pub fn mul(a: &Fr, b: &Fr) -> Fr {
    let mut out = [0u32; 8];
    // SAFETY: three valid 8-limb buffers; the C code reads two and writes one.
    unsafe { pogo_host_mul(&to_limbs(a), &to_limbs(b), &mut out) };
    fr(&out)
}

/// `a + b` by the kernels' addition.
pub fn add(a: &Fr, b: &Fr) -> Fr {
    let mut out = [0u32; 8];
    // SAFETY: as in `mul`.
    unsafe { pogo_host_add(&to_limbs(a), &to_limbs(b), &mut out) };
    fr(&out)
}

/// `H_n` of `inputs` (2 or 16 of them) by the kernels' permutation of width 3 or 17.
pub fn hash(inputs: &[Fr]) -> Option<Fr> {
    hash_with(inputs, false)
}

/// [`hash`], or with `narrow_dot` the build that reduces after every product
/// (`POGO_NARROW_DOT`, [`super::KernelOptions::narrow_dot`]).
pub fn hash_with(inputs: &[Fr], narrow_dot: bool) -> Option<Fr> {
    if inputs.len() != 2 && inputs.len() != 16 {
        return None;
    }
    let limbs: Vec<Limbs> = inputs.iter().map(to_limbs).collect();
    let mut out = [0u32; 8];
    // SAFETY: `limbs` holds n elements and the table is `flat(n)`'s; the C code checks n.
    let rc = unsafe {
        pogo_host_hash(limbs.len() as u32, limbs.as_ptr(), table(limbs.len()).as_ptr(), u32::from(narrow_dot), &mut out)
    };
    (rc == 0).then(|| fr(&out))
}

/// The leaf kernel's output for blocks `first..first + count` of the biased weights.
pub fn leaves(weights: &[u32], first: u64, count: usize) -> Vec<Fr> {
    let mut out = vec![[0u32; 8]; count];
    // SAFETY: `out` holds `count` elements; the C code reads weights only below their length
    // and the constant table in the layout `flat(16)` produces.
    unsafe {
        pogo_host_leaves(
            weights.as_ptr(),
            weights.len() as u64,
            first,
            count as u64,
            table(16).as_ptr(),
            out.as_mut_ptr(),
        )
    };
    out.iter().map(fr).collect()
}

/// The level kernel's output: `H_2` of each pair of `children`, `zero` for a missing right
/// child.
pub fn level(children: &[Fr], zero: &Fr) -> Vec<Fr> {
    let input: Vec<Limbs> = children.iter().map(to_limbs).collect();
    let mut scratch = vec![[0u32; 8]; children.len()];
    let mut out = vec![[0u32; 8]; children.len().div_ceil(2)];
    // SAFETY: `scratch` matches `children`, `out` holds one parent per pair.
    unsafe {
        pogo_host_level(
            input.as_ptr(),
            input.len() as u64,
            &to_limbs(zero),
            table(2).as_ptr(),
            scratch.as_mut_ptr(),
            out.as_mut_ptr(),
        )
    };
    out.iter().map(fr).collect()
}

/// The kernels' code run on the CPU as a [`LayerHasher`]: what checks the streamed tree's
/// chunking and padding against the CPU's tree, for the same code the device runs, without
/// a GPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostKernels;

impl LayerHasher for HostKernels {
    fn leaves(&self, weights: &[u32]) -> Result<Vec<Fr>, String> {
        Ok(leaves(weights, 0, block_count(weights.len() as u64) as usize))
    }

    fn level(&self, children: &[Fr], zero: &Fr) -> Result<Vec<Fr>, String> {
        Ok(level(children, zero))
    }

    fn name(&self) -> String {
        "the kernels on the host".into()
    }
}
