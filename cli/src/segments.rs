//! The subcommands on a segmented model folder (`compile --segments N`; `setup`, `prove`,
//! `verify` and `inspect` of a folder holding `segments.json`).

use std::path::Path;

use anyhow::{Context, Result};
use zkinfer_circuits::artifacts::segments::SegmentsFile;
use zkinfer_circuits::artifacts::write_json;
use zkinfer_prover::pipeline::gib;
use zkinfer_prover::segments;

use crate::step;

/// Prints what `compile` made of a segmented model; returns the ONNX file's sha256.
pub fn describe(model: &Path, out: &Path, file: &SegmentsFile) -> Result<String> {
    println!(
        "compiled {} → {}: {} segments",
        model.display(),
        out.display(),
        file.segments.len()
    );
    for s in 0..file.segments.len() {
        let settings: zkinfer_circuits::artifacts::Settings =
            zkinfer_circuits::artifacts::read_json(
                &zkinfer_circuits::artifacts::segments::segment_dir(out, s).join("settings.json"),
            )?;
        let p = &settings.plan;
        println!(
            "  segment {s}: k={}, {}, {} public instances, {}-byte proofs, proving needs ≈ {}",
            p.k,
            p.columns(),
            p.num_instances,
            p.proof_bytes,
            gib(p.prove_memory_bytes)
        );
    }
    Ok(file.model_sha256.clone())
}

pub fn setup(dir: &Path, srs: Option<&Path>) -> Result<()> {
    let r = step("setup", || Ok(segments::setup_segments(dir, srs)?))?;
    for (s, seg) in r.segments.iter().enumerate() {
        println!(
            "  segment {s}: k={}, keygen {:.1}s, proving key {} bytes, model id {}",
            seg.k, seg.keygen_seconds, seg.pk_bytes, seg.model_id
        );
    }
    println!("model id {} ({} segments)", r.model_id, r.segments.len());
    if let Some(first) = r.segments.first() {
        println!("SRS      {}", first.srs);
    }
    Ok(())
}

pub fn prove(
    dir: &Path,
    input: &Path,
    out: &Path,
    salt: Option<zkinfer_circuits::Fr>,
    jobs: usize,
) -> Result<()> {
    let jobs = segments::Jobs {
        at_once: jobs.max(1),
        memory: zkinfer_prover::options::machine_memory(),
    };
    let proof = step("prove", || {
        Ok(segments::prove_segments(dir, input, salt, jobs)?)
    })?;
    write_json(out, &proof).with_context(|| format!("writing {}", out.display()))?;
    let bytes: usize = proof.segments.iter().map(|p| (p.proof.len() - 2) / 2).sum();
    println!(
        "proof written to {} ({} segment proofs, {bytes} proof bytes, outputs {}; proven on the {})",
        out.display(),
        proof.segments.len(),
        crate::brief(&proof.outputs),
        zkinfer_prover::BACKEND
    );
    Ok(())
}
