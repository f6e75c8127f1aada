//! The Gather chip (indices from the input into a constant table, as token embeddings):
//! outputs equal the table entries `QGraph::eval` picks, every cell is constrained, a
//! non-integer or out-of-range index is refused honestly, and consistent forgeries are
//! refused by the constraint under test: the table lookup for a wrong entry, the gate
//! `x = t·2^s` for another index's row.

use zkinfer_circuits::chips::QuantChip;
use zkinfer_circuits::field::{fr, signed};
use zkinfer_circuits::testing::{CellRef, MockCircuit, Rejection};
use zkinfer_circuits::CircuitError;
use zkinfer_model::LookupTable;

const K: u32 = 8;
/// The activation scale of the indices.
const SHIFT: u32 = 4;

fn here() -> String {
    "test".to_string()
}

/// One column of a 3-entry embedding, as the quantizer builds it: indices −3 … 2 (negative
/// ones count from the end), then a padding sample.
fn column() -> LookupTable {
    let entries = [-70i64, 15, 42];
    let mut values = entries.to_vec();
    values.extend(entries);
    values.push(0);
    LookupTable {
        shift: 0,
        lo: -3,
        values,
    }
}

/// The cells of one gather, from the offset of its output `y`: x, [0, t, 2^s, x], y, dy.
struct Cells {
    t: usize,
    y: usize,
    dy: usize,
}

fn gather_circuit(index: i64, table: &LookupTable) -> MockCircuit<Cells> {
    MockCircuit::build_functions(K, |ctx, range, fns| {
        let chip = QuantChip::new(range.clone());
        let tag = fns.tag(table);
        let x = ctx.load_witness(fr((index << SHIFT) as i128));
        let y = chip.gather(ctx, fns, x, table, tag, SHIFT, &here).unwrap();
        let y = y.cell.unwrap().offset;
        (
            Cells {
                t: y - 3,
                y,
                dy: y + 1,
            },
            vec![x],
        )
    })
}

#[test]
fn gathered_values_are_table_entries_and_every_cell_is_constrained() {
    let table = column();
    for (index, want) in [(-3i64, -70i128), (-1, 42), (0, -70), (1, 15), (2, 42)] {
        assert_eq!(
            table.eval(index),
            Some(want as i64),
            "the reference, index {index}"
        );
        let mut m = gather_circuit(index, &table);
        let y = m.result.y;
        assert_eq!(
            signed(&m.value(CellRef::Base(y))),
            Some(want),
            "index {index}"
        );
        assert!(m.satisfied(), "index {index}");
        assert_eq!(m.function_cells().len(), 3);
        assert_eq!(
            m.unconstrained_cells(),
            Vec::<CellRef>::new(),
            "index {index}"
        );
    }
}

#[test]
fn a_non_integer_or_out_of_range_index_is_refused_honestly() {
    let table = column();
    // 1.5 at the scale, one past the end, one before the start.
    for x in [(1i64 << SHIFT) + 8, 3 << SHIFT, -4 << SHIFT] {
        MockCircuit::build_functions(K, |ctx, range, fns| {
            let chip = QuantChip::new(range.clone());
            let tag = fns.tag(&table);
            let xc = ctx.load_witness(fr(x as i128));
            let r = chip.gather(ctx, fns, xc, &table, tag, SHIFT, &here);
            assert!(
                matches!(r, Err(CircuitError::OutOfRange { value, .. }) if value == x as i128),
                "x = {x}: {r:?}"
            );
            ((), vec![])
        });
    }
}

#[test]
fn a_wrong_entry_is_rejected_by_the_lookup() {
    let table = column();
    let mut m = gather_circuit(1, &table);
    let y = CellRef::Base(m.result.y);
    assert!(m.satisfied());
    assert_eq!(m.value(CellRef::Function(0, 1)), fr(15));
    // Index 1's entry is 15; claim 16 (in y and its copy in the lookup row).
    m.assert_rejected_by(&[(y, fr(16))], &[Rejection::FunctionLookup]);
}

#[test]
fn another_index_row_is_rejected_by_the_gate() {
    let table = column();
    let mut m = gather_circuit(1, &table);
    let c = &m.result;
    let (t, y, dy) = (CellRef::Base(c.t), CellRef::Base(c.y), CellRef::Base(c.dy));
    // Index 2's whole row (t = 2, its entry 42, the step to the padding sample after it), a
    // row the table holds: only the gate `x = t·2^s` (x = 16, index 1) objects.
    let (y2, next) = (
        table.eval(2).unwrap(),
        table.values[(2 - table.lo) as usize + 1],
    );
    m.assert_rejected_by(
        &[
            (t, fr(2)),
            (y, fr(y2 as i128)),
            (dy, fr((next - y2) as i128)),
        ],
        &[Rejection::BasicGate],
    );
}
