-- Times are Unix milliseconds (UTC) everywhere: cheap to index and compare, and identical on
-- SQLite and PostgreSQL, so the worker's due-time queries read the same on both.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    email        TEXT NOT NULL UNIQUE,
    org_id       TEXT REFERENCES orgs(id),
    role         TEXT NOT NULL,
    is_operator  INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    key_hash    TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE clusters (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users(id),
    org_id               TEXT REFERENCES orgs(id),
    name                 TEXT,
    instance_type        TEXT NOT NULL,
    num_nodes            INTEGER NOT NULL,
    status               TEXT NOT NULL,
    deletion_protection  INTEGER NOT NULL DEFAULT 0,
    container            TEXT,
    price_micros_per_hour INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX ix_clusters_user ON clusters(user_id, created_at);
CREATE INDEX ix_clusters_org ON clusters(org_id, created_at);
-- Names are unique among an owner's live clusters; a destroyed cluster frees its name.
CREATE UNIQUE INDEX ux_clusters_user_name ON clusters(user_id, name)
    WHERE name IS NOT NULL AND status NOT IN ('DESTROYED', 'FAILED');

CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    cluster_id  TEXT NOT NULL REFERENCES clusters(id),
    node_index  INTEGER NOT NULL,
    status      TEXT NOT NULL,
    ip_address  TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX ix_instances_cluster ON instances(cluster_id, node_index);

CREATE TABLE requests (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    type              TEXT NOT NULL,
    status            TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    org_id            TEXT,
    object_id         TEXT,
    external_message  TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_run_at       INTEGER NOT NULL,
    step              TEXT NOT NULL,
    payload           TEXT NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    lease_token       INTEGER NOT NULL DEFAULT 0,
    idempotency_key   TEXT
);
-- The worker's claim scans only unfinished rows by due time.
CREATE INDEX ix_requests_due ON requests(next_run_at) WHERE finished_at IS NULL;
CREATE INDEX ix_requests_object ON requests(object_id, seq);
CREATE INDEX ix_requests_user ON requests(user_id, seq);
CREATE INDEX ix_requests_finished ON requests(finished_at) WHERE finished_at IS NOT NULL;

-- The simulated cloud keeps its machines in the engine's database so that its effects survive a
-- crash exactly like a real provider's would, and tests can count them.
CREATE TABLE sim_nodes (
    instance_id    TEXT PRIMARY KEY,
    cluster_id     TEXT NOT NULL,
    instance_type  TEXT NOT NULL,
    request_id     TEXT NOT NULL,
    state          TEXT NOT NULL,
    ip_address     TEXT,
    created_at     INTEGER NOT NULL,
    released_at    INTEGER
);
CREATE INDEX ix_sim_nodes_cluster ON sim_nodes(cluster_id);
CREATE INDEX ix_sim_nodes_type ON sim_nodes(instance_type, state);

CREATE TABLE sim_operations (
    request_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    ready_at    INTEGER NOT NULL,
    PRIMARY KEY (request_id, kind)
);

CREATE TABLE sim_tombstones (
    object_id  TEXT PRIMARY KEY,
    at         INTEGER NOT NULL
);

CREATE TABLE sim_effects (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    at          INTEGER NOT NULL,
    UNIQUE (kind, object_id, request_id)
);
