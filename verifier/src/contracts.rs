//! The project's Solidity contracts (`contracts/`), built into the binary so that
//! `zkinfer evm-contracts` writes their bytecode and ABI with the same compiler as the verifiers.

use std::collections::BTreeMap;

use crate::solc::{self, Compiled, SolcError};

/// File name and text of each contract source.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "ZkinferVerifier.sol",
        include_str!("../../contracts/ZkinferVerifier.sol"),
    ),
    (
        "SegmentChain.sol",
        include_str!("../../contracts/SegmentChain.sol"),
    ),
    (
        "ModelRegistry.sol",
        include_str!("../../contracts/ModelRegistry.sol"),
    ),
    (
        "ERC7007Adapter.sol",
        include_str!("../../contracts/ERC7007Adapter.sol"),
    ),
    (
        "OracleConsumer.sol",
        include_str!("../../contracts/OracleConsumer.sol"),
    ),
];

/// The deployable contracts (the library is inlined into them).
pub const DEPLOYABLE: &[&str] = &["ModelRegistry", "ERC7007Adapter", "OracleConsumer"];

/// Compiles the contracts (optimizer on, 200 runs) and returns the deployable ones by name.
pub fn compile() -> Result<BTreeMap<String, Compiled>, SolcError> {
    let sources = SOURCES
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect();
    let mut all = solc::compile(&sources, solc::Optimizer::Gas)?;
    DEPLOYABLE
        .iter()
        .map(|name| {
            all.remove(*name)
                .map(|c| (name.to_string(), c))
                .ok_or_else(|| SolcError::Missing(name.to_string()))
        })
        .collect()
}
