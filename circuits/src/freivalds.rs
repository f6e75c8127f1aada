//! Matrix products checked by Freivalds' algorithm instead of multiplied out.
//!
//! A product `Z = L·R` (`L`: n×m, `R`: m×p, either factor variable or `R` constant) costs
//! n·m·p multiplications when each output is a dot product. Here the prover commits `Z` as
//! plain witnesses in halo2's first phase; a challenge `γ` drawn after that commitment gives
//! `v = (γ^(p−1), …, γ, 1)`, and the circuit checks `Z·v = L·(R·v)` row by row, which costs
//! m·p + n·(p + m) rows instead: `R·v` once per shared right factor, then per row of `L`
//! a Horner sum over its outputs followed by its dot product with `R·v`.
//!
//! Columns: `x` (first phase: copies of the operands and outputs, and the entries of a
//! constant right factor), `h` and `w` (second phase: running sums, and copies of `R·v`).
//! Gates:
//!
//! ```text
//!   start:  h = x                          first entry of a Horner sum
//!   horner: h = h(ω⁻¹X)·γ + x              next entries
//!   dot:    h = h(ω⁻¹X) − x·w              L's row times R·v, subtracted from the sum
//!   check:  h = 0                          the last dot row of each output row
//! ```
//!
//! Every `x` is bound: a copy of a halo2-base cell, or (a constant entry of `R` or `L`, zero
//! weights included) copy-constrained to the cell of halo2-base's constants column that holds
//! it, as every constant of the circuit is. Layout 1 kept a constant in a fixed column `c` of
//! its own and read `x + c` with `x` free: a prover holding only the proving key could add any
//! `W' − W` to a weight of `R` and compute `Z` from `W'`.
//!
//! Soundness. For row `g` of `L` the chain ends at
//! `D_g(γ) = Σ_j (Z_gj − (L·R)_gj)·γ^(p−1−j)`, which `check` forces to zero. `Z`, `L` and `R`
//! are all committed before `γ` exists (first-phase advice, and the constants column), so when
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
    Advice, Challenge, Column, ConstraintSystem, FirstPhase, SecondPhase, Selector,
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
    h: Column<Advice>,
    w: Column<Advice>,
    start: Selector,
    horner: Selector,
    dot: Selector,
    check: Selector,
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
        let gamma = meta.challenge_usable_after(FirstPhase);
        let (start, horner, dot, check) = (
            meta.selector(),
            meta.selector(),
            meta.selector(),
            meta.selector(),
        );
        meta.create_gate("freivalds start", |m| {
            let s = m.query_selector(start);
            let h = m.query_advice(h, Rotation::cur());
            let x = m.query_advice(x, Rotation::cur());
            vec![s * (h - x)]
        });
        meta.create_gate("freivalds horner", |m| {
            let s = m.query_selector(horner);
            let g = m.query_challenge(gamma);
            let prev = m.query_advice(h, Rotation::prev());
            let h = m.query_advice(h, Rotation::cur());
            let x = m.query_advice(x, Rotation::cur());
            vec![s * (h - prev * g - x)]
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
        Self {
            x,
            h,
            w,
            start,
            horner,
            dot,
            check,
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

/// What binds a row's `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bound {
    /// A copy of a halo2-base cell.
    Copy,
    /// The constants column's cell of its value.
    Constant,
}

/// Every Freivalds check of a circuit, row by row, recorded during layout; the second-phase
/// cells are computed from the challenge at synthesis.
#[derive(Clone, Debug, Default)]
pub struct FreivaldsRegion {
    /// First-phase values.
    xs: Vec<Fr>,
    steps: Vec<Step>,
    /// What binds each row's `x`.
    bound: Vec<Bound>,
    /// For dot rows, the row whose `h` (an entry of `R·v`) `w` copies.
    w_from: Vec<Option<usize>>,
    /// Where to record copy constraints; `None` when only the witness is generated.
    copy: Option<SharedCopyConstraintManager<Fr>>,
    /// First-phase values the second phase is computed from, when frozen (tamper tests).
    frozen: Option<Vec<Fr>>,
    /// Whether the last `w` of each row is chosen to close its sum to zero (tamper tests).
    forge_w: bool,
    /// Whether constant entries go unbound, as in layout 1 (the lying prover must find that).
    unbound: bool,
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

    fn push(&mut self, x: Fr, step: Step, bound: Bound, w_from: Option<usize>) -> usize {
        self.xs.push(x);
        self.steps.push(step);
        self.bound.push(bound);
        self.w_from.push(w_from);
        self.xs.len() - 1
    }

    /// A row holding `e`: a copy of its cell, or its constant bound to the constants column.
    fn push_elem(&mut self, e: Elem, step: Step, w_from: Option<usize>) -> usize {
        let (x, bound) = match e {
            Elem::Cell(c) => (*c.value(), Bound::Copy),
            Elem::Const(k) => (fr(k), Bound::Constant),
        };
        let row = self.push(x, step, bound, w_from);
        if let Some(copy) = &self.copy {
            let here = ContextCell::new(TYPE_ID, 0, row);
            let mut copy = copy.lock().expect("copy manager lock");
            match e {
                Elem::Cell(c) => {
                    let src = c.cell.expect("halo2-base cells carry their position");
                    copy.advice_equalities.push((here, src));
                }
                Elem::Const(_) if self.unbound => {}
                Elem::Const(_) => copy.constant_equalities.push((x, here)),
            }
        }
        row
    }

    /// A Horner sum `Σ_j e_j·γ^(len−1−j)` over `entries`; returns its last row.
    fn horner(&mut self, entries: &[Elem]) -> usize {
        let mut last = 0;
        for (j, e) in entries.iter().enumerate() {
            let step = if j == 0 { Step::Start } else { Step::Horner };
            last = self.push_elem(*e, step, None);
        }
        last
    }

    /// `Z = L·R`, checked here: returns `Z` (n×p) as fresh halo2-base witnesses in `ctx`.
    /// `left` holds the rows of `L` (m entries each), `right` the rows of `R` (p entries
    /// each), cells or constants.
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
                let step = Step::Dot(i + 1 == entries.len());
                self.push_elem(row[k], step, Some(rv[k]));
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
            let x = xs[r];
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

    /// Assigns the first phase (and, unless generating the witness only, the selectors and
    /// the physical cells of every copy for the copy manager).
    pub fn assign_first(&self, config: &FreivaldsConfig, region: &mut Region<Fr>) {
        let mut placed: Vec<(ContextCell, Cell)> = Vec::new();
        for (r, x) in self.xs.iter().enumerate() {
            let cell = region.assign_advice(config.x, r, Value::known(*x));
            let bound = self.bound[r] == Bound::Copy || !self.unbound;
            if self.copy.is_some() && bound {
                placed.push((ContextCell::new(TYPE_ID, 0, r), cell.cell()));
            }
        }
        let Some(copy) = &self.copy else {
            return;
        };
        for (r, step) in self.steps.iter().enumerate() {
            let selectors: &[&Selector] = match step {
                Step::Start => &[&config.start],
                Step::Horner => &[&config.horner],
                Step::Dot(false) => &[&config.dot],
                Step::Dot(true) => &[&config.dot, &config.check],
            };
            for s in selectors {
                s.enable(region, r).expect("selector in range");
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

    /// Whether row `r`'s `x` is a copy of a halo2-base cell (else it holds a constant, bound
    /// to the constants column).
    pub fn is_copied(&self, r: usize) -> bool {
        self.bound[r] == Bound::Copy
    }

    /// The first-phase value of row `r`.
    pub fn cell(&self, r: usize) -> Fr {
        self.xs[r]
    }

    /// Overwrites the first-phase value of row `r` (tamper tests).
    pub fn set_cell(&mut self, r: usize, v: Fr) {
        self.xs[r] = v;
    }

    /// Lays constant entries out unbound, as layout 1 in effect did (tests of the lying
    /// prover: it must find that forgery by itself).
    #[cfg(any(test, feature = "testing"))]
    pub fn layout_1(&mut self, on: bool) {
        self.unbound = on;
    }

    /// Computes the second phase from the first-phase values as they are now, whatever is
    /// changed later (tamper tests: a forger who keeps the running sums); `false` undoes it.
    pub fn freeze(&mut self, on: bool) {
        self.frozen = on.then(|| self.xs.clone());
    }

    /// Makes the last `w` of each row whatever closes its sum to zero, instead of a copy of
    /// `R·v` (tamper tests: only the copy constraint stands in the way).
    pub fn forge_w(&mut self, on: bool) {
        self.forge_w = on;
    }
}
