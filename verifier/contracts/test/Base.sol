// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "PogoRounds.sol";

/// The cheatcodes these tests use (forge's `Vm`; forge-std, its usual home, is a git
/// dependency this project cannot take, so the few signatures are declared here).
interface Vm {
    function roll(uint256 blockNumber) external;
    function prank(address sender) external;
    function deal(address who, uint256 balance) external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 selector) external;
    function expectRevert() external;
    function setBlockhash(uint256 blockNumber, bytes32 blockHash) external;
    function readFile(string calldata path) external view returns (string memory);
    function parseJsonBytes(string calldata json, string calldata key) external pure returns (bytes memory);
    function parseBytes(string calldata text) external pure returns (bytes memory);
    function trim(string calldata text) external pure returns (string memory);
    function parseJsonUint(string calldata json, string calldata key) external pure returns (uint256);
    function parseJsonUintArray(string calldata json, string calldata key) external pure returns (uint256[] memory);
    function parseJsonString(string calldata json, string calldata key) external pure returns (string memory);
    function label(address who, string calldata name) external;
}

/// Assertions that say what differed.
abstract contract Checks {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function eq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": ", vmString(a), " != ", vmString(b)));
    }

    function ok(bool cond, string memory what) internal pure {
        if (!cond) revert(what);
    }

    function vmString(uint256 v) internal pure returns (string memory) {
        if (v == 0) return "0";
        bytes memory digits;
        while (v != 0) {
            digits = bytes.concat(bytes1(uint8(48 + (v % 10))), digits);
            v /= 10;
        }
        return string(digits);
    }
}

/// Stands in for a task's generated verifier in the round-contract tests (the generated
/// verifier itself is tested against a recorded proof in `Verifier.t.sol`). Like the
/// circuit, it accepts only proofs of true statements: an update the test's world applied
/// for real (`registerTrueUpdate`), with the exact public inputs the contract computed,
/// sampled indices included. The proof is `keccak256` of those inputs.
contract CircuitDouble {
    mapping(bytes32 => bool) public trueUpdate;

    function registerTrueUpdate(uint256 oldRoot, uint256 newRoot, uint256 updateRoot) external {
        trueUpdate[keccak256(abi.encode(oldRoot, newRoot, updateRoot))] = true;
    }

    function proofFor(uint256[] memory inputs) external pure returns (bytes memory) {
        return abi.encode(keccak256(abi.encodePacked(inputs)));
    }

    /// Called as the generated verifier is: the public inputs as words, then the proof.
    fallback(bytes calldata data) external returns (bytes memory) {
        require(data.length >= 6 * 32 && data.length % 32 == 0, "bad length");
        uint256 n = data.length / 32 - 1;
        uint256[] memory inputs = new uint256[](n);
        for (uint256 i = 0; i < n; i++) {
            inputs[i] = uint256(bytes32(data[32 * i:32 * i + 32]));
        }
        require(trueUpdate[keccak256(abi.encode(inputs[0], inputs[1], inputs[2]))], "false statement");
        require(bytes32(data[32 * n:]) == keccak256(abi.encodePacked(inputs)), "bad proof");
        return "";
    }
}

/// Stands in for `PogoFraud` (tested block by block in the Rust suite, with real Poseidon
/// paths): a claim against a candidate succeeds exactly when the test's world marked its
/// update as wrong in a block the proof did not sample.
contract FraudDouble {
    mapping(bytes32 => bool) public wrongSomewhere;

    function markWrong(uint256 oldRoot, uint256 newRoot, uint256 updateRoot) external {
        wrongSomewhere[keccak256(abi.encode(oldRoot, newRoot, updateRoot))] = true;
    }

    function check(uint256 oldRoot, uint256 newRoot, uint256 updateRoot, uint64, uint32, FraudClaim calldata)
        external
        view
        returns (uint8 kind)
    {
        require(wrongSomewhere[keccak256(abi.encode(oldRoot, newRoot, updateRoot))], "no fraud");
        return 3;
    }
}

/// The round contract as pogo deploys it (the shipped bytecode of `build/`, not a
/// recompilation), one task, and the helpers every test drives a round with.
abstract contract RoundsFixture is Checks {
    uint256 internal constant FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint128 internal constant BOND = 1 ether;
    uint128 internal constant STAKE = 10 ether;
    uint128 internal constant REWARD = 5 ether;

    PogoRounds internal rounds;
    /// The same address, typed for the functions `PogoRounds` runs in its extension.
    PogoRoundsExtension internal ext;
    CircuitDouble internal circuit;
    FraudDouble internal fraudChecker;
    uint256 internal task;

    address internal owner = address(0xA11CE);
    address[3] internal miners = [address(0x111), address(0x222), address(0x333)];
    address[4] internal verifiers = [address(0xAAA1), address(0xAAA2), address(0xAAA3), address(0xAAA4)];

    /// Held-out batches of the task's first set (4 batches, a tree of depth 2).
    bytes[4] internal batches;
    bytes32[4] internal leaves;

    /// No committee seats (the attestation of a task without a committee).
    uint16[] internal none;

    /// Salts of the commits of the open round, by candidate index.
    mapping(uint16 => bytes32) internal salts;
    mapping(uint16 => uint256[2]) internal committedRoots;

    function deployShipped(string memory name, bytes memory args) internal returns (address at) {
        string memory json = vm.readFile(string.concat("build/", name, ".json"));
        bytes memory code = bytes.concat(vm.parseJsonBytes(json, ".bytecode"), args);
        assembly ("memory-safe") {
            at := create(0, add(code, 0x20), mload(code))
        }
        require(at != address(0), string.concat("deploying ", name));
    }

    function params() internal view virtual returns (PogoRoundsState.TaskParams memory p) {
        p.genesisRoot = 1000;
        p.nb = 40;
        p.depth = 6;
        p.samples = 2;
        p.verifier = address(circuit);
        p.verifierGas = 300_000;
        p.commitWindow = 5;
        p.revealWindow = 5;
        p.proofWindow = 5;
        p.attestWindow = 20;
        p.challengeWindow = 5;
        p.maxCandidates = 3;
        p.verifierFeeBps = 1000;
        p.fraudSlashBps = 5000;
        p.margin = 10;
        p.quorum = 2 * STAKE;
        p.minerBond = BOND;
        p.minVerifierStake = STAKE;
        p.reward = REWARD;
        p.dataset = keccak256("dataset");
        p.spec = keccak256("spec");
        p.evalRoot = evalRoot();
        p.evalBatches = 4;
    }

    function evalRoot() internal view returns (bytes32) {
        bytes32 left = keccak256(abi.encodePacked(bytes1(0x01), leaves[0], leaves[1]));
        bytes32 right = keccak256(abi.encodePacked(bytes1(0x01), leaves[2], leaves[3]));
        return keccak256(abi.encodePacked(bytes1(0x01), left, right));
    }

    function setUp() public virtual {
        circuit = new CircuitDouble();
        fraudChecker = new FraudDouble();
        address extension = deployShipped("PogoRoundsExtension", abi.encode(address(fraudChecker)));
        rounds = PogoRounds(deployShipped("PogoRounds", abi.encode(extension)));
        ext = PogoRoundsExtension(address(rounds));
        for (uint256 i = 0; i < 4; i++) {
            batches[i] = abi.encodePacked("held-out batch ", bytes1(uint8(48 + i)));
            leaves[i] = keccak256(abi.encodePacked(bytes1(0x00), batches[i]));
        }
        vm.deal(owner, 1000 ether);
        vm.prank(owner);
        task = rounds.createTask{value: 100 ether}(params());
        for (uint256 i = 0; i < miners.length; i++) {
            vm.deal(miners[i], 100 ether);
        }
        for (uint256 i = 0; i < verifiers.length; i++) {
            vm.deal(verifiers[i], 100 ether);
            vm.prank(verifiers[i]);
            rounds.join{value: STAKE}(task);
        }
        vm.roll(block.number + 1);
    }

    // ---- reading the contract ----

    function round() internal view returns (PogoRoundsState.Round memory) {
        (,,,,, uint64 count,) = ext.getTask(task);
        return ext.getRound(task, count - 1);
    }

    function roundId() internal view returns (uint64 id) {
        (,,,,, uint64 count, bool open) = ext.getTask(task);
        return open ? count - 1 : count;
    }

    function candidate(uint16 index) internal view returns (PogoRoundsState.Candidate memory) {
        (,,,,, uint64 count,) = ext.getTask(task);
        return ext.getCandidate(task, count - 1, index);
    }

    function root() internal view returns (uint256 r) {
        (,,, r,,,) = ext.getTask(task);
    }

    function pool() internal view returns (uint256 p) {
        (,,,, p,,) = ext.getTask(task);
    }

    // ---- driving a round ----

    function commitAs(address miner, uint256 newRoot, uint256 updateRoot) internal returns (uint16 index) {
        uint64 id = roundId();
        bytes32 salt = keccak256(abi.encode(miner, newRoot, updateRoot, id));
        bytes32 c = ext.commitmentOf(task, id, miner, newRoot, updateRoot, keccak256("blob"), salt);
        vm.prank(miner);
        (, index) = rounds.commit{value: BOND}(task, id, c);
        salts[index] = salt;
        committedRoots[index] = [newRoot, updateRoot];
    }

    /// Commits an update the world applied for real (the circuit double will prove it).
    function commitTrue(address miner, uint256 newRoot, uint256 updateRoot) internal returns (uint16 index) {
        circuit.registerTrueUpdate(root(), newRoot, updateRoot);
        return commitAs(miner, newRoot, updateRoot);
    }

    function rollTo(uint256 number) internal {
        if (block.number < number) vm.roll(number);
    }

    function revealAs(address miner, uint16 index) internal {
        rollTo(round().commitEnd + 1);
        uint256[2] memory r = committedRoots[index];
        vm.prank(miner);
        rounds.reveal(task, index, r[0], r[1], keccak256("blob"), salts[index]);
    }

    /// Moves past both randomness blocks and gives them hashes.
    function closeRandomness() internal {
        PogoRoundsState.Round memory r = round();
        rollTo(r.revealEnd + 3);
        vm.setBlockhash(r.revealEnd + 1, keccak256(abi.encode("phase 1", r.revealEnd)));
        vm.setBlockhash(r.revealEnd + 2, keccak256(abi.encode("phase 2", r.revealEnd)));
    }

    function proofOf(uint16 index) internal view returns (bytes memory) {
        return circuit.proofFor(ext.publicInputs(task, index));
    }

    function prove(uint16 index) internal {
        closeRandomness();
        rounds.submitProof(task, index, proofOf(index));
    }

    function evalPath(uint32 batch) internal view returns (bytes32[] memory path) {
        path = new bytes32[](2);
        path[0] = leaves[batch ^ 1];
        uint32 other = (batch >> 1) ^ 1;
        path[1] = keccak256(abi.encodePacked(bytes1(0x01), leaves[2 * other], leaves[2 * other + 1]));
    }

    function revealEval() internal {
        rollTo(round().proofEnd + 1);
        (, uint32 batch,) = ext.evalBatchOf(task);
        vm.prank(owner);
        rounds.revealEvalData(task, batches[batch], evalPath(batch));
    }

    function verdictsFor(uint8 verdict) internal view returns (uint8[] memory v, uint64[] memory lossNew) {
        PogoRoundsState.Round memory r = round();
        v = new uint8[](r.commits);
        lossNew = new uint64[](r.commits);
        for (uint16 i = 0; i < r.commits; i++) {
            PogoRoundsState.Candidate memory c = candidate(i);
            v[i] = c.revealed ? verdict : 0;
            lossNew[i] = verdict == 1 ? 500 : 1000;
        }
    }

    function attestAs(address verifier, uint8[] memory v, uint64[] memory lossNew) internal {
        rollTo(round().evalEnd + 1);
        bytes32 c = ext.attestationCommitmentOf(task, roundId(), verifier, 1000, v, lossNew, keccak256("salt"));
        uint16[] memory seats = seatsOf(verifier);
        vm.prank(verifier);
        rounds.attest(task, c, seats);
    }

    /// The committee seats `verifier` won in the open round (none without a committee).
    function seatsOf(address verifier) internal view returns (uint16[] memory) {
        return ext.seatsOf(task, roundId(), verifier);
    }

    function openAs(address verifier, uint8[] memory v, uint64[] memory lossNew) internal {
        rollTo(round().attestEnd + 1);
        vm.prank(verifier);
        rounds.revealAttestation(task, 1000, v, lossNew, keccak256("salt"));
    }

    /// Every listed verifier attests `verdict` on every revealed candidate, then opens it.
    function judge(uint8 verdict, uint256 howMany) internal {
        (uint8[] memory v, uint64[] memory lossNew) = verdictsFor(verdict);
        for (uint256 i = 0; i < howMany; i++) {
            attestAs(verifiers[i], v, lossNew);
        }
        for (uint256 i = 0; i < howMany; i++) {
            openAs(verifiers[i], v, lossNew);
        }
    }

    function finalizeRound() internal {
        rollTo(round().challengeEnd + 1);
        rounds.finalize(task);
    }

    /// A true update committed, revealed and proven by `miner`, and the held-out batch
    /// revealed: the round is ready for attestations.
    function provenRound(address miner, uint256 newRoot, uint256 updateRoot) internal returns (uint16 index) {
        index = commitTrue(miner, newRoot, updateRoot);
        revealAs(miner, index);
        prove(index);
        revealEval();
    }

    /// Two true candidates, committed by `x` and `y` (roots 2000 and 2001), revealed and
    /// proven, with the held-out batch revealed.
    function twoProvenCandidates(address x, address y) internal returns (uint16 a, uint16 b) {
        a = commitTrue(x, 2000, 3000);
        b = commitTrue(y, 2001, 3001);
        revealAs(x, a);
        revealAs(y, b);
        prove(a);
        prove(b);
        revealEval();
    }

    /// One full honest round won by `miner` with `newRoot`.
    function honestRound(address miner, uint256 newRoot, uint256 updateRoot) internal returns (uint16 index) {
        index = provenRound(miner, newRoot, updateRoot);
        judge(1, 2);
        finalizeRound();
    }

    /// Verdicts and new losses for two candidates.
    function two(uint8 v0, uint8 v1, uint64 loss0, uint64 loss1)
        internal
        pure
        returns (uint8[] memory v, uint64[] memory lossNew)
    {
        v = new uint8[](2);
        lossNew = new uint64[](2);
        (v[0], v[1], lossNew[0], lossNew[1]) = (v0, v1, loss0, loss1);
    }
}
