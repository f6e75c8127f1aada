#!/usr/bin/env python3
"""Load test of the HTTP service (stdlib only): N clients on 127.0.0.1 submit proof requests
and poll their jobs while the server's workers prove them; prints requests/s and p50/p99
latency of POST /v1/models/{id}/proofs and GET /v1/jobs/{id}, on SQLite and on PostgreSQL.

Usage: benches/service/load.py [--clients N] [--jobs-per-client M] [--workers W] [--model NAME]
       [--postgres URL]   (default: scripts/postgres.sh's scratch database)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "ezkl-examples"


def request(port, method, path, key, body=None, ctype=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    h = {"Authorization": f"Bearer {key}"}
    if ctype:
        h["Content-Type"] = ctype
    h.update(headers or {})
    t = time.perf_counter()
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    dt = time.perf_counter() - t
    c.close()
    return r.status, (json.loads(data) if data else None), dt


def multipart(fields):
    b = uuid.uuid4().hex
    out = b""
    for name, data in fields:
        out += f"--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000 if xs else float("nan")


def run(zk, db_url, args):
    work = Path(tempfile.mkdtemp(prefix="zkinfer-load-"))
    env = dict(os.environ)
    base = ["--data-dir", str(work / "data")] + (["--database-url", db_url] if db_url else [])
    out = subprocess.run([zk, "keys", "create", "--tenant", "load", *base], capture_output=True, text=True, check=True)
    key = out.stdout.split()[-1]
    srv = subprocess.Popen([zk, "serve", "--bind", "127.0.0.1:0", "--workers", str(args.workers), *base],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = srv.stdout.readline()
    port = int(line.split("http://127.0.0.1:")[1].split()[0])
    try:
        ex = CORPUS / args.model
        body, ctype = multipart([("model", (ex / "network.onnx").read_bytes()), ("calibration", (ex / "input.json").read_bytes())])
        s, v, _ = request(port, "POST", "/v1/models", key, body, ctype)
        assert s == 202, (s, v)
        mid = v["id"]
        while True:
            s, v, _ = request(port, "GET", f"/v1/models/{mid}", key)
            if v["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        assert v["status"] == "ready", v
        payload = json.dumps({"input_data": json.loads((ex / "input.json").read_text())["input_data"]})
        post_lat, get_lat, failures = [], [], []
        lock = threading.Lock()

        def client():
            jobs = []
            for _ in range(args.jobs_per_client):
                s, v, dt = request(port, "POST", f"/v1/models/{mid}/proofs", key, payload, "application/json")
                with lock:
                    post_lat.append(dt)
                if s != 202:
                    failures.append((s, v))
                    continue
                jobs.append(v["job_id"])
            for j in jobs:
                while True:
                    s, v, dt = request(port, "GET", f"/v1/jobs/{j}", key)
                    with lock:
                        get_lat.append(dt)
                    if v["status"] not in ("queued", "running"):
                        if v["status"] != "succeeded":
                            failures.append(v)
                        break
                    time.sleep(0.05)

        t = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        n = len(post_lat) + len(get_lat)
        return {
            "requests": n, "wall": wall, "rps": n / wall,
            "post": (len(post_lat), pct(post_lat, 50), pct(post_lat, 99)),
            "get": (len(get_lat), pct(get_lat, 50), pct(get_lat, 99)),
            "proofs_per_s": args.clients * args.jobs_per_client / wall,
            "failures": len(failures),
        }
    finally:
        srv.terminate()
        srv.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--jobs-per-client", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", default="1l_linear")
    ap.add_argument("--postgres", default=None)
    args = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "zkinfer-target"))
    # The workspace build (the feature set the tests use), so no second copy of the stack is built.
    subprocess.run(["cargo", "build", "-q", "--workspace", "--bins"], cwd=ROOT, check=True)
    zk = str(Path(target) / "debug" / "zkinfer")
    pg = args.postgres or subprocess.run([str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True).stdout.strip()
    print(f"{args.clients} clients x {args.jobs_per_client} proofs of {args.model}, {args.workers} workers, {os.cpu_count()} cores\n")
    print("| database | requests | req/s | POST proofs p50 / p99 ms | GET job p50 / p99 ms | proofs/s | failures |")
    print("|---|---|---|---|---|---|---|")
    for name, url in [("SQLite", None), ("PostgreSQL", pg)]:
        r = run(zk, url, args)
        print(f"| {name} | {r['requests']} | {r['rps']:.0f} | {r['post'][1]:.1f} / {r['post'][2]:.1f} | "
              f"{r['get'][1]:.1f} / {r['get'][2]:.1f} | {r['proofs_per_s']:.1f} | {r['failures']} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
