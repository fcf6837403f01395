//! `pogo audit`: soundness evidence for one circuit configuration, not claims.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use pogo_circuits::audit::{run as mutate, MutationReport};
use pogo_circuits::config::CircuitConfig;
use pogo_circuits::files::write_atomic;
use pogo_circuits::update_circuit::Variant;
use pogo_prover::audit::{binding_checks, keygen_reproducible, other_configuration, Check};
use pogo_prover::keys::load;
use pogo_prover::prove::keygen;
use pogo_prover::setup::dev_setup;
use pogo_verifier::audit::{constraint_report, ConstraintReport};
use pogo_verifier::evm::export::VERIFIER_MANIFEST;
use pogo_verifier::evm::{build_verifier, Solc, VerifierManifest};
use pogo_verifier::keys::{config_dir, sha256_hex, MANIFEST_FILE};

use super::{spinner, OutputArgs};

/// Which circuit to audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VariantArg {
    /// The real circuit.
    Sound,
    /// Weakened on purpose: limbs not range-checked.
    NoLimbRangeCheck,
    /// Weakened on purpose: nibbles not range-checked.
    NoNibbleRangeCheck,
    /// Weakened on purpose: path bits not tied to the sampled index.
    UnboundPathBits,
}

/// Arguments of `pogo audit`.
#[derive(Args, Debug)]
#[command(after_help = "Four parts, each evidence rather than a claim:\n  \
1. the constraint system the verifying key commits to: k, advice/fixed/instance columns, gates and their degrees, \
lookups, permutation columns, public inputs in order, setup and vk hashes;\n  \
2. mutation testing under halo2's MockProver: for every class of witness cell (limbs, nibbles, scale, leaves, \
siblings, path bits, H_2 round states, indices) assigned values are perturbed, and the classic under-constraint \
attacks (limb and nibble carries, scale wrap, another block opened under the sampled index, index = nb) are \
replayed with everything else recomputed to match; the circuit must reject every one, and a survivor is written \
as a counter-example;\n  \
3. binding: a real proof verifies, and fails with any public input changed, with bytes flipped or cut, and under \
another configuration's key;\n  \
4. reproducibility: keygen twice gives the same verifying key; an exported Solidity verifier matches a fresh \
regeneration (needs --solc or solc on PATH).\n\n\
Keys come from params/d{D}-s{S}/ when present (hashes checked), else an INSECURE dev setup made in memory. \
--variant builds a deliberately weakened circuit to watch the audit catch it. Exit status 1 if anything fails.\n\n\
Examples:\n  pogo audit --depth 3 --samples 2\n  pogo audit --depth 3 --samples 2 --variant unbound-path-bits")]
pub struct AuditArgs {
    /// Tree depth D of the configuration.
    #[arg(long, value_name = "D")]
    pub depth: u32,
    /// Sampled blocks S per proof.
    #[arg(long, value_name = "S")]
    pub samples: usize,
    /// The circuit to mutate (weakened variants exist to show the audit catches them).
    #[arg(long, value_enum, default_value = "sound")]
    pub variant: VariantArg,
    /// Samples in the circuit the mutations run on (the circuit repeats per sample; fewer
    /// samples keep MockProver fast). Default: min(S, 2).
    #[arg(long, value_name = "N")]
    pub mutation_samples: Option<usize>,
    /// Seed of the random scenario, mutations and proofs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where configuration folders live.
    #[arg(long, value_name = "DIR", default_value = "params", env = "POGO_PARAMS")]
    pub params_dir: PathBuf,
    /// A solc 0.8.19 for the verifier reproducibility check.
    #[arg(long, value_name = "PATH")]
    pub solc: Option<PathBuf>,
    /// Where to write survivors (counter-examples), if any.
    #[arg(long, value_name = "FILE", default_value = "pogo-audit-counterexamples.json")]
    pub counterexamples: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(serde::Serialize)]
struct AuditReport {
    config: String,
    variant: String,
    keys: String,
    setup_sha256: String,
    vk_sha256: String,
    /// Advice cells of the laid-out circuit (flex gate and `H_2` region).
    advice_cells: usize,
    constraints: ConstraintReport,
    mutations: MutationReport,
    checks: Vec<Check>,
    skipped: Vec<String>,
    passed: bool,
}

pub(super) fn run(args: AuditArgs) -> anyhow::Result<()> {
    let config = CircuitConfig::new(args.depth, args.samples)?;
    let dir = config_dir(&args.params_dir, &config.name());
    let progress = spinner(format!("keys of {}", config.name()));
    let (setup, keys, source) = if dir.join(MANIFEST_FILE).exists() {
        let (_, setup, keys) = load(&dir).with_context(|| format!("loading keys from {}", dir.display()))?;
        (setup, keys, dir.display().to_string())
    } else {
        let shape = config.shape()?;
        let setup = dev_setup(shape.k, args.seed);
        let keys = keygen(&setup, &shape)?;
        (setup, keys, "INSECURE dev setup made in memory".to_string())
    };
    let vk_bytes = keys.vk_bytes();
    let setup_bytes = pogo_prover::setup::to_bytes(&setup);
    let constraints = constraint_report(keys.vk(), config.samples);

    let variant = match args.variant {
        VariantArg::Sound => Variant::Sound,
        VariantArg::NoLimbRangeCheck => Variant::NoLimbRangeCheck,
        VariantArg::NoNibbleRangeCheck => Variant::NoNibbleRangeCheck,
        VariantArg::UnboundPathBits => Variant::UnboundPathBits(Vec::new()),
    };
    let mutation_samples = args.mutation_samples.unwrap_or(config.samples.min(2));
    let mutation_config = CircuitConfig::new(config.depth.max(2), mutation_samples)?;
    progress.set_message(format!("mutation testing {} ({})", mutation_config.name(), variant.name()));
    let mutations = mutate(&mutation_config, &variant, args.seed)?;

    progress.set_message("binding checks with real proofs");
    let other = other_configuration(&config, args.seed)?;
    let mut checks = binding_checks(&setup, &keys, Some((&other.0, &other.1)), args.seed)?;
    progress.set_message("keygen again");
    checks.push(keygen_reproducible(&setup, &keys)?);
    let mut skipped = Vec::new();
    match verifier_check(&args, &dir, &setup, &keys) {
        Ok(Some(check)) => checks.push(check),
        Ok(None) => skipped.push(format!("Solidity verifier: none exported in {}", dir.display())),
        Err(e) => skipped.push(format!("Solidity verifier: {e:#}")),
    }
    progress.finish_and_clear();

    let passed = mutations.passed() && checks.iter().all(|c| c.passed);
    let survivors: Vec<_> = mutations.survivors().cloned().collect();
    let report = AuditReport {
        config: config.name(),
        variant: variant.name().into(),
        keys: source,
        setup_sha256: sha256_hex(&setup_bytes),
        vk_sha256: sha256_hex(&vk_bytes),
        advice_cells: keys.shape.advice_cells,
        constraints,
        mutations,
        checks,
        skipped,
        passed,
    };
    if !survivors.is_empty() {
        let json = serde_json::json!({ "config": report.config, "variant": report.variant, "survivors": survivors });
        write_atomic(&args.counterexamples, &serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("writing {}", args.counterexamples.display()))?;
    }
    if args.output.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&report);
    }
    if !passed {
        let mut why = Vec::new();
        if !survivors.is_empty() {
            why.push(format!(
                "{} mutations survived (counter-examples in {})",
                survivors.len(),
                args.counterexamples.display()
            ));
        }
        if !report.mutations.honest_accepted {
            why.push("the honest witness was rejected".into());
        }
        why.extend(report.checks.iter().filter(|c| !c.passed).map(|c| format!("failed: {}", c.name)));
        bail!("audit of {} ({}) failed: {}", report.config, report.variant, why.join("; "));
    }
    Ok(())
}

/// Regenerates and recompiles an exported verifier and compares both hashes.
fn verifier_check(
    args: &AuditArgs,
    dir: &std::path::Path,
    setup: &pogo_prover::setup::Setup,
    keys: &pogo_prover::prove::Keys,
) -> anyhow::Result<Option<Check>> {
    if !dir.join(VERIFIER_MANIFEST).exists() {
        return Ok(None);
    }
    let manifest = VerifierManifest::load(dir)?;
    let solc = Solc::locate(args.solc.as_deref())?;
    let (source, bytecode) = build_verifier(setup, keys.vk(), keys.shape.config.samples, &solc)?;
    let (source_hash, code_hash) = (sha256_hex(source.as_bytes()), sha256_hex(&bytecode));
    Ok(Some(Check {
        name: "the exported Solidity verifier matches a fresh regeneration".into(),
        passed: source_hash == manifest.source_sha256 && code_hash == manifest.bytecode_sha256,
        detail: format!("source {source_hash}, bytecode {code_hash}"),
    }))
}

fn print_text(r: &AuditReport) {
    let c = &r.constraints;
    println!("pogo audit of UpdateCircuit {} ({} circuit)", r.config, r.variant);
    println!("keys           {}", r.keys);
    println!("setup sha256   {}", r.setup_sha256);
    println!("vk sha256      {}", r.vk_sha256);
    println!(
        "shape          k = {}, {} advice, {} fixed (selectors included), {} instance columns; {} columns under copy constraints; degree {}; {} blinding rows",
        c.k, c.advice_columns, c.fixed_columns, c.instance_columns, c.permutation_columns, c.degree, c.blinding_factors
    );
    println!("advice cells   {}", r.advice_cells);
    println!("public inputs  {}", c.public_inputs.join(", "));
    println!("gates:");
    for g in &c.gates {
        println!("  {:<40} {:>3} constraints, degree {}", g.name, g.constraints, g.degree);
    }
    println!("lookups:");
    for l in &c.lookups {
        println!(
            "  {:<40} {} inputs, input degree {}, table degree {}",
            l.name, l.inputs, l.input_degree, l.table_degree
        );
    }
    let m = &r.mutations;
    println!(
        "mutation testing on D = {}, S = {} ({} circuit): honest witness {}",
        m.depth,
        m.samples,
        m.variant,
        if m.honest_accepted { "accepted" } else { "REJECTED" }
    );
    println!("  {:<12} {:>6} {:>9}", "class", "tried", "rejected");
    for class in &m.classes {
        let name =
            serde_json::to_value(class.class).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        println!("  {:<12} {:>6} {:>9}", name, class.tried, class.rejected);
    }
    for s in m.survivors() {
        println!("  SURVIVOR: {}", s.mutation);
    }
    println!("checks:");
    for check in &r.checks {
        println!("  [{}] {} ({})", if check.passed { "ok" } else { "FAILED" }, check.name, check.detail);
    }
    for s in &r.skipped {
        println!("  [skipped] {s}");
    }
    println!("{}", if r.passed { "PASSED" } else { "FAILED" });
}
