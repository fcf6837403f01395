//! `pogo setup`: KZG setup and keys for one circuit configuration.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use pogo_circuits::config::CircuitConfig;
use pogo_prover::prove::keygen;
use pogo_prover::setup::dev_setup;
use pogo_verifier::keys::{config_dir, SetupOrigin, MANIFEST_FILE};

use super::{shown, spinner, OutputArgs, Report};

/// Arguments of `pogo setup`.
#[derive(Args, Debug)]
#[command(
    after_help = "Writes params/d{D}-s{S}/: setup.bin, vk.bin, pk.bin and manifest.json (the shape, the setup's \
origin and every file's SHA-256).\n\nThe default setup is derived from a public seed and is INSECURE: anyone can forge \
proofs against it. Use it for development and benchmarks only.\n\nExample:\n  pogo setup --depth 20 --samples 32"
)]
pub struct SetupArgs {
    /// Tree depth D of the configuration.
    #[arg(long, value_name = "D")]
    pub depth: u32,
    /// Sampled blocks S per proof.
    #[arg(long, value_name = "S")]
    pub samples: usize,
    /// Seed of the INSECURE development setup.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub dev_seed: u64,
    /// Where configuration folders live.
    #[arg(long, value_name = "DIR", default_value = "params", env = "POGO_PARAMS")]
    pub params_dir: PathBuf,
    /// Replace an existing folder for this configuration.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(super) fn run(args: SetupArgs) -> anyhow::Result<()> {
    let config = CircuitConfig::new(args.depth, args.samples)?;
    let dir = config_dir(&args.params_dir, &config.name());
    if dir.join(MANIFEST_FILE).exists() && !args.force {
        bail!("{} already holds keys for {}; pass --force to replace them", dir.display(), config.name());
    }
    let progress = spinner("measuring the circuit");
    let shape = config.shape()?;
    progress.set_message(format!("KZG setup of 2^{} powers (INSECURE dev seed {})", shape.k, args.dev_seed));
    let setup = dev_setup(shape.k, args.dev_seed);
    progress.set_message(format!("keygen for {} (k = {})", config.name(), shape.k));
    let keys = keygen(&setup, &shape)?;
    progress.set_message("writing keys");
    let manifest =
        pogo_prover::keys::write(&dir, &setup, SetupOrigin::DevSeededInsecure { seed: args.dev_seed }, &keys)
            .with_context(|| format!("writing keys to {}", dir.display()))?;
    progress.finish_and_clear();
    if !args.output.json {
        eprintln!("warning: development setup from public seed {}: anyone can forge proofs against it", args.dev_seed);
    }
    Report::new()
        .add("config", config.name())
        .add("dir", shown(&dir))
        .add("k", shape.k)
        .add("lookup_bits", shape.lookup_bits)
        .add("advice_columns", keys.params.num_advice_per_phase.first().copied().unwrap_or(0))
        .add("lookup_columns", keys.params.num_lookup_advice_per_phase.first().copied().unwrap_or(0))
        .add("fixed_columns", keys.params.num_fixed)
        .add("advice_cells", shape.advice_cells)
        .add("cells_per_sample", shape.advice_cells / config.samples)
        .add("setup", "dev-seeded-INSECURE")
        .add("vk_sha256", manifest.sha256.vk)
        .print(args.output);
    Ok(())
}
