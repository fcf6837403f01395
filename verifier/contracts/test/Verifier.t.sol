// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./Base.sol";
import "PogoVerifierGuard.sol";

/// The generated verifier shipped for the demo's keys (D = 6, S = 2, INSECURE seed 0),
/// deployed from its recorded bytecode, against a proof `pogo prove` made with those keys
/// (test/fixtures/d6-s2-dev0.proof, written by scripts/forge/record-proof.sh), with and
/// without the inverse hints a miner appends (test/fixtures/d6-s2-dev0.calldata); and the
/// guard that direct callers should use.
contract VerifierTest is Checks {
    uint256 internal constant FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    string internal constant SHIPPED = "build/verifiers/d6-s2-dev0/";

    address internal verifier;
    PogoVerifierGuard internal guard;
    uint256[] internal inputs;
    bytes internal proof;
    /// `proof` followed by its three inverse hints.
    bytes internal hinted;

    function setUp() public {
        bytes memory code = vm.parseBytes(string.concat("0x", vm.trim(vm.readFile(string.concat(SHIPPED, "verifier.bin")))));
        address at;
        assembly ("memory-safe") {
            at := create(0, add(code, 0x20), mload(code))
        }
        require(at != address(0), "deploying the shipped verifier");
        verifier = at;
        string memory file = vm.readFile("test/fixtures/d6-s2-dev0.proof");
        string memory manifest = vm.readFile(string.concat(SHIPPED, "verifier.json"));
        ok(
            keccak256(bytes(vm.parseJsonString(file, ".vk_sha256")))
                == keccak256(bytes(vm.parseJsonString(manifest, ".vk_sha256"))),
            "the recorded proof was made with the shipped verifier's keys"
        );
        inputs.push(vm.parseJsonUint(file, ".old_root"));
        inputs.push(vm.parseJsonUint(file, ".new_root"));
        inputs.push(vm.parseJsonUint(file, ".update_root"));
        inputs.push(vm.parseJsonUint(file, ".blocks"));
        uint256[] memory indices = vm.parseJsonUintArray(file, ".indices");
        for (uint256 i = 0; i < indices.length; i++) {
            inputs.push(indices[i]);
        }
        proof = vm.parseJsonBytes(file, ".proof");
        guard = new PogoVerifierGuard(verifier, 6, proof.length);
        bytes memory data = vm.parseBytes(vm.trim(vm.readFile("test/fixtures/d6-s2-dev0.calldata")));
        ok(data.length == 32 * inputs.length + proof.length + 96, "the calldata is inputs, proof and 3 hints");
        hinted = new bytes(data.length - 32 * inputs.length);
        for (uint256 i = 0; i < hinted.length; i++) {
            hinted[i] = data[32 * inputs.length + i];
        }
        ok(keccak256(bytes.concat(abi.encodePacked(inputs), proof)) == keccak256(slice(data, 0, 32 * inputs.length + proof.length)), "the same inputs and proof");
    }

    function slice(bytes memory data, uint256 from, uint256 to) internal pure returns (bytes memory out) {
        out = new bytes(to - from);
        for (uint256 i = from; i < to; i++) {
            out[i - from] = data[i];
        }
    }

    function call(uint256[] memory words, bytes memory tail) internal view returns (bool success) {
        (success,) = verifier.staticcall{gas: 1_000_000}(bytes.concat(abi.encodePacked(words), tail));
    }

    function test_the_recorded_proof_verifies() public view {
        ok(call(inputs, proof), "the recorded proof is accepted");
        ok(guard.verify(inputs, proof), "and through the guard");
    }

    function test_a_flipped_byte_anywhere_is_rejected() public view {
        for (uint256 at = 0; at < proof.length; at += 97) {
            bytes memory bad = proof;
            bad[at] = bad[at] ^ 0x01;
            ok(!call(inputs, bad), "a flipped proof byte is rejected");
            bad[at] = bad[at] ^ 0x01;
        }
        for (uint256 i = 0; i < inputs.length; i++) {
            uint256[] memory other = inputs;
            other[i] ^= 1;
            ok(!call(other, proof), "a changed public input is rejected");
            ok(!guard.verify(other, proof), "by the guard too");
            other[i] ^= 1;
        }
    }

    function gasOf(uint256[] memory words, bytes memory tail) internal view returns (uint256 used) {
        uint256 before = gasleft();
        ok(call(words, tail), "accepted");
        used = before - gasleft();
    }

    /// The three inverses the verifier would compute with MODEXP, sent after the proof: the
    /// proof verifies with them, for less gas, and each is checked, never trusted.
    function test_inverse_hints_are_checked_and_save_the_modexp_calls() public {
        ok(call(inputs, proof), "accepted (and the verifier's account warm for both measures)");
        uint256 plain = gasOf(inputs, proof);
        uint256 withHints = gasOf(inputs, hinted);
        ok(withHints + 2_000 < plain, "hints save MODEXP gas");
        for (uint256 k = 0; k < 3; k++) {
            uint256 at = proof.length + 32 * k;
            bytes memory bad = hinted;
            uint256 hint;
            assembly ("memory-safe") {
                hint := mload(add(add(bad, 0x20), at))
            }
            uint256[3] memory wrong = [hint + 1, hint + FIELD, 1];
            for (uint256 w = 0; w < 3; w++) {
                uint256 value = wrong[w];
                assembly ("memory-safe") {
                    mstore(add(add(bad, 0x20), at), value)
                }
                ok(!call(inputs, bad), "a wrong or non-canonical hint is rejected");
            }
            assembly ("memory-safe") {
                mstore(add(add(bad, 0x20), at), 0)
            }
            ok(call(inputs, bad), "a zero hint falls back to MODEXP");
            assembly ("memory-safe") {
                mstore(add(add(bad, 0x20), at), hint)
            }
        }
        bytes memory flipped = hinted;
        flipped[40] = flipped[40] ^ 0x01;
        ok(!call(inputs, flipped), "hints do not rescue a tampered proof");
        PogoVerifierGuard hintedGuard = new PogoVerifierGuard(verifier, 6, hinted.length);
        ok(hintedGuard.verify(inputs, hinted), "a guard sized for the proof and its hints accepts it");
    }

    /// What a direct caller must know: the verifier reduces inputs modulo r and ignores
    /// bytes after the proof's hints. The guard refuses both.
    function test_the_verifier_accepts_x_plus_r_and_trailing_bytes_and_the_guard_refuses_them() public {
        uint256[] memory aliased = inputs;
        aliased[0] += FIELD;
        ok(call(aliased, proof), "the raw verifier accepts old root + r (reduced mod r)");
        vm.expectRevert(abi.encodeWithSelector(PogoVerifierGuard.NotFieldElement.selector, 0, aliased[0]));
        guard.verify(aliased, proof);

        bytes memory longer = bytes.concat(hinted, hex"deadbeef");
        ok(call(inputs, longer), "the raw verifier ignores bytes after the hints");
        vm.expectRevert(abi.encodeWithSelector(PogoVerifierGuard.WrongProofLength.selector, proof.length, longer.length));
        guard.verify(inputs, longer);

        uint256[] memory fewer = new uint256[](5);
        vm.expectRevert(abi.encodeWithSelector(PogoVerifierGuard.WrongInputCount.selector, 6, 5));
        guard.verify(fewer, proof);
    }

    function test_a_guard_needs_a_verifier_with_code() public {
        vm.expectRevert(PogoVerifierGuard.BadGuard.selector);
        new PogoVerifierGuard(address(0xdead), 6, 100);
    }
}
