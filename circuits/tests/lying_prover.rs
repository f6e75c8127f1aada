//! The lying prover (`zkinfer_circuits::testing::liar`) on small example models under every
//! layout family the planner can choose: every lie told must be rejected, and a sample of the
//! verdicts is confirmed by halo2's MockProver itself. The whole run over every example small
//! enough is `cargo run -p zkinfer-benches --bin lying_prover` (its table is in
//! `benches/LYING-PROVER.md`).

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::testing::liar::{self, Family, Options, Outcome, Report};
use zkinfer_circuits::testing::replay::mock_verdict;
use zkinfer_circuits::testing::trace::Trace;
use zkinfer_circuits::{build_circuit, plan_circuit, Io, PlanLimits, Visibility};
use zkinfer_model::{load_onnx_with, parse_input_json, quantize, QGraph, QuantizeOptions, Weights};

fn load(dir: &std::path::Path) -> (QGraph, Vec<Vec<i64>>) {
    load_with(dir, Weights::Fixed)
}

fn load_with(dir: &std::path::Path, weights: Weights) -> (QGraph, Vec<Vec<i64>>) {
    let graph = load_onnx_with(&dir.join("network.onnx"), weights).unwrap();
    let input =
        parse_input_json(&std::fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
    let q = quantize(&graph, &input, &QuantizeOptions::default()).unwrap();
    let qi = q.quantize_input(&input).unwrap();
    (q, qi)
}

fn example(name: &str) -> (QGraph, Vec<Vec<i64>>) {
    load(&zkinfer_model::corpus::example_dir(name))
}

fn fixture(name: &str) -> (QGraph, Vec<Vec<i64>>) {
    load(
        &zkinfer_model::corpus::manifest_dir()
            .join("../model/tests/fixtures")
            .join(name),
    )
}

/// The smallest plan of `q` with Freivalds checks and two-term dot-product rows.
fn freivalds_plan(q: &QGraph, qi: &[Vec<i64>], io: Io) -> zkinfer_circuits::CircuitPlan {
    (8..=16)
        .find_map(|k| liar::plan_for(q, qi, io, k, 2, true).ok())
        .expect("a Freivalds plan within k = 16")
}

#[track_caller]
fn no_survivors(what: &str, r: &Report) {
    let survivors: Vec<String> = r
        .survivors()
        .iter()
        .map(|v| format!("{} ({}): {:?}", v.lie, v.family.name(), v.outcome))
        .collect();
    assert!(survivors.is_empty(), "{what}: {survivors:#?}");
    assert!(r.slack.is_empty(), "{what}: slack cells {:?}", r.slack);
    for f in [Family::OpOutput, Family::OtherModel, Family::AnyCell] {
        let t = r.tally(f);
        assert!(t.told > 0, "{what}: no {} lie was told", f.name());
    }
}

#[test]
fn every_lie_is_rejected_under_each_layout_family() {
    let opts = Options::default();
    // The default plans: public, private and hashed inputs, public and hashed outputs (the
    // packing and Poseidon cells then among every cell moved), dot-product columns.
    let hashed = Io::new(Visibility::Hashed, Visibility::Hashed);
    for (name, ios) in [
        (
            "1l_mlp",
            &[Io::PUBLIC, Io::inputs(Visibility::Private), hashed][..],
        ),
        ("2l_relu_fc", &[Io::PUBLIC, Io::inputs(Visibility::Private)]),
        ("1l_sigmoid", &[Io::PUBLIC, hashed]),
    ] {
        let (q, qi) = example(name);
        for &io in ios {
            let plan = plan_circuit(&q, &qi, io, PlanLimits::default()).unwrap();
            let r = liar::run(&q, &qi, &plan, &opts);
            no_survivors(&format!("{name} {io:?}"), &r);
        }
    }
    // Every dot product in halo2-base's gate (no lincomb columns).
    let (q, qi) = example("1l_mlp");
    let plan = liar::plan_for(&q, &qi, Io::PUBLIC, 8, 0, false).unwrap();
    assert_eq!(plan.params.lincomb_width, 0);
    no_survivors("1l_mlp gate only", &liar::run(&q, &qi, &plan, &opts));
    // Products checked by Freivalds' algorithm, with constant and variable right factors.
    let (q, qi) = fixture("attention_products");
    let plan = freivalds_plan(&q, &qi, Io::inputs(Visibility::Private));
    assert!(plan.params.freivalds && plan.freivalds_rows > 0);
    no_survivors(
        "attention_products, Freivalds",
        &liar::run(&q, &qi, &plan, &opts),
    );
}

/// A causal mask as exported (`masked_fill(future, -inf)`): the softmax over the kept entries
/// and the exact zeros put back in place are ordinary regions, each within reach: every op's
/// lie (the masked outputs' zeros included) and every cell moved are rejected.
#[test]
fn masked_softmax_is_within_the_lying_provers_reach() {
    let (q, qi) = fixture("causal_where_inf");
    let plan = plan_circuit(&q, &qi, Io::PUBLIC, PlanLimits::default()).unwrap();
    no_survivors(
        "causal_where_inf",
        &liar::run(&q, &qi, &plan, &Options::default()),
    );
}

/// Committed weights (`--weights hashed`): each a private witness, range-checked, under the
/// weight commitment. The forger's own weights (the verifier holding the registered
/// commitment), every op's lie and every cell moved are rejected, also where a product by a
/// committed factor is checked by Freivalds' algorithm (a variable right factor).
#[test]
fn committed_weights_are_within_the_lying_provers_reach() {
    let opts = Options::default();
    let hashed = |name: &str| load_with(&zkinfer_model::corpus::example_dir(name), Weights::Hashed);
    for name in ["1l_mlp", "1l_conv", "2l_relu_sigmoid_conv"] {
        let (q, qi) = hashed(name);
        assert!(q.hashes_weights(), "{name}");
        let mut plans = vec![plan_circuit(&q, &qi, Io::PUBLIC, PlanLimits::default()).unwrap()];
        if name == "2l_relu_sigmoid_conv" {
            let plan = freivalds_plan(&q, &qi, Io::inputs(Visibility::Private));
            assert!(plan.params.freivalds && plan.freivalds_rows > 0);
            plans = vec![plan];
        }
        for plan in plans {
            let r = liar::run(&q, &qi, &plan, &opts);
            let what = format!("{name} hashed weights, {}", plan.columns());
            no_survivors(&what, &r);
            let weight_lies: Vec<_> = r
                .verdicts
                .iter()
                .filter(|v| v.lie.contains("committed weight"))
                .collect();
            assert!(!weight_lies.is_empty(), "{what}");
            for v in weight_lies {
                assert!(matches!(v.outcome, Outcome::Rejected(_)), "{what}: {v:?}");
            }
        }
    }
}

/// The checker the lying prover uses names what MockProver names: the honest witness and a
/// sample of lies (spliced onto the honest keys) are replayed into halo2's MockProver.
#[test]
fn the_checker_agrees_with_mock_prover() {
    let (q, qi) = example("1l_mlp");
    let plan = plan_circuit(&q, &qi, Io::PUBLIC, PlanLimits::default()).unwrap();
    let (circuit, instances) =
        build_circuit(CircuitBuilderStage::Mock, &plan, None, &q, &qi, Fr::zero()).unwrap();
    let mut honest = Trace::record(&circuit, plan.k, &instances);
    assert!(honest.rejections().is_empty());
    let v = mock_verdict(&honest, &plan.params);
    assert!(v.is_empty(), "{v:?}");
    let cells = honest.assigned_cells();
    let mut checked = 0;
    for &at in cells.iter().step_by(cells.len() / 25 + 1) {
        let mut t = honest.clone();
        let v = t.get(at);
        t.set(
            at,
            v + halo2_base::halo2_proofs::halo2curves::bn256::Fr::one(),
        );
        let ours = t.rejections();
        assert!(!ours.is_empty(), "{at:?}");
        assert_eq!(ours, mock_verdict(&t, &plan.params), "{at:?}");
        checked += 1;
    }
    assert!(checked >= 20);
}

/// With the Freivalds region's constant entries left unbound (layout 1 in effect) the lying
/// prover finds the weight forgery by itself: a weight of the prover's own model survives,
/// and the slack audit lists the constant rows' free cells. On layout 2 the same lies are
/// rejected by the copy constraint binding each entry to the constants column.
#[test]
fn the_lying_prover_finds_the_layout_1_forgery_by_itself() {
    let (q, qi) = fixture("attention_products");
    let plan = freivalds_plan(&q, &qi, Io::inputs(Visibility::Private));
    let mut opts = Options {
        families: vec![Family::OtherModel],
        layout_1: true,
        ..Options::default()
    };
    let old = liar::run(&q, &qi, &plan, &opts);
    let survivors = old.survivors();
    assert!(!survivors.is_empty(), "{:#?}", old.verdicts);
    assert!(
        survivors.iter().all(|v| v.lie.contains("weight")),
        "{survivors:#?}"
    );
    assert!(!old.slack.is_empty());
    opts.layout_1 = false;
    let new = liar::run(&q, &qi, &plan, &opts);
    assert!(new.survivors().is_empty(), "{:#?}", new.survivors());
    assert!(new.slack.is_empty());
    for v in &new.verdicts {
        if survivors.iter().any(|s| s.lie == v.lie) {
            assert!(
                matches!(&v.outcome, Outcome::Rejected(by) if by.iter().any(|b| b.short_name() == "copy")),
                "{}: {:?}",
                v.lie,
                v.outcome
            );
        }
    }
}

/// A strided convolution reads only part of the activation before it: the elements nothing
/// reads are not laid out (46 ReLU outputs of 4l_relu_conv_fc before layout 2, each pinned
/// by nothing but the gate computing it), so the slack audit finds no cell.
#[test]
fn elements_nothing_reads_are_not_laid_out() {
    let (q, qi) = example("4l_relu_conv_fc");
    let plan = plan_circuit(
        &q,
        &qi,
        Io::inputs(Visibility::Private),
        PlanLimits::default(),
    )
    .unwrap();
    let opts = Options {
        families: Vec::new(),
        ..Options::default()
    };
    let r = liar::run(&q, &qi, &plan, &opts);
    assert!(r.slack.is_empty(), "{:?}", r.slack);
    assert_eq!(r.unread, 0);
}

/// A model cut into segments: each segment's circuit, its links (salted commitments to the
/// tensors it reads from and hands to other segments) among its cells, rejects every lie of
/// its ops, of the forger's own model and of every cell moved.
#[test]
fn segments_are_within_the_lying_provers_reach() {
    let (q, qi) = example("2l_relu_sigmoid_conv");
    let trace = q.eval(&qi).unwrap();
    // Cut before the last product, so both segments have weights a forger could swap.
    let last = q
        .nodes
        .iter()
        .rposition(|n| matches!(n.op, zkinfer_model::QOp::Linear { .. }))
        .unwrap();
    let cut = zkinfer_model::Cut { starts: vec![last] };
    let segments = q.segments(&cut).unwrap();
    for (s, seg) in segments.iter().enumerate() {
        let io = Io {
            links: zkinfer_circuits::Links {
                inputs: seg.boundary_in.len(),
                outputs: seg.boundary_out.len(),
            },
            ..Io::PUBLIC
        };
        assert!(!io.links.is_empty());
        let ins = seg.inputs_from(&q, &trace);
        let plan = plan_circuit(&seg.graph, &ins, io, PlanLimits::default()).unwrap();
        no_survivors(
            &format!("2l_relu_sigmoid_conv segment {s}"),
            &liar::run(&seg.graph, &ins, &plan, &Options::default()),
        );
    }
}
