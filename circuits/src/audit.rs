//! Mutation testing of `UpdateCircuit{D, S}` with halo2's `MockProver`: for every class of
//! witness cell, perturb assigned values (and, for the classic under-constraint attacks,
//! rewrite the witness so that everything else stays consistent) and check that the
//! circuit rejects. A mutation the circuit accepts is a *survivor*: a concrete
//! counter-example to soundness. Weakened [`Variant`]s show that the campaign finds them.

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::halo2_proofs::dev::MockProver;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::config::{CircuitConfig, ConfigError, RESERVED_ROWS};
use crate::encoding::{BLOCK_WEIGHTS, LIMBS_PER_ELEMENT, NIBBLES_PER_HALF};
use crate::field::{fr_to_hex, Field, Fr};
use crate::gadgets::pow5;
use crate::merkle::MerkleTree;
use crate::poseidon::spec::FULL_ROUNDS;
use crate::update_circuit::{
    limbs_leaf, nibbles_leaf, synthesize_variant, PublicInputs, SampleWitness, Synthesized, UpdateCircuit, Variant,
};

/// Classes of witness cells, as the audit reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellClass {
    /// A 32-bit limb of the old block.
    OldLimb,
    /// A 32-bit limb of the new block.
    NewLimb,
    /// A 4-bit nibble of the update.
    Nibble,
    /// The block scale.
    Scale,
    /// An old, new or update leaf.
    Leaf,
    /// A Merkle sibling.
    Sibling,
    /// A path bit.
    PathBit,
    /// A state or square cell of the `H_2` gates.
    HashState,
    /// The sampled index.
    Index,
}

/// One mutation and whether the circuit rejected it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The class of cell it targets.
    pub class: CellClass,
    /// What was changed.
    pub mutation: String,
    /// Whether the circuit rejected it (it must).
    pub rejected: bool,
    /// For survivors: the public inputs the circuit accepted (hex, DESIGN §2 order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_inputs: Option<Vec<String>>,
}

/// Tried and rejected mutations of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassSummary {
    /// The class.
    pub class: CellClass,
    /// Mutations tried.
    pub tried: usize,
    /// Mutations rejected.
    pub rejected: usize,
}

/// The result of a campaign.
#[derive(Debug, Clone, Serialize)]
pub struct MutationReport {
    /// The circuit variant tested.
    pub variant: String,
    /// `(D, S)` of the circuit the mutations ran on.
    pub depth: u32,
    /// Samples.
    pub samples: usize,
    /// Whether the honest witness was accepted (it must be, or nothing else means anything).
    pub honest_accepted: bool,
    /// Per class.
    pub classes: Vec<ClassSummary>,
    /// Every mutation.
    pub outcomes: Vec<Outcome>,
}

impl MutationReport {
    /// Mutations the circuit accepted.
    pub fn survivors(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| !o.rejected)
    }

    /// Sound: the honest witness passes and every mutation is rejected.
    pub fn passed(&self) -> bool {
        self.honest_accepted && self.survivors().next().is_none()
    }
}

/// One block of a scenario, as field elements so mutations may leave the honest ranges.
#[derive(Debug, Clone)]
struct Block {
    old: Vec<Fr>,
    new: Vec<Fr>,
    nibbles: Vec<Fr>,
    scale: Fr,
}

/// A model, an update and the new model over `2^D` slots, of which the first `nb` are
/// the task's blocks; [`Scenario::hidden`] more carry data past `nb` (a dishonest tree).
#[derive(Debug, Clone)]
struct Scenario {
    depth: u32,
    nb: u64,
    blocks: Vec<Block>,
}

fn small(x: u64) -> Fr {
    Fr::from(x)
}

impl Scenario {
    /// Random honest blocks: `nb` real ones plus `hidden` extra leaves past `nb`.
    fn random(depth: u32, nb: u64, hidden: u64, rng: &mut ChaCha20Rng) -> Self {
        let blocks = (0..nb + hidden)
            .map(|_| {
                let scale: u64 = rng.gen_range(1..1000);
                let nibbles: Vec<u64> = (0..BLOCK_WEIGHTS).map(|_| rng.gen_range(0..16)).collect();
                let old: Vec<u64> =
                    (0..BLOCK_WEIGHTS).map(|_| rng.gen_range(1 << 20..(1u64 << 32) - (1 << 20))).collect();
                let new: Vec<u64> = old.iter().zip(&nibbles).map(|(u, n)| u + scale * n - 8 * scale).collect();
                Block {
                    old: old.into_iter().map(small).collect(),
                    new: new.into_iter().map(small).collect(),
                    nibbles: nibbles.into_iter().map(small).collect(),
                    scale: small(scale),
                }
            })
            .collect();
        Scenario { depth, nb, blocks }
    }

    fn trees(&self) -> [MerkleTree; 3] {
        let leaves = |f: &dyn Fn(&Block) -> Fr| self.blocks.iter().map(f).collect::<Vec<_>>();
        let build = |l: Vec<Fr>| MerkleTree::build(l, self.depth).expect("scenario fits its depth");
        [
            build(leaves(&|b| limbs_leaf(&b.old))),
            build(leaves(&|b| limbs_leaf(&b.new))),
            build(leaves(&|b| nibbles_leaf(&b.nibbles, b.scale))),
        ]
    }

    /// Public inputs with `indices`, and witnesses opening the blocks at `positions`
    /// (equal to `indices` for an honest prover).
    fn statement(&self, indices: &[u64], positions: &[u64]) -> (PublicInputs, Vec<SampleWitness>) {
        let trees = self.trees();
        let inputs = PublicInputs {
            old_root: trees[0].root(),
            new_root: trees[1].root(),
            update_root: trees[2].root(),
            blocks: self.nb,
            indices: indices.to_vec(),
        };
        let samples = positions
            .iter()
            .map(|&p| {
                let b = &self.blocks[p as usize];
                let path = |t: &MerkleTree| t.open(p).expect("position in the tree").siblings;
                SampleWitness {
                    old_limbs: b.old.clone(),
                    new_limbs: b.new.clone(),
                    scale: b.scale,
                    nibbles: b.nibbles.clone(),
                    old_siblings: path(&trees[0]),
                    new_siblings: path(&trees[1]),
                    update_siblings: path(&trees[2]),
                }
            })
            .collect();
        (inputs, samples)
    }
}

/// What one mutation changes.
type Prank = Box<dyn Fn(&mut BaseCircuitBuilder<Fr>, &Synthesized)>;

struct Trial {
    class: CellClass,
    mutation: String,
    inputs: PublicInputs,
    samples: Vec<SampleWitness>,
    positions: Vec<u64>,
    prank: Option<Prank>,
    region: Option<pow5::Tamper>,
}

/// Runs the circuit variant on a witness under MockProver; `true` if accepted.
fn accepts(
    config: &CircuitConfig,
    k: u32,
    lookup_bits: usize,
    variant: &Variant,
    trial: &Trial,
) -> Result<bool, ConfigError> {
    let mut builder =
        BaseCircuitBuilder::<Fr>::new(false).use_k(k as usize).use_lookup_bits(lookup_bits).use_instance_columns(1);
    let variant = match variant {
        Variant::UnboundPathBits(_) => Variant::UnboundPathBits(trial.positions.clone()),
        other => other.clone(),
    };
    let laid_out = synthesize_variant(&mut builder, config.depth, &trial.inputs, &trial.samples, &variant)?;
    if let Some(prank) = &trial.prank {
        prank(&mut builder, &laid_out);
    }
    builder.calculate_params(Some(RESERVED_ROWS));
    let mut circuit = UpdateCircuit::new(builder, laid_out.hashes);
    circuit.tamper = trial.region;
    let prover = MockProver::run(k, &circuit, vec![trial.inputs.to_instances()])
        .map_err(|e| ConfigError::Synthesis(format!("{e:?}")))?;
    Ok(prover.verify().is_ok())
}

/// Runs the mutation campaign on `UpdateCircuit{D, S}` (its real shape) for `variant`, with
/// randomness from `seed`. Needs `D ≥ 2` (room for a block past `nb`).
pub fn run(config: &CircuitConfig, variant: &Variant, seed: u64) -> Result<MutationReport, ConfigError> {
    let depth = config.depth;
    let samples = config.samples;
    if depth < 2 {
        return Err(ConfigError::Depth(depth));
    }
    let shape = config.shape()?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    // nb < 2^D with one hidden block past it, so "index = nb" is a real opening.
    let slots = 1u64 << depth.min(20);
    let nb = rng.gen_range(2..slots.min(64));
    let scenario = Scenario::random(depth, nb, 1, &mut rng);
    let indices: Vec<u64> = (0..samples).map(|_| rng.gen_range(0..nb)).collect();
    let (inputs, witness) = scenario.statement(&indices, &indices);

    let honest = Trial {
        class: CellClass::Index,
        mutation: "none (honest witness)".into(),
        inputs: inputs.clone(),
        samples: witness.clone(),
        positions: indices.clone(),
        prank: None,
        region: None,
    };
    let honest_accepted = accepts(config, shape.k, shape.lookup_bits, variant, &honest)?;

    let mut trials = cell_pranks(&inputs, &witness, &indices, depth, &mut rng);
    trials.extend(consistent_rewrites(&scenario, &indices, &mut rng));

    let mut outcomes = Vec::with_capacity(trials.len());
    for trial in &trials {
        let accepted = accepts(config, shape.k, shape.lookup_bits, variant, trial)?;
        outcomes.push(Outcome {
            class: trial.class,
            mutation: trial.mutation.clone(),
            rejected: !accepted,
            public_inputs: accepted.then(|| trial.inputs.to_instances().iter().map(fr_to_hex).collect()),
        });
    }
    let mut classes: Vec<ClassSummary> = Vec::new();
    for o in &outcomes {
        match classes.iter_mut().find(|c| c.class == o.class) {
            Some(c) => {
                c.tried += 1;
                c.rejected += usize::from(o.rejected);
            }
            None => classes.push(ClassSummary { class: o.class, tried: 1, rejected: usize::from(o.rejected) }),
        }
    }
    classes.sort_by_key(|c| c.class);
    Ok(MutationReport { variant: variant.name().into(), depth, samples, honest_accepted, classes, outcomes })
}

/// Single-cell perturbations of assigned values, everything else left as it was.
fn cell_pranks(
    inputs: &PublicInputs,
    witness: &[SampleWitness],
    indices: &[u64],
    depth: u32,
    rng: &mut ChaCha20Rng,
) -> Vec<Trial> {
    let two32 = Fr::from(1u64 << 32);
    let mut trials = Vec::new();
    let mut push = |class: CellClass, mutation: String, prank: Prank| {
        trials.push(Trial {
            class,
            mutation,
            inputs: inputs.clone(),
            samples: witness.to_vec(),
            positions: indices.to_vec(),
            prank: Some(prank),
            region: None,
        })
    };
    let samples = witness.len();
    for _ in 0..2 {
        let (j, k) = (rng.gen_range(0..samples), rng.gen_range(0..BLOCK_WEIGHTS));
        let random = Fr::from(rng.gen::<u64>());
        for (what, delta) in [("+1", Fr::ONE), ("+2^32", two32), ("-1", -Fr::ONE), ("+random", random)] {
            push(
                CellClass::OldLimb,
                format!("sample {j}, old limb {k} {what}"),
                Box::new(move |b, s| {
                    let cell = s.samples[j].old_limbs[k];
                    cell.debug_prank(b.main(0), *cell.value() + delta)
                }),
            );
            push(
                CellClass::NewLimb,
                format!("sample {j}, new limb {k} {what}"),
                Box::new(move |b, s| {
                    let cell = s.samples[j].new_limbs[k];
                    cell.debug_prank(b.main(0), *cell.value() + delta)
                }),
            );
        }
        for (what, value) in [("= 16", Some(Fr::from(16))), ("+1", None)] {
            push(
                CellClass::Nibble,
                format!("sample {j}, nibble {k} {what}"),
                Box::new(move |b, s| {
                    let cell = s.samples[j].nibbles[k];
                    cell.debug_prank(b.main(0), value.unwrap_or(*cell.value() + Fr::ONE))
                }),
            );
        }
        for (what, delta) in [("+1", Fr::ONE), ("+2^32", two32)] {
            push(
                CellClass::Scale,
                format!("sample {j}, scale {what}"),
                Box::new(move |b, s| {
                    let cell = s.samples[j].scale;
                    cell.debug_prank(b.main(0), *cell.value() + delta)
                }),
            );
        }
        for (t, tree) in ["old", "new", "update"].into_iter().enumerate() {
            push(
                CellClass::Leaf,
                format!("sample {j}, {tree} leaf +1"),
                Box::new(move |b, s| {
                    let cell = s.samples[j].leaves[t];
                    cell.debug_prank(b.main(0), *cell.value() + Fr::ONE)
                }),
            );
            let level = rng.gen_range(0..depth as usize);
            push(
                CellClass::Sibling,
                format!("sample {j}, {tree} sibling at level {level} +1"),
                Box::new(move |b, s| {
                    let cell = s.samples[j].siblings[t][level];
                    cell.debug_prank(b.main(0), *cell.value() + Fr::ONE)
                }),
            );
        }
        let level = rng.gen_range(0..depth as usize);
        push(
            CellClass::PathBit,
            format!("sample {j}, path bit {level} flipped"),
            Box::new(move |b, s| {
                let cell = s.samples[j].bits[level];
                cell.debug_prank(b.main(0), Fr::ONE - *cell.value())
            }),
        );
        push(
            CellClass::Index,
            format!("sample {j}, index cell +1"),
            Box::new(move |b, _| {
                // The index cells are the public-input cells 4 + j of the main context.
                let cell = b.assigned_instances[0][4 + j];
                cell.debug_prank(b.main(0), *cell.value() + Fr::ONE)
            }),
        );
    }
    // The H_2 rows: a state cell in a full and a partial round, a square, the output.
    let hashes = 3 * depth as usize * samples;
    let rounds = pow5::rounds();
    let picks = [
        (rng.gen_range(0..FULL_ROUNDS / 2), rng.gen_range(0..3)),
        (FULL_ROUNDS / 2 + 5, 0),
        (rng.gen_range(0..FULL_ROUNDS / 2), 3 + rng.gen_range(0..3)),
        (FULL_ROUNDS / 2 + 7, 3),
        (rounds, 0),
    ];
    for (round, column) in picks {
        let hash = rng.gen_range(0..hashes);
        let what = if column < 3 { format!("state s_{column}") } else { format!("square q_{}", column - 3) };
        trials.push(Trial {
            class: CellClass::HashState,
            mutation: format!("H_2 number {hash}, round {round}, {what} +1"),
            inputs: inputs.clone(),
            samples: witness.to_vec(),
            positions: indices.to_vec(),
            prank: None,
            region: Some(pow5::Tamper::Cell { hash, round, column }),
        });
    }
    trials
}

/// The classic under-constraint attacks: the witness is rewritten and every leaf, root and
/// public input recomputed to match, so only the constraint under test can object.
fn consistent_rewrites(scenario: &Scenario, indices: &[u64], rng: &mut ChaCha20Rng) -> Vec<Trial> {
    let two32 = Fr::from(1u64 << 32);
    let mut trials = Vec::new();
    let j = rng.gen_range(0..indices.len());
    let target = indices[j] as usize;
    let trial = |class, mutation: String, s: &Scenario, public: Vec<u64>, positions: Vec<u64>| {
        let (inputs, samples) = s.statement(&public, &positions);
        Trial { class, mutation, inputs, samples, positions, prank: None, region: None }
    };

    // Limb carry: limb k + 2^32 and limb k+1 − 1 pack to the same element, in both blocks.
    let k = rng.gen_range(0..BLOCK_WEIGHTS / LIMBS_PER_ELEMENT) * LIMBS_PER_ELEMENT + rng.gen_range(0..6);
    let mut s = scenario.clone();
    let block = &mut s.blocks[target];
    for limbs in [&mut block.old, &mut block.new] {
        limbs[k] += two32;
        limbs[k + 1] -= Fr::ONE;
    }
    trials.push(trial(
        CellClass::OldLimb,
        format!("block {target}: limb {k} + 2^32, limb {} − 1 (same leaves, apply rule holds)", k + 1),
        &s,
        indices.to_vec(),
        indices.to_vec(),
    ));

    // Nibble carry: nibble k + 16 and nibble k+1 − 1 pack to the same q; the new block
    // follows the apply rule for those nibbles (so the new root changes accordingly).
    let mut s = scenario.clone();
    let block = &mut s.blocks[target];
    let k = (0..NIBBLES_PER_HALF - 1).find(|&k| block.nibbles[k + 1] != Fr::ZERO).unwrap_or(0);
    block.nibbles[k] += Fr::from(16);
    block.nibbles[k + 1] -= Fr::ONE;
    block.new[k] += Fr::from(16) * block.scale;
    block.new[k + 1] -= block.scale;
    trials.push(trial(
        CellClass::Nibble,
        format!("block {target}: nibble {k} + 16, nibble {} − 1 (same update leaf, new block follows)", k + 1),
        &s,
        indices.to_vec(),
        indices.to_vec(),
    ));

    // Scale wrap: a zero update (all nibbles 8) with scale 2^32 + s changes nothing but the leaf.
    let mut s = scenario.clone();
    let block = &mut s.blocks[target];
    block.nibbles.iter_mut().for_each(|n| *n = Fr::from(8));
    block.new = block.old.clone();
    block.scale += two32;
    trials.push(trial(
        CellClass::Scale,
        format!("block {target}: zero update with scale + 2^32"),
        &s,
        indices.to_vec(),
        indices.to_vec(),
    ));

    // Another block opened under the sampled index (path bits not those of i_j).
    let other = (target as u64 + 1) % scenario.nb;
    let mut positions = indices.to_vec();
    positions[j] = other;
    trials.push(trial(
        CellClass::PathBit,
        format!("sample {j}: block {other} opened for sampled index {target}"),
        scenario,
        indices.to_vec(),
        positions,
    ));

    // An index equal to nb: the hidden block past nb opens honestly.
    let mut public = indices.to_vec();
    public[j] = scenario.nb;
    trials.push(trial(
        CellClass::Index,
        format!("sample {j}: index = nb = {} (a leaf past nb in the tree)", scenario.nb),
        scenario,
        public.clone(),
        public,
    ));
    trials
}
