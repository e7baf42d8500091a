-- Console sessions: an admin key exchanged for an opaque token held in an HttpOnly cookie.
-- Only the token's SHA-256 is stored, with the admin key's own stored hash so every use
-- re-checks that key. Same version as migrations/sqlite/0006_console_sessions.sql.
-- Not exported: an import signs everyone out.

CREATE TABLE console_sessions (
    session_hash    bytea  PRIMARY KEY CHECK (octet_length(session_hash) = 32),
    organization_id text   NOT NULL REFERENCES organizations (id),
    admin_key_id    text   NOT NULL REFERENCES api_keys (id),
    key_hash        bytea  NOT NULL CHECK (octet_length(key_hash) = 32),
    -- Milliseconds since the epoch, as the service hands them: never shown as times.
    created_at      bigint NOT NULL,
    last_seen_at    bigint NOT NULL,
    expires_at      bigint NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
