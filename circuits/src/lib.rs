//! halo2 chips for quantized ML ops and the layouter that turns a [`QGraph`] into one
//! circuit (KZG on BN254).
//!
//! Chips follow halo2-base's style: they take a `&mut Context` and assigned cells, never a
//! layouter; `BaseCircuitBuilder` places cells into columns. Dot products with constant weights
//! go to a gate of their own beside it ([`lincomb`]); [`ModelCircuit`] synthesizes both.
//!
//! [`QGraph`]: zkinfer_model::QGraph
#![warn(missing_docs)]

pub mod chips;
mod circuit;
pub mod commit;
pub mod cost;
pub mod cpu;
pub mod curve;
mod error;
pub mod field;
pub mod freivalds;
pub mod functions;
pub mod identity;
mod layout;
pub mod lincomb;
mod plan;
mod shared_factor;
pub mod srs_file;

pub use circuit::{CircuitParams, ModelCircuit};
pub use error::CircuitError;
pub use halo2_base;
pub use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine};
pub use layout::{
    build_circuit, lay_out, tensor_layout, weight_commitment, weight_layout, Io, Links, Visibility,
};
pub use plan::{plan_circuit, CircuitPlan, Objective, PlanLimits, MIN_UNUSABLE_ROWS};
pub mod artifacts;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
