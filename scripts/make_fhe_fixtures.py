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
from sklearn.neural_network import MLPClassifier

from make_example_model import digits_split, mlp_onnx


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    x_train, x_test, y_train, y_test = digits_split()
    clf = MLPClassifier(hidden_layer_sizes=(16,), activation="relu", max_iter=2000, alpha=1e-3, random_state=0)
    clf.fit(x_train, y_train)
    model = mlp_onnx(clf, "digits_mlp_16", "zkinfer-fhe-fixture", 1)
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
