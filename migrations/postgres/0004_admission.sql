-- Admission: address allowlists, keyplane's own key limits, disabled keys, per-project rate
-- limit overrides, and the counters nodes share. Same version as
-- migrations/sqlite/0004_admission.sql (which explains the columns).

ALTER TABLE projects ADD COLUMN allowed_ips text;

ALTER TABLE api_keys
    ADD COLUMN allowed_ips               text,
    ADD COLUMN max_requests_per_1_minute bigint CHECK (max_requests_per_1_minute >= 0),
    ADD COLUMN max_requests_per_1_day    bigint CHECK (max_requests_per_1_day >= 0),
    ADD COLUMN max_tokens_per_1_minute   bigint CHECK (max_tokens_per_1_minute >= 0),
    ADD COLUMN disabled_at               timestamptz,
    ADD COLUMN disabled_reason           text
        CHECK (disabled_reason IN ('user_initiated', 'exposed', 'compromised')),
    ADD CONSTRAINT api_keys_disabled_together
        CHECK ((disabled_reason IS NULL) = (disabled_at IS NULL));

-- `model` compares bytewise ("C"), so lists come in the same order as from SQLite whatever
-- the database's collation.
CREATE TABLE project_rate_limits (
    organization_id                  text        NOT NULL REFERENCES organizations (id),
    project_id                       text        NOT NULL REFERENCES projects (id),
    model                            text        COLLATE "C" NOT NULL,
    max_requests_per_1_minute        bigint      CHECK (max_requests_per_1_minute >= 0),
    max_tokens_per_1_minute          bigint      CHECK (max_tokens_per_1_minute >= 0),
    max_images_per_1_minute          bigint      CHECK (max_images_per_1_minute >= 0),
    max_audio_megabytes_per_1_minute bigint      CHECK (max_audio_megabytes_per_1_minute >= 0),
    max_requests_per_1_day           bigint      CHECK (max_requests_per_1_day >= 0),
    batch_1_day_max_input_tokens     bigint      CHECK (batch_1_day_max_input_tokens >= 0),
    updated_at                       timestamptz NOT NULL,
    PRIMARY KEY (project_id, model)
);

-- Ephemeral (never exported). `version` is the id of the transaction that last wrote the row
-- (`pg_current_xact_id()`, as bigint); see postgres/admission.rs for why that makes
-- incremental reads lose nothing.
CREATE TABLE admission_counts (
    node     text   NOT NULL,
    subject  text   NOT NULL,
    bucket   bigint NOT NULL,
    span     bigint NOT NULL,
    requests bigint NOT NULL,
    tokens   bigint NOT NULL,
    version  bigint NOT NULL,
    PRIMARY KEY (subject, bucket, span, node)
);
CREATE INDEX admission_counts_by_version ON admission_counts (version);
CREATE INDEX admission_counts_by_bucket ON admission_counts (bucket, span);
