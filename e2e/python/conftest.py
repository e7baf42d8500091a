"""Fixtures for the keyplane end-to-end suite driven by the official `openai` Python SDK.

A session-scoped fixture starts one `keyplane serve` on a free loopback port with a
fresh data directory and a bootstrap admin key generated here (independently of
keyplane's own code), waits for `/healthz`, and stops it with SIGTERM at the end.

Environment:
  KEYPLANE_BIN               path of the keyplane binary (default target/release/keyplane,
                             relative to the repository root)
  KEYPLANE_E2E_DATABASE_URL  if set, handed to the server as KEYPLANE_DATABASE_URL
  KEYPLANE_E2E_SECRETS_FILE  if set, every secret the suite receives (key values, client
                             secrets, access tokens, admin keys) is appended to it, one a line
  KEYPLANE_E2E_LOG_DIR       if set, the server's stderr log is copied there at the end
                             (run.sh then checks that no recorded secret is in it)
  KEYPLANE_E2E_HTTP_RECORDS  if set, every response the SDK clients (OpenAI and Keycard)
                             receive is appended to it as a JSON line {suite, method, path,
                             query, status, content_type, body}; run.sh then validates the
                             OpenAI ones against OpenAI's spec (check_spec_conformance.py)
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import json

import httpx
import httpx2
import openai
import pytest
from openai import OpenAI

REPO_ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------------------
# Key format: prefix + base62(32 random bytes, big-endian) padded to 43
#             + base62(crc32(rand_str)) padded to 6
# --------------------------------------------------------------------------------------

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RAND_LEN = 43
CHECKSUM_LEN = 6

SVCACCT_KEY_RE = re.compile(r"^sk-svcacct-[0-9A-Za-z]{49}$")
ADMIN_KEY_RE = re.compile(r"^sk-admin-[0-9A-Za-z]{49}$")
PROJECT_ID_RE = re.compile(r"^proj_[0-9a-z]{26}$")
SVC_ACCT_ID_RE = re.compile(r"^svc_acct_[0-9a-z]{26}$")
KEY_ID_RE = re.compile(r"^key_[0-9a-z]{26}$")


def base62(n: int, width: int) -> str:
    if n < 0:
        raise ValueError("negative")
    digits = []
    while n:
        n, r = divmod(n, 62)
        digits.append(BASE62[r])
    s = "".join(reversed(digits)) or "0"
    if len(s) > width:
        raise ValueError(f"value does not fit in {width} base62 chars")
    return s.rjust(width, "0")


def unbase62(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 62 + BASE62.index(ch)
    return n


def key_from_bytes(prefix: str, raw: bytes) -> str:
    assert len(raw) == 32
    rand_str = base62(int.from_bytes(raw, "big"), RAND_LEN)
    checksum = base62(zlib.crc32(rand_str.encode("ascii")), CHECKSUM_LEN)
    return prefix + rand_str + checksum


def make_key(prefix: str) -> str:
    return key_from_bytes(prefix, os.urandom(32))


def key_checksum_ok(key: str, prefix: str) -> bool:
    """True when `key` is prefix + 43 base62 chars encoding < 2**256 + a valid CRC-32 suffix."""
    if not key.startswith(prefix):
        return False
    body = key[len(prefix):]
    if len(body) != RAND_LEN + CHECKSUM_LEN or any(c not in BASE62 for c in body):
        return False
    rand_str, checksum = body[:RAND_LEN], body[RAND_LEN:]
    if unbase62(rand_str) >= 1 << 256:
        return False
    return base62(zlib.crc32(rand_str.encode("ascii")), CHECKSUM_LEN) == checksum


def assert_svcacct_key(value: str) -> None:
    assert isinstance(value, str), value
    assert SVCACCT_KEY_RE.match(value), f"malformed service-account key: {value!r}"
    assert key_checksum_ok(value, "sk-svcacct-"), f"service-account key checksum does not verify: {value!r}"


def fake_id(prefix: str) -> str:
    """A well-formed id that keyplane never issued."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(26))


def unique_name(label: str) -> str:
    return f"e2e-py {label} {secrets.token_hex(4)}"


# --------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Secret recording: every response any HTTP client of the suite receives (both SDKs and the
# tests' own httpx calls) is scanned for secrets, which go to KEYPLANE_E2E_SECRETS_FILE so
# run.sh can prove none of them reached the server's log.
# --------------------------------------------------------------------------------------

_SECRET_FIELDS = {"value", "client_secret", "access_token", "refresh_token"}
_FULL_KEY_RE = re.compile(r"^sk-(admin|svcacct)-[0-9A-Za-z]{49}$")


def record_secret(secret: str) -> None:
    path = os.environ.get("KEYPLANE_E2E_SECRETS_FILE")
    if path and isinstance(secret, str) and len(secret) >= 16 and "\n" not in secret:
        with open(path, "a", encoding="utf-8") as f:
            f.write(secret + "\n")


def _collect(node, field=None) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _collect(v, k)
    elif isinstance(node, list):
        for v in node:
            _collect(v, field)
    elif isinstance(node, str) and (field in _SECRET_FIELDS or _FULL_KEY_RE.match(node)):
        record_secret(node)


def _scan(response) -> None:
    try:
        if "json" not in response.headers.get("content-type", ""):
            return
        response.read()
        _collect(json.loads(response.content))
    except Exception:  # noqa: BLE001 - recording must never change what a test sees
        pass


async def _ascan(response) -> None:
    try:
        if "json" in response.headers.get("content-type", ""):
            await response.aread()
            _collect(json.loads(response.content))
    except Exception:  # noqa: BLE001
        pass


def _install_recorders() -> None:
    for mod in (httpx, httpx2):
        sync_send, async_send = mod.Client.send, mod.AsyncClient.send

        def send(self, request, *args, __send=sync_send, **kwargs):
            response = __send(self, request, *args, **kwargs)
            _scan(response)
            return response

        async def asend(self, request, *args, __send=async_send, **kwargs):
            response = await __send(self, request, *args, **kwargs)
            await _ascan(response)
            return response

        mod.Client.send = send
        mod.AsyncClient.send = asend


if os.environ.get("KEYPLANE_E2E_SECRETS_FILE"):
    _install_recorders()


# The model catalogue the server runs with: what `rate_limits` lists for every project. The
# catch-all is high enough that no other test's checks are ever refused.
MODELS_TOML = """
[models."gpt-4o"]
max_requests_per_1_minute = 500
max_tokens_per_1_minute = 30000
max_requests_per_1_day = 10000

[models."o3"]
max_requests_per_1_minute = 100
max_tokens_per_1_minute = 20000
batch_1_day_max_input_tokens = 900000

[models."*"]
max_requests_per_1_minute = 100000
max_tokens_per_1_minute = 100000000
"""


@dataclass
class Server:
    base_url: str  # ends in /v1
    root_url: str
    admin_key: str
    data_dir: Path
    stderr_path: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _resolve_bin() -> Path:
    raw = os.environ.get("KEYPLANE_BIN", "target/release/keyplane")
    p = Path(raw)
    if not p.is_absolute():
        p = REPO_ROOT / p
    if not p.is_file():
        pytest.exit(f"keyplane binary not found at {p} (set KEYPLANE_BIN)", returncode=2)
    return p


def _healthz_ok(root_url: str) -> bool:
    try:
        with urllib.request.urlopen(root_url + "/healthz", timeout=1) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ConnectionError):
        return False


def _create_organization(binary: Path, env: dict, data_dir: Path, label: str) -> str:
    """`keyplane organization create LABEL` prints the new organization's first admin key."""
    proc = subprocess.run(
        [str(binary), "organization", "create", label],
        env=env,
        cwd=str(data_dir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    key = proc.stdout.strip()
    record_secret(key)
    if proc.returncode != 0 or not ADMIN_KEY_RE.match(key) or not key_checksum_ok(key, "sk-admin-"):
        pytest.exit(
            f"`keyplane organization create {label}` failed (exit {proc.returncode}) or printed "
            f"a malformed admin key {key!r}\nstderr:\n{proc.stderr}",
            returncode=3,
        )
    return key


@pytest.fixture(scope="session")
def server():
    binary = _resolve_bin()
    port = _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="keyplane-e2e-py-"))
    admin_key = make_key("sk-admin-")
    assert ADMIN_KEY_RE.match(admin_key) and key_checksum_ok(admin_key, "sk-admin-")
    record_secret(admin_key)

    env = dict(os.environ)
    env["KEYPLANE_LISTEN"] = f"127.0.0.1:{port}"
    env["KEYPLANE_DATA_DIR"] = str(data_dir)
    env["KEYPLANE_BOOTSTRAP_ADMIN_KEY"] = admin_key
    env.pop("KEYPLANE_DATABASE_URL", None)
    if os.environ.get("KEYPLANE_E2E_DATABASE_URL"):
        env["KEYPLANE_DATABASE_URL"] = os.environ["KEYPLANE_E2E_DATABASE_URL"]
        # keyplane honours KEYPLANE_BOOTSTRAP_ADMIN_KEY only on a store that was never
        # initialised; a shared database (used by both suites, kept across runs) would ignore
        # it. Give this run its own organization instead and use the admin key keyplane prints.
        admin_key = _create_organization(binary, env, data_dir, f"e2e-py-{secrets.token_hex(4)}")

    stderr_path = data_dir / "keyplane.stderr.log"
    stdout_path = data_dir / "keyplane.stdout.log"
    stderr_f = open(stderr_path, "wb")
    stdout_f = open(stdout_path, "wb")
    config_path = data_dir / "keyplane.toml"
    config_path.write_text(MODELS_TOML)
    proc = subprocess.Popen(
        [str(binary), "--config", str(config_path), "serve"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout_f,
        stderr=stderr_f,
        cwd=str(data_dir),
    )
    root_url = f"http://127.0.0.1:{port}"

    def dump_logs() -> str:
        stderr_f.flush()
        stdout_f.flush()
        return (
            f"--- keyplane stderr ({stderr_path}) ---\n"
            + stderr_path.read_text(errors="replace")
            + f"\n--- keyplane stdout ({stdout_path}) ---\n"
            + stdout_path.read_text(errors="replace")
        )

    deadline = time.monotonic() + 20
    ready = False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _healthz_ok(root_url):
            ready = True
            break
        time.sleep(0.1)
    if not ready:
        code = proc.poll()
        if code is None:
            proc.kill()
            proc.wait()
        logs = dump_logs()
        print(logs)
        stderr_f.close()
        stdout_f.close()
        why = (
            f"keyplane exited with code {code} before {root_url}/healthz answered 200"
            if code is not None
            else f"keyplane did not answer 200 on {root_url}/healthz within 20 s"
        )
        pytest.exit(f"{why}.\n{logs}", returncode=3)

    try:
        yield Server(
            base_url=root_url + "/v1",
            root_url=root_url,
            admin_key=admin_key,
            data_dir=data_dir,
            stderr_path=stderr_path,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            stderr_f.close()
            stdout_f.close()
            raise AssertionError("keyplane did not exit within 10 s of SIGTERM\n" + dump_logs())
        stderr_f.close()
        stdout_f.close()
        if code not in (0, -signal.SIGTERM):
            print(f"keyplane exited with code {code} after SIGTERM\n" + dump_logs())
        log_dir = os.environ.get("KEYPLANE_E2E_LOG_DIR")
        if log_dir:
            shutil.copy(stderr_path, Path(log_dir) / f"python-{port}.log")
        shutil.rmtree(data_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------

_OPENAI_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_ADMIN_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_WEBHOOK_SECRET",
)


@pytest.fixture(scope="session", autouse=True)
def _clean_openai_env():
    # Ambient OpenAI settings must not leak into the clients (e.g. OpenAI-Organization headers).
    saved = {k: os.environ.pop(k) for k in _OPENAI_ENV if k in os.environ}
    yield
    os.environ.update(saved)


def http_recorder(suite: str):
    """An httpx response event hook that appends each response to KEYPLANE_E2E_HTTP_RECORDS
    (one JSON object a line), or None when that is not set."""
    path = os.environ.get("KEYPLANE_E2E_HTTP_RECORDS")
    if not path:
        return None

    def record(response) -> None:
        response.read()
        url = response.request.url
        entry = {
            "suite": suite,
            "method": response.request.method,
            "path": url.raw_path.decode("ascii").split("?", 1)[0],
            "query": url.query.decode("ascii") if isinstance(url.query, bytes) else str(url.query),
            "status": response.status_code,
            "content_type": response.headers.get("content-type"),
            "body": response.content.decode("utf-8", errors="replace"),
        }
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    return record


def make_client(server: Server, admin_key: str | None = None) -> OpenAI:
    record = http_recorder("python")
    return OpenAI(
        base_url=server.base_url,
        admin_api_key=admin_key if admin_key is not None else server.admin_key,
        max_retries=0,
        timeout=15,
        http_client=openai.DefaultHttpxClient(event_hooks={"response": [record]}) if record else None,
    )


@pytest.fixture(scope="session")
def client(server) -> OpenAI:
    return make_client(server)


@pytest.fixture(scope="session")
def org(client):
    """Shortcut to client.admin.organization."""
    return client.admin.organization
