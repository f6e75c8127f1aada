//! Linear combinations with constant coefficients, `width` terms per row, on their own columns.
//!
//! halo2-base's single vertical gate spends three advice cells per term of a dot product
//! (`acc, a, b → acc'`), the weight included as an advice copy of a constant. Dot products are
//! most of a model's area (86–90 % of the cells of the CNN examples), so they get a gate of
//! their own, written here because halo2-base has none with coefficients in fixed columns:
//!
//! ```text
//!   s · (acc(ω·X) − acc(X) − Σ_j w_j(X) · x_j(X) − c(X)) = 0     every term row
//!   e · acc(X) = 0                                               the first row of each sum, and
//!                                                                the row after the last one
//! ```
//!
//! `x_j` are advice cells copied (permutation argument) from halo2-base cells, `w_j` and the
//! bias `c` are fixed, so a term costs `1 + 1/width` advice cells and nothing is committed for
//! the weights at proving time. A combination `bias + Σ w·x` is always laid out so that it sums
//! to zero: its results enter as terms with negative weights (`−1` for a plain output, `−2^s`
//! and `−1` for a rescaled output `y` and its remainder `r`), so `e` pins both ends of the
//! accumulator chain and nothing else needs a copy constraint on `acc`.

use halo2_base::halo2_proofs::circuit::{Cell, Region, Value};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::Field;
use halo2_base::halo2_proofs::plonk::{Advice, Column, ConstraintSystem, Fixed, Selector};
use halo2_base::halo2_proofs::poly::Rotation;
use halo2_base::virtual_region::copy_constraints::SharedCopyConstraintManager;
use halo2_base::{AssignedValue, ContextCell};

use crate::error::CircuitError;

/// The virtual-region identity of lincomb cells in halo2-base's copy-constraint manager.
pub const TYPE_ID: &str = "zkinfer:lincomb";

/// The columns, selectors and gates of the lincomb region.
#[derive(Clone, Debug)]
pub struct LinCombConfig {
    x: Vec<Column<Advice>>,
    acc: Column<Advice>,
    w: Vec<Column<Fixed>>,
    c: Column<Fixed>,
    s: Selector,
    e: Selector,
}

impl LinCombConfig {
    /// Adds `width` term columns (advice, copy-enabled), their weight columns, the accumulator
    /// and the two gates to `meta`.
    pub fn configure(meta: &mut ConstraintSystem<Fr>, width: usize) -> Self {
        let x: Vec<_> = (0..width)
            .map(|_| {
                let col = meta.advice_column();
                meta.enable_equality(col);
                col
            })
            .collect();
        let acc = meta.advice_column();
        let w: Vec<_> = (0..width).map(|_| meta.fixed_column()).collect();
        let c = meta.fixed_column();
        let (s, e) = (meta.selector(), meta.selector());
        meta.create_gate("lincomb step", |m| {
            let s = m.query_selector(s);
            let cur = m.query_advice(acc, Rotation::cur());
            let next = m.query_advice(acc, Rotation::next());
            let sum = x
                .iter()
                .zip(&w)
                .fold(m.query_fixed(c, Rotation::cur()), |sum, (x, w)| {
                    sum + m.query_fixed(*w, Rotation::cur()) * m.query_advice(*x, Rotation::cur())
                });
            vec![s * (next - cur - sum)]
        });
        meta.create_gate("lincomb ends", |m| {
            vec![m.query_selector(e) * m.query_advice(acc, Rotation::cur())]
        });
        Self { x, acc, w, c, s, e }
    }
}

/// All linear combinations of a circuit, row by row, recorded during layout and assigned at
/// synthesis.
#[derive(Clone, Debug, Default)]
pub struct LinCombRegion {
    width: usize,
    /// Term values, `width` per row (zero where a row is not full).
    xs: Vec<Fr>,
    /// Weights, as `xs`.
    ws: Vec<Fr>,
    /// Bias per row (on the first row of each combination).
    cs: Vec<Fr>,
    /// The accumulator before each row; one more entry (zero) after the last row.
    acc: Vec<Fr>,
    /// Rows that start a combination.
    starts: Vec<bool>,
    /// Terms per combination, for sizing at other widths.
    sizes: Vec<usize>,
    /// Where to record copy constraints; `None` when only the witness is generated.
    copy: Option<SharedCopyConstraintManager<Fr>>,
}

impl LinCombRegion {
    /// An empty region `width` terms wide; `copy` is halo2-base's copy manager, or `None`
    /// for witness generation only.
    pub fn new(width: usize, copy: Option<SharedCopyConstraintManager<Fr>>) -> Self {
        Self {
            width,
            acc: vec![Fr::ZERO],
            copy,
            ..Self::default()
        }
    }

    /// Terms per row; zero when the region is not used.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Rows used, the closing row included (zero when empty).
    pub fn rows(&self) -> usize {
        Self::rows_at(&self.sizes, self.width)
    }

    /// Rows the same combinations would use at another width.
    pub fn rows_at(sizes: &[usize], width: usize) -> usize {
        if sizes.is_empty() || width == 0 {
            return 0;
        }
        sizes.iter().map(|n| n.div_ceil(width)).sum::<usize>() + 1
    }

    /// Terms per combination, in layout order.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Lays out `bias + Σ w·x = 0`. The terms must sum to zero with the bias: the caller puts
    /// the results among them with negative weights.
    pub fn push(
        &mut self,
        terms: &[(AssignedValue<Fr>, Fr)],
        bias: Fr,
    ) -> Result<(), CircuitError> {
        if self.width == 0 {
            return Err(CircuitError::Internal(
                "lincomb region used at width 0".into(),
            ));
        }
        // A zero weight constrains nothing and would leave its copy constraint unplaced.
        let terms: Vec<(AssignedValue<Fr>, Fr)> = terms
            .iter()
            .copied()
            .filter(|(_, w)| *w != Fr::ZERO)
            .collect();
        // Every earlier push summed to zero, so the chain is at zero here.
        let mut acc = Fr::ZERO;
        let total = terms.iter().fold(bias, |sum, (x, w)| sum + *w * *x.value());
        if total != Fr::ZERO {
            return Err(CircuitError::Internal(format!(
                "a linear combination of {} terms does not sum to zero",
                terms.len()
            )));
        }
        for (r, chunk) in terms.chunks(self.width).enumerate() {
            let row = self.cs.len();
            let c = if r == 0 { bias } else { Fr::ZERO };
            acc += c;
            for j in 0..self.width {
                let (x, w) = chunk
                    .get(j)
                    .map_or((Fr::ZERO, Fr::ZERO), |(x, w)| (*x.value(), *w));
                acc += w * x;
                self.xs.push(x);
                self.ws.push(w);
                if let (Some(copy), Some((src, _))) = (&self.copy, chunk.get(j)) {
                    let here = ContextCell::new(TYPE_ID, 0, row * self.width + j);
                    let src = src.cell.expect("halo2-base cells carry their position");
                    copy.lock()
                        .expect("copy manager lock")
                        .advice_equalities
                        .push((here, src));
                }
            }
            self.cs.push(c);
            self.starts.push(r == 0);
            self.acc.push(acc);
        }
        self.sizes.push(terms.len());
        Ok(())
    }

    /// Assigns the rows (and, unless generating the witness only, the weights, selectors and
    /// the physical cells of every term for the copy manager).
    pub fn assign(&self, config: &LinCombConfig, region: &mut Region<Fr>) {
        let rows = self.cs.len();
        if rows == 0 {
            return;
        }
        let mut placed: Vec<(ContextCell, Cell)> = Vec::new();
        for r in 0..rows {
            for j in 0..self.width {
                let i = r * self.width + j;
                // A padding slot (weight zero) is read by nothing: left unassigned (zero).
                if self.ws[i] == Fr::ZERO {
                    continue;
                }
                let cell = region.assign_advice(config.x[j], r, Value::known(self.xs[i]));
                if self.copy.is_some() {
                    placed.push((ContextCell::new(TYPE_ID, 0, i), cell.cell()));
                }
            }
            region.assign_advice(config.acc, r, Value::known(self.acc[r]));
        }
        region.assign_advice(config.acc, rows, Value::known(self.acc[rows]));
        let Some(copy) = &self.copy else {
            return;
        };
        for r in 0..rows {
            for j in 0..self.width {
                let w = self.ws[r * self.width + j];
                if w != Fr::ZERO {
                    region.assign_fixed(config.w[j], r, w);
                }
            }
            if self.cs[r] != Fr::ZERO {
                region.assign_fixed(config.c, r, self.cs[r]);
            }
            config.s.enable(region, r).expect("selector in range");
            if self.starts[r] {
                config.e.enable(region, r).expect("selector in range");
            }
        }
        config.e.enable(region, rows).expect("selector in range");
        copy.lock()
            .expect("copy manager lock")
            .assigned_advices
            .extend(placed);
    }

    /// The term and accumulator cells in use, as `(is_acc, index)`, for tamper tests.
    pub fn used_cells(&self) -> Vec<(bool, usize)> {
        let terms = (0..self.ws.len()).filter(|&i| self.ws[i] != Fr::ZERO);
        let accs = if self.cs.is_empty() {
            0..0
        } else {
            0..self.acc.len()
        };
        terms
            .map(|i| (false, i))
            .chain(accs.map(|i| (true, i)))
            .collect()
    }

    /// The accumulator column.
    pub fn accumulators(&self) -> &[Fr] {
        &self.acc
    }

    /// The accumulators the step gate implies for the current terms: the running sum from
    /// zero, row by row (what a forger of terms writes to keep every step true).
    pub fn running_sums(&self) -> Vec<Fr> {
        let mut acc = vec![Fr::ZERO];
        for (r, c) in self.cs.iter().enumerate() {
            let row = (0..self.width).fold(*c, |sum, j| {
                let i = r * self.width + j;
                sum + self.ws[i] * self.xs[i]
            });
            acc.push(acc[r] + row);
        }
        acc
    }

    /// Overwrites the accumulator column (tamper tests).
    pub fn set_accumulators(&mut self, acc: Vec<Fr>) {
        self.acc = acc;
    }

    /// Reads a cell named by [`Self::used_cells`].
    pub fn cell(&self, (is_acc, i): (bool, usize)) -> Fr {
        if is_acc {
            self.acc[i]
        } else {
            self.xs[i]
        }
    }

    /// Overwrites a cell named by [`Self::used_cells`] (tamper tests).
    pub fn set_cell(&mut self, (is_acc, i): (bool, usize), v: Fr) {
        if is_acc {
            self.acc[i] = v;
        } else {
            self.xs[i] = v;
        }
    }
}
