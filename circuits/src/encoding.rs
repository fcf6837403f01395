//! Weight and update encodings of DESIGN §2: fixed-point weights, their biased 32-bit form,
//! 112-weight blocks packed into 16 field elements of 7 limbs, 4-bit nibbles with per-block
//! scales, and the exact apply rule `u_new = u_old + s · (n − 8)`.

use crate::field::Fr;
use crate::poseidon;

/// Weights per block (`B`).
pub const BLOCK_WEIGHTS: usize = 112;
/// 32-bit limbs packed into one field element.
pub const LIMBS_PER_ELEMENT: usize = 7;
/// Field elements per packed block (`112 / 7`).
pub const ELEMENTS_PER_BLOCK: usize = BLOCK_WEIGHTS / LIMBS_PER_ELEMENT;
/// Nibbles packed into each of `q_lo`, `q_hi`.
pub const NIBBLES_PER_HALF: usize = BLOCK_WEIGHTS / 2;
/// Bytes of one block's packed nibbles (two per byte, low nibble first).
pub const NIBBLE_BYTES_PER_BLOCK: usize = BLOCK_WEIGHTS / 2;
/// `2^31`: the bias that maps `i32` weights onto `[0, 2^32)`, and the stored zero weight.
pub const BIAS: u32 = 1 << 31;
/// Default fractional bits `F`.
pub const DEFAULT_FRACTION_BITS: u32 = 24;
/// Largest supported `F` (a weight of magnitude 1 still fits in i32 up to `F = 30`).
pub const MAX_FRACTION_BITS: u32 = 30;

/// The number of blocks `nb = ceil(N / 112)` for `N` weights.
pub fn block_count(weights: u64) -> u64 {
    weights.div_ceil(BLOCK_WEIGHTS as u64)
}

/// A value could not be encoded as a fixed-point weight.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// NaN or an infinity.
    #[error("value {0} is not finite")]
    NotFinite(f64),
    /// `round(x · 2^F)` is outside the i32 range.
    #[error("value {value} does not fit in a 32-bit fixed-point weight with {fraction_bits} fractional bits (|x| must stay below {limit})")]
    OutOfRange {
        /// The offending value.
        value: f64,
        /// `F`.
        fraction_bits: u32,
        /// `2^(31-F)`.
        limit: f64,
    },
}

/// The fixed-point format `w = round(x · 2^F)` with `F` fractional bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FixedPoint {
    fraction_bits: u32,
}

/// `F` was above [`MAX_FRACTION_BITS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fraction bits must be at most {MAX_FRACTION_BITS}, got {0}")]
pub struct FractionBitsError(pub u32);

impl Default for FixedPoint {
    fn default() -> Self {
        Self { fraction_bits: DEFAULT_FRACTION_BITS }
    }
}

impl FixedPoint {
    /// The format with `fraction_bits` fractional bits (0 to 30).
    pub fn new(fraction_bits: u32) -> Result<Self, FractionBitsError> {
        if fraction_bits > MAX_FRACTION_BITS {
            return Err(FractionBitsError(fraction_bits));
        }
        Ok(Self { fraction_bits })
    }

    /// `F`.
    pub fn fraction_bits(self) -> u32 {
        self.fraction_bits
    }

    /// `round(x · 2^F)`, ties to even; an error rather than a wrap when it leaves i32.
    pub fn encode(self, x: f64) -> Result<i32, EncodeError> {
        if !x.is_finite() {
            return Err(EncodeError::NotFinite(x));
        }
        // Exact: scaling by a power of two only changes the exponent.
        let scaled = (x * f64::from(1u32 << self.fraction_bits)).round_ties_even();
        if scaled < f64::from(i32::MIN) || scaled > f64::from(i32::MAX) {
            return Err(EncodeError::OutOfRange {
                value: x,
                fraction_bits: self.fraction_bits,
                limit: f64::from(1u32 << (31 - self.fraction_bits)),
            });
        }
        Ok(scaled as i32)
    }

    /// `w / 2^F` (exact in f64).
    pub fn decode(self, w: i32) -> f64 {
        f64::from(w) / f64::from(1u32 << self.fraction_bits)
    }
}

/// The stored form `u = w + 2^31` of a signed weight.
pub fn bias(w: i32) -> u32 {
    (w as u32) ^ BIAS
}

/// The signed weight `w = u − 2^31` of a stored limb.
pub fn unbias(u: u32) -> i32 {
    (u ^ BIAS) as i32
}

/// Packs one block: `e_k = Σ_{j<7} u_{7k+j} · 2^(32j)` (DESIGN §2 Blocks).
pub fn pack_block(block: &[u32; BLOCK_WEIGHTS]) -> [Fr; ELEMENTS_PER_BLOCK] {
    std::array::from_fn(|k| pack_limbs(&block[LIMBS_PER_ELEMENT * k..LIMBS_PER_ELEMENT * (k + 1)]))
}

/// `Σ_j limbs[j] · 2^(32j)` for at most 7 limbs (224 bits, always below the modulus).
fn pack_limbs(limbs: &[u32]) -> Fr {
    debug_assert!(limbs.len() <= LIMBS_PER_ELEMENT);
    let mut words = [0u64; 4];
    for (j, &limb) in limbs.iter().enumerate() {
        words[j / 2] |= u64::from(limb) << (32 * (j % 2));
    }
    Fr::from_raw(words)
}

/// The block leaf `L_b = H_16(e_0..e_15)`.
pub fn block_leaf(block: &[u32; BLOCK_WEIGHTS]) -> Fr {
    poseidon::hash(pack_block(block))
}

/// A 4-bit update value stored as `n = q + 8`, so `q ∈ [-8, 7]`; only built through a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Nibble(u8);

/// A nibble or signed update value was out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NibbleError {
    /// The stored nibble was ≥ 16.
    #[error("nibble {0} is not below 16")]
    Stored(u8),
    /// The signed value was outside `[-8, 7]`.
    #[error("update value {0} is outside [-8, 7]")]
    Signed(i32),
}

impl Nibble {
    /// The nibble for `q = 0` (`n = 8`): leaves a weight unchanged.
    pub const ZERO: Nibble = Nibble(8);

    /// A stored nibble `n < 16`.
    pub fn new(n: u8) -> Result<Self, NibbleError> {
        if n < 16 {
            Ok(Self(n))
        } else {
            Err(NibbleError::Stored(n))
        }
    }

    /// The nibble of a signed value `q ∈ [-8, 7]`.
    pub fn from_signed(q: i32) -> Result<Self, NibbleError> {
        if (-8..=7).contains(&q) {
            Ok(Self((q + 8) as u8))
        } else {
            Err(NibbleError::Signed(q))
        }
    }

    /// The stored value `n`.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The signed value `q = n − 8`.
    pub fn signed(self) -> i32 {
        i32::from(self.0) - 8
    }
}

/// One block of an update: a scale `s` (units of `2^-F`) and 112 nibbles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateBlock {
    /// `s_b`.
    pub scale: u32,
    /// Weight `j` of the block changes by `scale · nibbles[j].signed()`.
    pub nibbles: [Nibble; BLOCK_WEIGHTS],
}

impl UpdateBlock {
    /// The block that changes nothing.
    pub fn zero() -> Self {
        Self { scale: 0, nibbles: [Nibble::ZERO; BLOCK_WEIGHTS] }
    }

    /// `(q_lo, q_hi)`: `Σ_{j<56} n_j · 2^(4j)` over each half of the block.
    pub fn packed_nibbles(&self) -> (Fr, Fr) {
        let pack = |half: &[Nibble]| {
            let mut limbs = [0u32; LIMBS_PER_ELEMENT];
            for (j, n) in half.iter().enumerate() {
                limbs[j / 8] |= u32::from(n.get()) << (4 * (j % 8));
            }
            pack_limbs(&limbs)
        };
        (pack(&self.nibbles[..NIBBLES_PER_HALF]), pack(&self.nibbles[NIBBLES_PER_HALF..]))
    }

    /// The update leaf `U_b = H_3(q_lo, q_hi, s_b)`.
    pub fn leaf(&self) -> Fr {
        let (lo, hi) = self.packed_nibbles();
        poseidon::hash([lo, hi, Fr::from(u64::from(self.scale))])
    }

    /// Applies the block to stored weights: `u_new = u_old + s · (n − 8)`, exact, failing with
    /// the position of the first weight that would leave `[0, 2^32)`.
    pub fn apply(&self, old: &[u32; BLOCK_WEIGHTS]) -> Result<[u32; BLOCK_WEIGHTS], ApplyOverflow> {
        let mut new = [0u32; BLOCK_WEIGHTS];
        for (j, ((slot, &u), n)) in new.iter_mut().zip(old).zip(&self.nibbles).enumerate() {
            *slot = apply_one(u, self.scale, *n).ok_or(ApplyOverflow {
                position: j,
                old: u,
                scale: self.scale,
                q: n.signed(),
            })?;
        }
        Ok(new)
    }
}

/// `u + s · q` if it stays in `[0, 2^32)`.
pub fn apply_one(u: u32, scale: u32, n: Nibble) -> Option<u32> {
    let value = i64::from(u) + i64::from(scale) * i64::from(n.signed());
    u32::try_from(value).ok()
}

/// An update would move a weight outside `[0, 2^32)` (DESIGN §2: such updates are invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("weight {position} of the block overflows: {old} + {scale} * {q} is outside [0, 2^32)")]
pub struct ApplyOverflow {
    /// Position inside the block.
    pub position: usize,
    /// The stored old weight.
    pub old: u32,
    /// The block's scale.
    pub scale: u32,
    /// The signed update value.
    pub q: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{Field, PrimeField};
    use proptest::prelude::*;

    #[test]
    fn fixed_point_rounds_half_to_even_and_refuses_overflow() {
        let fp = FixedPoint::new(1).unwrap();
        assert_eq!(fp.encode(0.25).unwrap(), 0); // 0.5 -> 0
        assert_eq!(fp.encode(0.75).unwrap(), 2); // 1.5 -> 2
        assert_eq!(fp.encode(-0.75).unwrap(), -2);
        let fp = FixedPoint::default();
        assert_eq!(fp.encode(1.0).unwrap(), 1 << 24);
        assert_eq!(fp.encode(127.99999994039536).unwrap(), i32::MAX);
        assert_eq!(fp.encode(-128.0).unwrap(), i32::MIN);
        assert!(matches!(fp.encode(128.0), Err(EncodeError::OutOfRange { .. })));
        assert!(matches!(fp.encode(-128.00000006), Err(EncodeError::OutOfRange { .. })));
        assert!(matches!(fp.encode(f64::NAN), Err(EncodeError::NotFinite(_))));
        assert!(matches!(fp.encode(f64::NEG_INFINITY), Err(EncodeError::NotFinite(_))));
        assert_eq!(FixedPoint::new(31), Err(FractionBitsError(31)));
    }

    #[test]
    fn bias_maps_i32_onto_u32_in_order() {
        assert_eq!(bias(0), BIAS);
        assert_eq!(bias(i32::MIN), 0);
        assert_eq!(bias(i32::MAX), u32::MAX);
        assert_eq!(unbias(bias(-5)), -5);
    }

    #[test]
    fn packing_places_limb_j_at_bit_32j() {
        let mut block = [0u32; BLOCK_WEIGHTS];
        block[7] = 1; // element 1, limb 0
        block[13] = 3; // element 1, limb 6
        let packed = pack_block(&block);
        let expected = Fr::from(1) + Fr::from(3) * Fr::from(2).pow_vartime([192]);
        assert_eq!(packed[1], expected);
        assert!(packed.iter().enumerate().all(|(k, e)| k == 1 || *e == Fr::from(0)));
        let full = pack_block(&[u32::MAX; BLOCK_WEIGHTS]);
        assert_eq!(full[0], Fr::from(2).pow_vartime([224]) - Fr::from(1));
    }

    #[test]
    fn nibble_packing_places_nibble_j_at_bit_4j() {
        let mut block = UpdateBlock::zero();
        block.nibbles = [Nibble::new(0).unwrap(); BLOCK_WEIGHTS];
        block.nibbles[1] = Nibble::new(15).unwrap();
        block.nibbles[56 + 55] = Nibble::new(2).unwrap();
        let (lo, hi) = block.packed_nibbles();
        assert_eq!(lo, Fr::from(15 << 4));
        assert_eq!(hi, Fr::from(2) * Fr::from(2).pow_vartime([220]));
        let repr = hi.to_repr();
        assert_eq!(repr.as_ref()[27], 0x20);
    }

    #[test]
    fn nibble_range_checks() {
        assert_eq!(Nibble::new(16), Err(NibbleError::Stored(16)));
        assert_eq!(Nibble::from_signed(8), Err(NibbleError::Signed(8)));
        assert_eq!(Nibble::from_signed(-9), Err(NibbleError::Signed(-9)));
        assert_eq!(Nibble::from_signed(-8).unwrap().get(), 0);
        assert_eq!(Nibble::new(15).unwrap().signed(), 7);
    }

    #[test]
    fn apply_refuses_wrap_at_both_ends() {
        let mut block = UpdateBlock::zero();
        block.scale = 2;
        block.nibbles[3] = Nibble::from_signed(-1).unwrap();
        block.nibbles[4] = Nibble::from_signed(1).unwrap();
        let mut old = [BIAS; BLOCK_WEIGHTS];
        old[3] = 2;
        old[4] = u32::MAX - 2;
        let new = block.apply(&old).unwrap();
        assert_eq!((new[3], new[4]), (0, u32::MAX));
        old[3] = 1;
        assert_eq!(block.apply(&old).unwrap_err().position, 3);
        old[3] = 2;
        old[4] = u32::MAX - 1;
        assert_eq!(block.apply(&old).unwrap_err().position, 4);
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips_on_the_grid(w in any::<i32>(), f in 0u32..=30) {
            let fp = FixedPoint::new(f).unwrap();
            prop_assert_eq!(fp.encode(fp.decode(w)).unwrap(), w);
        }

        #[test]
        fn apply_matches_integer_arithmetic(u in any::<u32>(), s in any::<u32>(), q in -8i32..=7) {
            let n = Nibble::from_signed(q).unwrap();
            let exact = i64::from(u) + i64::from(s) * i64::from(q);
            prop_assert_eq!(apply_one(u, s, n).map(i64::from), (0..1i64 << 32).contains(&exact).then_some(exact));
        }
    }
}
