#!/usr/bin/env python3
"""Give the first N keys of a key file key limits, through the admin API, and write them to
another file: bench/auth_check.sh's admission runs use them.

    set_key_limits.py PORT ADMIN_KEY_FILE IN_KEYS OUT_KEYS N LIMIT

Each key is looked up with POST /v1/keys/verify (its ID and project), then updated with
POST /v1/organization/projects/{project}/api_keys/{key} carrying max_requests_per_1_minute,
max_requests_per_1_day and max_tokens_per_1_minute = LIMIT. One keep-alive connection; any
answer but 200 fails the run."""

import http.client
import json
import sys


def main() -> None:
    port, admin_file, src, dst, n, limit = sys.argv[1:7]
    admin = open(admin_file).read().strip()
    n, limit = int(n), int(limit)
    keys = [line.strip() for line in open(src) if line.strip()][:n]
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}

    def post(path: str, body: dict) -> dict:
        conn.request("POST", path, body=json.dumps(body), headers=headers)
        r = conn.getresponse()
        text = r.read().decode()
        if r.status != 200:
            sys.exit(f"set_key_limits: POST {path} answered {r.status}: {text[:300]}")
        return json.loads(text)

    limits = {
        "max_requests_per_1_minute": limit,
        "max_requests_per_1_day": limit,
        "max_tokens_per_1_minute": limit,
    }
    with open(dst, "w") as out:
        for key in keys:
            v = post("/v1/keys/verify", {"key": key})
            if not v.get("valid"):
                sys.exit(f"set_key_limits: a hot key does not verify: {v.get('reason')}")
            project, key_id = v["project"]["id"], v["key"]["id"]
            updated = post(f"/v1/organization/projects/{project}/api_keys/{key_id}", limits)
            if updated.get("max_requests_per_1_minute") != limit:
                sys.exit(f"set_key_limits: the update did not take: {updated}")
            out.write(key + "\n")
    print(f"limited={len(keys)} limit={limit}")


if __name__ == "__main__":
    main()
