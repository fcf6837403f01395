//! Keys and proofs for `UpdateCircuit{D, S}`: SHPLONK over KZG/BN254 with the Keccak
//! transcript, so the same proof verifies natively and in the EVM (DESIGN §2).

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::BaseCircuitParams;
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_base::halo2_proofs::plonk::{create_proof, keygen_pk, keygen_vk, ProvingKey, VerifyingKey};
use halo2_base::halo2_proofs::poly::kzg::commitment::KZGCommitmentScheme;
use halo2_base::halo2_proofs::poly::kzg::multiopen::ProverSHPLONK;
use halo2_base::halo2_proofs::transcript::TranscriptWriterBuffer;
use pogo_circuits::config::{CircuitShape, ConfigError};
use pogo_circuits::field::Fr;
use pogo_circuits::update_circuit::{synthesize, PublicInputs, SampleWitness, UpdateCircuit, WitnessShapeError};
use rand::SeedableRng;
use snark_verifier_sdk::snark_verifier::system::halo2::transcript::evm::EvmTranscript;
use snark_verifier_sdk::NativeLoader;

use crate::setup::Setup;

/// Everything needed to prove one configuration.
pub struct Keys {
    /// The configuration and its shape.
    pub shape: CircuitShape,
    /// Column parameters fixed at keygen.
    pub params: BaseCircuitParams,
    /// Where the layout breaks between advice columns, fixed at keygen.
    pub break_points: MultiPhaseThreadBreakPoints,
    /// The proving key.
    pub pk: ProvingKey<G1Affine>,
}

impl Keys {
    /// The verifying key.
    pub fn vk(&self) -> &VerifyingKey<G1Affine> {
        self.pk.get_vk()
    }

    /// The verifying key as `vk.bin` stores it (its SHA-256 names the key everywhere).
    pub fn vk_bytes(&self) -> Vec<u8> {
        self.vk().to_bytes(halo2_base::halo2_proofs::SerdeFormat::RawBytes)
    }
}

/// Keygen or proving failed.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The setup has fewer powers than the configuration's `2^k` rows.
    #[error("the setup has 2^{setup_k} powers but the circuit needs 2^{k}")]
    SetupTooSmall {
        /// Setup's `k`.
        setup_k: u32,
        /// Circuit's `k`.
        k: u32,
    },
    /// The configuration could not be laid out.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The witness does not have the configuration's shape.
    #[error(transparent)]
    Shape(#[from] WitnessShapeError),
    /// halo2 refused (for a prover: the witness does not satisfy the circuit).
    #[error("halo2: {0}")]
    Halo2(String),
}

fn check_setup(setup: &Setup, shape: &CircuitShape) -> Result<(), ProveError> {
    use halo2_base::halo2_proofs::poly::commitment::Params;
    if setup.k() != shape.k {
        return Err(ProveError::SetupTooSmall { setup_k: setup.k(), k: shape.k });
    }
    Ok(())
}

/// Generates the proving and verifying keys of `shape` (setup of exactly `2^k` powers;
/// downsize larger setups first).
pub fn keygen(setup: &Setup, shape: &CircuitShape) -> Result<Keys, ProveError> {
    check_setup(setup, shape)?;
    let (circuit, params) = shape.keygen_circuit()?;
    let vk = keygen_vk(setup, &circuit).map_err(|e| ProveError::Halo2(format!("{e:?}")))?;
    let pk = keygen_pk(setup, vk, &circuit).map_err(|e| ProveError::Halo2(format!("{e:?}")))?;
    let break_points = circuit.builder.break_points();
    Ok(Keys { shape: *shape, params, break_points, pk })
}

/// Which prover this build proves with: `"gpu"` with the `gpu-prove` feature
/// (halo2-axiom-gpu in place of halo2-axiom), else `"cpu"`.
pub const PROVER: &str = if cfg!(feature = "gpu-prove") { "gpu" } else { "cpu" };

/// Proves `inputs` with `samples` under `keys`. A witness that does not satisfy the circuit
/// yields an error (or an invalid proof), never a valid proof.
pub fn prove(
    setup: &Setup,
    keys: &Keys,
    inputs: &PublicInputs,
    samples: &[SampleWitness],
) -> Result<Vec<u8>, ProveError> {
    check_setup(setup, &keys.shape)?;
    let mut builder = BaseCircuitBuilder::<Fr>::prover(keys.params.clone(), keys.break_points.clone())
        .use_lookup_bits(keys.shape.lookup_bits)
        .use_instance_columns(1);
    let laid_out = synthesize(&mut builder, keys.shape.config.depth, inputs, samples)?;
    let circuit = UpdateCircuit::new(builder, laid_out.hashes);
    let instances = inputs.to_instances();
    let mut transcript = EvmTranscript::<G1Affine, NativeLoader, Vec<u8>, Vec<u8>>::init(Vec::new());
    create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
        setup,
        &keys.pk,
        &[circuit],
        &[&[&instances]],
        rand_chacha::ChaCha20Rng::from_entropy(),
        &mut transcript,
    )
    .map_err(|e| ProveError::Halo2(format!("{e:?}")))?;
    Ok(transcript.finalize())
}
