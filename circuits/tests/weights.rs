//! The weight commitment's packing is injective only because every committed weight is
//! range-checked to its slot: a forger who adds 2^w to one weight and takes 1 from the next
//! keeps every limb, hence the commitment, yet multiplies with other weights. Here that forgery
//! is laid out consistently (the weights' own range-check cells computed from the forged
//! values, as a prover would) and only the range-check lookup refuses it.

use zkinfer_circuits::commit::{commit_weight_cells, commit_weights, TensorLayout};
use zkinfer_circuits::testing::{load_range_checked_by_hand, MockCircuit, Rejection};

const BITS: u32 = 16;

fn layout() -> TensorLayout {
    TensorLayout {
        shape: vec![2, 10],
        scale: 16,
        slot_bits: BITS,
    }
}

/// The weights laid out as the circuit lays out a Param node (witness, signed range check to
/// the slot: `w + 2^(bits−1)` into halo2-base's range check) and committed; the range check is
/// written out here so that a forged value is laid out instead of refused natively.
fn mock(weights: &[i64]) -> MockCircuit<()> {
    let l = layout();
    MockCircuit::build(11, |ctx, range, _| {
        let cells = load_range_checked_by_hand(ctx, range, weights, BITS);
        let commitment = commit_weight_cells(ctx, &range.gate, &[(l, cells)]);
        ((), vec![commitment])
    })
}

#[test]
fn a_weight_outside_its_slot_is_rejected_by_its_range_check() {
    let honest: Vec<i64> = (0..20).map(|i| 1000 - 97 * i).collect();
    let m = mock(&honest);
    assert!(m.satisfied(), "the honest weights must pass");
    let want = commit_weights(&[(layout(), honest.as_slice())]).unwrap();
    assert_eq!(m.instances(), [want]);

    // w0 + 2^16 and w1 − 1: the first limb, Σ (w_j + 2^15)·2^(16·j), is unchanged.
    let mut forged = honest.clone();
    forged[0] += 1 << BITS;
    forged[1] -= 1;
    let mut f = mock(&forged);
    assert_eq!(
        f.instances(),
        [want],
        "the forgery keeps the commitment (it is consistent)"
    );
    assert_eq!(
        f.rejections(&[]),
        [Rejection::RangeLookup].into_iter().collect(),
        "only the weight's range check refuses it"
    );
    // Natively the slot is checked too.
    assert!(commit_weights(&[(layout(), forged.as_slice())]).is_err());
}
