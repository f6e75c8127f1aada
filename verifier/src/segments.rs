//! Verification of a segmented model's proof: every segment's proof against its own folder,
//! each link (a segment's commitment to a tensor it reads equals the commitment of the
//! segment that computed it), and the model's instances and values against the segments'.

use std::path::Path;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use zkinfer_circuits::artifacts::segments::{segment_dir, SegmentsFile, SEGMENTS};
use zkinfer_circuits::artifacts::{in_dir, read_json, ProofFile, Settings};
use zkinfer_circuits::commit::commitment_hex;
use zkinfer_circuits::identity::VerifierFolder;
use zkinfer_circuits::Visibility;

use crate::{
    check_pinned, check_weights, parse_values, proven_outputs, srs_check, verify_proof_bytes,
    Commitments, Verified, VerifyError, VerifyOptions,
};

/// Whether `dir` holds a segmented model.
pub fn is_segmented(dir: &Path) -> bool {
    in_dir(dir, SEGMENTS).exists()
}

/// A segmented model folder as a verifier reads it: the wiring and each segment's folder.
pub struct SegmentedVerifier {
    /// `segments.json`, checked.
    pub file: SegmentsFile,
    /// Each segment's settings, verifying key and SRS points.
    pub segments: Vec<VerifierFolder>,
    /// The segmented model id.
    pub model_id: String,
}

impl SegmentedVerifier {
    /// Reads and checks `segments.json` and every segment's folder.
    pub fn open(dir: &Path) -> Result<Self, VerifyError> {
        let file: SegmentsFile = read_json(&in_dir(dir, SEGMENTS))?;
        file.check()?;
        let segments = (0..file.segments.len())
            .map(|s| {
                let folder = VerifierFolder::open(&segment_dir(dir, s))?;
                file.check_segment(s, &folder.settings)?;
                Ok(folder)
            })
            .collect::<Result<Vec<_>, VerifyError>>()?;
        let ids: Vec<String> = segments.iter().map(|f| f.model_id.clone()).collect();
        let model_id = file.model_id(&ids)?;
        Ok(Self {
            file,
            segments,
            model_id,
        })
    }
}

impl SegmentedVerifier {
    /// Each segment's settings beside its proof's public values.
    pub fn pairs<'a>(&'a self, parsed: &'a [(Vec<Fr>, Vec<u8>)]) -> Vec<(&'a Settings, &'a [Fr])> {
        self.segments
            .iter()
            .zip(parsed)
            .map(|(f, (i, _))| (&f.settings, i.as_slice()))
            .collect()
    }

    /// The model's instances in the segments' public values (see
    /// [`SegmentsFile::model_instances`]).
    pub fn model_instances(&self, parsed: &[(Vec<Fr>, Vec<u8>)]) -> Result<Vec<Fr>, VerifyError> {
        self.file
            .model_instances(&self.pairs(parsed))
            .map_err(|e| VerifyError::Link(e.to_string()))
    }
}

/// Verifies `PROOF.json` of a segmented model folder.
pub fn verify_segmented(
    dir: &Path,
    proof_path: &Path,
    opts: &VerifyOptions<'_>,
) -> Result<Verified, VerifyError> {
    let v = SegmentedVerifier::open(dir)?;
    check_pinned(opts.model_id, &v.model_id)?;
    if opts.salt.is_some()
        && (v.file.input_visibility != Visibility::Hashed || opts.input.is_none())
    {
        return Err(VerifyError::SaltUnused);
    }
    let proof: ProofFile = read_json(proof_path)?;
    if proof.model_id != v.model_id {
        return Err(VerifyError::WrongModel {
            proof: proof.model_id,
            folder: v.model_id,
        });
    }
    let file = &v.file;
    if proof.proof != "0x" {
        return Err(VerifyError::Malformed(
            "a segmented model's proof file holds its proofs in \"segments\", none in \"proof\""
                .into(),
        ));
    }
    if proof.segments.len() != v.segments.len() {
        return Err(VerifyError::Malformed(format!(
            "{} segment proofs, the model has {} segments",
            proof.segments.len(),
            v.segments.len()
        )));
    }
    if proof.input_visibility != file.input_visibility
        || proof.output_visibility != file.output_visibility
    {
        return Err(VerifyError::Malformed(
            "the proof file's visibilities are not the model's".into(),
        ));
    }
    let mut parsed: Vec<(Vec<Fr>, Vec<u8>)> = Vec::with_capacity(v.segments.len());
    for (s, (sp, folder)) in proof.segments.iter().zip(&v.segments).enumerate() {
        if sp.model_id != folder.model_id {
            return Err(VerifyError::Malformed(format!(
                "proof {s} is for model id {}, segment {s} is {}: a segment's proof is missing, \
                 foreign or out of order",
                sp.model_id, folder.model_id
            )));
        }
        let (instances, bytes) = parse_values(folder, &sp.instances, &sp.proof)?;
        check_weights(&folder.settings, &instances)?;
        parsed.push((instances, bytes));
    }
    file.check_links(&v.pairs(&parsed))
        .map_err(VerifyError::Link)?;
    let model = v.model_instances(&parsed)?;
    let top = crate::parse_instances(&proof.instances)?;
    if top != model {
        return Err(VerifyError::ValuesMismatch("instances"));
    }
    // Each segment's model outputs, checked as a one-circuit proof's are.
    let mut outputs = vec![Vec::new(); file.output_shapes.len()];
    if proof.outputs.len() != outputs.len() {
        return Err(VerifyError::ValuesMismatch("outputs"));
    }
    let mut inputs: Vec<Option<Vec<f64>>> = vec![None; file.input_shapes.len()];
    for (s, entry) in file.segments.iter().enumerate() {
        let (folder, instances) = (&v.segments[s], &parsed[s].0);
        let claimed: Vec<Vec<f64>> = entry
            .model_outputs
            .iter()
            .map(|&o| proof.outputs[o].clone())
            .collect();
        let proven = proven_outputs(folder, instances, &claimed)?;
        for (&o, values) in entry.model_outputs.iter().zip(proven) {
            outputs[o] = values;
        }
        if let Some(values) = folder.settings.inputs_from_instances(instances) {
            for (&i, x) in entry.model_inputs.iter().zip(values) {
                inputs[i] = Some(x);
            }
        }
    }
    let inputs: Option<Vec<Vec<f64>>> = inputs.into_iter().collect();
    if inputs != proof.inputs {
        return Err(VerifyError::ValuesMismatch("inputs"));
    }
    if let Some(path) = opts.input {
        check_input(path, &v, &model, opts.salt.unwrap_or(Fr::zero()))?;
    }
    let srs = srs_check(&segment_dir(dir, 0), &v.segments[0], opts.srs)?;
    if opts.srs.is_some() {
        for (s, folder) in v.segments.iter().enumerate().skip(1) {
            srs_check(&segment_dir(dir, s), folder, opts.srs)?;
        }
    }
    for (folder, (instances, bytes)) in v.segments.iter().zip(&parsed) {
        verify_proof_bytes(&folder.kzg.params(), &folder.vk, instances, bytes)?;
    }
    Ok(Verified {
        commitments: model_commitments(file, &model),
        model_id: v.model_id,
        pinned: opts.model_id.is_some(),
        srs,
        inputs,
        input_checked: opts.input.is_some(),
        outputs,
    })
}

/// The model's instances (checked against every segment's) must be the input file, quantized
/// as the prover quantizes it: its values, or with hashed inputs their commitments.
fn check_input(
    path: &Path,
    v: &SegmentedVerifier,
    model: &[Fr],
    salt: Fr,
) -> Result<(), VerifyError> {
    let file = &v.file;
    let text = std::fs::read_to_string(path)
        .map_err(|e| VerifyError::Input(format!("{}: {e}", path.display())))?;
    let data = zkinfer_model::parse_input_json(&text)
        .map_err(|e| VerifyError::Input(format!("{}: {e}", path.display())))?;
    let want = zkinfer_model::quantize_input(&data, &file.input_shapes, file.scale, file.act_bits)
        .map_err(|e| VerifyError::Input(format!("{}: {e}", path.display())))?;
    let mut at = 0;
    for (i, values) in want.iter().enumerate() {
        let expected: Vec<Fr> = match file.input_visibility {
            Visibility::Private => return Err(VerifyError::InputsPrivate),
            Visibility::Public => values
                .iter()
                .map(|&x| zkinfer_circuits::field::fr(x as i128))
                .collect(),
            Visibility::Hashed => {
                // The layout of the first segment that reads it (every reader's commitment is
                // the same: checked with the model's instances).
                let (s, k) = file
                    .segments
                    .iter()
                    .enumerate()
                    .find_map(|(s, e)| e.model_inputs.iter().position(|&m| m == i).map(|k| (s, k)))
                    .ok_or_else(|| VerifyError::Malformed(format!("no segment reads input {i}")))?;
                let layout = v.segments[s].settings.input_layout(k);
                vec![zkinfer_circuits::commit::commit(&layout, values, salt)
                    .map_err(|e| VerifyError::Input(e.to_string()))?]
            }
        };
        let proven = model
            .get(at..at + expected.len())
            .ok_or(VerifyError::ValuesMismatch("instances"))?;
        if proven != expected.as_slice() {
            return Err(VerifyError::InputMismatch(format!(
                "input {i}: {} is not the proven one{}",
                path.display(),
                if file.input_visibility == Visibility::Hashed {
                    " (its commitment differs: check the salt)"
                } else {
                    ""
                }
            )));
        }
        at += expected.len();
    }
    Ok(())
}

/// The model's input and output commitments among its instances, when hashed.
fn model_commitments(file: &SegmentsFile, model: &[Fr]) -> Commitments {
    let inputs = match file.input_visibility {
        Visibility::Hashed => file.input_shapes.len(),
        _ => 0,
    };
    let outputs = match file.output_visibility {
        Visibility::Hashed => file.output_shapes.len(),
        _ => 0,
    };
    let n_in: usize = match file.input_visibility {
        Visibility::Public => file
            .input_shapes
            .iter()
            .map(|s| s.iter().product::<usize>())
            .sum(),
        Visibility::Private => 0,
        Visibility::Hashed => inputs,
    };
    Commitments {
        inputs: model[..inputs].iter().map(commitment_hex).collect(),
        outputs: model[n_in..n_in + outputs]
            .iter()
            .map(commitment_hex)
            .collect(),
        weights: None,
    }
}
