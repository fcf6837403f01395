//! Keys in a local keystore: one encrypted JSON file per key (the Web3 secret-storage
//! format geth and Foundry use: scrypt + AES-128-CTR), named after the key, in a folder.

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;

/// A signing key.
#[derive(Clone, Debug)]
pub struct Wallet {
    signer: PrivateKeySigner,
    name: String,
}

impl Wallet {
    /// A fresh key kept nowhere (for commands that only read the chain).
    pub fn random(name: &str) -> Self {
        Wallet { signer: PrivateKeySigner::random(), name: name.to_string() }
    }

    /// The account's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The key's name in its keystore.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signer (for JSON-RPC chains).
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }
}

/// The keystore failed.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No such key.
    #[error("no key named {name:?} in {dir} (create it with `pogo keys new {name}`)")]
    Missing {
        /// The key's name.
        name: String,
        /// The keystore.
        dir: String,
    },
    /// A key with that name exists.
    #[error("a key named {name:?} already exists in {dir}")]
    Exists {
        /// The key's name.
        name: String,
        /// The keystore.
        dir: String,
    },
    /// The names are file names: letters, digits, `-`, `_`.
    #[error("key names may use letters, digits, '-' and '_', got {0:?}")]
    BadName(String),
    /// Wrong password or damaged file.
    #[error("cannot open key {path}: {why} (wrong password?)")]
    Decrypt {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The folder could not be used.
    #[error("keystore {dir}: {source}")]
    Io {
        /// The folder.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A folder of encrypted keys.
pub struct Keystore {
    dir: PathBuf,
    password: String,
}

impl Keystore {
    /// The keystore in `dir`, unlocked with `password`.
    pub fn new(dir: &Path, password: &str) -> Self {
        Keystore { dir: dir.to_path_buf(), password: password.to_string() }
    }

    fn path(&self, name: &str) -> Result<PathBuf, KeystoreError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(KeystoreError::BadName(name.to_string()));
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    fn io(&self, source: std::io::Error) -> KeystoreError {
        KeystoreError::Io { dir: self.dir.display().to_string(), source }
    }

    /// Creates a fresh random key named `name`.
    pub fn create(&self, name: &str) -> Result<Wallet, KeystoreError> {
        let path = self.path(name)?;
        if path.exists() {
            return Err(KeystoreError::Exists { name: name.into(), dir: self.dir.display().to_string() });
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        // Encrypt into a temporary name, then rename: a crash never leaves half a key.
        let tmp = format!("{name}.json.tmp");
        let (signer, _) =
            PrivateKeySigner::new_keystore(&self.dir, &mut rand::thread_rng(), &self.password, Some(&tmp))
                .map_err(|e| KeystoreError::Decrypt { path: path.display().to_string(), why: e.to_string() })?;
        std::fs::rename(self.dir.join(&tmp), &path).map_err(|e| self.io(e))?;
        Ok(Wallet { signer, name: name.to_string() })
    }

    /// Opens the key named `name`.
    pub fn open(&self, name: &str) -> Result<Wallet, KeystoreError> {
        let path = self.path(name)?;
        if !path.exists() {
            return Err(KeystoreError::Missing { name: name.into(), dir: self.dir.display().to_string() });
        }
        let signer = PrivateKeySigner::decrypt_keystore(&path, &self.password)
            .map_err(|e| KeystoreError::Decrypt { path: path.display().to_string(), why: e.to_string() })?;
        Ok(Wallet { signer, name: name.to_string() })
    }

    /// Opens `name`, creating it first if it does not exist.
    pub fn open_or_create(&self, name: &str) -> Result<Wallet, KeystoreError> {
        match self.open(name) {
            Err(KeystoreError::Missing { .. }) => self.create(name),
            other => other,
        }
    }

    /// Names of the keys, sorted.
    pub fn names(&self) -> Result<Vec<String>, KeystoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(String::from))
            .collect();
        names.sort();
        Ok(names)
    }
}
