//! The model identity: one sha256 over everything a verifier reads, so that holding 32 bytes
//! pins the settings, the verifying key and the SRS points a proof is checked with.
//!
//! The preimage is a packed big-endian encoding (Solidity's `abi.encodePacked` of the same
//! fixed-size fields gives the same bytes), documented field by field in the README:
//!
//! ```text
//! bytes19  "zkinfer model id v2"
//! uint32   format version of the folder (3)
//! uint32   circuit layout version (2)
//! bytes32  sha256 of the ONNX file          bytes32  sha256 of qgraph.json
//! uint32   scale    uint32 act_bits
//! uint8    visibility: inputs 0 public, 1 private, 2 hashed; plus 4 when outputs are hashed,
//!          plus 8 when the weights are, plus 16 for a segment (its links follow)
//! (only for a segment) uint32 linked inputs, uint32 linked outputs
//! (only when a tensor or the weights are hashed: the hash layout)
//! uint32   hash layout version (1), uint32 T (3), rate (2), full rounds (8), partial rounds (57)
//!          (the slot widths follow from act_bits and the graph's bounds, which the qgraph's
//!          or the architecture's sha256 pins)
//! (only when the weights are hashed)
//! uint32   weight_bits
//! uint32   number of inputs, then per input: uint32 rank, uint32 dims[rank]
//! uint32   number of outputs, then the same per output
//! uint32   number of public instances
//! uint32   k, lookup_bits, instance columns, fixed columns
//! uint32   phases, then advice columns per phase; uint32 phases, then lookup columns per phase
//! uint32   lincomb width          uint8  function tables (0 or 1)
//! bytes32  sha256 of vk.bin
//! uint32   k of kzg-verifier.bin  bytes64 g   bytes128 g2   bytes128 s·g2
//! ```
//!
//! With hashed weights that preimage is the **architecture's**: the ONNX file's sha256 is 32
//! zero bytes and `qgraph.json`'s is `architecture_sha256` (the graph with every weight 0), so
//! two trainings of one architecture on one SRS share it. Its sha256 is the architecture id
//! (what the shared Solidity verifier reports), and the model id is
//! `sha256(architecture id ‖ weight commitment)`, 64 bytes: one per training, and a registry
//! computes it from the verifier's id and the commitment it records.
//!
//! G1 points are `x ‖ y` and G2 points `x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0` (EIP-197), 32-byte
//! big-endian words.
//!
//! Folders of layout 1 and earlier (no `layout_version` in `settings.json`) keep their v1 id:
//! the same preimage opening with `"zkinfer model id v1"` and without the layout field. Those
//! with Freivalds checks are refused before their verifying key is read
//! ([`Settings::forgeable`]).

use std::path::Path;

use halo2_base::halo2_proofs::halo2curves::bn256::G1Affine;
use halo2_base::halo2_proofs::plonk::VerifyingKey;
use sha2::{Digest, Sha256};
use zkinfer_model::Weights;

use crate::artifacts::{
    files, in_dir, read_bytes, read_json, vk_from_bytes, ArtifactError, KzgVerifierKey, Settings,
    FORMAT_VERSION, FREIVALDS_BOUND_FROM_LAYOUT, LAYOUT_VERSION,
};
use crate::commit;
use crate::curve::{g1_evm, g2_evm};
use crate::Visibility;

/// The domain separator that opens every preimage of layout 2 on.
pub const DOMAIN: &[u8] = b"zkinfer model id v2";

/// The domain separator of folders laid out before the layout version was part of the id.
pub const DOMAIN_V1: &[u8] = b"zkinfer model id v1";

fn hex32(path: &str, what: &str, h: &str) -> Result<[u8; 32], ArtifactError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(h, &mut out).map_err(|_| ArtifactError::Invalid {
        path: path.to_string(),
        message: format!("{what} is not a 64-digit hex sha256"),
    })?;
    Ok(out)
}

fn u32_be(out: &mut Vec<u8>, v: usize) -> Result<(), ArtifactError> {
    let v = u32::try_from(v).map_err(|_| ArtifactError::Invalid {
        path: files::SETTINGS.into(),
        message: format!("{v} does not fit the model id's 32-bit fields"),
    })?;
    out.extend(v.to_be_bytes());
    Ok(())
}

fn shapes(out: &mut Vec<u8>, shapes: &[Vec<usize>]) -> Result<(), ArtifactError> {
    u32_be(out, shapes.len())?;
    for s in shapes {
        u32_be(out, s.len())?;
        for &d in s {
            u32_be(out, d)?;
        }
    }
    Ok(())
}

/// The bytes the model id hashes (see the module documentation).
pub fn preimage(
    settings: &Settings,
    vk_bytes: &[u8],
    kzg: &KzgVerifierKey,
) -> Result<Vec<u8>, ArtifactError> {
    let v1 = settings.layout_version < FREIVALDS_BOUND_FROM_LAYOUT;
    let mut out = if v1 { DOMAIN_V1 } else { DOMAIN }.to_vec();
    out.extend(settings.format_version.to_be_bytes());
    if !v1 {
        out.extend(settings.layout_version.to_be_bytes());
    }
    let weights = settings.weights == Weights::Hashed;
    if weights {
        // The architecture's preimage: nothing that depends on the weights.
        out.extend([0u8; 32]);
        let arch = settings.architecture_sha256.as_deref().unwrap_or_default();
        out.extend(hex32(files::SETTINGS, "architecture_sha256", arch)?);
    } else {
        out.extend(hex32(
            files::SETTINGS,
            "model_sha256",
            &settings.model_sha256,
        )?);
        out.extend(hex32(
            files::SETTINGS,
            "qgraph_sha256",
            &settings.qgraph_sha256,
        )?);
    }
    out.extend(settings.scale.to_be_bytes());
    out.extend(settings.act_bits.to_be_bytes());
    let plan = &settings.plan;
    let io = plan.io();
    let input = io.input.code();
    let segment = !io.links.is_empty();
    out.push(
        input
            | ((io.output == Visibility::Hashed) as u8 * 4)
            | ((weights as u8) * 8)
            | ((segment as u8) * 16),
    );
    if segment {
        u32_be(&mut out, io.links.inputs)?;
        u32_be(&mut out, io.links.outputs)?;
    }
    if io.hashes() || weights {
        for v in [
            commit::HASH_LAYOUT_VERSION as usize,
            commit::T,
            commit::RATE,
            commit::R_F,
            commit::R_P,
        ] {
            u32_be(&mut out, v)?;
        }
    }
    if weights {
        u32_be(&mut out, settings.weight_bits as usize)?;
    }
    shapes(&mut out, &settings.input_shapes)?;
    shapes(&mut out, &settings.output_shapes)?;
    u32_be(&mut out, plan.num_instances)?;
    let base = &plan.params.base;
    u32_be(&mut out, base.k)?;
    u32_be(&mut out, base.lookup_bits.unwrap_or(0))?;
    u32_be(&mut out, base.num_instance_columns)?;
    u32_be(&mut out, base.num_fixed)?;
    for per_phase in [
        &base.num_advice_per_phase,
        &base.num_lookup_advice_per_phase,
    ] {
        u32_be(&mut out, per_phase.len())?;
        for &n in per_phase {
            u32_be(&mut out, n)?;
        }
    }
    u32_be(&mut out, plan.params.lincomb_width)?;
    // One byte of region flags: function tables (bit 0), Freivalds checks (bit 1).
    out.push(plan.params.functions as u8 | (plan.params.freivalds as u8) << 1);
    out.extend(Sha256::digest(vk_bytes));
    out.extend(kzg.k.to_be_bytes());
    out.extend(g1_evm(&kzg.g));
    out.extend(g2_evm(&kzg.g2));
    out.extend(g2_evm(&kzg.s_g2));
    Ok(out)
}

/// The model id as 64 hex digits: sha256 of [`preimage`], or with hashed weights
/// `sha256(architecture id ‖ weight commitment)`.
pub fn model_id(
    settings: &Settings,
    vk_bytes: &[u8],
    kzg: &KzgVerifierKey,
) -> Result<String, ArtifactError> {
    let digest = Sha256::digest(preimage(settings, vk_bytes, kzg)?);
    if settings.weights != Weights::Hashed {
        return Ok(hex::encode(digest));
    }
    let c = settings.weight_commitment.as_deref().unwrap_or_default();
    let mut both = digest.to_vec();
    both.extend(hex32(files::SETTINGS, "weight_commitment", c)?);
    Ok(hex::encode(Sha256::digest(both)))
}

/// With hashed weights, the architecture id: sha256 of [`preimage`], shared by every training
/// of the architecture (what its Solidity verifier reports); `None` with fixed weights.
pub fn architecture_id(
    settings: &Settings,
    vk_bytes: &[u8],
    kzg: &KzgVerifierKey,
) -> Result<Option<String>, ArtifactError> {
    if settings.weights != Weights::Hashed {
        return Ok(None);
    }
    Ok(Some(hex::encode(Sha256::digest(preimage(
        settings, vk_bytes, kzg,
    )?))))
}

/// Exactly what a verifier reads of a model folder, each file checked, and its model id.
pub struct VerifierFolder {
    /// `settings.json`.
    pub settings: Settings,
    /// `vk.bin`, parsed (every point on the curve, the encoding canonical).
    pub vk: VerifyingKey<G1Affine>,
    /// `kzg-verifier.bin` (every point checked, standard generators).
    pub kzg: KzgVerifierKey,
    /// The model id of these three.
    pub model_id: String,
    /// With hashed weights, the architecture id (see [`architecture_id`]).
    pub architecture_id: Option<String>,
}

impl VerifierFolder {
    /// Reads and checks `settings.json`, `vk.bin` and `kzg-verifier.bin` of `dir`.
    pub fn open(dir: &Path) -> Result<Self, ArtifactError> {
        let settings_path = in_dir(dir, files::SETTINGS);
        if !settings_path.exists() && in_dir(dir, crate::artifacts::segments::SEGMENTS).exists() {
            return Err(ArtifactError::Invalid {
                path: dir.display().to_string(),
                message: "a model in segments: this command works on one segment's folder \
                          (segment-<i>)"
                    .into(),
            });
        }
        let settings: Settings = read_json(&settings_path)?;
        let refuse = |message: String| ArtifactError::Invalid {
            path: settings_path.display().to_string(),
            message,
        };
        if let Some(why) = settings.forgeable() {
            return Err(refuse(why));
        }
        if settings.layout_version > LAYOUT_VERSION {
            return Err(refuse(format!(
                "circuit layout {} (this zkinfer knows layouts up to {LAYOUT_VERSION}): verify \
                 with a newer zkinfer",
                settings.layout_version
            )));
        }
        let vk_path = in_dir(dir, files::VK);
        let vk_bytes = read_bytes(&vk_path)?;
        let vk = vk_from_bytes(&vk_bytes, &settings.plan, &vk_path)?;
        let kzg = KzgVerifierKey::read(&in_dir(dir, files::KZG_VERIFIER))?;
        if kzg.k != settings.plan.k {
            return Err(ArtifactError::Invalid {
                path: in_dir(dir, files::KZG_VERIFIER).display().to_string(),
                message: format!(
                    "SRS points for k={}, the circuit has k={}",
                    kzg.k, settings.plan.k
                ),
            });
        }
        debug_assert_eq!(settings.format_version, FORMAT_VERSION);
        let model_id = model_id(&settings, &vk_bytes, &kzg)?;
        let architecture_id = architecture_id(&settings, &vk_bytes, &kzg)?;
        Ok(Self {
            settings,
            vk,
            kzg,
            model_id,
            architecture_id,
        })
    }
}
