"""After the SDK suites: every OpenAI-dialect response they received must conform to OpenAI's
own OpenAPI document.

    python3 check_spec_conformance.py --spec SPEC.yaml RECORDS.jsonl
    python3 check_spec_conformance.py --spec SPEC.yaml --self-test-only

RECORDS holds one JSON object a line, {suite, method, path, query, status, content_type, body},
appended by the suites' SDK clients (KEYPLANE_E2E_HTTP_RECORDS). SPEC is the `/organization/*`
extract of OpenAI's spec (spec/openai-openapi-organization.yaml, copied verbatim).

Each record under `/v1/organization/` is matched to the spec's path template and method (the
spec's server URL ends in `/v1`); its status picks the operation's response (the exact code,
then `4XX`-style ranges, then `default`). An error status the operation does not declare is
checked against `#/components/schemas/ErrorResponse`, the envelope the spec gives every error
it does declare; an undeclared success status is a failure. The media type must be one the
response declares, and the body is validated with `jsonschema` against the response schema,
every `$ref` resolved in the spec document:

- OpenAPI 3.1 (this spec): schemas are JSON Schema 2020-12, validated as they are. `nullable`
  is not a 3.1 keyword; should a response schema carry it, the check stops rather than guess.
- OpenAPI 3.0: `nullable: true` is converted as 3.0.3 defines it (it adds "null" to an
  explicit `type` in the same schema object and nothing else; an `enum` without null still
  refuses null), then the schemas are validated as JSON Schema draft 4.

Nothing else is relaxed: the spec's `additionalProperties` are kept as they are. keyplane's
deliberate differences are the named entries of DEVIATIONS below (each widens exactly one enum
by exactly the values keyplane sends, and is listed in README's "Where we differ from OpenAI on
purpose"). The Keycard dialect and keyplane's verification endpoints are not OpenAI operations:
they are counted as out of scope.

Fails (exit 1) on any mismatch, on an `/organization` request no operation matches (unless
listed in NOT_IN_SPEC), and when fewer records than MIN_RECORDS, or not every operation of
EXPECTED_OPERATIONS, were validated, so it cannot pass vacuously. Before the records, a
self-test feeds it synthetic records it must accept and reject (wrong bodies, statuses, media
types, deviations outside their named values, and the 3.0 `nullable` conversion).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

SPEC_URI = "urn:keyplane-e2e:openai-spec"
API_PREFIX = "/v1"  # the path of the spec's server URL, https://api.openai.com/v1
OPENAI_PREFIX = API_PREFIX + "/organization/"
ERROR_RESPONSE = "#/components/schemas/ErrorResponse"

# The operations keyplane serves, by the spec's operationId: the e2e runs must reach each.
EXPECTED_OPERATIONS = frozenset(
    {
        "list-projects",
        "create-project",
        "retrieve-project",
        "modify-project",
        "archive-project",
        "list-project-service-accounts",
        "create-project-service-account",
        "retrieve-project-service-account",
        "update-project-service-account",
        "delete-project-service-account",
        "CreateanAPIkeyforaserviceaccount",
        "list-project-api-keys",
        "retrieve-project-api-key",
        "delete-project-api-key",
        "admin-api-keys-list",
        "admin-api-keys-create",
        "admin-api-keys-get",
        "admin-api-keys-delete",
        "list-audit-logs",
        "list-project-rate-limits",
        "update-project-rate-limits",
    }
)
# Fewer validated records than this from a suite means its recording broke.
MIN_RECORDS = {"python": 150, "node": 130}
# Error responses (status >= 400) must be among them too.
MIN_ERROR_RECORDS = 50

# OpenAI-dialect operations the SDKs have and keyplane serves that this extract of the spec
# (2026-08-21) does not: nothing to validate them against, so they are counted, by name.
NOT_IN_SPEC = {
    ("POST", "/organization/projects/{project_id}/api_keys/{api_key_id}"): (
        "update a project API key (SDK projects.api_keys.update; newer than the spec extract)"
    ),
}
# Workload identity federation (SDK admin.organization.workload_identity_providers and its
# federation_rules, openai 3.60 / Node 7.60; e2e/WORKLOAD-IDENTITY-WIRE.md): the extract names
# these only as audit-log event types, it has no such paths. Each method of each path is listed,
# so any other method (or path) under them still fails.
_WIP = "/organization/workload_identity_providers"
_WIP_ONE = _WIP + "/{workload_identity_provider_id}"
_RULES = _WIP_ONE + "/federation_rules"
_RULE_ONE = _RULES + "/{workload_identity_federation_rule_id}"
NOT_IN_SPEC.update(
    {
        ("GET", _WIP): "list workload identity providers (SDK workload_identity_providers.list)",
        ("POST", _WIP): "create a workload identity provider (SDK workload_identity_providers.create)",
        ("GET", _WIP_ONE): "retrieve a workload identity provider (SDK workload_identity_providers.retrieve)",
        ("POST", _WIP_ONE): "update a workload identity provider (SDK workload_identity_providers.update)",
        ("DELETE", _WIP_ONE): "delete a workload identity provider (SDK workload_identity_providers.delete)",
        ("GET", _RULES): "list federation rules (SDK workload_identity_providers.federation_rules.list)",
        ("POST", _RULES): "create a federation rule (SDK workload_identity_providers.federation_rules.create)",
        ("GET", _RULE_ONE): "retrieve a federation rule (SDK workload_identity_providers.federation_rules.retrieve)",
        ("POST", _RULE_ONE): "update a federation rule (SDK workload_identity_providers.federation_rules.update)",
        ("DELETE", _RULE_ONE): "delete a federation rule (SDK workload_identity_providers.federation_rules.delete)",
    }
)


@dataclass(frozen=True)
class Deviation:
    """A deliberate difference: the enum at `pointer` in the spec also takes `values`, which
    keyplane sends at `where` (a path with `*` for any list index) in `operation`'s bodies."""

    name: str
    pointer: str
    values: tuple
    operation: str
    path: str  # a request path of `operation`, for the self-test
    where: tuple
    sample: dict  # a valid body of `operation` with one value at `where`, for the self-test


def _audit_entry(**over) -> dict:
    entry = {
        "id": "audit_log-abc",
        "object": "organization.audit_log",
        "type": "project.created",
        "effective_at": 1711471533,
        "project": {"id": "proj_abc", "name": "p"},
        "actor": {"type": "api_key", "api_key": {"id": "key_abc", "type": "service_account"}},
        "project.created": {"id": "proj_abc", "data": {"name": "p"}},
    }
    entry.update(over)
    return {
        "object": "list",
        "data": [entry],
        "first_id": "audit_log-abc",
        "last_id": "audit_log-abc",
        "has_more": False,
    }


# README, "Where we differ from OpenAI on purpose": keyplane has no users, and it has events
# OpenAI's log has no name for.
DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        name="audit log: an admin key acting is api_key.type \"admin\" (keyplane has no users to own it)",
        pointer="#/components/schemas/AuditLogActorApiKey/properties/type",
        values=("admin",),
        operation="list-audit-logs",
        path="/v1/organization/audit_logs",
        where=("data", "*", "actor", "api_key", "type"),
        sample=_audit_entry(actor={"type": "api_key", "api_key": {"id": "key_abc", "type": "admin"}}),
    ),
    Deviation(
        name="audit log: operator commands run on the server act as {\"type\": \"system\"}",
        pointer="#/components/schemas/AuditLogActor/properties/type",
        values=("system",),
        operation="list-audit-logs",
        path="/v1/organization/audit_logs",
        where=("data", "*", "actor", "type"),
        sample=_audit_entry(actor={"type": "system"}),
    ),
    Deviation(
        name="audit log: event types of things OpenAI's log has no name for (admin keys, Keycard "
        "credentials, token signing keys)",
        pointer="#/components/schemas/AuditLogEventType",
        values=(
            "admin_api_key.created",
            "admin_api_key.deleted",
            "credential.created",
            "credential.updated",
            "credential.deleted",
            "signing_key.rotated",
        ),
        operation="list-audit-logs",
        path="/v1/organization/audit_logs",
        where=("data", "*", "type"),
        sample=_audit_entry(type="admin_api_key.created"),
    ),
)


def values_at(node, where: tuple):
    """The values at `where` in `node` (`*`: every item of a list)."""
    if not where:
        yield node
        return
    head, rest = where[0], where[1:]
    if head == "*":
        if isinstance(node, list):
            for item in node:
                yield from values_at(item, rest)
    elif isinstance(node, dict) and head in node:
        yield from values_at(node[head], rest)


def set_at(node, where: tuple, value):
    """A copy of `node` with `value` at `where` (`*`: every item)."""
    if not where:
        return value
    head, rest = where[0], where[1:]
    if head == "*":
        return [set_at(item, rest, value) for item in node]
    return {**node, head: set_at(node[head], rest, value)}


def redact(text: str) -> str:
    """Key values must not reach CI output whole."""
    return re.sub(r"sk-(admin|svcacct|proj)-([0-9A-Za-z]{4})[0-9A-Za-z]+", r"sk-\1-\2…", text)


# ----------------------------------------------------------------------------------- spec


def pointer_get(doc, pointer: str):
    assert pointer.startswith("#/"), pointer
    node = doc
    for part in pointer[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def convert_nullable_30(node):
    """OpenAPI 3.0 -> JSON Schema: `nullable: true` adds "null" to the `type` of the same schema
    object, if it has one (OpenAPI 3.0.3, "nullable"); otherwise it changes nothing. Applied to
    the whole document (a `nullable` key is only ever a schema keyword there)."""
    if isinstance(node, list):
        return [convert_nullable_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: convert_nullable_30(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    return out


def find_key(node, key: str, path: str = "#"):
    """Pointers of every object in `node` that has `key`."""
    if isinstance(node, dict):
        if key in node:
            yield path
        for k, v in node.items():
            yield from find_key(v, key, f"{path}/{escape(str(k))}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from find_key(v, key, f"{path}/{i}")


class Spec:
    def __init__(self, doc: dict, deviations=DEVIATIONS):
        self.source = doc
        version = str(doc.get("openapi", ""))
        if version.startswith("3.1."):
            dialect = doc.get("jsonSchemaDialect", "https://spec.openapis.org/oas/3.1/dialect/base")
            if dialect not in (
                "https://spec.openapis.org/oas/3.1/dialect/base",
                "https://json-schema.org/draft/2020-12/schema",
            ):
                raise SystemExit(f"spec conformance: unsupported jsonSchemaDialect {dialect!r}")
            self.dialect = "OpenAPI 3.1: JSON Schema 2020-12"
            self.validator_class = jsonschema.Draft202012Validator
            specification = DRAFT202012
        elif version.startswith("3.0."):
            self.dialect = "OpenAPI 3.0: nullable converted, JSON Schema draft 4"
            doc = convert_nullable_30(doc)
            self.validator_class = jsonschema.Draft4Validator
            specification = DRAFT4
        else:
            raise SystemExit(f"spec conformance: unsupported OpenAPI version {version!r}")
        self.version = version
        self.doc = copy.deepcopy(doc)
        for item in self.doc.get("paths", {}).values():  # YAML may read `200:` as a number
            for op in item.values():
                if isinstance(op, dict) and isinstance(op.get("responses"), dict):
                    op["responses"] = {str(k): v for k, v in op["responses"].items()}
        self.applied = []
        for dev in deviations:
            node = pointer_get(self.doc, dev.pointer)
            enum = node.get("enum")
            if not isinstance(enum, list):
                raise SystemExit(f"spec conformance: deviation {dev.name!r}: no enum at {dev.pointer}")
            already = [v for v in dev.values if v in enum]
            if already:
                raise SystemExit(
                    f"spec conformance: deviation {dev.name!r}: the spec already allows {already} "
                    f"at {dev.pointer}; drop them from the deviation"
                )
            enum.extend(dev.values)
            self.applied.append(dev)
        self.registry = Registry().with_resource(
            SPEC_URI, Resource.from_contents(self.doc, default_specification=specification)
        )
        # path template -> (regex, number of parameters)
        self.templates = []
        for template in self.doc.get("paths", {}):
            parts = template.strip("/").split("/")
            rx = "/".join("[^/]+" if re.fullmatch(r"\{[^}]+\}", p) else re.escape(p) for p in parts)
            params = sum(1 for p in parts if p.startswith("{"))
            self.templates.append((re.compile("^/" + rx + "$"), params, template))
        self.templates.sort(key=lambda t: t[1])  # literal segments win over parameters
        self._validators = {}

    def match(self, method: str, api_path: str):
        """(template, operation) of the first template matching `api_path` that has `method`,
        or (template, None) if templates match but none has the method, or (None, None)."""
        found = None
        for rx, _, template in self.templates:
            if rx.match(api_path):
                op = self.doc["paths"][template].get(method.lower())
                if op is not None:
                    return template, op
                found = found or template
        return found, None

    def reachable(self, pointer: str) -> list[str]:
        """`pointer` and every schema its `$ref`s lead to, transitively."""
        seen, todo = [], [pointer]
        while todo:
            at = todo.pop()
            if at in seen:
                continue
            seen.append(at)
            todo.extend(local_refs(pointer_get(self.doc, at)))
        return seen

    def validator(self, pointer: str):
        if pointer not in self._validators:
            schema = {"$ref": SPEC_URI + pointer}
            # Every schema a response uses must be unambiguous under this version.
            if self.version.startswith("3.1."):
                for at in self.reachable(pointer):
                    for hit in find_key(pointer_get(self.doc, at), "nullable"):
                        raise SystemExit(
                            f"spec conformance: `nullable` (an OpenAPI 3.0 keyword) in a 3.1 response "
                            f"schema at {at}{hit[1:]}: decide how to read it before validating"
                        )
            self._validators[pointer] = self.validator_class(schema, registry=self.registry)
        return self._validators[pointer]


def local_refs(node):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            yield ref
        for v in node.values():
            yield from local_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from local_refs(v)


def load_spec(path: Path, deviations=DEVIATIONS) -> Spec:
    with open(path, encoding="utf-8") as f:
        return Spec(yaml.safe_load(f), deviations)


# ---------------------------------------------------------------------------------- check


@dataclass
class Outcome:
    kind: str  # validated | out_of_scope | not_in_spec | failed
    label: str  # operationId, or the out-of-scope category
    detail: str = ""
    error_fallback: bool = False


def response_for(op: dict, status: int):
    responses = op.get("responses", {})
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return key, responses[key]
    return None, None


def check_record(spec: Spec, rec: dict) -> Outcome:
    method, path, status = rec["method"].upper(), rec["path"], int(rec["status"])
    if not path.startswith(OPENAI_PREFIX):
        if path.startswith(API_PREFIX + "/"):
            return Outcome("out_of_scope", "keyplane verification (" + path.split("/")[2] + ")")
        return Outcome("out_of_scope", "Keycard dialect")
    api_path = path[len(API_PREFIX):]
    template, op = spec.match(method, api_path)
    if op is None:
        for (m, t), why in NOT_IN_SPEC.items():
            if m == method and spec_template_matches(t, api_path):
                return Outcome("not_in_spec", f"{m} {t}", why)
        where = f"path template {template}" if template else "no path template"
        return Outcome("failed", f"{method} {api_path}", f"no operation in the spec ({where} lacks {method})")
    op_id = op.get("operationId", f"{method} {template}")
    key, response = response_for(op, status)
    fallback = False
    if response is None:
        if status < 400:
            declared = sorted(op.get("responses", {}))
            return Outcome("failed", op_id, f"status {status} is not a response the operation declares ({declared})")
        response, fallback = {"content": {"application/json": {"schema": {"$ref": ERROR_RESPONSE}}}}, True
        pointer = ERROR_RESPONSE
    if "$ref" in response:
        try:
            response = pointer_get(spec.doc, response["$ref"])
        except (KeyError, IndexError):
            missing = response["$ref"]
            return Outcome("failed", op_id, f"status {status}: the spec's response {missing} is not in the extract")
    content = response.get("content") or {}
    media = (rec.get("content_type") or "").split(";")[0].strip().lower()
    if not content:
        if rec.get("body"):
            return Outcome("failed", op_id, f"status {status}: the spec declares no body, got {media or 'one'}")
        return Outcome("validated", op_id, error_fallback=fallback)
    if media not in content:
        return Outcome("failed", op_id, f"status {status}: content type {media!r} is not one of {sorted(content)}")
    if not fallback:
        pointer = (
            f"#/paths/{escape(template)}/{method.lower()}/responses/{escape(key)}"
            if "$ref" not in op["responses"][key]
            else op["responses"][key]["$ref"]
        ) + f"/content/{escape(media)}/schema"
    try:
        body = json.loads(rec.get("body") or "")
    except ValueError:
        return Outcome("failed", op_id, f"status {status}: the body is not JSON")
    errors = sorted(spec.validator(pointer).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for e in errors[:3]:
            lines.append(describe(e))
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return Outcome("failed", op_id, f"status {status}: " + "; ".join(redact(x) for x in lines) + more)
    return Outcome("validated", op_id, error_fallback=fallback)


def leaves(error):
    if not error.context:
        yield error
    for sub in error.context or ():
        yield from leaves(sub)


def describe(error) -> str:
    """Where and why, from the deepest failing subschema (an `anyOf [X, null]` says little)."""
    leaf = max(leaves(error), key=lambda e: (len(e.absolute_path), e.validator != "type"))
    at = "/".join(str(p) for p in leaf.absolute_path) or "(body)"
    schema_at = "/".join(str(p) for p in leaf.absolute_schema_path)
    msg = leaf.message if len(leaf.message) < 200 else leaf.message[:200] + "…"
    return f"{at}: {msg} (schema {schema_at})"


def spec_template_matches(template: str, api_path: str) -> bool:
    parts = template.strip("/").split("/")
    rx = "/".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.fullmatch("/" + rx, api_path) is not None


# ------------------------------------------------------------------------------ self-test

GOOD_PROJECT = {
    "id": "proj_abc",
    "object": "organization.project",
    "name": "p",
    "created_at": 1711471533,
    "archived_at": None,
    "status": "active",
}
GOOD_ERROR = {"error": {"message": "m", "type": "invalid_request_error", "param": None, "code": None}}


def rec(method, path, status, body, content_type="application/json"):
    text = body if isinstance(body, str) else json.dumps(body)
    return {"suite": "self-test", "method": method, "path": path, "query": "", "status": status,
            "content_type": content_type, "body": text}


def without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


def self_test(spec: Spec) -> list[str]:
    """Synthetic records with known verdicts; returns what went wrong (empty: all as expected)."""
    p = "/v1/organization/projects/proj_abc"
    ERR = GOOD_ERROR["error"]
    cases = [
        ("a valid project", rec("GET", p, 200, GOOD_PROJECT), "validated"),
        ("nullable fields null", rec("GET", p, 200, {**GOOD_PROJECT, "name": None, "status": None}), "validated"),
        ("a required field missing", rec("GET", p, 200, without(GOOD_PROJECT, "object")), "failed"),
        ("a wrong type", rec("GET", p, 200, {**GOOD_PROJECT, "created_at": "1711471533"}), "failed"),
        ("a value outside an enum", rec("GET", p, 200, {**GOOD_PROJECT, "object": "project"}), "failed"),
        ("null where not nullable", rec("GET", p, 200, {**GOOD_PROJECT, "created_at": None}), "failed"),
        ("a success status not declared", rec("GET", p, 201, GOOD_PROJECT), "failed"),
        ("an undeclared error status, good envelope", rec("GET", p, 404, GOOD_ERROR), "validated"),
        ("an error envelope without code", rec("GET", p, 404, {"error": without(ERR, "code")}), "failed"),
        ("a declared 400 without param", rec("POST", p, 400, {"error": without(ERR, "param")}), "failed"),
        ("a body that is not JSON", rec("GET", p, 200, "not json"), "failed"),
        ("a media type not declared", rec("GET", p, 200, GOOD_PROJECT, "text/plain"), "failed"),
        ("an /organization path the spec lacks", rec("GET", "/v1/organization/nothing", 200, {}), "failed"),
        ("a method the path lacks", rec("PUT", p, 200, GOOD_PROJECT), "failed"),
        (
            "a list item missing a required field",
            rec("GET", "/v1/organization/projects", 200,
                {"object": "list", "data": [without(GOOD_PROJECT, "id")], "first_id": None, "last_id": None,
                 "has_more": False}),
            "failed",
        ),
        ("Keycard is out of scope", rec("GET", "/organizations/x/service-accounts", 200, {}), "out_of_scope"),
        # Paths the extract lacks, listed in NOT_IN_SPEC by method: counted, not validated...
        (
            "a federation rule retrieve (not in the extract)",
            rec("GET", "/v1/organization/workload_identity_providers/idp_a/federation_rules/fedrule_b", 200, {}),
            "not_in_spec",
        ),
        # ...and only by those methods and path shapes.
        ("a method NOT_IN_SPEC does not list",
         rec("PATCH", "/v1/organization/workload_identity_providers/idp_a", 200, {}), "failed"),
        ("a path below NOT_IN_SPEC's",
         rec("GET", "/v1/organization/workload_identity_providers/idp_a/other", 200, {}), "failed"),
    ]
    for dev in spec.applied:
        # A deviation admits exactly its values: one just outside them is still refused.
        cases += deviation_cases(dev)
    problems = []
    for name, record, expected in cases:
        got = check_record(spec, record)
        if got.kind != expected:
            problems.append(f"{name}: expected {expected}, got {got.kind} {got.detail}")
    # Each deviation is needed: the spec as it is refuses its sample.
    plain = Spec(spec.source, deviations=())
    for dev in spec.applied:
        got = check_record(plain, rec("GET", dev.path, 200, dev.sample))
        if got.kind != "failed":
            problems.append(f"{dev.name}: the spec without the deviation accepts its sample ({got.kind})")
    problems += nullable_30_self_test()
    return problems


def deviation_cases(dev: Deviation):
    """The deviation's sample with each of its values passes; with a value next to them, or
    with the value moved to where the deviation does not apply, it fails."""
    cases = [
        (f"{dev.name}: {v!r}", rec("GET", dev.path, 200, set_at(dev.sample, dev.where, v)), "validated")
        for v in dev.values
    ]
    outside = set_at(dev.sample, dev.where, dev.values[0] + "x")
    cases.append((f"{dev.name}: a value it does not name", rec("GET", dev.path, 200, outside), "failed"))
    return cases


def nullable_30_self_test() -> list[str]:
    """The 3.0 conversion: null only where `nullable` sits beside an explicit `type`."""
    doc = {
        "openapi": "3.0.3",
        "paths": {
            "/organization/x": {
                "get": {
                    "operationId": "x",
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}}
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "X": {
                    "type": "object",
                    "required": ["a", "b", "c"],
                    "properties": {
                        "a": {"type": "string", "nullable": True},
                        "b": {"type": "string", "enum": ["on", "off"], "nullable": True},
                        "c": {"allOf": [{"$ref": "#/components/schemas/S"}], "nullable": True},
                        "d": {"type": "integer"},
                    },
                },
                "S": {"type": "string"},
            }
        },
    }
    spec = Spec(doc, deviations=())
    path = "/v1/organization/x"
    cases = [
        ({"a": None, "b": "on", "c": "s"}, "validated"),  # nullable + type: null allowed
        ({"a": "s", "b": None, "c": "s"}, "failed"),  # 3.0.3: an enum without null refuses it
        ({"a": "s", "b": "on", "c": None}, "failed"),  # no type beside nullable: no null
        ({"a": "s", "b": "on", "c": "s", "d": None}, "failed"),  # not nullable
        ({"a": 1, "b": "on", "c": "s"}, "failed"),  # nullable does not loosen the type
    ]
    problems = []
    for body, expected in cases:
        got = check_record(spec, rec("GET", path, 200, body))
        if got.kind != expected:
            problems.append(f"OpenAPI 3.0 nullable {body}: expected {expected}, got {got.kind} {got.detail}")
    return problems


# ----------------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True, type=Path)
    ap.add_argument("--self-test-only", action="store_true")
    ap.add_argument("records", nargs="*", type=Path)
    args = ap.parse_args()

    spec = load_spec(args.spec)
    problems = self_test(spec)
    if problems:
        for p in problems:
            print(f"spec conformance: SELF-TEST FAIL: {p}", file=sys.stderr)
        return 1
    print(f"spec conformance: self-test passed ({spec.dialect}, OpenAPI {spec.version})")
    if args.self_test_only:
        return 0

    records = []
    for path in args.records:
        if not path.exists():
            print(f"spec conformance: FAIL: no records file {path}", file=sys.stderr)
            return 1
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    print(f"spec conformance: FAIL: {path}:{n} is not JSON", file=sys.stderr)
                    return 1

    per_op = defaultdict(Counter)  # op -> Counter of (suite, status)
    out_of_scope = Counter()
    not_in_spec = Counter()
    fallback = Counter()
    validated_by_suite = Counter()
    errors_validated = 0
    failures = []
    deviation_hits = Counter()
    for r in records:
        o = check_record(spec, r)
        if o.kind == "validated":
            for dev in spec.applied:
                if o.label == dev.operation and int(r["status"]) < 300:
                    body = json.loads(r["body"])
                    deviation_hits[dev.name] += sum(1 for v in values_at(body, dev.where) if v in dev.values)
            per_op[o.label][(r["suite"], int(r["status"]))] += 1
            validated_by_suite[r["suite"]] += 1
            errors_validated += int(r["status"]) >= 400
            if o.error_fallback:
                fallback[o.label] += 1
        elif o.kind == "out_of_scope":
            out_of_scope[o.label] += 1
        elif o.kind == "not_in_spec":
            not_in_spec[o.label] += 1
        else:
            failures.append((r, o))

    print(f"spec conformance: {len(records)} responses recorded; validated against the spec, per operation:")
    print(f"  {'operation':<36} {'python':>6} {'node':>6}  statuses")
    for op_id in sorted(per_op):
        c = per_op[op_id]
        by_suite = Counter()
        statuses = Counter()
        for (suite, status), n in c.items():
            by_suite[suite] += n
            statuses[status] += n
        st = ", ".join(f"{s}×{n}" for s, n in sorted(statuses.items()))
        print(f"  {op_id:<36} {by_suite['python']:>6} {by_suite['node']:>6}  {st}")
    total = sum(validated_by_suite.values())
    print(f"  {'total':<36} {validated_by_suite['python']:>6} {validated_by_suite['node']:>6}  "
          f"({total} records, {errors_validated} of them errors, {len(per_op)} operations)")
    if fallback:
        print("  errors with a status their operation does not declare, checked against "
              f"{ERROR_RESPONSE}: " + ", ".join(f"{k}×{n}" for k, n in sorted(fallback.items())))
    for dev in spec.applied:
        print(f"  deviation kept on purpose, seen {deviation_hits[dev.name]} times: {dev.name} "
              f"({dev.pointer} also takes {', '.join(dev.values)})")
    for label, n in sorted(not_in_spec.items()):
        print(f"  not in the spec, not validated: {label}: {n} ({NOT_IN_SPEC[tuple(label.split(' ', 1))]})")
    for label, n in sorted(out_of_scope.items()):
        print(f"  out of scope (not an OpenAI operation): {label}: {n}")

    failed = False
    if failures:
        failed = True
        print(f"spec conformance: FAIL: {len(failures)} responses do not conform:", file=sys.stderr)
        for r, o in failures[:40]:
            print(f"  [{r['suite']}] {r['method']} {r['path']} -> {o.label}: {o.detail}", file=sys.stderr)
        if len(failures) > 40:
            print(f"  … and {len(failures) - 40} more", file=sys.stderr)
    missing = sorted(EXPECTED_OPERATIONS - set(per_op))
    if missing:
        failed = True
        print(f"spec conformance: FAIL: operations never validated: {', '.join(missing)}", file=sys.stderr)
    for suite, minimum in MIN_RECORDS.items():
        if validated_by_suite[suite] < minimum:
            failed = True
            print(f"spec conformance: FAIL: only {validated_by_suite[suite]} records validated from the "
                  f"{suite} suite (at least {minimum} expected)", file=sys.stderr)
    if errors_validated < MIN_ERROR_RECORDS:
        failed = True
        print(f"spec conformance: FAIL: only {errors_validated} error responses validated "
              f"(at least {MIN_ERROR_RECORDS} expected)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
