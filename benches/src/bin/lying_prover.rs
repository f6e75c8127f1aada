//! The lying prover over whole models: every example of `../shared/ezkl-examples` whose
//! default circuit MockProver can take (k ≤ 16), and the per-op fixtures of
//! `model/tests/fixtures`, under each layout family the planner can choose (the default shape
//! with public and with private inputs, `--optimize evm-gas`'s single gate column, Freivalds
//! checks forced on where a product shares a factor). Prints one markdown row per circuit:
//! lies told per family, rejected, survivors, slack cells, and the constraints that rejected.
//!
//!   cargo run -p zkinfer-benches --bin lying_prover -- [--layout-1] [--max-k K] [MODEL...]
//!
//! `--layout-1` lays Freivalds products out as layout 1 did (constant rows without the
//! `freivalds constant` gate): what the lying prover finds there. Exit status 1 when any lie
//! survives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use zkinfer_circuits::testing::liar::{self, Family, Options, Report};
use zkinfer_circuits::{plan_circuit, CircuitPlan, Io, Objective, PlanLimits, Visibility};
use zkinfer_model::corpus::{example_dir, manifest_dir};
use zkinfer_model::{load_onnx, parse_calibration_json, quantize, QGraph, QuantizeOptions};

/// Examples in corpus order of size; those over `--max-k` are skipped at planning.
const EXAMPLES: &[&str] = &[
    "1l_linear",
    "1l_mlp",
    "1l_relu",
    "1l_reshape",
    "1l_slice",
    "1l_conv",
    "1l_div",
    "1l_pad",
    "1l_leakyrelu",
    "1l_batch_norm",
    "1l_average",
    "1l_max_pool",
    "1l_concat",
    "1l_mean",
    "1l_sqrt",
    "1l_sigmoid",
    "1l_tanh",
    "1l_gelu_noappx",
    "1l_softmax",
    "2l_relu_fc",
    "clip",
    "max",
    "exp",
    "log",
    "layernorm",
    "rnn",
    "gru",
    "lstm",
    "ltsf",
    "accuracy",
    "4l_relu_conv_fc",
    "3l_relu_conv_fc",
    "2l_relu_sigmoid_conv",
    "large_mlp",
    "variable_cnn",
];

fn load(dir: &Path) -> Option<(QGraph, Vec<Vec<i64>>)> {
    let graph = load_onnx(&dir.join("network.onnx")).ok()?;
    let samples =
        parse_calibration_json(&std::fs::read_to_string(dir.join("input.json")).ok()?).ok()?;
    let q = quantize(&graph, &samples[0], &QuantizeOptions::default()).ok()?;
    let qi = q.quantize_input(&samples[0]).ok()?;
    Some((q, qi))
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = Options::default();
    if let Some(i) = args.iter().position(|a| a == "--layout-1") {
        opts.layout_1 = true;
        args.remove(i);
    }
    let mut max_k = 16;
    if let Some(i) = args.iter().position(|a| a == "--max-k") {
        max_k = args[i + 1].parse().expect("--max-k K");
        args.drain(i..i + 2);
    }
    let fixtures = manifest_dir().join("../model/tests/fixtures");
    let mut subjects: Vec<(String, PathBuf)> = Vec::new();
    if args.is_empty() {
        for name in EXAMPLES {
            subjects.push((name.to_string(), example_dir(name)));
        }
        let mut names: Vec<String> = std::fs::read_dir(&fixtures)
            .expect("model/tests/fixtures")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        for name in names {
            subjects.push((format!("fixture {name}"), fixtures.join(&name)));
        }
    } else {
        for name in &args {
            let dir = if example_dir(name).exists() {
                example_dir(name)
            } else {
                fixtures.join(name)
            };
            subjects.push((name.clone(), dir));
        }
    }
    println!(
        "| circuit | layout | k | op output: told / rejected / survived | other model: told / rejected / survived (skipped) | any cell: told / rejected / survived | slack cells (unread) | rejected by | s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut survivors = 0;
    let mut totals: BTreeMap<Family, (usize, usize, usize)> = BTreeMap::new();
    for (name, dir) in subjects {
        let Some((q, qi)) = load(&dir) else {
            eprintln!("{name}: not imported, skipped");
            continue;
        };
        for (layout, plan) in layouts(&q, &qi, max_k) {
            let t = Instant::now();
            let report = liar::run(&q, &qi, &plan, &opts);
            survivors += report.survivors().len();
            row(
                &name,
                &layout,
                &report,
                t.elapsed().as_secs_f64(),
                &mut totals,
            );
            if !report.slack.is_empty() {
                eprintln!(
                    "SLACK {name} [{layout}] {} cells, first (column, row): {:?}",
                    report.slack.len(),
                    &report.slack[..report.slack.len().min(12)]
                );
            }
            for v in report.survivors() {
                eprintln!("SURVIVOR {name} [{layout}] {}: {}", v.family.name(), v.lie);
            }
        }
    }
    for (f, (told, rejected, survived)) in &totals {
        println!(
            "\n{}: {told} lies told, {rejected} rejected, {survived} survived",
            f.name()
        );
    }
    if survivors > 0 {
        std::process::exit(1);
    }
}

/// The layout families of `q` within `max_k`, named.
fn layouts(q: &QGraph, qi: &[Vec<i64>], max_k: u32) -> Vec<(String, CircuitPlan)> {
    let mut out = Vec::new();
    let limits = PlanLimits {
        max_k,
        ..PlanLimits::default()
    };
    let hashed = Io::new(Visibility::Hashed, Visibility::Hashed);
    for (io, objective, name) in [
        (Io::PUBLIC, Objective::ProveTime, "default, public"),
        (
            Io::inputs(Visibility::Private),
            Objective::ProveTime,
            "default, private",
        ),
        (hashed, Objective::ProveTime, "default, hashed"),
        (Io::PUBLIC, Objective::EvmGas, "evm-gas (one gate column)"),
    ] {
        let limits = PlanLimits {
            objective,
            ..limits
        };
        if let Ok(plan) = plan_circuit(q, qi, io, limits) {
            let name = format!(
                "{name}{}{}",
                if plan.params.lincomb_width > 0 {
                    ", dot-product columns"
                } else {
                    ""
                },
                if plan.params.freivalds {
                    ", Freivalds"
                } else {
                    ""
                }
            );
            out.push((name, plan));
        }
    }
    // Freivalds forced on where a product shares a factor (the planner may prefer not to).
    if !out.iter().any(|(_, p)| p.params.freivalds) {
        if let Some(k) = out.first().map(|(_, p)| p.k) {
            for k in k..=max_k {
                if let Ok(plan) = liar::plan_for(q, qi, Io::PUBLIC, k, 2, true) {
                    if plan.params.freivalds {
                        out.push(("Freivalds forced, public".into(), plan));
                    }
                    break;
                }
            }
        }
    }
    out
}

fn row(
    name: &str,
    layout: &str,
    r: &Report,
    secs: f64,
    totals: &mut BTreeMap<Family, (usize, usize, usize)>,
) {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    let mut cols = Vec::new();
    for f in [Family::OpOutput, Family::OtherModel, Family::AnyCell] {
        let t = r.tally(f);
        for (k, v) in &t.by {
            *by.entry(k.clone()).or_default() += v;
        }
        let e = totals.entry(f).or_default();
        e.0 += t.told;
        e.1 += t.rejected;
        e.2 += t.survived;
        cols.push(if f == Family::OtherModel {
            format!(
                "{} / {} / {} ({})",
                t.told, t.rejected, t.survived, t.skipped
            )
        } else {
            format!("{} / {} / {}", t.told, t.rejected, t.survived)
        });
    }
    let by: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "| {name} | {layout} | {} | {} | {} | {} | {} ({}) | {} | {secs:.1} |",
        r.k,
        cols[0],
        cols[1],
        cols[2],
        r.slack.len(),
        r.unread,
        by.join(", ")
    );
}
