//! Encrypted inference on the digits MLP (64→16→10): accuracy on 100 held-out digits, seconds
//! per sample, per bootstrap and per neuron, key and ciphertext sizes, beside Concrete ML.
//!
//! `cargo bench -p zkinfer-fhe --bench fhe -- [RUNS]` (default 20 encrypted runs per program).

use std::path::Path;
use std::time::Instant;

use zkinfer_fhe::{argmax, compile, ClientSide, FheOptions, FheProgram, ParamSet, ServerSide};
use zkinfer_model::{load_onnx, parse_calibration_json, Op};

struct Row {
    name: String,
    bootstraps: usize,
    accuracy: f64,
    agreement: f64,
    keygen_s: f64,
    client_key: usize,
    server_key: usize,
    input_bytes: usize,
    result_bytes: usize,
    runs: usize,
    mismatches: usize,
    sample_s: f64,
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/digits_16");
    let graph = load_onnx(&dir.join("network.onnx")).expect("model");
    let samples =
        parse_calibration_json(&std::fs::read_to_string(dir.join("calibration.json")).unwrap())
            .unwrap();
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("test.json")).unwrap()).unwrap();
    let xs: Vec<Vec<f64>> = test["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect();
    let labels: Vec<usize> = test["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let float_pred: Vec<usize> = test["float_predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let float_acc = float_pred
        .iter()
        .zip(&labels)
        .filter(|(a, b)| a == b)
        .count() as f64
        / labels.len() as f64;
    // A neuron is an activation element or an output element (Gemm's bias is a second linear
    // node, so counting linear nodes would count each neuron twice).
    let neurons: usize = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Unary { .. } | Op::Extremum { .. }))
        .map(|n| n.len())
        .sum::<usize>()
        + graph
            .outputs
            .iter()
            .map(|&o| graph.nodes[o].len())
            .sum::<usize>();

    let configs: Vec<(String, FheOptions)> = vec![
        ("m3c3, searched".into(), FheOptions::default()),
        (
            "m3c3, 4 groups".into(),
            FheOptions {
                groups: Some(4),
                ..FheOptions::default()
            },
        ),
        (
            "m3c3, 1 group".into(),
            FheOptions {
                groups: Some(1),
                ..FheOptions::default()
            },
        ),
        (
            "m2c2, searched".into(),
            FheOptions {
                params: ParamSet::M2C2,
                ..FheOptions::default()
            },
        ),
    ];
    let mut rows = Vec::new();
    for (name, opts) in configs {
        let c = compile(&graph, &samples, &opts).expect("compiles");
        let p = &c.program;
        let pred: Vec<usize> = xs
            .iter()
            .map(|x| argmax(&p.run_clear(std::slice::from_ref(x)).unwrap().1[0]))
            .collect();
        let accuracy =
            pred.iter().zip(&labels).filter(|(a, b)| a == b).count() as f64 / labels.len() as f64;
        let agreement = pred.iter().zip(&float_pred).filter(|(a, b)| a == b).count() as f64
            / labels.len() as f64;
        eprintln!(
            "{name}: {}-bit inputs, {}-bit activations, {} group(s), {} bootstraps; simulated accuracy {accuracy:.2}",
            c.chosen.input_bits, c.chosen.act_bits, c.chosen.groups, p.stats().bootstraps
        );
        rows.push(measure(&name, p, &xs, runs, accuracy, agreement));
    }
    println!("\nDigits MLP 64→16→10 ({neurons} neurons), float accuracy {float_acc:.2} on the same 100 digits; {runs} encrypted runs per program");
    println!("\n| program | bootstraps | accuracy (100 digits) | agreement with float | s/sample | s/neuron | s/bootstrap | keygen s | client key | server key (compressed) | input ct | result ct | runs = simulate |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {:.1} | {} | {} | {} | {} | {}/{} |",
            r.name,
            r.bootstraps,
            r.accuracy,
            r.agreement,
            r.sample_s,
            r.sample_s / neurons as f64,
            r.sample_s / r.bootstraps.max(1) as f64,
            r.keygen_s,
            mb(r.client_key),
            mb(r.server_key),
            kb(r.input_bytes),
            kb(r.result_bytes),
            r.runs - r.mismatches,
            r.runs
        );
    }
    println!("| Concrete ML 1.9 (measured here before, after its pruning) | | 0.50–0.69 | | 3–4.4 | | | | | | | | |");
}

fn mb(b: usize) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

fn kb(b: usize) -> String {
    format!("{:.1} KB", b as f64 / 1e3)
}

fn measure(
    name: &str,
    p: &FheProgram,
    xs: &[Vec<f64>],
    runs: usize,
    accuracy: f64,
    agreement: f64,
) -> Row {
    let t = Instant::now();
    let pair = ClientSide::generate(p).expect("keygen");
    let keygen_s = t.elapsed().as_secs_f64();
    let server = ServerSide::load(p.clone(), &pair.server_key, "server.key").expect("server key");
    let (mut mismatches, mut secs, mut input_bytes, mut result_bytes) = (0, 0.0, 0, 0);
    for (k, x) in xs.iter().take(runs).enumerate() {
        let input = [x.clone()];
        let ct = pair.client.encrypt(&input).unwrap();
        let (result, report) = server.run(&ct, "ct", &|_, _| {}).unwrap();
        let (ints, _) = pair.client.decrypt(&result, "result").unwrap();
        let (want, _) = p.run_clear(&input).unwrap();
        if ints != want {
            mismatches += 1;
            eprintln!("{name}: sample {k}: decrypted {ints:?} != simulated {want:?}");
        }
        secs += report.seconds;
        input_bytes = ct.len();
        result_bytes = result.len();
        eprintln!("{name}: run {}/{runs}: {:.2}s", k + 1, report.seconds);
    }
    Row {
        name: name.to_string(),
        bootstraps: p.stats().bootstraps,
        accuracy,
        agreement,
        keygen_s,
        client_key: pair.client_key_bytes,
        server_key: pair.server_key.len(),
        input_bytes,
        result_bytes,
        runs,
        mismatches,
        sample_s: secs / runs.max(1) as f64,
    }
}
