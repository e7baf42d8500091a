-- Core schema: organizations, projects, service accounts, API keys.
-- Same version as migrations/sqlite/0001_core.sql; native types here: timestamptz, bytea,
-- text[]. `seq` gives every table a creation order for keyset pagination.

-- The store speaks Unix milliseconds; these convert exactly at the SQL boundary.
CREATE FUNCTION kp_ms(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (EXTRACT(EPOCH FROM t) * 1000)::bigint $$;
CREATE FUNCTION kp_ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT TIMESTAMPTZ 'epoch' + ms * INTERVAL '1 millisecond' $$;

CREATE TABLE organizations (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text        NOT NULL UNIQUE,
    label       text        NOT NULL UNIQUE,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE projects (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL UNIQUE,
    organization_id text        NOT NULL REFERENCES organizations (id),
    name            text        NOT NULL,
    external_key_id text,
    is_default      boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    archived_at     timestamptz,
    CHECK (NOT (is_default AND archived_at IS NOT NULL))
);
CREATE INDEX projects_by_org ON projects (organization_id, seq);
CREATE UNIQUE INDEX projects_one_default_per_org ON projects (organization_id) WHERE is_default;

-- Deleted accounts are kept (deleted_at) so their keys can say "revoked" and old cursors resolve.
CREATE TABLE service_accounts (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL UNIQUE,
    organization_id text        NOT NULL REFERENCES organizations (id),
    project_id      text        REFERENCES projects (id),
    name            text        NOT NULL,
    description     text,
    role            text        NOT NULL CHECK (role IN ('owner', 'member', 'none')),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz
);
CREATE INDEX service_accounts_by_project ON service_accounts (project_id, seq) WHERE deleted_at IS NULL;
CREATE INDEX service_accounts_by_org ON service_accounts (organization_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE api_keys (
    seq                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 text        NOT NULL UNIQUE,
    organization_id    text        NOT NULL REFERENCES organizations (id),
    kind               text        NOT NULL CHECK (kind IN ('admin', 'service_account')),
    project_id         text        REFERENCES projects (id),
    service_account_id text        REFERENCES service_accounts (id),
    name               text        NOT NULL,
    scopes             text[]      NOT NULL DEFAULT '{}',
    key_hash           bytea       NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    redacted_value     text        NOT NULL,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz,
    last_used_at       timestamptz,
    revoked_at         timestamptz,
    CHECK ((kind = 'admin') = (service_account_id IS NULL))
);
CREATE INDEX api_keys_by_service_account ON api_keys (service_account_id, seq);
CREATE INDEX api_keys_by_project ON api_keys (project_id, seq);
CREATE INDEX api_keys_by_org_kind ON api_keys (organization_id, kind, seq);
