//! Test harness: MockProver runs, and tampering with every advice cell a chip assigned.

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::gates::RangeChip;
use halo2_base::halo2_proofs::dev::MockProver;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::Assigned;
use halo2_base::Context;

use crate::plan::MIN_UNUSABLE_ROWS;

/// A mock circuit built by `f`, which lays out cells in one context and returns any value.
pub struct MockCircuit<T> {
    builder: BaseCircuitBuilder<Fr>,
    k: u32,
    /// What `f` returned.
    pub result: T,
    /// Advice offsets `f` assigned (from the first to the last cell it created).
    pub cells: std::ops::Range<usize>,
    instances: Vec<Fr>,
}

impl<T> MockCircuit<T> {
    /// Lays out `f` at `k` with a range table of `k - 1` bits. `f` returns its result and
    /// the public instance values it pushed (through `publish`).
    pub fn build(
        k: u32,
        f: impl FnOnce(&mut Context<Fr>, &RangeChip<Fr>) -> (T, Vec<halo2_base::AssignedValue<Fr>>),
    ) -> Self {
        let mut builder = BaseCircuitBuilder::<Fr>::from_stage(CircuitBuilderStage::Mock)
            .use_k(k as usize)
            .use_lookup_bits(k as usize - 1)
            .use_instance_columns(1);
        let range = builder.range_chip();
        let ctx = builder.main(0);
        let start = ctx.advice.len();
        let (result, public) = f(ctx, &range);
        let end = ctx.advice.len();
        let instances = public.iter().map(|c| *c.value()).collect();
        builder.assigned_instances[0].extend(public);
        builder.calculate_params(Some(MIN_UNUSABLE_ROWS));
        Self {
            builder,
            k,
            result,
            cells: start..end,
            instances,
        }
    }

    /// Wraps an already laid-out builder (whole-model tests).
    pub fn from_builder(
        builder: BaseCircuitBuilder<Fr>,
        k: u32,
        result: T,
        instances: Vec<Fr>,
    ) -> Self {
        let end = builder.core().phase_manager[0].threads[0].advice.len();
        Self {
            builder,
            k,
            result,
            cells: 0..end,
            instances,
        }
    }

    /// True when MockProver accepts the circuit as built.
    pub fn satisfied(&self) -> bool {
        MockProver::run(self.k, &self.builder, vec![self.instances.clone()])
            .expect("mock prover runs")
            .verify()
            .is_ok()
    }

    /// Advice offsets whose value can be changed (by +1) without MockProver noticing.
    /// A sound chip returns none.
    pub fn unconstrained_cells(&mut self) -> Vec<usize> {
        self.unconstrained_among(self.cells.clone())
    }

    /// Like [`Self::unconstrained_cells`], over the given advice offsets only.
    pub fn unconstrained_among(&mut self, cells: impl IntoIterator<Item = usize>) -> Vec<usize> {
        let mut free = Vec::new();
        for i in cells {
            let original = self.cell(i);
            self.set_cell(i, original + Fr::from(1u64));
            if self.satisfied() {
                free.push(i);
            }
            self.set_cell(i, original);
        }
        free
    }

    /// True when MockProver still accepts after setting the given cells (then restores them).
    pub fn accepts_tampered(&mut self, changes: &[(usize, Fr)]) -> bool {
        let originals: Vec<Fr> = changes.iter().map(|&(i, _)| self.cell(i)).collect();
        for &(i, v) in changes {
            self.set_cell(i, v);
        }
        let ok = self.satisfied();
        for (&(i, _), v) in changes.iter().zip(originals) {
            self.set_cell(i, v);
        }
        ok
    }

    /// True when MockProver accepts with these public instances instead of the real ones.
    pub fn accepts_instances(&self, instances: Vec<Fr>) -> bool {
        MockProver::run(self.k, &self.builder, vec![instances])
            .expect("mock prover runs")
            .verify()
            .is_ok()
    }

    /// The public instances.
    pub fn instances(&self) -> &[Fr] {
        &self.instances
    }

    fn cell(&mut self, i: usize) -> Fr {
        self.ctx().advice[i].evaluate()
    }

    fn set_cell(&mut self, i: usize, v: Fr) {
        self.ctx().advice[i] = Assigned::Trivial(v);
    }

    fn ctx(&mut self) -> &mut Context<Fr> {
        self.builder.main(0)
    }
}
