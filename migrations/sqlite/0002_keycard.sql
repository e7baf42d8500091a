-- Keycard dialect: client credentials of service accounts, and the keys and secrets that sign
-- access tokens. Same version as migrations/postgres/0002_keycard.sql.

-- Deleted credentials are kept (deleted_at) so old cursors still resolve.
CREATE TABLE credentials (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT    NOT NULL UNIQUE,
    organization_id    TEXT    NOT NULL REFERENCES organizations (id),
    service_account_id TEXT    NOT NULL REFERENCES service_accounts (id),
    -- Unique across the server: the token endpoint finds a credential by it alone.
    client_id          TEXT    NOT NULL UNIQUE,
    secret_hash        BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    name               TEXT    NOT NULL,
    description        TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    last_used_at       INTEGER,
    deleted_at         INTEGER
);
CREATE INDEX credentials_by_service_account ON credentials (service_account_id, seq) WHERE deleted_at IS NULL;

-- Shared by every node; retired keys stay until the tokens they signed have expired.
CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY NOT NULL,
    algorithm   TEXT    NOT NULL,
    private_key BLOB    NOT NULL,
    public_key  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);

CREATE TABLE server_secrets (
    name        TEXT    PRIMARY KEY NOT NULL,
    value       BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);
