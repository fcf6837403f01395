//! `UpdateCircuit{D, S}` (DESIGN §2 Circuit): for each sampled index `i_j`, knowledge of
//! block `i_j` of the old model, the new model and the update, such that
//! - the three leaves sit at `i_j` under `old_root`, `new_root`, `update_root`, with path bits
//!   the binary digits of `i_j` and `i_j < nb`;
//! - every limb is `< 2^32`, every nibble `< 16`, the scale `< 2^32`;
//! - `u_new = u_old + s·(n − 8)` for all 112 weights.
//!
//! Public inputs, in order: `old_root, new_root, update_root, nb, i_0..i_{S-1}`.
//!
//! The witness is kept at field level ([`SampleWitness`]) so soundness tests can hand the
//! circuit values no honest encoder produces (a nibble of 16, a scale of 2^32) with roots
//! that are consistent with them, and see exactly one constraint fail.

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::{BaseCircuitParams, BaseConfig};
use halo2_base::gates::{GateInstructions, RangeInstructions};
use halo2_base::halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
use halo2_base::halo2_proofs::plonk::{Circuit, ConstraintSystem, Error};
use halo2_base::QuantumCell::{Constant, Existing, Witness};

use crate::config::RESERVED_ROWS;
use crate::encoding::{UpdateBlock, BLOCK_WEIGHTS, ELEMENTS_PER_BLOCK, LIMBS_PER_ELEMENT, NIBBLES_PER_HALF};
use crate::field::{Field, Fr};
use crate::gadgets::linear::{combine, Value};
use crate::gadgets::pow5::{rows_per_hash, Pow5Config, Tamper};
use crate::gadgets::{merkle, poseidon, AssignedValue, Context, Gate, Range};
use crate::merkle::{MerklePath, MAX_DEPTH};

/// Bits of a stored weight and of a scale.
const LIMB_BITS: usize = 32;
/// Bits of a nibble.
const NIBBLE_BITS: usize = 4;

/// The public inputs of one proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicInputs {
    /// Root of the committed old model.
    pub old_root: Fr,
    /// Root of the committed new model.
    pub new_root: Fr,
    /// Root of the committed update.
    pub update_root: Fr,
    /// Number of blocks `nb`.
    pub blocks: u64,
    /// The sampled indices `i_0..i_{S-1}`.
    pub indices: Vec<u64>,
}

impl PublicInputs {
    /// The instance column, in DESIGN §2 order.
    pub fn to_instances(&self) -> Vec<Fr> {
        let mut out = vec![self.old_root, self.new_root, self.update_root, Fr::from(self.blocks)];
        out.extend(self.indices.iter().map(|&i| Fr::from(i)));
        out
    }
}

/// The private witness of one sampled block, as field elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleWitness {
    /// The 112 stored old weights `u_old`.
    pub old_limbs: Vec<Fr>,
    /// The 112 stored new weights `u_new`.
    pub new_limbs: Vec<Fr>,
    /// The block scale `s`.
    pub scale: Fr,
    /// The 112 nibbles `n`.
    pub nibbles: Vec<Fr>,
    /// Siblings of the old-model leaf, leaf level first.
    pub old_siblings: Vec<Fr>,
    /// Siblings of the new-model leaf.
    pub new_siblings: Vec<Fr>,
    /// Siblings of the update leaf.
    pub update_siblings: Vec<Fr>,
}

impl SampleWitness {
    /// The honest witness of one block from native values and the three openings
    /// (old model, new model, update) at the same index.
    pub fn from_blocks(
        old: &[u32; BLOCK_WEIGHTS],
        new: &[u32; BLOCK_WEIGHTS],
        update: &UpdateBlock,
        paths: [&MerklePath; 3],
    ) -> Self {
        let limbs = |b: &[u32; BLOCK_WEIGHTS]| b.iter().map(|&u| Fr::from(u64::from(u))).collect();
        Self {
            old_limbs: limbs(old),
            new_limbs: limbs(new),
            scale: Fr::from(u64::from(update.scale)),
            nibbles: update.nibbles.iter().map(|n| Fr::from(u64::from(n.get()))).collect(),
            old_siblings: paths[0].siblings.clone(),
            new_siblings: paths[1].siblings.clone(),
            update_siblings: paths[2].siblings.clone(),
        }
    }
}

/// The leaf `H_16(e_0..e_15)` of 112 limbs given as field elements (any values: the
/// witness-level reference; for honest limbs it equals [`crate::encoding::block_leaf`]).
pub fn limbs_leaf(limbs: &[Fr]) -> Fr {
    let shift = Fr::from(1u64 << 32);
    let elements: Vec<Fr> = limbs
        .chunks(LIMBS_PER_ELEMENT)
        .map(|chunk| chunk.iter().rev().fold(Fr::ZERO, |acc, limb| acc * shift + limb))
        .collect();
    crate::poseidon::hash_slice(&elements).expect("16 elements")
}

/// The update leaf `H_3(q_lo, q_hi, s)` of nibbles and a scale given as field elements.
pub fn nibbles_leaf(nibbles: &[Fr], scale: Fr) -> Fr {
    let pack = |half: &[Fr]| half.iter().rev().fold(Fr::ZERO, |acc, n| acc * Fr::from(16) + n);
    crate::poseidon::hash([pack(&nibbles[..NIBBLES_PER_HALF]), pack(&nibbles[NIBBLES_PER_HALF..]), scale])
}

/// The cells of one sample, returned so tests can tamper with exactly one class of them.
#[derive(Debug, Clone)]
pub struct SampleCells {
    /// Path bits of the index, leaf level first.
    pub bits: Vec<AssignedValue<Fr>>,
    /// Old limbs.
    pub old_limbs: Vec<AssignedValue<Fr>>,
    /// New limbs.
    pub new_limbs: Vec<AssignedValue<Fr>>,
    /// Nibbles.
    pub nibbles: Vec<AssignedValue<Fr>>,
    /// Scale.
    pub scale: AssignedValue<Fr>,
    /// Old, new and update leaves.
    pub leaves: [AssignedValue<Fr>; 3],
    /// Old, new and update siblings.
    pub siblings: [Vec<AssignedValue<Fr>>; 3],
}

/// The circuit's input was malformed (wrong counts); a programming or file error, never
/// a soundness question (those are the constraints' job).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessShapeError {
    /// Depth outside `1..=32`.
    #[error("tree depth must be between 1 and {MAX_DEPTH}, got {0}")]
    Depth(u32),
    /// Samples given differ from the indices.
    #[error("{indices} sampled indices but {witnesses} block witnesses")]
    Samples {
        /// Indices in the public inputs.
        indices: usize,
        /// Witnesses given.
        witnesses: usize,
    },
    /// A vector of the witness has the wrong length.
    #[error("sample {sample}: {what} has {got} entries, expected {expected}")]
    Length {
        /// Which sample.
        sample: usize,
        /// Which field.
        what: &'static str,
        /// Given.
        got: usize,
        /// Expected.
        expected: usize,
    },
}

/// Checks counts before any constraint is laid out.
pub fn check_shape(depth: u32, inputs: &PublicInputs, samples: &[SampleWitness]) -> Result<(), WitnessShapeError> {
    if !(1..=MAX_DEPTH).contains(&depth) {
        return Err(WitnessShapeError::Depth(depth));
    }
    if inputs.indices.len() != samples.len() {
        return Err(WitnessShapeError::Samples { indices: inputs.indices.len(), witnesses: samples.len() });
    }
    let weights = ELEMENTS_PER_BLOCK * LIMBS_PER_ELEMENT;
    for (sample, w) in samples.iter().enumerate() {
        let fields: [(&'static str, usize, usize); 6] = [
            ("old_limbs", w.old_limbs.len(), weights),
            ("new_limbs", w.new_limbs.len(), weights),
            ("nibbles", w.nibbles.len(), weights),
            ("old_siblings", w.old_siblings.len(), depth as usize),
            ("new_siblings", w.new_siblings.len(), depth as usize),
            ("update_siblings", w.update_siblings.len(), depth as usize),
        ];
        if let Some((what, got, expected)) = fields.into_iter().find(|(_, got, expected)| got != expected) {
            return Err(WitnessShapeError::Length { sample, what, got, expected });
        }
    }
    Ok(())
}

/// One Merkle-level hash `out = H_2(left, right)`: the cells live in halo2-base's
/// region, the permutation itself in the rows of the `H_2` gates ([`Pow5Config`]).
#[derive(Debug, Clone, Copy)]
pub struct HashCall {
    /// A constant 0: the capacity element the permutation starts from.
    pub zero: AssignedValue<Fr>,
    /// Left input.
    pub left: AssignedValue<Fr>,
    /// Right input.
    pub right: AssignedValue<Fr>,
    /// The output, loaded as a witness and tied to the permutation's result.
    pub out: AssignedValue<Fr>,
}

/// What [`synthesize`] laid out.
#[derive(Debug, Clone)]
pub struct Synthesized {
    /// The cells of every sample.
    pub samples: Vec<SampleCells>,
    /// Every Merkle-level `H_2`, to be proven by [`UpdateCircuit`]'s `H_2` gates.
    pub hashes: Vec<HashCall>,
}

/// Deliberately weakened versions of the circuit, each missing one constraint. Only
/// `pogo audit` and its tests build them, to show that the audit notices the gap; keys are
/// only ever made for [`Variant::Sound`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Variant {
    /// The circuit of DESIGN §2.
    #[default]
    Sound,
    /// Old and new limbs are not range-checked to 32 bits.
    NoLimbRangeCheck,
    /// Nibbles are not range-checked to 4 bits.
    NoNibbleRangeCheck,
    /// Path bits are free boolean witnesses (the binary digits of the given positions, one
    /// per sample), not the binary digits of the public index.
    UnboundPathBits(Vec<u64>),
}

impl Variant {
    /// A short name (`sound`, `no-limb-range-check`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Variant::Sound => "sound",
            Variant::NoLimbRangeCheck => "no-limb-range-check",
            Variant::NoNibbleRangeCheck => "no-nibble-range-check",
            Variant::UnboundPathBits(_) => "unbound-path-bits",
        }
    }
}

/// Lays out `UpdateCircuit{D, S}` in `builder` (which must have lookup bits and one instance
/// column set) and exposes the public inputs. Merkle-level hashes are recorded, not laid
/// out: wrap the builder and them in [`UpdateCircuit`].
pub fn synthesize(
    builder: &mut BaseCircuitBuilder<Fr>,
    depth: u32,
    inputs: &PublicInputs,
    samples: &[SampleWitness],
) -> Result<Synthesized, WitnessShapeError> {
    synthesize_variant(builder, depth, inputs, samples, &Variant::Sound)
}

/// [`synthesize`] for a [`Variant`] (audits only; see there).
pub fn synthesize_variant(
    builder: &mut BaseCircuitBuilder<Fr>,
    depth: u32,
    inputs: &PublicInputs,
    samples: &[SampleWitness],
    variant: &Variant,
) -> Result<Synthesized, WitnessShapeError> {
    check_shape(depth, inputs, samples)?;
    if let Variant::UnboundPathBits(positions) = variant {
        if positions.len() != samples.len() {
            return Err(WitnessShapeError::Samples { indices: positions.len(), witnesses: samples.len() });
        }
    }
    let range = builder.range_chip();
    let gate = range.gate().clone();
    let ctx = builder.main(0);

    // Public inputs (DESIGN §2 order).
    let public = ctx.assign_witnesses(inputs.to_instances());
    let (old_root, new_root, update_root, blocks) = (public[0], public[1], public[2], public[3]);
    let index_cells = public[4..].to_vec();
    // nb ≤ 2^D, so D + 1 bits bound it and make `i < nb` below sound.
    let index_bits = depth as usize + 1;
    range.range_check(ctx, blocks, index_bits);

    let mut cells = Vec::with_capacity(samples.len());
    let mut hashes = Vec::with_capacity(3 * depth as usize * samples.len());
    let checked = |enforce: bool, bits: usize| enforce.then_some(bits);
    for (j, (index, w)) in index_cells.iter().zip(samples).enumerate() {
        // Path bits are the binary digits of i_j (which also bounds i_j < 2^D), and i_j < nb.
        let bits = match variant {
            Variant::UnboundPathBits(positions) => {
                let bits: Vec<Fr> = (0..depth).map(|b| Fr::from((positions[j] >> b) & 1)).collect();
                let bits = ctx.assign_witnesses(bits);
                for bit in &bits {
                    gate.assert_bit(ctx, *bit);
                }
                bits
            }
            _ => gate.num_to_bits(ctx, *index, depth as usize),
        };
        range.check_less_than(ctx, *index, blocks, index_bits);

        // Limbs, nibbles and scale, each range-checked (DESIGN §2 Circuit).
        let limb_bits = checked(*variant != Variant::NoLimbRangeCheck, LIMB_BITS);
        let nibble_bits = checked(*variant != Variant::NoNibbleRangeCheck, NIBBLE_BITS);
        let old_limbs = load_checked(ctx, &range, &w.old_limbs, limb_bits);
        let new_limbs = load_checked(ctx, &range, &w.new_limbs, limb_bits);
        let nibbles = load_checked(ctx, &range, &w.nibbles, nibble_bits);
        let scale = load_checked(ctx, &range, &[w.scale], Some(LIMB_BITS))[0];

        // u_new = u_old + s·(n − 8): with all values range-checked, both sides are far
        // below r/2 in size, so equality in the field is equality of integers.
        apply_rule(ctx, &old_limbs, &new_limbs, &nibbles, scale);

        // Leaves (DESIGN §2 Blocks, Update) and their paths under the public roots.
        let old_leaf = block_leaf(ctx, &gate, &old_limbs);
        let new_leaf = block_leaf(ctx, &gate, &new_limbs);
        let update_leaf = update_leaf(ctx, &gate, &nibbles, scale);
        let siblings = [&w.old_siblings, &w.new_siblings, &w.update_siblings].map(|s| ctx.assign_witnesses(s.clone()));
        for ((leaf, path), root) in
            [old_leaf, new_leaf, update_leaf].iter().zip(&siblings).zip([old_root, new_root, update_root])
        {
            let computed = merkle::root_with(ctx, *leaf, &bits, path, &mut |ctx, left, right| {
                let out = ctx.load_witness(crate::poseidon::hash2(*left.value(), *right.value()));
                let zero = ctx.load_zero();
                hashes.push(HashCall { zero, left, right, out });
                out
            });
            ctx.constrain_equal(&computed, &root);
        }
        cells.push(SampleCells {
            bits,
            old_limbs,
            new_limbs,
            nibbles,
            scale,
            leaves: [old_leaf, new_leaf, update_leaf],
            siblings,
        });
    }
    builder.assigned_instances = vec![public];
    Ok(Synthesized { samples: cells, hashes })
}

/// `UpdateCircuit{D, S}` as halo2 sees it: halo2-base's region (everything but the
/// Merkle-level hashes) plus the rows of the `H_2` gates after it, tied by copy constraints.
pub struct UpdateCircuit {
    /// The laid-out flex-gate part.
    pub builder: BaseCircuitBuilder<Fr>,
    /// The Merkle-level hashes it recorded.
    pub hashes: Vec<HashCall>,
    /// Soundness tests only: a fault in the `H_2` rows.
    pub tamper: Option<Tamper>,
}

impl UpdateCircuit {
    /// Wraps a builder laid out by [`synthesize`] (with its parameters calculated or set).
    pub fn new(builder: BaseCircuitBuilder<Fr>, hashes: Vec<HashCall>) -> Self {
        Self { builder, hashes, tamper: None }
    }
}

/// Columns and gates of [`UpdateCircuit`].
#[derive(Clone, Debug)]
pub struct UpdateCircuitConfig {
    base: BaseConfig<Fr>,
    pow5: Pow5Config,
}

impl Circuit<Fr> for UpdateCircuit {
    type Config = UpdateCircuitConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = BaseCircuitParams;

    fn params(&self) -> Self::Params {
        self.builder.config_params.clone()
    }

    fn without_witnesses(&self) -> Self {
        // halo2-axiom's keygen and prover never ask for it (halo2-base's builder has none).
        unreachable!("UpdateCircuit is always built from a laid-out builder")
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: Self::Params) -> Self::Config {
        let base = BaseConfig::configure(meta, params);
        let gate = base.gate();
        assert!(
            gate.basic_gates[0].len() == 1 && gate.constants.len() == 1,
            "UpdateCircuit lays out one advice and one constants column"
        );
        let pow5 = Pow5Config::configure(meta, gate.basic_gates[0][0].value, gate.constants[0]);
        UpdateCircuitConfig { base, pow5 }
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> Self::Config {
        unreachable!("UpdateCircuit is configured with parameters")
    }

    fn synthesize(&self, config: Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), Error> {
        self.builder.synthesize(config.base.clone(), layouter.namespace(|| "flex gate"))?;
        let pairs: Vec<(Fr, Fr)> = self.hashes.iter().map(|h| (*h.left.value(), *h.right.value())).collect();
        let link = !self.builder.witness_gen_only();
        // The H_2 rows follow the flex gate's in its column; the round constants share the
        // constants column, whose halo2-base constants end far above.
        let statistics = self.builder.statistics();
        let start = statistics.gate.total_advice_per_phase[0];
        let usable = (1usize << self.builder.config_params.k) - RESERVED_ROWS;
        if start + pairs.len() * rows_per_hash() > usable || statistics.gate.total_fixed > start {
            return Err(Error::NotEnoughRowsAvailable { current_k: self.builder.config_params.k as u32 });
        }
        layouter.assign_region(
            || "H_2 rounds",
            |mut region| {
                let cells = config.pow5.assign(&mut region, start, &pairs, self.tamper);
                if link {
                    // Tie inputs and output to the flex-gate cells they stand for.
                    let copies = self.builder.core().copy_manager.lock().expect("copy manager lock");
                    let physical = |v: &AssignedValue<Fr>| {
                        *copies.assigned_advices.get(&v.cell.expect("a virtual cell")).expect("laid out before")
                    };
                    for (call, hashed) in self.hashes.iter().zip(&cells) {
                        region.constrain_equal(physical(&call.zero), hashed.capacity);
                        region.constrain_equal(physical(&call.left), hashed.inputs[0]);
                        region.constrain_equal(physical(&call.right), hashed.inputs[1]);
                        region.constrain_equal(physical(&call.out), hashed.output);
                    }
                }
                Ok(())
            },
        )
    }
}

/// Loads witnesses, range-checking each to `bits` (`None` only in weakened variants).
fn load_checked(ctx: &mut Context<Fr>, range: &Range, values: &[Fr], bits: Option<usize>) -> Vec<AssignedValue<Fr>> {
    let cells = ctx.assign_witnesses(values.iter().copied());
    if let Some(bits) = bits {
        for cell in &cells {
            range.range_check(ctx, *cell, bits);
        }
    }
    cells
}

/// `| u_old | s | n | t | 1 | −8s | u_new |`: `t = u_old + s·n`, `u_new = t + 1·(−8s)`.
fn apply_rule(
    ctx: &mut Context<Fr>,
    old: &[AssignedValue<Fr>],
    new: &[AssignedValue<Fr>],
    nibbles: &[AssignedValue<Fr>],
    scale: AssignedValue<Fr>,
) {
    let minus_8s = combine(ctx, Fr::ZERO, &[(-Fr::from(8), Value::Cell(scale))]).into_cell(ctx);
    for ((u_old, u_new), n) in old.iter().zip(new).zip(nibbles) {
        let t = *u_old.value() + *scale.value() * n.value();
        ctx.assign_region(
            [
                Existing(*u_old),
                Existing(scale),
                Existing(*n),
                Witness(t),
                Constant(Fr::ONE),
                Existing(minus_8s),
                Existing(*u_new),
            ],
            [0, 3],
        );
    }
}

/// `L = H_16(e_0..e_15)`, `e_k = Σ_{j<7} u_{7k+j} · 2^(32j)`.
fn block_leaf(ctx: &mut Context<Fr>, gate: &Gate, limbs: &[AssignedValue<Fr>]) -> AssignedValue<Fr> {
    let elements: Vec<_> = limbs.chunks(LIMBS_PER_ELEMENT).map(|chunk| pack(ctx, chunk, 32)).collect();
    poseidon::hash(ctx, gate, &elements)
}

/// `U = H_3(q_lo, q_hi, s)`, `q = Σ_{j<56} n_j · 2^(4j)` per half.
fn update_leaf(
    ctx: &mut Context<Fr>,
    gate: &Gate,
    nibbles: &[AssignedValue<Fr>],
    scale: AssignedValue<Fr>,
) -> AssignedValue<Fr> {
    let lo = pack(ctx, &nibbles[..NIBBLES_PER_HALF], 4);
    let hi = pack(ctx, &nibbles[NIBBLES_PER_HALF..], 4);
    poseidon::hash(ctx, gate, &[lo, hi, scale])
}

/// `Σ_j x_j · 2^(width·j)`.
fn pack(ctx: &mut Context<Fr>, parts: &[AssignedValue<Fr>], width: u64) -> AssignedValue<Fr> {
    let base = Fr::from(2).pow_vartime([width]);
    let mut coeff = Fr::ONE;
    let terms: Vec<(Fr, Value)> = parts
        .iter()
        .map(|x| {
            let term = (coeff, Value::Cell(*x));
            coeff *= base;
            term
        })
        .collect();
    combine(ctx, Fr::ZERO, &terms).into_cell(ctx)
}
