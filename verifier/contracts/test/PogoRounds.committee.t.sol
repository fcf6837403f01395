// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./Base.sol";

/// A task with a committee: each round C = 8 seats drawn by stake, only seat holders attest,
/// each weighing its seats, and the quorum (3) counts seats.
contract PogoRoundsCommitteeTest is RoundsFixture {
    uint16 internal constant SEATS = 8;

    function params() internal view override returns (PogoRoundsState.TaskParams memory p) {
        p = super.params();
        p.committee = SEATS;
        p.quorum = 3;
    }

    /// The draw as this test computes it on its own: seat j is `verifier`'s when
    /// keccak256(contract, task, round, seed1, verifier, j) mod total < stake.
    function expectedSeats(address verifier) internal view returns (uint16[] memory seats) {
        uint64 id = roundId();
        bytes32 seed1 = ext.seedOf(task, id, 1);
        uint256 total = round().committeeStake;
        uint256 stake = ext.stakeOf(task, verifier);
        uint16[] memory all = new uint16[](SEATS);
        uint256 n = 0;
        for (uint16 j = 0; j < SEATS; j++) {
            uint256 h = uint256(keccak256(abi.encode(address(rounds), task, id, seed1, verifier, j)));
            if (h % total < stake) all[n++] = j;
        }
        seats = new uint16[](n);
        for (uint256 k = 0; k < n; k++) {
            seats[k] = all[k];
        }
    }

    /// A verifier with at least `least` seats and one with none, in this round's draw.
    function memberAndOutsider(uint256 least) internal view returns (address member, address outsider) {
        for (uint256 k = 0; k < verifiers.length; k++) {
            uint256 won = expectedSeats(verifiers[k]).length;
            if (won >= least && member == address(0)) member = verifiers[k];
            if (won == 0 && outsider == address(0)) outsider = verifiers[k];
        }
        require(member != address(0), "the fixed seeds give some verifier enough seats");
    }

    function sealFor(address verifier) internal view returns (bytes32) {
        (uint8[] memory v, uint64[] memory lossNew) = verdictsFor(1);
        return ext.attestationCommitmentOf(task, roundId(), verifier, 1000, v, lossNew, keccak256("salt"));
    }

    function readyToAttest() internal {
        provenRound(miners[0], 2000, 3000);
        rollTo(round().evalEnd + 1);
    }

    function test_seats_are_the_stake_weighted_draw_and_an_attestation_weighs_its_seats() public {
        readyToAttest();
        eq(round().committeeStake, 4 * uint256(STAKE), "the stake that weighed when the round opened");
        uint256 total = 0;
        for (uint256 k = 0; k < verifiers.length; k++) {
            uint16[] memory want = expectedSeats(verifiers[k]);
            uint16[] memory got = seatsOf(verifiers[k]);
            eq(got.length, want.length, "seat count");
            for (uint256 j = 0; j < want.length; j++) {
                eq(got[j], want[j], "seat");
            }
            total += got.length;
            if (got.length == 0) continue;
            bytes32 c = sealFor(verifiers[k]);
            vm.prank(verifiers[k]);
            rounds.attest(task, c, got);
            eq(ext.getAttestation(task, roundId(), verifiers[k]).stake, got.length, "weight = seats");
        }
        ok(total > 0 && total <= 4 * SEATS, "seats drawn");
    }

    function test_a_committee_round_is_decided_by_the_seats_of_its_members() public {
        readyToAttest();
        (uint8[] memory v, uint64[] memory lossNew) = verdictsFor(1);
        uint256 seats = 0;
        for (uint256 k = 0; k < verifiers.length; k++) {
            if (seatsOf(verifiers[k]).length == 0) continue;
            seats += seatsOf(verifiers[k]).length;
            attestAs(verifiers[k], v, lossNew);
        }
        for (uint256 k = 0; k < verifiers.length; k++) {
            if (ext.getAttestation(task, roundId(), verifiers[k]).stake != 0) openAs(verifiers[k], v, lossNew);
        }
        ok(seats >= 3, "the fixed seeds seat a quorum");
        eq(candidate(0).positiveStake, seats, "positive weight in seats");
        finalizeRound();
        eq(root(), 2000, "the committee accepted the update");
        // The fee is shared by seats: every member claims its part.
        uint256 fee = (uint256(REWARD) * 1000) / 10_000;
        uint256 paid = 0;
        for (uint256 k = 0; k < verifiers.length; k++) {
            if (ext.getAttestation(task, 0, verifiers[k]).stake == 0) continue;
            vm.prank(verifiers[k]);
            rounds.claim(task, 0);
            paid += ext.balanceOf(verifiers[k]);
        }
        eq(paid, fee, "the whole fee, shared by seats");
    }

    function test_members_with_fewer_seats_than_the_quorum_decide_nothing() public {
        readyToAttest();
        (address member,) = memberAndOutsider(1);
        uint256 won = seatsOf(member).length;
        (uint8[] memory v, uint64[] memory lossNew) = verdictsFor(2);
        attestAs(member, v, lossNew);
        openAs(member, v, lossNew);
        finalizeRound();
        if (won < 3) {
            eq(uint8(candidate(0).outcome), uint8(PogoRoundsState.Outcome.Returned), "below the quorum: returned");
        } else {
            eq(uint8(candidate(0).outcome), uint8(PogoRoundsState.Outcome.Slashed), "a quorum of seats rejects");
        }
    }

    function test_revert_NotOnCommittee_without_seats() public {
        readyToAttest();
        (address member, address outsider) = memberAndOutsider(1);
        bytes32 c = sealFor(member);
        vm.prank(member);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotOnCommittee.selector, member));
        rounds.attest(task, c, none);
        if (outsider == address(0)) return;
        eq(seatsOf(outsider).length, 0, "an outsider has no seat to show");
        c = sealFor(outsider);
        vm.prank(outsider);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.NotOnCommittee.selector, outsider));
        rounds.attest(task, c, none);
    }

    function test_revert_BadSeat_for_a_seat_not_won_out_of_range_repeated_or_out_of_order() public {
        readyToAttest();
        (address member,) = memberAndOutsider(2);
        uint16[] memory mine = seatsOf(member);
        bytes32 c = sealFor(member);
        // A seat it did not win.
        uint16 notMine = 0;
        for (uint256 k = 0; k < mine.length && mine[k] == notMine; k++) {
            notMine++;
        }
        uint16[] memory one = new uint16[](1);
        one[0] = notMine;
        if (notMine < SEATS) {
            vm.prank(member);
            vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadSeat.selector, 0));
            rounds.attest(task, c, one);
        }
        // Out of range: seat C does not exist.
        one[0] = SEATS;
        vm.prank(member);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadSeat.selector, 0));
        rounds.attest(task, c, one);
        // The same seat twice would weigh twice.
        uint16[] memory twice = new uint16[](2);
        (twice[0], twice[1]) = (mine[0], mine[0]);
        vm.prank(member);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadSeat.selector, 1));
        rounds.attest(task, c, twice);
        // Out of order (each seat must count once, so the list is strictly increasing).
        (twice[0], twice[1]) = (mine[1], mine[0]);
        vm.prank(member);
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadSeat.selector, 1));
        rounds.attest(task, c, twice);
        // Its own list is accepted.
        vm.prank(member);
        rounds.attest(task, c, mine);
    }

    function test_revert_BadSeat_for_seats_copied_from_another_verifier() public {
        readyToAttest();
        // Seats are bound to the address that won them: another verifier's list does not
        // seat a copier, unless the copier happened to win the same seats itself.
        for (uint256 k = 0; k < verifiers.length; k++) {
            uint16[] memory theirs = seatsOf(verifiers[k]);
            if (theirs.length == 0) continue;
            address copier = verifiers[(k + 1) % verifiers.length];
            uint16[] memory own = seatsOf(copier);
            bool same = own.length >= 1 && own[0] == theirs[0];
            if (same) continue;
            uint16[] memory first = new uint16[](1);
            first[0] = theirs[0];
            bytes32 c = sealFor(copier);
            vm.prank(copier);
            vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.BadSeat.selector, 0));
            rounds.attest(task, c, first);
            return;
        }
        revert("the fixed seeds leave no copier to try");
    }

    function test_revert_PhaseNotReady_for_seats_before_the_phase_1_seed() public {
        uint16 i = commitTrue(miners[0], 2000, 3000);
        revealAs(miners[0], i);
        uint64 id = roundId();
        vm.expectRevert(abi.encodeWithSelector(PogoRoundsState.PhaseNotReady.selector, 1));
        ext.seatsOf(task, id, verifiers[0]);
    }

    function test_the_drawn_stake_follows_join_leave_and_slashing() public {
        eq(ext.activeStakeOf(task), 4 * uint256(STAKE), "four stakes");
        vm.deal(address(0xBEEF), 100 ether);
        vm.prank(address(0xBEEF));
        rounds.join{value: 3 * uint256(STAKE)}(task);
        eq(ext.activeStakeOf(task), 7 * uint256(STAKE), "a join adds");
        vm.prank(address(0xBEEF));
        rounds.leave(task);
        eq(ext.activeStakeOf(task), 4 * uint256(STAKE), "leaving removes at once");
        vm.roll(block.number + 1);
        readyToAttest();
        eq(round().committeeStake, 4 * uint256(STAKE), "the round drew from the stake before it opened");
        // A join while the round is open weighs only in later rounds.
        vm.deal(address(0xCAFE), 100 ether);
        vm.prank(address(0xCAFE));
        rounds.join{value: STAKE}(task);
        eq(round().committeeStake, 4 * uint256(STAKE), "the round's total is fixed");
        (uint8[] memory v, uint64[] memory lossNew) = verdictsFor(1);
        // A sealed attestation never opened is slashed at finalize: the total drops with it.
        (address member,) = memberAndOutsider(1);
        attestAs(member, v, lossNew);
        finalizeRound();
        uint256 cut = (uint256(STAKE) * 5000) / 10_000;
        eq(ext.activeStakeOf(task), 5 * uint256(STAKE) - cut, "a slash removes the cut");
    }

    function test_the_committee_size_does_not_grow_with_the_registered_verifiers() public {
        // 200 more verifiers of the same stake: the seats drawn stay about C, not about 204.
        for (uint256 k = 0; k < 200; k++) {
            address v = address(uint160(0x10000 + k));
            vm.deal(v, STAKE);
            vm.prank(v);
            rounds.join{value: STAKE}(task);
        }
        vm.roll(block.number + 1);
        readyToAttest();
        uint256 seats = 0;
        uint256 members = 0;
        for (uint256 k = 0; k < 200; k++) {
            uint256 won = seatsOf(address(uint160(0x10000 + k))).length;
            seats += won;
            if (won != 0) members++;
        }
        for (uint256 k = 0; k < verifiers.length; k++) {
            seats += seatsOf(verifiers[k]).length;
        }
        // Binomial(8 * 204, 1/204) seats in all: mean 8; 24 or more has odds below 1e-5.
        ok(seats >= 1 && seats < 3 * SEATS, string.concat("seats drawn: ", vmString(seats)));
        ok(members <= seats, "members at most seats");
    }
}
