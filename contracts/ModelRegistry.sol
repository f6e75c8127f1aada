// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./ZkinferVerifier.sol";

/// @title A registry of zkinfer models: each model id (the digest `zkinfer setup` prints) is
/// bound for ever to one verifier contract; anyone can have an inference checked against it.
/// @notice The id does not prove which verifier belongs to it: anyone can regenerate the
/// verifier from the model folder (`zkinfer evm-verifier`, deterministic) and compare its
/// runtime code with the registered address's.
contract ModelRegistry {
    /// A registered model.
    struct Model {
        address verifier;
        uint32 numInputs;
        uint32 numInstances;
        string metadataURI;
    }

    /// Who may register models.
    address public owner;
    /// Gas given to each verifier call.
    uint256 public immutable verifyGasCap;
    mapping(bytes32 => Model) private models;

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event ModelRegistered(
        bytes32 indexed modelId,
        address verifier,
        uint32 numInputs,
        uint32 numInstances,
        string metadataURI
    );
    event InferenceVerified(bytes32 indexed modelId, bytes32 inputsHash, bytes32 outputsHash);

    error NotOwner();
    error ZeroAddress();
    error NoCode(address verifier);
    error AlreadyRegistered(bytes32 modelId);
    error BadCounts(uint32 numInputs, uint32 numInstances);
    error UnknownModel(bytes32 modelId);
    error WrongInstanceCount(uint256 expected, uint256 given);
    error NonCanonicalValue();
    error InvalidProof(bytes32 modelId);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor(uint256 gasCap) {
        owner = msg.sender;
        verifyGasCap = gasCap;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// Registers `modelId` with its verifier; `numInputs` of its `numInstances` public values
    /// are inputs (0 when inputs are private), the rest outputs. An id is registered once.
    function register(
        bytes32 modelId,
        address verifier,
        uint32 numInputs,
        uint32 numInstances,
        string calldata metadataURI
    ) external onlyOwner {
        if (models[modelId].verifier != address(0)) revert AlreadyRegistered(modelId);
        // A call to an address without code succeeds: it would accept every proof.
        if (verifier.code.length == 0) revert NoCode(verifier);
        if (numInputs >= numInstances) revert BadCounts(numInputs, numInstances);
        models[modelId] = Model(verifier, numInputs, numInstances, metadataURI);
        emit ModelRegistered(modelId, verifier, numInputs, numInstances, metadataURI);
    }

    /// The registered model `modelId`.
    function model(bytes32 modelId) public view returns (Model memory m) {
        m = models[modelId];
        if (m.verifier == address(0)) revert UnknownModel(modelId);
    }

    /// Whether `proof` shows that model `modelId` maps the inputs in `instances` to the
    /// outputs in it; reverts for an unknown model, a wrong count or a non-canonical value.
    function check(bytes32 modelId, uint256[] calldata instances, bytes calldata proof)
        public
        view
        returns (bool)
    {
        Model memory m = model(modelId);
        if (instances.length != m.numInstances) {
            revert WrongInstanceCount(m.numInstances, instances.length);
        }
        if (!ZkinferVerifier.canonical(instances)) revert NonCanonicalValue();
        return ZkinferVerifier.check(m.verifier, instances, proof, verifyGasCap);
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
