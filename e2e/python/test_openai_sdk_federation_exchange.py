"""Workload identity federation end to end: the official `openai` Python SDK's own token exchange
(`OpenAI(workload_identity=...)`) against keyplane's `POST /oauth/token`.

The test is a local OIDC issuer shaped like a Kubernetes cluster: it holds an RSA and an EC
P-256 key, uploads their public JWKS to a provider through the SDK's admin resources, maps the
`prod/deployer` service account's tokens to a project service account with a federation rule,
and mints projected service-account tokens. The SDK client is built exactly as the SDK documents
it for Kubernetes (`k8s_service_account_token_provider(<token file>)`); the only change is the
exchange URL, which the SDK fixes to https://auth.openai.com/oauth/token and offers no setting
for: the client's private `_workload_identity_auth` is replaced by the public
`openai.auth.WorkloadIdentityAuth` with keyplane's `token_exchange_url`
(e2e/WORKLOAD-IDENTITY-WIRE.md, section c). The exchange itself then runs in the SDK's code, on
its own HTTP client.

Every test has its own provider and rule (the `world` fixture), deleted afterwards rule first:
other tests count providers. The file sorts before test_openai_sdk_keys.py, which revokes the
suite's admin keys at its end. Subject tokens are recorded as secrets (KEYPLANE_E2E_SECRETS_FILE),
so run.sh also proves the server never logs them; the access tokens are recorded by conftest's
recorder (the SDK's exchange client is an httpx2.Client too).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import jwt
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from openai import OpenAI
from openai.auth import WorkloadIdentityAuth, k8s_service_account_token_provider

from conftest import PROJECT_ID_RE, SVC_ACCT_ID_RE, record_secret, unique_name

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUDIENCE = "keyplane-e2e"
NAMESPACE = "prod"
K8S_SA = "deployer"
SUBJECT = f"system:serviceaccount:{NAMESPACE}:{K8S_SA}"
MATCHERS = {"kubernetes.io.namespace": NAMESPACE, "sub": SUBJECT}

PROVIDER_ID_RE = re.compile(r"^idp_[0-9a-z]{26}$")
RULE_ID_RE = re.compile(r"^fedrule_[0-9a-z]{26}$")
INVALID_GRANT = {"error": "invalid_grant", "error_description": "The subject token was not accepted."}
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


# ------------------------------------------------------------------------------ the issuer


def b64url_uint(n: int, length: int | None = None) -> str:
    raw = n.to_bytes(length if length is not None else (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass
class Issuer:
    """A Kubernetes-shaped OIDC issuer: an RS256 and an ES256 signing key and their public JWKS."""

    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    rsa_kid: str
    ec_kid: str

    @property
    def jwks(self) -> dict:
        rsa_pub = self.rsa_key.public_key().public_numbers()
        ec_pub = self.ec_key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": self.rsa_kid,
                    "alg": "RS256",
                    "use": "sig",
                    "n": b64url_uint(rsa_pub.n),
                    "e": b64url_uint(rsa_pub.e),
                },
                {
                    "kty": "EC",
                    "kid": self.ec_kid,
                    "alg": "ES256",
                    "use": "sig",
                    "crv": "P-256",
                    "x": b64url_uint(ec_pub.x, 32),
                    "y": b64url_uint(ec_pub.y, 32),
                },
            ]
        }

    def token(self, *, alg: str = "RS256", **overrides) -> str:
        """A projected service-account token, as the kubelet mounts it (overrides replace claims)."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": [AUDIENCE],
            "sub": SUBJECT,
            "kubernetes.io": {
                "namespace": NAMESPACE,
                "pod": {"name": "deployer-7d9c5b6f4-x2k8q", "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": K8S_SA, "uid": str(uuid.uuid4())},
            },
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        key, kid = (self.rsa_key, self.rsa_kid) if alg == "RS256" else (self.ec_key, self.ec_kid)
        assert alg in ("RS256", "ES256"), alg
        token = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})
        record_secret(token)  # a subject token must never reach the server's log either
        return token


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer(
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
        rsa_kid=f"rsa-{uuid.uuid4().hex[:12]}",
        ec_kid=f"ec-{uuid.uuid4().hex[:12]}",
    )


# ------------------------------------------------------------------------------ keyplane side


@dataclass
class World:
    project_id: str
    service_account_id: str
    provider_id: str
    rule_id: str


@pytest.fixture(scope="module")
def account(org):
    """A project and a service account in it (no key: the account is reached by federation)."""
    project = org.projects.create(name=unique_name("wif-exchange"))
    sa = org.projects.service_accounts.create(project.id, name="k8s deployer", create_service_account_only=True)
    assert PROJECT_ID_RE.match(project.id) and SVC_ACCT_ID_RE.match(sa.id)
    return project.id, sa.id


@pytest.fixture
def world(org, account, issuer):
    """A provider trusting the issuer's uploaded JWKS and a rule mapping `prod/deployer` to the
    account, made through the SDK's admin resources; deleted afterwards, the rule first."""
    project_id, sa_id = account
    wip = org.workload_identity_providers
    provider = wip.create(
        name=unique_name("wif-k8s"),
        type="oidc",
        issuer=ISSUER,
        audience=AUDIENCE,
        verification={"type": "uploaded_jwks", "jwks": issuer.jwks},
    )
    assert PROVIDER_ID_RE.match(provider.id), provider.id
    assert provider.verification.type == "uploaded_jwks" and provider.verification.jwks == issuer.jwks
    rule = None
    try:
        rule = wip.federation_rules.create(
            provider.id,
            project_id=project_id,
            service_account_id=sa_id,
            attribute_matchers=MATCHERS,
            name="prod deployer",
        )
        assert RULE_ID_RE.match(rule.id), rule.id
        assert rule.enabled is True and rule.attribute_matchers == MATCHERS
        yield World(project_id=project_id, service_account_id=sa_id, provider_id=provider.id, rule_id=rule.id)
    finally:
        if rule is not None:
            gone = wip.federation_rules.delete(rule.id, workload_identity_provider_id=provider.id)
            assert gone.deleted is True and gone.id == rule.id
        gone = wip.delete(provider.id)
        assert gone.deleted is True and gone.id == provider.id


# ------------------------------------------------------------------------------ the SDK client


class WorkloadClient:
    """`OpenAI(workload_identity=...)` as the SDK documents it for Kubernetes, with the exchange
    pointed at keyplane; `authorizations` holds the Authorization header of every API request
    the client sent (a request event hook on its own HTTP client)."""

    def __init__(self, server, world: World, token_file: Path):
        self.authorizations: list[str | None] = []
        self.client = OpenAI(
            base_url=server.base_url,
            workload_identity={
                "identity_provider_id": world.provider_id,
                "service_account_id": world.service_account_id,
                "provider": k8s_service_account_token_provider(token_file),
            },
            max_retries=0,
            timeout=15,
            http_client=openai.DefaultHttpxClient(event_hooks={"request": [self._capture]}),
        )
        # The SDK always exchanges at https://auth.openai.com/oauth/token. Its public
        # WorkloadIdentityAuth takes the URL; the client's private attribute holds one built with
        # the default. Same identity dict, keyplane's URL.
        assert isinstance(self.client._workload_identity_auth, WorkloadIdentityAuth)
        assert self.client._workload_identity_auth.token_exchange_url == "https://auth.openai.com/oauth/token"
        self.client._workload_identity_auth = WorkloadIdentityAuth(
            workload_identity=self.client.workload_identity,
            token_exchange_url=server.root_url + "/oauth/token",
        )

    def _capture(self, request) -> None:
        self.authorizations.append(request.headers.get("authorization"))

    @property
    def auth(self) -> WorkloadIdentityAuth:
        return self.client._workload_identity_auth

    def check(self) -> httpx2.Response:
        """GET /v1/auth/check through the SDK: its bearer auth sends the placeholder key, which
        the SDK swaps for an exchanged access token (exchanging first when it has none)."""
        return self.client.get("/auth/check", cast_to=httpx2.Response)


def write_token(path: Path, token: str) -> Path:
    # As the kubelet writes it (the SDK strips the trailing newline).
    path.write_text(token + "\n")
    return path


def bearer(authorization: str | None) -> str:
    assert authorization is not None and authorization.startswith("Bearer "), authorization
    return authorization[len("Bearer "):]


def auth_check(server, token: str) -> httpx.Response:
    return httpx.get(server.base_url + "/auth/check", headers={"Authorization": f"Bearer {token}"}, timeout=15)


def assert_identity(response: httpx.Response, world: World) -> None:
    assert response.status_code == 204, (response.status_code, response.text)
    assert response.headers["x-keyplane-service-account"] == world.service_account_id
    assert response.headers["x-keyplane-project"] == world.project_id
    assert response.headers["x-keyplane-federation-rule"] == world.rule_id
    # A token from an exchange names a rule, not a key or a client credential.
    assert "x-keyplane-key-id" not in response.headers
    assert "x-keyplane-credential-id" not in response.headers


def assert_invalid_grant(e: openai.OAuthError) -> None:
    assert e.error == "invalid_grant", (e.error, e.body)
    assert e.status_code == 400 and e.response.status_code == 400
    assert e.body == INVALID_GRANT, e.body
    assert e.message == INVALID_GRANT["error_description"]
    # The refused request was the SDK's exchange, at keyplane's URL.
    assert e.request.method == "POST" and e.request.url.path == "/oauth/token"


def exchange_directly(server, world: World, subject_token: str) -> httpx.Response:
    return httpx.post(
        server.root_url + "/oauth/token",
        json={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "identity_provider_id": world.provider_id,
            "service_account_id": world.service_account_id,
        },
        timeout=15,
    )


# ------------------------------------------------------------------------------ tests


def test_sdk_exchanges_a_k8s_rs256_token(server, world, issuer, tmp_path):
    subject = issuer.token()
    wc = WorkloadClient(server, world, write_token(tmp_path / "token", subject))

    # Nothing is exchanged until a request needs the bearer token.
    assert wc.auth._cached_token is None

    # A request through the client: the SDK reads the token file, exchanges at keyplane, and
    # sends the access token it got. keyplane's check accepts it (204, through the SDK too).
    via_sdk = wc.check()
    assert via_sdk.status_code == 204, via_sdk.text
    (authorization,) = wc.authorizations
    access_token = bearer(authorization)
    assert access_token != "workload-identity-auth", "the SDK's placeholder went out unexchanged"
    assert access_token == wc.auth._cached_token
    assert access_token.count(".") == 2, "keyplane's access tokens are JWTs"
    record_secret(access_token)
    assert via_sdk.headers["x-keyplane-federation-rule"] == world.rule_id

    # The token the SDK obtained, checked independently of the SDK.
    assert_identity(auth_check(server, access_token), world)

    # keyplane's access token is its own EdDSA JWT, naming the rule and never outliving the
    # subject token.
    header = jwt.get_unverified_header(access_token)
    assert header["alg"] == "EdDSA", header
    claims = jwt.decode(access_token, options={"verify_signature": False})
    subject_exp = jwt.decode(subject, options={"verify_signature": False})["exp"]
    assert claims["exp"] <= subject_exp, (claims, subject_exp)

    # The SDK caches the token: a second request exchanges nothing and sends the same one.
    assert wc.check().status_code == 204
    assert [bearer(a) for a in wc.authorizations] == [access_token, access_token]

    # The SDK's bearer-token method (what the request above called) returns the cached token.
    assert wc.auth.get_token() == access_token

    # What the SDK read of keyplane's answer: a positive expires_in, no longer than the subject
    # token's remaining life (the exchange's own response, asked for once more outside the SDK).
    direct = exchange_directly(server, world, subject)
    assert direct.status_code == 200, direct.text
    body = direct.json()
    record_secret(body["access_token"])
    assert body["token_type"] == "Bearer" and body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert 0 < body["expires_in"] <= 600, body


def test_sdk_exchanges_an_es256_token(server, world, issuer, tmp_path):
    subject = issuer.token(alg="ES256")
    assert jwt.get_unverified_header(subject)["kid"] == issuer.ec_kid
    wc = WorkloadClient(server, world, write_token(tmp_path / "token", subject))

    access_token = wc.auth.get_token()  # the SDK's own exchange, called directly
    record_secret(access_token)
    assert_identity(auth_check(server, access_token), world)

    assert wc.check().status_code == 204
    assert [bearer(a) for a in wc.authorizations] == [access_token]


def test_sdk_exchange_refuses_a_token_for_another_audience(server, world, issuer, tmp_path):
    wrong = issuer.token(aud=["someone-else"])
    wc = WorkloadClient(server, world, write_token(tmp_path / "token", wrong))

    with pytest.raises(openai.OAuthError) as e:
        wc.auth.get_token()
    assert_invalid_grant(e.value)
    assert wc.auth._cached_token is None

    # Through a request the same: the exchange fails, so no API request goes out at all.
    with pytest.raises(openai.OAuthError) as e:
        wc.check()
    assert_invalid_grant(e.value)
    assert wc.authorizations == []

    # The kubelet rotates the file: the SDK re-reads it on its next exchange, and that one works.
    write_token(tmp_path / "token", issuer.token())
    assert wc.check().status_code == 204
    (authorization,) = wc.authorizations
    record_secret(bearer(authorization))
    assert_identity(auth_check(server, bearer(authorization)), world)


def test_disabling_the_rule_stops_the_token_and_the_exchange(org, server, world, issuer, tmp_path):
    rules = org.workload_identity_providers.federation_rules
    subject = issuer.token()
    token_file = write_token(tmp_path / "token", subject)
    wc = WorkloadClient(server, world, token_file)
    access_token = wc.auth.get_token()
    record_secret(access_token)
    assert_identity(auth_check(server, access_token), world)

    disabled = rules.update(world.rule_id, workload_identity_provider_id=world.provider_id, enabled=False)
    assert disabled.enabled is False and disabled.attribute_matchers == MATCHERS

    # The token already issued stops at once.
    refused = auth_check(server, access_token)
    assert refused.status_code == 401, (refused.status_code, refused.text)
    assert refused.json()["error"]["code"] == "invalid_token", refused.text
    assert access_token not in refused.text

    # The same subject token exchanges for nothing new, in a fresh client...
    fresh = WorkloadClient(server, world, token_file)
    with pytest.raises(openai.OAuthError) as e:
        fresh.auth.get_token()
    assert_invalid_grant(e.value)

    # ...nor in the client holding the stopped token: its request gets 401, on which the SDK
    # drops the cached token and exchanges again, once; that exchange is refused and raised.
    with pytest.raises(openai.OAuthError) as e:
        wc.check()
    assert_invalid_grant(e.value)
    assert [bearer(a) for a in wc.authorizations] == [access_token]
    assert wc.auth._cached_token is None

    # Enabled again, the same subject token works again (through the SDK's retry-free path).
    rules.update(world.rule_id, workload_identity_provider_id=world.provider_id, enabled=True)
    assert wc.check().status_code == 204
    renewed = bearer(wc.authorizations[-1])
    record_secret(renewed)
    assert renewed != access_token
    assert_identity(auth_check(server, renewed), world)
