//! The training path on both tasks (digits MLP, licence-text transformer): deterministic
//! rounds, exact 4-bit updates, the loss falling on held-out batches, deterministic evaluation, and clear
//! errors for bad task files and data.

use std::path::{Path, PathBuf};

use candle_core::Device;
use pogo_node::quantize::Residual;
use pogo_node::train::data::held_out;
use pogo_node::train::{TaskConfig, Trainer};

fn task_path() -> PathBuf {
    tasks_dir().join("digits.json")
}

fn tasks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks")
}

fn trainer() -> Trainer {
    Trainer::new(TaskConfig::load(&task_path()).unwrap(), Device::Cpu).unwrap()
}

/// The language-model task with shorter rounds (the test's budget, not the task's).
fn lm_trainer() -> Trainer {
    let mut task = TaskConfig::load(&tasks_dir().join("licenses.json")).unwrap();
    task.steps_per_round = 12;
    Trainer::new(task, Device::Cpu).unwrap()
}

#[test]
fn rounds_are_deterministic_exact_and_lower_the_loss() {
    deterministic_exact_and_learning(trainer(), trainer());
}

#[test]
fn language_model_rounds_are_deterministic_exact_and_lower_the_loss() {
    let t = lm_trainer();
    assert!(t.genesis().unwrap().weight_count() > 80_000, "a real (if small) transformer");
    deterministic_exact_and_learning(t, lm_trainer());
}

fn deterministic_exact_and_learning(a: Trainer, b: Trainer) {
    let genesis = a.genesis().unwrap();
    assert_eq!(genesis, b.genesis().unwrap(), "same seed, same genesis model");
    let (mut ra, mut rb) = (Residual::zero(genesis.weight_count()), Residual::zero(genesis.weight_count()));
    let mut model = genesis.clone();
    for round in 0..3 {
        let out = a.work(&model, &mut ra, round, &|| {}).unwrap();
        let again = b.work(&model, &mut rb, round, &|| {}).unwrap();
        assert_eq!(out.update.to_blob(), again.update.to_blob(), "round {round} is reproducible");
        assert_eq!(out.update.apply(&model).unwrap(), out.new_model, "the new model is old + update exactly");
        assert!(out.report.changed_blocks > 0);
        model = out.new_model;
    }
    assert_eq!(ra, rb);
    // The owner's held-out batches, as a round would reveal them.
    let spec = &a.task.data;
    let file = held_out::default_path(a.task.data_path());
    let batches = held_out::salted(&held_out::batches(spec, &file, a.task.eval_batch_size).unwrap(), &[7; 32]);
    let (first, second) = (
        held_out::examples(spec, &batches[0]).unwrap(),
        held_out::examples(spec, &batches[batches.len() - 1]).unwrap(),
    );
    let (before, after) = (a.eval_examples(&genesis, &first).unwrap(), a.eval_examples(&model, &first).unwrap());
    assert!(after < before * 0.9, "three rounds lower the held-out loss: {before} -> {after}");
    assert_eq!(b.eval_examples(&model, &first).unwrap(), after, "verifiers get the same number");
    assert_ne!(a.eval_examples(&model, &second).unwrap(), after, "another batch, another number");
}

#[test]
fn bad_task_files_and_data_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(task_path()).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.bin");
    let write = |name: &str, json: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, json).unwrap();
        path
    };
    let with_data = |path: &Path| text.replace("../node/data/digits.bin", path.to_str().unwrap());
    let cases = [
        (write("unknown.json", text.replace("\"margin\"", "\"margn\"")), "unknown field"),
        (
            write("zero.json", with_data(&data).replace("\"steps_per_round\": 25", "\"steps_per_round\": 0")),
            "must be positive",
        ),
        (write("lr.json", with_data(&data).replace("0.003", "-1")), "lr must be a positive"),
        (
            write("selection.json", text.replace("\"margin\"", "\"selection\": \"largest\", \"margin\"")),
            "unknown variant `largest`, expected `gain` or `norm`",
        ),
    ];
    for (path, needle) in cases {
        let err = TaskConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    // Data: missing, truncated, out-of-range label.
    let missing = write("missing.json", with_data(&dir.path().join("nope.bin")));
    let err = Trainer::new(TaskConfig::load(&missing).unwrap(), Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("make-digits.py"), "{err}");
    let mut bytes = std::fs::read(&data).unwrap();
    std::fs::write(dir.path().join("short.bin"), &bytes[..100]).unwrap();
    let short = write("short.json", with_data(&dir.path().join("short.bin")));
    let err = Trainer::new(TaskConfig::load(&short).unwrap(), Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("whole number"), "{err}");
    bytes[64] = 12;
    std::fs::write(dir.path().join("label.bin"), &bytes).unwrap();
    let label = write("label.json", with_data(&dir.path().join("label.bin")));
    let err = Trainer::new(TaskConfig::load(&label).unwrap(), Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("record 0"), "{err}");
}

#[test]
fn bad_language_model_tasks_and_corpora_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(tasks_dir().join("licenses.json")).unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/licenses.txt");
    let write = |name: &str, json: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, json).unwrap();
        path
    };
    let with_data = |path: &Path| text.replace("../node/data/licenses.txt", path.to_str().unwrap());
    let cases = [
        (write("heads.json", with_data(&corpus).replace("\"heads\": 4", "\"heads\": 5")), "heads dividing dim"),
        (
            write(
                "mixed.json",
                with_data(&corpus).replace(
                    r#""kind": "transformer", "layers": 2, "dim": 48, "heads": 4"#,
                    r#""kind": "mlp", "hidden": [8]"#,
                ),
            ),
            "needs labelled data",
        ),
    ];
    for (path, needle) in cases {
        let err = TaskConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    let load = |name: &str, bytes: &[u8], json: &dyn Fn(String) -> String| {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let path = write(&format!("{name}.json"), json(with_data(&dir.path().join(name))));
        Trainer::new(TaskConfig::load(&path).unwrap(), Device::Cpu).err().unwrap().to_string()
    };
    let mut bytes = std::fs::read(&corpus).unwrap();
    let err = load("wide.txt", &bytes, &|j| j.replace("\"context\": 64", "\"context\": 4096"));
    assert!(err.contains("context must be between"), "{err}");
    let err = load("few.txt", &bytes[..5000], &|j| j);
    assert!(err.contains("validation must be between 1 and 2"), "{err}");
    bytes[10] = 0xc3;
    let err = load("binary.txt", &bytes, &|j| j);
    assert!(err.contains("byte 10 is 0xc3"), "{err}");
    let err = load("missing", b"", &|j| j.replace("missing", "nope.txt"));
    assert!(err.contains("make-licenses.py"), "{err}");
}

#[test]
fn a_model_for_another_network_is_refused() {
    let t = trainer();
    let other =
        pogo_circuits::model::Model::from_floats(t.format(), vec![("w".to_string(), vec![3], vec![0.5, 0.25, 0.0])])
            .unwrap();
    let err = t.work(&other, &mut Residual::zero(3), 0, &|| {}).err().unwrap().to_string();
    assert!(err.contains("not this task's network"), "{err}");
}

#[test]
fn pogo_train_writes_the_curve_the_model_and_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pogo"))
        .args(["train", task_path().to_str().unwrap(), "--rounds", "3", "--baseline", "--json", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["final_loss_4bit"].as_f64().unwrap() < report["initial_loss"].as_f64().unwrap());
    // A classifier's report has its validation accuracy (percent) before and after.
    let accuracy = |key: &str| report[key].as_f64().unwrap_or_else(|| panic!("{key} in {report}"));
    assert!(accuracy("final_accuracy_4bit") > accuracy("initial_accuracy"), "{report}");
    assert!((0.0..=100.0).contains(&accuracy("final_accuracy_f32")), "{report}");
    assert!(report["last_update_bytes"].as_u64().unwrap() > 0);
    let csv = std::fs::read_to_string(dir.path().join("loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4, "header and rounds 0..=3");
    let png = std::fs::read(dir.path().join("loss.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let model = pogo_circuits::model::Model::load(&dir.path().join("model.safetensors"), None).unwrap();
    assert_eq!(model.weight_count(), report["weights"].as_u64().unwrap());
    assert!(dir.path().join("update.pogo").exists());
}
