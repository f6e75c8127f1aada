//! A [`Trace`] handed back to halo2's MockProver: a circuit with the model circuit's
//! constraint system whose synthesis assigns the trace's matrices as they are. The lying
//! prover's verdicts come from [`Trace`]'s own checker (fast, incremental); this confirms them
//! with the real MockProver, on spliced witnesses it could not otherwise be given.

use std::collections::{BTreeSet, HashMap, HashSet};

use halo2_base::halo2_proofs::circuit::{Cell, Layouter, SimpleFloorPlanner, Value};
use halo2_base::halo2_proofs::dev::MockProver;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::{
    Advice, Any, Circuit, Column, ConstraintSystem, Error, Expression, Fixed, Instance, Selector,
};

use super::trace::{Col, Trace};
use super::Rejection;
use crate::circuit::{CircuitParams, ModelCircuit};

/// The trace's matrices, owned, and the columns and selectors of its constraint system.
struct Replay {
    params: CircuitParams,
    advice: Vec<Vec<Fr>>,
    assigned: Vec<Vec<bool>>,
    fixed: Vec<Vec<Fr>>,
    selectors: Vec<Vec<bool>>,
    copies: Vec<((Col, usize), (Col, usize))>,
}

/// Every column object and selector of `cs`, by index (halo2 has no public constructor).
struct Columns {
    advice: HashMap<usize, Column<Advice>>,
    fixed: HashMap<usize, Column<Fixed>>,
    instance: HashMap<usize, Column<Instance>>,
    selectors: HashMap<usize, Selector>,
}

fn selectors_in(e: &Expression<Fr>, out: &mut HashMap<usize, Selector>) {
    match e {
        Expression::Selector(s) => {
            out.insert(s.index(), *s);
        }
        Expression::Negated(a) | Expression::Scaled(a, _) => selectors_in(a, out),
        Expression::Sum(a, b) | Expression::Product(a, b) => {
            selectors_in(a, out);
            selectors_in(b, out);
        }
        _ => {}
    }
}

fn columns_of(cs: &ConstraintSystem<Fr>) -> Columns {
    let mut c = Columns {
        advice: HashMap::new(),
        fixed: HashMap::new(),
        instance: HashMap::new(),
        selectors: HashMap::new(),
    };
    for (col, _) in cs.advice_queries() {
        c.advice.insert(col.index(), *col);
    }
    for (col, _) in cs.fixed_queries() {
        c.fixed.insert(col.index(), *col);
    }
    for col in cs.permutation().get_columns() {
        match col.column_type() {
            Any::Advice(_) => {
                c.advice.insert(
                    col.index(),
                    Column::<Advice>::try_from(col).expect("advice"),
                );
            }
            Any::Fixed => {
                c.fixed
                    .insert(col.index(), Column::<Fixed>::try_from(col).expect("fixed"));
            }
            Any::Instance => {
                c.instance.insert(
                    col.index(),
                    Column::<Instance>::try_from(col).expect("instance"),
                );
            }
        }
    }
    for gate in cs.gates() {
        for p in gate.polynomials() {
            selectors_in(p, &mut c.selectors);
        }
    }
    for l in cs.lookups() {
        for e in l.input_expressions().iter().chain(l.table_expressions()) {
            selectors_in(e, &mut c.selectors);
        }
    }
    c
}

impl Circuit<Fr> for Replay {
    type Config = <ModelCircuit as Circuit<Fr>>::Config;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = CircuitParams;

    fn params(&self) -> CircuitParams {
        self.params.clone()
    }

    fn without_witnesses(&self) -> Self {
        unimplemented!("a replay is always synthesized with its witness")
    }

    fn configure_with_params(
        meta: &mut ConstraintSystem<Fr>,
        params: CircuitParams,
    ) -> Self::Config {
        ModelCircuit::configure_with_params(meta, params)
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> Self::Config {
        unreachable!("configured with its params")
    }

    fn synthesize(&self, _: Self::Config, mut layouter: impl Layouter<Fr>) -> Result<(), Error> {
        let mut cs = ConstraintSystem::default();
        ModelCircuit::configure_with_params(&mut cs, self.params.clone());
        let cols = columns_of(&cs);
        layouter.assign_region(
            || "replay",
            |mut region| {
                // MockProver tells an unassigned fixed cell from an assigned zero in copies.
                let copied: HashSet<(Col, usize)> =
                    self.copies.iter().flat_map(|&(a, b)| [a, b]).collect();
                for (c, col) in self.fixed.iter().enumerate() {
                    let Some(column) = cols.fixed.get(&c) else {
                        continue;
                    };
                    for (row, v) in col.iter().enumerate() {
                        if *v != Fr::zero() || copied.contains(&(Col::Fixed(c), row)) {
                            region.assign_fixed(*column, row, *v);
                        }
                    }
                }
                for (s, rows) in self.selectors.iter().enumerate() {
                    let Some(sel) = cols.selectors.get(&s) else {
                        continue;
                    };
                    for (row, &on) in rows.iter().enumerate() {
                        if on {
                            sel.enable(&mut region, row)?;
                        }
                    }
                }
                for (c, col) in self.advice.iter().enumerate() {
                    let Some(column) = cols.advice.get(&c) else {
                        continue;
                    };
                    for (row, v) in col.iter().enumerate() {
                        if self.assigned[c][row] || *v != Fr::zero() {
                            region.assign_advice(*column, row, Value::known(*v));
                        }
                    }
                }
                let cell = |(col, row): (Col, usize)| -> Cell {
                    let column: Column<Any> = match col {
                        Col::Advice(c) => cols.advice[&c].into(),
                        Col::Fixed(c) => cols.fixed[&c].into(),
                        Col::Instance(c) => cols.instance[&c].into(),
                    };
                    Cell {
                        row_offset: row,
                        column,
                    }
                };
                for &(a, b) in &self.copies {
                    region.constrain_equal(cell(a), cell(b));
                }
                Ok(())
            },
        )
    }
}

/// MockProver's verdict on `trace` (its witness, fixed columns, selectors and copies as they
/// are), named as [`Rejection`]s; empty when it accepts.
pub fn mock_verdict(trace: &Trace, params: &CircuitParams) -> BTreeSet<Rejection> {
    let parts = trace.parts();
    let replay = Replay {
        params: params.clone(),
        advice: parts.advice.to_vec(),
        assigned: parts.assigned.to_vec(),
        fixed: parts.fixed.to_vec(),
        selectors: parts.selectors.to_vec(),
        copies: parts.copies.to_vec(),
    };
    let instances: Vec<Vec<Fr>> = parts
        .instance
        .iter()
        .map(|col| {
            let used = col
                .iter()
                .rposition(|v| *v != Fr::zero())
                .map_or(0, |i| i + 1);
            col[..used].to_vec()
        })
        .collect();
    let _ = parts.cs;
    MockProver::run(trace.k, &replay, instances)
        .expect("mock prover runs")
        .verify()
        .err()
        .map(|failures| failures.iter().map(Rejection::of).collect())
        .unwrap_or_default()
}
