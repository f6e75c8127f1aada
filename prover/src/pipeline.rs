//! The folder-level steps behind `zkinfer compile | setup | run | prove | inspect`.
//!
//! A model folder holds `settings.json`, `qgraph.json` and `calibration.json` after compile,
//! and keys plus SRS after setup. Every file is checked against the ones it depends on
//! (content hashes), so a stale or foreign file is an error, not a bad proof.

use std::path::Path;
use std::time::Instant;

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, G1Affine};
use halo2_base::halo2_proofs::plonk::ProvingKey;
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use zkinfer_circuits::artifacts::{
    files, in_dir, read_bytes, read_json, read_json_hashed, vk_to_bytes, write_bytes, write_json,
    KeysInfo, KzgVerifierKey, ProofFile, Settings, SrsSource, Versioned, FORMAT_VERSION,
    LAYOUT_VERSION,
};
use zkinfer_circuits::commit::commitment_hex;
use zkinfer_circuits::field::to_hex;
use zkinfer_circuits::identity;
use zkinfer_circuits::{plan_circuit, Fr, Io, PlanLimits, Visibility};
use zkinfer_model::{
    float_outputs, load_onnx_bytes_with, measured_error, parse_calibration_json, parse_input_json,
    quantize_samples, sha256_hex, Graph, ModelError, QGraph, QuantizeOptions, Weights,
};

use crate::error::ProverError;
pub use crate::inspect::inspect;
use crate::{keys, proving, srs};

/// Options of `compile`.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// Quantization knobs.
    pub quantize: QuantizeOptions,
    /// What the public instances hold of inputs and outputs.
    pub io: Io,
    /// Circuit size limits.
    pub limits: PlanLimits,
    /// `--target resources`: the fewest scale bits whose measured error on the calibration
    /// samples is at most this (relative); `None` keeps the given scales (`--target accuracy`).
    pub resources: Option<f64>,
    /// Whether the weights are constants of the circuit or committed witnesses.
    pub weights: Weights,
    /// `--like DIR`: a sibling model's folder (same architecture, other weights) whose
    /// circuit to reproduce exactly: its quantization, widths, visibilities and plan, so
    /// both get one verifying key. Overrides `quantize`, `io`, `weights` and `resources`.
    pub like: Option<std::path::PathBuf>,
}

/// Activation scales `--target resources` tries, fewest bits first.
pub const RESOURCE_SCALES: [u32; 6] = [6, 8, 10, 12, 14, 16];

/// Quantizes for the target: the given scales, or under `--target resources` the smallest
/// scale (up to the given one) whose error on the calibration samples is within the bound.
/// Returns the graph and its measured error.
fn quantize_for_target(
    graph: &Graph,
    samples: &[Vec<Vec<f64>>],
    opts: &CompileOptions,
) -> Result<(QGraph, f64), ProverError> {
    let float = float_outputs(graph, samples)?;
    let quantize = |o: &QuantizeOptions| -> Result<(QGraph, f64), ModelError> {
        let q = quantize_samples(graph, samples, o)?;
        let err = measured_error(&q, samples, &float)?;
        Ok((q, err))
    };
    let Some(bound) = opts.resources else {
        return Ok(quantize(&opts.quantize)?);
    };
    let mut fallback: Result<(QGraph, f64), ModelError> =
        Err(ModelError::Input("no scale to try".into()));
    for scale in RESOURCE_SCALES
        .into_iter()
        .filter(|&s| s <= opts.quantize.scale)
    {
        let o = QuantizeOptions {
            scale,
            param_scale: opts.quantize.param_scale.min(scale),
            ..opts.quantize.clone()
        };
        match quantize(&o) {
            Ok((q, err)) if err <= bound => {
                info!(
                    scale,
                    error = err,
                    bound,
                    "--target resources: scale chosen"
                );
                return Ok((q, err));
            }
            Ok((q, err)) => {
                info!(
                    scale,
                    error = err,
                    bound,
                    "--target resources: error above the bound"
                );
                fallback = Ok((q, err));
            }
            Err(e) => {
                info!(scale, "--target resources: {e}");
                if fallback.is_err() {
                    fallback = Err(e);
                }
            }
        }
    }
    let (q, err) = fallback?;
    warn!(
        scale = q.scale,
        error = err,
        bound,
        "--target resources: no scale meets the error bound; keeping the most accurate"
    );
    Ok((q, err))
}

/// `calibration.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Calibration {
    format_version: u32,
    inputs: Vec<Vec<i64>>,
}

impl Versioned for Calibration {
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

/// A file-system error on a user-given path, reported as the model crate reports it.
fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ProverError + '_ {
    move |source| {
        ProverError::Model(ModelError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ProverError> {
    std::fs::read(path).map_err(io_err(path))
}

fn read_input(path: &Path) -> Result<Vec<Vec<f64>>, ProverError> {
    let text = String::from_utf8(read_file(path)?)
        .map_err(|_| ModelError::Input(format!("{} is not UTF-8 text", path.display())))?;
    Ok(parse_input_json(&text)?)
}

/// Imports, quantizes and sizes the circuit; writes the model folder.
pub fn compile(
    model: &Path,
    calibration: &Path,
    out: &Path,
    opts: &CompileOptions,
) -> Result<Settings, ProverError> {
    let t = Instant::now();
    let like = match &opts.like {
        Some(dir) => Some(open(dir)?.settings),
        None => None,
    };
    let opts = &match &like {
        Some(sibling) => like_options(sibling, opts),
        None => opts.clone(),
    };
    let bytes = read_file(model)?;
    let graph = load_onnx_bytes_with(&bytes, opts.weights)?;
    let text = String::from_utf8(read_file(calibration)?)
        .map_err(|_| ModelError::Input(format!("{} is not UTF-8 text", calibration.display())))?;
    let samples = parse_calibration_json(&text)?;
    let (q, expected_error) = quantize_for_target(&graph, &samples, opts)?;
    let architecture_sha256 = (opts.weights == Weights::Hashed)
        .then(|| serde_json::to_vec_pretty(&q.architecture()).map(|b| sha256_hex(&b)))
        .transpose()
        .map_err(|e| ProverError::Folder(format!("cannot encode the graph: {e}")))?;
    // The first sample lays the circuit out (shapes and break points do not depend on values).
    let qcal = q.quantize_input(&samples[0])?;
    info!(
        nodes = q.nodes.len(),
        terms = q.total_terms(),
        "imported and quantized in {:.2?}",
        t.elapsed()
    );
    if opts.io.output == Visibility::Private {
        return Err(ProverError::Folder(
            "outputs are public or hashed: a proof of outputs nobody sees proves nothing".into(),
        ));
    }
    let t = Instant::now();
    let plan = match &like {
        // One architecture lays out alike whatever its weights: the sibling's plan fits.
        Some(sibling)
            if sibling.weights == Weights::Hashed
                && sibling.architecture_sha256 == architecture_sha256 =>
        {
            sibling.plan.clone()
        }
        Some(_) => {
            return Err(ProverError::Folder(format!(
                "{} is not the architecture of the model in {}: its quantized graph differs \
                 beyond the committed weights (compile --like needs --weights hashed in the \
                 sibling and the same layers, shapes and options)",
                model.display(),
                opts.like.as_deref().unwrap_or(Path::new("")).display()
            )))
        }
        None => plan_circuit(&q, &qcal, opts.io, opts.limits)?,
    };
    info!(
        k = plan.k,
        advice_columns = plan.params.base.num_advice_per_phase[0],
        lincomb_width = plan.params.lincomb_width,
        proof_bytes = plan.proof_bytes,
        prove_memory = %gib(plan.prove_memory_bytes),
        "circuit laid out in {:.2?}",
        t.elapsed()
    );
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    // Keys of an earlier compilation would not match: remove them rather than leave traps.
    for stale in [
        files::KEYS,
        files::PK,
        files::VK,
        files::SRS,
        files::KZG_VERIFIER,
    ] {
        let _ = std::fs::remove_file(in_dir(out, stale));
    }
    let qgraph_sha256 = write_json(&in_dir(out, files::QGRAPH), &q)?;
    write_json(
        &in_dir(out, files::CALIBRATION),
        &Calibration {
            format_version: FORMAT_VERSION,
            inputs: qcal,
        },
    )?;
    let settings = Settings {
        format_version: FORMAT_VERSION,
        zkinfer_version: env!("CARGO_PKG_VERSION").to_string(),
        model_sha256: sha256_hex(&bytes),
        qgraph_sha256,
        quantize: QuantizeOptions {
            scale: q.scale,
            param_scale: q.param_scale,
            ..opts.quantize.clone()
        },
        scale: q.scale,
        expected_error: Some(expected_error),
        calibration_samples: samples.len(),
        act_bits: q.act_bits,
        input_shapes: q.input_shapes(),
        output_shapes: q.output_shapes(),
        input_slot_bits: slot_bits(&q, &q.inputs, plan.visibility)?,
        output_slot_bits: slot_bits(&q, &q.outputs, plan.output_visibility)?,
        weights: opts.weights,
        weight_bits: q.weight_bits,
        weight_commitment: zkinfer_circuits::weight_commitment(&q)?.map(|c| commitment_hex(&c)),
        architecture_sha256,
        plan,
        layout_version: LAYOUT_VERSION,
    };
    write_json(&in_dir(out, files::SETTINGS), &settings)?;
    Ok(settings)
}

/// The options that reproduce `sibling`'s circuit (see [`CompileOptions::like`]).
fn like_options(sibling: &Settings, opts: &CompileOptions) -> CompileOptions {
    CompileOptions {
        quantize: QuantizeOptions {
            act_bits: Some(sibling.act_bits),
            weight_bits: Some(sibling.weight_bits),
            ..sibling.quantize.clone()
        },
        io: sibling.plan.io(),
        limits: opts.limits,
        resources: None,
        weights: sibling.weights,
        like: opts.like.clone(),
    }
}

/// The commitment slot widths of `nodes` when `visibility` hashes them (else none).
fn slot_bits(q: &QGraph, nodes: &[usize], visibility: Visibility) -> Result<Vec<u32>, ProverError> {
    if visibility != Visibility::Hashed {
        return Ok(Vec::new());
    }
    nodes
        .iter()
        .map(|&n| Ok(zkinfer_circuits::tensor_layout(q, n)?.slot_bits))
        .collect()
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
fn require_current_layout(dir: &Path, settings: &Settings) -> Result<(), ProverError> {
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
    /// Seconds spent on key generation.
    pub keygen_seconds: f64,
    /// Proving key bytes.
    pub pk_bytes: usize,
    /// Verifying key bytes.
    pub vk_bytes: usize,
}

/// Generates (or reads from a ceremony file) the SRS, then the keys of a compiled folder.
pub fn setup(dir: &Path, srs_file: Option<&Path>) -> Result<SetupReport, ProverError> {
    let folder = open(dir)?;
    require_current_layout(dir, &folder.settings)?;
    let plan = &folder.settings.plan;
    let t = Instant::now();
    let (params, source) = match srs_file {
        Some(p) => {
            let (params, info) = srs::load_ceremony(p, plan.k)?;
            (
                params,
                SrsSource::File {
                    path: p.display().to_string(),
                    info,
                },
            )
        }
        None => (srs::generate(plan.k)?, SrsSource::LocalDev),
    };
    info!(k = plan.k, "SRS ready in {:.2?}", t.elapsed());
    let calib: Calibration = read_json(&in_dir(dir, files::CALIBRATION))?;
    let t = Instant::now();
    let (pk, break_points) = keys::generate(&params, plan, &folder.q, &calib.inputs)?;
    let keygen_seconds = t.elapsed().as_secs_f64();
    info!("keys generated in {keygen_seconds:.2}s");
    let vk_bytes = vk_to_bytes(pk.get_vk());
    let pk_bytes = keys::pk_to_bytes(&pk);
    let kzg = KzgVerifierKey::of(&params);
    let model_id = identity::model_id(&folder.settings, &vk_bytes, &kzg)?;
    write_bytes(&in_dir(dir, files::VK), &vk_bytes)?;
    write_bytes(&in_dir(dir, files::PK), &pk_bytes)?;
    srs::save_trusted(&in_dir(dir, files::SRS), &params)?;
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
    let folder = open(dir)?;
    let q = &folder.q;
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

    fn prove_quantized(&self, qin: &[Vec<i64>], salt: Fr) -> Result<ProofFile, ProverError> {
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
