//! Data-movement ops (Reshape, Transpose, Slice, strided slices, Concat, Pad, Gather,
//! broadcast, …).
//!
//! Rather than re-implement each op's indexing, tract evaluates the op on "code" tensors whose
//! elements are their own (1-based) positions; the output codes say where each element came
//! from. That keeps tract's exact semantics for every movement op it knows.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::{
    Gather, MultiBroadcastTo, Pad, PadMode, Slice, Tile, TypedConcat,
};
use tract_onnx::tract_core::ops::change_axes::{AxisOp, IntoShape};
use tract_onnx::tract_core::ops::downsample::Downsample;
use tract_onnx::tract_core::ops::identity::Identity;

use super::{tensor_f32, Ctx, Lowered, MAX_TENSOR_ELEMENTS};
use crate::error::Result;
use crate::graph::{Op, Src};

/// True for ops that only move, copy or pad elements.
pub(crate) fn is_movement(op: &dyn TypedOp) -> bool {
    op.downcast_ref::<AxisOp>().is_some()
        || op.downcast_ref::<IntoShape>().is_some()
        || op.downcast_ref::<Slice>().is_some()
        || op.downcast_ref::<TypedConcat>().is_some()
        || op.downcast_ref::<Pad>().is_some()
        || op.downcast_ref::<Gather>().is_some()
        || op.downcast_ref::<MultiBroadcastTo>().is_some()
        || op.downcast_ref::<Tile>().is_some()
        || op.downcast_ref::<Identity>().is_some()
        || op.downcast_ref::<Downsample>().is_some()
}

/// Lowers a movement op to a [`Op::Remap`] (or, for a Gather at computed indices, to an
/// [`Op::Gather`]).
pub(crate) fn lower(ctx: &Ctx, op: &dyn TypedOp) -> Result<Lowered> {
    if let Some(gather) = op.downcast_ref::<Gather>() {
        if !ctx.is_const(1) {
            return gather_at_computed_indices(ctx, gather.axis);
        }
    }
    // Pad's constant must not collide with codes: pad with 0 (never a code), restore after.
    let mut pad_value = 0.0f32;
    let replaced;
    let op: &dyn TypedOp = match op.downcast_ref::<Pad>() {
        Some(pad) => {
            if let PadMode::Constant(v) = &pad.mode {
                pad_value = tensor_f32(v)
                    .map_err(|e| ctx.unsupported(e))?
                    .first()
                    .copied()
                    .unwrap_or(0.0);
            }
            let mode = match &pad.mode {
                PadMode::Constant(_) => PadMode::Constant(Arc::new(Tensor::from(0.0f32))),
                other => other.clone(),
            };
            replaced = Pad {
                pads: pad.pads.clone(),
                mode,
            };
            &replaced
        }
        None => op,
    };
    // Every f32 input gets codes (variable inputs and constant data alike); integer inputs
    // (indices, shapes) stay as they are.
    enum Origin {
        Var(u32),
        Const(Vec<f32>),
    }
    let mut origins: Vec<(usize, Origin)> = Vec::new(); // (first code, origin)
    let mut slots = Vec::new();
    let mut next = 1usize;
    let mut inputs: TVec<TValue> = tvec![];
    for (slot, shape) in ctx.in_shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let is_float = match &ctx.consts[slot] {
            Some(t) => t.datum_type().is_float(),
            None => true,
        };
        if !is_float {
            inputs.push(TValue::from_const(
                ctx.consts[slot]
                    .clone()
                    .expect("non-float inputs are constants"),
            ));
            continue;
        }
        if next + n >= MAX_TENSOR_ELEMENTS {
            return Err(ctx.unsupported("too many elements to track"));
        }
        let codes: Vec<f32> = (next..next + n).map(|c| c as f32).collect();
        let t = Tensor::from_shape(shape, &codes).map_err(|e| ctx.unsupported(format!("{e}")))?;
        inputs.push(TValue::from_const(Arc::new(t)));
        let origin = match &ctx.consts[slot] {
            None => {
                slots.push(slot);
                Origin::Var(slots.len() as u32 - 1)
            }
            Some(_) => Origin::Const(ctx.const_f32(slot)?),
        };
        origins.push((next, origin));
        next += n;
    }
    let outs = op
        .eval_out_of_plan(inputs)
        .map_err(|e| ctx.unsupported(format!("{e}")))?
        .ok_or_else(|| ctx.unsupported("op cannot be evaluated out of a plan"))?;
    let codes = tensor_f32(&outs[0].clone().into_tensor()).map_err(|e| ctx.unsupported(e))?;
    if codes.len() != ctx.out_len() {
        return Err(ctx.shape_err("movement op produced an unexpected number of elements"));
    }
    let srcs = codes
        .iter()
        .map(|&c| {
            let c = c as usize;
            if c == 0 {
                return Ok(Src::Const(pad_value));
            }
            let (first, origin) = origins
                .iter()
                .rev()
                .find(|(first, _)| *first <= c)
                .ok_or_else(|| ctx.unsupported("lost track of an element"))?;
            Ok(match origin {
                Origin::Var(slot) => Src::Elem {
                    slot: *slot,
                    idx: (c - first) as u32,
                },
                Origin::Const(vals) => Src::Const(vals[c - first]),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Lowered {
        op: Op::Remap { srcs },
        slots,
    })
}

/// `Where(cond, a, b)` (tract's Iff) with a constant condition: each output element is one
/// of `a`'s or `b`'s (or a constant), chosen when the model is compiled. Attention masks are
/// made this way. A condition computed from the input needs a comparison in the circuit,
/// which this does not provide: it is refused.
pub(crate) fn select(ctx: &Ctx) -> Result<Lowered> {
    if !ctx.is_const(0) {
        return Err(ctx.unsupported("the condition depends on the input"));
    }
    let cond = ctx.const_f32(0)?;
    let out_len = ctx.out_len();
    if out_len > MAX_TENSOR_ELEMENTS {
        return Err(ctx.shape_err(format!("{out_len} elements")));
    }
    let src_idx = |slot: usize| -> Vec<usize> {
        let st = super::shape::strides(&ctx.in_shapes[slot]);
        (0..out_len)
            .map(|o| {
                super::shape::broadcast_source(
                    &super::shape::unravel(o, &ctx.out_shape),
                    &ctx.in_shapes[slot],
                    &st,
                )
            })
            .collect()
    };
    let (ci, ai, bi) = (src_idx(0), src_idx(1), src_idx(2));
    // The variable branches become the op's slots, in order.
    let mut slots = Vec::new();
    let mut branch = |slot: usize| -> Result<Result<u32, Vec<f32>>> {
        if ctx.is_const(slot) {
            Ok(Err(ctx.const_f32(slot)?))
        } else {
            slots.push(slot);
            Ok(Ok(slots.len() as u32 - 1))
        }
    };
    let (a, b) = (branch(1)?, branch(2)?);
    let pick = |side: &Result<u32, Vec<f32>>, idx: usize| match side {
        Ok(slot) => Src::Elem {
            slot: *slot,
            idx: idx as u32,
        },
        Err(values) => Src::Const(values[idx]),
    };
    let srcs = (0..out_len)
        .map(|o| {
            if cond[ci[o]] != 0.0 {
                pick(&a, ai[o])
            } else {
                pick(&b, bi[o])
            }
        })
        .collect();
    Ok(Lowered {
        op: Op::Remap { srcs },
        slots,
    })
}

/// A Gather whose indices come from the input (token ids into an embedding table): one exact
/// lookup table per column of the constant data, each output element a lookup of its index.
fn gather_at_computed_indices(ctx: &Ctx, axis: usize) -> Result<Lowered> {
    if !ctx.is_const(0) {
        return Err(ctx.unsupported(
            "gathering from a computed tensor at computed indices (only constant data, such as \
             an embedding table, can be indexed by the input)",
        ));
    }
    let data = ctx.const_f32(0)?;
    let (dshape, ishape) = (&ctx.in_shapes[0], &ctx.in_shapes[1]);
    if axis >= dshape.len() {
        return Err(ctx.shape_err(format!("axis {axis} of a rank-{} tensor", dshape.len())));
    }
    let len = dshape[axis];
    // A column: the data's coordinates other than `axis`; its table runs along `axis`.
    let (pre, post) = (&dshape[..axis], &dshape[axis + 1..]);
    let (npre, npost): (usize, usize) = (pre.iter().product(), post.iter().product());
    let tables: Vec<Vec<f32>> = (0..npre * npost)
        .map(|c| {
            let (a, b) = (c / npost, c % npost);
            (0..len).map(|v| data[(a * len + v) * npost + b]).collect()
        })
        .collect();
    let nidx: usize = ishape.iter().product();
    if ctx.out_len() != npre * nidx * npost {
        return Err(ctx.shape_err("Gather's output does not match its data and indices"));
    }
    // Output coordinates are `pre ++ indices ++ post`, row-major.
    let picks = (0..ctx.out_len())
        .map(|o| {
            let (a, rest) = (o / (nidx * npost), o % (nidx * npost));
            let (i, b) = (rest / npost, rest % npost);
            (i as u32, (a * npost + b) as u32)
        })
        .collect();
    Ok(Lowered {
        op: Op::Gather { tables, picks },
        slots: vec![1],
    })
}
