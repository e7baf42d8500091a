"""keyplane driven end to end by the official `openai` Python SDK (client.admin.organization.*)."""

from __future__ import annotations

import json
import time

import openai
import pytest

from conftest import (
    KEY_ID_RE,
    PROJECT_ID_RE,
    SVC_ACCT_ID_RE,
    assert_svcacct_key,
    fake_id,
    key_checksum_ok,
    key_from_bytes,
    make_client,
    make_key,
    unique_name,
)

# `allowed_ips` is keyplane's own field (admission control), like the key objects' limits.
PROJECT_KEYS = {"id", "object", "name", "created_at", "archived_at", "status", "external_key_id", "allowed_ips"}
SA_KEYS = {"object", "id", "name", "role", "created_at"}
SA_API_KEY_KEYS = {"object", "value", "name", "created_at", "id", "expires_at"}

# Cross-language known answer: the Node suite checks the same vector.
KNOWN_BYTES = bytes(range(32))
KNOWN_ADMIN_KEY = "sk-admin-003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf1Yo7hP"


# ------------------------------------------------------------------------------ helpers


def raw_json(raw) -> dict:
    """Body of a `.with_raw_response` call, as plain JSON."""
    return json.loads(raw.text)


def assert_request_id(headers) -> None:
    assert headers.get("x-request-id"), f"missing x-request-id in {dict(headers)}"


def assert_deterministic_error(err: openai.APIStatusError, status: int) -> dict:
    """Common checks for a 4xx: status, envelope with 4 keys, x-should-retry: false, x-request-id."""
    assert err.status_code == status, (err.status_code, err.response.text)
    body = err.response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert isinstance(body["error"]["type"], str) and body["error"]["type"], body
    assert err.response.headers.get("x-should-retry") == "false", dict(err.response.headers)
    assert_request_id(err.response.headers)
    assert err.request_id == err.response.headers.get("x-request-id")
    return body["error"]


def assert_project_shape(d: dict) -> None:
    assert set(d) == PROJECT_KEYS, d
    assert PROJECT_ID_RE.match(d["id"]), d
    assert d["object"] == "organization.project"
    assert isinstance(d["name"], str)
    assert isinstance(d["created_at"], int) and not isinstance(d["created_at"], bool)
    assert d["status"] in ("active", "archived")
    if d["status"] == "active":
        assert d["archived_at"] is None, d
    else:
        assert isinstance(d["archived_at"], int) and d["archived_at"] >= d["created_at"], d
    assert d["external_key_id"] is None or isinstance(d["external_key_id"], str)


def assert_recent(ts: int) -> None:
    now = int(time.time())
    assert now - 300 <= ts <= now + 300, (ts, now)


def all_projects(org, include_archived: bool) -> list:
    return list(org.projects.list(limit=100, include_archived=include_archived))


def new_project(org, label: str):
    return org.projects.create(name=unique_name(label))


def default_project(org):
    matches = [p for p in all_projects(org, include_archived=True) if p.name == "Default project"]
    assert len(matches) == 1, [p.model_dump() for p in matches]
    return matches[0]


# ------------------------------------------------------------------------------ key format


def test_key_format_self_check():
    assert key_from_bytes("sk-admin-", KNOWN_BYTES) == KNOWN_ADMIN_KEY
    assert key_checksum_ok(KNOWN_ADMIN_KEY, "sk-admin-")
    k = make_key("sk-svcacct-")
    assert_svcacct_key(k)
    # a single flipped character must break the checksum
    flipped = k[:-1] + ("0" if k[-1] != "0" else "1")
    assert not key_checksum_ok(flipped, "sk-svcacct-")


# ------------------------------------------------------------------------------ projects


def test_projects_create_retrieve_update_list_archive(org):
    name = unique_name("lifecycle")
    raw = org.projects.with_raw_response.create(name=name)
    assert raw.status_code == 200
    assert_request_id(raw.headers)
    body = raw_json(raw)
    assert_project_shape(body)
    assert body["name"] == name
    assert body["status"] == "active" and body["archived_at"] is None
    assert body["external_key_id"] is None
    assert_recent(body["created_at"])
    created = raw.parse()
    pid = created.id
    assert created.name == name

    got = org.projects.retrieve(pid)
    assert got.id == pid and got.name == name and got.status == "active"
    assert got.created_at == created.created_at

    new_name = unique_name("renamed")
    raw = org.projects.with_raw_response.update(pid, name=new_name)
    assert raw.status_code == 200
    upd = raw_json(raw)
    assert_project_shape(upd)
    assert upd["id"] == pid and upd["name"] == new_name and upd["status"] == "active"
    assert upd["created_at"] == created.created_at
    assert org.projects.retrieve(pid).name == new_name

    listed = {p.id: p for p in all_projects(org, include_archived=False)}
    assert pid in listed and listed[pid].name == new_name

    raw = org.projects.with_raw_response.archive(pid)
    assert raw.status_code == 200
    arch = raw_json(raw)
    assert_project_shape(arch)
    assert arch["id"] == pid and arch["status"] == "archived"
    assert isinstance(arch["archived_at"], int) and arch["archived_at"] >= arch["created_at"]
    assert_recent(arch["archived_at"])
    assert arch["name"] == new_name

    # archiving again: 200, same object
    again = raw_json(org.projects.with_raw_response.archive(pid))
    assert again == arch

    got = org.projects.retrieve(pid)
    assert got.status == "archived" and got.archived_at == arch["archived_at"]

    # list excludes archived unless include_archived=true
    assert pid not in {p.id for p in all_projects(org, include_archived=False)}
    assert pid not in {p.id for p in org.projects.list(limit=100)}
    with_archived = {p.id: p for p in all_projects(org, include_archived=True)}
    assert pid in with_archived and with_archived[pid].status == "archived"

    # an archived project can no longer be modified
    with pytest.raises(openai.BadRequestError) as ei:
        org.projects.update(pid, name=unique_name("nope"))
    err = assert_deterministic_error(ei.value, 400)
    assert err["code"] == "project_archived" and ei.value.code == "project_archived"
    assert org.projects.retrieve(pid).name == new_name


def test_project_list_envelope_and_pagination(org):
    ids = [new_project(org, f"page{i}").id for i in range(3)]
    raw = org.projects.with_raw_response.list(limit=1)
    body = raw_json(raw)
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}, body
    assert body["object"] == "list" and len(body["data"]) == 1 and body["has_more"] is True
    assert body["first_id"] == body["last_id"] == body["data"][0]["id"]
    assert_project_shape(body["data"][0])

    walked = [p.id for p in org.projects.list(limit=2)]
    assert len(walked) == len(set(walked)), walked
    assert set(ids) <= set(walked)
    full = [p.id for p in org.projects.list(limit=100)]
    assert walked == full


def test_default_project_cannot_be_archived(org):
    dp = default_project(org)
    assert dp.status == "active"
    assert PROJECT_ID_RE.match(dp.id)
    with pytest.raises(openai.BadRequestError) as ei:
        org.projects.archive(dp.id)
    assert_deterministic_error(ei.value, 400)
    got = org.projects.retrieve(dp.id)
    assert got.status == "active" and got.archived_at is None


# ------------------------------------------------------------------------------ service accounts


def test_service_account_create_with_and_without_key(org):
    pid = new_project(org, "sa-create").id
    sas = org.projects.service_accounts

    name = unique_name("with-key")
    raw = sas.with_raw_response.create(pid, name=name)
    assert raw.status_code == 200
    body = raw_json(raw)
    assert set(body) == SA_KEYS | {"api_key"}, body
    assert body["object"] == "organization.project.service_account"
    assert SVC_ACCT_ID_RE.match(body["id"]), body
    assert body["name"] == name and body["role"] == "member"
    assert_recent(body["created_at"])
    key = body["api_key"]
    assert isinstance(key, dict) and set(key) == SA_API_KEY_KEYS, key
    assert key["expires_at"] is None, key
    assert key["object"] == "organization.project.service_account.api_key"
    assert KEY_ID_RE.match(key["id"]), key
    assert isinstance(key["name"], str)
    assert_recent(key["created_at"])
    assert_svcacct_key(key["value"])
    parsed = raw.parse()
    assert parsed.api_key is not None and parsed.api_key.value == key["value"]

    got = sas.retrieve(body["id"], project_id=pid)
    assert got.id == body["id"] and got.name == name and got.role == "member"
    assert got.object == "organization.project.service_account"

    name2 = unique_name("no-key")
    raw = sas.with_raw_response.create(pid, name=name2, create_service_account_only=True)
    assert raw.status_code == 200
    body2 = raw_json(raw)
    assert set(body2) == SA_KEYS | {"api_key"}, body2
    assert body2["api_key"] is None
    assert body2["role"] == "none" and body2["name"] == name2
    assert SVC_ACCT_ID_RE.match(body2["id"]) and body2["id"] != body["id"]
    got2 = sas.retrieve(body2["id"], project_id=pid)
    assert got2.role == "none" and got2.name == name2

    listed = {sa.id: sa for sa in sas.list(pid)}
    assert set(listed) == {body["id"], body2["id"]}
    assert listed[body["id"]].role == "member" and listed[body2["id"]].role == "none"


def test_service_account_auto_pagination_45(org):
    pid = new_project(org, "sa-45").id
    sas = org.projects.service_accounts
    created = []
    for i in range(45):
        sa = sas.create(pid, name=f"sa-{i:02d}", create_service_account_only=(i % 5 != 0))
        created.append(sa.id)
    assert len(set(created)) == 45

    # SDK auto-pagination
    seen = [sa.id for sa in sas.list(pid, limit=7)]
    assert len(seen) == 45, seen
    assert len(set(seen)) == 45, "an id appeared twice"
    assert set(seen) == set(created)

    # the same walk page by page, checking the envelope
    pages = []
    after = None
    while True:
        kwargs = {"limit": 7}
        if after is not None:
            kwargs["after"] = after
        body = raw_json(sas.with_raw_response.list(pid, **kwargs))
        assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}, body
        assert body["object"] == "list"
        ids = [d["id"] for d in body["data"]]
        for d in body["data"]:
            assert set(d) == SA_KEYS, d
        if ids:
            assert body["first_id"] == ids[0] and body["last_id"] == ids[-1]
        else:
            assert body["first_id"] is None and body["last_id"] is None
        pages.append(ids)
        if not body["has_more"]:
            break
        after = body["last_id"]
        assert len(pages) < 20, "pagination does not terminate"
    assert [len(p) for p in pages] == [7, 7, 7, 7, 7, 7, 3]
    assert [i for p in pages for i in p] == seen

    # SDK page objects agree
    page = sas.list(pid, limit=7)
    assert len(page.data) == 7 and page.has_more is True and page.has_next_page()
    assert page.last_id == seen[6]
    page2 = page.get_next_page()
    assert [sa.id for sa in page2.data] == seen[7:14]

    # a limit equal to the remaining count ends with has_more false
    exact = raw_json(sas.with_raw_response.list(pid, limit=45))
    assert len(exact["data"]) == 45 and exact["has_more"] is False
    tail = raw_json(sas.with_raw_response.list(pid, limit=100, after=seen[-1]))
    assert tail["data"] == [] and tail["has_more"] is False
    assert tail["first_id"] is None and tail["last_id"] is None


def test_service_account_retrieve_update_delete(org):
    pid = new_project(org, "sa-rud").id
    sas = org.projects.service_accounts
    sa = sas.create(pid, name=unique_name("rud"))

    new_name = unique_name("rud-renamed")
    raw = sas.with_raw_response.update(sa.id, project_id=pid, name=new_name)
    assert raw.status_code == 200
    body = raw_json(raw)
    assert set(body) == SA_KEYS, body
    assert body["id"] == sa.id and body["name"] == new_name and body["role"] == "member"
    assert body["created_at"] == sa.created_at

    upd = sas.update(sa.id, project_id=pid, role="owner")
    assert upd.role == "owner" and upd.name == new_name
    got = sas.retrieve(sa.id, project_id=pid)
    assert got.role == "owner" and got.name == new_name

    upd = sas.update(sa.id, project_id=pid, role="member", name=sa.name)
    assert upd.role == "member" and upd.name == sa.name

    raw = sas.with_raw_response.delete(sa.id, project_id=pid)
    assert raw.status_code == 200
    assert raw_json(raw) == {
        "object": "organization.project.service_account.deleted",
        "id": sa.id,
        "deleted": True,
    }

    with pytest.raises(openai.NotFoundError) as ei:
        sas.retrieve(sa.id, project_id=pid)
    assert_deterministic_error(ei.value, 404)
    with pytest.raises(openai.NotFoundError):
        sas.delete(sa.id, project_id=pid)
    with pytest.raises(openai.NotFoundError):
        sas.update(sa.id, project_id=pid, name="ghost")
    assert sa.id not in {s.id for s in sas.list(pid)}


def test_service_account_key_rotation(org):
    pid = new_project(org, "sa-rotate").id
    sas = org.projects.service_accounts
    sa = sas.create(pid, name=unique_name("rotate"))
    first = sa.api_key
    assert first is not None
    assert_svcacct_key(first.value)

    raw = sas.api_keys.with_raw_response.create(sa.id, project_id=pid, name="rotated")
    assert raw.status_code == 200
    body = raw_json(raw)
    assert set(body) == SA_API_KEY_KEYS and body["expires_at"] is None, body
    assert body["object"] == "organization.project.service_account.api_key"
    assert body["name"] == "rotated"
    assert KEY_ID_RE.match(body["id"]) and body["id"] != first.id
    assert_recent(body["created_at"])
    assert_svcacct_key(body["value"])
    assert body["value"] != first.value

    third = sas.api_keys.create(
        sa.id,
        project_id=pid,
        name="scoped",
        scopes=["api.model.read"],
        expires_in_seconds=3600,
    )
    assert_svcacct_key(third.value)
    assert third.value not in (first.value, body["value"])
    assert third.id not in (first.id, body["id"])

    fourth = sas.api_keys.create(sa.id, project_id=pid)  # every field optional
    assert_svcacct_key(fourth.value)
    assert fourth.value not in (first.value, body["value"], third.value)

    # a service account created without a key can be given one
    bare = sas.create(pid, name=unique_name("bare"), create_service_account_only=True)
    k = sas.api_keys.create(bare.id, project_id=pid, name="late")
    assert_svcacct_key(k.value)

    with pytest.raises(openai.NotFoundError) as ei:
        sas.api_keys.create(fake_id("svc_acct_"), project_id=pid, name="x")
    assert_deterministic_error(ei.value, 404)


# ------------------------------------------------------------------------------ errors


def test_not_found_errors(org):
    missing_proj = fake_id("proj_")
    for call in (
        lambda: org.projects.retrieve(missing_proj),
        lambda: org.projects.update(missing_proj, name="x"),
        lambda: org.projects.archive(missing_proj),
        lambda: org.projects.service_accounts.list(missing_proj),
        lambda: org.projects.service_accounts.create(missing_proj, name="x"),
    ):
        with pytest.raises(openai.NotFoundError) as ei:
            call()
        assert_deterministic_error(ei.value, 404)

    pid = new_project(org, "nf").id
    missing_sa = fake_id("svc_acct_")
    sas = org.projects.service_accounts
    for call in (
        lambda: sas.retrieve(missing_sa, project_id=pid),
        lambda: sas.update(missing_sa, project_id=pid, name="x"),
        lambda: sas.delete(missing_sa, project_id=pid),
    ):
        with pytest.raises(openai.NotFoundError) as ei:
            call()
        assert_deterministic_error(ei.value, 404)

    # a service account is only found under its own project
    other = new_project(org, "nf-other").id
    sa = sas.create(pid, name="mine", create_service_account_only=True)
    with pytest.raises(openai.NotFoundError):
        sas.retrieve(sa.id, project_id=other)


def test_authentication_errors(server):
    unregistered = make_key("sk-admin-")
    for bad in (unregistered, "not-a-key", "sk-admin-short"):
        c = make_client(server, admin_key=bad)
        with pytest.raises(openai.AuthenticationError) as ei:
            c.admin.organization.projects.list()
        err = assert_deterministic_error(ei.value, 401)
        assert err["code"] == "invalid_api_key" and ei.value.code == "invalid_api_key", err
        with pytest.raises(openai.AuthenticationError):
            c.admin.organization.projects.create(name="should-not-exist")
    # the full secret must not be echoed back
    c = make_client(server, admin_key=unregistered)
    with pytest.raises(openai.AuthenticationError) as ei:
        c.admin.organization.projects.retrieve(fake_id("proj_"))
    assert unregistered not in ei.value.response.text


def test_archived_project_errors(org):
    sas = org.projects.service_accounts
    pid = new_project(org, "archived").id
    sa = sas.create(pid, name="before-archive", create_service_account_only=True)
    org.projects.archive(pid)

    for call in (
        lambda: sas.create(pid, name="after-archive"),
        lambda: sas.create(pid, name="after-archive", create_service_account_only=True),
        lambda: sas.list(pid),
        lambda: sas.delete(sa.id, project_id=pid),
        lambda: org.projects.update(pid, name="renamed"),
    ):
        with pytest.raises(openai.BadRequestError) as ei:
            call()
        err = assert_deterministic_error(ei.value, 400)
        assert ei.value.code == "project_archived", err
        assert err["type"] == "invalid_request_error", err
        assert pid in err["message"], err


def test_list_parameter_validation(org):
    pid = new_project(org, "limits").id
    sas = org.projects.service_accounts
    for limit in (0, 101):
        with pytest.raises(openai.BadRequestError) as ei:
            org.projects.list(limit=limit)
        err = assert_deterministic_error(ei.value, 400)
        assert err["param"] == "limit" and ei.value.param == "limit", err
        with pytest.raises(openai.BadRequestError) as ei:
            sas.list(pid, limit=limit)
        assert assert_deterministic_error(ei.value, 400)["param"] == "limit"

    # edges are accepted
    assert len(org.projects.list(limit=1).data) == 1
    org.projects.list(limit=100)
    sas.list(pid, limit=100)

    with pytest.raises(openai.BadRequestError) as ei:
        org.projects.list(after=fake_id("proj_"))
    assert assert_deterministic_error(ei.value, 400)["param"] == "after"
    with pytest.raises(openai.BadRequestError) as ei:
        sas.list(pid, after=fake_id("svc_acct_"))
    assert assert_deterministic_error(ei.value, 400)["param"] == "after"
