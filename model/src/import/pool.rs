//! Window geometry shared by Conv and pooling, and the pooling / reduction lowerings.

use tract_onnx::tract_core::ops::cnn::{MaxPool, PoolSpec, SumPool};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::shape::{strides, unravel};
use super::{Ctx, Lowered};
use crate::error::Result;
use crate::graph::{ExtremumKind, Op, Src};
use crate::sparse::Rows;

/// Where batch, channel and spatial axes sit in a tensor of a given data format.
pub(crate) struct Layout {
    has_n: bool,
    c_first: bool,

    pub c: usize,
    pub spatial: Vec<usize>,
    strides: Vec<usize>,
    shape: Vec<usize>,
}

impl Layout {
    pub fn new(ctx: &Ctx, fmt: DataFormat, shape: &[usize], rank: usize) -> Result<Self> {
        let (has_n, c_first) = match fmt {
            DataFormat::NCHW => (true, true),
            DataFormat::NHWC => (true, false),
            DataFormat::CHW => (false, true),
            DataFormat::HWC => (false, false),
        };
        if shape.len() != rank + 1 + has_n as usize {
            return Err(ctx.shape_err(format!(
                "expected rank {} for {fmt:?}",
                rank + 1 + has_n as usize
            )));
        }

        let rest = &shape[has_n as usize..];
        let (c, spatial) = if c_first {
            (rest[0], rest[1..].to_vec())
        } else {
            (rest[rank], rest[..rank].to_vec())
        };
        Ok(Self {
            has_n,
            c_first,
            c,
            spatial,
            strides: strides(shape),
            shape: shape.to_vec(),
        })
    }

    /// Flat index of (batch, channel, spatial position).
    pub fn flat(&self, n: usize, c: usize, pos: &[usize]) -> usize {
        let mut full = Vec::with_capacity(self.shape.len());
        if self.has_n {
            full.push(n);
        }
        if self.c_first {
            full.push(c);
            full.extend_from_slice(pos);
        } else {
            full.extend_from_slice(pos);
            full.push(c);
        }
        full.iter().zip(&self.strides).map(|(a, b)| a * b).sum()
    }

    /// (batch, channel, spatial position) of a flat index.
    pub fn split(&self, flat: usize) -> (usize, usize, Vec<usize>) {
        let full = unravel(flat, &self.shape);
        let n = if self.has_n { full[0] } else { 0 };
        let rest = &full[self.has_n as usize..];
        if self.c_first {
            (n, rest[0], rest[1..].to_vec())
        } else {
            let r = rest.len() - 1;
            (n, rest[r], rest[..r].to_vec())
        }
    }
}

/// Kernel windows: which input position each kernel offset reads for an output position.
pub(crate) struct Geometry {
    in_spatial: Vec<usize>,
    pub out_spatial: Vec<usize>,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pad_before: Vec<usize>,
    pad_after: Vec<usize>,
}

impl Geometry {
    pub fn new(ctx: &Ctx, spec: &PoolSpec, in_spatial: &[usize]) -> Result<Self> {
        let kernel = spec.kernel_shape.to_vec();
        if kernel.len() != in_spatial.len() {
            return Err(ctx.shape_err("kernel rank does not match the data"));
        }
        let strides = spec.strides().to_vec();
        let dilations = spec.dilations().to_vec();
        let padded = spec
            .padding
            .compute(in_spatial, &kernel, &dilations, &strides);
        Ok(Self {
            in_spatial: in_spatial.to_vec(),
            out_spatial: padded.iter().map(|p| p.convoluted).collect(),
            pad_before: padded.iter().map(|p| p.pad_before).collect(),
            pad_after: padded.iter().map(|p| p.pad_after).collect(),
            kernel,
            strides,
            dilations,
        })
    }

    /// Number of kernel offsets.
    pub fn kernel_len(&self) -> usize {
        self.kernel.iter().product()
    }

    /// For output position `p`: each kernel offset and the input position it reads (None in padding).
    /// Taps of the window at `p` inside the padded input (`[−pad_before, in + pad_after)` on
    /// each axis): AveragePool's divisor with `count_include_pad`. In ceil mode the last
    /// windows overhang even the padding, and ONNX does not count the overhang.
    pub fn padded_count(&self, p: &[usize]) -> usize {
        (0..self.kernel_len())
            .filter(|&k| {
                let q = unravel(k, &self.kernel);
                (0..q.len()).all(|d| {
                    let x = p[d] * self.strides[d] + q[d] * self.dilations[d];
                    x < self.in_spatial[d] + self.pad_before[d] + self.pad_after[d]
                })
            })
            .count()
    }

    pub fn window(&self, p: &[usize]) -> Vec<(Vec<usize>, Option<Vec<usize>>)> {
        (0..self.kernel_len())
            .map(|k| {
                let q = unravel(k, &self.kernel);
                let pos: Option<Vec<usize>> = (0..q.len())
                    .map(|d| {
                        let x = (p[d] * self.strides[d] + q[d] * self.dilations[d]) as isize
                            - self.pad_before[d] as isize;
                        (x >= 0 && (x as usize) < self.in_spatial[d]).then_some(x as usize)
                    })
                    .collect();
                (q, pos)
            })
            .collect()
    }
}

/// For every output element of a pool: its valid input elements and the full window size.
fn pool_rows(ctx: &Ctx, spec: &PoolSpec) -> Result<Vec<(Vec<u32>, usize)>> {
    let rank = spec.rank();
    let lin = Layout::new(ctx, spec.data_format, &ctx.in_shapes[0], rank)?;
    let lout = Layout::new(ctx, spec.data_format, &ctx.out_shape, rank)?;
    let geo = Geometry::new(ctx, spec, &lin.spatial)?;
    if geo.out_spatial != lout.spatial || lin.c != lout.c {
        return Err(ctx.shape_err("pool output shape does not match its geometry"));
    }
    Ok((0..ctx.out_len())
        .map(|o| {
            let (n, c, p) = lout.split(o);
            let valid = geo
                .window(&p)
                .into_iter()
                .filter_map(|(_, pos)| pos)
                .map(|pos| lin.flat(n, c, &pos) as u32)
                .collect();
            (valid, geo.padded_count(&p))
        })
        .collect())
}

/// SumPool (AveragePool after decluttering): a sum, divided by the count when normalized.
pub(crate) fn sum_pool(ctx: &Ctx, op: &SumPool) -> Result<Lowered> {
    let terms = pool_rows(ctx, &op.pool_spec)?
        .into_iter()
        .map(|(valid, full)| {
            let count = if op.count_include_pad {
                full
            } else {
                valid.len()
            };
            let coeff = if op.normalize {
                1.0 / count as f32
            } else {
                1.0
            };
            valid.into_iter().map(|i| (0, i, coeff)).collect()
        })
        .collect();
    Ok(Lowered {
        op: Op::Linear {
            terms,
            bias: vec![0.0; ctx.out_len()],
        },
        slots: vec![0],
    })
}

/// MaxPool: the max over the valid window elements.
pub(crate) fn max_pool(ctx: &Ctx, op: &MaxPool) -> Result<Lowered> {
    if op.with_index_outputs.is_some() {
        return Err(ctx.unsupported("MaxPool with index outputs"));
    }
    let candidates = pool_rows(ctx, &op.pool_spec)?
        .into_iter()
        .map(|(valid, _)| {
            valid
                .into_iter()
                .map(|idx| Src::Elem { slot: 0, idx })
                .collect::<Vec<_>>()
        })
        .collect::<Rows<_>>();
    if candidates.iter().any(|r| r.is_empty()) {
        return Err(ctx.shape_err("a MaxPool window lies entirely in the padding"));
    }
    Ok(Lowered {
        op: Op::Extremum {
            kind: ExtremumKind::Max,
            candidates,
        },
        slots: vec![0],
    })
}

/// Reduce over `axes` (kept as size 1): a sum (`kind` None) or a max/min.
/// The input elements each output of a reduction over `axes` gathers (reduced axes kept).
pub(crate) fn reduction_rows(ctx: &Ctx, axes: &[usize]) -> Result<Vec<Vec<u32>>> {
    let ishape = &ctx.in_shapes[0];
    if ctx.out_shape.len() != ishape.len() {
        return Err(ctx.shape_err("reduction must keep the reduced axes"));
    }
    let ist = strides(ishape);
    let rshape: Vec<usize> = (0..ishape.len())
        .map(|d| if axes.contains(&d) { ishape[d] } else { 1 })
        .collect();
    let rlen: usize = rshape.iter().product();
    Ok((0..ctx.out_len())
        .map(|o| {
            let oi = unravel(o, &ctx.out_shape);
            (0..rlen)
                .map(|r| {
                    let ri = unravel(r, &rshape);
                    (0..ishape.len())
                        .map(|d| if axes.contains(&d) { ri[d] } else { oi[d] } * ist[d])
                        .sum::<usize>() as u32
                })
                .collect()
        })
        .collect())
}

pub(crate) fn reduce(ctx: &Ctx, axes: &[usize], kind: Option<ExtremumKind>) -> Result<Lowered> {
    let rows = reduction_rows(ctx, axes)?;
    let op = match kind {
        None => Op::Linear {
            terms: rows
                .into_iter()
                .map(|r| r.into_iter().map(|i| (0, i, 1.0)).collect())
                .collect(),
            bias: vec![0.0; ctx.out_len()],
        },
        Some(kind) => Op::Extremum {
            kind,
            candidates: rows
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|idx| Src::Elem { slot: 0, idx })
                        .collect()
                })
                .collect(),
        },
    };
    Ok(Lowered { op, slots: vec![0] })
}
