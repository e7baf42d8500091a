#!/usr/bin/env bash
# Service-account creation throughput: HTTP (keyplane serve + wrk) next to the raw store rate
# (examples/store_insert_rate.rs), on SQLite and PostgreSQL. Target: HTTP >= 50% of raw on each
# backend. Writes bench/RESULTS.md. See bench/README.md.
#
#   bench/create_throughput.sh
#
# Overrides (environment):
#   BENCH_SECONDS=10               length of each measured run (raw and HTTP)
#   BENCH_CONCURRENCY=16           store tasks in the raw run = wrk connections in the HTTP run
#   BENCH_WRK_THREADS=2            wrk threads (-t)
#   BENCH_BACKENDS="sqlite postgres"
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432   server to create the databases on
#   BENCH_RESULTS=bench/RESULTS.md where to write the results
#   BENCH_KEEP=1                   keep the scratch directory (logs, wrk output)
#
# Exit status: 0 every backend passed, 2 a backend ran but missed the target, 1 the benchmark
# itself failed (build, server start, a non-2xx response, ...). Everything runs against
# 127.0.0.1 only, and every step is bounded in time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DUR=${BENCH_SECONDS:-10}
CONC=${BENCH_CONCURRENCY:-16}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
BACKENDS=${BENCH_BACKENDS:-"sqlite postgres"}
PG_BASE=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
PG_BASE=${PG_BASE%/}
RESULTS=${BENCH_RESULTS:-bench/RESULTS.md}
TARGET=0.50

die() { echo "create_throughput: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

[[ $DUR =~ ^[0-9]+$ ]] && ((DUR >= 1 && DUR <= 300)) || die "BENCH_SECONDS must be 1..300"
[[ $CONC =~ ^[0-9]+$ ]] && ((CONC >= 1 && CONC <= 1000)) || die "BENCH_CONCURRENCY must be 1..1000"
[[ $WRK_THREADS =~ ^[0-9]+$ ]] && ((WRK_THREADS >= 1)) || die "BENCH_WRK_THREADS must be >= 1"
((WRK_THREADS <= CONC)) || WRK_THREADS=$CONC # wrk needs connections >= threads
for b in $BACKENDS; do
    [[ $b == sqlite || $b == postgres ]] || die "unknown backend in BENCH_BACKENDS: $b"
done
[[ $PG_BASE =~ ^postgres(ql)?://[^/]+$ ]] ||
    die "BENCH_POSTGRES_URL must be postgres://user@host:port (no database)"

# ---------------------------------------------------------------------------------------------
# Scratch space and cleanup (runs on any exit, including failures and Ctrl-C).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keyplane-bench.XXXXXX")
SERVER_PID=""
PG_DBS=()

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    local pid=$SERVER_PID
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 150); do # up to 15 s for a graceful stop
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "create_throughput: server $pid ignored SIGTERM for 15 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

psql_admin() {
    timeout 30 psql "$PG_BASE/postgres" -X -q -v ON_ERROR_STOP=1 -c "$1"
}

cleanup() {
    local status=$?
    set +e
    stop_server
    for db in "${PG_DBS[@]}"; do
        psql_admin "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
            echo "create_throughput: could not drop database $db" >&2
    done
    if [[ ${BENCH_KEEP:-} == 1 || $status -eq 1 ]]; then
        echo "create_throughput: scratch files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---------------------------------------------------------------------------------------------
# Tools.
log "building (release)"
BUILD_CMD=(cargo build --release --bin keyplane --example store_insert_rate)
"${BUILD_CMD[@]}"
TARGET_DIR=${CARGO_TARGET_DIR:-target}
KEYPLANE=$TARGET_DIR/release/keyplane
RAW_BIN=$TARGET_DIR/release/examples/store_insert_rate
[[ -x $KEYPLANE && -x $RAW_BIN ]] || die "build did not produce $KEYPLANE and $RAW_BIN"

if ! command -v wrk >/dev/null; then
    log "installing wrk (Debian package)"
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq wrk >/dev/null
fi
command -v curl >/dev/null || die "curl is required"
if [[ " $BACKENDS " == *" postgres "* ]]; then
    command -v psql >/dev/null || die "psql is required for the postgres backend"
    psql_admin "SELECT 1" >/dev/null || die "cannot reach PostgreSQL at $PG_BASE"
fi

# Only these reach the runs; any KEYPLANE_* store setting of the caller would skew them.
# (KEYPLANE_DB_POOL_SIZE and friends are kept: the raw run and the server both honour them.)
CLEAN_ENV=(env -u KEYPLANE_DATABASE_URL -u KEYPLANE_DATA_DIR -u KEYPLANE_BOOTSTRAP_ADMIN_KEY
    -u KEYPLANE_LISTEN -u KEYPLANE_LOG)

new_pg_db() { # creates a uniquely named database, registered for dropping; sets PG_URL
    local db
    db="keyplane_bench_$(date +%s)_$$_$RANDOM"
    PG_DBS+=("$db")
    psql_admin "CREATE DATABASE \"$db\"" >/dev/null || die "cannot create database $db"
    PG_URL="$PG_BASE/$db"
}

free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free loopback port found"
}

field() { # field NAME LINE: the value of NAME=... in a key=value line
    sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2" | head -n1
}

# ---------------------------------------------------------------------------------------------
declare -A RAW HTTP RATIO VERDICT P50 P99 REQS INSERTS

run_raw() { # run_raw BACKEND
    local b=$1 store_args out line
    case $b in
    sqlite) store_args=(--data-dir "$WORK/sqlite-raw") ;;
    postgres)
        new_pg_db
        store_args=(--database-url "$PG_URL")
        ;;
    esac
    log "$b: raw store rate (${CONC} tasks, ${DUR}s)"
    out=$WORK/raw-$b.txt
    if ! timeout $((DUR + 60)) "${CLEAN_ENV[@]}" "$RAW_BIN" "${store_args[@]}" \
        --concurrency "$CONC" --seconds "$DUR" >"$out" 2>"$WORK/raw-$b.err"; then
        cat "$out" "$WORK/raw-$b.err" >&2
        die "$b: the raw store run failed"
    fi
    line=$(grep '^store_insert_rate ' "$out") || die "$b: no result line from store_insert_rate"
    echo "    $line" >&2
    RAW[$b]=$(field rate "$line" | sed 's,/s$,,')
    INSERTS[$b]=$(field inserts "$line")
}

run_http() { # run_http BACKEND
    local b=$1 store_env port base key project_json project wrk_out line non2xx errs
    case $b in
    sqlite) store_env=(KEYPLANE_DATA_DIR="$WORK/sqlite-http") ;;
    postgres)
        new_pg_db
        store_env=(KEYPLANE_DATABASE_URL="$PG_URL")
        ;;
    esac
    log "$b: HTTP rate (wrk -t$WRK_THREADS -c$CONC -d${DUR}s)"
    key=$(timeout 60 "${CLEAN_ENV[@]}" "${store_env[@]}" KEYPLANE_LOG=warn \
        "$KEYPLANE" admin-key create) || die "$b: keyplane admin-key create failed"
    [[ $key == sk-admin-* ]] || die "$b: admin-key create printed no admin key"

    port=$(free_port)
    base="http://127.0.0.1:$port"
    "${CLEAN_ENV[@]}" "${store_env[@]}" KEYPLANE_LISTEN="127.0.0.1:$port" KEYPLANE_LOG=warn \
        "$KEYPLANE" serve >"$WORK/server-$b.log" 2>&1 &
    SERVER_PID=$!
    local up=""
    for _ in $(seq 300); do # up to 30 s
        if curl -fsS --max-time 1 "$base/healthz" >/dev/null 2>&1; then
            up=1
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $up ]]; then
        cat "$WORK/server-$b.log" >&2
        die "$b: keyplane serve did not become healthy on $base"
    fi

    project_json=$(curl -fsS --max-time 10 -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' -d '{"name":"bench"}' \
        "$base/v1/organization/projects") || die "$b: creating the project failed"
    project=$(sed -n 's/.*"id":"\(proj_[^"]*\)".*/\1/p' <<<"$project_json")
    [[ -n $project ]] || die "$b: no project id in $project_json"
    local url="$base/v1/organization/projects/$project/service_accounts"
    # One request by hand first, so a broken endpoint fails loudly with its body.
    curl -fsS --max-time 10 -o /dev/null -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' -d '{"name":"bench"}' "$url" ||
        die "$b: POST $url failed"

    wrk_out=$WORK/wrk-$b.txt
    if ! timeout $((DUR + 30)) wrk -t"$WRK_THREADS" -c"$CONC" -d"${DUR}s" --timeout 10s \
        -s bench/create_service_account.lua -H "Authorization: Bearer $key" "$url" \
        >"$wrk_out" 2>&1; then
        cat "$wrk_out" >&2
        die "$b: wrk failed"
    fi
    stop_server
    sed 's/^/    /' "$wrk_out" >&2
    line=$(grep '^wrk_result ' "$wrk_out") || die "$b: no wrk_result line (see $wrk_out)"
    non2xx=$(field non2xx "$line")
    errs=$(($(field connect "$line") + $(field read "$line") + $(field write "$line") + $(field timeout "$line")))
    if ((non2xx > 0)) || grep -q 'Non-2xx or 3xx responses' "$wrk_out"; then
        grep -i 'error\|warn' "$WORK/server-$b.log" | tail -n 20 >&2 || true
        die "$b: $non2xx non-2xx responses during the HTTP run: the run does not count"
    fi
    ((errs == 0)) || die "$b: $errs socket errors during the HTTP run: the run does not count"
    HTTP[$b]=$(field rate "$line")
    REQS[$b]=$(field requests "$line")
    P50[$b]=$(field p50_ms "$line")
    P99[$b]=$(field p99_ms "$line")
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
for b in $BACKENDS; do
    run_raw "$b"
    run_http "$b"
    RATIO[$b]=$(awk -v h="${HTTP[$b]}" -v r="${RAW[$b]}" 'BEGIN { printf "%.2f", (r > 0 ? h / r : 0) }')
    VERDICT[$b]=$(awk -v x="${RATIO[$b]}" -v t="$TARGET" 'BEGIN { print (x + 0 >= t + 0 ? "PASS" : "FAIL") }')
done

# ---------------------------------------------------------------------------------------------
# Report.
TABLE="| backend | raw store (inserts/s) | HTTP (creates/s) | HTTP / raw | target | verdict | raw rows / HTTP requests | HTTP p50 / p99 (ms) |
|---|---:|---:|---:|---:|---|---:|---:|"
for b in $BACKENDS; do
    TABLE+="
| $b | ${RAW[$b]} | ${HTTP[$b]} | ${RATIO[$b]} | >= $TARGET | ${VERDICT[$b]} | ${INSERTS[$b]} / ${REQS[$b]} | ${P50[$b]} / ${P99[$b]} |"
done
echo
echo "$TABLE"
echo

OVERRIDES=""
for v in BENCH_SECONDS BENCH_CONCURRENCY BENCH_WRK_THREADS BENCH_BACKENDS BENCH_POSTGRES_URL \
    KEYPLANE_DB_POOL_SIZE KEYPLANE_DB_ACQUIRE_TIMEOUT_MS KEYPLANE_DB_STATEMENT_TIMEOUT_MS; do
    [[ -n ${!v:-} ]] && OVERRIDES+="$v=\"${!v}\" "
done
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src migrations Cargo.toml Cargo.lock 2>/dev/null || COMMIT+=" (with uncommitted changes)"
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
MEM=$(free -g | awk '/^Mem:/ { printf "%s GiB total, %s GiB available", $2, $7 }')
PG_VERSION=""
[[ " $BACKENDS " == *" postgres "* ]] &&
    PG_VERSION=$(timeout 10 psql "$PG_BASE/postgres" -X -Atc 'SHOW server_version' 2>/dev/null || true)

{
    cat <<EOF
# Service-account creation throughput

Generated by \`bench/create_throughput.sh\`; rerun it to refresh this file.

- **Date:** $STARTED
- **Command:** \`${OVERRIDES}bench/create_throughput.sh\` (after \`${BUILD_CMD[*]}\`, which the script runs)
- **Commit:** $COMMIT
- **Machine:** $(nproc) cores ($CPU), memory $MEM, kernel $(uname -r)${PG_VERSION:+, PostgreSQL $PG_VERSION on the same machine}
- **Load average before the run:** $LOAD_BEFORE
- **Settings:** ${DUR} s per measured run, concurrency $CONC, wrk $WRK_THREADS threads

$TABLE

Target: HTTP creation >= 50% of the raw store rate on each backend.

## Method

- **Raw store:** \`store_insert_rate --concurrency $CONC --seconds $DUR\` (examples/store_insert_rate.rs)
  on a fresh store: $CONC tokio tasks, each building an account (role member) and its first key
  ("Secret Key", freshly generated and hashed) exactly as \`create_project_service_account\` does,
  and calling \`Store::insert_service_account(&account, Some(&key))\` in a loop.
- **HTTP:** \`keyplane serve\` on a second fresh store, \`KEYPLANE_LOG=warn\`, then
  \`wrk -t$WRK_THREADS -c$CONC -d${DUR}s --timeout 10s -s bench/create_service_account.lua -H "Authorization: Bearer <admin key>" http://127.0.0.1:<port>/v1/organization/projects/<id>/service_accounts\`
  posting \`{"name":"bench"}\`. Each request authenticates the admin key (one read), reads the
  project (one read) and runs the same insert transaction. A run with any non-2xx response or
  socket error does not count.
- Same concurrency in both; the same default pool settings (\`PoolSettings::default()\`, or the
  \`KEYPLANE_DB_*\` overrides shown in the command) in both.
- Everything shares the machine's $(nproc) cores: in the HTTP run wrk, the server and (for
  PostgreSQL) the database compete for them; in the raw run only the example and the database.
- Durability as in production: every creation is committed and fsynced before it is answered.
  SQLite runs WAL with \`synchronous=FULL\` through a single writer connection that commits
  concurrent creations together (group commit); PostgreSQL with its defaults
  (\`fsync=on\`, \`synchronous_commit=on\`). Both on the local disk.
- One run per backend, not an average: expect run-to-run noise of several percent, more if
  anything else (a compile) runs at the same time.
EOF
} >"$RESULTS"
log "wrote $RESULTS"

for b in $BACKENDS; do
    [[ ${VERDICT[$b]} == PASS ]] || exit 2
done
exit 0
