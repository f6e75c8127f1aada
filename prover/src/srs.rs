//! Structured reference strings: a local development SRS, or a ceremony file read with every
//! point checked (see [`zkinfer_circuits::srs_file`]) and cut to the circuit's k.

use std::path::Path;

use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::halo2_proofs::SerdeFormat;
use zkinfer_circuits::artifacts::{read_bytes, write_with};
use zkinfer_circuits::srs_file::{self, SrsFileInfo};
use zkinfer_circuits::Bn256;

use crate::error::ProverError;

/// Largest k we generate.
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

/// Saves an SRS in halo2's raw format (the format of the perpetual powers of tau files).
pub fn save(path: &Path, params: &ParamsKZG<Bn256>) -> Result<(), ProverError> {
    write_with(path, |w| params.write_custom(w, SerdeFormat::RawBytes))?;
    Ok(())
}

/// Reads the powers a circuit of size `2^k` needs from a ceremony file (halo2 raw or
/// `.ptau`), checks that they are consecutive powers of one secret, and returns them as
/// prover parameters with what the file is.
pub fn load_ceremony(path: &Path, k: u32) -> Result<(ParamsKZG<Bn256>, SrsFileInfo), ProverError> {
    let (info, points) = srs_file::read(path, Some(k))?;
    if !srs_file::check_powers(&points) {
        return Err(ProverError::Srs(format!(
            "{}: its G1 points are not consecutive powers of the secret behind s·g2",
            path.display()
        )));
    }
    // A file of exactly this k holds the Lagrange basis: checked, it saves the G1 FFT that
    // recomputing it from g costs (minutes at k = 20). Any other file: recomputed.
    let g_lagrange = match points.g_lagrange {
        Some(basis) if srs_file::check_lagrange(&points.g, &basis) => Some(basis),
        Some(_) => {
            return Err(ProverError::Srs(format!(
                "{}: its Lagrange basis is not that of its G1 powers",
                path.display()
            )))
        }
        None => {
            tracing::warn!(
                file = %path.display(),
                k,
                "the file holds no Lagrange basis of this k: computing one from its powers \
                 (an FFT over G1: minutes at k = 20); a halo2 raw file of exactly k = {k} \
                 (perpetual-powers-of-tau-raw-{k}) is read at once"
            );
            None
        }
    };
    let seed = ParamsKZG::<Bn256>::setup(1, rand::rngs::OsRng);
    let params = seed.from_parts(k, points.g, g_lagrange, points.g2, points.s_g2);
    Ok((params, info))
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
