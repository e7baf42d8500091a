"""The Keycard dialect (organization service accounts, their credentials, the client-credentials
token) driven by the official `keycardai-api` Python SDK.

How the SDK talks to us (keycardai-api 0.18.0, Stainless-generated; read from its source):

- `KeycardAPI(base_url=ROOT, api_key=ADMIN_KEY)` sends `Authorization: Bearer ADMIN_KEY` and joins
  paths onto `base_url` (no `/v1`): `/organizations/{organization_id}/service-accounts[/{id}]`
  and `.../{id}/credentials[/{credential_id}]`. Path segments are percent-encoded.
- `client.organizations.service_accounts`:
    .create(organization_id, name=, description=, x_client_request_id=)       POST   -> ServiceAccount
    .retrieve(service_account_id, organization_id=, expand=)                  GET    -> ServiceAccount
    .update(service_account_id, organization_id=, name=, description=)        PATCH  -> ServiceAccount
    .list(organization_id, after=, before=, limit=, expand=)                  GET    -> ServiceAccountListResponse
    .delete(service_account_id, organization_id=)                             DELETE -> None
  and `.credentials`:
    .create(service_account_id, organization_id=, name=, description=)        -> CredentialCreateResponse
    .retrieve(credential_id, organization_id=, service_account_id=, expand=)  -> ServiceAccountCredential
    .update(credential_id, organization_id=, service_account_id=, name=, description=)
    .list(service_account_id, organization_id=, after=, before=, limit=, expand=) -> CredentialListResponse
    .delete(credential_id, organization_id=, service_account_id=)             -> None
  Every method also takes `x_client_request_id=` (sent as `X-Client-Request-ID`, not validated
  client-side) and `extra_headers/extra_query/extra_body`.
- `.list` returns ONE page object `{items, page_info: PageInfoCursor, permissions?}`; there is no
  auto-pagination, so the tests walk `after`/`before` themselves.
- `expand=["permissions"]` goes out as repeated `?expand=permissions` (array_format="repeat").
- PATCH bodies hold only the given fields: `update(id, organization_id=o)` sends `{}`;
  `description=None` (outside the type hints, which say `str`) is sent as `{"description":null}`.
- DELETE sends `Accept: */*` and `Content-Type: application/json` with an empty body.
- Errors raise `keycardai_api.APIStatusError` subclasses by status (BadRequestError 400,
  AuthenticationError 401, NotFoundError 404, ...) with `.status_code` and the parsed JSON `.body`.
  Retries (408/409/429/5xx) are disabled here with `max_retries=0`.
- Timestamps are parsed into `datetime`s, so their wire format is checked on the raw JSON
  (`.with_raw_response.<method>(...)` -> APIResponse with `.status_code`, `.headers`, `.json()`,
  `.parse()`).
- Client credentials: `KeycardAPI(client_id=, client_secret=)` installs
  `keycardai_api._oauth2.OAuth2ClientCredentials` with the token URL hard-coded to
  `https://api.keycard.ai/service-account-token` (no override). So the tests POST to
  `{ROOT}/service-account-token` with httpx, and additionally drive the SDK's own
  `OAuth2ClientCredentials` (private module) pointed at our token URL, which sends exactly
  `grant_type=client_credentials` as a form body with `Authorization: Basic base64(id:secret)`
  (id and secret NOT form-urlencoded first).

Each module run works in organizations of its own, created with `keyplane organization create
LABEL` against the suite's store while the suite's server runs (the label doubles as the
organization path segment); the pagination test gets a fresh organization so it can assert totals.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import time
import uuid
from datetime import datetime, timezone

import httpx
import jwt
import pytest
from keycardai_api import (
    APIStatusError,
    BadRequestError,
    DefaultHttpxClient,
    KeycardAPI,
    NotFoundError,
    __version__ as KEYCARD_SDK_VERSION,
)
from keycardai_api._oauth2 import OAuth2ClientCredentials

from conftest import ADMIN_KEY_RE, _resolve_bin, http_recorder, key_checksum_ok, record_secret, unique_name

ID_RE = re.compile(r"^[0-9a-z]{26}$")
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

_KEYCARD_ENV = (
    "KEYCARD_API_API_KEY",
    "KEYCARD_API_CLIENT_ID",
    "KEYCARD_API_CLIENT_SECRET",
    "KEYCARD_API_BASE_URL",
    "KEYCARD_API_CUSTOM_HEADERS",
)


# --------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _clean_keycard_env():
    # Ambient Keycard settings must not reach the SDK (e.g. a client id switching on OAuth2).
    saved = {k: os.environ.pop(k) for k in _KEYCARD_ENV if k in os.environ}
    yield
    os.environ.update(saved)


def make_kc_client(server, admin_key: str) -> KeycardAPI:
    # Recorded too, so the spec check can name what it leaves out (the Keycard dialect).
    record = http_recorder("python")
    return KeycardAPI(
        base_url=server.root_url,
        api_key=admin_key,
        max_retries=0,
        timeout=15,
        http_client=DefaultHttpxClient(event_hooks={"response": [record]}) if record else None,
    )


class Org:
    def __init__(self, label: str, admin_key: str, client: KeycardAPI):
        self.label = label
        self.admin_key = admin_key
        self.client = client

    @property
    def sas(self):
        return self.client.organizations.service_accounts

    @property
    def creds(self):
        return self.client.organizations.service_accounts.credentials


@pytest.fixture(scope="module")
def make_org(server):
    """Factory: a new organization (via `keyplane organization create LABEL` on the suite's
    store, while the suite's server runs) with a KeycardAPI client holding its admin key."""
    binary = _resolve_bin()
    env = dict(os.environ)
    env["KEYPLANE_DATA_DIR"] = str(server.data_dir)
    env.pop("KEYPLANE_DATABASE_URL", None)
    env.pop("KEYPLANE_BOOTSTRAP_ADMIN_KEY", None)
    if os.environ.get("KEYPLANE_E2E_DATABASE_URL"):
        env["KEYPLANE_DATABASE_URL"] = os.environ["KEYPLANE_E2E_DATABASE_URL"]
    clients: list[KeycardAPI] = []

    def make() -> Org:
        label = f"e2e-kc-{secrets.token_hex(4)}"
        proc = subprocess.run(
            [str(binary), "organization", "create", label],
            env=env,
            cwd=str(server.data_dir),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        key = proc.stdout.strip()
        record_secret(key)
        assert proc.returncode == 0 and ADMIN_KEY_RE.match(key) and key_checksum_ok(key, "sk-admin-"), (
            f"`keyplane organization create {label}` failed (exit {proc.returncode}) or printed "
            f"a malformed admin key {key!r}\nstderr:\n{proc.stderr}"
        )
        client = make_kc_client(server, key)
        clients.append(client)
        return Org(label, key, client)

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="module")
def kc(make_org) -> Org:
    """The organization shared by this module's tests (each test makes its own accounts)."""
    return make_org()


def assert_timestamp(value) -> datetime:
    """An RFC 3339 UTC timestamp with milliseconds and `Z`, e.g. 2019-12-27T18:11:19.117Z."""
    assert isinstance(value, str) and TIMESTAMP_RE.match(value), f"bad timestamp {value!r}"
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None and parsed.utcoffset().total_seconds() == 0
    assert abs((datetime.now(timezone.utc) - parsed).total_seconds()) < 600, f"{value} is not now"
    return parsed


def assert_error(exc: APIStatusError, status: int) -> None:
    """keyplane's Keycard error body: {"message": str, "code": str, "status": int}."""
    assert exc.status_code == status
    body = exc.body
    assert isinstance(body, dict), f"error body is not a JSON object: {body!r}"
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert body.get("status") == status, body


def assert_admin_sa_permissions(perms) -> None:
    assert isinstance(perms, dict), f"permissions not expanded: {perms!r}"
    sa_perms = perms.get("service_accounts")
    assert isinstance(sa_perms, dict), perms
    for p in ("read", "update", "delete"):
        assert sa_perms.get(p) is True, f"admin lacks service_accounts.{p}: {perms}"


def token_request(server, *, client_id: str, client_secret: str) -> httpx.Response:
    return httpx.post(
        server.root_url + "/service-account-token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, client_secret),
        timeout=15,
    )


def assert_invalid_client(resp: httpx.Response) -> None:
    assert resp.status_code == 401, (resp.status_code, resp.text)
    body = resp.json()
    assert body.get("error") == "invalid_client", body
    assert "access_token" not in body


def auth_check(server, token: str) -> httpx.Response:
    return httpx.get(
        server.base_url + "/auth/check", headers={"Authorization": f"Bearer {token}"}, timeout=15
    )


def test_sdk_version_pinned():
    assert KEYCARD_SDK_VERSION == "0.18.0", "the notes at the top of this file describe 0.18.0"


# --------------------------------------------------------------------------------------
# 1. Create: fields, formats, X-Client-Request-ID
# --------------------------------------------------------------------------------------


def test_create_fields_formats_and_request_id(kc):
    request_id = str(uuid.uuid4())
    name = unique_name("create")
    raw = kc.sas.with_raw_response.create(
        kc.label, name=name, description="made by the e2e suite", x_client_request_id=request_id
    )
    assert raw.status_code == 201
    assert raw.headers.get("x-client-request-id") == request_id, "X-Client-Request-ID is echoed"
    body = raw.json()
    assert ID_RE.match(body["id"]), body
    assert body["name"] == name
    assert body["description"] == "made by the e2e suite"
    created_at = assert_timestamp(body["created_at"])
    updated_at = assert_timestamp(body["updated_at"])
    assert updated_at >= created_at
    assert body.get("permissions") is None, "permissions only with expand"

    sa = raw.parse()
    assert sa.id == body["id"] and sa.name == name and sa.description == "made by the e2e suite"
    assert sa.created_at.tzinfo is not None

    # Without a description the field is absent or null; the request id is optional.
    bare_raw = kc.sas.with_raw_response.create(kc.label, name=unique_name("bare"))
    assert bare_raw.status_code == 201
    bare = bare_raw.json()
    assert ID_RE.match(bare["id"]) and bare["id"] != sa.id
    assert bare.get("description") is None

    # The stored account reads back the same, and a request id is echoed on reads too.
    rid2 = str(uuid.uuid4())
    got_raw = kc.sas.with_raw_response.retrieve(sa.id, organization_id=kc.label, x_client_request_id=rid2)
    assert got_raw.headers.get("x-client-request-id") == rid2
    got = got_raw.json()
    assert {k: got.get(k) for k in ("id", "name", "description", "created_at", "updated_at")} == {
        k: body.get(k) for k in ("id", "name", "description", "created_at", "updated_at")
    }


def test_default_organization_label(server):
    """Without a database URL the suite's bootstrap admin key belongs to the `default` org."""
    if os.environ.get("KEYPLANE_E2E_DATABASE_URL"):
        pytest.skip("the suite runs in a per-run organization, not `default`")
    with make_kc_client(server, server.admin_key) as client:
        page = client.organizations.service_accounts.list("default", limit=1)
        assert isinstance(page.items, list) and len(page.items) <= 1


# --------------------------------------------------------------------------------------
# 2. Pagination in both directions
# --------------------------------------------------------------------------------------


def test_list_pages_forward_and_backward(make_org):
    org = make_org()  # fresh organization: nothing else lists here
    created = [org.sas.create(org.label, name=f"page-{i:02d}").id for i in range(12)]
    assert len(set(created)) == 12

    # Default limit (20) covers all 12 in one page.
    whole = org.sas.list(org.label)
    assert sorted(s.id for s in whole.items) == sorted(created)
    assert whole.page_info.has_next_page is False and whole.page_info.has_prev_page is False

    # Forward with limit=5: 5, 5, 2.
    forward_pages: list[list[str]] = []
    page_infos = []
    after = None
    for _ in range(10):
        page = org.sas.list(org.label, limit=5, **({"after": after} if after else {}))
        forward_pages.append([s.id for s in page.items])
        page_infos.append(page.page_info)
        if not page.page_info.has_next_page:
            break
        assert page.page_info.end_cursor, "a page with a next page carries end_cursor"
        after = page.page_info.end_cursor
    assert [len(p) for p in forward_pages] == [5, 5, 2], forward_pages
    forward = [i for p in forward_pages for i in p]
    assert len(forward) == len(set(forward)) == 12, "each account exactly once"
    assert set(forward) == set(created)
    assert page_infos[0].has_prev_page is False and page_infos[0].has_next_page is True
    assert page_infos[1].has_prev_page is True and page_infos[1].has_next_page is True
    assert page_infos[2].has_prev_page is True and page_infos[2].has_next_page is False
    for info in page_infos:
        assert info.start_cursor and info.end_cursor

    # Backward from the last page's start cursor with `before`.
    backward_pages: list[list[str]] = []
    before = page_infos[-1].start_cursor
    for _ in range(10):
        page = org.sas.list(org.label, limit=5, before=before)
        backward_pages.append([s.id for s in page.items])
        assert page.page_info.has_next_page is True, "items follow every backward page"
        if not page.page_info.has_prev_page:
            break
        assert page.page_info.start_cursor
        before = page.page_info.start_cursor
    assert [len(p) for p in backward_pages] == [5, 5], backward_pages
    backward = [i for p in reversed(backward_pages) for i in p] + forward_pages[-1]
    assert len(backward) == len(set(backward)) == 12, "each account exactly once"
    assert set(backward) == set(created)
    assert backward == forward, "a `before` page keeps the list order (same pages both ways)"

    # A page after the last item is empty and says there is nothing further.
    tail = org.sas.list(org.label, limit=5, after=page_infos[-1].end_cursor)
    assert tail.items == [] and tail.page_info.has_next_page is False

    # limit=1 walks one at a time; ids come out in the same order.
    one_by_one = []
    after = None
    for _ in range(20):
        page = org.sas.list(org.label, limit=1, **({"after": after} if after else {}))
        assert len(page.items) <= 1
        one_by_one += [s.id for s in page.items]
        if not page.page_info.has_next_page:
            break
        after = page.page_info.end_cursor
    assert one_by_one == forward


# --------------------------------------------------------------------------------------
# 3. expand=["permissions"]
# --------------------------------------------------------------------------------------


def test_expand_permissions_on_retrieve_and_list(kc):
    sa = kc.sas.create(kc.label, name=unique_name("perm"))
    assert sa.permissions is None

    plain = kc.sas.retrieve(sa.id, organization_id=kc.label)
    assert plain.permissions is None, "no expand, no permissions"
    raw_plain = kc.sas.with_raw_response.retrieve(sa.id, organization_id=kc.label).json()
    assert raw_plain.get("permissions") is None

    expanded = kc.sas.retrieve(sa.id, organization_id=kc.label, expand=["permissions"])
    assert expanded.id == sa.id
    assert_admin_sa_permissions(expanded.permissions)
    for resource, perms in expanded.permissions.items():
        assert isinstance(resource, str) and all(isinstance(v, bool) for v in perms.values())

    # `total_count` is accepted and ignored where unused.
    both = kc.sas.retrieve(sa.id, organization_id=kc.label, expand=["permissions", "total_count"])
    assert_admin_sa_permissions(both.permissions)

    listed = kc.sas.list(kc.label, limit=100, expand=["permissions"])
    assert listed.items, "the account just created is listed"
    for item in listed.items:
        assert_admin_sa_permissions(item.permissions)
    if listed.permissions is not None:
        assert isinstance(listed.permissions, dict)

    unexpanded = kc.sas.list(kc.label, limit=100)
    assert all(item.permissions is None for item in unexpanded.items)


# --------------------------------------------------------------------------------------
# 4. Partial updates
# --------------------------------------------------------------------------------------


def test_partial_updates(kc):
    sa = kc.sas.create(kc.label, name=unique_name("upd"), description="first description")

    renamed_name = unique_name("upd renamed")
    renamed = kc.sas.update(sa.id, organization_id=kc.label, name=renamed_name)
    assert renamed.id == sa.id and renamed.name == renamed_name
    assert renamed.description == "first description", "name-only PATCH keeps description"
    assert renamed.created_at == sa.created_at
    assert renamed.updated_at >= sa.updated_at

    redescribed = kc.sas.update(sa.id, organization_id=kc.label, description="second description")
    assert redescribed.name == renamed_name, "description-only PATCH keeps name"
    assert redescribed.description == "second description"

    # No arguments: the SDK sends `{}`, which changes nothing.
    unchanged_raw = kc.sas.with_raw_response.update(sa.id, organization_id=kc.label)
    assert unchanged_raw.status_code == 200
    unchanged = unchanged_raw.parse()
    assert unchanged.name == renamed_name and unchanged.description == "second description"
    assert_timestamp(unchanged_raw.json()["updated_at"])

    # Both at once.
    both_name = unique_name("upd both")
    both = kc.sas.update(sa.id, organization_id=kc.label, name=both_name, description="third")
    assert both.name == both_name and both.description == "third"

    # Clearing: the SDK sends `{"description": null}` for description=None (its type hint
    # says `str`, but the body is built as given).
    cleared_raw = kc.sas.with_raw_response.update(sa.id, organization_id=kc.label, description=None)  # type: ignore[arg-type]
    assert cleared_raw.http_request.content == b'{"description":null}'
    assert cleared_raw.json().get("description") is None
    assert cleared_raw.parse().name == both_name

    got = kc.sas.retrieve(sa.id, organization_id=kc.label)
    assert got.name == both_name and got.description is None
    assert kc.sas.with_raw_response.retrieve(sa.id, organization_id=kc.label).json().get("description") is None


# --------------------------------------------------------------------------------------
# 5. Credentials
# --------------------------------------------------------------------------------------


def test_credentials_lifecycle(kc):
    sa = kc.sas.create(kc.label, name=unique_name("creds"))
    other = kc.sas.create(kc.label, name=unique_name("creds other"))

    rid = str(uuid.uuid4())
    created_raw = kc.creds.with_raw_response.create(
        sa.id, organization_id=kc.label, name="ci", description="for CI", x_client_request_id=rid
    )
    assert created_raw.status_code in (200, 201)
    assert created_raw.headers.get("x-client-request-id") == rid
    created_body = created_raw.json()
    cred = created_raw.parse()
    assert ID_RE.match(cred.id), cred
    assert isinstance(cred.client_id, str) and cred.client_id
    assert isinstance(cred.client_secret, str) and len(cred.client_secret) >= 16
    assert cred.client_secret != cred.client_id
    assert cred.name == "ci" and cred.description == "for CI"
    assert_timestamp(created_body["created_at"])

    second = kc.creds.create(sa.id, organization_id=kc.label, name="second")
    assert second.id != cred.id and second.client_id != cred.client_id
    assert second.client_secret != cred.client_secret
    assert second.description is None

    # List: both, no secrets, never used.
    listed_raw = kc.creds.with_raw_response.list(sa.id, organization_id=kc.label)
    listed_body = listed_raw.json()
    assert sorted(c["id"] for c in listed_body["items"]) == sorted([cred.id, second.id])
    assert listed_body["page_info"]["has_next_page"] is False
    for item in listed_body["items"]:
        assert "client_secret" not in item, "the secret is shown only at creation"
        assert item.get("last_used_at") is None, "null until used"
        assert item["client_id"] in (cred.client_id, second.client_id)
        assert_timestamp(item["created_at"])
    assert kc.creds.list(other.id, organization_id=kc.label).items == []

    # Paging over credentials with limit=1.
    first_page = kc.creds.list(sa.id, organization_id=kc.label, limit=1)
    assert len(first_page.items) == 1 and first_page.page_info.has_next_page is True
    second_page = kc.creds.list(
        sa.id, organization_id=kc.label, limit=1, after=first_page.page_info.end_cursor
    )
    assert len(second_page.items) == 1 and second_page.page_info.has_next_page is False
    assert {first_page.items[0].id, second_page.items[0].id} == {cred.id, second.id}

    # Retrieve.
    got_raw = kc.creds.with_raw_response.retrieve(cred.id, organization_id=kc.label, service_account_id=sa.id)
    got_body = got_raw.json()
    assert "client_secret" not in got_body
    assert got_body["id"] == cred.id and got_body["client_id"] == cred.client_id
    assert got_body["name"] == "ci" and got_body["description"] == "for CI"
    assert got_body["created_at"] == created_body["created_at"]
    assert got_body.get("last_used_at") is None
    got = got_raw.parse()
    assert got.last_used_at is None

    expanded = kc.creds.retrieve(
        cred.id, organization_id=kc.label, service_account_id=sa.id, expand=["permissions"]
    )
    assert isinstance(expanded.permissions, dict) and expanded.permissions

    # A credential is only reachable under its own service account.
    with pytest.raises(NotFoundError) as ei:
        kc.creds.retrieve(cred.id, organization_id=kc.label, service_account_id=other.id)
    assert_error(ei.value, 404)

    # Update: only the given fields change; no secret in the answer.
    upd_raw = kc.creds.with_raw_response.update(
        cred.id, organization_id=kc.label, service_account_id=sa.id, name="ci-renamed"
    )
    upd_body = upd_raw.json()
    assert "client_secret" not in upd_body
    assert upd_body["name"] == "ci-renamed" and upd_body["description"] == "for CI"
    assert upd_body["client_id"] == cred.client_id
    upd2 = kc.creds.update(cred.id, organization_id=kc.label, service_account_id=sa.id, description="new")
    assert upd2.name == "ci-renamed" and upd2.description == "new"
    cleared = kc.creds.update(cred.id, organization_id=kc.label, service_account_id=sa.id, description=None)  # type: ignore[arg-type]
    assert cleared.name == "ci-renamed" and cleared.description is None

    # Delete: 204, then gone.
    del_raw = kc.creds.with_raw_response.delete(cred.id, organization_id=kc.label, service_account_id=sa.id)
    assert del_raw.status_code == 204
    assert del_raw.parse() is None
    with pytest.raises(NotFoundError) as ei:
        kc.creds.retrieve(cred.id, organization_id=kc.label, service_account_id=sa.id)
    assert_error(ei.value, 404)
    with pytest.raises(NotFoundError):
        kc.creds.delete(cred.id, organization_id=kc.label, service_account_id=sa.id)
    with pytest.raises(NotFoundError):
        kc.creds.update(cred.id, organization_id=kc.label, service_account_id=sa.id, name="x")
    assert [c.id for c in kc.creds.list(sa.id, organization_id=kc.label).items] == [second.id]


# --------------------------------------------------------------------------------------
# 6. The client-credentials token
# --------------------------------------------------------------------------------------


def test_service_account_token(kc, server):
    sa = kc.sas.create(kc.label, name=unique_name("token"))
    cred = kc.creds.create(sa.id, organization_id=kc.label, name="token-cred")

    meta_resp = httpx.get(server.root_url + "/.well-known/oauth-authorization-server", timeout=15)
    assert meta_resp.status_code == 200, meta_resp.text
    meta = meta_resp.json()
    assert isinstance(meta.get("issuer"), str) and meta["issuer"]
    assert meta["token_endpoint"].endswith("/service-account-token"), meta
    assert meta["jwks_uri"].endswith("/.well-known/jwks.json"), meta

    # Token with HTTP Basic client authentication.
    resp = token_request(server, client_id=cred.client_id, client_secret=cred.client_secret)
    assert resp.status_code == 200, resp.text
    tok = resp.json()
    assert tok["token_type"] == "Bearer"
    assert isinstance(tok["expires_in"], int) and tok["expires_in"] > 0
    access_token = tok["access_token"]
    assert isinstance(access_token, str) and access_token.count(".") == 2

    # Verify the JWT against the published JWKS, picking the key by `kid`.
    header = jwt.get_unverified_header(access_token)
    assert header["alg"] == "EdDSA", header
    assert header.get("kid"), header
    jwks_resp = httpx.get(server.root_url + "/.well-known/jwks.json", timeout=15)
    assert jwks_resp.status_code == 200, jwks_resp.text
    keys = jwks_resp.json()["keys"]
    matching = [k for k in keys if k.get("kid") == header["kid"]]
    assert len(matching) == 1, f"kid {header['kid']!r} not (uniquely) in the JWKS: {keys}"
    jwk = matching[0]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519", jwk
    assert "d" not in jwk, "the JWKS must not publish the private key"
    claims = jwt.decode(
        access_token,
        key=jwt.PyJWK(jwk),
        algorithms=["EdDSA"],
        issuer=meta["issuer"],
        options={"verify_aud": False, "require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )
    assert claims["sub"] == sa.id
    assert claims["iss"] == meta["issuer"]
    assert claims["exp"] > claims["iat"]
    assert abs(claims["iat"] - time.time()) < 120
    assert abs((claims["exp"] - claims["iat"]) - tok["expires_in"]) <= 5
    assert claims["aud"]
    assert isinstance(claims.get("org"), str) and claims["org"], claims
    assert claims["jti"]

    # The `org` claim is the organization's canonical ID; it works as the path segment too.
    by_id = kc.sas.retrieve(sa.id, organization_id=claims["org"])
    assert by_id.id == sa.id

    # The token authenticates at the gateway check; a tampered one does not.
    ok = auth_check(server, access_token)
    assert ok.status_code == 204, ok.text
    assert ok.headers.get("x-keyplane-service-account"), dict(ok.headers)
    head, payload, sig = access_token.split(".")
    forged_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert auth_check(server, f"{head}.{payload}.{forged_sig}").status_code == 401

    # A second token is a different token (fresh jti).
    again = token_request(server, client_id=cred.client_id, client_secret=cred.client_secret)
    assert again.status_code == 200, again.text
    claims2 = jwt.decode(again.json()["access_token"], options={"verify_signature": False})
    assert claims2["jti"] != claims["jti"]

    # client_id / client_secret as form fields are accepted too.
    form = httpx.post(
        server.root_url + "/service-account-token",
        data={
            "grant_type": "client_credentials",
            "client_id": cred.client_id,
            "client_secret": cred.client_secret,
        },
        timeout=15,
    )
    assert form.status_code == 200, form.text
    assert form.json()["token_type"] == "Bearer"

    # The SDK's own OAuth2 client-credentials flow (its token URL is hard-coded to
    # api.keycard.ai, so the auth object is built here with ours).
    sdk_auth = OAuth2ClientCredentials(
        token_url=httpx.URL(server.root_url + "/service-account-token"),
        client_id=cred.client_id,
        client_secret=cred.client_secret,
        header="Authorization",
    )
    with httpx.Client(auth=sdk_auth, timeout=15) as http:
        via_sdk = http.get(server.base_url + "/auth/check")
    assert via_sdk.status_code == 204, via_sdk.text
    assert via_sdk.request.headers["authorization"].startswith("Bearer ")

    # Wrong secret, unknown client: 401 invalid_client, no token.
    assert_invalid_client(token_request(server, client_id=cred.client_id, client_secret=cred.client_secret + "x"))
    assert_invalid_client(token_request(server, client_id=cred.client_id, client_secret=""))
    assert_invalid_client(token_request(server, client_id="no-such-client", client_secret=cred.client_secret))
    bad_basic = httpx.post(
        server.root_url + "/service-account-token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(b"no-colon-here").decode()},
        timeout=15,
    )
    assert bad_basic.status_code in (400, 401), bad_basic.text
    assert "access_token" not in bad_basic.text

    # A deleted credential no longer gets tokens.
    kc.creds.delete(cred.id, organization_id=kc.label, service_account_id=sa.id)
    assert_invalid_client(token_request(server, client_id=cred.client_id, client_secret=cred.client_secret))

    # Neither does a live credential of a deleted account.
    cred2 = kc.creds.create(sa.id, organization_id=kc.label, name="token-cred-2")
    assert token_request(server, client_id=cred2.client_id, client_secret=cred2.client_secret).status_code == 200
    kc.sas.delete(sa.id, organization_id=kc.label)
    assert_invalid_client(token_request(server, client_id=cred2.client_id, client_secret=cred2.client_secret))


# --------------------------------------------------------------------------------------
# 7. Errors
# --------------------------------------------------------------------------------------


def test_delete_then_not_found(kc):
    sa = kc.sas.create(kc.label, name=unique_name("delete"))
    keep = kc.sas.create(kc.label, name=unique_name("keep"))

    raw = kc.sas.with_raw_response.delete(sa.id, organization_id=kc.label)
    assert raw.status_code == 204
    assert raw.read() == b""

    with pytest.raises(NotFoundError) as ei:
        kc.sas.retrieve(sa.id, organization_id=kc.label)
    assert_error(ei.value, 404)
    with pytest.raises(NotFoundError):
        kc.sas.update(sa.id, organization_id=kc.label, name="x")
    with pytest.raises(NotFoundError):
        kc.sas.delete(sa.id, organization_id=kc.label)
    with pytest.raises(NotFoundError):
        kc.creds.list(sa.id, organization_id=kc.label)
    with pytest.raises(NotFoundError):
        kc.creds.create(sa.id, organization_id=kc.label, name="late")

    ids = [s.id for s in kc.sas.list(kc.label, limit=100).items]
    assert sa.id not in ids and keep.id in ids
    assert kc.sas.retrieve(keep.id, organization_id=kc.label).id == keep.id

    never = "".join(secrets.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(26))
    with pytest.raises(NotFoundError) as ei:
        kc.sas.retrieve(never, organization_id=kc.label)
    assert_error(ei.value, 404)


def test_account_not_visible_from_another_organization(kc, make_org):
    sa = kc.sas.create(kc.label, name=unique_name("isolated"))
    other = make_org()
    with pytest.raises(NotFoundError):
        other.sas.retrieve(sa.id, organization_id=other.label)
    assert sa.id not in [s.id for s in other.sas.list(other.label, limit=100).items]
    # Another organization's admin key cannot address this organization.
    with pytest.raises(APIStatusError) as ei:
        other.sas.retrieve(sa.id, organization_id=kc.label)
    assert ei.value.status_code in (403, 404)


def test_forged_cursor_is_bad_request(kc):
    kc.sas.create(kc.label, name=unique_name("cursor"))
    for field in ("after", "before"):
        with pytest.raises(BadRequestError) as ei:
            kc.sas.list(kc.label, limit=5, **{field: "forged-cursor-0000"})
        assert_error(ei.value, 400)


def test_invalid_client_request_id_is_bad_request(kc):
    name = unique_name("bad rid")
    with pytest.raises(BadRequestError) as ei:
        kc.sas.create(kc.label, name=name, x_client_request_id="not-a-uuid")
    assert_error(ei.value, 400)
    with pytest.raises(BadRequestError) as ei:
        kc.sas.list(kc.label, x_client_request_id="12345")
    assert_error(ei.value, 400)
    assert name not in [s.name for s in kc.sas.list(kc.label, limit=100).items], "nothing was created"
