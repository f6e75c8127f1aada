//! Encrypted inference: the imported model, quantized for TFHE's small message spaces, evaluated
//! on ciphertexts (tfhe-rs shortint), with a clear simulation that the encrypted run matches bit
//! for bit.
//!
//! `compile` turns the float [`zkinfer_model::Graph`] into an [`FheProgram`]; the client makes
//! keys ([`ClientSide::generate`]), encrypts and decrypts; the server evaluates with
//! [`ServerSide`]. `FheProgram::simulate` is the clear twin.
#![warn(missing_docs)]

mod compile;
mod encrypted;
mod envelope;
mod error;
pub mod folder;
mod params;
mod program;

pub use compile::{argmax, compile, Candidate, Compiled, FheOptions};
pub use encrypted::{
    check_file, files, ClientSide, KeyPair, KeySetInfo, RunReport, ServerSide, KEYSET_VERSION,
};
pub use envelope::{Header, Kind};
pub use error::{FheError, Result};
pub use params::{ParamSet, DEFAULT_LOG2_P_FAIL, SECURITY_BITS};
pub use program::{
    DotRow, FheProgram, InputSpec, Interface, OutElem, OutputSpec, ProgramStats, Ref, ValueDef,
    PROGRAM_VERSION,
};
