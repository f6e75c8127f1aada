//! `compile`: import, quantize (for the accuracy or resources target), lay out and size the
//! circuit, and write the model folder; with `--like`, a sibling's circuit reproduced exactly.

use std::path::Path;
use std::time::Instant;

use tracing::{info, warn};
use zkinfer_circuits::artifacts::{
    files, in_dir, write_json, Settings, FORMAT_VERSION, LAYOUT_VERSION,
};
use zkinfer_circuits::commit::commitment_hex;
use zkinfer_circuits::cost::{constraint_system, verifier_code_bytes};
use zkinfer_circuits::{plan_circuit, CircuitError, CircuitPlan, Io, PlanLimits, Visibility};
use zkinfer_model::{
    float_outputs, load_onnx_bytes_with, measured_error, parse_calibration_json, quantize_samples,
    sha256_hex, Graph, ModelError, QGraph, QuantizeOptions, Weights,
};

use crate::error::ProverError;
use crate::pipeline::{gib, io_err, open_current, read_file, Calibration};

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
    /// The most segments a model too large for one circuit may be cut into (`None`: no
    /// limit); a cut that needs more is refused as too large before any segment is planned.
    pub max_segments: Option<usize>,
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

/// A model imported and quantized for compilation, before any circuit is planned.
pub(crate) struct Prepared {
    /// The ONNX file's bytes.
    pub(crate) bytes: Vec<u8>,
    /// The quantized graph.
    pub(crate) q: QGraph,
    /// The first calibration sample, quantized: it lays the circuit out.
    pub(crate) qcal: Vec<Vec<i64>>,
    /// The measured error on the calibration samples.
    pub(crate) expected_error: f64,
    /// How many calibration samples there were.
    pub(crate) samples: usize,
    /// With hashed weights, the architecture's sha256.
    pub(crate) architecture_sha256: Option<String>,
    /// The sibling's settings, with `--like`.
    pub(crate) like: Option<Settings>,
    /// The options, a sibling's where `--like` gives one.
    pub(crate) opts: CompileOptions,
}

/// Imports and quantizes (for the accuracy or resources target).
pub(crate) fn prepare(
    model: &Path,
    calibration: &Path,
    opts: &CompileOptions,
) -> Result<Prepared, ProverError> {
    let t = Instant::now();
    let like = match &opts.like {
        Some(dir) => {
            // Its plan is reused: it must be of the circuit this zkinfer lays out.
            Some(open_current(dir)?.settings)
        }
        None => None,
    };
    let opts = match &like {
        Some(sibling) => like_options(sibling, opts),
        None => opts.clone(),
    };
    let bytes = read_file(model)?;
    let graph = load_onnx_bytes_with(&bytes, opts.weights)?;
    if let Some(sibling) = &like {
        if graph.input_shapes() != sibling.input_shapes
            || graph.output_shapes() != sibling.output_shapes
        {
            return Err(not_like(model, &opts));
        }
    }
    let text = String::from_utf8(read_file(calibration)?)
        .map_err(|_| ModelError::Input(format!("{} is not UTF-8 text", calibration.display())))?;
    let samples = parse_calibration_json(&text)?;
    let (q, expected_error) = quantize_for_target(&graph, &samples, &opts)?;
    if opts.weights == Weights::Hashed && q.params().is_empty() {
        return Err(ProverError::Folder(format!(
            "{} has no weights to commit to (no constant operand of MatMul, Gemm, Conv, Add, Sub \
             or Mul): compile it with fixed weights",
            model.display()
        )));
    }
    let architecture_sha256 = (opts.weights == Weights::Hashed)
        .then(|| serde_json::to_vec_pretty(&q.architecture()).map(|b| sha256_hex(&b)))
        .transpose()
        .map_err(|e| ProverError::Folder(format!("cannot encode the graph: {e}")))?;
    // The first sample lays the circuit out (shapes and break points do not depend on values).
    let qcal = q.quantize_input(&samples[0])?;
    info!(
        nodes = q.nodes.len(),
        terms = q.total_terms(),
        estimated_cells = q.total_cell_estimate(),
        "imported and quantized in {:.2?}",
        t.elapsed()
    );
    if opts.io.output == Visibility::Private {
        return Err(ProverError::Folder(
            "outputs are public or hashed: a proof of outputs nobody sees proves nothing".into(),
        ));
    }
    Ok(Prepared {
        bytes,
        q,
        qcal,
        expected_error,
        samples: samples.len(),
        architecture_sha256,
        like,
        opts,
    })
}

/// Imports, quantizes and sizes the circuit; writes the model folder.
pub fn compile(
    model: &Path,
    calibration: &Path,
    out: &Path,
    opts: &CompileOptions,
) -> Result<Settings, ProverError> {
    compile_prepared(model, out, &prepare(model, calibration, opts)?)
}

/// [`compile`] of a prepared model.
pub(crate) fn compile_prepared(
    model: &Path,
    out: &Path,
    p: &Prepared,
) -> Result<Settings, ProverError> {
    let opts = &p.opts;
    let t = Instant::now();
    let plan = match &p.like {
        // One architecture lays out alike whatever its weights: the sibling's plan fits.
        Some(sibling)
            if sibling.weights == Weights::Hashed
                && sibling.architecture_sha256 == p.architecture_sha256 =>
        {
            within_limits(&sibling.plan, &opts.limits)?;
            sibling.plan.clone()
        }
        Some(_) => return Err(not_like(model, opts)),
        None => plan_circuit(&p.q, &p.qcal, opts.io, opts.limits)?,
    };
    log_plan(&plan, t);
    crate::segments::remove_segments(out);
    write_folder(out, p, &p.q, &p.qcal, plan)
}

/// Logs a chosen circuit shape.
pub(crate) fn log_plan(plan: &CircuitPlan, t: Instant) {
    info!(
        k = plan.k,
        advice_columns = plan.params.base.num_advice_per_phase[0],
        lincomb_width = plan.params.lincomb_width,
        proof_bytes = plan.proof_bytes,
        prove_memory = %gib(plan.prove_memory_bytes),
        "circuit laid out in {:.2?}",
        t.elapsed()
    );
}

/// Writes a model folder for graph `q` (the prepared model's, or one segment of it) laid out
/// from `qcal` with `plan`.
pub(crate) fn write_folder(
    out: &Path,
    p: &Prepared,
    q: &QGraph,
    qcal: &[Vec<i64>],
    plan: CircuitPlan,
) -> Result<Settings, ProverError> {
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
    let qgraph_sha256 = write_json(&in_dir(out, files::QGRAPH), q)?;
    write_json(
        &in_dir(out, files::CALIBRATION),
        &Calibration {
            format_version: FORMAT_VERSION,
            inputs: qcal.to_vec(),
        },
    )?;
    let io = plan.io();
    let settings = Settings {
        format_version: FORMAT_VERSION,
        zkinfer_version: env!("CARGO_PKG_VERSION").to_string(),
        model_sha256: sha256_hex(&p.bytes),
        qgraph_sha256,
        quantize: QuantizeOptions {
            scale: q.scale,
            param_scale: q.param_scale,
            ..p.opts.quantize.clone()
        },
        scale: q.scale,
        expected_error: Some(p.expected_error),
        calibration_samples: p.samples,
        act_bits: q.act_bits,
        input_shapes: q.input_shapes(),
        output_shapes: q.output_shapes(),
        input_slot_bits: slot_bits(q, &q.inputs, |k| io.input_of(k, q.inputs.len()))?,
        output_slot_bits: slot_bits(q, &q.outputs, |k| io.output_of(k, q.outputs.len()))?,
        weights: p.opts.weights,
        weight_bits: q.weight_bits,
        weight_commitment: zkinfer_circuits::weight_commitment(q)?.map(|c| commitment_hex(&c)),
        architecture_sha256: p.architecture_sha256.clone(),
        plan,
        layout_version: LAYOUT_VERSION,
    };
    write_json(&in_dir(out, files::SETTINGS), &settings)?;
    Ok(settings)
}

/// `compile --like`'s refusal of a model that is not the sibling's architecture.
fn not_like(model: &Path, opts: &CompileOptions) -> ProverError {
    ProverError::NotLike(format!(
        "{} is not the architecture of the model in {}: its quantized graph differs beyond the \
         committed weights (compile --like needs a sibling compiled with --weights hashed, and \
         the same layers and shapes)",
        model.display(),
        opts.like.as_deref().unwrap_or(Path::new("")).display()
    ))
}

/// Refuses a sibling's plan that this compilation's limits would not have chosen: `--like`
/// reuses the plan as it is, and the service's ceilings (or a smaller prover machine) must
/// still hold.
fn within_limits(plan: &CircuitPlan, limits: &PlanLimits) -> Result<(), ProverError> {
    let budget = limits
        .max_proof_bytes
        .max(limits.raise_proof_bytes_to.unwrap_or(0));
    let over = if plan.k > limits.max_k {
        Some(format!(
            "2^{} rows (the limit is 2^{})",
            plan.k, limits.max_k
        ))
    } else if plan.proof_bytes > budget {
        Some(format!(
            "{}-byte proofs (the limit is {budget})",
            plan.proof_bytes
        ))
    } else {
        limits
            .max_prove_memory
            .filter(|&m| plan.prove_memory_bytes > m)
            .map(|m| {
                format!(
                    "{} to prove (the limit is {})",
                    gib(plan.prove_memory_bytes),
                    gib(m)
                )
            })
    };
    let over = over.or_else(|| {
        let bytes = verifier_code_bytes(&constraint_system(&plan.params), plan.num_instances);
        limits
            .max_verifier_bytes
            .filter(|&m| bytes > m)
            .map(|m| format!("a Solidity verifier of about {bytes} bytes (the limit is {m})"))
    });
    match over {
        Some(what) => Err(CircuitError::TooLarge(format!(
            "the sibling's circuit (compile --like) needs {what}"
        ))
        .into()),
        None => Ok(()),
    }
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
        max_segments: opts.max_segments,
    }
}

/// The commitment slot widths of `nodes` when `visibility` hashes any of them (else none).
fn slot_bits(
    q: &QGraph,
    nodes: &[usize],
    visibility: impl Fn(usize) -> Visibility,
) -> Result<Vec<u32>, ProverError> {
    if !(0..nodes.len()).any(|k| visibility(k) == Visibility::Hashed) {
        return Ok(Vec::new());
    }
    nodes
        .iter()
        .map(|&n| Ok(zkinfer_circuits::tensor_layout(q, n)?.slot_bits))
        .collect()
}
