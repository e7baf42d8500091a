"""Workload identity federation configuration, driven by the official `openai` Python SDK's own
resources: `client.admin.organization.workload_identity_providers` (providers) and its
`.federation_rules` (rules), plus the audit log they write.

Providers are per organization and at most 50 of them may exist, so every test deletes what it
made (rules first: a provider with rules cannot be deleted). The file sorts before
test_openai_sdk_keys.py, which revokes the suite's admin keys at its end.
"""

from __future__ import annotations

import re
import time

import openai
import pytest
from openai.types.admin.organization import WorkloadIdentityProvider, WorkloadIdentityProviderDeleted
from openai.types.admin.organization.workload_identity_provider import (
    AttributeTransformation,
    VerificationDiscovery,
    VerificationUploadedJwks,
)
from openai.types.admin.organization.workload_identity_providers import FederationRule, FederationRuleDeleted
from openai.types.admin.organization.workload_identity_providers.federation_rule import (
    PermissionsRestricted,
    PermissionsServiceAccountDefault,
)

from conftest import PROJECT_ID_RE, SVC_ACCT_ID_RE, fake_id, unique_name

PROVIDER_ID_RE = re.compile(r"^idp_[0-9a-z]{26}$")
RULE_ID_RE = re.compile(r"^fedrule_[0-9a-z]{26}$")

PROVIDER_KEYS = {
    "object", "id", "name", "description", "type", "issuer", "audience", "enabled",
    "attribute_transformations", "verification", "created_at", "updated_at",
}
RULE_KEYS = {
    "object", "id", "name", "description", "enabled", "workload_identity_provider_id", "project_id",
    "service_account_id", "attribute_matchers", "permissions", "created_at", "updated_at",
}
LIST_KEYS = {"object", "data", "first_id", "last_id", "has_more"}

ISSUER = "https://token.actions.githubusercontent.com"
# A public Ed25519 key (RFC 8037 test vector's public half): what an uploaded key set holds.
ED25519_JWK = {"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "UeXj21Mdi24wv786kOHEjeyfcTiZSXWxo38Er_1ESmg"}
TRANSFORMATIONS = [
    {"attribute": "repo", "expression": "lower(assertion.repository)"},
    {"attribute": "who", "expression": 'assertion.repository_owner + "/" + assertion["job_workflow_ref"]'},
]


@pytest.fixture
def wip(org):
    """The providers resource, `client.admin.organization.workload_identity_providers`."""
    return org.workload_identity_providers


@pytest.fixture
def made(wip):
    """Ids of the providers a test created (new_provider adds them): each is deleted afterwards,
    its rules first, whatever the test did."""
    created: list[str] = []
    yield created
    for pid in created:
        try:
            for rule in list(wip.federation_rules.list(pid, limit=100)):
                wip.federation_rules.delete(rule.id, workload_identity_provider_id=pid)
            wip.delete(pid)
        except openai.NotFoundError:
            pass  # the test deleted it itself


def new_provider(wip, made: list[str], label: str, **fields) -> WorkloadIdentityProvider:
    body = {"name": unique_name(label), "type": "oidc", "issuer": ISSUER, "audience": "keyplane-e2e"}
    body.update(fields)
    provider = wip.create(**body)
    made.append(provider.id)
    return provider


def mine(items, ids) -> list[str]:
    """The ids of `items` that are among `ids`, in listed order."""
    return [x.id for x in items if x.id in ids]


# ------------------------------------------------------------------------------ providers


def test_provider_create_and_the_sdk_model(wip, made):
    name = unique_name("wif-create")
    raw = wip.with_raw_response.create(
        name=name,
        type="oidc",
        issuer=ISSUER,
        audience="keyplane-e2e",
        attribute_transformations=TRANSFORMATIONS,
    )
    assert raw.status_code == 200
    body = raw.http_response.json()
    assert set(body) == PROVIDER_KEYS, body
    # Defaults the SDK types as required keys: present, explicit nulls where nullable.
    assert body["description"] is None and body["verification"] == {"type": "discovery", "discovery_url": None}
    assert body["enabled"] is True

    p = raw.parse()
    made.append(p.id)
    assert isinstance(p, WorkloadIdentityProvider)
    assert PROVIDER_ID_RE.match(p.id), p.id
    assert p.object == "organization.workload_identity_provider"
    assert p.type == "oidc" and p.name == name
    assert p.issuer == ISSUER and p.audience == "keyplane-e2e"
    assert p.description is None
    assert p.enabled is True
    assert isinstance(p.verification, VerificationDiscovery), type(p.verification)
    assert p.verification.type == "discovery" and p.verification.discovery_url is None
    assert all(isinstance(t, AttributeTransformation) for t in p.attribute_transformations)
    assert [(t.attribute, t.expression) for t in p.attribute_transformations] == [
        (t["attribute"], t["expression"]) for t in TRANSFORMATIONS
    ]
    now = int(time.time())
    assert isinstance(p.created_at, int) and abs(p.created_at - now) < 300
    assert p.updated_at == p.created_at

    got = wip.retrieve(p.id)
    assert isinstance(got, WorkloadIdentityProvider)
    assert got.model_dump() == p.model_dump()

    # An explicit discovery URL and a description on create come back as sent.
    q = new_provider(
        wip,
        made,
        "wif-explicit",
        description="GitHub Actions of acme",
        enabled=False,
        verification={"type": "discovery", "discovery_url": ISSUER + "/.well-known/openid-configuration"},
    )
    assert q.description == "GitHub Actions of acme" and q.enabled is False
    assert isinstance(q.verification, VerificationDiscovery)
    assert q.verification.discovery_url == ISSUER + "/.well-known/openid-configuration"
    assert q.attribute_transformations == []


def test_provider_update_merges(wip, made):
    p = new_provider(wip, made, "wif-update", description="first", attribute_transformations=TRANSFORMATIONS)

    # Only the name: every other field stays.
    renamed = wip.update(p.id, name=p.name + " renamed")
    assert renamed.name == p.name + " renamed"
    for field in ("description", "issuer", "audience", "enabled", "type", "created_at"):
        assert getattr(renamed, field) == getattr(p, field), field
    assert renamed.attribute_transformations == p.attribute_transformations
    assert renamed.verification == p.verification
    assert renamed.updated_at >= p.updated_at

    # description=None goes on the wire as null and clears it; omitted fields still stay.
    cleared = wip.update(p.id, description=None)
    assert cleared.description is None and cleared.name == renamed.name
    assert wip.retrieve(p.id).description is None

    # Switch to an uploaded key set (and change a few other fields at once).
    switched = wip.update(
        p.id,
        verification={"type": "uploaded_jwks", "jwks": {"keys": [ED25519_JWK]}},
        audience="other-audience",
        enabled=False,
        attribute_transformations=[],
    )
    assert isinstance(switched.verification, VerificationUploadedJwks), type(switched.verification)
    assert switched.verification.type == "uploaded_jwks"
    assert switched.verification.jwks == {"keys": [ED25519_JWK]}
    assert switched.audience == "other-audience" and switched.enabled is False
    assert switched.attribute_transformations == []
    assert switched.issuer == ISSUER and switched.name == renamed.name and switched.description is None
    assert wip.retrieve(p.id).model_dump() == switched.model_dump()

    # An update with no fields sends `{}` and changes nothing.
    same = wip.update(p.id)
    assert same.model_dump() == switched.model_dump()

    # A refused update changes nothing either.
    with pytest.raises(openai.BadRequestError) as e:
        wip.update(p.id, issuer="http://insecure.example.com")
    assert e.value.body["param"] == "issuer", e.value.body
    assert wip.retrieve(p.id).model_dump() == switched.model_dump()


def test_provider_list_pages_and_order(wip, made):
    ids = [new_provider(wip, made, f"wif-list-{i}").id for i in range(3)]

    raw = wip.with_raw_response.list(limit=1)
    body = raw.http_response.json()
    assert set(body) == LIST_KEYS, body
    assert body["object"] == "list" and len(body["data"]) == 1 and body["has_more"] is True
    assert body["first_id"] == body["last_id"] == body["data"][0]["id"]
    assert set(body["data"][0]) == PROVIDER_KEYS

    # limit=1: the SDK follows `after` page by page, each provider once, oldest first.
    walked = list(wip.list(limit=1))
    assert len({p.id for p in walked}) == len(walked), "each provider exactly once"
    assert all(isinstance(p, WorkloadIdentityProvider) for p in walked)
    assert mine(walked, ids) == ids

    newest_first = list(wip.list(order="desc", limit=2))
    assert mine(newest_first, ids) == ids[::-1]
    assert [p.id for p in newest_first] == [p.id for p in walked][::-1]

    page = wip.list(after=ids[0], limit=1)
    assert [p.id for p in page.data] == [ids[1]] and page.has_more is True
    page = wip.list(after=ids[1], order="desc", limit=5)
    assert ids[0] in [p.id for p in page.data] and ids[2] not in [p.id for p in page.data]

    for bad in ({"limit": 0}, {"limit": 101}, {"order": "sideways"}):
        with pytest.raises(openai.BadRequestError) as e:
            wip.list(**bad)
        assert e.value.status_code == 400 and e.value.body["param"] == next(iter(bad)), e.value.body
    with pytest.raises(openai.BadRequestError) as e:
        wip.list(after="not-a-provider-id")
    assert e.value.body["param"] == "after", e.value.body


# ------------------------------------------------------------------------------ rules


def test_rules_lifecycle_delete_guard_and_audit(org, wip, made):
    started = int(time.time())
    project = org.projects.create(name=unique_name("wif-rules"))
    sas = org.projects.service_accounts
    builder = sas.create(project.id, name="builder", create_service_account_only=True)
    deployer = sas.create(project.id, name="deployer", create_service_account_only=True)
    assert PROJECT_ID_RE.match(project.id) and SVC_ACCT_ID_RE.match(builder.id)
    provider = new_provider(wip, made, "wif-rules")
    rules = wip.federation_rules

    matchers = {"sub": "repo:acme/api:ref:refs/heads/main", "run_attempt": 2, "ref_protected": True}
    raw = rules.with_raw_response.create(
        provider.id,
        project_id=project.id,
        service_account_id=builder.id,
        attribute_matchers=matchers,
        name="main branch",
        description="builds from main",
    )
    assert raw.status_code == 200
    body = raw.http_response.json()
    assert set(body) == RULE_KEYS, body
    assert body["permissions"] == {"type": "service_account_default"}
    rule = raw.parse()
    assert isinstance(rule, FederationRule)
    assert RULE_ID_RE.match(rule.id), rule.id
    assert rule.object == "organization.workload_identity_federation_rule"
    assert rule.workload_identity_provider_id == provider.id
    assert rule.project_id == project.id and rule.service_account_id == builder.id
    assert rule.name == "main branch" and rule.description == "builds from main"
    assert rule.enabled is True
    assert isinstance(rule.permissions, PermissionsServiceAccountDefault), type(rule.permissions)
    assert rule.attribute_matchers == matchers
    # Scalars keep their JSON types: 2 is a number, True a boolean, never strings.
    assert type(rule.attribute_matchers["run_attempt"]) is int
    assert type(rule.attribute_matchers["ref_protected"]) is bool
    assert rule.updated_at == rule.created_at and abs(rule.created_at - started) < 300

    got = rules.retrieve(rule.id, workload_identity_provider_id=provider.id)
    assert isinstance(got, FederationRule) and got.model_dump() == rule.model_dump()

    updated = rules.update(
        rule.id,
        workload_identity_provider_id=provider.id,
        name=None,
        permissions={"type": "restricted", "scopes": ["api.model.read", "api.responses.write"]},
    )
    assert updated.name is None
    assert isinstance(updated.permissions, PermissionsRestricted), type(updated.permissions)
    assert updated.permissions.type == "restricted"
    assert updated.permissions.scopes == ["api.model.read", "api.responses.write"]
    assert updated.description == "builds from main" and updated.attribute_matchers == matchers
    assert updated.project_id == project.id and updated.service_account_id == builder.id
    assert updated.enabled is True and updated.created_at == rule.created_at
    assert rules.retrieve(rule.id, workload_identity_provider_id=provider.id).model_dump() == updated.model_dump()

    other = rules.create(
        provider.id,
        project_id=project.id,
        service_account_id=deployer.id,
        attribute_matchers={"repo": "acme/api", "environment": "production"},
        enabled=False,
    )
    assert other.name is None and other.description is None and other.enabled is False

    assert [r.id for r in rules.list(provider.id)] == [rule.id, other.id]
    assert [r.id for r in rules.list(provider.id, limit=1)] == [rule.id, other.id], "auto-pagination"
    assert [r.id for r in rules.list(provider.id, order="desc")] == [other.id, rule.id]
    assert [r.id for r in rules.list(provider.id, service_account_id=builder.id)] == [rule.id]
    assert [r.id for r in rules.list(provider.id, service_account_id=deployer.id)] == [other.id]
    page = rules.list(provider.id, service_account_id=builder.id)
    assert page.has_more is False and all(isinstance(r, FederationRule) for r in page.data)

    # A provider with rules cannot be deleted; it and its rules stay.
    with pytest.raises(openai.BadRequestError) as e:
        wip.delete(provider.id)
    assert e.value.status_code == 400
    err = e.value.body
    assert err["type"] == "invalid_request_error" and "rules" in err["message"], err
    assert wip.retrieve(provider.id).id == provider.id
    assert len(list(rules.list(provider.id))) == 2

    gone = rules.delete(rule.id, workload_identity_provider_id=provider.id)
    assert isinstance(gone, FederationRuleDeleted)
    assert gone.object == "organization.workload_identity_federation_rule.deleted"
    assert gone.id == rule.id and gone.deleted is True
    with pytest.raises(openai.NotFoundError):
        rules.retrieve(rule.id, workload_identity_provider_id=provider.id)
    with pytest.raises(openai.BadRequestError):
        wip.delete(provider.id)  # `other` is still there
    rules.delete(other.id, workload_identity_provider_id=provider.id)

    raw_deleted = wip.with_raw_response.delete(provider.id)
    assert raw_deleted.http_response.json() == {
        "object": "organization.workload_identity_provider.deleted",
        "id": provider.id,
        "deleted": True,
    }
    deleted = raw_deleted.parse()
    assert isinstance(deleted, WorkloadIdentityProviderDeleted) and deleted.deleted is True
    with pytest.raises(openai.NotFoundError) as e:
        wip.retrieve(provider.id)
    assert e.value.status_code == 404 and provider.id in e.value.body["message"], e.value.body
    with pytest.raises(openai.NotFoundError):
        rules.list(provider.id)
    with pytest.raises(openai.NotFoundError):
        wip.delete(provider.id)

    # The audit log: every change, under OpenAI's names (a rule is a "mapping" there).
    def events(kind: str, object_id: str):
        found = list(org.audit_logs.list(event_types=[kind], limit=100))
        assert all(ev.type == kind for ev in found), [ev.type for ev in found]
        details = [getattr(ev, kind.replace(".", "_")) for ev in found]
        return [d for d in details if d is not None and d.id == object_id]

    (created,) = events("workload_identity_provider.created", provider.id)
    assert created.data["name"] == provider.name and created.data["issuer"] == ISSUER
    assert created.data["verification"] == {"type": "discovery", "discovery_url": None}
    (p_deleted,) = events("workload_identity_provider.deleted", provider.id)
    assert p_deleted.name == provider.name

    (r_created,) = events("workload_identity_provider_mapping.created", rule.id)
    assert r_created.identity_provider_id == provider.id
    assert r_created.data["service_account_id"] == builder.id and r_created.data["project_id"] == project.id
    assert r_created.data["attribute_matchers"] == matchers
    (o_created,) = events("workload_identity_provider_mapping.created", other.id)
    assert o_created.identity_provider_id == provider.id
    (r_updated,) = events("workload_identity_provider_mapping.updated", rule.id)
    assert r_updated.identity_provider_id == provider.id
    assert r_updated.changes_requested == {
        "name": None,
        "permissions": {"type": "restricted", "scopes": ["api.model.read", "api.responses.write"]},
    }
    for rid, sa in ((rule.id, builder.id), (other.id, deployer.id)):
        (r_deleted,) = events("workload_identity_provider_mapping.deleted", rid)
        assert r_deleted.identity_provider_id == provider.id
        assert r_deleted.project_id == project.id and r_deleted.service_account_id == sa

    # Newest first, filtered to this provider's and its rules' ids.
    ids = {provider.id, rule.id, other.id}
    all_types = [
        "workload_identity_provider.created",
        "workload_identity_provider.updated",
        "workload_identity_provider.deleted",
        "workload_identity_provider_mapping.created",
        "workload_identity_provider_mapping.updated",
        "workload_identity_provider_mapping.deleted",
    ]
    history = [
        ev.type
        for ev in org.audit_logs.list(event_types=all_types, limit=100)
        if getattr(ev, ev.type.replace(".", "_")).id in ids
    ]
    assert history == [
        "workload_identity_provider.deleted",
        "workload_identity_provider_mapping.deleted",
        "workload_identity_provider_mapping.deleted",
        "workload_identity_provider_mapping.created",
        "workload_identity_provider_mapping.updated",
        "workload_identity_provider_mapping.created",
        "workload_identity_provider.created",
    ], history


def test_provider_updates_are_audited(org, wip, made):
    p = new_provider(wip, made, "wif-audit-update")
    wip.update(p.id, description="now described")
    wip.update(p.id, verification={"type": "uploaded_jwks", "jwks": {"keys": [ED25519_JWK]}})
    found = [
        ev.workload_identity_provider_updated
        for ev in org.audit_logs.list(event_types=["workload_identity_provider.updated"], limit=100)
        if ev.workload_identity_provider_updated.id == p.id
    ]
    newest, oldest = found
    assert oldest.changes_requested == {"description": "now described"}
    # An uploaded key set is recorded by its key ids, not the whole document.
    assert newest.changes_requested == {"verification": {"type": "uploaded_jwks", "key_ids": ["k1"]}}


# ------------------------------------------------------------------------------ refusals


def bad_request(call, param: str) -> dict:
    with pytest.raises(openai.BadRequestError) as e:
        call()
    err = e.value.body
    assert e.value.status_code == 400
    assert set(err) == {"message", "type", "param", "code"}, err
    assert err["type"] == "invalid_request_error" and err["message"], err
    assert err["param"] == param, err
    return err


def test_bad_provider_input_is_refused_and_creates_nothing(wip, made):
    before = {p.id for p in wip.list(limit=100)}
    good = {"name": unique_name("wif-bad"), "type": "oidc", "issuer": ISSUER, "audience": "a"}
    # `type` is typed Literal["oidc"]; the SDK sends whatever it is given.
    bad_request(lambda: wip.create(**{**good, "type": "saml"}), "type")
    bad_request(lambda: wip.create(**{**good, "issuer": "http://token.example.com"}), "issuer")
    bad_request(lambda: wip.create(**{**good, "issuer": "not a url"}), "issuer")
    bad_request(lambda: wip.create(**{**good, "name": "   "}), "name")
    bad_request(
        lambda: wip.create(
            **good, attribute_transformations=[{"attribute": "n", "expression": "size(assertion.sub)"}]
        ),
        "attribute_transformations",
    )
    bad_request(
        lambda: wip.create(
            **good,
            attribute_transformations=[
                {"attribute": "a", "expression": "assertion.sub"},
                {"attribute": "a", "expression": "assertion.aud"},
            ],
        ),
        "attribute_transformations",
    )
    bad_request(
        lambda: wip.create(**good, verification={"type": "uploaded_jwks", "jwks": {"keys": []}}),
        "verification.jwks",
    )
    bad_request(
        lambda: wip.create(
            **good,
            verification={"type": "uploaded_jwks", "jwks": {"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}},
        ),
        "verification.jwks",
    )
    # A private key is refused, not stored (its `d` must never be kept).
    private = {**ED25519_JWK, "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}
    bad_request(
        lambda: wip.create(**good, verification={"type": "uploaded_jwks", "jwks": {"keys": [private]}}),
        "verification.jwks",
    )
    bad_request(
        lambda: wip.create(**good, verification={"type": "discovery", "discovery_url": "http://x.example.com/d"}),
        "verification.discovery_url",
    )
    assert {p.id for p in wip.list(limit=100)} == before, "nothing was created"

    with pytest.raises(openai.NotFoundError) as e:
        wip.retrieve(fake_id("idp_"))
    assert e.value.status_code == 404
    with pytest.raises(openai.NotFoundError):
        wip.retrieve("idp_not-an-id")
    with pytest.raises(openai.NotFoundError):
        wip.update(fake_id("idp_"), name="x")


def test_bad_rule_input_is_refused(org, wip, made):
    project = org.projects.create(name=unique_name("wif-bad-rules"))
    sa = org.projects.service_accounts.create(project.id, name="target", create_service_account_only=True)
    provider = new_provider(wip, made, "wif-bad-rules")
    rules = wip.federation_rules
    target = {"project_id": project.id, "service_account_id": sa.id}

    bad_request(lambda: rules.create(provider.id, **target, attribute_matchers={}), "attribute_matchers")
    bad_request(
        lambda: rules.create(provider.id, **target, attribute_matchers={"sub": ["a", "b"]}), "attribute_matchers"
    )
    bad_request(
        lambda: rules.create(provider.id, **target, attribute_matchers={"sub": {"nested": 1}}), "attribute_matchers"
    )
    assert list(rules.list(provider.id)) == []

    rule = rules.create(provider.id, **target, attribute_matchers={"sub": "x"})
    bad_request(
        lambda: rules.update(rule.id, workload_identity_provider_id=provider.id, attribute_matchers={}),
        "attribute_matchers",
    )
    assert rules.retrieve(rule.id, workload_identity_provider_id=provider.id).attribute_matchers == {"sub": "x"}
    bad_request(lambda: rules.list(provider.id, service_account_id="nobody"), "service_account_id")

    # Unknown provider, rule, project or account: 404.
    with pytest.raises(openai.NotFoundError):
        rules.create(fake_id("idp_"), **target, attribute_matchers={"sub": "x"})
    with pytest.raises(openai.NotFoundError):
        rules.retrieve(fake_id("fedrule_"), workload_identity_provider_id=provider.id)
    with pytest.raises(openai.NotFoundError):
        rules.create(provider.id, project_id=project.id, service_account_id=fake_id("svc_acct_"),
                     attribute_matchers={"sub": "x"})
    with pytest.raises(openai.NotFoundError):
        rules.create(provider.id, project_id=fake_id("proj_"), service_account_id=sa.id,
                     attribute_matchers={"sub": "x"})
    # A rule is found only under its own provider.
    elsewhere = new_provider(wip, made, "wif-bad-rules-2")
    with pytest.raises(openai.NotFoundError):
        rules.retrieve(rule.id, workload_identity_provider_id=elsewhere.id)
    with pytest.raises(openai.NotFoundError):
        rules.delete(rule.id, workload_identity_provider_id=elsewhere.id)

    # An archived project takes no new rules.
    org.projects.archive(project.id)
    with pytest.raises(openai.BadRequestError) as e:
        rules.create(provider.id, **target, attribute_matchers={"sub": "y"})
    assert e.value.body["code"] == "project_archived", e.value.body


def test_nothing_is_left_behind(wip):
    """Runs last in this file (pytest keeps definition order): the `made` teardowns deleted every
    provider the tests above created, so the organization's 50-provider budget is untouched."""
    left = [p.name for p in wip.list(limit=100) if p.name.startswith("e2e-py wif-")]
    assert left == [], left
