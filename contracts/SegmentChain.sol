// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.19;

/// @title The wiring of a model proven as segments (`zkinfer compile --segments N`), as
/// `segments.json` holds it, and what follows from it on chain: the model id, and which public
/// values of which segment proofs must be equal.
/// @notice A segment's public values are, in order: the instances of the model inputs it reads
/// (every value of a public input, one commitment of a hashed or private one), one commitment
/// per link in (a tensor an earlier segment computed), the instances of the model outputs it
/// computes (every value of a public output, one commitment of a hashed one, none of a private
/// one), one commitment per link out. Two proofs agree on a tensor when their commitments to it
/// are equal (both are salted with the proof's one salt).
library SegmentChain {
    /// `segments.json`'s fields that the model id covers, with each model tensor's element
    /// count (which fixes how many public values stand for it).
    struct Spec {
        bytes32 modelSha256;
        bytes32 qgraphSha256;
        uint32 scale;
        uint32 actBits;
        /// 0 public, 1 private, 2 hashed.
        uint8 inputVisibility;
        uint8 outputVisibility;
        uint32[] inputElements;
        uint32[] outputElements;
        Segment[] segments;
    }

    /// One segment's place in the graph and its wiring.
    struct Segment {
        uint32 first;
        uint32 end;
        /// Model inputs it reads (positions), its first public values in this order.
        uint32[] modelInputs;
        /// Whole-graph nodes earlier segments computed that it reads.
        uint32[] linksIn;
        /// Model outputs it computes (positions).
        uint32[] modelOutputs;
        /// Nodes it computes that later segments read.
        uint32[] linksOut;
    }

    /// `len` public values of segment `seg` from index `at`.
    struct Slice {
        uint32 seg;
        uint32 at;
        uint32 len;
    }

    /// The layout of a chain's public values, derived once at registration.
    struct Layout {
        /// Per segment: its count of public values, and of those standing for inputs.
        uint32[] numInstances;
        uint32[] numInputs;
        /// Pairs of slices that must hold equal values: every link (the producer's
        /// commitment, the reader's), and every further reader of a model input.
        Slice[] equalA;
        Slice[] equalB;
        /// The model's public values: per model input its first reader's (none when inputs
        /// are private), then per model output its producer's.
        Slice[] inputs;
        Slice[] outputs;
    }

    /// The domain separator of a segmented model's id (as `segments.rs` hashes it).
    bytes internal constant DOMAIN = "zkinfer segmented model id v2";

    error BadWiring(uint256 segment, string reason);

    /// The segmented model id: sha256 over the domain, the spec and each segment's id (what its
    /// verifier reports), in the byte layout `SegmentsFile::model_id` documents.
    function modelId(Spec calldata spec, bytes32[] memory segmentIds)
        internal
        pure
        returns (bytes32)
    {
        bytes memory buf = abi.encodePacked(
            DOMAIN,
            spec.modelSha256,
            spec.qgraphSha256,
            spec.scale,
            spec.actBits,
            spec.inputVisibility,
            spec.outputVisibility
        );
        buf = bytes.concat(buf, list(spec.inputElements), list(spec.outputElements));
        buf = bytes.concat(buf, bytes4(uint32(spec.segments.length)));
        for (uint256 s = 0; s < spec.segments.length; s++) {
            Segment calldata g = spec.segments[s];
            buf = bytes.concat(
                buf, segmentIds[s], bytes4(g.first), bytes4(g.end), list(g.modelInputs)
            );
            buf = bytes.concat(
                buf, list(g.linksIn), list(g.modelOutputs), list(g.linksOut)
            );
        }
        return sha256(buf);
    }

    /// `uint32 length ‖ uint32 entries`, big-endian.
    function list(uint32[] calldata xs) private pure returns (bytes memory out) {
        out = abi.encodePacked(uint32(xs.length));
        for (uint256 i = 0; i < xs.length; i++) {
            out = bytes.concat(out, bytes4(xs[i]));
        }
    }

    /// Public values standing for a model input of `elements` values.
    function inputCount(Spec calldata spec, uint256 i) private pure returns (uint32) {
        return spec.inputVisibility == 0 ? spec.inputElements[i] : 1;
    }

    /// Public values standing for a model output of `elements` values.
    function outputCount(Spec calldata spec, uint256 o) private pure returns (uint32) {
        if (spec.outputVisibility == 0) return spec.outputElements[o];
        return spec.outputVisibility == 2 ? 1 : 0;
    }

    /// What [`layout`] tracks while it walks the segments.
    struct Scratch {
        /// Model inputs read so far, model outputs computed so far.
        bool[] read;
        bool[] computed;
        /// Where segment `p`'s links out start in `consumed` (`base[p]`), and which have been
        /// read by a later segment.
        uint256[] base;
        bool[] consumed;
        /// Equal pairs filled so far.
        uint256 pairs;
    }

    /// Checks the wiring as `SegmentsFile::check` does (node ranges increasing; every model
    /// input read; every model output computed by exactly one segment; each segment's model
    /// inputs, links in and links out strictly increasing; every link out one of its own
    /// nodes, read by a later segment; every link in computed by an earlier one; outputs
    /// public or hashed) and derives the layout. A link with no producer would leave a
    /// segment's input unchecked, so it is refused, not skipped.
    function layout(Spec calldata spec) internal pure returns (Layout memory l) {
        uint256 n = spec.segments.length;
        if (n < 2) revert BadWiring(n, "fewer than two segments");
        if (spec.inputVisibility > 2 || spec.outputVisibility > 2 || spec.outputVisibility == 1) {
            revert BadWiring(0, "visibility");
        }
        Scratch memory t;
        t.base = linkBases(spec);
        t.consumed = new bool[](t.base[n]);
        t.read = new bool[](spec.inputElements.length);
        t.computed = new bool[](spec.outputElements.length);
        l.numInstances = new uint32[](n);
        l.numInputs = new uint32[](n);
        l.inputs = new Slice[](spec.inputElements.length);
        l.outputs = new Slice[](spec.outputElements.length);
        uint256 pairs = 0;
        for (uint256 s = 0; s < n; s++) {
            pairs += spec.segments[s].linksIn.length + spec.segments[s].modelInputs.length;
        }
        l.equalA = new Slice[](pairs);
        l.equalB = new Slice[](pairs);
        uint32 lastEnd = 0;
        for (uint256 s = 0; s < n; s++) {
            Segment calldata g = spec.segments[s];
            if (g.first >= g.end || g.first < lastEnd) revert BadWiring(s, "node range");
            lastEnd = g.end;
            place(spec, l, t, s);
        }
        for (uint256 i = 0; i < t.read.length; i++) {
            if (!t.read[i]) revert BadWiring(n, "a model input no segment reads");
        }
        for (uint256 o = 0; o < t.computed.length; o++) {
            if (!t.computed[o]) revert BadWiring(n, "a model output no segment computes");
        }
        for (uint256 k = 0; k < t.consumed.length; k++) {
            if (!t.consumed[k]) revert BadWiring(n, "a link out no later segment reads");
        }
        // Trims the pairs arrays to those filled (first readers made none).
        Slice[] memory a = l.equalA;
        Slice[] memory b = l.equalB;
        pairs = t.pairs;
        assembly {
            mstore(a, pairs)
            mstore(b, pairs)
        }
    }

    /// Checks each segment's lists (increasing; links out its own nodes) and returns where
    /// each segment's links out start in a list of all of them.
    function linkBases(Spec calldata spec) private pure returns (uint256[] memory base) {
        uint256 n = spec.segments.length;
        base = new uint256[](n + 1);
        for (uint256 s = 0; s < n; s++) {
            Segment calldata g = spec.segments[s];
            increasing(g.modelInputs, s);
            increasing(g.linksIn, s);
            increasing(g.linksOut, s);
            for (uint256 i = 0; i < g.linksOut.length; i++) {
                if (g.linksOut[i] < g.first || g.linksOut[i] >= g.end) {
                    revert BadWiring(s, "a link out of another segment's nodes");
                }
            }
            base[s + 1] = base[s] + g.linksOut.length;
        }
    }

    /// Lays out segment `s`'s public values: its model inputs (a later reader of one is
    /// paired with its first), its links in (each paired with its producer's link out), its
    /// model outputs, its links out.
    function place(Spec calldata spec, Layout memory l, Scratch memory t, uint256 s)
        private
        pure
    {
        Segment calldata g = spec.segments[s];
        uint32 at = 0;
        for (uint256 k = 0; k < g.modelInputs.length; k++) {
            uint256 i = g.modelInputs[k];
            if (i >= t.read.length) revert BadWiring(s, "model input");
            Slice memory mine = Slice(uint32(s), at, inputCount(spec, i));
            if (t.read[i]) {
                (l.equalA[t.pairs], l.equalB[t.pairs]) = (l.inputs[i], mine);
                t.pairs++;
            } else {
                (t.read[i], l.inputs[i]) = (true, mine);
            }
            at += mine.len;
        }
        for (uint256 j = 0; j < g.linksIn.length; j++) {
            (l.equalA[t.pairs], l.equalB[t.pairs]) =
                (producer(spec, s, g.linksIn[j], t), Slice(uint32(s), at, 1));
            t.pairs++;
            at++;
        }
        l.numInputs[s] = at;
        for (uint256 k = 0; k < g.modelOutputs.length; k++) {
            uint256 o = g.modelOutputs[k];
            if (o >= t.computed.length || t.computed[o]) revert BadWiring(s, "model output");
            t.computed[o] = true;
            l.outputs[o] = Slice(uint32(s), at, outputCount(spec, o));
            at += l.outputs[o].len;
        }
        l.numInstances[s] = at + uint32(g.linksOut.length);
    }

    /// Reverts unless `xs` strictly increases.
    function increasing(uint32[] calldata xs, uint256 s) private pure {
        for (uint256 i = 1; i < xs.length; i++) {
            if (xs[i - 1] >= xs[i]) revert BadWiring(s, "a list not increasing");
        }
    }

    /// The commitment of node `node` by the segment before `s` that computes it (links out lie
    /// within their segment's node range and ranges do not overlap, so there is one), marked
    /// as read in `t.consumed`.
    function producer(Spec calldata spec, uint256 s, uint32 node, Scratch memory t)
        private
        pure
        returns (Slice memory)
    {
        for (uint256 p = s; p > 0; p--) {
            Segment calldata g = spec.segments[p - 1];
            for (uint256 i = 0; i < g.linksOut.length; i++) {
                if (g.linksOut[i] == node) {
                    t.consumed[t.base[p - 1] + i] = true;
                    uint32 at = uint32(
                        linkOutStart(spec, g) + i
                    );
                    return Slice(uint32(p - 1), at, 1);
                }
            }
        }
        revert BadWiring(s, "a link no earlier segment computes");
    }

    /// Where segment `g`'s link-out commitments start among its public values.
    function linkOutStart(Spec calldata spec, Segment calldata g) private pure returns (uint256 at) {
        for (uint256 k = 0; k < g.modelInputs.length; k++) {
            if (g.modelInputs[k] >= spec.inputElements.length) revert BadWiring(0, "model input");
            at += inputCount(spec, g.modelInputs[k]);
        }
        at += g.linksIn.length;
        for (uint256 k = 0; k < g.modelOutputs.length; k++) {
            if (g.modelOutputs[k] >= spec.outputElements.length) {
                revert BadWiring(0, "model output");
            }
            at += outputCount(spec, g.modelOutputs[k]);
        }
    }
}
