#!/usr/bin/env bash
# Token exchange (workload identity federation) against the client-credentials grant, in one
# server run: both sign one EdDSA access token; the exchange also checks an RS256 subject token
# against the provider's (cached, uploaded) key set and matches a federation rule. Target: the
# exchange costs at most 2x the client-credentials grant per token. SQLite, release build,
# wrk on loopback; /healthz measured in the same run as the baseline.
#
#   bench/token_exchange.sh            BENCH_SECONDS=10 BENCH_CONNECTIONS=8 BENCH_WRK_THREADS=1
#
# Prints one line per run (rate, p50, p99, server CPU per request) and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${BENCH_SECONDS:-10}
C=${BENCH_CONNECTIONS:-8}
T=${BENCH_WRK_THREADS:-1}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --locked --bin keyplane --example subject_token >&2
BIN=$PWD/target/release/keyplane
TOKEN_BIN=$PWD/target/release/examples/subject_token
WORK=$(mktemp -d)
PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
export KEYPLANE_DATA_DIR=$WORK/data KEYPLANE_LOG=warn KEYPLANE_AUTH_FAILURE_LIMIT=0
unset KEYPLANE_DATABASE_URL
ADMIN=$("$BIN" admin-key create 2>/dev/null)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KEYPLANE_LISTEN=127.0.0.1:$PORT "$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
ISSUER=https://token.actions.githubusercontent.com
python3 - "$PORT" "$ADMIN" "$WORK" "$ISSUER" "$("$TOKEN_BIN" --jwks)" "$("$TOKEN_BIN" "$ISSUER" keyplane acme/api)" <<'PY'
import base64, json, sys, urllib.request, urllib.parse
port, admin, work, issuer, jwks, subject = sys.argv[1:]
base = f"http://127.0.0.1:{port}"
def call(method, path, body=None, auth=admin):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {auth}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
idp = call("POST", "/v1/organization/workload_identity_providers", {
    "name": "bench", "type": "oidc", "issuer": issuer, "audience": "keyplane",
    "verification": {"type": "uploaded_jwks", "jwks": json.loads(jwks)}})["id"]
project = call("POST", "/v1/organization/projects", {"name": "bench"})["id"]
account = call("POST", f"/v1/organization/projects/{project}/service_accounts", {"name": "ci"})["id"]
call("POST", f"/v1/organization/workload_identity_providers/{idp}/federation_rules", {
    "project_id": project, "service_account_id": account,
    "attribute_matchers": {"repository": "acme/api"}})
open(f"{work}/exchange.json", "w").write(json.dumps({
    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": subject,
    "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    "identity_provider_id": idp, "service_account_id": account}))
kc = call("POST", "/organizations/default/service-accounts", {"name": "bench"})
cred = call("POST", f"/organizations/default/service-accounts/{kc['id']}/credentials", {"name": "bench"})
open(f"{work}/cc.form", "w").write("grant_type=client_credentials")
basic = base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()
open(f"{work}/cc.auth", "w").write(f"Basic {basic}")
PY
ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
run() { # NAME PATH BODYFILE CONTENT_TYPE EXPECT [AUTH]
    local name=$1 path=$2 body=$3 ctype=$4 expect=$5 auth=${6:-}
    local t0 t1 line req
    t0=$(ticks)
    line=$(wrk -t"$T" -c"$C" -d"${SECS}s" -s bench/token_exchange.lua "http://127.0.0.1:$PORT$path" \
        -- "$body" "$ctype" "$expect" ${auth:+"$auth"} | grep '^wrk_result')
    t1=$(ticks)
    req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    grep -q 'unexpected=0 ' <<<"$line" || { echo "$name: unexpected statuses: $line" >&2; exit 1; }
    grep -q 'errors=0 ' <<<"$line" || { echo "$name: socket errors: $line" >&2; exit 1; }
    local us
    us=$(python3 -c "print(f'{($t1-$t0)/$HZ*1e6/$req:.1f}')")
    printf '%-22s %s server_us_per_req=%s\n' "$name" "$line" "$us"
    eval "US_$name=$us"
}
echo -n "" >"$WORK/empty"
BENCH_METHOD=GET run healthz /healthz "$WORK/empty" text/plain 200 >/dev/null # warm-up
BENCH_METHOD=GET run healthz /healthz "$WORK/empty" text/plain 200
run client_credentials /service-account-token "$WORK/cc.form" application/x-www-form-urlencoded 200 "$(cat "$WORK/cc.auth")"
run exchange /oauth/token "$WORK/exchange.json" application/json 200
python3 -c "print(f'exchange / client_credentials CPU per token: {$US_exchange/$US_client_credentials:.2f} (target <= 2)')"
