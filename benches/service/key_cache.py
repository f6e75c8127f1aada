#!/usr/bin/env python3
"""What the workers' proving-key cache saves (stdlib only): for each model, `zkinfer serve`
(SQLite, one worker) sets it up, then proves it three times in a row: the first proof loads
the keys from the store, the next find them in memory. The server is then restarted on the
same data dir and proves once more: keys from the worker's disk cache. Prints, per proof,
where the keys came from, load_ms, prove_ms and the job's wall time (claim to end).

Usage: benches/service/key_cache.py [--models 1l_mlp,lstm,4l_relu_conv_fc]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import CORPUS, ROOT, multipart, request  # noqa: E402


def serve(zk, data):
    srv = subprocess.Popen([zk, "serve", "--bind", "127.0.0.1:0", "--workers", "1", "--data-dir", str(data)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(srv.stdout.readline().split("http://127.0.0.1:")[1].split()[0])
    return srv, port


def stop(srv):
    srv.terminate()
    srv.wait(timeout=120)


def wait(port, key, path):
    while True:
        _, v, _ = request(port, "GET", path, key)
        if v["status"] not in ("queued", "running"):
            return v
        time.sleep(0.1)


def prove(port, key, mid, payload):
    s, v, _ = request(port, "POST", f"/v1/models/{mid}/proofs", key, payload, "application/json")
    assert s == 202, (s, v)
    j = wait(port, key, f"/v1/jobs/{v['job_id']}")
    assert j["status"] == "succeeded", j
    t = j["timings"]
    return t["keys_from"], t["load_ms"], t["prove_ms"], t["finished_ms"] - t["started_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="1l_mlp,lstm,4l_relu_conv_fc")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "-q", "--workspace", "--bins"], cwd=ROOT, check=True)
    import os
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "zkinfer-target"))
    zk = str(Path(target) / "debug" / "zkinfer")
    print("| model | k | proof | keys from | load ms | prove ms | job ms |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        data = Path(tempfile.mkdtemp(prefix="zkinfer-keys-")) / "data"
        out = subprocess.run([zk, "keys", "create", "--tenant", "bench", "--data-dir", str(data)],
                             capture_output=True, text=True, check=True)
        key = out.stdout.split()[-1]
        ex = CORPUS / name
        srv, port = serve(zk, data)
        body, ctype = multipart([("model", (ex / "network.onnx").read_bytes()),
                                 ("calibration", (ex / "input.json").read_bytes())])
        s, v, _ = request(port, "POST", "/v1/models", key, body, ctype)
        assert s == 202, (s, v)
        mid = v["id"]
        m = wait(port, key, f"/v1/models/{mid}")
        assert m["status"] == "ready", m
        payload = json.dumps({"input_data": json.loads((ex / "input.json").read_text())["input_data"]})
        rows = [prove(port, key, mid, payload) for _ in range(3)]
        stop(srv)
        srv, port = serve(zk, data)
        rows.append(prove(port, key, mid, payload))
        stop(srv)
        for i, (src, load, pr, job) in enumerate(rows):
            print(f"| {name} | {m['k']} | {i + 1} | {src} | {load} | {pr} | {job} |", flush=True)


if __name__ == "__main__":
    main()
