//! Sampled block indices (DESIGN §2 Sampling): `i_j = uint256(keccak256(abi.encode(seed, j)))
//! mod nb` for `j < S`, exactly as the round contract derives them on chain.

use sha3::{Digest, Keccak256};

/// The `S` sampled block indices for a 32-byte seed and `nb` blocks (`nb ≥ 1`).
pub fn sample_indices(seed: &[u8; 32], samples: usize, blocks: u64) -> Vec<u64> {
    assert!(blocks >= 1, "a model has at least one block");
    (0..samples as u64)
        .map(|j| {
            // abi.encode(bytes32 seed, uint256 j): two 32-byte big-endian words.
            let mut word = [0u8; 64];
            word[..32].copy_from_slice(seed);
            word[56..].copy_from_slice(&j.to_be_bytes());
            let digest = Keccak256::digest(word);
            // A 256-bit big-endian integer mod nb, by Horner's rule on bytes.
            digest.iter().fold(0u128, |acc, &b| ((acc << 8) | u128::from(b)) % u128::from(blocks)) as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers from ethers.js 5 (`defaultAbiCoder.encode(["bytes32","uint256"], ...)`,
    /// `keccak256`, `BigNumber.mod`), the same encoding Solidity's `abi.encode` uses.
    #[test]
    fn matches_solidity_abi_encoding() {
        assert_eq!(sample_indices(&[0xab; 32], 4, 892_858), [327_516, 476_106, 792_856, 835_614]);
        let mut seed = [0u8; 32];
        seed[31] = 7;
        assert_eq!(sample_indices(&seed, 3, 5), [1, 4, 2]);
        assert!(sample_indices(&seed, 100, 1).iter().all(|&i| i == 0));
    }
}
