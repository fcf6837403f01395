//! What a verifying key commits to, in an auditor's terms: columns, gates and their
//! degrees, lookups, the permutation, and the public inputs in order (`pogo audit`).

use halo2_base::halo2_proofs::halo2curves::bn256::G1Affine;
use halo2_base::halo2_proofs::plonk::VerifyingKey;
use serde::Serialize;

/// One custom gate.
#[derive(Debug, Clone, Serialize)]
pub struct GateSummary {
    /// The gate's name.
    pub name: String,
    /// Polynomial constraints in it.
    pub constraints: usize,
    /// Highest degree among them.
    pub degree: usize,
}

/// One lookup argument.
#[derive(Debug, Clone, Serialize)]
pub struct LookupSummary {
    /// Its name.
    pub name: String,
    /// Input expressions (one per table column).
    pub inputs: usize,
    /// Highest degree of an input expression.
    pub input_degree: usize,
    /// Highest degree of a table expression.
    pub table_degree: usize,
}

/// The verifying key's constraint system, after keygen (selectors compressed into fixed
/// columns): what the verifier, native or on chain, actually checks.
#[derive(Debug, Clone, Serialize)]
pub struct ConstraintReport {
    /// `2^k` rows.
    pub k: u32,
    /// Advice columns.
    pub advice_columns: usize,
    /// Fixed columns (including compressed selectors).
    pub fixed_columns: usize,
    /// Instance columns.
    pub instance_columns: usize,
    /// Columns under the copy-constraint permutation.
    pub permutation_columns: usize,
    /// Maximum constraint degree of the system.
    pub degree: usize,
    /// Blinding rows at the end of every column.
    pub blinding_factors: usize,
    /// Custom gates.
    pub gates: Vec<GateSummary>,
    /// Lookup arguments.
    pub lookups: Vec<LookupSummary>,
    /// Public inputs in order (DESIGN §2).
    pub public_inputs: Vec<String>,
}

/// The report of `vk` for `S` samples.
pub fn constraint_report(vk: &VerifyingKey<G1Affine>, samples: usize) -> ConstraintReport {
    let cs = vk.cs();
    let gates = cs
        .gates()
        .iter()
        .map(|gate| GateSummary {
            name: gate.name().to_string(),
            constraints: gate.polynomials().len(),
            degree: gate.polynomials().iter().map(|p| p.degree()).max().unwrap_or(0),
        })
        .collect();
    let lookups = cs
        .lookups()
        .iter()
        .map(|lookup| LookupSummary {
            name: lookup.name().to_string(),
            inputs: lookup.input_expressions().len(),
            input_degree: lookup.input_expressions().iter().map(|e| e.degree()).max().unwrap_or(0),
            table_degree: lookup.table_expressions().iter().map(|e| e.degree()).max().unwrap_or(0),
        })
        .collect();
    let mut public_inputs: Vec<String> =
        ["old_root", "new_root", "update_root", "nb"].into_iter().map(String::from).collect();
    public_inputs.extend((0..samples).map(|j| format!("i_{j}")));
    ConstraintReport {
        k: vk.get_domain().k(),
        advice_columns: cs.num_advice_columns(),
        fixed_columns: cs.num_fixed_columns(),
        instance_columns: cs.num_instance_columns(),
        permutation_columns: cs.permutation().get_columns().len(),
        degree: cs.degree(),
        blinding_factors: cs.blinding_factors(),
        gates,
        lookups,
        public_inputs,
    }
}
