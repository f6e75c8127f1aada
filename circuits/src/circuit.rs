//! The model circuit: halo2-base's builder (gates, range lookups, constants, instances) plus
//! the lincomb region beside it, synthesized in one region so copy constraints can cross.

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::{
    BaseCircuitParams, BaseConfig, CircuitBuilderStage, MaybeRangeConfig,
};
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::halo2_proofs::circuit::{Layouter, SimpleFloorPlanner};
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::plonk::{Circuit, ConstraintSystem, Error};
use halo2_base::virtual_region::manager::VirtualRegionManager;
use serde::{Deserialize, Serialize};

use crate::freivalds::{FreivaldsConfig, FreivaldsRegion};
use crate::functions::{FunctionConfig, FunctionRegion};
use crate::lincomb::{LinCombConfig, LinCombRegion};

/// The column shape of a model circuit (part of the key: a key only fits its own shape).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CircuitParams {
    /// halo2-base's columns.
    pub base: BaseCircuitParams,
    /// Terms per lincomb row; zero when the circuit has no lincomb region.
    pub lincomb_width: usize,
    /// Whether the circuit has function lookup tables.
    #[serde(default)]
    pub functions: bool,
    /// Whether the circuit checks products by Freivalds' algorithm (a second phase).
    #[serde(default)]
    pub freivalds: bool,
}

/// A laid-out model: what keygen, the prover and MockProver synthesize.
#[derive(Clone, Debug)]
pub struct ModelCircuit {
    /// halo2-base's virtual regions (gates, lookups, copy constraints, instances).
    pub base: BaseCircuitBuilder<Fr>,
    /// The linear combinations.
    pub lincomb: LinCombRegion,
    /// The function lookups and their tables.
    pub functions: FunctionRegion,
    /// The products checked by Freivalds' algorithm.
    pub freivalds: FreivaldsRegion,
    /// The shape this circuit was laid out for.
    pub params: CircuitParams,
}

impl ModelCircuit {
    /// An empty circuit for `stage` and shape `params`; the prover also takes the keygen
    /// break points (where halo2-base's virtual column wraps into the next physical one).
    pub fn new(
        stage: CircuitBuilderStage,
        params: CircuitParams,
        break_points: Option<MultiPhaseThreadBreakPoints>,
    ) -> Self {
        let base = match (stage, break_points) {
            (CircuitBuilderStage::Prover, Some(bp)) => {
                BaseCircuitBuilder::prover(params.base.clone(), bp)
            }
            _ => BaseCircuitBuilder::from_stage(stage).use_params(params.base.clone()),
        };
        let copy = (!base.witness_gen_only()).then(|| base.core().copy_manager.clone());
        Self {
            lincomb: LinCombRegion::new(params.lincomb_width, copy.clone()),
            functions: FunctionRegion::new(copy.clone()),
            freivalds: FreivaldsRegion::new(copy),
            base,
            params,
        }
    }
}

impl Circuit<Fr> for ModelCircuit {
    type Config = (
        BaseConfig<Fr>,
        Option<LinCombConfig>,
        Option<FunctionConfig>,
        Option<FreivaldsConfig>,
    );
    type FloorPlanner = SimpleFloorPlanner;
    type Params = CircuitParams;

    fn params(&self) -> CircuitParams {
        self.params.clone()
    }

    fn without_witnesses(&self) -> Self {
        // halo2-axiom's keygen and prover synthesize the circuit as given; like halo2-base's
        // builder, a witness-free copy is never asked for.
        unimplemented!("ModelCircuit is always synthesized with its witness")
    }

    fn configure_with_params(
        meta: &mut ConstraintSystem<Fr>,
        params: CircuitParams,
    ) -> Self::Config {
        let base = BaseConfig::configure(meta, params.base);
        let lincomb = (params.lincomb_width > 0)
            .then(|| LinCombConfig::configure(meta, params.lincomb_width));
        let functions = params.functions.then(|| FunctionConfig::configure(meta));
        let freivalds = params.freivalds.then(|| FreivaldsConfig::configure(meta));
        (base, lincomb, functions, freivalds)
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> Self::Config {
        unreachable!("ModelCircuit is configured with its params")
    }

    /// halo2-base's own `synthesize`, with the lincomb rows assigned after the gate cells and
    /// before the copy manager imposes equalities (which then include the lincomb terms).
    /// With Freivalds checks, the first phase is committed next and the running sums are
    /// assigned from its challenge.
    fn synthesize(
        &self,
        config: Self::Config,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), Error> {
        let (base, lincomb, functions, freivalds) = config;
        if let MaybeRangeConfig::WithRange(range) = &base.base {
            range.load_lookup_table(&mut layouter)?;
        }
        if let Some(functions) = &functions {
            self.functions.load_table(functions, &mut layouter)?;
        }
        layouter.assign_region(
            || "model",
            |mut region| {
                let usable_rows = base.gate().max_rows;
                let core = self.base.core();
                core.phase_manager[0].assign_raw(
                    &(base.gate().basic_gates[0].clone(), usable_rows),
                    &mut region,
                );
                if let MaybeRangeConfig::WithRange(range) = &base.base {
                    self.base.assign_lookups_in_phase(range, &mut region, 0);
                }
                if let Some(lincomb) = &lincomb {
                    self.lincomb.assign(lincomb, &mut region);
                }
                if let Some(functions) = &functions {
                    self.functions.assign(functions, &mut region);
                }
                if let Some(freivalds) = &freivalds {
                    self.freivalds.assign_first(freivalds, &mut region);
                }
                if !core.witness_gen_only() {
                    core.copy_manager.assign_raw(base.constants(), &mut region);
                }
                if let Some(freivalds) = &freivalds {
                    region.next_phase();
                    self.freivalds.assign_second(freivalds, &mut region);
                }
                Ok(())
            },
        )?;
        self.base
            .assign_instances(&base.instance, layouter.namespace(|| "expose"));
        Ok(())
    }
}
