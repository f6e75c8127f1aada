// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./ModelRegistry.sol";

/// @title ERC-7007's `verify` for one registered zkinfer model.
/// @notice Encoding: `prompt` is the model's public inputs and `aigcData` its outputs, each
/// as consecutive 32-byte big-endian words (`abi.encodePacked(uint256[])`), in the order of
/// the proof's public values; with private inputs `prompt` is empty. `proof` is the proof
/// bytes as `zkinfer prove` writes them.
contract ERC7007Adapter {
    ModelRegistry public immutable registry;
    bytes32 public immutable modelId;

    constructor(ModelRegistry registry_, bytes32 modelId_) {
        registry = registry_;
        modelId = modelId_;
        registry_.live(modelId_); // reverts for an unknown or revoked model
    }

    /// True if `proof` shows that the model maps `prompt` to `aigcData`; false for an invalid
    /// proof, a malformed encoding or a non-canonical value. Reverts when the model has been
    /// revoked, or when the transaction has too little gas left to give the verifier the
    /// registry's cap (a valid proof must never be reported false for want of gas).
    function verify(bytes calldata prompt, bytes calldata aigcData, bytes calldata proof)
        external
        view
        returns (bool success)
    {
        ModelRegistry.Model memory m = registry.live(modelId);
        if (prompt.length % 32 != 0 || aigcData.length % 32 != 0) return false;
        uint256 nIn = prompt.length / 32;
        uint256 nOut = aigcData.length / 32;
        if (nIn != m.numInputs || nIn + nOut != m.numInstances) return false;
        uint256[] memory instances = new uint256[](nIn + nOut);
        for (uint256 i = 0; i < nIn; i++) {
            instances[i] = uint256(bytes32(prompt[i * 32:(i + 1) * 32]));
        }
        for (uint256 i = 0; i < nOut; i++) {
            instances[nIn + i] = uint256(bytes32(aigcData[i * 32:(i + 1) * 32]));
        }
        if (!ZkinferVerifier.canonical(instances)) return false;
        if (!registry.weightsMatch(m, instances)) return false;
        return ZkinferVerifier.check(
            m.verifier, m.codeHash, instances, proof, registry.verifyGasCap()
        );
    }
}
