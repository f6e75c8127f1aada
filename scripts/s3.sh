#!/usr/bin/env bash
# An S3-compatible server for the store tests: moto's server mode (from PyPI, in a venv under
# ~/.cache), started in the background on 127.0.0.1 if it is not already answering, with a
# bucket `zkinfer-test`. Prints the endpoint URL. Idempotent. Fails, never skips, when the
# server cannot be started.
set -euo pipefail
venv="$HOME/.cache/zkinfer-moto"
port="${ZKINFER_S3_PORT:-5055}"
endpoint="http://127.0.0.1:$port"
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "installing moto (PyPI) into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q "moto[server]==5.2.5" >&2
fi
# HTTP from the venv's Python, so the script needs no curl.
http() { "$venv/bin/python" - "$@" <<'PY'
import sys, urllib.request
method, url = sys.argv[1], sys.argv[2]
try:
    urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5)
except Exception:
    sys.exit(1)
PY
}
if ! http GET "$endpoint/moto-api/"; then
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$venv/server.log" 2>&1 &
  for _ in $(seq 1 60); do
    http GET "$endpoint/moto-api/" && break
    sleep 0.5
  done
  http GET "$endpoint/moto-api/" || { echo "moto did not start: $venv/server.log" >&2; exit 1; }
fi
# moto does not check signatures: an unsigned PUT makes the bucket (an existing one is kept).
http PUT "$endpoint/zkinfer-test" || true
http GET "$endpoint/zkinfer-test" || { echo "bucket zkinfer-test missing" >&2; exit 1; }
echo "$endpoint"
