//! Circuit configurations: `UpdateCircuit{D, S}` plus the shape halo2 needs (rows `2^k`,
//! lookup table size, columns). The layout depends only on `(D, S)`, never on witness
//! values, so one dry run with placeholder values measures it exactly.

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::BaseCircuitParams;

use crate::encoding::BLOCK_WEIGHTS;
use crate::field::{Field, Fr};
use crate::gadgets::pow5::rows_per_hash;
use crate::merkle::MAX_DEPTH;
use crate::update_circuit::{synthesize, PublicInputs, SampleWitness, UpdateCircuit, WitnessShapeError};

/// Rows reserved for halo2's blinding factors.
pub const RESERVED_ROWS: usize = 20;
/// Smallest and largest supported `k`.
const K_RANGE: std::ops::RangeInclusive<u32> = 12..=24;
/// Advice columns of every configuration: one, shared by the flex gate and the `H_2`
/// gates. Proving time falls with more columns, but every column costs the on-chain
/// verifier ~36k gas and ~1.3 KB of code (DESIGN §4, docs/BENCHMARKS.md); with one, proof
/// verification stays under 350k gas and the S = 32, D = 20 verifier under EIP-170, at the
/// price of k = 21 and 2–3× the proving time of a wide layout. Proofs are made once per
/// round, verified on chain every round.
const ADVICE_COLUMNS: usize = 1;

/// `UpdateCircuit{D, S}`: tree depth and samples per proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CircuitConfig {
    /// Tree depth `D`.
    pub depth: u32,
    /// Sampled blocks `S`.
    pub samples: usize,
}

/// A configuration was invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Depth outside `1..=32`.
    #[error("tree depth must be between 1 and {MAX_DEPTH}, got {0}")]
    Depth(u32),
    /// No samples, or absurdly many.
    #[error("samples per proof must be between 1 and 1024, got {0}")]
    Samples(usize),
    /// Too large for any supported `k`.
    #[error("UpdateCircuit{{D = {depth}, S = {samples}}} needs {cells} cells, more than 2^{max_k} rows of {ADVICE_COLUMNS} columns")]
    TooLarge {
        /// `D`.
        depth: u32,
        /// `S`.
        samples: usize,
        /// Advice cells.
        cells: usize,
        /// Largest `k`.
        max_k: u32,
    },
    /// Laying out the circuit failed.
    #[error(transparent)]
    Shape(#[from] WitnessShapeError),
    /// halo2 could not synthesize the circuit (the mock prover's setup step).
    #[error("halo2 could not synthesize the circuit: {0}")]
    Synthesis(String),
}

impl CircuitConfig {
    /// A checked configuration.
    pub fn new(depth: u32, samples: usize) -> Result<Self, ConfigError> {
        if !(1..=MAX_DEPTH).contains(&depth) {
            return Err(ConfigError::Depth(depth));
        }
        if !(1..=1024).contains(&samples) {
            return Err(ConfigError::Samples(samples));
        }
        Ok(Self { depth, samples })
    }

    /// A short name, e.g. `d20-s32`, used for folders under `params/`.
    pub fn name(&self) -> String {
        format!("d{}-s{}", self.depth, self.samples)
    }

    /// Placeholder inputs of the right shape (values are irrelevant to the layout).
    pub fn placeholder(&self) -> (PublicInputs, Vec<SampleWitness>) {
        let zeros = |n: usize| vec![Fr::ZERO; n];
        let inputs = PublicInputs {
            old_root: Fr::ZERO,
            new_root: Fr::ZERO,
            update_root: Fr::ZERO,
            blocks: 1,
            indices: vec![0; self.samples],
        };
        let sample = SampleWitness {
            old_limbs: zeros(BLOCK_WEIGHTS),
            new_limbs: zeros(BLOCK_WEIGHTS),
            scale: Fr::ZERO,
            nibbles: zeros(BLOCK_WEIGHTS),
            old_siblings: zeros(self.depth as usize),
            new_siblings: zeros(self.depth as usize),
            update_siblings: zeros(self.depth as usize),
        };
        (inputs, vec![sample; self.samples])
    }

    /// Rows of the `H_2` gates: three Merkle paths of `D` levels per sample.
    pub fn hash_rows(&self) -> usize {
        3 * self.depth as usize * self.samples * rows_per_hash()
    }

    /// Measures the layout and picks `k` and the lookup table size.
    pub fn shape(&self) -> Result<CircuitShape, ConfigError> {
        // A 2^16 table range-checks 32-bit values in two lookups but needs k ≥ 17;
        // smaller circuits use a 2^8 table.
        let hash_rows = self.hash_rows();
        for lookup_bits in [16usize, 8] {
            let flex_cells = self.count_cells(lookup_bits)?;
            // The H_2 rows follow the flex gate's in the same column.
            let cells = flex_cells + hash_rows;
            let fits = |k: &u32| cells <= ADVICE_COLUMNS * ((1usize << k) - RESERVED_ROWS);
            let k = K_RANGE.clone().find(fits).ok_or(ConfigError::TooLarge {
                depth: self.depth,
                samples: self.samples,
                cells,
                max_k: *K_RANGE.end(),
            })?;
            if lookup_bits < k as usize {
                return Ok(CircuitShape { config: *self, k, lookup_bits, advice_cells: cells });
            }
        }
        unreachable!("an 8-bit table fits every k ≥ 12")
    }

    fn count_cells(&self, lookup_bits: usize) -> Result<usize, ConfigError> {
        let mut builder = BaseCircuitBuilder::<Fr>::new(false)
            .use_k(*K_RANGE.end() as usize)
            .use_lookup_bits(lookup_bits)
            .use_instance_columns(1);
        let (inputs, samples) = self.placeholder();
        synthesize(&mut builder, self.depth, &inputs, &samples)?;
        Ok(builder.statistics().gate.total_advice_per_phase[0])
    }
}

/// A configuration with its measured shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CircuitShape {
    /// `(D, S)`.
    pub config: CircuitConfig,
    /// `2^k` rows.
    pub k: u32,
    /// Range-check table of `2^lookup_bits` rows.
    pub lookup_bits: usize,
    /// Advice cells: the flex gate's plus the `H_2` gates' rows.
    pub advice_cells: usize,
}

impl CircuitShape {
    /// A builder laid out for keygen (`witness_gen_only = false`) or for a dry run.
    pub fn builder(&self) -> BaseCircuitBuilder<Fr> {
        BaseCircuitBuilder::new(false).use_k(self.k as usize).use_lookup_bits(self.lookup_bits).use_instance_columns(1)
    }

    /// Checks a shape and column parameters read from a file (a key manifest) against the
    /// layout this circuit has — one advice column, one fixed column, one lookup column in
    /// phase 0, one instance column, `k` in 12..=24 and a lookup table below `2^k` — before
    /// anything sizes allocations by them (halo2-base allocates per declared column).
    pub fn check_params(&self, params: &BaseCircuitParams) -> Result<(), String> {
        CircuitConfig::new(self.config.depth, self.config.samples).map_err(|e| e.to_string())?;
        if !K_RANGE.contains(&self.k) {
            return Err(format!("k = {} is outside {}..={}", self.k, K_RANGE.start(), K_RANGE.end()));
        }
        if !(self.lookup_bits == 8 || self.lookup_bits == 16) || self.lookup_bits >= self.k as usize {
            return Err(format!("lookup_bits = {} is neither 8 nor 16 below k = {}", self.lookup_bits, self.k));
        }
        let lookups_ok = params.num_lookup_advice_per_phase.first() == Some(&1)
            && params.num_lookup_advice_per_phase.len() <= 3
            && params.num_lookup_advice_per_phase[1..].iter().all(|&n| n == 0);
        let checks = [
            (params.k == self.k as usize, format!("circuit_params.k = {} is not the shape's {}", params.k, self.k)),
            (
                params.num_advice_per_phase == [ADVICE_COLUMNS],
                format!("num_advice_per_phase {:?} is not [{ADVICE_COLUMNS}]", params.num_advice_per_phase),
            ),
            (params.num_fixed == 1, format!("num_fixed = {} is not 1", params.num_fixed)),
            (
                lookups_ok,
                format!("num_lookup_advice_per_phase {:?} is not [1, 0, 0]", params.num_lookup_advice_per_phase),
            ),
            (
                params.lookup_bits == Some(self.lookup_bits),
                format!("lookup_bits {:?} is not the shape's {}", params.lookup_bits, self.lookup_bits),
            ),
            (
                params.num_instance_columns == 1,
                format!("num_instance_columns = {} is not 1", params.num_instance_columns),
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err(why),
            None => Ok(()),
        }
    }

    /// Lays out the placeholder circuit and returns it with its column parameters, as
    /// keygen needs them.
    pub fn keygen_circuit(&self) -> Result<(UpdateCircuit, BaseCircuitParams), ConfigError> {
        let mut builder = self.builder();
        let (inputs, samples) = self.config.placeholder();
        let laid_out = synthesize(&mut builder, self.config.depth, &inputs, &samples)?;
        let params = builder.calculate_params(Some(RESERVED_ROWS));
        Ok((UpdateCircuit::new(builder, laid_out.hashes), params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_are_checked() {
        assert_eq!(CircuitConfig::new(0, 1), Err(ConfigError::Depth(0)));
        assert_eq!(CircuitConfig::new(33, 1), Err(ConfigError::Depth(33)));
        assert_eq!(CircuitConfig::new(3, 0), Err(ConfigError::Samples(0)));
        assert_eq!(CircuitConfig::new(20, 32).unwrap().name(), "d20-s32");
    }

    /// The fuzzing issue's A: a manifest declaring 10^9 advice columns must be refused
    /// before halo2-base allocates them; so must every other column count the circuit
    /// does not have.
    #[test]
    fn column_parameters_other_than_the_circuits_are_refused() {
        let shape = CircuitConfig::new(1, 1).unwrap().shape().unwrap();
        let (_, params) = shape.keygen_circuit().unwrap();
        assert_eq!(shape.check_params(&params), Ok(()));
        type Edit = fn(&mut BaseCircuitParams);
        let edits: [(Edit, &str); 6] = [
            (|p| p.num_advice_per_phase = vec![1_000_000_000], "num_advice_per_phase"),
            (|p| p.num_fixed = 1 << 30, "num_fixed"),
            (|p| p.num_lookup_advice_per_phase = vec![1 << 30], "num_lookup_advice_per_phase"),
            (|p| p.k += 1, "circuit_params.k"),
            (|p| p.lookup_bits = Some(30), "lookup_bits"),
            (|p| p.num_instance_columns = 9, "num_instance_columns"),
        ];
        for (edit, needle) in edits {
            let mut bad = params.clone();
            edit(&mut bad);
            assert!(shape.check_params(&bad).unwrap_err().contains(needle), "{needle}");
        }
        let huge = CircuitShape { k: 55, ..shape };
        assert!(huge.check_params(&params).unwrap_err().contains("k = 55"));
    }

    #[test]
    fn shape_grows_with_depth_and_samples() {
        let small = CircuitConfig::new(2, 1).unwrap().shape().unwrap();
        let deeper = CircuitConfig::new(4, 1).unwrap().shape().unwrap();
        let more = CircuitConfig::new(2, 2).unwrap().shape().unwrap();
        assert!(deeper.advice_cells > small.advice_cells && more.advice_cells > small.advice_cells);
        assert!(small.lookup_bits < small.k as usize);
        assert!(small.advice_cells <= ADVICE_COLUMNS << small.k);
    }
}
