//! Update blobs as peers serve them: `Update::from_blob`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(update) = pogo_circuits::update::Update::from_blob(data) {
        let _ = update.to_blob();
        for b in 0..update.block_count().min(4) {
            let _ = update.leaf(b);
        }
    }
});
