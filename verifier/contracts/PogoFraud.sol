// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// A claim that block `blockIndex` of a candidate breaks DESIGN §2: the old model's block
/// and the update's block in the clear, the candidate's new-model leaf at that block, and
/// the three Merkle paths (siblings from the leaf level up, `depth` each) under the old
/// root, the update root and the new root.
struct FraudClaim {
    uint64 blockIndex;
    uint256[16] oldBlock; // e_0..e_15 of the old model's block (ignored past nb)
    uint256 qLo; // the update's nibbles 0..55, packed (ignored past nb)
    uint256 qHi; // nibbles 56..111 (ignored past nb)
    uint256 scale; // s_b (ignored past nb)
    uint256 updateLeaf; // past nb only: the update tree's leaf there (must be 0)
    uint256 newLeaf; // the candidate's new-model leaf at blockIndex
    uint256[] oldPath; // ignored past nb
    uint256[] updatePath;
    uint256[] newPath;
}

/// @title Fraud proofs for one block of an update (the fraud-proof issue).
/// @notice `check` shows, from the preimages of one block's leaves and their paths under the
/// committed roots, that the candidate's new model is not the old one with the update
/// applied (DESIGN §2): the new leaf differs from `H_16` of the applied block, a weight
/// leaves `[0, 2^32)`, the update's block is not a valid encoding (nibbles above 2^224 or a
/// scale of 2^32 or more), or, past the model's `nb` blocks, a padding leaf of the new or the
/// update tree is not 0. An honest block, a wrong path or a preimage that does not hash to
/// its leaf reverts: a false claim costs only its gas.
///
/// Poseidon is circomlib's (`H_2`, `H_3`, `H_16`), computed on the optimized schedule (sparse
/// partial rounds, as `pogo_circuits::poseidon::OptimizedSpec`). Its 3,922 constants are too
/// many for one contract's code, so they live in data contracts (code `0x00 ‖ words`, never
/// executable) whose concatenation the constructor checks against `CONSTANTS_HASH`: this
/// contract's code alone fixes the hash it computes.
contract PogoFraud {
    uint256 internal constant P = 21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// keccak256 of the constant words (32-byte big-endian) of the widths 3, 4 and 17, each
    /// laid out as `pogo_verifier::fraud::constant_words` writes it.
    bytes32 public constant CONSTANTS_HASH = 0x6da26892778ecfff4d3e6f842d30587403bcc330092c3f5c0debb0f589ee7d94;
    /// Words per width: 4t + R_P + 4t + 2t² + R_P(2t − 1).
    uint256 internal constant WORDS_T3 = 384;
    uint256 internal constant WORDS_T4 = 512;
    // Read by no code: it documents the layout (inline assembly needs WORDS as a literal).
    // slither-disable-next-line unused-state
    uint256 internal constant WORDS_T17 = 3026;
    uint256 internal constant WORDS = 3922; // WORDS_T3 + WORDS_T4 + WORDS_T17

    /// How a claim shows fraud (`check`'s answer).
    uint8 public constant NEW_LEAF_DIFFERS = 1;
    uint8 public constant WEIGHT_OUT_OF_RANGE = 2;
    uint8 public constant BAD_UPDATE_ENCODING = 3;
    uint8 public constant PADDING_NOT_ZERO = 4;

    address[] private chunks;

    error BadConstants();
    error NotFieldElement(uint256 value);
    error WrongDepth(uint32 depth);
    error BlockOutsideTree(uint64 blockIndex);
    /// A path (or its leaf's preimage) does not lead to the committed root: 0 old, 1 update, 2 new.
    error WrongPath(uint8 tree);
    /// The old block's element `k` is not 7 packed 32-bit limbs: no honest old model has it.
    error BadOldBlock(uint8 element);
    /// The block is applied exactly: there is no fraud at it.
    error NoFraud(uint64 blockIndex);
    error WrongInputCount(uint256 count);

    /// `data`: the data contracts holding the constant words, in order.
    constructor(address[] memory data) {
        // Each data contract's code starts with STOP: it never runs anything.
        for (uint256 i = 0; i < data.length; i++) {
            bytes1 first;
            address chunk = data[i];
            assembly ("memory-safe") {
                let ptr := mload(0x40)
                mstore(ptr, 0)
                extcodecopy(chunk, ptr, 0, 1)
                first := mload(ptr)
            }
            if (first != 0x00 || chunk.code.length < 2) revert BadConstants();
        }
        uint256 base = loadFrom(data);
        bytes32 hash;
        assembly ("memory-safe") {
            hash := keccak256(base, mul(WORDS, 32))
        }
        if (hash != CONSTANTS_HASH) revert BadConstants();
        chunks = data;
    }

    /// circomlib's `H_n` for n = 2, 3 or 16 (the hashes of DESIGN §2; for tests and tools).
    function poseidon(uint256[] calldata inputs) external view returns (uint256) {
        uint256 n = inputs.length;
        if (n != 2 && n != 3 && n != 16) revert WrongInputCount(n);
        for (uint256 i = 0; i < n; i++) {
            if (inputs[i] >= P) revert NotFieldElement(inputs[i]);
        }
        uint256 c = loadFrom(chunks);
        uint256[] memory x = inputs;
        return hashN(c, x);
    }

    /// Decides a fraud claim against a candidate's roots: returns how the block is wrong, or
    /// reverts (`NoFraud`, `WrongPath`, ...) when the claim shows nothing.
    function check(uint256 oldRoot, uint256 newRoot, uint256 updateRoot, uint64 nb, uint32 depth, FraudClaim calldata c)
        external
        view
        returns (uint8 kind)
    {
        if (depth == 0 || depth > 32) revert WrongDepth(depth);
        uint64 b = c.blockIndex;
        if (uint256(b) >= (uint256(1) << depth)) revert BlockOutsideTree(b);
        if (c.updatePath.length != depth || c.newPath.length != depth) revert WrongDepth(depth);
        if (c.newLeaf >= P) revert NotFieldElement(c.newLeaf);
        uint256 k = loadFrom(chunks);
        if (b >= nb) {
            // Padding: both trees hold 0 there (DESIGN §2 Trees).
            if (c.updateLeaf >= P) revert NotFieldElement(c.updateLeaf);
            if (rootOf(k, c.updateLeaf, b, c.updatePath) != updateRoot) revert WrongPath(1);
            if (rootOf(k, c.newLeaf, b, c.newPath) != newRoot) revert WrongPath(2);
            if (c.updateLeaf != 0 || c.newLeaf != 0) return PADDING_NOT_ZERO;
            revert NoFraud(b);
        }
        if (c.oldPath.length != depth) revert WrongDepth(depth);
        uint256[] memory old = new uint256[](16);
        for (uint256 i = 0; i < 16; i++) {
            uint256 e = c.oldBlock[i];
            if (e >> 224 != 0) revert BadOldBlock(uint8(i));
            old[i] = e;
        }
        if (rootOf(k, hashN(k, old), b, c.oldPath) != oldRoot) revert WrongPath(0);
        if (c.qLo >= P || c.qHi >= P || c.scale >= P) revert NotFieldElement(c.scale);
        uint256[] memory upd = new uint256[](3);
        (upd[0], upd[1], upd[2]) = (c.qLo, c.qHi, c.scale);
        if (rootOf(k, hashN(k, upd), b, c.updatePath) != updateRoot) revert WrongPath(1);
        if (rootOf(k, c.newLeaf, b, c.newPath) != newRoot) revert WrongPath(2);
        if (c.qLo >> 224 != 0 || c.qHi >> 224 != 0 || c.scale >> 32 != 0) return BAD_UPDATE_ENCODING;
        // u_new = u_old + s·(n − 8) for all 112 weights, exact (DESIGN §2 Update).
        uint256[] memory applied = new uint256[](16);
        int256 s = int256(c.scale);
        for (uint256 j = 0; j < 112; j++) {
            uint256 u = (old[j / 7] >> (32 * (j % 7))) & 0xffffffff;
            uint256 q = j < 56 ? c.qLo : c.qHi;
            int256 n = int256((q >> (4 * (j % 56))) & 0xf);
            int256 v = int256(u) + s * (n - 8);
            if (v < 0 || v > 0xffffffff) return WEIGHT_OUT_OF_RANGE;
            applied[j / 7] |= uint256(v) << (32 * (j % 7));
        }
        if (hashN(k, applied) != c.newLeaf) return NEW_LEAF_DIFFERS;
        revert NoFraud(b);
    }

    /// The root a path gives for `leaf` at `index` (bit l set: the node at height l is a right child).
    function rootOf(uint256 k, uint256 leaf, uint64 index, uint256[] calldata path) private pure returns (uint256 node) {
        node = leaf;
        uint256[] memory pair = new uint256[](2);
        for (uint256 l = 0; l < path.length; l++) {
            uint256 sibling = path[l];
            if (sibling >= P) revert NotFieldElement(sibling);
            (pair[0], pair[1]) = (index >> l) & 1 == 0 ? (node, sibling) : (sibling, node);
            node = hashN(k, pair);
        }
    }

    /// Copies the constant words out of the data contracts into fresh memory; returns where.
    function loadFrom(address[] memory data) private view returns (uint256 base) {
        uint256 total;
        assembly ("memory-safe") {
            base := mload(0x40)
            let dst := base
            for { let i := 0 } lt(i, mload(data)) { i := add(i, 1) } {
                let chunk := mload(add(add(data, 0x20), mul(i, 0x20)))
                let size := extcodesize(chunk)
                if iszero(size) { size := 1 }
                extcodecopy(chunk, dst, 1, sub(size, 1))
                dst := add(dst, sub(size, 1))
                total := add(total, sub(size, 1))
            }
            mstore(0x40, add(base, mul(WORDS, 32)))
        }
        if (total != WORDS * 32) revert BadConstants();
    }

    /// `H_n(x)` for n = 2, 3, 16 with the constants at `k` (see `CONSTANTS_HASH`).
    function hashN(uint256 k, uint256[] memory x) private pure returns (uint256 out) {
        uint256 n = x.length;
        (uint256 at, uint256 rp) = n == 2
            ? (k, uint256(57))
            : n == 3 ? (k + WORDS_T3 * 32, uint256(56)) : (k + (WORDS_T3 + WORDS_T4) * 32, uint256(68));
        assembly ("memory-safe") {
            let t := add(n, 1)
            let st := mload(0x40)
            let tmp := add(st, mul(t, 0x20))
            mstore(0x40, add(tmp, mul(t, 0x20)))
            mstore(st, 0)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(add(st, mul(add(i, 1), 0x20)), mload(add(add(x, 0x20), mul(i, 0x20))))
            }
            function pow5(v) -> r {
                let v2 := mulmod(v, v, P)
                r := mulmod(mulmod(v2, v2, P), v, P)
            }
            // Adds the round's constants, S-boxes every cell, multiplies by matrix m.
            function full(st_, tmp_, t_, consts, m) {
                for { let i := 0 } lt(i, t_) { i := add(i, 1) } {
                    let o := mul(i, 0x20)
                    mstore(add(tmp_, o), pow5(addmod(mload(add(st_, o)), mload(add(consts, o)), P)))
                }
                for { let i := 0 } lt(i, t_) { i := add(i, 1) } {
                    let row := add(m, mul(mul(i, t_), 0x20))
                    let acc := 0
                    for { let j := 0 } lt(j, t_) { j := add(j, 1) } {
                        acc := addmod(acc, mulmod(mload(add(row, mul(j, 0x20))), mload(add(tmp_, mul(j, 0x20))), P), P)
                    }
                    mstore(add(st_, mul(i, 0x20)), acc)
                }
            }
            let w := mul(t, 0x20)
            let firstFull := at
            let partial := add(firstFull, mul(4, w))
            let secondFull := add(partial, mul(rp, 0x20))
            let mds := add(secondFull, mul(4, w))
            let pre := add(mds, mul(t, w))
            let sparse := add(pre, mul(t, w))
            for { let r := 0 } lt(r, 4) { r := add(r, 1) } {
                let m := mds
                if eq(r, 3) { m := pre }
                full(st, tmp, t, add(firstFull, mul(r, w)), m)
            }
            // Partial rounds: cell 0 gets its constant and the S-box; then the sparse matrix
            // [[m00, row], [col, I]]: cell 0 mixes every cell, cell i adds col_i · x0.
            let sw := mul(sub(mul(2, t), 1), 0x20)
            for { let p := 0 } lt(p, rp) { p := add(p, 1) } {
                let x0 := pow5(addmod(mload(st), mload(add(partial, mul(p, 0x20))), P))
                let m := add(sparse, mul(p, sw))
                let row := add(m, 0x20)
                let col := add(m, w)
                let new0 := mulmod(mload(m), x0, P)
                for { let i := 1 } lt(i, t) { i := add(i, 1) } {
                    let cell := add(st, mul(i, 0x20))
                    let xi := mload(cell)
                    let o := mul(sub(i, 1), 0x20)
                    new0 := addmod(new0, mulmod(mload(add(row, o)), xi, P), P)
                    mstore(cell, addmod(xi, mulmod(mload(add(col, o)), x0, P), P))
                }
                mstore(st, new0)
            }
            for { let r := 0 } lt(r, 4) { r := add(r, 1) } {
                full(st, tmp, t, add(secondFull, mul(r, w)), mds)
            }
            out := mload(st)
        }
    }
}
