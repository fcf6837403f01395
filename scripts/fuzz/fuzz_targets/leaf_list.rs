//! Leaf lists as miners serve them (`GET /leaves/<root>`): `leaves_from_bytes`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let depth = u32::from(data.first().copied().unwrap_or(0) % 40);
    let _ = pogo_verifier::fraud::leaves_from_bytes(data.get(1..).unwrap_or_default(), depth);
});
