//! Row-major index arithmetic shared by the lowerings.

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Multi-index of flat position `flat` in `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for i in (0..shape.len()).rev() {
        idx[i] = flat % shape[i];
        flat /= shape[i];
    }
    idx
}

/// Flat index in `shape` (with `strides`) of the numpy-broadcast source of output
/// multi-index `out_idx` (aligned on the right; size-1 dims repeat).
pub fn broadcast_source(out_idx: &[usize], shape: &[usize], strides: &[usize]) -> usize {
    let skip = out_idx.len() - shape.len();
    shape
        .iter()
        .zip(strides)
        .enumerate()
        .map(|(d, (&n, &st))| if n == 1 { 0 } else { out_idx[skip + d] * st })
        .sum()
}
