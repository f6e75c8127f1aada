#!/usr/bin/env python3
"""A hostile tenant against `zkinfer serve` (stdlib only), on SQLite and on PostgreSQL: tenant B
proves 1l_mlp while tenant A sends memory-lifting settings, constant bombs, oversized server
keys to missing models, a flood of model uploads, and a job whose child process is killed as
the OOM killer would. Prints B's proof latency (request to succeeded job) idle and under
attack, what A's requests got, and whether serve kept its PID.

Usage: benches/service/hostile.py [--workers W] [--proofs N] [--postgres URL]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import CORPUS, ROOT, multipart, pct, request  # noqa: E402


def constant_bomb(side):
    """The ConstantOfShape bomb of the tests, written with the onnx-free protobuf encoding:
    tag/length bytes by hand (a couple of hundred bytes)."""
    def varint(n):
        out = b""
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out += bytes([b | 0x80])
            else:
                return out + bytes([b])

    def field(num, wire, payload):
        key = varint((num << 3) | wire)
        if wire == 2:
            return key + varint(len(payload)) + payload
        return key + payload

    def s(num, text):
        return field(num, 2, text.encode())

    def node(name, op, inputs, attrs=b""):
        body = b"".join(s(1, i) for i in inputs) + s(2, f"{name}_out") + s(3, name) + s(4, op) + attrs
        return field(1, 2, body)

    # TensorProto: dims=1 (int64, repeated), data_type=2, float_data=4 (packed), int64_data=7 (packed), name=8
    shape = field(5, 2, field(1, 0, varint(2)) + field(2, 0, varint(7))
                  + field(7, 2, varint(side) + varint(side)) + s(8, "shape"))
    value = field(5, 2, s(1, "value") + field(5, 2, field(1, 0, varint(1)) + field(2, 0, varint(1))
                                              + field(4, 2, b"\x00\x00\x00\x00")) + field(20, 0, varint(4)))
    dims = field(1, 2, field(1, 0, varint(1))) + field(1, 2, field(1, 0, varint(4)))
    x = field(11, 2, s(1, "x") + field(2, 2, field(1, 2, field(1, 0, varint(1)) + field(2, 2, dims))))
    graph = node("bomb", "ConstantOfShape", ["shape"], value) + node("y", "Add", ["x", "bomb_out"]) \
        + s(2, "bomb") + shape + x + field(12, 2, s(1, "y_out"))
    return field(1, 0, varint(8)) + field(7, 2, graph) + field(8, 2, s(1, "") + field(2, 0, varint(13)))


def upload(port, key, model, calibration, settings=None):
    fields = [("model", model), ("calibration", calibration)]
    if settings is not None:
        fields.append(("settings", settings))
    body, ctype = multipart(fields)
    return request(port, "POST", "/v1/models", key, body, ctype)


def wait_model(port, key, mid, limit=600):
    t = time.time()
    while time.time() - t < limit:
        s, v, _ = request(port, "GET", f"/v1/models/{mid}", key)
        if v["status"] not in ("queued", "running"):
            return v
        time.sleep(0.2)
    raise RuntimeError(f"model {mid} not ready")


def prove_once(port, key, mid, payload):
    t = time.perf_counter()
    s, v, _ = request(port, "POST", f"/v1/models/{mid}/proofs", key, payload, "application/json")
    assert s == 202, (s, v)
    j = v["job_id"]
    while True:
        s, v, _ = request(port, "GET", f"/v1/jobs/{j}", key)
        if v["status"] not in ("queued", "running"):
            return time.perf_counter() - t, v["status"], v.get("attempts")
        time.sleep(0.05)


def big_post(port, key, size):
    """POSTs `size` bytes of server key to a missing model, sending the body only as the server
    reads it: what the server answered, and how much of the body it took."""
    import socket
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST /v1/models/md_missing/fhe/keys HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    sock.sendall(head)
    sent, chunk = 0, b"\0" * (1 << 20)
    sock.settimeout(0.2)
    reply = b""
    while sent < size:
        try:
            reply += sock.recv(65536)
            if reply:
                break
        except socket.timeout:
            pass
        try:
            sent += sock.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.settimeout(5)
    try:
        while b"\r\n\r\n" not in reply:
            more = sock.recv(65536)
            if not more:
                break
            reply += more
    except OSError:
        pass
    sock.close()
    status = reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/") else "no answer"
    return f"{status} after {sent >> 20} of {size >> 20} MiB sent"


def rss_mib(pid):
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children_of(pid):
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == pid and b"job-runner" in cmd:
            out.append((int(p.name), cmd))
    return out


def run(zk, db_url, args):
    work = Path(tempfile.mkdtemp(prefix="zkinfer-hostile-"))
    base = ["--data-dir", str(work / "data")] + (["--database-url", db_url] if db_url else [])
    keys = {}
    for t in ("a", "b"):
        out = subprocess.run([zk, "keys", "create", "--tenant", t, *base], capture_output=True, text=True, check=True)
        keys[t] = out.stdout.split()[-1]
    srv = subprocess.Popen([zk, "serve", "--bind", "127.0.0.1:0", "--workers", str(args.workers), *base],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(srv.stdout.readline().split("http://127.0.0.1:")[1].split()[0])
    pid = srv.pid
    report = {}
    try:
        ex = CORPUS / "1l_mlp"
        onnx, inp = (ex / "network.onnx").read_bytes(), (ex / "input.json").read_bytes()
        s, v, _ = upload(port, keys["b"], onnx, inp)
        mb = wait_model(port, keys["b"], v["id"])["id"]
        lx = CORPUS / "lstm"
        s, v, _ = upload(port, keys["a"], (lx / "network.onnx").read_bytes(), (lx / "input.json").read_bytes())
        ma = wait_model(port, keys["a"], v["id"])["id"]
        payload = json.dumps({"input_data": json.loads(inp)["input_data"]})
        a_payload = json.dumps({"input_data": json.loads((lx / "input.json").read_text())["input_data"]})
        idle = [prove_once(port, keys["b"], mb, payload) for _ in range(args.proofs)]

        got = {}
        lock = threading.Lock()

        def note(what, status):
            with lock:
                got.setdefault(what, []).append(status)

        def attack():
            bomb = constant_bomb(1 << 14)
            t = time.perf_counter()
            s, v, _ = upload(port, keys["a"], bomb, b'{"input_data": [[1, 2, 3, 4]]}')
            note(f"constant bomb ({len(bomb)} bytes)", f"{s} {v['error']['code']} in {time.perf_counter() - t:.2f} s")
            s, v, _ = upload(port, keys["a"], onnx, inp, b'{"logrows": 24, "max_prove_memory_gib": 1e6}')
            note("settings lifting the limits", f"{s} {v['error']['code']}")
            for _ in range(4):
                note("400 MB server key to a missing model", big_post(port, keys["a"], 400 << 20))

            def flood():
                s, v, _ = upload(port, keys["a"], onnx, inp, b'{"max_proof_bytes": 3072}')
                note("100 uploads at once", str(s) if s != 429 else f"429 {v['error']['code']}")
            ts = [threading.Thread(target=flood) for _ in range(100)]
            for th in ts:
                th.start()
            for th in ts:
                th.join()
            # A's proof whose child is killed as the OOM killer would.
            s, v, _ = request(port, "POST", f"/v1/models/{ma}/proofs", keys["a"], a_payload, "application/json")
            j = v["job_id"] if s == 202 else None
            if j:
                for _ in range(600):
                    s, v, _ = request(port, "GET", f"/v1/jobs/{j}", keys["a"])
                    if v.get("phase") == "proving":
                        break
                    time.sleep(0.05)
                # A's lstm proof keeps its child busy for seconds; B's 1l_mlp proofs take
                # milliseconds: the child that used the most CPU over half a second is A's.
                def cpu(k):
                    try:
                        f = (Path("/proc") / str(k) / "stat").read_text().rsplit(")", 1)[1].split()
                        return int(f[11]) + int(f[12])
                    except OSError:
                        return 0
                kids = [k for k, _ in children_of(pid)]
                before = {k: cpu(k) for k in kids}
                time.sleep(0.5)
                if kids:
                    os.kill(max(kids, key=lambda k: cpu(k) - before[k]), signal.SIGKILL)
                while True:
                    s, v, _ = request(port, "GET", f"/v1/jobs/{j}", keys["a"])
                    if v["status"] not in ("queued", "running"):
                        note("proof killed in its child", f"{v['status']} {v.get('error', {}).get('code', '')}")
                        break
                    time.sleep(0.1)
            else:
                note("proof killed in its child", f"not accepted: {s} {v}")

        rss_before = rss_mib(pid)
        peak = [rss_before]
        attacker = threading.Thread(target=attack)
        attacker.start()

        def sample():
            while attacker.is_alive():
                peak[0] = max(peak[0], rss_mib(pid))
                time.sleep(0.05)
        sampler = threading.Thread(target=sample)
        sampler.start()
        under = []
        while attacker.is_alive() or len(under) < args.proofs:
            under.append(prove_once(port, keys["b"], mb, payload))
        attacker.join()
        sampler.join()
        report = {
            "idle": idle, "under": under, "got": got,
            "same_pid": srv.poll() is None,
            "rss": (rss_before, peak[0]),
        }
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            srv.kill()
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--proofs", type=int, default=10)
    ap.add_argument("--postgres", default=None)
    args = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "zkinfer-target"))
    subprocess.run(["cargo", "build", "-q", "--workspace", "--bins"], cwd=ROOT, check=True)
    zk = str(Path(target) / "debug" / "zkinfer")
    pg = args.postgres or subprocess.run([str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True).stdout.strip()
    print(f"tenant B proves 1l_mlp; tenant A attacks; {args.workers} workers, {os.cpu_count()} cores\n")
    rows = []
    for name, url in [("SQLite", None), ("PostgreSQL", pg)]:
        r = run(zk, url, args)
        for phase in ("idle", "under"):
            lat = [x[0] for x in r[phase]]
            ok = sum(1 for x in r[phase] if x[1] == "succeeded" and x[2] == 1)
            rows.append(f"| {name} | {'idle' if phase == 'idle' else 'under attack'} | {len(lat)} | {ok} | "
                        f"{pct(lat, 50):.0f} | {pct(lat, 99):.0f} | {max(lat) * 1000:.0f} |")
        print(f"{name}: serve kept its PID: {r['same_pid']}; serve's RSS {r['rss'][0]:.0f} MiB before "
              f"the attack, at most {r['rss'][1]:.0f} MiB during it")
        for what, statuses in r["got"].items():
            counts = {}
            for s in statuses:
                counts[s] = counts.get(s, 0) + 1
            print(f"  A's {what}: " + ", ".join(f"{n}× {s}" for s, n in counts.items()))
        sys.stdout.flush()
    print("\n| database | B's proofs | n | succeeded, 1 attempt | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
