//! `pogo export`: a model as float safetensors, for trainers outside pogo.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use pogo_circuits::model::FloatDtype;

use super::{shown, FormatArgs, OutputArgs, Report};

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
    /// Where to write the float model.
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
    let model = args.format.load_model(&args.model)?;
    let dtype = match args.dtype {
        Dtype::F32 => FloatDtype::F32,
        Dtype::F16 => FloatDtype::F16,
        Dtype::Bf16 => FloatDtype::BF16,
    };
    let bytes = model.to_float_safetensors(dtype)?;
    pogo_circuits::files::write_atomic(&args.output, &bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Report::new()
        .add("output", shown(&args.output))
        .add("weights", model.weight_count())
        .add("dtype", format!("{dtype:?}"))
        .print(args.print);
    Ok(())
}
