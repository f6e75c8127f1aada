//! A segmented model on chain: the registry's `registerChain` (one verifier per segment and
//! the wiring, from which the contract recomputes the model id) and `verifyChainInference`
//! (every segment proof and every link in one call), as calldata, and a run of both in the
//! in-process EVM.

use std::path::Path;

use alloy_sol_types::{sol, SolCall};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use revm::primitives::{Address, FixedBytes, U256};
use zkinfer_circuits::artifacts::segments::SegmentsFile;
use zkinfer_circuits::artifacts::{read_json, ProofFile};

use crate::evm::{self, Evm, Outcome, Status};
use crate::segments::SegmentedVerifier;
use crate::solidity::{self, EvmVerifierError};
use crate::{parse_values, VerifyError};

sol! {
    /// `contracts/SegmentChain.sol`'s spec.
    struct Segment { uint32 first; uint32 end; uint32[] modelInputs; uint32[] linksIn; uint32[] modelOutputs; uint32[] linksOut; }
    struct Spec { bytes32 modelSha256; bytes32 qgraphSha256; uint32 scale; uint32 actBits; uint8 inputVisibility; uint8 outputVisibility; uint32[] inputElements; uint32[] outputElements; Segment[] segments; }
    /// The registry's chain functions.
    interface IChainRegistry {
        function registerChain(bytes32 modelId, address[] verifiers, Spec spec, string metadataURI) external;
        function checkChain(bytes32 modelId, uint256[][] instances, bytes[] proofs) external view returns (bool);
        function verifyChainInference(bytes32 modelId, uint256[][] instances, bytes[] proofs) external returns (bool);
    }
}

/// One segment's public values and proof bytes.
pub type SegmentProofValues = (Vec<Fr>, Vec<u8>);

/// Gas the registry gives each segment's verifier call in [`evm_verify_chain`]: a verifier
/// that fits EIP-170 takes 0.3–0.7 M, and the transaction must stay within a block (30 M)
/// for a chain of about a dozen segments.
pub const SEGMENT_GAS_CAP: u64 = 2_000_000;

fn word(hex32: &str) -> Result<FixedBytes<32>, VerifyError> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(hex32, &mut b)
        .map_err(|_| VerifyError::Malformed(format!("{hex32} is not 64 hex digits")))?;
    Ok(FixedBytes(b))
}

fn u32s(xs: &[usize]) -> Vec<u32> {
    // `SegmentsFile::model_id` refuses any entry past 32 bits, so the id check fails first.
    xs.iter().map(|&x| x as u32).collect()
}

/// The spec `registerChain` takes: `segments.json`'s fields the model id covers.
pub fn spec(file: &SegmentsFile) -> Result<Spec, VerifyError> {
    let elements = |shapes: &[Vec<usize>]| -> Vec<u32> {
        shapes
            .iter()
            .map(|s| s.iter().product::<usize>() as u32)
            .collect()
    };
    Ok(Spec {
        modelSha256: word(&file.model_sha256)?,
        qgraphSha256: word(&file.qgraph_sha256)?,
        scale: file.scale,
        actBits: file.act_bits,
        inputVisibility: file.input_visibility.code(),
        outputVisibility: file.output_visibility.code(),
        inputElements: elements(&file.input_shapes),
        outputElements: elements(&file.output_shapes),
        segments: file
            .segments
            .iter()
            .map(|g| Segment {
                first: g.nodes[0] as u32,
                end: g.nodes[1] as u32,
                modelInputs: u32s(&g.model_inputs),
                linksIn: u32s(&g.boundary_in),
                modelOutputs: u32s(&g.model_outputs),
                linksOut: u32s(&g.boundary_out),
            })
            .collect(),
    })
}

/// `registerChain(modelId, verifiers, spec, metadataURI)` for the folder's model, the
/// segments' verifiers deployed at `verifiers` in order.
pub fn register_calldata(
    v: &SegmentedVerifier,
    verifiers: &[Address],
    metadata_uri: &str,
) -> Result<Vec<u8>, VerifyError> {
    Ok(IChainRegistry::registerChainCall {
        modelId: word(&v.model_id)?,
        verifiers: verifiers.to_vec(),
        spec: spec(&v.file)?,
        metadataURI: metadata_uri.to_string(),
    }
    .abi_encode())
}

/// Each segment's public values and proof bytes from a segmented proof file, checked only
/// for shape (its model id, one proof per segment, each of its segment's id and counts): the
/// chain contract is what checks them.
pub fn segment_proofs(
    v: &SegmentedVerifier,
    proof_path: &Path,
) -> Result<Vec<SegmentProofValues>, VerifyError> {
    Ok(read_segment_proofs(v, proof_path)?.1)
}

/// [`segment_proofs`], and the file's top-level instances checked against them: what a
/// chain that accepts these proofs attests (`chainInstances`) is what the file says.
pub fn segment_proofs_of_file(
    v: &SegmentedVerifier,
    proof_path: &Path,
) -> Result<Vec<SegmentProofValues>, VerifyError> {
    let (top, proofs) = read_segment_proofs(v, proof_path)?;
    if v.model_instances(&proofs)? != top {
        return Err(VerifyError::Malformed(
            "the file's top-level instances are not the model's values in its segment proofs"
                .into(),
        ));
    }
    Ok(proofs)
}

fn read_segment_proofs(
    v: &SegmentedVerifier,
    proof_path: &Path,
) -> Result<(Vec<Fr>, Vec<SegmentProofValues>), VerifyError> {
    let proof: ProofFile = read_json(proof_path)?;
    if proof.model_id != v.model_id {
        return Err(VerifyError::WrongModel {
            proof: proof.model_id,
            folder: v.model_id.clone(),
        });
    }
    if proof.segments.len() != v.segments.len() {
        return Err(VerifyError::Malformed(format!(
            "{} segment proofs, the model has {} segments",
            proof.segments.len(),
            v.segments.len()
        )));
    }
    let proofs = proof
        .segments
        .iter()
        .zip(&v.segments)
        .enumerate()
        .map(|(s, (sp, folder))| {
            if sp.model_id != folder.model_id {
                return Err(VerifyError::Malformed(format!(
                    "proof {s} is for model id {}, segment {s} is {}",
                    sp.model_id, folder.model_id
                )));
            }
            parse_values(folder, &sp.instances, &sp.proof)
        })
        .collect::<Result<_, _>>()?;
    Ok((crate::parse_instances(&proof.instances)?, proofs))
}

/// `verifyChainInference(modelId, instances, proofs)` for segment proofs.
pub fn chain_calldata(
    model_id: &str,
    proofs: &[SegmentProofValues],
) -> Result<Vec<u8>, VerifyError> {
    let instances = proofs
        .iter()
        .map(|(values, _)| {
            solidity::calldata(values, &[])
                .chunks(32)
                .map(U256::from_be_slice)
                .collect()
        })
        .collect();
    Ok(IChainRegistry::verifyChainInferenceCall {
        modelId: word(model_id)?,
        instances,
        proofs: proofs.iter().map(|(_, p)| p.clone().into()).collect(),
    }
    .abi_encode())
}

/// What the registry in the EVM said of a segmented proof.
#[derive(Clone, Debug)]
pub struct ChainVerdict {
    /// Whether `verifyChainInference` succeeded.
    pub accepted: bool,
    /// Gas of the `verifyChainInference` transaction (every segment and link).
    pub gas_used: u64,
    /// Gas of the `registerChain` transaction.
    pub register_gas: u64,
    /// Each segment verifier's runtime code size.
    pub code_sizes: Vec<usize>,
}

/// The registry and a segmented model's verifiers deployed in a fresh in-process EVM.
pub struct ChainOnEvm {
    /// The chain.
    pub evm: Evm,
    /// The registry's address (deployed by [`evm::account`]`(1)`, its owner).
    pub registry: Address,
    /// The segment verifiers' addresses, in segment order.
    pub verifiers: Vec<Address>,
    /// Each segment verifier's runtime code size.
    pub code_sizes: Vec<usize>,
}

impl ChainOnEvm {
    /// Deploys the registry (each verifier call capped at [`SEGMENT_GAS_CAP`]) and every
    /// segment's verifier; registers nothing.
    pub fn deploy(v: &SegmentedVerifier) -> Result<Self, EvmVerifierError> {
        let contracts = crate::contracts::compile()?;
        let mut evm = Evm::new();
        let owner = evm::account(1);
        let mut creation = contracts["ModelRegistry"].bytecode.clone();
        creation.extend(U256::from(SEGMENT_GAS_CAP).to_be_bytes::<32>());
        let registry = evm.deploy(owner, &creation)?.address;
        let mut verifiers = Vec::with_capacity(v.segments.len());
        let mut code_sizes = Vec::with_capacity(v.segments.len());
        for folder in &v.segments {
            let built = solidity::build(folder)?;
            let deployed = evm.deploy(owner, &built.compiled.bytecode)?;
            verifiers.push(deployed.address);
            code_sizes.push(deployed.code_size);
        }
        Ok(Self {
            evm,
            registry,
            verifiers,
            code_sizes,
        })
    }

    /// The owner sends `registerChain` for the model with `verifiers` (normally
    /// [`Self::verifiers`]).
    pub fn register(
        &mut self,
        v: &SegmentedVerifier,
        verifiers: &[Address],
    ) -> Result<Outcome, EvmVerifierError> {
        let data = register_calldata(v, verifiers, "")?;
        Ok(self
            .evm
            .call(evm::account(1), self.registry, &data, evm::DEPLOY_GAS)?)
    }

    /// Anyone sends `verifyChainInference` with `proofs`; the outcome says whether the
    /// registry accepted them.
    pub fn verify(
        &mut self,
        model_id: &str,
        proofs: &[SegmentProofValues],
    ) -> Result<Outcome, EvmVerifierError> {
        let data = chain_calldata(model_id, proofs)?;
        // Each verifier call needs its cap and 1/63 more left to the registry (EIP-150).
        let gas = (SEGMENT_GAS_CAP + SEGMENT_GAS_CAP / 50) * proofs.len().max(1) as u64 + 1_000_000;
        let outcome = self.evm.call(evm::account(7), self.registry, &data, gas)?;
        if let Status::Halt(reason) = &outcome.status {
            return Err(EvmVerifierError::ChainRefused(format!(
                "verifyChainInference halted: {reason}"
            )));
        }
        Ok(outcome)
    }
}

/// Deploys the registry and every segment's verifier in a fresh EVM, registers the chain
/// and calls `verifyChainInference` with `proofs` (from [`segment_proofs`]): the whole
/// on-chain path of a segmented model.
pub fn evm_verify_chain(
    v: &SegmentedVerifier,
    proofs: &[SegmentProofValues],
) -> Result<ChainVerdict, EvmVerifierError> {
    let mut chain = ChainOnEvm::deploy(v)?;
    let verifiers = chain.verifiers.clone();
    let registered = chain.register(v, &verifiers)?;
    if !registered.success() {
        return Err(EvmVerifierError::ChainRefused(format!(
            "revert data 0x{}",
            hex::encode(&registered.output)
        )));
    }
    let outcome = chain.verify(&v.model_id, proofs)?;
    Ok(ChainVerdict {
        accepted: outcome.success(),
        gas_used: outcome.gas_used,
        register_gas: registered.gas_used,
        code_sizes: chain.code_sizes,
    })
}
