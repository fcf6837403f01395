//! Poseidon constants in the layout and number form the kernels read.

use pogo_circuits::field::{Field, Fr, PrimeField};
use pogo_circuits::poseidon::spec::{OptimizedSpec, FULL_ROUNDS, PARTIAL_ROUNDS};

/// One field element as the kernels hold it: 8 little-endian 32-bit limbs.
pub type Limbs = [u32; 8];

/// `R_P` of `H_n`.
pub fn partial_rounds(inputs: usize) -> usize {
    PARTIAL_ROUNDS[inputs - 1]
}

/// The canonical limbs of `x`.
pub fn to_limbs(x: &Fr) -> Limbs {
    let repr = x.to_repr();
    std::array::from_fn(|j| u32::from_le_bytes(repr.as_ref()[4 * j..4 * j + 4].try_into().expect("4 bytes")))
}

/// The element with canonical limbs `limbs`, or `None` if they are not below the modulus.
pub fn from_limbs(limbs: &Limbs) -> Option<Fr> {
    let mut repr = <Fr as PrimeField>::Repr::default();
    for (j, limb) in limbs.iter().enumerate() {
        repr.as_mut()[4 * j..4 * j + 4].copy_from_slice(&limb.to_le_bytes());
    }
    Option::from(Fr::from_repr(repr))
}

/// `x · 2^256 mod p`: the limbs of `x` in Montgomery form.
pub fn to_montgomery(x: &Fr) -> Limbs {
    static R: std::sync::OnceLock<Fr> = std::sync::OnceLock::new();
    let r = R.get_or_init(|| Fr::from(2).pow_vartime([256]));
    to_limbs(&(*x * r))
}

/// The constant table of `H_n` in `kernels/poseidon_impl.h`'s layout, in Montgomery form:
/// first full rounds, pre-sparse matrix, MDS matrix, partial-round constants, sparse
/// matrices (`m00`, row, column), last full rounds.
pub fn flat(inputs: usize) -> Vec<Limbs> {
    let spec = OptimizedSpec::for_inputs(inputs);
    let t = spec.width;
    let mut out = Vec::with_capacity(table_len(inputs));
    out.extend(spec.first_full_constants.iter().flatten());
    out.extend(spec.pre_sparse.iter().flatten());
    out.extend(spec.mds.iter().flatten());
    out.extend(&spec.partial_constants);
    for m in &spec.sparse {
        out.push(&m.m00);
        out.extend(&m.row);
        out.extend(&m.col);
    }
    out.extend(spec.second_full_constants.iter().flatten());
    debug_assert_eq!(out.len(), table_len(inputs));
    debug_assert_eq!(t, inputs + 1);
    out.into_iter().map(to_montgomery).collect()
}

/// The number of elements in [`flat`]'s table for `H_n`.
pub fn table_len(inputs: usize) -> usize {
    let t = inputs + 1;
    let rp = partial_rounds(inputs);
    FULL_ROUNDS * t + 2 * t * t + rp + rp * (2 * t - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limbs_round_trip_and_reject_non_canonical() {
        let x = -Fr::from(987_654_321u64);
        assert_eq!(from_limbs(&to_limbs(&x)), Some(x));
        let mut p = to_limbs(&-Fr::ONE);
        p[0] += 1; // p itself
        assert_eq!(from_limbs(&p), None);
    }

    #[test]
    fn montgomery_form_of_one_is_r_mod_p() {
        assert_eq!(to_montgomery(&Fr::ONE)[0], 0x4fff_fffb);
        assert_eq!(to_montgomery(&Fr::ONE)[7], 0x0e0a_77c1);
    }
}
