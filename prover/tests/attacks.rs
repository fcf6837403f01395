//! The round protocol tried as an adversary would (issue "Rounds that pay only for useful
//! work"): each attack is a test that plays it against the real contract in revm and must
//! see it refused. Every one of these was first run against the contract before the fix
//! and showed the attack working.

mod support;

use pogo_circuits::encoding::{Nibble, UpdateBlock};
use pogo_circuits::update::Update;
use pogo_prover::witness::{assemble, round_trees};
use pogo_verifier::evm::{fr_to_u256, B256, U256};
use pogo_verifier::rounds::{verdict, PogoRounds};
use support::*;

/// No work: an update whose every scale is 0 leaves the model as it was (`newRoot ==
/// oldRoot`); it proves, and equal losses pass a zero margin. It must never be committed.
#[test]
fn an_unchanged_model_is_refused_at_commit() {
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
    let (task, miner) = (world.task, world.miner);
    let call = PogoRounds::commitCall { task, newRoot: root, updateRoot: update_root, blobHash: B256::repeat_byte(1) };
    let result = world.send("commit", miner, call, BOND).map(|_| ());
    if result.is_ok() {
        // The attack, played to the end: the proof is valid and equal losses attest positive.
        world.draw();
        let indices = world.indices();
        let trees = round_trees(old, &same, &zero, fx.depth, &()).unwrap();
        let (inputs, witness) = assemble(old, &same, &zero, &trees, &indices).unwrap();
        let proof = pogo_prover::prove::prove(&fx.setup, &fx.keys, &inputs, &witness).unwrap();
        world.submit(proof).unwrap();
        for v in world.verifiers.clone() {
            let call = PogoRounds::attestCall { task, verdict: verdict::POSITIVE, lossOld: 7, lossNew: 7 };
            world.send("attest", v, call, 0).unwrap();
        }
        world.close_window();
        world.finalize().unwrap();
        panic!("no work was paid: the miner is owed {} wei", world.balance_of(miner));
    }
    assert_eq!(refused(result), "UnchangedModel");
}

/// One stake, many votes: attest, leave, withdraw, then join again from a fresh address
/// with the same ether and attest the same round again.
#[test]
fn one_stake_cannot_vote_twice_from_two_addresses() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 1, |_| {});
    let task = world.task;
    let first = world.verifiers[0];
    let second = actor(0x66);
    world.evm.set_balance(second, U256::from(1000 * ETHER));
    world.commit().unwrap();
    world.draw();
    world.attest(first, true).unwrap();
    // Leaving starts the unbonding delay: the stake cannot be withdrawn while the round it
    // attested in is open.
    world.send("leave", first, PogoRounds::leaveCall { task }, 0).unwrap();
    assert_eq!(refused(world.send("withdraw", first, PogoRounds::withdrawCall {}, 0).map(|_| ())), "NothingToWithdraw");
    // Stake that arrived after the commit carries no weight in this round.
    world.send("join", second, PogoRounds::joinCall { task }, STAKE).unwrap();
    assert_eq!(refused(world.attest(second, true)), "StakeTooNew");
}

/// Verifiers who stay offline are no fault of the miner: a proven round that misses its
/// quorum gives the bond back instead of slashing it.
#[test]
fn an_honest_miner_is_not_slashed_when_verifiers_stay_offline() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    let miner = world.miner;
    world.commit().unwrap();
    world.draw();
    let proof = world.honest_proof();
    world.submit(proof).unwrap();
    world.attest(world.verifiers[0], true).unwrap(); // one of three: below the quorum of two
    world.close_window();
    world.finalize().unwrap();
    let round = world.rounds.read(&mut world.evm, PogoRounds::getRoundCall { task: world.task, round: 0 }).unwrap();
    assert!(round.finalized && !round.accepted);
    assert_eq!(world.task_state().root, fr_to_u256(&fx.chain.root(0, fx.depth)), "the root stays");
    assert_eq!(world.balance_of(miner), U256::from(BOND), "the bond comes back, no reward");
    assert_eq!(world.task_state().pool, U256::from(POOL), "nothing was slashed into the pool");
}

/// Every refusal of the stake rules: a top-up while a round is open, joining while leaving,
/// a stake that left before the commit attesting, and releasing before the lock is over.
#[test]
fn stake_rules_refuse_each_way_around_the_lock() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    let task = world.task;
    let (v0, v1) = (world.verifiers[0], world.verifiers[1]);
    world.send("leave", v1, PogoRounds::leaveCall { task }, 0).unwrap();
    world.evm.mine(1);
    world.commit().unwrap();
    let top_up = world.send("join", v0, PogoRounds::joinCall { task }, STAKE).map(|_| ());
    assert_eq!(refused(top_up), "RoundOpen");
    let rejoin = world.send("join", v1, PogoRounds::joinCall { task }, STAKE).map(|_| ());
    assert_eq!(refused(rejoin), "StakeLeaving");
    world.draw();
    assert_eq!(refused(world.attest(v1, true)), "StakeLeaving", "left before the commit");
    world.attest(v0, true).unwrap();
    let early = world.send("leave", v1, PogoRounds::leaveCall { task }, 0).map(|_| ());
    assert_eq!(refused(early), "StakeLocked");
    world.evm.mine(ATTEST_WINDOW);
    world.send("leave", v1, PogoRounds::leaveCall { task }, 0).unwrap();
    assert_eq!(world.balance_of(v1), U256::from(STAKE), "released after the lock");
    let stake = world
        .rounds
        .read(&mut world.evm, <PogoRounds::stakeOfCall as alloy_sol_types::SolCall>::new((task, v1)))
        .unwrap();
    assert_eq!(stake, U256::ZERO);
}
