//! A model proven as segments: compile --segments, setup, prove and verify through the CLI,
//! and every way of tampering with the chain refused (a segment's proof from another input,
//! a link commitment changed on one side or on both, a segment dropped or reordered, the
//! model's values or the wiring changed).

mod common;

use std::path::Path;

use common::{compile_and_setup, example, expect_failure, expect_success, p};
use serde_json::Value;

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
}
