//! The FHE quantization of the digits MLP: its accuracy on 100 held-out digits by the clear
//! simulation (which every encrypted run matches), against the float model's.

mod common;

use common::*;
use zkinfer_fhe::{argmax, FheOptions};

/// Correct predictions of a program on the 100 held-out digits, by the clear simulation.
fn correct(program: &zkinfer_fhe::FheProgram) -> usize {
    let test = digits_test();
    test.samples
        .iter()
        .map(|x| argmax(&program.run_clear(std::slice::from_ref(x)).unwrap().1[0]))
        .zip(&test.labels)
        .filter(|(a, b)| a == *b)
        .count()
}

#[test]
fn digits_accuracy_by_simulation() {
    let c = digits();
    let test = digits_test();
    let float_correct = test
        .float_predictions
        .iter()
        .zip(&test.labels)
        .filter(|(a, b)| a == b)
        .count();
    let stats = c.program.stats();
    eprintln!("chosen {:?}; {stats:?}", c.chosen);
    for cand in &c.candidates {
        eprintln!("{cand:?}");
    }
    assert_eq!(float_correct, 99);
    assert_eq!(c.chosen.bootstraps, stats.bootstraps);
    // The accuracy/time trade-off: the searched program, four groups per neuron, and the
    // searched program under bootstrap budgets.
    let (g, s) = load(&fixture("digits_16"), "calibration.json");
    let options = |groups: Option<usize>, max_bootstraps: Option<usize>| FheOptions {
        groups,
        max_bootstraps,
        ..Default::default()
    };
    let mut got = vec![(stats.bootstraps, correct(&c.program))];
    for opts in [
        options(Some(4), None),
        options(None, Some(48)),
        options(None, Some(16)),
    ] {
        let p = zkinfer_fhe::compile(&g, &s, &opts).unwrap().program;
        got.push((p.stats().bootstraps, correct(&p)));
    }
    eprintln!("(bootstraps, correct of 100): {got:?}; float {float_correct}/100");
    assert_eq!(got, [(64, 96), (80, 97), (48, 95), (16, 95)]);
}

#[test]
fn the_bounds_check_refuses_a_weight_that_could_wrap_an_accumulator() {
    let mut p = digits().program.clone();
    p.check_bounds()
        .expect("the compiled program is within bounds");
    // Raise one weight of the first bootstrapped accumulator until its worst case passes M.
    let (v, idx) = p
        .values
        .iter()
        .enumerate()
        .find_map(|(v, d)| match d {
            zkinfer_fhe::ValueDef::Dot { rows, wide: false } if !rows.is_empty() => Some((v, 0)),
            _ => None,
        })
        .unwrap();
    if let zkinfer_fhe::ValueDef::Dot { rows, .. } = &mut p.values[v] {
        rows[idx].terms[0].1 += 64;
    }
    let err = p.check_bounds().unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("mismatch: value {v}[0]: the accumulator spans [")),
        "{err}"
    );
    assert!(err.ends_with("outside [0, 64)"), "{err}");
    // A bootstrap table of the wrong size.
    let mut q = digits().program.clone();
    q.tables[0].pop();
    let err = q.check_bounds().unwrap_err().to_string();
    assert!(err.contains("table 0 is not 64 values below 64"), "{err}");
}
