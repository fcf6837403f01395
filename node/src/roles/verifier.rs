//! The verifier: stakes once, then for each open round fetches the update blob, rebuilds
//! the new model from the old one, checks both roots, evaluates old and new model on the
//! phase-1 batch and attests; claims its share of slashed bonds and withdraws.

use std::path::{Path, PathBuf};
use std::time::Instant;

use alloy::primitives::U256;
use anyhow::Context;
use pogo_verifier::rounds::{verdict, PogoRounds};
use serde::{Deserialize, Serialize};

use super::{crash_point, load_state, loss_units, save_state, since, Event, Node, Phase, Step};
use crate::contract::seed;
use crate::keystore::Wallet;

/// What a verifier persists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifierState {
    /// Rounds attested: (round, verdict, loss old, loss new) — a record for reports; the
    /// chain is what prevents a second attestation.
    pub attested: Vec<(u64, u8, u64, u64)>,
    /// Rounds whose slash share was claimed (or found nothing to claim).
    pub claimed: Vec<u64>,
}

/// A verifier.
pub struct Verifier {
    wallet: Wallet,
    path: PathBuf,
    stake: U256,
    /// Its persisted state.
    pub state: VerifierState,
}

impl Verifier {
    /// A verifier staking `stake` wei, keeping its state in `dir`.
    pub fn new(wallet: Wallet, dir: &Path, stake: U256) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("verifier.json");
        let state = load_state(&path)?;
        Ok(Verifier { wallet, path, stake, state })
    }

    fn name(&self) -> String {
        format!("verifier {}", self.wallet.name())
    }

    fn acted(&self, round: u64, phase: Phase, what: String, start: Instant, gas: u64) -> Step {
        Step::Acted(Event { role: self.name(), round, phase, what, seconds: since(start), gas })
    }

    /// One action (or the reason to wait).
    pub fn step(&mut self, node: &mut Node) -> anyhow::Result<Step> {
        let me = self.wallet.address();
        let start = Instant::now();
        if node.rounds.stake(node.chain.as_mut(), node.task, me)?.is_zero() {
            let stake = self.stake.max(U256::from(node.params.minVerifierStake));
            let receipt =
                node.rounds.send(node.chain.as_mut(), &self.wallet, PogoRounds::joinCall { task: node.task }, stake)?;
            return Ok(self.acted(0, Phase::Payout, format!("staked {stake} wei"), start, receipt.gas_used));
        }
        let task = node.rounds.task(node.chain.as_mut(), node.task)?;
        if let Some(step) = self.payout(node, task.rounds, task.open)? {
            return Ok(step);
        }
        if !task.open {
            return Ok(Step::Wait { until: None, why: "no open round".into() });
        }
        let round = task.rounds - 1;
        let r = node.rounds.round(node.chain.as_mut(), node.task, round)?;
        let now = node.chain.block_number()?;
        let end = r.commitBlock + node.params.attestWindow;
        if r.miner == me || node.rounds.verdict(node.chain.as_mut(), node.task, round, me)? != 0 || now > end {
            return Ok(Step::Wait { until: None, why: format!("nothing to attest in round {round}") });
        }
        let Some(seed1) = seed(r.seed1) else {
            return super::draw(node, &self.wallet, &self.name(), round, &r, now)
                .map(|s| s.unwrap_or(Step::Wait { until: None, why: "phase-1 randomness".into() }));
        };
        // Rebuild: fetch, check the update root, apply, check the new root.
        let old = node.model_at(r.oldRoot)?;
        let rebuilt = node.rebuild(&old, r.blobHash, r.updateRoot, r.newRoot);
        let rebuild_seconds = since(start);
        let eval_start = Instant::now();
        let loss_old = loss_units(node.trainer.eval_batch(&old, seed1)?);
        let (verdict, loss_new, why) = match &rebuilt {
            Ok(new) => {
                let loss_new = loss_units(node.trainer.eval_batch(new, seed1)?);
                if loss_new + node.params.margin <= loss_old {
                    (verdict::POSITIVE, loss_new, "loss fell".to_string())
                } else {
                    (verdict::NEGATIVE, loss_new, "loss did not fall by the margin".to_string())
                }
            }
            Err(e) => (verdict::NEGATIVE, loss_old, format!("{e:#}")),
        };
        let call = PogoRounds::attestCall { task: node.task, verdict, lossOld: loss_old, lossNew: loss_new };
        let receipt = match node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::ZERO) {
            Ok(receipt) => receipt,
            Err(e) if matches!(e.contract_error().as_deref(), Some("AlreadyAttested" | "TooLate" | "NoOpenRound")) => {
                return Ok(Step::Wait { until: None, why: format!("attestation not needed: {e}") });
            }
            Err(e) => return Err(e.into()),
        };
        crash_point("verifier-after-attest");
        self.state.attested.push((round, verdict, loss_old, loss_new));
        save_state(&self.path, &self.state)?;
        let word = if verdict == verdict::POSITIVE { "positive" } else { "negative" };
        let what = format!(
            "attested {word} ({why}): loss {:.6} -> {:.6} on the phase-1 batch; rebuild {rebuild_seconds:.2} s",
            loss_old as f64 / 1e9,
            loss_new as f64 / 1e9
        );
        let mut step = self.acted(round, Phase::Evaluate, what, eval_start, receipt.gas_used);
        if let Step::Acted(e) = &mut step {
            e.seconds += rebuild_seconds;
        }
        Ok(step)
    }

    /// Claims slash shares of finished rounds it attested negative in, then withdraws.
    fn payout(&mut self, node: &mut Node, rounds: u64, open: bool) -> anyhow::Result<Option<Step>> {
        let finished = if open { rounds.saturating_sub(1) } else { rounds };
        let pending: Vec<u64> = self
            .state
            .attested
            .iter()
            .filter(|(r, v, _, _)| *v == verdict::NEGATIVE && *r < finished && !self.state.claimed.contains(r))
            .map(|(r, ..)| *r)
            .collect();
        let start = Instant::now();
        for round in pending {
            let call = PogoRounds::claimSlashCall { task: node.task, round };
            let result = node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::ZERO);
            // Recorded only once the chain answered: a failed send (chain down) is retried.
            if result.is_ok()
                || result.as_ref().err().and_then(|e| e.contract_error()).as_deref() == Some("NothingToClaim")
            {
                self.state.claimed.push(round);
                save_state(&self.path, &self.state)?;
            }
            match result {
                Ok(receipt) => {
                    return Ok(Some(self.acted(
                        round,
                        Phase::Payout,
                        "claimed a share of the slashed bond".into(),
                        start,
                        receipt.gas_used,
                    )))
                }
                Err(e) if e.contract_error().as_deref() == Some("NothingToClaim") => {}
                Err(e) => return Err(e.into()),
            }
        }
        let owed = node.rounds.owed(node.chain.as_mut(), self.wallet.address())?;
        if !owed.is_zero() {
            let receipt =
                node.rounds.send(node.chain.as_mut(), &self.wallet, PogoRounds::withdrawCall {}, U256::ZERO)?;
            return Ok(Some(self.acted(
                finished.saturating_sub(1),
                Phase::Payout,
                format!("withdrew {owed} wei"),
                start,
                receipt.gas_used,
            )));
        }
        Ok(None)
    }
}
