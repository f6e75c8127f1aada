//! The `evm-*` subcommands: the Solidity verifier of a folder, its calldata, a run in the
//! in-process EVM, and the contracts built in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use zkinfer_circuits::identity::VerifierFolder;
use zkinfer_verifier::chain;
use zkinfer_verifier::evm::Address;
use zkinfer_verifier::segments::SegmentedVerifier;
use zkinfer_verifier::solidity;

use crate::step;

/// `evm-verifier`: writes OUT.sol, OUT.bin and OUT.abi.json.
pub fn verifier(dir: PathBuf, out: Option<PathBuf>) -> Result<()> {
    let folder = VerifierFolder::open(&dir)?;
    let v = step("generate and compile the Solidity verifier", || {
        Ok(solidity::build(&folder)?)
    })?;
    let sol = out.unwrap_or_else(|| dir.join("Verifier.sol"));
    let bin = sol.with_extension("bin");
    let abi = sol.with_extension("abi.json");
    write_file(&sol, v.source.as_bytes())?;
    write_file(
        &bin,
        format!("{}\n", hex::encode(&v.compiled.bytecode)).as_bytes(),
    )?;
    write_file(
        &abi,
        serde_json::to_string_pretty(&v.compiled.abi)?.as_bytes(),
    )?;
    let inputs = folder.settings.num_input_instances();
    println!(
        "verifier written to {} ({}, {}): code {} bytes, {} public values ({} inputs, {} outputs)",
        sol.display(),
        bin.display(),
        abi.display(),
        thousands(v.compiled.deployed.len() as u64),
        v.num_instances,
        inputs,
        v.num_instances - inputs
    );
    println!(
        "solc {} optimizer {} (a block explorer's source check needs these settings)",
        zkinfer_verifier::solc::SOLC_VERSION,
        v.optimizer.settings()
    );
    println!("model id {}", folder.model_id);
    if let Some(a) = &folder.architecture_id {
        println!(
            "architecture id {a}: the verifier reports it and serves every training of the \
             architecture; register the model id with weight commitment {}",
            folder.settings.weight_commitment.as_deref().unwrap_or("?")
        );
    }
    println!(
        "SRS      {}",
        zkinfer_verifier::srs_check(&dir, &folder, None)?
    );
    Ok(())
}

/// `evm-calldata`: prints the calldata of a proof (of a segmented model: the registry's
/// `verifyChainInference`).
pub fn calldata(dir: PathBuf, proof: PathBuf) -> Result<()> {
    if zkinfer_verifier::segments::is_segmented(&dir) {
        let v = SegmentedVerifier::open(&dir)?;
        let proofs = chain::segment_proofs_of_file(&v, &proof)?;
        println!(
            "0x{}",
            hex::encode(chain::chain_calldata(&v.model_id, &proofs)?)
        );
        return Ok(());
    }
    let folder = VerifierFolder::open(&dir)?;
    let data = solidity::calldata_of_file(&folder, &proof)?;
    println!("0x{}", hex::encode(data));
    Ok(())
}

/// `evm-chain`: prints the registry's `registerChain` calldata for a segmented model whose
/// segment verifiers are deployed at `verifiers`, in order.
pub fn register_chain(dir: PathBuf, verifiers: Vec<String>, metadata_uri: String) -> Result<()> {
    let v = SegmentedVerifier::open(&dir)?;
    if verifiers.len() != v.segments.len() {
        anyhow::bail!(
            "{} verifier addresses for {} segments (one per segment, in order: deploy each \
             segment-<i>'s evm-verifier)",
            verifiers.len(),
            v.segments.len()
        );
    }
    let addresses = verifiers
        .iter()
        .map(|a| {
            a.parse::<Address>()
                .with_context(|| format!("{a} is not an address (0x and 40 hex digits)"))
        })
        .collect::<Result<Vec<_>>>()?;
    let data = chain::register_calldata(&v, &addresses, &metadata_uri)?;
    println!("0x{}", hex::encode(data));
    eprintln!("model id {}", v.model_id);
    Ok(())
}

/// `evm-verify` of a segmented model: the registry and every segment verifier in revm.
fn verify_chain(dir: &Path, proof: &Path) -> Result<()> {
    let v = SegmentedVerifier::open(dir)?;
    let proofs = chain::segment_proofs_of_file(&v, proof)?;
    let verdict = step(
        "deploy the registry and the segment verifiers, register the chain, verify",
        || Ok(chain::evm_verify_chain(&v, &proofs)?),
    )?;
    println!("{}", if verdict.accepted { "valid" } else { "invalid" });
    println!(
        "gas {} (every segment and link, one call)",
        thousands(verdict.gas_used)
    );
    println!("register gas {}", thousands(verdict.register_gas));
    let sizes: Vec<String> = verdict
        .code_sizes
        .iter()
        .map(|&c| thousands(c as u64))
        .collect();
    println!("code {} bytes", sizes.join(" + "));
    println!("model id {}", v.model_id);
    if !verdict.accepted {
        anyhow::bail!("the registry rejected the segment proofs");
    }
    Ok(())
}

/// `evm-verify`: deploys the verifier in revm and calls it with a proof.
pub fn verify(dir: PathBuf, proof: PathBuf, bytecode: Option<PathBuf>) -> Result<()> {
    if zkinfer_verifier::segments::is_segmented(&dir) {
        if bytecode.is_some() {
            anyhow::bail!("--bytecode names one verifier; a segmented model has one per segment");
        }
        return verify_chain(&dir, &proof);
    }
    let folder = VerifierFolder::open(&dir)?;
    // The Solidity verifier is the architecture's (hashed weights): which weights a proof
    // used is the folder's to check, as a registry does.
    let loaded = zkinfer_verifier::load_proof(&folder, &proof)?;
    zkinfer_verifier::check_weights(&folder.settings, &loaded.instances)?;
    let data = solidity::calldata_of_file(&folder, &proof)?;
    let creation = match &bytecode {
        Some(path) => read_hex_file(path)?,
        None => {
            step("generate and compile the Solidity verifier", || {
                Ok(solidity::build(&folder)?)
            })?
            .compiled
            .bytecode
        }
    };
    let verdict = solidity::evm_verify(&creation, &data)?;
    println!("{}", if verdict.accepted { "valid" } else { "invalid" });
    println!("gas {}", thousands(verdict.gas_used));
    println!("code {} bytes", thousands(verdict.code_size as u64));
    println!("model id {}", folder.model_id);
    if let Some(a) = &folder.architecture_id {
        println!("architecture id {a} (what the verifier reports)");
    }
    if !verdict.accepted {
        anyhow::bail!(
            "the Solidity verifier rejected the proof{}",
            verdict
                .halted
                .map(|h| format!(" (halted: {h})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `evm-contracts`: writes the contracts' bytecode and ABI.
pub fn contracts(out: PathBuf) -> Result<()> {
    let compiled = step("compile the contracts", || {
        Ok(zkinfer_verifier::contracts::compile()?)
    })?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (name, c) in &compiled {
        write_file(
            &out.join(format!("{name}.bin")),
            format!("{}\n", hex::encode(&c.bytecode)).as_bytes(),
        )?;
        write_file(
            &out.join(format!("{name}.abi.json")),
            serde_json::to_string_pretty(&c.abi)?.as_bytes(),
        )?;
        println!(
            "{name}: {}/{name}.bin, {name}.abi.json (code {} bytes)",
            out.display(),
            thousands(c.deployed.len() as u64)
        );
    }
    for (file, text) in zkinfer_verifier::contracts::SOURCES {
        write_file(&out.join(file), text.as_bytes())?;
    }
    Ok(())
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn read_hex_file(path: &Path) -> Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let t = text.trim();
    hex::decode(t.strip_prefix("0x").unwrap_or(t))
        .with_context(|| format!("{} is not hex bytecode", path.display()))
}
