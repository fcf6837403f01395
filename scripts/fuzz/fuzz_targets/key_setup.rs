//! Setup files (the fuzzing issue's B): `parse_setup` for k = 1..=3 (the first byte picks
//! it, so that a fuzzer can reach files of the right length), and at the small
//! configuration's k.
#![no_main]
libfuzzer_sys::fuzz_target!(init: pogo_fuzz::init_with_keys(), |data: &[u8]| {
    let k = u32::from(data.first().copied().unwrap_or(0) % 3) + 1;
    let _ = pogo_verifier::keys::parse_setup(data.get(1..).unwrap_or_default(), k);
    let _ = pogo_verifier::keys::parse_setup(data, pogo_fuzz::small().shape.k);
});
