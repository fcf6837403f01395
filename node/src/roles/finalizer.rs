//! The finalizer: closes rounds once their window is over (anyone may; miners and
//! verifiers do it for their own rounds too).

use std::time::Instant;

use alloy::primitives::U256;
use pogo_verifier::rounds::{outcome, PogoRounds, Round};

use super::{open_round, since, Event, Node, Phase, Step};
use crate::keystore::Wallet;

/// The block after which `r` can be finalized: its reveal deadline if nothing was
/// revealed, its proof deadline if nothing is proven yet, else the end of its challenge
/// window (which follows the attestations).
pub fn finalizable_after(r: &Round) -> u64 {
    if r.revealed == 0 {
        r.revealEnd
    } else if r.proven == 0 {
        r.proofEnd
    } else {
        r.challengeEnd
    }
}

/// What became of each candidate of a finalized round, for people.
pub fn settlement(node: &mut Node, round: u64, r: &Round) -> anyhow::Result<String> {
    let candidates = node.rounds.candidates(node.chain.as_mut(), node.task, r, round)?;
    let mut parts = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let what = match c.outcome {
            outcome::WON => format!("won (median gain {:.6})", super::gain(c.gain)),
            outcome::RETURNED if r.winner != 0 => {
                format!("beaten (median gain {:.6}), bond returned", super::gain(c.gain))
            }
            outcome::RETURNED => "not judged (no quorum, or the verifiers split), bond returned".into(),
            _ if c.fraud => "proven fraudulent (a fraud proof), slashed".into(),
            _ if !c.revealed => "never revealed, slashed".into(),
            _ if !c.proven => "not proven in time, slashed".into(),
            _ => "rejected by the verifiers, slashed".into(),
        };
        parts.push(format!("#{i} {what}"));
    }
    Ok(parts.join("; "))
}

/// Finalizes the open round `round` if its time has come, else says when it will.
pub fn finalize_open_round(
    node: &mut Node,
    wallet: &Wallet,
    role: &str,
    round: u64,
    r: &Round,
    now: u64,
) -> anyhow::Result<Step> {
    let after = finalizable_after(r);
    if now <= after {
        return Ok(Step::Wait {
            until: Some(after),
            why: format!("round {round} can be finalized after block {after}"),
        });
    }
    let start = Instant::now();
    match node.rounds.send(node.chain.as_mut(), wallet, PogoRounds::finalizeCall { task: node.task }, U256::ZERO) {
        Ok(receipt) => {
            let done = node.rounds.round(node.chain.as_mut(), node.task, round)?;
            let head = if done.winner != 0 {
                format!("finalized round {round}: candidate {} won", done.winner - 1)
            } else {
                format!("finalized round {round}: no winner")
            };
            let what = format!("{head} ({} candidates: {})", done.commits, settlement(node, round, &done)?);
            Ok(Step::Acted(Event {
                role: role.into(),
                round,
                phase: Phase::Finalize,
                what,
                seconds: since(start),
                gas: receipt.gas_used,
            }))
        }
        // Someone else finalized it between our read and our transaction.
        Err(e) if matches!(e.contract_error().as_deref(), Some("NoOpenRound")) => {
            Ok(Step::Wait { until: None, why: "finalized by another node".into() })
        }
        Err(e) => Err(e.into()),
    }
}

/// A finalizer.
pub struct Finalizer {
    wallet: Wallet,
}

impl Finalizer {
    /// A finalizer sending from `wallet`.
    pub fn new(wallet: Wallet) -> Self {
        Finalizer { wallet }
    }

    /// One action (or the reason to wait).
    pub fn step(&mut self, node: &mut Node) -> anyhow::Result<Step> {
        let Some((round, r)) = open_round(node)? else {
            return Ok(Step::Wait { until: None, why: "no open round".into() });
        };
        let now = node.chain.block_number()?;
        finalize_open_round(node, &self.wallet, &format!("finalizer {}", self.wallet.name()), round, &r, now)
    }
}
