//! Losses honest verifiers agree on (the reproducible-evaluation issue): the reference
//! evaluator gives the same bits on CPUs with different features (this test binary re-run
//! under Debian's qemu-user as CPUs without AVX-512, without AVX2 and FMA), where candle's
//! dispatching kernels do not; it agrees with candle's training-path loss within a stated
//! bound; and it does not depend on the thread count.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::Device;
use pogo_circuits::model::Model;
use pogo_node::roles::loss_units;
use pogo_node::train::data::Examples;
use pogo_node::train::reference;
use pogo_node::train::{TaskConfig, Trainer};

/// |reference − candle| on the shipped tasks' networks, in nats: candle computes in `f32`
/// (relative rounding ~6e-8 per operation over sums of a few hundred terms). 2e-5 nats is
/// 20,000 loss units, a thousandth of the shipped margins (0.02 nats).
const CANDLE_BOUND: f64 = 2e-5;

/// The environment variable that makes [`child_prints_loss_bits`] print instead of skip.
const CHILD: &str = "POGO_EVAL_BITS_CHILD";

/// A shipped task's file, or a test fixture's (`tests/fixtures`, e.g. the tiny encoder).
fn task_file(name: &str) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tasks/{name}.json"));
    if shipped.exists() {
        shipped
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.json"))
    }
}

/// A task with a small evaluation batch (the emulated runs are slow), its trainer and
/// three models: genesis, a perturbed genesis and another seed's genesis.
fn fixture(name: &str, batch: usize) -> (Trainer, Vec<Model>, Examples) {
    let mut task = TaskConfig::load(&task_file(name)).unwrap();
    task.eval_batch_size = batch;
    let trainer = Trainer::new(task, Device::Cpu).unwrap();
    let genesis = trainer.genesis().unwrap();
    let nudged = genesis
        .with_weights(genesis.weights().iter().enumerate().map(|(i, w)| w.wrapping_add((i as u32 % 7) << 16)).collect())
        .unwrap();
    let mut other = trainer.task.clone();
    other.seed = 99;
    let other = Trainer::new(other, Device::Cpu).unwrap().genesis().unwrap();
    let examples = trainer.validation_batch([5; 32]);
    (trainer, vec![genesis, nudged, other], examples)
}

/// The lines the child prints: per task and model, the reference loss's bits and candle's.
fn loss_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for (name, batch) in [("digits", 64), ("licenses", 4), ("tiny-encoder", 4)] {
        let (trainer, models, examples) = fixture(name, batch);
        for (m, model) in models.iter().enumerate() {
            let r = trainer.eval_examples(model, &examples).unwrap();
            let c = trainer.eval_examples_candle(model, &examples).unwrap();
            lines.push(format!("{name} {m} reference {:016x} candle {:016x}", r.to_bits(), c.to_bits()));
        }
    }
    lines
}

/// Run by the parent test as a child process (natively or under qemu): prints the loss
/// lines. Without the variable it does nothing.
#[test]
fn child_prints_loss_bits() {
    if std::env::var_os(CHILD).is_some() {
        for line in loss_lines() {
            println!("LOSS {line}");
        }
    }
}

/// This test binary's loss lines as printed under `runner` (empty: natively).
fn run_child(runner: &[&str]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match runner.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let out = cmd
        .args(["--exact", "child_prints_loss_bits", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .unwrap_or_else(|e| panic!("starting {runner:?} {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{runner:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The harness may print its own "test … " before the first line.
    let lines: Vec<String> = stdout.lines().filter_map(|l| l.find("LOSS ").map(|at| l[at + 5..].to_owned())).collect();
    assert_eq!(lines.len(), 9, "{runner:?} printed {stdout}");
    lines
}

/// qemu-x86_64, or `None` (the test command installs it: scripts/qemu/install.sh, and then
/// sets POGO_REQUIRE_QEMU=1 so that its absence fails).
fn qemu() -> Option<&'static str> {
    let found = Command::new("qemu-x86_64").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("POGO_REQUIRE_QEMU").is_none(), "qemu-x86_64 not found: run scripts/qemu/install.sh");
        eprintln!("skipping the emulated CPUs: qemu-x86_64 not found (scripts/qemu/install.sh installs it)");
    }
    found.then_some("qemu-x86_64")
}

fn column<'a>(lines: &'a [String], which: &str) -> Vec<&'a str> {
    lines
        .iter()
        .map(|l| {
            let words: Vec<&str> = l.split(' ').collect();
            let at = words.iter().position(|w| *w == which).unwrap();
            words[at + 1]
        })
        .collect()
}

#[test]
fn reference_losses_have_the_same_bits_on_cpus_without_avx512_avx2_or_fma() {
    let Some(qemu) = qemu() else { return };
    let native = run_child(&[]);
    // Haswell: AVX2 and FMA, no AVX-512; Nehalem: SSE4.2, no AVX at all. (The native CPU
    // is whatever runs the tests: AVX-512 on the machines these figures were taken on.)
    let cpus = [("Haswell", run_child(&[qemu, "-cpu", "Haswell"])), ("Nehalem", run_child(&[qemu, "-cpu", "Nehalem"]))];
    for (cpu, lines) in &cpus {
        assert_eq!(column(lines, "reference"), column(&native, "reference"), "reference bits under {cpu} and natively");
    }
    // The same comparison catches an evaluator that dispatches on CPU features: candle's
    // losses differ between these CPUs (were they used for attestations, this test would fail).
    let candle_differs = cpus.iter().any(|(_, lines)| column(lines, "candle") != column(&native, "candle"));
    assert!(
        candle_differs,
        "candle's CPU path gave identical bits on every emulated CPU: the test no longer shows it can tell them apart\n\
         native: {native:?}\nemulated: {cpus:?}"
    );
}

#[test]
fn reference_and_candle_agree_within_the_stated_bound_on_every_task() {
    for (name, batch) in [("digits", 128), ("licenses", 8), ("tiny-encoder", 16)] {
        let (trainer, models, examples) = fixture(name, batch);
        for (m, model) in models.iter().enumerate() {
            let r = trainer.eval_examples(model, &examples).unwrap();
            let c = trainer.eval_examples_candle(model, &examples).unwrap();
            assert!(r.is_finite() && r > 0.1, "{name} model {m}: {r}");
            assert!((r - c).abs() <= CANDLE_BOUND, "{name} model {m}: reference {r}, candle {c}: {:e} apart", r - c);
        }
        // Distinct models get distinct losses (the evaluator reads the weights).
        let losses: Vec<u64> =
            models.iter().map(|m| loss_units(trainer.eval_examples(m, &examples).unwrap())).collect();
        assert!(losses[0] != losses[1] && losses[0] != losses[2], "{name}: {losses:?}");
    }
}

#[test]
fn reference_losses_do_not_depend_on_the_thread_count() {
    let (trainer, models, examples) = fixture("licenses", 6);
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| trainer.eval_examples(&models[0], &examples).unwrap().to_bits())
    };
    assert_eq!(on(1), on(3));
}

#[test]
fn reference_refuses_another_network_and_out_of_range_examples() {
    let (digits, models, examples) = fixture("digits", 8);
    let (lm, lm_models, text) = fixture("licenses", 2);
    let err = reference::loss(&digits.task.model, &lm_models[0], &examples).unwrap_err();
    assert!(err.to_string().contains("no tensor \"layer1.bias\""), "{err}");
    let err = reference::loss(&lm.task.model, &models[0], &text).unwrap_err();
    assert!(err.to_string().contains("no tensor"), "{err}");
    let err = reference::loss(&digits.task.model, &models[0], &text).unwrap_err();
    assert!(err.to_string().contains("not of the kind"), "{err}");
    let err = reference::loss_on(&digits.task.model, &models[0], &examples, &[]).unwrap_err();
    assert!(err.to_string().contains("no examples"), "{err}");
    let Examples::Labelled { features, mut labels, dim } = examples else { panic!("digits are labelled") };
    labels[3] = 10;
    let err =
        reference::loss(&digits.task.model, &models[0], &Examples::Labelled { features, labels, dim }).unwrap_err();
    assert!(err.to_string().contains("label 10 of a 10-class network"), "{err}");
}
