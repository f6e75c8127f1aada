//! Finding matrix products in an op's output rows, for [`crate::freivalds`].
//!
//! An op lists, per output, the pairs it sums: `(left operand, right factor)`. Outputs with
//! the same left operands in the same order form a row of `L`; rows whose right factors form
//! the same m×p matrix share it as `R`, so together they are `Z = L·R`. A batched MatMul or a
//! projection of many tokens by one weight matrix falls into such classes whatever the
//! reshapes around it, and so do convolutions (one row per output position, border positions
//! apart). Only classes that at least halve the work leave the plain dot products.

use std::collections::HashMap;
use std::hash::Hash;

use crate::freivalds::FreivaldsRegion;

/// Rows of `L` sharing one `R`: `outputs[g][j] = Σ_k left[g][k] · right[k][j]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFactor<S, R> {
    /// The output index of each entry of `Z`, row by row.
    pub outputs: Vec<Vec<usize>>,
    /// The rows of `L`.
    pub left: Vec<Vec<S>>,
    /// `R`, m rows of p entries.
    pub right: Vec<Vec<R>>,
}

/// The classes worth a Freivalds check among `rows` (output `o` sums `left·right` over
/// `rows[o]`), and the outputs left to multiply out, in order.
pub fn shared_factors<S, R>(rows: &[Vec<(S, R)>]) -> (Vec<SharedFactor<S, R>>, Vec<usize>)
where
    S: Clone + Eq + Hash,
    R: Clone + Eq + Hash,
{
    // Rows of L: outputs with the same left operands, in order of first appearance.
    let mut row_of: HashMap<Vec<S>, usize> = HashMap::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (o, pairs) in rows.iter().enumerate() {
        if pairs.is_empty() {
            members.push(vec![o]); // a constant output: never a class of its own
            continue;
        }
        let left: Vec<S> = pairs.iter().map(|(s, _)| s.clone()).collect();
        let g = *row_of.entry(left).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[g].push(o);
    }
    // Classes: rows of L whose outputs read the same right factors.
    let mut class_of: HashMap<Vec<R>, usize> = HashMap::new();
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for (g, outs) in members.iter().enumerate() {
        if rows[outs[0]].is_empty() {
            continue;
        }
        let key: Vec<R> = outs
            .iter()
            .flat_map(|&o| rows[o].iter().map(|(_, r)| r.clone()))
            .collect();
        let c = *class_of.entry(key).or_insert_with(|| {
            classes.push(Vec::new());
            classes.len() - 1
        });
        classes[c].push(g);
    }
    let mut found = Vec::new();
    let mut checked = vec![false; rows.len()];
    for groups in classes {
        let outs = &members[groups[0]];
        let (n, m, p) = (groups.len(), rows[outs[0]].len(), outs.len());
        if 2 * FreivaldsRegion::rows_for(n, m, p) > n * m * p {
            continue;
        }
        let right = (0..m)
            .map(|k| outs.iter().map(|&o| rows[o][k].1.clone()).collect())
            .collect();
        let left = groups
            .iter()
            .map(|&g| rows[members[g][0]].iter().map(|(s, _)| s.clone()).collect())
            .collect();
        let outputs: Vec<Vec<usize>> = groups.iter().map(|&g| members[g].clone()).collect();
        for &o in outputs.iter().flatten() {
            checked[o] = true;
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
        let (found, rest) = shared_factors(&batched(3, 8, 8, 8));
        assert!(rest.is_empty());
        assert_eq!(found.len(), 3);
        let c = &found[1];
        assert_eq!(c.left.len(), 8);
        assert_eq!(
            c.left[2],
            (0..8).map(|k| (8 + 2) * 8 + k).collect::<Vec<_>>()
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
        let (found, rest) = shared_factors(&batched(4, 1, 16, 16));
        assert!(found.is_empty());
        assert_eq!(rest.len(), 4 * 16);
        // Element-wise products (m = 1): no saving.
        let (found, rest) = shared_factors(&batched(1, 16, 1, 16));
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
        let (found, rest) = shared_factors(&rows);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].right[0].len(), 15);
        assert_eq!(rest, (0..16).map(|i| i * 16).collect::<Vec<_>>());
    }
}
