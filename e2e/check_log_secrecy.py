"""After the SDK suites: no secret they received may appear in the servers' logs.

    python3 check_log_secrecy.py SECRETS_FILE LOG_DIR

SECRETS_FILE holds one secret a line (key values, admin keys, client secrets, access tokens),
appended by the suites; LOG_DIR the servers' stderr logs (KEYPLANE_LOG_FORMAT=json,
KEYPLANE_LOG=debug). Fails when a secret, or 12 consecutive characters of one that its
redacted form (`prefix + 4 … 4`) does not show, is in a log; when either input is empty (so
the check cannot pass vacuously); or when a log line is not a JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

WINDOW = 12
KEY_PREFIXES = ("sk-admin-", "sk-svcacct-")


def shown_by_redaction(secret: str) -> str:
    """What keyplane's redacted form of a key shows: prefix, first four, last four."""
    prefix = next((p for p in KEY_PREFIXES if secret.startswith(p)), "")
    rest = secret[len(prefix):]
    return f"{prefix}{rest[:4]}…{rest[-4:]}" if len(rest) >= 16 else prefix


def secret_parts(secret: str) -> list[str]:
    """The parts that must not leak: an access token's payload and signature (its header is
    the same for every token of a signing key), else the secret itself."""
    if secret.count(".") == 2:
        _, payload, signature = secret.split(".")
        return [p for p in (payload, signature) if len(p) >= WINDOW]
    return [secret]


def main() -> int:
    secrets_file, log_dir = Path(sys.argv[1]), Path(sys.argv[2])
    secrets = sorted({s for s in secrets_file.read_text().splitlines() if s.strip()}) if secrets_file.exists() else []
    logs = sorted(log_dir.glob("*.log"))
    if not secrets:
        print(f"log secrecy: FAIL: no secrets were recorded in {secrets_file}", file=sys.stderr)
        return 1
    if not logs:
        print(f"log secrecy: FAIL: no server logs in {log_dir}", file=sys.stderr)
        return 1
    failures = 0
    lines = 0
    for log in logs:
        text = log.read_text(errors="replace")
        if not text.strip():
            print(f"log secrecy: FAIL: {log.name} is empty", file=sys.stderr)
            failures += 1
            continue
        for n, line in enumerate(text.splitlines(), 1):
            lines += 1
            try:
                ok = isinstance(json.loads(line), dict)
            except ValueError:
                ok = False
            if not ok:
                print(f"log secrecy: FAIL: {log.name}:{n} is not a JSON object: {line[:200]!r}", file=sys.stderr)
                failures += 1
        for secret in secrets:
            shown = shown_by_redaction(secret)
            for part in secret_parts(secret):
                leaked = [part[i:i + WINDOW] for i in range(len(part) - WINDOW + 1)]
                leaked = [w for w in leaked if w not in shown and w in text]
                if part in text or leaked:
                    # Name the secret by its redacted form only: this output is a log too.
                    print(f"log secrecy: FAIL: {log.name} contains (part of) a secret {shown!r}", file=sys.stderr)
                    failures += 1
                    break
    print(f"log secrecy: {len(secrets)} secrets checked against {len(logs)} logs ({lines} lines)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
