//! What `compile` and `setup` leave in a model folder, and the proof file: one versioned
//! format shared by the prover (which writes) and the verifier (which reads).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use halo2_base::halo2_proofs::halo2curves::bn256::{Bn256, Fr, G1Affine, G2Affine};
use halo2_base::halo2_proofs::halo2curves::serde::SerdeObject;
use halo2_base::halo2_proofs::plonk::VerifyingKey;
use halo2_base::halo2_proofs::poly::commitment::{Params, ParamsProver};
use halo2_base::halo2_proofs::poly::kzg::commitment::ParamsKZG;
use halo2_base::halo2_proofs::SerdeFormat;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zkinfer_model::QuantizeOptions;

use crate::circuit::ModelCircuit;
use crate::plan::CircuitPlan;

/// Version of every artifact format below; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 2;

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
    /// Graph input shapes.
    pub input_shapes: Vec<Vec<usize>>,
    /// Graph output shapes.
    pub output_shapes: Vec<Vec<usize>>,
    /// Circuit shape.
    pub plan: CircuitPlan,
}

impl Versioned for Settings {
    fn format_version(&self) -> u32 {
        self.format_version
    }
}

impl Settings {
    /// The output part of the public instances, dequantized (None if an instance is not a
    /// small signed integer, or there are too few).
    pub fn outputs_from_instances(&self, instances: &[Fr]) -> Option<Vec<Vec<f64>>> {
        let mut at = self.num_input_instances();
        self.output_shapes
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

    /// Number of public instances that are model inputs.
    pub fn num_input_instances(&self) -> usize {
        match self.plan.visibility {
            crate::Visibility::Public => self
                .input_shapes
                .iter()
                .map(|s| s.iter().product::<usize>())
                .sum(),
            crate::Visibility::Private => 0,
        }
    }
}

/// Where the SRS of a setup came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SrsSource {
    /// Generated locally with fresh randomness: fine for development, not a ceremony.
    LocalDev,
    /// Loaded from a file (downsized to k).
    File {
        /// The path given.
        path: String,
        /// Its k before downsizing.
        k: u32,
    },
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
    /// Where the SRS came from.
    pub srs: SrsSource,
    /// halo2-base column break points fixed at key generation.
    pub break_points: Vec<Vec<usize>>,
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
    /// sha256 of the ONNX model proven.
    pub model_sha256: String,
    /// sha256 of the verifying key.
    pub vk_sha256: String,
    /// Whether the inputs are among the instances.
    pub input_visibility: crate::Visibility,
    /// Dequantized outputs, one flat list per graph output.
    pub outputs: Vec<Vec<f64>>,
    /// Output shapes.
    pub output_shapes: Vec<Vec<usize>>,
    /// Public instances (inputs if public, then outputs), 32-byte big-endian hex.
    pub instances: Vec<String>,
    /// The proof (SHPLONK, Keccak transcript), hex.
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

/// Writes the verifier's part of an SRS: `k`, `g[0]`, `g2`, `s·g2`.
pub fn write_kzg_verifier(path: &Path, params: &ParamsKZG<Bn256>) -> Result<(), ArtifactError> {
    let mut out = Vec::new();
    out.extend(params.k().to_le_bytes());
    let g0 = params.get_g()[0];
    g0.write_raw(&mut out).map_err(io_err(path))?;
    params.g2().write_raw(&mut out).map_err(io_err(path))?;
    params.s_g2().write_raw(&mut out).map_err(io_err(path))?;
    write_bytes(path, &out)
}

/// Reads what [`write_kzg_verifier`] wrote, checking that the points are on their curves.
pub fn read_kzg_verifier(path: &Path) -> Result<ParamsKZG<Bn256>, ArtifactError> {
    let bytes = read_bytes(path)?;
    let bad = |m: &str| ArtifactError::Invalid {
        path: path.display().to_string(),
        message: m.to_string(),
    };
    let mut r = bytes.as_slice();
    let mut k = [0u8; 4];
    r.read_exact(&mut k).map_err(|_| bad("truncated"))?;
    let k = u32::from_le_bytes(k);
    if !(1..=28).contains(&k) {
        return Err(bad("k out of range"));
    }
    let g0 = G1Affine::read_raw(&mut r).map_err(|_| bad("invalid G1 point"))?;
    let g2 = G2Affine::read_raw(&mut r).map_err(|_| bad("invalid G2 point"))?;
    let s_g2 = G2Affine::read_raw(&mut r).map_err(|_| bad("invalid G2 point"))?;
    if !r.is_empty() {
        return Err(bad("trailing bytes"));
    }
    // `from_parts` is a method; a 2-row throwaway instance provides the receiver.
    let seed = ParamsKZG::<Bn256>::setup(1, rand::rngs::OsRng);
    Ok(seed.from_parts(k, vec![g0], Some(vec![g0]), g2, s_g2))
}

/// Serializes a verifying key.
pub fn vk_to_bytes(vk: &VerifyingKey<G1Affine>) -> Vec<u8> {
    vk.to_bytes(SerdeFormat::RawBytes)
}

/// Reads a verifying key for the circuit shape in `plan` (points are checked on read).
pub fn vk_from_bytes(
    bytes: &[u8],
    plan: &CircuitPlan,
    path: &Path,
) -> Result<VerifyingKey<G1Affine>, ArtifactError> {
    VerifyingKey::<G1Affine>::from_bytes::<ModelCircuit>(
        bytes,
        SerdeFormat::RawBytes,
        plan.params.clone(),
    )
    .map_err(|e| ArtifactError::Invalid {
        path: path.display().to_string(),
        message: format!("not a verifying key for this circuit: {e}"),
    })
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
