"""The audit log, read through the official `openai` Python SDK's
`client.admin.organization.audit_logs.list(...)`, with its filters and auto-pagination."""

from __future__ import annotations

import time

import openai
import pytest

from conftest import unique_name


def test_audit_log_pages_through_a_projects_history(org):
    started = int(time.time())
    project = org.projects.create(name=unique_name("audited"))
    sas = org.projects.service_accounts
    sa = sas.create(project.id, name="worker")
    sas.update(sa.id, project_id=project.id, role="owner")
    sas.delete(sa.id, project_id=project.id)

    # limit=2 makes the SDK follow `last_id` through three pages.
    events = list(org.audit_logs.list(project_ids=[project.id], limit=2))
    assert [e.type for e in events] == [
        "service_account.deleted",
        "service_account.updated",
        "api_key.created",
        "service_account.created",
        "project.created",
    ]
    assert len({e.id for e in events}) == 5, "every event exactly once"
    assert all(e.id.startswith("audit_log-") for e in events)
    assert all(e.project.id == project.id for e in events)
    assert all(e.effective_at >= started - 1 for e in events)
    created = events[3]
    assert created.service_account_created.id == sa.id
    assert created.service_account_created.data.role == "member"
    assert created.actor.type == "api_key"
    # The key's value is never in the log; its redacted form may be.
    dump = "".join(e.model_dump_json() for e in events)
    assert sa.api_key.value not in dump


def test_audit_log_filters(org):
    project = org.projects.create(name=unique_name("filtered"))
    sas = org.projects.service_accounts
    first = sas.create(project.id, name="one")
    sas.create(project.id, name="two")
    admin_id = next(iter(org.admin_api_keys.list(limit=1))).id

    by_type = list(
        org.audit_logs.list(project_ids=[project.id], event_types=["service_account.created"])
    )
    assert [e.type for e in by_type] == ["service_account.created"] * 2
    by_resource = list(org.audit_logs.list(resource_ids=[first.id]))
    assert [e.service_account_created.id for e in by_resource] == [first.id]
    mine = list(org.audit_logs.list(project_ids=[project.id], actor_ids=[admin_id]))
    assert len(mine) == 5
    assert all(e.actor.api_key.id == admin_id for e in mine)
    now = int(time.time())
    window = list(
        org.audit_logs.list(project_ids=[project.id], effective_at={"gte": now - 600, "lte": now + 1})
    )
    assert len(window) == 5
    assert list(org.audit_logs.list(project_ids=[project.id], effective_at={"gt": now + 5})) == []
    assert list(org.audit_logs.list(actor_emails=["nobody@example.com"])) == []

    # `before` walks back toward newer events.
    page = org.audit_logs.list(project_ids=[project.id], limit=2)
    older = org.audit_logs.list(project_ids=[project.id], limit=2, after=page.last_id)
    newer = org.audit_logs.list(project_ids=[project.id], limit=2, before=older.first_id)
    assert [e.id for e in newer.data] == [e.id for e in page.data]


def test_audit_log_errors(org):
    with pytest.raises(openai.BadRequestError) as err:
        org.audit_logs.list(limit=500)
    assert err.value.body["param"] == "limit"
    with pytest.raises(openai.BadRequestError) as err:
        org.audit_logs.list(after="audit_log-unknown")
    assert err.value.body["param"] == "after"


def test_audit_log_keyplane_only_events(org):
    """What OpenAI's log has no words for lists like the rest: admin keys (keyplane has no
    users, so the acting key's type is "admin") and operator commands (actor "system"). The
    spec check holds these pages to OpenAI's schema too, with only those named deviations."""
    key = org.admin_api_keys.create(name=unique_name("audited admin key"))
    org.admin_api_keys.delete(key.id)
    events = list(org.audit_logs.list(resource_ids=[key.id]))
    assert [e.type for e in events] == ["admin_api_key.deleted", "admin_api_key.created"]
    assert all(e.actor.type == "api_key" and e.actor.api_key.type == "admin" for e in events)

    # The whole log, oldest included: the organization's default project and first admin key
    # were made by the server itself (first start, or `keyplane organization create`).
    everything = list(org.audit_logs.list(limit=100))
    assert len({e.id for e in everything}) == len(everything)
    by_system = [e.type for e in everything if e.actor.type == "system"]
    assert sorted(by_system) == ["admin_api_key.created", "project.created"]
    assert everything[-1].actor.type == "system"
