//! The function-lookup chip: values equal `LookupTable::eval` (the reference semantics), every
//! cell it assigns is constrained (halo2-base cells and lookup rows), and forged witnesses that
//! keep every gate true are refused by the lookup or the range checks.

use zkinfer_circuits::chips::QuantChip;
use zkinfer_circuits::field::{fr, signed};
use zkinfer_circuits::testing::{CellRef, MockCircuit};
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
    let y_offset = m.result;
    let y = table.eval(2).unwrap() as i128;
    assert_eq!(signed(&m.base_cell(y_offset)).unwrap(), y);
    assert!(m.satisfied());
    let forged_y = fr(y + 1);
    let changes = [
        (CellRef::Base(y_offset), forged_y),
        (CellRef::Function(0, 1), forged_y),
    ];
    assert!(!m.accepts_tampered(&changes));
    // The same forgery with the honest value is accepted: the harness itself is sound.
    let honest = [
        (CellRef::Base(y_offset), fr(y)),
        (CellRef::Function(0, 1), fr(y)),
    ];
    assert!(m.accepts_tampered(&honest));
}

#[test]
fn the_step_split_cannot_shift_by_one() {
    // x = t·2^s + r also holds with (t + 1, r − 2^s): the range check of r refuses it, and
    // t + 1 would need its own row of the table anyway.
    let table = cubic(3);
    let mut m = MockCircuit::build_functions(K, |ctx, range, fns| {
        let chip = QuantChip::new(range.clone());
        let tag = fns.tag(&table);
        let start = ctx.advice.len();
        let xc = ctx.load_witness(fr(13));
        chip.lookup_fn(ctx, fns, xc, &table, tag, ACT_BITS, &here)
            .unwrap();
        // Layout: x, then [r, t, 2^s, x].
        (start + 1, vec![xc])
    });
    let r_off = m.result;
    assert_eq!(signed(&m.base_cell(r_off)).unwrap(), 13 - 8);
    assert!(m.satisfied());
    let forged = [
        (CellRef::Base(r_off), fr(13 - 16)),
        (CellRef::Base(r_off + 1), fr(2)),
        (CellRef::Function(0, 0), fr(2)),
    ];
    assert!(!m.accepts_tampered(&forged));
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
        (fns.table_rows(), outs)
    });
    // One zero row plus 12 rows per table (13 samples each).
    assert_eq!(m.result, 1 + 12 + 12);
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
