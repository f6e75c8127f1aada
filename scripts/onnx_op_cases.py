"""ONNX's own operator test cases (onnx.backend.test node cases), written out for zkinfer's
op-coverage test: every case whose inputs and outputs are all float32 tensors, as

    OUT/<case>/network.onnx   the case's model; its first input stays the model input, the
                              others become constants (weights, as in real models)
    OUT/<case>/input.json     EZKL format, the first data set's first input
    OUT/<case>/expected.json  the reference outputs (output_data, output_shapes)
    OUT/<case>/ops.txt        the op types of the model's nodes

Run through scripts/onnx-op-cases.sh.
"""
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from onnx import TensorProto, numpy_helper
from onnx.backend.test.case import node


def is_f32_tensor(value_info):
    t = value_info.type
    return t.HasField("tensor_type") and t.tensor_type.elem_type == TensorProto.FLOAT


def main(out):
    warnings.simplefilter("ignore")
    out.mkdir(parents=True, exist_ok=True)
    kept = 0
    for case in node.collect_testcases(None):
        m = case.model
        if not case.data_sets or not m.graph.input:
            continue
        ins, outs = case.data_sets[0]
        g = m.graph
        if not all(is_f32_tensor(v) for v in list(g.input) + list(g.output)):
            continue
        if len(ins) != len(g.input) or len(outs) != len(g.output):
            continue
        arrays = [np.asarray(a) for a in ins]
        if any(a.dtype != np.float32 or a.size == 0 for a in arrays):
            continue
        if any(np.asarray(o).dtype != np.float32 for o in outs):
            continue
        # Inputs after the first become initializers.
        for vi, a in zip(list(g.input)[1:], arrays[1:]):
            g.initializer.append(numpy_helper.from_array(a, vi.name))
        del g.input[1:]
        d = out / case.name
        d.mkdir(parents=True, exist_ok=True)
        (d / "network.onnx").write_bytes(m.SerializeToString())
        (d / "input.json").write_text(json.dumps({"input_data": [arrays[0].ravel().astype(float).tolist()]}))
        (d / "expected.json").write_text(json.dumps({
            "producer": "onnx.backend.test reference",
            "output_shapes": [list(np.asarray(o).shape) for o in outs],
            "output_data": [np.asarray(o, dtype=np.float64).ravel().tolist() for o in outs],
        }))
        (d / "ops.txt").write_text(",".join(sorted({n.op_type for n in g.node})) + "\n")
        kept += 1
    print(f"{kept} float32 cases written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
