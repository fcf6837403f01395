//! Key manifests (JSON): parse, the shape check, then the reader that allocates by the
//! manifest's column parameters (the fuzzing issue's A), on a real verifying key.
#![no_main]
libfuzzer_sys::fuzz_target!(init: pogo_fuzz::init_with_keys(), |data: &[u8]| {
    let Ok(manifest) = serde_json::from_slice::<pogo_verifier::keys::Manifest>(data) else { return };
    if manifest.shape.check_params(&manifest.circuit_params).is_ok() {
        let vk = pogo_fuzz::small().keys.vk_bytes();
        let _ = pogo_verifier::keys::parse_vk(&vk, &manifest.circuit_params);
    }
});
