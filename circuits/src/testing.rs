//! Test harness: MockProver runs, and tampering with every advice cell a chip assigned, in
//! halo2-base's columns and in the lincomb region.

use halo2_base::gates::circuit::{BaseCircuitParams, CircuitBuilderStage};
use halo2_base::gates::RangeChip;
use halo2_base::halo2_proofs::dev::MockProver;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::Assigned;
use halo2_base::{AssignedValue, Context};

use crate::circuit::{CircuitParams, ModelCircuit};
use crate::functions::FunctionRegion;
use crate::lincomb::LinCombRegion;
use crate::plan::MIN_UNUSABLE_ROWS;

/// An advice cell a test can tamper with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellRef {
    /// Offset in halo2-base's main context.
    Base(usize),
    /// A lincomb cell, as [`LinCombRegion::used_cells`] names it.
    LinComb(bool, usize),
    /// Cell `j` (t, y0, dy) of function-lookup row `r`.
    Function(usize, usize),
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
        Self::build_inner(k, lincomb_width, |ctx, range, lincomb, _| {
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
        Self::build_inner(k, 0, |ctx, range, _, functions| f(ctx, range, functions))
    }

    fn build_inner(
        k: u32,
        lincomb_width: usize,
        f: impl FnOnce(
            &mut Context<Fr>,
            &RangeChip<Fr>,
            &mut LinCombRegion,
            &mut FunctionRegion,
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
        };
        let mut circuit = ModelCircuit::new(CircuitBuilderStage::Mock, params, None);
        let range = circuit.base.range_chip();
        let ctx = circuit.base.main(0);
        let start = ctx.advice.len();
        let (result, public) = f(ctx, &range, &mut circuit.lincomb, &mut circuit.functions);
        let end = circuit.base.main(0).advice.len();
        let instances = public.iter().map(|c| *c.value()).collect();
        circuit.base.assigned_instances[0].extend(public);
        circuit.params.base = circuit.base.calculate_params(Some(MIN_UNUSABLE_ROWS));
        circuit.params.functions = circuit.functions.rows() > 0;
        Self {
            circuit,
            k,
            result,
            cells: start..end,
            instances,
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
        }
    }

    /// True when MockProver accepts the circuit as built.
    pub fn satisfied(&self) -> bool {
        self.accepts_instances(self.instances.clone())
    }

    /// Cells whose value can be changed (by +1) without MockProver noticing: among `f`'s
    /// halo2-base cells and every lincomb cell in use. A sound chip returns none.
    pub fn unconstrained_cells(&mut self) -> Vec<CellRef> {
        let cells = self
            .cells
            .clone()
            .map(CellRef::Base)
            .chain(self.lincomb_cells())
            .chain(self.function_cells())
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

    /// The function-lookup cells in use.
    pub fn function_cells(&self) -> Vec<CellRef> {
        let rows = self.circuit.functions.rows();
        (0..rows)
            .flat_map(|r| (0..3).map(move |j| CellRef::Function(r, j)))
            .collect()
    }

    /// Like [`Self::unconstrained_cells`], over the given cells only.
    pub fn unconstrained_among(
        &mut self,
        cells: impl IntoIterator<Item = CellRef>,
    ) -> Vec<CellRef> {
        let mut free = Vec::new();
        for c in cells {
            let original = self.cell(c);
            self.set_cell(c, original + Fr::from(1u64));
            if self.satisfied() {
                free.push(c);
            }
            self.set_cell(c, original);
        }
        free
    }

    /// True when MockProver still accepts after setting the given cells (then restores them).
    pub fn accepts_tampered(&mut self, changes: &[(CellRef, Fr)]) -> bool {
        let originals: Vec<Fr> = changes.iter().map(|&(c, _)| self.cell(c)).collect();
        for &(c, v) in changes {
            self.set_cell(c, v);
        }
        let ok = self.satisfied();
        for (&(c, _), v) in changes.iter().zip(originals) {
            self.set_cell(c, v);
        }
        ok
    }

    /// True when MockProver accepts with these public instances instead of the real ones.
    pub fn accepts_instances(&self, instances: Vec<Fr>) -> bool {
        MockProver::run(self.k, &self.circuit, vec![instances])
            .expect("mock prover runs")
            .verify()
            .is_ok()
    }

    /// The public instances.
    pub fn instances(&self) -> &[Fr] {
        &self.instances
    }

    /// The circuit under test.
    pub fn circuit(&self) -> &ModelCircuit {
        &self.circuit
    }

    /// The value of a halo2-base cell of the main context.
    pub fn base_cell(&mut self, offset: usize) -> Fr {
        self.cell(CellRef::Base(offset))
    }

    fn cell(&mut self, c: CellRef) -> Fr {
        match c {
            CellRef::Base(i) => self.circuit.base.main(0).advice[i].evaluate(),
            CellRef::LinComb(a, i) => self.circuit.lincomb.cell((a, i)),
            CellRef::Function(r, j) => self.circuit.functions.cell(r, j),
        }
    }

    fn set_cell(&mut self, c: CellRef, v: Fr) {
        match c {
            CellRef::Base(i) => self.circuit.base.main(0).advice[i] = Assigned::Trivial(v),
            CellRef::LinComb(a, i) => self.circuit.lincomb.set_cell((a, i), v),
            CellRef::Function(r, j) => self.circuit.functions.set_cell(r, j, v),
        }
    }
}
