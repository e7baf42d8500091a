-- Audit log: one row per change, written in the same transaction as the change itself.
-- Same version as migrations/postgres/0003_audit.sql.
--
-- `organization_id` is NULL for installation-wide events (signing-key rotation): every
-- organization's log shows them. IDs of the resource and the actor are stored as the OpenAI
-- dialect renders them (`svc_acct_…`, `key_…`), which is how clients filter on them.
-- The webhook columns are the delivery outbox: a pending row is retried until delivered.

CREATE TABLE audit_events (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT    NOT NULL UNIQUE,
    organization_id      TEXT    REFERENCES organizations (id),
    event_type           TEXT    NOT NULL,
    effective_at         INTEGER NOT NULL,
    project_id           TEXT,
    resource_id          TEXT    NOT NULL,
    actor_type           TEXT    NOT NULL CHECK (actor_type IN ('admin_key', 'service_account', 'system')),
    actor_id             TEXT,
    request_id           TEXT,
    client_request_id    TEXT,
    ip_address           TEXT,
    details              TEXT    NOT NULL,
    webhook_pending      INTEGER NOT NULL DEFAULT 0 CHECK (webhook_pending IN (0, 1)),
    webhook_attempts     INTEGER NOT NULL DEFAULT 0,
    webhook_next_at      INTEGER,
    webhook_error        TEXT,
    webhook_delivered_at INTEGER
);
CREATE INDEX audit_events_by_org ON audit_events (organization_id, seq);
CREATE INDEX audit_events_undelivered ON audit_events (webhook_next_at) WHERE webhook_pending = 1;
