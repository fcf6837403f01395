//! Chain clients: the embedded chain (revm in-process, state on disk, blocks produced on
//! demand; the default) and any Ethereum node over JSON-RPC (alloy). Roles talk to a
//! [`Chain`] and never care which.

pub mod embedded;
pub mod rpc;

use alloy::primitives::{Address, Log, U256};

use crate::keystore::Wallet;

pub use embedded::EmbeddedChain;
pub use rpc::RpcChain;

/// A transaction that went in.
#[derive(Debug, Clone)]
pub struct TxReceipt {
    /// Gas used by the whole transaction.
    pub gas_used: u64,
    /// The block it went into.
    pub block: u64,
    /// The contract it created, if any.
    pub created: Option<Address>,
    /// Events emitted.
    pub logs: Vec<Log>,
}

/// A chain refused or could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The call reverted; the revert data is kept for decoding.
    #[error("reverted{}", describe_revert(.data))]
    Reverted {
        /// ABI-encoded error (or empty).
        data: Vec<u8>,
    },
    /// The chain could not be reached or answered nonsense.
    #[error("chain unavailable ({endpoint}): {why}")]
    Unavailable {
        /// Where it was.
        endpoint: String,
        /// Why.
        why: String,
    },
    /// The transaction was refused before execution (nonce, funds, gas, halt).
    #[error("transaction refused: {0}")]
    Refused(String),
    /// The embedded chain's state file is unreadable or damaged.
    #[error("embedded chain state {path}: {why}")]
    State {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
}

fn describe_revert(data: &[u8]) -> String {
    match pogo_verifier::rounds::decode_revert(data) {
        Some(text) => format!(": {text}"),
        None if data.is_empty() => String::new(),
        None => format!(" (revert data 0x{})", hex::encode(data)),
    }
}

impl ChainError {
    /// The round contract's error name, when it refused (`"TooLate"`, ...).
    pub fn contract_error(&self) -> Option<String> {
        match self {
            ChainError::Reverted { data } => {
                pogo_verifier::rounds::decode_revert(data).map(|t| pogo_verifier::rounds::error_name(&t).to_string())
            }
            _ => None,
        }
    }
}

/// Chain ids of development nodes by default: Anvil and Hardhat (31337), Ganache and
/// `geth --dev` (1337).
pub const DEVELOPMENT_CHAIN_IDS: [u64; 2] = [31337, 1337];

/// What the node needs from a chain.
pub trait Chain: Send {
    /// Where it is, for messages.
    fn describe(&self) -> String;
    /// The number of the block the next transaction will run in (what `block.number` will be).
    fn block_number(&mut self) -> Result<u64, ChainError>;
    /// Sends a transaction from `from` (to `None`: a deployment) and waits for it to be in a
    /// block. Reverts come back as [`ChainError::Reverted`] and change nothing.
    fn send(&mut self, from: &Wallet, to: Option<Address>, data: Vec<u8>, value: U256)
        -> Result<TxReceipt, ChainError>;
    /// A read-only call.
    fn call(&mut self, to: Address, data: Vec<u8>) -> Result<Vec<u8>, ChainError>;
    /// An account's balance.
    fn balance(&mut self, who: Address) -> Result<U256, ChainError>;
    /// Code deployed at an address (empty: none).
    fn code(&mut self, at: Address) -> Result<Vec<u8>, ChainError>;
    /// Events `address` emitted in blocks `from..=to`, oldest first.
    fn logs(&mut self, address: Address, from: u64, to: u64) -> Result<Vec<Log>, ChainError>;
    /// Produces blocks until `block` is in the past, where the chain lets us (the embedded
    /// chain and development nodes); returns false when only waiting can get there.
    fn produce_blocks_until(&mut self, block: u64) -> Result<bool, ChainError>;
    /// Whether this is a development chain (the embedded chain; a JSON-RPC node whose chain
    /// id is a development node's default: 31337 for Anvil and Hardhat, 1337 for Ganache and
    /// geth --dev), where INSECURE development keys are acceptable.
    fn is_development(&mut self) -> Result<bool, ChainError>;
    /// Gives `who` `wei` on development chains (the embedded chain already credits new
    /// accounts; Anvil through `anvil_setBalance`); false where the chain does not allow it.
    fn dev_fund(&mut self, who: Address, wei: U256) -> Result<bool, ChainError> {
        let _ = (who, wei);
        Ok(false)
    }
}

/// Opens a chain from its address: `http://…`/`https://…` is a JSON-RPC node, anything
/// else the path of an embedded chain's state file (created if missing).
pub fn open(spec: &str, wallets: &[Wallet]) -> Result<Box<dyn Chain>, ChainError> {
    if spec.starts_with("http://") || spec.starts_with("https://") {
        Ok(Box::new(RpcChain::connect(spec, wallets)?))
    } else {
        Ok(Box::new(EmbeddedChain::open(std::path::Path::new(spec.strip_prefix("embedded:").unwrap_or(spec)))?))
    }
}
