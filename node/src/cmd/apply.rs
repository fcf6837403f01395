//! `pogo apply`: `u_new = u_old + s · (n − 8)` for every weight, exactly (DESIGN §2 Update).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pogo_circuits::field::fr_to_hex;
use pogo_circuits::update::Update;

use pogo_circuits::checkpoint::CheckpointWriter;
use pogo_circuits::model::Model;
use pogo_circuits::update_stream::UpdateStream;
use pogo_prover::stream::apply_streamed;

use super::{bar, check_expected_root, model_tree_with_progress, shown, FormatArgs, OutputArgs, Report};

/// Arguments of `pogo apply`.
#[derive(Args, Debug)]
#[command(after_help = "The update must be for a model of the same size, and no weight may leave the 32-bit range; \
an update blob that records the model it was made against (version 2, what pogo writes) is refused on any other \
model, naming both roots. Otherwise, or with --expect-root not met, nothing is written.\n\nExamples:\n  \
pogo apply old.safetensors round-7.pogo -o new.safetensors\n  \
pogo apply old.safetensors round-7.pogo -o new.safetensors --expect-root 0x2f…   # the committed new root\n\n\
The old model and the blob are streamed: memory stays flat however large the model, and the new model's files \
are written in place as temporary files, renamed only once the blob's checksum, its base and --expect-root \
check out. --in-memory reads everything whole first (the path before streaming, for comparisons).")]
pub struct ApplyArgs {
    /// The old model (.safetensors, or a sharded checkpoint folder).
    pub old: PathBuf,
    /// The update blob.
    pub update: PathBuf,
    /// Where to write the new model (pogo's exact fixed-point safetensors; for a sharded old
    /// model, a folder of shards in its layout, unless NEW ends in .safetensors).
    #[arg(short, long, value_name = "NEW")]
    pub output: PathBuf,
    /// Tree depth D for the printed root [default: the smallest D >= 1 with nb <= 2^D]
    #[arg(long, value_name = "D")]
    pub depth: Option<u32>,
    /// Refuse (writing nothing) unless the new model's root at D is this 0x… value, e.g.
    /// the new root a miner committed to.
    #[arg(long, value_name = "ROOT")]
    pub expect_root: Option<String>,
    /// Also write the new model's tree file here (for `pogo open --tree` and `pogo prove
    /// --new-tree` without hashing the model again).
    #[arg(long, value_name = "FILE", conflicts_with = "in_memory")]
    pub tree_out: Option<PathBuf>,
    /// Read the old model and the update whole before applying (the path before streaming,
    /// kept for comparisons; about 12 bytes of memory per weight).
    #[arg(long)]
    pub in_memory: bool,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub print: OutputArgs,
}

pub(super) fn run(args: ApplyArgs) -> anyhow::Result<()> {
    if !args.in_memory {
        return run_streamed(args);
    }
    let old = args.format.load_model(&args.old)?;
    let update = Update::load_within(&args.update, old.weight_count())
        .with_context(|| format!("reading update {}", args.update.display()))?;
    let applying = || format!("applying {} to {}", shown(&args.update), shown(&args.old));
    if let Some(base) = update.base() {
        update.check_model(&old).with_context(applying)?;
        let old_tree = model_tree_with_progress(&old, Some(base.depth))?;
        update.check_base(&old_tree.root()).with_context(applying)?;
    }
    let new = update.apply(&old).with_context(applying)?;
    let tree = model_tree_with_progress(&new, args.depth)?;
    check_expected_root(&tree.root(), args.expect_root.as_deref(), "the new model")?;
    new.save_like(&args.output, &args.old).with_context(|| format!("writing {}", args.output.display()))?;
    let changed = old.weights().iter().zip(new.weights()).filter(|(a, b)| a != b).count();
    Report::new()
        .add("new_model", shown(&args.output))
        .add("weights", new.weight_count())
        .add("changed_weights", changed)
        .add("depth", tree.depth())
        .add("new_root", fr_to_hex(&tree.root()))
        .print(args.print);
    Ok(())
}

/// `apply` in bounded memory: see [`apply_streamed`].
fn run_streamed(args: ApplyArgs) -> anyhow::Result<()> {
    let old = args.format.open_checkpoint(&args.old)?;
    let update = UpdateStream::open(&args.update, old.weight_count())
        .with_context(|| format!("reading update {}", args.update.display()))?;
    let applying = || format!("applying {} to {}", shown(&args.update), shown(&args.old));
    let tensors: Vec<_> = old.tensors().cloned().collect();
    let layout = Model::shard_layout(&args.output, &args.old);
    let mut writer = CheckpointWriter::create(&args.output, layout.as_deref(), &tensors, old.format())
        .with_context(|| format!("writing {}", args.output.display()))?;
    let bar = bar(old.block_count(), "applying and hashing blocks");
    let tree_out = args.tree_out.as_deref();
    let applied =
        apply_streamed(&old, &update, args.depth, Some(&mut writer), tree_out, &bar).with_context(applying)?;
    bar.0.finish_and_clear();
    if let Err(e) = check_expected_root(&applied.new_root, args.expect_root.as_deref(), "the new model") {
        // The tree is in place only with its model.
        if let Some(tree) = tree_out {
            let _ = std::fs::remove_file(tree);
        }
        return Err(e);
    }
    writer.finish().with_context(|| format!("writing {}", args.output.display()))?;
    Report::new()
        .add("new_model", shown(&args.output))
        .add("weights", old.weight_count())
        .add("changed_weights", applied.changed_weights)
        .add("depth", applied.depth)
        .add("new_root", fr_to_hex(&applied.new_root))
        .add_some("tree_file", args.tree_out.as_deref().map(shown))
        .print(args.print);
    Ok(())
}
