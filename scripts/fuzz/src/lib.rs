//! What the fuzz targets share: a small circuit configuration's keys, made once per
//! process, and the panic hook for code that catches panics on purpose.

use std::sync::OnceLock;

use pogo_circuits::config::{CircuitConfig, CircuitShape};
use pogo_prover::prove::{keygen, Keys};
use pogo_prover::setup::{dev_setup, Setup};

/// Keys of `UpdateCircuit{D = 1, S = 1}` from the seeded development setup.
pub struct Small {
    /// The configuration's shape.
    pub shape: CircuitShape,
    /// The setup.
    pub setup: Setup,
    /// Proving and verifying keys.
    pub keys: Keys,
}

/// The keys, made on first use.
pub fn small() -> &'static Small {
    static SMALL: OnceLock<Small> = OnceLock::new();
    SMALL.get_or_init(|| {
        let shape = CircuitConfig::new(1, 1).expect("a valid configuration").shape().expect("it fits");
        let setup = dev_setup(shape.k, 7);
        let keys = keygen(&setup, &shape).expect("keygen of the small configuration");
        Small { shape, setup, keys }
    })
}

/// The initialization of targets that use the small keys: the quiet hook, then the keys
/// (keygen takes seconds, which must not count against the first input's timeout).
pub fn init_with_keys() {
    quiet_caught_panics();
    small();
}

/// libfuzzer-sys's panic hook aborts on every panic, even one the code under test catches
/// on purpose (pogo catches panics of halo2's readers and turns them into errors). This
/// hook does nothing; a panic that escapes the target still aborts (libfuzzer-sys catches
/// it around the target and aborts).
pub fn quiet_caught_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}
