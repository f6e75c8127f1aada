//! Every chip: correct values, MockProver accepts, and no copy class of an assigned advice
//! cell can move without MockProver rejecting. Then, for every constraint the chips emit, a
//! consistent forgery (every copy of a changed value changed with it) that satisfies all the
//! other constraints, and the assertion that exactly that constraint rejects it: the
//! non-canonical sign of zero, one past either end of a signed range, a non-boolean sign bit,
//! a rescale off by one with a compensating remainder, a wrapped rescale result, the wrong
//! branch of a max, a shifted lincomb chain, a quotient or root off by one.

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};
use zkinfer_circuits::chips::{Elem, QuantChip};
use zkinfer_circuits::field::{fr, signed};
use zkinfer_circuits::lincomb::LinCombRegion;
use zkinfer_circuits::testing::{CellRef, MockCircuit, Rejection};
use zkinfer_circuits::CircuitError;
use zkinfer_model::ExtremumKind;

const K: u32 = 8;

fn here() -> String {
    "test".to_string()
}

fn val(c: &AssignedValue<Fr>) -> i128 {
    signed(c.value()).unwrap()
}

fn offset_of(ctx: &Context<Fr>, c: &AssignedValue<Fr>) -> usize {
    // In mock mode every assigned value knows its cell.
    let _ = ctx;
    c.cell.unwrap().offset
}

#[test]
fn sign_bit_values_and_every_cell_constrained() {
    // Widths below, at and above one lookup limb (7 bits at K = 8): `low` is rounded up to
    // whole limbs, and every cell stays constrained.
    for bits in [5u32, 8, 12] {
        let half = 1i128 << (bits - 1);
        for v in [-half, -77 % half, -1, 0, 1, 5 % half, half - 1] {
            let mut m = MockCircuit::build(K, |ctx, range, _lc| {
                let chip = QuantChip::new(range.clone());
                let x = ctx.load_witness(fr(v));
                let nb = chip.sign_bit(ctx, x, bits, &here).unwrap();
                (val(&nb), vec![x])
            });
            assert_eq!(m.result, (v < 0) as i128, "sign of {v} at {bits} bits");
            assert!(m.satisfied());
            assert_eq!(
                m.unconstrained_cells(),
                Vec::<CellRef>::new(),
                "v = {v}, bits = {bits}"
            );
        }
    }
}

#[test]
fn sign_bit_rejects_out_of_range_honestly() {
    // Exactly `bits` signed bits: [-2^(bits-1), 2^(bits-1)), whether or not the width is a
    // whole number of lookup limbs (7 bits at K = 8).
    for (bits, bad) in [(8u32, [128i128, -129, 1 << 40]), (5, [16, -17, 100])] {
        for v in bad {
            MockCircuit::build(K, |ctx, range, _lc| {
                let chip = QuantChip::new(range.clone());
                let x = ctx.load_witness(fr(v));
                let r = chip.sign_bit(ctx, x, bits, &here);
                assert!(
                    matches!(r, Err(CircuitError::OutOfRange { value, bits: b, .. }) if value == v && b == bits),
                    "{v} at {bits} bits: {r:?}"
                );
                ((), vec![])
            });
        }
    }
}

/// The cells of one sign check, found from the negative bit it returned. `check` is the
/// cell halo2-base adds when `bits - 1` is not a whole number of lookup limbs: `low` times
/// `2^(limb - (bits - 1))`, looked up too (after the boolean check and a `mul` region).
#[derive(Clone, Copy)]
struct SignCells {
    low: usize,
    nb: usize,
    check: Option<(usize, Fr)>,
}

impl SignCells {
    fn of(nb: &AssignedValue<Fr>, bits: u32) -> Self {
        let nb = nb.cell.unwrap().offset;
        let low = nb - 1;
        let limb = K - 1;
        let rem = (bits - 1) % limb;
        let check = (rem > 1 && bits - 1 < limb).then(|| (low + 11, fr(1i128 << (limb - rem))));
        Self { low, nb, check }
    }

    /// The forgery of `low` (its check cell included).
    fn low_to(&self, low: Fr) -> Vec<(CellRef, Fr)> {
        let mut v = vec![(CellRef::Base(self.low), low)];
        if let Some((at, mult)) = self.check {
            v.push((CellRef::Base(at), low * mult));
        }
        v
    }
}

/// A sign check of `v` at `bits`, with `x` public; returns its cells.
fn sign_circuit(v: i128, bits: u32) -> MockCircuit<(usize, SignCells)> {
    MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let x = ctx.load_witness(fr(v));
        let nb = chip.sign_bit(ctx, x, bits, &here).unwrap();
        ((offset_of(ctx, &x), SignCells::of(&nb, bits)), vec![x])
    })
}

#[test]
fn sign_low_range_is_exact_at_both_ends() {
    // The largest and smallest values pass; one past either end, written consistently into
    // x, low (and the partial-limb check cell), is refused by the range lookup alone. At
    // 5 bits the old rounding to whole limbs accepted 16 and -17.
    for bits in [5u32, 8] {
        let half = 1i128 << (bits - 1);
        let mut m = sign_circuit(half - 1, bits);
        let (x, cells) = &m.result.clone();
        let mut forged = vec![(CellRef::Base(*x), fr(half))];
        forged.extend(cells.low_to(fr(half)));
        m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);

        let mut m = sign_circuit(-half, bits);
        let (x, cells) = &m.result.clone();
        assert_eq!(m.value(CellRef::Base(cells.low)), fr(0));
        let mut forged = vec![(CellRef::Base(*x), fr(-half - 1))];
        forged.extend(cells.low_to(fr(-1)));
        m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);
    }
}

#[test]
fn sign_of_zero_is_canonical() {
    // x = 0 = low - nb·2^B also holds with nb = 1, low = 2^B: the range check refuses it.
    for bits in [8u32, 5] {
        let half = 1i128 << (bits - 1);
        let mut m = sign_circuit(0, bits);
        let (_, cells) = &m.result.clone();
        let mut forged = vec![(CellRef::Base(cells.nb), fr(1))];
        forged.extend(cells.low_to(fr(half)));
        m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);
    }
}

#[test]
fn sign_bit_must_be_boolean() {
    // x = 3 + 5·2^B = low - nb·2^B with low = 3 in range and nb = -5: only the boolean
    // check of nb refuses it (without it, x would be unbounded).
    let (bits, half) = (8u32, 128i128);
    let mut m = sign_circuit(3, bits);
    let (x, cells) = &m.result.clone();
    let forged = [
        (CellRef::Base(*x), fr(3 + 5 * half)),
        (CellRef::Base(cells.nb), fr(-5)),
    ];
    m.assert_rejected_by(&forged, &[Rejection::BasicGate]);
}

#[test]
fn sign_gate_ties_low_and_nb_to_x() {
    // nb flipped alone (still boolean, low still in range): only the sign gate objects.
    let mut m = sign_circuit(5, 8);
    let (_, cells) = &m.result.clone();
    let forged = [(CellRef::Base(cells.nb), fr(1))];
    m.assert_rejected_by(&forged, &[Rejection::BasicGate]);
}

#[test]
fn dot_with_constants_and_shift() {
    let xs = [3i128, -7, 100, 0, -1];
    let ws = [5i128, 3, -2, 9, 1];
    // Width 0 keeps the dot product in halo2-base's gate; the others use the lincomb region
    // with full rows, a partial last row, and one term per row.
    for width in [0usize, 1, 2, 3, 8] {
        for (bias, shift) in [(0i128, 0u32), (11, 0), (4, 3), (-1000, 5), (0, 13)] {
            let acc: i128 = bias + xs.iter().zip(&ws).map(|(x, w)| x * w).sum::<i128>();
            let want = acc >> shift;
            let mut m = MockCircuit::build_with(K, width, |ctx, range, lc| {
                let chip = QuantChip::new(range.clone());
                let cells: Vec<_> = xs.iter().map(|&x| ctx.load_witness(fr(x))).collect();
                let pairs: Vec<(Elem, Elem)> = cells
                    .iter()
                    .zip(&ws)
                    .map(|(c, &w)| (Elem::Cell(*c), Elem::Const(w)))
                    .collect();
                let out = chip.dot(ctx, lc, &pairs, bias, shift, 16, &here).unwrap();
                let Elem::Cell(o) = out.out else {
                    panic!("expected a cell")
                };
                (val(&o), cells.into_iter().chain([o]).collect())
            });
            let case = format!("width {width} bias {bias} shift {shift}");
            assert_eq!(m.result, want, "{case}");
            assert!(m.satisfied(), "{case}");
            assert_eq!(m.lincomb_cells().is_empty(), width == 0, "{case}");
            assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new(), "{case}");
        }
    }
}

#[test]
fn lincomb_region_chains_several_dot_products() {
    // Three dot products back to back (the second uses the first's output): each one's ends
    // are pinned to zero, so no value can leak from one accumulator chain into the next.
    for width in [1usize, 2, 4] {
        let mut m = MockCircuit::build_with(K, width, |ctx, range, lc| {
            let chip = QuantChip::new(range.clone());
            let a = ctx.load_witness(fr(9));
            let b = ctx.load_witness(fr(-4));
            let d1 = chip
                .dot(
                    ctx,
                    lc,
                    &[
                        (Elem::Cell(a), Elem::Const(2)),
                        (Elem::Cell(b), Elem::Const(3)),
                    ],
                    1,
                    0,
                    16,
                    &here,
                )
                .unwrap();
            let Elem::Cell(o1) = d1.out else {
                panic!("expected a cell")
            };
            let d2 = chip
                .dot(
                    ctx,
                    lc,
                    &[
                        (Elem::Cell(o1), Elem::Const(-5)),
                        (Elem::Cell(a), Elem::Const(1)),
                    ],
                    0,
                    1,
                    16,
                    &here,
                )
                .unwrap();
            let Elem::Cell(o2) = d2.out else {
                panic!("expected a cell")
            };
            let d3 = chip
                .dot(
                    ctx,
                    lc,
                    &[(Elem::Cell(o2), Elem::Const(7))],
                    -3,
                    0,
                    16,
                    &here,
                )
                .unwrap();
            let Elem::Cell(o3) = d3.out else {
                panic!("expected a cell")
            };
            ([val(&o1), val(&o2), val(&o3)], vec![a, b, o3])
        });
        // o1 = 1 + 18 - 12 = 7; o2 = floor((-35 + 9) / 2) = -13; o3 = -91 - 3 = -94.
        assert_eq!(m.result, [7, -13, -94], "width {width}");
        assert!(m.satisfied());
        assert_eq!(
            m.unconstrained_cells(),
            Vec::<CellRef>::new(),
            "width {width}"
        );
        // Moving value between two sums (one accumulator up, the next down) is caught.
        let accs: Vec<CellRef> = m
            .lincomb_cells()
            .into_iter()
            .filter(|c| matches!(c, CellRef::LinComb(true, _)))
            .collect();
        for pair in accs.windows(2) {
            let got = m.rejections(&[(pair[0], fr(1)), (pair[1], fr(-1))]);
            assert!(
                !got.is_empty() && !got.contains(&Rejection::Copy),
                "{got:?}"
            );
        }
        // All three chains shifted by one together: every step holds, the ends object.
        let shifted: Vec<(CellRef, Fr)> = accs
            .iter()
            .map(|&c| {
                let v = m.value(c) + fr(1);
                (c, v)
            })
            .collect();
        m.assert_rejected_by(&shifted, &[Rejection::LinCombEnds]);
        let mut inst = m.instances().to_vec();
        inst[2] += Fr::from(1u64);
        assert!(!m.accepts_instances(inst));
    }
}

#[test]
fn dot_of_two_variables_rounds_half_up() {
    // (3·5 + (-2)·7 + 4 (half of 2^3)) >> 3 = 5 >> 3 = 0; and a negative case.
    for (a, b, want) in [([3i128, -2], [5i128, 7], 0i128), ([-9, 4], [9, 1], -10)] {
        let mut m = MockCircuit::build(K, |ctx, range, lc| {
            let chip = QuantChip::new(range.clone());
            let ca: Vec<_> = a.iter().map(|&x| ctx.load_witness(fr(x))).collect();
            let cb: Vec<_> = b.iter().map(|&x| ctx.load_witness(fr(x))).collect();
            let pairs: Vec<(Elem, Elem)> = ca
                .iter()
                .zip(&cb)
                .map(|(x, y)| (Elem::Cell(*x), Elem::Cell(*y)))
                .collect();
            let out = chip.dot(ctx, lc, &pairs, 4, 3, 16, &here).unwrap();
            let Elem::Cell(o) = out.out else {
                panic!("expected a cell")
            };
            (val(&o), vec![o])
        });
        assert_eq!(m.result, want);
        assert!(m.satisfied());
        assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new());
    }
}

/// A rescaled dot product `floor(37·300 / 2^7)` with 8-bit outputs (whole lookup limbs, so a
/// forgery only has to move copy classes), on halo2-base's gate (width 0) or the lincomb
/// region. Returns `(y, r)` offsets and the sign cells of `y`; `x` and `y` are public.
fn rescale_circuit(width: usize) -> MockCircuit<(usize, usize, SignCells)> {
    let m = rescale_circuit_with(width, 300, 7);
    let (y, r, sign, _) = m.result;
    m.with_result((y, r, sign))
}

/// `floor(37·w / 2^shift)` with 8-bit outputs: the offsets of `y` and `r`, the sign cells of
/// `y` and the gate cells used.
fn rescale_circuit_with(
    width: usize,
    w: i128,
    shift: u32,
) -> MockCircuit<(usize, usize, SignCells, usize)> {
    MockCircuit::build_with(K, width, |ctx, range, lc| {
        let chip = QuantChip::new(range.clone());
        let x = ctx.load_witness(fr(37));
        let out = chip
            .dot(
                ctx,
                lc,
                &[(Elem::Cell(x), Elem::Const(w))],
                0,
                shift,
                8,
                &here,
            )
            .unwrap();
        let Elem::Cell(y) = out.out else {
            panic!("expected a cell")
        };
        let y_off = offset_of(ctx, &y);
        // halo2-base's gate: [y, -2^s, r]; lincomb: y and r are loaded one after the other.
        let r_off = if width == 0 { y_off + 2 } else { y_off + 1 };
        let sign = SignCells::of(&out.neg.unwrap(), 8);
        ((y_off, r_off, sign, ctx.advice.len()), vec![x, y])
    })
}

#[test]
fn rescale_remainder_is_range_checked() {
    // y·2^s + r = acc also holds with (y + 1, r − 2^s): the remainder's range check refuses it.
    let acc = 37 * 300;
    let (y, r) = (acc >> 7, acc & 127);
    for width in [0usize, 2] {
        let mut m = rescale_circuit(width);
        let (y_off, r_off, sign) = &m.result.clone();
        assert_eq!(m.value(CellRef::Base(*y_off)), fr(y), "width {width}");
        assert_eq!(m.value(CellRef::Base(*r_off)), fr(r), "width {width}");
        let forged = [
            (CellRef::Base(*y_off), fr(y + 1)),
            (CellRef::Base(*r_off), fr(r - 128)),
            (CellRef::Base(sign.low), fr(y + 1)),
        ];
        m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);
    }
}

#[test]
fn rescale_result_is_range_checked() {
    // Any r in range has a field solution y = (acc − r) / 2^s; all but the honest one are
    // huge, and only the result's signed range check refuses them.
    let acc = 37 * 300;
    let r = acc & 127;
    for width in [0usize, 2] {
        let mut m = rescale_circuit(width);
        let (y_off, r_off, sign) = &m.result.clone();
        let y_wrapped = (fr(acc) - fr(r + 1)) * fr(128).invert().unwrap();
        assert!(signed(&y_wrapped).is_none());
        let forged = [
            (CellRef::Base(*r_off), fr(r + 1)),
            (CellRef::Base(*y_off), y_wrapped),
            (CellRef::Base(sign.low), y_wrapped),
        ];
        m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);
    }
}

#[test]
fn lincomb_step_and_end_gates() {
    // One combination of three terms at width 1 (rows: 37·300, 5·-7, y and r ...).
    let mut m = MockCircuit::build_with(K, 1, |ctx, range, lc| {
        let chip = QuantChip::new(range.clone());
        let a = ctx.load_witness(fr(37));
        let b = ctx.load_witness(fr(5));
        let out = chip
            .dot(
                ctx,
                lc,
                &[
                    (Elem::Cell(a), Elem::Const(300)),
                    (Elem::Cell(b), Elem::Const(-7)),
                ],
                3,
                0,
                16,
                &here,
            )
            .unwrap();
        let Elem::Cell(y) = out.out else {
            panic!("expected a cell")
        };
        ((), vec![a, b, y])
    });
    let accs: Vec<CellRef> = m
        .lincomb_cells()
        .into_iter()
        .filter(|c| matches!(c, CellRef::LinComb(true, _)))
        .collect();
    // Terms a, b and the output: three rows, four accumulator values.
    assert_eq!(accs.len(), 4);
    // A middle accumulator moved alone breaks the steps around it.
    let mid = accs[1];
    let moved = m.value(mid) + fr(1);
    m.assert_rejected_by(&[(mid, moved)], &[Rejection::LinCombStep]);
    // The whole chain shifted by one keeps every step; only the end gate sees it.
    let shifted: Vec<(CellRef, Fr)> = accs
        .iter()
        .map(|&c| {
            let v = m.value(c) + fr(1);
            (c, v)
        })
        .collect();
    m.assert_rejected_by(&shifted, &[Rejection::LinCombEnds]);
}

#[test]
fn dot_of_two_variables_chains_through_the_gate() {
    // [bias, a0, b0, acc1, a1, b1, acc2, y, -2^s, r]: acc1 moved breaks the product gates.
    let mut m = MockCircuit::build(K, |ctx, range, lc| {
        let chip = QuantChip::new(range.clone());
        let ca: Vec<_> = [3i128, -2]
            .iter()
            .map(|&x| ctx.load_witness(fr(x)))
            .collect();
        let cb: Vec<_> = [5i128, 7]
            .iter()
            .map(|&x| ctx.load_witness(fr(x)))
            .collect();
        let start = ctx.advice.len();
        let pairs: Vec<(Elem, Elem)> = ca
            .iter()
            .zip(&cb)
            .map(|(x, y)| (Elem::Cell(*x), Elem::Cell(*y)))
            .collect();
        chip.dot(ctx, lc, &pairs, 4, 3, 16, &here).unwrap();
        (start + 3, ca.into_iter().chain(cb).collect())
    });
    let acc1 = CellRef::Base(m.result);
    assert_eq!(m.value(acc1), fr(4 + 15));
    m.assert_rejected_by(&[(acc1, fr(4 + 16))], &[Rejection::BasicGate]);
}

#[test]
fn extremum_of_cells_and_constants() {
    let cases: &[(ExtremumKind, i128, Option<i128>, i128)] = &[
        (ExtremumKind::Max, 5, Some(-3), 5),
        (ExtremumKind::Max, -5, Some(3), 3),
        (ExtremumKind::Min, 5, Some(-3), -3),
        (ExtremumKind::Min, -5, Some(3), -5),
        (ExtremumKind::Max, 4, Some(4), 4),
        (ExtremumKind::Max, -7, None, 0), // ReLU
        (ExtremumKind::Max, 7, None, 7),
        (ExtremumKind::Min, 7, None, 0),
    ];
    for &(kind, a, b, want) in cases {
        for b_is_const in [false, true] {
            let mut m = MockCircuit::build(K, |ctx, range, _lc| {
                let chip = QuantChip::new(range.clone());
                let ca = ctx.load_witness(fr(a));
                let (eb, mut public) = match b {
                    Some(b) if !b_is_const => {
                        let cb = ctx.load_witness(fr(b));
                        (Elem::Cell(cb), vec![ca, cb])
                    }
                    Some(b) => (Elem::Const(b), vec![ca]),
                    None => (Elem::Const(0), vec![ca]),
                };
                let out = chip
                    .extremum2(ctx, kind, Elem::Cell(ca), eb, None, 10, &here)
                    .unwrap();
                let Elem::Cell(o) = out else {
                    panic!("expected a cell")
                };
                public.push(o);
                (val(&o), public)
            });
            assert_eq!(m.result, want, "{kind:?}({a}, {b:?})");
            assert!(m.satisfied());
            assert_eq!(
                m.unconstrained_cells(),
                Vec::<CellRef>::new(),
                "{kind:?}({a}, {b:?})"
            );
        }
    }
}

#[test]
fn extremum_of_two_constants_or_a_constant_first() {
    // Two constants: a constant, no cell. A constant first: the operands are swapped, so
    // max(5, x) is laid out as max(x, 5).
    let m = MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let both = chip
            .extremum2(
                ctx,
                ExtremumKind::Max,
                Elem::Const(3),
                Elem::Const(5),
                None,
                8,
                &here,
            )
            .unwrap();
        let x = ctx.load_witness(fr(2));
        let first = chip
            .extremum2(
                ctx,
                ExtremumKind::Max,
                Elem::Const(5),
                Elem::Cell(x),
                None,
                8,
                &here,
            )
            .unwrap();
        let min = chip
            .extremum2(
                ctx,
                ExtremumKind::Min,
                Elem::Const(5),
                Elem::Cell(x),
                None,
                8,
                &here,
            )
            .unwrap();
        let public = [first, min]
            .iter()
            .map(|e| match e {
                Elem::Cell(c) => *c,
                Elem::Const(_) => panic!("expected a cell"),
            })
            .collect();
        ((both, first.value(), min.value()), public)
    });
    assert!(matches!(m.result.0, Elem::Const(5)));
    assert_eq!((m.result.1, m.result.2), (5, 2));
    assert!(m.satisfied());
}

#[test]
fn relu_without_a_known_sign_checks_x_itself() {
    // max(x, 0) with no sign bit at hand: the sign check of x and the max gate, no
    // subtraction (d = x − 0 is x).
    let m = MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let x = ctx.load_witness(fr(-9));
        let before = ctx.advice.len();
        let out = chip
            .extremum2(
                ctx,
                ExtremumKind::Max,
                Elem::Cell(x),
                Elem::Const(0),
                None,
                8,
                &here,
            )
            .unwrap();
        let Elem::Cell(o) = out else {
            panic!("expected a cell")
        };
        ((val(&o), ctx.advice.len() - before), vec![x, o])
    });
    // Sign check: 4 cells and 4 for the boolean check (7 bits, one whole limb); max: 4.
    assert_eq!(m.result, (0, 12));
    assert!(m.satisfied());
}

#[test]
fn relu_reuses_a_proven_sign_bit() {
    for a in [-9i128, 0, 9] {
        let mut m = MockCircuit::build(K, |ctx, range, _lc| {
            let chip = QuantChip::new(range.clone());
            let x = ctx.load_witness(fr(a));
            let nb = chip.sign_bit(ctx, x, 8, &here).unwrap();
            let before = ctx.advice.len();
            let out = chip
                .extremum2(
                    ctx,
                    ExtremumKind::Max,
                    Elem::Cell(x),
                    Elem::Const(0),
                    Some(nb),
                    8,
                    &here,
                )
                .unwrap();
            let Elem::Cell(o) = out else {
                panic!("expected a cell")
            };
            ((val(&o), ctx.advice.len() - before), vec![x, o])
        });
        assert_eq!(m.result, (a.max(0), 4), "relu({a}) is one gate");
        assert!(m.satisfied());
        assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new());
    }
}

/// `max(2, 9)` or `min(2, 9)` of two public cells with the output public; returns the
/// offsets of `d = a − b`, the sign cells of `d` and the output.
fn extremum_circuit(kind: ExtremumKind) -> MockCircuit<(usize, SignCells, usize)> {
    MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let a = ctx.load_witness(fr(2));
        let b = ctx.load_witness(fr(9));
        let start = ctx.advice.len();
        let out = chip
            .extremum2(ctx, kind, Elem::Cell(a), Elem::Cell(b), None, 8, &here)
            .unwrap();
        let Elem::Cell(o) = out else {
            panic!("expected a cell")
        };
        // Layout: sub [d, b, 1, a], then the sign check of d: [low, nb, -2^7, d], ...
        let d = start;
        let nb = ctx.get(start as isize + 5);
        (
            (d, SignCells::of(&nb, 8), offset_of(ctx, &o)),
            vec![a, b, o],
        )
    })
}

#[test]
fn max_with_the_wrong_branch_is_rejected_by_the_range_of_d() {
    // max(2, 9) claimed as 2: nb of d = -7 flipped to 0, low set to d so the sign gate
    // holds, the max gate holds (2 + 0·d = 2): low = -7 then fails its range.
    let mut m = extremum_circuit(ExtremumKind::Max);
    let (_, sign, out) = &m.result.clone();
    let forged = [
        (CellRef::Base(sign.low), fr(-7)),
        (CellRef::Base(sign.nb), fr(0)),
        (CellRef::Base(*out), fr(2)),
    ];
    m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);
}

#[test]
fn extremum_gates_bind_the_output_and_the_difference() {
    for (kind, honest) in [(ExtremumKind::Max, 9i128), (ExtremumKind::Min, 2)] {
        let mut m = extremum_circuit(kind);
        let (d, sign, out) = &m.result.clone();
        assert_eq!(m.value(CellRef::Base(*out)), fr(honest));
        // The output moved alone: only the max/min gate objects.
        m.assert_rejected_by(&[(CellRef::Base(*out), fr(5))], &[Rejection::BasicGate]);
        // d = -6 instead of -7, its sign check and the output made to agree with it: only
        // the gate d = a − b objects (max = a − nb·d = 8, min = b + nb·d = 3).
        let out_forged = match kind {
            ExtremumKind::Max => 8,
            ExtremumKind::Min => 3,
        };
        let forged = [
            (CellRef::Base(*d), fr(-6)),
            (CellRef::Base(sign.low), fr(-6 + 128)),
            (CellRef::Base(*out), fr(out_forged)),
        ];
        m.assert_rejected_by(&forged, &[Rejection::BasicGate]);
    }
}

#[test]
fn divide_rounds_half_up_and_every_cell_is_constrained() {
    for (a, b, shift) in [
        (1i128, 1i128, 4u32),
        (5, 3, 4),
        (-7, 2, 4),
        (1 << 12, 1 << 13, 4),
        (3, 200, 8),
        (0, 9, 4),
    ] {
        let want = zkinfer_model::divide(a, b, shift).unwrap();
        let mut m = MockCircuit::build(K, |ctx, range, _lc| {
            let chip = QuantChip::new(range.clone());
            let (ac, bc) = (ctx.load_witness(fr(a)), ctx.load_witness(fr(b)));
            let (y, _) = chip.divide(ctx, ac, bc, shift, 14, 20, &here).unwrap();
            (val(&y), vec![ac, bc, y])
        });
        let case = format!("{a} / {b} at shift {shift}");
        assert_eq!(m.result, want, "{case}");
        assert!(m.satisfied(), "{case}");
        assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new(), "{case}");
    }
}

#[test]
fn divide_refuses_non_positive_or_too_wide_divisors() {
    for b in [0i128, -3, 1 << 14] {
        MockCircuit::build(K, |ctx, range, _lc| {
            let chip = QuantChip::new(range.clone());
            let (ac, bc) = (ctx.load_witness(fr(5)), ctx.load_witness(fr(b)));
            let r = chip.divide(ctx, ac, bc, 4, 14, 20, &here);
            assert!(
                matches!(r, Err(CircuitError::OutOfRange { value, .. }) if value == b),
                "b = {b}"
            );
            ((), vec![])
        });
    }
}

/// `round(11·2^4 / 5)` with a 6-bit divisor (r and d checked to 7 bits, one whole limb) and
/// an 8-bit quotient; returns the offsets `[r, y, d]` and the sign cells of `y`.
fn divide_circuit(a: i128, b: i128) -> MockCircuit<([usize; 3], SignCells)> {
    MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let (ac, bc) = (ctx.load_witness(fr(a)), ctx.load_witness(fr(b)));
        let start = ctx.advice.len();
        let (y, nb) = chip.divide(ctx, ac, bc, 4, 6, 8, &here).unwrap();
        // Layout: [b, a, 2^(s+1), num] [b, b, 1, 2b] [r, y, 2b, num] [d, r, 1, d+r, 1, 1, 2b].
        let cells = [start + 8, start + 9, start + 12];
        ((cells, SignCells::of(&nb.unwrap(), 8)), vec![ac, bc, y])
    })
}

#[test]
fn divide_remainder_and_slack_are_range_checked() {
    // r + y·2b = num and d + r + 1 = 2b still hold with (y ± 1, r ∓ 2b, d ± 2b): with y + 1,
    // r < 0 (d stays in range); with y − 1, d < 0 (r stays in range). Each direction is
    // refused by one range check alone.
    let (a, b) = (11i128, 5i128);
    let mut m = divide_circuit(a, b);
    let ([r_off, y_off, d_off], sign) = &m.result.clone();
    let y = zkinfer_model::divide(a, b, 4).unwrap();
    let r = a * 32 + b - y * 2 * b;
    let d = 2 * b - 1 - r;
    assert_eq!(m.value(CellRef::Base(*y_off)), fr(y));
    assert_eq!(
        (
            m.value(CellRef::Base(*r_off)),
            m.value(CellRef::Base(*d_off))
        ),
        (fr(r), fr(d))
    );
    for dy in [1i128, -1] {
        let forged = [
            (CellRef::Base(*y_off), fr(y + dy)),
            (CellRef::Base(sign.low), fr(y + dy)),
            (CellRef::Base(*r_off), fr(r - dy * 2 * b)),
            (CellRef::Base(*d_off), fr(d + dy * 2 * b)),
        ];
        m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);
    }
    // The quotient moved alone breaks r + y·2b = num.
    let forged = [
        (CellRef::Base(*y_off), fr(y + 1)),
        (CellRef::Base(sign.low), fr(y + 1)),
    ];
    m.assert_rejected_by(&forged, &[Rejection::BasicGate]);
}

#[test]
fn divide_by_zero_is_refused_by_the_ranges() {
    // b = 0 makes 2b = 0, so d + r = -1: r and d cannot both be in range. The forgery keeps
    // every gate true: num = a·2^(s+1), r = num (y = 0), d = -1 - num.
    let (a, b) = (3i128, 1i128);
    let mut m = divide_circuit(a, b);
    let ([r_off, y_off, d_off], sign) = &m.result.clone();
    let start = r_off - 8;
    let num = a * 32;
    let forged = [
        (CellRef::Base(start), fr(0)), // b and its copies (a public input)
        (CellRef::Base(start + 3), fr(num)), // num
        (CellRef::Base(start + 7), fr(0)), // 2b
        (CellRef::Base(*y_off), fr(0)),
        (CellRef::Base(sign.low), fr(0)),
        (CellRef::Base(*r_off), fr(num)),
        (CellRef::Base(*d_off), fr(-1 - num)),
        (CellRef::Base(start + 15), fr(-1)), // d + r
    ];
    m.assert_rejected_by(&forged, &[Rejection::RangeLookup]);
}

#[test]
fn sqrt_is_the_floor_root_and_every_cell_is_constrained() {
    for (v, shift) in [
        (0i128, 4u32),
        (1, 4),
        (2, 0),
        (15, 0),
        (16, 0),
        (1000, 4),
        (65535, 2),
    ] {
        let want = zkinfer_model::isqrt_scaled(v, shift).unwrap();
        let mut m = MockCircuit::build(K, |ctx, range, _lc| {
            let chip = QuantChip::new(range.clone());
            let vc = ctx.load_witness(fr(v));
            let (s, _) = chip.sqrt(ctx, vc, shift, 17, 20, &here).unwrap();
            (val(&s), vec![vc, s])
        });
        let case = format!("sqrt({v} · 2^{shift})");
        assert_eq!(m.result, want, "{case}");
        assert!(m.satisfied(), "{case}");
        assert_eq!(m.unconstrained_cells(), Vec::<CellRef>::new(), "{case}");
    }
}

#[test]
fn sqrt_slacks_reach_their_bound() {
    // At the top of a 10-bit domain with shift 4 the slacks come near 2s: c1 = 239 for
    // v = 1023, c2 = 248 for v = 961 (u = 124² exactly). Their range is sized for that.
    for (v, c1, c2) in [(1023i128, 239i128, 15), (961, 0, 248)] {
        let mut m = MockCircuit::build(K, |ctx, range, _lc| {
            let chip = QuantChip::new(range.clone());
            let vc = ctx.load_witness(fr(v));
            let start = ctx.advice.len();
            let (s, _) = chip.sqrt(ctx, vc, 4, 10, 9, &here).unwrap();
            ((start, val(&s)), vec![vc, s])
        });
        let (start, s) = m.result;
        assert_eq!(s, zkinfer_model::isqrt_scaled(v, 4).unwrap());
        assert_eq!(m.value(CellRef::Base(start + 4)), fr(c1), "v = {v}");
        assert_eq!(m.value(CellRef::Base(start + 15)), fr(c2), "v = {v}");
        assert!(m.satisfied(), "v = {v}");
    }
}

#[test]
fn sqrt_refuses_negative_or_too_wide_inputs() {
    for v in [-1i128, 1 << 17] {
        MockCircuit::build(K, |ctx, range, _lc| {
            let chip = QuantChip::new(range.clone());
            let vc = ctx.load_witness(fr(v));
            let r = chip.sqrt(ctx, vc, 4, 17, 20, &here);
            assert!(
                matches!(r, Err(CircuitError::OutOfRange { value, .. }) if value == v),
                "v = {v}"
            );
            ((), vec![])
        });
    }
}

#[test]
fn sqrt_slacks_are_range_checked() {
    // u = 50: s = 7 (49 ≤ 50 < 64). Claiming 8, 6 or −7 with both slacks recomputed keeps
    // every gate true and leaves one slack negative: its range check alone refuses it.
    // in_bits 10 makes both slacks 7 bits wide, one whole lookup limb.
    let mut m = MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let vc = ctx.load_witness(fr(50));
        let start = ctx.advice.len();
        let (s, nb) = chip.sqrt(ctx, vc, 0, 10, 8, &here).unwrap();
        ((start, SignCells::of(&nb.unwrap(), 8)), vec![vc, s])
    });
    let (start, sign) = &m.result.clone();
    // Layout: [0, v, 1, u] [c1, s, s', u] [0, s, 2, 2s, s, s, t] [c2, u, 1, t].
    let (c1, s, two_s, t, c2) = (start + 4, start + 5, start + 11, start + 14, start + 15);
    assert_eq!(m.value(CellRef::Base(s)), fr(7));
    let forge = |fake: i128| {
        vec![
            (CellRef::Base(c1), fr(50 - fake * fake)),
            (CellRef::Base(s), fr(fake)),
            (CellRef::Base(two_s), fr(2 * fake)),
            (CellRef::Base(t), fr(2 * fake + fake * fake)),
            (CellRef::Base(c2), fr(2 * fake + fake * fake - 50)),
            (CellRef::Base(sign.low), fr(fake + 128 * (fake < 0) as i128)),
            (CellRef::Base(sign.nb), fr((fake < 0) as i128)),
        ]
    };
    for fake in [8i128, 6, -7] {
        m.assert_rejected_by(&forge(fake), &[Rejection::RangeLookup]);
    }
    // The root moved alone breaks c1 + s·s = u.
    let forged = [(CellRef::Base(s), fr(8)), (CellRef::Base(sign.low), fr(8))];
    m.assert_rejected_by(&forged, &[Rejection::BasicGate]);
    // s·s' with s' ≠ s: s = 8, s' = 6 and c1 = 50 − 48 = 2 satisfy every gate and both
    // ranges; only the copy constraint s = s' refuses it.
    let mut forged = forge(8);
    forged[0] = (CellRef::Base(c1), fr(2));
    let got = m.rejections_with(&forged, &[(CellRef::Base(s + 1), fr(6))]);
    assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![Rejection::Copy]);
}

#[test]
fn dot_shortcuts_keep_exact_values() {
    // Products of two constants fold into the bias, a constant first operand is swapped, a
    // lone weight-1 term with nothing to add or shift is the input cell itself, and an output
    // with no variable is a constant: each exactly the value `QGraph::eval` computes.
    let x = 37i128;
    type Case<'a> = (&'a str, &'a [(Option<i128>, i128)], i128, u32, i128);
    let cases: &[Case] = &[
        // (case, [(constant a or the cell x, b)], bias, shift, want)
        ("x·1", &[(None, 1)], 0, 0, x),
        ("(x·1) >> 3", &[(None, 1)], 0, 3, x >> 3),
        ("x·1 + 5", &[(None, 1)], 5, 0, x + 5),
        ("x·1 + x·2", &[(None, 1), (None, 2)], 0, 0, 3 * x),
        ("3·4 + x·5", &[(Some(3), 4), (None, 5)], 1, 0, 13 + 5 * x),
        (
            "(3·4 + x·5) >> 2",
            &[(Some(3), 4), (None, 5)],
            1,
            2,
            (13 + 5 * x) >> 2,
        ),
        ("5·x (constant first)", &[(Some(-5), 0)], 0, 0, -5 * x),
        (
            "3·4 + 5·6 >> 2",
            &[(Some(3), 4), (Some(5), 6)],
            1,
            2,
            43 >> 2,
        ),
    ];
    for width in [0usize, 2] {
        for &(case, pairs, bias, shift, want) in cases {
            let m = MockCircuit::build_with(K, width, |ctx, range, lc| {
                let chip = QuantChip::new(range.clone());
                let xc = ctx.load_witness(fr(x));
                let cell = Elem::Cell(xc);
                let pairs: Vec<(Elem, Elem)> = pairs
                    .iter()
                    .map(|&(a, b)| match (a, case.contains("constant first")) {
                        (Some(a), true) => (Elem::Const(a), cell),
                        (Some(a), false) => (Elem::Const(a), Elem::Const(b)),
                        (None, _) => (cell, Elem::Const(b)),
                    })
                    .collect();
                let out = chip.dot(ctx, lc, &pairs, bias, shift, 16, &here).unwrap();
                let same_cell = matches!(out.out, Elem::Cell(c) if c.cell == xc.cell);
                let public = match out.out {
                    Elem::Cell(c) => vec![c],
                    Elem::Const(_) => vec![],
                };
                ((out.out.value(), same_cell), public)
            });
            let case = format!("{case} at width {width}");
            assert_eq!(m.result.0, want, "{case}");
            assert_eq!(m.result.1, case.starts_with("x·1 at"), "{case}");
            // With a lincomb region, any product of a cell and a constant goes there, the
            // constant-first one too (swapped); a pass-through or a constant lays out nothing.
            let lays_out = !case.starts_with("x·1 at") && pairs.iter().any(|p| p.0.is_none());
            let swapped = case.contains("constant first");
            assert_eq!(
                !m.lincomb_cells().is_empty(),
                width > 0 && (lays_out || swapped),
                "{case}"
            );
            assert!(m.satisfied(), "{case}");
        }
    }
}

#[test]
fn lincomb_rows_at_each_width() {
    // Two combinations: 2 inputs + the output (3 terms), 4 inputs + the output (5 terms).
    let m = MockCircuit::build_with(K, 2, |ctx, range, lc| {
        let chip = QuantChip::new(range.clone());
        let xs: Vec<_> = (1..=4).map(|v| ctx.load_witness(fr(v))).collect();
        let mut outs = vec![];
        for n in [2usize, 4] {
            let pairs: Vec<(Elem, Elem)> = xs[..n]
                .iter()
                .map(|c| (Elem::Cell(*c), Elem::Const(3)))
                .collect();
            let out = chip.dot(ctx, lc, &pairs, 0, 0, 16, &here).unwrap();
            let Elem::Cell(o) = out.out else {
                panic!("expected a cell")
            };
            outs.push(o);
        }
        ((), outs)
    });
    let lc = &m.circuit().lincomb;
    assert_eq!(lc.sizes(), &[3, 5]);
    // Width 2: 2 + 3 rows, and the closing row.
    assert_eq!(lc.rows(), 6);
    assert_eq!(LinCombRegion::rows_at(lc.sizes(), 1), 9);
    assert_eq!(LinCombRegion::rows_at(lc.sizes(), 4), 4);
    assert_eq!(LinCombRegion::rows_at(lc.sizes(), 0), 0);
    assert_eq!(LinCombRegion::rows_at(&[], 3), 0);
    assert!(m.satisfied());
}

#[test]
fn rescale_gate_binds_the_result() {
    // y moved alone (its sign check with it, r unchanged): on halo2-base's gate only the
    // rescale gate r = acc − 2^s·y objects; on the lincomb region only the end of the chain.
    for (width, by) in [(0usize, Rejection::BasicGate), (2, Rejection::LinCombEnds)] {
        let mut m = rescale_circuit(width);
        let (y_off, _, sign) = m.result;
        let y = (37 * 300) >> 7;
        let forged = [
            (CellRef::Base(y_off), fr(y + 1)),
            (CellRef::Base(sign.low), fr(y + 1)),
        ];
        m.assert_rejected_by(&forged, &[by]);
    }
}

#[test]
fn lincomb_junctions_pin_each_chain() {
    // Two combinations back to back, y1 = 3x and y2 = 5z: y1 + 1 and y2 − 1 leave the first
    // chain one short and the second one over, so the last accumulator is still zero; only
    // the end gate at the junction (the second chain's first row) sees it.
    let mut m = MockCircuit::build_with(K, 1, |ctx, range, lc| {
        let chip = QuantChip::new(range.clone());
        let mut outs = vec![];
        for (v, w) in [(7i128, 3i128), (4, 5)] {
            let x = ctx.load_witness(fr(v));
            let out = chip
                .dot(ctx, lc, &[(Elem::Cell(x), Elem::Const(w))], 0, 0, 16, &here)
                .unwrap();
            let Elem::Cell(o) = out.out else {
                panic!("expected a cell")
            };
            outs.push(o);
        }
        let offsets = [offset_of(ctx, &outs[0]), offset_of(ctx, &outs[1])];
        (offsets, outs)
    });
    let [y1, y2] = m.result;
    let forged = [
        (CellRef::Base(y1), fr(21 + 1)),
        (CellRef::Base(y2), fr(20 - 1)),
    ];
    m.assert_rejected_by(&forged, &[Rejection::LinCombEnds]);
}

#[test]
fn divide_gates_each_bind() {
    let (a, b) = (11i128, 5i128);
    let mut m = divide_circuit(a, b);
    let ([r_off, y_off, d_off], sign) = m.result;
    let start = r_off - 8;
    let (b2, dr) = (start + 7, start + 15);
    let y = zkinfer_model::divide(a, b, 4).unwrap();
    let num = a * 32 + b;
    let r = num - y * 2 * b;
    // 2b claimed as 12: y = 29, r = 9, d = 2 satisfy r + y·2b = num and d + r + 1 = 2b with
    // both in range; only the gate 2b = b + b·1 objects (without it any quotient passes).
    let forged = [
        (CellRef::Base(b2), fr(12)),
        (CellRef::Base(y_off), fr(29)),
        (CellRef::Base(sign.low), fr(29)),
        (CellRef::Base(r_off), fr(9)),
        (CellRef::Base(d_off), fr(2)),
        (CellRef::Base(dr), fr(11)),
    ];
    assert_eq!((29 * 12 + 9, 2 + 9 + 1), (num, 12));
    m.assert_rejected_by(&forged, &[Rejection::BasicGate]);
    // y − 1 with r + 2b (in range, so r < 2b is all that refuses it): d + r + 1 = 2b is two
    // gates through the cell d + r, and breaking either one alone is refused.
    for d_plus_r in [2 * b - 1, 2 + r + 2 * b] {
        let forged = [
            (CellRef::Base(y_off), fr(y - 1)),
            (CellRef::Base(sign.low), fr(y - 1)),
            (CellRef::Base(r_off), fr(r + 2 * b)),
            (CellRef::Base(dr), fr(d_plus_r)),
        ];
        m.assert_rejected_by(&forged, &[Rejection::BasicGate]);
    }
}

#[test]
fn sqrt_gates_each_bind() {
    // u = 50, honest root 7. Each forgery keeps both slacks in range and every gate but one
    // true; without that gate the wrong root (8 or 6) would pass.
    let mut m = MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let vc = ctx.load_witness(fr(50));
        let start = ctx.advice.len();
        let (s, nb) = chip.sqrt(ctx, vc, 0, 10, 8, &here).unwrap();
        ((start, SignCells::of(&nb.unwrap(), 8)), vec![vc, s])
    });
    let (start, sign) = m.result;
    // Layout: [0, v, 1, u] [c1, s, s', u] [0, s, 2, 2s, s, s, t] [c2, u, 1, t].
    let (c1, s, two_s, t, c2) = (start + 4, start + 5, start + 11, start + 14, start + 15);
    let cases: [(&str, [i128; 5]); 4] = [
        // [s, c1, 2s, t, c2]
        ("c1 + s·s = u", [8, 0, 16, 80, 30]),
        ("2s = s·2", [6, 14, 20, 56, 6]),
        ("t = 2s + s·s", [6, 14, 12, 64, 14]),
        ("c2 + u = t", [6, 14, 12, 48, 5]),
    ];
    for (gate, [sv, c1v, two_sv, tv, c2v]) in cases {
        let forged = [
            (CellRef::Base(s), fr(sv)),
            (CellRef::Base(sign.low), fr(sv)),
            (CellRef::Base(c1), fr(c1v)),
            (CellRef::Base(two_s), fr(two_sv)),
            (CellRef::Base(t), fr(tv)),
            (CellRef::Base(c2), fr(c2v)),
        ];
        let got = m.rejections(&forged);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![Rejection::BasicGate],
            "{gate}"
        );
    }
}

/// `signed_range` of `v` at `bits`, with `x` public; returns the offsets of `x`, of the
/// shifted value `x + 2^(bits-1)` and, when `bits` is not a whole number of lookup limbs, of
/// the partial-limb check cell (the shifted value times `2^(limb - bits)`).
/// Offsets of `x`, of `x + 2^(bits-1)`, and of the partial-limb check cell with its factor.
type RangeCells = (usize, usize, Option<(usize, Fr)>);

fn signed_range_circuit(v: i128, bits: u32) -> MockCircuit<RangeCells> {
    MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let x = ctx.load_witness(fr(v));
        chip.signed_range(ctx, x, bits, &here).unwrap();
        let xo = offset_of(ctx, &x);
        // Layout: x, then add [x, 2^(bits-1), 1, shifted], then (one limb) the partial check
        // [0, shifted, 2^(limb - bits), check].
        let limb = K - 1;
        let check = (bits < limb && bits > 1).then(|| (xo + 8, fr(1i128 << (limb - bits))));
        ((xo, xo + 4, check), vec![x])
    })
}

#[test]
fn signed_range_values_and_refusals() {
    for bits in [5u32, 7] {
        let half = 1i128 << (bits - 1);
        for v in [-half, -1, 0, 1, half - 1] {
            let mut m = signed_range_circuit(v, bits);
            assert!(m.satisfied(), "{v} at {bits} bits");
            assert_eq!(
                m.unconstrained_cells(),
                Vec::<CellRef>::new(),
                "{v} at {bits} bits"
            );
        }
        for v in [-half - 1, half, 1 << 40] {
            MockCircuit::build(K, |ctx, range, _lc| {
                let chip = QuantChip::new(range.clone());
                let x = ctx.load_witness(fr(v));
                let r = chip.signed_range(ctx, x, bits, &here);
                assert!(
                    matches!(r, Err(CircuitError::OutOfRange { value, .. }) if value == v),
                    "{v} at {bits} bits: {r:?}"
                );
                ((), vec![])
            });
        }
    }
}

#[test]
fn signed_range_is_exact_at_both_ends() {
    // One past either end, written into x, the shifted value (and the partial-limb check
    // cell): the range lookup alone refuses it. The add gate alone refuses a shifted value
    // that is not x + 2^(bits-1).
    for bits in [5u32, 7] {
        let half = 1i128 << (bits - 1);
        for (honest, forged) in [(half - 1, half), (-half, -half - 1)] {
            let mut m = signed_range_circuit(honest, bits);
            let (x, shifted, check) = m.result;
            assert_eq!(m.value(CellRef::Base(shifted)), fr(honest + half));
            let mut changes = vec![
                (CellRef::Base(x), fr(forged)),
                (CellRef::Base(shifted), fr(forged + half)),
            ];
            if let Some((at, mult)) = check {
                changes.push((CellRef::Base(at), fr(forged + half) * mult));
            }
            m.assert_rejected_by(&changes, &[Rejection::RangeLookup]);
        }
        let mut m = signed_range_circuit(3, bits);
        let (_, shifted, check) = m.result;
        let mut changes = vec![(CellRef::Base(shifted), fr(3 + half + 1))];
        if let Some((at, mult)) = check {
            changes.push((CellRef::Base(at), fr(3 + half + 1) * mult));
        }
        m.assert_rejected_by(&changes, &[Rejection::BasicGate]);
    }
}

/// `floor(37·100 / 2^7)` on a chip for outputs no Max/Min reads, at 7 signed bits: with K = 8's
/// 7-bit table the sign bit would cost 12 cells and the shifted check 4, so the output is
/// range-checked as `y + 2^6 ∈ [0, 2^7)` without a sign bit. Returns the offsets of y, r and
/// the shifted value; `x` and `y` are public.
fn unsigned_rescale_circuit(width: usize) -> MockCircuit<(usize, usize, usize, bool)> {
    MockCircuit::build_with(K, width, |ctx, range, lc| {
        let chip = QuantChip::new(range.clone()).without_signs();
        let x = ctx.load_witness(fr(37));
        let out = chip
            .dot(
                ctx,
                lc,
                &[(Elem::Cell(x), Elem::Const(100))],
                0,
                7,
                7,
                &here,
            )
            .unwrap();
        let Elem::Cell(y) = out.out else {
            panic!("expected a cell")
        };
        let y_off = offset_of(ctx, &y);
        let r_off = if width == 0 { y_off + 2 } else { y_off + 1 };
        // The add [y, 2^6, 1, y + 2^6] is the last region: whole limbs add no cells.
        let shifted = ctx.advice.len() - 1;
        ((y_off, r_off, shifted, out.neg.is_none()), vec![x, y])
    })
}

#[test]
fn an_output_no_extremum_reads_gets_the_cheaper_exact_range_check() {
    let acc = 37 * 100;
    let (y, r) = (acc >> 7, acc & 127);
    for width in [0usize, 2] {
        let mut m = unsigned_rescale_circuit(width);
        let (y_off, r_off, shifted, no_sign) = m.result;
        assert!(no_sign, "width {width}: no sign bit was proved");
        assert!(m.satisfied(), "width {width}");
        assert_eq!(
            m.unconstrained_cells(),
            Vec::<CellRef>::new(),
            "width {width}"
        );
        assert_eq!(m.value(CellRef::Base(y_off)), fr(y));
        assert_eq!(m.value(CellRef::Base(shifted)), fr(y + 64));
        // The remainder's check still binds: (y + 1, r − 2^7) keeps every gate true.
        m.assert_rejected_by(
            &[
                (CellRef::Base(y_off), fr(y + 1)),
                (CellRef::Base(r_off), fr(r - 128)),
                (CellRef::Base(shifted), fr(y + 1 + 64)),
            ],
            &[Rejection::RangeLookup],
        );
        // And the output's: r + 1 has the field solution y = (acc − r − 1) / 2^7, far out of
        // range; only the shifted value's lookup refuses it.
        let y_wrapped = (fr(acc) - fr(r + 1)) * fr(128).invert().unwrap();
        assert!(signed(&y_wrapped).is_none());
        m.assert_rejected_by(
            &[
                (CellRef::Base(r_off), fr(r + 1)),
                (CellRef::Base(y_off), y_wrapped),
                (CellRef::Base(shifted), y_wrapped + fr(64)),
            ],
            &[Rejection::RangeLookup],
        );
        // The shift gate ties the checked value to y.
        m.assert_rejected_by(
            &[(CellRef::Base(shifted), fr(y + 65))],
            &[Rejection::BasicGate],
        );
    }
    // With a sign reader, the same product proves its sign bit.
    let signed = MockCircuit::build_with(K, 0, |ctx, range, lc| {
        let chip = QuantChip::new(range.clone());
        let x = ctx.load_witness(fr(37));
        let out = chip
            .dot(
                ctx,
                lc,
                &[(Elem::Cell(x), Elem::Const(100))],
                0,
                7,
                7,
                &here,
            )
            .unwrap();
        (out.neg.is_some(), vec![x])
    });
    assert!(signed.result);
}

#[test]
fn a_remainder_short_of_whole_limbs_is_scaled_up_to_them() {
    // K = 8: 7-bit limbs. Shift 5 scales the equation by 2^2, so r' = 4·r is checked as one
    // whole limb: exactly the cells of a shift of 7, none for a partial limb.
    let acc = 37 * 30;
    let (y, r) = (acc >> 5, acc & 31);
    for width in [0usize, 2] {
        let mut m = rescale_circuit_with(width, 30, 5);
        let (y_off, r_off, sign, cells) = m.result;
        assert_eq!(m.value(CellRef::Base(y_off)), fr(y), "width {width}");
        assert_eq!(m.value(CellRef::Base(r_off)), fr(4 * r), "width {width}");
        assert!(m.satisfied(), "width {width}");
        assert_eq!(
            m.unconstrained_cells(),
            Vec::<CellRef>::new(),
            "width {width}"
        );
        let whole = rescale_circuit_with(width, 30, 7).result.3;
        assert_eq!(cells, whole, "width {width}");
        // (y + 1, r' − 2^7) keeps the scaled equation: the remainder's lookup refuses it.
        m.assert_rejected_by(
            &[
                (CellRef::Base(y_off), fr(y + 1)),
                (CellRef::Base(r_off), fr(4 * r - 128)),
                (CellRef::Base(sign.low), fr(y + 1)),
            ],
            &[Rejection::RangeLookup],
        );
        // r' + 1 has the field solution y = (4·acc − r' − 1) / 2^7, far out of range: only
        // the result's range check refuses it.
        let y_wrapped = (fr(4 * acc) - fr(4 * r + 1)) * fr(128).invert().unwrap();
        assert!(signed(&y_wrapped).is_none());
        m.assert_rejected_by(
            &[
                (CellRef::Base(r_off), fr(4 * r + 1)),
                (CellRef::Base(y_off), y_wrapped),
                (CellRef::Base(sign.low), y_wrapped),
            ],
            &[Rejection::RangeLookup],
        );
        // r' moved alone: the rescale gate (or the lincomb chain's end) objects.
        let by = if width == 0 {
            Rejection::BasicGate
        } else {
            Rejection::LinCombEnds
        };
        m.assert_rejected_by(&[(CellRef::Base(r_off), fr(4 * r + 4))], &[by]);
    }
}
