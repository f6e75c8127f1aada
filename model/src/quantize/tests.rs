//! Quantization on small hand-built graphs: scales, fusion, ranges, tables.

use super::*;
use crate::graph::{ExtremumKind, Node};

fn node(op: Op, inputs: Vec<usize>, shape: Vec<usize>) -> Node {
    Node {
        name: "n".into(),
        source_op: "T".into(),
        op,
        inputs,
        shape,
    }
}

/// x (2) → Linear y = [0.75·x0 - 1.5·x1 + 0.25, 3·x0] → + [1, -2] → ReLU.
fn tiny() -> Graph {
    let lin = Op::Linear {
        terms: vec![vec![(0, 0, 0.75), (0, 1, -1.5)], vec![(0, 0, 3.0)]]
            .into_iter()
            .collect(),
        bias: vec![0.25, 0.0],
    };
    let add = Op::Linear {
        terms: vec![vec![(0, 0, 1.0)], vec![(0, 1, 1.0)]]
            .into_iter()
            .collect(),
        bias: vec![1.0, -2.0],
    };
    let relu = Op::Extremum {
        kind: ExtremumKind::Max,
        candidates: (0..2)
            .map(|i| vec![Src::Elem { slot: 0, idx: i }, Src::Const(0.0)])
            .collect(),
    };
    Graph {
        nodes: vec![
            node(Op::Input { index: 0 }, vec![], vec![2]),
            node(lin, vec![0], vec![2]),
            node(add, vec![1], vec![2]),
            node(relu, vec![2], vec![2]),
        ],
        inputs: vec![0],
        outputs: vec![3],
        ..Default::default()
    }
}

#[test]
fn coefficient_scales() {
    assert_eq!(coeff_scale([1.0f32, -2.0, 7.0].into_iter(), 13), 0);
    assert_eq!(coeff_scale([0.5f32, 3.0].into_iter(), 13), 1);
    assert_eq!(coeff_scale([0.75f32, -1.5].into_iter(), 13), 2);
    assert_eq!(coeff_scale([1.0f32 / 3.0].into_iter(), 13), 14);
    assert_eq!(coeff_scale([1.0f32 / 300.0].into_iter(), 13), 21);
    assert_eq!(coeff_scale([2.3f32].into_iter(), 13), 13);
}

#[test]
fn bias_add_fuses_and_eval_is_exact() {
    let opts = QuantizeOptions {
        scale: 4,
        param_scale: 8,
        range_headroom_bits: 2,
        ..QuantizeOptions::default()
    };
    let q = quantize(&tiny(), &[vec![1.0, 0.5]], &opts).unwrap();
    assert_eq!(q.nodes.len(), 3, "the bias add folded into the Linear");
    let QOp::Linear { terms, bias, shift } = &q.nodes[1].op else {
        panic!("linear")
    };
    assert_eq!(*shift, 2, "0.75 and 1.5 are exact at 2^-2");
    assert_eq!(terms.row(0), &[(0, 0, 3), (0, 1, -6)]);
    assert_eq!(terms.row(1), &[(0, 0, 12)]);
    // (0.25 + 1) · 2^(4+2) + half (2) = 82; -2 · 2^6 + 2 = -126.
    assert_eq!(bias, &vec![82, -126]);
    // x = (1, 0.5) → (16, 8): row0 = 82 + 48 - 48 = 82 → 82 >> 2 = 20; row1 = -126 + 192 = 66 → 16.
    let trace = q.eval(&[vec![16, 8]]).unwrap();
    assert_eq!(trace.values[1], vec![20, 16]);
    assert_eq!(trace.values[2], vec![20, 16]);
    // Negative pre-activations floor toward -inf, then ReLU clamps.
    let trace = q.eval(&[vec![-16, 16]]).unwrap();
    assert_eq!(
        trace.values[1],
        vec![(82 - 48 - 96) >> 2, (-126 - 192) >> 2]
    );
    assert_eq!(trace.values[2], vec![0, 0]);
}

#[test]
fn range_and_input_errors() {
    let opts = QuantizeOptions {
        scale: 4,
        param_scale: 8,
        range_headroom_bits: 2,
        ..QuantizeOptions::default()
    };
    let q = quantize(&tiny(), &[vec![1.0, 0.5]], &opts).unwrap();
    assert!(matches!(
        q.eval(&[vec![1 << 20, 0]]),
        Err(ModelError::OutOfRange { .. })
    ));
    assert!(matches!(
        q.quantize_input(&[vec![f64::NAN, 0.0]]),
        Err(ModelError::Input(_))
    ));
    assert!(matches!(
        q.quantize_input(&[vec![1.0]]),
        Err(ModelError::Input(_))
    ));
    assert!(matches!(
        q.quantize_input(&[vec![1e9, 0.0]]),
        Err(ModelError::OutOfRange { .. })
    ));
    assert!(matches!(
        quantize(&tiny(), &[vec![f64::INFINITY, 0.0]], &opts),
        Err(ModelError::Input(_))
    ));
    let mut g = tiny();
    if let Op::Linear { bias, .. } = &mut g.nodes[1].op {
        bias[0] = f32::NAN;
    }
    let r = quantize(&g, &[vec![1.0, 0.5]], &opts);
    assert!(matches!(r, Err(ModelError::TooLarge(_))), "{r:?}");
}

#[test]
fn ranges_cover_every_calibration_sample() {
    let opts = QuantizeOptions::default();
    let small = vec![vec![1.0, 0.5]];
    let large = vec![vec![40.0, -30.0]];
    let one = quantize(&tiny(), &small, &opts).unwrap();
    let both = quantize_samples(&tiny(), &[small.clone(), large.clone()], &opts).unwrap();
    // The same as calibrating on the large sample alone: the width follows the widest.
    let alone = quantize(&tiny(), &large, &opts).unwrap();
    assert_eq!(both.act_bits, alone.act_bits);
    assert!(
        both.act_bits > one.act_bits,
        "{} vs {}",
        both.act_bits,
        one.act_bits
    );
    // An input like the large sample is out of range for the small calibration only.
    let x = one.quantize_input(&large);
    let refused = x.and_then(|x| one.eval(&x));
    assert!(
        matches!(refused, Err(ModelError::OutOfRange { .. })),
        "{refused:?}"
    );
    both.eval(&both.quantize_input(&large).unwrap()).unwrap();
    assert!(matches!(
        quantize_samples(&tiny(), &[], &opts),
        Err(ModelError::Input(_))
    ));
    assert!(matches!(
        quantize_samples(&tiny(), &[small, vec![vec![1.0]]], &opts),
        Err(ModelError::Input(_))
    ));
}

fn unary(func: UnaryFn) -> Graph {
    Graph {
        nodes: vec![
            node(Op::Input { index: 0 }, vec![], vec![3]),
            node(Op::Unary { func }, vec![0], vec![3]),
        ],
        inputs: vec![0],
        outputs: vec![1],
        ..Default::default()
    }
}

fn table_of(q: &QGraph) -> &LookupTable {
    match &q.nodes[1].op {
        QOp::Lookup { table, .. } => table,
        op => panic!("expected a lookup, got {op:?}"),
    }
}

#[test]
fn lookup_tables_cover_the_activation_range_and_interpolate() {
    let opts = QuantizeOptions::default();
    let calib = [vec![-0.7, 0.1, 0.9]];
    let q = quantize(&unary(UnaryFn::Sigmoid), &calib, &opts).unwrap();
    let t = table_of(&q);
    // act_bits 20 (0.9 → 17 bits + sign, + 3 headroom, at least scale + 2): 2^12 steps.
    assert_eq!(q.act_bits, 20);
    assert_eq!(t.shift, q.act_bits - LOOKUP_TABLE_BITS);
    assert_eq!((t.lo, t.values.len()), (-(1 << 11), (1 << 12) + 1));
    // Interpolation between samples stays within 2 units of the exact value.
    for x in [-123_456i64, -1, 0, 1, 77_777, (1 << 19) - 1] {
        let exact = (UnaryFn::Sigmoid.apply(x as f64 / 65536.0) * 65536.0).round() as i64;
        let got = t.eval(x).unwrap();
        assert!((got - exact).abs() <= 2, "x {x}: {got} vs {exact}");
    }
    // The table doubles as the input's range check.
    assert_eq!(t.eval(1 << 19), None);
    assert!(matches!(
        q.eval(&[vec![0, 0, 1 << 19]]),
        Err(ModelError::OutOfRange { .. })
    ));
}

#[test]
fn tables_over_a_wide_range_are_refined_until_accurate() {
    // A 26-bit range at scale 16 (a deep decoder's): 2^12 samples are 0.25 apart, which GELU
    // misses by 6e-3; the table is refined (a smaller step) until within the target.
    let opts = QuantizeOptions {
        act_bits: Some(26),
        ..QuantizeOptions::default()
    };
    let calib = [vec![-3.0, 0.1, 3.0]];
    for func in [UnaryFn::Gelu, UnaryFn::ExpNonPositive, UnaryFn::Tanh] {
        let q = quantize(&unary(func), &calib, &opts).unwrap();
        let t = table_of(&q);
        let coarse = q.act_bits - LOOKUP_TABLE_BITS;
        assert!(t.shift < coarse, "{func:?}: shift {}", t.shift);
        assert!(t.shift >= q.act_bits - MAX_LOOKUP_TABLE_BITS);
        let unit = (1u64 << q.scale) as f64;
        let target = table_error_target(func, t, q.scale);
        let err = t.max_error(func, q.scale);
        assert!(err <= target, "{func:?}: {err:e} over {target:e}");
        // The fewest samples that reach it: one step coarser would not.
        let coarser =
            sampled_table(func, q.scale, q.act_bits, q.act_bits - t.shift - 1, "n").unwrap();
        assert!(coarser.max_error(func, q.scale) > target, "{func:?}");
        // Inputs across the range still evaluate, as the circuit interpolates them.
        for x in [-(1i64 << 25), -77_777, 0, 12_345, 1 << 24] {
            let exact = func.apply(x as f64 / unit);
            let Some(got) = t.eval(x) else {
                // Softmax's exponential is never given a positive input.
                assert!(func == UnaryFn::ExpNonPositive && x > 0, "{func:?} at {x}");
                continue;
            };
            let got = got as f64 / unit;
            assert!(
                (got - exact).abs() <= target + 1.0 / unit,
                "{func:?} at {x}"
            );
        }
    }
    // A narrow range keeps the smallest table (and the circuit its rows).
    let q = quantize(&unary(UnaryFn::Gelu), &calib, &QuantizeOptions::default()).unwrap();
    assert_eq!(table_of(&q).shift, q.act_bits - LOOKUP_TABLE_BITS);
}

/// Log as the importer lowers it: three square roots, then `8·ln y`.
fn log_graph() -> Graph {
    Graph {
        nodes: vec![
            node(Op::Input { index: 0 }, vec![], vec![4]),
            node(Op::Sqrt, vec![0], vec![4]),
            node(Op::Sqrt, vec![1], vec![4]),
            node(Op::Sqrt, vec![2], vec![4]),
            node(Op::Unary { func: UnaryFn::Ln8 }, vec![3], vec![4]),
        ],
        inputs: vec![0],
        outputs: vec![4],
        ..Default::default()
    }
}

#[test]
fn log_is_accurate_from_one_unit_up_and_refuses_zero_and_negatives() {
    let opts = QuantizeOptions::default();
    let q = quantize(&log_graph(), &[vec![0.01, 0.5, 2.0, 9.0]], &opts).unwrap();
    let QOp::Lookup { table, .. } = &q.nodes[4].op else {
        panic!("a lookup")
    };
    // The samples cover the eighth roots only: (2^(b-1) / 2^s)^(1/8) at most.
    let unit = (1u64 << q.scale) as f64;
    let max_root = (((1u64 << (q.act_bits - 1)) as f64 / unit).powf(0.125) * unit) as i64;
    let last = table.lo + table.values.len() as i64 - 1;
    assert!(
        (last << table.shift) > max_root,
        "the table reaches the largest root"
    );
    assert!(table.values.len() <= (1 << LOOKUP_TABLE_BITS) + 2);
    // From one unit to the top of the range, within 1 % of the output range's unit scale.
    let top = (1i64 << (q.act_bits - 1)) - 1;
    let mut worst = 0f64;
    let mut x = 1i64;
    while x < top {
        let xs = vec![x, (x + 1).min(top), x / 2 + 1, (3 * x / 2).min(top)];
        let trace = q.eval(std::slice::from_ref(&xs)).unwrap();
        for (i, &xi) in xs.iter().enumerate() {
            let want = (xi as f64 / unit).ln();
            let got = trace.values[4][i] as f64 / unit;
            worst = worst.max((got - want).abs());
        }
        x = x * 5 / 4 + 1;
    }
    println!("log: worst |error| {worst:.2e} at scale {}", q.scale);
    assert!(worst < 5e-3, "worst |error| {worst}");
    // ln 0 and the log of a negative have no value: out of range, not a wrong number
    // (a negative fails the square root, 0 the table).
    let zero = q.eval(&[vec![0, 1, 1, 1]]);
    assert!(
        matches!(&zero, Err(ModelError::OutsideTable { value: 0, lo, .. }) if *lo > 0),
        "{zero:?}"
    );
    for bad in [-1i64, -12_345] {
        assert!(
            matches!(
                q.eval(&[vec![bad, 1, 1, 1]]),
                Err(ModelError::OutOfRange { .. })
            ),
            "x = {bad}"
        );
    }
}

#[test]
fn softmax_exponential_keeps_zero_at_any_width() {
    // 34-bit activations at scale 16: a sample every 2^22 units (64.0), past where e^x
    // overflows.
    let plain = sampled_table(UnaryFn::Exp, 16, 34, LOOKUP_TABLE_BITS, "n").unwrap();
    let soft = sampled_table(UnaryFn::ExpNonPositive, 16, 34, LOOKUP_TABLE_BITS, "n").unwrap();
    // e^x loses x = 0 (its interval needs the overflowing sample at 64.0) ...
    assert_eq!(plain.eval(0), None);
    // ... e^min(x, 0) holds it, exactly, and all of the negative side, with one row past 0.
    assert_eq!(soft.eval(0), Some(1 << 16));
    assert_eq!(soft.eval(-(1 << 33)), Some(0));
    assert_eq!(soft.lo + soft.values.len() as i64 - 1, 1);
    // Samples 64 apart miss e^x badly in between, and the finest table's, 4 apart, still do:
    // such a table is refused, not used.
    let finest = lookup_table(UnaryFn::ExpNonPositive, 16, 34, "n").unwrap();
    assert_eq!(finest.shift, 34 - MAX_LOOKUP_TABLE_BITS);
    assert_eq!(finest.eval(0), Some(1 << 16));
    let refused = check_table_error(UnaryFn::ExpNonPositive, &finest, 16, "n");
    assert!(
        matches!(refused, Err(ModelError::TooLarge(_))),
        "{refused:?}"
    );
    // At a usual width (20 bits: samples 2^-8 apart) it is accurate and accepted.
    let usual = lookup_table(UnaryFn::ExpNonPositive, 16, 20, "n").unwrap();
    assert!(usual.max_error(UnaryFn::ExpNonPositive, 16) < 1e-4);
    check_table_error(UnaryFn::ExpNonPositive, &usual, 16, "n").unwrap();
}

#[test]
fn exp_tables_stop_where_outputs_would_overflow() {
    let q = quantize(
        &unary(UnaryFn::Exp),
        &[vec![-0.5, 0.2, 0.87]],
        &QuantizeOptions::default(),
    )
    .unwrap();
    let t = table_of(&q);
    let limit = 1i64 << (q.act_bits - 1);
    assert!(t.values.iter().all(|v| v.abs() < limit));
    // The last sample is the largest below the limit: one more step would overflow.
    let next = ((t.lo + t.values.len() as i64) << t.shift) as f64 / 65536.0;
    assert!(UnaryFn::Exp.apply(next) * 65536.0 >= limit as f64);
    // e^x below the table's top is computed; above it is out of range.
    let top = (t.lo + t.values.len() as i64 - 1) << t.shift;
    assert!(t.eval(top - 1).is_some());
    assert_eq!(t.eval(top), None);
}

/// A finite mask is excluded only while the widest activations cannot lift a masked entry
/// back into the softmax's resolution: −1e4 passes at 20-bit activations (up to 8), not at
/// 30 (up to 8192, where `e^(−1e4 + 2·8192)` is no longer 0).
#[test]
fn finite_masks_must_stay_far_below_the_activations() {
    let g = Graph {
        mask_level: Some(-1e4),
        ..tiny()
    };
    check_mask_level(&g, 20, 16).unwrap();
    let refused = check_mask_level(&g, 30, 16);
    assert!(
        matches!(&refused, Err(ModelError::Input(m)) if m.contains("not far enough below")),
        "{refused:?}"
    );
    // −∞ masks (no level) and graphs without masks pass at any width.
    check_mask_level(&tiny(), 30, 16).unwrap();
}
