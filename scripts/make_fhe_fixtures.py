"""The digits MLP of the FHE tests: 64→16→10 ReLU, trained on scikit-learn's 8×8 digits.

Writes into the folder given on the command line:
- network.onnx: the float model (Gemm, Relu, Gemm);
- calibration.json: 400 training digits as "calibration_samples" (zkinfer's format);
- input.json: one held-out digit (EZKL format);
- test.json: the first 100 held-out digits, their labels and the float model's predictions.
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


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.25, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(16,), activation="relu", max_iter=2000, alpha=1e-3, random_state=0)
    clf.fit(x_train, y_train)
    w1, w2 = (w.astype(np.float32) for w in clf.coefs_)
    b1, b2 = (b.astype(np.float32) for b in clf.intercepts_)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"], name="dense1"),
            helper.make_node("Relu", ["h"], ["h_relu"], name="relu1"),
            helper.make_node("Gemm", ["h_relu", "w2", "b2"], ["logits"], name="dense2"),
        ],
        "digits_mlp_16",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="zkinfer-fhe-fixture")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out / "network.onnx")
    sess = ort.InferenceSession(str(out / "network.onnx"))
    flat = lambda v: [float(t) for t in v]  # noqa: E731
    (out / "calibration.json").write_text(json.dumps({"calibration_samples": [[flat(s)] for s in x_train[:400]]}) + "\n")
    (out / "input.json").write_text(json.dumps({"input_data": [flat(x_test[0])]}) + "\n")
    test = x_test[:100]
    pred = [int(np.argmax(sess.run(None, {"input": s[None, :]})[0])) for s in test]
    acc = float(np.mean(np.array(pred) == y_test[:100]))
    (out / "test.json").write_text(json.dumps({
        "samples": [flat(s) for s in test],
        "labels": [int(v) for v in y_test[:100]],
        "float_predictions": pred,
        "float_accuracy": acc,
    }) + "\n")
    print(f"float accuracy on the 100 test digits: {acc:.2f} (all {len(x_test)}: {clf.score(x_test, y_test):.3f})")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
