//! Model files (safetensors, float or pogo fixed-point): `Model::from_safetensors`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(model) = pogo_circuits::model::Model::from_safetensors(data, None) {
        // What every importer does next: the block count and the leaves of a few blocks.
        let blocks = model.block_count();
        for b in 0..blocks.min(4) {
            let _ = model.leaf(b);
        }
    }
});
