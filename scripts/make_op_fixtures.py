"""Small ONNX models, one per op variant the importer claims (strides, dilations, groups,
asymmetric pads, pooling modes, Gather, Transpose, two-input products, …), each with an
input.json (EZKL format) and expected.json (onnxruntime's outputs).

Run through scripts/make-op-fixtures.sh; writes model/tests/fixtures/<name>/.
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)


def w(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def model(name, nodes, inputs, outputs, inits, opset=13):
    g = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="zkinfer-fixtures")
    m.ir_version = 8
    # Outputs are declared without shapes (left to inference), which the full checker rejects.
    return onnx.shape_inference.infer_shapes(m)


def save(out, name, m, inputs):
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    onnx.save(m, d / "network.onnx")
    feeds = {i.name: v for i, v in zip(m.graph.input, inputs)}
    res = ort.InferenceSession(m.SerializeToString()).run(None, feeds)
    (d / "input.json").write_text(json.dumps({"input_data": [[float(x) for x in v.ravel()] for v in inputs]}) + "\n")
    (d / "expected.json").write_text(json.dumps({
        "producer": f"onnxruntime {ort.__version__}",
        "output_shapes": [list(r.shape) for r in res],
        "output_data": [[float(x) for x in r.ravel()] for r in res],
    }) + "\n")


def main(out):
    x = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)  # noqa: E731
    save(out, "conv_groups_dilation", model("c", [
        helper.make_node("Conv", ["x", "W", "B"], ["y"], group=2, dilations=[2, 2], strides=[2, 1], pads=[1, 0, 2, 1]),
    ], [("x", [1, 4, 9, 9])], ["y"], {"W": w(6, 2, 3, 3), "B": w(6)}), [x(1, 4, 9, 9)])
    save(out, "conv1d_stride", model("c1", [
        helper.make_node("Conv", ["x", "W"], ["y"], strides=[2], pads=[1, 1]),
    ], [("x", [1, 2, 10])], ["y"], {"W": w(3, 2, 3)}), [x(1, 2, 10)])
    save(out, "maxpool_stride_pad", model("mp", [
        helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    ], [("x", [1, 2, 7, 7])], ["y"], {}), [x(1, 2, 7, 7)])
    save(out, "avgpool_exclude_pad", model("ap", [
        helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         count_include_pad=0),
    ], [("x", [1, 2, 7, 7])], ["y"], {}), [x(1, 2, 7, 7)])
    save(out, "gather_transpose_flatten", model("gt", [
        helper.make_node("Gather", ["x", "idx"], ["g"], axis=1),
        helper.make_node("Transpose", ["g"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Flatten", ["t"], ["y"], axis=1),
    ], [("x", [1, 4, 3])], ["y"], {"idx": np.array([2, 0, 2], dtype=np.int64)}), [x(1, 4, 3)])
    save(out, "sub_div_reducesum", model("sd", [
        helper.make_node("Sub", ["c", "x"], ["s"]),
        helper.make_node("Div", ["s", "three"], ["d"]),
        helper.make_node("ReduceSum", ["d", "axes"], ["y"], keepdims=0),
    ], [("x", [1, 3, 5])], ["y"], {"c": w(1, 3, 5), "three": np.array([3.0], dtype=np.float32),
                                   "axes": np.array([2], dtype=np.int64)}), [x(1, 3, 5)])
    save(out, "two_inputs_matmul_mul", model("mm", [
        helper.make_node("MatMul", ["a", "b"], ["p"]),
        helper.make_node("Mul", ["p", "p"], ["sq"]),
        helper.make_node("Clip", ["sq", "lo", "hi"], ["y"]),
    ], [("a", [1, 3, 4]), ("b", [1, 4, 2])], ["y"], {"lo": np.array(0.05, dtype=np.float32),
                                                      "hi": np.array(0.8, dtype=np.float32)}),
         [x(1, 3, 4), x(1, 4, 2)])
    save(out, "pad_reflect_concat_slice", model("pr", [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
        helper.make_node("Concat", ["p", "p"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "starts", "ends", "axes", "steps"], ["y"]),
    ], [("x", [1, 2, 4])], ["y"], {"pads": np.array([0, 0, 1, 0, 0, 2], dtype=np.int64),
                                   "starts": np.array([1, 6], dtype=np.int64), "ends": np.array([4, 0], dtype=np.int64),
                                   "axes": np.array([1, 2], dtype=np.int64), "steps": np.array([1, -2], dtype=np.int64)}),
         [x(1, 2, 4)])
    save(out, "gemm_transb_alpha_bn", model("gb", [
        helper.make_node("Gemm", ["x", "W", "B"], ["g"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Reshape", ["g", "shape"], ["r"]),
        helper.make_node("BatchNormalization", ["r", "s", "bb", "m", "v"], ["n"]),
        helper.make_node("Relu", ["n"], ["y"]),
    ], [("x", [1, 6])], ["y"], {"W": w(4, 6), "B": w(4), "shape": np.array([1, 4, 1, 1], dtype=np.int64),
                                "s": w(4), "bb": w(4), "m": w(4), "v": np.abs(w(4)) + 0.5}), [x(1, 6)])
    save(out, "reduce_mean_max", model("rm", [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[2], keepdims=1),
        helper.make_node("ReduceMax", ["x"], ["mx"], axes=[1], keepdims=0),
    ], [("x", [1, 3, 6])], ["mean", "mx"], {}), [x(1, 3, 6)])


def selects(out):
    """Where with a constant condition (an attention mask): a variable branch against a
    constant one, and two variable branches, broadcast. Its own generator, so the fixture is
    the same whether made alone or with the rest."""
    g = np.random.default_rng(11)
    mask = np.array([[True, False, True, True], [False, True, False, True], [True, True, False, False]])
    x = g.uniform(-1, 1, (1, 3, 4)).astype(np.float32)
    m = model("wh", [
        helper.make_node("Where", ["mask", "x", "neg"], ["masked"]),
        helper.make_node("Mul", ["x", "x"], ["sq"]),
        helper.make_node("Where", ["mask", "sq", "masked"], ["y"]),
    ], [("x", [1, 3, 4])], ["y"], {"neg": np.array([-2.5], dtype=np.float32)})
    m.graph.initializer.append(numpy_helper.from_array(mask, "mask"))
    save(out, "where_const_mask", m, [x])


def transposed_and_elu(out):
    """ConvTranspose (strides, asymmetric pads, output padding, groups, bias) and Elu with
    inputs far past where e^x would overflow. Own generator, as `selects`."""
    g = np.random.default_rng(13)
    x = g.uniform(-1, 1, (1, 4, 5, 5)).astype(np.float32)
    save(out, "conv_transpose_groups", model("ct", [
        helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], group=2, strides=[2, 2],
                         pads=[1, 0, 1, 1], output_padding=[1, 0]),
    ], [("x", [1, 4, 5, 5])], ["y"], {
        "W": (g.standard_normal((4, 3, 3, 3)) * 0.5).astype(np.float32),
        "B": (g.standard_normal(6) * 0.5).astype(np.float32),
    }), [x])
    e = np.array([[-6.0, -2.0, -0.5, 0.0, 0.25, 3.0, 12.0, 40.0]], dtype=np.float32)
    save(out, "elu_alpha", model("el", [
        helper.make_node("Elu", ["x"], ["y"], alpha=0.7),
    ], [("x", [1, 8])], ["y"], {}), [e])


def attention_products(out):
    """One attention head over 16 tokens: three projections by one weight matrix each, then
    Q·Kᵀ and softmax·V between activations, the products Freivalds' check is for; then a
    mean over tokens and a 32→4 head. Own generator, as `selects`."""
    g = np.random.default_rng(17)
    x = g.uniform(-1, 1, (16, 32)).astype(np.float32)
    proj = lambda: (g.standard_normal((32, 32)) / np.sqrt(32)).astype(np.float32)
    save(out, "attention_products", model("at", [
        helper.make_node("MatMul", ["x", "Wq"], ["q"]),
        helper.make_node("MatMul", ["x", "Wk"], ["k"]),
        helper.make_node("MatMul", ["x", "Wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[1, 0]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["a"]),
        # A small head keeps the public outputs (and the Solidity verifier) small.
        helper.make_node("ReduceMean", ["a"], ["m"], axes=[0], keepdims=1),
        helper.make_node("MatMul", ["m", "Wo"], ["y"]),
    ], [("x", [16, 32])], ["y"], {
        "Wq": proj(), "Wk": proj(), "Wv": proj(),
        "Wo": (g.standard_normal((32, 4)) * 0.5).astype(np.float32),
        "scale": np.array([1 / np.sqrt(32)], dtype=np.float32),
    }), [x])


def matmul_bias(out):
    """y = x[32,64]·W[64,16] + B: one weight matrix shared by 32 rows, the product Freivalds'
    check is for (and the weight forgery of layout 1, which the CLI's forgery test replays).
    Own generator, as `selects`."""
    g = np.random.default_rng(23)
    x = g.uniform(-1, 1, (32, 64)).astype(np.float32)
    save(out, "matmul_bias", model("mb", [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Add", ["h", "B"], ["y"]),
    ], [("x", [32, 64])], ["y"], {
        "W": (g.standard_normal((64, 16)) / 8).astype(np.float32),
        "B": (g.standard_normal(16) * 0.1).astype(np.float32),
    }), [x])


def token_embedding(out):
    """Gather at indices the input gives: int64 token ids (one negative, counting from the end
    as ONNX allows) into an embedding table, plus position embeddings, then a projection and
    a mean over tokens. Own generator, as `selects`."""
    g = np.random.default_rng(19)
    ids = np.array([[3, 7, 0, 9, -1, 3]], dtype=np.int64)
    graph = helper.make_graph([
        helper.make_node("Gather", ["wte", "ids"], ["tok"], axis=0),
        helper.make_node("Add", ["tok", "wpe"], ["h"]),
        helper.make_node("MatMul", ["h", "W"], ["p"]),
        helper.make_node("ReduceMean", ["p"], ["y"], axes=[1], keepdims=0),
    ], "te", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [
        numpy_helper.from_array((g.standard_normal((10, 8)) * 0.5).astype(np.float32), "wte"),
        numpy_helper.from_array((g.standard_normal((6, 8)) * 0.1).astype(np.float32), "wpe"),
        numpy_helper.from_array((g.standard_normal((8, 3)) * 0.5).astype(np.float32), "W"),
    ])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="zkinfer-fixtures")
    m.ir_version = 8
    save(out, "token_embedding", onnx.shape_inference.infer_shapes(m), [ids])


def causal_masks(out, refused=None):
    """Causal self-attention as decoders export it: the mask of future tokens as
    `masked_fill(…, -inf)` (Where with a constant condition), and as an additive mask of the
    dtype's minimum applied before the scaling and a reshape. Both outputs cover every token,
    so a test can check that a future token never changes an earlier output. With `refused`:
    a mask on a path that is not a softmax, and a fully masked row. Own generator, as
    `selects`."""
    g = np.random.default_rng(29)
    t, d = 8, 8
    x = g.uniform(-1, 1, (t, d)).astype(np.float32)
    proj = lambda: (g.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32)  # noqa: E731
    future = np.triu(np.ones((t, t), dtype=bool), k=1)
    head = [
        helper.make_node("MatMul", ["x", "Wq"], ["q"]),
        helper.make_node("MatMul", ["x", "Wk"], ["k"]),
        helper.make_node("MatMul", ["x", "Wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[1, 0]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
    ]
    tail = [
        helper.make_node("MatMul", ["p", "v"], ["a"]),
        helper.make_node("MatMul", ["a", "Wo"], ["y"]),
    ]
    weights = lambda: {"Wq": proj(), "Wk": proj(), "Wv": proj(),  # noqa: E731
                       "Wo": (g.standard_normal((d, 2)) * 0.5).astype(np.float32)}
    m = model("cw", head + [
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Where", ["future", "ninf", "ss"], ["masked"], name="masked_fill"),
        helper.make_node("Softmax", ["masked"], ["p"], axis=-1),
    ] + tail, [("x", [t, d])], ["y"], {
        **weights(), "scale": np.array([1 / np.sqrt(d)], dtype=np.float32),
        "ninf": np.array([-np.inf], dtype=np.float32),
    })
    m.graph.initializer.append(numpy_helper.from_array(future, "future"))
    save(out, "causal_where_inf", m, [x])
    additive = np.where(future, np.finfo(np.float32).min, 0).astype(np.float32)
    save(out, "causal_add_min", model("ca", head + [
        helper.make_node("Add", ["s", "mask"], ["sm"]),
        helper.make_node("Reshape", ["sm", "shape3"], ["s3"]),
        helper.make_node("Mul", ["s3", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p3"], axis=-1),
        helper.make_node("Reshape", ["p3", "shape2"], ["p"]),
    ] + tail, [("x", [t, d])], ["y"], {
        **weights(), "mask": additive, "scale": np.array([1 / np.sqrt(d)], dtype=np.float32),
        "shape3": np.array([1, t, t], dtype=np.int64), "shape2": np.array([t, t], dtype=np.int64),
    }), [x])
    # Masked max-pooling over tokens: ReduceMax skips the masked entries.
    g2 = np.random.default_rng(37)
    keep = np.array([[1, 1, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    m = model("mm", [
        helper.make_node("Where", ["keep", "x", "ninf"], ["masked"]),
        helper.make_node("ReduceMax", ["masked"], ["y"], axes=[1], keepdims=0),
    ], [("x", [3, 6])], ["y"], {"ninf": np.array([-np.inf], dtype=np.float32)})
    m.graph.initializer.append(numpy_helper.from_array(keep, "keep"))
    save(out, "masked_max", m, [g2.uniform(-1, 1, (3, 6)).astype(np.float32)])
    if refused is None:
        return
    for name, cond, after in [
        ("mask_not_softmax", future, [helper.make_node("Sigmoid", ["masked"], ["p"], name="squash")]),
        ("mask_fully_masked_row", np.vstack([np.ones((1, t), dtype=bool), future[1:]]),
         [helper.make_node("Softmax", ["masked"], ["p"], name="attend", axis=-1)]),
        # −1e4 scaled by 1e-4 is −1: a value, no longer a mask.
        ("mask_scaled_away", future, [
            helper.make_node("Mul", ["masked", "tiny"], ["scaled"]),
            helper.make_node("Softmax", ["scaled"], ["p"], name="attend", axis=-1),
        ]),
    ]:
        dd = refused / name
        dd.mkdir(parents=True, exist_ok=True)
        m = model(name, head + [
            helper.make_node("Where", ["cond", "big", "s"], ["masked"], name="mask_scores"),
        ] + after + tail, [("x", [t, d])], ["y"], {
            **weights(), "big": np.array([-1e4], dtype=np.float32),
            "tiny": np.array([1e-4], dtype=np.float32),
        })
        m.graph.initializer.append(numpy_helper.from_array(cond, "cond"))
        onnx.save(m, dd / "network.onnx")
        (dd / "input.json").write_text(json.dumps({"input_data": [[float(v) for v in x.ravel()]]}) + "\n")


def unsupported(out):
    """Models the importer must refuse, naming the ONNX node: one whose output is fresh
    randomness (RandomNormal: no circuit can prove it), and a Hardmax, which tract rewrites
    into nodes of its own (the error still names the node as the file does)."""
    d = out / "random_normal"
    d.mkdir(parents=True, exist_ok=True)
    m = model("ur", [
        helper.make_node("RandomNormal", [], ["noise"], name="add_noise", shape=[1, 4]),
        helper.make_node("Add", ["x", "noise"], ["y"]),
    ], [("x", [1, 4])], ["y"], {})
    onnx.save(m, d / "network.onnx")
    (d / "input.json").write_text(json.dumps({"input_data": [[0.1, 0.2, 0.3, 0.4]]}) + "\n")
    d = out / "where_variable"
    d.mkdir(parents=True, exist_ok=True)
    m = model("wv", [
        helper.make_node("Greater", ["x", "zero"], ["pos"]),
        helper.make_node("Where", ["pos", "x", "zero"], ["y"], name="keep_positive"),
    ], [("x", [1, 4])], ["y"], {"zero": np.array([0.0], dtype=np.float32)})
    onnx.save(m, d / "network.onnx")
    (d / "input.json").write_text(json.dumps({"input_data": [[0.1, -0.4, 0.3, -0.2]]}) + "\n")
    d = out / "hardmax"
    d.mkdir(parents=True, exist_ok=True)
    m = model("hm", [helper.make_node("Hardmax", ["x"], ["y"], name="pick", axis=-1)], [("x", [1, 4])], ["y"], {})
    onnx.save(m, d / "network.onnx")
    (d / "input.json").write_text(json.dumps({"input_data": [[0.1, 0.4, 0.3, 0.2]]}) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    selects(Path(sys.argv[1]))
    transposed_and_elu(Path(sys.argv[1]))
    attention_products(Path(sys.argv[1]))
    token_embedding(Path(sys.argv[1]))
    matmul_bias(Path(sys.argv[1]))
    causal_masks(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    if len(sys.argv) > 2:
        unsupported(Path(sys.argv[2]))
