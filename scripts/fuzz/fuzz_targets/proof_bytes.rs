//! Proof bytes against a real verifying key: `verify` must answer, never abort.
#![no_main]
use pogo_circuits::field::Fr;
use pogo_circuits::update_circuit::PublicInputs;

libfuzzer_sys::fuzz_target!(init: pogo_fuzz::init_with_keys(), |data: &[u8]| {
    let small = pogo_fuzz::small();
    let inputs =
        PublicInputs { old_root: Fr::from(1), new_root: Fr::from(2), update_root: Fr::from(3), blocks: 2, indices: vec![1] };
    let _ = pogo_verifier::proof::verify(&small.setup, small.keys.vk(), &inputs, 1, data);
});
