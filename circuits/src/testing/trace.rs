//! A circuit's assignment as plain matrices, and a checker of its constraints that can
//! re-evaluate only the rows a change touches.
//!
//! MockProver synthesizes the whole circuit for every verdict and keeps its matrices to itself;
//! the lying prover needs thousands of verdicts on circuits of up to 2^16 rows, on witnesses
//! spliced from two syntheses (the keys' fixed columns from one, a forger's advice from the
//! other). [`Trace::record`] runs the circuit's own synthesis once into matrices; [`Trace`]
//! evaluates every gate, lookup and copy constraint as MockProver does, with its challenges,
//! and names the failing ones as [`Rejection`]s. [`super::replay`] hands any trace back to the
//! real MockProver, which the tests use to confirm this checker's verdicts.

use std::collections::{BTreeSet, HashMap, HashSet};

use halo2_base::halo2_proofs::circuit::{SimpleFloorPlanner, Value};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::{Field, FromUniformBytes};
use halo2_base::halo2_proofs::plonk::{
    Advice, Any, Assigned, Assignment, Challenge, Circuit, Column, ConstraintSystem, Error,
    Expression, Fixed, FloorPlanner, Instance, Selector,
};
use rand::SeedableRng;

use super::Rejection;
use crate::circuit::ModelCircuit;

/// A column of the circuit, by kind and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Col {
    /// An advice column.
    Advice(usize),
    /// A fixed column (selectors are kept apart, uncompressed).
    Fixed(usize),
    /// An instance column.
    Instance(usize),
}

impl Col {
    fn of(c: &Column<Any>) -> Self {
        match c.column_type() {
            Any::Advice(_) => Col::Advice(c.index()),
            Any::Fixed => Col::Fixed(c.index()),
            Any::Instance => Col::Instance(c.index()),
        }
    }
}

/// A cell: column and absolute row.
pub type At = (Col, usize);

/// The challenges MockProver draws (a blake2b hash chain from a fixed seed), so that a trace's
/// second phase is what MockProver checks it against.
pub fn mock_challenges(n: usize) -> Vec<Fr> {
    let mut hash: [u8; 64] = blake2b_simd::blake2b(b"Halo2-MockProver")
        .as_bytes()
        .try_into()
        .expect("64-byte digest");
    (0..n)
        .map(|_| {
            hash = blake2b_simd::blake2b(&hash)
                .as_bytes()
                .try_into()
                .expect("64-byte digest");
            Fr::from_uniform_bytes(&hash)
        })
        .collect()
}

/// A synthesis recorded as matrices: what [`Assignment`] receives, nothing interpreted.
struct Recorder {
    advice: Vec<Vec<Assigned<Fr>>>,
    assigned: Vec<Vec<bool>>,
    fixed: Vec<Vec<Fr>>,
    selectors: Vec<Vec<bool>>,
    instance: Vec<Vec<Fr>>,
    copies: Vec<(At, At)>,
    challenges: Vec<Fr>,
    phase: u8,
    usable: usize,
}

impl Assignment<Fr> for Recorder {
    fn enter_region<NR: Into<String>, N: FnOnce() -> NR>(&mut self, _: N) {}
    fn exit_region(&mut self) {}
    fn annotate_column<A: FnOnce() -> AR, AR: Into<String>>(&mut self, _: A, _: Column<Any>) {}

    fn enable_selector<A: FnOnce() -> AR, AR: Into<String>>(
        &mut self,
        _: A,
        selector: &Selector,
        row: usize,
    ) -> Result<(), Error> {
        self.selectors[selector.index()][row] = true;
        Ok(())
    }

    fn query_instance(&self, column: Column<Instance>, row: usize) -> Result<Value<Fr>, Error> {
        Ok(Value::known(self.instance[column.index()][row]))
    }

    fn assign_advice<'v>(
        &mut self,
        column: Column<Advice>,
        row: usize,
        to: Value<Assigned<Fr>>,
    ) -> Value<&'v Assigned<Fr>> {
        let mut known = None;
        to.map(|v| known = Some(v));
        let Some(v) = known else {
            return Value::unknown();
        };
        let cell = &mut self.advice[column.index()][row];
        *cell = v;
        self.assigned[column.index()][row] = true;
        // As halo2's own witness collection does: the matrices are allocated once and never
        // reallocated while a synthesis holds these references.
        let ptr = cell as *const Assigned<Fr>;
        Value::known(unsafe { &*ptr })
    }

    fn assign_fixed(&mut self, column: Column<Fixed>, row: usize, to: Assigned<Fr>) {
        self.fixed[column.index()][row] = to.evaluate();
    }

    fn copy(&mut self, a: Column<Any>, ar: usize, b: Column<Any>, br: usize) {
        self.copies.push(((Col::of(&a), ar), (Col::of(&b), br)));
    }

    fn fill_from_row(
        &mut self,
        column: Column<Fixed>,
        from: usize,
        to: Value<Assigned<Fr>>,
    ) -> Result<(), Error> {
        let mut known = None;
        to.map(|v| known = Some(v));
        let v = known.ok_or(Error::Synthesis)?.evaluate();
        for row in from..self.usable {
            self.fixed[column.index()][row] = v;
        }
        Ok(())
    }

    fn get_challenge(&self, challenge: Challenge) -> Value<Fr> {
        if self.phase > challenge.phase() {
            Value::known(self.challenges[challenge.index()])
        } else {
            Value::unknown()
        }
    }

    fn push_namespace<NR: Into<String>, N: FnOnce() -> NR>(&mut self, _: N) {}
    fn pop_namespace(&mut self, _: Option<String>) {}

    fn next_phase(&mut self) {
        self.phase += 1;
    }
}

/// One polynomial constraint of a gate, with the columns and rotations it reads.
#[derive(Clone)]
struct Poly {
    gate: usize,
    expr: Expression<Fr>,
    /// The selector every term is multiplied by, when the polynomial is `s · (…)`: it
    /// vanishes wherever `s` is off.
    selector: Option<usize>,
}

/// A circuit's assignment, and its constraints.
#[derive(Clone)]
pub struct Trace {
    /// log2 of the rows.
    pub k: u32,
    cs: ConstraintSystem<Fr>,
    /// Rows a witness may use (the rest are blinding rows).
    pub usable: usize,
    advice: Vec<Vec<Fr>>,
    assigned: Vec<Vec<bool>>,
    fixed: Vec<Vec<Fr>>,
    selectors: Vec<Vec<bool>>,
    instance: Vec<Vec<Fr>>,
    copies: Vec<(At, At)>,
    challenges: Vec<Fr>,
    polys: Vec<Poly>,
    gate_names: Vec<String>,
    /// Per advice column, the rotations at which some gate or lookup reads it.
    rotations: Vec<Vec<i32>>,
    /// Per advice column, the gate polynomials reading it, with the rotation.
    col_polys: Vec<Vec<(usize, i32)>>,
    /// Per advice column, the lookups whose input reads it, with the rotation.
    col_lookups: Vec<Vec<(usize, i32)>>,
    /// Each lookup's table, as a set of rows.
    tables: Vec<HashSet<Vec<Fr>>>,
    classes: Option<Classes>,
}

/// The copy classes: which cells must hold one value.
#[derive(Clone)]
pub struct Classes {
    class_of: HashMap<At, usize>,
    members: Vec<Vec<At>>,
}

impl Classes {
    /// The class of `at`, if it is in one.
    pub fn of(&self, at: At) -> Option<usize> {
        self.class_of.get(&at).copied()
    }

    /// The cells of class `id`.
    pub fn members(&self, id: usize) -> &[At] {
        &self.members[id]
    }

    /// How many classes there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

fn selector_factor(e: &Expression<Fr>) -> Option<usize> {
    match e {
        Expression::Product(a, b) => match (a.as_ref(), b.as_ref()) {
            (Expression::Selector(s), _) | (_, Expression::Selector(s)) => Some(s.index()),
            (a, b) => selector_factor(a).or_else(|| selector_factor(b)),
        },
        Expression::Scaled(a, _) => selector_factor(a),
        Expression::Negated(a) => selector_factor(a),
        _ => None,
    }
}

fn advice_queries(e: &Expression<Fr>, out: &mut Vec<(usize, i32)>) {
    match e {
        Expression::Advice(q) => out.push((q.column_index(), q.rotation().0)),
        Expression::Negated(a) | Expression::Scaled(a, _) => advice_queries(a, out),
        Expression::Sum(a, b) | Expression::Product(a, b) => {
            advice_queries(a, out);
            advice_queries(b, out);
        }
        _ => {}
    }
}

impl Trace {
    /// Synthesizes `circuit` at `k` with these public instances, as MockProver would.
    pub fn record(circuit: &ModelCircuit, k: u32, instances: &[Fr]) -> Self {
        let n = 1usize << k;
        let mut cs = ConstraintSystem::default();
        let config = ModelCircuit::configure_with_params(&mut cs, circuit.params.clone());
        let usable = n - (cs.blinding_factors() + 1);
        let mut instance = vec![vec![Fr::ZERO; n]; cs.num_instance_columns()];
        if let Some(col) = instance.first_mut() {
            col[..instances.len()].copy_from_slice(instances);
        }
        let mut rec = Recorder {
            advice: vec![vec![Assigned::Zero; n]; cs.num_advice_columns()],
            assigned: vec![vec![false; n]; cs.num_advice_columns()],
            fixed: vec![vec![Fr::ZERO; n]; cs.num_fixed_columns()],
            selectors: vec![vec![false; n]; cs.num_selectors()],
            instance,
            copies: Vec::new(),
            challenges: mock_challenges(cs.num_challenges()),
            phase: 0,
            usable,
        };
        SimpleFloorPlanner::synthesize(&mut rec, circuit, config, cs.constants().clone())
            .expect("the circuit synthesizes");
        let advice = rec
            .advice
            .iter()
            .map(|col| col.iter().map(|v| v.evaluate()).collect())
            .collect();
        let mut trace = Trace {
            k,
            usable,
            advice,
            assigned: rec.assigned,
            fixed: rec.fixed,
            selectors: rec.selectors,
            instance: rec.instance,
            copies: rec.copies,
            challenges: rec.challenges,
            polys: Vec::new(),
            gate_names: Vec::new(),
            rotations: Vec::new(),
            col_polys: Vec::new(),
            col_lookups: Vec::new(),
            tables: Vec::new(),
            classes: None,
            cs,
        };
        trace.index_constraints();
        trace
    }

    fn index_constraints(&mut self) {
        let cols = self.cs.num_advice_columns();
        let mut rotations = vec![BTreeSet::new(); cols];
        let mut col_polys: Vec<BTreeSet<(usize, i32)>> = vec![BTreeSet::new(); cols];
        let mut col_lookups: Vec<BTreeSet<(usize, i32)>> = vec![BTreeSet::new(); cols];
        for (g, gate) in self.cs.gates().iter().enumerate() {
            self.gate_names.push(gate.name().to_string());
            for expr in gate.polynomials() {
                let mut q = Vec::new();
                advice_queries(expr, &mut q);
                for (c, r) in q {
                    rotations[c].insert(r);
                    col_polys[c].insert((self.polys.len(), r));
                }
                self.polys.push(Poly {
                    gate: g,
                    expr: expr.clone(),
                    selector: selector_factor(expr),
                });
            }
        }
        let mut tables = Vec::new();
        for (l, lookup) in self.cs.lookups().iter().enumerate() {
            for expr in lookup.input_expressions() {
                let mut q = Vec::new();
                advice_queries(expr, &mut q);
                for (c, r) in q {
                    rotations[c].insert(r);
                    col_lookups[c].insert((l, r));
                }
            }
            let mut set = HashSet::new();
            for row in 0..self.usable {
                let t: Vec<Fr> = lookup
                    .table_expressions()
                    .iter()
                    .map(|e| self.eval(e, row))
                    .collect();
                set.insert(t);
            }
            tables.push(set);
        }
        self.tables = tables;
        self.col_polys = col_polys
            .into_iter()
            .map(|s| s.into_iter().collect())
            .collect();
        self.col_lookups = col_lookups
            .into_iter()
            .map(|s| s.into_iter().collect())
            .collect();
        self.rotations = rotations
            .into_iter()
            .map(|s| s.into_iter().collect())
            .collect();
    }

    fn eval(&self, e: &Expression<Fr>, row: usize) -> Fr {
        let n = 1usize << self.k;
        let at = |rot: i32| (row as i64 + rot as i64).rem_euclid(n as i64) as usize;
        e.evaluate(
            &|c| c,
            &|s: Selector| {
                if self.selectors[s.index()][row] {
                    Fr::ONE
                } else {
                    Fr::ZERO
                }
            },
            &|q| self.fixed[q.column_index()][at(q.rotation().0)],
            &|q| self.advice[q.column_index()][at(q.rotation().0)],
            &|q| self.instance[q.column_index()][at(q.rotation().0)],
            &|c| self.challenges[c.index()],
            &|a| -a,
            &|a, b| a + b,
            &|a, b| a * b,
            &|a, s| a * s,
        )
    }

    fn gate_rejection(&self, gate: usize) -> Rejection {
        Rejection::of_gate(&self.gate_names[gate], || {
            format!("gate {gate} ('{}')", self.gate_names[gate])
        })
    }

    fn lookup_rejection(&self, lookup: usize) -> Rejection {
        Rejection::of_lookup(self.cs.lookups()[lookup].name())
    }

    /// Whether polynomial `p` holds at `row`.
    fn poly_holds(&self, p: &Poly, row: usize) -> bool {
        if let Some(s) = p.selector {
            if !self.selectors[s][row] {
                return true;
            }
        }
        self.eval(&p.expr, row) == Fr::ZERO
    }

    fn lookup_holds(&self, l: usize, row: usize) -> bool {
        let input: Vec<Fr> = self.cs.lookups()[l]
            .input_expressions()
            .iter()
            .map(|e| self.eval(e, row))
            .collect();
        self.tables[l].contains(&input)
    }

    fn value(&self, at: At) -> Fr {
        match at.0 {
            Col::Advice(c) => self.advice[c][at.1],
            Col::Fixed(c) => self.fixed[c][at.1],
            Col::Instance(c) => self.instance[c][at.1],
        }
    }

    /// The copy classes (computed once).
    pub fn classes(&mut self) -> &Classes {
        if self.classes.is_none() {
            let mut parent: HashMap<At, At> = HashMap::new();
            fn root(parent: &mut HashMap<At, At>, c: At) -> At {
                let mut r = c;
                while let Some(&p) = parent.get(&r) {
                    if p == r {
                        break;
                    }
                    r = p;
                }
                parent.insert(c, r);
                r
            }
            for &(a, b) in &self.copies {
                parent.entry(a).or_insert(a);
                parent.entry(b).or_insert(b);
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                if ra != rb {
                    parent.insert(ra, rb);
                }
            }
            let cells: Vec<At> = parent.keys().copied().collect();
            let mut class_of = HashMap::new();
            let mut members: Vec<Vec<At>> = Vec::new();
            let mut id_of_root: HashMap<At, usize> = HashMap::new();
            for c in cells {
                let r = root(&mut parent, c);
                let id = *id_of_root.entry(r).or_insert_with(|| {
                    members.push(Vec::new());
                    members.len() - 1
                });
                class_of.insert(c, id);
                members[id].push(c);
            }
            for m in &mut members {
                m.sort();
            }
            self.classes = Some(Classes { class_of, members });
        }
        self.classes.as_ref().expect("just computed")
    }

    /// Every constraint that fails, as MockProver would name it.
    pub fn rejections(&mut self) -> BTreeSet<Rejection> {
        let mut out = BTreeSet::new();
        for p in &self.polys {
            if (0..self.usable).any(|row| !self.poly_holds(p, row)) {
                out.insert(self.gate_rejection(p.gate));
            }
        }
        for l in 0..self.cs.lookups().len() {
            if (0..self.usable).any(|row| !self.lookup_holds(l, row)) {
                out.insert(self.lookup_rejection(l));
            }
        }
        self.classes();
        let classes = self.classes.as_ref().expect("computed");
        for m in &classes.members {
            let v = self.value(m[0]);
            if m.iter().any(|&c| self.value(c) != v) {
                out.insert(Rejection::Copy);
                break;
            }
        }
        out
    }

    /// The rows at which some gate or lookup reads advice cell `(col, row)`.
    fn reading_rows(&self, col: usize, row: usize) -> impl Iterator<Item = usize> + '_ {
        let n = 1i64 << self.k;
        self.rotations[col]
            .iter()
            .map(move |&r| (row as i64 - r as i64).rem_euclid(n) as usize)
    }

    /// The constraints failing at the rows the given advice cells are read at, and the copy
    /// classes they belong to: what changing only those cells can break.
    pub fn rejections_near(&mut self, cells: &[At]) -> BTreeSet<Rejection> {
        let mut rows = BTreeSet::new();
        for &(col, row) in cells {
            if let Col::Advice(c) = col {
                rows.extend(self.reading_rows(c, row));
            }
        }
        let mut out = BTreeSet::new();
        for &row in rows.iter().filter(|&&r| r < self.usable) {
            for p in &self.polys {
                if !self.poly_holds(p, row) {
                    out.insert(self.gate_rejection(p.gate));
                }
            }
            for l in 0..self.cs.lookups().len() {
                if !self.lookup_holds(l, row) {
                    out.insert(self.lookup_rejection(l));
                }
            }
        }
        self.classes();
        let classes = self.classes.as_ref().expect("computed");
        for &c in cells {
            if let Some(id) = classes.of(c) {
                let m = &classes.members[id];
                let v = self.value(m[0]);
                if m.iter().any(|&x| self.value(x) != v) {
                    out.insert(Rejection::Copy);
                }
            }
        }
        out
    }

    /// The value of an advice cell.
    pub fn advice(&self, col: usize, row: usize) -> Fr {
        self.advice[col][row]
    }

    /// Sets an advice cell.
    pub fn set_advice(&mut self, col: usize, row: usize, v: Fr) {
        self.advice[col][row] = v;
    }

    /// An instance cell's value.
    pub fn instance_value(&self, col: usize, row: usize) -> Fr {
        self.instance[col][row]
    }

    /// Sets an instance cell.
    pub fn set_instance(&mut self, col: usize, row: usize, v: Fr) {
        self.instance[col][row] = v;
    }

    /// Sets any cell (advice or instance; fixed cells are the keys' and stay).
    pub fn set(&mut self, at: At, v: Fr) {
        match at.0 {
            Col::Advice(c) => self.advice[c][at.1] = v,
            Col::Instance(c) => self.instance[c][at.1] = v,
            Col::Fixed(_) => panic!("a forger cannot change the keys' fixed columns"),
        }
    }

    /// The value of any cell.
    pub fn get(&self, at: At) -> Fr {
        self.value(at)
    }

    /// Every advice cell the synthesis assigned, in column order.
    pub fn assigned_cells(&self) -> Vec<At> {
        let mut out = Vec::new();
        for (c, col) in self.assigned.iter().enumerate() {
            for (row, &a) in col.iter().enumerate().take(self.usable) {
                if a {
                    out.push((Col::Advice(c), row));
                }
            }
        }
        out
    }

    /// Whether an advice cell was assigned.
    pub fn is_assigned(&self, col: usize, row: usize) -> bool {
        self.assigned[col][row]
    }

    /// The number of advice columns.
    pub fn advice_columns(&self) -> usize {
        self.advice.len()
    }

    /// The keys' part of `honest`: its fixed columns, selectors and copy constraints replace
    /// this trace's, as a proving key fixes them whatever witness the prover brings.
    pub fn with_keys_of(mut self, honest: &Trace) -> Self {
        assert_eq!(
            (self.k, self.advice.len(), self.fixed.len()),
            (honest.k, honest.advice.len(), honest.fixed.len()),
            "a lie that changes the circuit's shape is out of scope"
        );
        self.fixed = honest.fixed.clone();
        self.selectors = honest.selectors.clone();
        self.copies = honest.copies.clone();
        self.tables = honest.tables.clone();
        self.classes = None;
        self
    }

    /// The advice cells (with their rotations' rows) polynomial `p` reads at `row`.
    fn window(&self, p: &Expression<Fr>, row: usize) -> Vec<(usize, usize)> {
        let n = 1i64 << self.k;
        let mut q = Vec::new();
        advice_queries(p, &mut q);
        q.into_iter()
            .map(|(c, rot)| (c, (row as i64 + rot as i64).rem_euclid(n) as usize))
            .collect()
    }

    /// Whether `f` (evaluated at `row`) depends on advice cell `(col, at)`: compared at
    /// `a` and `a + 1` with every other cell the expressions read set to random values, so
    /// that a term whose co-factor happens to be zero in this witness still counts (a fixed
    /// zero weight does not).
    fn depends(&mut self, exprs: &[Expression<Fr>], row: usize, col: usize, at: usize) -> bool {
        let mut window: Vec<(usize, usize)> =
            exprs.iter().flat_map(|e| self.window(e, row)).collect();
        window.sort_unstable();
        window.dedup();
        let saved: Vec<Fr> = window.iter().map(|&(c, r)| self.advice[c][r]).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64((col as u64) << 32 ^ at as u64);
        for &(c, r) in &window {
            self.advice[c][r] = Fr::random(&mut rng);
        }
        let a = self.advice[col][at];
        let before: Vec<Fr> = exprs.iter().map(|e| self.eval(e, row)).collect();
        self.advice[col][at] = a + Fr::ONE;
        let after: Vec<Fr> = exprs.iter().map(|e| self.eval(e, row)).collect();
        for (&(c, r), v) in window.iter().zip(saved) {
            self.advice[c][r] = v;
        }
        before != after
    }

    /// The gate polynomials, with the row each is evaluated at, whose value depends on
    /// advice cell `(col, row)` (see [`Self::depends`]).
    fn readers(&mut self, col: usize, row: usize) -> Vec<(usize, usize)> {
        let n = 1i64 << self.k;
        let mut out = Vec::new();
        for i in 0..self.col_polys[col].len() {
            let (pi, rot) = self.col_polys[col][i];
            let r = (row as i64 - rot as i64).rem_euclid(n) as usize;
            if r >= self.usable || out.contains(&(pi, r)) {
                continue;
            }
            if self.polys[pi]
                .selector
                .is_some_and(|s| !self.selectors[s][r])
            {
                continue;
            }
            let expr = [self.polys[pi].expr.clone()];
            if self.depends(&expr, r, col, row) {
                out.push((pi, r));
            }
        }
        out
    }

    /// Whether some lookup's input depends on advice cell `(col, row)`.
    fn looked_up(&mut self, col: usize, row: usize) -> bool {
        let n = 1i64 << self.k;
        for i in 0..self.col_lookups[col].len() {
            let (l, rot) = self.col_lookups[col][i];
            let r = (row as i64 - rot as i64).rem_euclid(n) as usize;
            if r >= self.usable {
                continue;
            }
            let inputs = self.cs.lookups()[l].input_expressions().clone();
            if self.depends(&inputs, r, col, row) {
                return true;
            }
        }
        false
    }

    /// Every advice cell the synthesis assigned, and every cell a gate reads on a row where
    /// its selector is on (assigned or not: an unassigned cell is zero in an honest witness,
    /// and anything in a forger's).
    pub fn audited_cells(&self) -> Vec<At> {
        let mut cells: BTreeSet<At> = self.assigned_cells().into_iter().collect();
        for p in &self.polys {
            let Some(s) = p.selector else { continue };
            for row in 0..self.usable {
                if self.selectors[s][row] {
                    for (c, r) in self.window(&p.expr, row) {
                        if r < self.usable {
                            cells.insert((Col::Advice(c), r));
                        }
                    }
                }
            }
        }
        cells.into_iter().collect()
    }

    /// Advice cells that pin nothing: in no copy class, read by no lookup, and read by at most
    /// one gate polynomial at one row. Such a cell can take whatever value satisfies that one
    /// polynomial (when it enters it linearly), so the polynomial constrains nothing else:
    /// the pattern of a fixed value used beside an advice cell that nothing else pins. Cells
    /// read by no constraint at all are returned apart (they are harmless: nothing depends on
    /// them).
    pub fn slack_cells(&mut self, cells: &[At]) -> (Vec<At>, Vec<At>) {
        self.classes();
        let (mut slack, mut unread) = (Vec::new(), Vec::new());
        for &at in cells {
            let (Col::Advice(c), row) = at else { continue };
            if self.classes.as_ref().expect("computed").of(at).is_some() || self.looked_up(c, row) {
                continue;
            }
            match self.readers(c, row).len() {
                0 => unread.push(at),
                1 => slack.push(at),
                _ => {}
            }
        }
        (slack, unread)
    }

    /// The forger's last resort: every failing gate polynomial near `touched` that reads a
    /// slack cell (see [`Self::slack_cells`]; `fixed` lists cells it must not use) linearly
    /// is satisfied by solving for that cell. Returns the cells it changed, with the values
    /// they had.
    pub fn compensate(&mut self, touched: &[At], fixed: &[At]) -> Vec<(At, Fr)> {
        let fixed: HashSet<At> = fixed.iter().copied().collect();
        let mut rows = BTreeSet::new();
        for &(col, row) in touched {
            if let Col::Advice(c) = col {
                rows.extend(self.reading_rows(c, row));
            }
        }
        let mut changed = Vec::new();
        let usable = self.usable;
        for row in rows.into_iter().filter(|&r| r < usable) {
            for i in 0..self.polys.len() {
                if self.poly_holds(&self.polys[i], row) {
                    continue;
                }
                let mut q = Vec::new();
                advice_queries(&self.polys[i].expr, &mut q);
                let n = 1i64 << self.k;
                for (c, rot) in q {
                    let r = (row as i64 + rot as i64).rem_euclid(n) as usize;
                    let at = (Col::Advice(c), r);
                    if fixed.contains(&at) || r >= self.usable {
                        continue;
                    }
                    let (slack, _) = self.slack_cells(&[at]);
                    if slack.is_empty() {
                        continue;
                    }
                    let v = self.advice[c][r];
                    let f0 = self.eval(&self.polys[i].expr, row);
                    self.advice[c][r] = v + Fr::ONE;
                    let f1 = self.eval(&self.polys[i].expr, row);
                    self.advice[c][r] = v + Fr::from(2u64);
                    let f2 = self.eval(&self.polys[i].expr, row);
                    let slope = f1 - f0;
                    let solved = (f2 - f1 == slope)
                        .then(|| Option::<Fr>::from(slope.invert()))
                        .flatten();
                    match solved {
                        Some(inv) => {
                            self.advice[c][r] = v - f0 * inv;
                            changed.push((at, v));
                            break;
                        }
                        None => self.advice[c][r] = v,
                    }
                }
            }
        }
        changed
    }

    /// The matrices, for [`super::replay`].
    pub(super) fn parts(&self) -> TraceParts<'_> {
        TraceParts {
            cs: &self.cs,
            advice: &self.advice,
            assigned: &self.assigned,
            fixed: &self.fixed,
            selectors: &self.selectors,
            instance: &self.instance,
            copies: &self.copies,
        }
    }
}

/// A trace's matrices, borrowed.
pub(super) struct TraceParts<'a> {
    pub cs: &'a ConstraintSystem<Fr>,
    pub advice: &'a [Vec<Fr>],
    pub assigned: &'a [Vec<bool>],
    pub fixed: &'a [Vec<Fr>],
    pub selectors: &'a [Vec<bool>],
    pub instance: &'a [Vec<Fr>],
    pub copies: &'a [(At, At)],
}
