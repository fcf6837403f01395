//! The `pogo` binary end to end: commit, open, quantize, apply and export on real
//! safetensors files, and clear failures (no panic, no output file) on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pogo_circuits::field::fr_to_hex;
use pogo_circuits::model::Model;
use pogo_circuits::update::Update;
use safetensors::tensor::{Dtype, TensorView};

fn pogo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pogo")).args(args).output().expect("pogo runs")
}

fn ok_json(args: &[&str]) -> serde_json::Value {
    let out = pogo(args);
    assert!(out.status.success(), "pogo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Fails with exit code 1 and a one-line `error:` message containing `needle`.
fn fails_with(args: &[&str], needle: &str) {
    let out = pogo(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "pogo {args:?}: {stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains(needle), "pogo {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Each cause is said once: no clause of the message comes back later in it.
    let clauses: Vec<&str> = stderr.trim().trim_start_matches("error: ").split(": ").collect();
    for (i, clause) in clauses.iter().enumerate() {
        let again = clauses[i + 1..].iter().any(|later| later == clause && clause.len() > 3);
        assert!(!again, "pogo {args:?} says {clause:?} twice: {stderr}");
    }
}

/// The pinned solc-js wrapper, installed by the repository's script if needed.
fn solc_path() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/solc/install.sh");
    let solc = pogo_verifier::evm::Solc::from_install_script(&script).unwrap();
    solc.path().display().to_string()
}

fn write_f32(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| (n.to_string(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, TensorView)> =
        bytes.iter().map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap())).collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// A 2-tensor model of 530 weights (5 blocks, the last partly padding).
fn base_tensors(shift: f32) -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    vec![
        ("fc.weight", vec![20, 25], (0..500).map(|i| ((i * 37 % 101) as f32 - 50.0) / 256.0 + shift).collect()),
        ("fc.bias", vec![30], (0..30).map(|i| i as f32 / 64.0 - shift).collect()),
    ]
}

/// `pogo quantize DIR/base DIR/trained -o DIR/update --new DIR/new --json`.
fn quantize(dir: &Dir, base: &str, trained: &str, update: &str, new: &str) -> serde_json::Value {
    ok_json(&[
        "quantize",
        &dir.path(base),
        &dir.path(trained),
        "-o",
        &dir.path(update),
        "--new",
        &dir.path(new),
        "--json",
    ])
}

struct Dir {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dir {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Self { _tmp: tmp, root }
    }
    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
}

#[test]
fn commit_prints_the_reference_root() {
    let dir = Dir::new();
    write_f32(Path::new(&dir.path("base.safetensors")), &base_tensors(0.0));
    let json = ok_json(&["commit", &dir.path("base.safetensors"), "--json"]);
    let model = Model::load(Path::new(&dir.path("base.safetensors")), None).unwrap();
    assert_eq!(json["weights"], 530);
    assert_eq!(json["blocks"], 5);
    assert_eq!(json["depth"], 3);
    assert_eq!(json["fraction_bits"], 24);
    assert_eq!(json["root"], fr_to_hex(&model.reference_tree(3).unwrap().root()));
    let deeper = ok_json(&["commit", &dir.path("base.safetensors"), "--json", "--depth", "6"]);
    assert_eq!(deeper["root"], fr_to_hex(&model.reference_tree(6).unwrap().root()));
    let text = pogo(&["commit", &dir.path("base.safetensors")]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("root") && l.contains("0x")), "{text}");
    // The same tensors as a sharded checkpoint (one tensor per shard, and an index): the
    // folder and the index file give the same root.
    let shards = dir.path("sharded");
    std::fs::create_dir(&shards).unwrap();
    let tensors = base_tensors(0.0);
    let mut map = serde_json::Map::new();
    for (i, tensor) in tensors.iter().enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        write_f32(&Path::new(&shards).join(&file), std::slice::from_ref(tensor));
        map.insert(tensor.0.to_string(), file.into());
    }
    let index = serde_json::json!({ "weight_map": map });
    std::fs::write(Path::new(&shards).join("model.safetensors.index.json"), index.to_string()).unwrap();
    assert_eq!(ok_json(&["commit", &shards, "--json"])["root"], json["root"]);
    let index_file = format!("{shards}/model.safetensors.index.json");
    assert_eq!(ok_json(&["commit", &index_file, "--json"])["root"], json["root"]);
    std::fs::remove_file(Path::new(&shards).join("model-00002-of-00002.safetensors")).unwrap();
    fails_with(&["commit", &shards], "shard model-00002-of-00002.safetensors");
}

/// `--gpu` on a machine with no usable GPU (this one, CI): a note that says why, the CPU's
/// root, exit 0. In a `gpu` build the note names the missing driver; in the default build,
/// the missing feature.
#[test]
fn commit_gpu_without_a_gpu_says_why_and_gives_the_cpu_root() {
    let dir = Dir::new();
    write_f32(Path::new(&dir.path("base.safetensors")), &base_tensors(0.0));
    let cpu = ok_json(&["commit", &dir.path("base.safetensors"), "--json"]);
    assert_eq!(cpu["hashed_on"], "cpu");
    let out = pogo(&["commit", &dir.path("base.safetensors"), "--json", "--gpu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gpu: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(gpu["root"], cpu["root"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if gpu["hashed_on"] == "cpu" {
        assert!(stderr.contains("note: not hashing on a GPU: ") && stderr.contains("hashed on the CPU"), "{stderr}");
        assert!(stderr.contains("built without GPU support") || stderr.contains("driver"), "{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Streamed with a tree file: the CPU's file, whatever hashed it.
    let (cpu_tree, gpu_tree) = (dir.path("cpu.tree"), dir.path("gpu.tree"));
    ok_json(&["commit", &dir.path("base.safetensors"), "--json", "--tree-out", &cpu_tree]);
    let gpu = ok_json(&["commit", &dir.path("base.safetensors"), "--json", "--gpu", "--tree-out", &gpu_tree]);
    assert_eq!(gpu["root"], cpu["root"]);
    assert_eq!(std::fs::read(&gpu_tree).unwrap(), std::fs::read(&cpu_tree).unwrap());
}

#[test]
fn bench_commit_measures_the_cpu_and_reports_the_gpu_it_cannot_use() {
    let json =
        ok_json(&["bench", "commit", "--cpu-weights", "5000", "--weights", "5000", "--repeat", "1", "--gpu", "--json"]);
    assert_eq!(json["cpu_weights"], 5000);
    assert!(json["cpu_weights_per_second"].as_f64().unwrap() > 0.0);
    // No GPU here: the report says so instead of failing.
    if json.get("gpu_root").is_none() {
        let gpu = json["gpu"].as_str().unwrap();
        assert!(gpu.starts_with("unavailable") || gpu == "not built in", "{gpu}");
    }
    fails_with(&["bench", "commit", "--cpu-weights", "0"], "nothing to measure");
    fails_with(&["bench", "commit", "--weights", "0", "--gpu"], "--weights must be positive");
}

/// Training on a GPU needs candle's CUDA backend: a build without it says how to get one
/// (the roles' `--gpu` goes through the same check, `cmd::cuda_device`).
#[test]
fn train_with_gpu_needs_the_gpu_train_build() {
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks/digits.json");
    let dir = Dir::new();
    fails_with(
        &["train", &tasks.display().to_string(), "--rounds", "1", "--gpu", "--out", &dir.path("out")],
        "gpu-train",
    );
    assert!(!Path::new(&dir.path("out")).exists(), "nothing written before the device is known");
}

#[test]
fn bench_prove_without_keys_names_the_setup_command() {
    let dir = Dir::new();
    fails_with(
        &["bench", "prove", "--depth", "3", "--samples", "2", "--params-dir", &dir.path("params")],
        "pogo setup",
    );
}

/// Models commit streamed (the default) to the root of the whole-model path, and
/// `--tree-out` keeps a tree file from which `open --tree` reads the same openings without
/// rebuilding; a tree file of another model, a damaged one, and `--tree-out` on an update
/// blob are refused by name.
#[test]
fn commit_streams_and_keeps_a_tree_file_that_open_reads() {
    let dir = Dir::new();
    let base = dir.path("base.safetensors");
    write_f32(Path::new(&base), &base_tensors(0.0));
    let tree = dir.path("base.tree");
    let streamed = ok_json(&["commit", &base, "--json", "--depth", "5", "--tree-out", &tree]);
    let whole = ok_json(&["commit", &base, "--json", "--depth", "5", "--in-memory"]);
    assert_eq!(streamed["root"], whole["root"]);
    assert_eq!(streamed["tree_file"], tree);
    for block in ["0", "3", "4"] {
        let from_file = ok_json(&["open", &base, "--block", block, "--depth", "5", "--tree", &tree, "--json"]);
        let rebuilt = ok_json(&["open", &base, "--block", block, "--depth", "5", "--json"]);
        for key in ["root", "leaf", "path_bits", "siblings", "blocks", "depth"] {
            assert_eq!(from_file[key], rebuilt[key], "block {block}: {key}");
        }
    }
    fails_with(&["open", &base, "--block", "5", "--tree", &tree], "block 5 does not exist");
    fails_with(&["open", &base, "--block", "1", "--depth", "4", "--tree", &tree], "has depth 5, not the --depth 4");
    // Another model of the same size: its blocks are not the tree's leaves.
    let other = dir.path("other.safetensors");
    write_f32(Path::new(&other), &base_tensors(0.5));
    fails_with(&["open", &other, "--block", "2", "--tree", &tree], "the tree file is of another model");
    let mut bytes = std::fs::read(&tree).unwrap();
    bytes.truncate(bytes.len() - 1);
    let damaged = dir.path("damaged.tree");
    std::fs::write(&damaged, bytes).unwrap();
    fails_with(&["open", &base, "--block", "2", "--tree", &damaged], "truncated or padded");
    // A failed commit leaves no tree file (nor a temporary one) behind.
    let mut nan = base_tensors(0.0);
    nan[1].2[3] = f32::NAN;
    write_f32(Path::new(&dir.path("nan.safetensors")), &nan);
    let never = dir.path("never.tree");
    fails_with(&["commit", &dir.path("nan.safetensors"), "--tree-out", &never], "element 3");
    assert!(std::fs::read_dir(&dir.root).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("never")));
    // Update blobs stream too, to the in-memory root; `open --tree` is for models.
    write_f32(Path::new(&dir.path("shifted.safetensors")), &base_tensors(0.25));
    let q = quantize(&dir, "base.safetensors", "shifted.safetensors", "base.pogo", "base-new.safetensors");
    let update_tree = dir.path("update.tree");
    let streamed = ok_json(&["commit", &dir.path("base.pogo"), "--json", "--tree-out", &update_tree]);
    let whole = ok_json(&["commit", &dir.path("base.pogo"), "--json", "--in-memory"]);
    assert_eq!((&streamed["root"], &streamed["kind"]), (&whole["root"], &whole["kind"]));
    assert_eq!(streamed["root"], q["update_root"]);
    fails_with(&["open", &dir.path("base.pogo"), "--block", "0", "--tree", &update_tree], "is an update blob");
    let out = pogo(&["commit", &base, "--in-memory", "--tree-out", &never]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn open_prints_a_path_that_verifies() {
    let dir = Dir::new();
    write_f32(Path::new(&dir.path("base.safetensors")), &base_tensors(0.0));
    let json = ok_json(&["open", &dir.path("base.safetensors"), "--block", "4", "--json"]);
    let model = Model::load(Path::new(&dir.path("base.safetensors")), None).unwrap();
    let expected = model.reference_tree(3).unwrap().open(4).unwrap();
    assert_eq!(json["leaf"], fr_to_hex(&model.leaf(4)));
    assert_eq!(json["path_bits"], "001");
    let siblings: Vec<String> = expected.siblings.iter().map(fr_to_hex).collect();
    assert_eq!(json["siblings"], serde_json::json!(siblings));
    fails_with(&["open", &dir.path("base.safetensors"), "--block", "5"], "block 5 does not exist");
}

#[test]
fn quantize_then_apply_reproduces_the_new_model_and_roots() {
    let dir = Dir::new();
    write_f32(Path::new(&dir.path("base.safetensors")), &base_tensors(0.0));
    write_f32(Path::new(&dir.path("trained.safetensors")), &base_tensors(0.01));
    let q = quantize(&dir, "base.safetensors", "trained.safetensors", "update.pogo", "new.safetensors");
    assert!(q["changed_weights"].as_u64().unwrap() > 500);
    assert!(q["max_error"].as_f64().unwrap() < 0.01 / 7.0);
    let applied = ok_json(&[
        "apply",
        &dir.path("base.safetensors"),
        &dir.path("update.pogo"),
        "-o",
        &dir.path("applied.safetensors"),
        "--json",
    ]);
    assert_eq!(applied["new_root"], q["new_root"]);
    assert_eq!(
        std::fs::read(dir.path("applied.safetensors")).unwrap(),
        std::fs::read(dir.path("new.safetensors")).unwrap(),
        "apply and quantize write the same exact model"
    );
    let committed_update = ok_json(&["commit", &dir.path("update.pogo"), "--json"]);
    assert_eq!(committed_update["kind"], "update");
    assert_eq!(committed_update["root"], q["update_root"]);
    let committed_new = ok_json(&["commit", &dir.path("new.safetensors"), "--json"]);
    assert_eq!(committed_new["root"], q["new_root"]);
    // The rebuilt model is what the update says: base + s*q, checked independently.
    let base = Model::load(Path::new(&dir.path("base.safetensors")), None).unwrap();
    let update = Update::load(Path::new(&dir.path("update.pogo"))).unwrap();
    let new = Model::load(Path::new(&dir.path("new.safetensors")), None).unwrap();
    assert_eq!(update.apply(&base).unwrap(), new);
    // The blob records its base: the same-sized model it was not made from is refused,
    // naming both roots, and nothing is written.
    assert_eq!(
        update.base().map(|b| pogo_circuits::field::fr_to_hex(&b.root)),
        q["base_root"].as_str().map(String::from)
    );
    let never = dir.path("never.safetensors");
    let other = ["apply", &dir.path("trained.safetensors"), &dir.path("update.pogo"), "-o", &never];
    fails_with(&other, q["base_root"].as_str().unwrap());
    fails_with(&other, "the update was made against the model with root");
    assert!(!Path::new(&never).exists());
    // --expect-root for scripts: met, it passes; not met, it fails naming both roots.
    let new_root = q["new_root"].as_str().unwrap();
    let applied = dir.path("again.safetensors");
    let expecting = |root: &str| {
        vec![
            "apply".to_string(),
            dir.path("base.safetensors"),
            dir.path("update.pogo"),
            "-o".into(),
            applied.clone(),
            "--expect-root".into(),
            root.to_string(),
        ]
    };
    let args = expecting(new_root);
    let streamed = ok_json(&args.iter().map(String::as_str).chain(["--json"]).collect::<Vec<_>>());
    let streamed_bytes = std::fs::read(&applied).unwrap();
    std::fs::remove_file(&applied).unwrap();
    // The whole-model path (kept for comparisons) writes the same file and reports the same.
    let whole = ok_json(&args.iter().map(String::as_str).chain(["--json", "--in-memory"]).collect::<Vec<_>>());
    assert_eq!(whole, streamed);
    assert_eq!(std::fs::read(&applied).unwrap(), streamed_bytes);
    fails_with(&other.iter().copied().chain(["--in-memory"]).collect::<Vec<_>>(), "made against the model with root");
    std::fs::remove_file(&applied).unwrap();
    let args = expecting("0x1234");
    fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), "not the expected 0x");
    assert!(!Path::new(&applied).exists(), "nothing written when the root is not the expected one");
    ok_json(&["commit", &dir.path("new.safetensors"), "--expect-root", new_root, "--json"]);
    fails_with(&["commit", &dir.path("base.safetensors"), "--expect-root", new_root], new_root);
    fails_with(&["commit", &dir.path("base.safetensors"), "--expect-root", "0xzz"], "--expect-root 0xzz");
}

/// Error feedback over two rounds, streamed (the default) and `--in-memory` side by side:
/// the same blob, new model and residual bytes each round, and the same report. The streamed
/// path's tree files give the roots it printed and openings that verify.
#[test]
fn quantize_keeps_error_feedback_in_a_residual_file() {
    let dir = Dir::new();
    write_f32(Path::new(&dir.path("base.safetensors")), &base_tensors(0.0));
    write_f32(Path::new(&dir.path("trained.safetensors")), &base_tensors(0.01));
    let round = |path: &str, round: u32, extra: &[&str]| {
        let name = |what: &str| dir.path(&format!("{path}-{what}-{round}"));
        let mut args = vec![
            "quantize".to_string(),
            dir.path("base.safetensors"),
            dir.path("trained.safetensors"),
            "-o".into(),
            name("update"),
            "--new".into(),
            name("new"),
            "--residual".into(),
            dir.path(&format!("{path}.residual")),
            "--density".into(),
            "0.6".into(),
            "--json".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let json = ok_json(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let files =
            [name("update"), name("new"), dir.path(&format!("{path}.residual"))].map(|f| std::fs::read(f).unwrap());
        (json, files)
    };
    let trees = [dir.path("old.tree"), dir.path("new.tree"), dir.path("update.tree")];
    let tree_args =
        ["--old-tree", trees[0].as_str(), "--new-tree", trees[1].as_str(), "--update-tree", trees[2].as_str()];
    let (first, first_files) = round("streamed", 1, &tree_args);
    assert!(first["residual_rms"].as_f64().unwrap() > 0.0);
    assert_eq!(first["changed_blocks"], 3, "ceil(0.6 · 5) blocks");
    for (tree, root) in trees.iter().zip(["base_root", "new_root", "update_root"]) {
        let file = pogo_circuits::tree_file::TreeFile::open(Path::new(tree)).unwrap();
        assert_eq!(fr_to_hex(&file.root()), first[root].as_str().unwrap(), "{tree}");
    }
    let opened = ok_json(&["open", &dir.path("streamed-new-1"), "--block", "4", "--tree", &trees[1], "--json"]);
    assert_eq!(opened["root"], first["new_root"]);
    let (whole, whole_files) = round("whole", 1, &["--in-memory"]);
    assert_eq!(
        first,
        whole
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let v = if v.is_string() {
                    serde_json::json!(v.as_str().unwrap().replace("whole", "streamed"))
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect::<serde_json::Value>()
    );
    assert!(first_files == whole_files, "the same blob, model and residual bytes");
    // The second round starts from the carried error, so it quantizes another target.
    let (second, second_files) = round("streamed", 2, &[]);
    assert_ne!(first["new_root"], second["new_root"]);
    let (_, whole_second) = round("whole", 2, &["--in-memory"]);
    assert!(second_files == whole_second, "round 2: the same bytes");
    // A residual for another model is refused by name, and nothing is written.
    let residual = dir.path("streamed.residual");
    std::fs::write(&residual, b"garbage").unwrap();
    for extra in [None, Some("--in-memory")] {
        let mut args = vec![
            "quantize",
            &dir.path("base.safetensors"),
            &dir.path("trained.safetensors"),
            "-o",
            &dir.path("never.pogo"),
            "--new",
            &dir.path("never.safetensors"),
            "--residual",
            &residual,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.map(String::from));
        fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), "not a usable error-feedback residual");
        assert!(!Path::new(&dir.path("never.pogo")).exists());
    }
    let out = pogo(&["quantize", "a", "b", "-o", "c", "--new", "d", "--in-memory", "--new-tree", "t"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

#[test]
fn export_writes_floats_that_import_back_exactly() {
    let dir = Dir::new();
    write_f32(Path::new(&dir.path("base.safetensors")), &base_tensors(0.0));
    let base = ok_json(&["commit", &dir.path("base.safetensors"), "--json"]);
    for dtype in ["f32", "bf16"] {
        let out = dir.path(&format!("exported-{dtype}.safetensors"));
        ok_json(&["export", &dir.path("base.safetensors"), "-o", &out, "--dtype", dtype, "--json"]);
        let again = ok_json(&["commit", &out, "--json"]);
        assert_eq!(again["root"], base["root"], "{dtype}: every value here is exact in {dtype}");
    }
    // Exported as a stream: the bytes of the in-memory export, from a fixed-point model too.
    let model = Model::load(Path::new(&dir.path("base.safetensors")), None).unwrap();
    model.save(Path::new(&dir.path("fixed.safetensors"))).unwrap();
    let out = dir.path("from-fixed.safetensors");
    ok_json(&["export", &dir.path("fixed.safetensors"), "-o", &out, "--dtype", "f16", "--json"]);
    let expected = model.to_float_safetensors(pogo_circuits::model::FloatDtype::F16).unwrap();
    assert!(std::fs::read(&out).unwrap() == expected);
    let never = dir.path("never.safetensors");
    fails_with(&["export", &dir.path("missing.safetensors"), "-o", &never], "missing.safetensors");
    assert!(!Path::new(&never).exists());
}

#[test]
fn bad_inputs_fail_clearly_and_write_nothing() {
    let dir = Dir::new();
    write_f32(Path::new(&dir.path("base.safetensors")), &base_tensors(0.0));
    let bytes = std::fs::read(dir.path("base.safetensors")).unwrap();
    std::fs::write(dir.path("truncated.safetensors"), &bytes[..bytes.len() - 7]).unwrap();
    fails_with(&["commit", &dir.path("truncated.safetensors")], "not a valid safetensors file");
    fails_with(&["commit", &dir.path("missing.safetensors")], "missing.safetensors");
    fails_with(&["commit", &dir.path("base.safetensors"), "--depth", "2"], "do not fit in a tree of depth 2");
    fails_with(&["commit", &dir.path("base.safetensors"), "--fraction-bits", "31"], "fraction bits");

    let mut tensors = base_tensors(0.0);
    tensors[0].2[123] = f32::NAN;
    write_f32(Path::new(&dir.path("nan.safetensors")), &tensors);
    fails_with(&["commit", &dir.path("nan.safetensors")], "tensor \"fc.weight\", element 123");

    // An update for a model of another size: refused, and no output file appears.
    let mut small = base_tensors(0.0);
    small[0] = ("fc.weight", vec![10, 25], small[0].2[..250].to_vec());
    write_f32(Path::new(&dir.path("small.safetensors")), &small);
    write_f32(Path::new(&dir.path("small2.safetensors")), &small);
    quantize(&dir, "small.safetensors", "small2.safetensors", "small.pogo", "small-new.safetensors");
    let out = dir.path("never.safetensors");
    fails_with(&["apply", &dir.path("base.safetensors"), &dir.path("small.pogo"), "-o", &out], "model of 280 weights");
    assert!(!Path::new(&out).exists());

    // `prove` says what is wrong with the depth and the indices before it looks for keys
    // (there are none in this --params-dir).
    write_f32(Path::new(&dir.path("shifted.safetensors")), &base_tensors(0.25));
    quantize(&dir, "base.safetensors", "shifted.safetensors", "base.pogo", "base-new.safetensors");
    let prove = |extra: &[&str], needle: &str| {
        let (base, new, blob, proof, keys) = (
            dir.path("base.safetensors"),
            dir.path("base-new.safetensors"),
            dir.path("base.pogo"),
            dir.path("never.proof"),
            dir.path("no-params"),
        );
        let mut all = vec![
            "prove",
            base.as_str(),
            new.as_str(),
            blob.as_str(),
            "-o",
            proof.as_str(),
            "--params-dir",
            keys.as_str(),
        ];
        all.extend_from_slice(extra);
        fails_with(&all, needle);
    };
    prove(&["--indices", "0", "--depth", "1"], "do not fit in a tree of depth 1");
    prove(&["--indices", "7"], "block index 7 is out of range");
    prove(&["--indices", "0"], "pogo setup --depth 3 --samples 1 --params-dir");

    // A blob with a flipped checksum byte.
    let mut blob = std::fs::read(dir.path("small.pogo")).unwrap();
    blob[40] ^= 1;
    std::fs::write(dir.path("corrupt.pogo"), &blob).unwrap();
    fails_with(&["apply", &dir.path("small.safetensors"), &dir.path("corrupt.pogo"), "-o", &out], "checksum");
    assert!(!Path::new(&out).exists());

    // Models with different tensors cannot be quantized against each other.
    fails_with(
        &[
            "quantize",
            &dir.path("base.safetensors"),
            &dir.path("small.safetensors"),
            "-o",
            &dir.path("x.pogo"),
            "--new",
            &out,
        ],
        "different tensors",
    );
    assert!(!Path::new(&out).exists() && !Path::new(&dir.path("x.pogo")).exists());
    // No temporary files are left behind by any failure.
    let leftovers: Vec<_> = std::fs::read_dir(&dir.root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn setup_prove_and_verify_proof_end_to_end() {
    let dir = Dir::new();
    let params = dir.path("params");
    write_f32(Path::new(&dir.path("base.safetensors")), &base_tensors(0.0));
    write_f32(Path::new(&dir.path("trained.safetensors")), &base_tensors(0.02));
    quantize(&dir, "base.safetensors", "trained.safetensors", "update.pogo", "new.safetensors");
    let setup = ok_json(&["setup", "--depth", "3", "--samples", "2", "--params-dir", &params, "--json"]);
    assert_eq!(setup["config"], "d3-s2");
    let seed = format!("0x{}", "5e".repeat(32));
    let proved = ok_json(&[
        "prove",
        &dir.path("base.safetensors"),
        &dir.path("new.safetensors"),
        &dir.path("update.pogo"),
        "--seed",
        &seed,
        "--samples",
        "2",
        "--params-dir",
        &params,
        "-o",
        &dir.path("round.proof"),
        "--json",
    ]);
    let committed = ok_json(&["commit", &dir.path("new.safetensors"), "--json"]);
    assert_eq!(proved["new_root"], committed["root"]);
    let expected: Vec<String> =
        pogo_circuits::sampling::sample_indices(&[0x5e; 32], 2, 5).iter().map(u64::to_string).collect();
    assert_eq!(proved["indices"], expected.join(","));
    let verified = ok_json(&["verify-proof", &dir.path("round.proof"), "--params-dir", &params, "--json"]);
    assert_eq!(verified["valid"], true);
    assert_eq!(proved["prover"], "cpu");
    // The same statement from tree files (no model hashed), and from the whole-model path.
    let trees = ["old", "new", "update"].map(|t| dir.path(&format!("{t}.tree")));
    ok_json(&["commit", &dir.path("base.safetensors"), "--tree-out", &trees[0], "--json"]);
    ok_json(&["commit", &dir.path("new.safetensors"), "--tree-out", &trees[1], "--json"]);
    ok_json(&["commit", &dir.path("update.pogo"), "--tree-out", &trees[2], "--json"]);
    let prove_with = |extra: &[&str]| {
        let (base, new, update, proof) = (
            dir.path("base.safetensors"),
            dir.path("new.safetensors"),
            dir.path("update.pogo"),
            dir.path("again.proof"),
        );
        let mut args = vec!["prove", &base, &new, &update, "--seed", &seed, "--samples", "2", "--params-dir", &params];
        args.extend_from_slice(&["-o", &proof, "--json"]);
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |extra: &[&str]| ok_json(&prove_with(extra).iter().map(String::as_str).collect::<Vec<_>>());
    let fails = |extra: &[&str], needle: &str| {
        fails_with(&prove_with(extra).iter().map(String::as_str).collect::<Vec<_>>(), needle)
    };
    let tree_args =
        ["--old-tree", trees[0].as_str(), "--new-tree", trees[1].as_str(), "--update-tree", trees[2].as_str()];
    for extra in [&tree_args[..], &tree_args[2..4], &["--in-memory"]] {
        let again = run(extra);
        for key in ["old_root", "new_root", "update_root", "indices", "config"] {
            assert_eq!(again[key], proved[key], "{extra:?}: {key}");
        }
        assert_eq!(
            ok_json(&["verify-proof", &dir.path("again.proof"), "--params-dir", &params, "--json"])["valid"],
            true
        );
    }
    // Trees of the wrong model, or of another depth, are named before proving.
    fails(&["--old-tree", &trees[1]], "the old model tree's leaf is not that block's");
    fails(&["--update-tree", &trees[0]], "the update tree's leaf is not that block's");
    ok_json(&["commit", &dir.path("base.safetensors"), "--tree-out", &dir.path("deep.tree"), "--depth", "4", "--json"]);
    fails(
        &["--old-tree", &dir.path("deep.tree")],
        "a tree of 5 leaves at depth 4, but the round has 5 blocks at depth 3",
    );
    // No scratch folder is left beside the proof.
    assert!(std::fs::read_dir(&dir.root).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".pogo-prove")));

    let export = ["export-verifier", "--depth", "3", "--samples", "2", "--params-dir", &params];
    // `pogo bench prove` with the same keys: timed, checked natively, written as a proof file.
    let bench_dir = dir.path("bench");
    let bench = ok_json(&[&["bench", "prove"][..], &export[1..], &["--proof-dir", &bench_dir, "--json"]].concat());
    assert_eq!(bench["proofs"][0]["config"], "d3-s2");
    assert_eq!(bench["proofs"][0]["verified_natively"], true);
    let benched = dir.path("bench/d3-s2-cpu.proof");
    assert_eq!(ok_json(&["verify-proof", &benched, "--params-dir", &params, "--json"])["valid"], true);

    // The Solidity verifier: exported next to the keys, then the proof checked in the EVM.
    fails_with(&["verify-proof", &dir.path("round.proof"), "--params-dir", &params, "--evm"], "export-verifier");
    fails_with(&[&export[..], &["--solc", &dir.path("no-such-solc")]].concat(), "scripts/solc/install.sh");
    let solc = solc_path();
    let exported = ok_json(&[&export[..], &["--solc", &solc, "--json"]].concat());
    assert_eq!(exported["config"], "d3-s2");
    assert_eq!(exported["vk_sha256"], setup["vk_sha256"]);
    for file in ["Verifier.sol", "verifier.bin", "verifier.json"] {
        assert!(Path::new(&params).join("d3-s2").join(file).exists(), "{file}");
    }
    let calldata = dir.path("round.calldata");
    let on_chain = ok_json(&[
        "verify-proof",
        &dir.path("round.proof"),
        "--params-dir",
        &params,
        "--evm",
        "--calldata-out",
        &calldata,
        "--json",
    ]);
    assert_eq!(on_chain["valid"], true);
    let gas = |key: &str| on_chain[key].as_u64().unwrap_or_else(|| panic!("{key}: {on_chain}"));
    assert!(gas("evm_gas_prague") > 200_000, "{on_chain}");
    // With the inverse hints no MODEXP runs, so both forks charge alike; without them Osaka
    // (EIP-7883) charges more, and hints save gas under either.
    assert_eq!(gas("evm_gas_osaka"), gas("evm_gas_prague"), "{on_chain}");
    assert!(gas("evm_gas_osaka_without_hints") > gas("evm_gas_prague_without_hints"), "{on_chain}");
    assert!(gas("evm_gas_prague") < gas("evm_gas_prague_without_hints"), "{on_chain}");
    // The calldata written: inputs (6 words), the proof, three hints, as 0x hex.
    let written = std::fs::read_to_string(&calldata).unwrap();
    let proof_hex =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(dir.path("round.proof")).unwrap()).unwrap()
            ["proof"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x")
            .to_string();
    assert_eq!(written.trim().len(), 2 + 2 * (6 * 32 + 96) + proof_hex.len(), "{written}");
    assert!(written.contains(&proof_hex));
    // --calldata-out without --evm is a usage error (clap's exit status 2) naming --evm.
    let usage = pogo(&["verify-proof", &dir.path("round.proof"), "--calldata-out", &calldata]);
    let said = String::from_utf8_lossy(&usage.stderr);
    assert!(usage.status.code() == Some(2) && said.contains("--evm"), "{said}");
    // A replaced verifier.bin is caught by its hash.
    let bin = Path::new(&params).join("d3-s2/verifier.bin");
    let original = std::fs::read_to_string(&bin).unwrap();
    std::fs::write(&bin, original.replacen("60", "61", 1)).unwrap();
    fails_with(&["verify-proof", &dir.path("round.proof"), "--params-dir", &params, "--evm"], "does not match");
    std::fs::write(&bin, original).unwrap();
    // The audit reads these keys and regenerates the exported verifier byte for byte.
    let audit = ok_json(&[
        "audit",
        "--depth",
        "3",
        "--samples",
        "2",
        "--params-dir",
        &params,
        "--solc",
        &solc,
        "--mutation-samples",
        "1",
        "--json",
    ]);
    assert_eq!(audit["passed"], true, "{audit}");
    assert_eq!(audit["vk_sha256"], setup["vk_sha256"]);
    let regenerated =
        audit["checks"].as_array().unwrap().iter().find(|c| c["name"].as_str().unwrap().contains("Solidity"));
    assert_eq!(regenerated.expect("the verifier check ran")["passed"], true);

    // A tampered proof, and a proof file whose public inputs were edited, are refused.
    let text = std::fs::read_to_string(dir.path("round.proof")).unwrap();
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let proof = file["proof"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", &proof[..100], if &proof[100..101] == "0" { "1" } else { "0" }) + &proof[101..];
    file["proof"] = flipped.into();
    std::fs::write(dir.path("tampered.proof"), file.to_string()).unwrap();
    fails_with(&["verify-proof", &dir.path("tampered.proof"), "--params-dir", &params], "does not verify");
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    file["blocks"] = 4.into();
    std::fs::write(dir.path("edited.proof"), file.to_string()).unwrap();
    // The recorded seed draws other indices from 4 blocks: refused before the proof is read.
    fails_with(
        &["verify-proof", &dir.path("edited.proof"), "--params-dir", &params],
        "are not the ones the recorded seed draws",
    );
    // Without the seed, the proof itself refuses the edited inputs.
    file.as_object_mut().unwrap().remove("seed");
    std::fs::write(dir.path("edited.proof"), file.to_string()).unwrap();
    fails_with(&["verify-proof", &dir.path("edited.proof"), "--params-dir", &params], "does not verify");

    // Proving a new model that is not old + update fails by name, before proving.
    fails_with(
        &[
            "prove",
            &dir.path("base.safetensors"),
            &dir.path("base.safetensors"),
            &dir.path("update.pogo"),
            "--indices",
            "0,4",
            "--params-dir",
            &params,
            "-o",
            &dir.path("never.proof"),
        ],
        "is not the old model plus the update",
    );
    assert!(!Path::new(&dir.path("never.proof")).exists());
    fails_with(
        &["verify-proof", &dir.path("round.proof"), "--params-dir", &dir.path("elsewhere")],
        "run `pogo setup --depth 3 --samples 2 --params-dir",
    );
}

#[test]
fn audit_passes_the_sound_circuit_and_catches_a_weakened_one() {
    let dir = Dir::new();
    let params = dir.path("no-params");
    let report = ok_json(&["audit", "--depth", "2", "--samples", "1", "--params-dir", &params, "--json"]);
    assert_eq!(report["passed"], true, "{report}");
    assert!(report["advice_cells"].as_u64().unwrap() > 10_000);
    assert_eq!(
        report["constraints"]["public_inputs"],
        serde_json::json!(["old_root", "new_root", "update_root", "nb", "i_0"])
    );
    assert!(report["constraints"]["gates"].as_array().unwrap().iter().any(|g| g["name"] == "H_2 full round"));
    assert_eq!(report["mutations"]["classes"].as_array().unwrap().len(), 9, "every class of witness cell");
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 5 && checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    let survivors = dir.path("survivors.json");
    assert!(!Path::new(&survivors).exists());

    // A circuit without the nibble range check: the audit fails and writes the counter-example.
    fails_with(
        &[
            "audit",
            "--depth",
            "2",
            "--samples",
            "1",
            "--params-dir",
            &params,
            "--variant",
            "no-nibble-range-check",
            "--counterexamples",
            &survivors,
        ],
        "mutations survived",
    );
    let found: serde_json::Value = serde_json::from_slice(&std::fs::read(&survivors).unwrap()).unwrap();
    assert_eq!(found["variant"], "no-nibble-range-check");
    let first = &found["survivors"][0];
    assert_eq!(first["class"], "nibble");
    assert_eq!(first["public_inputs"].as_array().unwrap().len(), 5);
}
