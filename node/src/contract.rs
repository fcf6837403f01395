//! The round contract over any [`Chain`]: deployment, typed reads and transactions, and
//! the contract's errors named (`TooLate`, `AlreadyAttested`, ...).

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::{SolCall, SolEvent};
use pogo_verifier::rounds::{deploy_contracts, Attestation, Candidate, EvalSet, PogoRounds, Round, TaskParams};

use crate::chain::{Chain, ChainError, TxReceipt};
use crate::keystore::Wallet;

/// A call to the round contract failed.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The chain refused or is unreachable.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The answer did not decode.
    #[error("cannot decode the round contract's answer to {call}: {why}")]
    Decode {
        /// The function.
        call: &'static str,
        /// Why.
        why: String,
    },
    /// No code at the contract's address.
    #[error("no contract at {0} on this chain (wrong --contract or chain?)")]
    NoCode(Address),
}

impl ContractError {
    /// The contract's error name, when it refused.
    pub fn contract_error(&self) -> Option<String> {
        match self {
            ContractError::Chain(e) => e.contract_error(),
            _ => None,
        }
    }

    /// Whether the contract itself refused (reverted): a final answer. Anything else (the
    /// chain unreachable or slow, a nonce race) may go through when sent again.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ContractError::Chain(ChainError::Reverted { .. }))
    }
}

/// A task as the contract holds it.
#[derive(Debug, Clone)]
pub struct TaskState {
    /// Registration parameters.
    pub params: TaskParams,
    /// EXTCODEHASH of the verifier when the task was registered.
    pub verifier_code_hash: B256,
    /// Current accepted root.
    pub root: U256,
    /// Reward pool (wei).
    pub pool: U256,
    /// Rounds opened so far.
    pub rounds: u64,
    /// Whether the last round is open.
    pub open: bool,
}

/// A deployed round contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounds {
    /// Its address.
    pub address: Address,
}

impl Rounds {
    /// The contract at `address`, checking it has code.
    pub fn at(chain: &mut dyn Chain, address: Address) -> Result<Self, ContractError> {
        if chain.code(address)?.is_empty() {
            return Err(ContractError::NoCode(address));
        }
        Ok(Rounds { address })
    }

    /// Deploys the committed artifacts (every part: `pogo_verifier::rounds::deploy_contracts`);
    /// returns the round contract and the receipt of its own deployment.
    pub fn deploy(chain: &mut dyn Chain, from: &Wallet) -> Result<(Self, TxReceipt), ContractError> {
        let mut last = None;
        let deployed = deploy_contracts(|what, code| {
            let receipt = chain.send(from, None, code, U256::ZERO)?;
            let address = receipt.created.ok_or_else(|| ContractError::Decode {
                call: "deploy",
                why: format!("deploying the {what} made no contract"),
            })?;
            last = Some(receipt);
            Ok::<_, ContractError>(address)
        })?;
        Ok((Rounds { address: deployed.rounds }, last.expect("deploy_contracts deploys")))
    }

    /// Sends `call` with `value` wei.
    pub fn send<C: SolCall>(
        &self,
        chain: &mut dyn Chain,
        from: &Wallet,
        call: C,
        value: U256,
    ) -> Result<TxReceipt, ContractError> {
        Ok(chain.send(from, Some(self.address), call.abi_encode(), value)?)
    }

    /// A read.
    pub fn read<C: SolCall>(&self, chain: &mut dyn Chain, call: C) -> Result<C::Return, ContractError> {
        let out = chain.call(self.address, call.abi_encode())?;
        C::abi_decode_returns(&out).map_err(|e| ContractError::Decode { call: C::SIGNATURE, why: e.to_string() })
    }

    /// Registers a task; returns its id (from the `TaskCreated` event).
    pub fn create_task(
        &self,
        chain: &mut dyn Chain,
        from: &Wallet,
        params: TaskParams,
        pool: U256,
    ) -> Result<(U256, TxReceipt), ContractError> {
        let receipt = self.send(chain, from, PogoRounds::createTaskCall { p: params }, pool)?;
        let id = receipt
            .logs
            .iter()
            .find_map(|log| PogoRounds::TaskCreated::decode_log(log).ok().map(|e| e.task))
            .ok_or(ContractError::Decode { call: "createTask", why: "no TaskCreated event".into() })?;
        Ok((id, receipt))
    }

    /// A task's state.
    pub fn task(&self, chain: &mut dyn Chain, task: U256) -> Result<TaskState, ContractError> {
        let t = self.read(chain, PogoRounds::getTaskCall { task })?;
        Ok(TaskState {
            params: t.params,
            verifier_code_hash: t.verifierCodeHash,
            root: t.root,
            pool: t.pool,
            rounds: t.roundCount,
            open: t.open,
        })
    }

    /// One round.
    pub fn round(&self, chain: &mut dyn Chain, task: U256, round: u64) -> Result<Round, ContractError> {
        self.read(chain, PogoRounds::getRoundCall { task, round })
    }

    /// One candidate of a round.
    pub fn candidate(
        &self,
        chain: &mut dyn Chain,
        task: U256,
        round: u64,
        index: u16,
    ) -> Result<Candidate, ContractError> {
        self.read(chain, PogoRounds::getCandidateCall { task, round, index })
    }

    /// Every candidate of a round, in commit order.
    pub fn candidates(
        &self,
        chain: &mut dyn Chain,
        task: U256,
        round: &Round,
        id: u64,
    ) -> Result<Vec<Candidate>, ContractError> {
        (0..round.commits).map(|i| self.candidate(chain, task, id, i)).collect()
    }

    /// The seed of `phase` (1: evaluation batch, 2: sampled blocks) of round `id`, or `None`
    /// while its block is not closed (or once it is out of every reach).
    pub fn seed(
        &self,
        chain: &mut dyn Chain,
        task: U256,
        id: u64,
        phase: u8,
    ) -> Result<Option<[u8; 32]>, ContractError> {
        Ok(seed(self.read(chain, PogoRounds::seedOfCall { task, id, phase })?))
    }

    /// The public inputs of candidate `index` of the open round (roots, nb, sampled indices).
    pub fn public_inputs(&self, chain: &mut dyn Chain, task: U256, index: u16) -> Result<Vec<U256>, ContractError> {
        self.read(chain, PogoRounds::publicInputsCall { task, index })
    }

    /// `who`'s attestation in a round (stake 0 when it did not attest).
    pub fn attestation(
        &self,
        chain: &mut dyn Chain,
        task: U256,
        round: u64,
        who: Address,
    ) -> Result<Attestation, ContractError> {
        self.read(chain, PogoRounds::getAttestationCall { task, round, verifier: who })
    }

    /// The seats of round `round`'s committee that `who` wins with its stake (empty on a
    /// task without a committee): the list `attest` takes.
    pub fn seats(
        &self,
        chain: &mut dyn Chain,
        task: U256,
        round: u64,
        who: Address,
    ) -> Result<Vec<u16>, ContractError> {
        self.read(chain, PogoRounds::seatsOfCall { task, round, verifier: who })
    }

    /// Who attested in a round, in order.
    pub fn attesters(&self, chain: &mut dyn Chain, task: U256, round: u64) -> Result<Vec<Address>, ContractError> {
        self.read(chain, PogoRounds::getAttestersCall { task, round })
    }

    /// `who`'s stake in a task.
    pub fn stake(&self, chain: &mut dyn Chain, task: U256, who: Address) -> Result<U256, ContractError> {
        self.read(chain, PogoRounds::stakeOfCall::new((task, who)))
    }

    /// The block of `who`'s latest join of `task`: its stake counts only in rounds opened
    /// after it.
    pub fn stake_since(&self, chain: &mut dyn Chain, task: U256, who: Address) -> Result<u64, ContractError> {
        self.read(chain, PogoRounds::stakeSinceCall::new((task, who)))
    }

    /// A task's sets of held-out evaluation batches, oldest first.
    pub fn eval_sets(&self, chain: &mut dyn Chain, task: U256) -> Result<Vec<EvalSet>, ContractError> {
        self.read(chain, PogoRounds::getEvalSetsCall { task })
    }

    /// The (set, batch) phase 1 drew for the open round, before it is revealed.
    pub fn drawn_eval_batch(&self, chain: &mut dyn Chain, task: U256) -> Result<(u32, u32), ContractError> {
        let drawn = self.read(chain, PogoRounds::evalBatchOfCall { task })?;
        Ok((drawn.set, drawn.batch))
    }

    /// The held-out batch revealed for round `round` (its bytes from the `EvalRevealed`
    /// event of block `r.evalBlock`), checked against the leaf the contract recorded;
    /// `None` while it is not revealed.
    pub fn revealed_eval_batch(
        &self,
        chain: &mut dyn Chain,
        task: U256,
        round: u64,
        r: &Round,
    ) -> Result<Option<Vec<u8>>, ContractError> {
        if r.evalBlock == 0 {
            return Ok(None);
        }
        for log in chain.logs(self.address, r.evalBlock, r.evalBlock)? {
            let Ok(event) = PogoRounds::EvalRevealed::decode_log(&log) else { continue };
            if event.task == task && event.round == round {
                let data = event.data.data.to_vec();
                if pogo_verifier::heldout::leaf(&data) != r.evalHash {
                    return Err(ContractError::Decode {
                        call: "EvalRevealed",
                        why: format!("the chain's event for round {round} does not hash to the recorded batch leaf"),
                    });
                }
                return Ok(Some(data));
            }
        }
        Err(ContractError::Decode {
            call: "EvalRevealed",
            why: format!("no event for round {round} in block {} (a node that prunes logs?)", r.evalBlock),
        })
    }

    /// What `who` can withdraw.
    pub fn owed(&self, chain: &mut dyn Chain, who: Address) -> Result<U256, ContractError> {
        self.read(chain, PogoRounds::balanceOfCall::new((who,)))
    }
}

/// A 32-byte seed as the contract stores it, or `None` while undrawn.
pub fn seed(value: B256) -> Option<[u8; 32]> {
    (value != B256::ZERO).then_some(value.0)
}
