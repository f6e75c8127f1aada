// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

import "./ZkinferVerifier.sol";
import "./SegmentChain.sol";

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
/// A model proven as segments is registered as a chain: one verifier per segment, each
/// reporting its segment's id, and the wiring (`segments.json`), from which the registry
/// recomputes the model id and derives which public values of the segment proofs must be
/// equal; one call then checks every segment proof and every link.
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

    /// A registered chain of segment verifiers.
    struct Chain {
        address[] verifiers;
        bytes32[] codeHashes;
        SegmentChain.Layout layout;
        bool revoked;
        string metadataURI;
    }

    mapping(bytes32 => Chain) private chains;

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
    event ChainRegistered(
        bytes32 indexed modelId, address[] verifiers, bytes32[] codeHashes, string metadataURI
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
    error ChainMismatch(bytes32 modelId, bytes32 computed);
    error SegmentMismatch(uint256 segment, uint256 numInstances, uint256 numInputs);
    error WrongSegmentCount(uint256 expected, uint256 given);
    error SegmentVerifier(address verifier);

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
        if (registered(modelId)) revert AlreadyRegistered(modelId);
        if (numInputs >= numInstances) revert BadCounts(numInputs, numInstances);
        checkVerifier(modelId, verifier, numInputs, numInstances, weightCommitment);
        bytes32 codeHash = verifier.codehash;
        models[modelId] = Model(
            verifier, codeHash, numInputs, numInstances, false, weightCommitment, metadataURI
        );
        emit ModelRegistered(
            modelId, verifier, codeHash, numInputs, numInstances, weightCommitment, metadataURI
        );
    }

    /// Reverts unless `verifier` says it verifies `modelId` (with a weight commitment: the
    /// architecture whose id with it is `modelId`) with these counts, as a whole model.
    function checkVerifier(
        bytes32 modelId,
        address verifier,
        uint32 numInputs,
        uint32 numInstances,
        bytes32 weightCommitment
    ) private view {
        (bytes32 id, uint256 n, uint256 nIn, uint256 kind) = ZkinferVerifier.info(verifier);
        // A segment's proofs hold for any tensor on its links: alone it proves nothing.
        if (kind == ZkinferVerifier.KIND_SEGMENT) revert SegmentVerifier(verifier);
        bool hashed = kind == ZkinferVerifier.KIND_HASHED_WEIGHTS;
        // A verifier of hashed weights serves a model only with its weight commitment: an
        // architecture id registered bare would accept every training.
        bytes32 expected = hashed ? sha256(abi.encodePacked(id, weightCommitment)) : id;
        if (
            expected != modelId || n != numInstances || nIn != numInputs
                || hashed != (weightCommitment != 0)
        ) {
            revert VerifierMismatch(modelId, id, n, nIn);
        }
    }

    /// Whether `modelId` is registered, as one verifier or as a chain.
    function registered(bytes32 modelId) public view returns (bool) {
        return models[modelId].verifier != address(0) || chains[modelId].verifiers.length != 0;
    }

    /// Registers the segmented model `modelId` with one verifier per segment, in proving
    /// order. Each verifier must report the counts the wiring gives its segment (and fixed
    /// weights), and `modelId` must be the id of `spec` with the segment ids the verifiers
    /// report: so the chain checked is the one the id names. An id is registered once.
    function registerChain(
        bytes32 modelId,
        address[] calldata verifiers,
        SegmentChain.Spec calldata spec,
        string calldata metadataURI
    ) external onlyOwner {
        if (registered(modelId)) revert AlreadyRegistered(modelId);
        uint256 n = spec.segments.length;
        if (verifiers.length != n) revert WrongSegmentCount(n, verifiers.length);
        SegmentChain.Layout memory l = SegmentChain.layout(spec);
        bytes32[] memory ids = new bytes32[](n);
        Chain storage c = chains[modelId];
        for (uint256 s = 0; s < n; s++) {
            (bytes32 id, uint256 count, uint256 nIn, uint256 kind) =
                ZkinferVerifier.info(verifiers[s]);
            if (
                kind != ZkinferVerifier.KIND_SEGMENT || count != l.numInstances[s]
                    || nIn != l.numInputs[s]
            ) {
                revert SegmentMismatch(s, count, nIn);
            }
            ids[s] = id;
            c.verifiers.push(verifiers[s]);
            c.codeHashes.push(verifiers[s].codehash);
        }
        bytes32 computed = SegmentChain.modelId(spec, ids);
        if (computed != modelId) revert ChainMismatch(modelId, computed);
        c.layout.numInstances = l.numInstances;
        c.layout.numInputs = l.numInputs;
        for (uint256 k = 0; k < l.equalA.length; k++) {
            c.layout.equalA.push(l.equalA[k]);
            c.layout.equalB.push(l.equalB[k]);
        }
        // Private inputs stand for nothing among the model's public values.
        if (spec.inputVisibility != 1) {
            for (uint256 i = 0; i < l.inputs.length; i++) {
                c.layout.inputs.push(l.inputs[i]);
            }
        }
        for (uint256 o = 0; o < l.outputs.length; o++) {
            c.layout.outputs.push(l.outputs[o]);
        }
        c.metadataURI = metadataURI;
        emit ChainRegistered(modelId, verifiers, c.codeHashes, metadataURI);
    }

    /// The segment verifiers of chain `modelId` and their registered code hashes (revoked
    /// chains included), its metadata and whether it is revoked.
    function chain(bytes32 modelId)
        external
        view
        returns (
            address[] memory verifiers,
            bytes32[] memory codeHashes,
            bool revoked,
            string memory metadataURI
        )
    {
        Chain storage c = chains[modelId];
        if (c.verifiers.length == 0) revert UnknownModel(modelId);
        return (c.verifiers, c.codeHashes, c.revoked, c.metadataURI);
    }

    /// Whether the segment proofs show that chain `modelId` maps its inputs to its outputs:
    /// every proof valid for its segment's verifier, and every link and every shared model
    /// input equal on both sides. Reverts for an unknown or revoked chain, a wrong count of
    /// segments or values, a non-canonical value, a verifier whose code changed, or too
    /// little gas.
    function checkChain(
        bytes32 modelId,
        uint256[][] calldata instances,
        bytes[] calldata proofs
    ) public view returns (bool) {
        Chain storage c = liveChain(modelId);
        uint256 n = c.verifiers.length;
        if (instances.length != n) revert WrongSegmentCount(n, instances.length);
        if (proofs.length != n) revert WrongSegmentCount(n, proofs.length);
        for (uint256 s = 0; s < n; s++) {
            if (instances[s].length != c.layout.numInstances[s]) {
                revert WrongInstanceCount(c.layout.numInstances[s], instances[s].length);
            }
            if (!ZkinferVerifier.canonical(instances[s])) revert NonCanonicalValue();
        }
        for (uint256 k = 0; k < c.layout.equalA.length; k++) {
            if (!equal(instances, c.layout.equalA[k], c.layout.equalB[k])) return false;
        }
        for (uint256 s = 0; s < n; s++) {
            if (
                !ZkinferVerifier.check(
                    c.verifiers[s], c.codeHashes[s], instances[s], proofs[s], verifyGasCap
                )
            ) return false;
        }
        return true;
    }

    /// The model's public values in the segment proofs' `instances`: its inputs' (none when
    /// private), then its outputs', as the proof file's top-level `instances` holds them.
    /// Unverified: only what `checkChain` accepted (or `verifyChainInference` recorded) is
    /// proven. Reverts for an unknown or revoked chain or wrong counts.
    function chainInstances(bytes32 modelId, uint256[][] calldata instances)
        public
        view
        returns (uint256[] memory inputs, uint256[] memory outputs)
    {
        Chain storage c = liveChain(modelId);
        uint256 n = c.verifiers.length;
        if (instances.length != n) revert WrongSegmentCount(n, instances.length);
        for (uint256 s = 0; s < n; s++) {
            if (instances[s].length != c.layout.numInstances[s]) {
                revert WrongInstanceCount(c.layout.numInstances[s], instances[s].length);
            }
        }
        inputs = gather(instances, c.layout.inputs);
        outputs = gather(instances, c.layout.outputs);
    }

    /// Checks the segment proofs and records the inference as an event (the hashes of the
    /// model's public inputs and outputs, as for one verifier); reverts if they do not hold.
    function verifyChainInference(
        bytes32 modelId,
        uint256[][] calldata instances,
        bytes[] calldata proofs
    ) external returns (bool) {
        if (!checkChain(modelId, instances, proofs)) revert InvalidProof(modelId);
        (uint256[] memory inputs, uint256[] memory outputs) = chainInstances(modelId, instances);
        emit InferenceVerified(
            modelId, keccak256(abi.encodePacked(inputs)), keccak256(abi.encodePacked(outputs))
        );
        return true;
    }

    function liveChain(bytes32 modelId) private view returns (Chain storage c) {
        c = chains[modelId];
        if (c.verifiers.length == 0) revert UnknownModel(modelId);
        if (c.revoked) revert Revoked(modelId);
    }

    function equal(
        uint256[][] calldata instances,
        SegmentChain.Slice memory a,
        SegmentChain.Slice memory b
    ) private pure returns (bool) {
        if (a.len != b.len) return false;
        for (uint256 i = 0; i < a.len; i++) {
            if (instances[a.seg][a.at + i] != instances[b.seg][b.at + i]) return false;
        }
        return true;
    }

    function gather(uint256[][] calldata instances, SegmentChain.Slice[] storage slices)
        private
        view
        returns (uint256[] memory out)
    {
        uint256 total = 0;
        for (uint256 k = 0; k < slices.length; k++) {
            total += slices[k].len;
        }
        out = new uint256[](total);
        uint256 at = 0;
        for (uint256 k = 0; k < slices.length; k++) {
            SegmentChain.Slice memory sl = slices[k];
            for (uint256 i = 0; i < sl.len; i++) {
                out[at++] = instances[sl.seg][sl.at + i];
            }
        }
    }

    /// Revokes `modelId` (one verifier or a chain) for good: every later check of it reverts
    /// `Revoked`.
    function revoke(bytes32 modelId) external onlyOwner {
        Model storage m = models[modelId];
        if (m.verifier == address(0)) {
            Chain storage c = chains[modelId];
            if (c.verifiers.length == 0) revert UnknownModel(modelId);
            if (c.revoked) revert Revoked(modelId);
            c.revoked = true;
            emit ModelRevoked(modelId);
            return;
        }
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
