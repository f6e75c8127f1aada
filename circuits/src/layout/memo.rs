//! Common-subexpression elimination: what the layouter knows of each element, and the
//! computations already laid out.

use std::collections::HashMap;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::AssignedValue;

use crate::chips::Elem;
use crate::error::CircuitError;

/// What the layouter knows of one tensor element: its cell (or constant), a proven negative
/// bit if one exists, and a structural identity for common-subexpression elimination.
#[derive(Clone, Copy, Debug)]
pub(super) struct Value {
    pub(super) elem: Elem,
    pub(super) neg: Option<AssignedValue<Fr>>,
    pub(super) id: u32,
}

impl Value {
    pub(super) fn constant(c: i128) -> Self {
        Value {
            elem: Elem::Const(c),
            neg: None,
            id: u32::MAX,
        }
    }

    /// Two words naming this element in a memo key: its constant, or its identity.
    pub(super) fn key(&self) -> [i128; 2] {
        match self.elem {
            Elem::Const(c) => [0, c],
            Elem::Cell(_) => [1, self.id as i128],
        }
    }
}

pub(super) const LINEAR: i128 = 1;
pub(super) const BILINEAR: i128 = 2;
pub(super) const EXTREMUM: i128 = 3;
pub(super) const LOOKUP: i128 = 4;
pub(super) const DIVIDE: i128 = 5;
pub(super) const SQRT: i128 = 6;
pub(super) const GATHER: i128 = 7;

/// Identical computations (same op, same operands by identity) are laid out once: a Tile or
/// Expand that copies a batch, then a Gemm over the copies, costs one copy of the Gemm.
/// Identities are structural (assigned in layout order), so every input lays out the same.
#[derive(Default)]
pub(super) struct Memo {
    seen: HashMap<Vec<i128>, Value>,
    next_id: u32,
}

impl Memo {
    pub(super) fn fresh(&mut self, elem: Elem, neg: Option<AssignedValue<Fr>>) -> Value {
        self.next_id += 1;
        Value {
            elem,
            neg,
            id: self.next_id,
        }
    }

    pub(super) fn key<'a>(
        tag: i128,
        head: &[i128],
        srcs: impl Iterator<Item = (&'a Value, i128)>,
    ) -> Vec<i128> {
        let mut k = vec![tag];
        k.extend_from_slice(head);
        for (v, c) in srcs {
            k.extend(v.key());
            k.push(c);
        }
        k
    }

    pub(super) fn key2(tag: i128, head: i128, pairs: &[(Value, Value)]) -> Vec<i128> {
        let mut k = vec![tag, head];
        for (a, b) in pairs {
            k.extend(a.key());
            k.extend(b.key());
        }
        k
    }

    pub(super) fn get(&self, key: &[i128]) -> Option<Value> {
        self.seen.get(key).copied()
    }

    /// The value memoized under `key`, else the one `lay_out` makes (then memoized).
    pub(super) fn get_or_lay_out(
        &mut self,
        key: Vec<i128>,
        lay_out: impl FnOnce() -> Result<(Elem, Option<AssignedValue<Fr>>), CircuitError>,
    ) -> Result<Value, CircuitError> {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let (elem, neg) = lay_out()?;
        Ok(self.insert(key, elem, neg))
    }

    pub(super) fn insert(
        &mut self,
        key: Vec<i128>,
        elem: Elem,
        neg: Option<AssignedValue<Fr>>,
    ) -> Value {
        let v = self.fresh(elem, neg);
        self.seen.insert(key, v);
        v
    }
}
