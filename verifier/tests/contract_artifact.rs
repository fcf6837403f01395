//! The committed round-contract artifacts are exactly what the pinned compiler makes of the
//! committed sources. `POGO_BLESS=1 cargo test -p pogo-verifier --test contract_artifact`
//! rewrites them after an intended change to `contracts/*.sol`.

use std::path::Path;

use pogo_verifier::evm::{Evm, Fork, Solc, CODE_SIZE_LIMIT};
use pogo_verifier::rounds::{artifacts_from, RoundsContract, ARTIFACTS, OPTIMIZER_RUNS, SOURCES, VIA_IR};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn artifacts_match_a_fresh_compilation() {
    let solc = Solc::from_install_script(&root().join("scripts/solc/install.sh")).unwrap();
    let compiled = solc.compile_units(&SOURCES, Some(OPTIMIZER_RUNS), VIA_IR).unwrap();
    let fresh = artifacts_from(&compiled).unwrap();
    let mut stale = Vec::new();
    for ((name, fresh), (_, committed)) in fresh.iter().zip(ARTIFACTS) {
        let committed: serde_json::Value = serde_json::from_str(committed).unwrap();
        if committed != *fresh {
            stale.push(name.clone());
            if std::env::var_os("POGO_BLESS").is_some() {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("contracts/build/{name}.json"));
                std::fs::write(&path, serde_json::to_string_pretty(fresh).unwrap() + "\n").unwrap();
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale artifacts {stale:?}: rerun with POGO_BLESS=1 after changing contracts/*.sol (then build again)"
    );
}

#[test]
fn every_part_deploys_under_the_size_limit() {
    let mut evm = Evm::new(Fork::Prague);
    let deployer = pogo_verifier::evm::Address::repeat_byte(1);
    let mut sizes = Vec::new();
    let deployed = pogo_verifier::rounds::deploy_contracts(|what, code| {
        let (address, _) = evm.deploy(deployer, code, pogo_verifier::evm::U256::ZERO)?;
        sizes.push((what.to_string(), address));
        Ok::<_, pogo_verifier::evm::EvmError>(address)
    })
    .unwrap();
    for (what, address) in &sizes {
        let size = evm.code_size(*address);
        assert!(size > 0 && size <= CODE_SIZE_LIMIT, "{what}: {size} bytes");
    }
    assert_eq!(sizes.len(), deployed.data.len() + 3);
    let mut evm = Evm::new(Fork::Prague);
    let (contract, receipt) = RoundsContract::deploy(&mut evm, deployer).unwrap();
    assert!(evm.code_size(contract.address) > 0);
    assert!(receipt.gas_used > 1_000_000, "the gas of every part: {}", receipt.gas_used);
}
