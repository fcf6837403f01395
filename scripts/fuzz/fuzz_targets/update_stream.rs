//! Update blobs read as streams (`UpdateStream`, what `pogo apply` and `pogo commit` use),
//! differentially: whatever the whole-blob decoder accepts, the stream gives block for block,
//! and whatever it refuses, the stream refuses too.
#![no_main]
use pogo_circuits::update::{BlobError, Update};
use pogo_circuits::update_stream::UpdateStream;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let most = 1 << 20;
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), data).expect("written");
    let streamed = UpdateStream::open(file.path(), most).and_then(|stream| {
        let mut blocks = Vec::new();
        stream.blocks(5, |_, chunk| -> Result<(), BlobError> {
            blocks.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(blocks)
    });
    match (Update::from_blob_within(data, most), streamed) {
        (Ok(update), Ok(blocks)) => {
            assert_eq!(blocks.len() as u64, update.block_count());
            for (b, block) in blocks.iter().enumerate() {
                assert_eq!(*block, update.block(b as u64));
            }
        }
        (Err(_), Err(_)) => {}
        (whole, stream) => panic!("decoded whole: {:?}; streamed: {:?}", whole.err(), stream.err()),
    }
});
