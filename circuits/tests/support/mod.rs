//! Helpers shared by the blob tests.

use pogo_circuits::encoding::UpdateBlock;
use pogo_circuits::update::{BlobError, Update, MAX_WEIGHTS};
use pogo_circuits::update_stream::UpdateStream;

/// Every block of `blob` as the streaming reader gives them (three blocks a chunk).
pub fn streamed(blob: &[u8]) -> Result<Vec<UpdateBlock>, BlobError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.pogo");
    std::fs::write(&path, blob).unwrap();
    let stream = UpdateStream::open(&path, MAX_WEIGHTS)?;
    let mut all = Vec::new();
    stream.blocks(3, |first, blocks| -> Result<(), BlobError> {
        assert_eq!(first as usize, all.len(), "chunks in order");
        all.extend_from_slice(blocks);
        Ok(())
    })?;
    assert_eq!(all.len() as u64, stream.block_count());
    Ok(all)
}

/// Streaming agrees with decoding whole: the same blocks, or both refuse.
pub fn assert_stream_agrees(blob: &[u8]) {
    match (Update::from_blob(blob), streamed(blob)) {
        (Ok(u), Ok(blocks)) => {
            assert_eq!(blocks, (0..u.block_count()).map(|b| u.block(b)).collect::<Vec<_>>());
        }
        (Err(_), Err(_)) => {}
        (whole, stream) => panic!("decoded whole: {whole:?}; streamed: {stream:?}"),
    }
}
