// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./Base.sol";

/// Plays every role against the round contract with fuzzed choices: honest miners (a true
/// update), junk miners (roots nobody applied), lazy miners (the model unchanged), copiers
/// (someone else's revealed update), fraudsters (an update wrong in a block the proof did
/// not sample), honest, lazy (always positive) and hostile (always negative) verifiers,
/// silent ones, an owner who reveals or withholds the held-out batch, challengers, and
/// anyone who draws, finalizes, claims or withdraws at any time. Calls the contract refuses
/// simply revert; the invariants below hold after every call.
contract RoundsHandler is RoundsFixture {
    enum Kind {
        True,
        Junk,
        Unchanged,
        Copy,
        Fraud
    }

    /// Every address that may be owed ether.
    address[] public actors;
    address public constant CHALLENGER = address(0xC0FFEE);
    /// Per round and candidate: what kind of update it carried.
    mapping(uint64 => mapping(uint16 => Kind)) public kindOf;
    uint256 internal nonce;
    /// The mode and round of each verifier's last sealed attestation, to open it later.
    mapping(address => uint8) internal sealedMode;
    mapping(address => uint64) internal sealedRound;

    constructor() {
        setUp();
        actors.push(owner);
        for (uint256 i = 0; i < miners.length; i++) {
            actors.push(miners[i]);
        }
        for (uint256 i = 0; i < verifiers.length; i++) {
            actors.push(verifiers[i]);
        }
        actors.push(CHALLENGER);
        actors.push(address(this));
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function isOpen() public view returns (bool open) {
        (,,,,,, open) = ext.getTask(task);
    }

    // ---- miners ----

    function commit(uint8 who, uint8 kind) external {
        address miner = miners[who % miners.length];
        Kind k = Kind(kind % 5);
        uint256 old = isOpen() ? round().oldRoot : root();
        uint256 newRoot = 5000 + (++nonce);
        uint256 updateRoot = 900_000 + nonce;
        if (k == Kind.True || k == Kind.Fraud) circuit.registerTrueUpdate(old, newRoot, updateRoot);
        if (k == Kind.Fraud) fraudChecker.markWrong(old, newRoot, updateRoot);
        if (k == Kind.Unchanged) newRoot = old;
        if (k == Kind.Copy) updateRoot = someRevealedUpdate();
        if (k == Kind.Copy) circuit.registerTrueUpdate(old, newRoot, updateRoot);
        uint16 index = commitAs(miner, newRoot, updateRoot);
        kindOf[roundId()][index] = k;
    }

    function someRevealedUpdate() internal view returns (uint256) {
        (,,,,, uint64 count,) = ext.getTask(task);
        for (uint64 r = count; r > 0; r--) {
            PogoRoundsState.Round memory rd = ext.getRound(task, r - 1);
            for (uint16 i = 0; i < rd.commits; i++) {
                PogoRoundsState.Candidate memory c = ext.getCandidate(task, r - 1, i);
                if (c.revealed) return c.updateRoot;
            }
        }
        return 900_000;
    }

    /// The first candidate from `k` on (cyclically) that `pick` accepts.
    function pickCandidate(uint8 k, function(PogoRoundsState.Candidate memory) view returns (bool) pick)
        internal
        view
        returns (uint16)
    {
        uint16 n = round().commits;
        for (uint16 j = 0; j < n; j++) {
            uint16 i = uint16((uint256(k) + j) % n);
            if (pick(candidate(i))) return i;
        }
        revert("no such candidate");
    }

    function provenNoFraud(PogoRoundsState.Candidate memory c) internal pure returns (bool) {
        return c.proven && !c.fraud;
    }

    /// Every miner of the open round reveals, except those `withhold` picks (bit i:
    /// candidate i); the contract may refuse some (an unchanged model, a copied update).
    function revealAll(uint8 withhold) external {
        rollTo(round().commitEnd + 1);
        uint16 n = round().commits;
        for (uint16 i = 0; i < n; i++) {
            PogoRoundsState.Candidate memory c = candidate(i);
            if (c.revealed || (withhold >> i) & 1 == 1) continue;
            uint256[2] memory r = committedRoots[i];
            vm.prank(c.miner);
            try rounds.reveal(task, i, r[0], r[1], keccak256("blob"), salts[i]) {} catch {}
        }
    }

    function draw() external {
        closeRandomness();
        rounds.drawRandomness(task);
    }

    /// Every revealed candidate submits its proof, a garbage one where `garbage` says so, or
    /// none where `skip` says so.
    function proveAll(uint8 garbage, uint8 skip) external {
        closeRandomness();
        uint16 n = round().commits;
        for (uint16 i = 0; i < n; i++) {
            PogoRoundsState.Candidate memory c = candidate(i);
            if (!c.revealed || c.proven || (skip >> i) & 1 == 1) continue;
            bytes memory proof = (garbage >> i) & 1 == 1 ? abi.encode(keccak256("garbage")) : proofOf(i);
            try rounds.submitProof(task, i, proof) {} catch {}
        }
    }

    /// Moves the open round on by one phase, as the chain and a crowd of roles would,
    /// with `seed` choosing who misbehaves: opens a round with one to three commits of
    /// any kind, reveals (some miners withholding), proves (some with garbage, some not at
    /// all), reveals the held-out batch (or the owner withholds it), seals attestations
    /// (each verifier silent, honest, lazy or hostile), opens them (some withholding),
    /// proves frauds, and finalizes.
    function advance(uint256 seed) external {
        if (!isOpen()) {
            // Between rounds, verifiers that lost stake top it up (else slashing would
            // soon leave no quorum, and no round could be won).
            for (uint256 k = 0; k < verifiers.length; k++) {
                uint256 held = ext.stakeOf(task, verifiers[k]);
                if (held >= STAKE) continue;
                vm.prank(verifiers[k]);
                try rounds.join{value: STAKE - held}(task) {} catch {}
            }
            uint256 n = 1 + seed % 3;
            for (uint256 i = 0; i < n; i++) {
                this.commit(uint8(i), uint8(seed >> (8 + 8 * i)));
            }
            return;
        }
        PogoRoundsState.Round memory r = round();
        uint8 rare = seed % 4 == 0 ? uint8(seed >> 40) : 0; // who misbehaves, one step in four
        if (block.number <= r.revealEnd) {
            this.revealAll(rare);
            rollTo(r.revealEnd + 1);
        } else if (block.number <= r.proofEnd && r.proven < r.revealed) {
            this.proveAll(rare, uint8(seed >> 48) & rare);
            rollTo(r.proofEnd + 1);
        } else if (block.number <= r.evalEnd && r.evalBlock == 0 && r.proven > 0 && seed % 8 != 1) {
            revealEval();
        } else if (block.number <= r.attestEnd && r.evalBlock != 0) {
            this.attestAll(uint8(seed >> 16));
            rollTo(r.attestEnd + 1);
        } else if (block.number <= r.challengeEnd && block.number > r.attestEnd) {
            this.openAll(rare);
            if ((seed >> 24) % 2 == 0) {
                for (uint16 i = 0; i < r.commits; i++) {
                    FraudClaim memory c;
                    vm.prank(CHALLENGER);
                    try ext.proveFraud(task, i, c) {} catch {}
                }
            }
            rollTo(r.challengeEnd + 1);
        } else {
            bool early = (r.revealed == 0 && block.number > r.revealEnd) || (r.proven == 0 && block.number > r.proofEnd);
            if (!early) rollTo(r.challengeEnd + 1);
            rounds.finalize(task);
            tallyOutcomes();
        }
    }

    /// How often a campaign reached each outcome (so a test can tell that fuzzing got
    /// everywhere): rounds won, candidates returned, slashed and proven fraudulent.
    uint256 public wins;
    uint256 public returned;
    uint256 public slashed;
    uint256 public frauds;
    uint256 public claims;

    function tallyOutcomes() internal {
        PogoRoundsState.Round memory r = round();
        if (r.winner != 0) wins++;
        for (uint16 i = 0; i < r.commits; i++) {
            PogoRoundsState.Candidate memory c = candidate(i);
            if (c.outcome == PogoRoundsState.Outcome.Returned) returned++;
            if (c.outcome == PogoRoundsState.Outcome.Slashed) slashed++;
            if (c.fraud) frauds++;
        }
    }

    // ---- the owner and the held-out data ----

    function revealHeldOut() external {
        revealEval();
    }

    function fund(uint96 amount) external {
        uint256 value = amount % 10 ether;
        vm.prank(owner);
        rounds.fund{value: value}(task);
    }

    // ---- verifiers ----

    /// Every verifier seals an attestation, two bits of `modes` each: 0 silent, 1 honest
    /// (positive on true updates, negative on the rest), 2 lazy (positive on everything), 3
    /// hostile (negative on everything).
    function attestAll(uint8 modes) external {
        rollTo(round().evalEnd + 1);
        uint64 id = roundId();
        bytes32 salt = keccak256("salt");
        for (uint256 k = 0; k < verifiers.length; k++) {
            uint8 mode = (modes >> (2 * k)) & 3;
            if (mode == 0) continue;
            address v = verifiers[k];
            (uint8[] memory verdicts, uint64[] memory lossNew) = judgement(v, mode);
            bytes32 c = ext.attestationCommitmentOf(task, id, v, 1000, verdicts, lossNew, salt);
            uint16[] memory seats = seatsOf(v);
            vm.prank(v);
            try rounds.attest(task, c, seats) {
                sealedMode[v] = mode;
                sealedRound[v] = id;
            } catch {}
        }
    }

    function judgement(address v, uint8 mode) internal view returns (uint8[] memory verdicts, uint64[] memory lossNew) {
        PogoRoundsState.Round memory r = round();
        verdicts = new uint8[](r.commits);
        lossNew = new uint64[](r.commits);
        uint64 id = roundId();
        for (uint16 i = 0; i < r.commits; i++) {
            PogoRoundsState.Candidate memory c = candidate(i);
            if (!c.revealed || c.miner == v) continue;
            bool good = kindOf[id][i] == Kind.True;
            bool positive = mode == 2 || (mode == 1 && good);
            verdicts[i] = positive ? 1 : 2;
            lossNew[i] = positive ? uint64(400 + (i * 37) % 300) : 1000;
        }
    }

    /// Every verifier with a sealed attestation in this round opens it, except those
    /// `withhold` picks (bit k: verifier k), who lose part of their stake at finalize.
    function openAll(uint8 withhold) external {
        rollTo(round().attestEnd + 1);
        uint64 id = roundId();
        for (uint256 k = 0; k < verifiers.length; k++) {
            address v = verifiers[k];
            if (sealedRound[v] != id || (withhold >> k) & 1 == 1) continue;
            (uint8[] memory verdicts, uint64[] memory lossNew) = judgement(v, sealedMode[v]);
            vm.prank(v);
            try rounds.revealAttestation(task, 1000, verdicts, lossNew, keccak256("salt")) {} catch {}
        }
    }

    function join(uint8 who, uint96 amount) external {
        address v = verifiers[who % verifiers.length];
        vm.prank(v);
        rounds.join{value: STAKE + amount % (10 ether)}(task);
    }

    function leave(uint8 who) external {
        vm.prank(verifiers[who % verifiers.length]);
        rounds.leave(task);
    }

    function claim(uint8 who, uint64 r) external {
        (,,,,, uint64 count,) = ext.getTask(task);
        vm.prank(verifiers[who % verifiers.length]);
        rounds.claim(task, count == 0 ? 0 : r % count);
        claims++;
    }

    // ---- anyone ----

    function challenge(uint8 k) external {
        uint16 index = pickCandidate(k, provenNoFraud);
        rollTo(round().attestEnd + 1);
        FraudClaim memory c;
        vm.prank(CHALLENGER);
        ext.proveFraud(task, index, c);
    }

    function finalize() external {
        finalizeRound();
        tallyOutcomes();
    }

    function finalizeEarly() external {
        rounds.finalize(task);
        tallyOutcomes();
    }

    function withdraw(uint8 who) external {
        address a;
        for (uint256 j = 0; j < actors.length; j++) {
            a = actors[(who + j) % actors.length];
            if (ext.balanceOf(a) != 0) break;
        }
        vm.prank(a);
        rounds.withdraw();
    }

    function mine(uint8 blocks) external {
        vm.roll(block.number + 1 + blocks % 4);
    }

    /// The handler's actions: what forge calls (not the fixture's own functions).
    function actions() external pure returns (bytes4[] memory s) {
        s = new bytes4[](24);
        s[0] = this.commit.selector;
        s[1] = this.revealAll.selector;
        s[2] = this.draw.selector;
        s[3] = this.proveAll.selector;
        s[4] = this.revealHeldOut.selector;
        s[5] = this.fund.selector;
        s[6] = this.attestAll.selector;
        s[7] = this.openAll.selector;
        s[8] = this.join.selector;
        s[9] = this.leave.selector;
        s[10] = this.claim.selector;
        s[11] = this.challenge.selector;
        s[12] = this.finalize.selector;
        s[13] = this.finalizeEarly.selector;
        s[14] = this.withdraw.selector;
        s[15] = this.mine.selector;
        s[16] = this.moreHeldOut.selector;
        // Most calls move a round on, so that campaigns reach every phase.
        for (uint256 k = 17; k < 24; k++) {
            s[k] = this.advance.selector;
        }
    }

    function moreHeldOut() external {
        vm.prank(owner);
        rounds.addEvalData(task, evalRoot(), 4);
    }

    // ---- for the invariants ----

    function contract_() external view returns (PogoRoundsExtension) {
        return ext;
    }

    function taskId() external view returns (uint256) {
        return task;
    }

    function circuitDouble() external view returns (CircuitDouble) {
        return circuit;
    }

    function genesis() external pure returns (uint256) {
        return 1000;
    }
}

/// One long campaign with fixed seeds reaches every outcome: the fuzzed campaigns below use
/// the same actions, so their invariants are checked where it matters.
contract CampaignCoverageTest is Checks {
    function test_a_campaign_reaches_every_outcome() public {
        RoundsHandler h = new RoundsHandler();
        vm.deal(address(h), 1000 ether);
        for (uint256 i = 0; i < 400; i++) {
            uint256 seed = uint256(keccak256(abi.encode(i)));
            try h.advance(seed) {} catch {}
            if (i % 7 == 0) {
                for (uint8 v = 0; v < 4; v++) {
                    try h.claim(v, uint64(seed >> 8)) {} catch {}
                }
            }
            if (i % 40 == 0) h.moreHeldOut();
        }
        string memory seen = string.concat(
            "wins ", vmString(h.wins()), ", returned ", vmString(h.returned()), ", slashed ", vmString(h.slashed()),
            ", frauds ", vmString(h.frauds()), ", claims ", vmString(h.claims())
        );
        ok(h.wins() > 0, string.concat("no round was won: ", seen));
        ok(h.returned() > 0, "no bond was returned");
        ok(h.slashed() > 0, "no candidate was slashed");
        ok(h.frauds() > 0, "no fraud was proven");
        ok(h.claims() > 0, "no verifier claimed");
    }
}

/// The same campaign on a task with a committee of 8 seats and a quorum of 3 seats.
contract CommitteeRoundsHandler is RoundsHandler {
    function params() internal view override returns (PogoRoundsState.TaskParams memory p) {
        p = super.params();
        p.committee = 8;
        p.quorum = 3;
    }
}

contract PogoRoundsInvariants is Checks {
    RoundsHandler internal handler;
    PogoRoundsExtension internal pogo;
    uint256 internal task;

    function newHandler() internal virtual returns (RoundsHandler) {
        return new RoundsHandler();
    }

    function setUp() public {
        handler = newHandler();
        vm.deal(address(handler), 1000 ether);
        pogo = handler.contract_();
        task = handler.taskId();
    }

    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// forge fuzzes calls to the handler's actions only.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), handler.actions());
    }

    /// The contract holds exactly what it owes: pool, bonds of the open round, unclaimed
    /// fees and slashed bonds, stakes, and withdrawable balances.
    function invariant_ether_equals_what_the_contract_owes() public view {
        (, , , , uint256 pool, uint64 count,) = pogo.getTask(task);
        uint256 owed = pool;
        for (uint64 r = 0; r < count; r++) {
            PogoRoundsState.Round memory rd = pogo.getRound(task, r);
            owed += rd.feeLeft;
            for (uint16 i = 0; i < rd.commits; i++) {
                PogoRoundsState.Candidate memory c = pogo.getCandidate(task, r, i);
                if (!rd.finalized) owed += c.bond;
                owed += c.slashLeft;
            }
        }
        for (uint256 a = 0; a < handler.actorCount(); a++) {
            address who = handler.actors(a);
            owed += pogo.stakeOf(task, who) + pogo.balanceOf(who);
        }
        eq(address(pogo).balance, owed, "contract balance vs what it owes");
    }

    /// No candidate wins without a reveal, a valid proof of a true update, attesting stake
    /// of at least the quorum with 2/3 of it positive, and a changed model; no fraud wins;
    /// one winner at most, and the task's root is the last winner's.
    function invariant_only_proven_quorate_changed_true_updates_win() public view {
        (PogoRoundsState.TaskParams memory p, , , uint256 rootNow, , uint64 count,) = pogo.getTask(task);
        uint256 expectRoot = handler.genesis();
        CircuitDouble circuit = handler.circuitDouble();
        for (uint64 r = 0; r < count; r++) {
            PogoRoundsState.Round memory rd = pogo.getRound(task, r);
            uint256 winners;
            for (uint16 i = 0; i < rd.commits; i++) {
                PogoRoundsState.Candidate memory c = pogo.getCandidate(task, r, i);
                ok((c.outcome == PogoRoundsState.Outcome.Pending) == !rd.finalized, "pending until finalized");
                if (c.outcome != PogoRoundsState.Outcome.Won) continue;
                winners++;
                uint256 judged = uint256(c.positiveStake) + c.negativeStake;
                ok(rd.winner == i + 1, "the round names its winner");
                ok(c.revealed && c.proven && !c.fraud, "revealed, proven, no fraud");
                ok(c.newRoot != rd.oldRoot, "no reward for an unchanged model");
                ok(circuit.trueUpdate(keccak256(abi.encode(rd.oldRoot, c.newRoot, c.updateRoot))), "a true update");
                ok(judged >= p.quorum && 3 * uint256(c.positiveStake) >= 2 * judged, "quorum and 2/3 positive");
                expectRoot = c.newRoot;
            }
            ok(winners <= 1 && (winners == 1) == (rd.winner != 0), "one winner at most");
        }
        eq(rootNow, expectRoot, "the root is the last winner's");
    }

    /// The stake a committee is drawn from is exactly the stake of every verifier joined
    /// and not leaving, whatever joins, leaves and slashes happened.
    function invariant_the_drawn_stake_is_every_active_stake() public view {
        uint256 active = 0;
        for (uint256 a = 0; a < handler.actorCount(); a++) {
            address who = handler.actors(a);
            if (pogo.leavingSince(task, who) == 0) active += pogo.stakeOf(task, who);
        }
        eq(pogo.activeStakeOf(task), active, "drawn-from stake vs active stakes");
    }

    /// An update root is revealed once per task, whoever tries to copy it.
    function invariant_no_update_is_revealed_twice() public view {
        (, , , , , uint64 count,) = pogo.getTask(task);
        uint256[] memory seen = new uint256[](count * 3);
        uint256 n;
        for (uint64 r = 0; r < count; r++) {
            PogoRoundsState.Round memory rd = pogo.getRound(task, r);
            for (uint16 i = 0; i < rd.commits; i++) {
                PogoRoundsState.Candidate memory c = pogo.getCandidate(task, r, i);
                if (!c.revealed) continue;
                for (uint256 k = 0; k < n; k++) {
                    ok(seen[k] != c.updateRoot, "an update revealed twice");
                }
                seen[n++] = c.updateRoot;
            }
        }
    }

    /// An honest miner (a true update, revealed and proven in time) is never slashed unless
    /// 2/3 of a quorum of stake judged it bad: verifiers offline, split or too few never cost
    /// it its bond.
    function invariant_no_honest_miner_slashed() public view {
        (PogoRoundsState.TaskParams memory p, , , , , uint64 count,) = pogo.getTask(task);
        for (uint64 r = 0; r < count; r++) {
            PogoRoundsState.Round memory rd = pogo.getRound(task, r);
            for (uint16 i = 0; i < rd.commits; i++) {
                PogoRoundsState.Candidate memory c = pogo.getCandidate(task, r, i);
                if (handler.kindOf(r, i) != RoundsHandler.Kind.True || !c.proven) continue;
                if (c.outcome != PogoRoundsState.Outcome.Slashed) continue;
                uint256 judged = uint256(c.positiveStake) + c.negativeStake;
                ok(judged >= p.quorum && 3 * uint256(c.negativeStake) >= 2 * judged, "an honest miner slashed");
            }
        }
    }
}

/// Every invariant above, on a task with a committee: seats instead of stakes.
contract PogoRoundsCommitteeInvariants is PogoRoundsInvariants {
    function newHandler() internal override returns (RoundsHandler) {
        return new CommitteeRoundsHandler();
    }
}
