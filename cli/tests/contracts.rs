//! The contracts in `contracts/`, compiled by solcjs and run in revm against real verifiers and
//! proofs: the registry (happy path, unknown model, wrong verifier, owner only, one verifier
//! per id for ever, non-canonical values, a gas-burning verifier under the cap), the ERC-7007
//! adapter (true and false, never a revert) and the oracle consumer (answered once, bound to
//! its request and model).

use std::collections::BTreeMap;
use std::path::Path;

use alloy_sol_types::{sol, SolCall, SolError, SolEvent, SolValue};
use zkinfer_circuits::artifacts::write_json;
use zkinfer_circuits::identity::VerifierFolder;
use zkinfer_circuits::Visibility;
use zkinfer_model::corpus::example_dir;
use zkinfer_prover::pipeline::{self, CompileOptions};
use zkinfer_verifier::evm::{account, Evm, Outcome, U256};
use zkinfer_verifier::{load_proof, solc, solidity};

sol! {
    struct Model { address verifier; uint32 numInputs; uint32 numInstances; string metadataURI; }
    interface IModelRegistry {
        function owner() external view returns (address);
        function transferOwnership(address newOwner) external;
        function register(bytes32 modelId, address verifier, uint32 numInputs, uint32 numInstances, string metadataURI) external;
        function model(bytes32 modelId) external view returns (Model memory);
        function verifyInference(bytes32 modelId, uint256[] instances, bytes proof) external returns (bool);
        event InferenceVerified(bytes32 indexed modelId, bytes32 inputsHash, bytes32 outputsHash);
        error NotOwner();
        error NoCode(address verifier);
        error AlreadyRegistered(bytes32 modelId);
        error UnknownModel(bytes32 modelId);
        error WrongInstanceCount(uint256 expected, uint256 given);
        error NonCanonicalValue();
        error InvalidProof(bytes32 modelId);
    }
    interface IERC7007 {
        function verify(bytes prompt, bytes aigcData, bytes proof) external view returns (bool success);
    }
    interface IOracleConsumer {
        function request(bytes32 modelId, uint256[] inputs) external returns (uint256 id);
        function fulfill(uint256 requestId, bytes32 modelId, uint256[] instances, bytes proof) external;
        function answer(uint256 requestId) external view returns (uint256[] memory);
        error AlreadyAnswered(uint256 requestId);
        error WrongModel(bytes32 expected, bytes32 given);
        error WrongInputs(uint256 requestId);
        error NotAnswered(uint256 requestId);
    }
}

/// Gas the registry gives a verifier call.
const GAS_CAP: u64 = 1_000_000;
const TX_GAS: u64 = 10_000_000;
const R: &str = "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";

/// A proven model: its id, verifier creation code, public values and proof.
struct Proven {
    id: [u8; 32],
    creation: Vec<u8>,
    num_inputs: u32,
    instances: Vec<U256>,
    proof: Vec<u8>,
}

fn proven(tmp: &Path, name: &str) -> Proven {
    let e = example_dir(name);
    let input = e.join("input.json");
    let dir = tmp.join(name);
    let opts = CompileOptions {
        visibility: Visibility::Public,
        ..Default::default()
    };
    pipeline::compile(&e.join("network.onnx"), &input, &dir, &opts).unwrap();
    pipeline::setup(&dir, None).unwrap();
    let path = dir.join("proof.json");
    write_json(&path, &pipeline::prove(&dir, &input).unwrap()).unwrap();
    let folder = VerifierFolder::open(&dir).unwrap();
    let loaded = load_proof(&folder, &path).unwrap();
    let words = solidity::calldata(&loaded.instances, &[]);
    Proven {
        id: hex::decode(&folder.model_id).unwrap().try_into().unwrap(),
        creation: solidity::build(&folder).unwrap().compiled.bytecode,
        num_inputs: folder.settings.num_input_instances() as u32,
        instances: words.chunks(32).map(U256::from_be_slice).collect(),
        proof: loaded.bytes,
    }
}

/// A chain with the registry deployed by `owner` and model `a` registered.
struct Chain {
    evm: Evm,
    contracts: BTreeMap<String, solc::Compiled>,
    registry: alloy_sol_types::private::Address,
    owner: alloy_sol_types::private::Address,
}

impl Chain {
    fn new() -> Self {
        let contracts = zkinfer_verifier::contracts::compile().unwrap();
        let mut evm = Evm::new();
        let owner = account(1);
        let registry = deploy(
            &mut evm,
            &contracts["ModelRegistry"].bytecode,
            &U256::from(GAS_CAP).abi_encode(),
        );
        Self {
            evm,
            contracts,
            registry,
            owner,
        }
    }

    fn deploy_verifier(&mut self, p: &Proven) -> alloy_sol_types::private::Address {
        deploy(&mut self.evm, &p.creation, &[])
    }

    fn register(&mut self, p: &Proven, verifier: alloy_sol_types::private::Address) -> Outcome {
        let call = IModelRegistry::registerCall {
            modelId: p.id.into(),
            verifier,
            numInputs: p.num_inputs,
            numInstances: p.instances.len() as u32,
            metadataURI: "ipfs://model-card".into(),
        };
        self.evm
            .call(self.owner, self.registry, &call.abi_encode(), TX_GAS)
            .unwrap()
    }

    fn verify_inference(&mut self, id: [u8; 32], instances: &[U256], proof: &[u8]) -> Outcome {
        let call = IModelRegistry::verifyInferenceCall {
            modelId: id.into(),
            instances: instances.to_vec(),
            proof: proof.to_vec().into(),
        };
        self.evm
            .call(account(7), self.registry, &call.abi_encode(), TX_GAS)
            .unwrap()
    }
}

fn deploy(evm: &mut Evm, creation: &[u8], args: &[u8]) -> alloy_sol_types::private::Address {
    let mut code = creation.to_vec();
    code.extend_from_slice(args);
    evm.deploy(account(1), &code).unwrap().address
}

/// The revert carries exactly this error (selector and arguments).
fn reverted_with<E: SolError>(outcome: &Outcome, want: E) {
    assert!(
        !outcome.success(),
        "expected a revert with {}",
        E::SIGNATURE
    );
    assert_eq!(
        hex::encode(&outcome.output),
        hex::encode(want.abi_encode()),
        "expected {}",
        E::SIGNATURE
    );
}

fn plus_r(x: U256) -> U256 {
    x + U256::from_str_radix(R, 16).unwrap()
}

#[test]
fn registry_verifies_registered_models_only() {
    let tmp = tempfile::tempdir().unwrap();
    let a = proven(tmp.path(), "1l_mlp");
    let b = proven(tmp.path(), "1l_relu");
    let mut chain = Chain::new();
    let (va, vb) = (chain.deploy_verifier(&a), chain.deploy_verifier(&b));

    // Unknown model.
    let out = chain.verify_inference(a.id, &a.instances, &a.proof);
    reverted_with(
        &out,
        IModelRegistry::UnknownModel {
            modelId: a.id.into(),
        },
    );

    // Only the owner registers; an address without code is refused.
    let call = IModelRegistry::registerCall {
        modelId: a.id.into(),
        verifier: va,
        numInputs: a.num_inputs,
        numInstances: a.instances.len() as u32,
        metadataURI: String::new(),
    };
    let out = chain
        .evm
        .call(account(9), chain.registry, &call.abi_encode(), TX_GAS)
        .unwrap();
    reverted_with(&out, IModelRegistry::NotOwner {});
    let out = chain.register(&a, account(42));
    reverted_with(
        &out,
        IModelRegistry::NoCode {
            verifier: account(42),
        },
    );

    // Happy path: the event carries the hashes of the inputs and of the outputs.
    assert!(chain.register(&a, va).success());
    let out = chain.verify_inference(a.id, &a.instances, &a.proof);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.logs.len(), 1);
    let event = IModelRegistry::InferenceVerified::decode_log_data(&out.logs[0].data).unwrap();
    let n = a.num_inputs as usize;
    assert_eq!(n, 3);
    assert_eq!(event.modelId, a.id);
    assert_eq!(
        event.inputsHash,
        alloy_sol_types::private::keccak256(a.instances[..n].abi_encode_packed())
    );
    assert_eq!(
        event.outputsHash,
        alloy_sol_types::private::keccak256(a.instances[n..].abi_encode_packed())
    );
    let m = IModelRegistry::modelCall {
        modelId: a.id.into(),
    };
    let out = chain
        .evm
        .call(account(7), chain.registry, &m.abi_encode(), TX_GAS)
        .unwrap();
    let m = IModelRegistry::modelCall::abi_decode_returns(&out.output).unwrap();
    assert_eq!((m.verifier, m.numInputs, m.numInstances), (va, 3, 7));
    assert_eq!(m.metadataURI, "ipfs://model-card");

    // An id is never re-pointed, not even by the owner.
    reverted_with(
        &chain.register(&a, vb),
        IModelRegistry::AlreadyRegistered {
            modelId: a.id.into(),
        },
    );

    // Tampered output, non-canonical output (x + r, which the verifier would reduce), wrong
    // count, malformed proof.
    let mut moved = a.instances.clone();
    moved[5] += U256::from(1);
    reverted_with(
        &chain.verify_inference(a.id, &moved, &a.proof),
        IModelRegistry::InvalidProof {
            modelId: a.id.into(),
        },
    );
    let mut twin = a.instances.clone();
    twin[5] = plus_r(twin[5]);
    reverted_with(
        &chain.verify_inference(a.id, &twin, &a.proof),
        IModelRegistry::NonCanonicalValue {},
    );
    reverted_with(
        &chain.verify_inference(a.id, &a.instances[1..], &a.proof),
        IModelRegistry::WrongInstanceCount {
            expected: U256::from(7),
            given: U256::from(6),
        },
    );
    reverted_with(
        &chain.verify_inference(a.id, &a.instances, &a.proof[..100]),
        IModelRegistry::InvalidProof {
            modelId: a.id.into(),
        },
    );

    // Wrong verifier: model b registered (by mistake) with a's verifier rejects b's proof.
    assert!(chain.register(&b, va).success());
    reverted_with(
        &chain.verify_inference(b.id, &b.instances, &b.proof),
        IModelRegistry::InvalidProof {
            modelId: b.id.into(),
        },
    );

    // Ownership moves; the old owner can no longer register.
    let t = IModelRegistry::transferOwnershipCall {
        newOwner: account(2),
    };
    assert!(chain
        .evm
        .call(chain.owner, chain.registry, &t.abi_encode(), TX_GAS)
        .unwrap()
        .success());
    let out = chain
        .evm
        .call(
            account(7),
            chain.registry,
            &IModelRegistry::ownerCall {}.abi_encode(),
            TX_GAS,
        )
        .unwrap();
    assert_eq!(
        IModelRegistry::ownerCall::abi_decode_returns(&out.output).unwrap(),
        account(2)
    );
    let c = Proven {
        id: [7; 32],
        ..proven(tmp.path(), "1l_linear")
    };
    reverted_with(&chain.register(&c, vb), IModelRegistry::NotOwner {});
}

/// A verifier that never returns burns only the registry's cap: the transaction fails with
/// InvalidProof having used about the cap, not the transaction's gas.
#[test]
fn a_gas_burning_verifier_is_cut_off_at_the_cap() {
    let burner = solc::compile_one(
        "Burner.sol",
        "// SPDX-License-Identifier: MIT\npragma solidity 0.8.19;\ncontract Burner { fallback() external { while (true) {} } }",
        "Burner",
        false,
    )
    .unwrap();
    let mut chain = Chain::new();
    let verifier = deploy(&mut chain.evm, &burner.bytecode, &[]);
    let p = Proven {
        id: [1; 32],
        creation: Vec::new(),
        num_inputs: 0,
        instances: vec![U256::from(5)],
        proof: vec![1; 64],
    };
    assert!(chain.register(&p, verifier).success());
    let out = chain.verify_inference(p.id, &p.instances, &p.proof);
    reverted_with(
        &out,
        IModelRegistry::InvalidProof {
            modelId: p.id.into(),
        },
    );
    assert!(
        out.gas_used > GAS_CAP && out.gas_used < GAS_CAP + 100_000,
        "{}",
        out.gas_used
    );
}

#[test]
fn erc7007_verify_is_true_for_the_proof_and_false_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let a = proven(tmp.path(), "1l_mlp");
    let mut chain = Chain::new();
    let va = chain.deploy_verifier(&a);
    assert!(chain.register(&a, va).success());
    let adapter = deploy(
        &mut chain.evm,
        &chain.contracts["ERC7007Adapter"].bytecode.clone(),
        &(chain.registry, alloy_sol_types::private::B256::from(a.id)).abi_encode_params(),
    );
    let n = a.num_inputs as usize;
    let mut verify = |prompt: &[U256], data: &[U256], proof: &[u8]| -> bool {
        let call = IERC7007::verifyCall {
            prompt: prompt.abi_encode_packed().into(),
            aigcData: data.abi_encode_packed().into(),
            proof: proof.to_vec().into(),
        };
        let out = chain
            .evm
            .call(account(7), adapter, &call.abi_encode(), TX_GAS)
            .unwrap();
        assert!(out.success(), "verify reverted: {out:?}");
        IERC7007::verifyCall::abi_decode_returns(&out.output).unwrap()
    };
    let (inputs, outputs) = a.instances.split_at(n);
    assert!(verify(inputs, outputs, &a.proof));
    let mut other = outputs.to_vec();
    other[0] += U256::from(1);
    assert!(!verify(inputs, &other, &a.proof), "another answer");
    let mut prompt = inputs.to_vec();
    prompt[2] += U256::from(1);
    assert!(!verify(&prompt, outputs, &a.proof), "another prompt");
    other[0] = plus_r(outputs[0]);
    assert!(!verify(inputs, &other, &a.proof), "non-canonical");
    assert!(
        !verify(inputs, &outputs[1..], &a.proof),
        "an output missing"
    );
    assert!(!verify(inputs, outputs, &a.proof[..64]), "malformed proof");
    let mut flipped = a.proof.clone();
    flipped[200] ^= 1;
    assert!(!verify(inputs, outputs, &flipped), "tampered proof");
}

#[test]
fn oracle_requests_are_answered_once_by_their_own_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let a = proven(tmp.path(), "1l_mlp");
    let b = proven(tmp.path(), "1l_relu");
    let mut chain = Chain::new();
    let (va, vb) = (chain.deploy_verifier(&a), chain.deploy_verifier(&b));
    assert!(chain.register(&a, va).success());
    assert!(chain.register(&b, vb).success());
    let oracle = deploy(
        &mut chain.evm,
        &chain.contracts["OracleConsumer"].bytecode.clone(),
        &chain.registry.abi_encode(),
    );
    let n = a.num_inputs as usize;
    let requester = account(3);
    let agent = account(4);
    let mut send = |from, data: Vec<u8>| chain.evm.call(from, oracle, &data, TX_GAS).unwrap();

    // Request 0 on a's inputs; request 1 on other inputs.
    let open = |inputs: &[U256]| IOracleConsumer::requestCall {
        modelId: a.id.into(),
        inputs: inputs.to_vec(),
    };
    assert!(send(requester, open(&a.instances[..n]).abi_encode()).success());
    let mut other_inputs = a.instances[..n].to_vec();
    other_inputs[0] += U256::from(1);
    assert!(send(requester, open(&other_inputs).abi_encode()).success());

    let fulfill = |id: u64, model: [u8; 32], instances: &[U256], proof: &[u8]| {
        IOracleConsumer::fulfillCall {
            requestId: U256::from(id),
            modelId: model.into(),
            instances: instances.to_vec(),
            proof: proof.to_vec().into(),
        }
        .abi_encode()
    };
    // Not yet answered.
    let out = send(
        agent,
        IOracleConsumer::answerCall {
            requestId: U256::from(0),
        }
        .abi_encode(),
    );
    reverted_with(
        &out,
        IOracleConsumer::NotAnswered {
            requestId: U256::from(0),
        },
    );
    // The wrong request: a's proof is not of request 1's inputs.
    reverted_with(
        &send(agent, fulfill(1, a.id, &a.instances, &a.proof)),
        IOracleConsumer::WrongInputs {
            requestId: U256::from(1),
        },
    );
    // The wrong model: b's valid proof for a request on a.
    reverted_with(
        &send(agent, fulfill(0, b.id, &b.instances, &b.proof)),
        IOracleConsumer::WrongModel {
            expected: a.id.into(),
            given: b.id.into(),
        },
    );
    // A forged answer fails in the registry, and leaves the request open.
    let mut forged = a.instances.clone();
    forged[n] += U256::from(1);
    let out = send(agent, fulfill(0, a.id, &forged, &a.proof));
    reverted_with(
        &out,
        IModelRegistry::InvalidProof {
            modelId: a.id.into(),
        },
    );
    // The honest answer, once.
    let out = send(agent, fulfill(0, a.id, &a.instances, &a.proof));
    assert!(out.success(), "{out:?}");
    let out = send(
        agent,
        IOracleConsumer::answerCall {
            requestId: U256::from(0),
        }
        .abi_encode(),
    );
    assert_eq!(
        IOracleConsumer::answerCall::abi_decode_returns(&out.output).unwrap(),
        a.instances[n..].to_vec()
    );
    reverted_with(
        &send(agent, fulfill(0, a.id, &a.instances, &a.proof)),
        IOracleConsumer::AlreadyAnswered {
            requestId: U256::from(0),
        },
    );
}
