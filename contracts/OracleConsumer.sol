// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./ModelRegistry.sol";

/// @title An example consumer of proven inferences: a requester opens a request for a model
/// on given inputs; any oracle or agent (fulfilment is permissionless: the proof is what is
/// trusted, not the sender) answers it once with a proof of those inputs, checked through the
/// registry; the answer is then readable. With a hashed-input model the inputs are the input
/// commitments (computed off chain), so a request binds its input without publishing it. A
/// model whose inputs are private is refused: its proofs do not say which input they are of,
/// so one proof would answer every request.
contract OracleConsumer {
    struct Request {
        address requester;
        bytes32 modelId;
        bytes32 inputsHash;
        bool answered;
        uint256[] outputs;
    }

    ModelRegistry public immutable registry;
    uint256 public nextRequestId;
    mapping(uint256 => Request) private requests;

    event Requested(uint256 indexed requestId, bytes32 indexed modelId, address requester);
    event Answered(uint256 indexed requestId, address indexed oracle, bytes32 outputsHash);

    error UnknownRequest(uint256 requestId);
    error AlreadyAnswered(uint256 requestId);
    error WrongModel(bytes32 expected, bytes32 given);
    error WrongInputs(uint256 requestId);
    error NotAnswered(uint256 requestId);
    error NoPublicInputs(bytes32 modelId);

    constructor(ModelRegistry registry_) {
        registry = registry_;
    }

    /// Opens a request for model `modelId` on `inputs` (the public inputs, or the commitments
    /// of hashed ones); the model must have some.
    function request(bytes32 modelId, uint256[] calldata inputs) external returns (uint256 id) {
        ModelRegistry.Model memory m = registry.live(modelId);
        if (m.numInputs == 0) revert NoPublicInputs(modelId);
        if (inputs.length != m.numInputs) {
            revert ModelRegistry.WrongInstanceCount(m.numInputs, inputs.length);
        }
        id = nextRequestId++;
        Request storage r = requests[id];
        r.requester = msg.sender;
        r.modelId = modelId;
        r.inputsHash = keccak256(abi.encodePacked(inputs));
        emit Requested(id, modelId, msg.sender);
    }

    /// Answers request `requestId` with a proof of model `modelId` whose public inputs are the
    /// request's; accepted once.
    function fulfill(
        uint256 requestId,
        bytes32 modelId,
        uint256[] calldata instances,
        bytes calldata proof
    ) external {
        Request storage r = requests[requestId];
        if (r.requester == address(0)) revert UnknownRequest(requestId);
        if (r.answered) revert AlreadyAnswered(requestId);
        if (modelId != r.modelId) revert WrongModel(r.modelId, modelId);
        uint256 n = registry.model(modelId).numInputs;
        if (instances.length < n || keccak256(abi.encodePacked(instances[:n])) != r.inputsHash) {
            revert WrongInputs(requestId);
        }
        registry.verifyInference(modelId, instances, proof); // reverts unless valid
        r.answered = true;
        r.outputs = instances[n:];
        emit Answered(requestId, msg.sender, keccak256(abi.encodePacked(instances[n:])));
    }

    /// The proven outputs of an answered request.
    function answer(uint256 requestId) external view returns (uint256[] memory) {
        Request storage r = requests[requestId];
        if (!r.answered) revert NotAnswered(requestId);
        return r.outputs;
    }
}
