-- Keycard dialect: client credentials of service accounts, and the keys and secrets that sign
-- access tokens. Same version as migrations/sqlite/0002_keycard.sql.

-- Deleted credentials are kept (deleted_at) so old cursors still resolve.
CREATE TABLE credentials (
    seq                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 text        NOT NULL UNIQUE,
    organization_id    text        NOT NULL REFERENCES organizations (id),
    service_account_id text        NOT NULL REFERENCES service_accounts (id),
    -- Unique across the server: the token endpoint finds a credential by it alone.
    client_id          text        NOT NULL UNIQUE,
    secret_hash        bytea       NOT NULL CHECK (octet_length(secret_hash) = 32),
    name               text        NOT NULL,
    description        text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    last_used_at       timestamptz,
    deleted_at         timestamptz
);
CREATE INDEX credentials_by_service_account ON credentials (service_account_id, seq) WHERE deleted_at IS NULL;

-- Shared by every node; retired keys stay until the tokens they signed have expired.
CREATE TABLE signing_keys (
    kid         text        PRIMARY KEY,
    algorithm   text        NOT NULL,
    private_key bytea       NOT NULL,
    public_key  bytea       NOT NULL,
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz
);

CREATE TABLE server_secrets (
    name        text        PRIMARY KEY,
    value       bytea       NOT NULL,
    created_at  timestamptz NOT NULL
);
