-- PostgreSQL twin of sqlite/0003_jobs.sql: the same tables, with native booleans and 64-bit integers.
CREATE TABLE jobs (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users(id),
    org_id               TEXT REFERENCES orgs(id),
    cluster_id           TEXT NOT NULL REFERENCES clusters(id),
    instance_id          TEXT NOT NULL,
    status               TEXT NOT NULL,
    exit_code            INTEGER,
    tp_config            TEXT NOT NULL,
    commands             TEXT NOT NULL,
    outputs              TEXT NOT NULL,
    ignore_patterns      TEXT NOT NULL,
    teardown_cluster     BOOLEAN NOT NULL DEFAULT FALSE,
    system               TEXT NOT NULL,
    public_message       TEXT,
    upload_received_at   BIGINT,
    cancel_requested_at  BIGINT,
    created_at           BIGINT NOT NULL,
    started_at           BIGINT,
    finished_at          BIGINT,
    deleted_at           BIGINT
);
CREATE INDEX ix_jobs_user ON jobs(user_id, created_at);
CREATE INDEX ix_jobs_org ON jobs(org_id, created_at);
CREATE INDEX ix_jobs_cluster ON jobs(cluster_id, status);
CREATE INDEX ix_jobs_active ON jobs(status) WHERE status IN ('pending', 'running', 'canceling');

-- Engine-wide secrets (e.g. the key that signs upload and download URLs), shared by all replicas.
CREATE TABLE engine_settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
