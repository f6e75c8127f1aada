//! The cost of committing to inputs and outputs: each model compiled with private inputs and
//! public outputs, then with both hashed; set up and proven on its own input. Prints a markdown
//! row per case and the cost per value hashed (cells, lookup cells, prove time).
//!
//!   cargo run --release -p zkinfer-benches --bin commit_cost [MODEL...]
//!
//! Default models: digits_mlp (this repository's example), 4l_relu_conv_fc and lenet_5.

use std::path::PathBuf;
use std::time::Instant;

use zkinfer_circuits::artifacts::Settings;
use zkinfer_circuits::{Io, Visibility};
use zkinfer_model::corpus::example_dir;
use zkinfer_prover::pipeline::{self, CompileOptions};

fn model_dir(name: &str) -> PathBuf {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    if shipped.exists() {
        shipped
    } else {
        example_dir(name)
    }
}

struct Case {
    settings: Settings,
    prove_s: f64,
}

fn case(name: &str, io: Io, dir: &std::path::Path) -> Case {
    let e = model_dir(name);
    let input = e.join("input.json");
    let opts = CompileOptions {
        io,
        ..Default::default()
    };
    let settings =
        pipeline::compile(&e.join("network.onnx"), &input, dir, &opts).expect("compiles");
    pipeline::setup(dir, None).expect("sets up");
    // The best of two proofs: the first also pages the keys in.
    let mut prove_s = f64::MAX;
    for _ in 0..2 {
        let t = Instant::now();
        pipeline::prove(dir, &input).expect("proves");
        prove_s = prove_s.min(t.elapsed().as_secs_f64());
    }
    Case { settings, prove_s }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let models: Vec<&str> = if args.is_empty() {
        vec!["digits_mlp", "4l_relu_conv_fc", "lenet_5"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let work = std::env::temp_dir().join(format!("zkinfer-commit-cost-{}", std::process::id()));
    println!("| model | inputs / outputs | values hashed | values per limb | public values | k | columns | gate cells | lookup cells | prove s | per value hashed: cells, lookup cells, prove ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for name in models {
        let plain = Io::inputs(Visibility::Private);
        let hashed = Io::new(Visibility::Hashed, Visibility::Hashed);
        let a = case(name, plain, &work.join(format!("{name}-private")));
        let b = case(name, hashed, &work.join(format!("{name}-hashed")));
        let n: usize = a
            .settings
            .input_shapes
            .iter()
            .chain(&a.settings.output_shapes)
            .map(|s| s.iter().product::<usize>())
            .sum();
        for (c, what) in [(&a, "private / public"), (&b, "hashed / hashed")] {
            let p = &c.settings.plan;
            let per = if std::ptr::eq(c, &b) {
                format!(
                    "{:.1}, {:.2}, {:.2}",
                    (b.settings.plan.advice_cells as f64 - a.settings.plan.advice_cells as f64)
                        / n as f64,
                    (b.settings.plan.lookup_cells as f64 - a.settings.plan.lookup_cells as f64)
                        / n as f64,
                    (b.prove_s - a.prove_s) * 1e3 / n as f64
                )
            } else {
                "—".into()
            };
            println!(
                "| {name} | {what} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {per} |",
                if std::ptr::eq(c, &b) {
                    n.to_string()
                } else {
                    "0".into()
                },
                b.settings.input_layout(0).per_limb(),
                p.num_instances,
                p.k,
                p.columns(),
                p.advice_cells,
                p.lookup_cells,
                c.prove_s
            );
        }
        let _ = std::fs::remove_dir_all(&work);
    }
}
