//! Test harness: MockProver runs and consistent forgeries.
//!
//! A forgery changes a cell *and every cell copy-constrained to it* (halo2-base copies a value
//! into a new cell each time a gate reuses it, into the lookup columns for range checks, and
//! into the lincomb and function regions), and the public instance when the cell is public.
//! So no copy constraint can notice it, and MockProver's verdict names the gate or lookup that
//! does: [`MockCircuit::rejections`] returns them as [`Rejection`]s. A test of a constraint
//! first shows the honest witness passes, then that a forgery is rejected by that constraint
//! ([`MockCircuit::assert_rejected_by`]); deleting the constraint makes such a test fail.

use std::collections::{BTreeSet, HashMap};

use halo2_base::gates::circuit::{BaseCircuitParams, CircuitBuilderStage};
use halo2_base::gates::RangeChip;
use halo2_base::halo2_proofs::dev::{MockProver, VerifyFailure};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::Assigned;
use halo2_base::{AssignedValue, Context, ContextCell};

use crate::circuit::{CircuitParams, ModelCircuit};
use crate::freivalds::{self, FreivaldsRegion};
use crate::functions::{self, FunctionRegion};
use crate::lincomb::{self, LinCombRegion};
use crate::plan::MIN_UNUSABLE_ROWS;

pub mod liar;
pub mod replay;
pub mod trace;

/// An advice cell a test can tamper with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CellRef {
    /// Offset in halo2-base's main context.
    Base(usize),
    /// A lincomb cell, as [`LinCombRegion::used_cells`] names it.
    LinComb(bool, usize),
    /// Cell `j` (t, y0, dy) of function-lookup row `r`.
    Function(usize, usize),
    /// The first-phase cell of Freivalds row `r`.
    Freivalds(usize),
}

/// The constraint that made MockProver reject a circuit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    /// halo2-base's gate `a + b·c = out` (every chip's arithmetic, booleanity, products).
    BasicGate,
    /// The lincomb step gate `acc' = acc + c + Σ w·x`.
    LinCombStep,
    /// The lincomb gate pinning both ends of each chain to zero.
    LinCombEnds,
    /// halo2-base's range-check lookup into `[0, 2^lookup_bits)`.
    RangeLookup,
    /// The function-table lookup `(tag, t, y0, dy)`.
    FunctionLookup,
    /// The Freivalds gate starting a Horner sum.
    FreivaldsStart,
    /// The Freivalds Horner step `h = h'·γ + x + c`.
    FreivaldsHorner,
    /// The Freivalds dot step `h = h' − x·w`.
    FreivaldsDot,
    /// The Freivalds check `h = 0` closing each row of a product.
    FreivaldsCheck,
    /// A copy (permutation) constraint: a forgery that was not consistent.
    Copy,
    /// Anything else, as MockProver printed it.
    Other(String),
}

impl Rejection {
    fn of(failure: &VerifyFailure) -> Self {
        match failure {
            VerifyFailure::ConstraintNotSatisfied { constraint, .. } => {
                // "Constraint i in gate j ('name')": the gate's name closes the text.
                let text = constraint.to_string();
                let gate = text
                    .rsplit_once("('")
                    .map(|(_, n)| n.trim_end_matches("')"))
                    .unwrap_or("")
                    .to_string();
                Self::of_gate(&gate, || text)
            }
            VerifyFailure::Lookup { name, .. } => Self::of_lookup(name),
            VerifyFailure::Permutation { .. } => Self::Copy,
            other => Self::Other(other.to_string()),
        }
    }

    /// The gate named `gate`; `text` describes an unknown one.
    fn of_gate(gate: &str, text: impl FnOnce() -> String) -> Self {
        match gate {
            "1 column a + b * c = out" => Self::BasicGate,
            "lincomb step" => Self::LinCombStep,
            "lincomb ends" => Self::LinCombEnds,
            "freivalds start" => Self::FreivaldsStart,
            "freivalds horner" => Self::FreivaldsHorner,
            "freivalds dot" => Self::FreivaldsDot,
            "freivalds check" => Self::FreivaldsCheck,
            _ => Self::Other(text()),
        }
    }

    /// The lookup argument named `name`.
    fn of_lookup(name: &str) -> Self {
        match name {
            "lookup" | "lookup wo selector" => Self::RangeLookup,
            "function tables" => Self::FunctionLookup,
            _ => Self::Other(format!("lookup {name}")),
        }
    }
}

/// The copy classes of a laid-out circuit: which cells must hold one value.
struct CopyClasses {
    class_of: HashMap<ContextCell, usize>,
    members: Vec<Vec<ContextCell>>,
    constant: Vec<Option<Fr>>,
    instances: Vec<Vec<usize>>,
}

impl CopyClasses {
    fn of(circuit: &ModelCircuit) -> Self {
        let copy = circuit.base.core().copy_manager.clone();
        let copy = copy.lock().expect("copy manager lock");
        let mut parent: HashMap<ContextCell, ContextCell> = HashMap::new();
        fn root(parent: &mut HashMap<ContextCell, ContextCell>, c: ContextCell) -> ContextCell {
            let p = *parent.entry(c).or_insert(c);
            if p == c {
                return c;
            }
            let r = root(parent, p);
            parent.insert(c, r);
            r
        }
        for &(a, b) in &copy.advice_equalities {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            if ra != rb {
                parent.insert(ra, rb);
            }
        }
        // Public cells are tied to the instance column outside the copy manager.
        let public = circuit.base.assigned_instances[0]
            .iter()
            .map(|v| v.cell.expect("mock cells carry their position"));
        let cells: Vec<ContextCell> = parent
            .keys()
            .copied()
            .chain(copy.constant_equalities.iter().map(|(_, c)| *c))
            .chain(public)
            .collect();
        let mut classes = CopyClasses {
            class_of: HashMap::new(),
            members: Vec::new(),
            constant: Vec::new(),
            instances: Vec::new(),
        };
        let mut id_of_root: HashMap<ContextCell, usize> = HashMap::new();
        for c in cells {
            if classes.class_of.contains_key(&c) {
                continue;
            }
            let r = root(&mut parent, c);
            let id = *id_of_root.entry(r).or_insert_with(|| {
                classes.members.push(Vec::new());
                classes.constant.push(None);
                classes.instances.push(Vec::new());
                classes.members.len() - 1
            });
            classes.class_of.insert(c, id);
            classes.members[id].push(c);
        }
        for (v, c) in &copy.constant_equalities {
            let id = classes.class_of[c];
            classes.constant[id] = Some(*v);
        }
        for (i, v) in circuit.base.assigned_instances[0].iter().enumerate() {
            let cell = v.cell.expect("mock cells carry their position");
            if let Some(&id) = classes.class_of.get(&cell) {
                classes.instances[id].push(i);
            }
        }
        classes
    }
}

/// A forgery applied, and what undoes it.
struct Applied {
    instances: Vec<Fr>,
    undo: Vec<(CellRef, Fr)>,
    undo_lookups: Vec<(usize, usize, Fr)>,
    accumulators: Vec<Fr>,
}

/// What a test lays out: cells in the main context (and the lincomb region, when it has a
/// width); returns its result and the cells to make public.
pub trait LayOut<T>:
    FnOnce(&mut Context<Fr>, &RangeChip<Fr>, &mut LinCombRegion) -> (T, Vec<AssignedValue<Fr>>)
{
}

impl<T, F> LayOut<T> for F where
    F: FnOnce(&mut Context<Fr>, &RangeChip<Fr>, &mut LinCombRegion) -> (T, Vec<AssignedValue<Fr>>)
{
}

/// A mock circuit built by `f`, which lays out cells and returns any value.
pub struct MockCircuit<T> {
    circuit: ModelCircuit,
    k: u32,
    /// What `f` returned.
    pub result: T,
    /// Advice offsets `f` assigned in halo2-base's context (from the first to the last cell).
    pub cells: std::ops::Range<usize>,
    instances: Vec<Fr>,
    classes: Option<CopyClasses>,
}

impl<T> MockCircuit<T> {
    /// Lays out `f` at `k` with a range table of `k - 1` bits and no lincomb region (dot
    /// products stay in halo2-base's gate). `f` returns its result and the public instance
    /// values it pushed (through `publish`).
    pub fn build(k: u32, f: impl LayOut<T>) -> Self {
        Self::build_with(k, 0, f)
    }

    /// [`Self::build`] with a lincomb region `lincomb_width` terms wide.
    pub fn build_with(k: u32, lincomb_width: usize, f: impl LayOut<T>) -> Self {
        Self::build_inner(k, lincomb_width, |ctx, range, lincomb, _, _| {
            f(ctx, range, lincomb)
        })
    }

    /// [`Self::build`] for function lookups: `f` gets the function region instead.
    pub fn build_functions(
        k: u32,
        f: impl FnOnce(
            &mut Context<Fr>,
            &RangeChip<Fr>,
            &mut FunctionRegion,
        ) -> (T, Vec<AssignedValue<Fr>>),
    ) -> Self {
        Self::build_inner(k, 0, |ctx, range, _, functions, _| f(ctx, range, functions))
    }

    /// [`Self::build`] for products checked by Freivalds' algorithm: `f` gets that region
    /// beside a lincomb region `lincomb_width` terms wide.
    pub fn build_freivalds(
        k: u32,
        lincomb_width: usize,
        f: impl FnOnce(
            &mut Context<Fr>,
            &RangeChip<Fr>,
            &mut LinCombRegion,
            &mut FreivaldsRegion,
        ) -> (T, Vec<AssignedValue<Fr>>),
    ) -> Self {
        Self::build_inner(k, lincomb_width, |ctx, range, lincomb, _, freivalds| {
            f(ctx, range, lincomb, freivalds)
        })
    }

    fn build_inner(
        k: u32,
        lincomb_width: usize,
        f: impl FnOnce(
            &mut Context<Fr>,
            &RangeChip<Fr>,
            &mut LinCombRegion,
            &mut FunctionRegion,
            &mut FreivaldsRegion,
        ) -> (T, Vec<AssignedValue<Fr>>),
    ) -> Self {
        let params = CircuitParams {
            base: BaseCircuitParams {
                k: k as usize,
                lookup_bits: Some(k as usize - 1),
                num_instance_columns: 1,
                ..Default::default()
            },
            lincomb_width,
            functions: false,
            freivalds: true,
        };
        let mut circuit = ModelCircuit::new(CircuitBuilderStage::Mock, params, None);
        let range = circuit.base.range_chip();
        let ctx = circuit.base.main(0);
        let start = ctx.advice.len();
        let (result, public) = f(
            ctx,
            &range,
            &mut circuit.lincomb,
            &mut circuit.functions,
            &mut circuit.freivalds,
        );
        let end = circuit.base.main(0).advice.len();
        let instances = public.iter().map(|c| *c.value()).collect();
        circuit.base.assigned_instances[0].extend(public);
        let constants = circuit.base.statistics().gate.total_fixed;
        circuit.params.base = crate::plan::constants_fit(
            circuit.base.calculate_params(Some(MIN_UNUSABLE_ROWS)),
            constants,
        );
        circuit.params.functions = circuit.functions.rows() > 0;
        circuit.params.freivalds = circuit.freivalds.rows() > 0;
        Self {
            circuit,
            k,
            result,
            cells: start..end,
            instances,
            classes: None,
        }
    }

    /// Wraps an already laid-out circuit (whole-model tests).
    pub fn from_circuit(circuit: ModelCircuit, k: u32, result: T, instances: Vec<Fr>) -> Self {
        let end = circuit.base.core().phase_manager[0].threads[0].advice.len();
        Self {
            circuit,
            k,
            result,
            cells: 0..end,
            instances,
            classes: None,
        }
    }

    /// The same circuit carrying another result (a test helper narrowing a wider one's).
    pub fn with_result<U>(self, result: U) -> MockCircuit<U> {
        MockCircuit {
            circuit: self.circuit,
            k: self.k,
            result,
            cells: self.cells,
            instances: self.instances,
            classes: self.classes,
        }
    }

    /// True when MockProver accepts the circuit as built.
    pub fn satisfied(&self) -> bool {
        self.verdict(self.instances.clone()).is_ok()
    }

    /// Every constraint MockProver finds violated with these public instances.
    fn verdict(&self, instances: Vec<Fr>) -> Result<(), BTreeSet<Rejection>> {
        MockProver::run(self.k, &self.circuit, vec![instances])
            .expect("mock prover runs")
            .verify()
            .map_err(|failures| failures.iter().map(Rejection::of).collect())
    }

    /// Cells whose whole copy class can be moved by +1 without MockProver noticing: among
    /// `f`'s halo2-base cells and every lincomb and function-lookup cell in use. Classes tied
    /// to a constant cannot move and are skipped. A sound chip returns none.
    pub fn unconstrained_cells(&mut self) -> Vec<CellRef> {
        let cells = self
            .cells
            .clone()
            .map(CellRef::Base)
            .chain(self.lincomb_cells())
            .chain(self.function_cells())
            .chain(self.freivalds_cells())
            .collect::<Vec<_>>();
        self.unconstrained_among(cells)
    }

    /// The lincomb cells in use.
    pub fn lincomb_cells(&self) -> Vec<CellRef> {
        let used = self.circuit.lincomb.used_cells();
        used.into_iter()
            .map(|(a, i)| CellRef::LinComb(a, i))
            .collect()
    }

    /// Every first-phase Freivalds cell: copies of other cells, and constant entries (bound
    /// to the constants column, so never moved).
    pub fn freivalds_cells(&self) -> Vec<CellRef> {
        (0..self.circuit.freivalds.rows())
            .map(CellRef::Freivalds)
            .collect()
    }

    /// Whether the Freivalds running sums follow forged cells (`false`, as by default) or
    /// stay those of the honest witness (`true`: a forger who keeps them, so that the gate
    /// at the forged row is the one to reject).
    pub fn freeze_running_sums(&mut self, on: bool) {
        self.circuit.freivalds.freeze(on);
    }

    /// Whether the last `w` of each Freivalds row is forged to close its sum to zero.
    pub fn forge_freivalds_w(&mut self, on: bool) {
        self.circuit.freivalds.forge_w(on);
    }

    /// The function-lookup cells in use.
    pub fn function_cells(&self) -> Vec<CellRef> {
        let rows = self.circuit.functions.rows();
        (0..rows)
            .flat_map(|r| (0..3).map(move |j| CellRef::Function(r, j)))
            .collect()
    }

    /// Like [`Self::unconstrained_cells`], over the given cells only (each class tried once).
    pub fn unconstrained_among(
        &mut self,
        cells: impl IntoIterator<Item = CellRef>,
    ) -> Vec<CellRef> {
        let mut free = Vec::new();
        let mut tried = BTreeSet::new();
        for c in cells {
            let class = self.class_key(c);
            if !tried.insert(class) || self.constant_of(c).is_some() {
                continue;
            }
            let moved = self.value(c) + Fr::from(1u64);
            if self.rejections(&[(c, moved)]).is_empty() {
                free.push(c);
            }
        }
        free
    }

    /// Applies a consistent forgery (each named cell and its whole copy class take the new
    /// value, public instances included), runs MockProver, restores the witness, and returns
    /// the constraints that rejected it (empty when it was accepted).
    ///
    /// Panics when the forgery cannot be consistent: two values for one class, or a class
    /// tied to a constant.
    pub fn rejections(&mut self, changes: &[(CellRef, Fr)]) -> BTreeSet<Rejection> {
        self.rejections_with(changes, &[])
    }

    /// [`Self::rejections`], then `overrides` set single cells apart from their copy class:
    /// for tests of a copy constraint itself, where the forgery splits one class.
    pub fn rejections_with(
        &mut self,
        changes: &[(CellRef, Fr)],
        overrides: &[(CellRef, Fr)],
    ) -> BTreeSet<Rejection> {
        let applied = self.apply(changes, overrides);
        let verdict = self.verdict(applied.instances.clone());
        self.undo(applied);
        verdict.err().unwrap_or_default()
    }

    /// Applies a consistent forgery for good (see [`Self::rejections`]), the lincomb
    /// accumulators following the terms and the public instances the moved classes: the
    /// witness a forger brings. [`Self::trace`] then records it.
    pub fn force(&mut self, changes: &[(CellRef, Fr)]) {
        let applied = self.apply(changes, &[]);
        self.instances = applied.instances;
    }

    /// The circuit as it now stands (with its public instances), as matrices.
    pub fn trace(&self) -> trace::Trace {
        trace::Trace::record(&self.circuit, self.k, &self.instances)
    }

    fn apply(&mut self, changes: &[(CellRef, Fr)], overrides: &[(CellRef, Fr)]) -> Applied {
        // Per class changed: its cells, its public instances, the cell named, the value.
        type ClassChange = (Vec<ContextCell>, Vec<usize>, CellRef, Fr);
        let mut class_values: Vec<ClassChange> = Vec::new();
        let mut seen: HashMap<(usize, usize), Fr> = HashMap::new();
        for &(c, v) in changes {
            if let Some(k) = self.constant_of(c) {
                panic!("{c:?} is copy-constrained to the constant {k:?}: no consistent forgery moves it");
            }
            let key = self.class_key(c);
            if let Some(prev) = seen.insert(key, v) {
                assert_eq!(prev, v, "{c:?}: two values for one copy class");
                continue;
            }
            let (members, instances) = self.class_members(c);
            class_values.push((members, instances, c, v));
        }
        let mut instances = self.instances.clone();
        let mut undo: Vec<(CellRef, Fr)> = Vec::new();
        let mut undo_lookups = Vec::new();
        for (members, public, lone, v) in &class_values {
            let cells: Vec<CellRef> = if members.is_empty() {
                vec![*lone]
            } else {
                members.iter().map(|m| self.cell_ref(m)).collect()
            };
            for c in cells {
                undo.push((c, self.value(c)));
                self.set(c, *v);
            }
            for &i in public {
                instances[i] = *v;
            }
            undo_lookups.extend(self.set_lookup_copies(members, *v));
        }
        for &(c, v) in overrides {
            undo.push((c, self.value(c)));
            self.set(c, v);
            let cell: Vec<ContextCell> = self.context_cell(c).into_iter().collect();
            undo_lookups.extend(self.set_lookup_copies(&cell, v));
        }
        // Accumulators follow the terms, as a forger would write them, unless the forgery
        // is of the accumulators themselves.
        let touches_acc = changes
            .iter()
            .chain(overrides)
            .any(|(c, _)| matches!(c, CellRef::LinComb(true, _)));
        let accumulators = self.circuit.lincomb.accumulators().to_vec();
        if !touches_acc {
            let sums = self.circuit.lincomb.running_sums();
            self.circuit.lincomb.set_accumulators(sums);
        }
        Applied {
            instances,
            undo,
            undo_lookups,
            accumulators,
        }
    }

    fn undo(&mut self, applied: Applied) {
        self.circuit.lincomb.set_accumulators(applied.accumulators);
        for (c, v) in applied.undo.into_iter().rev() {
            self.set(c, v);
        }
        self.restore_lookup_copies(applied.undo_lookups);
    }

    /// Asserts that the honest witness passes and that the forgery is rejected by exactly
    /// the constraints in `by` (and by no copy constraint).
    #[track_caller]
    pub fn assert_rejected_by(&mut self, changes: &[(CellRef, Fr)], by: &[Rejection]) {
        assert!(self.satisfied(), "the honest witness must pass");
        let got = self.rejections(changes);
        let want: BTreeSet<Rejection> = by.iter().cloned().collect();
        assert_eq!(got, want, "forgery {changes:?}");
    }

    /// True when MockProver accepts with these public instances instead of the real ones.
    pub fn accepts_instances(&self, instances: Vec<Fr>) -> bool {
        self.verdict(instances).is_ok()
    }

    /// The constraints rejecting these public instances instead of the real ones.
    pub fn instance_rejections(&self, instances: Vec<Fr>) -> BTreeSet<Rejection> {
        self.verdict(instances).err().unwrap_or_default()
    }

    /// The public instances.
    pub fn instances(&self) -> &[Fr] {
        &self.instances
    }

    /// The circuit under test.
    pub fn circuit(&self) -> &ModelCircuit {
        &self.circuit
    }

    /// The circuit, as it now stands.
    pub fn into_circuit(self) -> ModelCircuit {
        self.circuit
    }

    /// The value of a halo2-base cell of the main context.
    pub fn base_cell(&mut self, offset: usize) -> Fr {
        self.value(CellRef::Base(offset))
    }

    /// The value of any cell.
    pub fn value(&mut self, c: CellRef) -> Fr {
        match c {
            CellRef::Base(i) => self.circuit.base.main(0).advice[i].evaluate(),
            CellRef::LinComb(a, i) => self.circuit.lincomb.cell((a, i)),
            CellRef::Function(r, j) => self.circuit.functions.cell(r, j),
            CellRef::Freivalds(r) => self.circuit.freivalds.cell(r),
        }
    }

    fn set(&mut self, c: CellRef, v: Fr) {
        match c {
            CellRef::Base(i) => self.circuit.base.main(0).advice[i] = Assigned::Trivial(v),
            CellRef::LinComb(a, i) => self.circuit.lincomb.set_cell((a, i), v),
            CellRef::Function(r, j) => self.circuit.functions.set_cell(r, j, v),
            CellRef::Freivalds(r) => self.circuit.freivalds.set_cell(r, v),
        }
    }

    fn classes(&mut self) -> &CopyClasses {
        if self.classes.is_none() {
            self.classes = Some(CopyClasses::of(&self.circuit));
        }
        self.classes.as_ref().expect("just computed")
    }

    /// The virtual cell behind `c`; `None` for cells outside every copy class (accumulators).
    fn context_cell(&mut self, c: CellRef) -> Option<ContextCell> {
        match c {
            CellRef::Base(i) => {
                let ctx = self.circuit.base.main(0);
                Some(ContextCell::new(ctx.type_id(), ctx.id(), i))
            }
            CellRef::LinComb(false, i) => Some(ContextCell::new(lincomb::TYPE_ID, 0, i)),
            CellRef::LinComb(true, _) => None,
            CellRef::Function(r, j) => Some(ContextCell::new(functions::TYPE_ID, 0, 3 * r + j)),
            CellRef::Freivalds(r) => Some(ContextCell::new(freivalds::TYPE_ID, 0, r)),
        }
    }

    fn cell_ref(&mut self, c: &ContextCell) -> CellRef {
        match c.type_id {
            lincomb::TYPE_ID => CellRef::LinComb(false, c.offset),
            functions::TYPE_ID => CellRef::Function(c.offset / 3, c.offset % 3),
            freivalds::TYPE_ID => CellRef::Freivalds(c.offset),
            _ => {
                let ctx = self.circuit.base.main(0);
                assert_eq!(
                    (c.type_id, c.context_id),
                    (ctx.type_id(), ctx.id()),
                    "a copy class reaches a context the harness does not know"
                );
                CellRef::Base(c.offset)
            }
        }
    }

    /// A key naming `c`'s copy class (the cell itself when it is in none).
    fn class_key(&mut self, c: CellRef) -> (usize, usize) {
        let cell = self.context_cell(c);
        let class = cell.and_then(|cell| self.classes().class_of.get(&cell).copied());
        match (class, c) {
            (Some(id), _) => (0, id),
            (None, CellRef::Base(i)) => (1, i),
            (None, CellRef::LinComb(_, i)) => (2, i),
            (None, CellRef::Function(r, j)) => (3, 3 * r + j),
            (None, CellRef::Freivalds(r)) => (4, r),
        }
    }

    fn constant_of(&mut self, c: CellRef) -> Option<Fr> {
        let cell = self.context_cell(c)?;
        let classes = self.classes();
        let id = *classes.class_of.get(&cell)?;
        classes.constant[id]
    }

    fn class_members(&mut self, c: CellRef) -> (Vec<ContextCell>, Vec<usize>) {
        let Some(cell) = self.context_cell(c) else {
            return (Vec::new(), Vec::new());
        };
        let classes = self.classes();
        match classes.class_of.get(&cell) {
            Some(&id) => (classes.members[id].clone(), classes.instances[id].clone()),
            None => (vec![cell], Vec::new()),
        }
    }

    /// Range-check lookups keep their own copy of each value; moves those of `members`.
    fn set_lookup_copies(&mut self, members: &[ContextCell], v: Fr) -> Vec<(usize, usize, Fr)> {
        let manager = &self.circuit.base.lookup_manager()[0];
        let mut lookups = manager.cells_to_lookup.lock().expect("lookup lock");
        let mut undo = Vec::new();
        for (t, thread) in lookups.values_mut().enumerate() {
            for (i, [cell]) in thread.iter_mut().enumerate() {
                if cell.cell.is_some_and(|c| members.contains(&c)) {
                    undo.push((t, i, cell.value.evaluate()));
                    cell.value = Assigned::Trivial(v);
                }
            }
        }
        undo
    }

    fn restore_lookup_copies(&mut self, undo: Vec<(usize, usize, Fr)>) {
        let manager = &self.circuit.base.lookup_manager()[0];
        let mut lookups = manager.cells_to_lookup.lock().expect("lookup lock");
        for (t, i, v) in undo.into_iter().rev() {
            if let Some(thread) = lookups.values_mut().nth(t) {
                thread[i][0].value = Assigned::Trivial(v);
            }
        }
    }
}

/// Loads `values` as witnesses, each signed-range-checked to `bits` as the circuit checks a
/// committed value (`v + 2^(bits−1)` into halo2-base's range check), written out so that a
/// forged value out of range is laid out (with consistent range-check cells) instead of
/// refused natively: the packing forgeries' tests build on it.
pub fn load_range_checked_by_hand(
    ctx: &mut Context<Fr>,
    range: &RangeChip<Fr>,
    values: &[i64],
    bits: u32,
) -> Vec<AssignedValue<Fr>> {
    use halo2_base::gates::{GateInstructions, RangeInstructions};
    let half = crate::field::fr(1i128 << (bits - 1));
    values
        .iter()
        .map(|&v| {
            let c = ctx.load_witness(crate::field::fr(v as i128));
            let shifted = range
                .gate()
                .add(ctx, c, halo2_base::QuantumCell::Constant(half));
            range.range_check(ctx, shifted, bits as usize);
            c
        })
        .collect()
}
