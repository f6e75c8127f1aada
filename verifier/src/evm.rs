//! An in-process EVM (revm, mainnet rules: EIP-170's code limit, current gas schedule) to
//! deploy generated verifiers and the project's contracts and call them, always with a gas cap.
//! snark-verifier's own `deploy_and_call` forwards unlimited gas and panics on a failed
//! deployment, so transactions are sent here directly.

use std::collections::HashMap;

use revm::context::result::{ExecutionResult, Output};
use revm::context::TxEnv;
use revm::database::InMemoryDB;
use revm::handler::MainnetContext;
pub use revm::primitives::{Address, Log, U256};
use revm::primitives::{Bytes, TxKind};
use revm::{Context, ExecuteCommitEvm, MainBuilder, MainContext, MainnetEvm};
use thiserror::Error;

/// EIP-170: the largest runtime code a contract may have.
pub const MAX_CODE_SIZE: usize = zkinfer_circuits::cost::EIP_170_CODE_BYTES;

/// Gas given to a deployment.
pub const DEPLOY_GAS: u64 = 30_000_000;

/// Gas given to a verifier call by `evm-verify`: ample for any verifier that fits EIP-170, and
/// a bound on what a malformed proof can burn.
pub const VERIFY_GAS_CAP: u64 = 5_000_000;

/// A transaction the EVM would not run, or a deployment that failed.
#[derive(Debug, Error)]
pub enum EvmError {
    /// The transaction is invalid (nonce, gas limit, …).
    #[error("the EVM refused the transaction: {0}")]
    Invalid(String),
    /// The deployment reverted or halted.
    #[error("deployment failed ({0}) after {1} gas")]
    DeployFailed(String, u64),
}

/// How a transaction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// It succeeded.
    Success,
    /// It reverted.
    Revert,
    /// It halted (out of gas, invalid opcode, …): the reason.
    Halt(String),
}

/// What a transaction did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// Gas the transaction used: intrinsic + calldata + execution, as a receipt shows it.
    pub gas_used: u64,
    /// Return or revert data.
    pub output: Vec<u8>,
    /// Events emitted (empty unless it succeeded).
    pub logs: Vec<Log>,
}

impl Outcome {
    /// Whether the transaction succeeded.
    pub fn success(&self) -> bool {
        self.status == Status::Success
    }
}

/// A deployed contract.
#[derive(Clone, Copy, Debug)]
pub struct Deployed {
    /// Its address.
    pub address: Address,
    /// The size of its runtime code, in bytes.
    pub code_size: usize,
    /// Gas the deployment used.
    pub gas_used: u64,
}

/// An in-memory chain: accounts start empty, gas is free (price 0).
pub struct Evm {
    inner: MainnetEvm<MainnetContext<InMemoryDB>>,
    nonces: HashMap<Address, u64>,
}

impl Default for Evm {
    fn default() -> Self {
        Self::new()
    }
}

impl Evm {
    /// A fresh chain.
    pub fn new() -> Self {
        Self {
            inner: Context::mainnet()
                .with_db(InMemoryDB::default())
                .build_mainnet(),
            nonces: HashMap::new(),
        }
    }

    fn send(
        &mut self,
        from: Address,
        kind: TxKind,
        data: Vec<u8>,
        gas_limit: u64,
    ) -> Result<(Outcome, Option<Address>), EvmError> {
        let nonce = self.nonces.entry(from).or_insert(0);
        let tx = TxEnv {
            caller: from,
            kind,
            data: Bytes::from(data),
            gas_limit,
            nonce: *nonce,
            ..Default::default()
        };
        let result = self
            .inner
            .transact_commit(tx)
            .map_err(|e| EvmError::Invalid(format!("{e:?}")))?;
        *nonce += 1;
        Ok(match result {
            ExecutionResult::Success {
                gas_used,
                logs,
                output,
                ..
            } => {
                let (out, created) = match output {
                    Output::Call(b) => (b.to_vec(), None),
                    Output::Create(b, addr) => (b.to_vec(), addr),
                };
                (
                    Outcome {
                        status: Status::Success,
                        gas_used,
                        output: out,
                        logs,
                    },
                    created,
                )
            }
            ExecutionResult::Revert { gas_used, output } => (
                Outcome {
                    status: Status::Revert,
                    gas_used,
                    output: output.to_vec(),
                    logs: Vec::new(),
                },
                None,
            ),
            ExecutionResult::Halt { reason, gas_used } => (
                Outcome {
                    status: Status::Halt(format!("{reason:?}")),
                    gas_used,
                    output: Vec::new(),
                    logs: Vec::new(),
                },
                None,
            ),
        })
    }

    /// Deploys creation bytecode (constructor arguments appended) from `from`.
    pub fn deploy(&mut self, from: Address, creation: &[u8]) -> Result<Deployed, EvmError> {
        let (outcome, created) = self.send(from, TxKind::Create, creation.to_vec(), DEPLOY_GAS)?;
        match (&outcome.status, created) {
            (Status::Success, Some(address)) => Ok(Deployed {
                address,
                code_size: outcome.output.len(),
                gas_used: outcome.gas_used,
            }),
            (Status::Halt(reason), _) => {
                Err(EvmError::DeployFailed(reason.clone(), outcome.gas_used))
            }
            _ => Err(EvmError::DeployFailed(
                "constructor reverted".into(),
                outcome.gas_used,
            )),
        }
    }

    /// Calls `to` with `data` from `from`, with at most `gas_limit` gas.
    pub fn call(
        &mut self,
        from: Address,
        to: Address,
        data: &[u8],
        gas_limit: u64,
    ) -> Result<Outcome, EvmError> {
        Ok(self
            .send(from, TxKind::Call(to), data.to_vec(), gas_limit)?
            .0)
    }
}

/// An account address from a small number (test accounts, the default sender).
pub fn account(n: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    Address::from(bytes)
}
