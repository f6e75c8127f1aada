use serde::{Deserialize, Serialize};

/// Rows of variable length stored flat (CSR): row `i` is `entries[offsets[i]..offsets[i + 1]]`.
///
/// Every lowered op is "for each output element, a short list of things": the terms of a
/// dot product, the candidates of a max, the products of an einsum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rows<T> {
    offsets: Vec<u32>,
    entries: Vec<T>,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Self {
            offsets: vec![0],
            entries: Vec::new(),
        }
    }
}

impl<T> Rows<T> {
    /// Appends one row.
    pub fn push_row(&mut self, row: impl IntoIterator<Item = T>) {
        self.entries.extend(row);
        self.offsets.push(self.entries.len() as u32);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.entries[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// All rows in order.
    pub fn iter(&self) -> impl Iterator<Item = &[T]> + '_ {
        (0..self.len()).map(move |i| self.row(i))
    }

    /// All entries of all rows, flat.
    pub fn entries(&self) -> &[T] {
        &self.entries
    }

    /// All entries of all rows, flat, to change in place (the rows keep their lengths).
    pub fn entries_mut(&mut self) -> &mut [T] {
        &mut self.entries
    }

    /// Total number of entries over all rows.
    pub fn total(&self) -> usize {
        self.entries.len()
    }

    /// Rows rebuilt by a fallible function of each row.
    pub fn try_map_rows<U, E>(
        &self,
        mut f: impl FnMut(&[T]) -> Result<Vec<U>, E>,
    ) -> Result<Rows<U>, E> {
        let mut out = Rows::default();
        for row in self.iter() {
            out.push_row(f(row)?);
        }
        Ok(out)
    }
}

impl<T> FromIterator<Vec<T>> for Rows<T> {
    fn from_iter<I: IntoIterator<Item = Vec<T>>>(iter: I) -> Self {
        let mut rows = Rows::default();
        for r in iter {
            rows.push_row(r);
        }
        rows
    }
}
