//! Products checked by Freivalds' algorithm: exact values, every cell constrained, and for
//! each of the four gates a consistent forgery that exactly that gate rejects. A wrong
//! product (an output, or an operand, moved with all its copies) is rejected by the final
//! check when the running sums follow it, and by the gate at the forged row when they do not.

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::AssignedValue;
use zkinfer_circuits::chips::Elem;
use zkinfer_circuits::field::{fr, signed};
use zkinfer_circuits::testing::{CellRef, MockCircuit, Rejection};

const K: u32 = 8;

const A: [[i128; 4]; 3] = [[3, -1, 0, 7], [-5, 2, 2, 1], [0, 0, -9, 4]];
const B: [[i128; 5]; 4] = [
    [1, 2, 0, -3, 4],
    [0, -1, 5, 2, 2],
    [6, 0, 1, 1, -2],
    [-4, 3, 0, 8, 1],
];

fn matmul() -> Vec<Vec<i128>> {
    (0..3)
        .map(|i| {
            (0..5)
                .map(|j| (0..4).map(|k| A[i][k] * B[k][j]).sum())
                .collect()
        })
        .collect()
}

/// What a test needs to find its cells: `Z`, and the cells of `A` and `B` (when variable).
struct Laid {
    z: Vec<Vec<AssignedValue<Fr>>>,
    a: Vec<Vec<AssignedValue<Fr>>>,
    b: Vec<Vec<AssignedValue<Fr>>>,
}

/// `Z = A·B` with `B` variable (cells) or constant (fixed); `Z` is made public.
fn build(b_constant: bool) -> MockCircuit<Laid> {
    MockCircuit::build_freivalds(K, 0, |ctx, _range, _lc, region| {
        let a: Vec<Vec<_>> = A
            .iter()
            .map(|r| r.iter().map(|&v| ctx.load_witness(fr(v))).collect())
            .collect();
        let b: Vec<Vec<_>> = if b_constant {
            Vec::new()
        } else {
            B.iter()
                .map(|r| r.iter().map(|&v| ctx.load_witness(fr(v))).collect())
                .collect()
        };
        let left: Vec<Vec<Elem>> = a
            .iter()
            .map(|r: &Vec<AssignedValue<Fr>>| r.iter().map(|c| Elem::Cell(*c)).collect())
            .collect();
        let right: Vec<Vec<Elem>> = if b_constant {
            B.iter()
                .map(|r| r.iter().map(|&v| Elem::Const(v)).collect())
                .collect()
        } else {
            b.iter()
                .map(|r: &Vec<AssignedValue<Fr>>| r.iter().map(|c| Elem::Cell(*c)).collect())
                .collect()
        };
        let z = region.product(ctx, &left, &right).unwrap();
        let public = z.iter().flatten().copied().collect();
        (Laid { z, a, b }, public)
    })
}

fn base(c: &AssignedValue<Fr>) -> CellRef {
    CellRef::Base(c.cell.unwrap().offset)
}

fn plus_one(m: &mut MockCircuit<Laid>, c: CellRef) -> (CellRef, Fr) {
    (c, m.value(c) + Fr::from(1u64))
}

#[test]
fn products_are_exact_and_every_cell_constrained() {
    for b_constant in [false, true] {
        let mut m = build(b_constant);
        let z: Vec<Vec<i128>> = m
            .result
            .z
            .iter()
            .map(|r| r.iter().map(|c| signed(c.value()).unwrap()).collect())
            .collect();
        assert_eq!(z, matmul());
        // R·v: 4 sums of 5; per row of A: 5 Horner rows, then 4 dot rows.
        assert_eq!(m.circuit().freivalds.rows(), 4 * 5 + 3 * (5 + 4));
        assert!(m.satisfied());
        assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new());
    }
}

#[test]
fn a_wrong_product_is_rejected_by_the_check() {
    for b_constant in [false, true] {
        let mut m = build(b_constant);
        let mut forged = vec![base(&m.result.z[1][2]), base(&m.result.a[2][3])];
        if !b_constant {
            forged.push(base(&m.result.b[0][4]));
        }
        for c in forged {
            let change = plus_one(&mut m, c);
            m.assert_rejected_by(&[change], &[Rejection::FreivaldsCheck]);
        }
        // Far off, as a wrapped product would be.
        let c = base(&m.result.z[0][0]);
        let far = m.value(c) + fr(1i128 << 100);
        m.assert_rejected_by(&[(c, far)], &[Rejection::FreivaldsCheck]);
    }
}

#[test]
fn a_w_that_closes_a_wrong_sum_is_rejected_by_its_copy_constraint() {
    // w is chosen after γ: were it not a copy of R·v, any wrong product could be closed.
    let mut m = build(false);
    m.forge_freivalds_w(true);
    assert!(m.satisfied(), "an honest witness needs no forged w");
    let c = base(&m.result.z[1][2]);
    let change = plus_one(&mut m, c);
    assert_eq!(
        m.rejections(&[change]),
        [Rejection::Copy].into_iter().collect()
    );
}

#[test]
fn each_gate_rejects_a_forger_who_keeps_the_running_sums() {
    let mut m = build(false);
    m.freeze_running_sums(true);
    let cases = [
        // The first output of a row starts its Horner sum.
        (base(&m.result.z[2][0]), Rejection::FreivaldsStart),
        // Later outputs are Horner steps.
        (base(&m.result.z[2][3]), Rejection::FreivaldsHorner),
        // Entries of B after the first of their row are Horner steps of R·v.
        (base(&m.result.b[1][2]), Rejection::FreivaldsHorner),
        // Entries of A are dot steps.
        (base(&m.result.a[0][1]), Rejection::FreivaldsDot),
    ];
    for (c, gate) in cases {
        let change = plus_one(&mut m, c);
        m.assert_rejected_by(&[change], &[gate]);
    }
    // The first entry of a row of B starts its Horner sum.
    let c = base(&m.result.b[3][0]);
    let change = plus_one(&mut m, c);
    m.assert_rejected_by(&[change], &[Rejection::FreivaldsStart]);
}

/// `Z = A'·B` with constant zeros in `A'` (a border row of a convolution joined to the
/// interior's `R`): row 0 has one, row 2 is all constant zeros. Returns `Z` and `A'`'s cells.
fn build_with_zeros() -> MockCircuit<Laid> {
    MockCircuit::build_freivalds(K, 0, |ctx, _range, _lc, region| {
        let left: Vec<Vec<Elem>> = A
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.iter()
                    .enumerate()
                    .map(|(k, &v)| match (i, k) {
                        (0, 1) | (2, _) => Elem::Const(0),
                        _ => Elem::Cell(ctx.load_witness(fr(v))),
                    })
                    .collect()
            })
            .collect();
        let right: Vec<Vec<Elem>> = B
            .iter()
            .map(|r| r.iter().map(|&v| Elem::Const(v)).collect())
            .collect();
        let z = region.product(ctx, &left, &right).unwrap();
        let a = left
            .iter()
            .map(|r| {
                r.iter()
                    .filter_map(|e| match e {
                        Elem::Cell(c) => Some(*c),
                        Elem::Const(_) => None,
                    })
                    .collect()
            })
            .collect();
        let public = z.iter().flatten().copied().collect();
        (
            Laid {
                z,
                a,
                b: Vec::new(),
            },
            public,
        )
    })
}

#[test]
fn constant_zeros_of_l_take_no_rows_and_the_check_still_holds() {
    let mut m = build_with_zeros();
    let z: Vec<Vec<i128>> = m
        .result
        .z
        .iter()
        .map(|r| r.iter().map(|c| signed(c.value()).unwrap()).collect())
        .collect();
    let mut want = matmul();
    want[0] = (0..5)
        .map(|j| A[0][0] * B[0][j] + A[0][2] * B[2][j] + A[0][3] * B[3][j])
        .collect();
    want[2] = vec![0; 5];
    assert_eq!(z, want);
    // R·v: 4 sums of 5; row 0: 5 Horner + 3 dot rows (its cell 0 of A stays a row); row 1:
    // 5 + 4; row 2, all zeros: 5 + 1 (the zero check needs a row).
    assert_eq!(
        m.circuit().freivalds.rows(),
        4 * 5 + (5 + 3) + (5 + 4) + (5 + 1)
    );
    assert!(m.satisfied());
    assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new());
    // A wrong output in a row with skipped zeros, or in the all-zero row, is still caught by
    // the final check.
    for c in [base(&m.result.z[0][1]), base(&m.result.z[2][4])] {
        let change = plus_one(&mut m, c);
        m.assert_rejected_by(&[change], &[Rejection::FreivaldsCheck]);
    }
}

/// The forgery of layout 1: a prover holding only the proving key lays the product out with
/// its own weight `B'[k][j] = B[k][j] + d` (so `Z' = A·B'` everywhere downstream), zero
/// weights included. Layout 2 binds every constant entry to the constants column, so the
/// weight in the prover's copy (`x`, apart from the keys' constant) is rejected by that copy
/// constraint; with the binding left out, as layout 1 in effect had it, the same forgery is
/// accepted.
#[test]
fn a_weight_changed_in_the_provers_copy_is_rejected_by_its_constant() {
    // Rows of R·v come first, row k·p + j holding B[k][j] (p = 5).
    let p = 5;
    let z_of = |m: &MockCircuit<Laid>, j: usize, k: usize, d: i128| -> Vec<(CellRef, Fr)> {
        m.result
            .z
            .iter()
            .enumerate()
            .map(|(i, z)| (base(&z[j]), fr(matmul()[i][j] + A[i][k] * d)))
            .collect()
    };
    for (k, j, d) in [(0usize, 0usize, 3i128), (0, 2, 5), (3, 4, -7)] {
        let row = k * p + j;
        let mut m = build(true);
        assert!(!m.circuit().freivalds.is_copied(row));
        assert_eq!(m.circuit().freivalds.cell(row), fr(B[k][j]));
        // Control: the same forging code with no change is an honest witness.
        let same = [(CellRef::Freivalds(row), fr(B[k][j]))];
        assert!(m.rejections_with(&z_of(&m, j, k, 0), &same).is_empty());
        let forged = [(CellRef::Freivalds(row), fr(B[k][j] + d))];
        let changes = z_of(&m, j, k, d);
        assert_eq!(
            m.rejections_with(&changes, &forged),
            [Rejection::Copy].into_iter().collect(),
            "B[{k}][{j}]"
        );
        let mut unbound = build_unbound();
        let mut changes = z_of(&unbound, j, k, d);
        changes.extend(forged);
        assert!(
            unbound.rejections(&changes).is_empty(),
            "without the binding the forgery passes: B[{k}][{j}]"
        );
    }
}

/// [`build`] with `B` constant and its entries left unbound (layout 1 in effect).
fn build_unbound() -> MockCircuit<Laid> {
    MockCircuit::build_freivalds(K, 0, |ctx, _range, _lc, region| {
        region.layout_1(true);
        let a: Vec<Vec<_>> = A
            .iter()
            .map(|r| r.iter().map(|&v| ctx.load_witness(fr(v))).collect())
            .collect();
        let left: Vec<Vec<Elem>> = a
            .iter()
            .map(|r: &Vec<AssignedValue<Fr>>| r.iter().map(|c| Elem::Cell(*c)).collect())
            .collect();
        let right: Vec<Vec<Elem>> = B
            .iter()
            .map(|r| r.iter().map(|&v| Elem::Const(v)).collect())
            .collect();
        let z = region.product(ctx, &left, &right).unwrap();
        let public = z.iter().flatten().copied().collect();
        (
            Laid {
                z,
                a,
                b: Vec::new(),
            },
            public,
        )
    })
}
