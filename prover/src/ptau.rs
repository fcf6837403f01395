//! Importing the Ethereum ecosystem's powers-of-tau ceremonies (snarkjs `.ptau` files) as
//! KZG setups.
//!
//! Layout (all little-endian): `"ptau"`, version (u32), section count (u32), then sections
//! of `id (u32) | size (u64) | data`. Section 1 is the header (`n8 = 32`, the base-field
//! modulus, `power`, `ceremonyPower`), section 2 `τ^i·G1` for `i < 2^(power+1) − 1`,
//! section 3 `τ^i·G2` for `i < 2^power`; coordinates are 32-byte Montgomery-form field
//! elements, which is also halo2curves' internal form. Every point is checked canonical and
//! on the curve, and a random linear combination of all imported powers is checked against
//! `τ·G2` with one pairing equation, so a file with an inconsistent power is refused.

use std::collections::HashMap;

use halo2_base::halo2_proofs::arithmetic::CurveAffine;
use halo2_base::halo2_proofs::halo2curves::bn256::{pairing, Fq, Fq2, Fr, G1Affine, G2Affine};
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::halo2_proofs::halo2curves::msm::msm_best;
use halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;
use rand::SeedableRng;

use crate::setup::Setup;

/// The BN254 base-field modulus as the header stores it (little-endian).
const BN254_Q: [u8; 32] = {
    let be = *b"\x30\x64\x4e\x72\xe1\x31\xa0\x29\xb8\x50\x45\xb6\x81\x81\x58\x5d\x97\x81\x6a\x91\x68\x71\xca\x8d\x3c\x20\x8c\x16\xd8\x7c\xfd\x47";
    let mut le = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        le[i] = be[31 - i];
        i += 1;
    }
    le
};

/// A `.ptau` file could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PtauError {
    /// Not a ptau file.
    #[error("not a powers-of-tau file (magic {0:02x?}, expected \"ptau\")")]
    Magic([u8; 4]),
    /// Another format version.
    #[error("ptau version {0} is not supported (expected 1)")]
    Version(u32),
    /// The file ends inside a header or section.
    #[error("the file is truncated: {0}")]
    Truncated(&'static str),
    /// A required section is absent.
    #[error("section {0} ({1}) is missing")]
    MissingSection(u32, &'static str),
    /// Another curve or element size.
    #[error("the ceremony is not over BN254 (n8 = {0}, or another modulus)")]
    Curve(u32),
    /// Fewer powers than needed.
    #[error("the ceremony has 2^{power} powers, the circuit needs 2^{k}")]
    TooSmall {
        /// The file's power.
        power: u32,
        /// Needed.
        k: u32,
    },
    /// A coordinate is not below the modulus.
    #[error("{0} point {1}: a coordinate is not a canonical field element")]
    NotCanonical(&'static str, usize),
    /// A point is not on the curve.
    #[error("{0} point {1} is not on the curve")]
    NotOnCurve(&'static str, usize),
    /// The first powers are not the generators.
    #[error("the ceremony's first {0} power is not the generator")]
    Generator(&'static str),
    /// The G1 powers are not powers of the same τ as the G2 point.
    #[error("the G1 powers are inconsistent with τ·G2 (pairing check failed)")]
    Inconsistent,
}

fn u32_at(bytes: &[u8], at: usize, what: &'static str) -> Result<u32, PtauError> {
    let slice = bytes.get(at..at + 4).ok_or(PtauError::Truncated(what))?;
    Ok(u32::from_le_bytes(slice.try_into().expect("4 bytes")))
}

fn fq(bytes: &[u8], kind: &'static str, index: usize) -> Result<Fq, PtauError> {
    Fq::from_raw_bytes(bytes).ok_or(PtauError::NotCanonical(kind, index))
}

fn g1(bytes: &[u8], index: usize) -> Result<G1Affine, PtauError> {
    let (x, y) = (fq(&bytes[..32], "G1", index)?, fq(&bytes[32..64], "G1", index)?);
    Option::from(G1Affine::from_xy(x, y)).ok_or(PtauError::NotOnCurve("G1", index))
}

fn g2(bytes: &[u8], index: usize) -> Result<G2Affine, PtauError> {
    let f = |i: usize| fq(&bytes[32 * i..32 * i + 32], "G2", index);
    let x = Fq2 { c0: f(0)?, c1: f(1)? };
    let y = Fq2 { c0: f(2)?, c1: f(3)? };
    Option::from(G2Affine::from_xy(x, y)).ok_or(PtauError::NotOnCurve("G2", index))
}

/// Imports the first `2^k` powers of a `.ptau` file as a KZG setup.
pub fn import(bytes: &[u8], k: u32) -> Result<Setup, PtauError> {
    let magic: [u8; 4] = bytes.get(..4).ok_or(PtauError::Truncated("magic"))?.try_into().expect("4 bytes");
    if &magic != b"ptau" {
        return Err(PtauError::Magic(magic));
    }
    let version = u32_at(bytes, 4, "version")?;
    if version != 1 {
        return Err(PtauError::Version(version));
    }
    let count = u32_at(bytes, 8, "section count")?;
    let mut sections: HashMap<u32, &[u8]> = HashMap::new();
    let mut at = 12usize;
    for _ in 0..count {
        let id = u32_at(bytes, at, "section header")?;
        let size = bytes.get(at + 4..at + 12).ok_or(PtauError::Truncated("section header"))?;
        let size = u64::from_le_bytes(size.try_into().expect("8 bytes"));
        let start = at + 12;
        let end =
            usize::try_from(size).ok().and_then(|s| start.checked_add(s)).ok_or(PtauError::Truncated("section"))?;
        let data = bytes.get(start..end).ok_or(PtauError::Truncated("section"))?;
        sections.entry(id).or_insert(data);
        at = end;
    }
    let section = |id: u32, what: &'static str| sections.get(&id).copied().ok_or(PtauError::MissingSection(id, what));

    let header = section(1, "header")?;
    let n8 = u32_at(header, 0, "header")?;
    if n8 != 32 || header.get(4..36) != Some(&BN254_Q[..]) {
        return Err(PtauError::Curve(n8));
    }
    let power = u32_at(header, 36, "header")?;
    if k > power {
        return Err(PtauError::TooSmall { power, k });
    }
    let n = 1usize << k;
    let tau_g1 = section(2, "tauG1")?;
    let tau_g2 = section(3, "tauG2")?;
    if tau_g1.len() < 64 * n {
        return Err(PtauError::Truncated("tauG1"));
    }
    if tau_g2.len() < 2 * 128 {
        return Err(PtauError::Truncated("tauG2"));
    }
    let g: Vec<G1Affine> = (0..n).map(|i| g1(&tau_g1[64 * i..64 * i + 64], i)).collect::<Result<_, _>>()?;
    let (g2_gen, s_g2) = (g2(&tau_g2[..128], 0)?, g2(&tau_g2[128..256], 1)?);
    if g[0] != G1Affine::generator() {
        return Err(PtauError::Generator("G1"));
    }
    if g2_gen != G2Affine::generator() {
        return Err(PtauError::Generator("G2"));
    }
    // Σ r_i·τ^(i+1)·G1 paired with G2 must equal Σ r_i·τ^i·G1 paired with τ·G2.
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    let r: Vec<Fr> = (0..n - 1).map(|_| Fr::random(&mut rng)).collect();
    let shifted: G1Affine = msm_best(&r, &g[1..]).into();
    let base: G1Affine = msm_best(&r, &g[..n - 1]).into();
    if n > 1 && pairing(&shifted, &g2_gen) != pairing(&base, &s_g2) {
        return Err(PtauError::Inconsistent);
    }
    // halo2-axiom builds a setup from parts only through an existing one.
    let template = Setup::setup(1, rand_chacha::ChaCha20Rng::seed_from_u64(0));
    Ok(template.from_parts(k, g, None, g2_gen, s_g2))
}
