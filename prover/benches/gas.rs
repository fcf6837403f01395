//! `cargo bench -p pogo-prover --bench gas`: EVM gas of the generated verifier and of each
//! round-contract call (deploy, createTask, join, commit, reveal, drawRandomness,
//! revealEvalData, submitProof, attest and revealAttestation, finalize, withdraw) for each configuration in `POGO_GAS_CONFIGS`
//! (default `3:2,10:8,20:32`, as `D:S`), under Prague (the direct verifier call under Osaka too, with the inverse hints miners send and without), with real proofs; the verifier's code
//! size against EIP-170; Groth16's ~207,000 + 7,160 per public input for comparison. Then
//! gas per competing round (every candidate commits, reveals and proves; the owner reveals
//! the held-out batch; every verifier attests once for all; one finalize; every claim) for 1, 4 and 16 candidates with 3 and
//! 30 verifiers (`POGO_GAS_ROUNDS`, default `1:3,4:3,16:3,1:30,4:30,16:30`) at D = 3, S = 2.
//! Then the same on a committee task against the number of registered verifiers
//! (`POGO_GAS_COMMITTEE`, default `64:16:10,64:16:100,64:16:1000`, as
//! seats:candidates:registered). An empty list skips its table.

#[path = "../tests/support/mod.rs"]
mod support;

use pogo_verifier::evm::{calldata, proof_with_hints, Address, Evm, Fork, CODE_SIZE_LIMIT, U256};
use pogo_verifier::rounds::PogoRounds;
use support::{positive_vote, Fixture, World};

fn configs() -> Vec<(u32, usize)> {
    let text = std::env::var("POGO_GAS_CONFIGS").unwrap_or_else(|_| "3:2,10:8,20:32".into());
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (d, s) = pair.split_once(':').expect("D:S");
            (d.trim().parse().expect("D"), s.trim().parse().expect("S"))
        })
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("| D | S | public inputs | verifier code bytes (EIP-170: {CODE_SIZE_LIMIT}) | deploy verifier | deploy rounds | createTask | join | commit | reveal | drawRandomness | revealEvalData (128 × 65 B) | verify (direct call) | verify under Osaka | without hints (Prague / Osaka) | submitProof | attest (sealed) | revealAttestation | finalize | withdraw | Groth16 estimate |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (depth, samples) in configs() {
        let blocks = 1000u64.min(1 << depth);
        let fx: &'static Fixture = Box::leak(Box::new(Fixture::new(depth, samples, blocks, 1)));
        let mut world = World::new(fx, 3, |p| p.verifierGas = 3_000_000);
        let verifier_bytes = world.evm.code_size(world.verifier);
        world.honest_round(3);
        let miner = world.miner;
        world.send("withdraw", miner, PogoRounds::withdrawCall {}, 0).unwrap();

        // The verifier alone, called directly with the round's public inputs and proof.
        let round = world.round_at(0);
        let indices = pogo_circuits::sampling::sample_indices(&round.seed2.0, samples, blocks);
        let proof = fx.proof(0, &indices);
        let mut instances = vec![
            fx.chain.root(0, depth),
            fx.chain.root(1, depth),
            fx.chain.updates[0].reference_tree(depth).unwrap().root(),
            pogo_circuits::field::Fr::from(blocks),
        ];
        instances.extend(indices.iter().map(|&i| pogo_circuits::field::Fr::from(i)));
        // With the inverse hints a miner sends, under Prague and Osaka; and without them.
        let runtime = world.evm.code(world.verifier);
        let hinted = calldata(&instances, &proof_with_hints(&runtime, &instances, &proof).unwrap());
        let plain = calldata(&instances, &proof);
        let direct = |fork: Fork, data: &Vec<u8>| {
            let (mut evm, at) = Evm::with_contract(fork, &fx.verifier_code).unwrap();
            evm.call(Address::repeat_byte(0x01), at, data.clone(), U256::ZERO).unwrap().gas_used
        };
        let (direct_prague, direct_osaka) = (direct(Fork::Prague, &hinted), direct(Fork::Osaka, &hinted));
        let (plain_prague, plain_osaka) = (direct(Fork::Prague, &plain), direct(Fork::Osaka, &plain));

        let gas = |label: &str| -> String {
            let v: Vec<u64> = world.gas.iter().filter(|(l, _)| l == label).map(|(_, g)| *g).collect();
            match v.as_slice() {
                [] => "–".into(),
                [one] => one.to_string(),
                many if many.iter().all(|g| *g == many[0]) => many[0].to_string(),
                many => format!("{}–{}", many.iter().min().unwrap(), many.iter().max().unwrap()),
            }
        };
        let inputs = 4 + samples;
        println!(
            "| {depth} | {samples} | {inputs} | {verifier_bytes}{} | {} | {} | {} | {} | {} | {} | {} | {} | {direct_prague} | {direct_osaka} | {plain_prague} / {plain_osaka} | {} | {} | {} | {} | {} | {} |",
            if verifier_bytes > CODE_SIZE_LIMIT { " (over)" } else { "" },
            gas("deploy verifier"),
            gas("deploy rounds"),
            gas("createTask"),
            gas("join"),
            gas("commit"),
            gas("reveal"),
            gas("drawRandomness"),
            gas("revealEvalData"),
            gas("submitProof"),
            gas("attest"),
            gas("revealAttestation"),
            gas("finalize"),
            gas("withdraw"),
            207_000 + 7_160 * inputs,
        );
    }
    competing_rounds();
    committee_rounds();
}

/// Gas of whole competing rounds on a committee task against the number of registered
/// verifiers (`POGO_GAS_COMMITTEE`, default `64:16:10,64:16:100,64:16:1000` as
/// seats:candidates:registered): only the round's seat holders attest, so the round's gas
/// should stop growing once the registered set is larger than the committee.
fn committee_rounds() {
    let text = std::env::var("POGO_GAS_COMMITTEE").unwrap_or_else(|_| "64:16:10,64:16:100,64:16:1000".into());
    let fx: &'static Fixture = Box::leak(Box::new(Fixture::new(3, 2, 8, 1)));
    println!();
    println!("| seats C | candidates | registered verifiers | members (seats) | commits | reveals | proofs | held-out reveal | attests (sealed) | attestation reveals | finalize | claims | round total | round total without proofs |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for triple in text.split(',').filter(|t| !t.trim().is_empty()) {
        let parts: Vec<usize> =
            triple.split(':').map(|x| x.trim().parse().expect("seats:candidates:registered")).collect();
        let [seats, c, n] = parts[..] else { panic!("seats:candidates:registered, not {triple}") };
        let mut world = World::with_miners(fx, 0, c, |p| {
            p.maxCandidates = 16;
            p.committee = seats as u16;
            p.quorum = seats.div_ceil(2) as u128;
        });
        world.register_verifiers(n);
        world.gas.clear();
        world.compete(c);
        let round = world.task_state().roundCount - 1;
        let mut members = Vec::new();
        let mut won = 0;
        for v in world.verifiers.clone() {
            let s = world.seats(round, v).unwrap();
            if !s.is_empty() {
                won += s.len();
                members.push(v);
            }
        }
        for (j, verifier) in members.iter().enumerate() {
            world.attest_with(*verifier, |k| positive_vote(1_900_000_000 - 10_000_000 * k as u64 - j as u64)).unwrap();
        }
        world.close_window();
        world.finalize().unwrap();
        for verifier in &members {
            world.claim(*verifier, round).unwrap();
        }
        assert_eq!(world.round_at(round).winner as usize, c, "the largest gain wins");
        let sum = |label: &str| world.gas.iter().filter(|(l, _)| l == label).map(|(_, g)| *g).sum::<u64>();
        let total: u64 = world.gas.iter().map(|(_, g)| *g).sum();
        println!(
            "| {seats} | {c} | {n} | {} ({won}) | {} | {} | {} | {} | {} | {} | {} | {} | {total} | {} |",
            members.len(),
            sum("commit"),
            sum("reveal"),
            sum("submitProof"),
            sum("revealEvalData"),
            sum("attest"),
            sum("revealAttestation"),
            sum("finalize"),
            sum("claim"),
            total - sum("submitProof"),
        );
    }
}

/// Gas of whole competing rounds, by kind of call and in total.
fn competing_rounds() {
    let text = std::env::var("POGO_GAS_ROUNDS").unwrap_or_else(|_| "1:3,4:3,16:3,1:30,4:30,16:30".into());
    let fx: &'static Fixture = Box::leak(Box::new(Fixture::new(3, 2, 8, 1)));
    println!();
    println!("| candidates | verifiers | commits | reveals | proofs (submitProof) | draw | held-out reveal | attests (sealed) | attestation reveals | reveal (each) | finalize | claims | round total | per candidate |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (c, v) = pair.split_once(':').expect("candidates:verifiers");
        let (c, v): (usize, usize) = (c.trim().parse().expect("candidates"), v.trim().parse().expect("verifiers"));
        let mut world = World::with_miners(fx, v, c, |p| {
            p.maxCandidates = 16;
            p.quorum = 2 * support::STAKE;
        });
        world.gas.clear();
        world.compete(c);
        for (j, verifier) in world.verifiers.clone().into_iter().enumerate() {
            world.attest_with(verifier, |k| positive_vote(1_900_000_000 - 10_000_000 * k as u64 - j as u64)).unwrap();
        }
        world.close_window();
        world.finalize().unwrap();
        for verifier in world.verifiers.clone() {
            world.claim(verifier, 0).unwrap();
        }
        assert_eq!(world.round_at(0).winner as usize, c, "the largest gain wins");
        let sum = |label: &str| world.gas.iter().filter(|(l, _)| l == label).map(|(_, g)| *g).sum::<u64>();
        let attests: Vec<u64> = world.gas.iter().filter(|(l, _)| l == "revealAttestation").map(|(_, g)| *g).collect();
        let total: u64 = world.gas.iter().map(|(_, g)| *g).sum();
        println!(
            "| {c} | {v} | {} | {} | {} | {} | {} | {} | {} | {}–{} | {} | {} | {total} | {} |",
            sum("commit"),
            sum("reveal"),
            sum("submitProof"),
            sum("drawRandomness"),
            sum("revealEvalData"),
            sum("attest"),
            sum("revealAttestation"),
            attests.iter().min().unwrap(),
            attests.iter().max().unwrap(),
            sum("finalize"),
            sum("claim"),
            total / c as u64,
        );
    }
}
