//! The Solidity verifier's code size against its circuit's shape: example models laid out at
//! several k, lincomb widths, with and without Freivalds checks, with hashed, private and
//! public inputs; each set up on a development SRS, its verifier generated and compiled
//! (solcjs, unoptimized, as `evm-verifier` compiles one that fits), beside
//! [`verifier_shape`]'s counts and [`verifier_code_bytes`]'s estimate. What the estimate's
//! coefficients are fitted on; prints one markdown row per shape.
//!
//!   cargo run -p zkinfer-benches --bin verifier_size -- [MODEL...]
//!
//! Needs solcjs (scripts/install-solc.sh). Exit status 1 when a verifier the estimate puts
//! within EIP-170 is larger than estimated (`compile --fit-evm` could take it).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use zkinfer_circuits::cost::{
    constraint_system, verifier_code_bytes, verifier_shape, EIP_170_CODE_BYTES,
};
use zkinfer_circuits::testing::liar::plan_for;
use zkinfer_circuits::{Io, Visibility};
use zkinfer_model::corpus::example_dir;
use zkinfer_model::{load_onnx, parse_calibration_json, quantize, QuantizeOptions};
use zkinfer_verifier::solc::{self, Optimizer};
use zkinfer_verifier::solidity::{self, Info, CONTRACT, KIND_FIXED};

/// Small models that between them have every region: gates only, function tables (softmax,
/// sigmoid, LSTM), products worth a Freivalds check (MLPs, convolutions).
const MODELS: &[&str] = &[
    "1l_mlp",
    "2l_relu_fc",
    "1l_softmax",
    "1l_conv",
    "lstm",
    "4l_relu_conv_fc",
];

/// Proof points past which verifiers are far over EIP-170 (about 40 fill it).
const MAX_POINTS: usize = 60;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let models: Vec<&str> = if args.is_empty() {
        MODELS.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    println!(
        "| model | io | k | width | Freivalds | points | scalars | vk points | extra lookup inputs | challenges | public values | code bytes | estimate | estimate − code | s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut srs = BTreeMap::new();
    let mut under = 0;
    for name in models {
        let dir = example_dir(name);
        let graph = load_onnx(&dir.join("network.onnx")).expect("imports");
        let text = std::fs::read_to_string(dir.join("input.json")).expect("input.json");
        let samples = parse_calibration_json(&text).expect("parses");
        let q = quantize(&graph, &samples[0], &QuantizeOptions::default()).expect("quantizes");
        let qi = q.quantize_input(&samples[0]).expect("input");
        let mut seen = BTreeSet::new();
        for (io, io_name) in [
            (Io::new(Visibility::Hashed, Visibility::Hashed), "hashed"),
            (Io::inputs(Visibility::Private), "private"),
            (Io::PUBLIC, "public"),
        ] {
            for width in [0, 1, 3, 6] {
                for freivalds in [false, true] {
                    // From the least k a shape fits at (the most gate columns) on.
                    let Some(least) =
                        (6..=17).find(|&k| plan_for(&q, &qi, io, k, width, freivalds).is_ok())
                    else {
                        continue;
                    };
                    for k in least..=17 {
                        let Ok(plan) = plan_for(&q, &qi, io, k, width, freivalds) else {
                            continue;
                        };
                        let shape = (
                            io_name,
                            plan.params.lincomb_width,
                            plan.params.freivalds,
                            plan.params.base.num_advice_per_phase.clone(),
                            plan.params.base.num_fixed,
                        );
                        if !seen.insert(shape) {
                            continue;
                        }
                        if plan.num_instances > 120 || (freivalds && !plan.params.freivalds) {
                            continue;
                        }
                        let cs = constraint_system(&plan.params);
                        let estimate = verifier_code_bytes(&cs, plan.num_instances);
                        // Only the estimate near EIP-170 decides anything; solcjs runs out of
                        // memory on verifiers of dozens of columns.
                        if verifier_shape(&cs, plan.num_instances).points > MAX_POINTS {
                            continue;
                        }
                        let t = Instant::now();
                        let params = srs
                            .entry(k)
                            .or_insert_with(|| zkinfer_prover::srs::generate(k).expect("srs"));
                        let (pk, _) =
                            zkinfer_prover::keys::generate(params, &plan, &q, &qi).expect("keys");
                        let info = Info {
                            model_id: "00",
                            num_instances: plan.num_instances,
                            num_inputs: 0,
                            kind: KIND_FIXED,
                        };
                        let source =
                            solidity::source_of(params, pk.get_vk(), &info).expect("source");
                        let code = match solc::compile_one(
                            "Verifier.sol",
                            &source,
                            CONTRACT,
                            Optimizer::Off,
                        ) {
                            Ok(c) => c.deployed.len(),
                            Err(e) => {
                                eprintln!("{name} {io_name} k={k}: solc failed: {e}");
                                continue;
                            }
                        };
                        let s = verifier_shape(&cs, plan.num_instances);
                        // Where the estimate keeps within EIP-170, the verifier must.
                        if estimate < code && estimate <= EIP_170_CODE_BYTES {
                            under += 1;
                        }
                        println!(
                            "| {name} | {io_name} | {k} | {} | {} | {} | {} | {} | {} | {} | {} | {code} | {estimate} | {} | {:.0} |",
                            plan.params.lincomb_width,
                            if plan.params.freivalds { "yes" } else { "no" },
                            s.points,
                            s.scalars,
                            s.vk_points,
                            s.extra_lookup_inputs,
                            s.challenges,
                            s.instances,
                            estimate as i64 - code as i64,
                            t.elapsed().as_secs_f64()
                        );
                    }
                }
            }
        }
    }
    if under > 0 {
        eprintln!("{under} shapes' verifiers are larger than estimated");
        std::process::exit(1);
    }
}
