//! The folder-level steps behind `zkinfer compile | setup | run | prove | inspect`.
//!
//! A model folder holds `settings.json`, `qgraph.json` and `calibration.json` after compile,
//! and keys plus SRS after setup. Every file is checked against the ones it depends on
//! (content hashes), so a stale or foreign file is an error, not a bad proof.

use std::path::Path;
use std::time::Instant;

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_base::halo2_proofs::plonk::ProvingKey;
use halo2_base::halo2_proofs::poly::commitment::Params;
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use serde::{Deserialize, Serialize};
use tracing::info;
use zkinfer_circuits::artifacts::{
    files, in_dir, read_bytes, read_json, read_json_hashed, vk_to_bytes, write_bytes, write_json,
    KeysInfo, KzgVerifierKey, ProofFile, Settings, SrsSource, Versioned, FORMAT_VERSION,
    LAYOUT_VERSION,
};
use zkinfer_circuits::field::to_hex;
use zkinfer_circuits::identity;
use zkinfer_circuits::{Fr, Visibility};
use zkinfer_model::{dequantize, parse_input_json, sha256_hex, ModelError, QGraph};

pub use crate::compile::{compile, CompileOptions, RESOURCE_SCALES};
use crate::error::ProverError;
pub use crate::inspect::inspect;
use crate::{keys, proving, srs};

/// `calibration.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Calibration {
    pub(crate) format_version: u32,
    pub(crate) inputs: Vec<Vec<i64>>,
}

impl Versioned for Calibration {
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

/// A file-system error on a user-given path, reported as the model crate reports it.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProverError + '_ {
    move |source| {
        ProverError::Model(ModelError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, ProverError> {
    std::fs::read(path).map_err(io_err(path))
}

pub(crate) fn read_input(path: &Path) -> Result<Vec<Vec<f64>>, ProverError> {
    let text = String::from_utf8(read_file(path)?)
        .map_err(|_| ModelError::Input(format!("{} is not UTF-8 text", path.display())))?;
    Ok(parse_input_json(&text)?)
}

/// A compiled model folder, checked for consistency.
pub struct Folder {
    /// Its settings.
    pub settings: Settings,
    /// sha256 of `settings.json`.
    pub settings_sha256: String,
    /// The quantized graph.
    pub q: QGraph,
}

/// Opens a compiled folder.
pub fn open(dir: &Path) -> Result<Folder, ProverError> {
    let settings_path = in_dir(dir, files::SETTINGS);
    if !settings_path.exists() && crate::segments::is_segmented(dir) {
        return Err(ProverError::Folder(format!(
            "{} holds a model in segments: this command works on one segment's folder ({})",
            dir.display(),
            dir.join("segment-0").display()
        )));
    }
    if !settings_path.exists() {
        return Err(ProverError::Folder(format!(
            "{} is not a compiled model folder (no {})",
            dir.display(),
            files::SETTINGS
        )));
    }
    let (settings, settings_sha256): (Settings, String) = read_json_hashed(&settings_path)?;
    let qbytes = read_bytes(&in_dir(dir, files::QGRAPH))?;
    if sha256_hex(&qbytes) != settings.qgraph_sha256 {
        return Err(ProverError::Folder(format!(
            "{} does not belong to this {}",
            files::QGRAPH,
            files::SETTINGS
        )));
    }
    let q: QGraph = serde_json::from_slice(&qbytes)
        .map_err(|e| ProverError::Folder(format!("{}: {e}", files::QGRAPH)))?;
    Ok(Folder {
        settings,
        settings_sha256,
        q,
    })
}

/// Setup and proving need a folder compiled by this layout: an older one would make keys (or
/// proofs) of a circuit this zkinfer no longer lays out.
pub(crate) fn require_current_layout(dir: &Path, settings: &Settings) -> Result<(), ProverError> {
    if settings.layout_version == LAYOUT_VERSION {
        return Ok(());
    }
    Err(ProverError::Folder(format!(
        "{} was compiled by a zkinfer that lays circuits out differently (layout {}, this one \
         {LAYOUT_VERSION}): rerun `zkinfer compile`, then `zkinfer setup`{}",
        dir.display(),
        settings.layout_version.max(1),
        if settings.forgeable().is_some() {
            " (its old model id must not be trusted: its Freivalds checks do not bind the weights)"
        } else {
            ""
        }
    )))
}

/// What setup did.
#[derive(Clone, Debug)]
pub struct SetupReport {
    /// Circuit k.
    pub k: u32,
    /// Where the SRS came from.
    pub srs: SrsSource,
    /// The model id of the folder.
    pub model_id: String,
    /// With hashed weights, the id of the circuit every training of the architecture shares
    /// (what its Solidity verifier reports).
    pub architecture_id: Option<String>,
    /// Seconds spent on key generation.
    pub keygen_seconds: f64,
    /// Proving key bytes.
    pub pk_bytes: usize,
    /// Verifying key bytes.
    pub vk_bytes: usize,
}

/// Generates (or reads from a ceremony file) the SRS, then the keys of a compiled folder.
pub fn setup(dir: &Path, srs_file: Option<&Path>) -> Result<SetupReport, ProverError> {
    let folder = open_current(dir)?;
    let (params, source) = srs_at(folder.settings.plan.k, srs_file)?;
    setup_on(dir, &folder, &params, source)
}

/// The SRS of `2^k` points: read from a ceremony file, or a development SRS made here.
pub(crate) fn srs_at(
    k: u32,
    srs_file: Option<&Path>,
) -> Result<(ParamsKZG<Bn256>, SrsSource), ProverError> {
    let t = Instant::now();
    let (params, source) = match srs_file {
        Some(p) => {
            let file = zkinfer_circuits::srs_file::choose(p, k)?;
            let (params, info) = srs::load_ceremony(&file, k)?;
            (
                params,
                SrsSource::File {
                    path: file.display().to_string(),
                    info,
                },
            )
        }
        None => (srs::generate(k)?, SrsSource::LocalDev),
    };
    info!(k, "SRS ready in {:.2?}", t.elapsed());
    Ok((params, source))
}

/// [`open`], refused unless this zkinfer's layout made it (checked before any SRS is read).
pub(crate) fn open_current(dir: &Path) -> Result<Folder, ProverError> {
    let folder = open(dir)?;
    require_current_layout(dir, &folder.settings)?;
    Ok(folder)
}

/// The keys of a compiled folder on the SRS a set-up `sibling` folder holds (its `srs.bin`,
/// recorded with the sibling's source): where no ceremony file is at hand, a model compiled
/// `--like` the sibling gets its verifying key only on the sibling's SRS.
pub fn setup_like(dir: &Path, sibling: &Path) -> Result<SetupReport, ProverError> {
    let folder = open_current(dir)?;
    let keys: KeysInfo = read_json(&in_dir(sibling, files::KEYS))?;
    let params = srs::load_trusted(&in_dir(sibling, files::SRS))?;
    let k = folder.settings.plan.k;
    if params.k() != k {
        return Err(ProverError::Srs(format!(
            "the SRS of {} has 2^{} points; {} needs 2^{k}",
            sibling.display(),
            params.k(),
            dir.display()
        )));
    }
    setup_on(dir, &folder, &params, keys.srs)
}

/// The keys of compiled `folder` (at `dir`) on `params`, recorded as coming from `source`.
pub(crate) fn setup_on(
    dir: &Path,
    folder: &Folder,
    params: &ParamsKZG<Bn256>,
    source: SrsSource,
) -> Result<SetupReport, ProverError> {
    let plan = &folder.settings.plan;
    let calib: Calibration = read_json(&in_dir(dir, files::CALIBRATION))?;
    let t = Instant::now();
    let (pk, break_points) = keys::generate(params, plan, &folder.q, &calib.inputs)?;
    let keygen_seconds = t.elapsed().as_secs_f64();
    info!("keys generated in {keygen_seconds:.2}s");
    let vk_bytes = vk_to_bytes(pk.get_vk());
    let pk_bytes = keys::pk_to_bytes(&pk);
    let kzg = KzgVerifierKey::of(params);
    let model_id = identity::model_id(&folder.settings, &vk_bytes, &kzg)?;
    let architecture_id = identity::architecture_id(&folder.settings, &vk_bytes, &kzg)?;
    write_bytes(&in_dir(dir, files::VK), &vk_bytes)?;
    write_bytes(&in_dir(dir, files::PK), &pk_bytes)?;
    srs::save_trusted(&in_dir(dir, files::SRS), params)?;
    kzg.write(&in_dir(dir, files::KZG_VERIFIER))?;
    write_json(
        &in_dir(dir, files::KEYS),
        &KeysInfo {
            format_version: FORMAT_VERSION,
            settings_sha256: folder.settings_sha256.clone(),
            vk_sha256: sha256_hex(&vk_bytes),
            model_id: model_id.clone(),
            srs: source.clone(),
            break_points,
            layout_version: LAYOUT_VERSION,
        },
    )?;
    Ok(SetupReport {
        k: plan.k,
        srs: source,
        model_id,
        architecture_id,
        keygen_seconds,
        pk_bytes: pk_bytes.len(),
        vk_bytes: vk_bytes.len(),
    })
}

/// Outputs of the integer reference evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutput {
    /// Dequantized outputs, one flat list per graph output.
    pub outputs: Vec<Vec<f64>>,
    /// The fixed-point integers behind them.
    pub outputs_fixed: Vec<Vec<i64>>,
    /// Output shapes.
    pub output_shapes: Vec<Vec<usize>>,
    /// Outputs are `integer / 2^scale`.
    pub scale: u32,
}

/// Runs the integer reference evaluator (no proof).
pub fn run(dir: &Path, input: &Path) -> Result<RunOutput, ProverError> {
    if crate::segments::is_segmented(dir) {
        // Segment by segment: the whole graph (a GPT's is over a gigabyte) is never loaded.
        let file = crate::segments::open_segments_file(dir)?;
        let eval = crate::segments::Evaluation::new(dir, &file, &read_input(input)?)?;
        let scale = file.scale;
        return Ok(RunOutput {
            outputs: eval
                .outputs
                .iter()
                .map(|o| o.iter().map(|&v| dequantize(v as i128, scale)).collect())
                .collect(),
            outputs_fixed: eval.outputs,
            output_shapes: file.output_shapes,
            scale,
        });
    }
    let q = &open(dir)?.q;
    let qin = q.quantize_input(&read_input(input)?)?;
    let trace = q.eval(&qin)?;
    let outputs_fixed = q.outputs_of(&trace);
    Ok(RunOutput {
        outputs: outputs_fixed
            .iter()
            .map(|o| o.iter().map(|&v| q.dequantize(v)).collect())
            .collect(),
        outputs_fixed,
        output_shapes: q.output_shapes(),
        scale: q.scale,
    })
}

/// Proves the model on one input; returns the proof file contents.
pub fn prove(dir: &Path, input: &Path) -> Result<ProofFile, ProverError> {
    prove_salted(dir, input, Fr::zero())
}

/// [`prove`], hashed inputs committed with `salt`.
pub fn prove_salted(dir: &Path, input: &Path, salt: Fr) -> Result<ProofFile, ProverError> {
    let folder = open(dir)?;
    // Catch a bad input with a clear error before the slower key loading.
    let qin = check_input(&folder, &read_input(input)?)?;
    Prover::with_folder(dir, folder)?.prove_quantized(&qin, salt)
}

/// Quantizes an input and runs the reference evaluator on it (range and shape errors).
fn check_input(folder: &Folder, data: &[Vec<f64>]) -> Result<Vec<Vec<i64>>, ProverError> {
    let qin = folder.q.quantize_input(data)?;
    folder.q.eval(&qin)?;
    Ok(qin)
}

/// A model folder with its proving key and SRS loaded: proves any number of inputs without
/// reading the keys again (the service keeps one per model in memory).
pub struct Prover {
    folder: Folder,
    keys_info: KeysInfo,
    params: ParamsKZG<Bn256>,
    pk: ProvingKey<G1Affine>,
    model_id: String,
    pk_bytes: usize,
}

impl Prover {
    /// Loads the folder, its keys and SRS, checking each against the others.
    pub fn load(dir: &Path) -> Result<Self, ProverError> {
        Self::with_folder(dir, open(dir)?)
    }

    fn with_folder(dir: &Path, folder: Folder) -> Result<Self, ProverError> {
        require_current_layout(dir, &folder.settings)?;
        let keys_path = in_dir(dir, files::KEYS);
        if !keys_path.exists() {
            return Err(ProverError::Folder(format!(
                "no keys in {}: run `zkinfer setup` first",
                dir.display()
            )));
        }
        let keys_info: KeysInfo = read_json(&keys_path)?;
        if keys_info.layout_version != LAYOUT_VERSION {
            return Err(ProverError::Folder(format!(
                "the keys were made by a zkinfer that lays circuits out differently (layout {}, \
                 this one {LAYOUT_VERSION}): rerun `zkinfer setup` (a new model id)",
                keys_info.layout_version
            )));
        }
        if keys_info.settings_sha256 != folder.settings_sha256 {
            return Err(ProverError::Folder(
                "the keys were made for another compilation of this folder: rerun `zkinfer setup`"
                    .into(),
            ));
        }
        let plan = &folder.settings.plan;
        let t = Instant::now();
        let params = srs::load_trusted(&in_dir(dir, files::SRS))?;
        if halo2_base::halo2_proofs::poly::commitment::Params::k(&params) != plan.k {
            return Err(ProverError::Folder(
                "the SRS in the folder does not match the circuit's k".into(),
            ));
        }
        let pk_file = read_bytes(&in_dir(dir, files::PK))?;
        let pk = keys::pk_from_bytes(&pk_file, plan)?;
        let vk_bytes = vk_to_bytes(pk.get_vk());
        if sha256_hex(&vk_bytes) != keys_info.vk_sha256 {
            return Err(ProverError::Folder(
                "pk.bin does not match keys.json: rerun `zkinfer setup`".into(),
            ));
        }
        // The identity of what proofs are made with: these keys and these SRS points.
        let model_id =
            identity::model_id(&folder.settings, &vk_bytes, &KzgVerifierKey::of(&params))?;
        info!("proving key loaded in {:.2?}", t.elapsed());
        Ok(Self {
            folder,
            keys_info,
            params,
            pk,
            model_id,
            pk_bytes: pk_file.len(),
        })
    }

    /// The loaded folder's settings.
    pub fn settings(&self) -> &Settings {
        &self.folder.settings
    }

    /// The loaded folder's quantized graph.
    pub fn graph(&self) -> &QGraph {
        &self.folder.q
    }

    /// The model id of the loaded folder.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Size of the proving key file, a measure of what this holds in memory.
    pub fn pk_bytes(&self) -> usize {
        self.pk_bytes
    }

    /// Proves one input (EZKL's `input_data`: one flat list per model input).
    pub fn prove(&self, data: &[Vec<f64>]) -> Result<ProofFile, ProverError> {
        self.prove_salted(data, Fr::zero())
    }

    /// [`Self::prove`], hashed inputs committed with `salt` (a client's secret that keeps a
    /// low-entropy input from being guessed from its commitment).
    pub fn prove_salted(&self, data: &[Vec<f64>], salt: Fr) -> Result<ProofFile, ProverError> {
        let qin = check_input(&self.folder, data)?;
        self.prove_quantized(&qin, salt)
    }

    pub(crate) fn prove_quantized(
        &self,
        qin: &[Vec<i64>],
        salt: Fr,
    ) -> Result<ProofFile, ProverError> {
        let folder = &self.folder;
        let plan = &folder.settings.plan;
        let t = Instant::now();
        let (proof, instances) = proving::prove(
            &self.params,
            &self.pk,
            plan,
            self.keys_info.break_points.clone(),
            &folder.q,
            qin,
            salt,
        )?;
        info!(
            bytes = proof.len(),
            "proof generated in {:.2?}",
            t.elapsed()
        );
        let internal = || ProverError::Folder("internal: instances out of range".into());
        let outputs = match plan.output_visibility {
            // The circuit's outputs are the reference evaluator's (the layout compared them).
            Visibility::Hashed => {
                let q = &folder.q;
                let fixed = q.outputs_of(&q.eval(qin)?);
                fixed
                    .iter()
                    .map(|o| o.iter().map(|&v| q.dequantize(v)).collect())
                    .collect()
            }
            _ => folder
                .settings
                .outputs_from_instances(&instances)
                .ok_or_else(internal)?,
        };
        let inputs = match plan.visibility {
            Visibility::Public => Some(
                folder
                    .settings
                    .inputs_from_instances(&instances)
                    .ok_or_else(internal)?,
            ),
            Visibility::Private | Visibility::Hashed => None,
        };
        Ok(ProofFile {
            format_version: FORMAT_VERSION,
            model_id: self.model_id.clone(),
            input_visibility: plan.visibility,
            output_visibility: plan.output_visibility,
            inputs,
            outputs,
            output_shapes: folder.settings.output_shapes.clone(),
            instances: instances.iter().map(to_hex).collect(),
            proof: format!("0x{}", hex::encode(&proof)),
            segments: Vec::new(),
        })
    }
}

/// `bytes` in MiB below 1 GiB, else in GiB, for messages.
pub fn gib(bytes: u64) -> String {
    if bytes < 1 << 30 {
        format!("{} MiB", bytes.div_ceil(1 << 20))
    } else {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    }
}
