//! Held-out batches as the owner reveals them: `held_out::examples` for both kinds of data.
#![no_main]
use pogo_node::train::data::held_out;
use pogo_node::train::task::DataSpec;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let digits = DataSpec::Digits { path: "/fuzz/digits.bin".into(), validation: 0 };
    let text = DataSpec::Text { path: "/fuzz/text.txt".into(), context: 16, validation: 0 };
    let _ = held_out::examples(&digits, data);
    let _ = held_out::examples(&text, data);
});
