#!/usr/bin/env bash
# Bounded soak of mixed traffic (90% /v1/auth/check, 9% lists, 1% creates/deletes) against the
# release binary, on SQLite and PostgreSQL. Reports throughput, p50/p99 per kind, errors (must be
# 0) and the server's RSS over time (must stay flat). See bench/README.md.
#
#   bench/soak.sh                         # 10 minutes per backend, results into bench/RESULTS.md
#   SOAK_SECONDS=20 SOAK_RECORD=0 bench/soak.sh   # the short run of the test command
#
# Overrides (environment):
#   SOAK_SECONDS=600               length per backend
#   SOAK_CONCURRENCY=16            connections
#   SOAK_INTERVAL=30               seconds between RSS/throughput samples
#   SOAK_MAX_RSS_GROWTH_PCT=20     failure bound on RSS growth after warm-up
#   SOAK_BACKENDS="sqlite postgres"
#   SOAK_POSTGRES_URL=postgres://postgres@127.0.0.1:5432   server to create the database on
#   SOAK_RECORD=1                  0: do not write bench/RESULTS.md
#
# Exit status: 0 every backend ran without errors and with flat RSS, 1 otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER=${SOAK_SECONDS:-600}
CONC=${SOAK_CONCURRENCY:-16}
INTERVAL=${SOAK_INTERVAL:-30}
GROWTH=${SOAK_MAX_RSS_GROWTH_PCT:-20}
BACKENDS=${SOAK_BACKENDS:-"sqlite postgres"}
PG_BASE=${SOAK_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
PG_BASE=${PG_BASE%/}
RECORD=${SOAK_RECORD:-1}
RESULTS=bench/RESULTS.md

die() { echo "soak: $*" >&2; exit 1; }
[[ $SECONDS_PER =~ ^[0-9]+$ ]] && ((SECONDS_PER >= 1 && SECONDS_PER <= 3600)) || die "SOAK_SECONDS must be 1..3600"
((INTERVAL <= SECONDS_PER)) || INTERVAL=$SECONDS_PER

# Read before anything runs: at the end the load average is the soak's own.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
cargo build --release --locked --bin keyplane --example soak
# The commit the binary was built from (the tree may move on during a long run).
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT (+ uncommitted changes)"
BIN=target/release/keyplane
SOAK=target/release/examples/soak

WORK=$(mktemp -d "${TMPDIR:-/tmp}/keyplane-soak.XXXXXX")
PG_DB=""
cleanup() {
    local status=$?
    if [[ -n $PG_DB ]]; then
        timeout 30 psql "$PG_BASE/postgres" -X -q -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

status=0
for backend in $BACKENDS; do
    args=(--bin "$BIN" --backend "$backend" --seconds "$SECONDS_PER" --concurrency "$CONC"
        --interval "$INTERVAL" --max-rss-growth-pct "$GROWTH")
    if [[ $backend == postgres ]]; then
        PG_DB="keyplane_soak_$(date +%s)_$$"
        timeout 30 psql "$PG_BASE/postgres" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$PG_DB\"" >/dev/null ||
            die "cannot create a database on $PG_BASE"
        args+=(--database-url "$PG_BASE/$PG_DB")
    fi
    echo "== soak: $backend, ${SECONDS_PER} s" >&2
    if ! timeout $((SECONDS_PER + 300)) "$SOAK" "${args[@]}" | tee "$WORK/$backend.md"; then
        status=1
    fi
    if [[ -n $PG_DB ]]; then
        timeout 30 psql "$PG_BASE/postgres" -X -q -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
        PG_DB=""
    fi
done

if [[ $RECORD == 1 ]]; then
    {
        echo "<!-- soak:begin (written by bench/soak.sh; rerunning it replaces this section) -->"
        echo "## Soak: mixed traffic"
        echo
        echo "- **Date:** $(date -u '+%Y-%m-%d %H:%M:%S UTC'); **commit:** $COMMIT"
        echo "- **Command:** \`SOAK_SECONDS=$SECONDS_PER SOAK_CONCURRENCY=$CONC SOAK_INTERVAL=$INTERVAL bench/soak.sh\`"
        echo "- **Machine:** $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average before: $LOAD_BEFORE"
        echo "- **Traffic:** 90% \`GET /v1/auth/check\` over 200 keys, 9% \`GET …/service_accounts?limit=20\`, 1% create/delete of service accounts; $CONC keep-alive connections from examples/soak.rs on the same 2 cores"
        echo "- **Pass:** zero errors, and RSS after the last sample within ${GROWTH}% of RSS after a fifth of the run"
        for backend in $BACKENDS; do
            echo
            echo "### $backend"
            echo
            cat "$WORK/$backend.md"
        done
        echo "<!-- soak:end -->"
    } >"$WORK/section.md"
    if grep -q '<!-- soak:begin' "$RESULTS"; then
        awk -v f="$WORK/section.md" '
            /<!-- soak:begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
            /<!-- soak:end -->/ { skip = 0; next }
            !skip { print }' "$RESULTS" >"$WORK/results.md"
        cp "$WORK/results.md" "$RESULTS"
    else
        { echo; cat "$WORK/section.md"; } >>"$RESULTS"
    fi
    echo "soak: results written to $RESULTS" >&2
fi
exit "$status"
