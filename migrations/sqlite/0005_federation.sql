-- Workload identity federation: the OIDC issuers an organization trusts (providers) and the
-- rules that map their tokens to project service accounts. Same version as
-- migrations/postgres/0005_federation.sql.
--
-- Structured fields are JSON text: attribute_transformations `[{"attribute", "expression"}]`,
-- verification `{"type": "discovery", "discovery_url"}` or `{"type": "uploaded_jwks", "jwks"}`,
-- attribute_matchers `{"claim": scalar}`, permissions `{"type": …, "scopes"?}`. Deleted rows
-- are kept (deleted_at) so old cursors still resolve, as for credentials.

CREATE TABLE workload_identity_providers (
    seq                       INTEGER PRIMARY KEY AUTOINCREMENT,
    id                        TEXT    NOT NULL UNIQUE,
    organization_id           TEXT    NOT NULL REFERENCES organizations (id),
    name                      TEXT    NOT NULL,
    description               TEXT,
    issuer                    TEXT    NOT NULL,
    audience                  TEXT    NOT NULL,
    enabled                   INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    attribute_transformations TEXT    NOT NULL CHECK (json_valid(attribute_transformations)),
    verification              TEXT    NOT NULL CHECK (json_valid(verification)),
    created_at                INTEGER NOT NULL,
    updated_at                INTEGER NOT NULL,
    deleted_at                INTEGER
);
CREATE INDEX workload_identity_providers_by_organization
    ON workload_identity_providers (organization_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE federation_rules (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT    NOT NULL UNIQUE,
    organization_id    TEXT    NOT NULL REFERENCES organizations (id),
    provider_id        TEXT    NOT NULL REFERENCES workload_identity_providers (id),
    project_id         TEXT    NOT NULL REFERENCES projects (id),
    service_account_id TEXT    NOT NULL REFERENCES service_accounts (id),
    name               TEXT,
    description        TEXT,
    enabled            INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    attribute_matchers TEXT    NOT NULL CHECK (json_valid(attribute_matchers)),
    permissions        TEXT    NOT NULL CHECK (json_valid(permissions)),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    deleted_at         INTEGER
);
CREATE INDEX federation_rules_by_provider
    ON federation_rules (provider_id, seq) WHERE deleted_at IS NULL;

-- Keycard credentials of workload identity federation: no secret (secret_hash is of random
-- bytes), a provider and the subject its tokens must carry; both or neither.
ALTER TABLE credentials ADD COLUMN provider_id TEXT REFERENCES workload_identity_providers (id);
ALTER TABLE credentials ADD COLUMN subject TEXT
    CHECK ((provider_id IS NULL) = (subject IS NULL));
