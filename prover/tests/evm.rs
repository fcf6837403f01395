//! The generated Solidity verifier and the round contract in a real EVM (revm, Prague):
//! an honest round end to end, then each rejection on its own, and a property test that
//! the contract's ether always equals what it owes.

mod support;

use pogo_circuits::field::Fr;
use pogo_circuits::sampling::sample_indices;
use pogo_prover::witness::{assemble, round_trees};
use pogo_verifier::evm::{calldata, fr_to_u256, Address, U256};
use pogo_verifier::rounds::{PogoRounds, RoundsError};
use proptest::prelude::*;
use support::*;

#[test]
fn verifier_accepts_honest_proofs_and_reverts_on_tampered_ones() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 0, |_| {});
    let indices = vec![1, 0];
    let proof = fx.proof(0, &indices);
    let trees = round_trees(&fx.chain.models[0], &fx.chain.models[1], &fx.chain.updates[0], fx.depth, &()).unwrap();
    let (inputs, _) =
        assemble(&fx.chain.models[0], &fx.chain.models[1], &fx.chain.updates[0], &trees, &indices).unwrap();
    let instances = inputs.to_instances();
    let me = world.owner;
    let verifier = world.verifier;
    let ok = world.evm.call(me, verifier, calldata(&instances, &proof), U256::ZERO).unwrap();
    assert!(ok.gas_used > 100_000, "a pairing check happened");
    // Every public input changed by one, and a flipped proof byte, must revert.
    for k in 0..instances.len() {
        let mut changed = instances.clone();
        changed[k] += Fr::one();
        assert!(world.evm.call(me, verifier, calldata(&changed, &proof), U256::ZERO).is_err(), "input {k} changed");
    }
    for at in [0, proof.len() / 2, proof.len() - 1] {
        let mut bad = proof.clone();
        bad[at] ^= 1;
        assert!(world.evm.call(me, verifier, calldata(&instances, &bad), U256::ZERO).is_err(), "byte {at}");
    }
    assert!(world.evm.call(me, verifier, calldata(&instances, &proof[..proof.len() - 32]), U256::ZERO).is_err());
}

#[test]
fn honest_round_advances_the_root_and_pays_the_miner() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    let miner = world.miner;
    let before = world.evm.balance(miner);
    world.honest_round(3);
    let state = world.task_state();
    assert_eq!(state.root, fr_to_u256(&fx.chain.root(1, fx.depth)));
    assert_eq!(state.roundCount, 1);
    assert!(!state.open);
    assert_eq!(state.pool, U256::from(POOL - REWARD));
    assert_eq!(world.balance_of(miner), U256::from(BOND + REWARD));
    let round = world.rounds.read(&mut world.evm, PogoRounds::getRoundCall { task: world.task, round: 0 }).unwrap();
    assert!(round.proven && round.finalized && round.accepted);
    assert_eq!(round.attestations, 3);
    // Pull payment: the miner withdraws bond and reward.
    world.send("withdraw", miner, PogoRounds::withdrawCall {}, 0).unwrap();
    assert_eq!(world.evm.balance(miner), before - U256::from(BOND) + U256::from(BOND + REWARD));
    assert_eq!(refused(world.send("withdraw", miner, PogoRounds::withdrawCall {}, 0).map(|_| ())), "NothingToWithdraw");
    // The next round starts from the accepted root.
    world.honest_round(2);
    assert_eq!(world.task_state().root, fr_to_u256(&fx.chain.root(2, fx.depth)));
}

#[test]
fn events_mark_every_transition() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    let contract = world.rounds.address;
    let miner = world.miner;
    let (new_root, update_root) = fx.roots(0);
    let call = PogoRounds::commitCall {
        task: world.task,
        newRoot: new_root,
        updateRoot: update_root,
        blobHash: [7u8; 32].into(),
    };
    let (_, receipt) = world.rounds.send(&mut world.evm, miner, call, U256::from(BOND)).unwrap();
    let log = receipt.logs.iter().find(|l| l.address == contract).expect("an event");
    let event = <PogoRounds::Committed as alloy_sol_types::SolEvent>::decode_log(log).unwrap();
    assert_eq!((event.newRoot, event.updateRoot, event.miner), (new_root, update_root, miner));
}

#[test]
fn proof_for_other_indices_is_rejected() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    world.draw();
    let mut indices = world.indices();
    indices[0] = 1 - indices[0];
    let proof = fx.proof(0, &indices);
    assert_eq!(refused(world.submit(proof)), "ProofRejected");
    // The honest proof still goes through afterwards.
    let proof = world.honest_proof();
    world.submit(proof).unwrap();
}

#[test]
fn proof_for_other_roots_is_rejected() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    world.draw();
    let indices = world.indices();
    // A valid proof of the right indices, but for the update 1 → 2 instead of 0 → 1.
    let proof = fx.proof(1, &indices);
    assert_eq!(refused(world.submit(proof)), "ProofRejected");
}

#[test]
fn tampered_proof_is_rejected() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    world.draw();
    let mut proof = world.honest_proof();
    proof[100] ^= 0x40;
    assert_eq!(refused(world.submit(proof.clone())), "ProofRejected");
    assert_eq!(refused(world.submit(Vec::new())), "ProofRejected");
}

#[test]
fn proof_before_phase_two_is_refused() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    assert_eq!(refused(world.submit(vec![0; 64])), "PhaseNotReady");
    let miner = world.miner;
    let task = world.task;
    assert_eq!(
        refused(world.send("draw", miner, PogoRounds::drawRandomnessCall { task }, 0).map(|_| ())),
        "PhaseNotReady"
    );
}

#[test]
fn late_proof_is_refused_and_the_miner_slashed() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    // Two negative attesters with stakes 1 and 2 ether share the bond 1:2.
    let (v0, v1) = (world.verifiers[0], world.verifiers[1]);
    let task = world.task;
    world.send("join", v1, PogoRounds::joinCall { task }, STAKE).unwrap();
    world.evm.mine(1);
    world.commit().unwrap();
    world.draw();
    let proof = world.honest_proof();
    world.evm.mine(PROOF_WINDOW);
    assert_eq!(refused(world.submit(proof)), "TooLate");
    world.attest(v0, false).unwrap();
    world.attest(v1, false).unwrap();
    // The proof deadline passed without a proof: finalize need not wait for the window.
    world.finalize().unwrap();
    let state = world.task_state();
    assert_eq!(state.root, fr_to_u256(&fx.chain.root(0, fx.depth)), "root unchanged");
    assert_eq!(world.balance_of(world.miner), U256::ZERO);
    for v in [v0, v1] {
        world.send("claimSlash", v, PogoRounds::claimSlashCall { task, round: 0 }, 0).unwrap();
    }
    assert_eq!(world.balance_of(v0), U256::from(BOND / 3));
    assert_eq!(world.balance_of(v1), U256::from(BOND - BOND / 3));
    assert_eq!(
        refused(world.send("claimSlash", v0, PogoRounds::claimSlashCall { task, round: 0 }, 0).map(|_| ())),
        "NothingToClaim"
    );
}

#[test]
fn missed_deadline_without_attesters_feeds_the_pool() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 1, |_| {});
    world.commit().unwrap();
    world.evm.mine(PROOF_WINDOW + 1);
    world.finalize().unwrap();
    assert_eq!(world.task_state().pool, U256::from(POOL + BOND));
}

#[test]
fn double_attestation_and_strangers_are_refused() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    let v0 = world.verifiers[0];
    assert_eq!(refused(world.attest(v0, true)), "PhaseNotReady", "attesting before the batch is fixed");
    world.draw();
    world.attest(v0, true).unwrap();
    assert_eq!(refused(world.attest(v0, true)), "AlreadyAttested");
    assert_eq!(refused(world.attest(v0, false)), "AlreadyAttested");
    assert_eq!(refused(world.attest(actor(0x77), true)), "NotVerifier");
    let miner = world.miner;
    let task = world.task;
    world.send("join", miner, PogoRounds::joinCall { task }, STAKE).unwrap();
    assert_eq!(refused(world.attest(miner, true)), "MinerCannotAttest");
    // A positive verdict whose losses did not fall by the margin contradicts itself.
    let v1 = world.verifiers[1];
    let call = PogoRounds::attestCall { task, verdict: 1, lossOld: 1_000_000_000, lossNew: 1_000_000_000 - MARGIN + 1 };
    assert_eq!(refused(world.send("attest", v1, call, 0).map(|_| ())), "VerdictContradictsLosses");
    world.evm.mine(ATTEST_WINDOW);
    assert_eq!(refused(world.attest(v1, false)), "TooLate");
}

#[test]
fn finalize_too_early_and_twice_is_refused() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    assert_eq!(refused(world.finalize()), "TooEarly");
    world.draw();
    let proof = world.honest_proof();
    world.submit(proof).unwrap();
    world.attest(world.verifiers[0], true).unwrap();
    world.attest(world.verifiers[1], true).unwrap();
    // Proven, so finalize waits for the full attestation window.
    world.evm.mine(PROOF_WINDOW + 1);
    assert_eq!(refused(world.finalize()), "TooEarly");
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(refused(world.finalize()), "NoOpenRound");
}

#[test]
fn commit_rules() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 1, |_| {});
    let (new_root, update_root) = fx.roots(0);
    let task = world.task;
    let miner = world.miner;
    let commit = |new_root, update_root| PogoRounds::commitCall {
        task,
        newRoot: new_root,
        updateRoot: update_root,
        blobHash: [1u8; 32].into(),
    };
    let r = world.send("commit", miner, commit(new_root, update_root), BOND - 1).map(|_| ());
    assert_eq!(refused(r), "WrongBond");
    let modulus = world.rounds.read(&mut world.evm, PogoRounds::FIELD_MODULUSCall {}).unwrap();
    assert_eq!(modulus, fr_to_u256(&-Fr::one()) + U256::from(1), "the contract's modulus is BN254's r");
    let r = world.send("commit", miner, commit(modulus, update_root), BOND).map(|_| ());
    assert_eq!(refused(r), "NotFieldElement");
    world.send("commit", miner, commit(new_root, update_root), BOND).unwrap();
    let r = world.send("commit", miner, commit(new_root, update_root), BOND).map(|_| ());
    assert_eq!(refused(r), "RoundOpen");
}

#[test]
fn task_registration_checks_its_parameters() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 0, |_| {});
    let owner = world.owner;
    let base = world.task_state().params;
    let mut cases: Vec<(PogoRounds::TaskParams, &str)> = Vec::new();
    let mut p = base.clone();
    p.verifier = actor(0x99); // no code there
    cases.push((p, "verifier has no code"));
    let mut p = base.clone();
    p.nb = 3; // 2^D = 2
    cases.push((p, "nb must be in 1..=2^depth"));
    let mut p = base.clone();
    p.attestWindow = p.proofWindow;
    cases.push((p, "need 0 < proofWindow < attestWindow"));
    let mut p = base.clone();
    p.quorum = 0;
    cases.push((p, "quorum must be positive"));
    for (params, why) in cases {
        let err = world.send("createTask", owner, PogoRounds::createTaskCall { p: params }, 0).unwrap_err();
        assert_eq!(err.to_string(), format!("the round contract refused: BadParams({why})"));
    }
}

/// Runs one round with `positive` and `negative` attestations (equal stakes) and a quorum
/// of `quorum` stakes.
fn outcome(positive: usize, negative: usize, quorum: u128) -> bool {
    let fx = Fixture::small();
    let mut world = World::new(fx, positive + negative, |p| p.quorum = quorum * STAKE);
    world.commit().unwrap();
    world.draw();
    let proof = world.honest_proof();
    world.submit(proof).unwrap();
    let verifiers = world.verifiers.clone();
    for (k, v) in verifiers.into_iter().enumerate() {
        world.attest(v, k < positive).unwrap();
    }
    world.close_window();
    world.finalize().unwrap();
    let accepted = world.task_state().root == fr_to_u256(&fx.chain.root(1, fx.depth));
    let round = world.rounds.read(&mut world.evm, PogoRounds::getRoundCall { task: world.task, round: 0 }).unwrap();
    assert_eq!(round.accepted, accepted);
    accepted
}

#[test]
fn two_thirds_threshold_one_vote_either_side() {
    assert!(outcome(2, 1, 1), "exactly 2/3 positive accepts");
    assert!(!outcome(2, 2, 1), "one more negative vote (1/2) rejects");
    assert!(outcome(3, 1, 1), "one more positive vote (3/4) accepts");
}

#[test]
fn quorum_one_vote_either_side() {
    assert!(!outcome(2, 0, 3), "one attestation short of quorum rejects");
    assert!(outcome(3, 0, 3), "exactly the quorum accepts");
}

#[test]
fn sampled_indices_match_the_native_rule() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 0, |p| {
        // Sampling depends only on nb: use a wider task over the same verifier.
        p.depth = 20;
        p.nb = 892_858;
        p.samples = 32;
    });
    world.commit().unwrap();
    world.draw();
    let round = world.rounds.read(&mut world.evm, PogoRounds::getRoundCall { task: world.task, round: 0 }).unwrap();
    assert_eq!(world.evm.block_hash(round.seed2Block).unwrap(), round.seed2, "phase 2 is a block hash");
    assert!(round.seed1Block < round.seed2Block, "phase 1 comes first");
    let native = sample_indices(&round.seed2.0, 32, 892_858);
    assert_eq!(world.indices(), native);
}

#[test]
fn stale_randomness_is_re_anchored() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 0, |_| {});
    world.commit().unwrap();
    world.evm.mine(300); // the phase-1 block's hash is gone
    let miner = world.miner;
    let task = world.task;
    world.send("draw", miner, PogoRounds::drawRandomnessCall { task }, 0).unwrap();
    let round = world.rounds.read(&mut world.evm, PogoRounds::getRoundCall { task, round: 0 }).unwrap();
    assert_eq!(round.seed1, [0u8; 32], "not drawn from a zero hash");
    assert_eq!(round.seed1Block, world.evm.block_number() + 1);
    world.evm.mine(2);
    world.send("draw", miner, PogoRounds::drawRandomnessCall { task }, 0).unwrap();
    let round = world.rounds.read(&mut world.evm, PogoRounds::getRoundCall { task, round: 0 }).unwrap();
    assert_eq!(Some(round.seed1), world.evm.block_hash(round.seed1Block));
}

// ---- ether conservation under random call sequences ----

/// Side calls between the steps of a round.
#[derive(Debug, Clone)]
enum Extra {
    Join(usize, u8),
    Leave(usize),
    Fund(u8),
    Claim(usize),
    Withdraw(usize),
    Mine(u8),
}

/// One round with random choices at every step; refusals are part of the plan.
#[derive(Debug, Clone)]
struct RoundPlan {
    draw: bool,
    /// 0: no proof, 1: honest, 2: garbage.
    proof: u8,
    late: bool,
    /// Per verifier: 0 none, 1 positive, 2 negative.
    votes: [u8; 3],
    early_finalize: bool,
    extras: Vec<Extra>,
}

fn extra() -> impl Strategy<Value = Extra> {
    prop_oneof![
        (0..3usize, 1..4u8).prop_map(|(v, e)| Extra::Join(v, e)),
        (0..3usize).prop_map(Extra::Leave),
        (0..4u8).prop_map(Extra::Fund),
        (0..3usize).prop_map(Extra::Claim),
        (0..5usize).prop_map(Extra::Withdraw),
        (1..30u8).prop_map(Extra::Mine),
    ]
}

fn plan() -> impl Strategy<Value = RoundPlan> {
    (
        proptest::bool::weighted(0.9),
        0..3u8,
        proptest::bool::weighted(0.2),
        [0..3u8, 0..3u8, 0..3u8],
        proptest::bool::weighted(0.2),
        proptest::collection::vec(extra(), 0..6),
    )
        .prop_map(|(draw, proof, late, votes, early_finalize, extras)| RoundPlan {
            draw,
            proof,
            late,
            votes,
            early_finalize,
            extras,
        })
}

/// What the contract owes: pool, open bond, unclaimed slashes, stakes and balances.
fn owed(world: &mut World) -> U256 {
    let state = world.task_state();
    let task = world.task;
    let mut total = state.pool;
    for r in 0..state.roundCount {
        let round = world.rounds.read(&mut world.evm, PogoRounds::getRoundCall { task, round: r }).unwrap();
        if !round.finalized {
            total += U256::from(round.bond);
        }
        total += U256::from(round.slashLeft);
    }
    let actors: Vec<Address> = [world.owner, world.miner].into_iter().chain(world.verifiers.clone()).collect();
    for who in actors {
        total += world
            .rounds
            .read(&mut world.evm, <PogoRounds::stakeOfCall as alloy_sol_types::SolCall>::new((task, who)))
            .unwrap();
        total += world.balance_of(who);
    }
    total
}

/// Runs `call`, then checks the books and the acceptance rule: no round accepted without a
/// valid proof, attesting stake of at least the quorum and 2/3 of it positive, or for an
/// unchanged model; none both accepted and refunded, and refunds only for proven rounds.
fn checked(world: &mut World, result: Result<(), RoundsError>) -> Result<(), TestCaseError> {
    let _ = result;
    let contract = world.rounds.address;
    let held = world.evm.balance(contract);
    prop_assert_eq!(held, owed(world));
    let state = world.task_state();
    for id in 0..state.roundCount {
        let r = world.rounds.read(&mut world.evm, PogoRounds::getRoundCall { task: world.task, round: id }).unwrap();
        let attesting = r.positiveStake + r.negativeStake;
        if r.accepted {
            prop_assert!(r.proven && r.finalized && r.newRoot != r.oldRoot);
            prop_assert!(attesting >= state.params.quorum && 3 * r.positiveStake >= 2 * attesting);
        }
        prop_assert!(!(r.accepted && r.refunded));
        if r.refunded {
            prop_assert!(r.proven && attesting < state.params.quorum);
        }
    }
    Ok(())
}

fn run_extra(world: &mut World, extra: &Extra, everyone: &[Address]) -> Result<(), RoundsError> {
    let task = world.task;
    match *extra {
        Extra::Join(v, e) => {
            world.send("join", world.verifiers[v], PogoRounds::joinCall { task }, e as u128 * ETHER / 2).map(|_| ())
        }
        Extra::Leave(v) => world.send("leave", world.verifiers[v], PogoRounds::leaveCall { task }, 0).map(|_| ()),
        Extra::Fund(e) => world.send("fund", world.owner, PogoRounds::fundCall { task }, e as u128 * ETHER).map(|_| ()),
        Extra::Claim(v) => {
            let rounds = world.task_state().roundCount;
            let verifier = world.verifiers[v];
            for round in 0..rounds {
                let _ = world.send("claim", verifier, PogoRounds::claimSlashCall { task, round }, 0);
            }
            Ok(())
        }
        Extra::Withdraw(w) => world.send("withdraw", everyone[w], PogoRounds::withdrawCall {}, 0).map(|_| ()),
        Extra::Mine(n) => {
            world.evm.mine(n as u64);
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn contract_ether_equals_what_it_owes(plans in proptest::collection::vec(plan(), 1..6)) {
        let fx = Fixture::small();
        let mut world = World::new(fx, 3, |p| p.quorum = 1);
        let everyone: Vec<Address> = [world.owner, world.miner].into_iter().chain(world.verifiers.clone()).collect();
        for plan in plans {
            let extras = plan.extras.split_at(plan.extras.len() / 2);
            for e in extras.0 {
                let r = run_extra(&mut world, e, &everyone);
                checked(&mut world, r)?;
            }
            let r = world.commit();
            checked(&mut world, r)?;
            if plan.draw {
                world.draw_phases();
                checked(&mut world, Ok(()))?;
            }
            if plan.late {
                world.evm.mine(PROOF_WINDOW + 1);
            }
            let r = match plan.proof {
                1 if world.position() + 1 < fx.chain.models.len() && plan.draw => {
                    let proof = world.honest_proof();
                    world.submit(proof)
                }
                2 => world.submit(vec![1; 32 * 20]),
                _ => Ok(()),
            };
            checked(&mut world, r)?;
            for (k, vote) in plan.votes.iter().enumerate() {
                if *vote > 0 {
                    let r = world.attest(world.verifiers[k], *vote == 1);
                    checked(&mut world, r)?;
                }
            }
            for e in extras.1 {
                let r = run_extra(&mut world, e, &everyone);
                checked(&mut world, r)?;
            }
            if !plan.early_finalize {
                world.close_window();
            }
            let r = world.finalize();
            checked(&mut world, r)?;
            for v in 0..3 {
                let r = run_extra(&mut world, &Extra::Claim(v), &everyone);
                checked(&mut world, r)?;
            }
        }
        for w in 0..everyone.len() {
            let r = run_extra(&mut world, &Extra::Withdraw(w), &everyone);
            checked(&mut world, r)?;
        }
        for who in everyone {
            prop_assert_eq!(world.balance_of(who), U256::ZERO, "everything owed was withdrawable");
        }
    }
}
