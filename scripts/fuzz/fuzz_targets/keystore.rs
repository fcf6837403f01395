//! Keystore files (Web3 secret storage; the fuzzing issue's C and E): the parameter check,
//! then, for a file it accepts, the decryption itself.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if pogo_node::keystore::check_key_file(data).is_err() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("fuzzed.json"), data).expect("written");
    let _ = pogo_node::keystore::Keystore::new(dir.path(), "password").open("fuzzed");
});
