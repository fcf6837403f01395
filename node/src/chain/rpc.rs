//! Any Ethereum node over JSON-RPC, through alloy: transactions are signed locally with the
//! keystore's keys, sent, and waited for; reverts are caught at gas estimation with their
//! revert data so the round contract's errors can be named.

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Log, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::transports::{RpcError, TransportErrorKind};

use super::{Chain, ChainError, TxReceipt};
use crate::keystore::Wallet;

/// A JSON-RPC endpoint.
pub struct RpcChain {
    url: String,
    provider: DynProvider,
    runtime: tokio::runtime::Runtime,
    dev_node: Option<bool>,
}

impl RpcChain {
    /// Connects to `url` with `wallets` able to sign; checks the node answers.
    pub fn connect(url: &str, wallets: &[Wallet]) -> Result<Self, ChainError> {
        let unavailable = |why: String| ChainError::Unavailable { endpoint: url.to_string(), why };
        let parsed = url.parse().map_err(|e| unavailable(format!("not a URL: {e}")))?;
        let mut wallet = EthereumWallet::default();
        for w in wallets {
            wallet.register_signer(w.signer().clone());
        }
        let provider = ProviderBuilder::new().wallet(wallet).connect_http(parsed).erased();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unavailable(format!("starting the I/O runtime: {e}")))?;
        let mut chain = RpcChain { url: url.to_string(), provider, runtime, dev_node: None };
        chain.block_number()?;
        Ok(chain)
    }

    fn unavailable(&self, error: impl std::fmt::Display) -> ChainError {
        ChainError::Unavailable { endpoint: self.url.clone(), why: error.to_string() }
    }

    fn classify(&self, error: RpcError<TransportErrorKind>) -> ChainError {
        if let Some(data) = error.as_error_resp().and_then(|e| e.as_revert_data()) {
            return ChainError::Reverted { data: data.to_vec() };
        }
        match error {
            RpcError::ErrorResp(e) if e.message.contains("revert") => ChainError::Reverted { data: Vec::new() },
            RpcError::ErrorResp(e) => ChainError::Refused(e.to_string()),
            other => self.unavailable(other),
        }
    }
}

impl Chain for RpcChain {
    fn describe(&self) -> String {
        format!("JSON-RPC {}", self.url)
    }

    /// The block the next transaction goes into: the latest plus one.
    fn block_number(&mut self) -> Result<u64, ChainError> {
        let latest = self.runtime.block_on(self.provider.get_block_number()).map_err(|e| self.classify(e))?;
        Ok(latest + 1)
    }

    fn send(
        &mut self,
        from: &Wallet,
        to: Option<Address>,
        data: Vec<u8>,
        value: U256,
    ) -> Result<TxReceipt, ChainError> {
        let mut tx = TransactionRequest::default().with_from(from.address()).with_input(data).with_value(value);
        tx = match to {
            Some(to) => tx.with_to(to),
            None => tx.into_create(),
        };
        let provider = self.provider.clone();
        let result = self.runtime.block_on(async move {
            // Estimating first turns a revert into an error with its data, before any gas is spent.
            let gas = provider.estimate_gas(tx.clone()).await?;
            let pending = provider.send_transaction(tx.with_gas_limit(gas + gas / 5)).await?;
            Ok::<_, RpcError<TransportErrorKind>>(pending.get_receipt().await)
        });
        let receipt = result.map_err(|e| self.classify(e))?.map_err(|e| self.unavailable(e))?;
        if !receipt.status() {
            return Err(ChainError::Reverted { data: Vec::new() });
        }
        Ok(TxReceipt {
            gas_used: receipt.gas_used,
            block: receipt.block_number.unwrap_or_default(),
            created: receipt.contract_address,
            logs: receipt.inner.logs().iter().map(|l| l.inner.clone()).collect(),
        })
    }

    fn call(&mut self, to: Address, data: Vec<u8>) -> Result<Vec<u8>, ChainError> {
        let tx = TransactionRequest::default().with_to(to).with_input(data);
        self.runtime.block_on(async { self.provider.call(tx).await }).map(|b| b.to_vec()).map_err(|e| self.classify(e))
    }

    fn balance(&mut self, who: Address) -> Result<U256, ChainError> {
        self.runtime.block_on(async { self.provider.get_balance(who).await }).map_err(|e| self.classify(e))
    }

    fn code(&mut self, at: Address) -> Result<Vec<u8>, ChainError> {
        self.runtime
            .block_on(async { self.provider.get_code_at(at).await })
            .map(|b| b.to_vec())
            .map_err(|e| self.classify(e))
    }

    fn logs(&mut self, address: Address, from: u64, to: u64) -> Result<Vec<Log>, ChainError> {
        let filter = Filter::new().address(address).from_block(from).to_block(to);
        let logs =
            self.runtime.block_on(async { self.provider.get_logs(&filter).await }).map_err(|e| self.classify(e))?;
        Ok(logs.into_iter().map(|l| l.inner).collect())
    }

    fn is_development(&mut self) -> Result<bool, ChainError> {
        let id = self.runtime.block_on(async { self.provider.get_chain_id().await }).map_err(|e| self.classify(e))?;
        Ok(super::DEVELOPMENT_CHAIN_IDS.contains(&id))
    }

    fn dev_fund(&mut self, who: Address, wei: U256) -> Result<bool, ChainError> {
        let provider = self.provider.clone();
        let result = self.runtime.block_on(async move {
            provider.raw_request::<_, serde_json::Value>("anvil_setBalance".into(), (who, wei)).await
        });
        Ok(result.is_ok())
    }

    /// Development nodes (Anvil, Hardhat) mine on request (`anvil_mine`); others cannot be
    /// hurried, so the caller waits.
    fn produce_blocks_until(&mut self, block: u64) -> Result<bool, ChainError> {
        let now = self.block_number()?;
        if now > block {
            return Ok(true);
        }
        if self.dev_node == Some(false) {
            return Ok(false);
        }
        let count = U256::from(block + 1 - now);
        let provider = self.provider.clone();
        let mined = self
            .runtime
            .block_on(async move { provider.raw_request::<_, serde_json::Value>("anvil_mine".into(), (count,)).await });
        self.dev_node = Some(mined.is_ok());
        Ok(mined.is_ok())
    }
}
