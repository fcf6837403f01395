//! The Grain LFSR of the Poseidon paper (Grassi et al., appendix F), which derives round
//! constants and the Cauchy MDS matrix from the instance parameters alone. Written from the
//! paper's description; checked end to end against circomlib's hash outputs.

use crate::field::{fr_from_u256_reduced, Fr, PrimeField};

/// Bits of a BN254 scalar field element as Grain draws them.
const FIELD_BITS: u32 = 254;

/// The 80-bit Grain state, seeded with the instance parameters and run 160 times.
pub(crate) struct Grain {
    /// `state[0]` is the oldest bit.
    state: [bool; 80],
}

impl Grain {
    /// Seeds Grain for a prime field (`field = 1`), the `x^α` S-box (`sbox = 0`), a 254-bit
    /// field, width `t` and round numbers `r_f`, `r_p`.
    pub(crate) fn new(t: usize, r_f: usize, r_p: usize) -> Self {
        let mut bits = Vec::with_capacity(80);
        let mut push = |value: u64, width: u32| {
            for i in (0..width).rev() {
                bits.push((value >> i) & 1 == 1);
            }
        };
        push(1, 2); // field: GF(p)
        push(0, 4); // S-box: x^alpha
        push(u64::from(FIELD_BITS), 12);
        push(t as u64, 12);
        push(r_f as u64, 10);
        push(r_p as u64, 10);
        push((1 << 30) - 1, 30);
        let mut grain = Self { state: bits.try_into().expect("80 seed bits") };
        for _ in 0..160 {
            grain.clock();
        }
        grain
    }

    /// One LFSR step: `b_{i+80} = b_{i+62} ⊕ b_{i+51} ⊕ b_{i+38} ⊕ b_{i+23} ⊕ b_{i+13} ⊕ b_i`.
    fn clock(&mut self) -> bool {
        let s = &self.state;
        let bit = s[62] ^ s[51] ^ s[38] ^ s[23] ^ s[13] ^ s[0];
        self.state.copy_within(1.., 0);
        self.state[79] = bit;
        bit
    }

    /// The shrinking generator: draw bit pairs, keep the second bit when the first is 1.
    fn next_bit(&mut self) -> bool {
        loop {
            let keep = self.clock();
            let bit = self.clock();
            if keep {
                return bit;
            }
        }
    }

    /// 254 output bits read as a big-endian integer, little-endian u64 limbs.
    fn next_u254(&mut self) -> [u64; 4] {
        let mut limbs = [0u64; 4];
        for i in (0..FIELD_BITS).rev() {
            if self.next_bit() {
                limbs[(i / 64) as usize] |= 1 << (i % 64);
            }
        }
        limbs
    }

    /// A round constant: 254-bit draws, rejecting those ≥ r.
    pub(crate) fn next_field_element(&mut self) -> Fr {
        loop {
            let limbs = self.next_u254();
            let mut bytes = [0u8; 32];
            for (i, limb) in limbs.iter().enumerate() {
                bytes[8 * i..8 * i + 8].copy_from_slice(&limb.to_le_bytes());
            }
            if let Some(x) = Option::from(Fr::from_repr(bytes)) {
                return x;
            }
        }
    }

    /// An MDS seed value: one 254-bit draw reduced mod r (no rejection).
    pub(crate) fn next_field_element_reduced(&mut self) -> Fr {
        fr_from_u256_reduced(self.next_u254())
    }
}
