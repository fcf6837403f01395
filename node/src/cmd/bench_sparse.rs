//! `pogo bench sparse`: a verifier's rebuild and re-commit of a synthetic model at several
//! update densities, the incremental path (changed blocks' paths only) against the dense one
//! (every leaf and level hashed again) in the same run.

use std::time::Instant;

use clap::Args;
use pogo_circuits::encoding::{FixedPoint, Nibble, UpdateBlock, BLOCK_WEIGHTS};
use pogo_circuits::model::{Model, TensorInfo};
use pogo_circuits::update::Update;
use pogo_prover::commit::{apply_incremental, model_tree, update_root, update_tree};

use super::bench::synthetic_weights;
use super::{OutputArgs, Report};

/// Arguments of `pogo bench sparse`.
#[derive(Args, Debug)]
#[command(after_help = "For each density R: an update changing ceil(R * nb) evenly spread blocks of a synthetic \
model, encoded and decoded, then rebuilt as a verifier does: the dense path applies it and hashes the whole new \
model tree and update tree; the incremental path applies it and re-hashes only the changed leaves, their paths \
and the update root from the changed leaves (the old model's tree is what the verifier kept). Both roots are \
compared. The dense path is measured once, on the first density's update (its cost does not depend on R).\n\n\
Example:\n  pogo bench sparse --weights 100000000 --densities 1,0.25,0.1,0.02 --json")]
pub struct BenchSparseArgs {
    /// Weights of the synthetic model.
    #[arg(long, value_name = "N", default_value_t = 10_000_000)]
    pub weights: u64,
    /// Densities to measure, comma-separated, each in (0, 1].
    #[arg(long, value_name = "R,…", value_delimiter = ',', default_values_t = vec![1.0, 0.25, 0.1, 0.02])]
    pub densities: Vec<f64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// An update changing `count` evenly spread blocks by small steps (never overflowing the
/// synthetic weights, which stay near 2^31).
fn spread_update(weights: u64, count: u64) -> anyhow::Result<Update> {
    let nb = pogo_circuits::encoding::block_count(weights);
    let used = (weights - (nb - 1) * BLOCK_WEIGHTS as u64) as usize;
    let changed = (0..count)
        .map(|k| {
            let b = k * nb / count;
            let mut nibbles: [Nibble; BLOCK_WEIGHTS] =
                std::array::from_fn(|j| Nibble::new(((b as usize + j) % 16) as u8).expect("below 16"));
            if b == nb - 1 {
                nibbles[used..].fill(Nibble::ZERO);
            }
            (b, UpdateBlock { scale: 3, nibbles })
        })
        .collect();
    Ok(Update::sparse(weights, changed)?)
}

fn seconds<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let start = Instant::now();
    let out = f()?;
    Ok((start.elapsed().as_secs_f64(), out))
}

pub(super) fn run(args: BenchSparseArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.weights > 0, "--weights must be positive");
    if let Some(bad) = args.densities.iter().find(|r| !(**r > 0.0 && **r <= 1.0)) {
        anyhow::bail!("density {bad} is not in (0, 1]");
    }
    // Weights near 2^31 (|value| < 2^24 units), so small steps never overflow.
    let weights: Vec<u32> = synthetic_weights(args.weights, 7).into_iter().map(|w| (1u32 << 31) ^ (w >> 8)).collect();
    let tensors = vec![TensorInfo { name: "w".into(), shape: vec![weights.len()] }];
    let old = Model::new(FixedPoint::default(), tensors, weights)?;
    let nb = old.block_count();
    eprintln!("hashing the old model's tree ({nb} blocks): what a verifier keeps from the last round");
    let (old_tree_s, old_tree) = seconds(|| Ok(model_tree(&old, None, &())?))?;
    let depth = old_tree.depth();
    let mut rows = Vec::new();
    let mut dense_s = None;
    for &density in &args.densities {
        let count = ((density * nb as f64).ceil() as u64).clamp(1, nb);
        let update = spread_update(args.weights, count)?;
        let blob = update.to_blob();
        let (decode_s, decoded) = seconds(|| Ok(Update::from_blob(&blob)?))?;
        let (incremental_s, (new, tree, uroot)) = seconds(|| {
            let (new, tree) = apply_incremental(&old, &old_tree, &decoded)?;
            Ok((new, tree, update_root(&decoded, Some(depth))?))
        })?;
        let dense = match dense_s {
            Some(s) => s,
            None => {
                eprintln!("the dense path: apply, then hash every leaf and level of both trees");
                let (s, (full, full_update)) = seconds(|| {
                    let new = decoded.apply(&old)?;
                    Ok((model_tree(&new, Some(depth), &())?, update_tree(&decoded, Some(depth), &())?))
                })?;
                anyhow::ensure!(full.root() == tree.root(), "incremental and full model roots differ");
                anyhow::ensure!(full_update.root() == uroot, "sparse and full update roots differ");
                dense_s = Some(s);
                s
            }
        };
        drop(new);
        eprintln!(
            "density {density}: {count} blocks, blob {} bytes, incremental rebuild {incremental_s:.3} s",
            blob.len()
        );
        rows.push(serde_json::json!({
            "density": density,
            "changed_blocks": count,
            "blob_bytes": blob.len(),
            "blob_format": if update.writes_sparse() { "sparse" } else { "dense" },
            "decode_seconds": decode_s,
            "incremental_rebuild_seconds": incremental_s,
            "dense_rebuild_seconds": dense,
            "dense_over_incremental": dense / incremental_s,
        }));
    }
    Report::new()
        .add("weights", args.weights)
        .add("blocks", nb)
        .add("depth", depth)
        .add("threads", rayon::current_num_threads())
        .add("old_tree_seconds", old_tree_s)
        .add("densities", rows)
        .print(args.output);
    Ok(())
}
