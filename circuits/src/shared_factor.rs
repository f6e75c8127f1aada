//! Finding matrix products in an op's output rows, for [`crate::freivalds`].
//!
//! An op lists, per output, the pairs it sums: `(left operand, right factor)`. Outputs with
//! the same left operands in the same order form a row of `L`; rows whose right factors form
//! the same m×p matrix share it as `R`, so together they are `Z = L·R`. A batched MatMul or a
//! projection of many tokens by one weight matrix falls into such classes whatever the
//! reshapes around it, and so do convolutions (one row per output position). Only products
//! that at least halve the work leave the plain dot products.
//!
//! Two kinds of hole are filled with zeros, so that a convolution is one product per kernel
//! phase instead of dozens of small ones (or none):
//! - a constant weight that quantized to zero drops its pair from one output channel at every
//!   position that uses it. With `zero` given (constant right factors), such an output joins
//!   the row of `L` it was split from, with a zero right factor for each operand it lacks;
//! - a border position of a padded convolution lacks the taps that fall on the padding. Its
//!   row joins a product with a larger `R` when each of its right-factor rows is a distinct
//!   row of that `R`, with zeros in `L` where it has no operand (the check skips those).

use std::collections::HashMap;
use std::hash::Hash;

use crate::freivalds::FreivaldsRegion;

/// Rows of `L` sharing one `R`: `outputs[g][j] = Σ_k left[g][k] · right[k][j]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFactor<S, R> {
    /// The output index of each entry of `Z`, row by row.
    pub outputs: Vec<Vec<usize>>,
    /// The rows of `L`, m entries each; `None` is a zero (an operand the row lacks).
    pub left: Vec<Vec<Option<S>>>,
    /// `R`, m rows of p entries.
    pub right: Vec<Vec<R>>,
}

/// Outputs with the same left operands: one row of `L`, and each output's right factors
/// aligned with those operands.
struct Group<S, R> {
    left: Vec<S>,
    outputs: Vec<usize>,
    /// `right[j][k]`: output `outputs[j]`'s factor of operand `left[k]`.
    right: Vec<Vec<R>>,
}

impl<S, R: Clone> Group<S, R> {
    /// Row `k` of this group's `R`: operand `k`'s factors over the outputs.
    fn right_row(&self, k: usize) -> Vec<R> {
        self.right.iter().map(|r| r[k].clone()).collect()
    }
}

/// The products worth a Freivalds check among `rows` (output `o` sums `left·right` over
/// `rows[o]`), and the outputs left to multiply out, in order. `zero` is the right factor
/// "nothing" when right factors are constants (see the module notes); `None` for variables.
pub fn shared_factors<S, R>(
    rows: &[Vec<(S, R)>],
    zero: Option<&R>,
) -> (Vec<SharedFactor<S, R>>, Vec<usize>)
where
    S: Clone + Eq + Hash,
    R: Clone + Eq + Hash,
{
    let mut groups = group_rows(rows);
    if let Some(zero) = zero {
        rejoin_split_outputs(&mut groups, zero);
    }
    let groups: Vec<Group<S, R>> = groups.into_iter().flatten().collect();
    let mut found = Vec::new();
    let mut checked = vec![false; rows.len()];
    for product in join_classes(&groups) {
        let host = &groups[product[0].group];
        let (m, p) = (host.left.len(), host.outputs.len());
        let operands: Vec<usize> = product.iter().map(|x| groups[x.group].left.len()).collect();
        let work: usize = operands.iter().map(|l| l * p).sum();
        if 2 * FreivaldsRegion::rows_for(m, p, &operands) > work {
            continue;
        }
        let right = (0..m).map(|k| host.right_row(k)).collect();
        let mut left = Vec::with_capacity(product.len());
        let mut outputs = Vec::with_capacity(product.len());
        for member in product {
            let group = &groups[member.group];
            let mut row = vec![None; m];
            for (k, s) in group.left.iter().enumerate() {
                row[member.slots.as_ref().map_or(k, |sl| sl[k])] = Some(s.clone());
            }
            let outs: Vec<usize> = member.cols.iter().map(|&j| group.outputs[j]).collect();
            for &o in &outs {
                checked[o] = true;
            }
            left.push(row);
            outputs.push(outs);
        }
        found.push(SharedFactor {
            outputs,
            left,
            right,
        });
    }
    let rest = (0..rows.len()).filter(|&o| !checked[o]).collect();
    (found, rest)
}

/// Groups outputs by their left operands, in order of first appearance (`None` never: the
/// `Option` lets [`rejoin_split_outputs`] remove groups in place). Constant outputs (no
/// pairs) are in no group.
fn group_rows<S, R>(rows: &[Vec<(S, R)>]) -> Vec<Option<Group<S, R>>>
where
    S: Clone + Eq + Hash,
    R: Clone,
{
    let mut row_of: HashMap<Vec<S>, usize> = HashMap::new();
    let mut groups: Vec<Option<Group<S, R>>> = Vec::new();
    for (o, pairs) in rows.iter().enumerate() {
        if pairs.is_empty() {
            continue;
        }
        let left: Vec<S> = pairs.iter().map(|(s, _)| s.clone()).collect();
        let g = *row_of.entry(left).or_insert_with_key(|left| {
            groups.push(Some(Group {
                left: left.clone(),
                outputs: Vec::new(),
                right: Vec::new(),
            }));
            groups.len() - 1
        });
        let group = groups[g].as_mut().expect("groups are only removed later");
        group.outputs.push(o);
        group
            .right
            .push(pairs.iter().map(|(_, r)| r.clone()).collect());
    }
    groups
}

/// Moves each small group into the group with the fewest operands among those with at least
/// 4× its outputs whose operands contain its own in order (at most a quarter more of them),
/// filling its missing factors with `zero`: an output channel that lost a zero weight goes
/// back to its position's row rather than to a neighbouring position's.
fn rejoin_split_outputs<S, R>(groups: &mut [Option<Group<S, R>>], zero: &R)
where
    S: Clone + Eq + Hash,
    R: Clone,
{
    let mut holders: HashMap<S, Vec<usize>> = HashMap::new();
    for (h, group) in groups.iter().enumerate() {
        for s in &group.as_ref().expect("all groups present").left {
            holders.entry(s.clone()).or_default().push(h);
        }
    }
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| groups[g].as_ref().map_or(0, |x| x.outputs.len()));
    for g in order {
        let Some(small) = groups[g].as_ref() else {
            continue;
        };
        let (n, m) = (small.outputs.len(), small.left.len());
        // (rank, host, where the small group's operands sit in the host's)
        type Found = ((usize, std::cmp::Reverse<usize>), usize, Vec<usize>);
        let mut best: Option<Found> = None;
        for &h in holders.get(&small.left[0]).into_iter().flatten() {
            let Some(host) = groups[h].as_ref() else {
                continue;
            };
            let mh = host.left.len();
            if h == g || host.outputs.len() < 4 * n || mh <= m || 4 * (mh - m) > mh {
                continue;
            }
            // The closest superset: a neighbouring position may hold these operands too.
            let rank = (mh, std::cmp::Reverse(host.outputs.len()));
            if best.as_ref().is_none_or(|(r, _, _)| rank < *r) {
                if let Some(at) = subsequence(&small.left, &host.left) {
                    best = Some((rank, h, at));
                }
            }
        }
        let Some((_, h, at)) = best else { continue };
        let small = groups[g].take().expect("checked above");
        let host = groups[h].as_mut().expect("checked above");
        for (o, right) in small.outputs.into_iter().zip(small.right) {
            let mut full = vec![zero.clone(); host.left.len()];
            for (k, r) in right.into_iter().enumerate() {
                full[at[k]] = r;
            }
            host.outputs.push(o);
            host.right.push(full);
        }
        // Outputs in index order, so that rejoined channels line up across positions.
        let mut both: Vec<(usize, Vec<R>)> =
            host.outputs.drain(..).zip(host.right.drain(..)).collect();
        both.sort_by_key(|(o, _)| *o);
        (host.outputs, host.right) = both.into_iter().unzip();
    }
}

/// Where each element of `small` sits in `big`, if `small` is a subsequence of it.
fn subsequence<S: Eq>(small: &[S], big: &[S]) -> Option<Vec<usize>> {
    let mut at = Vec::with_capacity(small.len());
    let mut i = 0;
    for s in small {
        while i < big.len() && big[i] != *s {
            i += 1;
        }
        if i == big.len() {
            return None;
        }
        at.push(i);
        i += 1;
    }
    Some(at)
}

/// A row of `L` in a product: a group, the slots of `R` its operands map to (`None`: the
/// host's own layout) and the outputs it contributes, as indices into the group's outputs
/// in the order of `R`'s columns.
struct Member {
    group: usize,
    slots: Option<Vec<usize>>,
    cols: Vec<usize>,
}

/// Groups with the same `R` form a class. A class whose every right-factor row is a
/// distinct row of a larger class's `R` (the same number of outputs) joins it; so does one
/// whose outputs split evenly (interleaved, or in blocks) into parts that each do: border
/// positions of a strided convolution that read the same inputs share a group. Returns the
/// products, host first.
fn join_classes<S, R>(groups: &[Group<S, R>]) -> Vec<Vec<Member>>
where
    R: Clone + Eq + Hash,
{
    let mut class_of: HashMap<Vec<R>, usize> = HashMap::new();
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let key: Vec<R> = group.right.iter().flatten().cloned().collect();
        let c = *class_of.entry(key).or_insert_with(|| {
            classes.push(Vec::new());
            classes.len() - 1
        });
        classes[c].push(g);
    }
    drop(class_of);
    // Largest R first, so that a border class finds its interior class already a host.
    let mut order: Vec<usize> = (0..classes.len()).collect();
    let size = |c: usize| {
        let g = &groups[classes[c][0]];
        (g.left.len(), classes[c].len())
    };
    order.sort_by_key(|&c| std::cmp::Reverse(size(c)));
    let mut hosts = Hosts {
        rows_at: HashMap::new(),
        shape: Vec::new(),
    };
    let mut products: Vec<Vec<Member>> = Vec::new();
    for c in order {
        let first = &groups[classes[c][0]];
        let (m, p) = (first.left.len(), first.outputs.len());
        let rows: Vec<Vec<R>> = (0..m).map(|k| first.right_row(k)).collect();
        let all: Vec<usize> = (0..p).collect();
        let mut parts = vec![all];
        let mut joined = hosts.find(&rows, &parts);
        // Outputs of several positions in one group: try even splits by each host width.
        let mut widths: Vec<usize> = hosts.shape.iter().map(|&(_, ph)| ph).collect();
        widths.sort_unstable();
        widths.dedup();
        for ph in widths {
            if joined.is_some() {
                break;
            }
            if ph >= p || p % ph != 0 {
                continue;
            }
            let q = p / ph;
            for split in [
                (0..q)
                    .map(|i| (0..ph).map(|j| j * q + i).collect())
                    .collect::<Vec<Vec<usize>>>(),
                (0..q).map(|i| (i * ph..(i + 1) * ph).collect()).collect(),
            ] {
                if let Some(j) = hosts.find(&rows, &split) {
                    parts = split;
                    joined = Some(j);
                    break;
                }
            }
        }
        match joined {
            Some(found) => {
                for ((h, slots), cols) in found.into_iter().zip(&parts) {
                    products[h].extend(classes[c].iter().map(|&g| Member {
                        group: g,
                        slots: Some(slots.clone()),
                        cols: cols.clone(),
                    }));
                }
            }
            None => {
                let h = products.len();
                for (k, row) in rows.into_iter().enumerate() {
                    hosts.rows_at.entry(row).or_default().push((h, k));
                }
                hosts.shape.push((m, p));
                products.push(
                    classes[c]
                        .iter()
                        .map(|&g| Member {
                            group: g,
                            slots: None,
                            cols: (0..p).collect(),
                        })
                        .collect(),
                );
            }
        }
    }
    products
}

/// The products' `R`s, row by row, for [`join_classes`].
struct Hosts<R> {
    /// Each host's rows of `R`, by content: (product, slot).
    rows_at: HashMap<Vec<R>, Vec<(usize, usize)>>,
    /// Each product's `(m, p)`.
    shape: Vec<(usize, usize)>,
}

impl<R: Clone + Eq + Hash> Hosts<R> {
    /// For each part (columns of `rows`), a host with as many rows or more whose `R` holds the part's rows
    /// as distinct rows of its own, and the slots they map to; `None` unless every part has one.
    #[allow(clippy::type_complexity)]
    fn find(&self, rows: &[Vec<R>], parts: &[Vec<usize>]) -> Option<Vec<(usize, Vec<usize>)>> {
        parts
            .iter()
            .map(|cols| {
                let part: Vec<Vec<R>> = rows
                    .iter()
                    .map(|r| cols.iter().map(|&j| r[j].clone()).collect())
                    .collect();
                let mut candidates: Vec<usize> = self
                    .rows_at
                    .get(&part[0])?
                    .iter()
                    .map(|&(h, _)| h)
                    .collect();
                candidates.dedup();
                candidates.into_iter().find_map(|h| {
                    let (mh, ph) = self.shape[h];
                    if ph != cols.len() || mh < rows.len() {
                        return None;
                    }
                    let mut used = vec![false; mh];
                    let slots: Option<Vec<usize>> = part
                        .iter()
                        .map(|row| {
                            let &(_, s) = self
                                .rows_at
                                .get(row)?
                                .iter()
                                .find(|&&(hh, s)| hh == h && !used[s])?;
                            used[s] = true;
                            Some(s)
                        })
                        .collect();
                    slots.map(|s| (h, s))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output `(b, i, j)` of a batched `A[b]·B[b]` (n×m by m×p), as index pairs.
    fn batched(batch: usize, n: usize, m: usize, p: usize) -> Vec<Vec<(usize, usize)>> {
        let mut rows = Vec::new();
        for b in 0..batch {
            for i in 0..n {
                for j in 0..p {
                    rows.push(
                        (0..m)
                            .map(|k| ((b * n + i) * m + k, (b * m + k) * p + j))
                            .collect(),
                    );
                }
            }
        }
        rows
    }

    #[test]
    fn a_batched_matmul_is_one_class_per_batch() {
        let (found, rest) = shared_factors(&batched(3, 8, 8, 8), None);
        assert!(rest.is_empty());
        assert_eq!(found.len(), 3);
        let c = &found[1];
        assert_eq!(c.left.len(), 8);
        assert_eq!(
            c.left[2],
            (0..8).map(|k| Some((8 + 2) * 8 + k)).collect::<Vec<_>>()
        );
        assert_eq!(c.right.len(), 8);
        assert_eq!(
            c.right[3],
            (0..8).map(|j| (8 + 3) * 8 + j).collect::<Vec<_>>()
        );
        assert_eq!(
            c.outputs[2],
            (0..8).map(|j| (8 + 2) * 8 + j).collect::<Vec<_>>()
        );
    }

    #[test]
    fn small_or_unshared_products_are_multiplied_out() {
        // One row of L per class (n = 1): nothing to share.
        let (found, rest) = shared_factors(&batched(4, 1, 16, 16), None);
        assert!(found.is_empty());
        assert_eq!(rest.len(), 4 * 16);
        // Element-wise products (m = 1): no saving.
        let (found, rest) = shared_factors(&batched(1, 16, 1, 16), None);
        assert!(found.is_empty());
        assert_eq!(rest, (0..256).collect::<Vec<_>>());
    }

    #[test]
    fn a_missing_term_splits_only_its_own_outputs() {
        // Output column 0 lacks term k = 0 in every row (a weight that quantized to zero).
        let mut rows = batched(1, 16, 16, 16);
        for i in 0..16 {
            rows[i * 16].remove(0);
        }
        let (found, rest) = shared_factors(&rows, None);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].right[0].len(), 15);
        assert_eq!(rest, (0..16).map(|i| i * 16).collect::<Vec<_>>());
    }

    /// Every output is in exactly one product or in `rest`, and each product gives every
    /// output's sum exactly, with operand `s` worth `s + 1` and factor `r` worth `r % 97 − 40`
    /// (`zero` worth 0).
    fn assert_exact(
        rows: &[Vec<(usize, usize)>],
        zero: usize,
        found: &[SharedFactor<usize, usize>],
        rest: &[usize],
    ) {
        let sv = |s: usize| s as i64 + 1;
        let rv = |r: usize| if r == zero { 0 } else { (r % 97) as i64 - 40 };
        let mut seen = vec![0; rows.len()];
        for &o in rest {
            seen[o] += 1;
        }
        for f in found {
            assert!(f.right.iter().all(|r| r.len() == f.right[0].len()));
            for (left, outs) in f.left.iter().zip(&f.outputs) {
                assert_eq!(left.len(), f.right.len());
                for (j, &o) in outs.iter().enumerate() {
                    seen[o] += 1;
                    let got: i64 = left
                        .iter()
                        .zip(&f.right)
                        .map(|(s, r)| s.map_or(0, sv) * rv(r[j]))
                        .sum();
                    let want: i64 = rows[o].iter().map(|&(s, r)| sv(s) * rv(r)).sum();
                    assert_eq!(got, want, "output {o}");
                }
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
    }

    #[test]
    fn a_zero_weight_rejoins_its_row_with_a_zero_factor() {
        // As above, but the factors are constants: column 0's outputs go back to their rows.
        const ZERO: usize = usize::MAX;
        let mut rows = batched(1, 16, 16, 16);
        for i in 0..16 {
            rows[i * 16].remove(0);
        }
        let (found, rest) = shared_factors(&rows, Some(&ZERO));
        assert!(rest.is_empty());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].right.len(), 16);
        assert_eq!(found[0].right[0][0], ZERO);
        assert_eq!(found[0].right[1][0], 16);
        assert_eq!(found[0].outputs[3], (48..64).collect::<Vec<_>>());
        assert_exact(&rows, ZERO, &found, &rest);
    }

    /// A 1-D convolution with zero padding: `channels` in, `p` out, `taps` wide, over `len`
    /// positions; output `(j, x)` sums `input[c][x + t − taps/2] · W[j][c][t]` over the taps
    /// that land inside. Factor ids: `W[j][c][t]` is `(c·taps + t)·p + j`.
    fn padded_conv(channels: usize, p: usize, taps: usize, len: usize) -> Vec<Vec<(usize, usize)>> {
        let mut rows = Vec::new();
        for j in 0..p {
            for x in 0..len {
                let mut pairs = Vec::new();
                for c in 0..channels {
                    for t in 0..taps {
                        let at = (x + t).checked_sub(taps / 2).filter(|&a| a < len);
                        if let Some(a) = at {
                            pairs.push((c * len + a, (c * taps + t) * p + j));
                        }
                    }
                }
                rows.push(pairs);
            }
        }
        rows
    }

    #[test]
    fn border_positions_join_the_interior_product_with_zeros_in_l() {
        let (channels, p, taps, len) = (4, 8, 5, 12);
        let rows = padded_conv(channels, p, taps, len);
        let (found, rest) = shared_factors(&rows, Some(&usize::MAX));
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!((f.left.len(), f.right.len()), (len, channels * taps));
        // The interior rows are full; position 0 lacks the two taps left of it.
        let zeros: Vec<usize> = f
            .left
            .iter()
            .map(|l| l.iter().filter(|s| s.is_none()).count())
            .collect();
        assert_eq!(zeros.iter().filter(|&&z| z == 0).count(), len - 4);
        assert_eq!(
            zeros[f.outputs.iter().position(|o| o[0] == 0).unwrap()],
            2 * channels
        );
        assert_exact(&rows, usize::MAX, &found, &rest);
        // With a zero weight as well (W[3][1][2]): still one product, still exact.
        let mut rows = rows;
        let w = (taps + 2) * p + 3;
        for r in rows.iter_mut() {
            r.retain(|&(_, f)| f != w);
        }
        let (found, rest) = shared_factors(&rows, Some(&usize::MAX));
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(found.len(), 1);
        assert_exact(&rows, usize::MAX, &found, &rest);
    }

    #[test]
    fn variable_factors_never_take_a_zero() {
        // Without `zero`, a missing pair is not a zero: those outputs are multiplied out.
        let mut rows = padded_conv(2, 8, 3, 16);
        for r in rows.iter_mut().take(16) {
            r.remove(0);
        }
        let (found, rest) = shared_factors(&rows, None);
        assert_eq!(rest, (0..16).collect::<Vec<_>>());
        assert_exact(&rows, usize::MAX, &found, &rest);
    }

    /// A 1-D transposed convolution, stride 2, `taps` wide with `taps/2` padding: output
    /// `(j, x)` sums `input[c][i] · W[j][c][t]` over `x + taps/2 − t = 2i` inside the input.
    fn transposed_conv(
        channels: usize,
        p: usize,
        taps: usize,
        len: usize,
    ) -> Vec<Vec<(usize, usize)>> {
        let mut rows = Vec::new();
        for j in 0..p {
            for x in 0..2 * len {
                let mut pairs = Vec::new();
                for c in 0..channels {
                    for t in 0..taps {
                        let d = (x + taps / 2).checked_sub(t).filter(|d| d % 2 == 0);
                        if let Some(i) = d.map(|d| d / 2).filter(|&i| i < len) {
                            pairs.push((c * len + i, (c * taps + t) * p + j));
                        }
                    }
                }
                rows.push(pairs);
            }
        }
        rows
    }

    #[test]
    fn positions_reading_the_same_inputs_split_into_their_own_rows() {
        // Outputs 0 and 1 both read inputs 0 and 1 (through taps 2, 0 and 3, 1): one group of
        // 2p outputs, which splits into one row of each phase's product.
        let (channels, p, taps, len) = (3, 8, 5, 6);
        let rows = transposed_conv(channels, p, taps, len);
        let (found, rest) = shared_factors(&rows, Some(&usize::MAX));
        assert!(rest.is_empty(), "{rest:?}");
        // One product per phase: the even outputs use taps 0, 2, 4, the odd ones 1 and 3.
        let mut shapes: Vec<(usize, usize, usize)> = found
            .iter()
            .map(|f| (f.left.len(), f.right.len(), f.right[0].len()))
            .collect();
        shapes.sort_unstable();
        assert_eq!(shapes, [(len, 2 * channels, p), (len, 3 * channels, p)]);
        assert_exact(&rows, usize::MAX, &found, &rest);
    }
}
