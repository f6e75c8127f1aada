//! The function-lookup chip: values equal `LookupTable::eval` (the reference semantics), every
//! cell it assigns is constrained (halo2-base cells and lookup rows), and consistent forgeries
//! that keep every other constraint true are refused by the one under test: the table (a
//! value not in it, another table's row, a step past its end), the range checks of both
//! remainders, and the gate that binds the output.

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::chips::QuantChip;
use zkinfer_circuits::field::{fr, signed};
use zkinfer_circuits::testing::{CellRef, MockCircuit, Rejection};
use zkinfer_circuits::CircuitError;
use zkinfer_model::LookupTable;

const K: u32 = 8;
const ACT_BITS: u32 = 16;

fn here() -> String {
    "test".to_string()
}

/// A cubic sampled every 2^shift units over t ∈ [-6, 6]: curved, so interpolation matters.
fn cubic(shift: u32) -> LookupTable {
    let values = (-6i64..=6).map(|t| t * t * t - 40 * t + 7).collect();
    LookupTable {
        shift,
        lo: -6,
        values,
    }
}

#[test]
fn values_match_the_table_semantics_and_every_cell_is_constrained() {
    for shift in [0u32, 1, 3] {
        let table = cubic(shift);
        let step = 1i64 << shift;
        // Both ends of the domain, zero, negatives, and points between samples.
        for x in [
            -6 * step,
            -6 * step + 1,
            -1,
            0,
            1,
            3 * step + step / 2,
            6 * step - 1,
        ] {
            let want = table.eval(x).expect("in the domain");
            let mut m = MockCircuit::build_functions(K, |ctx, range, fns| {
                let chip = QuantChip::new(range.clone());
                let tag = fns.tag(&table);
                let xc = ctx.load_witness(fr(x as i128));
                let (y, _) = chip
                    .lookup_fn(ctx, fns, xc, &table, tag, ACT_BITS, &here)
                    .unwrap();
                (signed(y.value()).unwrap(), vec![xc, y])
            });
            let case = format!("shift {shift}, x {x}");
            assert_eq!(m.result, want as i128, "{case}");
            assert!(m.satisfied(), "{case}");
            assert_eq!(m.function_cells().len(), 3, "{case}");
            assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new(), "{case}");
        }
    }
}

#[test]
fn inputs_outside_the_table_are_refused_honestly() {
    let table = cubic(2);
    // t must lie in [-6, 6): x in [-24, 24).
    for x in [-25i64, 24, 1 << 40] {
        MockCircuit::build_functions(K, |ctx, range, fns| {
            let chip = QuantChip::new(range.clone());
            let tag = fns.tag(&table);
            let xc = ctx.load_witness(fr(x as i128));
            let r = chip.lookup_fn(ctx, fns, xc, &table, tag, ACT_BITS, &here);
            assert!(
                matches!(r, Err(CircuitError::OutOfRange { value, .. }) if value == x as i128),
                "x = {x}"
            );
            ((), vec![])
        });
        assert_eq!(table.eval(x), None, "x = {x}");
    }
}

#[test]
fn a_value_not_in_the_table_is_rejected_by_the_lookup() {
    // Exact table (shift 0): the output is the looked-up y0 itself (kept private here, so no
    // instance pins it). Claim y0 + 1, consistently in its halo2-base cell and its copy in the
    // lookup row: every gate and copy constraint still holds, only the table can object.
    let table = cubic(0);
    let mut m = MockCircuit::build_functions(K, |ctx, range, fns| {
        let chip = QuantChip::new(range.clone());
        let tag = fns.tag(&table);
        let xc = ctx.load_witness(fr(2));
        let (y, _) = chip
            .lookup_fn(ctx, fns, xc, &table, tag, ACT_BITS, &here)
            .unwrap();
        (y.cell.unwrap().offset, vec![xc])
    });
    let y = CellRef::Base(m.result);
    let honest = table.eval(2).unwrap() as i128;
    assert_eq!(m.value(y), fr(honest));
    assert_eq!(m.value(CellRef::Function(0, 1)), fr(honest));
    m.assert_rejected_by(&[(y, fr(honest + 1))], &[Rejection::FunctionLookup]);
}

/// Samples at t = -1, 0, 1 every 2^7: with K = 8 both remainders are one whole lookup limb
/// and outputs fit 8 signed bits, so forgeries only move copy classes.
fn coarse(values: [i64; 3]) -> LookupTable {
    LookupTable {
        shift: 7,
        lo: -1,
        values: values.to_vec(),
    }
}

/// The cells of one interpolated lookup, from the offset of its output `y`.
#[derive(Clone, Copy)]
struct Cells {
    x: usize,
    r: usize,
    t: usize,
    y0: usize,
    dy: usize,
    p: usize,
    q: usize,
    r2: usize,
    y: usize,
    low: usize,
    nb: usize,
}

impl Cells {
    /// Layout: x, [r, t, 2^s, x], y0, dy, [half, y0, 2^s, p, dy, r, q], [r2, y, 2^s, q],
    /// then y's sign check [low, nb, …].
    fn at(y: usize) -> Self {
        Self {
            x: y - 15,
            r: y - 14,
            t: y - 13,
            y0: y - 10,
            dy: y - 9,
            p: y - 5,
            q: y - 2,
            r2: y - 1,
            y,
            low: y + 3,
            nb: y + 4,
        }
    }

    /// A forgery writing every cell of the interpolation for `x = t·2^7 + r` and the row
    /// `(t, y0, dy)`, whatever table it comes from.
    fn forge(&self, x: i128, t: i128, y0: i128, dy: i128) -> Vec<(CellRef, Fr)> {
        let r = x - t * 128;
        let p = 64 + y0 * 128;
        let q = p + dy * r;
        let y = q.div_euclid(128);
        let nb = (y < 0) as i128;
        [
            (self.x, x),
            (self.r, r),
            (self.t, t),
            (self.y0, y0),
            (self.dy, dy),
            (self.p, p),
            (self.q, q),
            (self.r2, q - y * 128),
            (self.y, y),
            (self.low, y + 128 * nb),
            (self.nb, nb),
        ]
        .into_iter()
        .map(|(c, v)| (CellRef::Base(c), fr(v)))
        .collect()
    }
}

/// `table(x)` laid out with x and y public, after `other` is registered (so tags differ).
fn lookup_circuit(x: i64, table: &LookupTable, other: &LookupTable) -> MockCircuit<Cells> {
    MockCircuit::build_functions(K, |ctx, range, fns| {
        let chip = QuantChip::new(range.clone());
        fns.tag(other);
        let tag = fns.tag(table);
        let xc = ctx.load_witness(fr(x as i128));
        let (y, _) = chip.lookup_fn(ctx, fns, xc, table, tag, 8, &here).unwrap();
        (Cells::at(y.cell.unwrap().offset), vec![xc, y])
    })
}

const A: [i64; 3] = [-60, 10, 90];
const B: [i64; 3] = [-50, 30, 70];

#[test]
fn the_forgery_model_matches_the_chip() {
    // Writing the honest values through `Cells::forge` changes nothing: the offsets and
    // formulas the forgeries below rely on are the chip's own.
    for x in [50i64, -78, 0, 127, -128] {
        let (a, b) = (coarse(A), coarse(B));
        let mut m = lookup_circuit(x, &a, &b);
        let t = (x >> 7) as i128;
        let i = (t + 1) as usize;
        let honest = m
            .result
            .forge(x as i128, t, A[i] as i128, (A[i + 1] - A[i]) as i128);
        for (c, v) in &honest {
            assert_eq!(m.value(*c), *v, "x = {x}, {c:?}");
        }
        let y = CellRef::Base(m.result.y);
        assert_eq!(m.value(y), fr(a.eval(x).unwrap() as i128));
        assert!(m.rejections(&honest).is_empty(), "x = {x}");
    }
}

#[test]
fn the_tag_binds_each_lookup_to_its_own_table() {
    // Table A used at x = 50, with the row (t = 0, y0, dy) of table B, every gate recomputed:
    // the row exists in the fixed table, but under B's tag, so the lookup refuses it.
    let (a, b) = (coarse(A), coarse(B));
    let mut m = lookup_circuit(50, &a, &b);
    let forged = m.result.forge(50, 0, B[1] as i128, (B[2] - B[1]) as i128);
    m.assert_rejected_by(&forged, &[Rejection::FunctionLookup]);
}

#[test]
fn the_table_bounds_t() {
    // x = 300 splits as t = 2, r = 44: every gate holds with any (y0, dy), but no row has
    // t = 2 (the samples end at t = 1, the last row at t = 0).
    let (a, b) = (coarse(A), coarse(B));
    let mut m = lookup_circuit(50, &a, &b);
    let forged = m.result.forge(300, 2, A[1] as i128, (A[2] - A[1]) as i128);
    m.assert_rejected_by(&forged, &[Rejection::FunctionLookup]);
}

#[test]
fn the_step_split_remainder_is_range_checked() {
    // x = -78 is t = -1, r = 50; split as t = 0, r = -78 with table A's row for t = 0 and
    // the interpolation recomputed: only the range check of r refuses it.
    let (a, b) = (coarse(A), coarse(B));
    let mut m = lookup_circuit(-78, &a, &b);
    let forged = m.result.forge(-78, 0, A[1] as i128, (A[2] - A[1]) as i128);
    m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);
}

#[test]
fn the_interpolation_remainder_is_range_checked_and_y_is_bound() {
    // y·2^s + r2 = q also holds with (y + 1, r2 − 2^s): the range check of r2 refuses it.
    let (a, b) = (coarse(A), coarse(B));
    let mut m = lookup_circuit(50, &a, &b);
    let (yc, r2c, low) = (m.result.y, m.result.r2, m.result.low);
    let y = a.eval(50).unwrap() as i128;
    let r2 = 64 + 10 * 128 + 80 * 50 - y * 128;
    let forged = [
        (CellRef::Base(yc), fr(y + 1)),
        (CellRef::Base(r2c), fr(r2 - 128)),
        (CellRef::Base(low), fr(y + 1)),
    ];
    m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);
    // y moved alone (its sign check with it): the gate y·2^s + r2 = q objects.
    let forged = [
        (CellRef::Base(yc), fr(y + 1)),
        (CellRef::Base(low), fr(y + 1)),
    ];
    m.assert_rejected_by(&forged, &[Rejection::BasicGate]);
}

#[test]
fn one_table_serves_repeated_uses_and_two_tables_get_two_tags() {
    let (a, b) = (cubic(1), cubic(2));
    let m = MockCircuit::build_functions(K, |ctx, range, fns| {
        let chip = QuantChip::new(range.clone());
        let mut outs = vec![];
        for (x, t) in [(3i64, &a), (-5, &a), (7, &b)] {
            let xc = ctx.load_witness(fr(x as i128));
            let tag = fns.tag(t);
            let (y, _) = chip
                .lookup_fn(ctx, fns, xc, t, tag, ACT_BITS, &here)
                .unwrap();
            outs.push(y);
        }
        ((fns.table_rows(), fns.rows(), fns.column_rows()), outs)
    });
    // One zero row plus 12 rows per table (13 samples each); three lookups of three cells.
    assert_eq!(m.result, (1 + 12 + 12, 3, 9));
    assert!(m.satisfied());
    assert_eq!(
        m.instances().to_vec(),
        vec![
            fr(a.eval(3).unwrap() as i128),
            fr(a.eval(-5).unwrap() as i128),
            fr(b.eval(7).unwrap() as i128)
        ]
    );
}

#[test]
fn the_interpolation_gates_each_bind() {
    // x = 50 on table A: p = 2^6 + y0·2^7 = 1344, q = p + dy·r = 5344, y = 41. Moving p (and
    // q, y after it) breaks only p's gate; moving q (and y) only q's gate.
    let (a, b) = (coarse(A), coarse(B));
    let mut m = lookup_circuit(50, &a, &b);
    let c = m.result;
    for (p, q) in [(1344 + 128, 5344 + 128), (1344, 5344 + 128)] {
        let forged = [
            (CellRef::Base(c.p), fr(p)),
            (CellRef::Base(c.q), fr(q)),
            (CellRef::Base(c.y), fr(42)),
            (CellRef::Base(c.low), fr(42)),
        ];
        m.assert_rejected_by(&forged, &[Rejection::BasicGate]);
    }
}
