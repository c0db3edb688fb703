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
    teardown_cluster     INTEGER NOT NULL DEFAULT 0,
    system               TEXT NOT NULL,
    public_message       TEXT,
    upload_received_at   INTEGER,
    cancel_requested_at  INTEGER,
    created_at           INTEGER NOT NULL,
    started_at           INTEGER,
    finished_at          INTEGER,
    deleted_at           INTEGER
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
