//! Non-linear functions (sigmoid, tanh, exp, erf, GELU) through fixed lookup tables.
//!
//! Each distinct [`LookupTable`] gets a tag `k ≥ 1`; the fixed table holds the rows
//! `(k, k·t, k·v[t−lo], k·(v[t−lo+1] − v[t−lo]))` for every sample but the last, plus one
//! all-zero row. Each use is three consecutive cells `t, y0, dy` of one copy-enabled advice
//! column, with the tag in a fixed column at the first; the lookup input is
//! `(tag, tag·a(ω⁰), tag·a(ω¹), tag·a(ω²))`, so rows without a tag are `(0, 0, 0, 0)` (the zero
//! row) whatever the column holds there, and a tagged row can only match its own table (the
//! tag is invertible, so the scaled row determines `(t, y0, dy)`). One column instead of three
//! keeps the proof small; the price is lookup degree 5. The interpolation around it is ordinary gates (see
//! [`crate::chips::QuantChip::lookup_fn`]). halo2-base has no fixed multi-column lookup, hence
//! this module.

use std::collections::HashMap;

use halo2_base::halo2_proofs::circuit::{Layouter, Region, Value};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::{
    Advice, Column, ConstraintSystem, Error, Fixed, TableColumn,
};
use halo2_base::halo2_proofs::poly::Rotation;
use halo2_base::virtual_region::copy_constraints::SharedCopyConstraintManager;
use halo2_base::{AssignedValue, ContextCell};
use zkinfer_model::LookupTable;

use crate::field::fr;

/// The virtual-region identity of function-lookup cells in halo2-base's copy manager.
pub const TYPE_ID: &str = "zkinfer:functions";

/// Columns and the lookup argument of the function tables.
#[derive(Clone, Debug)]
pub struct FunctionConfig {
    tag: Column<Fixed>,
    col: Column<Advice>,
    table: [TableColumn; 4],
}

impl FunctionConfig {
    /// Adds the tag, the advice column, the table and the lookup to `meta`.
    pub fn configure(meta: &mut ConstraintSystem<Fr>) -> Self {
        let tag = meta.fixed_column();
        let col = meta.advice_column();
        meta.enable_equality(col);
        let table = [(); 4].map(|_| meta.lookup_table_column());
        meta.lookup("function tables", |m| {
            let tag = m.query_fixed(tag, Rotation::cur());
            let mut inputs = vec![(tag.clone(), table[0])];
            for (r, t) in (0..3).zip(&table[1..]) {
                inputs.push((tag.clone() * m.query_advice(col, Rotation(r)), *t));
            }
            inputs
        });
        Self { tag, col, table }
    }
}

/// The tables a circuit uses and its lookup rows, recorded during layout.
#[derive(Clone, Debug, Default)]
pub struct FunctionRegion {
    tables: Vec<LookupTable>,
    ids: HashMap<LookupTable, u64>,
    /// `(tag, [t, y0, dy])` per use.
    rows: Vec<(u64, [Fr; 3])>,
    copy: Option<SharedCopyConstraintManager<Fr>>,
}

impl FunctionRegion {
    /// An empty region; `copy` is halo2-base's copy manager, or `None` for witness generation.
    pub fn new(copy: Option<SharedCopyConstraintManager<Fr>>) -> Self {
        Self {
            copy,
            ..Self::default()
        }
    }

    /// The tag of `table`, registering it on first use.
    pub fn tag(&mut self, table: &LookupTable) -> u64 {
        if let Some(&k) = self.ids.get(table) {
            return k;
        }
        self.tables.push(table.clone());
        let k = self.tables.len() as u64;
        self.ids.insert(table.clone(), k);
        k
    }

    /// Records one lookup of `(t, y0, dy)` in table `tag`, each cell copied from halo2-base.
    pub fn push(&mut self, tag: u64, cells: [AssignedValue<Fr>; 3]) {
        let row = self.rows.len();
        if let Some(copy) = &self.copy {
            let mut copy = copy.lock().expect("copy manager lock");
            for (j, c) in cells.iter().enumerate() {
                let here = ContextCell::new(TYPE_ID, 0, 3 * row + j);
                let src = c.cell.expect("halo2-base cells carry their position");
                copy.advice_equalities.push((here, src));
            }
        }
        self.rows.push((tag, cells.map(|c| *c.value())));
    }

    /// Lookups recorded.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Rows of the advice column the lookups use (three per lookup).
    pub fn column_rows(&self) -> usize {
        3 * self.rows.len()
    }

    /// Rows of the fixed table (the zero row included; zero when no table is used).
    pub fn table_rows(&self) -> usize {
        if self.tables.is_empty() {
            return 0;
        }
        1 + self
            .tables
            .iter()
            .map(|t| t.values.len() - 1)
            .sum::<usize>()
    }

    /// Loads the fixed table.
    pub fn load_table(
        &self,
        config: &FunctionConfig,
        layouter: &mut impl Layouter<Fr>,
    ) -> Result<(), Error> {
        layouter.assign_table(
            || "function tables",
            |mut table| {
                let mut offset = 0;
                let mut put = |row: [Fr; 4]| -> Result<(), Error> {
                    for (col, v) in config.table.iter().zip(row) {
                        table.assign_cell(|| "", *col, offset, || Value::known(v))?;
                    }
                    offset += 1;
                    Ok(())
                };
                put([Fr::from(0u64); 4])?;
                for (k, t) in self.tables.iter().enumerate() {
                    let tag = k as i128 + 1;
                    for (i, pair) in t.values.windows(2).enumerate() {
                        let step = (t.lo + i as i64) as i128;
                        let (y0, y1) = (pair[0] as i128, pair[1] as i128);
                        put([fr(tag), fr(tag * step), fr(tag * y0), fr(tag * (y1 - y0))])?;
                    }
                }
                Ok(())
            },
        )
    }

    /// Assigns the lookup rows (and, unless generating the witness only, the tags and the
    /// physical cells for the copy manager).
    pub fn assign(&self, config: &FunctionConfig, region: &mut Region<Fr>) {
        let mut placed = Vec::new();
        for (r, (tag, vals)) in self.rows.iter().enumerate() {
            for (j, v) in vals.iter().enumerate() {
                let cell = region.assign_advice(config.col, 3 * r + j, Value::known(*v));
                if self.copy.is_some() {
                    placed.push((ContextCell::new(TYPE_ID, 0, 3 * r + j), cell.cell()));
                }
            }
            if self.copy.is_some() {
                region.assign_fixed(config.tag, 3 * r, Fr::from(*tag));
            }
        }
        if let Some(copy) = &self.copy {
            copy.lock()
                .expect("copy manager lock")
                .assigned_advices
                .extend(placed);
        }
    }

    /// Overwrites lookup cell `j` of row `r` (tamper tests).
    pub fn set_cell(&mut self, r: usize, j: usize, v: Fr) {
        self.rows[r].1[j] = v;
    }

    /// Reads lookup cell `j` of row `r`.
    pub fn cell(&self, r: usize, j: usize) -> Fr {
        self.rows[r].1[j]
    }
}
