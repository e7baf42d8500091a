"""Seeds a fresh keyplane with one object of each kind and prints their identifiers as
`export NAME=value` lines for schemathesis.toml, so generated requests reach real objects
instead of answering 404 on every path. Usage: seed.py ROOT_URL (admin key in KEYPLANE_ST_ADMIN_KEY)."""

from __future__ import annotations

import base64
import json
import os
import shlex
import sys
import urllib.request
import uuid


def call(root: str, method: str, path: str, body: dict | None, key: str) -> dict:
    req = urllib.request.Request(root + path, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("X-Client-Request-Id", str(uuid.uuid4()))
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data, timeout=10) as r:
        return json.loads(r.read())


def main() -> None:
    root = sys.argv[1]
    admin = os.environ["KEYPLANE_ST_ADMIN_KEY"]
    out: dict[str, str] = {}
    project = call(root, "POST", "/v1/organization/projects", {"name": "schemathesis"}, admin)
    out["ST_PROJECT_ID"] = project["id"]
    sa_path = f"/v1/organization/projects/{project['id']}/service_accounts"
    account = call(root, "POST", sa_path, {"name": "fuzzed"}, admin)
    out["ST_SERVICE_ACCOUNT_ID"] = account["id"]
    out["ST_API_KEY_ID"] = account["api_key"]["id"]
    # A second account, in its own project that no generated request names, so the
    # verification endpoints keep a working key while other operations delete things.
    other = call(root, "POST", "/v1/organization/projects", {"name": "verification"}, admin)
    checker = call(
        root, "POST", f"/v1/organization/projects/{other['id']}/service_accounts", {"name": "checker"}, admin
    )
    out["ST_SERVICE_ACCOUNT_KEY"] = checker["api_key"]["value"]

    kc = "/organizations/default/service-accounts"
    kc_account = call(root, "POST", kc, {"name": "fuzzed-kc"}, admin)
    out["ST_KC_SERVICE_ACCOUNT_ID"] = kc_account["id"]
    credential = call(root, "POST", f"{kc}/{kc_account['id']}/credentials", {"name": "fuzzed"}, admin)
    out["ST_KC_CREDENTIAL_ID"] = credential["id"]
    kc_checker = call(root, "POST", kc, {"name": "token-client"}, admin)
    token_client = call(root, "POST", f"{kc}/{kc_checker['id']}/credentials", {"name": "token"}, admin)
    pair = f"{token_client['client_id']}:{token_client['client_secret']}".encode()
    out["ST_TOKEN_BASIC"] = base64.b64encode(pair).decode()

    admin_key = call(root, "POST", "/v1/organization/admin_api_keys", {"name": "fuzzed"}, admin)
    out["ST_ADMIN_KEY_ID"] = admin_key["id"]

    # Objects that only the archive and delete operations name (schemathesis.toml). Were they
    # the shared ones, the first successful archive or delete would turn every later valid
    # request on them into a 400 or 404, and schemathesis would stop reaching the write paths.
    archive = call(root, "POST", "/v1/organization/projects", {"name": "to-archive"}, admin)
    out["ST_ARCHIVE_PROJECT_ID"] = archive["id"]
    doomed = call(root, "POST", sa_path, {"name": "to-delete"}, admin)
    out["ST_DELETE_SERVICE_ACCOUNT_ID"] = doomed["id"]
    key_owner = call(root, "POST", sa_path, {"name": "key-to-delete"}, admin)
    out["ST_DELETE_API_KEY_ID"] = key_owner["api_key"]["id"]
    kc_doomed = call(root, "POST", kc, {"name": "to-delete-kc"}, admin)
    out["ST_KC_DELETE_SERVICE_ACCOUNT_ID"] = kc_doomed["id"]
    doomed_credential = call(
        root, "POST", f"{kc}/{kc_account['id']}/credentials", {"name": "to-delete"}, admin
    )
    out["ST_KC_DELETE_CREDENTIAL_ID"] = doomed_credential["id"]
    doomed_admin = call(root, "POST", "/v1/organization/admin_api_keys", {"name": "to-delete"}, admin)
    out["ST_DELETE_ADMIN_KEY_ID"] = doomed_admin["id"]
    for name, value in out.items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
