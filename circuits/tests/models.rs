//! Whole models from `../shared/ezkl-examples`, laid out on MockProver: accepted as built,
//! and no single advice cell (of the small ones: every cell) can change unnoticed.

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::testing::{CellRef, MockCircuit};
use zkinfer_circuits::{build_circuit, plan_circuit, Io, PlanLimits, Visibility};
use zkinfer_model::{load_onnx, parse_input_json, quantize, QGraph, QuantizeOptions};

fn example(name: &str) -> (QGraph, Vec<Vec<i64>>) {
    let dir = zkinfer_model::corpus::example_dir(name);
    let graph = load_onnx(&dir.join("network.onnx")).unwrap();
    let input =
        parse_input_json(&std::fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
    let q = quantize(&graph, &input, &QuantizeOptions::default()).unwrap();
    let qi = q.quantize_input(&input).unwrap();
    (q, qi)
}

fn mock(q: &QGraph, qi: &[Vec<i64>], io: Io) -> MockCircuit<()> {
    let plan = plan_circuit(q, qi, io, PlanLimits::default()).unwrap();
    let (circuit, instances) =
        build_circuit(CircuitBuilderStage::Mock, &plan, None, q, qi, Fr::zero()).unwrap();
    MockCircuit::from_circuit(circuit, plan.k, (), instances)
}

#[test]
fn small_models_have_no_unconstrained_cell() {
    for name in [
        "1l_mlp",
        "1l_relu",
        "2l_relu_fc",
        "1l_linear",
        "1l_slice",
        "1l_reshape",
        "1l_conv",
        "clip",
        "1l_sigmoid",
        "exp",
        "1l_softmax",
        "1l_sqrt",
        "1l_leakyrelu",
    ] {
        let (q, qi) = example(name);
        for io in [Io::PUBLIC, Io::inputs(Visibility::Private)] {
            let mut m = mock(&q, &qi, io);
            assert!(m.satisfied(), "{name}");
            assert_eq!(
                m.unconstrained_cells(),
                Vec::<CellRef>::new(),
                "{name} ({io:?})"
            );
        }
    }
}

/// With hashed inputs and outputs, a spread of a small model's cells (packing and Poseidon
/// cells among them; every cell of the gadget: `commit`'s unit tests) is pinned, and each
/// commitment other than the honest one is refused.
#[test]
fn hashed_models_have_no_unconstrained_cell() {
    let hashed = Io::new(Visibility::Hashed, Visibility::Hashed);
    for name in ["1l_mlp", "1l_relu"] {
        let (q, qi) = example(name);
        let mut m = mock(&q, &qi, hashed);
        assert!(m.satisfied(), "{name}");
        assert_eq!(m.instances().len(), 2, "{name}: one commitment per tensor");
        let n = m.cells.len();
        let spread: Vec<CellRef> = (0..n)
            .step_by((n / 150).max(1))
            .map(CellRef::Base)
            .collect();
        assert_eq!(
            m.unconstrained_among(spread),
            Vec::<CellRef>::new(),
            "{name}"
        );
        for i in 0..2 {
            let mut inst = m.instances().to_vec();
            inst[i] += Fr::from(1u64);
            assert!(!m.accepts_instances(inst), "{name}: commitment {i}");
        }
    }
}

#[test]
fn larger_models_reject_tampered_cells_and_outputs() {
    for name in [
        "1l_max_pool",
        "1l_average",
        "1l_pad",
        "1l_batch_norm",
        "1l_mean",
        "max",
        "1l_div",
        "layernorm",
        "lstm",
    ] {
        let (q, qi) = example(name);
        let mut m = mock(&q, &qi, Io::PUBLIC);
        assert!(m.satisfied(), "{name}");
        // A spread of cells across the whole layout, in both regions.
        let n = m.cells.len();
        let lincomb = m.lincomb_cells();
        let spread: Vec<CellRef> = (0..n)
            .step_by((n / 40).max(1))
            .map(CellRef::Base)
            .chain(lincomb.iter().step_by((lincomb.len() / 40).max(1)).copied())
            .collect();
        assert_eq!(
            m.unconstrained_among(spread),
            Vec::<CellRef>::new(),
            "{name}"
        );
        let mut inst = m.instances().to_vec();
        let last = inst.len() - 1;
        inst[last] += Fr::from(1u64);
        assert!(
            !m.accepts_instances(inst),
            "{name}: a wrong public output was accepted"
        );
    }
}

#[test]
fn k_follows_the_model_not_a_fixed_floor() {
    let (q, qi) = example("1l_mlp");
    let plan = plan_circuit(&q, &qi, Io::PUBLIC, PlanLimits::default()).unwrap();
    assert_eq!(plan.k, 7, "a 3→4 MLP needs 2^7 rows");
    assert_eq!(plan.lookup_bits, 6);
    let (q, qi) = example("accuracy");
    let plan = plan_circuit(&q, &qi, Io::PUBLIC, PlanLimits::default()).unwrap();
    assert!(
        plan.k < 15,
        "accuracy: k={} should be below EZKL's floor of 15",
        plan.k
    );
}

#[test]
fn tiled_batches_are_laid_out_once() {
    // large_mlp tiles its 1×100 input to 10×100 and runs every Gemm on ten identical rows.
    let (q, qi) = example("large_mlp");
    let plan = plan_circuit(&q, &qi, Io::PUBLIC, PlanLimits::default()).unwrap();
    assert_eq!(
        plan.k, 15,
        "one copy of each Gemm, not ten (EZKL needs k=19)"
    );
    assert_eq!(plan.num_instances, 100 + 1000);
    let m = mock(&q, &qi, Io::PUBLIC);
    assert!(m.satisfied());
}

/// x (2 values) → y = [3·x0 − 2·x1, c·x0 − 2·x1] (shift 2) → z = y0 + y1.
fn two_rows(c: i64) -> QGraph {
    use zkinfer_model::{QNode, QOp, Rows};
    let node = |op, inputs, shape, bound| QNode {
        name: "n".into(),
        source_op: "test".into(),
        op,
        inputs,
        shape,
        bound,
    };
    let rows: Rows<(u32, u32, i64)> =
        vec![vec![(0, 0, 3), (0, 1, -2)], vec![(0, 0, c), (0, 1, -2)]]
            .into_iter()
            .collect();
    let sum: Rows<(u32, u32, i64)> = vec![vec![(0, 0, 1), (0, 1, 1)]].into_iter().collect();
    QGraph {
        nodes: vec![
            node(QOp::Input { index: 0, bits: 0 }, vec![], vec![2], 1 << 15),
            node(
                QOp::Linear {
                    terms: rows,
                    bias: vec![2, 2],
                    shift: 2,
                },
                vec![0],
                vec![2],
                1 << 15,
            ),
            node(
                QOp::Linear {
                    terms: sum,
                    bias: vec![0],
                    shift: 0,
                },
                vec![1],
                vec![1],
                1 << 16,
            ),
        ],
        inputs: vec![0],
        outputs: vec![1, 2],
        scale: 4,
        param_scale: 4,
        act_bits: 16,
        weight_bits: 0,
    }
}

#[test]
fn identical_rows_share_cells_and_stay_constrained() {
    let input = vec![vec![37i64, -11]];
    let (shared, distinct) = (two_rows(3), two_rows(5));
    let plan = |q: &QGraph| plan_circuit(q, &input, Io::PUBLIC, PlanLimits::default()).unwrap();
    assert!(
        plan(&shared).advice_cells < plan(&distinct).advice_cells,
        "the repeated row is laid out once"
    );
    let mut m = mock(&shared, &input, Io::PUBLIC);
    assert!(m.satisfied());
    assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new());
    // Both copies of the shared output are public (instances 2 and 3): neither can change alone.
    for i in [2, 3, 4] {
        let mut inst = m.instances().to_vec();
        inst[i] += Fr::from(1u64);
        assert!(!m.accepts_instances(inst), "instance {i}");
    }
}

#[test]
fn a_circuit_over_the_memory_limit_is_refused_with_what_it_needs() {
    let (q, qi) = example("lstm");
    let free = plan_circuit(&q, &qi, Io::PUBLIC, PlanLimits::default()).unwrap();
    // halo2's prover holds dozens of field elements per row: 2^14 rows need tens of MiB.
    let mib = free.prove_memory_bytes >> 20;
    assert!((60..400).contains(&mib), "lstm at k={}: {mib} MiB", free.k);
    let limits = |bytes| PlanLimits {
        max_prove_memory: Some(bytes),
        ..PlanLimits::default()
    };
    // At exactly its estimate the same shape is chosen.
    let same = plan_circuit(&q, &qi, Io::PUBLIC, limits(free.prove_memory_bytes)).unwrap();
    assert_eq!(
        (same.k, same.prove_memory_bytes),
        (free.k, free.prove_memory_bytes)
    );
    let err = plan_circuit(&q, &qi, Io::PUBLIC, limits(1 << 20))
        .unwrap_err()
        .to_string();
    let needed = format!(
        "{:.1} GiB",
        free.prove_memory_bytes as f64 / (1u64 << 30) as f64
    );
    assert!(
        err.contains(&format!("proving needs about {needed}"))
            && err.contains(&format!("k={}", free.k))
            && err.contains("over the 0.0 GiB allowed (--max-prove-memory"),
        "{err}"
    );
}

#[test]
fn a_verifier_limit_takes_fewer_columns_and_refuses_what_cannot_fit() {
    use zkinfer_circuits::cost::{constraint_system, verifier_code_bytes, EIP_170_CODE_BYTES};
    let verifier = |p: &zkinfer_circuits::CircuitPlan| {
        verifier_code_bytes(&constraint_system(&p.params), p.num_instances)
    };
    let (q, qi) = example("1l_mlp");
    let hashed = Io::new(Visibility::Hashed, Visibility::Hashed);
    // A wide proof budget: the least work takes many columns, a verifier over the limit.
    let wide = PlanLimits {
        max_proof_bytes: 8192,
        raise_proof_bytes_to: None,
        ..PlanLimits::default()
    };
    let free = plan_circuit(&q, &qi, hashed, wide).unwrap();
    let limit = verifier(&free) - 1;
    let kept = plan_circuit(
        &q,
        &qi,
        hashed,
        PlanLimits {
            max_verifier_bytes: Some(limit),
            ..wide
        },
    )
    .unwrap();
    assert!(verifier(&kept) <= limit, "{} > {limit}", verifier(&kept));
    assert!(
        kept.params.base.num_advice_per_phase[0] < free.params.base.num_advice_per_phase[0]
            && kept.k > free.k,
        "{} at k={} against {} at k={}",
        kept.columns(),
        kept.k,
        free.columns(),
        free.k
    );
    // The circuit it takes is the model's, constrained as any other.
    let (circuit, instances) =
        build_circuit(CircuitBuilderStage::Mock, &kept, None, &q, &qi, Fr::zero()).unwrap();
    assert!(MockCircuit::from_circuit(circuit, kept.k, (), instances).satisfied());
    // 794 public values alone are over EIP-170: refused, saying why and what to do.
    let (q, qi) = example("4l_relu_conv_fc");
    let err = plan_circuit(
        &q,
        &qi,
        Io::PUBLIC,
        PlanLimits {
            max_verifier_bytes: Some(EIP_170_CODE_BYTES),
            ..PlanLimits::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("794 public values alone")
            && err.contains("over the 24576 allowed")
            && err.contains("--input-visibility hashed"),
        "{err}"
    );
    // Too few rows for a narrow enough shape: refused, naming the rows as the way out.
    let (q, qi) = example("1l_mlp");
    let err = plan_circuit(
        &q,
        &qi,
        hashed,
        PlanLimits {
            k: Some(11),
            max_verifier_bytes: Some(EIP_170_CODE_BYTES),
            ..wide
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("Solidity verifier within 24576 bytes") && err.contains("allow more rows"),
        "{err}"
    );
}

#[test]
fn the_memory_estimate_doubles_with_the_rows() {
    use zkinfer_circuits::cost::{constraint_system, prove_memory_bytes};
    let (q, qi) = example("1l_mlp");
    let plan = plan_circuit(&q, &qi, Io::PUBLIC, PlanLimits::default()).unwrap();
    let cs = constraint_system(&plan.params);
    let (m18, m19) = (
        prove_memory_bytes(&cs, 18, plan.advice_cells),
        prove_memory_bytes(&cs, 19, plan.advice_cells),
    );
    // Beyond the process's base, the per-row polynomials dominate: twice the rows, twice
    // the memory (the builder's per-cell share does not grow with k).
    let base = 60u64 << 20;
    let ratio = (m19 - base) as f64 / (m18 - base) as f64;
    assert!((1.99..=2.0).contains(&ratio), "{m18} → {m19}: {ratio}");
}

#[test]
fn the_default_budget_rises_only_where_nothing_smaller_fits_or_the_work_halves() {
    // 1l_concat keeps 3,072 bytes at k = 9: more columns at k = 8 would not halve the work,
    // and k = 7 has no room for its 216 public instances (one row each).
    let (q, qi) = example("1l_concat");
    let plan = |limits: PlanLimits| plan_circuit(&q, &qi, Io::PUBLIC, limits);
    let default = plan(PlanLimits::default()).unwrap();
    assert_eq!((default.k, default.proof_budget), (9, 3072));
    assert_eq!(default.num_instances, 216);
    let small_first = plan(PlanLimits {
        raise_from_k: 0,
        ..PlanLimits::default()
    })
    .unwrap();
    assert_eq!((small_first.k, small_first.proof_budget), (9, 3072));
    // Where nothing within 3,072 bytes fits the memory limit, the budget rises until a shape
    // does, whatever the circuit's size, and that shape is sound.
    let wide = plan(PlanLimits {
        max_proof_bytes: 5120,
        raise_proof_bytes_to: None,
        ..PlanLimits::default()
    })
    .unwrap();
    assert!(wide.prove_memory_bytes < default.prove_memory_bytes);
    let tight = plan(PlanLimits {
        max_prove_memory: Some(wide.prove_memory_bytes),
        ..PlanLimits::default()
    })
    .unwrap();
    assert!(tight.proof_budget > 3072, "{}", tight.proof_budget);
    assert!(tight.prove_memory_bytes <= wide.prove_memory_bytes);
    assert!(tight.num_instances < 1 << tight.k);
    let (circuit, instances) =
        build_circuit(CircuitBuilderStage::Mock, &tight, None, &q, &qi, Fr::zero()).unwrap();
    assert!(MockCircuit::from_circuit(circuit, tight.k, (), instances).satisfied());
    // A budget given is kept: the same limit then refuses the circuit.
    let fixed = plan(PlanLimits {
        raise_proof_bytes_to: None,
        max_prove_memory: Some(wide.prove_memory_bytes),
        ..PlanLimits::default()
    });
    assert!(fixed.is_err());
}

/// A function over a wide activation range gets a refined table (more samples than the
/// smallest): its rows, not the cells, set k, and the model is laid out and constrained as
/// with the smallest table.
#[test]
fn a_refined_function_table_sets_k_and_stays_constrained() {
    let dir = zkinfer_model::corpus::example_dir("1l_gelu_noappx");
    let graph = load_onnx(&dir.join("network.onnx")).unwrap();
    let input =
        parse_input_json(&std::fs::read_to_string(dir.join("input.json")).unwrap()).unwrap();
    let opts = QuantizeOptions {
        act_bits: Some(26),
        ..QuantizeOptions::default()
    };
    let q = quantize(&graph, &input, &opts).unwrap();
    let qi = q.quantize_input(&input).unwrap();
    let rows = q
        .nodes
        .iter()
        .find_map(|n| match &n.op {
            zkinfer_model::QOp::Lookup { table, .. } => Some(table.values.len()),
            _ => None,
        })
        .unwrap();
    assert!(rows > 1 << 13, "a refined table: {rows} samples");
    let plan = plan_circuit(&q, &qi, Io::PUBLIC, PlanLimits::default()).unwrap();
    assert!(plan.k >= 14 && (1usize << plan.k) > rows, "k {}", plan.k);
    let mut m = mock(&q, &qi, Io::PUBLIC);
    assert!(m.satisfied());
    assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new());
}
