//! Matrix products checked by Freivalds' algorithm instead of multiplied out.
//!
//! A product `Z = L·R` (`L`: n×m, `R`: m×p, either factor variable or `R` constant) costs
//! n·m·p multiplications when each output is a dot product. Here the prover commits `Z` as
//! plain witnesses in halo2's first phase; a challenge `γ` drawn after that commitment gives
//! `v = (γ^(p−1), …, γ, 1)`, and the circuit checks `Z·v = L·(R·v)` row by row, which costs
//! m·p + n·(p + m) rows instead: `R·v` once per shared right factor, then per row of `L`
//! a Horner sum over its outputs followed by its dot product with `R·v`.
//!
//! Columns: `x` (first phase, copies of the operands and outputs), `c` (fixed: a constant
//! right factor), `h` and `w` (second phase: running sums, and copies of `R·v`). Gates:
//!
//! ```text
//!   start:  h = x + c                      first entry of a Horner sum
//!   horner: h = h(ω⁻¹X)·γ + x + c          next entries
//!   dot:    h = h(ω⁻¹X) − x·w              L's row times R·v, subtracted from the sum
//!   check:  h = 0                          the last dot row of each output row
//!   constant: x = 0                        every row whose entry is the constant in `c`
//! ```
//!
//! Every `x` is either a copy of a halo2-base cell or pinned to zero by `constant`. Without
//! that gate the entry a constant row contributes is `x + c` with `x` free, so a prover holding
//! only the proving key could add any `W' − W` to a weight of `R` (and compute `Z` from `W'`):
//! the forgery of layout 1, which every row of a constant factor admitted, zero weights
//! included (their `c` is an unassigned zero).
//!
//! Soundness. For row `g` of `L` the chain ends at
//! `D_g(γ) = Σ_j (Z_gj − (L·R)_gj)·γ^(p−1−j)`, which `check` forces to zero. `Z`, `L` and `R`
//! are all committed before `γ` exists (first-phase advice and fixed columns), so when
//! `Z_g ≠ (L·R)_g` the polynomial `D_g` is non-zero of degree at most `p − 1` and vanishes at
//! the random `γ` with probability at most `(p − 1)/|F|` (Schwartz–Zippel). Over every checked
//! row (at most `2^k` of them, p ≤ 2^k) the error is below `2^(2k)/|F| ≤ 2^48 / 2^253` at
//! k ≤ 24; a prover grinding `2^80` transcripts under Fiat–Shamir still succeeds with
//! probability below `2^-125`. Equality holds in the field; the true integer products are far
//! below `|F|/2` (activation bits + coefficient bits + log m ≪ 253), so the rescale after the
//! product (remainder and result range-checked, as for every dot product) pins the same
//! integers as multiplying out would.

use halo2_base::halo2_proofs::circuit::{Cell, Region, Value};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::halo2_proofs::plonk::{
    Advice, Challenge, Column, ConstraintSystem, FirstPhase, Fixed, SecondPhase, Selector,
};
use halo2_base::halo2_proofs::poly::Rotation;
use halo2_base::virtual_region::copy_constraints::SharedCopyConstraintManager;
use halo2_base::{AssignedValue, Context, ContextCell};

use crate::chips::Elem;
use crate::error::CircuitError;
use crate::field::fr;

/// The virtual-region identity of the first-phase Freivalds cells in halo2-base's
/// copy-constraint manager.
pub const TYPE_ID: &str = "zkinfer:freivalds";

/// The columns, selectors, challenge and gates of the Freivalds region.
#[derive(Clone, Debug)]
pub struct FreivaldsConfig {
    x: Column<Advice>,
    c: Column<Fixed>,
    h: Column<Advice>,
    w: Column<Advice>,
    start: Selector,
    horner: Selector,
    dot: Selector,
    check: Selector,
    constant: Selector,
    gamma: Challenge,
}

impl FreivaldsConfig {
    /// Adds the columns, the challenge and the four gates to `meta`.
    pub fn configure(meta: &mut ConstraintSystem<Fr>) -> Self {
        let x = meta.advice_column_in(FirstPhase);
        let h = meta.advice_column_in(SecondPhase);
        let w = meta.advice_column_in(SecondPhase);
        for col in [x, h, w] {
            meta.enable_equality(col);
        }
        let c = meta.fixed_column();
        let gamma = meta.challenge_usable_after(FirstPhase);
        let (start, horner, dot, check, constant) = (
            meta.selector(),
            meta.selector(),
            meta.selector(),
            meta.selector(),
            meta.selector(),
        );
        meta.create_gate("freivalds start", |m| {
            let s = m.query_selector(start);
            let h = m.query_advice(h, Rotation::cur());
            let x = m.query_advice(x, Rotation::cur());
            let c = m.query_fixed(c, Rotation::cur());
            vec![s * (h - x - c)]
        });
        meta.create_gate("freivalds horner", |m| {
            let s = m.query_selector(horner);
            let g = m.query_challenge(gamma);
            let prev = m.query_advice(h, Rotation::prev());
            let h = m.query_advice(h, Rotation::cur());
            let x = m.query_advice(x, Rotation::cur());
            let c = m.query_fixed(c, Rotation::cur());
            vec![s * (h - prev * g - x - c)]
        });
        meta.create_gate("freivalds dot", |m| {
            let s = m.query_selector(dot);
            let prev = m.query_advice(h, Rotation::prev());
            let h = m.query_advice(h, Rotation::cur());
            let x = m.query_advice(x, Rotation::cur());
            let w = m.query_advice(w, Rotation::cur());
            vec![s * (h - prev + x * w)]
        });
        meta.create_gate("freivalds check", |m| {
            vec![m.query_selector(check) * m.query_advice(h, Rotation::cur())]
        });
        meta.create_gate("freivalds constant", |m| {
            vec![m.query_selector(constant) * m.query_advice(x, Rotation::cur())]
        });
        Self {
            x,
            c,
            h,
            w,
            start,
            horner,
            dot,
            check,
            constant,
            gamma,
        }
    }
}

/// What a row's gate does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Start,
    Horner,
    /// A dot row; `true` on the last one of an output row (the zero check).
    Dot(bool),
}

/// Every Freivalds check of a circuit, row by row, recorded during layout; the second-phase
/// cells are computed from the challenge at synthesis.
#[derive(Clone, Debug, Default)]
pub struct FreivaldsRegion {
    /// First-phase values (zero where a row has none).
    xs: Vec<Fr>,
    /// Fixed values (a constant right factor).
    cs: Vec<Fr>,
    steps: Vec<Step>,
    /// Rows whose `x` copies a halo2-base cell.
    copied: Vec<bool>,
    /// For dot rows, the row whose `h` (an entry of `R·v`) `w` copies.
    w_from: Vec<Option<usize>>,
    /// Where to record copy constraints; `None` when only the witness is generated.
    copy: Option<SharedCopyConstraintManager<Fr>>,
    /// First-phase values the second phase is computed from, when frozen (tamper tests).
    frozen: Option<Vec<Fr>>,
    /// Whether the last `w` of each row is chosen to close its sum to zero (tamper tests).
    forge_w: bool,
    /// Whether constant rows go without the `freivalds constant` gate, as in layout 1 (the
    /// lying prover shows what it finds there).
    unpinned: bool,
}

impl FreivaldsRegion {
    /// An empty region; `copy` is halo2-base's copy manager, or `None` for witness generation.
    pub fn new(copy: Option<SharedCopyConstraintManager<Fr>>) -> Self {
        Self {
            copy,
            ..Self::default()
        }
    }

    /// Rows used.
    pub fn rows(&self) -> usize {
        self.steps.len()
    }

    /// Rows a product by an m×p matrix `R` takes here, for rows of `L` with `operands[g]`
    /// non-zero entries each (the cost compared with multiplying out).
    pub fn rows_for(m: usize, p: usize, operands: &[usize]) -> usize {
        m * p + operands.iter().map(|l| p + l).sum::<usize>()
    }

    fn push(&mut self, x: Fr, c: Fr, step: Step, copied: bool, w_from: Option<usize>) -> usize {
        self.xs.push(x);
        self.cs.push(c);
        self.steps.push(step);
        self.copied.push(copied);
        self.w_from.push(w_from);
        self.xs.len() - 1
    }

    /// Records that row `row`'s `x` is a copy of `src`.
    fn copy_of(&self, row: usize, src: &AssignedValue<Fr>) {
        if let Some(copy) = &self.copy {
            let here = ContextCell::new(TYPE_ID, 0, row);
            let src = src.cell.expect("halo2-base cells carry their position");
            copy.lock()
                .expect("copy manager lock")
                .advice_equalities
                .push((here, src));
        }
    }

    /// A Horner sum `Σ_j e_j·γ^(len−1−j)` over `entries`; returns its last row.
    fn horner(&mut self, entries: &[Elem]) -> usize {
        let mut last = 0;
        for (j, e) in entries.iter().enumerate() {
            let step = if j == 0 { Step::Start } else { Step::Horner };
            last = match e {
                Elem::Const(k) => self.push(Fr::ZERO, fr(*k), step, false, None),
                Elem::Cell(cell) => {
                    let row = self.push(*cell.value(), Fr::ZERO, step, true, None);
                    self.copy_of(row, cell);
                    row
                }
            };
        }
        last
    }

    /// `Z = L·R`, checked here: returns `Z` (n×p) as fresh halo2-base witnesses in `ctx`.
    /// `left` holds the rows of `L` (m cells each; constants become constant cells), `right`
    /// the rows of `R` (p entries each, cells or constants).
    pub fn product(
        &mut self,
        ctx: &mut Context<Fr>,
        left: &[Vec<Elem>],
        right: &[Vec<Elem>],
    ) -> Result<Vec<Vec<AssignedValue<Fr>>>, CircuitError> {
        let m = right.len();
        let p = right.first().map_or(0, Vec::len);
        if m == 0 || p == 0 || right.iter().any(|r| r.len() != p) {
            return Err(CircuitError::Internal(format!(
                "a Freivalds product with a ragged or empty right factor ({m} rows)"
            )));
        }
        if left.iter().any(|r| r.len() != m) {
            return Err(CircuitError::Internal(format!(
                "a Freivalds product whose left rows are not {m} long"
            )));
        }
        let rv: Vec<usize> = right.iter().map(|row| self.horner(row)).collect();
        let mut out = Vec::with_capacity(left.len());
        for row in left {
            let z: Vec<AssignedValue<Fr>> = (0..p)
                .map(|j| {
                    let sum: i128 = (0..m).map(|k| row[k].value() * right[k][j].value()).sum();
                    ctx.load_witness(fr(sum))
                })
                .collect();
            let zs: Vec<Elem> = z.iter().map(|c| Elem::Cell(*c)).collect();
            self.horner(&zs);
            // A constant zero of L adds nothing to the sum: no row (a border position of a
            // convolution joined to the interior's R). The last entry stays if all are.
            let mut entries: Vec<usize> = (0..m)
                .filter(|&k| !matches!(row[k], Elem::Const(0)))
                .collect();
            if entries.is_empty() {
                entries.push(m - 1);
            }
            for (i, &k) in entries.iter().enumerate() {
                let cell = match row[k] {
                    Elem::Cell(c) => c,
                    Elem::Const(v) => ctx.load_constant(fr(v)),
                };
                let at = self.push(
                    *cell.value(),
                    Fr::ZERO,
                    Step::Dot(i + 1 == entries.len()),
                    true,
                    Some(rv[k]),
                );
                self.copy_of(at, &cell);
            }
            out.push(z);
        }
        Ok(out)
    }

    /// The second-phase columns for challenge `g`: `h` by row, then `w` by row.
    fn second_phase(&self, g: Fr) -> (Vec<Fr>, Vec<Fr>) {
        let xs = self.frozen.as_ref().unwrap_or(&self.xs);
        let mut h = vec![Fr::ZERO; xs.len()];
        let mut w = vec![Fr::ZERO; xs.len()];
        for r in 0..xs.len() {
            let x = xs[r] + self.cs[r];
            h[r] = match self.steps[r] {
                Step::Start => x,
                Step::Horner => h[r - 1] * g + x,
                Step::Dot(_) => {
                    // Right-factor sums come first, so their h is already known.
                    w[r] = self.w_from[r].map_or(Fr::ZERO, |s| h[s]);
                    h[r - 1] - xs[r] * w[r]
                }
            };
            if self.forge_w && self.steps[r] == Step::Dot(true) && h[r] != Fr::ZERO {
                if let Some(inv) = Option::<Fr>::from(xs[r].invert()) {
                    w[r] = h[r - 1] * inv;
                    h[r] = Fr::ZERO;
                }
            }
        }
        (h, w)
    }

    /// Assigns the first phase (and, unless generating the witness only, the fixed column,
    /// the selectors and the physical cells of every copy for the copy manager).
    pub fn assign_first(&self, config: &FreivaldsConfig, region: &mut Region<Fr>) {
        let mut placed: Vec<(ContextCell, Cell)> = Vec::new();
        for (r, x) in self.xs.iter().enumerate() {
            let cell = region.assign_advice(config.x, r, Value::known(*x));
            if self.copy.is_some() && self.copied[r] {
                placed.push((ContextCell::new(TYPE_ID, 0, r), cell.cell()));
            }
        }
        let Some(copy) = &self.copy else {
            return;
        };
        for (r, step) in self.steps.iter().enumerate() {
            if self.cs[r] != Fr::ZERO {
                region.assign_fixed(config.c, r, self.cs[r]);
            }
            let selectors: &[&Selector] = match step {
                Step::Start => &[&config.start],
                Step::Horner => &[&config.horner],
                Step::Dot(false) => &[&config.dot],
                Step::Dot(true) => &[&config.dot, &config.check],
            };
            for s in selectors {
                s.enable(region, r).expect("selector in range");
            }
            // Dot rows always copy; a Horner row that does not holds a constant in `c`.
            if !self.copied[r] && !self.unpinned {
                config
                    .constant
                    .enable(region, r)
                    .expect("selector in range");
            }
        }
        copy.lock()
            .expect("copy manager lock")
            .assigned_advices
            .extend(placed);
    }

    /// Assigns the second phase once the challenge is known (unknown at keygen and in
    /// MockProver's first pass: then only the copy constraints are placed).
    pub fn assign_second(&self, config: &FreivaldsConfig, region: &mut Region<Fr>) {
        if self.steps.is_empty() {
            return;
        }
        let gamma = region.get_challenge(config.gamma);
        let cols = gamma.map(|g| self.second_phase(g));
        let mut h_cells = Vec::with_capacity(self.steps.len());
        for r in 0..self.steps.len() {
            let h = cols.as_ref().map(|(h, _)| h[r]);
            h_cells.push(region.assign_advice(config.h, r, h).cell());
        }
        for r in 0..self.steps.len() {
            let Some(src) = self.w_from[r] else { continue };
            let w = cols.as_ref().map(|(_, w)| w[r]);
            let cell = region.assign_advice(config.w, r, w).cell();
            if self.copy.is_some() {
                region.constrain_equal(cell, h_cells[src]);
            }
        }
    }

    /// Whether row `r`'s `x` is a copy of a halo2-base cell (else it is pinned to zero).
    pub fn is_copied(&self, r: usize) -> bool {
        self.copied[r]
    }

    /// The first-phase value of row `r`.
    pub fn cell(&self, r: usize) -> Fr {
        self.xs[r]
    }

    /// The fixed value of row `r` (a constant right-factor entry, or zero).
    pub fn constant(&self, r: usize) -> Fr {
        self.cs[r]
    }

    /// Overwrites the fixed value of row `r` as this circuit holds it, which the second phase
    /// is computed from (forgery tests: a forger computes its running sums with the keys'
    /// constants; the keys' fixed column itself is never the circuit's to change).
    pub fn set_constant(&mut self, r: usize, v: Fr) {
        self.cs[r] = v;
    }

    /// Overwrites the first-phase value of row `r` (tamper tests).
    pub fn set_cell(&mut self, r: usize, v: Fr) {
        self.xs[r] = v;
    }

    /// Computes the second phase from the first-phase values as they are now, whatever is
    /// changed later (tamper tests: a forger who keeps the running sums); `false` undoes it.
    pub fn freeze(&mut self, on: bool) {
        self.frozen = on.then(|| self.xs.clone());
    }

    /// Lays constant rows out as layout 1 did, without the gate pinning their `x` (tests of
    /// the lying prover: it must find that forgery by itself).
    #[cfg(any(test, feature = "testing"))]
    pub fn layout_1(&mut self, on: bool) {
        self.unpinned = on;
    }

    /// Makes the last `w` of each row whatever closes its sum to zero, instead of a copy of
    /// `R·v` (tamper tests: only the copy constraint stands in the way).
    pub fn forge_w(&mut self, on: bool) {
        self.forge_w = on;
    }
}
