//! Held-out batches as the owner reveals them: `held_out::examples` for every kind of data,
//! and for token records the vocabulary check a verifier runs before evaluating them.
#![no_main]
use pogo_node::train::data::{check_fits, held_out};
use pogo_node::train::task::{DataSpec, ModelSpec};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let digits = DataSpec::Digits { path: "/fuzz/digits.bin".into(), validation: 0 };
    let text = DataSpec::Text { path: "/fuzz/text.txt".into(), context: 16, validation: 0 };
    let tokens = DataSpec::Tokens {
        path: "/fuzz/tokens.bin".into(),
        context: 8,
        labels: vec!["a".into(), "b".into()],
        validation: 0,
    };
    let encoder = ModelSpec::Encoder {
        layers: 1,
        dim: 4,
        heads: 1,
        hidden: 4,
        vocabulary: 1000,
        positions: 8,
        norm_eps: 1e-12,
        pretrained: None,
    };
    let _ = held_out::examples(&digits, data);
    let _ = held_out::examples(&text, data);
    if let Ok(examples) = held_out::examples(&tokens, data) {
        let _ = check_fits(&encoder, &examples);
    }
});
