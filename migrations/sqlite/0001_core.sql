-- Core schema: organizations, projects, service accounts, API keys.
-- Timestamps are Unix milliseconds. `seq` gives every table a creation order for keyset
-- pagination; AUTOINCREMENT guarantees it is never reused.

CREATE TABLE organizations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    label       TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE projects (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    organization_id TEXT    NOT NULL REFERENCES organizations (id),
    name            TEXT    NOT NULL,
    external_key_id TEXT,
    is_default      INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at      INTEGER NOT NULL,
    archived_at     INTEGER,
    CHECK (NOT (is_default = 1 AND archived_at IS NOT NULL))
);
CREATE INDEX projects_by_org ON projects (organization_id, seq);
CREATE UNIQUE INDEX projects_one_default_per_org ON projects (organization_id) WHERE is_default = 1;

-- Deleted accounts are kept (deleted_at) so their keys can say "revoked" and old cursors resolve.
CREATE TABLE service_accounts (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    organization_id TEXT    NOT NULL REFERENCES organizations (id),
    project_id      TEXT    REFERENCES projects (id),
    name            TEXT    NOT NULL,
    description     TEXT,
    role            TEXT    NOT NULL CHECK (role IN ('owner', 'member', 'none')),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);
CREATE INDEX service_accounts_by_project ON service_accounts (project_id, seq) WHERE deleted_at IS NULL;
CREATE INDEX service_accounts_by_org ON service_accounts (organization_id, seq) WHERE deleted_at IS NULL;

CREATE TABLE api_keys (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT    NOT NULL UNIQUE,
    organization_id    TEXT    NOT NULL REFERENCES organizations (id),
    kind               TEXT    NOT NULL CHECK (kind IN ('admin', 'service_account')),
    project_id         TEXT    REFERENCES projects (id),
    service_account_id TEXT    REFERENCES service_accounts (id),
    name               TEXT    NOT NULL,
    scopes             TEXT    NOT NULL DEFAULT '[]',
    key_hash           BLOB    NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    redacted_value     TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER,
    last_used_at       INTEGER,
    revoked_at         INTEGER,
    CHECK ((kind = 'admin') = (service_account_id IS NULL))
);
CREATE INDEX api_keys_by_service_account ON api_keys (service_account_id, seq);
CREATE INDEX api_keys_by_project ON api_keys (project_id, seq);
CREATE INDEX api_keys_by_org_kind ON api_keys (organization_id, kind, seq);
