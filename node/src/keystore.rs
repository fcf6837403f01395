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
    /// A key file whose parameters no wallet writes (and that would cost unbounded memory
    /// or time, or crash the decryption): refused before any work.
    #[error("cannot open key {path}: {why}; pogo opens keys with the parameters geth and Foundry write")]
    Unsupported {
        /// The file.
        path: String,
        /// Which parameter, and its value.
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
        let bytes = std::fs::read(&path).map_err(|e| self.io(e))?;
        check_key_file(&bytes).map_err(|why| KeystoreError::Unsupported { path: path.display().to_string(), why })?;
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

/// Largest key file read (a Web3 secret-storage file is under 1 KiB).
pub const MAX_KEY_FILE_BYTES: usize = 64 * 1024;
/// Largest scrypt cost `n` accepted: geth's standard 2^18 (Foundry writes 2^13).
pub const MAX_SCRYPT_N: u64 = 1 << 18;
/// Largest pbkdf2 iteration count accepted (eth-account writes 10^6).
pub const MAX_PBKDF2_ROUNDS: u64 = 1 << 20;

/// Checks a Web3 secret-storage file's parameters before anything decrypts it: a cost that
/// would take gigabytes or hours (scrypt `n` = 2^31, pbkdf2 `c` = 4·10^9), or a key or IV
/// length the decryption would slice past, is refused naming the parameter.
pub fn check_key_file(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() > MAX_KEY_FILE_BYTES {
        return Err(format!("the file is {} bytes, more than a key file's {MAX_KEY_FILE_BYTES}", bytes.len()));
    }
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not a Web3 secret-storage file: {e}"))?;
    let crypto = json.get("crypto").or_else(|| json.get("Crypto")).ok_or("no \"crypto\" section")?;
    let number = |section: &serde_json::Value, key: &str| {
        section.get(key).and_then(serde_json::Value::as_u64).ok_or_else(|| format!("kdfparams.{key} is not a number"))
    };
    let hex_len = |value: Option<&serde_json::Value>, what: &str| -> Result<usize, String> {
        let text = value.and_then(serde_json::Value::as_str).ok_or_else(|| format!("{what} is not a string"))?;
        let text = text.strip_prefix("0x").unwrap_or(text);
        if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{what} is not hex"));
        }
        Ok(text.len() / 2)
    };
    let cipher = crypto.get("cipher").and_then(serde_json::Value::as_str).unwrap_or_default();
    if cipher != "aes-128-ctr" {
        return Err(format!("cipher {cipher:?} is not aes-128-ctr"));
    }
    let iv = hex_len(crypto.get("cipherparams").and_then(|c| c.get("iv")), "cipherparams.iv")?;
    if iv != 16 {
        return Err(format!("cipherparams.iv is {iv} bytes, not 16"));
    }
    let ciphertext = hex_len(crypto.get("ciphertext"), "ciphertext")?;
    if ciphertext != 32 {
        return Err(format!("ciphertext is {ciphertext} bytes, not a 32-byte key"));
    }
    let mac = hex_len(crypto.get("mac"), "mac")?;
    if mac != 32 {
        return Err(format!("mac is {mac} bytes, not 32"));
    }
    let params = crypto.get("kdfparams").ok_or("no kdfparams")?;
    let dklen = number(params, "dklen")?;
    if dklen != 32 {
        return Err(format!("kdfparams.dklen = {dklen}, not 32"));
    }
    hex_len(params.get("salt"), "kdfparams.salt")?;
    match crypto.get("kdf").and_then(serde_json::Value::as_str).unwrap_or_default() {
        "scrypt" => {
            let (n, r, p) = (number(params, "n")?, number(params, "r")?, number(params, "p")?);
            if !n.is_power_of_two() || !(2..=MAX_SCRYPT_N).contains(&n) {
                return Err(format!("kdfparams.n = {n}, not a power of two from 2 to 2^18"));
            }
            if !(1..=8).contains(&r) {
                return Err(format!("kdfparams.r = {r}, not 1 to 8"));
            }
            if !(1..=6).contains(&p) {
                return Err(format!("kdfparams.p = {p}, not 1 to 6"));
            }
        }
        "pbkdf2" => {
            let c = number(params, "c")?;
            if !(1..=MAX_PBKDF2_ROUNDS).contains(&c) {
                return Err(format!("kdfparams.c = {c}, not 1 to 2^20"));
            }
            let prf = params.get("prf").and_then(serde_json::Value::as_str).unwrap_or_default();
            if prf != "hmac-sha256" {
                return Err(format!("kdfparams.prf {prf:?} is not hmac-sha256"));
            }
        }
        other => return Err(format!("kdf {other:?} is neither scrypt nor pbkdf2")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key file as eth-keystore writes it, with `edit` applied to its JSON.
    fn key_file(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut json = serde_json::json!({
            "crypto": {
                "cipher": "aes-128-ctr",
                "cipherparams": { "iv": "00112233445566778899aabbccddeeff" },
                "ciphertext": "11".repeat(32),
                "kdf": "scrypt",
                "kdfparams": { "dklen": 32, "n": 8192, "p": 1, "r": 8, "salt": "22".repeat(32) },
                "mac": "33".repeat(32)
            },
            "id": "04304889-18cb-4001-a795-8b2a4f601241",
            "version": 3
        });
        edit(&mut json);
        serde_json::to_vec(&json).unwrap()
    }

    #[test]
    fn the_parameters_wallets_write_are_accepted() {
        assert_eq!(check_key_file(&key_file(|_| {})), Ok(()));
        let geth = key_file(|j| j["crypto"]["kdfparams"]["n"] = serde_json::json!(1 << 18));
        assert_eq!(check_key_file(&geth), Ok(()));
        let pbkdf2 = key_file(|j| {
            j["crypto"]["kdf"] = "pbkdf2".into();
            j["crypto"]["kdfparams"] =
                serde_json::json!({ "dklen": 32, "c": 1_000_000, "prf": "hmac-sha256", "salt": "22".repeat(16) });
        });
        assert_eq!(check_key_file(&pbkdf2), Ok(()));
    }

    /// The fuzzing issue's C and E: a `dklen` below 32 (a panic inside the decryption), a
    /// scrypt `n` of 2^31 (2 TiB), a pbkdf2 `c` of 4·10^9 (hours): each refused by name.
    #[test]
    fn costs_and_lengths_no_wallet_writes_are_refused_by_name() {
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: [(Edit, &str); 7] = [
            (Box::new(|j| j["crypto"]["kdfparams"]["dklen"] = 3.into()), "dklen = 3"),
            (Box::new(|j| j["crypto"]["kdfparams"]["n"] = serde_json::json!(1u64 << 31)), "n = 2147483648"),
            (Box::new(|j| j["crypto"]["kdfparams"]["n"] = 1000.into()), "n = 1000"),
            (Box::new(|j| j["crypto"]["kdfparams"]["p"] = 1000.into()), "p = 1000"),
            (Box::new(|j| j["crypto"]["cipherparams"]["iv"] = "".into()), "iv is 0 bytes"),
            (Box::new(|j| j["crypto"]["ciphertext"] = "".into()), "ciphertext is 0 bytes"),
            (
                Box::new(|j| {
                    j["crypto"]["kdf"] = "pbkdf2".into();
                    j["crypto"]["kdfparams"] = serde_json::json!({
                        "dklen": 32, "c": 4_000_000_000u64, "prf": "hmac-sha256", "salt": "22"
                    });
                }),
                "c = 4000000000",
            ),
        ];
        for (edit, needle) in cases {
            let why = check_key_file(&key_file(edit)).unwrap_err();
            assert!(why.contains(needle), "{why} should name {needle}");
        }
        assert!(check_key_file(b"{").unwrap_err().contains("not a Web3 secret-storage file"));
        assert!(check_key_file(&vec![b' '; MAX_KEY_FILE_BYTES + 1]).unwrap_err().contains("more than"));
    }

    /// The fuzzer's minimized key file (issue C) is refused by `open`, not a panic.
    #[test]
    fn the_fuzzers_key_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = r#"{"crypto":{"cipher":"","cipherparams":{"iv":""},"ciphertext":"","kdf":"scrypt","kdfparams":{"dklen":3,"n":2,"p":1,"r":8,"salt":""},"mac":""},"id":"04304889-18cb-4001-a795-8b2a4f601241","version":3}"#;
        std::fs::write(dir.path().join("bad.json"), file).unwrap();
        let err = Keystore::new(dir.path(), "pw").open("bad").unwrap_err();
        assert!(matches!(err, KeystoreError::Unsupported { .. }), "{err}");
    }
}
