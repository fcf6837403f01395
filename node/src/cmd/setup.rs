//! `pogo setup`: KZG setup and keys for one circuit configuration.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use pogo_circuits::config::CircuitConfig;
use pogo_prover::prove::keygen;
use pogo_prover::ptau::import;
use pogo_prover::setup::dev_setup;
use pogo_verifier::keys::{config_dir, sha256_hex, SetupOrigin, MANIFEST_FILE};

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
    /// Seed of the INSECURE development setup (used unless --ptau is given).
    #[arg(long, value_name = "N", default_value_t = 0, conflicts_with = "ptau")]
    pub dev_seed: u64,
    /// A powers-of-tau ceremony file (snarkjs .ptau, e.g. from the Perpetual Powers of Tau)
    /// with at least 2^k powers: the secure choice.
    #[arg(long, value_name = "FILE")]
    pub ptau: Option<PathBuf>,
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
    let (setup, origin) = match &args.ptau {
        Some(path) => {
            progress.set_message(format!("importing 2^{} powers from {}", shape.k, path.display()));
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let setup = import(&bytes, shape.k).with_context(|| format!("importing {}", path.display()))?;
            let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (setup, SetupOrigin::Ptau { sha256: sha256_hex(&bytes), file })
        }
        None => {
            progress.set_message(format!("KZG setup of 2^{} powers (INSECURE dev seed {})", shape.k, args.dev_seed));
            (dev_setup(shape.k, args.dev_seed), SetupOrigin::DevSeededInsecure { seed: args.dev_seed })
        }
    };
    progress.set_message(format!("keygen for {} (k = {})", config.name(), shape.k));
    let keys = keygen(&setup, &shape)?;
    progress.set_message("writing keys");
    let insecure = matches!(origin, SetupOrigin::DevSeededInsecure { .. });
    let manifest = pogo_prover::keys::write(&dir, &setup, origin, &keys)
        .with_context(|| format!("writing keys to {}", dir.display()))?;
    progress.finish_and_clear();
    if insecure && !args.output.json {
        eprintln!("warning: development setup from public seed {}: anyone can forge proofs against it", args.dev_seed);
    }
    let columns = pogo_verifier::audit::constraint_report(keys.vk(), config.samples);
    Report::new()
        .add("config", config.name())
        .add("dir", shown(&dir))
        .add("k", shape.k)
        .add("lookup_bits", shape.lookup_bits)
        .add("advice_columns", columns.advice_columns)
        .add("fixed_columns", columns.fixed_columns)
        .add("lookups", columns.lookups.len())
        .add("advice_cells", shape.advice_cells)
        .add("cells_per_sample", shape.advice_cells / config.samples)
        .add(
            "setup",
            if insecure {
                "dev-seeded-INSECURE".to_string()
            } else {
                format!("ptau {}", shown(args.ptau.as_deref().unwrap_or(std::path::Path::new(""))))
            },
        )
        .add("vk_sha256", manifest.sha256.vk)
        .print(args.output);
    Ok(())
}
