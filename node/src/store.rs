//! The update store: content-addressed files on disk (update blobs by their keccak-256, the
//! hash committed on chain; models by their Merkle root), served read-only over HTTP by
//! miners (`GET /blobs/<hash>`), fetched and hash-checked by verifiers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{keccak256, B256, U256};
use pogo_circuits::files::write_atomic;
use pogo_circuits::model::Model;

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
    /// No source had the blob (or every copy was wrong).
    #[error("blob {hash} is not available: {why}")]
    Unavailable {
        /// Its hash.
        hash: B256,
        /// What each source said.
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
    /// bytes with that hash, which are then kept locally.
    pub fn fetch_blob(&self, hash: B256, sources: &[String]) -> Result<Vec<u8>, StoreError> {
        if let Some(bytes) = self.local_blob(hash) {
            return Ok(bytes);
        }
        let mut why = Vec::new();
        for source in sources {
            let url = format!("{}/blobs/{}", source.trim_end_matches('/'), hex::encode(hash));
            match fetch(&url) {
                Ok(bytes) if keccak256(&bytes) == hash => {
                    self.put_blob(&bytes)?;
                    return Ok(bytes);
                }
                Ok(bytes) => why.push(format!("{url}: {} bytes with another hash", bytes.len())),
                Err(e) => why.push(format!("{url}: {e}")),
            }
        }
        if why.is_empty() {
            why.push("not held locally and no store URLs configured".into());
        }
        Err(StoreError::Unavailable { hash, why: why.join("; ") })
    }

    /// Keeps a model under its root.
    pub fn put_model(&self, root: U256, model: &Model) -> Result<(), StoreError> {
        let path = self.model_path(root);
        std::fs::create_dir_all(path.parent().expect("models folder")).map_err(|e| Self::io(&self.dir, e))?;
        model.save(&path).map_err(|e| Self::io(&path, e))
    }

    /// The model kept under `root`, if any.
    pub fn model(&self, root: U256) -> Option<Model> {
        Model::load(&self.model_path(root), None).ok()
    }

    /// Serves the blobs over HTTP on `addr` (e.g. `127.0.0.1:0` for any free port) from a
    /// background thread; returns the server (its URL; dropping it stops serving).
    pub fn serve(&self, addr: &str) -> Result<StoreServer, StoreError> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| StoreError::Serve { addr: addr.to_string(), why: e.to_string() })?;
        let server = Arc::new(server);
        let url = match server.server_addr().to_ip() {
            Some(a) => format!("http://{a}"),
            None => return Err(StoreError::Serve { addr: addr.to_string(), why: "not an IP address".into() }),
        };
        let (store, inner) = (self.clone(), server.clone());
        let thread = std::thread::spawn(move || {
            for request in inner.incoming_requests() {
                let found = request
                    .url()
                    .strip_prefix("/blobs/")
                    .and_then(|h| h.parse::<B256>().ok())
                    .and_then(|h| store.local_blob(h));
                let _ = match found {
                    Some(bytes) if *request.method() == tiny_http::Method::Get => {
                        request.respond(tiny_http::Response::from_data(bytes))
                    }
                    _ => request.respond(tiny_http::Response::from_string("not found").with_status_code(404)),
                };
            }
        });
        Ok(StoreServer { url, server, thread: Some(thread) })
    }
}

fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(60))).build().into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    response.body_mut().with_config().limit(MAX_BLOB_BYTES).read_to_vec().map_err(|e| e.to_string())
}

/// A running HTTP server of a store.
pub struct StoreServer {
    /// Where it serves (`http://ip:port`).
    pub url: String,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
