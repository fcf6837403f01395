// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./Base.sol";

/// Every transition of the round contract, and every custom error it can raise, from a
/// Solidity caller (the Rust suite in prover/tests/evm.rs and verifier/tests/fraud.rs drives
/// the same contract with real proofs).
contract PogoRoundsTest is RoundsFixture {
    // ---- the happy path ----

    function test_an_honest_round_advances_the_root_and_pays_miner_and_verifiers() public {
        uint256 before = ext.balanceOf(miners[0]);
        honestRound(miners[0], 2000, 3000);
        eq(root(), 2000, "root");
        PogoRoundsState.Round memory r = round();
        ok(r.finalized && r.winner == 1, "winner");
        eq(uint8(candidate(0).outcome), uint8(PogoRoundsState.Outcome.Won), "outcome");
        uint256 fee = (uint256(REWARD) * 1000) / 10_000;
        eq(ext.balanceOf(miners[0]) - before, BOND + REWARD - fee, "miner paid bond + reward - fee");
        eq(pool(), 100 ether - REWARD, "pool");
        vm.prank(verifiers[0]);
        rounds.claim(task, 0);
        vm.prank(verifiers[1]);
        rounds.claim(task, 0);
        eq(ext.balanceOf(verifiers[0]) + ext.balanceOf(verifiers[1]), fee, "the fee, shared");
        uint256 held = address(miners[0]).balance;
        vm.prank(miners[0]);
        rounds.withdraw();
        eq(address(miners[0]).balance - held, BOND + REWARD - fee, "withdrawn");
    }

    function test_two_rounds_in_a_row_start_from_the_accepted_root() public {
        honestRound(miners[0], 2000, 3000);
        uint16 i = commitTrue(miners[1], 4000, 5000);
        eq(round().oldRoot, 2000, "the second round starts from the first's root");
        revealAs(miners[1], i);
        prove(i);
        revealEval();
        judge(1, 2);
        finalizeRound();
        eq(root(), 4000, "root");
    }

    function test_the_best_of_competing_candidates_wins_and_the_others_get_their_bonds_back() public {
        (uint16 a,) = twoProvenCandidates(miners[0], miners[1]);
        // Both positive; candidate b reports the larger gain (lower new loss).
        (uint8[] memory v, uint64[] memory lossNew) = two(1, 1, 800, 600);
        attestAs(verifiers[0], v, lossNew);
        attestAs(verifiers[1], v, lossNew);
        openAs(verifiers[0], v, lossNew);
        openAs(verifiers[1], v, lossNew);
        uint256 before = ext.balanceOf(miners[0]);
        finalizeRound();
        eq(root(), 2001, "b wins");
        eq(uint8(candidate(a).outcome), uint8(PogoRoundsState.Outcome.Returned), "a returned");
        eq(ext.balanceOf(miners[0]) - before, BOND, "a's bond back");
    }

    function test_verifiers_offline_return_every_bond_and_keep_the_root() public {
        uint16 i = provenRound(miners[0], 2000, 3000);
        finalizeRound();
        eq(root(), 1000, "no quorum, no change");
        eq(uint8(candidate(i).outcome), uint8(PogoRoundsState.Outcome.Returned), "an honest miner is not slashed");
        eq(ext.balanceOf(miners[0]), BOND, "bond back");
    }

    function test_a_candidate_two_thirds_of_a_quorum_rejects_pays_its_negative_attesters() public {
        uint16 i = provenRound(miners[0], 2000, 3000);
        judge(2, 2);
        finalizeRound();
        eq(uint8(candidate(i).outcome), uint8(PogoRoundsState.Outcome.Slashed), "slashed");
        vm.prank(verifiers[0]);
        rounds.claim(task, 0);
        vm.prank(verifiers[1]);
        rounds.claim(task, 0);
        eq(ext.balanceOf(verifiers[0]) + ext.balanceOf(verifiers[1]), BOND, "the bond, to the negative attesters");
    }

    function test_an_unrevealed_commit_is_slashed_to_the_pool_and_finalize_comes_early() public {
        commitAs(miners[0], 2000, 3000);
        rollTo(round().revealEnd + 1);
        rounds.finalize(task);
        eq(uint8(candidate(0).outcome), uint8(PogoRoundsState.Outcome.Slashed), "slashed");
        eq(pool(), 100 ether + BOND, "to the pool");
    }

    function test_an_unproven_candidate_is_slashed() public {
        uint16 i = commitTrue(miners[0], 2000, 3000);
        revealAs(miners[0], i);
        rollTo(round().proofEnd + 1);
        rounds.finalize(task);
        eq(uint8(candidate(i).outcome), uint8(PogoRoundsState.Outcome.Slashed), "slashed");
    }

    function test_a_proven_fraud_pays_the_challenger_half_the_bond_and_slashes_positive_attesters() public {
        uint16 i = commitTrue(miners[0], 2000, 3000);
        fraudChecker.markWrong(1000, 2000, 3000);
        revealAs(miners[0], i);
        prove(i);
        revealEval();
        judge(1, 2);
        FraudClaim memory claim;
        address challenger = address(0xC0FFEE);
        vm.prank(challenger);
        ext.proveFraud(task, i, claim);
        eq(ext.stakeOf(task, verifiers[0]), STAKE / 2, "a positive attester loses fraudSlashBps");
        finalizeRound();
        eq(root(), 1000, "a fraud never wins");
        eq(ext.balanceOf(challenger), BOND / 2, "half the bond to the challenger");
    }

    function test_leaving_releases_the_stake_after_unbonding() public {
        vm.prank(verifiers[3]);
        rounds.leave(task);
        uint64 releasedAfter = uint64(block.number) + ext.unbonding(task);
        rollTo(releasedAfter + 1);
        vm.prank(verifiers[3]);
        rounds.leave(task);
        eq(ext.balanceOf(verifiers[3]), STAKE, "stake released");
        eq(ext.stakeOf(task, verifiers[3]), 0, "no stake left");
    }

    function test_the_owner_adds_held_out_sets_and_anyone_funds() public {
        uint256 setsBefore = ext.getEvalSets(task).length;
        vm.prank(owner);
        rounds.addEvalData(task, keccak256("set 2"), 8);
        eq(ext.getEvalSets(task).length, setsBefore + 1, "a new set");
        vm.deal(address(this), 1 ether);
        rounds.fund{value: 1 ether}(task);
        eq(pool(), 101 ether, "funded");
    }

    function test_draw_randomness_fixes_both_phases_once() public {
        uint16 i = commitTrue(miners[0], 2000, 3000);
        revealAs(miners[0], i);
        closeRandomness();
        eq(rounds.drawRandomness(task), 2, "two phases");
        PogoRoundsState.Round memory r = round();
        ok(r.seed1 != bytes32(0) && r.seed2 != bytes32(0), "seeds stored");
        uint256[] memory inputs = ext.publicInputs(task, i);
        eq(inputs.length, 4 + 2, "old, new, update, nb, then S indices");
        eq(inputs[4], uint256(keccak256(abi.encode(r.seed2, uint256(0)))) % 40, "index rule");
    }

    // ---- every custom error ----

    function test_revert_UnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.UnknownTask.selector, 7));
        rounds.fund(7);
    }

    function test_revert_BadParams_at_registration() public {
        PogoRoundsState.TaskParams memory p = params();
        uint8[16] memory why = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 13, 16, 16];
        for (uint256 k = 0; k < why.length; k++) {
            p = params();
            if (k == 0) p.depth = 33;
            if (k == 1) p.nb = 65;
            if (k == 2) p.samples = 0;
            if (k == 3) p.verifier = address(0xdead);
            if (k == 4) p.verifierGas = 0;
            if (k == 5) p.challengeWindow = 0;
            if (k == 6) p.proofWindow = 2;
            if (k == 7) p.attestWindow = 300;
            if (k == 8) p.maxCandidates = 17;
            if (k == 9) p.fraudSlashBps = 0;
            if (k == 10) p.quorum = 0;
            if (k == 11) p.minVerifierStake = 0;
            if (k == 12) p.evalRoot = bytes32(0);
            if (k == 13) p.evalBatches = 0;
            if (k == 14) p.committee = 65;
            if (k == 15) (p.committee, p.quorum) = (8, 9); // a quorum of more seats than there are
            vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadParams.selector, why[k]));
            rounds.createTask(p);
        }
    }

    function test_revert_BadParams_when_a_stake_is_below_the_minimum_or_a_round_is_out_of_range() public {
        vm.deal(address(0xBEEF), 1 ether);
        vm.prank(address(0xBEEF));
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadParams.selector, 14));
        rounds.join{value: 1 ether}(task);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadParams.selector, 15));
        ext.getRound(task, 0);
    }

    function test_revert_BadParams_for_a_rounds_contract_without_an_extension() public {
        string memory json = vm.readFile("build/PogoRounds.json");
        bytes memory code = bytes.concat(vm.parseJsonBytes(json, ".bytecode"), abi.encode(address(0xdead)));
        address at;
        assembly ("memory-safe") {
            at := create(0, add(code, 0x20), mload(code))
        }
        eq(uint160(at), 0, "a constructor without an extension reverts");
    }

    function test_revert_NotFieldElement() public {
        PogoRoundsState.TaskParams memory p = params();
        p.genesisRoot = FIELD;
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotFieldElement.selector, FIELD));
        rounds.createTask(p);
        uint16 i = commitAs(miners[0], FIELD + 5, 3000);
        rollTo(round().commitEnd + 1);
        vm.prank(miners[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotFieldElement.selector, FIELD + 5));
        rounds.reveal(task, i, FIELD + 5, 3000, keccak256("blob"), salts[i]);
    }

    function test_revert_RoundOpen_when_adding_to_a_stake_during_a_round() public {
        commitAs(miners[0], 2000, 3000);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.RoundOpen.selector, task));
        rounds.join{value: 1 ether}(task);
    }

    function test_revert_NoOpenRound() public {
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NoOpenRound.selector, task));
        rounds.finalize(task);
    }

    function test_revert_RoundFull() public {
        commitAs(miners[0], 2000, 3000);
        commitAs(miners[1], 2001, 3001);
        commitAs(miners[2], 2002, 3002);
        uint64 id = roundId();
        vm.prank(miners[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.RoundFull.selector, 3));
        rounds.commit{value: BOND}(task, id, keccak256("fourth"));
    }

    function test_revert_WrongBond() public {
        vm.prank(miners[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.WrongBond.selector, BOND, 1));
        rounds.commit{value: 1}(task, 0, keccak256("c"));
    }

    function test_revert_WrongRound() public {
        vm.prank(miners[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.WrongRound.selector, 0, 1));
        rounds.commit{value: BOND}(task, 1, keccak256("c"));
    }

    function test_revert_TooEarly_and_TooLate() public {
        uint16 i = commitAs(miners[0], 2000, 3000);
        PogoRoundsState.Round memory r = round();
        vm.prank(miners[0]);
        vm.expectRevert(
            abi.encodeWithSelector(PogoRoundsState.TooEarly.selector, uint64(block.number), r.commitEnd + 1)
        );
        rounds.reveal(task, i, 2000, 3000, keccak256("blob"), salts[i]);
        rollTo(r.commitEnd + 1);
        vm.prank(miners[1]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.TooLate.selector, r.commitEnd + 1, r.commitEnd));
        rounds.commit{value: BOND}(task, 0, keccak256("late"));
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.TooEarly.selector, r.commitEnd + 1, r.challengeEnd + 1));
        rounds.finalize(task);
    }

    function test_revert_PhaseNotReady_and_AlreadyDrawn() public {
        uint16 i = commitTrue(miners[0], 2000, 3000);
        revealAs(miners[0], i);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.PhaseNotReady.selector, 1));
        rounds.drawRandomness(task);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.PhaseNotReady.selector, 2));
        ext.publicInputs(task, i);
        closeRandomness();
        rounds.drawRandomness(task);
        vm.expectRevert(PogoRoundsState.AlreadyDrawn.selector);
        rounds.drawRandomness(task);
    }

    function test_revert_NoSuchCandidate_NotYourCandidate_AlreadyRevealed_WrongReveal() public {
        uint16 i = commitAs(miners[0], 2000, 3000);
        rollTo(round().commitEnd + 1);
        vm.prank(miners[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NoSuchCandidate.selector, 1));
        rounds.reveal(task, 1, 2000, 3000, keccak256("blob"), salts[i]);
        vm.prank(miners[1]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotYourCandidate.selector, i));
        rounds.reveal(task, i, 2000, 3000, keccak256("blob"), salts[i]);
        vm.prank(miners[0]);
        vm.expectRevert(PogoRoundsState.WrongReveal.selector);
        rounds.reveal(task, i, 2000, 3001, keccak256("blob"), salts[i]);
        revealAs(miners[0], i);
        vm.prank(miners[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.AlreadyRevealed.selector, i));
        rounds.reveal(task, i, 2000, 3000, keccak256("blob"), salts[i]);
    }

    function test_revert_UnchangedModel() public {
        uint16 i = commitAs(miners[0], 1000, 3000);
        rollTo(round().commitEnd + 1);
        vm.prank(miners[0]);
        vm.expectRevert(PogoRoundsState.UnchangedModel.selector);
        rounds.reveal(task, i, 1000, 3000, keccak256("blob"), salts[i]);
    }

    function test_revert_UpdateReused_by_a_copier_in_the_same_or_a_later_round() public {
        uint16 a = commitTrue(miners[0], 2000, 3000);
        uint16 copy = commitAs(miners[1], 2000, 3000);
        revealAs(miners[0], a);
        vm.prank(miners[1]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.UpdateReused.selector, 3000));
        rounds.reveal(task, copy, 2000, 3000, keccak256("blob"), salts[copy]);
        prove(a);
        revealEval();
        judge(1, 2);
        finalizeRound();
        uint16 later = commitAs(miners[1], 2000 + 1, 3000);
        rollTo(round().commitEnd + 1);
        vm.prank(miners[1]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.UpdateReused.selector, 3000));
        rounds.reveal(task, later, 2001, 3000, keccak256("blob"), salts[later]);
    }

    function test_revert_NotRevealed_AlreadyProven_ProofRejected() public {
        uint16 a = commitTrue(miners[0], 2000, 3000);
        uint16 b = commitAs(miners[1], 2001, 3001);
        revealAs(miners[0], a);
        closeRandomness();
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotRevealed.selector, b));
        rounds.submitProof(task, b, hex"00");
        vm.expectRevert(PogoRoundsState.ProofRejected.selector);
        rounds.submitProof(task, a, abi.encode(keccak256("not the proof")));
        bytes memory proof = proofOf(a);
        rounds.submitProof(task, a, proof);
        vm.expectRevert(PogoRoundsState.AlreadyProven.selector);
        rounds.submitProof(task, a, proof);
    }

    function test_revert_ProofRejected_for_a_false_statement_with_matching_inputs() public {
        // Junk roots nobody applied: the circuit has no proof of them, whatever the bytes.
        uint16 i = commitAs(miners[0], 2000, 3000);
        revealAs(miners[0], i);
        closeRandomness();
        bytes memory proof = proofOf(i);
        vm.expectRevert(PogoRoundsState.ProofRejected.selector);
        rounds.submitProof(task, i, proof);
    }

    function test_revert_NotEnoughGas() public {
        uint16 i = commitTrue(miners[0], 2000, 3000);
        revealAs(miners[0], i);
        closeRandomness();
        bytes memory proof = proofOf(i);
        (bool success, bytes memory data) =
            address(rounds).call{gas: 200_000}(abi.encodeCall(PogoRounds.submitProof, (task, i, proof)));
        ok(!success && bytes4(data) == PogoRoundsState.NotEnoughGas.selector, "too little gas is refused");
    }

    function test_revert_NotVerifier_StakeTooNew_StakeLeaving() public {
        uint16 i = commitTrue(miners[0], 2000, 3000);
        // A stake joined after the round opened weighs nothing in it.
        vm.deal(address(0xBEEF), 100 ether);
        vm.prank(address(0xBEEF));
        rounds.join{value: STAKE}(task);
        // One that started leaving before the round opened neither.
        revealAs(miners[0], i);
        prove(i);
        revealEval();
        (uint8[] memory v, uint64[] memory lossNew) = verdictsFor(1);
        rollTo(round().evalEnd + 1);
        uint64 opened = round().openBlock;
        vm.prank(address(0xBEEF));
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.StakeTooNew.selector, opened, opened));
        rounds.attest(task, keccak256("x"), none);
        vm.prank(address(0xF00));
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotVerifier.selector, address(0xF00)));
        rounds.attest(task, keccak256("x"), none);
        attestAs(verifiers[0], v, lossNew);
    }

    function test_revert_BadSeat_for_seats_on_a_task_without_a_committee() public {
        provenRound(miners[0], 2000, 3000);
        rollTo(round().evalEnd + 1);
        eq(seatsOf(verifiers[0]).length, 0, "no seats without a committee");
        uint16[] memory seats = new uint16[](1);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadSeat.selector, 0));
        rounds.attest(task, keccak256("x"), seats);
    }

    function test_revert_StakeLeaving_and_StakeLocked() public {
        vm.prank(verifiers[0]);
        rounds.leave(task);
        uint64 since = uint64(block.number);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.StakeLeaving.selector, since));
        rounds.join{value: STAKE}(task);
        uint64 releasedAfter = since + ext.unbonding(task);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.StakeLocked.selector, releasedAfter));
        rounds.leave(task);
        vm.roll(block.number + 1);
        provenRound(miners[0], 2000, 3000);
        rollTo(round().evalEnd + 1);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.StakeLeaving.selector, since));
        rounds.attest(task, keccak256("x"), none);
    }

    function test_revert_NotVerifier_on_leave() public {
        vm.prank(address(0xF00));
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotVerifier.selector, address(0xF00)));
        rounds.leave(task);
    }

    function test_revert_AttestationUnopened_when_leaving_with_a_sealed_attestation() public {
        provenRound(miners[0], 2000, 3000);
        (uint8[] memory v, uint64[] memory lossNew) = verdictsFor(1);
        attestAs(verifiers[1], v, lossNew);
        vm.prank(verifiers[1]);
        rounds.leave(task);
        // Past the unbonding, but the round is still open (nobody finalized it) and the
        // attestation sealed: the stake stays until finalize can slash it.
        vm.roll(block.number + ext.unbonding(task) + 1);
        vm.prank(verifiers[1]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.AttestationUnopened.selector, uint64(0)));
        rounds.leave(task);
    }

    function test_revert_MinerCannotAttest() public {
        // A verifier that also mines: its own candidate takes None, never a verdict.
        twoProvenCandidates(verifiers[2], miners[0]); // its own candidate is the first
        (uint8[] memory v, uint64[] memory lossNew) = two(1, 1, 500, 500);
        attestAs(verifiers[2], v, lossNew);
        rollTo(round().attestEnd + 1);
        vm.prank(verifiers[2]);
        vm.expectRevert(PogoRoundsState.MinerCannotAttest.selector);
        rounds.revealAttestation(task, 1000, v, lossNew, keccak256("salt"));
    }

    function test_revert_BadVerdict_VerdictContradictsLosses_WrongLength_WrongReveal() public {
        provenRound(miners[0], 2000, 3000);
        uint8[] memory none = new uint8[](1);
        uint8[] memory three = new uint8[](1);
        three[0] = 3;
        uint8[] memory positive = new uint8[](1);
        positive[0] = 1;
        uint8[] memory two = new uint8[](2);
        uint64[] memory high = new uint64[](1);
        high[0] = 995; // 995 + margin 10 > 1000
        uint64[] memory low = new uint64[](1);
        uint64[] memory lowTwo = new uint64[](2);
        attestAs(verifiers[0], none, low);
        attestAs(verifiers[1], three, low);
        attestAs(verifiers[2], positive, high);
        attestAs(verifiers[3], two, lowTwo);
        rollTo(round().attestEnd + 1);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadVerdict.selector, 0));
        rounds.revealAttestation(task, 1000, none, low, keccak256("salt"));
        vm.prank(verifiers[1]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadVerdict.selector, 0));
        rounds.revealAttestation(task, 1000, three, low, keccak256("salt"));
        vm.prank(verifiers[2]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.VerdictContradictsLosses.selector, 0));
        rounds.revealAttestation(task, 1000, positive, high, keccak256("salt"));
        vm.prank(verifiers[3]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.WrongLength.selector, 1, 2));
        rounds.revealAttestation(task, 1000, two, lowTwo, keccak256("salt"));
        vm.prank(verifiers[3]);
        vm.expectRevert(PogoRoundsState.WrongReveal.selector);
        rounds.revealAttestation(task, 999, two, lowTwo, keccak256("salt"));
    }

    function test_revert_AlreadyAttested_and_NotAttested() public {
        provenRound(miners[0], 2000, 3000);
        (uint8[] memory v, uint64[] memory lossNew) = verdictsFor(1);
        attestAs(verifiers[0], v, lossNew);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.AlreadyAttested.selector, verifiers[0]));
        rounds.attest(task, keccak256("again"), none);
        openAs(verifiers[0], v, lossNew);
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.AlreadyAttested.selector, verifiers[0]));
        rounds.revealAttestation(task, 1000, v, lossNew, keccak256("salt"));
        vm.prank(verifiers[1]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotAttested.selector, verifiers[1]));
        rounds.revealAttestation(task, 1000, v, lossNew, keccak256("salt"));
    }

    function test_revert_AttestersFull_when_a_smaller_stake_meets_a_full_round() public {
        // 32 attesters of 20 ether each, then one of 10 ether.
        address[] memory big = new address[](32);
        for (uint256 k = 0; k < 32; k++) {
            big[k] = address(uint160(0xB000 + k));
            vm.deal(big[k], 100 ether);
            vm.prank(big[k]);
            rounds.join{value: 2 * STAKE}(task);
        }
        vm.roll(block.number + 1);
        provenRound(miners[0], 2000, 3000);
        rollTo(round().evalEnd + 1);
        for (uint256 k = 0; k < 32; k++) {
            vm.prank(big[k]);
            rounds.attest(task, keccak256("sealed"), none);
        }
        vm.prank(verifiers[0]);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.AttestersFull.selector, 2 * STAKE));
        rounds.attest(task, keccak256("sealed"), none);
    }

    function test_revert_NothingToClaim_NothingToWithdraw() public {
        vm.prank(verifiers[0]);
        vm.expectRevert(PogoRoundsState.NothingToClaim.selector);
        rounds.claim(task, 0);
        vm.prank(verifiers[0]);
        vm.expectRevert(PogoRoundsState.NothingToWithdraw.selector);
        rounds.withdraw();
        honestRound(miners[0], 2000, 3000);
        vm.prank(verifiers[0]);
        rounds.claim(task, 0);
        vm.prank(verifiers[0]);
        vm.expectRevert(PogoRoundsState.NothingToClaim.selector);
        rounds.claim(task, 0);
    }

    function test_revert_TransferFailed_and_Reentrant() public {
        Refuser refuser = new Refuser(rounds);
        Reenterer reenterer = new Reenterer(rounds);
        vm.deal(address(refuser), 100 ether);
        vm.deal(address(reenterer), 100 ether);
        commitTrue(address(refuser), 2000, 3000);
        commitTrue(address(reenterer), 2001, 3001);
        rollTo(round().commitEnd + 1);
        vm.prank(address(refuser));
        rounds.reveal(task, 0, 2000, 3000, keccak256("blob"), salts[0]);
        vm.prank(address(reenterer));
        rounds.reveal(task, 1, 2001, 3001, keccak256("blob"), salts[1]);
        prove(0);
        prove(1);
        revealEval();
        finalizeRound(); // no attestations: both bonds returned
        vm.prank(address(refuser));
        vm.expectRevert(PogoRoundsState.TransferFailed.selector);
        rounds.withdraw();
        vm.prank(address(reenterer));
        rounds.withdraw();
        ok(reenterer.refusal() == PogoRoundsState.Reentrant.selector, "a re-entered withdraw is refused");
    }

    function test_revert_NotOwner() public {
        vm.expectRevert(PogoRoundsState.NotOwner.selector);
        rounds.addEvalData(task, keccak256("set"), 2);
    }

    function test_revert_NoEvalData_EvalAlreadyRevealed_WrongEvalData() public {
        uint16 i = commitTrue(miners[0], 2000, 3000);
        revealAs(miners[0], i);
        closeRandomness();
        rollTo(round().proofEnd + 1);
        (, uint32 batch,) = ext.evalBatchOf(task);
        // Nothing proven: nothing to judge, the batch stays held out.
        vm.expectRevert(PogoRoundsState.NoEvalData.selector);
        rounds.revealEvalData(task, batches[batch], evalPath(batch));
        // And no verifier may attest without it.
        rollTo(round().evalEnd + 1);
        vm.prank(verifiers[0]);
        vm.expectRevert(PogoRoundsState.NoEvalData.selector);
        rounds.attest(task, keccak256("x"), none);
        rounds.finalize(task); // early: nothing proven
        uint16 j = commitTrue(miners[1], 2001, 3001);
        revealAs(miners[1], j);
        prove(j);
        rollTo(round().proofEnd + 1);
        (, batch,) = ext.evalBatchOf(task);
        vm.expectRevert(PogoRoundsState.WrongEvalData.selector);
        rounds.revealEvalData(task, "not the batch", evalPath(batch));
        rounds.revealEvalData(task, batches[batch], evalPath(batch));
        vm.expectRevert(PogoRoundsState.EvalAlreadyRevealed.selector);
        rounds.revealEvalData(task, batches[batch], evalPath(batch));
    }

    function test_revert_fraud_errors_NotProven_AlreadyFraud_DirectCall() public {
        uint16 a = commitTrue(miners[0], 2000, 3000);
        uint16 b = commitTrue(miners[1], 2001, 3001);
        fraudChecker.markWrong(1000, 2000, 3000);
        revealAs(miners[0], a);
        revealAs(miners[1], b);
        prove(a);
        FraudClaim memory claim;
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.TooEarly.selector, uint64(block.number), round().attestEnd + 1));
        ext.proveFraud(task, a, claim);
        rollTo(round().attestEnd + 1);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotProven.selector, b));
        ext.proveFraud(task, b, claim);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NoSuchCandidate.selector, 5));
        ext.proveFraud(task, 5, claim);
        ext.proveFraud(task, a, claim);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.AlreadyFraud.selector, a));
        ext.proveFraud(task, a, claim);
        PogoRoundsExtension direct = PogoRoundsExtension(rounds.extension());
        vm.expectRevert(PogoRoundsState.DirectCall.selector);
        direct.proveFraud(task, a, claim);
    }

    function test_a_claim_that_shows_nothing_reverts() public {
        uint16 a = provenRound(miners[0], 2000, 3000);
        rollTo(round().attestEnd + 1);
        FraudClaim memory claim;
        vm.expectRevert(bytes("no fraud"));
        ext.proveFraud(task, a, claim);
    }
}

/// A miner whose address refuses ether.
contract Refuser {
    PogoRounds internal immutable rounds;

    constructor(PogoRounds rounds_) {
        rounds = rounds_;
    }

    receive() external payable {
        revert("no thanks");
    }
}

/// A miner that tries to withdraw again while being paid; records how it was refused.
contract Reenterer {
    PogoRounds internal immutable rounds;
    bytes4 public refusal;

    constructor(PogoRounds rounds_) {
        rounds = rounds_;
    }

    receive() external payable {
        if (refusal != bytes4(0)) return;
        try rounds.withdraw() {
            refusal = bytes4(0xffffffff);
        } catch (bytes memory reason) {
            refusal = bytes4(reason);
        }
    }
}
