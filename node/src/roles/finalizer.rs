//! The finalizer: closes rounds once their window is over (anyone may; miners and
//! verifiers do it for their own rounds too).

use std::time::Instant;

use alloy::primitives::U256;
use pogo_verifier::rounds::{PogoRounds, Round};

use super::{since, Event, Node, Phase, Step};
use crate::keystore::Wallet;

/// The block after which `r` can be finalized.
pub fn finalizable_after(node: &Node, r: &Round) -> u64 {
    if r.proven {
        r.commitBlock + node.params.attestWindow
    } else {
        r.commitBlock + node.params.proofWindow
    }
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
    let after = finalizable_after(node, r);
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
            let what = if done.accepted {
                format!("finalized round {round}: accepted ({} attestations)", done.attestations)
            } else if done.refunded {
                format!(
                    "finalized round {round}: proven but short of the quorum ({} attestations): bond returned",
                    done.attestations
                )
            } else {
                format!(
                    "finalized round {round}: rejected, bond slashed (proven: {}, {} attestations)",
                    done.proven, done.attestations
                )
            };
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
        Err(e) if matches!(e.contract_error().as_deref(), Some("NoOpenRound" | "AlreadyFinalized")) => {
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
        let task = node.rounds.task(node.chain.as_mut(), node.task)?;
        if !task.open {
            return Ok(Step::Wait { until: None, why: "no open round".into() });
        }
        let round = task.rounds - 1;
        let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
        let now = node.chain.block_number()?;
        finalize_open_round(node, &self.wallet, &format!("finalizer {}", self.wallet.name()), round, &r, now)
    }
}
