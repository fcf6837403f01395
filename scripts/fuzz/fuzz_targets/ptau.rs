//! snarkjs powers-of-tau files: `ptau::import` for k = 1..=3.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let k = u32::from(data.first().copied().unwrap_or(0) % 3) + 1;
    let _ = pogo_prover::ptau::import(data.get(1..).unwrap_or_default(), k);
});
