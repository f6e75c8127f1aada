// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// @title Calling a verifier made by `zkinfer evm-verifier`.
/// @notice Such a verifier answers two kinds of call. Its fallback takes the public values as
/// 32-byte words, then the proof bytes (exactly: nothing after the proof), and returns nothing
/// if the proof is valid, reverts otherwise. The 4-byte call `zkinferVerifierInfo()` reverts
/// with the model id it was generated for and its counts of public values and of public
/// inputs as revert data (so that only a valid proof ever makes a call succeed).
library ZkinferVerifier {
    /// The BN254 scalar field modulus: every public value must be below it.
    uint256 internal constant R =
        0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;

    /// `zkinferVerifierInfo()`, answered as revert data `(bytes32 modelId, uint256 numInstances,
    /// uint256 numInputs)`.
    bytes4 internal constant INFO_SELECTOR = bytes4(keccak256("zkinferVerifierInfo()"));

    /// Gas a verifier's info call may take (it returns three constants).
    uint256 internal constant INFO_GAS = 30_000;

    /// What a call costs the caller besides the gas it forwards (account access, memory).
    uint256 internal constant CALL_OVERHEAD = 5_000;

    error NoCode(address verifier);
    error CodeChanged(address verifier, bytes32 registered, bytes32 found);
    error NotAZkinferVerifier(address verifier);
    error InsufficientGas(uint256 available, uint256 needed);

    /// Whether every value is a canonical field element (< R). A verifier reducing mod R would
    /// take x + R for x, so a contract reading the values must refuse the other one.
    function canonical(uint256[] memory values) internal pure returns (bool) {
        for (uint256 i = 0; i < values.length; i++) {
            if (values[i] >= R) return false;
        }
        return true;
    }

    /// The kinds of verifier `info` reports: a whole model with its weights in the key, a
    /// whole model whose proofs carry a weight commitment last (the id is the architecture's),
    /// and one segment of a segmented model (its proofs say nothing alone: only a chain's
    /// links make them an inference).
    uint256 internal constant KIND_FIXED = 0;
    uint256 internal constant KIND_HASHED_WEIGHTS = 1;
    uint256 internal constant KIND_SEGMENT = 2;

    /// What `verifier` says it verifies: the model id (with hashed weights, the architecture
    /// id; for a segment, the segment's id), its counts, and its kind. Reverts for an address
    /// without code or one that does not answer the call as a zkinfer verifier does.
    function info(address verifier)
        internal
        view
        returns (bytes32 modelId, uint256 numInstances, uint256 numInputs, uint256 kind)
    {
        if (verifier.code.length == 0) revert NoCode(verifier);
        (bool ok, bytes memory out) =
            verifier.staticcall{gas: INFO_GAS}(abi.encodePacked(INFO_SELECTOR));
        if (ok || out.length != 128) revert NotAZkinferVerifier(verifier);
        (modelId, numInstances, numInputs, kind) =
            abi.decode(out, (bytes32, uint256, uint256, uint256));
        if (kind > KIND_SEGMENT) revert NotAZkinferVerifier(verifier);
    }

    /// Calls `verifier`, whose runtime code must still hash to `codeHash`, with exactly
    /// `gasCap` gas, so a malformed proof cannot burn the caller's gas; true if it accepted
    /// the proof. Reverts (never answers false) when the verifier has no code, other code than
    /// registered, or when the transaction has too little gas left to give it `gasCap`: under
    /// EIP-150 the call would get less, and a valid proof would fail as if it were invalid.
    function check(
        address verifier,
        bytes32 codeHash,
        uint256[] memory instances,
        bytes memory proof,
        uint256 gasCap
    ) internal view returns (bool ok) {
        // A call to an address without code succeeds: it would accept every proof.
        if (verifier.code.length == 0) revert NoCode(verifier);
        bytes32 found = verifier.codehash;
        if (found != codeHash) revert CodeChanged(verifier, codeHash, found);
        bytes memory data = abi.encodePacked(instances, proof);
        uint256 needed = gasCap + gasCap / 63 + CALL_OVERHEAD;
        if (gasleft() < needed) revert InsufficientGas(gasleft(), needed);
        (ok, ) = verifier.staticcall{gas: gasCap}(data);
    }
}
