#!/usr/bin/env bash
# Instructions per request of /v1/auth/check (a valid key, cache warm) and of /healthz, counted
# by callgrind in the server: stable where timings on 2 shared cores are not, so two builds can
# be compared exactly. The client (Python, keep-alive) runs outside valgrind; callgrind_control
# zeroes the counters before each phase and dumps them after it.
#
# Two servers, one after the other, on the same store:
#   plain      no model catalogue: /healthz, then the check of a key without limits
#   admission  a catalogue (`*` far above the load, `bench-refused` allowing nothing), and the
#              key given key limits: /healthz, the check admitted (a key limit and a project ×
#              model limit counted), the check naming bench-refused (refused, 429)
#
#   bench/check_instructions.sh            builds the release binary and gen_keys, N=20000
#   KEYPLANE_BIN=… GEN_KEYS=… N=…          use prebuilt ones (e.g. another revision's)
#   ADMISSION=0                            the plain server only
#   CALLGRIND_KEEP=DIR                     keep the callgrind dumps in DIR (callgrind_annotate)
#
# Needs valgrind (callgrind_control comes with it). SQLite only: a warm check never reaches
# the store.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
ADMISSION=${ADMISSION:-1}
if [[ -z ${KEYPLANE_BIN:-} || -z ${GEN_KEYS:-} ]]; then
    cargo build --release --locked --bin keyplane --example gen_keys >&2
    KEYPLANE_BIN=${KEYPLANE_BIN:-$PWD/target/release/keyplane}
    GEN_KEYS=${GEN_KEYS:-$PWD/target/release/examples/gen_keys}
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
WORK=$(mktemp -d)
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; wait 2>/dev/null; [[ -n ${CALLGRIND_KEEP:-} ]] && mkdir -p "$CALLGRIND_KEEP" && cp "$WORK"/cg.* "$CALLGRIND_KEEP"/ 2>/dev/null; rm -rf "$WORK"' EXIT
"$GEN_KEYS" --out "$WORK/keys" --keys 100 --projects 2 --hot 10 --bogus 10 --fresh 10 >/dev/null
ENV=(env -u KEYPLANE_DATABASE_URL KEYPLANE_DATA_DIR="$WORK/data" KEYPLANE_LOG=warn)
"${ENV[@]}" "$KEYPLANE_BIN" import --input "$WORK/keys/export.jsonl" >/dev/null 2>&1
head -n1 "$WORK/keys/hot_keys.txt" >"$WORK/key.txt"

# measure LABEL [ARGS before `serve`]: one server under callgrind, the phases of LABEL.
measure() {
    local label=$1 port
    shift
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "${ENV[@]}" KEYPLANE_LISTEN="127.0.0.1:$port" KEYPLANE_AUTH_FAILURE_LIMIT=0 \
        valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$label.%p" "$KEYPLANE_BIN" "$@" serve \
        >"$WORK/server-$label.log" 2>&1 &
    PID=$!
    python3 - "$port" "$N" "$(cat "$WORK/key.txt")" "$PID" "$WORK" "$label" <<'PY'
import http.client, subprocess, sys, time, glob
port, n, key, pid, work, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/healthz"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("server did not start")
if label == "admission":
    subprocess.run([sys.executable, "bench/set_key_limits.py", str(port), f"{work}/keys/admin_key.txt",
                    f"{work}/key.txt", f"{work}/limited.txt", "1", "1000000000"], check=True, stdout=subprocess.DEVNULL)
def run(path, headers, status):
    for _ in range(n):
        c.request("GET", path, headers=headers)
        r = c.getresponse(); r.read()
        assert r.status == status, (path, r.status)
auth = {"Authorization": f"Bearer {key}"}
refused = dict(auth, **{"X-Keyplane-Model": "bench-refused"})
phases = [("healthz", "/healthz", {}, 200)]
if label == "plain":
    phases.append(("check", "/v1/auth/check", auth, 204))
else:
    phases += [("limited", "/v1/auth/check", auth, 204), ("refused", "/v1/auth/check", refused, 429)]
run("/v1/auth/check", auth, 204)  # warm the cache and the connection
results = {}
for name, path, headers, status in phases:
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    run(path, headers, status)
    subprocess.run(["callgrind_control", "-d", name, pid], check=True, capture_output=True)
    dumps = sorted(glob.glob(f"{work}/cg.{label}.{pid}.*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    total = 0
    for line in open(dumps[-1]):
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
    results[name] = total / n
h = results["healthz"]
print(f"{label} server, instructions per request (N={n}): " + ", ".join(
    f"{k} {v:.0f}" + ("" if k == "healthz" else f" ({v / h:.2f}x healthz, {v - h:.0f} over it)")
    for k, v in results.items()))
PY
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
}

measure plain
[[ $ADMISSION == 1 ]] && measure admission --config "$PWD/bench/models.toml"
exit 0
