//! The planner's unit tests: budgets, constants columns.

use super::*;
use zkinfer_model::{load_onnx, parse_input_json, quantize, QuantizeOptions};

/// halo2-base would give 2^k − 2 constants one column at k = 8, of which only the
/// usable rows can be filled: they get two.
#[test]
fn constants_fill_only_usable_rows() {
    let base = |num_fixed| BaseCircuitParams {
        k: 8,
        num_fixed,
        ..Default::default()
    };
    assert_eq!(constants_fit(base(1), 256 - 2).num_fixed, 2);
    assert_eq!(constants_fit(base(1), usable(8)).num_fixed, 1);
    assert_eq!(constants_fit(base(3), 10).num_fixed, 3);
}

#[test]
fn a_raised_budget_must_halve_the_work_of_a_large_enough_circuit() {
    let dir = zkinfer_model::corpus::example_dir("1l_mlp");
    let graph = load_onnx(&dir.join("network.onnx")).unwrap();
    let json = std::fs::read_to_string(dir.join("input.json")).unwrap();
    let input = parse_input_json(&json).unwrap();
    let q = quantize(&graph, &input, &QuantizeOptions::default()).unwrap();
    let qi = q.quantize_input(&input).unwrap();
    let plan = |k| {
        let limits = PlanLimits {
            k,
            ..PlanLimits::default()
        };
        plan_circuit(&q, &qi, Io::PUBLIC, limits)
    };
    // The same model at 2^7 and at 2^12 rows: 32 times the work, more than halved.
    let (small, large) = (plan(None), plan(Some(12)));
    assert_eq!(
        (small.as_ref().unwrap().k, large.as_ref().unwrap().k),
        (7, 12)
    );
    assert!(worth_raising(&large, &small, 12));
    assert!(!worth_raising(&large, &small, 13), "below raise_from_k");
    assert!(!worth_raising(&small, &large, 0), "more work");
    assert!(!worth_raising(&small, &small, 0), "the same work");
    let none = Err(CircuitError::TooLarge("nothing fits".into()));
    assert!(worth_raising(&none, &small, 30), "nothing fit before");
    assert!(!worth_raising(&small, &none, 0));
}
