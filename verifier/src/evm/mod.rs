//! Everything EVM: the generated Solidity verifier, the Solidity compiler, and an
//! in-process EVM (revm) to deploy and drive contracts in.

pub mod export;
pub mod harness;
pub mod hints;
pub mod shipped;
pub mod solc;
pub mod solidity;

pub use export::{build_verifier, export_verifier, load_verifier, ExportError, VerifierManifest};
pub use harness::{AccountState, ChainState, Evm, EvmError, Fork, Receipt, CODE_SIZE_LIMIT};
pub use hints::{inverse_hints, proof_with_hints};
pub use revm::primitives::{keccak256, Address, Bytes, Log, B256, I256, U256};
pub use shipped::{install_shipped, Shipped, SHIPPED};
pub use solc::{Compiled, Solc, SolcError, SOLC_VERSION};
pub use solidity::{
    calldata, fr_to_u256, u256_to_fr, verifier_source, with_inverse_hints, GenerateError, HintedSource,
};
