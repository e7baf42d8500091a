-- Workload identity federation: the OIDC issuers an organization trusts (providers) and the
-- rules that map their tokens to project service accounts. Same version as
-- migrations/sqlite/0005_federation.sql.
--
-- Structured fields are JSON text (not jsonb: stored and read back as written, like SQLite's):
-- attribute_transformations `[{"attribute", "expression"}]`, verification
-- `{"type": "discovery", "discovery_url"}` or `{"type": "uploaded_jwks", "jwks"}`,
-- attribute_matchers `{"claim": scalar}`, permissions `{"type": …, "scopes"?}`. Deleted rows
-- are kept (deleted_at) so old cursors still resolve, as for credentials.

CREATE TABLE workload_identity_providers (
    seq                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                        text        NOT NULL UNIQUE,
    organization_id           text        NOT NULL REFERENCES organizations (id),
    name                      text        NOT NULL,
    description               text,
    issuer                    text        NOT NULL,
    audience                  text        NOT NULL,
    enabled                   boolean     NOT NULL,
    attribute_transformations text        NOT NULL CHECK (attribute_transformations::json IS NOT NULL),
    verification              text        NOT NULL CHECK (verification::json IS NOT NULL),
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    deleted_at                timestamptz
);
CREATE INDEX workload_identity_providers_by_organization
    ON workload_identity_providers (organization_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE federation_rules (
    seq                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 text        NOT NULL UNIQUE,
    organization_id    text        NOT NULL REFERENCES organizations (id),
    provider_id        text        NOT NULL REFERENCES workload_identity_providers (id),
    project_id         text        NOT NULL REFERENCES projects (id),
    service_account_id text        NOT NULL REFERENCES service_accounts (id),
    name               text,
    description        text,
    enabled            boolean     NOT NULL,
    attribute_matchers text        NOT NULL CHECK (attribute_matchers::json IS NOT NULL),
    permissions        text        NOT NULL CHECK (permissions::json IS NOT NULL),
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    deleted_at         timestamptz
);
CREATE INDEX federation_rules_by_provider
    ON federation_rules (provider_id, seq) WHERE deleted_at IS NULL;

-- Keycard credentials of workload identity federation: no secret (secret_hash is of random
-- bytes), a provider and the subject its tokens must carry; both or neither.
ALTER TABLE credentials
    ADD COLUMN provider_id text REFERENCES workload_identity_providers (id),
    ADD COLUMN subject text,
    ADD CONSTRAINT credentials_federation_whole CHECK ((provider_id IS NULL) = (subject IS NULL));
