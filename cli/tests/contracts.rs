//! The contracts in `contracts/`, compiled by solcjs and run in revm against real verifiers and
//! proofs: the registry (happy path, unknown model, a verifier that is not the id's, owner
//! only, one verifier per id for ever, revocation, two-step ownership, non-canonical values, a
//! gas-burning verifier under the cap), the verifier library (no code, changed code, too little
//! gas), the ERC-7007 adapter (true and false for proofs, a revert when short of gas) and the
//! oracle consumer (answered once, bound to its request and model, public inputs only).

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
    struct Model { address verifier; bytes32 codeHash; uint32 numInputs; uint32 numInstances; bool revoked; bytes32 weightCommitment; string metadataURI; }
    interface IModelRegistry {
        function owner() external view returns (address);
        function pendingOwner() external view returns (address);
        function transferOwnership(address newOwner) external;
        function acceptOwnership() external;
        function register(bytes32 modelId, address verifier, uint32 numInputs, uint32 numInstances, bytes32 weightCommitment, string metadataURI) external;
        function revoke(bytes32 modelId) external;
        function model(bytes32 modelId) external view returns (Model memory);
        function verifyInference(bytes32 modelId, uint256[] instances, bytes proof) external returns (bool);
        event InferenceVerified(bytes32 indexed modelId, bytes32 inputsHash, bytes32 outputsHash);
        event ModelRevoked(bytes32 indexed modelId);
        error NotOwner();
        error NotPendingOwner();
        error AlreadyRegistered(bytes32 modelId);
        error VerifierMismatch(bytes32 modelId, bytes32 verifierModelId, uint256 numInstances, uint256 numInputs);
        error UnknownModel(bytes32 modelId);
        error Revoked(bytes32 modelId);
        error WrongInstanceCount(uint256 expected, uint256 given);
        error NonCanonicalValue();
        error InvalidProof(bytes32 modelId);
        error OtherWeights(bytes32 modelId, uint256 proven);
    }
    interface IZkinferVerifier {
        error NoCode(address verifier);
        error CodeChanged(address verifier, bytes32 registered, bytes32 found);
        error NotAZkinferVerifier(address verifier);
        error InsufficientGas(uint256 available, uint256 needed);
    }
    interface ILibraryHarness {
        function check(address verifier, bytes32 codeHash, uint256[] instances, bytes proof, uint256 gasCap) external view returns (bool);
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
        error NoPublicInputs(bytes32 modelId);
    }
}

/// Gas the registry gives a verifier call.
const GAS_CAP: u64 = 1_000_000;
const TX_GAS: u64 = 10_000_000;
const R: &str = "30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";

/// A proven model: its id, verifier creation code, public values and proof.
struct Proven {
    id: [u8; 32],
    /// The weight commitment (zero: weights fixed in the key).
    weights: [u8; 32],
    creation: Vec<u8>,
    num_inputs: u32,
    instances: Vec<U256>,
    proof: Vec<u8>,
}

fn proven(tmp: &Path, name: &str) -> Proven {
    proven_with(tmp, name, Visibility::Public)
}

fn proven_with(tmp: &Path, name: &str, visibility: Visibility) -> Proven {
    proven_io(tmp, name, zkinfer_circuits::Io::inputs(visibility))
}

fn proven_io(tmp: &Path, name: &str, io: zkinfer_circuits::Io) -> Proven {
    let e = example_dir(name);
    let input = e.join("input.json");
    let dir = match io.output {
        Visibility::Public => tmp.join(format!("{name}-{:?}", io.input)),
        _ => tmp.join(format!("{name}-{:?}-{:?}", io.input, io.output)),
    };
    let opts = CompileOptions {
        io,
        ..Default::default()
    };
    pipeline::compile(&e.join("network.onnx"), &input, &dir, &opts).unwrap();
    pipeline::setup(&dir, None).unwrap();
    let path = dir.join("proof.json");
    write_json(&path, &pipeline::prove(&dir, &input).unwrap()).unwrap();
    proven_folder(&dir, &path)
}

/// The model, verifier and proof of a set-up folder and its proof file.
fn proven_folder(dir: &Path, path: &Path) -> Proven {
    let folder = VerifierFolder::open(dir).unwrap();
    let loaded = load_proof(&folder, path).unwrap();
    let words = solidity::calldata(&loaded.instances, &[]);
    let weights = folder
        .settings
        .weight_commitment
        .as_deref()
        .map_or([0; 32], |c| hex::decode(c).unwrap().try_into().unwrap());
    Proven {
        id: hex::decode(&folder.model_id).unwrap().try_into().unwrap(),
        weights,
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
        self.register_weights(p, p.weights, verifier)
    }

    fn register_weights(
        &mut self,
        p: &Proven,
        weights: [u8; 32],
        verifier: alloy_sol_types::private::Address,
    ) -> Outcome {
        self.register_full(
            p.id,
            p.num_inputs,
            p.instances.len() as u32,
            weights,
            verifier,
        )
    }

    fn register_as(
        &mut self,
        id: [u8; 32],
        num_inputs: u32,
        num_instances: u32,
        verifier: alloy_sol_types::private::Address,
    ) -> Outcome {
        self.register_full(id, num_inputs, num_instances, [0; 32], verifier)
    }

    fn register_full(
        &mut self,
        id: [u8; 32],
        num_inputs: u32,
        num_instances: u32,
        weights: [u8; 32],
        verifier: alloy_sol_types::private::Address,
    ) -> Outcome {
        let call = IModelRegistry::registerCall {
            modelId: id.into(),
            verifier,
            numInputs: num_inputs,
            numInstances: num_instances,
            weightCommitment: weights.into(),
            metadataURI: "ipfs://model-card".into(),
        };
        self.send(self.owner, call.abi_encode())
    }

    fn send(&mut self, from: alloy_sol_types::private::Address, data: Vec<u8>) -> Outcome {
        self.evm.call(from, self.registry, &data, TX_GAS).unwrap()
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

/// The revert carries this error's selector (its arguments are not known in advance).
fn reverted_with_selector<E: SolError>(outcome: &Outcome) {
    assert!(
        !outcome.success(),
        "expected a revert with {}",
        E::SIGNATURE
    );
    assert_eq!(
        hex::encode(outcome.output.get(..4).unwrap_or_default()),
        hex::encode(E::SELECTOR),
        "expected {}",
        E::SIGNATURE
    );
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
        weightCommitment: [0u8; 32].into(),
        metadataURI: String::new(),
    };
    reverted_with(
        &chain.send(account(9), call.abi_encode()),
        IModelRegistry::NotOwner {},
    );
    let out = chain.register(&a, account(42));
    reverted_with(
        &out,
        IZkinferVerifier::NoCode {
            verifier: account(42),
        },
    );

    // A's verifier says it verifies A: it cannot be registered as B (A's proofs would then
    // be recorded as B's inferences for ever), nor with other counts.
    reverted_with(
        &chain.register_as(b.id, a.num_inputs, a.instances.len() as u32, va),
        IModelRegistry::VerifierMismatch {
            modelId: b.id.into(),
            verifierModelId: a.id.into(),
            numInstances: U256::from(7),
            numInputs: U256::from(3),
        },
    );
    reverted_with(
        &chain.register_as(a.id, 0, a.instances.len() as u32, va),
        IModelRegistry::VerifierMismatch {
            modelId: a.id.into(),
            verifierModelId: a.id.into(),
            numInstances: U256::from(7),
            numInputs: U256::from(3),
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
    let out = chain.send(account(7), m.abi_encode());
    let m = IModelRegistry::modelCall::abi_decode_returns(&out.output).unwrap();
    assert_eq!((m.verifier, m.numInputs, m.numInstances), (va, 3, 7));
    assert_eq!(m.metadataURI, "ipfs://model-card");
    assert!(!m.revoked);
    // The record holds the verifier's runtime code hash: anyone can compare it with the
    // verifier regenerated from the folder.
    let folder = VerifierFolder::open(&tmp.path().join("1l_mlp-Public")).unwrap();
    let runtime = solidity::build(&folder).unwrap().compiled.deployed;
    assert_eq!(m.codeHash, alloy_sol_types::private::keccak256(&runtime));

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
    let mut longer = a.proof.clone();
    longer.extend([0u8; 32]);
    reverted_with(
        &chain.verify_inference(a.id, &a.instances, &longer),
        IModelRegistry::InvalidProof {
            modelId: a.id.into(),
        },
    );

    // B with its own verifier.
    assert!(chain.register(&b, vb).success());
    assert!(chain
        .verify_inference(b.id, &b.instances, &b.proof)
        .success());

    // Revocation: only the owner; afterwards every check of the id reverts, for ever.
    let revoke = IModelRegistry::revokeCall {
        modelId: b.id.into(),
    };
    reverted_with(
        &chain.send(account(9), revoke.abi_encode()),
        IModelRegistry::NotOwner {},
    );
    let out = chain.send(chain.owner, revoke.abi_encode());
    assert!(out.success(), "{out:?}");
    let event = IModelRegistry::ModelRevoked::decode_log_data(&out.logs[0].data).unwrap();
    assert_eq!(event.modelId, b.id);
    reverted_with(
        &chain.verify_inference(b.id, &b.instances, &b.proof),
        IModelRegistry::Revoked {
            modelId: b.id.into(),
        },
    );
    reverted_with(
        &chain.register(&b, vb),
        IModelRegistry::AlreadyRegistered {
            modelId: b.id.into(),
        },
    );
    assert!(chain
        .verify_inference(a.id, &a.instances, &a.proof)
        .success());

    // Ownership moves in two steps: the new owner must accept; until then the old one rules.
    let t = IModelRegistry::transferOwnershipCall {
        newOwner: account(2),
    };
    assert!(chain.send(chain.owner, t.abi_encode()).success());
    let owner_now = |chain: &mut Chain| {
        let out = chain.send(account(7), IModelRegistry::ownerCall {}.abi_encode());
        IModelRegistry::ownerCall::abi_decode_returns(&out.output).unwrap()
    };
    assert_eq!(owner_now(&mut chain), account(1));
    reverted_with(
        &chain.send(
            account(9),
            IModelRegistry::acceptOwnershipCall {}.abi_encode(),
        ),
        IModelRegistry::NotPendingOwner {},
    );
    assert!(chain
        .send(
            account(2),
            IModelRegistry::acceptOwnershipCall {}.abi_encode()
        )
        .success());
    assert_eq!(owner_now(&mut chain), account(2));
    let c = proven(tmp.path(), "1l_linear");
    let vc = chain.deploy_verifier(&c);
    reverted_with(&chain.register(&c, vc), IModelRegistry::NotOwner {});
}

/// A verifier that never returns (it answers the info call, so it can be registered) burns
/// only the registry's cap: the transaction fails with InvalidProof having used about the
/// cap, not the transaction's gas.
#[test]
fn a_gas_burning_verifier_is_cut_off_at_the_cap() {
    let burner = solc::compile_one(
        "Burner.sol",
        "// SPDX-License-Identifier: MIT\npragma solidity 0.8.19;\n\
         contract Burner { fallback(bytes calldata d) external returns (bytes memory) {\n\
         if (d.length == 4) { bytes memory info = abi.encode(bytes32(uint256(0x0101010101010101010101010101010101010101010101010101010101010101)), uint256(1), uint256(0), uint256(0)); assembly { revert(add(info, 32), mload(info)) } }\n\
         while (true) {} } }",
        "Burner",
        solc::Optimizer::Off,
    )
    .unwrap();
    let mut chain = Chain::new();
    let verifier = deploy(&mut chain.evm, &burner.bytecode, &[]);
    let p = Proven {
        id: [1; 32],
        weights: [0; 32],
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

    // Too little gas to give the verifier the registry's cap: a revert, never `false` for a
    // valid proof (before, up to about 400k gas answered false).
    let call = IERC7007::verifyCall {
        prompt: inputs.abi_encode_packed().into(),
        aigcData: outputs.abi_encode_packed().into(),
        proof: a.proof.clone().into(),
    }
    .abi_encode();
    for gas in [300_000, 400_000, 600_000, 1_000_000] {
        let out = chain.evm.call(account(7), adapter, &call, gas).unwrap();
        reverted_with_selector::<IZkinferVerifier::InsufficientGas>(&out);
    }
    let out = chain
        .evm
        .call(account(7), adapter, &call, 1_200_000)
        .unwrap();
    assert!(out.success(), "{out:?}");
    assert!(IERC7007::verifyCall::abi_decode_returns(&out.output).unwrap());
}

/// The library every contract calls verifiers through: an address without code (a call to
/// it succeeds, so it would accept every proof) and code other than registered revert; the
/// registered code with its proof is accepted.
#[test]
fn the_verifier_library_checks_code_at_call_time() {
    let tmp = tempfile::tempdir().unwrap();
    let a = proven(tmp.path(), "1l_mlp");
    let harness = solc::compile(
        &[
            (
                "ZkinferVerifier.sol".to_string(),
                zkinfer_verifier::contracts::SOURCES[0].1.to_string(),
            ),
            (
                "Harness.sol".to_string(),
                "// SPDX-License-Identifier: MIT\npragma solidity 0.8.19;\n\
                 import \"./ZkinferVerifier.sol\";\n\
                 contract Harness { function check(address v, bytes32 h, uint256[] calldata i, \
                 bytes calldata p, uint256 cap) external view returns (bool) { \
                 return ZkinferVerifier.check(v, h, i, p, cap); } }"
                    .to_string(),
            ),
        ]
        .into_iter()
        .collect(),
        solc::Optimizer::Gas,
    )
    .unwrap()
    .remove("Harness")
    .unwrap();
    let mut chain = Chain::new();
    let lib = deploy(&mut chain.evm, &harness.bytecode, &[]);
    let va = chain.deploy_verifier(&a);
    let folder = VerifierFolder::open(&tmp.path().join("1l_mlp-Public")).unwrap();
    let code_hash =
        alloy_sol_types::private::keccak256(solidity::build(&folder).unwrap().compiled.deployed);
    let mut check = |verifier, hash| {
        let call = ILibraryHarness::checkCall {
            verifier,
            codeHash: hash,
            instances: a.instances.clone(),
            proof: a.proof.clone().into(),
            gasCap: U256::from(GAS_CAP),
        };
        chain
            .evm
            .call(account(7), lib, &call.abi_encode(), TX_GAS)
            .unwrap()
    };
    let out = check(va, code_hash);
    assert!(ILibraryHarness::checkCall::abi_decode_returns(&out.output).unwrap());
    reverted_with(
        &check(account(42), code_hash),
        IZkinferVerifier::NoCode {
            verifier: account(42),
        },
    );
    reverted_with(
        &check(va, [9u8; 32].into()),
        IZkinferVerifier::CodeChanged {
            verifier: va,
            registered: [9u8; 32].into(),
            found: code_hash,
        },
    );
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

/// With private inputs a proof does not say which input it is of: one proof would answer
/// every request of the model (the inputs hash of each was keccak256 of nothing). Such a
/// model is refused at request time.
#[test]
fn oracle_requests_need_a_model_with_public_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let a = proven_with(tmp.path(), "1l_mlp", Visibility::Private);
    assert_eq!(a.num_inputs, 0);
    let mut chain = Chain::new();
    let va = chain.deploy_verifier(&a);
    assert!(chain.register(&a, va).success());
    let oracle = deploy(
        &mut chain.evm,
        &chain.contracts["OracleConsumer"].bytecode.clone(),
        &chain.registry.abi_encode(),
    );
    let call = IOracleConsumer::requestCall {
        modelId: a.id.into(),
        inputs: Vec::new(),
    };
    let out = chain
        .evm
        .call(account(3), oracle, &call.abi_encode(), TX_GAS)
        .unwrap();
    reverted_with(
        &out,
        IOracleConsumer::NoPublicInputs {
            modelId: a.id.into(),
        },
    );
}

/// With hashed inputs the request names the input by its commitment, computed off chain from
/// the input and the model's settings alone; a fulfilment must prove that commitment, and the
/// answer is the output commitment.
#[test]
fn oracle_requests_on_hashed_inputs_bind_their_commitment() {
    let tmp = tempfile::tempdir().unwrap();
    let hashed = zkinfer_circuits::Io::new(Visibility::Hashed, Visibility::Hashed);
    let a = proven_io(tmp.path(), "1l_mlp", hashed);
    assert_eq!((a.num_inputs, a.instances.len()), (1, 2));
    // The requester's commitments: a's input, and another input.
    let settings: zkinfer_circuits::artifacts::Settings = zkinfer_circuits::artifacts::read_json(
        &tmp.path()
            .join("1l_mlp-Hashed-Hashed")
            .join("settings.json"),
    )
    .unwrap();
    let text = std::fs::read_to_string(example_dir("1l_mlp").join("input.json")).unwrap();
    let mut data = zkinfer_model::parse_input_json(&text).unwrap();
    let word = |data: &[Vec<f64>]| {
        let c = settings
            .commit_inputs(data, zkinfer_circuits::Fr::zero())
            .unwrap()[0];
        U256::from_str_radix(&zkinfer_circuits::commit::commitment_hex(&c), 16).unwrap()
    };
    let mine = word(&data);
    assert_eq!(
        mine, a.instances[0],
        "the off-chain commitment is the proven one"
    );
    data[0][0] += 0.5;
    let theirs = word(&data);

    let mut chain = Chain::new();
    let va = chain.deploy_verifier(&a);
    assert!(chain.register(&a, va).success());
    let oracle = deploy(
        &mut chain.evm,
        &chain.contracts["OracleConsumer"].bytecode.clone(),
        &chain.registry.abi_encode(),
    );
    let (requester, agent) = (account(3), account(4));
    let mut send = |from, data: Vec<u8>| chain.evm.call(from, oracle, &data, TX_GAS).unwrap();
    for c in [mine, theirs] {
        let call = IOracleConsumer::requestCall {
            modelId: a.id.into(),
            inputs: vec![c],
        };
        assert!(send(requester, call.abi_encode()).success());
    }
    let fulfill = |id: u64| {
        IOracleConsumer::fulfillCall {
            requestId: U256::from(id),
            modelId: a.id.into(),
            instances: a.instances.clone(),
            proof: a.proof.clone().into(),
        }
        .abi_encode()
    };
    // The proof of a's input answers its own request, not the other one.
    reverted_with(
        &send(agent, fulfill(1)),
        IOracleConsumer::WrongInputs {
            requestId: U256::from(1),
        },
    );
    assert!(send(agent, fulfill(0)).success());
    let out = send(
        agent,
        IOracleConsumer::answerCall {
            requestId: U256::from(0),
        }
        .abi_encode(),
    );
    assert_eq!(
        IOracleConsumer::answerCall::abi_decode_returns(&out.output).unwrap(),
        a.instances[1..].to_vec()
    );
    // Nor can the proof be passed off under the other commitment: the verifier refuses it.
    let mut swapped = a.instances.clone();
    swapped[0] = theirs;
    let forged = IOracleConsumer::fulfillCall {
        requestId: U256::from(1),
        modelId: a.id.into(),
        instances: swapped,
        proof: a.proof.clone().into(),
    };
    reverted_with(
        &send(agent, forged.abi_encode()),
        IModelRegistry::InvalidProof {
            modelId: a.id.into(),
        },
    );
}

/// Two trainings of one architecture (the digits MLP and its fine-tuned sibling, hashed
/// weights, `--like`) on one SRS: one Solidity verifier, which reports the architecture id,
/// serves both model ids, each registered with its weight commitment; a proof of one training
/// is refused for the other (`OtherWeights`), and an id registered with another commitment
/// than the one it is made of is refused (`VerifierMismatch`).
#[test]
fn one_verifier_serves_every_training_of_an_architecture() {
    let tmp = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    let prove = |name: &str, dir: &Path, opts: &CompileOptions, srs: Option<&Path>| {
        let e = examples.join(name);
        let input = e.join("input.json");
        pipeline::compile(&e.join("network.onnx"), &input, dir, opts).unwrap();
        if let Some(srs) = srs {
            pipeline::setup(dir, Some(srs)).unwrap();
            let path = dir.join("proof.json");
            write_json(&path, &pipeline::prove(dir, &input).unwrap()).unwrap();
        }
    };
    // Hashed inputs too: 64 public pixels would not fit EIP-170.
    let hashed = CompileOptions {
        weights: zkinfer_model::Weights::Hashed,
        io: zkinfer_circuits::Io::inputs(Visibility::Hashed),
        ..Default::default()
    };
    prove("digits_mlp", &a_dir, &hashed, None);
    let k = circuit_k(&a_dir);
    let srs = tmp.path().join("srs");
    zkinfer_prover::srs::save(&srs, &zkinfer_prover::srs::generate(k).unwrap()).unwrap();
    prove("digits_mlp", &a_dir, &hashed, Some(&srs));
    let like = CompileOptions {
        like: Some(a_dir.clone()),
        ..Default::default()
    };
    prove("digits_mlp_finetuned", &b_dir, &like, Some(&srs));
    let a = proven_folder(&a_dir, &a_dir.join("proof.json"));
    let b = proven_folder(&b_dir, &b_dir.join("proof.json"));
    assert_ne!(a.id, b.id);
    assert_ne!(a.weights, b.weights);
    assert_eq!(a.creation, b.creation, "one verifier for the architecture");

    let mut chain = Chain::new();
    let v = chain.deploy_verifier(&a);
    // An id is made of the architecture and its commitment: not of another's.
    let out = chain.register_weights(&a, b.weights, v);
    reverted_with_selector::<IModelRegistry::VerifierMismatch>(&out);
    // Nor is the architecture a model: registered bare, it would accept every training.
    let arch = VerifierFolder::open(&a_dir)
        .unwrap()
        .architecture_id
        .unwrap();
    let arch: [u8; 32] = hex::decode(arch).unwrap().try_into().unwrap();
    let n = a.instances.len() as u32;
    let out = chain.register_full(arch, a.num_inputs, n, [0; 32], v);
    reverted_with_selector::<IModelRegistry::VerifierMismatch>(&out);
    let out = chain.register_weights(&a, [0; 32], v);
    reverted_with_selector::<IModelRegistry::VerifierMismatch>(&out);
    assert!(chain.register(&a, v).success());
    assert!(chain.register(&b, v).success());
    assert!(chain
        .verify_inference(a.id, &a.instances, &a.proof)
        .success());
    assert!(chain
        .verify_inference(b.id, &b.instances, &b.proof)
        .success());
    // The fine-tuned model's proof as the original's: a valid proof, other weights.
    let out = chain.verify_inference(a.id, &b.instances, &b.proof);
    reverted_with(
        &out,
        IModelRegistry::OtherWeights {
            modelId: a.id.into(),
            proven: *b.instances.last().unwrap(),
        },
    );
}

/// The k of a compiled folder's circuit.
fn circuit_k(dir: &Path) -> u32 {
    let s: zkinfer_circuits::artifacts::Settings =
        zkinfer_circuits::artifacts::read_json(&dir.join("settings.json")).unwrap();
    s.plan.k
}
