-- Audit log: one row per change, written in the same transaction as the change itself.
-- Same version as migrations/sqlite/0003_audit.sql (which explains the columns).

CREATE TABLE audit_events (
    seq                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   text        NOT NULL UNIQUE,
    organization_id      text        REFERENCES organizations (id),
    event_type           text        NOT NULL,
    effective_at         timestamptz NOT NULL,
    project_id           text,
    resource_id          text        NOT NULL,
    actor_type           text        NOT NULL CHECK (actor_type IN ('admin_key', 'service_account', 'system')),
    actor_id             text,
    request_id           text,
    client_request_id    text,
    ip_address           text,
    details              jsonb       NOT NULL,
    webhook_pending      boolean     NOT NULL DEFAULT false,
    webhook_attempts     integer     NOT NULL DEFAULT 0,
    webhook_next_at      timestamptz,
    webhook_error        text,
    webhook_delivered_at timestamptz
);
CREATE INDEX audit_events_by_org ON audit_events (organization_id, seq);
CREATE INDEX audit_events_undelivered ON audit_events (webhook_next_at) WHERE webhook_pending;
