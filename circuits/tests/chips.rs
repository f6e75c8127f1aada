//! Every chip: correct values, MockProver accepts, and no assigned advice cell can be changed
//! alone without MockProver rejecting. Forged witnesses that keep the main gate true (the
//! non-canonical sign of zero, a rescale off by one with a compensating remainder, the wrong
//! branch of a max) are rejected by the range checks.

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};
use zkinfer_circuits::chips::{Elem, QuantChip};
use zkinfer_circuits::field::{fr, signed};
use zkinfer_circuits::testing::{CellRef, MockCircuit};
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
    for v in [128i128, -129, 1 << 40] {
        MockCircuit::build(K, |ctx, range, _lc| {
            let chip = QuantChip::new(range.clone());
            let x = ctx.load_witness(fr(v));
            let r = chip.sign_bit(ctx, x, 8, &here);
            assert!(
                matches!(r, Err(CircuitError::OutOfRange { value, bits: 8, .. }) if value == v)
            );
            ((), vec![])
        });
    }
}

#[test]
fn sign_of_zero_is_canonical() {
    // x = 0 = low - nb·2^B also holds with nb = 1, low = 2^B: the range check must refuse it.
    // B is the rounded width: 7 at K = 8 for both 8 and 5 requested bits.
    for bits in [8u32, 5] {
        let mut m = MockCircuit::build(K, |ctx, range, _lc| {
            let chip = QuantChip::new(range.clone());
            let x = ctx.load_witness(fr(0));
            let nb = chip.sign_bit(ctx, x, bits, &here).unwrap();
            let low_offset = offset_of(ctx, &nb) - 1;
            ((low_offset, offset_of(ctx, &nb)), vec![x])
        });
        let (low, nb) = m.result;
        assert!(m.satisfied());
        assert!(
            !m.accepts_tampered(&[(CellRef::Base(low), fr(128)), (CellRef::Base(nb), fr(1))]),
            "bits = {bits}"
        );
    }
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
            assert!(!m.accepts_tampered(&[(pair[0], fr(1)), (pair[1], fr(-1))]));
        }
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

#[test]
fn rescale_off_by_one_with_compensating_remainder_is_rejected() {
    // y·2^s + r = acc still holds with (y + 1, r - 2^s): the remainder range check refuses it.
    // In halo2-base's gate r sits two cells after y; with the lincomb region right after it.
    for (width, r_after_y) in [(0usize, 2usize), (2, 1)] {
        let mut m = MockCircuit::build_with(K, width, |ctx, range, lc| {
            let chip = QuantChip::new(range.clone());
            let x = ctx.load_witness(fr(37));
            let out = chip
                .dot(ctx, lc, &[(Elem::Cell(x), Elem::Const(3))], 0, 4, 16, &here)
                .unwrap();
            let Elem::Cell(y) = out.out else {
                panic!("expected a cell")
            };
            let y_off = offset_of(ctx, &y);
            ((y_off, val(&y)), vec![x, y])
        });
        let (y_off, y) = m.result;
        assert_eq!(y, (37 * 3) >> 4);
        let r = 37 * 3 - (y << 4);
        assert!(m.satisfied());
        assert_eq!(val_at(&mut m, y_off + r_after_y), r, "width {width}");
        let forged = [
            (CellRef::Base(y_off), fr(y + 1)),
            (CellRef::Base(y_off + r_after_y), fr(r - 16)),
        ];
        assert!(!m.accepts_tampered(&forged), "width {width}");
        // And the public output alone cannot be changed either.
        let mut inst = m.instances().to_vec();
        inst[1] += Fr::from(1u64);
        assert!(!m.accepts_instances(inst));
    }
}

fn val_at<T>(m: &mut MockCircuit<T>, offset: usize) -> i128 {
    signed(&m.base_cell(offset)).unwrap()
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

#[test]
fn max_with_the_wrong_branch_is_rejected() {
    // max(2, 9) claimed as 2: flip the negative bit of d = -7 and fix `low` so the sign gate
    // holds; `low` then falls outside its range.
    let mut m = MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let a = ctx.load_witness(fr(2));
        let b = ctx.load_witness(fr(9));
        let start = ctx.advice.len();
        let out = chip
            .extremum2(
                ctx,
                ExtremumKind::Max,
                Elem::Cell(a),
                Elem::Cell(b),
                None,
                8,
                &here,
            )
            .unwrap();
        let Elem::Cell(o) = out else {
            panic!("expected a cell")
        };
        ((start, offset_of(ctx, &o)), vec![a, b, o])
    });
    assert!(m.satisfied());
    let (start, out) = m.result;
    // Layout: sub [d, b, 1, a] (4 cells), sign [low, nb, -128, d], bit check, range check, then out.
    let low = start + 4;
    let nb = start + 5;
    let forged = [
        (CellRef::Base(low), fr(-7)),
        (CellRef::Base(nb), fr(0)),
        (CellRef::Base(out), fr(2)),
    ];
    assert!(!m.accepts_tampered(&forged));
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

#[test]
fn divide_quotient_off_by_one_is_rejected() {
    // r + y·2b = num and d + r + 1 = 2b still hold with (y ± 1, r ∓ 2b, d ± 2b): one of r and d
    // leaves its range.
    let (a, b, shift) = (11i128, 5i128, 4u32);
    let mut m = MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let (ac, bc) = (ctx.load_witness(fr(a)), ctx.load_witness(fr(b)));
        let start = ctx.advice.len();
        chip.divide(ctx, ac, bc, shift, 14, 20, &here).unwrap();
        // The quotient stays private: no instance pins it, only the range checks can object.
        (start, vec![ac, bc])
    });
    let start = m.result;
    // Layout: [b, a, 2^(s+1), num] [b, b, 1, 2b] [r, y, 2b, num] [d, r, 1, d+r, 1, 1, 2b].
    let (r_off, y_off, d_off, r2_off) = (start + 8, start + 9, start + 12, start + 13);
    let y = signed(&m.base_cell(y_off)).unwrap();
    let r = signed(&m.base_cell(r_off)).unwrap();
    let d = signed(&m.base_cell(d_off)).unwrap();
    assert_eq!(y, zkinfer_model::divide(a, b, shift).unwrap());
    assert_eq!((r + d + 1, r + y * 2 * b), (2 * b, a * 32 + b));
    assert!(m.satisfied());
    for dy in [1i128, -1] {
        let forged = [
            (CellRef::Base(y_off), fr(y + dy)),
            (CellRef::Base(r_off), fr(r - dy * 2 * b)),
            (CellRef::Base(r2_off), fr(r - dy * 2 * b)),
            (CellRef::Base(d_off), fr(d + dy * 2 * b)),
        ];
        assert!(!m.accepts_tampered(&forged), "y {dy:+}");
    }
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
fn sqrt_off_by_one_roots_are_rejected() {
    // u = 50: s = 7 (49 ≤ 50 < 64). Claiming 6 or 8 (or -7, -8) with slacks recomputed to keep
    // both gates true leaves one slack negative.
    let mut m = MockCircuit::build(K, |ctx, range, _lc| {
        let chip = QuantChip::new(range.clone());
        let vc = ctx.load_witness(fr(50));
        let start = ctx.advice.len();
        chip.sqrt(ctx, vc, 0, 17, 20, &here).unwrap();
        (start, vec![vc])
    });
    let start = m.result;
    // Layout: [0, v, 1, u] [c1, s, s', u] [0, s, 2, 2s, s, s, t] [c2, u, 1, t].
    let (c1, s, s2) = (start + 4, start + 5, start + 6);
    let (s3, two_s, s4, s5, t, c2) = (
        start + 9,
        start + 11,
        start + 12,
        start + 13,
        start + 14,
        start + 15,
    );
    assert_eq!(signed(&m.base_cell(s)).unwrap(), 7);
    assert!(m.satisfied());
    for fake in [6i128, 8, -7, -8] {
        let forged = [
            (CellRef::Base(c1), fr(50 - fake * fake)),
            (CellRef::Base(s), fr(fake)),
            (CellRef::Base(s2), fr(fake)),
            (CellRef::Base(s3), fr(fake)),
            (CellRef::Base(two_s), fr(2 * fake)),
            (CellRef::Base(s4), fr(fake)),
            (CellRef::Base(s5), fr(fake)),
            (CellRef::Base(t), fr(2 * fake + fake * fake)),
            (CellRef::Base(c2), fr(2 * fake + fake * fake - 50)),
        ];
        assert!(!m.accepts_tampered(&forged), "s = {fake}");
    }
}
