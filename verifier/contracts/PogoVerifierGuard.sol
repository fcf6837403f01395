// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// @title A guard in front of a generated update verifier, for callers other than PogoRounds.
/// @notice The generated verifier (snark-verifier's Solidity output, `build/verifiers/*`)
/// reads its calldata as the public inputs, one 32-byte word each, followed by the proof. It
/// reduces every input modulo the BN254 scalar field r, and it reads the proof from fixed
/// offsets. So, called directly:
///
/// * an input written as `x + r` (any word ≥ r) verifies as `x`: the same proof passes for
///   two different numbers, and a caller that keys anything by the raw word (a root as a
///   mapping key) can be fooled;
/// * the three words after the proof are *inverse hints* (the field inverses the verifier
///   would otherwise compute with MODEXP; `pogo verify-proof --evm --calldata-out` writes
///   them): each must be the true inverse, or zero to have MODEXP compute it, so they never
///   change what verifies, only the gas;
/// * bytes after the hints are ignored: the same proof passes with any suffix (and with
///   zero or true hints), so the calldata (or its hash) does not identify the proof.
///
/// `PogoRounds` is not exposed: it computes the inputs itself (roots are refused unless < r
/// when revealed, `nb` and the indices are small) and hashes nothing over the proof bytes.
/// A direct caller should call this guard instead, which refuses both, and a wrong input
/// count, before it calls the verifier with exactly `inputs ‖ proof`.
contract PogoVerifierGuard {
    /// BN254 scalar field modulus r.
    uint256 internal constant FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// The generated verifier this guard calls.
    address public immutable verifier;
    /// Public inputs it takes: 4 + S (old root, new root, update root, nb, S indices).
    uint256 public immutable inputCount;
    /// Bytes of a proof for its circuit configuration (fixed for a verifying key), plus 96
    /// when callers append the three inverse hints.
    uint256 public immutable proofLength;

    /// An input is not below r: it is not the canonical encoding of a field element.
    error NotFieldElement(uint256 index, uint256 value);
    /// The number of inputs is not `inputCount`.
    error WrongInputCount(uint256 expected, uint256 got);
    /// The proof is not exactly `proofLength` bytes.
    error WrongProofLength(uint256 expected, uint256 got);
    /// The constructor's verifier has no code, or a count or length is zero.
    error BadGuard();

    constructor(address verifier_, uint256 inputCount_, uint256 proofLength_) {
        if (verifier_.code.length == 0 || inputCount_ == 0 || proofLength_ == 0) revert BadGuard();
        verifier = verifier_;
        inputCount = inputCount_;
        proofLength = proofLength_;
    }

    /// Whether `proof` verifies for `inputs`; reverts instead when the inputs or the proof
    /// are not in canonical form (so a `false` always means "checked, and wrong").
    function verify(uint256[] calldata inputs, bytes calldata proof) external view returns (bool) {
        if (inputs.length != inputCount) revert WrongInputCount(inputCount, inputs.length);
        if (proof.length != proofLength) revert WrongProofLength(proofLength, proof.length);
        for (uint256 i = 0; i < inputs.length; i++) {
            if (inputs[i] >= FIELD) revert NotFieldElement(i, inputs[i]);
        }
        (bool ok,) = verifier.staticcall(bytes.concat(abi.encodePacked(inputs), proof));
        return ok;
    }
}
