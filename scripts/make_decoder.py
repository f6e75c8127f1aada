"""A GPT-style decoder as PyTorch exports one, written with onnx's helper (no torch here):
pre-norm blocks of causal multi-head self-attention, the mask applied as `masked_fill(future,
-inf)` exports it (Where with a constant condition and a -inf branch), and an MLP with the
exact GELU (Erf, as `nn.GELU()` exports it), residual streams, a final LayerNorm and a head.
Weights are random (seeded), scaled as a trained model's are (1/sqrt(fan-in)).

    python scripts/make_decoder.py OUT_DIR --blocks 2 --dim 32 --tokens 16 --heads 2

writes OUT_DIR/network.onnx, input.json (EZKL format: the embedded tokens) and expected.json
(onnxruntime's outputs). Used by benches/decoder/run.sh.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def build(blocks, d, t, heads, out_dim, seed):
    g = np.random.default_rng(seed)
    dh = d // heads
    nodes, inits = [], {}

    def const(name, value):
        inits[name] = np.asarray(value)
        return name

    def lin(x, name, fan_in, fan_out, bias=True):
        w = const(f"{name}.w", (g.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32))
        nodes.append(helper.make_node("MatMul", [x, w], [f"{name}.mm"]))
        if not bias:
            return f"{name}.mm"
        b = const(f"{name}.b", (g.standard_normal(fan_out) * 0.02).astype(np.float32))
        nodes.append(helper.make_node("Add", [f"{name}.mm", b], [f"{name}.out"]))
        return f"{name}.out"

    def norm(x, name):
        scale = const(f"{name}.g", (1 + g.standard_normal(d) * 0.05).astype(np.float32))
        shift = const(f"{name}.beta", (g.standard_normal(d) * 0.02).astype(np.float32))
        nodes.append(helper.make_node("LayerNormalization", [x, scale, shift], [f"{name}.out"],
                                      axis=-1, epsilon=1e-5))
        return f"{name}.out"

    const("future", np.triu(np.ones((t, t), dtype=bool), k=1))
    const("ninf", np.array(-np.inf, dtype=np.float32))
    const("inv_sqrt_dh", np.array(1 / np.sqrt(dh), dtype=np.float32))
    const("heads_shape", np.array([t, heads, dh], dtype=np.int64))
    const("flat_shape", np.array([t, d], dtype=np.int64))
    const("sqrt_half", np.array(1 / np.sqrt(2), dtype=np.float32))
    const("one", np.array(1.0, dtype=np.float32))
    const("half", np.array(0.5, dtype=np.float32))
    x = "x"
    for b in range(blocks):
        p = f"h{b}"
        h = norm(x, f"{p}.ln1")
        split = {}
        for part in "qkv":
            y = lin(h, f"{p}.{part}", d, d)
            nodes.append(helper.make_node("Reshape", [y, "heads_shape"], [f"{p}.{part}.heads"]))
            perm = [1, 2, 0] if part == "k" else [1, 0, 2]
            nodes.append(helper.make_node("Transpose", [f"{p}.{part}.heads"], [f"{p}.{part}.t"], perm=perm))
            split[part] = f"{p}.{part}.t"
        nodes += [
            helper.make_node("MatMul", [split["q"], split["k"]], [f"{p}.scores"]),
            helper.make_node("Mul", [f"{p}.scores", "inv_sqrt_dh"], [f"{p}.scaled"]),
            helper.make_node("Where", ["future", "ninf", f"{p}.scaled"], [f"{p}.masked"], name=f"{p}.masked_fill"),
            helper.make_node("Softmax", [f"{p}.masked"], [f"{p}.att"], axis=-1),
            helper.make_node("MatMul", [f"{p}.att", split["v"]], [f"{p}.ctx"]),
            helper.make_node("Transpose", [f"{p}.ctx"], [f"{p}.ctx.t"], perm=[1, 0, 2]),
            helper.make_node("Reshape", [f"{p}.ctx.t", "flat_shape"], [f"{p}.ctx.flat"]),
        ]
        a = lin(f"{p}.ctx.flat", f"{p}.proj", d, d)
        nodes.append(helper.make_node("Add", [x, a], [f"{p}.res1"]))
        h = norm(f"{p}.res1", f"{p}.ln2")
        u = lin(h, f"{p}.fc", d, 4 * d)
        # nn.GELU() exports as x · 0.5 · (1 + erf(x / √2)).
        nodes += [
            helper.make_node("Mul", [u, "sqrt_half"], [f"{p}.u.s"]),
            helper.make_node("Erf", [f"{p}.u.s"], [f"{p}.erf"]),
            helper.make_node("Add", [f"{p}.erf", "one"], [f"{p}.erf1"]),
            helper.make_node("Mul", [u, f"{p}.erf1"], [f"{p}.gx"]),
            helper.make_node("Mul", [f"{p}.gx", "half"], [f"{p}.gelu"]),
        ]
        m = lin(f"{p}.gelu", f"{p}.out", 4 * d, d)
        nodes.append(helper.make_node("Add", [f"{p}.res1", m], [f"{p}.res2"]))
        x = f"{p}.res2"
    h = norm(x, "lnf")
    y = lin(h, "head", d, out_dim, bias=False)
    nodes.append(helper.make_node("Identity", [y], ["y"]))
    graph = helper.make_graph(
        nodes, "decoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [t, d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [t, out_dim])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="zkinfer-decoder")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--out-dim", type=int, default=8)
    ap.add_argument("--seed", type=int, default=31)
    a = ap.parse_args()
    model = build(a.blocks, a.dim, a.tokens, a.heads, a.out_dim, a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, a.out / "network.onnx")
    x = np.random.default_rng(a.seed + 1).standard_normal((a.tokens, a.dim)).astype(np.float32)
    (y,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    (a.out / "input.json").write_text(json.dumps({"input_data": [[float(v) for v in x.ravel()]]}) + "\n")
    (a.out / "expected.json").write_text(json.dumps({
        "producer": f"onnxruntime {ort.__version__}",
        "output_shapes": [list(y.shape)],
        "output_data": [[float(v) for v in y.ravel()]],
    }) + "\n")


if __name__ == "__main__":
    main()
