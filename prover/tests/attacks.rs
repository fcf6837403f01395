//! The round protocol tried as an adversary would (issue "Rounds that pay only for useful
//! work"): each attack is a test that plays it against the real contract in revm and must
//! see it refused. Every one of these was first run against the contract before the fix
//! and showed the attack working (the zero update paid, one stake voting twice, an honest
//! miner slashed for offline verifiers, a copier paid for front-running the commit or for
//! re-committing a rejected update, a squatter holding the task, a re-anchored seed).

mod support;

use pogo_circuits::encoding::{Nibble, UpdateBlock};
use pogo_circuits::update::Update;
use pogo_verifier::evm::{fr_to_u256, B256, U256};
use pogo_verifier::rounds::{commitment, outcome, CommitteeDraw, PogoRounds};
use support::*;

/// No work: an update whose every scale is 0 leaves the model as it was (`newRoot ==
/// oldRoot`); it would prove, and equal losses pass a zero margin. It is never revealed.
#[test]
fn an_unchanged_model_is_refused_at_reveal() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |p| p.margin = 0);
    let old = &fx.chain.models[0];
    let blocks = (0..fx.blocks)
        .map(|_| UpdateBlock { scale: 0, nibbles: std::array::from_fn(|_| Nibble::new(3).unwrap()) })
        .collect();
    let zero = Update::new(old.weight_count(), blocks).unwrap();
    let same = zero.apply(old).unwrap();
    let root = fr_to_u256(&same.reference_tree(fx.depth).unwrap().root());
    assert_eq!(root, fr_to_u256(&fx.chain.root(0, fx.depth)), "a zero update changes nothing");
    let update_root = fr_to_u256(&zero.reference_tree(fx.depth).unwrap().root());
    let miner = world.miner;
    world.commit_as(miner, root, update_root).unwrap();
    world.mine_to_reveal();
    assert_eq!(refused(world.reveal(0)), "UnchangedModel");
    // Unrevealed, it is slashed: the miner's own fault.
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(world.candidate(0, 0).outcome, outcome::SLASHED);
    assert_eq!(world.balance_of(miner), U256::ZERO);
}

/// One stake, many votes: attest, leave, then join again from a fresh address with the same
/// ether and attest the same round again.
#[test]
fn one_stake_cannot_vote_twice_from_two_addresses() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 1, |_| {});
    let task = world.task;
    let first = world.verifiers[0];
    let second = actor(0x66);
    world.evm.set_balance(second, U256::from(1000 * ETHER));
    world.commit_and_prove();
    world.attest(first, true).unwrap();
    // Leaving starts the unbonding delay: the stake cannot be withdrawn while the round it
    // attested in is open.
    world.send("leave", first, PogoRounds::leaveCall { task }, 0).unwrap();
    assert_eq!(refused(world.send("withdraw", first, PogoRounds::withdrawCall {}, 0)), "NothingToWithdraw");
    // Stake that arrived after the round opened carries no weight in it.
    world.send("join", second, PogoRounds::joinCall { task }, STAKE).unwrap();
    assert_eq!(refused(world.attest(second, true)), "StakeTooNew");
}

/// Verifiers who stay offline are no fault of the miner: a proven candidate that misses
/// the quorum gets its bond back instead of being slashed.
#[test]
fn an_honest_miner_is_not_slashed_when_verifiers_stay_offline() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    let miner = world.miner;
    world.commit_and_prove();
    world.attest(world.verifiers[0], true).unwrap(); // one of three: below the quorum of two
    world.close_window();
    world.finalize().unwrap();
    let round = world.round_at(0);
    assert!(round.finalized && round.winner == 0);
    assert_eq!(world.candidate(0, 0).outcome, outcome::RETURNED);
    assert_eq!(world.task_state().root, fr_to_u256(&fx.chain.root(0, fx.depth)), "the root stays");
    assert_eq!(world.balance_of(miner), U256::from(BOND), "the bond comes back, no reward");
    assert_eq!(world.task_state().pool, U256::from(POOL), "nothing was slashed into the pool");
}

/// Every refusal of the stake rules: a top-up while a round is open, joining while leaving,
/// a stake that left before the round opened attesting, and releasing before the lock ends.
#[test]
fn stake_rules_refuse_each_way_around_the_lock() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    let task = world.task;
    let (v0, v1) = (world.verifiers[0], world.verifiers[1]);
    world.send("leave", v1, PogoRounds::leaveCall { task }, 0).unwrap();
    world.evm.mine(1);
    world.commit().unwrap();
    assert_eq!(refused(world.send("join", v0, PogoRounds::joinCall { task }, STAKE)), "RoundOpen");
    assert_eq!(refused(world.send("join", v1, PogoRounds::joinCall { task }, STAKE)), "StakeLeaving");
    world.reveal_all();
    world.draw();
    let proof = world.honest_proof();
    world.submit(proof).unwrap();
    assert_eq!(refused(world.attest(v1, true)), "StakeLeaving", "left before the round opened");
    world.attest(v0, true).unwrap();
    assert_eq!(refused(world.send("leave", v1, PogoRounds::leaveCall { task }, 0)), "StakeLocked");
    world.evm.mine(COMMIT_WINDOW + REVEAL_WINDOW + ATTEST_WINDOW);
    world.send("leave", v1, PogoRounds::leaveCall { task }, 0).unwrap();
    assert_eq!(world.balance_of(v1), U256::from(STAKE), "released after the unbonding delay");
    let stake = world
        .rounds
        .read(&mut world.evm, <PogoRounds::stakeOfCall as alloy_sol_types::SolCall>::new((task, v1)))
        .unwrap();
    assert_eq!(stake, U256::ZERO);
}

/// A watcher copies the honest miner's commitment into its own commit: the hash binds the
/// miner's address, so the copy can never be revealed; and once the honest reveal shows the
/// roots, the commit window is closed. The honest miner is paid, the copier slashed.
#[test]
fn a_copier_cannot_front_run_a_commit() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    let copier = actor(0x77);
    world.evm.set_balance(copier, U256::from(1000 * ETHER));
    world.commit().unwrap();
    let seen = world.entries[0];
    let task = world.task;
    let copy = world.send(
        "commit",
        copier,
        PogoRounds::commitCall { task, round: 0, commitment: commitment_of(&world, seen) },
        BOND,
    );
    let copy_index = copy.unwrap().index;
    world.mine_to_reveal();
    world.reveal(0).unwrap();
    // The copier replays the honest preimage from its own address: the hash is not its own.
    let call = PogoRounds::revealCall {
        task,
        index: copy_index,
        newRoot: seen.new_root,
        updateRoot: seen.update_root,
        blobHash: seen.blob_hash,
        salt: seen.salt,
    };
    assert_eq!(refused(world.send("reveal", copier, call, 0)), "WrongReveal");
    // Committing the now-public roots afresh is too late for this round.
    let late =
        commitment(world.rounds.address, task, 0, copier, seen.new_root, seen.update_root, seen.blob_hash, seen.salt);
    assert_eq!(
        refused(world.send("commit", copier, PogoRounds::commitCall { task, round: 0, commitment: late }, BOND)),
        "TooLate"
    );
    world.prove_and_judge(true);
    assert_eq!(world.candidate(0, 0).outcome, outcome::WON);
    assert_eq!(world.candidate(0, copy_index).outcome, outcome::SLASHED);
    assert_eq!(world.balance_of(copier), U256::ZERO, "the copier is paid nothing");
    let fee = REWARD * FEE_BPS as u128 / 10_000;
    assert_eq!(world.balance_of(world.miner), U256::from(BOND + REWARD - fee));
}

/// The same commitment hash a miner made (its own address inside).
fn commitment_of(world: &World, e: Entry) -> B256 {
    commitment(world.rounds.address, world.task, 0, e.miner, e.new_root, e.update_root, e.blob_hash, e.salt)
}

/// A rejected update, re-committed by a copier in a later round: an update root once
/// revealed for a task is never revealed again, by anyone.
#[test]
fn a_rejected_update_cannot_be_recommitted_later() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    world.reveal_all();
    world.prove_and_judge(false);
    assert_eq!(world.candidate(0, 0).outcome, outcome::SLASHED);
    let copier = actor(0x77);
    world.evm.set_balance(copier, U256::from(1000 * ETHER));
    let (new_root, update_root) = fx.roots(0);
    world.commit_as(copier, new_root, update_root).unwrap();
    world.mine_to_reveal();
    assert_eq!(refused(world.reveal(0)), "UpdateReused");
}

/// A squatter's junk commit no longer holds the task: others commit in the same round, the
/// honest one wins, the squatter (who cannot reveal anything that proves) is slashed; and
/// the per-task cap bounds a round.
#[test]
fn a_squatter_cannot_hold_the_task() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |p| p.maxCandidates = 2);
    let squatter = world.miners[3];
    let task = world.task;
    let junk = PogoRounds::commitCall { task, round: 0, commitment: B256::repeat_byte(0x99) };
    world.send("commit", squatter, junk.clone(), BOND).unwrap();
    world.commit().unwrap();
    assert_eq!(refused(world.send("commit", world.miners[2], junk, BOND)), "RoundFull");
    world.mine_to_reveal();
    world.reveal(0).unwrap();
    world.prove_and_judge(true);
    assert_eq!(world.round_at(0).winner, 2, "the honest candidate (index 1) won");
    assert_eq!(world.candidate(0, 0).outcome, outcome::SLASHED);
    assert_eq!(world.balance_of(squatter), U256::ZERO);
    assert_eq!(world.task_state().pool, U256::from(POOL - REWARD + BOND), "the unrevealed bond feeds the pool");
}

/// No one can re-roll: the seed blocks are fixed when the round opens, after every reveal;
/// drawing late (here 300 blocks, past BLOCKHASH's reach) reads the same hashes from the
/// EIP-2935 history instead of re-anchoring; a miner who withholds its draw changes nothing
/// because a verifier's attestation and the proof draw for themselves. Phase 1 is the hash
/// of block revealEnd + 1 and phase 2 the hash of the block after it.
#[test]
fn a_miner_cannot_re_roll_or_withhold_randomness() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |p| {
        p.proofWindow = 350;
        p.attestWindow = 400;
    });
    world.commit().unwrap();
    world.reveal_all();
    let end = world.round().revealEnd;
    // Past BLOCKHASH's 256 blocks: the seeds come from the EIP-2935 history.
    world.evm.mine(300);
    // Nobody drew: the proof draws phase 2 itself, and the held-out reveal phase 1.
    let proof = world.honest_proof();
    world.submit(proof).unwrap();
    let r = world.round();
    assert_eq!(Some(r.seed2), world.evm.block_hash(end + 2), "phase 2 is the block after phase 1's");
    assert_eq!(r.seed1, B256::ZERO, "phase 1 is drawn only when needed");
    world.reveal_eval().unwrap();
    let r = world.round();
    assert_eq!(Some(r.seed1), world.evm.block_hash(end + 1), "phase 1 is block revealEnd + 1");
    assert_ne!(r.seed1, r.seed2);
    let owner = world.owner;
    assert_eq!(
        refused(world.send("draw", owner, PogoRounds::drawRandomnessCall { task: world.task }, 0)),
        "AlreadyDrawn"
    );
}

/// Finalizing late does not turn a missed proof into a refund: the seeds were readable for
/// the whole proof window, so an unproven candidate is slashed however late the round closes.
#[test]
fn a_late_finalize_does_not_refund_an_unproven_candidate() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    world.reveal_all();
    world.evm.mine(8300);
    world.finalize().unwrap();
    assert_eq!(world.candidate(0, 0).outcome, outcome::SLASHED);
    assert_eq!(world.balance_of(world.miner), U256::ZERO);
    assert_eq!(world.task_state().pool, U256::from(POOL + BOND), "an unproven bond feeds the pool");
}

/// Stake short of 2/3 cannot slash an honest proven miner: one negative attester against one
/// positive (the others offline) leaves the candidate unjudged, its bond returned, and the
/// attacker is paid nothing.
#[test]
fn a_minority_cannot_slash_an_honest_miner() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 4, |_| {});
    world.commit_and_prove();
    let (honest, attacker) = (world.verifiers[0], world.verifiers[3]);
    world.attest(honest, true).unwrap();
    world.attest(attacker, false).unwrap();
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(world.candidate(0, 0).outcome, outcome::RETURNED);
    assert_eq!(world.balance_of(world.miner), U256::from(BOND));
    assert_eq!(refused(world.claim(attacker, 0)), "NothingToClaim");
}

/// A miner who is also a verifier abstains on its own candidate, and the abstention counts
/// neither way: the candidate is judged by the other stake alone.
#[test]
fn a_miners_abstention_on_its_own_candidate_counts_neither_way() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 1, |p| p.quorum = STAKE);
    let (task, miner, v0) = (world.task, world.miner, world.verifiers[0]);
    world.send("join", miner, PogoRounds::joinCall { task }, STAKE).unwrap();
    world.evm.mine(1);
    world.commit_and_prove();
    world.attest(v0, true).unwrap();
    // The miner's own verdict must be None (another is refused when opened, see
    // `double_attestation_and_strangers_are_refused`); it may still attest (on rivals).
    world.attest_with(miner, |_| (pogo_verifier::rounds::verdict::NONE, 0)).unwrap();
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(world.candidate(0, 0).outcome, outcome::WON, "judged by v0's stake alone");
}

fn empty_reveal(task: U256) -> PogoRounds::revealAttestationCall {
    PogoRounds::revealAttestationCall { task, lossOld: 0, verdicts: vec![], lossNew: vec![], salt: B256::ZERO }
}

/// A round counts at most 32 attesters, so finalize stays bounded however many stakes
/// join: once full, an equal stake is refused and a larger one evicts the smallest, whose
/// attestation then neither counts nor earns.
#[test]
fn a_full_round_of_attesters_makes_room_only_for_a_larger_stake() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 33, |_| {});
    let task = world.task;
    let big = actor(0x70);
    world.evm.set_balance(big, U256::from(1000 * ETHER));
    world.send("join", big, PogoRounds::joinCall { task }, 2 * STAKE).unwrap();
    world.evm.mine(1);
    world.commit_and_prove();
    // Decreasing gains: the order that makes the median's sort work hardest.
    let vs = world.verifiers.clone();
    for (j, v) in vs[..32].iter().enumerate() {
        world.attest_with(*v, |_| positive_vote(1_500_000_000 + j as u64 * 1_000)).unwrap();
    }
    assert_eq!(refused(world.attest(vs[32], true)), "AttestersFull");
    world.attest(big, true).unwrap();
    let evicted = vs[0];
    let a = world
        .rounds
        .read(&mut world.evm, PogoRounds::getAttestationCall { task, round: 0, verifier: evicted })
        .unwrap();
    assert_eq!(a.stake, 0, "the smallest (first) stake was evicted");
    world.sealed.retain(|s| s.verifier != evicted);
    assert_eq!(refused(world.send("revealAttestation", evicted, empty_reveal(task), 0)), "TooEarly");
    world.close_attestations();
    assert_eq!(refused(world.send("revealAttestation", evicted, empty_reveal(task), 0)), "NotAttested");
    assert_eq!(world.round().attestingStake, 33 * STAKE);
    world.close_window();
    world.finalize().unwrap();
    let gas = world.gas.iter().rev().find(|(l, _)| l == "finalize").unwrap().1;
    assert!(gas < 2_000_000, "finalize over 32 attesters took {gas} gas");
    assert_eq!(world.candidate(0, 0).outcome, outcome::WON);
    world.claim(big, 0).unwrap();
    assert_eq!(refused(world.claim(evicted, 0)), "NothingToClaim");
}

/// Three honest miners compete: verifiers measure the gains of all three on the same batch,
/// the largest stake-weighted median gain wins the reward, the others get their bonds back,
/// and the winner's positive attesters share the fee.
#[test]
fn three_honest_miners_compete_and_the_best_gain_wins() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    world.compete(3);
    // Gains 0.2, 0.5 and 0.3 (a verifier's own numbers vary a little).
    let losses = [1_800_000_000u64, 1_500_000_000, 1_700_000_000];
    for (j, v) in world.verifiers.clone().into_iter().enumerate() {
        world.attest_with(v, |k| positive_vote(losses[k] + j as u64 * 1000)).unwrap();
    }
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(world.round_at(0).winner, 2, "candidate 1 has the largest gain");
    assert_eq!(world.task_state().root, world.entries[1].new_root);
    let fee = REWARD * FEE_BPS as u128 / 10_000;
    assert_eq!(world.balance_of(world.miners[1]), U256::from(BOND + REWARD - fee));
    for k in [0, 2] {
        assert_eq!(world.candidate(0, k as u16).outcome, outcome::RETURNED);
        assert_eq!(world.balance_of(world.miners[k]), U256::from(BOND), "beaten, not slashed");
    }
    for v in world.verifiers.clone() {
        world.claim(v, 0).unwrap();
    }
    let paid: U256 = world.verifiers.clone().into_iter().map(|v| world.balance_of(v)).sum();
    assert_eq!(paid, U256::from(fee), "the whole fee is shared");
    assert_eq!(refused(world.claim(world.verifiers[0], 0)), "NothingToClaim");
}

/// The ranking is a stake-weighted median: one verifier inflating a candidate's gain does
/// not make it win.
#[test]
fn one_verifier_cannot_steer_the_ranking() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    world.compete(2);
    let vs = world.verifiers.clone();
    world.attest_with(vs[0], |k| positive_vote([1_500_000_000, 1_900_000_000][k])).unwrap();
    world.attest_with(vs[1], |k| positive_vote([1_500_000_000, 1_900_000_000][k])).unwrap();
    // The liar claims candidate 1 gained everything.
    world.attest_with(vs[2], |k| positive_vote([1_500_000_000, 0][k])).unwrap();
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(world.round_at(0).winner, 1, "candidate 0: median gain 0.5 against 0.1");
    assert_eq!(world.candidate(0, 1).gain, alloy_primitives_i256(100_000_000));
}

fn alloy_primitives_i256(v: i64) -> pogo_verifier::evm::I256 {
    pogo_verifier::evm::I256::try_from(v).unwrap()
}

/// A proven candidate 2/3 of the judging stake rejected: slashed to the negative attesters
/// in proportion to stake; the positive attester of a slashed candidate gets nothing.
#[test]
fn negative_attesters_share_a_rejected_bond() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    // Stakes 1 and 2 ether negative against 1 positive: 3/4 rejects; the bond is shared 1:2.
    let task = world.task;
    world.send("join", world.verifiers[1], PogoRounds::joinCall { task }, STAKE).unwrap();
    world.evm.mine(1);
    world.commit_and_prove();
    let vs = world.verifiers.clone();
    world.attest(vs[0], false).unwrap();
    world.attest(vs[1], false).unwrap();
    world.attest(vs[2], true).unwrap();
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(world.candidate(0, 0).outcome, outcome::SLASHED);
    world.claim(vs[0], 0).unwrap();
    world.claim(vs[1], 0).unwrap();
    assert_eq!(refused(world.claim(vs[2], 0)), "NothingToClaim");
    assert_eq!(world.balance_of(vs[0]), U256::from(BOND / 3));
    assert_eq!(world.balance_of(vs[1]), U256::from(BOND - BOND / 3));
    assert_eq!(refused(world.claim(vs[0], 0)), "NothingToClaim", "once");
}

/// Opens a round in which a miner commits rival `k` of the genesis model, reveals and
/// proves it; mines past the proof window and returns what phase 1 drew: (set, batch, its
/// bytes, its path).
fn proven_round_drawn(world: &mut World, k: usize) -> (u32, u32, Vec<u8>, Vec<B256>) {
    let fx = world.fx;
    let (new_root, update_root) = fx.rival_roots(k);
    let miner = world.miners[1];
    world.commit_as(miner, new_root, update_root).unwrap();
    world.reveal_all();
    world.draw();
    let indices = world.indices();
    world.submit_for(0, fx.rival_proof(k, &indices)).unwrap();
    world.mine_past_proofs();
    world.drawn_eval().unwrap()
}

/// Reveals the drawn batch and closes the round (nobody attests: the bond comes back).
fn reveal_and_close(world: &mut World) {
    world.reveal_eval().unwrap();
    world.close_window();
    world.finalize().unwrap();
}

/// Evaluation data derived from public data can be trained on. Held-out batches are
/// committed at task creation and stay off chain until phase 1 draws them: before its
/// round, a batch's bytes are in no transaction or event (a miner cannot train on it);
/// once revealed it may be trained on, but it is never drawn again. Each draw is the native
/// reference's (`heldout::draw_position` over a swap-remove pool), every batch is drawn
/// exactly once, a round with nothing proven keeps its batch back, a task with none left
/// takes no commit, and the owner can add a fresh set.
#[test]
fn held_out_batches_stay_off_chain_until_drawn_and_are_never_drawn_twice() {
    use pogo_verifier::heldout::draw_position;
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    let (owner, task) = (world.owner, world.task);
    // Nothing proven: nothing to judge, so the batch is not revealed and stays held out.
    let miner = world.miners[1];
    world.commit_as(miner, U256::from(7), U256::from(1000)).unwrap();
    world.reveal_all();
    world.draw();
    world.mine_past_proofs();
    let (_, _, data, path) = world.drawn_eval().unwrap();
    let call = PogoRounds::revealEvalDataCall { task, data: data.into(), path };
    assert_eq!(refused(world.send("reveal", owner, call, 0)), "NoEvalData");
    world.finalize().unwrap();
    let sets = world.rounds.read(&mut world.evm, PogoRounds::getEvalSetsCall { task }).unwrap();
    assert_eq!(sets[0].left, EVAL_BATCHES, "an undue batch is not used up");

    let mut pool: Vec<u32> = (0..EVAL_BATCHES).collect();
    let mut seen = std::collections::HashSet::new();
    for round in 0..EVAL_BATCHES as usize {
        let (_, batch, data, _) = proven_round_drawn(&mut world, round);
        // Nothing on chain so far holds the batch's bytes (its first example).
        let example = &data[..65];
        assert!(
            !world.logs.iter().any(|log| log.data.data.windows(65).any(|w| w == example)),
            "round {round}: the drawn batch was on chain before its reveal"
        );
        let position = draw_position(world.round().seed1, pool.len() as u32);
        assert_eq!(batch, pool[position as usize], "round {round}: the contract's draw is the reference's");
        pool.swap_remove(position as usize);
        reveal_and_close(&mut world);
        assert!(seen.insert(batch), "round {round}: batch {batch} was drawn again");
        // Revealed: its bytes are in the round's event, for every verifier (and miner).
        assert!(world.logs.iter().any(|log| log.data.data.windows(data.len()).any(|w| w == data.as_slice())));
    }
    assert_eq!(seen.len(), EVAL_BATCHES as usize);
    let r = world.commit_as(miner, U256::from(7), U256::from(1));
    assert_eq!(refused(r), "NoEvalData", "no held-out batch is left to evaluate on");
    assert_eq!(refused(world.send("add", miner, add_call(&world, 3), 0)), "NotOwner");
    world.add_eval(3).unwrap();
    let (set, ..) = proven_round_drawn(&mut world, 99);
    assert_eq!(set, 1, "the fresh set is drawn from once the first is used up");
    reveal_and_close(&mut world);
}

fn add_call(world: &World, n: u32) -> PogoRounds::addEvalDataCall {
    PogoRounds::addEvalDataCall { task: world.task, root: eval_set(9, n).1.root(), batches: n }
}

/// The owner cannot choose the batch, nor squeeze the verifiers: only the drawn one, byte
/// for byte, with its path, goes in, once, after the proof window and by `evalEnd`; every
/// verifier attests only after `evalEnd`, however late the reveal came.
#[test]
fn only_the_drawn_held_out_batch_can_be_revealed() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.owner_online = false;
    let (owner, task) = (world.owner, world.task);
    let send = |world: &mut World, data: Vec<u8>, path: Vec<B256>| {
        world.send("reveal", owner, PogoRounds::revealEvalDataCall { task, data: data.into(), path }, 0)
    };
    world.commit().unwrap();
    world.reveal_all();
    world.draw();
    let proof = world.honest_proof();
    world.submit(proof).unwrap();
    let (_, batch, data, path) = world.drawn_eval().unwrap();
    assert_eq!(refused(send(&mut world, data.clone(), path.clone())), "TooEarly", "proofs may still come");
    world.mine_past_proofs();
    let v0 = world.verifiers[0];
    assert_eq!(refused(world.attest(v0, true)), "TooEarly", "nothing to evaluate on yet");
    let other = (batch + 1) % EVAL_BATCHES;
    let (batches, tree) = world.eval[0].clone();
    // Another committed batch with its own valid path: the owner choosing its batch.
    assert_eq!(refused(send(&mut world, batches[other as usize].clone(), tree.path(other))), "WrongEvalData");
    let mut tampered = data.clone();
    tampered[3] ^= 1;
    assert_eq!(refused(send(&mut world, tampered, path.clone())), "WrongEvalData");
    assert_eq!(refused(send(&mut world, data.clone(), path[1..].to_vec())), "WrongEvalData");
    // The latest a reveal may come: its last block; colluders attesting in the same block
    // are refused, and honest verifiers have the whole attestation window after it.
    let eval_end = world.round().evalEnd;
    world.evm.mine(eval_end - world.evm.block_number());
    send(&mut world, data.clone(), path.clone()).unwrap();
    assert_eq!(refused(send(&mut world, data, path)), "EvalAlreadyRevealed");
    let attest_early = PogoRounds::attestCall { task, commitment: B256::repeat_byte(2), seats: vec![] };
    assert_eq!(refused(world.send("attest", v0, attest_early, 0)), "TooEarly");
    world.attest(v0, true).unwrap();
    assert!(world.round().attestEnd > world.evm.block_number(), "honest verifiers are not squeezed out");
    let mut params = world.task_state().params;
    params.evalRoot = B256::ZERO;
    let r = world.send("create", owner, PogoRounds::createTaskCall { p: params.clone() }, 0);
    assert_eq!(refused(r), "BadParams", "a task without held-out data");
    params.evalRoot = B256::repeat_byte(1);
    params.evalBatches = 0;
    let r = world.send("create", owner, PogoRounds::createTaskCall { p: params }, 0);
    assert_eq!(refused(r), "BadParams", "a set of no batches");
}

/// An owner who never reveals the batch: nobody can attest, and the round is no fault of
/// the miner: its proven candidate gets the bond back, the root and the pool stay. A reveal
/// after its window is refused, and the drawn batch is retired all the same (a refused
/// reveal put its bytes in public calldata).
#[test]
fn an_owner_who_does_not_reveal_makes_the_round_no_fault() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    world.owner_online = false;
    let miner = world.miner;
    world.commit_and_prove();
    world.mine_to_attest();
    for v in world.verifiers.clone() {
        assert_eq!(refused(world.attest(v, true)), "NoEvalData");
    }
    let (_, _, data, path) = world.drawn_eval().unwrap();
    let (owner, task) = (world.owner, world.task);
    let late = world.send("reveal", owner, PogoRounds::revealEvalDataCall { task, data: data.into(), path }, 0);
    assert_eq!(refused(late), "TooLate");
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(world.candidate(0, 0).outcome, outcome::RETURNED);
    assert_eq!(world.balance_of(miner), U256::from(BOND), "the bond comes back, no reward");
    assert_eq!(world.task_state().root, fr_to_u256(&fx.chain.root(0, fx.depth)));
    assert_eq!(world.task_state().pool, U256::from(POOL));
    let sets = world.rounds.read(&mut world.evm, PogoRounds::getEvalSetsCall { task }).unwrap();
    assert_eq!(sets[0].left, EVAL_BATCHES - 1, "a batch that was due is retired, revealed or not");
}

/// The seed the test chain will give block `number` (its hash chain is deterministic:
/// `hash(n) = keccak(hash(n - 1) ‖ n)`), so the test can play a miner who knows which
/// blocks will be sampled — more than any real miner knows.
fn predicted_hash(world: &World, number: u64) -> B256 {
    let last = world.evm.block_number() - 1;
    let mut hash = world.evm.block_hash(last).unwrap_or_default();
    for n in last + 1..=number {
        let mut preimage = hash.to_vec();
        preimage.extend_from_slice(&n.to_be_bytes());
        hash = pogo_verifier::evm::keccak256(preimage);
    }
    hash
}

fn predicted_indices(world: &World, seed_block: u64, nb: u64, samples: usize) -> Vec<u64> {
    use alloy_sol_types::SolValue;
    let seed = predicted_hash(world, seed_block);
    (0..samples as u64)
        .map(|j| {
            (U256::from_be_bytes(pogo_verifier::evm::keccak256((seed, U256::from(j)).abi_encode()).0) % U256::from(nb))
                .to::<u64>()
        })
        .collect()
}

/// A miner's new model with one weight of one block altered, where the samples of a commit
/// sent now will not look: the test waits (mining) for a round whose predicted samples leave
/// a block out, then flips `mask` in weight `offset` of that block.
struct Tampered {
    block: u64,
    bad: pogo_circuits::model::Model,
    old_tree: pogo_circuits::merkle::MerkleTree,
    update_tree: pogo_circuits::merkle::MerkleTree,
    bad_tree: pogo_circuits::merkle::MerkleTree,
}

impl Tampered {
    fn unsampled(world: &mut World, offset: usize, mask: u32) -> Self {
        let fx = world.fx;
        let (old, honest, update) = (&fx.chain.models[0], &fx.chain.models[1], &fx.chain.updates[0]);
        // Wait for a round whose samples (from the hash of revealEnd + 2) leave a block out.
        let block = loop {
            let reveal_end = world.evm.block_number() + COMMIT_WINDOW + REVEAL_WINDOW;
            let sampled = predicted_indices(world, reveal_end + 2, fx.blocks, fx.samples);
            if let Some(b) = (0..fx.blocks).find(|b| !sampled.contains(b)) {
                break b;
            }
            world.evm.mine(1);
        };
        let mut weights = honest.weights().to_vec();
        weights[block as usize * 112 + offset] ^= mask;
        let bad = honest.with_weights(weights).unwrap();
        let bad_tree = bad.reference_tree(fx.depth).unwrap();
        let update_tree = update.reference_tree(fx.depth).unwrap();
        let old_tree = old.reference_tree(fx.depth).unwrap();
        Tampered { block, bad, old_tree, update_tree, bad_tree }
    }

    /// The fraud claim for block `b` against the tampered candidate.
    fn claim(&self, fx: &Fixture, b: u64) -> pogo_verifier::fraud::FraudClaim {
        let (old, update) = (&fx.chain.models[0], &fx.chain.updates[0]);
        pogo_verifier::fraud::FraudClaim::build(
            b,
            &old.block(b),
            &update.block(b),
            &self.old_tree,
            &self.update_tree,
            &self.bad_tree,
            fx.blocks,
        )
        .unwrap()
    }
}

/// A miner alters one block of its new model where the sampled proof does not look: the
/// proof passes and two lazy verifiers attest positive, but the one that rebuilt finds the
/// block and proves it wrong on chain once the attestations are in. The candidate is
/// rejected, the miner loses its whole bond (half to the challenger), each positive
/// attester loses `fraudSlashBps` of its stake; a second proof, an early one and a claim
/// about an honest block are refused.
#[test]
fn an_altered_unsampled_block_is_proven_and_the_miner_and_positive_attesters_pay() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    let (old, update) = (&fx.chain.models[0], &fx.chain.updates[0]);
    let t = Tampered::unsampled(&mut world, 1, 1 << 9);
    let (b, bad) = (t.block, &t.bad);
    let miner = world.miner;
    world.commit_as(miner, fr_to_u256(&t.bad_tree.root()), fr_to_u256(&t.update_tree.root())).unwrap();
    world.reveal_all();
    world.draw();
    let indices = world.indices();
    assert!(!indices.contains(&b), "the prediction holds");
    // The sampled proof passes: every sampled block is applied exactly.
    world.submit(fx.proof_of(old, bad, update, &indices)).unwrap();
    let (lazy, lazier, careful) = (world.verifiers[0], world.verifiers[1], world.verifiers[2]);
    world.attest(lazy, true).unwrap();
    world.attest(lazier, true).unwrap();
    world.attest(careful, false).unwrap();

    let claim = t.claim(fx, b);
    let task = world.task;
    assert_eq!(refused(world.send("proveFraud", careful, claim.to_call(task, 0), 0)), "TooEarly");
    world.close_attestations();
    // A claim about another (honest) block shows nothing and costs only gas.
    let other = 1 - b;
    let honest_claim = t.claim(fx, other);
    assert_eq!(refused(world.send("proveFraud", careful, honest_claim.to_call(task, 0), 0)), "NoFraud");
    let pool_before = world.task_state().pool;
    world.send("proveFraud", careful, claim.to_call(task, 0), 0).unwrap();
    assert_eq!(refused(world.send("proveFraud", careful, claim.to_call(task, 0), 0)), "AlreadyFraud");
    assert_eq!(world.balance_of(careful), U256::ZERO, "the bounty is paid at finalize");

    let stake = |world: &mut World, v| {
        world.rounds.read(&mut world.evm, PogoRounds::stakeOfCall { task, verifier: v }).unwrap()
    };
    let slash = U256::from(STAKE) * U256::from(FRAUD_SLASH_BPS) / U256::from(10_000u64);
    assert_eq!(stake(&mut world, lazy), U256::from(STAKE) - slash);
    assert_eq!(stake(&mut world, lazier), U256::from(STAKE) - slash);
    assert_eq!(stake(&mut world, careful), U256::from(STAKE), "the negative attester keeps its stake");
    assert_eq!(world.task_state().pool, pool_before + slash * U256::from(2u64));

    world.close_window();
    world.finalize().unwrap();
    assert_eq!(world.balance_of(careful), U256::from(BOND / 2), "the challenger's bounty");
    assert_eq!(world.task_state().pool, pool_before + U256::from(BOND / 2) + slash * U256::from(2u64));
    let c = world.candidate(0, 0);
    assert!(c.fraud);
    assert_eq!(c.outcome, outcome::SLASHED);
    assert_eq!(world.position(), 0, "the root did not move");
    assert_eq!(world.balance_of(miner), U256::ZERO, "nothing comes back to the miner");
    assert_eq!(refused(world.claim(careful, 0)), "NothingToClaim");
}

/// Copying an attestation: verdicts are sealed until the attestation window closes, so a
/// lazy verifier sees only commitments. Copying one gains nothing — it is bound to its
/// author's address, so the copier cannot open it — and an attestation never opened costs
/// `fraudSlashBps` of the stake at finalize; after the window, when verdicts are public,
/// it is too late to attest. The honest verifiers are paid; the copier is not.
#[test]
fn a_copied_attestation_cannot_be_opened_and_costs_the_copier() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |p| p.quorum = STAKE);
    let (honest, copier, late) = (world.verifiers[0], world.verifiers[1], world.verifiers[2]);
    world.commit_and_prove();
    world.attest(honest, true).unwrap();
    // The copier reads the honest commitment from the chain and sends it as its own.
    let round = world.task_state().roundCount - 1;
    let theirs = world
        .rounds
        .read(&mut world.evm, PogoRounds::getAttestationCall { task: world.task, round, verifier: honest })
        .unwrap()
        .commitment;
    world
        .send("attest", copier, PogoRounds::attestCall { task: world.task, commitment: theirs, seats: vec![] }, 0)
        .unwrap();
    // It starts leaving now, hoping to take its stake out before finalize slashes it.
    world.send("leave", copier, PogoRounds::leaveCall { task: world.task }, 0).unwrap();
    let honest_salt = world.sealed[0].salt;
    world.close_attestations();
    // Verdicts are public now, too late to copy them.
    assert_eq!(refused(world.attest(late, true)), "TooLate");
    // The honest preimage, public since the honest verifier opened it, does not open the copy.
    let call = PogoRounds::revealAttestationCall {
        task: world.task,
        lossOld: LOSS_OLD,
        verdicts: vec![1],
        lossNew: vec![1_500_000_000],
        salt: honest_salt,
    };
    assert_eq!(refused(world.send("revealAttestation", copier, call, 0)), "WrongReveal");
    let task = world.task;
    let pool = world.task_state().pool;
    world.close_window();
    let released = world.rounds.read(&mut world.evm, PogoRounds::leavingSinceCall { task, verifier: copier }).unwrap()
        + world.rounds.read(&mut world.evm, PogoRounds::unbondingCall { task }).unwrap();
    world.evm.mine((released + 1).saturating_sub(world.evm.block_number()));
    let leave = PogoRounds::leaveCall { task };
    assert_eq!(refused(world.send("leave", copier, leave.clone(), 0)), "AttestationUnopened");
    world.finalize().unwrap();
    let stake = |world: &mut World, v| {
        world.rounds.read(&mut world.evm, PogoRounds::stakeOfCall { task, verifier: v }).unwrap()
    };
    let slash = U256::from(STAKE) * U256::from(FRAUD_SLASH_BPS) / U256::from(10_000u64);
    assert_eq!(stake(&mut world, copier), U256::from(STAKE) - slash, "an unopened attestation costs the copier");
    assert_eq!(stake(&mut world, honest), U256::from(STAKE));
    assert_eq!(world.candidate(0, 0).outcome, outcome::WON, "the honest quorum decided");
    assert_eq!(world.task_state().pool, pool - U256::from(REWARD) + slash);
    world.claim(honest, 0).unwrap();
    assert_eq!(refused(world.claim(copier, 0)), "NothingToClaim");
    // After finalize the reduced stake is released.
    world.send("leave", copier, leave, 0).unwrap();
    assert_eq!(world.balance_of(copier), U256::from(STAKE) - slash);
}

/// A miner's own fraud proof cannot buy back a bond it would lose: an unproven candidate
/// cannot be challenged at all, and one that 2/3 of a quorum rejected pays its negative
/// attesters at finalize whoever proved the fraud (the review's bond-insurance attack).
#[test]
fn a_self_challenge_buys_back_no_bond() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    let (old, update) = (&fx.chain.models[0], &fx.chain.updates[0]);
    let t = Tampered::unsampled(&mut world, 0, 1);
    let (miner, accomplice) = (world.miners[0], world.miners[1]);
    world.commit_as(miner, fr_to_u256(&t.bad_tree.root()), fr_to_u256(&t.update_tree.root())).unwrap();
    // A second candidate that never proves: no fraud proof may touch it.
    world.commit_as(accomplice, U256::from(5), U256::from(7)).unwrap();
    world.reveal_all();
    world.draw();
    let indices = world.indices();
    world.submit(fx.proof_of(old, &t.bad, update, &indices)).unwrap();
    for v in world.verifiers.clone() {
        world.attest(v, false).unwrap();
    }
    world.close_attestations();
    let claim = t.claim(fx, t.block);
    let task = world.task;
    assert_eq!(refused(world.send("proveFraud", accomplice, claim.to_call(task, 1), 0)), "NotProven");
    world.send("proveFraud", accomplice, claim.to_call(task, 0), 0).unwrap();
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(world.candidate(0, 0).outcome, outcome::SLASHED);
    assert_eq!(world.balance_of(accomplice), U256::ZERO, "no bounty on a candidate the quorum rejected");
    for v in world.verifiers.clone() {
        world.claim(v, 0).unwrap();
    }
    let paid: U256 = world.verifiers.clone().into_iter().map(|v| world.balance_of(v)).fold(U256::ZERO, |a, b| a + b);
    assert_eq!(paid, U256::from(BOND), "the negative attesters share the whole bond");
}

/// Committees (issue 22): on a task with a committee only the seat holders of the round's
/// stake-weighted draw attest, each weighing its seats. The draw pogo computes off chain
/// (`CommitteeDraw`) is the contract's; an outsider cannot attest, forge a seat or borrow
/// a member's seats; the members' seats decide the round.
#[test]
fn committee_seats_are_the_draw_and_cannot_be_forged_or_borrowed() {
    const SEATS: u16 = 8;
    let fx = Fixture::small();
    let mut world = World::new(fx, 8, |p| {
        p.committee = SEATS;
        p.quorum = 2;
    });
    world.commit_and_prove();
    let task = world.task;
    let round = world.task_state().roundCount - 1;
    let r = world.round();
    let seed1 = world.rounds.read(&mut world.evm, PogoRounds::seedOfCall { task, id: round, phase: 1 }).unwrap();
    assert_eq!(r.committeeStake, U256::from(8 * STAKE), "the stake that weighed when the round opened");
    let draw =
        CommitteeDraw { contract: world.rounds.address, task, round, seed1, total: r.committeeStake, size: SEATS };
    let (mut members, mut outsiders) = (Vec::new(), Vec::new());
    for v in world.verifiers.clone() {
        let stake = world.rounds.read(&mut world.evm, PogoRounds::stakeOfCall { task, verifier: v }).unwrap();
        let native = draw.seats(v, stake);
        assert_eq!(world.seats(round, v).unwrap(), native, "the contract's draw for {v}");
        if native.is_empty() {
            outsiders.push(v);
        } else {
            members.push((v, native));
        }
    }
    assert!(!outsiders.is_empty() && !members.is_empty(), "the fixed seeds seat some verifiers and not others");
    let seats: usize = members.iter().map(|(_, s)| s.len()).sum();
    assert!(seats >= 2, "the fixed seeds seat a quorum");
    for (v, _) in &members {
        world.attest(*v, true).unwrap();
    }
    // An outsider: no seat to show, and a member's seats are not its own.
    let outsider = outsiders[0];
    assert_eq!(refused(world.attest(outsider, true)), "NotOnCommittee");
    let borrowed = PogoRounds::attestCall { task, commitment: B256::repeat_byte(3), seats: members[0].1.clone() };
    assert_eq!(refused(world.send("attest", outsider, borrowed, 0)), "BadSeat");
    // A forged seat: the first seat no member won (if the members won them all, seat C).
    let forged = (0..SEATS).find(|j| !members[0].1.contains(j)).unwrap_or(SEATS);
    let outsider2 = *outsiders.last().unwrap();
    let call = PogoRounds::attestCall { task, commitment: B256::repeat_byte(4), seats: vec![forged] };
    assert_eq!(refused(world.send("attest", outsider2, call, 0)), "BadSeat");
    world.close_attestations();
    for (v, s) in &members {
        let a =
            world.rounds.read(&mut world.evm, PogoRounds::getAttestationCall { task, round, verifier: *v }).unwrap();
        assert_eq!(a.stake, s.len() as u128, "an attestation weighs its seats");
    }
    world.close_window();
    world.finalize().unwrap();
    let c = world.candidate(round, 0);
    assert_eq!(c.outcome, outcome::WON, "the committee's seats decided the round");
    assert_eq!(c.positiveStake, seats as u128);
}
