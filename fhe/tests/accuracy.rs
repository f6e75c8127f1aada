//! The FHE quantization of the digits MLP: its accuracy on 100 held-out digits by the clear
//! simulation (which every encrypted run matches), against the float model's.

mod common;

use common::*;
use zkinfer_fhe::argmax;

#[test]
fn digits_accuracy_by_simulation() {
    let c = digits();
    let test = digits_test();
    let pred: Vec<usize> = test
        .samples
        .iter()
        .map(|x| argmax(&c.program.run_clear(std::slice::from_ref(x)).unwrap().1[0]))
        .collect();
    let correct = pred
        .iter()
        .zip(&test.labels)
        .filter(|(a, b)| a == b)
        .count();
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
    eprintln!("fhe {correct}/100, float {float_correct}/100");
    assert_eq!(float_correct, 99);
    assert_eq!(correct, 91);
    assert_eq!(c.chosen.bootstraps, stats.bootstraps);
}
