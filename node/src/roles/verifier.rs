//! The verifier: stakes once, then for each open round, once the reveals are in and the
//! owner has revealed the held-out batch phase 1 drew, fetches every candidate's update
//! blob, rebuilds each new model from the old one, checks the roots, evaluates the old and
//! every new model on the same batch and attests once for all — sealed (a commitment, so
//! nobody can copy its verdicts), then opened once the attestation window closed; claims
//! its fee share and slashed bonds and withdraws.
//!
//! A rebuild whose new root is not the committed one is attested negative and remembered;
//! once the attestation window is over (the challenge window) the verifier opens its
//! attestation, then fetches the leaf list the miner serves, finds the first wrong block and
//! files its fraud proof: the candidate is rejected, its miner and every positive attester
//! slashed.
//!
//! Restart safety: the sealed attestation (verdicts, losses, salt) is written to the state
//! file before its commitment is sent, so a verifier killed at any point can still open it;
//! one that could not would lose `fraudSlashBps` of its stake at finalize.

use std::path::{Path, PathBuf};
use std::time::Instant;

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolEvent;
use anyhow::Context;
use pogo_verifier::rounds::{verdict, PogoRounds, Round};
use serde::{Deserialize, Serialize};

use super::challenge::{self, Examined, Filed};
use super::{crash_point, load_state, loss_units, save_state, since, Event, Node, Phase, Step};
use crate::keystore::Wallet;
use crate::train::data::held_out;

/// The verdict on a rebuilt round from the losses of the old and new model on the phase-1
/// batch: positive only when both are finite and the new one is lower by at least `margin`
/// units. A NaN or infinite loss is the worst loss there is (`u64::MAX` units), never a
/// perfect score. Returns the verdict, both losses in units and why.
pub fn judge(loss_old: f64, loss_new: f64, margin: u64) -> (u8, u64, u64, String) {
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

/// One attestation this verifier sent (a record for reports and claims; the chain is what
/// prevents a second attestation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attested {
    /// Round id.
    pub round: u64,
    /// Verdict per candidate (0 none, 1 positive, 2 negative).
    pub verdicts: Vec<u8>,
    /// The old model's loss (units of 1e-9).
    pub loss_old: u64,
    /// Each candidate's new loss (units of 1e-9).
    pub loss_new: Vec<u64>,
}

/// An attestation sealed for a round: what its commitment hides, to open it later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sealed {
    /// The attestation.
    pub attestation: Attested,
    /// The salt of its commitment.
    pub salt: B256,
}

/// A candidate this verifier's rebuild found wrong: its fraud proof is built and filed once
/// the attestation window is over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingFraud {
    /// Round id.
    pub round: u64,
    /// Candidate index.
    pub index: u16,
    /// What the rebuild found.
    pub why: String,
    /// Failed attempts to file it (given up after [`FILING_ATTEMPTS`]).
    #[serde(default)]
    pub attempts: u32,
}

/// Attempts at filing one fraud proof before the verifier gives up on it (and goes on).
pub const FILING_ATTEMPTS: u32 = 3;

/// What a verifier persists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifierState {
    /// Rounds attested (opened).
    pub attested: Vec<Attested>,
    /// Attestations sealed and not yet opened.
    #[serde(default)]
    pub sealed: Vec<Sealed>,
    /// Fraud proofs to file once the attestation window is over.
    #[serde(default)]
    pub frauds: Vec<PendingFraud>,
    /// Rounds whose pay was claimed (or found nothing to claim).
    pub claimed: Vec<u64>,
    /// Recent rounds whose candidates it rebuilt as a watcher outside the committee.
    #[serde(default)]
    pub watched: Vec<u64>,
}

impl VerifierState {
    /// The frauds of `found` not already queued for filing (same round and candidate).
    fn unqueued(&self, found: Vec<PendingFraud>) -> Vec<PendingFraud> {
        found.into_iter().filter(|f| !self.frauds.iter().any(|g| (g.round, g.index) == (f.round, f.index))).collect()
    }
}

/// The last block of a round at which a blob that cannot be fetched is still no verdict
/// (the miner may be restarting): halfway through the attestation window.
fn blob_patience(r: &Round) -> u64 {
    r.evalEnd + (r.attestEnd - r.evalEnd) / 2
}

/// A verifier.
pub struct Verifier {
    wallet: Wallet,
    path: PathBuf,
    stake: U256,
    lazy: bool,
    /// Its persisted state.
    pub state: VerifierState,
}

impl Verifier {
    /// A verifier staking `stake` wei, keeping its state in `dir`.
    pub fn new(wallet: Wallet, dir: &Path, stake: U256) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("verifier.json");
        let state = load_state(&path)?;
        Ok(Verifier { wallet, path, stake, lazy: false, state })
    }

    /// Where the held-out batch revealed for `round` is kept (`heldout/round-<N>.bin` beside
    /// the state file): the input of `pogo eval --batch`, to reproduce the attestation.
    pub fn heldout_path(&self, round: u64) -> PathBuf {
        self.path.with_file_name("heldout").join(format!("round-{round}.bin"))
    }

    /// A lazy verifier, for demonstrations and tests of slashing: it attests positive on
    /// every candidate without fetching or rebuilding anything (a loss `margin` below the
    /// old one), and so loses `fraudSlashBps` of its stake to every fraud proof.
    pub fn lazy(mut self) -> Self {
        self.lazy = true;
        self
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
        let mine = node.rounds.attestation(node.chain.as_mut(), node.task, round, me)?;
        // Opening comes first: a fraud proof that cannot be filed must not cost the stake
        // an unopened attestation costs. Frauds are filed whether or not this verifier's
        // attestation went in.
        let opening = now > r.attestEnd && now <= r.challengeEnd;
        if mine.stake != 0 && !mine.revealed && opening {
            return self.open_sealed(node, round, &r, now, false);
        }
        if let Some(step) = self.file_frauds(node, round, &r, now)? {
            return Ok(step);
        }
        if mine.stake != 0 {
            return self.open_sealed(node, round, &r, now, mine.revealed);
        }
        if now > r.attestEnd {
            return Ok(Step::Wait { until: None, why: format!("nothing to attest in round {round}") });
        }
        // A stake counts only in rounds opened after it joined (the contract refuses the
        // attestation): a verifier that joined mid-round waits for the next.
        let since = node.rounds.stake_since(node.chain.as_mut(), node.task, me)?;
        if since >= r.openBlock {
            return Ok(Step::Wait {
                until: None,
                why: format!("round {round} opened at block {} before this stake joined (block {since}): attesting from the next round", r.openBlock),
            });
        }
        // The batch is drawn by the hash of block revealEnd + 1, after every reveal, from the
        // owner's held-out data; the owner then reveals it.
        if now <= r.revealEnd + 1 {
            return Ok(Step::Wait {
                until: Some(r.revealEnd + 1),
                why: format!("round {round}: reveals and the evaluation batch (block {})", r.revealEnd + 1),
            });
        }
        if r.revealed == 0 {
            return Ok(Step::Wait { until: None, why: format!("round {round}: nothing was revealed") });
        }
        let candidates = node.rounds.candidates(node.chain.as_mut(), node.task, &r, round)?;
        let judged: Vec<usize> =
            (0..candidates.len()).filter(|&i| candidates[i].revealed && candidates[i].miner != me).collect();
        // On a committee task only the round's committee (seats drawn by stake from the
        // phase-1 seed, fixed now) evaluates and attests. The others still rebuild every
        // candidate, so a wrong block is proven on chain whoever sits on the committee.
        let committee = node.params.committee;
        let seats = match committee {
            0 => Vec::new(),
            _ => match node.rounds.seats(node.chain.as_mut(), node.task, round, me) {
                Ok(seats) => seats,
                Err(e) => {
                    return Ok(Step::Wait { until: None, why: format!("round {round}: committee seats unread: {e}") })
                }
            },
        };
        if committee != 0 && seats.is_empty() {
            let watched = self.watch(node, round, &r, &candidates, &judged, now)?;
            return Ok(Step::Wait {
                until: None,
                why: format!("round {round}: not on its committee ({committee} seats drawn by stake); {watched}"),
            });
        }
        // Blobs are fetched as soon as they are revealed. One that cannot be fetched yet is
        // no verdict until the first half of the attestation window is over: the miner may
        // be restarting (its store is down until it is back), and attesting negative then
        // would slash an honest miner that is back in time. After that, a blob still
        // missing is the miner's fault.
        let patience = blob_patience(&r);
        if now <= patience && !self.lazy {
            for &i in &judged {
                if let Err(e) = node.fetch_candidate_blob(candidates[i].blobHash) {
                    return Ok(Step::Wait {
                        until: None,
                        why: format!("round {round}, candidate {i}: {e}; retrying until block {patience}"),
                    });
                }
            }
        }
        let Some(batch) = node.rounds.revealed_eval_batch(node.chain.as_mut(), node.task, round, &r)? else {
            let why = if now > r.evalEnd {
                format!("round {round}: the owner revealed no held-out batch by block {}: a no-fault round", r.evalEnd)
            } else {
                format!("round {round}: waiting for the owner to reveal the held-out batch (by block {})", r.evalEnd)
            };
            return Ok(Step::Wait { until: None, why });
        };
        if now <= r.evalEnd {
            return Ok(Step::Wait {
                until: Some(r.evalEnd),
                why: format!("round {round}: held-out batch revealed; attestations open after block {}", r.evalEnd),
            });
        }
        // A batch the owner committed to but that is not data of the task's kind cannot be
        // evaluated: no verdict either way (the round is then no-fault for the miners).
        // Nor is one its network cannot read (token ids past the vocabulary): no verdict,
        // rather than stopping the verifier on every restart.
        let task = &node.trainer.task;
        let examples = match held_out::readable_examples(&task.model, &task.data, &batch) {
            Ok(examples) => examples,
            Err(e) => {
                return Ok(Step::Wait {
                    until: None,
                    why: format!("round {round}: the revealed batch is unusable: {e}"),
                })
            }
        };
        // Kept so that anyone can re-run this attestation: `pogo eval TASK MODEL --batch FILE`.
        let kept = self.heldout_path(round);
        if !kept.exists() {
            if let Err(e) = std::fs::create_dir_all(kept.parent().expect("a file in a folder"))
                .and_then(|()| pogo_circuits::files::write_atomic(&kept, &batch))
            {
                eprintln!("note: could not keep the held-out batch in {}: {e}", kept.display());
            }
        }
        // Rebuild each candidate (fetch, check the update root, apply, check the new root)
        // and evaluate it on the same phase-1 batch as the old model.
        // One model in memory at a time: the old one for its loss, then each candidate's,
        // rebuilt from the store into the store (streamed) and loaded only to be evaluated.
        let old = node.model_at(r.oldRoot)?;
        let loss_old = node.trainer.eval_examples(&old, &examples)?;
        drop(old);
        let mut verdicts = vec![verdict::NONE; candidates.len()];
        let mut losses = vec![0u64; candidates.len()];
        let mut notes = Vec::new();
        // The old model's loss is one figure for every candidate (`judge` derives the same).
        let old_units = loss_units(loss_old);
        let mut frauds = Vec::new();
        for &i in &judged {
            let c = &candidates[i];
            if self.lazy {
                verdicts[i] = verdict::POSITIVE;
                losses[i] = old_units.saturating_sub(node.params.margin);
                notes.push(format!("#{i} positive (lazy: nothing rebuilt)"));
                continue;
            }
            let (v, ln, why) = match node.examine(r.oldRoot, c)? {
                Examined::Honest => {
                    let new = node.store.model(c.newRoot).context("the rebuilt model is not in the store")?;
                    let (v, _, ln, why) =
                        judge(loss_old, node.trainer.eval_examples(&new, &examples)?, node.params.margin);
                    (v, ln, why)
                }
                Examined::Mismatch(why) => {
                    frauds.push(PendingFraud { round, index: i as u16, why: why.clone(), attempts: 0 });
                    let why = format!("{why}; a fraud proof follows after block {}", r.attestEnd);
                    (verdict::NEGATIVE, old_units, why)
                }
                Examined::Unchecked(why) => (verdict::NEGATIVE, old_units, why),
            };
            verdicts[i] = v;
            losses[i] = ln;
            let word = if v == verdict::POSITIVE { "positive" } else { "negative" };
            notes.push(format!("#{i} {word} ({why}, loss {:.6})", ln as f64 / 1e9));
        }
        // Sealed first, on disk, then committed: a restart finds the same salt and verdicts
        // (and re-sends the same commitment if the first never landed).
        let attestation = Attested { round, verdicts: verdicts.clone(), loss_old: old_units, loss_new: losses.clone() };
        let new_frauds = self.state.unqueued(frauds);
        let unsealed = !self.state.sealed.iter().any(|s| s.attestation.round == round);
        if unsealed || !new_frauds.is_empty() {
            if unsealed {
                let salt = B256::from(rand::random::<[u8; 32]>());
                self.state.sealed.push(Sealed { attestation, salt });
            }
            self.state.frauds.extend(new_frauds);
            save_state(&self.path, &self.state)?;
        }
        let sealed = self.state.sealed.iter().find(|s| s.attestation.round == round).expect("sealed above").clone();
        let (a, salt) = (&sealed.attestation, sealed.salt);
        let commitment = pogo_verifier::rounds::attestation_commitment(
            node.rounds.address,
            node.task,
            round,
            me,
            a.loss_old,
            &a.verdicts,
            &a.loss_new,
            salt,
        );
        let call = PogoRounds::attestCall { task: node.task, commitment, seats };
        let receipt = match node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::ZERO) {
            Ok(receipt) => receipt,
            Err(e)
                if matches!(
                    e.contract_error().as_deref(),
                    Some(
                        "AlreadyAttested"
                            | "TooLate"
                            | "NoOpenRound"
                            | "AttestersFull"
                            | "NotOnCommittee"
                            | "BadSeat"
                            | "StakeLeaving"
                            | "StakeTooNew"
                    )
                ) =>
            {
                return Ok(Step::Wait { until: None, why: format!("attestation not needed: {e}") });
            }
            Err(e) => return Err(e.into()),
        };
        crash_point("verifier-after-attest");
        let what = format!(
            "attested (sealed until block {}) on {} candidate(s), old loss {:.6} on the {} held-out examples: {}",
            r.attestEnd,
            judged.len(),
            old_units as f64 / 1e9,
            examples.len(),
            notes.join("; ")
        );
        Ok(self.acted(round, Phase::Evaluate, what, start, receipt.gas_used))
    }

    /// Rebuilds every candidate of `round` once, as a watcher outside its committee: a
    /// candidate whose rebuild misses its committed root is queued for a fraud proof (filed
    /// after the attestation window, as a member's would be). A blob not fetched yet is
    /// tried again on the next step until halfway through the attestation window.
    fn watch(
        &mut self,
        node: &mut Node,
        round: u64,
        r: &Round,
        candidates: &[pogo_verifier::rounds::Candidate],
        judged: &[usize],
        now: u64,
    ) -> anyhow::Result<String> {
        if self.lazy || self.state.watched.contains(&round) {
            return Ok("its candidates are rebuilt".into());
        }
        let patience = blob_patience(r);
        // The old model in the store (made, fetched or replayed), to rebuild from.
        drop(node.model_at(r.oldRoot)?);
        let mut found = Vec::new();
        for &i in judged {
            match node.examine(r.oldRoot, &candidates[i])? {
                Examined::Honest => {}
                Examined::Mismatch(why) => found.push(PendingFraud { round, index: i as u16, why, attempts: 0 }),
                Examined::Unchecked(why) if now <= patience => {
                    return Ok(format!("watching: candidate {i} not rebuilt yet ({why})"))
                }
                Examined::Unchecked(_) => {}
            }
        }
        let wrong = found.len();
        let new = self.state.unqueued(found);
        self.state.frauds.extend(new);
        self.state.watched.retain(|&w| w + 8 > round);
        self.state.watched.push(round);
        save_state(&self.path, &self.state)?;
        Ok(match wrong {
            0 => format!("watched: {} candidate(s) rebuilt to their committed roots", judged.len()),
            n => format!("watched: {n} candidate(s) wrong, fraud proofs follow after block {}", r.attestEnd),
        })
    }

    /// Builds and files the fraud proofs for the candidates its rebuild found wrong in
    /// `round`, once the attestation window is over (one per step); drops those of earlier
    /// rounds, those settled, and those that failed [`FILING_ATTEMPTS`] times.
    fn file_frauds(&mut self, node: &mut Node, round: u64, r: &Round, now: u64) -> anyhow::Result<Option<Step>> {
        let before = self.state.frauds.len();
        self.state.frauds.retain(|f| f.round == round);
        if self.state.frauds.len() != before {
            save_state(&self.path, &self.state)?;
        }
        let Some(f) = self.state.frauds.first().cloned() else {
            return Ok(None);
        };
        if now <= r.attestEnd || now > r.challengeEnd {
            return Ok(None);
        }
        let start = Instant::now();
        let c = node.rounds.candidate(node.chain.as_mut(), node.task, round, f.index)?;
        let filed = if c.fraud {
            Ok(Filed::Moot(format!("candidate {} was proven fraudulent by another challenger first", f.index)))
        } else if !c.proven {
            Ok(Filed::Moot(format!("candidate {} has no valid proof: no fraud proof needed", f.index)))
        } else {
            let old = node.model_at(r.oldRoot)?;
            match node.build_fraud(&old, r.oldRoot, &c) {
                Ok(Ok(fraud)) => challenge::file(node, &self.wallet, &self.name(), round, f.index, &fraud),
                Ok(Err(why)) => Ok(Filed::Moot(format!(
                    "candidate {} is wrong ({}) but no fraud proof can be made: {why}",
                    f.index, f.why
                ))),
                Err(e) => Err(e),
            }
        };
        let done = |v: &mut Self| -> anyhow::Result<()> {
            v.state.frauds.retain(|g| (g.round, g.index) != (f.round, f.index));
            save_state(&v.path, &v.state)
        };
        match filed {
            Ok(Filed::TooEarly(end)) => {
                Ok(Some(Step::Wait { until: Some(end + 1), why: format!("fraud proofs open after block {end}") }))
            }
            Ok(Filed::Proven(event)) => {
                done(self)?;
                Ok(Some(Step::Acted(event)))
            }
            Ok(Filed::Moot(what)) => {
                done(self)?;
                Ok(Some(self.acted(round, Phase::Challenge, what, start, 0)))
            }
            Err(e) => {
                let attempts = f.attempts + 1;
                if attempts >= FILING_ATTEMPTS {
                    done(self)?;
                    let what = format!(
                        "gave up filing the fraud proof against candidate {} after {attempts} attempts: {e:#}",
                        f.index
                    );
                    return Ok(Some(self.acted(round, Phase::Challenge, what, start, 0)));
                }
                if let Some(g) = self.state.frauds.iter_mut().find(|g| (g.round, g.index) == (f.round, f.index)) {
                    g.attempts = attempts;
                }
                save_state(&self.path, &self.state)?;
                let why = format!("filing the fraud proof against candidate {} failed ({e:#}); attempt {attempts} of {FILING_ATTEMPTS}", f.index);
                Ok(Some(Step::Wait { until: None, why }))
            }
        }
    }

    /// The round's attestation is sealed on chain: opens it once the attestation window is
    /// over (by the challenge deadline), from the record the state file kept.
    fn open_sealed(
        &mut self,
        node: &mut Node,
        round: u64,
        r: &Round,
        now: u64,
        revealed: bool,
    ) -> anyhow::Result<Step> {
        if revealed {
            return Ok(Step::Wait { until: None, why: format!("round {round}: attested and opened") });
        }
        if now <= r.attestEnd {
            return Ok(Step::Wait {
                until: Some(r.attestEnd),
                why: format!("round {round}: attestation sealed; it opens after block {}", r.attestEnd),
            });
        }
        if now > r.challengeEnd {
            return Ok(Step::Wait { until: None, why: format!("round {round}: too late to open the attestation") });
        }
        let Some(sealed) = self.state.sealed.iter().find(|s| s.attestation.round == round).cloned() else {
            anyhow::bail!(
                "round {round}: the chain holds this verifier's sealed attestation but {} has no record of it \
                 (was the state file replaced?); it cannot be opened and will cost part of the stake",
                self.path.display()
            );
        };
        let start = Instant::now();
        let a = &sealed.attestation;
        let call = PogoRounds::revealAttestationCall {
            task: node.task,
            lossOld: a.loss_old,
            verdicts: a.verdicts.clone(),
            lossNew: a.loss_new.clone(),
            salt: sealed.salt,
        };
        let receipt = match node.rounds.send(node.chain.as_mut(), &self.wallet, call, U256::ZERO) {
            Ok(receipt) => Some(receipt),
            // Opened already (a restart after the send): the chain has it.
            Err(e) if e.contract_error().as_deref() == Some("AlreadyAttested") => None,
            Err(e) => return Err(e.into()),
        };
        self.state.sealed.retain(|s| s.attestation.round != round);
        if !self.state.attested.iter().any(|x| x.round == round) {
            self.state.attested.push(sealed.attestation.clone());
        }
        save_state(&self.path, &self.state)?;
        let positive = a.verdicts.iter().filter(|&&v| v == verdict::POSITIVE).count();
        let slashed: U256 = receipt
            .iter()
            .flat_map(|r| &r.logs)
            .filter_map(|log| PogoRounds::AttesterSlashed::decode_log(log).ok())
            .map(|e| e.data.amount)
            .sum();
        let mut what = format!("opened its attestation: {positive} positive of {} verdict(s)", a.verdicts.len());
        if !slashed.is_zero() {
            what += &format!("; {slashed} wei of its stake slashed (positive on a candidate proven fraudulent)");
        }
        Ok(self.acted(round, Phase::Evaluate, what, start, receipt.map_or(0, |r| r.gas_used)))
    }

    /// Claims its pay (fee share, slashed bonds) of finished rounds it attested in, then
    /// withdraws.
    fn payout(&mut self, node: &mut Node, rounds: u64, open: bool) -> anyhow::Result<Option<Step>> {
        let finished = if open { rounds.saturating_sub(1) } else { rounds };
        let pending: Vec<u64> = self
            .state
            .attested
            .iter()
            .filter(|a| a.round < finished && !self.state.claimed.contains(&a.round))
            .map(|a| a.round)
            .collect();
        let start = Instant::now();
        for round in pending {
            let call = PogoRounds::claimCall { task: node.task, round };
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
                    let amount = receipt
                        .logs
                        .iter()
                        .find_map(|log| PogoRounds::Claimed::decode_log(log).ok().map(|e| e.amount))
                        .unwrap_or_default();
                    return Ok(Some(self.acted(
                        round,
                        Phase::Payout,
                        format!("claimed {amount} wei (fee share and slashed bonds)"),
                        start,
                        receipt.gas_used,
                    )));
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
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let (v, old, new, why) = judge(2.0, bad, 0);
            assert_eq!((v, old, new), (verdict::NEGATIVE, 2_000_000_000, u64::MAX), "{why}");
            let (v, old, _, why) = judge(bad, 1.0, 0);
            assert_eq!((v, old), (verdict::NEGATIVE, u64::MAX), "{why}");
        }
    }

    #[test]
    fn a_revealed_batch_the_network_cannot_read_is_unusable_not_fatal() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-encoder.json");
        let mut task = crate::train::TaskConfig::load(&path).unwrap();
        let record = |id: u16| -> Vec<u8> {
            [101, id, 102].into_iter().chain([0; 61]).chain([5]).flat_map(u16::to_le_bytes).collect()
        };
        let mut batch = vec![0u8; held_out::SALT_LEN];
        batch.extend(record(2000));
        assert_eq!(held_out::readable_examples(&task.model, &task.data, &batch).unwrap().len(), 1);
        if let crate::train::task::ModelSpec::Encoder { vocabulary, .. } = &mut task.model {
            *vocabulary = 2000;
        }
        let why = held_out::readable_examples(&task.model, &task.data, &batch).unwrap_err();
        assert!(why.contains("token id 2000 is past the model's vocabulary of 2000"), "{why}");
        batch.truncate(held_out::SALT_LEN + 7);
        assert!(held_out::readable_examples(&task.model, &task.data, &batch).unwrap_err().contains("whole number"));
    }
}
