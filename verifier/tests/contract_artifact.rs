//! The committed round-contract artifact is exactly what the pinned compiler makes of the
//! committed source. `POGO_BLESS=1 cargo test -p pogo-verifier --test contract_artifact`
//! rewrites it after an intended change to `contracts/PogoRounds.sol`.

use std::path::Path;

use pogo_verifier::evm::{Evm, Fork, Solc, CODE_SIZE_LIMIT, SOLC_VERSION};
use pogo_verifier::keys::sha256_hex;
use pogo_verifier::rounds::{bytecode, RoundsContract, ARTIFACT, OPTIMIZER_RUNS, SOURCE, SOURCE_UNIT, VIA_IR};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn artifact_matches_a_fresh_compilation() {
    let solc = Solc::from_install_script(&root().join("scripts/solc/install.sh")).unwrap();
    let compiled = solc.compile(SOURCE_UNIT, SOURCE, "PogoRounds", Some(OPTIMIZER_RUNS), VIA_IR).unwrap();
    let fresh = serde_json::json!({
        "contract": "PogoRounds",
        "compiler": format!("solc {SOLC_VERSION}"),
        "optimizer_runs": OPTIMIZER_RUNS,
        "via_ir": VIA_IR,
        "source_sha256": sha256_hex(SOURCE.as_bytes()),
        "abi": serde_json::from_str::<serde_json::Value>(&compiled.abi).unwrap(),
        "bytecode": format!("0x{}", hex::encode(&compiled.bytecode)),
    });
    let committed: serde_json::Value = serde_json::from_str(ARTIFACT).unwrap();
    if std::env::var_os("POGO_BLESS").is_some() && committed != fresh {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/build/PogoRounds.json");
        std::fs::write(&path, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
        panic!("rewrote {}; build again so the bindings pick it up", path.display());
    }
    assert!(
        committed == fresh,
        "contracts/build/PogoRounds.json is stale: rerun with POGO_BLESS=1 after changing PogoRounds.sol"
    );
}

#[test]
fn round_contract_deploys_under_the_size_limit() {
    let mut evm = Evm::new(Fork::Prague);
    let deployer = pogo_verifier::evm::Address::repeat_byte(1);
    let (contract, receipt) = RoundsContract::deploy(&mut evm, deployer).unwrap();
    let size = evm.code_size(contract.address);
    assert!(size > 0 && size <= CODE_SIZE_LIMIT, "deployed {size} bytes");
    assert!(receipt.gas_used > 21_000);
    assert!(!bytecode().is_empty());
}
