//! Update blobs as peers serve them: `Update::from_blob_within`, bounded as a node bounds
//! a candidate's blob by the model it is for (here 2^20 weights).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(update) = pogo_circuits::update::Update::from_blob_within(data, 1 << 20) {
        let _ = update.to_blob();
        for b in 0..update.block_count().min(4) {
            let _ = update.leaf(b);
        }
    }
});
