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

/// The verdict on a rebuilt round from the losses of the old and new model on the phase-1
/// batch: positive only when both are finite and the new one is lower by at least `margin`
/// units. A NaN or infinite loss is the worst loss there is (`u64::MAX` units), never a
/// perfect score. Returns the verdict, both losses in units and why.
pub fn judge(loss_old: f32, loss_new: f32, margin: u64) -> (u8, u64, u64, String) {
    let (old, new) = (loss_units(loss_old), loss_units(loss_new));
    if !loss_new.is_finite() {
        (verdict::NEGATIVE, old, new, format!("the new model's loss is {loss_new}"))
    } else if !loss_old.is_finite() {
        (verdict::NEGATIVE, old, new, format!("the old model's loss is {loss_old}: no gain can be measured"))
    } else if u128::from(new) + u128::from(margin) <= u128::from(old) {
        (verdict::POSITIVE, old, new, "loss fell".into())
    } else {
        (verdict::NEGATIVE, old, new, "loss did not fall by the margin".into())
    }
}

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
        // A blob that cannot be fetched yet is no verdict while the proof window is open: the
        // miner may be restarting (its store is down until it is back), and attesting
        // negative then would slash an honest miner that finishes in time. Once the proof
        // deadline has passed, a blob still missing is the miner's fault.
        let proof_deadline = r.commitBlock + node.params.proofWindow;
        if now <= proof_deadline {
            if let Err(e) = node.store.fetch_blob(r.blobHash, &node.sources) {
                return Ok(Step::Wait {
                    until: None,
                    why: format!("round {round}: {e}; retrying until the proof deadline (block {proof_deadline})"),
                });
            }
        }
        // Rebuild: fetch, check the update root, apply, check the new root.
        let old = node.model_at(r.oldRoot)?;
        let rebuilt = node.rebuild(&old, r.blobHash, r.updateRoot, r.newRoot);
        let rebuild_seconds = since(start);
        let eval_start = Instant::now();
        let loss_old = node.trainer.eval_batch(&old, seed1)?;
        let (verdict, loss_old, loss_new, why) = match &rebuilt {
            Ok(new) => judge(loss_old, node.trainer.eval_batch(new, seed1)?, node.params.margin),
            Err(e) => (verdict::NEGATIVE, loss_units(loss_old), loss_units(loss_old), format!("{e:#}")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_loss_by_the_margin_is_positive_and_one_unit_less_is_not() {
        assert_eq!(judge(2.0, 1.5, 500_000_000).0, verdict::POSITIVE);
        assert_eq!(judge(2.0, 1.5, 500_000_001).0, verdict::NEGATIVE);
        assert_eq!(judge(2.0, 2.0, 0).0, verdict::POSITIVE, "a zero margin passes equal losses");
    }

    #[test]
    fn nan_and_infinite_losses_are_negative_never_a_perfect_score() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let (v, old, new, why) = judge(2.0, bad, 0);
            assert_eq!((v, old, new), (verdict::NEGATIVE, 2_000_000_000, u64::MAX), "{why}");
            let (v, old, _, why) = judge(bad, 1.0, 0);
            assert_eq!((v, old), (verdict::NEGATIVE, u64::MAX), "{why}");
        }
    }
}
