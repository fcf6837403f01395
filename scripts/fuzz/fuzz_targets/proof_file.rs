//! Proof files (JSON): parse and decode.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(file) = serde_json::from_slice::<pogo_verifier::keys::ProofFile>(data) {
        let _ = file.decode();
    }
});
