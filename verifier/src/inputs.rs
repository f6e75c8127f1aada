//! The proof's inputs held to an input file the verifier has: its values, or with hashed
//! inputs its commitments.

use std::path::Path;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::commit::commitment_hex;
use zkinfer_circuits::field::fr;
use zkinfer_circuits::identity::VerifierFolder;

use crate::VerifyError;

/// The proof's public inputs (or their commitments) must be the input file, quantized as the
/// prover quantizes it.
pub(crate) fn check_input(
    path: &Path,
    folder: &VerifierFolder,
    instances: &[Fr],
    salt: Option<Fr>,
) -> Result<(), VerifyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| VerifyError::Input(format!("{}: {e}", path.display())))?;
    let data = zkinfer_model::parse_input_json(&text)
        .map_err(|e| VerifyError::Input(format!("{}: {e}", path.display())))?;
    check_input_data(&path.display().to_string(), &data, folder, instances, salt)
}

/// The proof's public inputs must be `data`, quantized (hashed: its commitments, with
/// `salt`); `what` names it in messages.
pub(crate) fn check_input_data(
    what: &str,
    data: &[Vec<f64>],
    folder: &VerifierFolder,
    instances: &[Fr],
    salt: Option<Fr>,
) -> Result<(), VerifyError> {
    let settings = &folder.settings;
    if let Some(proven) = settings.input_commitments(instances) {
        let want = settings
            .commit_inputs(data, salt.unwrap_or(Fr::zero()))
            .map_err(|e| VerifyError::Input(format!("{what}: {e}")))?;
        if let Some(i) = (0..want.len()).find(|&i| want[i] != proven[i]) {
            return Err(VerifyError::InputMismatch(format!(
                "input {i}: {what} commits to {}{}, the proof to {}",
                commitment_hex(&want[i]),
                if salt.is_some() {
                    " with the salt given"
                } else {
                    " (no salt given)"
                },
                commitment_hex(&proven[i])
            )));
        }
        return Ok(());
    }
    if settings.num_input_instances() == 0 {
        return Err(VerifyError::InputsPrivate);
    }
    let want = settings
        .quantize_input(data)
        .map_err(|e| VerifyError::Input(format!("{what}: {e}")))?;
    let mut at = 0;
    for (i, values) in want.iter().enumerate() {
        for (j, &v) in values.iter().enumerate() {
            let proven = instances[at];
            if proven != fr(v as i128) {
                let shown = zkinfer_circuits::field::signed(&proven)
                    .map(|p| {
                        format!(
                            "{} (fixed point {p})",
                            zkinfer_model::dequantize(p, settings.scale)
                        )
                    })
                    .unwrap_or_else(|| "a value outside the input range".into());
                return Err(VerifyError::InputMismatch(format!(
                    "input {i} element {j}: {what} gives {} (fixed point {v}), the proof is of {shown}",
                    data[i][j]
                )));
            }
            at += 1;
        }
    }
    Ok(())
}
