//! A model proven as segments: compile --segments (or a model over --max-prove-memory),
//! setup, prove and verify through the CLI, and every way of tampering with the chain refused
//! (a segment's proof from another input, a link commitment changed on one side or on both, a
//! segment dropped or reordered, the model's values or the wiring changed), natively and by
//! the registry on chain.

mod common;

use std::path::Path;

use common::{compile_and_setup, compile_example, example, expect_failure, expect_success, p};
use serde_json::Value;
use zkinfer_verifier::chain::{self, ChainOnEvm};
use zkinfer_verifier::segments::SegmentedVerifier;

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// `f` applied to a copy of the proof must make `verify` fail with `needle`.
fn refused(dir: &Path, proof: &Value, f: impl FnOnce(&mut Value), needle: &str) {
    let mut v = proof.clone();
    f(&mut v);
    let path = dir.join("tampered.json");
    write(&path, &v);
    expect_failure(&["verify", p(dir), p(&path)], needle);
}

const ONE: &str = "0x0000000000000000000000000000000000000000000000000000000000000001";

#[test]
fn segments_prove_verify_and_refuse_every_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let e = example("4l_relu_conv_fc");
    let input = e.join("input.json");
    expect_success(&[
        "compile",
        p(&e.join("network.onnx")),
        "--calibration",
        p(&input),
        "--out",
        p(&dir),
        "--segments",
        "3",
        "--no-fhe",
    ]);
    let inspect = expect_success(&["inspect", p(&dir)]);
    assert!(inspect.contains("segments         3"), "{inspect}");
    assert_eq!(inspect.matches("  segment ").count(), 3, "{inspect}");
    let setup = expect_success(&["setup", p(&dir)]);
    let model_id = setup
        .lines()
        .find_map(|l| l.strip_prefix("model id "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    // One SRS per k, made once: segments of the same k share it (here two of the three).
    let mut srs_of_k: std::collections::HashMap<u64, Vec<Vec<u8>>> = Default::default();
    for s in 0..3 {
        let seg = dir.join(format!("segment-{s}"));
        let k = read(&seg.join("settings.json"))["plan"]["k"]
            .as_u64()
            .unwrap();
        let srs = std::fs::read(seg.join("srs.bin")).unwrap();
        srs_of_k.entry(k).or_default().push(srs);
    }
    assert!(
        srs_of_k.values().any(|same_k| same_k.len() > 1),
        "{:?}",
        srs_of_k.keys()
    );
    for same_k in srs_of_k.values() {
        assert!(same_k.windows(2).all(|w| w[0] == w[1]));
    }

    // Two inputs: the second one's proofs are the forger's material.
    let other = tmp.path().join("other.json");
    let mut data = read(&input);
    for x in data["input_data"][0]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .step_by(7)
    {
        *x = Value::from(0.5);
    }
    write(&other, &data);
    let (a, b) = (tmp.path().join("a.json"), tmp.path().join("b.json"));
    expect_success(&["prove", p(&dir), "--input", p(&input), "--out", p(&a)]);
    // The second input's segments proven three at once.
    expect_success(&[
        "prove",
        p(&dir),
        "--input",
        p(&other),
        "--out",
        p(&b),
        "--jobs",
        "3",
    ]);
    for (proof, data) in [(&a, &input), (&b, &other)] {
        let out = expect_success(&[
            "verify",
            p(&dir),
            p(proof),
            "--model-id",
            &model_id,
            "--input",
            p(data),
        ]);
        assert!(out.contains("valid proof"), "{out}");
    }
    expect_failure(
        &["verify", p(&dir), p(&a), "--input", p(&other)],
        "another input",
    );
    let (pa, pb) = (read(&a), read(&b));
    assert_eq!(pa["segments"].as_array().unwrap().len(), 3);
    assert_ne!(
        pa["outputs"], pb["outputs"],
        "the two inputs differ in outputs"
    );
    // The proof's outputs are the reference evaluator's.
    let run: Value =
        serde_json::from_str(&expect_success(&["run", p(&dir), "--input", p(&input)])).unwrap();
    assert_eq!(run["outputs"], pa["outputs"]);

    // A segment's proof (with its instances) from the other input.
    for s in 0..3 {
        refused(
            &dir,
            &pa,
            |v| v["segments"][s] = pb["segments"][s].clone(),
            "do not link",
        );
    }
    // A link commitment changed on one side: the chain breaks.
    refused(
        &dir,
        &pa,
        |v| {
            let inst = v["segments"][1]["instances"].as_array_mut().unwrap();
            let last = inst.len() - 1;
            inst[last] = Value::from(ONE);
        },
        "do not link",
    );
    // Changed alike on both sides: the links match, the proofs do not.
    refused(
        &dir,
        &pa,
        |v| {
            let inst = v["segments"][1]["instances"].as_array_mut().unwrap();
            let last = inst.len() - 1;
            inst[last] = Value::from(ONE);
            v["segments"][2]["instances"][0] = Value::from(ONE);
        },
        "invalid proof",
    );
    // A segment dropped, or two swapped.
    refused(
        &dir,
        &pa,
        |v| {
            v["segments"].as_array_mut().unwrap().remove(1);
        },
        "2 segment proofs, the model has 3",
    );
    refused(
        &dir,
        &pa,
        |v| {
            v["segments"].as_array_mut().unwrap().swap(1, 2);
        },
        "out of order",
    );
    // The model's values: its instances, its outputs.
    refused(
        &dir,
        &pa,
        |v| v["outputs"] = pb["outputs"].clone(),
        "outputs",
    );
    refused(
        &dir,
        &pa,
        |v| v["instances"] = pb["instances"].clone(),
        "instances",
    );
    refused(
        &dir,
        &pa,
        |v| v["proof"] = Value::from("0x00"),
        "none in \"proof\"",
    );

    // The wiring is part of the model id: a folder whose segments.json links otherwise is
    // another model (and a wiring that does not connect is refused outright).
    let wiring = dir.join("segments.json");
    let honest = read(&wiring);
    let mut edited = honest.clone();
    edited["segments"][2]["boundary_in"][0] = Value::from(1);
    write(&wiring, &edited);
    expect_failure(&["verify", p(&dir), p(&a)], "segments.json");
    write(&wiring, &honest);
    expect_success(&["verify", p(&dir), p(&a), "--model-id", &model_id]);
}

#[test]
fn segments_refuse_what_they_do_not_support() {
    let tmp = tempfile::tempdir().unwrap();
    let e = example("1l_mlp");
    let base = |out: &Path| {
        vec![
            "compile".to_string(),
            p(&e.join("network.onnx")).to_string(),
            "--calibration".into(),
            p(&e.join("input.json")).to_string(),
            "--out".into(),
            p(out).to_string(),
            "--no-fhe".into(),
        ]
    };
    let out = tmp.path().join("m");
    let mut args = base(&out);
    args.extend([
        "--segments".into(),
        "2".into(),
        "--weights".into(),
        "hashed".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect_failure(&args, "fixed weights");
    let mut args = base(&out);
    args.extend(["--segments".into(), "1".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect_failure(&args, "two or more");
}

/// A model that does not fit `--max-prove-memory` is cut without `--segments`: the even cut
/// whose first segment is over is cut finer, a segment still over is split, and every segment
/// the folder holds is planned within the limit.
#[test]
fn a_model_over_the_memory_limit_is_cut_until_every_segment_fits() {
    use zkinfer_circuits::artifacts::segments::segment_dir;
    use zkinfer_prover::segments::open_segmented;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    // One circuit needs about 1.7 GiB, each half of two about 1.5 GiB.
    compile_example(
        "multihead_attention",
        &dir,
        &["--no-fhe", "--max-prove-memory", "1.2"],
    );
    let count = open_segmented(&dir).unwrap().file.segments.len();
    assert!(count >= 3, "{count} segments");
    for s in 0..count {
        let settings = read(&segment_dir(&dir, s).join("settings.json"));
        let bytes = settings["plan"]["prove_memory_bytes"].as_u64().unwrap();
        assert!(
            bytes as f64 <= 1.2 * (1u64 << 30) as f64,
            "segment {s} needs {bytes} bytes"
        );
    }
}

/// A private input two segments read (ltsf's input feeds its first layer and, as a residual,
/// a later one) is committed, salted, in each: a forger who proves the second segment on another input,
/// with the first segment's honest links, is refused, though every proof and link holds.
#[test]
fn a_private_input_read_by_two_segments_is_one_input() {
    use zkinfer_circuits::artifacts::segments::segment_dir;
    use zkinfer_circuits::artifacts::SegmentProof;
    use zkinfer_prover::pipeline::Prover;
    use zkinfer_prover::segments::open_segmented;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let e = example("ltsf");
    let input = e.join("input.json");
    compile_and_setup(
        "ltsf",
        &dir,
        &[
            "--segments",
            "3",
            "--input-visibility",
            "private",
            "--no-fhe",
        ],
    );
    let folder = open_segmented(&dir).unwrap();
    let readers = folder
        .file
        .segments
        .iter()
        .filter(|s| s.model_inputs == [0])
        .count();
    assert!(
        readers >= 2,
        "two segments read the input: {:?}",
        folder.file.segments
    );
    let salt = "0x5eed";
    let honest = tmp.path().join("proof.json");
    expect_success(&[
        "prove",
        p(&dir),
        "--input",
        p(&input),
        "--out",
        p(&honest),
        "--salt",
        salt,
    ]);
    expect_success(&["verify", p(&dir), p(&honest)]);

    // The forger keeps segment 0's honest proof and proves every later segment on another
    // input, each on the links the segments before it hand on: every link holds.
    let q = &folder.q;
    let data = zkinfer_model::parse_input_json(&std::fs::read_to_string(&input).unwrap()).unwrap();
    let qin = q.quantize_input(&data).unwrap();
    let trace = q.eval(&qin).unwrap();
    // What proving reads, segment by segment (no whole graph), is the whole graph's.
    let eval = zkinfer_prover::segments::Evaluation::new(&dir, &folder.file, &data).unwrap();
    assert_eq!(eval.qin, qin);
    assert_eq!(eval.outputs, q.outputs_of(&trace));
    for (s, entry) in folder.file.segments.iter().enumerate() {
        let whole =
            zkinfer_model::segment::inputs_of(q, &trace, &entry.model_inputs, &entry.boundary_in);
        assert_eq!(eval.segment_inputs[s], whole, "segment {s}");
    }
    let other: Vec<i64> = qin[0].iter().map(|&v| v / 2).collect();
    let mut known: std::collections::HashMap<usize, Vec<i64>> = folder.file.segments[0]
        .boundary_out
        .iter()
        .map(|&n| (n, trace.values[n].clone()))
        .collect();
    let dq = |v: &[i64]| v.iter().map(|&x| q.dequantize(x)).collect::<Vec<f64>>();
    let salt_fr = zkinfer_circuits::commit::parse_salt(salt).unwrap();
    let mut v = read(&honest);
    let mut last = None;
    for (s, seg) in folder.file.segments.iter().enumerate().skip(1) {
        let prover = Prover::load(&segment_dir(&dir, s)).unwrap();
        let ins: Vec<Vec<i64>> = seg
            .model_inputs
            .iter()
            .map(|_| other.clone())
            .chain(seg.boundary_in.iter().map(|n| known[n].clone()))
            .collect();
        let outs = prover
            .graph()
            .outputs_of(&prover.graph().eval(&ins).unwrap());
        for (&n, o) in seg
            .boundary_out
            .iter()
            .zip(&outs[seg.model_outputs.len()..])
        {
            known.insert(n, o.clone());
        }
        let floats: Vec<Vec<f64>> = ins.iter().map(|x| dq(x)).collect();
        let forged = prover.prove_salted(&floats, salt_fr).unwrap();
        v["segments"][s] = serde_json::to_value(SegmentProof {
            model_id: forged.model_id.clone(),
            instances: forged.instances.clone(),
            proof: forged.proof.clone(),
        })
        .unwrap();
        last = Some(forged);
    }
    let forged = last.unwrap();
    v["outputs"] = serde_json::to_value(&forged.outputs).unwrap();
    let n_out: usize = forged.outputs.iter().map(Vec::len).sum();
    let inst = &forged.instances;
    v["instances"] = serde_json::to_value(&inst[inst.len() - n_out..]).unwrap();
    let path = tmp.path().join("forged.json");
    write(&path, &v);
    expect_failure(&["verify", p(&dir), p(&path)], "proven on another input 0");

    // On chain, the same forgery: every segment proof valid, every link equal; the registry
    // refuses it because two segments committed to different inputs.
    let other_input = tmp.path().join("other.json");
    let mut data = read(&input);
    for x in data["input_data"][0].as_array_mut().unwrap().iter_mut() {
        *x = Value::from(x.as_f64().unwrap() / 2.0);
    }
    write(&other_input, &data);
    let second = tmp.path().join("second.json");
    expect_success(&[
        "prove",
        p(&dir),
        "--input",
        p(&other_input),
        "--out",
        p(&second),
        "--salt",
        salt,
    ]);
    let chain = on_chain(&dir, &honest, &second);
    let mut c = chain;
    let sv = SegmentedVerifier::open(&dir).unwrap();
    let forged = chain_proofs(&sv, &path);
    assert!(
        !c.verify(&sv.model_id, &forged).unwrap().success(),
        "another input"
    );
}

fn chain_proofs(v: &SegmentedVerifier, path: &Path) -> Vec<chain::SegmentProofValues> {
    chain::segment_proofs(v, path).unwrap()
}

/// 64 hex digits as a `bytes32`.
fn word(hex32: &str) -> alloy_sol_types::private::FixedBytes<32> {
    hex::decode(hex32).unwrap().as_slice().try_into().unwrap()
}

/// The registry's owner sends `data`, which must revert with the error `signature`.
fn owner_refused(c: &mut ChainOnEvm, data: &[u8], signature: &str) {
    let out = c
        .evm
        .call(
            zkinfer_verifier::evm::account(1),
            c.registry,
            data,
            30_000_000,
        )
        .unwrap();
    assert!(!out.success(), "{signature}");
    assert_eq!(
        out.output[..4],
        alloy_sol_types::private::keccak256(signature)[..4],
        "{signature}"
    );
}

alloy_sol_types::sol! {
    interface IRegister {
        function register(bytes32 modelId, address verifier, uint32 numInputs, uint32 numInstances, bytes32 weightCommitment, string metadataURI) external;
    }
}

/// The chain on chain: the registry recomputes the model id from the wiring and the segment
/// verifiers' ids, and `verifyChainInference` accepts `a`'s segment proofs and refuses a
/// segment proof from another input (each valid on its own: only the links refuse it), a
/// link changed, a segment dropped or two swapped.
fn on_chain(dir: &Path, a: &Path, b: &Path) -> ChainOnEvm {
    use alloy_sol_types::private::keccak256;
    use alloy_sol_types::{SolCall, SolValue};
    use zkinfer_verifier::evm::{account, U256};

    let v = SegmentedVerifier::open(dir).unwrap();
    let model_id = v.model_id.as_str();
    let out = expect_success(&["evm-verify", p(dir), p(a)]);
    assert!(out.starts_with("valid\n"), "{out}");
    assert!(out.contains(&format!("model id {model_id}")), "{out}");
    expect_failure(
        &["evm-verify", p(dir), p(a), "--bytecode", p(a)],
        "one per segment",
    );
    // What the chain would attest must be what the file says.
    let mut edited = read(a);
    let top = edited["instances"].as_array_mut().unwrap();
    let last = top.len() - 1;
    top[last] = Value::from(ONE);
    let edited_path = dir.join("edited.json");
    write(&edited_path, &edited);
    expect_failure(
        &["evm-verify", p(dir), p(&edited_path)],
        "top-level instances",
    );
    expect_failure(
        &["evm-calldata", p(dir), p(&edited_path)],
        "top-level instances",
    );

    let honest = chain::segment_proofs(&v, a).unwrap();
    let other = chain::segment_proofs(&v, b).unwrap();
    let calldata = expect_success(&["evm-calldata", p(dir), p(a)]);
    assert_eq!(
        calldata.trim(),
        format!(
            "0x{}",
            hex::encode(chain::chain_calldata(model_id, &honest).unwrap())
        )
    );

    let mut c = ChainOnEvm::deploy(&v).unwrap();
    let verifiers = c.verifiers.clone();
    let listed: Vec<String> = verifiers.iter().map(|a| a.to_string()).collect();
    let register = expect_success(&["evm-chain", p(dir), "--verifiers", &listed.join(",")]);
    assert_eq!(
        register.trim(),
        format!(
            "0x{}",
            hex::encode(chain::register_calldata(&v, &verifiers, "").unwrap())
        )
    );
    expect_failure(
        &["evm-chain", p(dir), "--verifiers", &listed[..2].join(",")],
        "2 verifier addresses for 3 segments",
    );
    // Verifiers out of order, or one missing: refused at registration.
    let mut swapped = verifiers.clone();
    swapped.swap(0, 1);
    assert!(!c.register(&v, &swapped).unwrap().success());
    assert!(!c.register(&v, &verifiers[..2]).unwrap().success());
    // Nothing is registered yet: the honest proofs are refused (unknown model).
    assert!(!c.verify(model_id, &honest).unwrap().success());
    // A wiring the files would refuse is refused by the registry too, before any id check:
    // outputs made private, a link out no segment reads, a link in no segment computes,
    // overlapping node ranges.
    let wiring_refused = |c: &mut ChainOnEvm, edit: &dyn Fn(&mut chain::Spec)| {
        let mut spec = chain::spec(&v.file).unwrap();
        edit(&mut spec);
        let call = chain::IChainRegistry::registerChainCall {
            modelId: word(model_id),
            verifiers: verifiers.clone(),
            spec,
            metadataURI: String::new(),
        };
        owner_refused(c, &call.abi_encode(), "BadWiring(uint256,string)");
    };
    wiring_refused(&mut c, &|s| s.outputVisibility = 1);
    wiring_refused(&mut c, &|s| {
        let last = s.segments[0].end - 1;
        if s.segments[0].linksOut.last() != Some(&last) {
            s.segments[0].linksOut.push(last);
        } else {
            let first = s.segments[0].first;
            s.segments[0].linksOut.insert(0, first);
        }
    });
    wiring_refused(&mut c, &|s| s.segments[2].linksIn.push(u32::MAX));
    wiring_refused(&mut c, &|s| s.segments[1].first = s.segments[0].first);
    // A segment's verifier is not a model: `register` refuses it (its proofs hold for any
    // tensor on its links).
    let seg0 = &v.segments[0];
    let single = IRegister::registerCall {
        modelId: word(&seg0.model_id),
        verifier: verifiers[0],
        numInputs: seg0.settings.num_input_instances() as u32,
        numInstances: seg0.settings.plan.num_instances as u32,
        weightCommitment: Default::default(),
        metadataURI: String::new(),
    };
    owner_refused(&mut c, &single.abi_encode(), "SegmentVerifier(address)");

    let registered = c.register(&v, &verifiers).unwrap();
    assert!(registered.success(), "{:?}", registered);
    assert!(
        !c.register(&v, &verifiers).unwrap().success(),
        "registered twice"
    );

    let ok = c.verify(model_id, &honest).unwrap();
    assert!(ok.success(), "{ok:?}");
    // The event carries the model's values: the proof file's top-level instances.
    let top: Vec<U256> = read(a)["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| U256::from_str_radix(x.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect();
    let n_in: usize = match v.file.input_visibility {
        zkinfer_circuits::Visibility::Private => 0,
        zkinfer_circuits::Visibility::Hashed => v.file.input_shapes.len(),
        zkinfer_circuits::Visibility::Public => v
            .file
            .input_shapes
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum(),
    };
    let data = &ok.logs.last().unwrap().data.data;
    assert_eq!(
        &data[..32],
        keccak256(top[..n_in].abi_encode_packed()).as_slice()
    );
    assert_eq!(
        &data[32..64],
        keccak256(top[n_in..].abi_encode_packed()).as_slice()
    );

    for s in 0..3 {
        let mut forged = honest.clone();
        forged[s] = other[s].clone();
        // Valid for its own verifier ...
        let (values, proof) = &forged[s];
        let direct = c
            .evm
            .call(
                account(3),
                c.verifiers[s],
                &zkinfer_verifier::solidity::calldata(values, proof),
                zkinfer_verifier::evm::VERIFY_GAS_CAP,
            )
            .unwrap();
        assert!(direct.success(), "segment {s}'s proof for the other input");
        // ... but not a link of this chain.
        assert!(
            !c.verify(model_id, &forged).unwrap().success(),
            "segment {s}"
        );
    }
    let mut forged = honest.clone();
    let last = forged[1].0.len() - 1;
    forged[1].0[last] = zkinfer_circuits::Fr::one();
    assert!(
        !c.verify(model_id, &forged).unwrap().success(),
        "link changed"
    );
    assert!(
        !c.verify(model_id, &honest[..2]).unwrap().success(),
        "dropped"
    );
    let mut reordered = honest.clone();
    reordered.swap(1, 2);
    assert!(
        !c.verify(model_id, &reordered).unwrap().success(),
        "reordered"
    );
    assert!(c.verify(model_id, &honest).unwrap().success());
    c
}
