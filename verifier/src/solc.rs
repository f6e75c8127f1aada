//! The Solidity compiler: solcjs (the npm package `solc`, which ships the compiler as
//! WebAssembly) run by node through its standard-JSON interface. No native solc is needed or
//! downloaded; `scripts/install-solc.sh` installs the package.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use thiserror::Error;

/// The compiler version snark-verifier's verifiers pin (`pragma solidity 0.8.19;`); the
/// contracts in `contracts/` pin it too, so one compiler serves both.
pub const SOLC_VERSION: &str = "0.8.19";

/// The environment variable naming the folder solcjs is installed in (`node_modules/solc`).
pub const SOLC_DIR_ENV: &str = "ZKINFER_SOLC_DIR";

/// Why Solidity could not be compiled.
#[derive(Debug, Error)]
pub enum SolcError {
    /// node is not installed or could not be run.
    #[error("cannot run node ({0}): solcjs needs Node.js; scripts/install-solc.sh installs it")]
    Node(String),
    /// The solc package is missing or is another version.
    #[error("{0}: run scripts/install-solc.sh (it installs solc@{SOLC_VERSION} from npm)")]
    NotInstalled(String),
    /// The compiler reported errors.
    #[error("solc {SOLC_VERSION} rejected the source: {0}")]
    Rejected(String),
    /// A contract the caller asked for is not in the output.
    #[error("solc produced no contract named {0}")]
    Missing(String),
}

/// One compiled contract.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Creation bytecode (what a deployment transaction carries).
    pub bytecode: Vec<u8>,
    /// Runtime bytecode (what is stored at the contract's address; EIP-170 limits it).
    pub deployed: Vec<u8>,
    /// The ABI, as solc writes it.
    pub abi: Value,
}

/// Where solcjs is looked for: `$ZKINFER_SOLC_DIR`, else `$HOME/.cache/zkinfer-solc`.
pub fn solc_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(SOLC_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache").join("zkinfer-solc")
}

/// Reads the standard-JSON input on stdin, compiles it with the solc package under
/// `$ZKINFER_SOLC_DIR/node_modules`, and writes `{version, output}` on stdout.
const DRIVER: &str = r#"
const path = require('path');
let solc;
try { solc = require(path.join(process.env.ZKINFER_SOLC_DIR, 'node_modules', 'solc')); }
catch (e) { process.stdout.write(JSON.stringify({ missing: String(e.message).split('\n')[0] })); process.exit(0); }
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify({ version: solc.version(), output: JSON.parse(solc.compile(input)) }));
});
"#;

/// What solc's optimizer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optimizer {
    /// Nothing.
    Off,
    /// Everything, for runtime gas (200 runs): the registry and its contracts.
    Gas,
    /// The legacy (bytecode) optimizer only, for code size (1 run): the generated verifiers,
    /// whose inline assembly the Yul optimizer cannot compile (stack too deep, or out of
    /// memory), and whose size EIP-170 bounds. It makes them about 2 % smaller.
    Size,
}

impl Optimizer {
    /// solc's `settings.optimizer` for it (what a block explorer needs to match the code).
    pub fn settings(self) -> serde_json::Value {
        match self {
            Optimizer::Off => json!({ "enabled": false, "runs": 200 }),
            Optimizer::Gas => json!({ "enabled": true, "runs": 200 }),
            Optimizer::Size => json!({ "enabled": true, "runs": 1, "details": { "yul": false } }),
        }
    }
}

/// Compiles `sources` (file name → Solidity text; imports name other files of the map) and
/// returns every contract by name.
pub fn compile(
    sources: &BTreeMap<String, String>,
    optimizer: Optimizer,
) -> Result<BTreeMap<String, Compiled>, SolcError> {
    let dir = solc_dir();
    let input = json!({
        "language": "Solidity",
        "sources": sources
            .iter()
            .map(|(name, text)| (name.clone(), json!({ "content": text })))
            .collect::<serde_json::Map<_, _>>(),
        "settings": {
            "optimizer": optimizer.settings(),
            "outputSelection": { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } }
        }
    });
    let mut child = Command::new("node")
        .arg("-e")
        .arg(DRIVER)
        .env(SOLC_DIR_ENV, &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SolcError::Node(e.to_string()))?;
    {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(input.to_string().as_bytes())
            .map_err(|e| SolcError::Node(format!("writing to node: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| SolcError::Node(e.to_string()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(SolcError::Node(format!(
            "node exited with {}: {}",
            out.status,
            err.lines().next().unwrap_or("")
        )));
    }
    let reply: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| SolcError::Node(format!("unreadable reply from solcjs: {e}")))?;
    if let Some(missing) = reply.get("missing") {
        return Err(SolcError::NotInstalled(format!(
            "solcjs not found under {}: {}",
            dir.display(),
            missing.as_str().unwrap_or("")
        )));
    }
    let version = reply["version"].as_str().unwrap_or("");
    if !version.starts_with(&format!("{SOLC_VERSION}+")) {
        return Err(SolcError::NotInstalled(format!(
            "solcjs under {} is version {version}, not {SOLC_VERSION}",
            dir.display()
        )));
    }
    let output = &reply["output"];
    let errors: Vec<String> = output["errors"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|e| e["severity"] == "error")
        .map(|e| {
            e["formattedMessage"]
                .as_str()
                .or(e["message"].as_str())
                .unwrap_or("unknown error")
                .trim()
                .replace('\n', " ")
        })
        .collect();
    if !errors.is_empty() {
        return Err(SolcError::Rejected(errors.join("; ")));
    }
    let mut contracts = BTreeMap::new();
    for file in output["contracts"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        for (name, c) in file.as_object().into_iter().flatten() {
            let hex_of = |v: &Value| hex::decode(v.as_str().unwrap_or(""));
            let (Ok(bytecode), Ok(deployed)) = (
                hex_of(&c["evm"]["bytecode"]["object"]),
                hex_of(&c["evm"]["deployedBytecode"]["object"]),
            ) else {
                return Err(SolcError::Rejected(format!("{name}: bytecode is not hex")));
            };
            contracts.insert(
                name.clone(),
                Compiled {
                    bytecode,
                    deployed,
                    abi: c["abi"].clone(),
                },
            );
        }
    }
    Ok(contracts)
}

/// Compiles one source and returns the contract `name` in it.
pub fn compile_one(
    file: &str,
    source: &str,
    name: &str,
    optimizer: Optimizer,
) -> Result<Compiled, SolcError> {
    let sources = BTreeMap::from([(file.to_string(), source.to_string())]);
    compile(&sources, optimizer)?
        .remove(name)
        .ok_or_else(|| SolcError::Missing(name.to_string()))
}
