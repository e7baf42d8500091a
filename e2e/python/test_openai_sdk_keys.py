"""Project API keys, admin API keys and verification, driven by the official `openai` Python SDK."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import openai
import pytest

from conftest import KEY_ID_RE, assert_svcacct_key, make_client, make_key, unique_name


def check(server, key: str | None) -> tuple[int, dict]:
    """GET /v1/auth/check as a gateway would; returns (status, headers)."""
    req = urllib.request.Request(server.base_url + "/auth/check")
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        assert key is None or key not in body, "a refused key was echoed"
        return e.code, {k.lower(): v for k, v in e.headers.items()}


def test_project_api_keys_list_update_delete(org, server):
    project = org.projects.create(name=unique_name("keys"))
    sas = org.projects.service_accounts
    sa = sas.create(project.id, name="worker")
    bare = sas.create(project.id, name="bare", create_service_account_only=True)
    extra = sas.api_keys.create(bare.id, project_id=project.id, name="extra")
    keys = org.projects.api_keys

    listed = list(keys.list(project.id, limit=1))
    assert [k.id for k in listed] == [sa.api_key.id, extra.id], "auto-pagination walks both, once"
    first = listed[0]
    assert first.object == "organization.project.api_key"
    assert first.owner.type == "service_account"
    assert first.owner.service_account.id == sa.id
    assert first.owner_project_access == "active"
    assert first.redacted_value.startswith("sk-svcacct-") and first.last_used_at is None
    assert [k.id for k in keys.list(project.id, owner_project_access="inactive")] == [extra.id]

    got = keys.retrieve(sa.api_key.id, project_id=project.id)
    assert got.id == sa.api_key.id and KEY_ID_RE.match(got.id)
    updated = keys.update(sa.api_key.id, project_id=project.id, scopes=["a.read"], expires_in_seconds=3600)
    raw = updated.model_dump()
    assert raw.get("scopes") == ["a.read"]
    assert raw.get("expires_at") and raw["expires_at"] > time.time()

    assert check(server, sa.api_key.value)[0] == 204
    deleted = keys.delete(sa.api_key.id, project_id=project.id)
    assert deleted.deleted is True and deleted.id == sa.api_key.id
    assert check(server, sa.api_key.value)[0] == 401, "a deleted key stops at once"
    with pytest.raises(openai.NotFoundError):
        keys.retrieve(sa.api_key.id, project_id=project.id)
    assert sas.retrieve(sa.id, project_id=project.id).id == sa.id, "the account survives"


def test_admin_api_keys_lifecycle(org, server):
    admin = org.admin_api_keys
    created = admin.create(name=unique_name("ci"), expires_in_seconds=3600)
    assert created.value.startswith("sk-admin-")
    assert created.expires_at and created.expires_at > time.time()
    other = make_client(server, created.value).admin.organization
    assert any(p.name == "Default project" for p in other.projects.list(include_archived=True))

    ids = [k.id for k in admin.list(limit=2)]
    assert created.id in ids and len(ids) == len(set(ids))
    newest_first = [k.id for k in admin.list(order="desc", limit=100)]
    assert newest_first[0] == created.id
    got = admin.retrieve(created.id)
    assert got.id == created.id and "value" not in got.model_dump(exclude_none=True)

    assert admin.delete(created.id).deleted is True
    with pytest.raises(openai.AuthenticationError):
        other.projects.list()
    with pytest.raises(openai.NotFoundError):
        admin.retrieve(created.id)
    with pytest.raises(openai.BadRequestError):
        admin.create(name="too-long", expires_in_seconds=31_536_001)


def test_verification_for_gateways_and_services(org, server, client):
    project = org.projects.create(name=unique_name("verify"))
    sa = org.projects.service_accounts.create(project.id, name="edge")
    status, headers = check(server, sa.api_key.value)
    assert status == 204
    assert headers["x-keyplane-project"] == project.id
    assert headers["x-keyplane-service-account"] == sa.id
    assert headers["x-keyplane-key-id"] == sa.api_key.id
    for bogus in [None, make_key("sk-svcacct-"), "sk-svcacct-nope", server.admin_key]:
        assert check(server, bogus)[0] == 401

    verified = client.post("/keys/verify", body={"key": sa.api_key.value}, cast_to=object)
    assert verified["valid"] is True and verified["service_account"]["id"] == sa.id
    bogus = client.post("/keys/verify", body={"key": "sk-svcacct-nope"}, cast_to=object)
    assert bogus == {"valid": False, "reason": "malformed"}
    org.projects.archive(project.id)
    archived = client.post("/keys/verify", body={"key": sa.api_key.value}, cast_to=object)
    assert archived == {"valid": False, "reason": "project_archived"}
    assert_svcacct_key(sa.api_key.value)


def test_the_last_admin_key_cannot_be_deleted(server):
    # Runs last in the session (files and tests run in order): it leaves the organization with
    # a single admin key, which the earlier tests' clients no longer hold.
    own = make_client(server).admin.organization
    second = own.admin_api_keys.create(name=unique_name("temp"))
    mine = make_client(server, second.value).admin.organization
    others = [k.id for k in mine.admin_api_keys.list(limit=100) if k.id != second.id]
    for k in others:
        mine.admin_api_keys.delete(k)
    with pytest.raises(openai.BadRequestError) as e:
        mine.admin_api_keys.delete(second.id)
    assert e.value.code == "last_admin_key"
    assert [k.id for k in mine.admin_api_keys.list()] == [second.id]
