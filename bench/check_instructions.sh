#!/usr/bin/env bash
# Instructions per request of /v1/auth/check (a valid key, cache warm) and of /healthz, counted
# by callgrind in the server: stable where timings on 2 shared cores are not, so two builds can
# be compared exactly. The client (Python, keep-alive) runs outside valgrind; callgrind_control
# zeroes the counters before each phase and dumps them after it.
#
#   bench/check_instructions.sh            builds the release binary and gen_keys, N=20000
#   KEYPLANE_BIN=… GEN_KEYS=… N=…          use prebuilt ones (e.g. another revision's)
#
# Needs valgrind (callgrind_control comes with it). SQLite only: a warm check never reaches
# the store.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
if [[ -z ${KEYPLANE_BIN:-} || -z ${GEN_KEYS:-} ]]; then
    cargo build --release --locked --bin keyplane --example gen_keys >&2
    KEYPLANE_BIN=${KEYPLANE_BIN:-$PWD/target/release/keyplane}
    GEN_KEYS=${GEN_KEYS:-$PWD/target/release/examples/gen_keys}
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
WORK=$(mktemp -d)
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
"$GEN_KEYS" --out "$WORK/keys" --keys 100 --projects 2 --hot 10 --bogus 10 --fresh 10 >/dev/null
ENV=(env -u KEYPLANE_DATABASE_URL KEYPLANE_DATA_DIR="$WORK/data" KEYPLANE_LOG=warn)
"${ENV[@]}" "$KEYPLANE_BIN" import --input "$WORK/keys/export.jsonl" >/dev/null 2>&1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${ENV[@]}" KEYPLANE_LISTEN="127.0.0.1:$PORT" KEYPLANE_AUTH_FAILURE_LIMIT=0 \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" "$KEYPLANE_BIN" serve \
    >"$WORK/server.log" 2>&1 &
PID=$!
KEY=$(head -n1 "$WORK/keys/hot_keys.txt")
python3 - "$PORT" "$N" "$KEY" "$PID" "$WORK" <<'PY'
import http.client, subprocess, sys, time, glob
port, n, key, pid, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/healthz"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("server did not start")
def run(path, headers, status):
    for _ in range(n):
        c.request("GET", path, headers=headers)
        r = c.getresponse(); r.read()
        assert r.status == status, (path, r.status)
auth = {"Authorization": f"Bearer {key}"}
run("/v1/auth/check", auth, 204)  # warm the cache and the connection
results = {}
for name, path, headers, status in (("healthz", "/healthz", {}, 200), ("check", "/v1/auth/check", auth, 204)):
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    run(path, headers, status)
    subprocess.run(["callgrind_control", "-d", name, pid], check=True, capture_output=True)
    dumps = sorted(glob.glob(f"{work}/cg.{pid}.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    total = 0
    for line in open(dumps[-1]):
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
    results[name] = total / n
print(f"instructions per request (N={n}): /healthz {results['healthz']:.0f}, "
      f"/v1/auth/check valid warm {results['check']:.0f}, "
      f"check minus healthz {results['check'] - results['healthz']:.0f}")
PY
