//! An in-process EVM (revm) under a named fork, with blocks produced on demand: what
//! pogo deploys verifiers and the round contract into to test them and measure gas.

use revm::context::result::{ExecutionResult, Output};
use revm::context::TxEnv;
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{keccak256, Address, Bytes, Log, TxKind, B256, U256};
use revm::state::AccountInfo;
use revm::{Context, Database, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};

/// The EIP-170 limit on deployed code.
pub const CODE_SIZE_LIMIT: usize = 24_576;

/// Hard forks gas is reported under (DESIGN §4: Prague or later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fork {
    /// Prague (Pectra), live on Ethereum mainnet since May 2025.
    #[default]
    Prague,
    /// Osaka (Fusaka): adds EIP-7825's 2^24 gas cap per transaction.
    Osaka,
}

impl Fork {
    fn spec(self) -> SpecId {
        match self {
            Fork::Prague => SpecId::PRAGUE,
            Fork::Osaka => SpecId::OSAKA,
        }
    }

    /// The fork's name.
    pub fn name(self) -> &'static str {
        match self {
            Fork::Prague => "Prague",
            Fork::Osaka => "Osaka",
        }
    }
}

/// A transaction that did not succeed, or could not be executed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvmError {
    /// The call reverted (its revert data is kept for decoding).
    #[error("the transaction reverted after {gas_used} gas (revert data 0x{})", hex::encode(data))]
    Reverted {
        /// Gas spent.
        gas_used: u64,
        /// Revert data (an ABI-encoded error, or empty).
        data: Vec<u8>,
    },
    /// The call halted (out of gas, invalid opcode, code too large, ...).
    #[error("the transaction halted after {gas_used} gas: {reason}")]
    Halted {
        /// Gas spent.
        gas_used: u64,
        /// Why.
        reason: String,
    },
    /// The transaction is invalid for this chain (nonce, balance, gas limit).
    #[error("the transaction was rejected before execution: {0}")]
    Invalid(String),
}

/// A successful transaction.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Gas used by the whole transaction (intrinsic and calldata costs included).
    pub gas_used: u64,
    /// Return data.
    pub output: Vec<u8>,
    /// Events emitted.
    pub logs: Vec<Log>,
}

type Db = CacheDB<EmptyDB>;

/// The in-process chain.
pub struct Evm {
    evm: MainnetEvm<MainnetContext<Db>>,
    fork: Fork,
    /// Gas limit of each transaction unless the caller gives one.
    pub tx_gas_limit: u64,
}

impl Evm {
    /// A fresh chain at block 1 under `fork`, with the EIP-170 code-size limit on.
    pub fn new(fork: Fork) -> Self {
        let evm = Context::mainnet()
            .with_db(Db::new(EmptyDB::default()))
            .modify_cfg_chained(|cfg| {
                cfg.spec = fork.spec();
                cfg.chain_id = 31_337;
            })
            .modify_block_chained(|block| {
                block.number = U256::from(1);
                block.timestamp = U256::from(1_700_000_000u64);
                block.gas_limit = 60_000_000;
                block.basefee = 0;
            })
            .build_mainnet();
        let mut chain = Evm { evm, fork, tx_gas_limit: 30_000_000 };
        chain.record_block_hash(0);
        chain
    }

    /// Lifts (or restores) the EIP-170 code-size limit, to measure contracts that exceed it.
    pub fn set_code_size_limit(&mut self, enforce: bool) {
        self.evm.ctx.cfg.limit_contract_code_size = if enforce { None } else { Some(usize::MAX) };
    }

    /// The fork this chain runs.
    pub fn fork(&self) -> Fork {
        self.fork
    }

    /// Current block number (transactions run in this block).
    pub fn block_number(&self) -> u64 {
        self.evm.ctx.block.number.saturating_to()
    }

    /// Closes the current block and opens `blocks` new ones (12 s apart), recording each
    /// closed block's hash for `BLOCKHASH`.
    pub fn mine(&mut self, blocks: u64) {
        for _ in 0..blocks {
            let number = self.block_number();
            self.record_block_hash(number);
            self.evm.ctx.block.number = U256::from(number + 1);
            self.evm.ctx.block.timestamp += U256::from(12);
        }
    }

    /// The hash `BLOCKHASH` returns for a closed block (a deterministic chain of hashes).
    pub fn block_hash(&self, number: u64) -> Option<B256> {
        self.db().cache.block_hashes.get(&U256::from(number)).copied()
    }

    fn record_block_hash(&mut self, number: u64) {
        let parent = number.checked_sub(1).and_then(|n| self.block_hash(n)).unwrap_or_default();
        let mut preimage = parent.to_vec();
        preimage.extend_from_slice(&number.to_be_bytes());
        let hash = keccak256(preimage);
        self.db_mut().cache.block_hashes.insert(U256::from(number), hash);
    }

    fn db(&self) -> &Db {
        &self.evm.ctx.journaled_state.database
    }

    fn db_mut(&mut self) -> &mut Db {
        &mut self.evm.ctx.journaled_state.database
    }

    fn account(&mut self, address: Address) -> AccountInfo {
        // CacheDB over EmptyDB cannot fail.
        match self.db_mut().basic(address) {
            Ok(info) => info.unwrap_or_default(),
            Err(never) => match never {},
        }
    }

    /// Sets an account's balance (test accounts are funded this way).
    pub fn set_balance(&mut self, address: Address, wei: U256) {
        let mut info = self.account(address);
        info.balance = wei;
        self.db_mut().insert_account_info(address, info);
    }

    /// An account's balance.
    pub fn balance(&mut self, address: Address) -> U256 {
        self.account(address).balance
    }

    /// Size of the code deployed at `address` (0: none).
    pub fn code_size(&mut self, address: Address) -> usize {
        let info = self.account(address);
        match info.code {
            Some(code) => code.original_byte_slice().len(),
            None if info.code_hash == revm::primitives::KECCAK_EMPTY => 0,
            None => match self.db_mut().code_by_hash(info.code_hash) {
                Ok(code) => code.original_byte_slice().len(),
                Err(never) => match never {},
            },
        }
    }

    fn tx(&mut self, from: Address, kind: TxKind, data: Vec<u8>, value: U256, gas_limit: u64) -> TxEnv {
        let nonce = self.account(from).nonce;
        TxEnv {
            caller: from,
            gas_limit,
            gas_price: 0,
            kind,
            value,
            data: Bytes::from(data),
            nonce,
            chain_id: Some(31_337),
            ..Default::default()
        }
    }

    fn outcome(result: ExecutionResult) -> Result<(Receipt, Option<Address>), EvmError> {
        match result {
            ExecutionResult::Success { gas_used, logs, output, .. } => {
                let (output, created) = match output {
                    Output::Call(bytes) => (bytes.to_vec(), None),
                    Output::Create(bytes, address) => (bytes.to_vec(), address),
                };
                Ok((Receipt { gas_used, output, logs }, created))
            }
            ExecutionResult::Revert { gas_used, output } => Err(EvmError::Reverted { gas_used, data: output.to_vec() }),
            ExecutionResult::Halt { reason, gas_used } => {
                Err(EvmError::Halted { gas_used, reason: format!("{reason:?}") })
            }
        }
    }

    /// Deploys `initcode` from `from`; fails if the transaction fails or leaves no code.
    pub fn deploy(&mut self, from: Address, initcode: Vec<u8>, value: U256) -> Result<(Address, Receipt), EvmError> {
        let tx = self.tx(from, TxKind::Create, initcode, value, self.tx_gas_limit);
        let result = self.evm.transact_commit(tx).map_err(|e| EvmError::Invalid(format!("{e:?}")))?;
        let (receipt, created) = Self::outcome(result)?;
        let address = created.ok_or_else(|| EvmError::Invalid("a create returned no address".into()))?;
        // DESIGN §4: a call to an address without code succeeds, so never trust an empty deploy.
        if self.code_size(address) == 0 {
            return Err(EvmError::Invalid(format!("deployment at {address} left no code")));
        }
        Ok((address, receipt))
    }

    /// Sends a transaction calling `to` and commits its effects when it succeeds.
    pub fn call(&mut self, from: Address, to: Address, data: Vec<u8>, value: U256) -> Result<Receipt, EvmError> {
        self.call_with_gas(from, to, data, value, self.tx_gas_limit)
    }

    /// [`Evm::call`] with an explicit gas limit.
    pub fn call_with_gas(
        &mut self,
        from: Address,
        to: Address,
        data: Vec<u8>,
        value: U256,
        gas_limit: u64,
    ) -> Result<Receipt, EvmError> {
        let tx = self.tx(from, TxKind::Call(to), data, value, gas_limit);
        let result = self.evm.transact_commit(tx).map_err(|e| EvmError::Invalid(format!("{e:?}")))?;
        Self::outcome(result).map(|(receipt, _)| receipt)
    }

    /// Runs a call without committing anything (a read, or a gas estimate).
    pub fn view(&mut self, from: Address, to: Address, data: Vec<u8>) -> Result<Receipt, EvmError> {
        let tx = self.tx(from, TxKind::Call(to), data, U256::ZERO, self.tx_gas_limit);
        let result = self.evm.transact(tx).map_err(|e| EvmError::Invalid(format!("{e:?}")))?;
        Self::outcome(result.result).map(|(receipt, _)| receipt)
    }
}
