//! The BN254 scalar field (DESIGN §2) and its canonical text form.
//!
//! Every crate takes `Fr` from here, which is halo2-axiom's own type, so native code and
//! circuits can never disagree about the field.

pub use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
pub use halo2_base::halo2_proofs::halo2curves::ff::{Field, FromUniformBytes, PrimeField};

/// A field element could not be parsed from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldParseError {
    /// The text is not `0x` followed by 1 to 64 hex digits.
    #[error("expected 0x followed by at most 64 hex digits, got {0:?}")]
    NotHex(String),
    /// The number is not below the BN254 scalar modulus.
    #[error("{0} is not below the BN254 scalar field modulus")]
    NotCanonical(String),
}

/// The element as `0x` and 64 lower-case hex digits, big-endian (as circomlib and Solidity
/// print it).
pub fn fr_to_hex(x: &Fr) -> String {
    let mut bytes = x.to_repr();
    bytes.as_mut().reverse();
    format!("0x{}", hex::encode(bytes))
}

/// Parses `0x`-prefixed big-endian hex (1 to 64 digits); rejects values ≥ the modulus.
pub fn fr_from_hex(text: &str) -> Result<Fr, FieldParseError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .filter(|d| !d.is_empty() && d.len() <= 64)
        .ok_or_else(|| FieldParseError::NotHex(text.to_string()))?;
    let padded = format!("{digits:0>64}");
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(&padded, &mut bytes).map_err(|_| FieldParseError::NotHex(text.to_string()))?;
    bytes.reverse();
    Option::from(Fr::from_repr(bytes)).ok_or_else(|| FieldParseError::NotCanonical(text.to_string()))
}

/// Parses a decimal number below the modulus (the form circomlib's test vectors use).
pub fn fr_from_decimal(text: &str) -> Result<Fr, FieldParseError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldParseError::NotHex(text.to_string()));
    }
    // Exact 256-bit accumulation (little-endian u64 limbs); overflow means non-canonical.
    let mut limbs = [0u64; 4];
    for digit in text.bytes().map(|b| u64::from(b - b'0')) {
        let mut carry = digit as u128;
        for limb in limbs.iter_mut() {
            let cur = u128::from(*limb) * 10 + carry;
            *limb = cur as u64;
            carry = cur >> 64;
        }
        if carry != 0 {
            return Err(FieldParseError::NotCanonical(text.to_string()));
        }
    }
    let mut bytes = [0u8; 32];
    for (i, limb) in limbs.iter().enumerate() {
        bytes[8 * i..8 * i + 8].copy_from_slice(&limb.to_le_bytes());
    }
    Option::from(Fr::from_repr(bytes)).ok_or_else(|| FieldParseError::NotCanonical(text.to_string()))
}

/// The element as a decimal number.
pub fn fr_to_decimal(x: &Fr) -> String {
    let repr = x.to_repr();
    // Little-endian bytes to base-10 by repeated division of a u32-limb big integer.
    let mut limbs: Vec<u32> = repr.as_ref().chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let mut digits = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 10) as u32;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        return "0".to_string();
    }
    digits.reverse();
    String::from_utf8(digits).expect("ascii digits")
}

/// Builds a field element from a little-endian integer of at most 254 bits that is known to
/// be below the modulus, or reduces it once if it is not (any 254-bit integer is < 2r).
pub(crate) fn fr_from_u256_reduced(limbs: [u64; 4]) -> Fr {
    let mut bytes = [0u8; 64];
    for (i, limb) in limbs.iter().enumerate() {
        bytes[8 * i..8 * i + 8].copy_from_slice(&limb.to_le_bytes());
    }
    Fr::from_uniform_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejections() {
        let x = Fr::from(0x1234_5678_9abc_def0u64) * Fr::from(u64::MAX);
        assert_eq!(fr_from_hex(&fr_to_hex(&x)).unwrap(), x);
        assert_eq!(fr_from_hex("0x1").unwrap(), Fr::ONE);
        assert!(matches!(fr_from_hex("12"), Err(FieldParseError::NotHex(_))));
        assert!(matches!(fr_from_hex("0x"), Err(FieldParseError::NotHex(_))));
        assert!(matches!(fr_from_hex("0xzz"), Err(FieldParseError::NotHex(_))));
        let modulus = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";
        assert!(matches!(fr_from_hex(modulus), Err(FieldParseError::NotCanonical(_))));
        assert_eq!(fr_to_hex(&-Fr::ONE), "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000000");
    }

    #[test]
    fn decimal_round_trip_and_rejections() {
        let x = -Fr::from(12345);
        assert_eq!(fr_from_decimal(&fr_to_decimal(&x)).unwrap(), x);
        assert_eq!(fr_to_decimal(&Fr::from(1_000_007)), "1000007");
        assert_eq!(fr_from_decimal("0").unwrap(), Fr::ZERO);
        let modulus = "21888242871839275222246405745257275088548364400416034343698204186575808495617";
        assert!(fr_from_decimal(modulus).is_err());
        assert!(fr_from_decimal("12a").is_err());
    }
}
