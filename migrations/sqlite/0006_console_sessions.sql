-- Console sessions: an admin key exchanged for an opaque token held in an HttpOnly cookie.
-- Only the token's SHA-256 is stored, with the admin key's own stored hash so every use
-- re-checks that key. Same version as migrations/postgres/0006_console_sessions.sql.
-- Not exported: an import signs everyone out.

CREATE TABLE console_sessions (
    session_hash    BLOB    PRIMARY KEY CHECK (length(session_hash) = 32),
    organization_id TEXT    NOT NULL REFERENCES organizations (id),
    admin_key_id    TEXT    NOT NULL REFERENCES api_keys (id),
    key_hash        BLOB    NOT NULL CHECK (length(key_hash) = 32),
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
