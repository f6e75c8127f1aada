//! `zkinfer inspect`: a compiled folder described for a person: scales, shapes and
//! visibilities, commitments, the circuit's shape and memory, and the quantized graph node by
//! node.

use std::fmt::Write as _;
use std::path::Path;

use zkinfer_circuits::artifacts::{files, in_dir, read_json, srs_note, KeysInfo, LAYOUT_VERSION};
use zkinfer_circuits::identity::VerifierFolder;
use zkinfer_model::QOp;

use crate::error::ProverError;
use crate::pipeline::{gib, open};

/// A human-readable description of a compiled folder.
pub fn inspect(dir: &Path) -> Result<String, ProverError> {
    let folder = open(dir)?;
    let s = &folder.settings;
    let p = &s.plan;
    let mut out = String::new();
    let _ = writeln!(out, "model sha256     {}", s.model_sha256);
    if let Some(a) = &s.architecture_sha256 {
        // With hashed weights the id covers the architecture and the weight commitment, not
        // the file: a fine-tune of it has another file under the same verifier.
        let _ = writeln!(out, "architecture     {a} (sha256 of the graph, weights 0)");
    }
    let _ = writeln!(
        out,
        "layout           {}{}",
        s.layout_version.max(1),
        match s.forgeable() {
            Some(_) => " (FORGEABLE: Freivalds checks that do not bind the weights; recompile)",
            None if s.layout_version != LAYOUT_VERSION => " (older than this zkinfer's: recompile)",
            None => "",
        }
    );
    let _ = writeln!(
        out,
        "scales           activations 2^{}, coefficients 2^{} (relative), range {} signed bits",
        s.scale, s.quantize.param_scale, s.act_bits
    );
    let _ = writeln!(
        out,
        "inputs           {:?} ({})",
        s.input_shapes,
        p.visibility.name()
    );
    let _ = writeln!(
        out,
        "outputs          {:?} ({})",
        s.output_shapes,
        p.output_visibility.name()
    );
    if p.io().hashes() {
        let slots: Vec<String> = (0..s.input_slot_bits.len())
            .map(|i| s.input_layout(i))
            .chain((0..s.output_slot_bits.len()).map(|i| s.output_layout(i)))
            .map(|l| format!("{} values of {} bits", l.per_limb(), l.slot_bits))
            .collect();
        let _ = writeln!(
            out,
            "commitments      Poseidon (T=3, rate 2, R_F 8, R_P 57, hash layout {}), one per hashed tensor; per field element: {}",
            zkinfer_circuits::commit::HASH_LAYOUT_VERSION,
            slots.join(", ")
        );
    }
    if let Some(c) = &s.weight_commitment {
        let count: usize = folder.q.params().iter().map(|(_, v)| v.len()).sum();
        let _ = writeln!(
            out,
            "weights          hashed: {count} values in {} tensors, {} signed bits each, commitment {c}",
            folder.q.params().len(),
            s.weight_bits
        );
    }
    if let Some(e) = s.expected_error {
        let _ = writeln!(
            out,
            "expected error   {e:.2e} (max |fixed − float| / max |float| over {} calibration sample{})",
            s.calibration_samples,
            if s.calibration_samples == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, "k                {} ({} rows)", p.k, 1u64 << p.k);
    let _ = writeln!(out, "rows used        {} per gate column", p.rows);
    let _ = writeln!(
        out,
        "columns          {} gate advice, {} lookup advice, {} constants, 1 instance",
        p.params.base.num_advice_per_phase[0],
        p.params
            .base
            .num_lookup_advice_per_phase
            .first()
            .copied()
            .unwrap_or(0),
        p.params.base.num_fixed
    );
    let _ = writeln!(
        out,
        "cells            {} gate advice, {} range-checked limbs, {} distinct constants",
        p.advice_cells, p.lookup_cells, p.fixed_cells
    );
    if p.params.lincomb_width > 0 {
        let _ = writeln!(
            out,
            "dot products     {} terms, {} per row, {} rows ({} advice + {} fixed columns)",
            p.lincomb_terms,
            p.params.lincomb_width,
            p.lincomb_rows,
            p.params.lincomb_width + 1,
            p.params.lincomb_width + 1
        );
    }
    if p.params.functions {
        let _ = writeln!(
            out,
            "functions        {} lookups into {} table rows, interpolation error ≤ {:.2e}",
            p.function_rows,
            p.table_rows,
            folder.q.lookup_error()
        );
    }
    if p.params.freivalds {
        let _ = writeln!(
            out,
            "freivalds        {} rows checking products that share a factor (3 advice columns, \
             a second phase)",
            p.freivalds_rows
        );
    }
    // Settings written before budgets were recorded have none (0).
    let budget = match p.proof_budget {
        0 => String::new(),
        b => format!(" (within a budget of {b})"),
    };
    let _ = writeln!(out, "proof            {} bytes{budget}", p.proof_bytes);
    let cs = zkinfer_circuits::cost::constraint_system(&p.params);
    let _ = writeln!(
        out,
        "prove memory     ≈ {} (estimate)",
        gib(zkinfer_circuits::cost::prove_memory_bytes(
            &cs,
            p.k,
            p.advice_cells
        ))
    );
    // Above the measured size near the limit: what `compile --fit-evm` keeps within EIP-170.
    let _ = writeln!(
        out,
        "verifier code    ≈ {} bytes (estimate; EIP-170 allows {})",
        zkinfer_circuits::cost::verifier_code_bytes(&cs, p.num_instances),
        zkinfer_circuits::cost::EIP_170_CODE_BYTES
    );
    let _ = writeln!(out, "lookups          range table [0, 2^{})", p.lookup_bits);
    let _ = writeln!(out, "instances        {}", p.num_instances);
    if in_dir(dir, files::KEYS).exists() {
        let keys: KeysInfo = read_json(&in_dir(dir, files::KEYS))?;
        let _ = writeln!(out, "keys             present");
        // A damaged key file is reported, not fatal: the rest describes the compilation.
        match VerifierFolder::open(dir) {
            Ok(verifier) => {
                let _ = writeln!(out, "model id         {}", verifier.model_id);
                let _ = writeln!(
                    out,
                    "SRS              {}",
                    srs_note(Some(&keys.srs), &verifier.kzg)
                );
            }
            Err(e) => {
                let _ = writeln!(out, "model id         unavailable: {e}");
            }
        }
    } else {
        let _ = writeln!(out, "keys             none (run `zkinfer setup`)");
    }
    let _ = writeln!(
        out,
        "\n{:>4}  {:<10} {:<28} {:<18} {:>9} {:>6}  name",
        "#", "op", "from", "shape", "terms", "shift"
    );
    for (i, n) in folder.q.nodes.iter().enumerate() {
        let (op, terms, shift) = match &n.op {
            QOp::Input { .. } => ("Input", 0, 0),
            QOp::Param { .. } => ("Param", 0, 0),
            QOp::Linear { terms, shift, .. } => ("Linear", terms.total(), *shift),
            QOp::Bilinear { pairs, shift } => ("Bilinear", pairs.total(), *shift),
            QOp::Extremum { candidates, kind } => (
                if *kind == zkinfer_model::ExtremumKind::Max {
                    "Max"
                } else {
                    "Min"
                },
                candidates.total(),
                0,
            ),
            QOp::Remap { .. } => ("Remap", 0, 0),
            QOp::Divide { pairs, shift } => ("Divide", pairs.len(), *shift),
            QOp::Sqrt { shift } => ("Sqrt", 0, *shift),
            // "terms" is the table's sample count, "shift" its step.
            QOp::Lookup { table, .. } => ("Lookup", table.values.len(), table.shift),
            // "terms": the table entries, all columns together.
            QOp::Gather { tables, shift, .. } => (
                "Gather",
                tables.iter().map(|t| t.values.len()).sum(),
                *shift,
            ),
        };
        let _ = writeln!(
            out,
            "{i:>4}  {op:<10} {:<28} {:<18} {terms:>9} {shift:>6}  {}",
            truncate(&n.source_op, 28),
            format!("{:?}", n.shape),
            n.name
        );
    }
    Ok(out)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}
