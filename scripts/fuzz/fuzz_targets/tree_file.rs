//! Tree files (`pogo commit --tree-out`, read by `pogo open --tree`): `TreeFile::open`, then
//! the leaves and paths a reader asks for, each path checked against the root.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), data).expect("written");
    if let Ok(tree) = pogo_circuits::tree_file::TreeFile::open(file.path()) {
        for index in [0, 1, tree.leaves() / 2, tree.leaves().saturating_sub(1), tree.leaves()] {
            let _ = tree.leaf(index);
            let _ = tree.open_path(index);
        }
    }
});
