//! An in-process EVM (revm) under a named fork, with blocks produced on demand: what
//! pogo deploys verifiers and the round contract into to test them and measure gas.

use alloy_eips::eip2935;
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
    pub(super) fn spec(self) -> SpecId {
        match self {
            Fork::Prague => SpecId::PRAGUE,
            Fork::Osaka => SpecId::OSAKA,
        }
    }

    /// The most gas one transaction may use: unbounded before Osaka, EIP-7825's 2^24 since.
    pub fn max_tx_gas(self) -> u64 {
        match self {
            Fork::Prague => u64::MAX,
            Fork::Osaka => 1 << 24,
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

/// Everything a chain holds, in a form that serializes (hex strings): what the embedded
/// chain of `pogo` persists on disk between commands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainState {
    /// Fork name (`Prague` or `Osaka`).
    pub fork: String,
    /// The open block.
    pub block_number: u64,
    /// Its timestamp.
    pub timestamp: u64,
    /// Hashes of closed blocks (the last 256 are enough for `BLOCKHASH`).
    pub block_hashes: Vec<(u64, B256)>,
    /// Accounts, in address order.
    pub accounts: Vec<AccountState>,
}

/// One account of a [`ChainState`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountState {
    /// Address.
    pub address: Address,
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Deployed code (hex, empty for none).
    #[serde(with = "hex::serde")]
    pub code: Vec<u8>,
    /// Non-zero storage slots, in slot order.
    pub storage: Vec<(U256, U256)>,
}

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
        let mut chain = Evm { evm, fork, tx_gas_limit: fork.max_tx_gas().min(30_000_000) };
        // Prague's EIP-2935 history contract, as a mainnet node has it: the last 8,191 block
        // hashes from state (`mine` writes each closed block's hash, as the system call does).
        let code = revm::bytecode::Bytecode::new_raw(eip2935::HISTORY_STORAGE_CODE.clone());
        let info = AccountInfo { balance: U256::ZERO, nonce: 1, code_hash: code.hash_slow(), code: Some(code) };
        chain.db_mut().insert_account_info(eip2935::HISTORY_STORAGE_ADDRESS, info);
        chain.record_block_hash(0);
        chain
    }

    /// A fresh chain of `fork` with `creation` deployed, the EIP-170 limit lifted so that an
    /// oversized verifier can still be measured: the chain and the contract's address.
    pub fn with_contract(fork: Fork, creation: &[u8]) -> Result<(Self, Address), EvmError> {
        let mut evm = Evm::new(fork);
        evm.set_code_size_limit(false);
        let (at, _) = evm.deploy(Address::repeat_byte(0x01), creation.to_vec(), U256::ZERO)?;
        Ok((evm, at))
    }

    /// The chain's whole state (accounts, code, storage, recent block hashes).
    pub fn export_state(&mut self) -> ChainState {
        let mut addresses: Vec<Address> = self.db().cache.accounts.keys().copied().collect();
        addresses.sort();
        let accounts = addresses
            .into_iter()
            .map(|address| {
                let info = self.account(address);
                let code = self.code(address);
                let mut storage: Vec<(U256, U256)> = self.db().cache.accounts[&address]
                    .storage
                    .iter()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| (*k, *v))
                    .collect();
                storage.sort();
                AccountState { address, balance: info.balance, nonce: info.nonce, code, storage }
            })
            .collect();
        let number = self.block_number();
        let mut block_hashes: Vec<(u64, B256)> =
            (number.saturating_sub(256)..number).filter_map(|n| self.block_hash(n).map(|h| (n, h))).collect();
        block_hashes.sort();
        ChainState {
            fork: self.fork.name().to_string(),
            block_number: number,
            timestamp: self.evm.ctx.block.timestamp.saturating_to(),
            block_hashes,
            accounts,
        }
    }

    /// A chain holding `state` (as [`Evm::export_state`] gave it).
    pub fn import_state(state: &ChainState) -> Result<Self, EvmError> {
        let fork = match state.fork.as_str() {
            "Prague" => Fork::Prague,
            "Osaka" => Fork::Osaka,
            other => return Err(EvmError::Invalid(format!("unknown fork {other:?} (Prague or Osaka)"))),
        };
        let mut evm = Evm::new(fork);
        evm.evm.ctx.block.number = U256::from(state.block_number);
        evm.evm.ctx.block.timestamp = U256::from(state.timestamp);
        let db = evm.db_mut();
        db.cache.block_hashes.clear();
        for (n, h) in &state.block_hashes {
            db.cache.block_hashes.insert(U256::from(*n), *h);
        }
        for a in &state.accounts {
            let code = (!a.code.is_empty()).then(|| revm::bytecode::Bytecode::new_raw(Bytes::from(a.code.clone())));
            let code_hash = code.as_ref().map(|c| c.hash_slow()).unwrap_or(revm::primitives::KECCAK_EMPTY);
            db.insert_account_info(a.address, AccountInfo { balance: a.balance, nonce: a.nonce, code_hash, code });
            for (slot, value) in &a.storage {
                db.insert_account_storage(a.address, *slot, *value).unwrap_or_else(|never| match never {});
            }
        }
        Ok(evm)
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
        let db = self.db_mut();
        db.cache.block_hashes.insert(U256::from(number), hash);
        // EIP-2935's system call at the start of block `number + 1`: slot `number % 8191`.
        let slot = U256::from(number % eip2935::HISTORY_SERVE_WINDOW as u64);
        if db.cache.accounts.contains_key(&eip2935::HISTORY_STORAGE_ADDRESS) {
            db.insert_account_storage(eip2935::HISTORY_STORAGE_ADDRESS, slot, hash.into())
                .unwrap_or_else(|never| match never {});
        }
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

    /// An account's nonce.
    pub fn nonce(&mut self, address: Address) -> u64 {
        self.account(address).nonce
    }

    /// Size of the code deployed at `address` (0: none).
    pub fn code_size(&mut self, address: Address) -> usize {
        self.code(address).len()
    }

    /// The code deployed at `address` (empty: none).
    pub fn code(&mut self, address: Address) -> Vec<u8> {
        let info = self.account(address);
        match info.code {
            Some(code) => code.original_byte_slice().to_vec(),
            None if info.code_hash == revm::primitives::KECCAK_EMPTY => Vec::new(),
            None => match self.db_mut().code_by_hash(info.code_hash) {
                Ok(code) => code.original_byte_slice().to_vec(),
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

    pub(super) fn outcome(result: ExecutionResult) -> Result<(Receipt, Option<Address>), EvmError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A contract that stores calldata word 0 at slot 0 and returns slot 0 when called
    /// with no data: `CALLDATASIZE ISZERO PUSH1 0x0b JUMPI; PUSH0 CALLDATALOAD PUSH0 SSTORE STOP STOP;
    /// JUMPDEST PUSH0 SLOAD PUSH0 MSTORE PUSH1 0x20 PUSH0 RETURN`.
    const RUNTIME: &str = "3615600b575f355f5500005b5f545f5260205ff3";

    fn initcode() -> Vec<u8> {
        let runtime = hex::decode(RUNTIME).unwrap();
        // PUSH1 len DUP1 PUSH1 offset PUSH0 CODECOPY PUSH0 RETURN, then the runtime.
        let mut code = vec![0x60, runtime.len() as u8, 0x80, 0x60, 0x09, 0x5f, 0x39, 0x5f, 0xf3];
        code.extend(runtime);
        code
    }

    /// EIP-2935: a block older than BLOCKHASH's 256 is still served by the history
    /// contract, and blocks older than 8,191, or not yet closed, are refused.
    #[test]
    fn the_history_contract_serves_the_last_8191_block_hashes() {
        let mut evm = Evm::new(Fork::Prague);
        evm.mine(9000);
        let now = evm.block_number();
        let ask = |evm: &mut Evm, n: u64| {
            evm.view(Address::ZERO, eip2935::HISTORY_STORAGE_ADDRESS, U256::from(n).to_be_bytes::<32>().to_vec())
        };
        for n in [now - 1, now - 300, now - 8191] {
            let out = ask(&mut evm, n).unwrap().output;
            assert_eq!(B256::from_slice(&out), evm.block_hash(n).unwrap(), "block {n}");
        }
        assert!(ask(&mut evm, now - 8192).is_err(), "out of the window");
        assert!(ask(&mut evm, now).is_err(), "the current block is not closed");
    }

    /// Osaka caps a transaction at 2^24 gas (EIP-7825): the default limit stays under it, so
    /// deploying and calling work there as under Prague, and a larger limit is refused.
    #[test]
    fn osaka_transactions_stay_under_eip_7825s_cap() {
        let mut evm = Evm::new(Fork::Osaka);
        assert_eq!(evm.tx_gas_limit, 1 << 24);
        let who = Address::repeat_byte(7);
        evm.set_balance(who, U256::from(10u64.pow(18)));
        let (contract, _) = evm.deploy(who, initcode(), U256::ZERO).unwrap();
        evm.call(who, contract, U256::from(1u64).to_be_bytes::<32>().to_vec(), U256::ZERO).unwrap();
        let over = evm.call_with_gas(who, contract, Vec::new(), U256::ZERO, (1 << 24) + 1).unwrap_err();
        assert!(over.to_string().contains("Cap"), "{over}");
        assert_eq!(Evm::new(Fork::Prague).tx_gas_limit, 30_000_000);
    }

    #[test]
    fn state_survives_export_and_import() {
        let mut evm = Evm::new(Fork::Prague);
        let who = Address::repeat_byte(7);
        evm.set_balance(who, U256::from(10u64.pow(18)));
        let (contract, _) = evm.deploy(who, initcode(), U256::ZERO).unwrap();
        evm.call(who, contract, U256::from(0xabcdu64).to_be_bytes::<32>().to_vec(), U256::ZERO).unwrap();
        evm.mine(300);
        let state = evm.export_state();
        let json = serde_json::to_string(&state).unwrap();
        let mut back = Evm::import_state(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back.export_state(), state, "export ∘ import is the identity");
        assert_eq!(back.block_number(), evm.block_number());
        assert_eq!(back.block_hash(evm.block_number() - 1), evm.block_hash(evm.block_number() - 1));
        let read = back.view(who, contract, Vec::new()).unwrap().output;
        assert_eq!(U256::from_be_slice(&read), U256::from(0xabcdu64), "storage came back");
        assert_eq!(back.balance(who), evm.balance(who));
        // The nonce came back too: the next deployment lands where the original's would.
        let (a, _) = back.deploy(who, initcode(), U256::ZERO).unwrap();
        let (b, _) = evm.deploy(who, initcode(), U256::ZERO).unwrap();
        assert_eq!(a, b);
        let mut bad = state.clone();
        bad.fork = "Berlin".into();
        assert!(Evm::import_state(&bad).is_err());
    }
}
