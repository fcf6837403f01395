//! The embedded chain: revm in-process under Prague, its whole state in one JSON file that
//! every operation reads and rewrites under an exclusive file lock (so several `pogo`
//! processes can share it), each transaction in its own block (automine). Between
//! transactions, blocks follow the wall clock at the chain's block time (empty blocks are
//! produced lazily when the file is next opened), or, for a chain made with block time 0
//! (manual, what `pogo demo` uses), only when a role asks for them. A development chain: signatures are not
//! checked (the sender is the wallet's address) and an account that has never been seen
//! is credited [`DEV_BALANCE`] when it first sends.

use std::fs::File;
use std::path::{Path, PathBuf};

use alloy::primitives::{Address, Log, U256};
use pogo_verifier::evm::{ChainState, Evm, EvmError, Fork};

use super::{Chain, ChainError, TxReceipt};
use crate::keystore::Wallet;

/// What a new account on the embedded chain starts with: 1,000,000 ether.
pub const DEV_BALANCE: u128 = 1_000_000 * 1_000_000_000_000_000_000;

/// Block time of a new embedded chain made by [`EmbeddedChain::open`], in seconds.
pub const DEFAULT_BLOCK_TIME: f64 = 1.0;

/// The file: the EVM state and the clock.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    /// Seconds per block; 0: blocks only on request.
    block_time: f64,
    /// Wall-clock time (Unix seconds) of block 1.
    started: f64,
    state: ChainState,
    /// Every event emitted, with its block (what `eth_getLogs` serves on a node).
    #[serde(default)]
    logs: Vec<BlockLog>,
}

/// An event and the block it was emitted in.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct BlockLog {
    block: u64,
    log: Log,
}

/// When blocks are due: `block_time` seconds each from `started` (none when manual).
struct Clock {
    block_time: f64,
    started: f64,
}

impl Clock {
    /// The block number that should exist by now (0 on a manual chain: no block is due).
    fn due(&self) -> u64 {
        if self.block_time > 0.0 {
            1 + ((unix_now() - self.started) / self.block_time).max(0.0) as u64
        } else {
            0
        }
    }
}

/// An embedded chain stored at a path.
pub struct EmbeddedChain {
    path: PathBuf,
    block_time: f64,
    started: f64,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl EmbeddedChain {
    /// Opens the chain stored at `path`, creating one (block 1, [`DEFAULT_BLOCK_TIME`]) if
    /// there is none.
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        Self::open_with(path, DEFAULT_BLOCK_TIME)
    }

    /// Opens the chain at `path`, creating one with `block_time` seconds per block (0:
    /// manual) if there is none; an existing chain keeps its own block time.
    pub fn open_with(path: &Path, block_time: f64) -> Result<Self, ChainError> {
        let mut chain =
            EmbeddedChain { path: path.to_path_buf(), block_time: block_time.max(0.0), started: unix_now() };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| chain.state_error(format!("creating {}: {e}", dir.display())))?;
        }
        if path.exists() {
            let stored = chain.load()?;
            (chain.block_time, chain.started) = (stored.block_time, stored.started);
        } else {
            chain.with(true, |_, _, _| Ok(()))?;
        }
        Ok(chain)
    }

    /// Seconds per block (0: manual).
    pub fn block_time(&self) -> f64 {
        self.block_time
    }

    /// Moves the chain `blocks` blocks ahead at once, as a development node's `anvil_mine`
    /// does; a clocked chain's clock moves with it, so blocks keep following the wall clock
    /// from the new height instead of pausing until the clock catches up. Returns the new
    /// block number.
    pub fn advance(&mut self, blocks: u64) -> Result<u64, ChainError> {
        self.with(true, |evm, clock, _| {
            evm.mine(blocks);
            clock.started -= blocks as f64 * clock.block_time;
            Ok(evm.block_number())
        })
    }

    fn load(&self) -> Result<Stored, ChainError> {
        let bytes = std::fs::read(&self.path).map_err(|e| self.state_error(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| self.state_error(format!("not an embedded chain state: {e}")))
    }

    fn state_error(&self, why: String) -> ChainError {
        ChainError::State { path: self.path.display().to_string(), why }
    }

    /// Runs `f` on the chain under the file lock; with `write`, saves the state afterwards
    /// (temp file + rename, so a crash leaves the old state or the new, never half).
    fn with<T>(
        &self,
        write: bool,
        f: impl FnOnce(&mut Evm, &mut Clock, &mut Vec<BlockLog>) -> Result<T, ChainError>,
    ) -> Result<T, ChainError> {
        let lock_path = self.path.with_extension("lock");
        let lock =
            File::create(&lock_path).map_err(|e| self.state_error(format!("lock {}: {e}", lock_path.display())))?;
        lock.lock().map_err(|e| self.state_error(format!("lock {}: {e}", lock_path.display())))?;
        // The clock's start is read from the file every time: `advance` moves it, and every
        // process sharing the chain must see that.
        let (mut evm, started, mut logs) = if self.path.exists() {
            let stored = self.load()?;
            let evm = Evm::import_state(&stored.state).map_err(|e| self.state_error(e.to_string()))?;
            (evm, stored.started, stored.logs)
        } else {
            (Evm::new(Fork::Prague), self.started, Vec::new())
        };
        let mut clock = Clock { block_time: self.block_time, started };
        // The clock: the blocks that should exist by now.
        let mut write = write;
        let due = clock.due();
        if evm.block_number() < due {
            evm.mine(due - evm.block_number());
            write = true;
        }
        let out = f(&mut evm, &mut clock, &mut logs)?;
        if write {
            let stored =
                Stored { block_time: self.block_time, started: clock.started, state: evm.export_state(), logs };
            let json = serde_json::to_vec(&stored).expect("chain state serializes");
            pogo_circuits::files::write_atomic(&self.path, &json).map_err(|e| self.state_error(e.to_string()))?;
        }
        Ok(out)
    }
}

fn refused(error: EvmError) -> ChainError {
    match error {
        EvmError::Reverted { data, .. } => ChainError::Reverted { data },
        other => ChainError::Refused(other.to_string()),
    }
}

impl Chain for EmbeddedChain {
    fn describe(&self) -> String {
        format!("embedded chain {}", self.path.display())
    }

    fn block_number(&mut self) -> Result<u64, ChainError> {
        self.with(false, |evm, _, _| Ok(evm.block_number()))
    }

    fn send(
        &mut self,
        from: &Wallet,
        to: Option<Address>,
        data: Vec<u8>,
        value: U256,
    ) -> Result<TxReceipt, ChainError> {
        self.with(true, |evm, _, logs| {
            let sender = from.address();
            if evm.balance(sender).is_zero() && evm.nonce(sender) == 0 {
                evm.set_balance(sender, U256::from(DEV_BALANCE));
            }
            let block = evm.block_number();
            let (receipt, created) = match to {
                Some(to) => (evm.call(sender, to, data, value).map_err(refused)?, None),
                None => {
                    let (address, receipt) = evm.deploy(sender, data, value).map_err(refused)?;
                    (receipt, Some(address))
                }
            };
            evm.mine(1);
            logs.extend(receipt.logs.iter().map(|log| BlockLog { block, log: log.clone() }));
            Ok(TxReceipt { gas_used: receipt.gas_used, block, created, logs: receipt.logs })
        })
    }

    fn call(&mut self, to: Address, data: Vec<u8>) -> Result<Vec<u8>, ChainError> {
        self.with(false, |evm, _, _| Ok(evm.view(Address::ZERO, to, data).map_err(refused)?.output))
    }

    fn balance(&mut self, who: Address) -> Result<U256, ChainError> {
        self.with(false, |evm, _, _| Ok(evm.balance(who)))
    }

    fn code(&mut self, at: Address) -> Result<Vec<u8>, ChainError> {
        self.with(false, |evm, _, _| Ok(evm.code(at)))
    }

    fn is_development(&mut self) -> Result<bool, ChainError> {
        Ok(true)
    }

    fn logs(&mut self, address: Address, from: u64, to: u64) -> Result<Vec<Log>, ChainError> {
        self.with(false, |_, _, logs| {
            Ok(logs
                .iter()
                .filter(|l| l.log.address == address && (from..=to).contains(&l.block))
                .map(|l| l.log.clone())
                .collect())
        })
    }

    /// A manual chain mines at once; a clocked one only lets time pass.
    fn produce_blocks_until(&mut self, block: u64) -> Result<bool, ChainError> {
        if self.block_time > 0.0 {
            return Ok(self.block_number()? > block);
        }
        self.with(true, |evm, _, _| {
            let now = evm.block_number();
            if now <= block {
                evm.mine(block + 1 - now);
            }
            Ok(true)
        })
    }
}
