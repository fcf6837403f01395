//! `pogo export`: a model as float safetensors, for trainers outside pogo.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use pogo_circuits::checkpoint::{CheckpointWriter, WriteAs};
use pogo_circuits::encoding::block_count;
use pogo_circuits::model::{FloatDtype, Model, ModelError};

use super::{bar, shown, FormatArgs, OutputArgs, Report};

/// Float formats `pogo export` writes.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Dtype {
    /// 32-bit IEEE float (exact for every fixed-point weight with F <= 24 and |w| < 2^24).
    F32,
    /// 16-bit IEEE float.
    F16,
    /// bfloat16.
    Bf16,
}

/// Arguments of `pogo export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The model (.safetensors, or a sharded checkpoint folder).
    pub model: PathBuf,
    /// Where to write the float model (for a sharded model, a folder of shards in its
    /// layout, unless OUT ends in .safetensors). Written as it streams, in bounded memory.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Float type of the written tensors.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Dtype,
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub print: OutputArgs,
}

pub(super) fn run(args: ExportArgs) -> anyhow::Result<()> {
    let model = args.format.open_checkpoint(&args.model)?;
    let dtype = match args.dtype {
        Dtype::F32 => FloatDtype::F32,
        Dtype::F16 => FloatDtype::F16,
        Dtype::Bf16 => FloatDtype::BF16,
    };
    let tensors: Vec<_> = model.tensors().cloned().collect();
    let layout = Model::shard_layout(&args.output, &args.model);
    let writing = || format!("writing {}", args.output.display());
    let mut writer =
        CheckpointWriter::create_as(&args.output, layout.as_deref(), &tensors, model.format(), WriteAs::Float(dtype))
            .with_context(writing)?;
    let bar = bar(model.block_count(), "converting blocks");
    model
        .stream(1 << 14, |_, weights| -> Result<(), ModelError> {
            writer.write(weights)?;
            bar.0.inc(block_count(weights.len() as u64));
            Ok(())
        })
        .with_context(writing)?;
    writer.finish().with_context(writing)?;
    bar.0.finish_and_clear();
    Report::new()
        .add("output", shown(&args.output))
        .add("weights", model.weight_count())
        .add("dtype", format!("{dtype:?}"))
        .print(args.print);
    Ok(())
}
