//! Lowerings to [`Op::Linear`] / [`Op::Bilinear`]: EinSum, Conv, element-wise binary ops.

use std::collections::HashMap;

use tract_onnx::prelude::*;

use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::einsum::EinSum;

use super::pool::{Geometry, Layout};
use super::shape::{broadcast_source, strides, unravel};
use super::{tensor_f32, Ctx, Lowered};
use crate::error::Result;
use crate::graph::{ExtremumKind, Op, Src};
use crate::sparse::Rows;

/// EinSum with at most one variable operand on each side of a product.
pub(crate) fn einsum(ctx: &Ctx, op: &EinSum) -> Result<Lowered> {
    if op.q_params.is_some() {
        return Err(ctx.unsupported("quantized EinSum"));
    }
    let (ins, outs) = op.axes.to_strs();
    let ins: Vec<Vec<char>> = ins.iter().map(|s| s.chars().collect()).collect();
    let out: Vec<char> = outs
        .first()
        .ok_or_else(|| ctx.unsupported("no output"))?
        .chars()
        .collect();
    if ins.len() != ctx.in_shapes.len() || out.len() != ctx.out_shape.len() {
        return Err(ctx.shape_err("einsum labels do not match the shapes"));
    }
    let mut size: HashMap<char, usize> = HashMap::new();
    for (labels, shape) in ins
        .iter()
        .zip(&ctx.in_shapes)
        .chain([(&out, &ctx.out_shape)])
    {
        for (&l, &n) in labels.iter().zip(shape) {
            let e = size.entry(l).or_insert(n);
            *e = (*e).max(n);
        }
    }
    let mut contracted: Vec<char> = ins
        .iter()
        .flatten()
        .copied()
        .filter(|l| !out.contains(l))
        .collect();
    contracted.sort_unstable();
    contracted.dedup();
    let csizes: Vec<usize> = contracted.iter().map(|l| size[l]).collect();
    let ncontr: usize = csizes.iter().product();
    let in_strides: Vec<Vec<usize>> = ctx.in_shapes.iter().map(|s| strides(s)).collect();
    // Flat index in input `i` for a full label assignment.
    let flat = |i: usize, val: &HashMap<char, usize>| -> usize {
        ins[i]
            .iter()
            .zip(&ctx.in_shapes[i])
            .zip(&in_strides[i])
            .map(|((l, &n), &st)| if n == 1 { 0 } else { val[l] * st })
            .sum()
    };
    let mut assignments = Vec::with_capacity(ctx.out_len());
    for o in 0..ctx.out_len() {
        let oi = unravel(o, &ctx.out_shape);
        let mut rows = Vec::with_capacity(ncontr);
        for c in 0..ncontr {
            let ci = unravel(c, &csizes);
            let mut val: HashMap<char, usize> =
                out.iter().copied().zip(oi.iter().copied()).collect();
            val.extend(contracted.iter().copied().zip(ci));
            rows.push((0..ins.len()).map(|i| flat(i, &val)).collect::<Vec<_>>());
        }
        assignments.push(rows);
    }
    let vars: Vec<usize> = (0..ins.len()).filter(|&i| !ctx.is_const(i)).collect();
    match (ins.len(), vars.as_slice()) {
        (1, [0]) => Ok(Lowered {
            op: Op::Linear {
                terms: assignments
                    .iter()
                    .map(|r| r.iter().map(|ix| (0, ix[0] as u32, 1.0)).collect())
                    .collect(),
                bias: vec![0.0; ctx.out_len()],
            },
            slots: vec![0],
        }),
        (2, [v]) => {
            let w = ctx.const_f32(1 - v)?;
            let terms = assignments
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|ix| (0, ix[*v] as u32, w[ix[1 - v]]))
                        .collect()
                })
                .collect();
            Ok(Lowered {
                op: Op::Linear {
                    terms,
                    bias: vec![0.0; ctx.out_len()],
                },
                slots: vec![*v],
            })
        }
        (2, [0, 1]) => Ok(Lowered {
            op: Op::Bilinear {
                pairs: assignments
                    .iter()
                    .map(|r| r.iter().map(|ix| (ix[0] as u32, ix[1] as u32)).collect())
                    .collect(),
            },
            slots: vec![0, 1],
        }),
        _ => Err(ctx.unsupported(format!("EinSum with {} operands", ins.len()))),
    }
}

/// A convolution as index pairs: per output element, the `(input, kernel)` elements it sums,
/// and the bias element it adds (any rank, strides, padding, dilation, groups). Padding taps
/// have no pair; every kernel element appears whatever its value.
pub(crate) struct ConvPairs {
    pub pairs: Rows<(u32, u32)>,
    pub bias: Vec<u32>,
}

/// The pairs of a Conv whose data input (slot 0) is variable.
pub(crate) fn conv_pairs(ctx: &Ctx, op: &Conv) -> Result<ConvPairs> {
    if op.q_params.is_some() {
        return Err(ctx.unsupported("quantized Conv"));
    }
    if ctx.is_const(0) {
        return Err(ctx.unsupported("the data must be variable"));
    }
    let spec = &op.pool_spec;
    let rank = spec.rank();
    let kshape = &ctx.in_shapes[1];
    let bias_len: usize = ctx.in_shapes.get(2).map_or(1, |s| s.iter().product());
    let layout_in = Layout::new(ctx, spec.data_format, &ctx.in_shapes[0], rank)?;
    let layout_out = Layout::new(ctx, spec.data_format, &ctx.out_shape, rank)?;
    let geo = Geometry::new(ctx, spec, &layout_in.spatial)?;
    if geo.out_spatial != layout_out.spatial {
        return Err(ctx.shape_err("conv output shape does not match its geometry"));
    }
    let (o_ch, i_per_group) = match op.kernel_fmt {
        KernelFormat::OIHW | KernelFormat::OHWI => (
            kshape[0],
            if op.kernel_fmt == KernelFormat::OIHW {
                kshape[1]
            } else {
                kshape[rank + 1]
            },
        ),
        KernelFormat::HWIO => (kshape[rank + 1], kshape[rank]),
    };
    let group = op.group.max(1);
    if o_ch != layout_out.c || i_per_group * group != layout_in.c || o_ch % group != 0 {
        return Err(ctx.shape_err("conv channels do not match kernel and groups"));
    }
    if bias_len != 1 && bias_len != o_ch {
        return Err(ctx.shape_err("conv bias is neither one value nor one per channel"));
    }
    let kstrides = strides(kshape);
    let kidx = |o: usize, i: usize, q: &[usize]| -> usize {
        let mut full = Vec::with_capacity(rank + 2);
        match op.kernel_fmt {
            KernelFormat::OIHW => {
                full.extend([o, i]);
                full.extend_from_slice(q);
            }
            KernelFormat::HWIO => {
                full.extend_from_slice(q);
                full.extend([i, o]);
            }
            KernelFormat::OHWI => {
                full.push(o);
                full.extend_from_slice(q);
                full.push(i);
            }
        }
        full.iter().zip(&kstrides).map(|(a, b)| a * b).sum()
    };
    let o_per_group = o_ch / group;
    let mut pairs = Rows::default();
    let mut bias = Vec::with_capacity(ctx.out_len());
    for flat_out in 0..ctx.out_len() {
        let (n, co, p) = layout_out.split(flat_out);
        let g = co / o_per_group;
        bias.push(if bias_len == 1 { 0 } else { co as u32 });
        let mut row = Vec::new();
        for (q, pos) in geo.window(&p) {
            let Some(pos) = pos else { continue };
            for il in 0..i_per_group {
                let ci = g * i_per_group + il;
                row.push((layout_in.flat(n, ci, &pos) as u32, kidx(co, il, &q) as u32));
            }
        }
        pairs.push_row(row);
    }
    Ok(ConvPairs { pairs, bias })
}

/// Conv with a constant kernel and bias.
pub(crate) fn conv(ctx: &Ctx, op: &Conv) -> Result<Lowered> {
    if !ctx.is_const(1) || ctx.consts.get(2).is_some_and(Option::is_none) {
        return Err(ctx.unsupported("the kernel and bias must be constants"));
    }
    let conv = conv_pairs(ctx, op)?;
    let kernel = ctx.const_f32(1)?;
    let bias = if ctx.consts.len() > 2 {
        ctx.const_f32(2)?
    } else {
        vec![0.0]
    };
    let terms = conv
        .pairs
        .iter()
        .map(|row| {
            row.iter()
                .map(|&(x, k)| (0u32, x, kernel[k as usize]))
                .collect()
        })
        .collect();
    Ok(Lowered {
        op: Op::Linear {
            terms,
            bias: conv.bias.iter().map(|&b| bias[b as usize]).collect(),
        },
        slots: vec![0],
    })
}

/// Element-wise binary ops with numpy broadcasting.
pub(crate) fn binary(ctx: &Ctx, name: &str) -> Result<Lowered> {
    let out_len = ctx.out_len();
    let src_idx = |slot: usize| -> Vec<usize> {
        let st = strides(&ctx.in_shapes[slot]);
        (0..out_len)
            .map(|o| broadcast_source(&unravel(o, &ctx.out_shape), &ctx.in_shapes[slot], &st))
            .collect()
    };
    let (a, b) = (src_idx(0), src_idx(1));
    let (ca, cb) = (ctx.is_const(0), ctx.is_const(1));
    let konst = |slot: usize| ctx.const_f32(slot);
    let linear = |terms: Rows<(u32, u32, f32)>, bias: Vec<f32>, slots: Vec<usize>| {
        Ok(Lowered {
            op: Op::Linear { terms, bias },
            slots,
        })
    };
    match (name, ca, cb) {
        ("Add" | "Sub", false, false) => {
            let sb = if name == "Add" { 1.0 } else { -1.0 };
            let terms = (0..out_len)
                .map(|o| vec![(0, a[o] as u32, 1.0), (1, b[o] as u32, sb)])
                .collect();
            linear(terms, vec![0.0; out_len], vec![0, 1])
        }
        ("Add" | "Sub", _, _) => {
            let (v, c) = if ca { (&b, konst(0)?) } else { (&a, konst(1)?) };
            let (coeff, csign) = match (name, ca) {
                ("Add", _) => (1.0, 1.0),
                ("Sub", false) => (1.0, -1.0), // x - c
                _ => (-1.0, 1.0),              // c - x
            };
            let cidx = if ca { &a } else { &b };
            let terms = (0..out_len)
                .map(|o| vec![(0, v[o] as u32, coeff)])
                .collect();
            let bias = (0..out_len).map(|o| csign * c[cidx[o]]).collect();
            linear(terms, bias, vec![if ca { 1 } else { 0 }])
        }
        ("Mul", false, false) => Ok(Lowered {
            op: Op::Bilinear {
                pairs: (0..out_len)
                    .map(|o| vec![(a[o] as u32, b[o] as u32)])
                    .collect(),
            },
            slots: vec![0, 1],
        }),
        ("Mul", _, _) | ("Div", false, true) => {
            let (v, c, cidx) = if ca {
                (&b, konst(0)?, &a)
            } else {
                (&a, konst(1)?, &b)
            };
            let coeff = |o: usize| {
                if name == "Div" {
                    1.0 / c[cidx[o]]
                } else {
                    c[cidx[o]]
                }
            };
            let terms = (0..out_len)
                .map(|o| vec![(0, v[o] as u32, coeff(o))])
                .collect();
            linear(terms, vec![0.0; out_len], vec![if ca { 1 } else { 0 }])
        }
        ("Max" | "Min", _, _) => {
            let kind = if name == "Max" {
                ExtremumKind::Max
            } else {
                ExtremumKind::Min
            };
            let (va, vb) = (
                if ca { Some(konst(0)?) } else { None },
                if cb { Some(konst(1)?) } else { None },
            );
            let mut slots = Vec::new();
            let sa = (!ca).then(|| {
                slots.push(0);
                slots.len() as u32 - 1
            });
            let sb = (!cb).then(|| {
                slots.push(1);
                slots.len() as u32 - 1
            });
            let pick = |s: Option<u32>, c: &Option<Vec<f32>>, i: usize| match (s, c) {
                (Some(slot), _) => Src::Elem {
                    slot,
                    idx: i as u32,
                },
                (None, Some(c)) => Src::Const(c[i]),
                (None, None) => unreachable!("a binary input is either constant or variable"),
            };
            let candidates = (0..out_len)
                .map(|o| vec![pick(sa, &va, a[o]), pick(sb, &vb, b[o])])
                .collect();
            Ok(Lowered {
                op: Op::Extremum { kind, candidates },
                slots,
            })
        }
        _ => Err(ctx.unsupported(format!("{name} on these operands"))),
    }
}

/// Largest input a probed op may have: one evaluation of the op per input element.
const MAX_PROBES: usize = 1 << 15;

/// An op that is affine in its one variable input, with its other inputs constant
/// (ConvTranspose: kernel and bias), lowered by evaluating tract's own implementation on probes:
/// the bias is `f(0)` and input `i`'s coefficients are `f(eᵢ) − f(0)`. Exact with respect to
/// tract's semantics (strides, pads, dilations, groups, output padding) without restating them,
/// as data movement is lowered by evaluating on codes.
pub(crate) fn probe_affine(ctx: &Ctx, op: &dyn TypedOp) -> Result<Lowered> {
    let variable: Vec<usize> = (0..ctx.consts.len())
        .filter(|&s| !ctx.is_const(s))
        .collect();
    let [slot] = variable[..] else {
        return Err(ctx.unsupported("expected one variable input and constant weights"));
    };
    let n_in: usize = ctx.in_shapes[slot].iter().product();
    if n_in > MAX_PROBES {
        return Err(ctx.shape_err(format!(
            "{n_in} input elements (at most {MAX_PROBES} for this op)"
        )));
    }
    let eval = |x: Tensor| -> Result<Vec<f32>> {
        let inputs: TVec<TValue> = (0..ctx.consts.len())
            .map(|s| match &ctx.consts[s] {
                Some(t) => TValue::from_const(t.clone()),
                None => x.clone().into_tvalue(),
            })
            .collect();
        let out = op
            .eval_out_of_plan(inputs)
            .ok()
            .flatten()
            .and_then(|o| o.into_iter().next())
            .ok_or_else(|| ctx.unsupported("tract cannot evaluate this op"))?;
        tensor_f32(&out.into_arc_tensor()).map_err(|e| ctx.unsupported(e))
    };
    let shape = ctx.in_shapes[slot].clone();
    let probe = |one: Option<usize>| -> Result<Tensor> {
        let mut v = vec![0f32; n_in];
        if let Some(i) = one {
            v[i] = 1.0;
        }
        Tensor::from_shape(&shape, &v).map_err(|e| ctx.unsupported(format!("{e}")))
    };
    let bias = eval(probe(None)?)?;
    if bias.len() != ctx.out_len() {
        return Err(ctx.shape_err("the output does not have the declared shape"));
    }
    let mut terms: Vec<Vec<(u32, u32, f32)>> = vec![Vec::new(); bias.len()];
    for i in 0..n_in {
        for (o, (y, b)) in eval(probe(Some(i))?)?.iter().zip(&bias).enumerate() {
            let c = y - b;
            if c != 0.0 {
                terms[o].push((0, i as u32, c));
            }
        }
    }
    Ok(Lowered {
        op: Op::Linear {
            terms: terms.into_iter().collect(),
            bias,
        },
        slots: vec![slot],
    })
}
