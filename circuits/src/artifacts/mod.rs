//! What `compile` and `setup` leave in a model folder, and the proof file: one versioned
//! format shared by the prover (which writes) and the verifier (which reads).

use std::io::Write;
use std::path::{Path, PathBuf};

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine, G2Affine};
use halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;
use halo2_base::halo2_proofs::halo2curves::CurveAffine;
use halo2_base::halo2_proofs::plonk::VerifyingKey;
use halo2_base::halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::halo2_proofs::SerdeFormat;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zkinfer_model::{QuantizeOptions, Weights};

use crate::circuit::ModelCircuit;
use crate::plan::CircuitPlan;

mod instances;
pub mod segments;

/// Version of every artifact format below; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 3;

/// How this zkinfer lays a quantized graph out in cells. A proving key fits only the layout it
/// was made for (the same graph laid out otherwise proves nothing a verifier accepts), so
/// settings and keys record it, `setup` and `prove` refuse another, and the model id covers it.
/// Bump it with every change to cell placement or gates.
///
/// - 1 (and 0, folders from before it was recorded): Freivalds products read their constant
///   right factor as `x + c` with `x` free, so a prover could change any weight of such a
///   product (see [`Settings::forgeable`]).
/// - 2: every first-phase Freivalds cell is bound: a copy, or a constant of the constants
///   column (the region has no fixed column of its own).
pub const LAYOUT_VERSION: u32 = 2;

/// The first layout whose Freivalds products bind their constant factors.
pub const FREIVALDS_BOUND_FROM_LAYOUT: u32 = 2;

/// File names inside a model folder.
pub mod files {
    /// Circuit and quantization settings (JSON).
    pub const SETTINGS: &str = "settings.json";
    /// The quantized graph (JSON).
    pub const QGRAPH: &str = "qgraph.json";
    /// Quantized calibration input, used to synthesize the circuit at key generation.
    pub const CALIBRATION: &str = "calibration.json";
    /// Key metadata written by setup (JSON).
    pub const KEYS: &str = "keys.json";
    /// Proving key.
    pub const PK: &str = "pk.bin";
    /// Verifying key.
    pub const VK: &str = "vk.bin";
    /// The SRS downsized to the circuit's k (prover side).
    pub const SRS: &str = "srs.bin";
    /// The few SRS points a verifier needs.
    pub const KZG_VERIFIER: &str = "kzg-verifier.bin";
}

/// Errors reading or writing artifacts.
#[derive(Debug, Error)]
pub enum ArtifactError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file exists but is not what it should be.
    #[error("{path}: {message}")]
    Invalid {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads a whole file.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ArtifactError> {
    std::fs::read(path).map_err(io_err(path))
}

/// Writes a whole file, creating parent folders.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ArtifactError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::write(path, bytes).map_err(io_err(path))
}

/// Reads and parses a JSON artifact, checking its format version.
pub fn read_json<T: for<'de> Deserialize<'de> + Versioned>(
    path: &Path,
) -> Result<T, ArtifactError> {
    read_json_hashed(path).map(|(v, _)| v)
}

/// [`read_json`], also returning the sha256 of the bytes read (one read of the file).
pub fn read_json_hashed<T: for<'de> Deserialize<'de> + Versioned>(
    path: &Path,
) -> Result<(T, String), ArtifactError> {
    let bytes = read_bytes(path)?;
    let v: T = serde_json::from_slice(&bytes).map_err(|e| ArtifactError::Invalid {
        path: path.display().to_string(),
        message: format!("not a valid file: {e}"),
    })?;
    if v.format_version() != FORMAT_VERSION {
        return Err(ArtifactError::Invalid {
            path: path.display().to_string(),
            message: format!(
                "format version {} (this zkinfer reads {FORMAT_VERSION})",
                v.format_version()
            ),
        });
    }
    Ok((v, zkinfer_model::sha256_hex(&bytes)))
}

/// Writes a JSON artifact (pretty-printed); returns its sha256.
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<String, ArtifactError> {
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| ArtifactError::Invalid {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    write_bytes(path, &bytes)?;
    Ok(zkinfer_model::sha256_hex(&bytes))
}

/// Artifacts that carry a format version.
pub trait Versioned {
    /// The version the file says it has.
    fn format_version(&self) -> u32;
}

/// `settings.json`: everything about a compiled model except its weights and keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// zkinfer version that compiled it.
    pub zkinfer_version: String,
    /// sha256 of the ONNX file.
    pub model_sha256: String,
    /// sha256 of `qgraph.json`.
    pub qgraph_sha256: String,
    /// Quantization options used.
    pub quantize: QuantizeOptions,
    /// Activation scale exponent (outputs are `integer / 2^scale`).
    pub scale: u32,
    /// Signed bits of range-checked values.
    pub act_bits: u32,
    /// The measured error on the calibration samples: the largest
    /// `max |fixed − float| / max |float|` over them (`zkinfer_model::measured_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_error: Option<f64>,
    /// How many calibration samples set the ranges and measured the error.
    #[serde(default)]
    pub calibration_samples: usize,
    /// Graph input shapes.
    pub input_shapes: Vec<Vec<usize>>,
    /// Graph output shapes.
    pub output_shapes: Vec<Vec<usize>>,
    /// Slot width (bits) of each input's commitment, when inputs are hashed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_slot_bits: Vec<u32>,
    /// Slot width (bits) of each output's commitment, when outputs are hashed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_slot_bits: Vec<u32>,
    /// `hashed` when the weights are private witnesses under one public commitment, the last
    /// public instance (absent: `fixed`, constants of the circuit).
    #[serde(default, skip_serializing_if = "is_fixed")]
    pub weights: Weights,
    /// Signed bits of each committed weight (its range check and commitment slot).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_bits: u32,
    /// The weight commitment a proof of this model must carry (64 lowercase hex digits,
    /// big-endian), when the weights are hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_commitment: Option<String>,
    /// sha256 of `qgraph.json` with every committed weight set to 0: equal for two trainings
    /// of one architecture (what `compile --like` matches), when the weights are hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture_sha256: Option<String>,
    /// Circuit shape.
    pub plan: CircuitPlan,
    /// The [`LAYOUT_VERSION`] of the zkinfer that compiled it (0: before it was recorded,
    /// i.e. layout 1 or earlier).
    #[serde(default)]
    pub layout_version: u32,
}

fn is_fixed(w: &Weights) -> bool {
    *w == Weights::Fixed
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Versioned for Settings {
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

impl Settings {
    /// Why proofs of this folder prove nothing, when its layout is known to be forgeable: a
    /// circuit with Freivalds checks laid out before [`FREIVALDS_BOUND_FROM_LAYOUT`], whose
    /// constant factors anyone holding the proving key could replace. Read from
    /// `settings.json` alone, before the verifying key is parsed.
    pub fn forgeable(&self) -> Option<String> {
        (self.layout_version < FREIVALDS_BOUND_FROM_LAYOUT && self.plan.params.freivalds).then(
            || {
                format!(
                "this folder was laid out by a zkinfer of circuit layout {} with Freivalds checks, \
                 which do not bind the model's weights: anyone holding its proving key can make \
                 proofs of other weights that verify, so no proof of this model id can be \
                 trusted; recompile and rerun setup (a new model id), and redeploy any \
                 registry that holds the old one",
                self.layout_version.max(1)
            )
            },
        )
    }

    /// The output part of the public instances, dequantized; `None` when outputs are hashed
    /// (or an instance is not a small signed integer, or there are too few).
    pub fn outputs_from_instances(&self, instances: &[Fr]) -> Option<Vec<Vec<f64>>> {
        let model = self
            .output_shapes
            .len()
            .checked_sub(self.plan.links.outputs)?;
        match self.plan.output_visibility {
            crate::Visibility::Hashed => None,
            _ => self.dequantize_instances(
                instances,
                self.num_input_instances(),
                &self.output_shapes[..model],
            ),
        }
    }

    /// The input part of the public instances, dequantized; `None` when inputs are private
    /// or hashed (or an instance is not a small signed integer).
    pub fn inputs_from_instances(&self, instances: &[Fr]) -> Option<Vec<Vec<f64>>> {
        let model = self
            .input_shapes
            .len()
            .checked_sub(self.plan.links.inputs)?;
        match self.plan.visibility {
            crate::Visibility::Public => {
                self.dequantize_instances(instances, 0, &self.input_shapes[..model])
            }
            crate::Visibility::Private | crate::Visibility::Hashed => None,
        }
    }

    fn dequantize_instances(
        &self,
        instances: &[Fr],
        mut at: usize,
        shapes: &[Vec<usize>],
    ) -> Option<Vec<Vec<f64>>> {
        shapes
            .iter()
            .map(|shape| {
                let n: usize = shape.iter().product();
                let part = instances.get(at..at + n)?;
                at += n;
                part.iter()
                    .map(|f| {
                        crate::field::signed(f).map(|v| zkinfer_model::dequantize(v, self.scale))
                    })
                    .collect()
            })
            .collect()
    }

    /// Float inputs → the fixed-point integers the circuit takes, with the checks of
    /// `QGraph::quantize_input` (count, shape, NaN, range).
    pub fn quantize_input(
        &self,
        data: &[Vec<f64>],
    ) -> Result<Vec<Vec<i64>>, zkinfer_model::ModelError> {
        zkinfer_model::quantize_input(data, &self.input_shapes, self.scale, self.act_bits)
    }
}

/// Where the SRS of a setup came from, as setup recorded it (a label: a verifier checks the
/// points themselves with `verify --srs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SrsSource {
    /// Generated locally with fresh randomness: whoever ran setup could forge proofs.
    LocalDev,
    /// Read from a ceremony file (downsized to k).
    File {
        /// The path given.
        path: String,
        /// What the file is: hash, format, largest k, the public ceremony it was recognised as.
        #[serde(flatten)]
        info: crate::srs_file::SrsFileInfo,
    },
}

impl std::fmt::Display for SrsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SrsSource::LocalDev => write!(
                f,
                "development SRS made locally: whoever ran setup can forge proofs"
            ),
            SrsSource::File { path, info } => {
                write!(f, "{path} (sha256 {}", info.sha256)?;
                match &info.recognised {
                    Some(name) => write!(f, ", recognised as {name})"),
                    None => write!(f, ", not a ceremony file zkinfer knows)"),
                }
            }
        }
    }
}

/// What is known of a folder's SRS without the ceremony file: the public ceremony its s·g2
/// belongs to, when zkinfer knows that value; otherwise what setup recorded, unchecked.
pub fn srs_note(recorded: Option<&SrsSource>, kzg: &KzgVerifierKey) -> String {
    if let Some(name) = crate::srs_file::recognise_s_g2(&kzg.s_g2) {
        return format!("{name} (recognised by its s·g2)");
    }
    match recorded {
        Some(SrsSource::LocalDev) => SrsSource::LocalDev.to_string(),
        Some(file) => format!(
            "setup recorded {file}; unchecked: `zkinfer verify --srs FILE` checks the points"
        ),
        None => "unknown (no keys.json); unchecked: `zkinfer verify --srs FILE` checks the points"
            .into(),
    }
}

/// `keys.json`: what setup produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeysInfo {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// sha256 of the `settings.json` the keys were made for.
    pub settings_sha256: String,
    /// sha256 of `vk.bin`.
    pub vk_sha256: String,
    /// The model id of the folder (see [`crate::identity`]).
    pub model_id: String,
    /// Where the SRS came from.
    pub srs: SrsSource,
    /// halo2-base column break points fixed at key generation.
    pub break_points: Vec<Vec<usize>>,
    /// The [`LAYOUT_VERSION`] of the zkinfer that made the keys (0: before it was recorded).
    #[serde(default)]
    pub layout_version: u32,
}

impl Versioned for KeysInfo {
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

/// `PROOF.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProofFile {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The model id the proof was made for (a verifier recomputes it from the folder).
    pub model_id: String,
    /// Whether the inputs are among the instances (public), absent (private) or committed
    /// to (hashed).
    pub input_visibility: crate::Visibility,
    /// Whether the outputs are among the instances (public) or committed to (hashed); the
    /// `outputs` below are their values either way.
    #[serde(default)]
    pub output_visibility: crate::Visibility,
    /// Dequantized inputs, one flat list per graph input (absent when private or hashed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<Vec<f64>>>,
    /// Dequantized outputs, one flat list per graph output.
    pub outputs: Vec<Vec<f64>>,
    /// Output shapes.
    pub output_shapes: Vec<Vec<usize>>,
    /// Public instances, 32-byte big-endian hex: per input its values (public) or commitment
    /// (hashed), then per output its values or commitment.
    pub instances: Vec<String>,
    /// The proof (SHPLONK, Keccak transcript), hex; empty (`0x`) for a segmented model,
    /// whose proofs are in `segments`.
    pub proof: String,
    /// A segmented model's proofs, one per segment in order (absent: one circuit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentProof>,
}

/// One segment's proof in a [`ProofFile`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentProof {
    /// The segment's own model id.
    pub model_id: String,
    /// Its public instances (hex, as in the proof file): its model inputs, links in, model
    /// outputs, links out.
    pub instances: Vec<String>,
    /// Its proof, hex.
    pub proof: String,
}

impl Versioned for ProofFile {
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

/// Path of a file inside a model folder.
pub fn in_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// `kzg-verifier.bin`: the SRS points a verifier needs (`k`, then `g`, `g2`, `s·g2` in halo2's
/// raw format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KzgVerifierKey {
    /// The circuit's k.
    pub k: u32,
    /// The first G1 point (the generator).
    pub g: G1Affine,
    /// The G2 generator.
    pub g2: G2Affine,
    /// `s·g2`.
    pub s_g2: G2Affine,
}

impl KzgVerifierKey {
    /// The verifier's part of `params`.
    pub fn of(params: &ParamsKZG<Bn256>) -> Self {
        Self {
            k: params.k(),
            g: params.get_g()[0],
            g2: params.g2(),
            s_g2: params.s_g2(),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.k.to_le_bytes().to_vec();
        out.extend(self.g.to_raw_bytes());
        out.extend(self.g2.to_raw_bytes());
        out.extend(self.s_g2.to_raw_bytes());
        out
    }

    /// Parses the file's bytes: every point canonical, on its curve, in the prime-order
    /// subgroup, and `g`, `g2` the standard generators.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ArtifactError> {
        let bad = |m: &str| ArtifactError::Invalid {
            path: path.display().to_string(),
            message: m.to_string(),
        };
        use crate::curve::{g1_from_raw, g2_from_raw, G1_RAW, G2_RAW};
        if bytes.len() != 4 + G1_RAW + 2 * G2_RAW {
            return Err(bad("not a kzg-verifier file (wrong length)"));
        }
        let k = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
        if !(1..=crate::srs_file::MAX_K).contains(&k) {
            return Err(bad("k out of range"));
        }
        let (g, rest) = bytes[4..].split_at(G1_RAW);
        let (g2, s_g2) = rest.split_at(G2_RAW);
        let g = g1_from_raw(g).ok_or_else(|| bad("g is not a point of G1"))?;
        let g2 = g2_from_raw(g2).ok_or_else(|| bad("g2 is not a point of G2's subgroup"))?;
        let s_g2 = g2_from_raw(s_g2).ok_or_else(|| bad("s·g2 is not a point of G2's subgroup"))?;
        if !crate::curve::standard_generators(&g, &g2) {
            return Err(bad("g and g2 are not the standard generators"));
        }
        if crate::curve::trivial_secret(&g2, &s_g2) {
            return Err(bad(
                "s·g2 is the identity or ±g2: its secret is known, so anyone can forge proofs",
            ));
        }
        Ok(Self { k, g, g2, s_g2 })
    }

    /// Reads and checks a `kzg-verifier.bin`.
    pub fn read(path: &Path) -> Result<Self, ArtifactError> {
        Self::from_bytes(&read_bytes(path)?, path)
    }

    /// Writes a `kzg-verifier.bin`.
    pub fn write(&self, path: &Path) -> Result<(), ArtifactError> {
        write_bytes(path, &self.to_bytes())
    }

    /// Verifier parameters holding just these points.
    pub fn params(&self) -> ParamsKZG<Bn256> {
        // `from_parts` is a method; a 2-row throwaway instance provides the receiver.
        let seed = ParamsKZG::<Bn256>::setup(1, rand::rngs::OsRng);
        seed.from_parts(self.k, vec![self.g], Some(vec![self.g]), self.g2, self.s_g2)
    }
}

/// Serializes a verifying key.
pub fn vk_to_bytes(vk: &VerifyingKey<G1Affine>) -> Vec<u8> {
    vk.to_bytes(SerdeFormat::RawBytes)
}

/// Reads a verifying key for the circuit shape in `plan`: every commitment must be a point of
/// the curve (halo2's raw reader does not check) and the encoding canonical (the bytes are
/// exactly what the key serializes to, so the model id names one key).
pub fn vk_from_bytes(
    bytes: &[u8],
    plan: &CircuitPlan,
    path: &Path,
) -> Result<VerifyingKey<G1Affine>, ArtifactError> {
    let bad = |message: String| ArtifactError::Invalid {
        path: path.display().to_string(),
        message,
    };
    let vk = VerifyingKey::<G1Affine>::from_bytes::<ModelCircuit>(
        bytes,
        SerdeFormat::RawBytes,
        plan.params.clone(),
    )
    .map_err(|e| bad(format!("not a verifying key for this circuit: {e}")))?;
    // halo2's reader takes k and the number of fixed commitments from the file: a key of
    // another layout (one more or fewer fixed column) would otherwise be read against this
    // constraint system with its selectors shifted, or make the verifier index past its end.
    let fixed = vk.cs().num_fixed_columns();
    if vk.get_domain().k() != plan.k || vk.fixed_commitments().len() != fixed {
        return Err(bad(format!(
            "a verifying key with k={} and {} fixed commitments, this circuit has k={} and {fixed}",
            vk.get_domain().k(),
            vk.fixed_commitments().len(),
            plan.k
        )));
    }
    let points = vk
        .fixed_commitments()
        .iter()
        .chain(vk.permutation().commitments());
    for (i, p) in points.enumerate() {
        if !bool::from(p.is_on_curve()) {
            return Err(bad(format!("commitment {i} is not a point of the curve")));
        }
    }
    if vk_to_bytes(&vk) != bytes {
        return Err(bad(
            "not the canonical encoding of a verifying key for this circuit".into(),
        ));
    }
    Ok(vk)
}

/// Writes any byte sink to a file.
pub fn write_with(
    path: &Path,
    f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
) -> Result<Vec<u8>, ArtifactError> {
    let mut buf = Vec::new();
    f(&mut buf).map_err(io_err(path))?;
    let mut file = std::fs::File::create(path).map_err(io_err(path))?;
    file.write_all(&buf).map_err(io_err(path))?;
    Ok(buf)
}
