//! Walks a [`QGraph`] node by node, laying out each op with [`QuantChip`], and exposes the
//! public instances (inputs when public, then outputs).

use halo2_base::gates::circuit::builder::BaseCircuitBuilder;
use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_base::gates::flex_gate::MultiPhaseThreadBreakPoints;
use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::AssignedValue;
use serde::{Deserialize, Serialize};
use zkinfer_model::{QGraph, QOp, Src};

use crate::chips::{signed_bits_for, Elem, QuantChip};
use crate::error::CircuitError;
use crate::field::fr;
use crate::plan::CircuitPlan;

/// Whether the model input is a public instance or a private witness.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// In the public instances (EZKL's default).
    #[default]
    Public,
    /// A private witness; only outputs are public.
    Private,
}

/// Lays out `q` on quantized `inputs`; returns the public instance values in order.
///
/// The witness is computed by the chips from the cells and then compared with
/// [`QGraph::eval`] element by element: a disagreement is an internal error, never a proof.
pub fn lay_out(
    builder: &mut BaseCircuitBuilder<Fr>,
    q: &QGraph,
    inputs: &[Vec<i64>],
    visibility: Visibility,
) -> Result<Vec<Fr>, CircuitError> {
    let trace = q.eval(inputs)?;
    let chip = QuantChip::new(builder.range_chip());
    let ctx = builder.main(0);
    let mut vals: Vec<Vec<Elem>> = Vec::with_capacity(q.nodes.len());
    let mut negs: Vec<Vec<Option<AssignedValue<Fr>>>> = Vec::with_capacity(q.nodes.len());
    for (id, node) in q.nodes.iter().enumerate() {
        let place = |i: usize| move || format!("node \"{}\" element {i}", node.name);
        let elem = |slot: u32, idx: u32| vals[node.inputs[slot as usize]][idx as usize];
        let neg_of = |slot: u32, idx: u32| negs[node.inputs[slot as usize]][idx as usize];
        let (out, neg): (Vec<Elem>, Vec<Option<AssignedValue<Fr>>>) = match &node.op {
            QOp::Input { index } => {
                let mut out = Vec::with_capacity(node.len());
                let mut neg = Vec::with_capacity(node.len());
                for (i, &v) in inputs[*index].iter().enumerate() {
                    let cell = ctx.load_witness(fr(v as i128));
                    neg.push(Some(chip.sign_bit(ctx, cell, q.act_bits, &place(i))?));
                    out.push(Elem::Cell(cell));
                }
                (out, neg)
            }
            QOp::Linear { terms, bias, shift } => {
                let mut out = Vec::with_capacity(node.len());
                let mut neg = Vec::with_capacity(node.len());
                for (i, (row, &b)) in terms.iter().zip(bias).enumerate() {
                    let pairs: Vec<(Elem, Elem)> = row
                        .iter()
                        .map(|&(s, x, c)| (elem(s, x), Elem::Const(c as i128)))
                        .collect();
                    let r = chip.dot(ctx, &pairs, b as i128, *shift, q.act_bits, &place(i))?;
                    // A pass-through keeps the sign bit already proven for its source.
                    let passthrough = match row {
                        [(s, x, 1)] if b == 0 && *shift == 0 => neg_of(*s, *x),
                        _ => None,
                    };
                    out.push(r.out);
                    neg.push(r.neg.or(passthrough));
                }
                (out, neg)
            }
            QOp::Bilinear { pairs, shift } => {
                let mut out = Vec::with_capacity(node.len());
                let mut neg = Vec::with_capacity(node.len());
                for (i, row) in pairs.iter().enumerate() {
                    let pairs: Vec<(Elem, Elem)> =
                        row.iter().map(|&(a, b)| (elem(0, a), elem(1, b))).collect();
                    let r = chip.dot(
                        ctx,
                        &pairs,
                        1i128 << (shift - 1),
                        *shift,
                        q.act_bits,
                        &place(i),
                    )?;
                    out.push(r.out);
                    neg.push(r.neg);
                }
                (out, neg)
            }
            QOp::Extremum { kind, candidates } => {
                let widest = node
                    .inputs
                    .iter()
                    .map(|&i| q.nodes[i].bound)
                    .chain(candidates.iter().flatten().filter_map(|s| match s {
                        Src::Const(c) => Some(c.unsigned_abs() as u128),
                        Src::Elem { .. } => None,
                    }))
                    .max()
                    .unwrap_or(0);
                let bits = signed_bits_for(widest.saturating_mul(2));
                let resolve = |s: &Src<i64>| match *s {
                    Src::Elem { slot, idx } => (elem(slot, idx), neg_of(slot, idx)),
                    Src::Const(c) => (Elem::Const(c as i128), None),
                };
                let mut out = Vec::with_capacity(node.len());
                for (i, row) in candidates.iter().enumerate() {
                    let (mut m, mut m_neg) = resolve(&row[0]);
                    for s in &row[1..] {
                        let (c, _) = resolve(s);
                        m = chip.extremum2(ctx, *kind, m, c, m_neg, bits, &place(i))?;
                        m_neg = None;
                    }
                    out.push(m);
                }
                let n = out.len();
                (out, vec![None; n])
            }
            QOp::Remap { srcs } => srcs
                .iter()
                .map(|s| match *s {
                    Src::Elem { slot, idx } => (elem(slot, idx), neg_of(slot, idx)),
                    Src::Const(c) => (Elem::Const(c as i128), None),
                })
                .unzip(),
        };
        for (i, (e, &want)) in out.iter().zip(&trace.values[id]).enumerate() {
            if e.value() != want as i128 {
                return Err(CircuitError::Mismatch {
                    index: i,
                    circuit: e.value(),
                    reference: want as i128,
                });
            }
        }
        vals.push(out);
        negs.push(neg);
    }
    let mut public: Vec<AssignedValue<Fr>> = Vec::new();
    if visibility == Visibility::Public {
        for &i in &q.inputs {
            public.extend(vals[i].iter().map(|e| match e {
                Elem::Cell(c) => *c,
                Elem::Const(_) => unreachable!("inputs are cells"),
            }));
        }
    }
    for &o in &q.outputs {
        for e in &vals[o] {
            public.push(match e {
                Elem::Cell(c) => *c,
                Elem::Const(k) => ctx.load_constant(fr(*k)),
            });
        }
    }
    let instances = public.iter().map(|c| *c.value()).collect();
    builder.assigned_instances[0].extend(public);
    Ok(instances)
}

/// A builder for `stage`, shaped by `plan`, with `q` laid out on `inputs`.
pub fn build_circuit(
    stage: CircuitBuilderStage,
    plan: &CircuitPlan,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    q: &QGraph,
    inputs: &[Vec<i64>],
) -> Result<(BaseCircuitBuilder<Fr>, Vec<Fr>), CircuitError> {
    let mut builder = match (stage, break_points) {
        (CircuitBuilderStage::Prover, Some(bp)) => {
            BaseCircuitBuilder::prover(plan.params.clone(), bp)
        }
        _ => BaseCircuitBuilder::from_stage(stage).use_params(plan.params.clone()),
    };
    let instances = lay_out(&mut builder, q, inputs, plan.visibility)?;
    if instances.len() != plan.num_instances {
        return Err(CircuitError::TooLarge(format!(
            "internal: {} instances laid out, the plan has {}",
            instances.len(),
            plan.num_instances
        )));
    }
    Ok((builder, instances))
}
