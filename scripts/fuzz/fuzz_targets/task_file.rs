//! Task files (JSON): `TaskConfig::from_bytes`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pogo_node::train::TaskConfig::from_bytes(data, std::path::Path::new("/fuzz/task.json"));
});
