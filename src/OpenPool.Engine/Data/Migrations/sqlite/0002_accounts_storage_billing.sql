-- Money is kept in micro-dollars (integers) so that sums add up exactly.
ALTER TABLE orgs ADD COLUMN balance_micros INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN balance_micros INTEGER NOT NULL DEFAULT 0;

CREATE TABLE user_preferences (
    user_id                       TEXT PRIMARY KEY REFERENCES users(id),
    notify_email_cluster_create   INTEGER NOT NULL DEFAULT 1,
    notify_email_cluster_destroy  INTEGER NOT NULL DEFAULT 1,
    autopay_enabled               INTEGER NOT NULL DEFAULT 0,
    balance_warning_threshold     REAL,
    autopay_reload_threshold      REAL
);

CREATE TABLE ssh_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    org_id       TEXT REFERENCES orgs(id),
    name         TEXT NOT NULL,
    key_type     TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (user_id, fingerprint)
);
CREATE INDEX ix_ssh_keys_org ON ssh_keys(org_id);

-- The keys a cluster was created with: installed on its nodes, shown by cluster info.
CREATE TABLE cluster_keys (
    cluster_id   TEXT NOT NULL REFERENCES clusters(id),
    fingerprint  TEXT NOT NULL,
    name         TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    PRIMARY KEY (cluster_id, fingerprint)
);

-- When a cluster started and stopped costing money; billed_until moves as usage is charged.
ALTER TABLE clusters ADD COLUMN billing_started_at INTEGER;
ALTER TABLE clusters ADD COLUMN billing_ended_at INTEGER;
ALTER TABLE clusters ADD COLUMN billed_until INTEGER;

CREATE TABLE volumes (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users(id),
    org_id                TEXT REFERENCES orgs(id),
    name                  TEXT,
    size_gb               INTEGER NOT NULL,
    status                TEXT NOT NULL,
    deletion_protection   INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    billing_started_at    INTEGER,
    billing_ended_at      INTEGER,
    billed_until          INTEGER,
    billed_micros         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ix_volumes_user ON volumes(user_id, created_at);
CREATE INDEX ix_volumes_org ON volumes(org_id, created_at);
CREATE UNIQUE INDEX ux_volumes_user_name ON volumes(user_id, name)
    WHERE name IS NOT NULL AND status NOT IN ('DESTROYED', 'FAILED');

CREATE TABLE volume_attachments (
    volume_id   TEXT NOT NULL REFERENCES volumes(id),
    cluster_id  TEXT NOT NULL REFERENCES clusters(id),
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (volume_id, cluster_id)
);
CREATE INDEX ix_volume_attachments_cluster ON volume_attachments(cluster_id);

-- Every change of a balance, charges negative and credits positive; the balance is their sum.
CREATE TABLE ledger (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_kind  TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    user_id       TEXT,
    resource_id   TEXT,
    kind          TEXT NOT NULL,
    amount_micros INTEGER NOT NULL,
    period_start  INTEGER,
    period_end    INTEGER,
    description   TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX ix_ledger_account ON ledger(account_kind, account_id, seq);
CREATE INDEX ix_ledger_resource ON ledger(resource_id);

ALTER TABLE clusters ADD COLUMN billed_micros INTEGER NOT NULL DEFAULT 0;

CREATE TABLE idempotency_keys (
    user_id         TEXT NOT NULL,
    idem_key        TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    locked_until    INTEGER,
    status_code     INTEGER,
    content_type    TEXT,
    response_body   BLOB,
    PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX ix_idempotency_created ON idempotency_keys(created_at);
