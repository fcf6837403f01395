// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "PogoFraud.sol";

/// @title PoGO rounds: competing candidates, commit–reveal, randomness, proofs, sealed loss
/// attestations, fraud proofs, ranking, finalize (DESIGN §3 as changed by the
/// competing-rounds and fraud-proof issues).
/// @notice One contract holds every task (deployed as `PogoRounds` and the extension it
/// delegates to). A task runs one round at a time; a round is a contest among up to
/// `maxCandidates` miners against the task's current root:
///
///   open (first commit) ─ commitWindow ─┬─ revealWindow ─┬─ proofWindow ─┬─ held-out ─┬─ attest ─┬─ challenge ─┐
///                                       commitEnd        revealEnd        proofEnd      evalEnd    attestEnd     challengeEnd
///                                                         └────────────── attestWindow ──────────────┘
///
/// * commit: a hash binding this contract, the task, the round, the miner, the roots, the
///   blob hash and a salt, with the bond — a watcher learns nothing it could copy;
/// * reveal (after commitEnd): the preimage; an update root once revealed for a task can
///   never be revealed again, by anyone, and `newRoot == oldRoot` is refused;
/// * randomness: phase 1 (the evaluation batch) is the hash of block revealEnd + 1, phase 2
///   (the sampled blocks of every proof) the hash of block revealEnd + 2. Both blocks are
///   fixed when the round opens and come after every reveal, so no miner can re-roll or
///   steer them; anyone may draw, and a draw later than 256 blocks reads the EIP-2935
///   history contract (8,191 blocks, and every window is bounded by that at task creation);
/// * held-out data: the owner commits at task creation (and with `addEvalData`) to sets of
///   evaluation batches nobody else holds; phase 1 draws one undrawn batch; once the proofs
///   are in (after proofEnd, by evalEnd, halfway to attestEnd) the owner (or anyone holding
///   it) reveals it with its Merkle path, and it is never drawn again. Attestations open
///   only after evalEnd, so every verifier has the same time to evaluate however late the
///   reveal. No reveal, no attestations: the round is no-fault for every proven candidate;
/// * proofs: each revealed candidate proves its own sampled blocks with the task's
///   verifier, at its own miner's cost, by proofEnd;
/// * attestations: one per verifier for the whole round, after the batch is revealed: the
///   old model's loss on it and, per candidate, a verdict and the new model's loss, sealed
///   (a commitment) by attestEnd and opened after it, by challengeEnd, so nobody can copy a
///   verdict; one never opened costs `fraudSlashBps` of the stake. Stake weighs only if it
///   joined before the round opened and was not leaving then;
/// * committees (tasks with `committee` = C > 0): C seats per round, each drawn by stake
///   among the verifiers that weigh in it, from the phase-1 seed (`wonSeat`); only seat
///   holders attest, each weighing its seats, and the quorum counts seats. The gas of a round
///   depends on C, never on how many verifiers are registered;
/// * fraud proofs (after attestEnd, by challengeEnd): anyone may prove one block of a
///   candidate wrong (`PogoFraud`); the candidate is rejected, its bond slashed (half to the
///   challenger) and every positive attester on it loses `fraudSlashBps` of its stake;
/// * finalize: a candidate is eligible when proven, the stake that judged it reaches the
///   quorum and at least 2/3 of it attests positive; among eligible candidates the one with
///   the largest stake-weighted median gain (negative verdicts count as no gain) wins the
///   reward less the verifiers' fee; other eligible or unjudged (no quorum, split vote)
///   candidates get their bonds back; unrevealed or unproven ones are slashed to the pool,
///   and proven ones that 2/3 of a quorum rejected to the verifiers who attested negative.
///   Finalize comes after challengeEnd.
/// Ether only leaves through `withdraw` (pull payments); every transition emits an event.
abstract contract PogoRoundsState {
    /// BN254 scalar field modulus: roots and public inputs are elements of this field.
    uint256 internal constant FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// EIP-2935 block-hash history contract (Prague) and the blocks it serves.
    address internal constant HISTORY_STORAGE = 0x0000F90827F1C53a10cb7A02335B175320002935;
    uint64 internal constant HISTORY_SERVE_WINDOW = 8191;
    /// Most candidates a task may allow per round (bounds every loop over candidates).
    uint16 internal constant MAX_CANDIDATES = 16;
    /// Most attesters a round of a task without a committee counts (bounds finalize): when
    /// full, a larger stake evicts the smallest, so small sybil stakes cannot crowd out large
    /// ones. A committee task counts at most `2 * committee` (see `attest`).
    uint16 internal constant MAX_ATTESTERS = 32;
    /// Most seats a task's committee may have (so finalize counts at most 128 attesters).
    uint16 internal constant MAX_COMMITTEE = 64;
    /// Basis points: `verifierFeeBps` of 10,000 is the whole reward.
    uint16 internal constant BPS = 10_000;
    /// Share of a fraudulent candidate's bond paid to whoever proves the fraud; the rest
    /// (and the positive attesters' slashed stake) goes to the task's pool.
    uint16 internal constant FRAUD_BOUNTY_BPS = 5_000;

    /// Parameters fixed when a task is registered.
    struct TaskParams {
        uint256 genesisRoot; // model root the first round starts from (DESIGN §2 Trees)
        uint64 nb; // blocks in the model
        uint32 depth; // tree depth D of the circuit configuration
        uint32 samples; // sampled blocks S of the circuit configuration
        address verifier; // generated verifier of UpdateCircuit{D, S}
        uint64 verifierGas; // gas the verifier call may use
        uint64 commitWindow; // blocks after the round opens during which miners commit
        uint64 revealWindow; // blocks after the commit window during which miners reveal
        uint64 proofWindow; // blocks after the reveal window by which proofs must be in
        uint64 attestWindow; // blocks after the reveal window during which verifiers attest
        uint64 challengeWindow; // blocks after the attestation window for fraud proofs; then finalize
        uint16 maxCandidates; // commits a round takes
        uint16 verifierFeeBps; // share of the reward paid to the winner's positive attesters
        uint16 fraudSlashBps; // share of its stake a verifier loses per positive attestation on a proven fraud
        uint64 margin; // loss decrease a positive attestation needs (loss units of 1e-9)
        uint128 quorum; // attesting stake (wei) needed to judge: stake, not a count of addresses
        uint128 minerBond; // bond posted with each commit
        uint128 minVerifierStake; // stake a verifier needs to attest
        uint128 reward; // paid from the task's pool for each accepted round
        bytes32 dataset; // commitment to the task's public (training) data
        bytes32 spec; // hash of the task description (model, hyper-parameters)
        bytes32 evalRoot; // Merkle root of the owner's first set of held-out evaluation batches
        uint32 evalBatches; // batches under evalRoot
        // Seats C of each round's committee, drawn by stake (see `attest`); 0: no committee,
        // every staked verifier attests with its whole stake. With a committee, `quorum` and
        // every attestation's weight count seats, not wei.
        uint16 committee;
    }

    /// A set of held-out evaluation batches the owner committed to: the keccak Merkle root of
    /// its batches (leaf `keccak256(0x00 ‖ batch)`, node `keccak256(0x01 ‖ left ‖ right)`,
    /// missing leaves zero, depth ⌈log2 batches⌉), and how many were never drawn.
    struct EvalSet {
        bytes32 root;
        uint32 batches;
        uint32 left;
    }

    struct Task {
        TaskParams params;
        address owner;
        bytes32 verifierCodeHash; // EXTCODEHASH of the verifier when the task was registered
        uint256 root; // current accepted model root
        uint256 pool; // ether for rewards
        uint64 rounds; // rounds opened so far; the open one (if any) is rounds - 1
        bool open;
        uint32 evalCursor; // the set phase 1 draws from: the oldest with batches left
        uint64 evalLeft; // held-out batches never drawn, in all sets
        uint256 activeStake; // stake of every verifier joined and not leaving: the committee draw's total
    }

    enum Verdict {
        None,
        Positive,
        Negative
    }

    /// How a candidate ended.
    enum Outcome {
        Pending,
        Won, // bond + reward - fee
        Returned, // bond back: eligible but beaten, or not judged for no fault of the miner
        Slashed // unrevealed, unproven in time, or judged bad by the quorum
    }

    struct Round {
        uint256 oldRoot;
        uint64 openBlock;
        uint64 commitEnd;
        uint64 revealEnd; // phase-1 seed: hash of revealEnd + 1; phase 2: revealEnd + 2
        uint64 proofEnd;
        uint64 attestEnd;
        uint64 evalEnd; // the held-out batch is revealed in (proofEnd, evalEnd]; attestations follow
        bytes32 seed1;
        bytes32 seed2;
        uint16 commits;
        uint16 revealed;
        uint16 proven;
        uint16 winner; // index + 1 of the winning candidate (0: none)
        bool finalized;
        uint128 attestingStake; // stake of every counted attestation
        uint128 fee; // the verifiers' fee of the winner's reward
        uint128 feeLeft; // verifiers' fee not yet claimed
        uint128 feeStakeLeft; // positive stake on the winner that has not claimed yet
        bytes32 evalHash; // leaf hash of the held-out batch revealed for this round
        uint64 evalBlock; // block it was revealed in (0: not revealed, nothing to attest on)
        uint64 challengeEnd; // fraud proofs in (attestEnd, challengeEnd]; finalize after it
        uint256 committeeStake; // the task's activeStake when the round opened (committee tasks)
    }

    struct Candidate {
        address miner;
        bytes32 commitment;
        uint128 bond;
        bool revealed;
        bool proven;
        Outcome outcome;
        uint256 newRoot;
        uint256 updateRoot;
        bytes32 blobHash;
        uint128 positiveStake;
        uint128 negativeStake;
        int256 gain; // stake-weighted median gain, set at finalize for eligible candidates
        uint128 slashLeft; // slashed bond not yet claimed by negative attesters
        uint128 slashStakeLeft; // negative stake on it that has not claimed yet
        bool fraud; // a fraud proof showed one of its blocks wrong
        address challenger; // who proved it (paid at finalize)
    }

    struct Attestation {
        uint128 stake; // its weight: the stake (wei), or on a committee task the seats won
        uint64 lossOld;
        bool claimed;
        bool revealed; // the verdicts below are opened (they count only then)
        bytes32 commitment; // attestationCommitmentOf(...) sent in the attestation window
        uint8[] verdicts; // per candidate (None for unrevealed ones)
        uint64[] lossNew; // per candidate
    }

    // Slither analyses `PogoRoundsExtension` on its own and finds no write to some of these
    // (`PogoRounds` writes them, the extension reads them by DELEGATECALL on the same
    // storage), nor writes through storage pointers (`attesters`): the `disable` lines
    // below mark those false positives.
    mapping(uint256 => Task) internal tasks;
    // slither-disable-next-line uninitialized-state,constable-states
    uint256 internal taskTotal;
    mapping(uint256 => mapping(uint64 => Round)) internal rounds;
    mapping(uint256 => mapping(uint64 => mapping(uint16 => Candidate))) internal candidates;
    // slither-disable-next-line uninitialized-state
    mapping(uint256 => mapping(uint64 => address[])) internal attesters;
    // slither-disable-next-line uninitialized-state
    mapping(uint256 => mapping(uint64 => mapping(address => Attestation))) internal attestations;
    /// Update roots revealed for a task, in any round, by anyone: never revealed again.
    // slither-disable-next-line uninitialized-state
    mapping(uint256 => mapping(uint256 => bool)) internal revealedUpdates;
    /// Each task's sets of held-out evaluation batches, oldest first.
    mapping(uint256 => EvalSet[]) internal evalSets;
    /// The undrawn batches of a set as a lazy Fisher–Yates pool: position → batch + 1 (0: the
    /// position's own batch). A drawn batch leaves the pool: it is never drawn again.
    mapping(uint256 => mapping(uint256 => mapping(uint32 => uint32))) internal evalPool;
    mapping(uint256 => mapping(address => uint256)) internal stakes;
    /// Block of a verifier's (latest) join: its stake weighs only in rounds opened later.
    // slither-disable-next-line uninitialized-state
    mapping(uint256 => mapping(address => uint64)) internal stakeJoined;
    /// Block a verifier called `leave` (0: staked): it weighs in no round opened since, and
    /// its stake is released `unbonding(task)` blocks later, once every round it could
    /// attest in has closed.
    mapping(uint256 => mapping(address => uint64)) internal stakeLeaving;
    /// Ether each address can withdraw.
    // slither-disable-next-line uninitialized-state
    mapping(address => uint256) internal owed;
    bool internal locked;

    event TaskCreated(uint256 indexed task, address indexed owner, address verifier, bytes32 verifierCodeHash);
    event Funded(uint256 indexed task, address indexed from, uint256 amount);
    event VerifierJoined(uint256 indexed task, address indexed verifier, uint256 stake);
    event VerifierLeaving(uint256 indexed task, address indexed verifier, uint256 stake, uint64 releasedAfter);
    event VerifierLeft(uint256 indexed task, address indexed verifier, uint256 stake);
    event RoundOpened(uint256 indexed task, uint64 indexed round, uint256 oldRoot, uint64 commitEnd, uint64 revealEnd);
    event Committed(uint256 indexed task, uint64 indexed round, uint16 candidate, address indexed miner, bytes32 commitment);
    event Revealed(
        uint256 indexed task,
        uint64 indexed round,
        uint16 candidate,
        address indexed miner,
        uint256 newRoot,
        uint256 updateRoot,
        bytes32 blobHash
    );
    event RandomnessDrawn(uint256 indexed task, uint64 indexed round, uint8 phase, uint64 blockNumber, bytes32 seed);
    event ProofAccepted(uint256 indexed task, uint64 indexed round, uint16 candidate, uint256[] publicInputs);
    event Attested(uint256 indexed task, uint64 indexed round, address indexed verifier, uint128 stake);
    event AttestationRevealed(uint256 indexed task, uint64 indexed round, address indexed verifier);
    event Finalized(uint256 indexed task, uint64 indexed round, uint16 winner, uint256 root, uint256 reward);
    event CandidateSettled(uint256 indexed task, uint64 indexed round, uint16 candidate, Outcome outcome, int256 gain);
    event Claimed(uint256 indexed task, uint64 indexed round, address indexed verifier, uint256 amount);
    event Withdrawn(address indexed to, uint256 amount);
    event EvalDataAdded(uint256 indexed task, uint32 set, bytes32 root, uint32 batches);
    event FraudProven(
        uint256 indexed task,
        uint64 indexed round,
        uint16 candidate,
        address indexed challenger,
        uint64 blockIndex,
        uint8 kind,
        uint256 attestersSlashed
    );
    event FraudBounty(uint256 indexed task, uint64 indexed round, uint16 candidate, address indexed challenger, uint256 amount);
    event AttesterSlashed(uint256 indexed task, uint64 indexed round, address indexed verifier, uint256 amount);
    event EvalRevealed(uint256 indexed task, uint64 indexed round, uint32 set, uint32 batch, bytes32 leaf, bytes data);

    error Reentrant();
    error UnknownTask(uint256 task);
    /// A parameter out of range: `why` numbers the rule (`pogo_verifier::rounds::bad_params`).
    error BadParams(uint8 why);
    error NotFieldElement(uint256 value);
    error RoundOpen(uint256 task);
    error NoOpenRound(uint256 task);
    error RoundFull(uint16 cap);
    error WrongBond(uint256 expected, uint256 got);
    error TooEarly(uint64 now_, uint64 from);
    error TooLate(uint64 now_, uint64 deadline);
    error PhaseNotReady(uint8 phase);
    error AlreadyDrawn();
    error NoSuchCandidate(uint16 candidate);
    error NotYourCandidate(uint16 candidate);
    error AlreadyRevealed(uint16 candidate);
    error WrongReveal();
    error UpdateReused(uint256 updateRoot);
    error NotRevealed(uint16 candidate);
    error AlreadyProven();
    error ProofRejected();
    error NotEnoughGas(uint256 needed);
    error NotVerifier(address who);
    error MinerCannotAttest();
    error StakeTooNew(uint64 since, uint64 openBlock);
    error StakeLeaving(uint64 since);
    error StakeLocked(uint64 releasedAfter);
    error UnchangedModel();
    error AlreadyAttested(address who);
    error WrongLength(uint256 expected, uint256 got);
    error BadVerdict(uint16 candidate);
    error WrongRound(uint64 expected, uint64 got);
    error AttestersFull(uint128 smallestStake);
    error VerdictContradictsLosses(uint16 candidate);
    error NothingToClaim();
    error NothingToWithdraw();
    error TransferFailed();
    error NotOwner();
    error NoEvalData();
    error EvalAlreadyRevealed();
    error WrongEvalData();
    error AlreadyFraud(uint16 candidate);
    error NotAttested(address who);
    error NotProven(uint16 candidate);
    error AttestationUnopened(uint64 round);
    error DirectCall();
    error NotOnCommittee(address who);
    error BadSeat(uint256 position);

    modifier nonReentrant() {
        if (locked) revert Reentrant();
        locked = true;
        _;
        locked = false;
    }

    modifier exists(uint256 task) {
        if (task >= taskTotal) revert UnknownTask(task);
        _;
    }


    function drawnEval(uint256 task, bytes32 seed1) internal view returns (uint32 set, uint32 batch, uint32 position) {
        if (seed1 == bytes32(0)) revert PhaseNotReady(1);
        Task storage t = tasks[task];
        if (t.evalLeft == 0) revert NoEvalData();
        set = t.evalCursor;
        // The seed is the hash of a block fixed before it existed and after every reveal
        // (see the contract notice); only its proposer could bias it, by withholding it.
        // slither-disable-next-line weak-prng
        position = uint32(uint256(keccak256(abi.encodePacked(seed1, "eval"))) % evalSets[task][set].left);
        uint32 slot = evalPool[task][set][position];
        batch = slot == 0 ? position : slot - 1;
    }

    // ---- a round ----

    /// Takes the batch at `position` of `set`'s pool out of it (swap-remove: the batch at
    /// the last position takes its place): it is never drawn again.
    function retireEval(uint256 task, uint32 set, uint32 position) internal {
        Task storage t = tasks[task];
        EvalSet storage s = evalSets[task][set];
        uint32 last = s.left - 1;
        uint32 tail = evalPool[task][set][last];
        evalPool[task][set][position] = tail == 0 ? last + 1 : tail;
        delete evalPool[task][set][last];
        s.left = last;
        t.evalLeft -= 1;
        if (last == 0) t.evalCursor = set + 1;
    }

    /// The hash of block `number`: BLOCKHASH for the last 256 blocks, then the EIP-2935
    /// history contract for the last 8,191; zero when neither has it (or not yet closed).
    function blockHashOf(uint64 number) internal view returns (bytes32 hash) {
        if (number >= block.number) return bytes32(0);
        hash = blockhash(number);
        if (hash != bytes32(0) || HISTORY_STORAGE.code.length == 0) return hash;
        (bool ok, bytes memory out) = HISTORY_STORAGE.staticcall(abi.encode(uint256(number)));
        if (ok && out.length == 32) hash = abi.decode(out, (bytes32));
    }

    /// The seed of `phase` (1 or 2) of round `id`, or zero while its block is not closed or
    /// once its hash is out of reach (older than 256 blocks and not in EIP-2935's history).
    function roundSeed(uint256 task, uint64 id, uint8 phase) internal view exists(task) returns (bytes32) {
        Round storage r = rounds[task][id];
        bytes32 stored = phase == 1 ? r.seed1 : r.seed2;
        if (stored != bytes32(0)) return stored;
        return blockHashOf(r.revealEnd + phase);
    }

    function draw(uint256 task, uint64 id, Round storage r, uint8 phase) internal returns (bytes32 seed) {
        seed = phase == 1 ? r.seed1 : r.seed2;
        if (seed != bytes32(0)) return seed;
        uint64 target = r.revealEnd + phase;
        seed = blockHashOf(target);
        if (seed == bytes32(0)) return seed;
        if (phase == 1) r.seed1 = seed;
        else r.seed2 = seed;
        emit RandomnessDrawn(task, id, phase, target, seed);
    }

    function openRound(uint256 task) internal view returns (uint64 id, Round storage r) {
        Task storage t = tasks[task];
        if (!t.open) revert NoOpenRound(task);
        id = t.rounds - 1;
        r = rounds[task][id];
    }

    /// The circuit's public inputs of candidate `index` of the open round (DESIGN §2): old
    /// root, new root, update root, nb, then the S sampled indices
    /// `uint256(keccak256(abi.encode(seed2, j))) % nb`.
    function inputsOf(uint256 task, uint16 index) internal view exists(task) returns (uint256[] memory inputs) {
        Task storage t = tasks[task];
        if (!t.open) revert NoOpenRound(task);
        uint64 id = t.rounds - 1;
        Round storage r = rounds[task][id];
        Candidate storage c = candidates[task][id][index];
        if (!c.revealed) revert NotRevealed(index);
        bytes32 seed2 = roundSeed(task, id, 2);
        if (seed2 == bytes32(0)) revert PhaseNotReady(2);
        uint256 samples = t.params.samples;
        uint256 nb = t.params.nb;
        inputs = new uint256[](4 + samples);
        inputs[0] = r.oldRoot;
        inputs[1] = c.newRoot;
        inputs[2] = c.updateRoot;
        inputs[3] = nb;
        for (uint256 j = 0; j < samples; j++) {
            // DESIGN §2's sampling rule; the seed as in drawnEval.
            // slither-disable-next-line weak-prng
            inputs[4 + j] = uint256(keccak256(abi.encode(seed2, j))) % nb;
        }
    }

    /// The hash a miner commits to (pure: compute it off chain the same way).
    function commitmentHash(
        uint256 task,
        uint64 round,
        address miner,
        uint256 newRoot,
        uint256 updateRoot,
        bytes32 blobHash,
        bytes32 salt
    ) internal view returns (bytes32) {
        return keccak256(abi.encode(address(this), task, round, miner, newRoot, updateRoot, blobHash, salt));
    }

    /// The hash a verifier commits to in the attestation window (compute it off chain the
    /// same way): keccak-256 of the contract's address as a word followed by the ABI
    /// encoding of (task, round, verifier, old loss, verdicts, new losses, salt). Bound to
    /// the verifier: nobody can reveal another's.
    function attestationHash(
        uint256 task,
        uint64 round,
        address verifier,
        uint64 lossOld,
        uint8[] memory verdicts,
        uint64[] memory lossNew,
        bytes32 salt
    ) internal view returns (bytes32) {
        return keccak256(
            bytes.concat(abi.encode(address(this)), abi.encode(task, round, verifier, lossOld, verdicts, lossNew, salt))
        );
    }

    /// Takes `fraudSlashBps` of `who`'s stake in `task` to the task's pool.
    function slashStake(uint256 task, uint64 id, address who) internal returns (uint256 cut) {
        Task storage t = tasks[task];
        cut = (stakes[task][who] * t.params.fraudSlashBps) / BPS;
        stakes[task][who] -= cut;
        // A leaving stake already left the active total.
        if (stakeLeaving[task][who] == 0) t.activeStake -= cut;
        // A stake slashed to nothing has nothing left to release: the verifier may join anew.
        if (stakes[task][who] == 0) stakeLeaving[task][who] = 0;
        t.pool += cut;
        emit AttesterSlashed(task, id, who, cut);
    }

    /// Blocks a leaving stake stays locked: the longest a round it could attest in lasts,
    /// fraud proofs (which may slash it) included.
    function unbondingBlocks(uint256 task) internal view exists(task) returns (uint64) {
        TaskParams storage p = tasks[task].params;
        return p.commitWindow + p.revealWindow + p.attestWindow + p.challengeWindow;
    }

    /// Whether `verifier`, holding `stake` of the `total` stake that weighed when round `id`
    /// opened, won seat `seat` of the round's committee: `keccak256(abi.encode(this, task,
    /// id, seed1, verifier, seat)) mod total < stake`. Each of the C seats is an independent
    /// draw, so a verifier wins Binomial(C, stake / total) seats: C in expectation over the
    /// whole registered set, however many verifiers it holds, and the same in expectation
    /// however a stake is split over addresses. `seed1` is the round's phase-1 seed, fixed
    /// after every reveal (and long after every stake that may attest had to join).
    function wonSeat(uint256 task, uint64 id, bytes32 seed1, address verifier, uint256 stake, uint256 total, uint16 seat)
        internal
        view
        returns (bool)
    {
        // The seed is a block hash fixed after every reveal, as for the other draws.
        // slither-disable-next-line weak-prng
        return uint256(keccak256(abi.encode(address(this), task, id, seed1, verifier, seat))) % total < stake;
    }
}

contract PogoRounds is PogoRoundsState {
    /// Where every function not defined here runs (by DELEGATECALL, on this contract's
    /// storage): the reads and fraud proofs of `PogoRoundsExtension`. The split keeps each
    /// part under EIP-170's code-size limit.
    address public immutable extension;

    constructor(address extension_) {
        if (extension_.code.length == 0) revert BadParams(4);
        extension = extension_;
    }

    /// Runs the call in the extension, on this contract's storage and balance.
    fallback() external {
        address to = extension;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, 0, calldatasize())
            let ok := delegatecall(gas(), to, ptr, calldatasize(), 0, 0)
            returndatacopy(ptr, 0, returndatasize())
            if iszero(ok) { revert(ptr, returndatasize()) }
            return(ptr, returndatasize())
        }
    }

    // ---- tasks and verifiers ----

    /// Registers a task; `msg.value` starts its reward pool. The verifier must have code;
    /// its code hash is recorded, so nodes can compare it with the verifier of their keys.
    function createTask(TaskParams calldata p) external payable nonReentrant returns (uint256 task) {
        if (p.genesisRoot >= FIELD) revert NotFieldElement(p.genesisRoot);
        if (p.depth == 0 || p.depth > 32) revert BadParams(1);
        if (p.nb == 0 || p.nb > (uint256(1) << p.depth)) revert BadParams(2);
        if (p.samples == 0) revert BadParams(3);
        if (p.verifier.code.length == 0) revert BadParams(4);
        if (p.verifierGas == 0) revert BadParams(5);
        if (p.commitWindow == 0 || p.revealWindow == 0 || p.challengeWindow == 0) revert BadParams(6);
        // Phase 2 is readable from revealEnd + 3: a proof window must leave room after it.
        if (p.proofWindow <= 2 || p.attestWindow <= p.proofWindow + 1) {
            revert BadParams(7);
        }
        // Every seed is read within attestWindow blocks of its block: EIP-2935 still has it
        // (without the history contract, BLOCKHASH's 256 blocks must do).
        uint64 reach = HISTORY_STORAGE.code.length == 0 ? 256 : HISTORY_SERVE_WINDOW;
        // (finalize reads phase 1 up to attestWindow + challengeWindow blocks after it).
        if (p.commitWindow > reach || p.revealWindow > reach || p.attestWindow + p.challengeWindow > reach) {
            revert BadParams(8);
        }
        if (p.maxCandidates == 0 || p.maxCandidates > MAX_CANDIDATES) revert BadParams(9);
        if (p.verifierFeeBps > BPS || p.fraudSlashBps == 0 || p.fraudSlashBps > BPS) revert BadParams(10);
        if (p.quorum == 0) revert BadParams(11);
        if (p.minVerifierStake == 0) revert BadParams(12);
        if (p.committee > MAX_COMMITTEE || p.quorum > (p.committee == 0 ? type(uint128).max : p.committee)) {
            revert BadParams(16);
        }
        task = taskTotal++;
        Task storage t = tasks[task];
        t.params = p;
        t.owner = msg.sender;
        t.verifierCodeHash = p.verifier.codehash;
        t.root = p.genesisRoot;
        t.pool = msg.value;
        emit TaskCreated(task, msg.sender, p.verifier, t.verifierCodeHash);
        if (msg.value > 0) emit Funded(task, msg.sender, msg.value);
        pushEvalSet(task, p.evalRoot, p.evalBatches);
    }

    /// Commits the owner to a fresh set of held-out evaluation batches (see `EvalSet`); phase
    /// 1 draws from it once the older sets are used up.
    function addEvalData(uint256 task, bytes32 root, uint32 batches) external nonReentrant exists(task) {
        if (msg.sender != tasks[task].owner) revert NotOwner();
        pushEvalSet(task, root, batches);
    }

    function pushEvalSet(uint256 task, bytes32 root, uint32 batches) private {
        if (root == bytes32(0) || batches == 0) revert BadParams(13);
        evalSets[task].push(EvalSet(root, batches, batches));
        tasks[task].evalLeft += batches;
        emit EvalDataAdded(task, uint32(evalSets[task].length - 1), root, batches);
    }

    /// Reveals the held-out batch phase 1 drew for the open round, with its Merkle path in
    /// the set's tree (leaf first). Anyone holding the batch may reveal it, after the proof
    /// deadline and by `evalEnd`, once some candidate is proven (else nothing is judged and
    /// the batch stays held out); the batch then leaves the pool, and its bytes are in the
    /// `EvalRevealed` event for every verifier. Without a reveal no verifier can attest, so
    /// no candidate is judged: the round is no-fault (and finalize retires the batch anyway,
    /// since a failed reveal may have shown it).
    function revealEvalData(uint256 task, bytes calldata data, bytes32[] calldata path)
        external
        nonReentrant
        exists(task)
    {
        (uint64 id, Round storage r) = openRound(task);
        if (block.number <= r.proofEnd) revert TooEarly(uint64(block.number), r.proofEnd + 1);
        if (block.number > r.evalEnd) revert TooLate(uint64(block.number), r.evalEnd);
        if (r.proven == 0) revert NoEvalData();
        if (r.evalBlock != 0) revert EvalAlreadyRevealed();
        (uint32 set, uint32 batch, uint32 position) = drawnEval(task, draw(task, id, r, 1));
        EvalSet storage s = evalSets[task][set];
        bytes32 leaf = keccak256(abi.encodePacked(bytes1(0x00), data));
        bytes32 node = leaf;
        uint256 depth;
        while ((uint256(1) << depth) < s.batches) depth++;
        if (path.length != depth) revert WrongEvalData();
        for (uint256 i = 0; i < depth; i++) {
            node = (batch >> i) & 1 == 0
                ? keccak256(abi.encodePacked(bytes1(0x01), node, path[i]))
                : keccak256(abi.encodePacked(bytes1(0x01), path[i], node));
        }
        if (node != s.root) revert WrongEvalData();
        retireEval(task, set, position);
        r.evalHash = leaf;
        r.evalBlock = uint64(block.number);
        emit EvalRevealed(task, id, set, batch, leaf, data);
    }

    /// Adds `msg.value` to a task's reward pool.
    function fund(uint256 task) external payable nonReentrant exists(task) {
        tasks[task].pool += msg.value;
        emit Funded(task, msg.sender, msg.value);
    }

    /// Stakes `msg.value` as a verifier of `task`. The stake weighs only in rounds opened
    /// after this block. Adding to a stake is refused while a round is open (the stake a
    /// round weighs is the one held before it opened) and while leaving.
    function join(uint256 task) external payable nonReentrant exists(task) {
        uint256 held = stakes[task][msg.sender];
        if (stakeLeaving[task][msg.sender] != 0) revert StakeLeaving(stakeLeaving[task][msg.sender]);
        if (held != 0 && tasks[task].open) revert RoundOpen(task);
        uint256 stake = held + msg.value;
        if (stake < tasks[task].params.minVerifierStake) revert BadParams(14);
        stakes[task][msg.sender] = stake;
        tasks[task].activeStake += msg.value;
        stakeJoined[task][msg.sender] = uint64(block.number);
        emit VerifierJoined(task, msg.sender, stake);
    }

    /// Starts leaving `task`: from this block the stake weighs in no new round, and it stays
    /// locked for `unbondingBlocks(task)` blocks, until every round it could attest in is closed;
    /// then a second `leave` releases it to the withdrawable balance.
    function leave(uint256 task) external nonReentrant exists(task) {
        uint256 stake = stakes[task][msg.sender];
        if (stake == 0) revert NotVerifier(msg.sender);
        uint64 since = stakeLeaving[task][msg.sender];
        if (since == 0) {
            stakeLeaving[task][msg.sender] = uint64(block.number);
            tasks[task].activeStake -= stake;
            emit VerifierLeaving(task, msg.sender, stake, uint64(block.number) + unbondingBlocks(task));
            return;
        }
        uint64 releasedAfter = since + unbondingBlocks(task);
        if (block.number <= releasedAfter) revert StakeLocked(releasedAfter);
        // Its sealed attestation of the open round, never opened, is slashed at finalize:
        // the stake stays until then.
        Task storage t = tasks[task];
        if (t.open) {
            Attestation storage a = attestations[task][t.rounds - 1][msg.sender];
            if (a.stake != 0 && !a.revealed) revert AttestationUnopened(t.rounds - 1);
        }
        stakes[task][msg.sender] = 0;
        stakeLeaving[task][msg.sender] = 0;
        owed[msg.sender] += stake;
        emit VerifierLeft(task, msg.sender, stake);
    }

    /// Commits to a candidate of round `round` with exactly the task's bond: `commitment` is
    /// `commitmentHash(task, round, miner, newRoot, updateRoot, blobHash, salt)`. The first
    /// commit after a round closed opens the next one against the current root. Returns the
    /// round and the candidate's index.
    function commit(uint256 task, uint64 round, bytes32 commitment)
        external
        payable
        nonReentrant
        exists(task)
        returns (uint64 id, uint16 index)
    {
        Task storage t = tasks[task];
        if (msg.value != t.params.minerBond) revert WrongBond(t.params.minerBond, msg.value);
        // The commitment is bound to `round`: a commit that would land in another round (a
        // finalize got in first) is refused instead of being slashed as unrevealable.
        uint64 target = t.open ? t.rounds - 1 : t.rounds;
        if (round != target) revert WrongRound(target, round);
        if (!t.open) {
            // A round nobody could evaluate would only lock bonds.
            if (t.evalLeft == 0) revert NoEvalData();
            id = t.rounds++;
            t.open = true;
            Round storage fresh = rounds[task][id];
            uint64 now_ = uint64(block.number);
            fresh.oldRoot = t.root;
            fresh.openBlock = now_;
            fresh.commitEnd = now_ + t.params.commitWindow;
            fresh.revealEnd = fresh.commitEnd + t.params.revealWindow;
            fresh.proofEnd = fresh.revealEnd + t.params.proofWindow;
            fresh.attestEnd = fresh.revealEnd + t.params.attestWindow;
            fresh.evalEnd = fresh.proofEnd + (t.params.attestWindow - t.params.proofWindow) / 2;
            fresh.challengeEnd = fresh.attestEnd + t.params.challengeWindow;
            if (t.params.committee != 0) fresh.committeeStake = t.activeStake;
            emit RoundOpened(task, id, t.root, fresh.commitEnd, fresh.revealEnd);
        } else {
            id = t.rounds - 1;
        }
        Round storage r = rounds[task][id];
        if (block.number > r.commitEnd) revert TooLate(uint64(block.number), r.commitEnd);
        if (r.commits >= t.params.maxCandidates) revert RoundFull(t.params.maxCandidates);
        index = r.commits++;
        Candidate storage c = candidates[task][id][index];
        c.miner = msg.sender;
        c.commitment = commitment;
        c.bond = uint128(msg.value);
        emit Committed(task, id, index, msg.sender, commitment);
    }

    /// Opens a commitment after the commit window closed: the roots, the blob hash (the
    /// miner serves the blob from now on) and the salt.
    function reveal(uint256 task, uint16 index, uint256 newRoot, uint256 updateRoot, bytes32 blobHash, bytes32 salt)
        external
        nonReentrant
        exists(task)
    {
        (uint64 id, Round storage r) = openRound(task);
        if (block.number <= r.commitEnd) revert TooEarly(uint64(block.number), r.commitEnd + 1);
        if (block.number > r.revealEnd) revert TooLate(uint64(block.number), r.revealEnd);
        if (index >= r.commits) revert NoSuchCandidate(index);
        Candidate storage c = candidates[task][id][index];
        if (c.miner != msg.sender) revert NotYourCandidate(index);
        if (c.revealed) revert AlreadyRevealed(index);
        if (commitmentHash(task, id, msg.sender, newRoot, updateRoot, blobHash, salt) != c.commitment) {
            revert WrongReveal();
        }
        if (newRoot >= FIELD) revert NotFieldElement(newRoot);
        if (updateRoot >= FIELD) revert NotFieldElement(updateRoot);
        // An update that leaves the model as it is (every scale 0) is no work.
        if (newRoot == r.oldRoot) revert UnchangedModel();
        // A copier re-submitting someone's update, in this round or a later one.
        if (revealedUpdates[task][updateRoot]) revert UpdateReused(updateRoot);
        revealedUpdates[task][updateRoot] = true;
        c.revealed = true;
        c.newRoot = newRoot;
        c.updateRoot = updateRoot;
        c.blobHash = blobHash;
        r.revealed += 1;
        emit Revealed(task, id, index, msg.sender, newRoot, updateRoot, blobHash);
    }

    /// Fixes every phase of the open round whose block has closed (anyone may call it; the
    /// seeds do not depend on who draws or when; attestations and proofs draw for
    /// themselves, so withholding a draw changes nothing). Returns the phases drawn.
    function drawRandomness(uint256 task) external nonReentrant exists(task) returns (uint8 drawn) {
        (uint64 id, Round storage r) = openRound(task);
        if (r.seed2 != bytes32(0)) revert AlreadyDrawn();
        for (uint8 phase = 1; phase <= 2; phase++) {
            if ((phase == 1 ? r.seed1 : r.seed2) != bytes32(0)) continue;
            if (draw(task, id, r, phase) == bytes32(0)) break;
            drawn++;
        }
        if (drawn == 0) revert PhaseNotReady(r.seed1 == bytes32(0) ? 1 : 2);
    }

    /// Verifies the proof of revealed candidate `index` with the task's verifier (bounded
    /// gas), drawing phase 2 if nobody has. An invalid proof reverts and changes nothing.
    function submitProof(uint256 task, uint16 index, bytes calldata proof) external nonReentrant exists(task) {
        (uint64 id, Round storage r) = openRound(task);
        Task storage t = tasks[task];
        if (block.number > r.proofEnd) revert TooLate(uint64(block.number), r.proofEnd);
        if (index >= r.commits) revert NoSuchCandidate(index);
        Candidate storage c = candidates[task][id][index];
        if (!c.revealed) revert NotRevealed(index);
        if (c.proven) revert AlreadyProven();
        if (draw(task, id, r, 2) == bytes32(0)) revert PhaseNotReady(2);
        uint256[] memory inputs = inputsOf(task, index);
        bytes memory data = abi.encodePacked(inputs, proof);
        uint256 gasLimit = t.params.verifierGas;
        // EIP-150 passes at most 63/64 of what is left: make sure the verifier really gets
        // its budget, so a proof is never refused for want of gas.
        if (gasleft() < gasLimit + gasLimit / 63 + 10_000) revert NotEnoughGas(gasLimit + gasLimit / 63 + 10_000);
        (bool ok,) = t.params.verifier.staticcall{gas: gasLimit}(data);
        if (!ok) revert ProofRejected();
        c.proven = true;
        r.proven += 1;
        emit ProofAccepted(task, id, index, inputs);
    }

    /// Commits to a verifier's judgement of the whole open round, in the attestation window
    /// (after `evalEnd` and the held-out reveal, by `attestEnd`): `commitment` is
    /// `attestationCommitmentOf(task, round, verifier, lossOld, verdicts, lossNew, salt)`.
    /// Nobody sees a verdict before the window closes, so nobody can copy one; the
    /// commitment is bound to the verifier, so nobody can copy it either. Only stake joined
    /// before the round opened, and not leaving since, may attest. An attestation committed
    /// and never revealed by `challengeEnd` costs `fraudSlashBps` of the stake at finalize,
    /// as much as a positive attestation on a proven fraud, so withholding a reveal never
    /// pays.
    ///
    /// Without a committee, `seats` is empty, the attestation weighs the whole stake, and a
    /// round counts 32 attesters (once full a larger stake evicts the smallest). With a
    /// committee of C seats, only the round's committee attests: `seats` lists, in
    /// increasing order, seats in [0, C) the caller won (`wonSeat`, checked here at one hash
    /// each; `seatsOf` lists them), the attestation weighs that many seats, and a round
    /// counts 2·C attesters (at least 32). The cost is per seat claimed, never per
    /// registered verifier.
    function attest(uint256 task, bytes32 commitment, uint16[] calldata seats) external nonReentrant exists(task) {
        (uint64 id, Round storage r) = openRound(task);
        uint256 stake = stakes[task][msg.sender];
        if (stake == 0) revert NotVerifier(msg.sender);
        if (stakeJoined[task][msg.sender] >= r.openBlock) revert StakeTooNew(stakeJoined[task][msg.sender], r.openBlock);
        uint64 leaving = stakeLeaving[task][msg.sender];
        if (leaving != 0 && leaving <= r.openBlock) revert StakeLeaving(leaving);
        if (block.number > r.attestEnd) revert TooLate(uint64(block.number), r.attestEnd);
        if (block.number <= r.evalEnd) revert TooEarly(uint64(block.number), r.evalEnd + 1);
        if (r.evalBlock == 0) revert NoEvalData();
        Attestation storage a = attestations[task][id][msg.sender];
        if (a.stake != 0) revert AlreadyAttested(msg.sender);
        (uint256 weight, uint256 cap) = weightOf(task, id, r, stake, seats);
        address[] storage who = attesters[task][id];
        if (who.length == cap) {
            evictSmallest(task, id, uint128(weight));
        } else {
            who.push(msg.sender);
        }
        a.stake = uint128(weight);
        a.commitment = commitment;
        emit Attested(task, id, msg.sender, uint128(weight));
    }

    /// The caller's weight in round `id` and the most attesters the round counts: its stake
    /// and 32 without a committee (where `seats` must be empty); its seats (`checkSeats`)
    /// and 2·C with one. 2·C distinct seat holders is beyond reach at C = 64 (odds below
    /// 1e-12); a small committee keeps the 32, so that a full list (and its first-come
    /// refusals of equal weights) stays out of reach too.
    function weightOf(uint256 task, uint64 id, Round storage r, uint256 stake, uint16[] calldata seats)
        private
        returns (uint256 weight, uint256 cap)
    {
        uint16 size = tasks[task].params.committee;
        if (size == 0) {
            if (seats.length != 0) revert BadSeat(0);
            return (stake, MAX_ATTESTERS);
        }
        weight = checkSeats(task, id, r, stake, size, seats);
        cap = 2 * uint256(size) > MAX_ATTESTERS ? 2 * uint256(size) : MAX_ATTESTERS;
    }

    /// The caller's committee weight in round `id`: the number of `seats`, each checked
    /// with `wonSeat` against the stake that weighed when the round opened. Refuses an empty
    /// list, a seat out of range or out of order (each counts once), and a seat not won.
    function checkSeats(uint256 task, uint64 id, Round storage r, uint256 stake, uint16 size, uint16[] calldata seats)
        private
        returns (uint256)
    {
        if (seats.length == 0) revert NotOnCommittee(msg.sender);
        bytes32 seed1 = draw(task, id, r, 1);
        if (seed1 == bytes32(0)) revert PhaseNotReady(1);
        uint256 total = r.committeeStake;
        // Stake that weighs in the round is part of the total it opened with (top-ups wait
        // for no round to be open, and slashes come after the attestation window): refused
        // rather than win every seat should that ever break.
        if (stake > total) revert NotOnCommittee(msg.sender);
        for (uint256 k = 0; k < seats.length; k++) {
            uint16 seat = seats[k];
            if (seat >= size || (k != 0 && seat <= seats[k - 1])) revert BadSeat(k);
            if (!wonSeat(task, id, seed1, msg.sender, stake, total, seat)) revert BadSeat(k);
        }
        return seats.length;
    }

    /// Opens the caller's attestation after the attestation window, by `challengeEnd`: the
    /// old model's loss on the phase-1 batch, and per candidate (in commit order) a verdict
    /// and the new model's loss (units of 1e-9). Unrevealed candidates take `None`;
    /// revealed ones `Positive` (needs `lossNew + margin <= lossOld`) or `Negative` (also:
    /// the blob was missing or did not rebuild to the revealed root). Only now does its
    /// stake count towards quorum and verdicts; a positive verdict on a candidate already
    /// proven fraudulent costs `fraudSlashBps` of the stake at once.
    function revealAttestation(
        uint256 task,
        uint64 lossOld,
        uint8[] calldata verdicts,
        uint64[] calldata lossNew,
        bytes32 salt
    ) external nonReentrant exists(task) {
        (uint64 id, Round storage r) = openRound(task);
        if (block.number <= r.attestEnd) revert TooEarly(uint64(block.number), r.attestEnd + 1);
        if (block.number > r.challengeEnd) revert TooLate(uint64(block.number), r.challengeEnd);
        Attestation storage a = attestations[task][id][msg.sender];
        if (a.stake == 0) revert NotAttested(msg.sender);
        if (a.revealed) revert AlreadyAttested(msg.sender);
        if (attestationHash(task, id, msg.sender, lossOld, verdicts, lossNew, salt) != a.commitment) {
            revert WrongReveal();
        }
        uint16 n = r.commits;
        if (verdicts.length != n) revert WrongLength(n, verdicts.length);
        if (lossNew.length != n) revert WrongLength(n, lossNew.length);
        tally(task, id, a.stake, lossOld, verdicts, lossNew);
        a.revealed = true;
        a.lossOld = lossOld;
        a.verdicts = verdicts;
        a.lossNew = lossNew;
        r.attestingStake += a.stake;
        emit AttestationRevealed(task, id, msg.sender);
    }

    /// A full round's attester with the smallest stake makes room for `stake` if it is
    /// larger (its attestation no longer counts and earns nothing); else the call is refused.
    /// Attestations are all still sealed then (they open after the window), so nothing
    /// counted has to be taken back.
    function evictSmallest(uint256 task, uint64 id, uint128 stake) private {
        address[] storage who = attesters[task][id];
        uint256 k = 0;
        uint128 smallest = type(uint128).max;
        for (uint256 j = 0; j < who.length; j++) {
            uint128 s = attestations[task][id][who[j]].stake;
            if (s < smallest) (k, smallest) = (j, s);
        }
        if (stake <= smallest) revert AttestersFull(smallest);
        delete attestations[task][id][who[k]];
        who[k] = msg.sender;
    }

    /// Checks each verdict against the candidate and the losses, and adds the stake to it.
    function tally(
        uint256 task,
        uint64 id,
        uint128 stake,
        uint64 lossOld,
        uint8[] calldata verdicts,
        uint64[] calldata lossNew
    ) private {
        uint64 margin = tasks[task].params.margin;
        for (uint16 i = 0; i < verdicts.length; i++) {
            Candidate storage c = candidates[task][id][i];
            if (verdicts[i] > uint8(Verdict.Negative)) revert BadVerdict(i);
            Verdict v = Verdict(verdicts[i]);
            if (c.miner == msg.sender && v != Verdict.None) revert MinerCannotAttest();
            // None exactly for the unrevealed candidates and the attester's own.
            if ((v == Verdict.None) != (!c.revealed || c.miner == msg.sender)) revert BadVerdict(i);
            if (v == Verdict.None) continue;
            if (v == Verdict.Positive) {
                if (uint256(lossNew[i]) + margin > lossOld) revert VerdictContradictsLosses(i);
                c.positiveStake += stake;
                if (c.fraud) slashStake(task, id, msg.sender);
            } else {
                c.negativeStake += stake;
            }
        }
    }

    /// Closes the open round: after the challenge window (which follows the attestation
    /// window), or earlier once nothing is left to happen (no reveal by the reveal deadline,
    /// no proof by the proof deadline). Settles every candidate (see the contract's notice;
    /// one proven fraudulent is slashed, its bond already paid out) and advances the root to
    /// the winner's.
    /// Each candidate is judged by the stake that gave it a verdict (abstentions, such as a
    /// miner's on its own candidate, count neither way): eligible with a quorum and 2/3 of it
    /// positive, slashed with a quorum and 2/3 of it negative, otherwise returned.
    function finalize(uint256 task) external nonReentrant exists(task) {
        (uint64 id, Round storage r) = openRound(task);
        Task storage t = tasks[task];
        bool early = (r.revealed == 0 && block.number > r.revealEnd) || (r.proven == 0 && block.number > r.proofEnd);
        if (block.number <= r.challengeEnd && !early) revert TooEarly(uint64(block.number), r.challengeEnd + 1);
        t.open = false;
        r.finalized = true;
        // A batch that was due (something was proven) but not revealed may still have been
        // shown (a late or censored reveal): it is retired all the same.
        if (r.evalBlock == 0 && r.proven != 0 && t.evalLeft != 0) {
            bytes32 seed1 = roundSeed(task, id, 1);
            if (seed1 != bytes32(0)) {
                (uint32 set,, uint32 position) = drawnEval(task, seed1);
                retireEval(task, set, position);
            }
        }
        // A sealed attestation never opened: withholding a reveal costs what a positive on a
        // fraud costs (so a blind commit gains nothing by hiding when a fraud turns up).
        // With k candidates proven fraudulent, as much as k positive verdicts on them cost.
        uint256 frauds = 0;
        for (uint16 i = 0; i < r.commits; i++) {
            if (candidates[task][id][i].fraud) frauds++;
        }
        address[] storage who = attesters[task][id];
        for (uint256 k = 0; k < who.length; k++) {
            if (attestations[task][id][who[k]].revealed) continue;
            for (uint256 times = frauds == 0 ? 1 : frauds; times > 0; times--) {
                slashStake(task, id, who[k]);
            }
        }
        int256 best = 0;
        uint16 winner = 0;
        for (uint16 i = 0; i < r.commits; i++) {
            Candidate storage c = candidates[task][id][i];
            uint256 judged = uint256(c.positiveStake) + c.negativeStake;
            bool quorate = judged >= t.params.quorum;
            if (c.fraud) {
                c.outcome = Outcome.Slashed; // its bond went to the challenger and the pool
            } else if (!c.revealed || !c.proven) {
                // A missing reveal or a missed proof deadline is the miner's fault; the seeds
                // are readable throughout both windows (createTask bounds them).
                c.outcome = Outcome.Slashed;
            } else if (quorate && 3 * uint256(c.positiveStake) >= 2 * judged) {
                c.outcome = Outcome.Returned; // eligible; the winner is re-marked below
                c.gain = medianGain(task, id, i, uint128(judged));
                if (winner == 0 || c.gain > best) (winner, best) = (i + 1, c.gain);
            } else if (quorate && 3 * uint256(c.negativeStake) >= 2 * judged) {
                c.outcome = Outcome.Slashed; // judged bad by 2/3 of the quorum
            } else {
                c.outcome = Outcome.Returned; // verifiers offline or split: no fault proven
            }
        }
        uint256 reward = 0;
        if (winner != 0) {
            Candidate storage w = candidates[task][id][winner - 1];
            w.outcome = Outcome.Won;
            r.winner = winner;
            t.root = w.newRoot;
            reward = t.params.reward < t.pool ? t.params.reward : t.pool;
            t.pool -= reward;
            uint256 fee = (reward * t.params.verifierFeeBps) / BPS;
            r.fee = uint128(fee);
            r.feeLeft = uint128(fee);
            r.feeStakeLeft = w.positiveStake;
            owed[w.miner] += uint256(w.bond) + reward - fee;
        }
        for (uint16 i = 0; i < r.commits; i++) {
            Candidate storage c = candidates[task][id][i];
            if (c.outcome == Outcome.Returned) {
                owed[c.miner] += c.bond;
            } else if (c.outcome == Outcome.Slashed) {
                // Only a proven candidate the quorum rejected pays its negative attesters: an
                // unrevealed or unproven one feeds the pool, so nobody can refund their own
                // junk commits through their own negative attestations.
                uint256 judged = uint256(c.positiveStake) + c.negativeStake;
                bool rejected = judged >= t.params.quorum && 3 * uint256(c.negativeStake) >= 2 * judged;
                if (c.fraud && !rejected) {
                    // The fraud proof is what caught it: half the bond to whoever proved it.
                    // (A candidate the quorum rejected anyway pays its negative attesters, so
                    // a miner's own fraud proof never buys back a bond it would lose.)
                    uint256 bounty = (uint256(c.bond) * FRAUD_BOUNTY_BPS) / BPS;
                    owed[c.challenger] += bounty;
                    t.pool += c.bond - bounty;
                    emit FraudBounty(task, id, i, c.challenger, bounty);
                } else if (c.proven && c.negativeStake > 0) {
                    c.slashLeft = c.bond;
                    c.slashStakeLeft = c.negativeStake;
                } else {
                    t.pool += c.bond;
                }
            }
            emit CandidateSettled(task, id, i, c.outcome, c.gain);
        }
        emit Finalized(task, id, winner, t.root, reward);
    }

    /// Stake-weighted (lower) median of the gains `lossOld - lossNew` the attesters report
    /// for candidate `index`; a negative verdict counts as the lowest gain there is.
    function medianGain(uint256 task, uint64 id, uint16 index, uint128 total) private view returns (int256) {
        address[] storage who = attesters[task][id];
        int256[] memory gains = new int256[](who.length);
        uint128[] memory weights = new uint128[](who.length);
        uint256 n = 0;
        for (uint256 k = 0; k < who.length; k++) {
            Attestation storage a = attestations[task][id][who[k]];
            if (!a.revealed) continue;
            uint8 v = a.verdicts[index];
            if (v == uint8(Verdict.None)) continue; // an abstention is not a gain of any size
            int256 g = v == uint8(Verdict.Positive)
                ? int256(uint256(a.lossOld)) - int256(uint256(a.lossNew[index]))
                : type(int256).min;
            uint128 s = a.stake;
            // Insertion sort by gain: at most MAX_ATTESTERS (2 * MAX_COMMITTEE) entries.
            uint256 j = n;
            while (j > 0 && gains[j - 1] > g) {
                gains[j] = gains[j - 1];
                weights[j] = weights[j - 1];
                j--;
            }
            gains[j] = g;
            weights[j] = s;
            n++;
        }
        uint256 acc = 0;
        for (uint256 k = 0; k < n; k++) {
            acc += weights[k];
            if (2 * acc >= total) return gains[k];
        }
        return type(int256).min;
    }

    /// A verifier's pay for a finished round, in proportion to stake: its share of the fee
    /// if it attested positive on the winner, and of every slashed bond of a candidate it
    /// attested negative on. The last claimant of each pot takes what rounding left.
    function claim(uint256 task, uint64 round) external nonReentrant exists(task) {
        Round storage r = rounds[task][round];
        Attestation storage a = attestations[task][round][msg.sender];
        if (!r.finalized || !a.revealed || a.claimed) revert NothingToClaim();
        a.claimed = true;
        uint256 amount = 0;
        // Whether the attester had a part in any pot: a share that rounds to 0 still moves
        // the pot on, so the last claimant takes the dust and nothing is stuck.
        bool paid = false;
        if (r.winner != 0 && a.verdicts[r.winner - 1] == uint8(Verdict.Positive) && r.feeStakeLeft != 0) {
            (uint128 share, uint128 left, uint128 stakeLeft) = shareOf(r.feeLeft, r.feeStakeLeft, a.stake);
            (r.feeLeft, r.feeStakeLeft) = (left, stakeLeft);
            amount += share;
            paid = true;
        }
        for (uint16 i = 0; i < r.commits; i++) {
            Candidate storage c = candidates[task][round][i];
            if (c.outcome != Outcome.Slashed || a.verdicts[i] != uint8(Verdict.Negative) || c.slashStakeLeft == 0) {
                continue;
            }
            (uint128 share, uint128 left, uint128 stakeLeft) = shareOf(c.slashLeft, c.slashStakeLeft, a.stake);
            (c.slashLeft, c.slashStakeLeft) = (left, stakeLeft);
            amount += share;
            paid = true;
        }
        if (!paid) revert NothingToClaim();
        owed[msg.sender] += amount;
        emit Claimed(task, round, msg.sender, amount);
    }

    /// `stake`'s share of a pot shared in proportion to `stakeLeft` (the last claimant takes
    /// the rest, so the whole pot is paid out), and the pot and stake left after it.
    function shareOf(uint128 pot, uint128 stakeLeft, uint128 stake)
        private
        pure
        returns (uint128 share, uint128 potLeft, uint128 newStakeLeft)
    {
        share = stake == stakeLeft ? pot : uint128((uint256(pot) * stake) / stakeLeft);
        return (share, pot - share, stakeLeft - stake);
    }

    /// Sends the caller everything it is owed.
    function withdraw() external nonReentrant {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        owed[msg.sender] = 0;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Withdrawn(msg.sender, amount);
    }

}

/// @title The part of the round contract that `PogoRounds` runs by DELEGATECALL: fraud proofs
/// and every read. Deployed once, before `PogoRounds`; called directly it refuses to change
/// state (its own storage is nobody's).
contract PogoRoundsExtension is PogoRoundsState {
    /// The fraud-proof checker (`PogoFraud`) every task's fraud proofs go to.
    PogoFraud public immutable fraudChecker;
    address private immutable self;

    /// Refuses a call made to the extension's own address: its storage holds no task, and
    /// a state change there would be nobody's. First, so that a direct call says so.
    modifier delegated() {
        if (address(this) == self) revert DirectCall();
        _;
    }

    constructor(PogoFraud checker) {
        if (address(checker).code.length == 0) revert BadParams(4);
        fraudChecker = checker;
        self = address(this);
    }

    /// Proves block `claim.blockIndex` of proven candidate `index` of the open round wrong
    /// (see `PogoFraud.check`; a claim that shows nothing reverts and costs only its gas).
    /// Open after the attestation window, until `challengeEnd`, so that every verdict is
    /// sealed before a fraud is public. The candidate is rejected and its whole bond
    /// slashed: at finalize half goes to the caller and half to the task's pool — unless 2/3
    /// of a quorum rejected it anyway, then it pays its negative attesters as any rejected
    /// candidate does. Every verifier whose opened attestation is positive on it loses
    /// `fraudSlashBps` of its stake to the pool now (one opening later, when it opens).
    function proveFraud(uint256 task, uint16 index, FraudClaim calldata claim)
        external
        delegated
        nonReentrant
        exists(task)
        returns (uint8 kind)
    {
        (uint64 id, Round storage r) = openRound(task);
        if (block.number <= r.attestEnd) revert TooEarly(uint64(block.number), r.attestEnd + 1);
        if (block.number > r.challengeEnd) revert TooLate(uint64(block.number), r.challengeEnd);
        if (index >= r.commits) revert NoSuchCandidate(index);
        Candidate storage c = candidates[task][id][index];
        if (!c.revealed) revert NotRevealed(index);
        // An unproven candidate loses its whole bond anyway: no bounty to buy back.
        if (!c.proven) revert NotProven(index);
        if (c.fraud) revert AlreadyFraud(index);
        Task storage t = tasks[task];
        kind = fraudChecker.check(r.oldRoot, c.newRoot, c.updateRoot, t.params.nb, t.params.depth, claim);
        c.fraud = true;
        c.challenger = msg.sender;
        uint256 slashed = 0;
        address[] storage who = attesters[task][id];
        for (uint256 k = 0; k < who.length; k++) {
            Attestation storage a = attestations[task][id][who[k]];
            // Sealed attestations pay when they open (or at finalize if they never do).
            if (!a.revealed || a.verdicts[index] != uint8(Verdict.Positive)) continue;
            slashed += slashStake(task, id, who[k]);
        }
        emit FraudProven(task, id, index, msg.sender, claim.blockIndex, kind, slashed);
    }

    /// BN254 scalar field modulus: roots and public inputs are elements of this field.
    function FIELD_MODULUS() external pure returns (uint256) {
        return FIELD;
    }

    /// Tasks registered so far.
    function taskCount() external view returns (uint256) {
        return taskTotal;
    }

    /// A verifier's stake in a task.
    function stakeOf(uint256 task, address verifier) external view returns (uint256) {
        return stakes[task][verifier];
    }

    /// Block of a verifier's (latest) join: its stake weighs only in rounds opened later.
    function stakeSince(uint256 task, address verifier) external view returns (uint64) {
        return stakeJoined[task][verifier];
    }

    /// Block a verifier called `leave` (0: staked).
    function leavingSince(uint256 task, address verifier) external view returns (uint64) {
        return stakeLeaving[task][verifier];
    }

    /// Ether `who` can withdraw.
    function balanceOf(address who) external view returns (uint256) {
        return owed[who];
    }

    /// Whether `updateRoot` was ever revealed for `task` (then it never can be again).
    function updateRevealed(uint256 task, uint256 updateRoot) external view returns (bool) {
        return revealedUpdates[task][updateRoot];
    }

    /// Blocks a leaving stake stays locked: the longest a round it could attest in lasts,
    /// fraud proofs included.
    function unbonding(uint256 task) external view returns (uint64) {
        return unbondingBlocks(task);
    }

    /// The hash a miner commits to (compute it off chain the same way).
    function commitmentOf(
        uint256 task,
        uint64 round,
        address miner,
        uint256 newRoot,
        uint256 updateRoot,
        bytes32 blobHash,
        bytes32 salt
    ) external view returns (bytes32) {
        return commitmentHash(task, round, miner, newRoot, updateRoot, blobHash, salt);
    }

    /// The hash a verifier commits to with `attest` (compute it off chain the same way).
    function attestationCommitmentOf(
        uint256 task,
        uint64 round,
        address verifier,
        uint64 lossOld,
        uint8[] calldata verdicts,
        uint64[] calldata lossNew,
        bytes32 salt
    ) external view returns (bytes32) {
        return attestationHash(task, round, verifier, lossOld, verdicts, lossNew, salt);
    }

    /// The seed of `phase` (1 or 2) of round `id`, or zero while its block is not closed or
    /// once its hash is out of reach (older than 256 blocks and not in EIP-2935's history).
    function seedOf(uint256 task, uint64 id, uint8 phase) external view returns (bytes32) {
        return roundSeed(task, id, phase);
    }

    /// The circuit's public inputs of candidate `index` of the open round (DESIGN §2): old
    /// root, new root, update root, nb, then the S sampled indices
    /// `uint256(keccak256(abi.encode(seed2, j))) % nb`.
    function publicInputs(uint256 task, uint16 index) external view returns (uint256[] memory) {
        return inputsOf(task, index);
    }
    /// The held-out batch phase 1 draws for the open round, until it is revealed: the set
    /// (the oldest with batches left), the batch in it, and its position in the set's pool
    /// (`uint256(keccak256(seed1 ‖ "eval")) % left`).
    function evalBatchOf(uint256 task) public view returns (uint32 set, uint32 batch, uint32 position) {
        (uint64 id,) = openRound(task);
        return drawnEval(task, roundSeed(task, id, 1));
    }

    // ---- reads ----

    /// A task's parameters and state.
    function getTask(uint256 task)
        external
        view
        exists(task)
        returns (
            TaskParams memory params,
            address owner,
            bytes32 verifierCodeHash,
            uint256 root,
            uint256 pool,
            uint64 roundCount,
            bool open
        )
    {
        Task storage t = tasks[task];
        return (t.params, t.owner, t.verifierCodeHash, t.root, t.pool, t.rounds, t.open);
    }

    /// One round of a task.
    function getRound(uint256 task, uint64 round) external view exists(task) returns (Round memory) {
        if (round >= tasks[task].rounds) revert BadParams(15);
        return rounds[task][round];
    }

    /// One candidate of a round.
    function getCandidate(uint256 task, uint64 round, uint16 index) external view exists(task) returns (Candidate memory) {
        if (round >= tasks[task].rounds || index >= rounds[task][round].commits) revert NoSuchCandidate(index);
        return candidates[task][round][index];
    }

    /// A verifier's attestation in a round (stake 0 if it did not attest).
    function getAttestation(uint256 task, uint64 round, address verifier) external view returns (Attestation memory) {
        return attestations[task][round][verifier];
    }

    /// A task's sets of held-out evaluation batches, oldest first.
    function getEvalSets(uint256 task) external view returns (EvalSet[] memory) {
        return evalSets[task];
    }

    /// Who attested in a round, in order.
    function getAttesters(uint256 task, uint64 round) external view returns (address[] memory) {
        return attesters[task][round];
    }

    /// Stake of every verifier of `task` joined and not leaving: the total the committee of
    /// the next round opened is drawn from.
    function activeStakeOf(uint256 task) external view exists(task) returns (uint256) {
        return tasks[task].activeStake;
    }

    /// The seats of round `round`'s committee that `verifier` wins with the stake it holds
    /// now: the list `attest` takes (empty on a task without a committee, or without stake).
    /// Whether that stake may attest in the round (joined before it opened, not leaving) is
    /// `attest`'s check. Reverts `PhaseNotReady(1)` until the round's phase-1 seed is fixed.
    function seatsOf(uint256 task, uint64 round, address verifier)
        external
        view
        exists(task)
        returns (uint16[] memory seats)
    {
        uint16 size = tasks[task].params.committee;
        uint256 stake = stakes[task][verifier];
        if (size == 0 || stake == 0) return seats;
        if (round >= tasks[task].rounds) revert BadParams(15);
        bytes32 seed1 = roundSeed(task, round, 1);
        if (seed1 == bytes32(0)) revert PhaseNotReady(1);
        uint256 total = rounds[task][round].committeeStake;
        // A stake above the total joined after the round opened: it has no seat there.
        if (stake > total) return seats;
        uint16 n = 0;
        for (uint16 j = 0; j < size; j++) {
            if (wonSeat(task, round, seed1, verifier, stake, total, j)) n++;
        }
        seats = new uint16[](n);
        n = 0;
        for (uint16 j = 0; j < size; j++) {
            if (wonSeat(task, round, seed1, verifier, stake, total, j)) seats[n++] = j;
        }
    }
}
