//! The update store: content-addressed files on disk (update blobs by their keccak-256, the
//! hash committed on chain; models, and the leaf lists of new models, by their Merkle
//! root), served read-only over HTTP by miners ([`server`]: `GET /blobs/<hash>`,
//! `GET /leaves/<root>`), fetched and checked by verifiers (a blob against its hash, a leaf
//! list by the caller against the root it must give).

mod server;
mod trees;

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::{keccak256, B256, U256};
use pogo_circuits::checkpoint::{Checkpoint, CheckpointWriter};
use pogo_circuits::files::write_atomic;
use pogo_circuits::model::Model;
pub use server::{ServeLimits, StoreServer};

/// Largest blob a fetch accepts (a 4-bit update of a 1B-weight model is ~0.5 GB).
pub const MAX_BLOB_BYTES: u64 = 1 << 31;

/// The store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Disk trouble.
    #[error("update store {path}: {why}")]
    Io {
        /// The file or folder.
        path: String,
        /// Why.
        why: String,
    },
    /// No source had the file (or every copy was wrong).
    #[error("{what} is not available: {why}")]
    Unavailable {
        /// The file: `blob <hash>` or `the leaf list of <root>`.
        what: String,
        /// What each source said.
        why: String,
    },
    /// A kept file is not what it is kept as.
    #[error("{what} is damaged: {why}")]
    Damaged {
        /// The file.
        what: String,
        /// What is wrong.
        why: String,
    },
    /// The HTTP server could not start.
    #[error("cannot serve the update store on {addr}: {why}")]
    Serve {
        /// The address.
        addr: String,
        /// Why.
        why: String,
    },
}

/// A file one store serves and another fetches, named the one way both use: the URL path
/// `blobs/<hash>`, `leaves/<root>` or `models/<root>` (64 hex digits each), and where it
/// lies in a store folder. The server keys its cache by this, not by the request's text,
/// so other spellings of a name (a `0x`, upper case) are the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Resource {
    /// An update blob, by its keccak-256.
    Blob(B256),
    /// The leaf list of a new model, by its root.
    Leaves(U256),
    /// A model (a checkpoint), by its root.
    Model(U256),
}

impl Resource {
    /// Its URL path under a store URL (no leading slash).
    fn url_path(self) -> String {
        match self {
            Resource::Blob(hash) => format!("blobs/{}", hex::encode(hash)),
            Resource::Leaves(root) => format!("leaves/{root:064x}"),
            Resource::Model(root) => format!("models/{root:064x}"),
        }
    }

    /// The resource a request's URL path names, if any.
    fn parse(path: &str) -> Option<Self> {
        let (kind, name) = path.trim_start_matches('/').split_once('/')?;
        match kind {
            "blobs" => name.parse().ok().map(Resource::Blob),
            "leaves" => U256::from_str_radix(name, 16).ok().map(Resource::Leaves),
            "models" => U256::from_str_radix(name, 16).ok().map(Resource::Model),
            _ => None,
        }
    }

    /// Where it lies in `store`.
    fn file(self, store: &Store) -> PathBuf {
        match self {
            Resource::Blob(hash) => store.blob_path(hash),
            Resource::Leaves(root) => store.leaves_path(root),
            Resource::Model(root) => store.model_path(root),
        }
    }

    /// Its bytes in `store`: a blob only if they still hash to its name; leaves and models
    /// unchecked (the fetcher checks them against the root it needs).
    fn read(self, store: &Store) -> Option<Vec<u8>> {
        match self {
            Resource::Blob(hash) => store.local_blob(hash),
            Resource::Leaves(root) => store.local_leaves(root),
            Resource::Model(_) => std::fs::read(self.file(store)).ok(),
        }
    }
}

/// A store folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir` (folders made on first write).
    pub fn new(dir: &Path) -> Self {
        Store { dir: dir.to_path_buf() }
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io { path: path.display().to_string(), why: e.to_string() }
    }

    fn blob_path(&self, hash: B256) -> PathBuf {
        self.dir.join("blobs").join(format!("{}.pogo", hex::encode(hash)))
    }

    fn model_path(&self, root: U256) -> PathBuf {
        self.dir.join("models").join(format!("{root:064x}.safetensors"))
    }

    /// Stores a blob; returns its hash.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<B256, StoreError> {
        let hash = keccak256(bytes);
        let path = self.blob_path(hash);
        if !path.exists() {
            std::fs::create_dir_all(path.parent().expect("blobs folder")).map_err(|e| Self::io(&self.dir, e))?;
            write_atomic(&path, bytes).map_err(|e| Self::io(&path, e))?;
        }
        Ok(hash)
    }

    /// A blob held locally, if its bytes still hash to `hash` (a damaged copy is ignored).
    pub fn local_blob(&self, hash: B256) -> Option<Vec<u8>> {
        std::fs::read(self.blob_path(hash)).ok().filter(|b| keccak256(b) == hash)
    }

    /// The blob `hash`: local, else from the first of `sources` (store URLs) that serves
    /// bytes with that hash, which are then kept locally. A download stops past `limit`
    /// bytes (and never reads past [`MAX_BLOB_BYTES`]): pass
    /// [`pogo_circuits::update::max_blob_len`] of the model the update is for.
    pub fn fetch_blob(&self, hash: B256, sources: &[String], limit: u64) -> Result<Vec<u8>, StoreError> {
        if let Some(bytes) = self.local_blob(hash) {
            return Ok(bytes);
        }
        let resource = Resource::Blob(hash);
        let bytes = fetch_checked(&format!("blob {hash}"), resource, sources, limit.min(MAX_BLOB_BYTES), |b| {
            if keccak256(b) == hash {
                Ok(())
            } else {
                Err(format!("{} bytes with another hash", b.len()))
            }
        })?;
        self.put_blob(&bytes)?;
        Ok(bytes)
    }

    fn leaves_path(&self, root: U256) -> PathBuf {
        self.dir.join("leaves").join(format!("{root:064x}.bin"))
    }

    /// Keeps the leaf list of the new model with root `root` (served to challengers).
    pub fn put_leaves(&self, root: U256, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.leaves_path(root);
        std::fs::create_dir_all(path.parent().expect("leaves folder")).map_err(|e| Self::io(&self.dir, e))?;
        write_atomic(&path, bytes).map_err(|e| Self::io(&path, e))
    }

    /// The leaf list kept under `root`, if any (unchecked: the caller checks its root).
    pub fn local_leaves(&self, root: U256) -> Option<Vec<u8>> {
        std::fs::read(self.leaves_path(root)).ok()
    }

    /// The leaf list of the model with root `root`: local, else from the first of `sources`
    /// whose bytes `check` accepts (it rebuilds the tree and compares the root). No
    /// download reads past `limit` bytes (a tree of depth `D` has `32 · 2^D`).
    pub fn fetch_leaves(
        &self,
        root: U256,
        sources: &[String],
        limit: u64,
        check: impl Fn(&[u8]) -> Result<(), String>,
    ) -> Result<Vec<u8>, StoreError> {
        if let Some(bytes) = self.local_leaves(root).filter(|b| check(b).is_ok()) {
            return Ok(bytes);
        }
        let bytes =
            fetch_checked(&format!("the leaf list of {root:#x}"), Resource::Leaves(root), sources, limit, check)?;
        self.put_leaves(root, &bytes)?;
        Ok(bytes)
    }

    /// Keeps a model under its root.
    pub fn put_model(&self, root: U256, model: &Model) -> Result<(), StoreError> {
        let path = self.model_path(root);
        std::fs::create_dir_all(path.parent().expect("models folder")).map_err(|e| Self::io(&self.dir, e))?;
        model.save(&path).map_err(|e| Self::io(&path, e))
    }

    /// The model kept under `root` in another store (`GET /models/<root>`), from the first
    /// of `sources` whose bytes, at most `limit` of them, are a model that `check` accepts
    /// (the caller checks its size and root); kept here once accepted. How a node that joins
    /// late catches up: one checkpoint instead of replaying every accepted update.
    pub fn fetch_model(
        &self,
        root: U256,
        sources: &[String],
        limit: u64,
        check: impl Fn(&Model) -> Result<(), String>,
    ) -> Result<Model, StoreError> {
        let accepted = std::cell::RefCell::new(None);
        fetch_checked(&format!("the model at root {root:#x}"), Resource::Model(root), sources, limit, |b| {
            let model = Model::from_safetensors(b, None).map_err(|e| e.to_string())?;
            check(&model)?;
            *accepted.borrow_mut() = Some(model);
            Ok(())
        })?;
        let model = accepted.into_inner().expect("fetch_checked returns only what the check accepted");
        self.put_model(root, &model)?;
        Ok(model)
    }

    /// The model kept under `root`, if any.
    pub fn model(&self, root: U256) -> Option<Model> {
        Model::load(&self.model_path(root), None).ok()
    }

    /// Drops the model kept under `root` with its tree file and leaf list (what is not
    /// there is skipped); returns the bytes freed.
    pub fn drop_model(&self, root: U256) -> Result<u64, StoreError> {
        let files = [self.model_path(root), self.tree_path(root), self.leaves_path(root)];
        files.iter().map(|path| remove_counted(path)).sum()
    }

    /// Drops blob `hash` if kept; returns the bytes freed.
    pub fn drop_blob(&self, hash: B256) -> Result<u64, StoreError> {
        remove_counted(&self.blob_path(hash))
    }

    /// A writer of a model of `tensors` in `format` into the store, under no root yet: its
    /// file appears (hidden) at [`CheckpointWriter::finish`], and [`Store::keep_model`]
    /// then gives it its root once checked.
    pub fn model_writer(
        &self,
        tensors: &[pogo_circuits::model::TensorInfo],
        format: pogo_circuits::encoding::FixedPoint,
    ) -> Result<(CheckpointWriter, PathBuf), StoreError> {
        let dir = self.dir.join("models");
        std::fs::create_dir_all(&dir).map_err(|e| Self::io(&dir, e))?;
        let pending = dir.join(format!(".pending.{}.safetensors", std::process::id()));
        let writer = CheckpointWriter::create(&pending, None, tensors, format).map_err(|e| Self::io(&pending, e))?;
        Ok((writer, pending))
    }

    /// Keeps the model file at `pending` (from [`Store::model_writer`]) under `root`; `None`
    /// removes it instead.
    pub fn keep_model(&self, pending: &Path, root: Option<U256>) -> Result<(), StoreError> {
        let Some(root) = root else {
            return remove_counted(pending).map(|_| ());
        };
        rename_or_remove(pending, &self.model_path(root))
    }

    /// Removes the hidden work files (pending models and trees, scratch folders) that a
    /// process killed mid-write left in the store; returns how many. Call it only while no
    /// other process writes to this store (each role has its own).
    pub fn sweep_work_files(&self) -> usize {
        let mut swept = 0;
        let dirs = ["", "models", "trees", "blobs", "leaves"].map(|d| self.dir.join(d));
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let work = name.starts_with(".pending.")
                    || name.starts_with(".scratch-")
                    || (name.starts_with('.') && (name.ends_with(".pending") || name.ends_with(".tmp")));
                if !work {
                    continue;
                }
                let path = entry.path();
                let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                swept += usize::from(removed.is_ok());
            }
        }
        swept
    }

    /// Whether a model is kept under `root` (without reading it).
    pub fn has_model(&self, root: U256) -> bool {
        self.model_path(root).is_file()
    }

    /// The model kept under `root`, memory-mapped to be read a block or a chunk at a time.
    pub fn checkpoint(&self, root: U256) -> Result<Checkpoint, StoreError> {
        let path = self.model_path(root);
        Checkpoint::open(&path, None).map_err(|e| Self::io(&path, e))
    }

    /// Where blob `hash` is kept, if it is (its bytes unchecked: a streamed reader checks the
    /// blob's own checksum).
    pub fn blob_file(&self, hash: B256) -> Option<PathBuf> {
        Some(self.blob_path(hash)).filter(|p| p.is_file())
    }

    /// A scratch folder inside the store (removed when dropped), for files a role needs only
    /// while it works, on the store's disk.
    pub fn scratch(&self) -> Result<tempfile::TempDir, StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Self::io(&self.dir, e))?;
        tempfile::Builder::new().prefix(".scratch-").tempdir_in(&self.dir).map_err(|e| Self::io(&self.dir, e))
    }

    /// Serves the store over HTTP on `addr` (e.g. `127.0.0.1:0` for any free port) from a
    /// background thread, under the default [`ServeLimits`]; returns the server (its URL;
    /// dropping it stops serving).
    pub fn serve(&self, addr: &str) -> Result<StoreServer, StoreError> {
        server::serve(self, addr, ServeLimits::default())
    }

    /// [`Store::serve`] under `limits`.
    pub fn serve_with(&self, addr: &str, limits: ServeLimits) -> Result<StoreServer, StoreError> {
        server::serve(self, addr, limits)
    }
}

/// Renames the checked work file `pending` to `path`; removes it if that fails.
fn rename_or_remove(pending: &Path, path: &Path) -> Result<(), StoreError> {
    std::fs::rename(pending, path).map_err(|e| {
        let _ = std::fs::remove_file(pending);
        Store::io(path, e)
    })
}

/// Removes `path` if it is there; returns its size.
fn remove_counted(path: &Path) -> Result<u64, StoreError> {
    let size = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Store::io(path, e)),
    };
    match std::fs::remove_file(path) {
        Ok(()) => Ok(size),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Store::io(path, e)),
    }
}

/// `resource` from the first of `sources` whose bytes `check` accepts.
fn fetch_checked(
    what: &str,
    resource: Resource,
    sources: &[String],
    limit: u64,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Vec<u8>, StoreError> {
    let path = resource.url_path();
    let mut why = Vec::new();
    for source in sources {
        let url = format!("{}/{path}", source.trim_end_matches('/'));
        match fetch(&url, limit) {
            Ok(bytes) => match check(&bytes) {
                Ok(()) => return Ok(bytes),
                Err(e) => why.push(format!("{url}: {e}")),
            },
            Err(e) => why.push(format!("{url}: {e}")),
        }
    }
    if why.is_empty() {
        why.push("not held locally and no store URLs configured".into());
    }
    Err(StoreError::Unavailable { what: what.to_string(), why: why.join("; ") })
}

/// The body at `url`, at most `limit` bytes (ureq's limit refuses a body that reaches it).
/// Time scales with the bound, not a fixed minute (a 4-bit update of a 7B model is 3.7 GB):
/// the body may take a minute plus a second per MiB of `limit`, and a peer that sends
/// nothing for 30 s is given up on.
fn fetch(url: &str, limit: u64) -> Result<Vec<u8>, String> {
    let body = Duration::from_secs(60 + limit / (1 << 20));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(body))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    response.body_mut().with_config().limit(limit.saturating_add(1)).read_to_vec().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_node_catches_up_from_a_checkpoint_checked_against_the_root() {
        use pogo_circuits::encoding::FixedPoint;
        use pogo_circuits::model::TensorInfo;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (peer, late) = (Store::new(a.path()), Store::new(b.path()));
        let weights: Vec<u32> = (0..1000u32).map(|i| i.wrapping_mul(2_654_435_761) >> 8).collect();
        let tensors = vec![TensorInfo { name: "w".into(), shape: vec![1000] }];
        let model = Model::new(FixedPoint::default(), tensors, weights).unwrap();
        let root = crate::roles::model_root(&model, 4).unwrap();
        peer.put_model(root, &model).unwrap();
        let server = peer.serve("127.0.0.1:0").unwrap();
        let sources = [server.url.clone()];
        let by_root = |m: &Model| {
            let got = crate::roles::model_root(m, 4).map_err(|e| e.to_string())?;
            if got == root {
                Ok(())
            } else {
                Err(format!("its root is {got:#x}"))
            }
        };
        // Too small a limit, a check that refuses, a root nobody holds: nothing kept.
        assert!(late.fetch_model(root, &sources, 100, by_root).is_err());
        let refused = late.fetch_model(root, &sources, 1 << 20, |_| Err("not the committed root".into())).unwrap_err();
        assert!(refused.to_string().contains("not the committed root"), "{refused}");
        assert!(late.fetch_model(U256::from(5u64), &sources, 1 << 20, |_| Ok(())).is_err());
        assert!(late.model(root).is_none());
        // The checkpoint, checked, is kept and equals the peer's model.
        let got = late.fetch_model(root, &sources, 1 << 20, by_root).unwrap();
        assert_eq!(got.weights(), model.weights());
        assert_eq!(late.model(root).unwrap().weights(), model.weights());
    }

    #[test]
    fn leaves_are_served_over_http_and_a_list_the_check_refuses_is_not_kept() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (miner, verifier) = (Store::new(a.path()), Store::new(b.path()));
        let root = U256::from(7u64);
        miner.put_leaves(root, &[1u8; 64]).unwrap();
        let server = miner.serve("127.0.0.1:0").unwrap();
        let sources = [server.url.clone()];
        let refused = verifier.fetch_leaves(root, &sources, 64, |_| Err("not the committed root".into())).unwrap_err();
        assert!(refused.to_string().contains("not the committed root"), "{refused}");
        assert!(verifier.local_leaves(root).is_none(), "a refused list is not kept");
        let too_long = verifier.fetch_leaves(root, &sources, 63, |_| Ok(())).unwrap_err();
        assert!(verifier.local_leaves(root).is_none(), "a list past the limit is not read: {too_long}");
        let got =
            verifier.fetch_leaves(root, &sources, 64, |b| if b.len() == 64 { Ok(()) } else { Err("size".into()) });
        assert_eq!(got.unwrap(), vec![1u8; 64]);
        assert_eq!(verifier.local_leaves(root).unwrap(), vec![1u8; 64], "kept once accepted");
        let missing = verifier.fetch_leaves(U256::from(8u64), &sources, 64, |_| Ok(())).unwrap_err();
        assert!(missing.to_string().contains("the leaf list of 0x8 is not available"), "{missing}");
    }
}
