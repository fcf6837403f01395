//! The generated Solidity verifier and the round contract in a real EVM (revm, Prague):
//! an honest round end to end, then each rejection on its own, and a property test that
//! the contract's ether always equals what it owes.

mod support;

use pogo_circuits::field::Fr;
use pogo_circuits::sampling::sample_indices;
use pogo_prover::witness::{assemble, round_trees};
use pogo_verifier::evm::{calldata, fr_to_u256, proof_with_hints, Address, B256, U256};
use pogo_verifier::rounds::{commitment, outcome, PogoRounds, RoundsError};
use proptest::prelude::*;
use support::*;

/// A world with the small fixture's verifier deployed, and the public inputs and proof of
/// its first update at blocks 1 and 0.
fn first_update_proof() -> (World, Vec<Fr>, Vec<u8>) {
    let fx = Fixture::small();
    let world = World::new(fx, 0, |_| {});
    let indices = vec![1, 0];
    let proof = fx.proof(0, &indices);
    let trees = round_trees(&fx.chain.models[0], &fx.chain.models[1], &fx.chain.updates[0], fx.depth, &()).unwrap();
    let (inputs, _) =
        assemble(&fx.chain.models[0], &fx.chain.models[1], &fx.chain.updates[0], &trees, &indices).unwrap();
    (world, inputs.to_instances(), proof)
}

#[test]
fn verifier_accepts_honest_proofs_and_reverts_on_tampered_ones() {
    let (mut world, instances, proof) = first_update_proof();
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

/// The verifier takes the inverses it would compute with MODEXP as hints after the proof:
/// each is checked (a wrong one, or the right one plus r, reverts), a zero one falls back to
/// MODEXP, and hinted calls cost less gas than plain ones.
#[test]
fn inverse_hints_are_checked_never_trusted_and_save_gas() {
    let (mut world, instances, proof) = first_update_proof();
    let (me, verifier) = (world.owner, world.verifier);
    let runtime = world.evm.code(verifier);
    let hinted = proof_with_hints(&runtime, &instances, &proof).unwrap();
    assert_eq!(hinted.len(), proof.len() + 3 * 32, "three inversions, three hints");
    assert_eq!(&hinted[..proof.len()], &proof[..]);
    let plain = world.evm.call(me, verifier, calldata(&instances, &proof), U256::ZERO).unwrap().gas_used;
    let with = world.evm.call(me, verifier, calldata(&instances, &hinted), U256::ZERO).unwrap().gas_used;
    assert!(with < plain, "hinted {with} gas, plain {plain}");
    let r = pogo_verifier::evm::U256::from_str_radix(
        "21888242871839275222246405745257275088548364400416034343698204186575808495617",
        10,
    )
    .unwrap();
    for k in 0..3 {
        let at = proof.len() + 32 * k;
        let hint = U256::from_be_slice(&hinted[at..at + 32]);
        let with_hint = |value: U256| {
            let mut bytes = hinted.clone();
            bytes[at..at + 32].copy_from_slice(&value.to_be_bytes::<32>());
            calldata(&instances, &bytes)
        };
        for (what, value) in [("hint + 1", hint + U256::from(1)), ("hint + r", hint + r), ("1", U256::from(1))] {
            assert!(world.evm.call(me, verifier, with_hint(value), U256::ZERO).is_err(), "hint {k} replaced by {what}");
        }
        assert!(world.evm.call(me, verifier, with_hint(U256::ZERO), U256::ZERO).is_ok(), "hint {k} zero: MODEXP");
    }
    // A hinted call of a tampered proof still fails, and no hints are found for one.
    let mut bad = hinted.clone();
    bad[7] ^= 1;
    assert!(world.evm.call(me, verifier, calldata(&instances, &bad), U256::ZERO).is_err());
    let err = proof_with_hints(&runtime, &instances, &bad[..proof.len()]).unwrap_err();
    assert!(matches!(err, pogo_verifier::evm::EvmError::Reverted { .. }), "{err}");
    assert!(proof_with_hints(&[], &instances, &proof).is_err(), "no code");
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
    let fee = REWARD * FEE_BPS as u128 / 10_000;
    assert_eq!(world.balance_of(miner), U256::from(BOND + REWARD - fee));
    let round = world.round_at(0);
    assert!(round.finalized && round.winner == 1 && round.proven == 1);
    assert_eq!(round.attestingStake, 3 * STAKE);
    assert_eq!(world.candidate(0, 0).outcome, outcome::WON);
    // Pull payment: the miner withdraws bond and reward.
    world.send("withdraw", miner, PogoRounds::withdrawCall {}, 0).unwrap();
    assert_eq!(world.evm.balance(miner), before - U256::from(BOND) + U256::from(BOND + REWARD - fee));
    assert_eq!(refused(world.send("withdraw", miner, PogoRounds::withdrawCall {}, 0)), "NothingToWithdraw");
    // The next round starts from the accepted root.
    world.honest_round(2);
    assert_eq!(world.task_state().root, fr_to_u256(&fx.chain.root(2, fx.depth)));
}

#[test]
fn the_commitment_is_computed_alike_here_and_in_the_contract() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 0, |_| {});
    let (task, miner) = (world.task, world.miner);
    let (new_root, update_root) = fx.roots(0);
    let (blob, salt) = (B256::repeat_byte(3), B256::repeat_byte(4));
    let call = PogoRounds::commitmentOfCall {
        task,
        round: 5,
        miner,
        newRoot: new_root,
        updateRoot: update_root,
        blobHash: blob,
        salt,
    };
    let on_chain = world.rounds.read(&mut world.evm, call).unwrap();
    assert_eq!(on_chain, commitment(world.rounds.address, task, 5, miner, new_root, update_root, blob, salt));
    assert_ne!(on_chain, commitment(world.rounds.address, task, 5, actor(1), new_root, update_root, blob, salt));
}

#[test]
fn events_mark_every_transition() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    let contract = world.rounds.address;
    let miner = world.miner;
    let call = PogoRounds::commitCall { task: world.task, round: 0, commitment: B256::repeat_byte(7) };
    let (_, receipt) = world.rounds.send(&mut world.evm, miner, call, U256::from(BOND)).unwrap();
    let logs: Vec<_> = receipt.logs.iter().filter(|l| l.address == contract).collect();
    let opened = <PogoRounds::RoundOpened as alloy_sol_types::SolEvent>::decode_log(logs[0]).unwrap();
    assert_eq!(opened.oldRoot, fr_to_u256(&fx.chain.root(0, fx.depth)));
    let event = <PogoRounds::Committed as alloy_sol_types::SolEvent>::decode_log(logs[1]).unwrap();
    assert_eq!((event.commitment, event.miner, event.candidate), (B256::repeat_byte(7), miner, 0));
}

#[test]
fn the_verifier_code_hash_is_recorded_at_registration() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 0, |_| {});
    let code = world.evm.code(world.verifier);
    assert_eq!(world.task_state().verifierCodeHash, pogo_verifier::evm::keccak256(&code));
}

#[test]
fn proof_for_other_indices_is_rejected() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    world.reveal_all();
    world.draw();
    let mut indices = world.indices();
    indices[0] = 1 - indices[0];
    let proof = fx.proof(0, &indices);
    assert_eq!(refused(world.submit(proof)), "ProofRejected");
    // The honest proof still goes through afterwards, once.
    let proof = world.honest_proof();
    world.submit(proof.clone()).unwrap();
    assert_eq!(refused(world.submit(proof)), "AlreadyProven");
}

#[test]
fn proof_for_other_roots_is_rejected() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    world.reveal_all();
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
    world.reveal_all();
    world.draw();
    let mut proof = world.honest_proof();
    proof[100] ^= 0x40;
    assert_eq!(refused(world.submit(proof.clone())), "ProofRejected");
    assert_eq!(refused(world.submit(Vec::new())), "ProofRejected");
}

#[test]
fn proof_before_reveal_or_phase_two_is_refused() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    assert_eq!(refused(world.submit(vec![0; 64])), "NotRevealed");
    world.reveal_all();
    assert_eq!(refused(world.submit(vec![0; 64])), "PhaseNotReady");
    let owner = world.owner;
    let task = world.task;
    assert_eq!(refused(world.send("draw", owner, PogoRounds::drawRandomnessCall { task }, 0)), "PhaseNotReady");
}

#[test]
fn reveal_rules() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 1, |_| {});
    world.commit().unwrap();
    assert_eq!(refused(world.reveal(0)), "TooEarly", "reveals wait for the commit window to close");
    world.mine_to_reveal();
    let e = world.entries[0];
    let task = world.task;
    let reveal = |index, new_root, salt| PogoRounds::revealCall {
        task,
        index,
        newRoot: new_root,
        updateRoot: e.update_root,
        blobHash: e.blob_hash,
        salt,
    };
    assert_eq!(refused(world.send("reveal", e.miner, reveal(0, e.new_root, B256::ZERO), 0)), "WrongReveal");
    assert_eq!(refused(world.send("reveal", e.miner, reveal(0, e.new_root + U256::from(1), e.salt), 0)), "WrongReveal");
    assert_eq!(refused(world.send("reveal", actor(0x77), reveal(0, e.new_root, e.salt), 0)), "NotYourCandidate");
    assert_eq!(refused(world.send("reveal", e.miner, reveal(3, e.new_root, e.salt), 0)), "NoSuchCandidate");
    world.reveal(0).unwrap();
    assert_eq!(refused(world.reveal(0)), "AlreadyRevealed");
    world.evm.mine(REVEAL_WINDOW);
    assert_eq!(refused(world.reveal(0)), "TooLate");
}

#[test]
fn a_reveal_after_its_window_is_refused_and_the_bond_slashed() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    world.mine_to_reveal();
    world.evm.mine(REVEAL_WINDOW);
    assert_eq!(refused(world.reveal(0)), "TooLate");
    // Nothing was revealed: finalize need not wait for the attestation window.
    world.finalize().unwrap();
    assert_eq!(world.candidate(0, 0).outcome, outcome::SLASHED);
    assert_eq!(world.task_state().pool, U256::from(POOL + BOND));
}

#[test]
fn late_proof_is_refused_and_the_miner_slashed() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 3, |_| {});
    let (v0, v1) = (world.verifiers[0], world.verifiers[1]);
    world.commit().unwrap();
    world.reveal_all();
    world.draw();
    let proof = world.honest_proof();
    world.evm.mine(PROOF_WINDOW);
    assert_eq!(refused(world.submit(proof)), "TooLate");
    // Nothing proven: no held-out batch is revealed, so there is nothing to attest on.
    assert_eq!(refused(world.attest(v0, false)), "TooEarly");
    assert_eq!(refused(world.attest(v1, false)), "TooEarly");
    // The proof deadline passed without a proof: finalize need not wait for the window.
    world.finalize().unwrap();
    let state = world.task_state();
    assert_eq!(state.root, fr_to_u256(&fx.chain.root(0, fx.depth)), "root unchanged");
    assert_eq!(world.balance_of(world.miner), U256::ZERO);
    // An unproven bond feeds the pool, not the attesters (no one can refund their own junk).
    assert_eq!(state.pool, U256::from(POOL + BOND));
    assert_eq!(refused(world.claim(v0, 0)), "NothingToClaim");
}

#[test]
fn missed_deadline_without_attesters_feeds_the_pool() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 1, |_| {});
    world.commit().unwrap();
    world.reveal_all();
    let proof_end = world.round().proofEnd;
    assert_eq!(refused(world.finalize()), "TooEarly", "a proof may still come");
    world.evm.mine(proof_end + 1 - world.evm.block_number());
    world.finalize().unwrap();
    assert_eq!(world.task_state().pool, U256::from(POOL + BOND));
}

#[test]
fn double_attestation_and_strangers_are_refused() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 8, |_| {});
    let task = world.task;
    let miner = world.miner;
    world.send("join", miner, PogoRounds::joinCall { task }, STAKE).unwrap();
    world.evm.mine(1);
    world.commit().unwrap();
    world.reveal_all();
    let v = world.verifiers.clone();
    assert_eq!(refused(world.attest(v[0], true)), "TooEarly", "attesting before the held-out batch is revealed");
    world.draw();
    let proof = world.honest_proof();
    world.submit(proof).unwrap();
    world.attest(v[0], true).unwrap();
    assert_eq!(refused(world.attest(v[0], true)), "AlreadyAttested");
    assert_eq!(refused(world.attest(v[0], false)), "AlreadyAttested");
    assert_eq!(refused(world.attest(actor(0x77), true)), "NotVerifier");
    let open_now = PogoRounds::revealAttestationCall {
        task,
        lossOld: LOSS_OLD,
        verdicts: vec![1],
        lossNew: vec![1_500_000_000],
        salt: world.sealed[0].salt,
    };
    assert_eq!(
        refused(world.send("revealAttestation", v[0], open_now, 0)),
        "TooEarly",
        "sealed until the window closes"
    );
    // The commitment hides the verdicts: what breaks a rule is refused when it is opened.
    world.attest(miner, true).unwrap();
    let bad: [(Vec<u8>, Vec<u64>, &str); 5] = [
        (vec![1], vec![1_000_000_000 - MARGIN + 1], "VerdictContradictsLosses"),
        (vec![1, 1], vec![0, 0], "WrongLength"),
        (vec![1], vec![], "WrongLength"),
        (vec![0], vec![0], "BadVerdict"), // a revealed candidate needs a verdict
        (vec![3], vec![0], "BadVerdict"),
    ];
    for (k, (verdicts, losses, _)) in bad.iter().enumerate() {
        world.attest_sealed(v[1 + k], 1_000_000_000, verdicts.clone(), losses.clone()).unwrap();
    }
    world.mine_past_attestations();
    assert_eq!(refused(world.attest(v[7], false)), "TooLate");
    assert_eq!(refused(world.reveal_attestation(miner)), "MinerCannotAttest");
    for (k, (_, _, why)) in bad.iter().enumerate() {
        assert_eq!(refused(world.reveal_attestation(v[1 + k])), *why);
    }
    // Another's preimage, or one's own with another salt, does not open a commitment.
    let call = |salt: B256| PogoRounds::revealAttestationCall {
        task,
        lossOld: LOSS_OLD,
        verdicts: vec![1],
        lossNew: vec![1_500_000_000],
        salt,
    };
    let theirs = world.sealed[0].salt;
    assert_eq!(refused(world.send("revealAttestation", v[7], call(theirs), 0)), "NotAttested");
    assert_eq!(refused(world.send("revealAttestation", v[0], call(B256::ZERO), 0)), "WrongReveal");
    world.reveal_attestation(v[0]).unwrap();
    assert_eq!(refused(world.send("revealAttestation", v[0], call(theirs), 0)), "AlreadyAttested");
    let end = world.round().challengeEnd;
    world.evm.mine(end + 1 - world.evm.block_number());
    world.attest_sealed(v[7], LOSS_OLD, vec![1], vec![1]).unwrap_err();
    assert_eq!(refused(world.send("revealAttestation", v[0], call(theirs), 0)), "TooLate");
}

#[test]
fn finalize_too_early_and_twice_is_refused() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 2, |_| {});
    world.commit().unwrap();
    assert_eq!(refused(world.finalize()), "TooEarly");
    world.reveal_all();
    world.draw();
    let proof = world.honest_proof();
    world.submit(proof).unwrap();
    world.attest(world.verifiers[0], true).unwrap();
    world.attest(world.verifiers[1], true).unwrap();
    // Proven, so finalize waits for the full attestation window (the attestations came
    // after the proof and held-out windows).
    assert!(world.evm.block_number() > world.round().proofEnd);
    assert_eq!(refused(world.finalize()), "TooEarly");
    world.close_window();
    world.finalize().unwrap();
    assert_eq!(refused(world.finalize()), "NoOpenRound");
    assert_eq!(refused(world.claim(world.verifiers[0], 1)), "NothingToClaim", "no such round");
}

#[test]
fn commit_rules() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 1, |p| p.maxCandidates = 2);
    let task = world.task;
    let miner = world.miner;
    let commit = PogoRounds::commitCall { task, round: 0, commitment: B256::repeat_byte(1) };
    assert_eq!(refused(world.send("commit", miner, commit.clone(), BOND - 1)), "WrongBond");
    let elsewhere = PogoRounds::commitCall { task, round: 1, commitment: B256::repeat_byte(1) };
    assert_eq!(refused(world.send("commit", miner, elsewhere, BOND)), "WrongRound", "bound to the round it goes to");
    let modulus = world.rounds.read(&mut world.evm, PogoRounds::FIELD_MODULUSCall {}).unwrap();
    assert_eq!(modulus, fr_to_u256(&-Fr::one()) + U256::from(1), "the contract's modulus is BN254's r");
    world.commit_as(miner, modulus, U256::from(1)).unwrap();
    world.send("commit", miner, commit.clone(), BOND).unwrap();
    assert_eq!(refused(world.send("commit", miner, commit.clone(), BOND)), "RoundFull");
    world.mine_to_reveal();
    assert_eq!(refused(world.reveal(0)), "NotFieldElement");
    assert_eq!(refused(world.send("commit", world.miners[1], commit, BOND)), "TooLate", "the commit window closed");
}

#[test]
fn task_registration_checks_its_parameters() {
    let fx = Fixture::small();
    let mut world = World::new(fx, 0, |_| {});
    let owner = world.owner;
    let base = world.task_state().params;
    let mut cases: Vec<(pogo_verifier::rounds::TaskParams, &str)> = Vec::new();
    let mut p = base.clone();
    p.verifier = actor(0x99); // no code there
    cases.push((p, "verifier has no code"));
    let mut p = base.clone();
    p.nb = 3; // 2^D = 2
    cases.push((p, "nb must be in 1..=2^depth"));
    let mut p = base.clone();
    p.attestWindow = p.proofWindow;
    cases.push((p, "need 2 < proofWindow < attestWindow - 1 (room for the held-out reveal)"));
    let mut p = base.clone();
    p.attestWindow = p.proofWindow + 1;
    cases.push((p, "need 2 < proofWindow < attestWindow - 1 (room for the held-out reveal)"));
    let mut p = base.clone();
    p.proofWindow = 2;
    cases.push((p, "need 2 < proofWindow < attestWindow - 1 (room for the held-out reveal)"));
    let mut p = base.clone();
    p.attestWindow = 8192;
    cases.push((p, "commit and reveal windows, and attestWindow + challengeWindow, must be at most 8191 blocks (256 without EIP-2935)"));
    let mut p = base.clone();
    p.challengeWindow = 8191 - p.attestWindow + 1;
    cases.push((p, "commit and reveal windows, and attestWindow + challengeWindow, must be at most 8191 blocks (256 without EIP-2935)"));
    let mut p = base.clone();
    p.challengeWindow = 0;
    cases.push((p, "commit, reveal and challenge windows must be positive"));
    let mut p = base.clone();
    p.commitWindow = 0;
    cases.push((p, "commit, reveal and challenge windows must be positive"));
    let mut p = base.clone();
    p.revealWindow = 9000;
    cases.push((p, "commit and reveal windows, and attestWindow + challengeWindow, must be at most 8191 blocks (256 without EIP-2935)"));
    let mut p = base.clone();
    p.maxCandidates = 17;
    cases.push((p, "maxCandidates must be in 1..=16"));
    let mut p = base.clone();
    p.verifierFeeBps = 10_001;
    cases.push((p, "verifierFeeBps must be at most 10000, fraudSlashBps in 1..=10000"));
    let mut p = base.clone();
    p.fraudSlashBps = 10_001;
    cases.push((p, "verifierFeeBps must be at most 10000, fraudSlashBps in 1..=10000"));
    let mut p = base.clone();
    p.fraudSlashBps = 0;
    cases.push((p, "verifierFeeBps must be at most 10000, fraudSlashBps in 1..=10000"));
    let mut p = base.clone();
    p.quorum = 0;
    cases.push((p, "quorum must be positive"));
    for (params, why) in cases {
        let err = world.send("createTask", owner, PogoRounds::createTaskCall { p: params }, 0).unwrap_err();
        assert_eq!(err.to_string(), format!("the round contract refused: BadParams({why})"));
    }
}

/// Runs one round with `positive` and `negative` attestations (equal stakes) and a quorum
/// of `quorum` stakes; whether the candidate won.
fn outcome_of(positive: usize, negative: usize, quorum: u128) -> bool {
    let fx = Fixture::small();
    let mut world = World::new(fx, positive + negative, |p| p.quorum = quorum * STAKE);
    world.commit_and_prove();
    let verifiers = world.verifiers.clone();
    for (k, v) in verifiers.into_iter().enumerate() {
        world.attest(v, k < positive).unwrap();
    }
    world.close_window();
    world.finalize().unwrap();
    let accepted = world.task_state().root == fr_to_u256(&fx.chain.root(1, fx.depth));
    assert_eq!(world.round_at(0).winner == 1, accepted);
    accepted
}

#[test]
fn two_thirds_threshold_one_vote_either_side() {
    assert!(outcome_of(2, 1, 1), "exactly 2/3 positive accepts");
    assert!(!outcome_of(2, 2, 1), "one more negative vote (1/2) rejects");
    assert!(outcome_of(3, 1, 1), "one more positive vote (3/4) accepts");
}

#[test]
fn quorum_one_vote_either_side() {
    assert!(!outcome_of(2, 0, 3), "one attestation short of quorum rejects");
    assert!(outcome_of(3, 0, 3), "exactly the quorum accepts");
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
    world.reveal_all();
    world.draw();
    let round = world.round();
    assert_eq!(world.evm.block_hash(round.revealEnd + 2).unwrap(), round.seed2, "phase 2 is a block hash");
    assert_eq!(world.evm.block_hash(round.revealEnd + 1).unwrap(), round.seed1, "phase 1 is the block before");
    let native = sample_indices(&round.seed2.0, 32, 892_858);
    assert_eq!(world.indices(), native);
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
    /// Per miner: commits (0: no, 1: its real update, 2: junk roots).
    commits: [u8; 2],
    /// Per miner: reveals if it committed.
    reveals: [bool; 2],
    draw: bool,
    /// Per miner: 0 no proof, 1 honest, 2 garbage.
    proofs: [u8; 2],
    late: bool,
    /// Per verifier: 0 none, 1 positive on all, 2 negative on all.
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
        (0..6usize).prop_map(Extra::Withdraw),
        (1..30u8).prop_map(Extra::Mine),
    ]
}

fn plan() -> impl Strategy<Value = RoundPlan> {
    (
        [0..3u8, 0..3u8],
        [proptest::bool::weighted(0.9), proptest::bool::weighted(0.9)],
        proptest::bool::weighted(0.9),
        [0..3u8, 0..3u8],
        proptest::bool::weighted(0.15),
        [0..3u8, 0..3u8, 0..3u8],
        proptest::bool::weighted(0.2),
        proptest::collection::vec(extra(), 0..6),
    )
        .prop_map(|(commits, reveals, draw, proofs, late, votes, early_finalize, extras)| RoundPlan {
            commits,
            reveals,
            draw,
            proofs,
            late,
            votes,
            early_finalize,
            extras,
        })
}

fn everyone(world: &World) -> Vec<Address> {
    [world.owner].into_iter().chain(world.miners.iter().copied().take(2)).chain(world.verifiers.clone()).collect()
}

/// What the contract owes: pool, open bonds, unclaimed slashes and fees, stakes, balances.
fn owed(world: &mut World) -> U256 {
    let state = world.task_state();
    let task = world.task;
    let mut total = state.pool;
    for r in 0..state.roundCount {
        let round = world.round_at(r);
        total += U256::from(round.feeLeft);
        for i in 0..round.commits {
            let c = world.candidate(r, i);
            if !round.finalized {
                total += U256::from(c.bond);
            }
            total += U256::from(c.slashLeft);
        }
    }
    for who in everyone(world) {
        total += world
            .rounds
            .read(&mut world.evm, <PogoRounds::stakeOfCall as alloy_sol_types::SolCall>::new((task, who)))
            .unwrap();
        total += world.balance_of(who);
    }
    total
}

/// Runs `call`, then checks the books and the acceptance rule: no candidate wins without a
/// reveal, a valid proof, attesting stake of at least the quorum and 2/3 of it positive, or
/// for an unchanged model; at most one winner per round, and it is the round's `winner`.
fn checked<T>(world: &mut World, result: Result<T, RoundsError>) -> Result<(), TestCaseError> {
    let _ = result;
    let contract = world.rounds.address;
    let held = world.evm.balance(contract);
    prop_assert_eq!(held, owed(world));
    let state = world.task_state();
    for id in 0..state.roundCount {
        let r = world.round_at(id);
        let mut winners = 0;
        for i in 0..r.commits {
            let c = world.candidate(id, i);
            if c.outcome == outcome::WON {
                winners += 1;
                prop_assert_eq!(r.winner, i + 1);
                prop_assert!(c.revealed && c.proven && r.finalized && c.newRoot != r.oldRoot);
                prop_assert!(r.attestingStake >= state.params.quorum);
                prop_assert!(3 * c.positiveStake >= 2 * r.attestingStake);
            }
            if c.outcome == outcome::RETURNED {
                prop_assert!(c.revealed && c.proven, "a missing reveal or proof is the miner's fault");
            }
            if c.slashLeft > 0 || c.slashStakeLeft > 0 {
                prop_assert!(c.proven && c.outcome == outcome::SLASHED, "only a rejected proven bond pays attesters");
            }
            prop_assert_eq!(c.outcome == outcome::PENDING, !r.finalized);
        }
        prop_assert!(winners <= 1);
        prop_assert_eq!(winners == 1, r.winner != 0);
    }
    Ok(())
}

fn run_extra(world: &mut World, extra: &Extra) -> Result<(), RoundsError> {
    let task = world.task;
    let everyone = everyone(world);
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
                let _ = world.claim(verifier, round);
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

/// Miner `m`'s real update for the current root: the chain's next update (miner 0) or a
/// rival of the genesis model (miner 1); `None` when there is none.
fn real_update(world: &mut World, m: usize) -> Option<(U256, U256, usize)> {
    let position = world.position_of()?;
    match m {
        0 if position + 1 < world.fx.chain.models.len() => {
            let (a, b) = world.fx.roots(position);
            Some((a, b, position))
        }
        1 if position == 0 => {
            let (a, b) = world.fx.rival_roots(0);
            Some((a, b, usize::MAX))
        }
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn contract_ether_equals_what_it_owes(plans in proptest::collection::vec(plan(), 1..5)) {
        let fx = Fixture::small();
        let mut world = World::new(fx, 3, |p| p.quorum = STAKE);
        for plan in plans {
            let extras = plan.extras.split_at(plan.extras.len() / 2);
            for e in extras.0 {
                let r = run_extra(&mut world, e);
                checked(&mut world, r)?;
            }
            // Commits: which entry belongs to which miner, and what it would prove.
            let mut mine: Vec<(usize, Option<usize>)> = Vec::new();
            for m in 0..2 {
                let miner = world.miners[m];
                let real = real_update(&mut world, m);
                let r = match (plan.commits[m], real) {
                    (1, Some((new_root, update_root, position))) => {
                        world.commit_as(miner, new_root, update_root).map(|_| mine.push((m, Some(position))))
                    }
                    (1 | 2, _) => world.commit_as(miner, U256::from(5 + m), U256::from(7 + m)).map(|_| mine.push((m, None))),
                    _ => Ok(()),
                };
                checked(&mut world, r)?;
            }
            if world.task_state().open {
                world.mine_to_reveal();
            }
            for (k, (m, _)) in mine.clone().into_iter().enumerate() {
                if plan.reveals[m] {
                    let r = world.reveal(k);
                    checked(&mut world, r)?;
                }
            }
            if plan.draw && world.task_state().open {
                world.mine_to_randomness();
                let r = world.send("draw", world.owner, PogoRounds::drawRandomnessCall { task: world.task }, 0);
                checked(&mut world, r)?;
            }
            if plan.late {
                world.evm.mine(PROOF_WINDOW + 1);
            }
            let mut honest_proven = Vec::new();
            for (k, (m, position)) in mine.clone().into_iter().enumerate() {
                let r = match (plan.proofs[m], position) {
                    (1, Some(p)) if plan.draw && world.round().seed2 != B256::ZERO => {
                        let indices = sample_indices(&world.round().seed2.0, fx.samples, fx.blocks);
                        let proof = if p == usize::MAX {
                            fx.rival_proof(0, &indices)
                        } else {
                            fx.proof(p, &indices)
                        };
                        let r = world.submit_for(k, proof);
                        if r.is_ok() {
                            honest_proven.push(world.entries[k].index);
                        }
                        r
                    }
                    (2, _) => world.submit_for(k, vec![1; 32 * 20]),
                    _ => Ok(()),
                };
                checked(&mut world, r)?;
            }
            for (k, vote) in plan.votes.iter().enumerate() {
                if *vote > 0 {
                    let r = world.attest(world.verifiers[k], *vote == 1);
                    checked(&mut world, r)?;
                }
            }
            for e in extras.1 {
                let r = run_extra(&mut world, e);
                checked(&mut world, r)?;
            }
            if !plan.early_finalize && world.task_state().open {
                world.close_window();
            }
            let round = world.task_state().roundCount.saturating_sub(1);
            let r = world.finalize();
            let finalized = r.is_ok();
            checked(&mut world, r)?;
            // No honest miner slashed while every vote cast was positive: a proven candidate
            // is then either judged positive or not judged at all.
            if finalized && plan.votes.iter().all(|v| *v != 2) {
                for index in honest_proven {
                    prop_assert_ne!(world.candidate(round, index).outcome, outcome::SLASHED);
                }
            }
            for v in 0..3 {
                let r = run_extra(&mut world, &Extra::Claim(v));
                checked(&mut world, r)?;
            }
        }
        // Close what is still open, pay everyone out.
        if world.task_state().open {
            world.close_window();
            let r = world.finalize();
            checked(&mut world, r)?;
            for v in 0..3 {
                let r = run_extra(&mut world, &Extra::Claim(v));
                checked(&mut world, r)?;
            }
        }
        for w in 0..everyone(&world).len() {
            let r = run_extra(&mut world, &Extra::Withdraw(w));
            checked(&mut world, r)?;
        }
        for who in everyone(&world) {
            prop_assert_eq!(world.balance_of(who), U256::ZERO, "everything owed was withdrawable");
        }
    }
}
