//! Native verification of update proofs (DESIGN §2 Circuit): halo2 (halo2-axiom), KZG on
//! BN254, SHPLONK, and the Keccak transcript the EVM verifier replays.

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_base::halo2_proofs::plonk::{verify_proof, VerifyingKey};
use halo2_base::halo2_proofs::poly::commitment::ParamsProver;
use halo2_base::halo2_proofs::poly::kzg::commitment::{KZGCommitmentScheme, ParamsKZG};
use halo2_base::halo2_proofs::poly::kzg::multiopen::VerifierSHPLONK;
use halo2_base::halo2_proofs::poly::kzg::strategy::SingleStrategy;
use halo2_base::halo2_proofs::transcript::TranscriptReadBuffer;
use pogo_circuits::field::Fr;
use pogo_circuits::update_circuit::PublicInputs;
use snark_verifier_sdk::snark_verifier::system::halo2::transcript::evm::EvmTranscript;
use snark_verifier_sdk::NativeLoader;

/// The Keccak (EVM) transcript over BN254 for proofs read from bytes.
pub type ReadTranscript<'a> = EvmTranscript<G1Affine, NativeLoader, &'a [u8], Vec<u8>>;

/// A proof did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The instance count differs from the configuration's `4 + S`.
    #[error("the proof carries {got} public inputs, the verifying key expects {expected}")]
    InstanceCount {
        /// `4 + S`.
        expected: usize,
        /// Given.
        got: usize,
    },
    /// The proof is empty or not a multiple of 32 bytes (every element is 32 bytes).
    #[error("a proof is a non-empty sequence of 32-byte words, got {0} bytes")]
    Malformed(usize),
    /// The pairing check or a transcript read failed.
    #[error("the proof does not verify for these public inputs and this verifying key: {0}")]
    Invalid(String),
}

/// Verifies `proof` for `inputs` under `vk` and the setup's verifier part.
pub fn verify(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    inputs: &PublicInputs,
    samples: usize,
    proof: &[u8],
) -> Result<(), ProofError> {
    let instances = inputs.to_instances();
    verify_instances(params, vk, &instances, 4 + samples, proof)
}

/// Verifies `proof` for raw instances (the instance column, DESIGN §2 order).
pub fn verify_instances(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    instances: &[Fr],
    expected_instances: usize,
    proof: &[u8],
) -> Result<(), ProofError> {
    if instances.len() != expected_instances {
        return Err(ProofError::InstanceCount { expected: expected_instances, got: instances.len() });
    }
    if proof.is_empty() || !proof.len().is_multiple_of(32) {
        return Err(ProofError::Malformed(proof.len()));
    }
    let mut transcript = ReadTranscript::init(proof);
    let verifier_params = params.verifier_params();
    verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
        verifier_params,
        vk,
        SingleStrategy::new(params),
        &[&[instances]],
        &mut transcript,
    )
    .map_err(|e| ProofError::Invalid(plain(&e)))
}

/// halo2's verification error in words (its variant names mean nothing to an operator).
fn plain(error: &halo2_base::halo2_proofs::plonk::Error) -> String {
    use halo2_base::halo2_proofs::plonk::Error as E;
    match error {
        E::ConstraintSystemFailure => "the polynomial checks fail".into(),
        E::Opening => "the KZG opening check fails".into(),
        E::Transcript(e) => format!("the proof bytes do not read as a proof: {e}"),
        E::InstanceTooLarge => "more public inputs than the key allows".into(),
        other => format!("{other:?}"),
    }
}
