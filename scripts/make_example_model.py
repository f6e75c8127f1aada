"""Train a 64→32→10 ReLU MLP on scikit-learn's 8×8 digits and export it as ONNX.

Writes network.onnx, input.json (EZKL format: one held-out digit) and expected.json
(onnxruntime's float outputs on it) into the folder given on the command line.

With `--finetune SRC OUT`: loads SRC/network.onnx's weights into the classifier, trains 30
more epochs on the training split with another shuffle, and writes the fine-tuned model to
OUT (same architecture, other weights: the sibling `compile --like` and `--weights hashed`
are shown with).
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier


def digits_split():
    """scikit-learn's 8×8 digits, pixels scaled to [0, 1], split 75/25 (fixed seed)."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixels in [0, 1]
    return train_test_split(x, digits.target, test_size=0.25, random_state=0)


def mlp_onnx(clf, name, producer, batch):
    """A trained one-hidden-layer ReLU MLPClassifier as ONNX: Gemm, Relu, Gemm."""
    w1, w2 = (w.astype(np.float32) for w in clf.coefs_)
    b1, b2 = (b.astype(np.float32) for b in clf.intercepts_)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], name="dense1"),
            helper.make_node("Relu", ["h"], ["h_relu"], name="relu1"),
            helper.make_node("Gemm", ["h_relu", "w2", "b2"], ["logits"], name="dense2"),
        ],
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name=producer)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def finetune(src: Path):
    """SRC's MLP trained 30 more epochs (another shuffle seed), as a classifier."""
    x_train, x_test, y_train, y_test = digits_split()
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(src / "network.onnx").graph.initializer}
    clf = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", random_state=1)
    clf.partial_fit(x_train, y_train, classes=np.arange(10))
    clf.coefs_ = [weights["w1"].astype(np.float64), weights["w2"].astype(np.float64)]
    clf.intercepts_ = [weights["b1"].astype(np.float64), weights["b2"].astype(np.float64)]
    print(f"before fine-tuning: test accuracy {clf.score(x_test, y_test):.3f}")
    for _ in range(30):
        clf.partial_fit(x_train, y_train)
    return clf


def main(out: Path, src: Path | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    x_train, x_test, y_train, y_test = digits_split()
    if src is None:
        clf = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", max_iter=600, random_state=0)
        clf.fit(x_train, y_train)
    else:
        clf = finetune(src)
    print(f"test accuracy {clf.score(x_test, y_test):.3f}")
    model = mlp_onnx(clf, "digits_mlp", "zkinfer-example", "batch_size")
    onnx.save(model, out / "network.onnx")

    sample = x_test[:1]
    (out / "input.json").write_text(json.dumps({"input_data": [[float(v) for v in sample[0]]]}, indent=1) + "\n")
    logits = ort.InferenceSession(str(out / "network.onnx")).run(None, {"input": sample})[0]
    (out / "expected.json").write_text(json.dumps({
        "producer": f"onnxruntime {ort.__version__}",
        "label": int(y_test[0]),
        "output_shapes": [list(logits.shape)],
        "output_data": [[float(v) for v in logits[0]]],
    }, indent=1) + "\n")
    print(f"wrote {out}: label {int(y_test[0])}, predicted {int(np.argmax(logits))}")


if __name__ == "__main__":
    if sys.argv[1] == "--finetune":
        main(Path(sys.argv[3]), Path(sys.argv[2]))
    else:
        main(Path(sys.argv[1]))
