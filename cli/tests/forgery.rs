//! Forgers that hold only what an honest prover holds (the compiled folder, `pk.bin`,
//! `srs.bin`, `keys.json`; no trapdoor), kept here and maintained with the API.
//!
//! 1. Layout 1's Freivalds weight forgery: the forger lays its own model out (one weight
//!    value replaced wherever it occurs in a product by a constant factor) and proves it with
//!    the honest proving key. On layout 1 the constant entries sat in a fixed column the
//!    prover could not change, beside a free first-phase cell the gates added to them: the
//!    forger wrote `W' − W` there, and `zkinfer verify` printed `valid proof` for outputs of
//!    the other weights. On layout 2 every entry is a first-phase cell bound to the constants
//!    column, and the same forged witness is refused. The same program with no change makes
//!    a proof that verifies (the control).
//! 2. A sample of the lying prover's lies (an op lying about its output) proven with the
//!    honest proving key: the native verifier and the Solidity verifier reject each, and
//!    accept the honest proof made the same way.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{expect_failure, expect_success, p, zkinfer};
use zkinfer_circuits::artifacts::{files, in_dir, read_json, write_json, KeysInfo, ProofFile};
use zkinfer_circuits::field::to_hex;
use zkinfer_circuits::halo2_base::gates::circuit::CircuitBuilderStage;
use zkinfer_circuits::identity::VerifierFolder;
use zkinfer_circuits::testing::liar::{lying_circuit, OutputLie};
use zkinfer_circuits::{build_circuit, Fr, ModelCircuit};
use zkinfer_model::{QGraph, QOp};
use zkinfer_prover::{keys, pipeline, proving, srs};
use zkinfer_verifier::solidity;

fn fixture(name: &str) -> std::path::PathBuf {
    zkinfer_model::corpus::manifest_dir()
        .join("../model/tests/fixtures")
        .join(name)
}

/// What a prover holds: the folder's graph and settings, its proving key, SRS and break points.
struct Held {
    folder: pipeline::Folder,
    keys: KeysInfo,
    params: zkinfer_circuits::halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG<
        zkinfer_circuits::Bn256,
    >,
    pk: zkinfer_circuits::halo2_base::halo2_proofs::plonk::ProvingKey<zkinfer_circuits::G1Affine>,
}

fn held(dir: &Path) -> Held {
    let folder = pipeline::open(dir).unwrap();
    let keys: KeysInfo = read_json(&in_dir(dir, files::KEYS)).unwrap();
    let params = srs::load_trusted(&in_dir(dir, files::SRS)).unwrap();
    let pk = keys::pk_from_bytes(
        &std::fs::read(in_dir(dir, files::PK)).unwrap(),
        &folder.settings.plan,
    )
    .unwrap();
    Held {
        folder,
        keys,
        params,
        pk,
    }
}

impl Held {
    fn lay_out(&self, q: &QGraph, input: &[Vec<i64>]) -> (ModelCircuit, Vec<Fr>) {
        build_circuit(
            CircuitBuilderStage::Prover,
            &self.folder.settings.plan,
            Some(self.keys.break_points.clone()),
            q,
            input,
            Fr::zero(),
        )
        .unwrap()
    }

    /// Writes `PROOF.json` for a circuit the forger laid out, proven with the honest key.
    fn prove(&self, circuit: ModelCircuit, instances: &[Fr], out: &Path) {
        let proof = proving::prove_circuit(&self.params, &self.pk, circuit, instances).unwrap();
        let s = &self.folder.settings;
        let file = ProofFile {
            format_version: zkinfer_circuits::artifacts::FORMAT_VERSION,
            model_id: self.keys.model_id.clone(),
            input_visibility: s.plan.visibility,
            output_visibility: s.plan.output_visibility,
            inputs: s.inputs_from_instances(instances),
            outputs: s.outputs_from_instances(instances).unwrap(),
            output_shapes: s.output_shapes.clone(),
            instances: instances.iter().map(to_hex).collect(),
            proof: format!("0x{}", hex::encode(proof)),
            segments: Vec::new(),
        };
        write_json(out, &file).unwrap();
    }
}

/// The forger's own model: in the first Linear node that has one, a weight value `c` (neither
/// 0 nor 1) replaced by `c + d` wherever it occurs, so products sharing it stay shared.
fn other_weights(q: &QGraph, d: i64) -> QGraph {
    let mut forged = q.clone();
    for node in &mut forged.nodes {
        if let QOp::Linear { terms, .. } = &mut node.op {
            let taken: HashSet<i64> = terms.entries().iter().map(|t| t.2).collect();
            let Some(c) = terms
                .entries()
                .iter()
                .map(|t| t.2)
                .find(|&c| c != 0 && c != 1)
            else {
                continue;
            };
            assert!(d == 0 || !taken.contains(&(c + d)), "pick another d");
            for t in terms.entries_mut() {
                if t.2 == c {
                    t.2 = c + d;
                }
            }
            return forged;
        }
    }
    panic!("no Linear node with a weight to change")
}

/// The forgery, as a program: proves the model with one weight value moved by `d`. Returns
/// how many constant entries of Freivalds products its witness changes.
fn forge_weights(dir: &Path, input: &Path, d: i64, out: &Path) -> usize {
    let h = held(dir);
    let data = zkinfer_model::parse_input_json(&std::fs::read_to_string(input).unwrap()).unwrap();
    let qin = h.folder.settings.quantize_input(&data).unwrap();
    let forged_q = other_weights(&h.folder.q, d);
    let (honest, _) = h.lay_out(&h.folder.q, &qin);
    let (forged, instances) = h.lay_out(&forged_q, &qin);
    let changed = (0..forged.freivalds.rows())
        .filter(|&r| !forged.freivalds.is_copied(r))
        .filter(|&r| forged.freivalds.cell(r) != honest.freivalds.cell(r))
        .count();
    h.prove(forged, &instances, out);
    changed
}

fn compile_and_setup(model: &Path, dir: &Path, extra: &[&str]) {
    let input = model.parent().unwrap().join("input.json");
    let mut args = vec![
        "compile",
        p(model),
        "--calibration",
        p(&input),
        "--out",
        p(dir),
    ];
    args.extend_from_slice(extra);
    expect_success(&args);
    let settings = std::fs::read_to_string(dir.join("settings.json")).unwrap();
    assert!(
        settings.contains("\"freivalds\": true"),
        "the forgery needs a plan with Freivalds checks"
    );
    expect_success(&["setup", p(dir)]);
}

#[test]
fn the_freivalds_weight_forgery_is_refused_by_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let e = fixture("matmul_bias");
    let (model, input) = (e.join("network.onnx"), e.join("input.json"));
    let dir = tmp.path().join("m");
    compile_and_setup(
        &model,
        &dir,
        &["--max-proof-bytes", "5120", "--input-visibility", "public"],
    );
    let id = VerifierFolder::open(&dir).unwrap().model_id;
    let verify = |proof: &Path| {
        zkinfer(&[
            "verify",
            p(&dir),
            p(proof),
            "--model-id",
            &id,
            "--input",
            p(&input),
        ])
    };

    // The control: the forging program with no change proves what `run` computes.
    let control = tmp.path().join("control.json");
    assert_eq!(forge_weights(&dir, &input, 0, &control), 0);
    let out = verify(&control);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("valid proof"));

    // The forgery: other weights, other outputs; layout 2 refuses it.
    let forged = tmp.path().join("forged.json");
    assert!(forge_weights(&dir, &input, 3, &forged) > 0);
    let claimed: ProofFile = read_json(&forged).unwrap();
    let honest: ProofFile = read_json(&control).unwrap();
    assert_ne!(
        claimed.outputs, honest.outputs,
        "the forgery claims other outputs"
    );
    assert_eq!(claimed.inputs, honest.inputs);
    let out = verify(&forged);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid proof"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Solidity verifier (and the native one) reject the weight forgery and a sample of the
/// lying prover's lies, all proven with the honest proving key; they accept the honest proof
/// made the same way.
#[test]
fn forged_proofs_are_rejected_natively_and_on_the_evm() {
    let tmp = tempfile::tempdir().unwrap();
    let e = fixture("attention_products");
    let (model, input) = (e.join("network.onnx"), e.join("input.json"));
    let dir = tmp.path().join("m");
    // Private inputs and 4 outputs: a verifier well within EIP-170.
    compile_and_setup(
        &model,
        &dir,
        &["--max-proof-bytes", "4096", "--input-visibility", "private"],
    );
    let folder = VerifierFolder::open(&dir).unwrap();
    let verifier = solidity::build(&folder).unwrap();
    let verdicts = |proof: &Path| -> (bool, bool) {
        let native = zkinfer(&["verify", p(&dir), p(proof), "--model-id", &folder.model_id]);
        let loaded = zkinfer_verifier::load_proof(&folder, proof).unwrap();
        let evm = solidity::evm_verify(
            &verifier.compiled.bytecode,
            &solidity::calldata(&loaded.instances, &loaded.bytes),
        )
        .unwrap();
        (native.status.success(), evm.accepted)
    };

    let control = tmp.path().join("control.json");
    forge_weights(&dir, &input, 0, &control);
    assert_eq!(verdicts(&control), (true, true), "the honest proof");
    let forged = tmp.path().join("weights.json");
    assert!(forge_weights(&dir, &input, 2, &forged) > 0);
    assert_eq!(verdicts(&forged), (false, false), "the weight forgery");

    // Lies of the lying prover, each consistent in every copy, proven with the honest key.
    let h = held(&dir);
    let data = zkinfer_model::parse_input_json(&std::fs::read_to_string(&input).unwrap()).unwrap();
    let qin = h.folder.settings.quantize_input(&data).unwrap();
    let plan = h.folder.settings.plan.clone();
    let q = h.folder.q.clone();
    let out = *q.outputs.first().unwrap();
    let softmax = q
        .nodes
        .iter()
        .position(|n| matches!(n.op, QOp::Lookup { .. }))
        .expect("a function table (softmax's e^x)");
    for (what, lie) in [
        (
            "an output element + 1",
            OutputLie {
                node: out,
                elems: vec![0],
                delta: 1,
            },
        ),
        (
            "e^x looked up wrong",
            OutputLie {
                node: softmax,
                elems: vec![3],
                delta: -1,
            },
        ),
    ] {
        let (circuit, instances) = lying_circuit(&q, &qin, &plan, &lie).unwrap();
        let path = tmp.path().join("lie.json");
        h.prove(circuit, &instances, &path);
        assert_eq!(verdicts(&path), (false, false), "{what}");
    }
    // And the honest circuit laid out the lying prover's way is accepted: what rejects the
    // lies is the lie.
    let (circuit, instances) = lying_circuit(
        &q,
        &qin,
        &plan,
        &OutputLie {
            node: out,
            elems: vec![],
            delta: 0,
        },
    )
    .unwrap();
    let path = tmp.path().join("honest.json");
    h.prove(circuit, &instances, &path);
    assert_eq!(verdicts(&path), (true, true));
    expect_failure(
        &[
            "verify",
            p(&dir),
            p(&forged),
            "--model-id",
            &folder.model_id,
        ],
        "invalid proof",
    );
}
