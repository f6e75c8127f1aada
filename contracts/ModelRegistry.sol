// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./ZkinferVerifier.sol";

/// @title A registry of zkinfer models: each model id (the digest `zkinfer setup` prints) is
/// bound for ever to one verifier contract, which must say it verifies that id; anyone can have
/// an inference checked against it. The owner can revoke an id (a model found unsound, a key
/// leaked), never re-point it.
/// @notice A verifier made by `zkinfer evm-verifier` answers `zkinferVerifierInfo()` with the
/// model id of the folder it was generated from and its counts; `register` requires them to be
/// what the owner registers, and records the verifier's runtime code hash, which every call
/// checks. A contract can claim any id: that the registered code is the folder's verifier is
/// checkable off chain (regenerate it with `zkinfer evm-verifier`, deterministic, and compare
/// the code hash `model(id)` returns).
/// A model with hashed weights (`--weights hashed`) shares its verifier with every training of
/// its architecture: the verifier reports the architecture id, the owner registers the weight
/// commitment beside it (the model id must be `sha256(architecture id ‖ weight commitment)`),
/// and every check requires that commitment as the proof's last public value.
contract ModelRegistry {
    /// A registered model.
    struct Model {
        address verifier;
        bytes32 codeHash;
        uint32 numInputs;
        uint32 numInstances;
        bool revoked;
        /// The weight commitment every proof must carry last (0: weights fixed in the key).
        bytes32 weightCommitment;
        string metadataURI;
    }

    /// Who may register and revoke models.
    address public owner;
    /// Who may accept ownership (two-step transfer), if anyone.
    address public pendingOwner;
    /// Gas given to each verifier call.
    uint256 public immutable verifyGasCap;
    mapping(bytes32 => Model) private models;

    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event ModelRegistered(
        bytes32 indexed modelId,
        address verifier,
        bytes32 codeHash,
        uint32 numInputs,
        uint32 numInstances,
        bytes32 weightCommitment,
        string metadataURI
    );
    event ModelRevoked(bytes32 indexed modelId);
    event InferenceVerified(bytes32 indexed modelId, bytes32 inputsHash, bytes32 outputsHash);

    error NotOwner();
    error NotPendingOwner();
    error AlreadyRegistered(bytes32 modelId);
    error BadCounts(uint32 numInputs, uint32 numInstances);
    error VerifierMismatch(bytes32 modelId, bytes32 verifierModelId, uint256 numInstances, uint256 numInputs);
    error UnknownModel(bytes32 modelId);
    error Revoked(bytes32 modelId);
    error WrongInstanceCount(uint256 expected, uint256 given);
    error NonCanonicalValue();
    error InvalidProof(bytes32 modelId);
    error OtherWeights(bytes32 modelId, uint256 proven);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor(uint256 gasCap) {
        owner = msg.sender;
        verifyGasCap = gasCap;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    /// Starts a transfer of ownership to `newOwner`, who must accept it (address(0) cancels).
    function transferOwnership(address newOwner) external onlyOwner {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    /// Completes a transfer started by the owner.
    function acceptOwnership() external {
        if (msg.sender != pendingOwner) revert NotPendingOwner();
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    /// Registers `modelId` with its verifier; `numInputs` of its `numInstances` public values
    /// are inputs (0 when inputs are private), the rest outputs (and, with hashed weights,
    /// `weightCommitment` last). The verifier must report the same counts and the id: `modelId`
    /// itself, or with a weight commitment the architecture id whose
    /// `sha256(id ‖ weightCommitment)` is `modelId`. An id is registered once.
    function register(
        bytes32 modelId,
        address verifier,
        uint32 numInputs,
        uint32 numInstances,
        bytes32 weightCommitment,
        string calldata metadataURI
    ) external onlyOwner {
        if (models[modelId].verifier != address(0)) revert AlreadyRegistered(modelId);
        if (numInputs >= numInstances) revert BadCounts(numInputs, numInstances);
        (bytes32 id, uint256 n, uint256 nIn, bool hashed) = ZkinferVerifier.info(verifier);
        // A verifier of hashed weights serves a model only with its weight commitment: an
        // architecture id registered bare would accept every training.
        bytes32 expected = hashed ? sha256(abi.encodePacked(id, weightCommitment)) : id;
        if (
            expected != modelId || n != numInstances || nIn != numInputs
                || hashed != (weightCommitment != 0)
        ) {
            revert VerifierMismatch(modelId, id, n, nIn);
        }
        bytes32 codeHash = verifier.codehash;
        models[modelId] = Model(
            verifier, codeHash, numInputs, numInstances, false, weightCommitment, metadataURI
        );
        emit ModelRegistered(
            modelId, verifier, codeHash, numInputs, numInstances, weightCommitment, metadataURI
        );
    }

    /// Revokes `modelId` for good: every later check of it reverts `Revoked`.
    function revoke(bytes32 modelId) external onlyOwner {
        Model storage m = models[modelId];
        if (m.verifier == address(0)) revert UnknownModel(modelId);
        if (m.revoked) revert Revoked(modelId);
        m.revoked = true;
        emit ModelRevoked(modelId);
    }

    /// The registered model `modelId` (revoked ones included: see `revoked`).
    function model(bytes32 modelId) public view returns (Model memory m) {
        m = models[modelId];
        if (m.verifier == address(0)) revert UnknownModel(modelId);
    }

    /// The registered model `modelId`, which must not be revoked.
    function live(bytes32 modelId) public view returns (Model memory m) {
        m = model(modelId);
        if (m.revoked) revert Revoked(modelId);
    }

    /// Whether `proof` shows that model `modelId` maps the inputs in `instances` to the
    /// outputs in it; reverts for an unknown or revoked model, a wrong count, a non-canonical
    /// value, another weight commitment than the model's, a verifier whose code changed, or
    /// too little gas to give the verifier its cap.
    function check(bytes32 modelId, uint256[] calldata instances, bytes calldata proof)
        public
        view
        returns (bool)
    {
        Model memory m = live(modelId);
        if (instances.length != m.numInstances) {
            revert WrongInstanceCount(m.numInstances, instances.length);
        }
        if (!ZkinferVerifier.canonical(instances)) revert NonCanonicalValue();
        if (!weightsMatch(m, instances)) {
            revert OtherWeights(modelId, instances[instances.length - 1]);
        }
        return ZkinferVerifier.check(m.verifier, m.codeHash, instances, proof, verifyGasCap);
    }

    /// Whether `instances` (of `m`'s count) carry `m`'s weight commitment, if it has one.
    function weightsMatch(Model memory m, uint256[] memory instances)
        public
        pure
        returns (bool)
    {
        return m.weightCommitment == 0
            || instances[instances.length - 1] == uint256(m.weightCommitment);
    }

    /// Checks the proof and records it as an event; reverts if it is not valid.
    function verifyInference(bytes32 modelId, uint256[] calldata instances, bytes calldata proof)
        external
        returns (bool)
    {
        if (!check(modelId, instances, proof)) revert InvalidProof(modelId);
        uint256 n = models[modelId].numInputs;
        emit InferenceVerified(
            modelId,
            keccak256(abi.encodePacked(instances[:n])),
            keccak256(abi.encodePacked(instances[n:]))
        );
        return true;
    }
}
