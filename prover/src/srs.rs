//! Structured reference strings: generate, save, load, check, downsize.

use std::path::Path;

use halo2_base::halo2_proofs::halo2curves::bn256::Bn256;
use halo2_base::halo2_proofs::halo2curves::pairing::Engine;
use halo2_base::halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::halo2_proofs::SerdeFormat;
use zkinfer_circuits::artifacts::{read_bytes, write_with};

use crate::error::ProverError;

/// Largest k we generate or accept.
pub const MAX_SRS_K: u32 = 26;

/// A fresh SRS from OS randomness. The toxic waste is dropped with the RNG state, but one
/// machine knew it: good for development, not a substitute for a ceremony's SRS.
pub fn generate(k: u32) -> Result<ParamsKZG<Bn256>, ProverError> {
    if !(1..=MAX_SRS_K).contains(&k) {
        return Err(ProverError::Srs(format!(
            "k must be in 1..={MAX_SRS_K}, got {k}"
        )));
    }
    Ok(ParamsKZG::<Bn256>::setup(k, rand::rngs::OsRng))
}

/// Saves an SRS (halo2's raw format with on-curve checks on load).
pub fn save(path: &Path, params: &ParamsKZG<Bn256>) -> Result<(), ProverError> {
    write_with(path, |w| params.write_custom(w, SerdeFormat::RawBytes))?;
    Ok(())
}

/// Loads an SRS written by [`save`] (or halo2's `write_custom` with `RawBytes`) and checks it.
pub fn load(path: &Path) -> Result<ParamsKZG<Bn256>, ProverError> {
    let bytes = read_bytes(path)?;
    if bytes.len() < 4 {
        return Err(ProverError::Srs(format!(
            "{}: not an SRS file",
            path.display()
        )));
    }
    let k = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if !(1..=MAX_SRS_K).contains(&k) {
        return Err(ProverError::Srs(format!(
            "{}: k={k} is out of range",
            path.display()
        )));
    }
    let params = ParamsKZG::<Bn256>::read_custom(&mut bytes.as_slice(), SerdeFormat::RawBytes)
        .map_err(|e| ProverError::Srs(format!("{}: {e}", path.display())))?;
    check(&params)?;
    Ok(params)
}

/// Loads the internal copy in a model folder (written by us, so unchecked and fast).
pub fn load_trusted(path: &Path) -> Result<ParamsKZG<Bn256>, ProverError> {
    let bytes = read_bytes(path)?;
    ParamsKZG::<Bn256>::read_custom(&mut bytes.as_slice(), SerdeFormat::RawBytesUnchecked)
        .map_err(|e| ProverError::Srs(format!("{}: {e}", path.display())))
}

/// Saves the internal copy in a model folder.
pub fn save_trusted(path: &Path, params: &ParamsKZG<Bn256>) -> Result<(), ProverError> {
    write_with(path, |w| {
        params.write_custom(w, SerdeFormat::RawBytesUnchecked)
    })?;
    Ok(())
}

/// Checks that `g[1] = s·g[0]` against `s·g2` with one pairing equation, so a corrupted or
/// mismatched file is caught before it makes unverifiable keys.
pub fn check(params: &ParamsKZG<Bn256>) -> Result<(), ProverError> {
    let g = params.get_g();
    if g.len() < 2 {
        return Ok(());
    }
    let lhs = Bn256::pairing(&g[1], &params.g2());
    let rhs = Bn256::pairing(&g[0], &params.s_g2());
    if lhs != rhs {
        return Err(ProverError::Srs(
            "inconsistent SRS: g[1] is not s·g[0]".into(),
        ));
    }
    Ok(())
}

/// Downsizes `params` to `k` (an SRS for a larger k serves any smaller circuit).
pub fn downsize(mut params: ParamsKZG<Bn256>, k: u32) -> Result<ParamsKZG<Bn256>, ProverError> {
    if params.k() < k {
        return Err(ProverError::Srs(format!(
            "the SRS has k={} but the circuit needs k={k}",
            params.k()
        )));
    }
    if params.k() > k {
        params.downsize(k);
    }
    Ok(params)
}
