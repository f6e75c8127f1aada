//! Walks a [`QGraph`] node by node, laying out each op with [`QuantChip`], and exposes the
//! public instances ([`io`]: inputs when public or hashed, then outputs).

use std::collections::HashMap;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::{AssignedValue, Context};
use zkinfer_model::{QGraph, QOp, Src};

use crate::chips::{signed_bits_for, Elem, QuantChip};
use crate::circuit::ModelCircuit;
use crate::error::CircuitError;
use crate::field::fr;
use crate::freivalds::FreivaldsRegion;
use crate::lincomb::LinCombRegion;
use crate::shared_factor::{shared_factors, SharedFactor};

mod build;
mod io;
mod memo;

pub use build::build_circuit;
#[cfg(any(test, feature = "testing"))]
pub(crate) use build::{build_circuit_lying, lay_out_planned};
pub use io::{tensor_layout, weight_commitment, weight_layout, Io, Links, Visibility};
use memo::{Memo, Value, BILINEAR, DIVIDE, EXTREMUM, GATHER, LINEAR, LOOKUP, SQRT};

fn map2<A, B>(rows: &[Vec<A>], f: impl Fn(&A) -> B) -> Vec<Vec<B>> {
    rows.iter().map(|r| r.iter().map(&f).collect()).collect()
}

/// The rounding shift after a product: `floor((bias(o) + z) / 2^shift)`, range-checked, for
/// the outputs `live` keeps.
struct Rescale<'a> {
    bias: &'a dyn Fn(usize) -> i128,
    shift: u32,
    act_bits: u32,
    live: &'a dyn Fn(usize) -> bool,
}

/// Lays out a product whose rows share a right factor by a Freivalds check, then rescales
/// each output; returns the outputs by index. Rows of `L` with the same operands are
/// checked once (a Tile or Expand before a projection).
#[allow(clippy::too_many_arguments)]
fn lay_out_shared<P: Fn() -> String>(
    ctx: &mut Context<Fr>,
    lincomb: &mut LinCombRegion,
    region: &mut FreivaldsRegion,
    chip: &QuantChip,
    memo: &mut Memo,
    shared: SharedFactor<Value, Elem>,
    rescale: Rescale,
    place: &dyn Fn(usize) -> P,
) -> Result<Vec<(usize, Value)>, CircuitError> {
    let mut row_of: HashMap<Vec<[i128; 2]>, usize> = HashMap::new();
    let mut unique: Vec<Vec<Elem>> = Vec::new();
    let rows: Vec<usize> = shared
        .left
        .iter()
        .map(|l| {
            let l: Vec<Value> = l.iter().map(|v| v.unwrap_or(Value::constant(0))).collect();
            let key = l.iter().map(Value::key).collect();
            *row_of.entry(key).or_insert_with(|| {
                unique.push(l.iter().map(|v| v.elem).collect());
                unique.len() - 1
            })
        })
        .collect();
    let z = region.product(ctx, &unique, &shared.right)?;
    let mut out = Vec::new();
    for (g, outs) in shared.outputs.iter().enumerate() {
        for (j, &o) in outs.iter().enumerate() {
            if !(rescale.live)(o) {
                continue;
            }
            let r = chip.dot(
                ctx,
                lincomb,
                &[(Elem::Cell(z[rows[g]][j]), Elem::Const(1))],
                (rescale.bias)(o),
                rescale.shift,
                rescale.act_bits,
                &place(o),
            )?;
            out.push((o, memo.fresh(r.out, r.neg)));
        }
    }
    Ok(out)
}

/// What [`shared_factors`] found in a node: each product's shape, and the outputs left.
fn log_products<S, R>(node: &str, products: &[SharedFactor<S, R>], rest: usize) {
    if products.is_empty() || !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let shapes: Vec<String> = products
        .iter()
        .map(|f| {
            let zeros = f.left.iter().flatten().filter(|s| s.is_none()).count();
            let p = f.right.first().map_or(0, Vec::len);
            format!("{}x{}x{p} ({zeros} zeros)", f.left.len(), f.right.len())
        })
        .collect();
    tracing::debug!(node, products = %shapes.join(", "), multiplied_out = rest, "Freivalds products");
}

/// Which output elements of each node something reads: a graph output, or an element a live
/// element of a later node reads. Only those are laid out: a cell nothing reads would be
/// pinned by no constraint but the one that computes it (and it is work for nothing: a
/// strided convolution skips part of the activation before it).
fn live_elements(q: &QGraph) -> Vec<Vec<bool>> {
    let mut live: Vec<Vec<bool>> = q.nodes.iter().map(|n| vec![false; n.len()]).collect();
    for &o in &q.outputs {
        live[o].iter_mut().for_each(|l| *l = true);
    }
    for (id, node) in q.nodes.iter().enumerate().rev() {
        // Every input and weight value is committed or public, read or not.
        if matches!(node.op, QOp::Input { .. } | QOp::Param { .. }) {
            live[id].iter_mut().for_each(|l| *l = true);
            continue;
        }
        let mut reads: Vec<(u32, u32)> = Vec::new();
        for i in (0..node.len()).filter(|&i| live[id][i]) {
            match &node.op {
                QOp::Input { .. } | QOp::Param { .. } => {}
                QOp::Linear { terms, .. } => reads.extend(terms.row(i).iter().map(|t| (t.0, t.1))),
                QOp::Bilinear { pairs, .. } => {
                    reads.extend(pairs.row(i).iter().flat_map(|&(a, b)| [(0, a), (1, b)]))
                }
                QOp::Extremum { candidates, .. } => {
                    reads.extend(candidates.row(i).iter().filter_map(|s| match *s {
                        Src::Elem { slot, idx } => Some((slot, idx)),
                        Src::Const(_) => None,
                    }))
                }
                QOp::Remap { srcs } => {
                    if let Src::Elem { slot, idx } = srcs[i] {
                        reads.push((slot, idx));
                    }
                }
                QOp::Sqrt { .. } | QOp::Lookup { .. } => reads.push((0, i as u32)),
                QOp::Divide { pairs, .. } => reads.extend([(0, pairs[i].0), (1, pairs[i].1)]),
                QOp::Gather { picks, .. } => reads.push((0, picks[i].0)),
            }
        }
        for (slot, idx) in reads {
            live[node.inputs[slot as usize]][idx as usize] = true;
        }
    }
    live
}

/// The element as a cell: constants become fixed-constant cells.
fn as_cell(ctx: &mut Context<Fr>, e: Elem) -> AssignedValue<Fr> {
    match e {
        Elem::Cell(c) => c,
        Elem::Const(c) => ctx.load_constant(fr(c)),
    }
}

/// The main-context offsets of the cells that tell a lie, and the values they hold.
pub type Lied = Vec<(usize, Fr)>;

/// A lie the testing harness makes one op tell: `delta` added to the listed elements of node
/// `node`'s output, as its chip computed them, everything downstream then laid out from the
/// lie (what a forger does).
#[derive(Clone, Debug)]
pub struct OutputLie {
    /// The node whose output lies.
    pub node: usize,
    /// The output elements changed.
    pub elems: Vec<usize>,
    /// What is added to each.
    pub delta: i128,
}

/// Lays out `q` on quantized `inputs`; returns the public instance values in order.
///
/// The witness is computed by the chips from the cells and then compared with
/// [`QGraph::eval`] element by element: a disagreement is an internal error, never a proof.
pub fn lay_out(
    circuit: &mut ModelCircuit,
    q: &QGraph,
    inputs: &[Vec<i64>],
    io: Io,
) -> Result<Vec<Fr>, CircuitError> {
    lay_out_lying(circuit, q, inputs, io, Fr::zero(), None).map(|(instances, _)| instances)
}

/// [`lay_out`], with `lie` told: also returns the main-context offsets of the cells that lie
/// and the values they hold (empty without a lie, or when no element of the node is a cell
/// of its own).
pub(crate) fn lay_out_lying(
    circuit: &mut ModelCircuit,
    q: &QGraph,
    inputs: &[Vec<i64>],
    io: Io,
    salt: Fr,
    lie: Option<&OutputLie>,
) -> Result<(Vec<Fr>, Lied), CircuitError> {
    let mut lied: Lied = Vec::new();
    let trace = q.eval(inputs)?;
    let live_of = live_elements(q);
    let signed_chip = QuantChip::new(circuit.base.range_chip());
    let unsigned_chip = signed_chip.without_signs();
    // Only a Max/Min reads a value's sign bit: other outputs take the cheaper range check.
    let mut sign_read = vec![false; q.nodes.len()];
    for node in &q.nodes {
        if matches!(node.op, QOp::Extremum { .. }) {
            for &i in &node.inputs {
                sign_read[i] = true;
            }
        }
    }
    let ctx = circuit.base.main(0);
    let lincomb = &mut circuit.lincomb;
    let functions = &mut circuit.functions;
    let mut freivalds = circuit.params.freivalds.then_some(&mut circuit.freivalds);
    let mut memo = Memo::default();
    let mut vals: Vec<Vec<Value>> = Vec::with_capacity(q.nodes.len());
    for (id, node) in q.nodes.iter().enumerate() {
        let chip = if sign_read[id] {
            &signed_chip
        } else {
            &unsigned_chip
        };
        let place = |i: usize| move || format!("node \"{}\" element {i}", node.name);
        let val = |slot: u32, idx: u32| vals[node.inputs[slot as usize]][idx as usize];
        let live = |i: usize| live_of[id][i];
        // What stands for an element nothing reads: never a cell.
        let dead = Value::constant(0);
        let resolve = |s: &Src<i64>| match *s {
            Src::Elem { slot, idx } => val(slot, idx),
            Src::Const(c) => Value::constant(c as i128),
        };
        let mut out: Vec<Value> = Vec::with_capacity(node.len());
        let first_cell = ctx.advice.len();
        match &node.op {
            QOp::Input { index, .. } => {
                let bits = q.input_bits(id);
                for (i, &v) in inputs[*index].iter().enumerate() {
                    let cell = ctx.load_witness(fr(v as i128));
                    // Inputs rarely feed a ReLU directly: no sign bit (an extremum proves one
                    // of its own where it needs it).
                    chip.signed_range(ctx, cell, bits, &place(i))?;
                    out.push(memo.fresh(Elem::Cell(cell), None));
                }
            }
            QOp::Param { values } => {
                // Pinned by this range check (which keeps the weight commitment's packing
                // injective) and by the commitment itself.
                for (i, &v) in values.iter().enumerate() {
                    let cell = ctx.load_witness(fr(v as i128));
                    chip.signed_range(ctx, cell, q.weight_bits, &place(i))?;
                    out.push(memo.fresh(Elem::Cell(cell), None));
                }
            }
            QOp::Linear { terms, bias, shift } => {
                let mut checked = HashMap::new();
                if let Some(region) = freivalds.as_deref_mut() {
                    let rows: Vec<Vec<((u32, u32), i64)>> = terms
                        .iter()
                        .map(|r| r.iter().map(|&(s, x, c)| ((s, x), c)).collect())
                        .collect();
                    let (classes, rest) = shared_factors(&rows, Some(&0));
                    log_products(&node.name, &classes, rest.len());
                    for class in classes {
                        let shared = SharedFactor {
                            left: map2(&class.left, |s| s.map(|(s, x)| val(s, x))),
                            right: map2(&class.right, |&c| Elem::Const(c as i128)),
                            outputs: class.outputs,
                        };
                        let rescale = Rescale {
                            bias: &|o| bias[o] as i128,
                            shift: *shift,
                            act_bits: q.act_bits,
                            live: &live,
                        };
                        checked.extend(lay_out_shared(
                            ctx, lincomb, region, chip, &mut memo, shared, rescale, &place,
                        )?);
                    }
                }
                for (i, (row, &b)) in terms.iter().zip(bias).enumerate() {
                    if let Some(v) = checked.remove(&i) {
                        out.push(v);
                        continue;
                    }
                    if !live(i) {
                        out.push(dead);
                        continue;
                    }
                    let srcs: Vec<(Value, i64)> =
                        row.iter().map(|&(s, x, c)| (val(s, x), c)).collect();
                    if let [(v, 1)] = srcs.as_slice() {
                        if b == 0 && *shift == 0 {
                            out.push(*v); // a pass-through keeps its cell and proven sign
                            continue;
                        }
                    }
                    let key = Memo::key(
                        LINEAR,
                        &[*shift as i128, b as i128],
                        srcs.iter().map(|(v, c)| (v, *c as i128)),
                    );
                    out.push(memo.get_or_lay_out(key, || {
                        let pairs: Vec<(Elem, Elem)> = srcs
                            .iter()
                            .map(|(v, c)| (v.elem, Elem::Const(*c as i128)))
                            .collect();
                        let r = chip.dot(
                            ctx,
                            lincomb,
                            &pairs,
                            b as i128,
                            *shift,
                            q.act_bits,
                            &place(i),
                        )?;
                        Ok((r.out, r.neg))
                    })?);
                }
            }
            QOp::Bilinear { pairs, shift } => {
                let mut checked = HashMap::new();
                if let Some(region) = freivalds.as_deref_mut() {
                    let rows: Vec<Vec<(u32, u32)>> = pairs.iter().map(<[_]>::to_vec).collect();
                    let (classes, rest) = shared_factors(&rows, None);
                    log_products(&node.name, &classes, rest.len());
                    for class in classes {
                        let shared = SharedFactor {
                            left: map2(&class.left, |a| a.map(|a| val(0, a))),
                            right: map2(&class.right, |&b| val(1, b).elem),
                            outputs: class.outputs,
                        };
                        let rescale = Rescale {
                            bias: &|_| 1i128 << (shift - 1),
                            shift: *shift,
                            act_bits: q.act_bits,
                            live: &live,
                        };
                        checked.extend(lay_out_shared(
                            ctx, lincomb, region, chip, &mut memo, shared, rescale, &place,
                        )?);
                    }
                }
                for (i, row) in pairs.iter().enumerate() {
                    if let Some(v) = checked.remove(&i) {
                        out.push(v);
                        continue;
                    }
                    if !live(i) {
                        out.push(dead);
                        continue;
                    }
                    let srcs: Vec<(Value, Value)> =
                        row.iter().map(|&(a, b)| (val(0, a), val(1, b))).collect();
                    let key = Memo::key2(BILINEAR, *shift as i128, &srcs);
                    out.push(memo.get_or_lay_out(key, || {
                        let pairs: Vec<(Elem, Elem)> =
                            srcs.iter().map(|(a, b)| (a.elem, b.elem)).collect();
                        let half = 1i128 << (shift - 1);
                        let r =
                            chip.dot(ctx, lincomb, &pairs, half, *shift, q.act_bits, &place(i))?;
                        Ok((r.out, r.neg))
                    })?);
                }
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
                for (i, row) in candidates.iter().enumerate() {
                    if !live(i) {
                        out.push(dead);
                        continue;
                    }
                    let srcs: Vec<Value> = row.iter().map(resolve).collect();
                    if srcs.len() == 1 {
                        out.push(srcs[0]);
                        continue;
                    }
                    let tag = [*kind as i128, bits as i128];
                    let key = Memo::key(EXTREMUM, &tag, srcs.iter().map(|v| (v, 0)));
                    out.push(memo.get_or_lay_out(key, || {
                        let (mut m, mut m_neg) = (srcs[0].elem, srcs[0].neg);
                        for c in &srcs[1..] {
                            m = chip.extremum2(ctx, *kind, m, c.elem, m_neg, bits, &place(i))?;
                            m_neg = None;
                        }
                        Ok((m, None))
                    })?);
                }
            }
            QOp::Remap { srcs } => out.extend(srcs.iter().map(resolve)),
            QOp::Sqrt { shift } => {
                let in_bits = 128 - q.nodes[node.inputs[0]].bound.leading_zeros();
                for i in 0..node.len() {
                    if !live(i) {
                        out.push(dead);
                        continue;
                    }
                    let v = val(0, i as u32);
                    let key = Memo::key(SQRT, &[*shift as i128], std::iter::once((&v, 0)));
                    out.push(memo.get_or_lay_out(key, || {
                        let cell = as_cell(ctx, v.elem);
                        let (s, neg) =
                            chip.sqrt(ctx, cell, *shift, in_bits, q.act_bits, &place(i))?;
                        Ok((Elem::Cell(s), neg))
                    })?);
                }
            }
            QOp::Divide { pairs, shift } => {
                let den_bound = q.nodes[node.inputs[1]].bound;
                let den_bits = 128 - den_bound.leading_zeros();
                for (i, &(ia, ib)) in pairs.iter().enumerate() {
                    if !live(i) {
                        out.push(dead);
                        continue;
                    }
                    let (a, b) = (val(0, ia), val(1, ib));
                    let key = Memo::key(DIVIDE, &[*shift as i128], [(&a, 0), (&b, 1)].into_iter());
                    out.push(memo.get_or_lay_out(key, || {
                        let (ac, bc) = (as_cell(ctx, a.elem), as_cell(ctx, b.elem));
                        let (y, neg) =
                            chip.divide(ctx, ac, bc, *shift, den_bits, q.act_bits, &place(i))?;
                        Ok((Elem::Cell(y), neg))
                    })?);
                }
            }
            QOp::Gather {
                tables,
                picks,
                shift,
            } => {
                for (i, &(idx, col)) in picks.iter().enumerate() {
                    if !live(i) {
                        out.push(dead);
                        continue;
                    }
                    let table = &tables[col as usize];
                    let tag = functions.tag(table);
                    let x = val(0, idx);
                    let key = Memo::key(GATHER, &[tag as i128], std::iter::once((&x, 0)));
                    out.push(memo.get_or_lay_out(key, || {
                        let cell = as_cell(ctx, x.elem);
                        let y = chip.gather(ctx, functions, cell, table, tag, *shift, &place(i))?;
                        Ok((Elem::Cell(y), None))
                    })?);
                }
            }
            QOp::Lookup { table, .. } => {
                let tag = functions.tag(table);
                for i in 0..node.len() {
                    if !live(i) {
                        out.push(dead);
                        continue;
                    }
                    let x = val(0, i as u32);
                    let key = Memo::key(LOOKUP, &[tag as i128], std::iter::once((&x, 0)));
                    out.push(memo.get_or_lay_out(key, || {
                        let cell = as_cell(ctx, x.elem);
                        let (y, neg) = chip.lookup_fn(
                            ctx,
                            functions,
                            cell,
                            table,
                            tag,
                            q.act_bits,
                            &place(i),
                        )?;
                        Ok((Elem::Cell(y), neg))
                    })?);
                }
            }
        }
        if let Some(lie) = lie.filter(|l| l.node == id) {
            for &i in &lie.elems {
                // Only a cell this node made: a pass-through's cell is its source's output.
                let Some(Value {
                    elem: Elem::Cell(c),
                    ..
                }) = out.get(i).copied()
                else {
                    continue;
                };
                let Some(offset) = c.cell.map(|c| c.offset).filter(|&o| o >= first_cell) else {
                    continue;
                };
                let v = *c.value() + fr(lie.delta);
                ctx.advice[offset] = halo2_base::halo2_proofs::plonk::Assigned::Trivial(v);
                let mut told = c;
                told.value = halo2_base::halo2_proofs::plonk::Assigned::Trivial(v);
                out[i].elem = Elem::Cell(told);
                lied.push((offset, v));
            }
        }
        // Downstream of a lie the witness follows the lie, not the reference.
        for (i, (v, &want)) in out.iter().zip(&trace.values[id]).enumerate() {
            if !lied.is_empty() {
                break;
            }
            if live(i) && v.elem.value() != want as i128 {
                return Err(CircuitError::Mismatch {
                    index: i,
                    circuit: v.elem.value(),
                    reference: want as i128,
                });
            }
        }
        tracing::debug!(
            node = %node.name,
            gate_cells = ctx.advice.len(),
            lincomb_rows = lincomb.rows(),
            "laid out"
        );
        vals.push(out);
    }
    let vals: Vec<Vec<Elem>> = vals
        .into_iter()
        .map(|n| n.into_iter().map(|v| v.elem).collect())
        .collect();
    let public = io::expose(ctx, &unsigned_chip, q, &vals, io, salt)?;
    let instances = public.iter().map(|c| *c.value()).collect();
    circuit.base.assigned_instances[0].extend(public);
    Ok((instances, lied))
}
