//! Verifying-key files with the real configuration's column parameters.
#![no_main]
libfuzzer_sys::fuzz_target!(init: pogo_fuzz::init_with_keys(), |data: &[u8]| {
    let small = pogo_fuzz::small();
    let _ = pogo_verifier::keys::parse_vk(data, &small.keys.params);
});
