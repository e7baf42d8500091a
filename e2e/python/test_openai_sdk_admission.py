"""Project rate limits (admission control), driven by the official `openai` Python SDK's
`client.admin.organization.projects.rate_limits`, and enforced by `/v1/auth/check`.

The server runs with conftest.MODELS_TOML: "*", "gpt-4o" and "o3"."""

from __future__ import annotations

import urllib.error
import urllib.request

import openai
import pytest

from conftest import unique_name

RATE_LIMIT_KEYS = {"object", "id", "model", "max_requests_per_1_minute", "max_tokens_per_1_minute"}
LIST_KEYS = {"object", "data", "first_id", "last_id", "has_more"}


def check(server, key: str, model: str | None) -> tuple[int, dict]:
    """GET /v1/auth/check as a gateway would, naming the model; returns (status, headers)."""
    req = urllib.request.Request(server.base_url + "/auth/check")
    req.add_header("Authorization", f"Bearer {key}")
    if model is not None:
        req.add_header("X-Keyplane-Model", model)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}
    except urllib.error.HTTPError as e:
        assert key not in e.read().decode(), "a refused key was echoed"
        return e.code, {k.lower(): v for k, v in e.headers.items()}


def test_every_project_lists_the_catalogue_with_its_defaults(org):
    project = org.projects.create(name=unique_name("rl-list"))
    rl = org.projects.rate_limits

    raw = rl.with_raw_response.list_rate_limits(project.id)
    assert raw.status_code == 200
    body = raw.http_response.json()
    assert set(body) == LIST_KEYS, body
    assert body["object"] == "list" and body["has_more"] is False
    assert [d["id"] for d in body["data"]] == ["rl-*", "rl-gpt-4o", "rl-o3"]
    assert body["first_id"] == "rl-*" and body["last_id"] == "rl-o3"
    by_model = {d["model"]: d for d in body["data"]}
    # Optional fields are absent (not null) where the catalogue gives no value, as OpenAI's are.
    assert set(by_model["gpt-4o"]) == RATE_LIMIT_KEYS | {"max_requests_per_1_day"}
    assert set(by_model["o3"]) == RATE_LIMIT_KEYS | {"batch_1_day_max_input_tokens"}
    assert set(by_model["*"]) == RATE_LIMIT_KEYS

    parsed = rl.list_rate_limits(project.id)
    gpt = next(r for r in parsed if r.model == "gpt-4o")
    assert isinstance(gpt, openai.types.admin.organization.projects.ProjectRateLimit)
    assert gpt.object == "project.rate_limit" and gpt.id == "rl-gpt-4o"
    assert (gpt.max_requests_per_1_minute, gpt.max_tokens_per_1_minute) == (500, 30000)
    assert gpt.max_requests_per_1_day == 10000 and gpt.max_images_per_1_minute is None


def test_pagination_after_before_and_auto_paging(org):
    project = org.projects.create(name=unique_name("rl-pages"))
    rl = org.projects.rate_limits
    # limit=1: the SDK follows `last_id` through three pages, each model once.
    assert [r.id for r in rl.list_rate_limits(project.id, limit=1)] == ["rl-*", "rl-gpt-4o", "rl-o3"]
    page = rl.list_rate_limits(project.id, after="rl-*", limit=1)
    assert [r.id for r in page.data] == ["rl-gpt-4o"] and page.has_more is True
    page = rl.list_rate_limits(project.id, before="rl-o3")
    assert [r.id for r in page.data] == ["rl-*", "rl-gpt-4o"] and page.has_more is False
    for limit in (0, 101):
        with pytest.raises(openai.BadRequestError) as e:
            rl.list_rate_limits(project.id, limit=limit)
        assert e.value.body["param"] == "limit", e.value.body


def test_update_overrides_one_project_and_is_audited(org):
    project = org.projects.create(name=unique_name("rl-update"))
    other = org.projects.create(name=unique_name("rl-other"))
    rl = org.projects.rate_limits

    updated = rl.update_rate_limit(
        "rl-gpt-4o", project_id=project.id, max_requests_per_1_minute=42, max_images_per_1_minute=7
    )
    assert updated.id == "rl-gpt-4o" and updated.model == "gpt-4o"
    assert updated.max_requests_per_1_minute == 42 and updated.max_images_per_1_minute == 7
    # Fields not sent keep the catalogue's defaults.
    assert updated.max_tokens_per_1_minute == 30000 and updated.max_requests_per_1_day == 10000

    # A second update of another field keeps the first one's values.
    again = rl.update_rate_limit("rl-gpt-4o", project_id=project.id, max_tokens_per_1_minute=1234)
    assert (again.max_requests_per_1_minute, again.max_tokens_per_1_minute) == (42, 1234)

    listed = {r.model: r for r in rl.list_rate_limits(project.id)}
    assert listed["gpt-4o"].max_requests_per_1_minute == 42
    assert listed["gpt-4o"].max_tokens_per_1_minute == 1234
    untouched = {r.model: r for r in rl.list_rate_limits(other.id)}
    assert untouched["gpt-4o"].max_requests_per_1_minute == 500, "an update is for its project only"

    events = list(org.audit_logs.list(project_ids=[project.id], event_types=["rate_limit.updated"]))
    assert len(events) == 2, events
    newest, oldest = events
    assert oldest.rate_limit_updated.id == "rl-gpt-4o"
    assert oldest.rate_limit_updated.changes_requested.max_requests_per_1_minute == 42
    assert oldest.rate_limit_updated.changes_requested.max_images_per_1_minute == 7
    assert newest.rate_limit_updated.changes_requested.max_tokens_per_1_minute == 1234
    assert newest.rate_limit_updated.changes_requested.max_requests_per_1_minute is None
    assert newest.project.id == project.id


def test_bad_input_is_refused_and_changes_nothing(org):
    project = org.projects.create(name=unique_name("rl-bad"))
    rl = org.projects.rate_limits
    bad_bodies = [
        {"max_requests_per_1_minute": -1},
        {"max_requests_per_1_minute": 1.5},
        {"max_tokens_per_1_minute": "many"},
    ]
    for body in bad_bodies:
        with pytest.raises(openai.BadRequestError) as e:
            rl.update_rate_limit("rl-o3", project_id=project.id, extra_body=body)
        err = e.value.body
        assert err["type"] == "invalid_request_error" and err["message"], err
        assert next(iter(body)) in err["message"] or err["param"] == next(iter(body)), err

    with pytest.raises(openai.NotFoundError) as e:
        rl.update_rate_limit("rl-no-such-model", project_id=project.id, max_requests_per_1_minute=1)
    assert "rl-no-such-model" in e.value.body["message"], e.value.body
    with pytest.raises(openai.NotFoundError):
        rl.list_rate_limits("proj_" + "0" * 26)

    o3 = next(r for r in rl.list_rate_limits(project.id) if r.model == "o3")
    assert (o3.max_requests_per_1_minute, o3.max_tokens_per_1_minute) == (100, 20000)
    assert not list(org.audit_logs.list(project_ids=[project.id], event_types=["rate_limit.updated"]))

    org.projects.archive(project.id)
    with pytest.raises(openai.BadRequestError) as e:
        rl.update_rate_limit("rl-o3", project_id=project.id, max_requests_per_1_minute=1)
    assert e.value.body["code"] == "project_archived", e.value.body


def test_a_lowered_limit_is_enforced_by_the_gateway_check(org, server):
    project = org.projects.create(name=unique_name("rl-enforced"))
    sa = org.projects.service_accounts.create(project.id, name="caller")
    key = sa.api_key.value
    org.projects.rate_limits.update_rate_limit("rl-o3", project_id=project.id, max_requests_per_1_minute=2)

    statuses = []
    for _ in range(2):
        status, headers = check(server, key, "o3")
        statuses.append(status)
        assert headers["x-ratelimit-limit-requests"] == "2", headers
    assert statuses == [204, 204]
    assert headers["x-ratelimit-remaining-requests"] == "0", headers

    status, headers = check(server, key, "o3")
    assert status == 429, headers
    assert int(headers["retry-after"]) >= 1, headers
    assert headers["x-keyplane-reason"] == "rate_limit_exceeded", headers

    # Another model, and no model (the catch-all), are counted apart.
    assert check(server, key, "gpt-4o")[0] == 204
    assert check(server, key, None)[0] == 204
