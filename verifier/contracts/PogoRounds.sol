// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// @title PoGO rounds: commit, randomness, proof, loss attestations, finalize (DESIGN §3).
/// @notice One contract holds every task. Each task has at most one open round at a time:
/// a miner commits (new model root, update root, blob hash, bond); two later block hashes
/// fix the phase-1 seed (the held-out evaluation batch) and the phase-2 seed (the sampled
/// blocks, derived here exactly as DESIGN §2 says, so the miner never chooses them); the
/// miner proves the sampled blocks with the task's generated halo2 verifier; registered
/// verifiers attest to the loss; anyone finalizes after the window. Ether only leaves
/// through `withdraw` (pull payments); every transition emits an event.
contract PogoRounds {
    /// BN254 scalar field modulus: roots and public inputs are elements of this field.
    uint256 public constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// Blocks between a phase's anchor and the block whose hash seeds it.
    uint64 public constant RANDOMNESS_DELAY = 1;

    /// Parameters fixed when a task is registered.
    struct TaskParams {
        uint256 genesisRoot; // model root the first round starts from (DESIGN §2 Trees)
        uint64 nb; // blocks in the model
        uint32 depth; // tree depth D of the circuit configuration
        uint32 samples; // sampled blocks S of the circuit configuration
        address verifier; // generated verifier of UpdateCircuit{D, S}
        uint64 verifierGas; // gas the verifier call may use
        uint64 proofWindow; // blocks after the commit by which the proof must be in
        uint64 attestWindow; // blocks after the commit during which verifiers attest
        uint64 margin; // loss decrease a positive attestation needs (loss units of 1e-9)
        uint128 quorum; // attesting stake (wei) needed to accept: stake, not a count of addresses
        uint128 minerBond; // bond posted with each commit
        uint128 minVerifierStake; // stake a verifier needs to attest
        uint128 reward; // paid from the task's pool for each accepted round
        bytes32 dataset; // commitment to the task's dataset
        bytes32 spec; // hash of the task description (model, hyper-parameters)
    }

    struct Task {
        TaskParams params;
        address owner;
        uint256 root; // current accepted model root
        uint256 pool; // ether for rewards
        uint64 rounds; // rounds opened so far; the open one (if any) is rounds - 1
        bool open;
    }

    enum Verdict {
        None,
        Positive,
        Negative
    }

    struct Round {
        address miner;
        uint256 oldRoot;
        uint256 newRoot;
        uint256 updateRoot;
        bytes32 blobHash;
        uint128 bond;
        uint64 commitBlock;
        uint64 seed1Block; // block whose hash is the phase-1 seed
        uint64 seed2Block; // block whose hash is the phase-2 seed (0 until phase 1 is drawn)
        bytes32 seed1;
        bytes32 seed2;
        bool proven;
        bool finalized;
        bool accepted;
        bool refunded; // finalized without fault of the miner (proven, quorum missed): bond returned
        uint16 attestations;
        uint128 positiveStake;
        uint128 negativeStake;
        uint128 slashLeft; // slashed bond not yet claimed by negative attesters
        uint128 slashStakeLeft; // negative stake that has not claimed yet
    }

    struct Attestation {
        Verdict verdict;
        uint128 stake;
        uint64 lossOld;
        uint64 lossNew;
        bool claimed;
    }

    mapping(uint256 => Task) private tasks;
    uint256 public taskCount;
    mapping(uint256 => mapping(uint64 => Round)) private rounds;
    mapping(uint256 => mapping(uint64 => mapping(address => Attestation))) private attestations;
    mapping(uint256 => mapping(address => uint256)) public stakeOf;
    /// Block of a verifier's (latest) join: its stake weighs only in rounds committed later.
    mapping(uint256 => mapping(address => uint64)) public stakeSince;
    /// Block a verifier called `leave` (0: staked): it weighs in no round committed since,
    /// and its stake is released `attestWindow` blocks later, once every round it could
    /// attest in has closed its window.
    mapping(uint256 => mapping(address => uint64)) public leavingSince;
    /// Ether each address can withdraw.
    mapping(address => uint256) public balanceOf;
    bool private locked;

    event TaskCreated(uint256 indexed task, address indexed owner, TaskParams params);
    event Funded(uint256 indexed task, address indexed from, uint256 amount);
    event VerifierJoined(uint256 indexed task, address indexed verifier, uint256 stake);
    event VerifierLeaving(uint256 indexed task, address indexed verifier, uint256 stake, uint64 releasedAfter);
    event VerifierLeft(uint256 indexed task, address indexed verifier, uint256 stake);
    event Committed(
        uint256 indexed task, uint64 indexed round, address indexed miner, uint256 newRoot, uint256 updateRoot, bytes32 blobHash
    );
    event RandomnessDrawn(uint256 indexed task, uint64 indexed round, uint8 phase, uint64 blockNumber, bytes32 seed);
    event RandomnessRetargeted(uint256 indexed task, uint64 indexed round, uint8 phase, uint64 blockNumber);
    event ProofAccepted(uint256 indexed task, uint64 indexed round, uint256[] publicInputs);
    event Attested(
        uint256 indexed task, uint64 indexed round, address indexed verifier, Verdict verdict, uint64 lossOld, uint64 lossNew
    );
    event Finalized(uint256 indexed task, uint64 indexed round, bool accepted, uint256 newRoot, uint256 reward);
    event Slashed(uint256 indexed task, uint64 indexed round, address indexed miner, uint256 amount, bool proven);
    event Refunded(uint256 indexed task, uint64 indexed round, address indexed miner, uint256 amount);
    event SlashClaimed(uint256 indexed task, uint64 indexed round, address indexed verifier, uint256 amount);
    event Withdrawn(address indexed to, uint256 amount);

    error Reentrant();
    error UnknownTask(uint256 task);
    error BadParams(string why);
    error NotFieldElement(uint256 value);
    error RoundOpen(uint256 task);
    error NoOpenRound(uint256 task);
    error WrongBond(uint256 expected, uint256 got);
    error TooEarly(uint64 now_, uint64 from);
    error TooLate(uint64 now_, uint64 deadline);
    error PhaseNotReady(uint8 phase);
    error AlreadyDrawn(uint8 phase);
    error AlreadyProven();
    error ProofRejected();
    error NotEnoughGas(uint256 needed);
    error NotVerifier(address who);
    error MinerCannotAttest();
    error StakeTooNew(uint64 since, uint64 commitBlock);
    error StakeLeaving(uint64 since);
    error StakeLocked(uint64 releasedAfter);
    error UnchangedModel();
    error AlreadyAttested(address who);
    error VerdictContradictsLosses();
    error AlreadyFinalized();
    error NothingToClaim();
    error NothingToWithdraw();
    error TransferFailed();

    modifier nonReentrant() {
        if (locked) revert Reentrant();
        locked = true;
        _;
        locked = false;
    }

    modifier exists(uint256 task) {
        if (task >= taskCount) revert UnknownTask(task);
        _;
    }

    // ---- tasks and verifiers ----

    /// Registers a task; `msg.value` starts its reward pool. The verifier must have code.
    function createTask(TaskParams calldata p) external payable nonReentrant returns (uint256 task) {
        if (p.genesisRoot >= FIELD_MODULUS) revert NotFieldElement(p.genesisRoot);
        if (p.depth == 0 || p.depth > 32) revert BadParams("depth must be in 1..=32");
        if (p.nb == 0 || p.nb > (uint256(1) << p.depth)) revert BadParams("nb must be in 1..=2^depth");
        if (p.samples == 0) revert BadParams("samples must be at least 1");
        if (p.verifier.code.length == 0) revert BadParams("verifier has no code");
        if (p.verifierGas == 0) revert BadParams("verifierGas must be positive");
        if (p.proofWindow == 0 || p.attestWindow <= p.proofWindow) {
            revert BadParams("need 0 < proofWindow < attestWindow");
        }
        if (p.quorum == 0) revert BadParams("quorum must be positive");
        if (p.minVerifierStake == 0) revert BadParams("minVerifierStake must be positive");
        task = taskCount++;
        Task storage t = tasks[task];
        t.params = p;
        t.owner = msg.sender;
        t.root = p.genesisRoot;
        t.pool = msg.value;
        emit TaskCreated(task, msg.sender, p);
        if (msg.value > 0) emit Funded(task, msg.sender, msg.value);
    }

    /// Adds `msg.value` to a task's reward pool.
    function fund(uint256 task) external payable nonReentrant exists(task) {
        tasks[task].pool += msg.value;
        emit Funded(task, msg.sender, msg.value);
    }

    /// Stakes `msg.value` as a verifier of `task`. The stake weighs only in rounds committed
    /// after this block. Adding to a stake is refused while a round is open (the stake a
    /// round weighs is the one held before its commit) and while leaving.
    function join(uint256 task) external payable nonReentrant exists(task) {
        uint256 held = stakeOf[task][msg.sender];
        if (leavingSince[task][msg.sender] != 0) revert StakeLeaving(leavingSince[task][msg.sender]);
        if (held != 0 && tasks[task].open) revert RoundOpen(task);
        uint256 stake = held + msg.value;
        if (stake < tasks[task].params.minVerifierStake) revert BadParams("stake below minVerifierStake");
        stakeOf[task][msg.sender] = stake;
        stakeSince[task][msg.sender] = uint64(block.number);
        emit VerifierJoined(task, msg.sender, stake);
    }

    /// Starts leaving `task`: from this block the stake weighs in no new round, and it stays
    /// locked for `attestWindow` blocks, until every round it could attest in is closed;
    /// then a second `leave` releases it to the withdrawable balance.
    function leave(uint256 task) external nonReentrant exists(task) {
        uint256 stake = stakeOf[task][msg.sender];
        if (stake == 0) revert NotVerifier(msg.sender);
        uint64 since = leavingSince[task][msg.sender];
        uint64 releasedAfter = since + tasks[task].params.attestWindow;
        if (since == 0) {
            leavingSince[task][msg.sender] = uint64(block.number);
            emit VerifierLeaving(task, msg.sender, stake, uint64(block.number) + tasks[task].params.attestWindow);
            return;
        }
        if (block.number <= releasedAfter) revert StakeLocked(releasedAfter);
        stakeOf[task][msg.sender] = 0;
        leavingSince[task][msg.sender] = 0;
        balanceOf[msg.sender] += stake;
        emit VerifierLeft(task, msg.sender, stake);
    }

    // ---- a round ----

    /// Opens a round: the miner's new model root, update root and update blob hash, with
    /// exactly the task's bond.
    function commit(uint256 task, uint256 newRoot, uint256 updateRoot, bytes32 blobHash)
        external
        payable
        nonReentrant
        exists(task)
    {
        Task storage t = tasks[task];
        if (t.open) revert RoundOpen(task);
        if (msg.value != t.params.minerBond) revert WrongBond(t.params.minerBond, msg.value);
        if (newRoot >= FIELD_MODULUS) revert NotFieldElement(newRoot);
        if (updateRoot >= FIELD_MODULUS) revert NotFieldElement(updateRoot);
        // An update that leaves the model as it is (every scale 0) is no work.
        if (newRoot == t.root) revert UnchangedModel();
        uint64 id = t.rounds++;
        t.open = true;
        Round storage r = rounds[task][id];
        r.miner = msg.sender;
        r.oldRoot = t.root;
        r.newRoot = newRoot;
        r.updateRoot = updateRoot;
        r.blobHash = blobHash;
        r.bond = uint128(msg.value);
        r.commitBlock = uint64(block.number);
        r.seed1Block = uint64(block.number) + RANDOMNESS_DELAY;
        emit Committed(task, id, msg.sender, newRoot, updateRoot, blobHash);
    }

    /// Fixes the next randomness phase of the open round from a block hash: phase 1 from
    /// the block after the commit, phase 2 from the block after the one phase 1 was drawn
    /// in. Anyone may call it. If that block is older than 256 blocks its hash is gone, so
    /// the phase is re-anchored to the block after this one (the deadlines do not move).
    function drawRandomness(uint256 task) external nonReentrant exists(task) returns (uint8 phase) {
        Task storage t = tasks[task];
        if (!t.open) revert NoOpenRound(task);
        uint64 id = t.rounds - 1;
        Round storage r = rounds[task][id];
        if (r.seed2 != bytes32(0)) revert AlreadyDrawn(2);
        phase = r.seed1 == bytes32(0) ? 1 : 2;
        uint64 target = phase == 1 ? r.seed1Block : r.seed2Block;
        if (block.number <= target) revert PhaseNotReady(phase);
        bytes32 seed = blockhash(target);
        if (seed == bytes32(0)) {
            uint64 retarget = uint64(block.number) + RANDOMNESS_DELAY;
            if (phase == 1) r.seed1Block = retarget;
            else r.seed2Block = retarget;
            emit RandomnessRetargeted(task, id, phase, retarget);
            return phase;
        }
        if (phase == 1) {
            r.seed1 = seed;
            r.seed2Block = uint64(block.number) + RANDOMNESS_DELAY;
        } else {
            r.seed2 = seed;
        }
        emit RandomnessDrawn(task, id, phase, target, seed);
    }

    /// The circuit's public inputs for the open round (DESIGN §2): old root, new root,
    /// update root, nb, then the S sampled indices `uint256(keccak256(abi.encode(seed2, j))) % nb`.
    function publicInputs(uint256 task) public view exists(task) returns (uint256[] memory inputs) {
        Task storage t = tasks[task];
        if (!t.open) revert NoOpenRound(task);
        Round storage r = rounds[task][t.rounds - 1];
        if (r.seed2 == bytes32(0)) revert PhaseNotReady(2);
        uint256 samples = t.params.samples;
        uint256 nb = t.params.nb;
        inputs = new uint256[](4 + samples);
        inputs[0] = r.oldRoot;
        inputs[1] = r.newRoot;
        inputs[2] = r.updateRoot;
        inputs[3] = nb;
        for (uint256 j = 0; j < samples; j++) {
            inputs[4 + j] = uint256(keccak256(abi.encode(r.seed2, j))) % nb;
        }
    }

    /// Verifies the miner's proof for the open round with the task's verifier (bounded
    /// gas). An invalid proof reverts and changes nothing; a valid one is recorded.
    function submitProof(uint256 task, bytes calldata proof) external nonReentrant exists(task) {
        Task storage t = tasks[task];
        if (!t.open) revert NoOpenRound(task);
        uint64 id = t.rounds - 1;
        Round storage r = rounds[task][id];
        if (r.proven) revert AlreadyProven();
        uint64 deadline = r.commitBlock + t.params.proofWindow;
        if (block.number > deadline) revert TooLate(uint64(block.number), deadline);
        uint256[] memory inputs = publicInputs(task);
        bytes memory data = abi.encodePacked(inputs, proof);
        uint256 gasLimit = t.params.verifierGas;
        // EIP-150 passes at most 63/64 of what is left: make sure the verifier really gets
        // its budget, so a proof is never refused for want of gas.
        if (gasleft() < gasLimit + gasLimit / 63 + 10_000) revert NotEnoughGas(gasLimit + gasLimit / 63 + 10_000);
        (bool ok,) = t.params.verifier.staticcall{gas: gasLimit}(data);
        if (!ok) revert ProofRejected();
        r.proven = true;
        emit ProofAccepted(task, id, inputs);
    }

    /// A registered verifier's verdict on the open round, with the losses of the old and
    /// new model on the phase-1 batch (units of 1e-9). Only stake joined before the round's
    /// commit block, and not leaving since, may attest. A positive verdict needs
    /// `lossNew + margin <= lossOld`; a negative one may also mean the blob was missing or
    /// did not rebuild to the committed root.
    function attest(uint256 task, Verdict verdict, uint64 lossOld, uint64 lossNew) external nonReentrant exists(task) {
        Task storage t = tasks[task];
        if (!t.open) revert NoOpenRound(task);
        uint64 id = t.rounds - 1;
        Round storage r = rounds[task][id];
        uint256 stake = stakeOf[task][msg.sender];
        if (stake == 0) revert NotVerifier(msg.sender);
        if (msg.sender == r.miner) revert MinerCannotAttest();
        if (stakeSince[task][msg.sender] >= r.commitBlock) {
            revert StakeTooNew(stakeSince[task][msg.sender], r.commitBlock);
        }
        uint64 leaving = leavingSince[task][msg.sender];
        if (leaving != 0 && leaving <= r.commitBlock) revert StakeLeaving(leaving);
        if (r.seed1 == bytes32(0)) revert PhaseNotReady(1);
        uint64 end = r.commitBlock + t.params.attestWindow;
        if (block.number > end) revert TooLate(uint64(block.number), end);
        Attestation storage a = attestations[task][id][msg.sender];
        if (a.verdict != Verdict.None) revert AlreadyAttested(msg.sender);
        if (verdict == Verdict.None) revert BadParams("verdict must be Positive or Negative");
        if (verdict == Verdict.Positive && uint256(lossNew) + t.params.margin > lossOld) {
            revert VerdictContradictsLosses();
        }
        a.verdict = verdict;
        a.stake = uint128(stake);
        a.lossOld = lossOld;
        a.lossNew = lossNew;
        r.attestations += 1;
        if (verdict == Verdict.Positive) r.positiveStake += uint128(stake);
        else r.negativeStake += uint128(stake);
        emit Attested(task, id, msg.sender, verdict, lossOld, lossNew);
    }

    /// Closes the open round once the attestation window is over (or once the proof
    /// deadline passed without a proof). Accepted (proof valid, attesting stake at least the
    /// quorum, positive stake at least 2/3 of it): the root advances and the miner gets the
    /// bond back plus the reward. Proven but short of the quorum (verifiers offline): no
    /// fault of the miner, the bond comes back without reward. Otherwise (no valid proof in
    /// time, or the quorum judged it) the bond is slashed: negative attesters claim it in
    /// proportion to stake, or it joins the reward pool if there are none.
    function finalize(uint256 task) external nonReentrant exists(task) {
        Task storage t = tasks[task];
        if (!t.open) revert NoOpenRound(task);
        uint64 id = t.rounds - 1;
        Round storage r = rounds[task][id];
        uint64 attestEnd = r.commitBlock + t.params.attestWindow;
        uint64 proofEnd = r.commitBlock + t.params.proofWindow;
        bool missedProof = !r.proven && block.number > proofEnd;
        if (block.number <= attestEnd && !missedProof) revert TooEarly(uint64(block.number), attestEnd + 1);
        t.open = false;
        r.finalized = true;
        uint256 attesting = uint256(r.positiveStake) + r.negativeStake;
        bool quorate = attesting >= t.params.quorum;
        bool accepted = r.proven && quorate && 3 * uint256(r.positiveStake) >= 2 * attesting;
        if (r.proven && !quorate) {
            r.refunded = true;
            balanceOf[r.miner] += r.bond;
            emit Refunded(task, id, r.miner, r.bond);
            emit Finalized(task, id, false, t.root, 0);
        } else if (accepted) {
            r.accepted = true;
            t.root = r.newRoot;
            uint256 reward = t.params.reward < t.pool ? t.params.reward : t.pool;
            t.pool -= reward;
            balanceOf[r.miner] += uint256(r.bond) + reward;
            emit Finalized(task, id, true, r.newRoot, reward);
        } else {
            if (r.negativeStake > 0) {
                r.slashLeft = r.bond;
                r.slashStakeLeft = r.negativeStake;
            } else {
                t.pool += r.bond;
            }
            emit Slashed(task, id, r.miner, r.bond, r.proven);
            emit Finalized(task, id, false, t.root, 0);
        }
    }

    /// A negative attester's share of a slashed bond: `bond * stake / negative stake`; the
    /// last claimant takes what rounding left, so the whole bond is paid out.
    function claimSlash(uint256 task, uint64 round) external nonReentrant exists(task) {
        Round storage r = rounds[task][round];
        Attestation storage a = attestations[task][round][msg.sender];
        if (!r.finalized || r.accepted || a.verdict != Verdict.Negative || a.claimed || r.slashStakeLeft == 0) {
            revert NothingToClaim();
        }
        a.claimed = true;
        uint256 share = a.stake == r.slashStakeLeft ? r.slashLeft : (uint256(r.slashLeft) * a.stake) / r.slashStakeLeft;
        r.slashLeft -= uint128(share);
        r.slashStakeLeft -= a.stake;
        balanceOf[msg.sender] += share;
        emit SlashClaimed(task, round, msg.sender, share);
    }

    /// Sends the caller everything it is owed.
    function withdraw() external nonReentrant {
        uint256 amount = balanceOf[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        balanceOf[msg.sender] = 0;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Withdrawn(msg.sender, amount);
    }

    // ---- reads ----

    /// A task's parameters and state.
    function getTask(uint256 task)
        external
        view
        exists(task)
        returns (TaskParams memory params, address owner, uint256 root, uint256 pool, uint64 roundCount, bool open)
    {
        Task storage t = tasks[task];
        return (t.params, t.owner, t.root, t.pool, t.rounds, t.open);
    }

    /// One round of a task.
    function getRound(uint256 task, uint64 round) external view exists(task) returns (Round memory) {
        if (round >= tasks[task].rounds) revert BadParams("no such round");
        return rounds[task][round];
    }

    /// A verifier's attestation in a round (verdict None if it did not attest).
    function getAttestation(uint256 task, uint64 round, address verifier) external view returns (Attestation memory) {
        return attestations[task][round][verifier];
    }
}
