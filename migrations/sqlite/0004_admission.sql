-- Admission: address allowlists, keyplane's own key limits, disabled keys, per-project rate
-- limit overrides, and the counters nodes share. Same version as
-- migrations/postgres/0004_admission.sql.
--
-- Allowlists are JSON arrays of CIDRs as `ipnet` renders them (`["10.0.0.0/8"]`); NULL
-- allows any address. SQLite cannot add a table constraint to an existing table, so the
-- checks are column constraints (SQLite lets those name other columns).

ALTER TABLE projects ADD COLUMN allowed_ips TEXT
    CHECK (allowed_ips IS NULL OR json_valid(allowed_ips));

ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT
    CHECK (allowed_ips IS NULL OR json_valid(allowed_ips));
ALTER TABLE api_keys ADD COLUMN max_requests_per_1_minute INTEGER
    CHECK (max_requests_per_1_minute >= 0);
ALTER TABLE api_keys ADD COLUMN max_requests_per_1_day INTEGER
    CHECK (max_requests_per_1_day >= 0);
ALTER TABLE api_keys ADD COLUMN max_tokens_per_1_minute INTEGER
    CHECK (max_tokens_per_1_minute >= 0);
-- A disabled key has both a time and a reason; an enabled one neither.
ALTER TABLE api_keys ADD COLUMN disabled_at INTEGER;
ALTER TABLE api_keys ADD COLUMN disabled_reason TEXT
    CHECK (disabled_reason IN ('user_initiated', 'exposed', 'compromised'))
    CHECK ((disabled_reason IS NULL) = (disabled_at IS NULL));

-- One project's overrides of a catalogue model's limits (NULL: the model's default applies).
CREATE TABLE project_rate_limits (
    organization_id                  TEXT    NOT NULL REFERENCES organizations (id),
    project_id                       TEXT    NOT NULL REFERENCES projects (id),
    model                            TEXT    NOT NULL,
    max_requests_per_1_minute        INTEGER CHECK (max_requests_per_1_minute >= 0),
    max_tokens_per_1_minute          INTEGER CHECK (max_tokens_per_1_minute >= 0),
    max_images_per_1_minute          INTEGER CHECK (max_images_per_1_minute >= 0),
    max_audio_megabytes_per_1_minute INTEGER CHECK (max_audio_megabytes_per_1_minute >= 0),
    max_requests_per_1_day           INTEGER CHECK (max_requests_per_1_day >= 0),
    batch_1_day_max_input_tokens     INTEGER CHECK (batch_1_day_max_input_tokens >= 0),
    updated_at                       INTEGER NOT NULL,
    PRIMARY KEY (project_id, model)
) WITHOUT ROWID;

-- Each node's absolute count of one subject in one time bucket. Ephemeral: never exported,
-- pruned as buckets age out. `version` orders writes for the nodes' incremental reads.
CREATE TABLE admission_counts (
    node     TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    bucket   INTEGER NOT NULL,
    span     INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    tokens   INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    PRIMARY KEY (subject, bucket, span, node)
) WITHOUT ROWID;
-- Incremental reads (`version > cursor`); first reads and pruning (by bucket).
CREATE INDEX admission_counts_by_version ON admission_counts (version);
CREATE INDEX admission_counts_by_bucket ON admission_counts (bucket, span);

-- The last version handed out. A counter of its own rather than MAX(version) of the counts:
-- pruning may delete the newest rows, and a version handed out again could fall at or below a
-- cursor some node already holds, hiding the rows written with it.
CREATE TABLE admission_counts_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO admission_counts_version (id, version) VALUES (1, 0);
