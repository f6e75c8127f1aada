// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// @title Calling a verifier made by `zkinfer evm-verifier`.
/// @notice Such a verifier has no functions: its fallback takes the public values as 32-byte
/// words, then the proof bytes, and returns nothing if the proof is valid, reverts otherwise.
library ZkinferVerifier {
    /// The BN254 scalar field modulus: every public value must be below it.
    uint256 internal constant R =
        0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;

    /// Whether every value is a canonical field element (< R). A verifier reducing mod R would
    /// take x + R for x, so a contract reading the values must refuse the other one.
    function canonical(uint256[] memory values) internal pure returns (bool) {
        for (uint256 i = 0; i < values.length; i++) {
            if (values[i] >= R) return false;
        }
        return true;
    }

    /// Calls `verifier` with at most `gasCap` gas, so a malformed proof cannot burn the
    /// caller's gas; true if it accepted the proof.
    function check(
        address verifier,
        uint256[] memory instances,
        bytes memory proof,
        uint256 gasCap
    ) internal view returns (bool ok) {
        (ok, ) = verifier.staticcall{gas: gasCap}(abi.encodePacked(instances, proof));
    }
}
