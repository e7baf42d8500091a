#!/usr/bin/env bash
# Verification throughput: `GET /v1/auth/check` with 1,000,000 stored keys, next to the
# framework's ceiling (`GET /healthz`), on SQLite and PostgreSQL. See bench/README.md.
#
#   bench/auth_check.sh
#
# Per backend, in one server run: import a generated export (1M service-account keys) into a
# fresh store, start `keyplane serve`, then
#   1. /healthz (after choosing the connection count on it)    -> the ceiling
#   2. warm-up: every hot key once, all cache misses            -> "cold lookups"
#   3. one last_used_at flush interval (10 s), then up to BENCH_SETTLE_SECONDS for the
#      warm-up's write-back to finish, then
#   4. auth/check with random hot keys (all cached)             -> "valid, warm"
#   5. bogus keys with a bad checksum, 6. well-formed unknown keys (negative cache),
#   7. well-formed unknown keys never repeated (each one a store read),
#   8. auth/check with hot keys for BENCH_SUSTAINED_SECONDS: more than a minute after the
#      warm-up, so each key's use is written back again, as under constant traffic,
#   9. the server's VmRSS / VmHWM.
#  10. admission (issue 15): the server again, on the same store, with a model catalogue
#      (models.toml: "*" with limits far above the load, "bench-refused" allowing nothing);
#      BENCH_LIMITED hot keys get key limits through the admin API (bench/set_key_limits.py);
#      /healthz again, a warm-up of those keys, then auth/check with them (each request checks
#      and counts a key limit and a project x model limit: admitted, 204), then the same keys
#      naming "bench-refused" (refused, 429: a flood over the limit).
# Targets: valid >= 80% of /healthz, valid p99 < 2 ms, bogus runs >= valid, RSS < 300 MB;
# limited keys' CPU per request <= 1.25x the plain valid run's, refused <= admitted.
#
# Overrides (environment):
#   BENCH_SECONDS=10               length of each measured run
#   BENCH_SUSTAINED_SECONDS=60     length of the sustained valid run (0 skips it)
#   BENCH_SETTLE_SECONDS=20        longest wait for a quiet machine after the warm-up (after
#                                  the first 10 s)
#   BENCH_CONNECTIONS=auto         wrk connections for every run; auto = the smallest of
#                                  BENCH_SWEEP within 5% of the best /healthz rate
#   BENCH_SWEEP="8 16 32 64"       connection counts tried by auto (3 s each)
#   BENCH_WRK_THREADS=2            wrk threads (-t)
#   BENCH_CHECK=1                  0: wrk does not inspect each response (see auth_check.lua)
#   BENCH_BACKENDS="sqlite postgres"
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432   server to create the databases on
#   BENCH_KEYS=1000000 BENCH_HOT=100000 BENCH_BOGUS=100000 BENCH_FRESH=400000   data set
#   BENCH_CACHE_CAPACITY=          the server's KEYPLANE_KEY_CACHE_CAPACITY (default: its own);
#                                  below BENCH_HOT the "valid" runs measure eviction: a hot set
#                                  twice the capacity makes about half the lookups misses
#   BENCH_IMPORT_TIMEOUT=1800      seconds allowed for each `keyplane import`
#   BENCH_RESULTS=bench/RESULTS.md where to write the results (its auth/check section only)
#   BENCH_ADMISSION=1              0 skips the admission runs (step 10)
#   BENCH_LIMITED=2000             hot keys given key limits for them (at most BENCH_HOT)
#   BENCH_PERF=1                   also `perf record` the server during /healthz, valid,
#                                  limited and refused runs
#   BENCH_KEEP=1                   keep the scratch directory (logs, wrk output, perf data)
#
# Exit status: 0 every target met on every backend, 2 every run completed but some target was
# missed, 1 the benchmark itself failed (build, import, server start, a wrong status, a socket
# error, ...). Everything runs against 127.0.0.1 only, and every step is bounded in time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DUR=${BENCH_SECONDS:-10}
SUSTAINED=${BENCH_SUSTAINED_SECONDS:-60}
CONNS=${BENCH_CONNECTIONS:-auto}
SWEEP=${BENCH_SWEEP:-"8 16 32 64"}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
CHECK=${BENCH_CHECK:-1}
BACKENDS=${BENCH_BACKENDS:-"sqlite postgres"}
PG_BASE=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
PG_BASE=${PG_BASE%/}
N_KEYS=${BENCH_KEYS:-1000000}
N_HOT=${BENCH_HOT:-100000}
N_BOGUS=${BENCH_BOGUS:-100000}
N_FRESH=${BENCH_FRESH:-400000}
CACHE_CAPACITY=${BENCH_CACHE_CAPACITY:-}
IMPORT_TIMEOUT=${BENCH_IMPORT_TIMEOUT:-1800}
RESULTS=${BENCH_RESULTS:-bench/RESULTS.md}
PERF=${BENCH_PERF:-0}
ADMISSION=${BENCH_ADMISSION:-1}
N_LIMITED=${BENCH_LIMITED:-2000}

SETTLE=${BENCH_SETTLE_SECONDS:-20}
# The server's last_used_at flush interval (app::USAGE_FLUSH).
USAGE_FLUSH=10

# Targets (from the issue).
T_RATIO=0.80   # auth/check valid rate / healthz rate
T_P99_MS=2     # valid p99
T_BOGUS=1.00   # bogus rate / valid rate ("no slower")
T_RSS_MB=300   # keyplane VmHWM
T_LIMITED=1.25 # limited keys' keyplane CPU per request / the plain valid run's
T_REFUSED=1.00 # refused flood's keyplane CPU per request / the limited (admitted) run's

die() { echo "auth_check: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

num() { [[ $2 =~ ^[0-9]+$ ]] && (($2 >= $3 && $2 <= $4)) || die "$1 must be $3..$4 (got '$2')"; }
num BENCH_SECONDS "$DUR" 1 300
num BENCH_SUSTAINED_SECONDS "$SUSTAINED" 0 600
num BENCH_SETTLE_SECONDS "$SETTLE" 0 600
num BENCH_WRK_THREADS "$WRK_THREADS" 1 64
num BENCH_KEYS "$N_KEYS" 1 100000000
num BENCH_HOT "$N_HOT" 1 "$N_KEYS"
num BENCH_BOGUS "$N_BOGUS" 2 10000000
num BENCH_FRESH "$N_FRESH" 1 100000000
[[ -z $CACHE_CAPACITY ]] || num BENCH_CACHE_CAPACITY "$CACHE_CAPACITY" 100 100000000
num BENCH_IMPORT_TIMEOUT "$IMPORT_TIMEOUT" 10 86400
[[ $ADMISSION == 0 || $ADMISSION == 1 ]] || die "BENCH_ADMISSION must be 0 or 1"
num BENCH_LIMITED "$N_LIMITED" 1 100000000
((N_LIMITED <= N_HOT)) || N_LIMITED=$N_HOT
[[ $CHECK == 0 || $CHECK == 1 ]] || die "BENCH_CHECK must be 0 or 1"
if [[ $CONNS != auto ]]; then
    num BENCH_CONNECTIONS "$CONNS" 1 10000
    SWEEP=$CONNS
fi
for c in $SWEEP; do num "BENCH_SWEEP entry" "$c" 1 10000; done
for b in $BACKENDS; do
    [[ $b == sqlite || $b == postgres ]] || die "unknown backend in BENCH_BACKENDS: $b"
done
[[ $PG_BASE =~ ^postgres(ql)?://[^/]+$ ]] ||
    die "BENCH_POSTGRES_URL must be postgres://user@host:port (no database)"

# ---------------------------------------------------------------------------------------------
# Scratch space and cleanup (runs on any exit, including failures and Ctrl-C).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/keyplane-authbench.XXXXXX")
SERVER_PID=""
PG_DBS=()

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    local pid=$SERVER_PID
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 300); do # up to 30 s for a graceful stop (it flushes last_used_at)
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "auth_check: server $pid ignored SIGTERM for 30 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

psql_admin() {
    timeout 60 psql "$PG_BASE/postgres" -X -q -v ON_ERROR_STOP=1 -c "$1"
}

cleanup() {
    local status=$?
    set +e
    stop_server
    for db in "${PG_DBS[@]}"; do
        psql_admin "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
            echo "auth_check: could not drop database $db" >&2
    done
    if [[ ${BENCH_KEEP:-} == 1 || $status -eq 1 ]]; then
        echo "auth_check: scratch files kept in $WORK" >&2
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
BUILD_CMD=(cargo build --release --bin keyplane --example gen_keys --example warm_keys)
"${BUILD_CMD[@]}"
TARGET_DIR=${CARGO_TARGET_DIR:-target}
KEYPLANE=$TARGET_DIR/release/keyplane
GEN=$TARGET_DIR/release/examples/gen_keys
WARM=$TARGET_DIR/release/examples/warm_keys
for f in "$KEYPLANE" "$GEN" "$WARM"; do [[ -x $f ]] || die "the build did not produce $f"; done
# The commit as built, and private copies of the binaries: target/ is shared, and a build
# running elsewhere during the benchmark must not swap the server under it.
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src migrations Cargo.toml Cargo.lock build.rs 2>/dev/null ||
    COMMIT+=" (with uncommitted changes)"
mkdir -p "$WORK/bin"
cp "$KEYPLANE" "$GEN" "$WARM" "$WORK/bin/"
KEYPLANE=$WORK/bin/keyplane
GEN=$WORK/bin/gen_keys
WARM=$WORK/bin/warm_keys

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
if [[ $PERF == 1 ]]; then
    command -v perf >/dev/null || die "BENCH_PERF=1 needs perf"
fi

# Only these reach the server; any KEYPLANE_* store setting of the caller would skew the runs.
CLEAN_ENV=(env -u KEYPLANE_DATABASE_URL -u KEYPLANE_DATA_DIR -u KEYPLANE_BOOTSTRAP_ADMIN_KEY
    -u KEYPLANE_LISTEN -u KEYPLANE_LOG -u KEYPLANE_KEY_CACHE_CAPACITY)

new_pg_db() { # creates a uniquely named database, registered for dropping; sets PG_URL PG_DB
    PG_DB="keyplane_authbench_$(date +%s)_$$_$RANDOM"
    PG_DBS+=("$PG_DB")
    psql_admin "CREATE DATABASE \"$PG_DB\"" >/dev/null || die "cannot create database $PG_DB"
    PG_URL="$PG_BASE/$PG_DB"
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
    sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2" | head -n1
}

now_s() { date +%s.%N; }
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { printf f, (b + 0 != 0 ? a / b : 0) }'; }
fge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# CPU time (clock ticks) of the server, and of all PostgreSQL server processes.
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
    local t=0 f line
    for f in /proc/[0-9]*/stat; do
        # comm is field 2, in parentheses; the postgres server processes are all "postgres".
        read -r line <"$f" 2>/dev/null || continue
        [[ $line == *" (postgres) "* ]] || continue
        set -- ${line##*) }
        t=$((t + ${12} + ${13}))
    done 2>/dev/null
    echo "$t"
}
TICK=$(getconf CLK_TCK)

# Waits (up to $1 s, default 60) until the machine is quiet: >= 90% idle over one second.
# Background work (a last_used_at flush, autovacuum, page-cache writeback) must not land in a run.
wait_quiet() {
    local a b idle=0 total=0 i k max=${1:-60}
    for i in $(seq "$max"); do
        read -r -a a < <(head -n1 /proc/stat)
        sleep 1
        read -r -a b < <(head -n1 /proc/stat)
        total=0
        for k in 1 2 3 4 5 6 7 8; do total=$((total + b[k] - a[k])); done
        idle=$((b[4] - a[4] + b[5] - a[5]))
        if ((total > 0 && idle * 100 >= total * 90)); then
            return 0
        fi
    done
    echo "auth_check: the machine did not get quiet within $max s (last second: $((idle * 100 / (total > 0 ? total : 1)))% idle); going on" >&2
}

rss_of() { # rss_of PID: "VmRSS VmHWM RssAnon RssFile" in kB
    awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
         END { print r + 0, h + 0, a + 0, f + 0 }' "/proc/$1/status"
}
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

# ---------------------------------------------------------------------------------------------
# Data: one export and the key files, shared by every backend.
KEYS=$WORK/keys
log "generating $N_KEYS keys ($N_HOT hot, $N_BOGUS bogus, $N_FRESH fresh unknown)"
GEN_LINE=$(timeout 600 "$GEN" --out "$KEYS" --keys "$N_KEYS" --hot "$N_HOT" --bogus "$N_BOGUS" \
    --fresh "$N_FRESH") || die "gen_keys failed"
echo "    $GEN_LINE" >&2
RECORDS=$(field records "$GEN_LINE")
EXPORT_MB=$(mb $(($(stat -c %s "$KEYS/export.jsonl") / 1024)))

# ---------------------------------------------------------------------------------------------
# One wrk run. run_wrk BACKEND NAME PATH KEYFILE EXPECT MODE SECONDS CONNECTIONS
# Sets R_<field> for NAME (rate, p50, p99, ...), and the CPU used per request.
declare -A R
run_wrk() {
    local b=$1 name=$2 path=$3 file=$4 expect=$5 mode=$6 secs=$7 c=$8
    local out=$WORK/wrk-$b-$name.txt line t0 pg0 t1 pg1 wu ws threads=$WRK_THREADS perf_pid=""
    ((threads <= c)) || threads=$c
    local check_arg=()
    [[ $CHECK == 1 ]] || check_arg=(nocheck)
    local cpu0 cpu1
    read -r -a cpu0 < <(head -n1 /proc/stat)
    t0=$(proc_ticks "$SERVER_PID")
    pg0=0
    [[ $b == postgres ]] && pg0=$(pg_ticks)
    if [[ $PERF == 1 && ($name == healthz || $name == valid || $name == limited || $name == refused) ]]; then
        (sleep 1 && exec timeout $((secs + 10)) perf record -q -e cpu-clock -F 999 -g \
            -p "$SERVER_PID" -o "$WORK/perf-$b-$name.data" -- sleep $((secs > 3 ? secs - 2 : 1)) \
            >/dev/null 2>&1) &
        perf_pid=$!
    fi
    # wrk runs under `time` so its own CPU use is known too (it shares the cores).
    local tf=$WORK/time-$b-$name.txt
    if ! { TIMEFORMAT='%U %S' && time timeout $((secs + 30)) wrk -t"$threads" -c"$c" -d"${secs}s" \
        --timeout 10s -s bench/auth_check.lua "http://127.0.0.1:$PORT$path" \
        -- "$file" "$expect" "$mode" "$threads" "${check_arg[@]}" >"$out" 2>&1; } 2>"$tf"; then
        cat "$out" >&2
        die "$b/$name: wrk failed"
    fi
    [[ -n $perf_pid ]] && wait "$perf_pid" 2>/dev/null || true
    t1=$(proc_ticks "$SERVER_PID")
    pg1=0
    [[ $b == postgres ]] && pg1=$(pg_ticks)
    read -r -a cpu1 < <(head -n1 /proc/stat)
    line=$(grep '^wrk_result ' "$out") || { cat "$out" >&2; die "$b/$name: no wrk_result line"; }
    local req unexp responses serrs errs
    req=$(field requests "$line")
    unexp=$(field unexpected "$line")
    responses=$(field responses "$line")
    serrs=$(field status_errors "$line")
    errs=$(($(field connect "$line") + $(field read "$line") + $(field write "$line") + $(field timeout "$line")))
    ((req > 0)) || die "$b/$name: no requests completed"
    ((errs == 0)) || die "$b/$name: $errs socket errors: the run does not count (see $out)"
    if [[ $CHECK == 1 ]]; then
        ((unexp == 0)) || die "$b/$name: $unexp responses were not $expect (first: $(field first_unexpected "$line")): the run does not count"
        ((responses == req)) || die "$b/$name: checked $responses responses of $req"
    elif ((expect >= 400)); then
        ((serrs == req)) || die "$b/$name: $((req - serrs)) responses below 400 where $expect was expected"
    else
        ((serrs == 0)) || die "$b/$name: $serrs responses >= 400 where $expect was expected"
    fi
    R[$b.$name.rate]=$(field rate "$line")
    R[$b.$name.requests]=$req
    R[$b.$name.p50]=$(field p50_ms "$line")
    R[$b.$name.p99]=$(field p99_ms "$line")
    R[$b.$name.p999]=$(field p999_ms "$line")
    R[$b.$name.max]=$(field max_ms "$line")
    R[$b.$name.wraps]=$(field wraps "$line")
    R[$b.$name.keys]=$(field keys "$line")
    R[$b.$name.conns]=$c
    R[$b.$name.secs]=$secs
    R[$b.$name.srv_us]=$(fdiv "$(((t1 - t0) * 1000000 / TICK))" "$req" %.1f)
    R[$b.$name.pg_us]=$(fdiv "$(((pg1 - pg0) * 1000000 / TICK))" "$req" %.1f)
    read -r wu ws <"$tf" || { wu=0; ws=0; }
    R[$b.$name.wrk_us]=$(awk -v u="$wu" -v s="$ws" -v n="$req" 'BEGIN { printf "%.1f", (u + s) * 1e6 / n }')
    # Whatever else ran on the machine meanwhile (busy CPU not used by server, PostgreSQL or
    # wrk), as a share of all cores: a few percent is the kernel's network softirqs and noise;
    # much more means the run was disturbed.
    local busy total k
    busy=0
    total=0
    for k in 1 2 3 4 5 6 7 8; do total=$((total + cpu1[k] - cpu0[k])); done
    busy=$((total - (cpu1[4] - cpu0[4]) - (cpu1[5] - cpu0[5])))
    R[$b.$name.other]=$(awk -v busy="$busy" -v total="$total" -v srv="$((t1 - t0))" -v pg="$((pg1 - pg0))" \
        -v w="$(awk -v u="$wu" -v s="$ws" 'BEGIN { print u + s }')" -v tick="$TICK" \
        'BEGIN { o = (busy - srv - pg) / tick - w; if (o < 0) o = 0; printf "%.0f", (total > 0 ? 100 * o * tick / total : 0) }')
    R[$b.$name.idle]=$(awk -v busy="$busy" -v total="$total" 'BEGIN { printf "%.0f", (total > 0 ? 100 - 100 * busy / total : 0) }')
    printf '    %-14s %9s req/s  p50 %6s ms  p99 %6s ms  server %5s us/req  wrk %5s us/req%s\n' \
        "$name" "${R[$b.$name.rate]}" "${R[$b.$name.p50]}" "${R[$b.$name.p99]}" \
        "${R[$b.$name.srv_us]}" "${R[$b.$name.wrk_us]}" \
        "$([[ $b == postgres ]] && echo "  postgres ${R[$b.$name.pg_us]} us/req")" >&2
}

warm() { # warm BACKEND NAME [FILE EXPECT]: every key of FILE once, each must answer EXPECT
    local b=$1 name=$2 file=${3:-hot_keys} expect=${4:-204} line
    line=$(timeout 200 "$WARM" --addr "127.0.0.1:$PORT" --keys "$KEYS/$file.txt" \
        --expect "$expect" --connections "$C" --timeout 180 2>&1) ||
        { echo "$line" >&2; die "$b/$name failed"; }
    echo "    $name: $line" >&2
    R[$b.$name.rate]=$(field rate "$line")
    R[$b.$name.seconds]=$(field seconds "$line")
}

# keyplane serve on a free port (PORT) over STORE_ENV, waited for. start_server BACKEND LOG [ARGS]
# (ARGS go before `serve`, e.g. --config FILE). Throttling is off: the bogus-key runs measure
# lookups, not 429s (one loopback source).
start_server() {
    local b=$1 logf=$2 up="" cache_env=()
    shift 2
    PORT=$(free_port)
    [[ -z $CACHE_CAPACITY ]] || cache_env=(KEYPLANE_KEY_CACHE_CAPACITY="$CACHE_CAPACITY")
    "${CLEAN_ENV[@]}" "${STORE_ENV[@]}" "${cache_env[@]}" KEYPLANE_LISTEN="127.0.0.1:$PORT" \
        KEYPLANE_LOG=warn KEYPLANE_AUTH_FAILURE_LIMIT=0 "$KEYPLANE" "$@" serve >"$logf" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do # up to 30 s
        if curl -fsS --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
            up=1
            break
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $up ]] || { cat "$logf" >&2; die "$b: keyplane serve did not become healthy"; }
}

# Step 10: the admission runs, on a server restarted over the same store with a catalogue.
run_admission() {
    local b=$1 got
    start_server "$b" "$WORK/server-$b-admission.log" --config "$PWD/bench/models.toml"
    log "$b: admission: key limits on $N_LIMITED hot keys"
    timeout 600 python3 bench/set_key_limits.py "$PORT" "$KEYS/admin_key.txt" "$KEYS/hot_keys.txt" \
        "$KEYS/limited_keys.txt" "$N_LIMITED" 1000000000 >&2 || die "$b: setting key limits failed"
    got=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "X-Keyplane-Model: bench-refused" \
        -H "Authorization: Bearer $(head -n1 "$KEYS/limited_keys.txt")" \
        "http://127.0.0.1:$PORT/v1/auth/check") || die "$b: auth/check request failed"
    [[ $got == 429 ]] || die "$b: a limited key naming bench-refused got $got, not 429"
    wait_quiet
    log "$b: admission: GET /healthz again (this server's baseline)"
    run_wrk "$b" healthz_adm /healthz "$KEYS/limited_keys.txt" 200 random "$DUR" "$C"
    warm "$b" warm_limited limited_keys 204
    sleep "$USAGE_FLUSH.5"
    wait_quiet "$SETTLE"
    log "$b: admission: auth/check with limited keys, admitted (wrk -t$WRK_THREADS -c$C -d${DUR}s)"
    run_wrk "$b" limited /v1/auth/check "$KEYS/limited_keys.txt" 204 random "$DUR" "$C"
    log "$b: admission: the same keys over a limit, refused"
    BENCH_MODEL=bench-refused run_wrk "$b" refused /v1/auth/check "$KEYS/limited_keys.txt" 429 random "$DUR" "$C"
    stop_server
}

# ---------------------------------------------------------------------------------------------
run_backend() {
    local b=$1 t0 pid_rss ended
    case $b in
    sqlite) STORE_ENV=(KEYPLANE_DATA_DIR="$WORK/sqlite-$b") ;;
    postgres)
        new_pg_db
        STORE_ENV=(KEYPLANE_DATABASE_URL="$PG_URL")
        ;;
    esac

    log "$b: importing $RECORDS records ($EXPORT_MB MB)"
    t0=$(now_s)
    timeout "$IMPORT_TIMEOUT" "${CLEAN_ENV[@]}" "${STORE_ENV[@]}" KEYPLANE_LOG=warn \
        "$KEYPLANE" import --input "$KEYS/export.jsonl" >"$WORK/import-$b.log" 2>&1 ||
        { cat "$WORK/import-$b.log" >&2; die "$b: keyplane import failed (or took over ${IMPORT_TIMEOUT}s)"; }
    R[$b.import_s]=$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.0f", b - a }')
    echo "    $(tail -n1 "$WORK/import-$b.log") in ${R[$b.import_s]} s" >&2
    R[$b.vacuum_s]=""
    if [[ $b == postgres ]]; then
        # What an operator does after a bulk load; otherwise autovacuum does it during the runs.
        t0=$(now_s)
        timeout 600 psql "$PG_URL" -X -q -v ON_ERROR_STOP=1 -c "VACUUM (ANALYZE)" ||
            die "$b: VACUUM ANALYZE failed"
        R[$b.vacuum_s]=$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.0f", b - a }')
        echo "    VACUUM (ANALYZE) in ${R[$b.vacuum_s]} s" >&2
    fi

    start_server "$b" "$WORK/server-$b.log"

    # One request of each kind by hand first, so a broken setup fails loudly.
    local f want got
    for f in hot_keys:204 bogus_checksum:401 bogus_unknown:401; do
        want=${f#*:}
        got=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' \
            -H "Authorization: Bearer $(tail -n1 "$KEYS/${f%:*}.txt")" \
            "http://127.0.0.1:$PORT/v1/auth/check") || die "$b: auth/check request failed"
        [[ $got == "$want" ]] || die "$b: a key from ${f%:*}.txt got $got, not $want"
    done
    wait_quiet

    # The connection count: the smallest that gives the framework's ceiling.
    C=${SWEEP%% *}
    if [[ $CONNS == auto ]]; then
        log "$b: choosing wrk connections on /healthz (${SWEEP// /, }; 3 s each)"
        local best=0 c rate
        for c in $SWEEP; do
            run_wrk "$b" "sweep$c" /healthz "$KEYS/hot_keys.txt" 200 random 3 "$c"
            rate=${R[$b.sweep$c.rate]}
            fge "$best" "$rate" || best=$rate
        done
        for c in $SWEEP; do
            if fge "${R[$b.sweep$c.rate]}" "$(awk -v x="$best" 'BEGIN { print x * 0.95 }')"; then
                C=$c
                break
            fi
        done
        echo "    -> $C connections" >&2
    fi

    wait_quiet
    log "$b: GET /healthz (wrk -t$WRK_THREADS -c$C -d${DUR}s)"
    run_wrk "$b" healthz /healthz "$KEYS/hot_keys.txt" 200 random "$DUR" "$C"
    wait_quiet

    log "$b: warm-up (every hot key once; cache misses)"
    local w_start
    w_start=$(now_s)
    warm "$b" warm
    R[$b.rss_warm]=$(rss_of "$SERVER_PID")
    # The warm-up's uses are written back (last_used_at) at the server's flush ticks, every
    # USAGE_FLUSH s: wait for the tick after the warm-up, then up to BENCH_SETTLE_SECONDS for the
    # write-back to finish. The valid run should then end within a minute of the warm-up's
    # start: each key's use was noted then, so no new write is due during the run.
    t0=$(now_s)
    sleep "$USAGE_FLUSH.5"
    wait_quiet "$SETTLE"
    R[$b.settle_s]=$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.0f", b - a }')
    log "$b: auth/check with random hot keys (wrk -t$WRK_THREADS -c$C -d${DUR}s)"
    run_wrk "$b" valid /v1/auth/check "$KEYS/hot_keys.txt" 204 random "$DUR" "$C"
    ended=$(awk -v a="$w_start" -v b="$(now_s)" 'BEGIN { printf "%.0f", b - a }')
    R[$b.valid_end_s]=$ended
    if ((ended > 60)); then
        echo "auth_check: $b: the valid run ended $ended s after the warm-up began: it includes noting uses again (last_used_at)" >&2
    fi

    log "$b: bogus keys"
    run_wrk "$b" checksum /v1/auth/check "$KEYS/bogus_checksum.txt" 401 random "$DUR" "$C"
    # Each unknown key once first (each a store read, then a negative cache entry), so the
    # run measures the negative cache; the never-repeated run below measures the store reads.
    warm "$b" unknown_pass bogus_unknown 401
    run_wrk "$b" unknown /v1/auth/check "$KEYS/bogus_unknown.txt" 401 random "$DUR" "$C"
    run_wrk "$b" fresh /v1/auth/check "$KEYS/fresh_unknown.txt" 401 seq "$DUR" "$C"
    if ((SUSTAINED > 0)); then
        log "$b: auth/check with random hot keys for ${SUSTAINED} s (last_used_at write-back included)"
        run_wrk "$b" sustained /v1/auth/check "$KEYS/hot_keys.txt" 204 random "$SUSTAINED" "$C"
    fi
    R[$b.rss_end]=$(rss_of "$SERVER_PID")
    pid_rss=${R[$b.rss_end]}
    echo "    RSS after the warm-up: $(mb "${R[$b.rss_warm]%% *}") MB; at the end: VmRSS $(mb "$(cut -d' ' -f1 <<<"$pid_rss")") MB, VmHWM $(mb "$(cut -d' ' -f2 <<<"$pid_rss")") MB" >&2
    stop_server
    # A failed request (503, 500) is logged by the HTTP layer; that, or a panic, voids the runs.
    # Anything else logged at warn (background work) is reported with the results.
    if grep -qE 'keyplane::http|panicked' "$WORK/server-$b.log"; then
        grep -E 'keyplane::http|panicked' "$WORK/server-$b.log" | tail -n 5 >&2
        die "$b: the server failed requests or panicked during the runs (see $WORK/server-$b.log)"
    fi
    if [[ $ADMISSION == 1 ]]; then
        run_admission "$b"
        if grep -qE 'keyplane::http|panicked' "$WORK/server-$b-admission.log"; then
            grep -E 'keyplane::http|panicked' "$WORK/server-$b-admission.log" | tail -n 5 >&2
            die "$b: the server failed requests or panicked during the admission runs"
        fi
        cat "$WORK/server-$b-admission.log" >>"$WORK/server-$b.log"
    fi
    R[$b.warnings]=$(grep -cE ' (WARN|ERROR) ' "$WORK/server-$b.log" || true)
    R[$b.warning_kinds]=$(grep -E ' (WARN|ERROR) ' "$WORK/server-$b.log" |
        sed -E 's/^[^ ]+ +(WARN|ERROR) +//; s/ (summary|db\.statement|rows_affected|elapsed)=.*//; s/[0-9]+(\.[0-9]+)?s\b/Ns/g' |
        sort | uniq -c | sort -rn | awk '{ n = $1; $1 = ""; sub(/^ /, ""); printf "%s%d× %s", (NR > 1 ? "; " : ""), n, $0 }' |
        sed 's/|/\\|/g' || true)
    if ((${R[$b.warnings]} > 0)); then
        echo "    the server logged ${R[$b.warnings]} warnings: ${R[$b.warning_kinds]}" >&2
    fi
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
for b in $BACKENDS; do
    run_backend "$b"
done

# ---------------------------------------------------------------------------------------------
# Verdicts and report.
FAILED=0
verdict() { # verdict CMD...: sets V to PASS or FAIL (and FAILED=1)
    if "$@"; then V=PASS; else
        FAILED=1
        V=FAIL
    fi
}
flt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
fle() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

RUNS="| backend | run | keys sent | conns | seconds | requests/s | p50 ms | p99 ms | p99.9 ms | keyplane CPU µs/req | PostgreSQL CPU µs/req | wrk CPU µs/req | idle / other CPU |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
TARGETS="| backend | target | measured | verdict |
|---|---|---|---|"
OTHER="| backend | import | warm-up (cold lookups) | wait for quiet after it | unknown keys, first lookup | RSS after warm-up | RSS at end (VmRSS / VmHWM) | of which anon / file |
|---|---:|---:|---:|---:|---:|---:|---:|"
LOGS=""
desc() {
    case $1 in
    healthz) echo "GET /healthz (ceiling)" ;;
    valid) echo "auth/check, valid hot keys, cache warm" ;;
    checksum) echo "auth/check, bogus: bad checksum" ;;
    unknown) echo "auth/check, bogus: well-formed unknown (negative cache)" ;;
    fresh) echo "auth/check, well-formed unknown, never repeated (extra)" ;;
    sustained) echo "auth/check, valid hot keys, ${SUSTAINED} s sustained, uses written back (extra)" ;;
    healthz_adm) echo "admission server: GET /healthz" ;;
    limited) echo "admission server: auth/check, key limit + project × model limit, admitted" ;;
    refused) echo "admission server: auth/check, the same keys over a limit, refused (429)" ;;
    esac
}
keys_desc() {
    case $1 in
    healthz | valid | sustained) echo "random of $N_HOT hot" ;;
    healthz_adm | limited | refused) echo "random of $N_LIMITED limited" ;;
    checksum) echo "random of $((N_BOGUS / 2))" ;;
    unknown) echo "random of $((N_BOGUS - N_BOGUS / 2))" ;;
    fresh) echo "each once, in order (wraps: $2)" ;;
    esac
}
for b in $BACKENDS; do
    for n in healthz valid checksum unknown fresh sustained healthz_adm limited refused; do
        [[ -n ${R[$b.$n.rate]:-} ]] || continue
        pgc="–"
        [[ $b == postgres ]] && pgc=${R[$b.$n.pg_us]}
        RUNS+="
| $b | $(desc $n) | $(keys_desc $n "${R[$b.$n.wraps]}") | ${R[$b.$n.conns]} | ${R[$b.$n.secs]} | ${R[$b.$n.rate]} | ${R[$b.$n.p50]} | ${R[$b.$n.p99]} | ${R[$b.$n.p999]} | ${R[$b.$n.srv_us]} | $pgc | ${R[$b.$n.wrk_us]} | ${R[$b.$n.idle]}% / ${R[$b.$n.other]}% |"
    done
    ratio=$(fdiv "${R[$b.valid.rate]}" "${R[$b.healthz.rate]}")
    verdict fge "$ratio" "$T_RATIO"
    TARGETS+="
| $b | auth/check (valid, warm) >= 80% of /healthz | $ratio (${R[$b.valid.rate]} / ${R[$b.healthz.rate]} req/s) | $V |"
    verdict flt "${R[$b.valid.p99]}" "$T_P99_MS"
    TARGETS+="
| $b | p99 < ${T_P99_MS} ms at that load | ${R[$b.valid.p99]} ms (/healthz at its own load: ${R[$b.healthz.p99]} ms) | $V |"
    for n in checksum unknown; do
        r=$(fdiv "${R[$b.$n.rate]}" "${R[$b.valid.rate]}")
        verdict fge "$r" "$T_BOGUS"
        TARGETS+="
| $b | bogus ($n) no slower than valid | $r (${R[$b.$n.rate]} / ${R[$b.valid.rate]} req/s) | $V |"
    done
    hwm=$(mb "$(cut -d' ' -f2 <<<"${R[$b.rss_end]}")")
    verdict flt "$hwm" "$T_RSS_MB"
    TARGETS+="
| $b | RSS < ${T_RSS_MB} MB with $N_KEYS stored, $N_HOT hot | VmHWM $hwm MB (VmRSS at the end $(mb "$(cut -d' ' -f1 <<<"${R[$b.rss_end]}")") MB) | $V |"
    # Extras: reported against the same targets, not counted in the exit status.
    r=$(fdiv "${R[$b.fresh.rate]}" "${R[$b.valid.rate]}")
    TARGETS+="
| $b | (extra) never-repeated unknown keys no slower than valid | $r (${R[$b.fresh.rate]} / ${R[$b.valid.rate]} req/s) | $(fge "$r" "$T_BOGUS" && echo pass || echo miss) |"
    if [[ -n ${R[$b.sustained.rate]:-} ]]; then
        r=$(fdiv "${R[$b.sustained.rate]}" "${R[$b.healthz.rate]}")
        TARGETS+="
| $b | (extra) sustained ${SUSTAINED} s valid >= 80% of /healthz; its p99 | $r (${R[$b.sustained.rate]} / ${R[$b.healthz.rate]} req/s); p99 ${R[$b.sustained.p99]} ms | $(fge "$r" "$T_RATIO" && echo pass || echo miss) |"
    fi
    if [[ -n ${R[$b.limited.rate]:-} ]]; then
        r=$(fdiv "${R[$b.limited.srv_us]}" "${R[$b.valid.srv_us]}")
        verdict fle "$r" "$T_LIMITED"
        TARGETS+="
| $b | limited keys: keyplane CPU per request <= ${T_LIMITED}× the plain valid run's | $r (${R[$b.limited.srv_us]} / ${R[$b.valid.srv_us]} µs; each against its server's /healthz: $(fdiv "${R[$b.limited.srv_us]}" "${R[$b.healthz_adm.srv_us]}") / $(fdiv "${R[$b.valid.srv_us]}" "${R[$b.healthz.srv_us]}")) | $V |"
        r=$(fdiv "${R[$b.refused.srv_us]}" "${R[$b.limited.srv_us]}")
        verdict fle "$r" "$T_REFUSED"
        TARGETS+="
| $b | refused flood: keyplane CPU per request <= the admitted run's | $r (${R[$b.refused.srv_us]} / ${R[$b.limited.srv_us]} µs) | $V |"
    fi
    read -r er eh ea ef <<<"${R[$b.rss_end]}"
    imp="${R[$b.import_s]} s"
    [[ -n ${R[$b.vacuum_s]} ]] && imp+=" (+ VACUUM ANALYZE ${R[$b.vacuum_s]} s)"
    OTHER+="
| $b | $imp | ${R[$b.warm.rate]}/s (${R[$b.warm.seconds]} s) | ${R[$b.settle_s]} s | ${R[$b.unknown_pass.rate]}/s | $(mb "${R[$b.rss_warm]%% *}") MB | $(mb "$er") / $(mb "$eh") MB | $(mb "$ea") / $(mb "$ef") MB |"
    if ((${R[$b.warnings]:-0} > 0)); then
        LOGS+="- **$b server log:** ${R[$b.warnings]} warnings: ${R[$b.warning_kinds]}
"
    else
        LOGS+="- **$b server log:** no warnings.
"
    fi
done
echo
echo "$RUNS"
echo
echo "$TARGETS"
echo
echo "$OTHER"
echo
[[ -z $LOGS ]] || { echo "$LOGS"; echo; }

OVERRIDES=""
for v in BENCH_SECONDS BENCH_SUSTAINED_SECONDS BENCH_SETTLE_SECONDS BENCH_CONNECTIONS BENCH_SWEEP BENCH_WRK_THREADS \
    BENCH_CHECK BENCH_BACKENDS BENCH_POSTGRES_URL BENCH_KEYS BENCH_HOT BENCH_BOGUS BENCH_FRESH \
    BENCH_CACHE_CAPACITY BENCH_PERF BENCH_ADMISSION BENCH_LIMITED; do
    [[ -n ${!v:-} ]] && OVERRIDES+="$v=\"${!v}\" "
done
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
MEM=$(free -g | awk '/^Mem:/ { printf "%s GiB total, %s GiB available", $2, $7 }')
PG_VERSION=""
[[ " $BACKENDS " == *" postgres "* ]] &&
    PG_VERSION=$(timeout 10 psql "$PG_BASE/postgres" -X -Atc 'SHOW server_version' 2>/dev/null || true)
CONN_NOTE="$C"
[[ $CONNS == auto ]] && CONN_NOTE="chosen per backend: the smallest of ${SWEEP// /, } within 5% of the best /healthz rate (3 s each)"

SECTION=$(
    cat <<EOF
<!-- auth_check:begin (written by bench/auth_check.sh; rerunning it replaces this section) -->
# Verification throughput: \`GET /v1/auth/check\` with $N_KEYS stored keys

Generated by \`bench/auth_check.sh\`; rerun it to refresh this section.

- **Date:** $STARTED
- **Command:** \`${OVERRIDES}bench/auth_check.sh\` (after \`${BUILD_CMD[*]}\`, which the script runs)
- **Commit:** $COMMIT
- **Machine:** $(nproc) cores ($CPU), memory $MEM, kernel $(uname -r)${PG_VERSION:+, PostgreSQL $PG_VERSION on the same machine}
- **Load average before the run:** $LOAD_BEFORE
- **Data:** $N_KEYS service-account keys (1 organization, 100 projects, one service account per key) and 1 admin key, $RECORDS records, imported with \`keyplane import\`; $N_HOT hot keys (every $((N_KEYS / N_HOT))th); $((N_BOGUS / 2)) bad-checksum and $((N_BOGUS - N_BOGUS / 2)) well-formed unknown bogus keys; $N_FRESH more well-formed unknown keys for the never-repeated run
- **Load:** wrk $WRK_THREADS threads, connections $CONN_NOTE; ${DUR} s per run; every response's status checked$([[ $CHECK == 1 ]] || echo " only through wrk's >= 400 counter (BENCH_CHECK=0)")
- **Shared cores:** wrk, keyplane and (for the postgres backend) PostgreSQL all run on the same $(nproc) cores, so every figure includes the load generator's own cost; the CPU columns show who used what.

### Targets

$TARGETS

### Runs

$RUNS

### Import, warm-up, memory and server log

$OTHER

$LOGS
### Method

1. \`gen_keys --keys $N_KEYS --hot $N_HOT --bogus $N_BOGUS --fresh $N_FRESH\` (examples/gen_keys.rs) writes the export and the key files.
2. Per backend: a fresh store (SQLite file in a scratch directory; a new PostgreSQL database, followed by \`VACUUM (ANALYZE)\`), \`keyplane import --input export.jsonl\` (timed), then \`KEYPLANE_LOG=warn keyplane serve\` on a free loopback port.
3. \`wrk -t$WRK_THREADS -c$C -d${DUR}s -s bench/auth_check.lua http://127.0.0.1:PORT/healthz -- hot_keys.txt 200 random $WRK_THREADS\`: the ceiling. The same script and headers as the auth/check runs, so wrk does the same work per request. (With automatic connections, the sweep over ${SWEEP// /, } runs just before it, 3 s each.)
4. Warm-up (examples/warm_keys.rs): every hot key once over $C keep-alive connections, each answer checked to be 204. Every request is a cache miss: the key, its service account and its project are read from the store and cached.
5. ${USAGE_FLUSH} s (the server's \`last_used_at\` flush interval) and up to ${SETTLE} s more for the machine to be quiet (the warm-up's write-back; the table below says how long the whole wait took), then \`wrk … /v1/auth/check -- hot_keys.txt 204 random …\`. Every request is a positive cache hit, and each key's use was already noted in the warm-up, less than a minute before, so no new write is due. This is the run the targets are judged on. Any write-back still running shows in the PostgreSQL CPU column.
6. \`… -- bogus_checksum.txt 401 random …\` (rejected by the checksum before any lookup), \`… -- bogus_unknown.txt 401 random …\` (well-formed, never stored; each was sent once just before by warm_keys, checked to be 401, so every request is a negative cache hit), \`… -- fresh_unknown.txt 401 seq …\` (well-formed, never stored and never repeated: every request reads the store; what a flood of made-up keys with correct checksums costs).
7. $( ((SUSTAINED > 0)) && echo "\`… -d${SUSTAINED}s … -- hot_keys.txt 204 random …\`, more than a minute after the warm-up: each key's use is noted and written back again (\`last_used_at\`, at most once a minute per key), as on a server under constant traffic. (With the cache TTL of 5 minutes no entry expires during the benchmark; with a shorter one, this run would also show the refetches.)" || echo "(sustained run skipped: BENCH_SUSTAINED_SECONDS=0)")
8. RSS: \`VmRSS\`, \`VmHWM\` (peak), \`RssAnon\`, \`RssFile\` of the keyplane process from \`/proc/PID/status\`.
9. $([[ $ADMISSION == 1 ]] && echo "Admission: the server restarted over the same store with \`--config models.toml\` (\`[models.\"*\"]\` 10⁹ requests and tokens a minute, 10⁹ requests a day; \`[models.\"bench-refused\"]\` 0 requests a minute). \`bench/set_key_limits.py\` gives the first $N_LIMITED hot keys key limits of 10⁹ (requests a minute and a day, tokens a minute) through the admin API. Then /healthz again (this server's baseline), every limited key once (warm-up), the flush interval, and \`wrk … -- limited_keys.txt 204 random …\`: every request checks and counts the key's three windows and its project × \`*\` windows. Last \`BENCH_MODEL=bench-refused wrk … -- limited_keys.txt 429 random …\`: the same keys naming a model whose limit is 0, every request refused after the key limits are checked. Targets: the limited run's keyplane CPU per request at most ${T_LIMITED}× the plain valid run's (step 5), the refused run's at most the limited run's." || echo "(admission runs skipped: BENCH_ADMISSION=0)")

"idle / other CPU" is the share of all cores left idle during the run, and the share used by anything but keyplane, PostgreSQL and wrk (kernel network work not charged to them, and any other load on the machine). A run counts only if every response had the expected status (204, 401, or 200) and there was no socket error; otherwise the script fails. CPU per request is the process's user+system time over the run divided by the requests (PostgreSQL: all \`postgres\` processes on the machine). One run per backend, not an average: expect several percent of noise between runs, more for p99, which on $(nproc) shared cores is mostly scheduling (see /healthz's own p99).
<!-- auth_check:end -->
EOF
)
# Replace this script's section of the results file, or append it; leave the rest alone.
if [[ -f $RESULTS ]] && grep -q '^<!-- auth_check:begin' "$RESULTS"; then
    awk -v section="$SECTION" '
        /^<!-- auth_check:begin/ { print section; skip = 1; next }
        /^<!-- auth_check:end/ { skip = 0; next }
        !skip { print }' "$RESULTS" >"$WORK/results.md"
else
    { [[ -f $RESULTS ]] && cat "$RESULTS" && echo; echo "$SECTION"; } >"$WORK/results.md"
fi
cp "$WORK/results.md" "$RESULTS"
log "wrote $RESULTS"

((FAILED == 0)) || exit 2
exit 0
