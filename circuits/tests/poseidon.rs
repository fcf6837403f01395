//! circomlib compatibility of the native Poseidon (DESIGN §2): known answers from circomlibjs
//! for every width, and agreement with two independent implementations on random inputs.

use ark_ff::{BigInteger, PrimeField as _};
use ff_ce::PrimeField as _;
use light_poseidon::{Poseidon, PoseidonHasher};
use pogo_circuits::field::{fr_from_decimal, fr_from_hex, fr_to_decimal, fr_to_hex, Fr};
use pogo_circuits::poseidon::{hash_reference, hash_slice};
use proptest::prelude::*;

#[derive(serde::Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct Vector {
    inputs: Vec<String>,
    output: String,
}

/// `scripts/poseidon-vectors` regenerates this file from circomlibjs.
fn circomlib_vectors() -> Vec<(Vec<Fr>, Fr)> {
    let text = include_str!("vectors/poseidon_circomlib.json");
    let parsed: Vectors = serde_json::from_str(text).expect("vector file parses");
    parsed
        .vectors
        .iter()
        .map(|v| {
            let inputs = v.inputs.iter().map(|x| fr_from_decimal(x).expect("decimal input")).collect();
            (inputs, fr_from_hex(&v.output).expect("hex output"))
        })
        .collect()
}

#[test]
fn design_vector_h2_of_1_2() {
    let h = hash_slice(&[Fr::from(1), Fr::from(2)]).unwrap();
    assert_eq!(fr_to_hex(&h), "0x115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a");
}

#[test]
fn circomlib_vectors_every_width() {
    let vectors = circomlib_vectors();
    assert_eq!(vectors.len(), 32, "16 widths of [1..n] plus 16 near the modulus");
    for width in 1..=16 {
        assert!(vectors.iter().any(|(inputs, _)| inputs.len() == width), "width {width} covered");
    }
    for (inputs, expected) in &vectors {
        assert_eq!(hash_slice(inputs).unwrap(), *expected, "optimized H_{}", inputs.len());
        assert_eq!(hash_reference(inputs).unwrap(), *expected, "textbook H_{}", inputs.len());
    }
}

fn to_ark(x: &Fr) -> ark_bn254::Fr {
    ark_bn254::Fr::from_le_bytes_mod_order(x.to_bytes().as_ref())
}

fn from_ark(x: ark_bn254::Fr) -> Fr {
    let bytes = x.into_bigint().to_bytes_be();
    fr_from_hex(&format!("0x{}", hex::encode(bytes))).unwrap()
}

fn to_iden3(x: &Fr) -> poseidon_rs::Fr {
    poseidon_rs::Fr::from_str(&fr_to_decimal(x)).expect("canonical decimal")
}

fn from_iden3(x: &poseidon_rs::Fr) -> Fr {
    fr_from_hex(&format!("0x{}", ff_ce::to_hex(x))).unwrap()
}

fn arb_fr() -> impl Strategy<Value = Fr> {
    any::<[u8; 32]>().prop_map(|b| {
        let mut wide = [0u8; 64];
        wide[..32].copy_from_slice(&b);
        <Fr as pogo_circuits::field::FromUniformBytes<64>>::from_uniform_bytes(&wide)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn agrees_with_light_poseidon(inputs in prop::collection::vec(arb_fr(), 1..=12)) {
        let mut oracle = Poseidon::<ark_bn254::Fr>::new_circom(inputs.len()).unwrap();
        let ark_inputs: Vec<_> = inputs.iter().map(to_ark).collect();
        let expected = from_ark(oracle.hash(&ark_inputs).unwrap());
        prop_assert_eq!(hash_slice(&inputs).unwrap(), expected);
    }

    #[test]
    fn agrees_with_poseidon_rs(inputs in prop::collection::vec(arb_fr(), 1..=16)) {
        let oracle = poseidon_rs::Poseidon::new();
        let expected = from_iden3(&oracle.hash(inputs.iter().map(to_iden3).collect()).unwrap());
        prop_assert_eq!(hash_slice(&inputs).unwrap(), expected);
    }
}
